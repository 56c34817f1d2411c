// SPDX-License-Identifier: GPL-2.0
/*
 * Pool occupancy of PostgreSQL backends: the pg probe is the pools source of
 * role pg_backend (user/procs/pools.h). At each scrape the iter.s/task
 * program es_pg_busy_iter writes one record per backend that ran a
 * statement (struct es_pg_busy: busy now, busy ns with the open interval);
 * a backend without one has run none since erpscope attached and is idle.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "core/erpscope.h"
#include "core/grow.h"
#include "core/log.h"
#include "pg/pg.h"
#include "pg.skel.h"
#include "procs/pools.h"
#include "procs/proctable.h"

static int by_tgid(const void *a, const void *b)
{
	const struct es_pg_busy *x = a, *y = b;

	return x->tgid < y->tgid ? -1 : x->tgid > y->tgid;
}

/* The pools source of role pg_backend: the backend's record of this scrape. */
static bool backend(void *arg, const struct slot_view *sv, enum pool_state *state,
		    uint64_t *busy_ns)
{
	struct pg_priv *pp = arg;
	struct es_pg_busy key = { 0 };
	const struct es_pg_busy *r;

	if (!sv->w)
		return false;
	key.tgid = sv->w->pid;
	r = pp->busy ? bsearch(&key, pp->busy, pp->nbusy, sizeof(key), by_tgid) : NULL;
	*state = r && r->busy ? POOL_BUSY : POOL_IDLE;
	*busy_ns = r ? r->busy_ns + r->open_ns : 0;
	return true;
}

int pg_busy_attach(struct pg_priv *pp)
{
	struct bpf_link *l = bpf_program__attach_iter(pp->skel->progs.es_pg_busy_iter, NULL);
	int err;

	if (!l) {
		err = -errno;
		log_warn("cannot attach the backends' busy-time iterator: no pool occupancy for pg_backend",
			 "probe=pg err=%d", err);
		return err;
	}
	pp->skel->links.es_pg_busy_iter = l;
	err = pools_add(pp->es->pools, ES_ROLE_PG_BACKEND, backend, pp);
	pp->pooled = !err;
	return err;
}

/* Reads this scrape's records, sorted by tgid. Returns 0 or -errno. */
int pg_busy_read(struct pg_priv *pp)
{
	struct bpf_link *l = pp->skel->links.es_pg_busy_iter;
	size_t have = 0;
	ssize_t got;
	int fd, err = 0;

	if (!l)
		return 0;
	fd = bpf_iter_create(bpf_link__fd(l));
	if (fd < 0)
		return -errno;
	for (;;) {
		/* room for 64 more records; capbusy counts bytes */
		err = grow_array(&pp->busy, &pp->capbusy, have + 64 * sizeof(*pp->busy), 1,
				 256 * sizeof(*pp->busy));
		if (err)
			break;
		got = read(fd, (char *)pp->busy + have, pp->capbusy - have);
		if (got <= 0) {
			if (got < 0)
				err = -errno;
			break;
		}
		have += (size_t)got;
	}
	close(fd);
	pp->nbusy = err ? 0 : have / sizeof(*pp->busy);
	if (pp->nbusy)
		qsort(pp->busy, pp->nbusy, sizeof(*pp->busy), by_tgid);
	return err;
}

void pg_busy_free(struct pg_priv *pp)
{
	if (pp->pooled)
		pools_remove(pp->es->pools, ES_ROLE_PG_BACKEND);
	pp->pooled = false;
	free(pp->busy);
	pp->busy = NULL;
	pp->nbusy = pp->capbusy = 0;
}
