// SPDX-License-Identifier: GPL-2.0
/*
 * The tcp probe's uprobes, per pool worker: a uprobe session over accept,
 * accept4, select and pselect of the C library each worker maps, kept by
 * core/libc_uprobes.c (why uprobes with a pid and session links: there).
 *
 * The table follows the process table on the poller's 100 ms tick, one
 * entry per worker slot: a live worker of a pool role is attached; a worker
 * that exited, was replaced in its slot or left the pool is detached and
 * its per-thread state in the kernel deleted.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "core/bpfutil.h"
#include "core/erpscope.h"
#include "core/expo.h"
#include "core/libc_uprobes.h"
#include "core/poller.h"
#include "procs/proctable.h"
#include "tcp/tcp.h"
#include "tcp/tcp_pool_attach.h"

/* What is hooked in the C library, and the cookie the program reads. */
static const struct libc_hook hooks[] = {
	{ "accept", ES_TCP_HOOK_ACCEPT, false },
	{ "accept4", ES_TCP_HOOK_ACCEPT, false },
	{ "select", ES_TCP_HOOK_SELECT, false },
	{ "pselect", ES_TCP_HOOK_SELECT, false },
};
#define NHOOKS (sizeof(hooks) / sizeof(hooks[0]))

struct tcp_pool_attach {
	uint32_t roles;
	int threads_fd;
	struct libc_uprobes *lu;
};

int tcp_pool_attach_prepare(struct bpf_program *prog)
{
	return libc_uprobes_prepare(prog, NULL, "tcp pool occupancy and listen queue wait");
}

static bool thread_of_pid(void *arg, const void *key, const void *value)
{
	return ((const struct es_tcp_thread *)value)->tgid == *(const __u32 *)arg;
}

/* A reused tid must not inherit this worker's state. */
static void detached(void *arg, __u32 pid, unsigned int index)
{
	struct tcp_pool_attach *pa = arg;

	bpf_hash_delete_if(pa->threads_fd, sizeof(__u32), sizeof(struct es_tcp_thread), false,
			   thread_of_pid, &pid);
}

struct tcp_pool_attach *tcp_pool_attach_new(struct bpf_program *prog, uint32_t roles,
					    int threads_fd, unsigned int nslots)
{
	struct tcp_pool_attach *pa = calloc(1, sizeof(*pa));
	struct libc_uprobes_ops ops = { .starttime = procs_starttime,
					.detached = detached,
					.arg = pa };

	if (!pa)
		return NULL;
	pa->roles = roles;
	pa->threads_fd = threads_fd;
	pa->lu = libc_uprobes_new(prog, NULL, hooks, NHOOKS,
				  nslots > ES_SLOT_FIRST_WORKER ? nslots - ES_SLOT_FIRST_WORKER : 0,
				  "tcp", &ops);
	if (!pa->lu) {
		free(pa);
		return NULL;
	}
	return pa;
}

void tcp_pool_attach_free(struct tcp_pool_attach *pa)
{
	if (!pa)
		return;
	libc_uprobes_free(pa->lu);
	free(pa);
}

static bool pool_role(const struct tcp_pool_attach *pa, enum es_role r)
{
	return (unsigned int)r < 32 && (pa->roles & (1u << r));
}

static void sync_slot(void *arg, const struct slot_view *sv)
{
	struct tcp_pool_attach *pa = arg;
	const struct worker *w = sv->w;

	if (!w || w->exited || !pool_role(pa, sv->role) || sv->slot < ES_SLOT_FIRST_WORKER)
		return;
	libc_uprobes_want(pa->lu, sv->slot - ES_SLOT_FIRST_WORKER, w->pid, w->starttime);
}

void tcp_pool_attach_sync(struct tcp_pool_attach *pa, const struct procs *procs)
{
	libc_uprobes_begin(pa->lu);
	procs_for_each_slot(procs, sync_slot, pa);
	/* Exited, out of the pool, or their slot freed. */
	libc_uprobes_end(pa->lu);
}

void tcp_pool_attach_collect(const struct tcp_pool_attach *pa, struct expo *e)
{
	if (!pa)
		return;
	expo_family(
		e, "erpscope_tcp_pool_processes_attached", EXPO_GAUGE,
		"Pool workers (odoo_http) whose C library's accept/select functions carry the tcp probe's uprobes.");
	expo_sample_u64(e, NULL, 0, libc_uprobes_attached(pa->lu));
	expo_family(
		e, "erpscope_tcp_pool_attach_failures_total", EXPO_COUNTER,
		"Pool workers the tcp probe could not attach to (no C library found in their maps, or the attach failed): their busy/idle state is unknown.");
	expo_sample_u64(e, NULL, 0, libc_uprobes_failures(pa->lu));
}

/* ---------------------------------------------------------------- the poller */

/* Always up: the tcp probe may be off, then a tick does nothing. */
static int pool_poll_init(struct poller *pl)
{
	return 0;
}

/* Runs every tick: a new worker is instrumented within 100 ms of being tracked. */
static void pool_poll_tick(struct poller *pl, uint64_t now_ms)
{
	struct tcp_pool_attach *pa = tcp_probe_pool(pl->es);

	if (pa)
		tcp_pool_attach_sync(pa, pl->es->procs);
}

const struct poller_ops tcp_pool_poller_ops = {
	.name = "tcp_pool",
	.interval_ms = 100,
	.init = pool_poll_init,
	.tick = pool_poll_tick,
};
