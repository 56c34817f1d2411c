// SPDX-License-Identifier: GPL-2.0
/*
 * Remote labels per role, bounded by --tcp.max-remotes (see user/tcp/tcp.h).
 * The kernel keeps one entry per role and destination (up to its pool, then
 * the role's "other"); this file decides, once per scrape, which entries
 * show under their own ip:port and which are summed into remote="other",
 * without ever letting a series go down:
 *   own series   = value - base (base: the value when it got its label)
 *   other series = frozen + sum over unlabelled entries of (value - base)
 *                  + the kernel's own "other" entry
 * where frozen keeps what a destination counted under "other" before it was
 * given a label, and everything an evicted destination counted.
 *
 * The kernel only ever adds destinations to its pool (it cannot tell a cold
 * one), so on a scrape where a role holds EVICT_HIGH of its pool, its
 * destinations idle for idle_ms are evicted, the coldest first, down to
 * EVICT_LOW: the caller deletes their kernel entries and hands their last
 * values back, which go to frozen. A destination that comes back starts
 * afresh (a new entry, a new series, after a scrape without it).
 * Everything is allocated up front: the scrape path only copies and adds.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tcp/tcp.h"

#define NWORDS (sizeof(struct es_tcp_remote) / sizeof(uint64_t))
#define MAX_SWAPS 8 /* label hand-overs per scrape */
#define EVICT_HIGH 75 /* percent of a role's kernel pool: evict its cold destinations */
#define EVICT_LOW 50 /* percent of it left after evicting */

struct rec {
	struct es_tcp_remote_key key;
	bool own;
	bool fed; /* seen in this scrape's update */
	bool gone; /* evicted in this scrape's update: removed at its end */
	uint64_t attempts;  /* connects + failures at the last update */
	uint64_t active_ms; /* when a counter last changed */
	struct es_tcp_remote last;
	struct es_tcp_remote base;
};

struct role_state {
	unsigned int nown;
	unsigned int entries; /* destinations with a kernel entry, at the last update */
	bool seen; /* has had one: its gauges are shown from then on */
	uint64_t evicted;
	struct es_tcp_remote frozen;
	struct es_tcp_remote other; /* this scrape: the kernel's other entry */
};

struct tcp_remotes {
	unsigned int max_per_role;
	unsigned int pool; /* the kernel's destinations per role */
	unsigned int capacity, nrecs;
	unsigned int index_mask; /* index has index_mask + 1 buckets */
	uint64_t idle_ms;
	struct rec *recs;
	uint32_t *index; /* rec number + 1, 0 when empty */
	uint32_t *cold; /* capacity: eviction candidates, one role at a time */
	struct role_state roles[ES_ROLE_COUNT];
	struct tcp_remote_row *rows; /* capacity + ES_ROLE_COUNT */
	unsigned int nrows;
};

static void vadd(struct es_tcp_remote *dst, const struct es_tcp_remote *a)
{
	uint64_t *d = (uint64_t *)dst;
	const uint64_t *s = (const uint64_t *)a;

	for (size_t i = 0; i < NWORDS; i++)
		d[i] += s[i];
}

/* dst += a - b, word by word (a >= b: both are one entry's cumulative values). */
static void vadd_diff(struct es_tcp_remote *dst, const struct es_tcp_remote *a,
		      const struct es_tcp_remote *b)
{
	uint64_t *d = (uint64_t *)dst;
	const uint64_t *x = (const uint64_t *)a, *y = (const uint64_t *)b;

	for (size_t i = 0; i < NWORDS; i++)
		d[i] += x[i] >= y[i] ? x[i] - y[i] : 0;
}

static bool vzero(const struct es_tcp_remote *v)
{
	const uint64_t *s = (const uint64_t *)v;

	for (size_t i = 0; i < NWORDS; i++) {
		if (s[i])
			return false;
	}
	return true;
}

static uint64_t attempts(const struct es_tcp_remote *v)
{
	uint64_t n = 0;

	for (int i = 0; i <= ES_TCP_MAX_EDGES; i++)
		n += v->lat[i];
	for (int i = 0; i < ES_TCP_FAIL_COUNT; i++)
		n += v->failures[i];
	return n;
}

static uint32_t key_hash(const struct es_tcp_remote_key *k)
{
	const unsigned char *p = (const unsigned char *)k;
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < sizeof(*k); i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

struct tcp_remotes *tcp_remotes_new(unsigned int max_per_role, unsigned int pool,
				    unsigned int capacity, uint64_t idle_ms)
{
	struct tcp_remotes *t = calloc(1, sizeof(*t));
	unsigned int buckets = 16;

	if (!t)
		return NULL;
	while (buckets < 2 * capacity)
		buckets *= 2;
	t->max_per_role = max_per_role;
	t->pool = pool;
	t->capacity = capacity;
	t->index_mask = buckets - 1;
	t->idle_ms = idle_ms;
	t->recs = calloc(capacity ? capacity : 1, sizeof(*t->recs));
	t->index = calloc(buckets, sizeof(*t->index));
	t->rows = calloc(capacity + ES_ROLE_COUNT, sizeof(*t->rows));
	t->cold = calloc(capacity ? capacity : 1, sizeof(*t->cold));
	if (!t->recs || !t->index || !t->rows || !t->cold) {
		tcp_remotes_free(t);
		return NULL;
	}
	return t;
}

void tcp_remotes_free(struct tcp_remotes *t)
{
	if (!t)
		return;
	free(t->recs);
	free(t->index);
	free(t->rows);
	free(t->cold);
	free(t);
}

/* The index bucket that holds k, or the empty one where it would go. */
static uint32_t bucket_of(const struct tcp_remotes *t, const struct es_tcp_remote_key *k)
{
	uint32_t i = key_hash(k) & t->index_mask;

	/* At least twice as many buckets as records: an empty one is reached. */
	while (t->index[i] && memcmp(&t->recs[t->index[i] - 1].key, k, sizeof(*k)))
		i = (i + 1) & t->index_mask;
	return i;
}

/* The record of k, created when there is room; NULL when the table is full. */
static struct rec *lookup_or_add(struct tcp_remotes *t, const struct es_tcp_remote_key *k,
				 uint64_t now_ms)
{
	uint32_t i = bucket_of(t, k);
	struct rec *r;

	if (t->index[i])
		return &t->recs[t->index[i] - 1];
	if (t->nrecs >= t->capacity)
		return NULL;
	r = &t->recs[t->nrecs++];
	memset(r, 0, sizeof(*r));
	r->key = *k;
	r->active_ms = now_ms;
	if (t->roles[k->role].nown < t->max_per_role) {
		r->own = true;
		t->roles[k->role].nown++;
	}
	t->roles[k->role].seen = true;
	t->index[i] = t->nrecs;
	return r;
}

/*
 * Drops the records evicted in this update and rebuilds the index (an open-
 * addressed table cannot simply clear a bucket). Order is kept: rows too.
 */
static void compact(struct tcp_remotes *t)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < t->nrecs; i++) {
		if (!t->recs[i].gone)
			t->recs[n++] = t->recs[i];
	}
	if (n == t->nrecs)
		return;
	t->nrecs = n;
	memset(t->index, 0, (size_t)(t->index_mask + 1) * sizeof(*t->index));
	for (unsigned int i = 0; i < n; i++)
		t->index[bucket_of(t, &t->recs[i].key)] = i + 1;
}

void tcp_remotes_begin(struct tcp_remotes *t)
{
	for (unsigned int i = 0; i < t->nrecs; i++)
		t->recs[i].fed = false;
	for (int r = 0; r < ES_ROLE_COUNT; r++) {
		memset(&t->roles[r].other, 0, sizeof(t->roles[r].other));
		t->roles[r].entries = 0;
	}
}

void tcp_remotes_feed(struct tcp_remotes *t, const struct es_tcp_remote_key *k,
		      const struct es_tcp_remote *v, uint64_t now_ms)
{
	struct rec *r;
	uint64_t a;

	if (k->role >= ES_ROLE_COUNT)
		return;
	if (!k->family) {
		vadd(&t->roles[k->role].other, v);
		return;
	}
	r = lookup_or_add(t, k, now_ms);
	if (!r) {
		/* Cannot happen with capacity >= the kernel map's size. */
		vadd(&t->roles[k->role].other, v);
		return;
	}
	a = attempts(v);
	if (memcmp(v, &r->last, sizeof(*v)))
		r->active_ms = now_ms;
	r->attempts = a;
	r->last = *v;
	if (!r->fed)
		t->roles[k->role].entries++;
	r->fed = true;
}

/* Colder first: idle longer, then unlabelled (no series goes), then fewer attempts. */
static int by_coldness(const void *a, const void *b, void *arg)
{
	const struct rec *recs = arg;
	const struct rec *x = &recs[*(const uint32_t *)a], *y = &recs[*(const uint32_t *)b];

	if (x->active_ms != y->active_ms)
		return x->active_ms < y->active_ms ? -1 : 1;
	if (x->own != y->own)
		return x->own ? 1 : -1;
	return x->attempts < y->attempts ? -1 : x->attempts > y->attempts;
}

/* Appends role's destinations to evict to keys (room: capacity); returns the new count. */
static unsigned int pick_cold(struct tcp_remotes *t, uint32_t role, uint64_t now_ms,
			      struct es_tcp_remote_key *keys, unsigned int nkeys)
{
	unsigned int entries = t->roles[role].entries, low = t->pool * EVICT_LOW / 100;
	unsigned int n = 0;

	if ((uint64_t)entries * 100 < (uint64_t)t->pool * EVICT_HIGH)
		return nkeys;
	for (unsigned int i = 0; i < t->nrecs; i++) {
		const struct rec *r = &t->recs[i];

		if (r->key.role == role && r->fed && r->active_ms + t->idle_ms <= now_ms)
			t->cold[n++] = i;
	}
	qsort_r(t->cold, n, sizeof(*t->cold), by_coldness, t->recs);
	for (unsigned int i = 0; i < n && entries > low; i++, entries--)
		keys[nkeys++] = t->recs[t->cold[i]].key;
	return nkeys;
}

unsigned int tcp_remotes_cold(struct tcp_remotes *t, uint64_t now_ms,
			      struct es_tcp_remote_key *keys)
{
	unsigned int n = 0;

	for (uint32_t role = 0; role < ES_ROLE_COUNT; role++)
		n = pick_cold(t, role, now_ms, keys, n);
	return n;
}

void tcp_remotes_evicted(struct tcp_remotes *t, const struct es_tcp_remote_key *k,
			 const struct es_tcp_remote *v)
{
	uint32_t n = k->role < ES_ROLE_COUNT ? t->index[bucket_of(t, k)] : 0;
	struct role_state *rs;
	struct rec *r;

	if (!n || t->recs[n - 1].gone)
		return;
	r = &t->recs[n - 1];
	rs = &t->roles[k->role];
	/* What it showed, on its own or in other, and what it counted since the walk. */
	vadd_diff(&rs->frozen, v ? v : &r->last, &r->base);
	if (r->own)
		rs->nown--;
	if (r->fed)
		rs->entries--;
	rs->evicted++;
	r->gone = true;
}

void tcp_remotes_role(const struct tcp_remotes *t, uint32_t role, bool *seen, unsigned int *entries,
		      uint64_t *evicted)
{
	const struct role_state *rs = &t->roles[role < ES_ROLE_COUNT ? role : ES_ROLE_OTHER];

	*seen = rs->seen;
	*entries = rs->entries;
	*evicted = rs->evicted;
}

/*
 * In role, the busiest unlabelled destination active within idle_ms takes a
 * free label (one an eviction gave back), or else the label of the labelled
 * one idle the longest, idle for idle_ms. Returns false when none moved.
 */
static bool hand_over(struct tcp_remotes *t, uint32_t role, uint64_t now_ms)
{
	struct role_state *rs = &t->roles[role];
	struct rec *victim = NULL, *cand = NULL;
	uint64_t best = 0;

	for (unsigned int i = 0; i < t->nrecs; i++) {
		struct rec *r = &t->recs[i];

		if (r->key.role != role || !r->fed)
			continue;
		if (r->own) {
			if (r->active_ms + t->idle_ms <= now_ms &&
			    (!victim || r->active_ms < victim->active_ms))
				victim = r;
		} else if (r->active_ms + t->idle_ms > now_ms) {
			uint64_t n = r->attempts - attempts(&r->base);

			if (!cand || n > best) {
				cand = r;
				best = n;
			}
		}
	}
	if (!cand || (rs->nown >= t->max_per_role && !victim))
		return false;
	vadd_diff(&rs->frozen, &cand->last, &cand->base);
	cand->base = cand->last;
	cand->own = true;
	if (rs->nown < t->max_per_role) {
		rs->nown++;
		return true;
	}
	victim->base = victim->last;
	victim->own = false;
	return true;
}

unsigned int tcp_remotes_end(struct tcp_remotes *t, uint64_t now_ms)
{
	struct es_tcp_remote *other;

	compact(t);
	t->nrows = 0;
	for (uint32_t role = 0; role < ES_ROLE_COUNT; role++) {
		if (t->roles[role].entries <= t->roles[role].nown)
			continue; /* every destination has a label */
		for (int s = 0; s < MAX_SWAPS && hand_over(t, role, now_ms); s++)
			;
	}
	for (unsigned int i = 0; i < t->nrecs; i++) {
		struct rec *r = &t->recs[i];
		struct tcp_remote_row *row;

		if (!r->fed)
			continue;
		if (!r->own) {
			vadd_diff(&t->roles[r->key.role].other, &r->last, &r->base);
			continue;
		}
		row = &t->rows[t->nrows++];
		row->key = r->key;
		tcp_format_remote(&r->key, row->label, sizeof(row->label));
		memset(&row->v, 0, sizeof(row->v));
		vadd_diff(&row->v, &r->last, &r->base);
	}
	for (uint32_t role = 0; role < ES_ROLE_COUNT; role++) {
		struct tcp_remote_row *row;

		other = &t->roles[role].other;
		vadd(other, &t->roles[role].frozen);
		if (vzero(other))
			continue; /* once not zero, never zero again: no flapping series */
		row = &t->rows[t->nrows++];
		memset(&row->key, 0, sizeof(row->key));
		row->key.role = role;
		tcp_format_remote(&row->key, row->label, sizeof(row->label));
		row->v = *other;
	}
	return t->nrows;
}

const struct tcp_remote_row *tcp_remotes_row(const struct tcp_remotes *t, unsigned int i)
{
	return i < t->nrows ? &t->rows[i] : NULL;
}
