// SPDX-License-Identifier: GPL-2.0
#include "procs/pools.h"

#include <errno.h>
#include <stdlib.h>

#include "core/expo.h"
#include "procs/proctable.h"
#include "procs/title.h"

struct pool_source {
	pool_worker_fn fn; /* NULL: no source */
	void *arg;
};

struct pools {
	struct procs *procs;
	struct pool_source src[ES_ROLE_COUNT];
	unsigned int nslots;
	uint64_t *hw_ns; /* per slot: the most its busy seconds showed */
	/* One collect. */
	uint64_t busy[ES_ROLE_COUNT], idle[ES_ROLE_COUNT];
	struct expo *e;
};

static void reset_slot(void *arg, __u32 slot)
{
	struct pools *pl = arg;

	if (slot < pl->nslots)
		pl->hw_ns[slot] = 0;
}

struct pools *pools_new(struct procs *procs)
{
	struct pools *pl = calloc(1, sizeof(*pl));

	if (!pl)
		return NULL;
	pl->procs = procs;
	pl->nslots = procs_nslots(procs);
	pl->hw_ns = calloc(pl->nslots, sizeof(*pl->hw_ns));
	if (!pl->hw_ns || procs_on_slot_reset(procs, reset_slot, pl)) {
		free(pl->hw_ns);
		free(pl);
		return NULL;
	}
	return pl;
}

void pools_free(struct pools *pl)
{
	if (!pl)
		return;
	procs_off_slot_reset(pl->procs, reset_slot, pl);
	free(pl->hw_ns);
	free(pl);
}

int pools_add(struct pools *pl, enum es_role role, pool_worker_fn fn, void *arg)
{
	if (!pl || role >= ES_ROLE_COUNT || !fn)
		return -EINVAL;
	if (pl->src[role].fn)
		return -EBUSY;
	pl->src[role] = (struct pool_source){ fn, arg };
	return 0;
}

void pools_remove(struct pools *pl, enum es_role role)
{
	if (pl && role < ES_ROLE_COUNT)
		pl->src[role] = (struct pool_source){ 0 };
}

/* The source of a slot's role, or NULL. */
static const struct pool_source *source_of(const struct pools *pl, const struct slot_view *sv)
{
	if (sv->role >= ES_ROLE_COUNT || sv->slot >= pl->nslots || !pl->src[sv->role].fn)
		return NULL;
	return &pl->src[sv->role];
}

static void count_slot(void *arg, const struct slot_view *sv)
{
	struct pools *pl = arg;
	const struct pool_source *s = source_of(pl, sv);
	enum pool_state st = POOL_UNKNOWN;
	uint64_t ns = 0;

	if (!s || !sv->w || sv->w->exited || !s->fn(s->arg, sv, &st, &ns))
		return;
	if (st == POOL_BUSY)
		pl->busy[sv->role]++;
	else if (st == POOL_IDLE)
		pl->idle[sv->role]++;
}

static void busy_slot(void *arg, const struct slot_view *sv)
{
	struct pools *pl = arg;
	const struct pool_source *s = source_of(pl, sv);
	enum pool_state st = POOL_UNKNOWN;
	struct expo_label l[2];
	uint64_t ns = 0;

	if (!s || !s->fn(s->arg, sv, &st, &ns))
		return;
	/* An open interval can move between series; counters never go back. */
	if (ns > pl->hw_ns[sv->slot])
		pl->hw_ns[sv->slot] = ns;
	l[0] = (struct expo_label){ "role", role_name(sv->role) };
	l[1] = (struct expo_label){ "worker", sv->worker };
	expo_sample(pl->e, l, 2, (double)pl->hw_ns[sv->slot] / 1e9);
}

void pools_collect(struct pools *pl, struct expo *e)
{
	struct expo_label l[2];

	if (!pl)
		return;
	for (unsigned int r = 0; r < ES_ROLE_COUNT; r++)
		pl->busy[r] = pl->idle[r] = 0;
	procs_for_each_slot(pl->procs, count_slot, pl);
	expo_family(e, "erpscope_workers", EXPO_GAUGE,
		    "Pool workers now busy or idle: an HTTP worker is idle while it waits for a connection on its listen socket (select/accept), a PostgreSQL backend while it runs no statement and has no transaction open.");
	for (unsigned int r = 0; r < ES_ROLE_COUNT; r++) {
		if (!pl->src[r].fn)
			continue;
		l[0] = (struct expo_label){ "role", role_name((enum es_role)r) };
		l[1] = (struct expo_label){ "state", "busy" };
		expo_sample_u64(e, l, 2, pl->busy[r]);
		l[1] = (struct expo_label){ "state", "idle" };
		expo_sample_u64(e, l, 2, pl->idle[r]);
	}
	expo_family(e, "erpscope_worker_busy_seconds_total", EXPO_COUNTER,
		    "Time each pool worker was busy, measured at its busy/idle edges; the interval open at the scrape included.");
	pl->e = e;
	procs_for_each_slot(pl->procs, busy_slot, pl);
	pl->e = NULL;
}
