// SPDX-License-Identifier: GPL-2.0
/*
 * The likely holder of a lock a statement waited for: among the
 * transactions the kernel noted (bpf global lock_enders, struct
 * es_pg_ender), one of another backend of the same database that was open
 * before the wait began and ended as the wait did (a row or table lock is
 * released at the end of its transaction, and the waiter gets it then).
 * Without asking PostgreSQL (pg_locks): a hint, named as such.
 */
#include <string.h>

#include "core/erpscope.h"
#include "pg/pg.h"
#include "pg.skel.h"

/* Ended this close to the wait's end: the holder's commit woke the waiter. */
#define PG_HOLDER_GAP_NS 500000000ull

static __u64 gap(__u64 a, __u64 b)
{
	return a > b ? a - b : b - a;
}

bool pg_holder_find(const struct pg_priv *pp, const struct es_pg_ev_lock *ev,
		    struct pg_holder *out)
{
	const struct es_pg_ender *best = NULL;
	__u64 wait_start = ev->end_ns - ev->wait_ns;

	if (!pp->skel->bss || !ev->wait_ns || ev->end_ns < ev->wait_ns)
		return false;
	for (unsigned int i = 0; i < ES_PG_ENDERS; i++) {
		const struct es_pg_ender *e = &pp->skel->bss->lock_enders[i];

		if (!e->tgid || e->tgid == ev->h.tgid || e->db != ev->db ||
		    e->since_ns > wait_start || e->end_ns < wait_start ||
		    gap(e->end_ns, ev->end_ns) > PG_HOLDER_GAP_NS)
			continue;
		if (!best || gap(e->end_ns, ev->end_ns) < gap(best->end_ns, ev->end_ns))
			best = e;
	}
	if (!best)
		return false;
	out->tgid = best->tgid;
	out->fp = best->fp;
	out->xact_s = (double)(best->end_ns - best->since_ns) / 1e9;
	out->before_s = (double)(wait_start - best->since_ns) / 1e9;
	out->gap_s = ((double)ev->end_ns - (double)best->end_ns) / 1e9;
	return true;
}
