/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One probe = bpf/<probe>.bpf.c + bpf/<probe>.h + user/<capability>/<probe>.c, which
 * exports one struct probe_ops. user/daemon/probes.c lists them.
 */
#ifndef ERPSCOPE_PROBE_H
#define ERPSCOPE_PROBE_H

#include <stdbool.h>

struct erpscope;
struct expo;
struct bpf_object;
struct ring_buffer;

struct probe {
	const struct probe_ops *ops;
	struct erpscope *es;
	bool up;                  /* loaded and attached */
	struct bpf_object *obj;   /* for per-program run stats; NULL if none */
	struct ring_buffer *rb;   /* polled by the main loop; NULL if none */
	int drops_fd;             /* per-CPU u64 array [1]: ring-buffer drops; -1 if none */
	int map_errors_fd;        /* per-CPU u64 array [ES_MAP_COUNT] (bpf/maps.bpf.h); -1 if none */
	void *priv;               /* the probe's own state (its skeleton, ...) */
};

struct probe_ops {
	const char *name;
	/* Opens the skeleton, sets rodata, shares maps, loads. */
	int (*open)(struct probe *p);
	int (*attach)(struct probe *p);
	/* Writes the probe's metric families. Runs on every scrape: read only. */
	int (*collect)(struct probe *p, struct expo *e);
	/* Detaches and frees everything; safe after a failed open/attach. */
	void (*close)(struct probe *p);
};

#endif
