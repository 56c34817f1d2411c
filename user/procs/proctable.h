/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The process table: which processes are workers, their role, their
 * accounting slot, and the BPF map (tgid -> slot) every probe reads.
 */
#ifndef ERPSCOPE_PROCTABLE_H
#define ERPSCOPE_PROCTABLE_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/types.h>

#include "procs/title.h"

struct procs;
struct expo;

struct worker {
	__u32 pid;
	__u32 slot;
	__u32 ppid;
	__u64 starttime;    /* /proc/<pid>/stat field 22: tells a reused pid apart */
	enum es_role role;
	bool exited;        /* gone: dropped after the next scrape */
	uint64_t exited_ms; /* when it was seen gone */
	uint64_t seen_scan; /* last full scan that saw it */
	char label[16];     /* worker label: the pid in decimal */
	char comm[17];
	struct title_info ti;
};

/* A slot as the metrics see it: one worker, a role's overflow, or "other". */
struct slot_view {
	__u32 slot;
	enum es_role role;
	const char *worker;     /* label value */
	const struct worker *w; /* NULL for aggregate slots */
};

struct procs *procs_new(unsigned int max_workers);
void procs_free(struct procs *p);

/* Number of accounting slots: ES_ROLE_COUNT + max_workers. */
unsigned int procs_nslots(const struct procs *p);
/*
 * Attaches the kernel map that mirrors the table (the table fills it) and the
 * generation counter bumped after each change (programs cache slots by it).
 */
void procs_set_map_fd(struct procs *p, int workers_fd, int gen_fd);
/* The lifecycle ring's drop counter, read at every tick. */
void procs_set_drops_fd(struct procs *p, int drops_fd);
/* The drop counter read drops: when it rose, a full rescan is due. Returns whether it rose. */
bool procs_note_drops(struct procs *p, uint64_t drops);
/* Whether the next tick scans /proc in full before the rescan interval. */
bool procs_rescan_due(const struct procs *p);

struct erpscope;
struct bpf_object;
/*
 * Before load: makes obj use the procs probe's workers and workers_gen maps
 * (bpf/workers.bpf.h) instead of creating its own. Returns 0 or -errno.
 */
int procs_share_maps(struct erpscope *es, struct bpf_object *obj);

/* A lifecycle event from the kernel: look at pid now and again soon. */
void procs_event(struct procs *p, __u32 type, __u32 pid, uint64_t now_ms);
/* Timer: pending inspections, periodic full rescans (every rescan_ms). */
void procs_tick(struct procs *p, uint64_t now_ms, unsigned int rescan_ms);
/* Full /proc scan now. Returns the number of tracked workers or -errno. */
int procs_scan(struct procs *p, uint64_t now_ms);
/* After a scrape: forget workers that exited before it. */
void procs_scrape_done(struct procs *p, uint64_t now_ms);

/* Slots to report, in slot order: live workers, exited-but-kept, aggregates. */
typedef void (*procs_slot_fn)(void *arg, const struct slot_view *sv);
void procs_for_each_slot(const struct procs *p, procs_slot_fn fn, void *arg);

/* Field 22 of /proc/<pid>/stat (tells a reused pid apart); 0 when gone. */
__u64 procs_starttime(__u32 pid);

/* The view of one slot if the metrics report it now; -ENOENT otherwise. */
int procs_slot_view(const struct procs *p, __u32 slot, struct slot_view *out);

/* erpscope_worker_info, erpscope_workers_tracked, overflow counters. */
void procs_collect(const struct procs *p, struct expo *e);

/* Called when a slot is handed to a new worker: probes zero its counters. */
typedef void (*procs_slot_reset_fn)(void *arg, __u32 slot);
int procs_on_slot_reset(struct procs *p, procs_slot_reset_fn fn, void *arg);
void procs_off_slot_reset(struct procs *p, procs_slot_reset_fn fn, void *arg);

/* Test hooks: classify one /proc entry, lookup by pid. */
const struct worker *procs_lookup(const struct procs *p, __u32 pid);

#endif
