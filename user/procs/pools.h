/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Pool occupancy of workers (erpscope_workers, erpscope_worker_busy_seconds_total),
 * written once per scrape after the probes' collects. Each pool role has one
 * source, the probe that sees its workers' busy edges: tcp for odoo_http
 * (accept/select), pg for pg_backend (statements and transactions). A source
 * says, per worker of its role, whether it is busy now and its busy time so
 * far; the series are kept monotonic here (the most each one showed, reset
 * when its slot goes to a new worker).
 */
#ifndef ERPSCOPE_POOLS_H
#define ERPSCOPE_POOLS_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/types.h>

#include "../../bpf/procs.h"

struct expo;
struct procs;
struct slot_view;

enum pool_state {
	POOL_UNKNOWN, /* neither busy nor idle: not seen yet */
	POOL_IDLE,
	POOL_BUSY,
};

/*
 * What a source knows of one worker of its role at this scrape: its state
 * and busy ns (open interval included). Returns false for no series.
 */
typedef bool (*pool_worker_fn)(void *arg, const struct slot_view *sv, enum pool_state *state,
			       uint64_t *busy_ns);

struct pools;

struct pools *pools_new(struct procs *procs);
void pools_free(struct pools *pl);
/* role's workers are described by fn from now on. Returns 0 or -errno (-EBUSY: taken). */
int pools_add(struct pools *pl, enum es_role role, pool_worker_fn fn, void *arg);
void pools_remove(struct pools *pl, enum es_role role);
/* Writes both families for the roles that have a source. */
void pools_collect(struct pools *pl, struct expo *e);

#endif
