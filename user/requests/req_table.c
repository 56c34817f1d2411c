// SPDX-License-Identifier: GPL-2.0
/* Bounded latency histograms by key: top k labelled, the rest in "other" (requests/req_table.h). */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "core/grow.h"
#include "requests/req_table.h"

const double req_edges[REQ_NEDGES] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60
};

const char *const req_part_names[REQ_PART_COUNT] = {
	[REQ_PART_CPU] = "cpu",	       [REQ_PART_RUNQUEUE] = "runqueue",
	[REQ_PART_IOWAIT] = "iowait",  [REQ_PART_BLOCKED] = "blocked",
	[REQ_PART_SLEEP] = "sleep",    [REQ_PART_PG] = "pg",
};

/* Candidates kept per labelled key. */
#define POOL_FACTOR 4
/* A candidate takes a label when its score is above twice the coldest's, plus this. */
#define PROMOTE_MARGIN 1.0

struct series {
	uint32_t sub;
	struct req_hist h;
};

struct entry {
	char key[REQ_KEY_MAX];
	uint64_t hash;
	bool used;
	bool labelled;
	bool pinned;
	double score; /* decayed observations, as of the last rotation */
	uint64_t hits; /* observations since the last rotation */
	struct series *series;
	unsigned int nseries;
	size_t cap;
	struct req_parts parts;
};

struct req_table {
	unsigned int k, n; /* n: entries allocated (k + k * POOL_FACTOR + pinned) */
	unsigned int labelled, candidates, npinned;
	uint64_t evictions;
	struct entry *e;
	struct entry other;
};

#define MAX_PINNED 4

void req_parts_add(struct req_parts *d, const struct req_parts *s)
{
	for (unsigned int i = 0; i < REQ_PART_COUNT; i++)
		d->ns[i] += s->ns[i];
	d->pg_stmts += s->pg_stmts;
	d->sched |= s->sched;
	d->pg |= s->pg;
}

void req_hist_add(struct req_hist *h, uint64_t ns)
{
	unsigned int b = 0;

	while (b < REQ_NEDGES && (double)ns > req_edges[b] * 1e9)
		b++;
	h->buckets[b]++;
	h->sum_ns += ns;
}

uint64_t req_hist_count(const struct req_hist *h)
{
	uint64_t n = 0;

	for (unsigned int b = 0; b <= REQ_NEDGES; b++)
		n += h->buckets[b];
	return n;
}

static void hist_merge(struct req_hist *d, const struct req_hist *s)
{
	for (unsigned int b = 0; b <= REQ_NEDGES; b++)
		d->buckets[b] += s->buckets[b];
	d->sum_ns += s->sum_ns;
}

static uint64_t hash_key(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

struct req_table *req_table_new(unsigned int k)
{
	struct req_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->k = k ? k : 1;
	t->n = t->k + t->k * POOL_FACTOR + MAX_PINNED;
	t->e = calloc(t->n, sizeof(*t->e));
	if (!t->e) {
		free(t);
		return NULL;
	}
	t->other.used = t->other.labelled = true;
	return t;
}

static void entry_clear(struct entry *e)
{
	free(e->series);
	memset(e, 0, sizeof(*e));
}

void req_table_free(struct req_table *t)
{
	if (!t)
		return;
	for (unsigned int i = 0; i < t->n; i++)
		entry_clear(&t->e[i]);
	free(t->other.series);
	free(t->e);
	free(t);
}

static struct entry *find(struct req_table *t, const char *key, uint64_t h)
{
	for (unsigned int i = 0; i < t->n; i++) {
		struct entry *e = &t->e[i];

		if (e->used && e->hash == h && !strcmp(e->key, key))
			return e;
	}
	return NULL;
}

static struct entry *free_entry(struct req_table *t)
{
	for (unsigned int i = 0; i < t->n; i++) {
		if (!t->e[i].used)
			return &t->e[i];
	}
	return NULL;
}

static void entry_set(struct entry *e, const char *key, uint64_t h)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->key, sizeof(e->key), "%s", key);
	e->hash = h;
	e->used = true;
}

static struct series *series_of(struct entry *e, uint32_t sub)
{
	struct series *s;

	for (unsigned int i = 0; i < e->nseries; i++) {
		if (e->series[i].sub == sub)
			return &e->series[i];
	}
	if (grow_array(&e->series, &e->cap, (size_t)e->nseries + 1, sizeof(*e->series), 4))
		return NULL;
	s = &e->series[e->nseries++];
	memset(s, 0, sizeof(*s));
	s->sub = sub;
	return s;
}

int req_table_pin(struct req_table *t, const char *key)
{
	uint64_t h = hash_key(key);
	struct entry *e = find(t, key, h);

	if (e)
		return 0;
	if (t->npinned == MAX_PINNED || !(e = free_entry(t)))
		return -ENOMEM;
	entry_set(e, key, h);
	e->labelled = e->pinned = true;
	t->npinned++;
	return 0;
}

/* The coldest candidate, to make room; NULL when there is none. */
static struct entry *coldest(struct req_table *t, bool labelled)
{
	struct entry *c = NULL;

	for (unsigned int i = 0; i < t->n; i++) {
		struct entry *e = &t->e[i];

		if (!e->used || e->pinned || e->labelled != labelled)
			continue;
		if (!c || e->score + (double)e->hits < c->score + (double)c->hits)
			c = e;
	}
	return c;
}

int req_table_observe(struct req_table *t, const char *key, uint32_t sub, uint64_t ns,
		      const struct req_parts *parts)
{
	uint64_t h = hash_key(key);
	struct entry *e = find(t, key, h);
	struct series *s;

	if (!e) {
		e = free_entry(t);
		if (e && t->labelled < t->k) {
			entry_set(e, key, h);
			e->labelled = true;
			t->labelled++;
		} else if (e && t->candidates < t->n - t->k - MAX_PINNED) {
			entry_set(e, key, h);
			t->candidates++;
		} else {
			/* Full: the coldest candidate makes room (it held no series). */
			e = coldest(t, false);
			if (e)
				entry_set(e, key, h);
		}
	}
	if (e)
		e->hits++;
	if (e && !e->labelled)
		e = NULL;
	if (parts)
		req_parts_add(e ? &e->parts : &t->other.parts, parts);
	s = series_of(e ? e : &t->other, sub);
	if (!s)
		return -ENOMEM;
	req_hist_add(&s->h, ns);
	return 0;
}

/* Folds a labelled entry's series into other and makes it a candidate. */
static void evict(struct req_table *t, struct entry *e)
{
	for (unsigned int i = 0; i < e->nseries; i++) {
		struct series *o = series_of(&t->other, e->series[i].sub);

		if (o)
			hist_merge(&o->h, &e->series[i].h);
	}
	free(e->series);
	e->series = NULL;
	e->nseries = 0;
	e->cap = 0;
	req_parts_add(&t->other.parts, &e->parts);
	memset(&e->parts, 0, sizeof(e->parts));
	e->labelled = false;
	t->labelled--;
	t->candidates++;
	t->evictions++;
}

unsigned int req_table_rotate(struct req_table *t)
{
	unsigned int moved = 0;

	for (unsigned int i = 0; i < t->n; i++) {
		struct entry *e = &t->e[i];

		if (!e->used)
			continue;
		e->score = e->score / 2 + (double)e->hits;
		e->hits = 0;
	}
	for (;;) {
		struct entry *hot = NULL, *cold = coldest(t, true);

		for (unsigned int i = 0; i < t->n; i++) {
			struct entry *e = &t->e[i];

			if (e->used && !e->labelled && (!hot || e->score > hot->score))
				hot = e;
		}
		if (!hot || !cold || hot->score <= 2 * cold->score + PROMOTE_MARGIN)
			break;
		evict(t, cold);
		hot->labelled = true;
		t->candidates--;
		t->labelled++;
		moved++;
	}
	return moved;
}

void req_table_foreach(const struct req_table *t, req_series_fn fn, void *arg)
{
	for (unsigned int i = 0; i < t->n; i++) {
		const struct entry *e = &t->e[i];

		if (!e->used || !e->labelled)
			continue;
		for (unsigned int j = 0; j < e->nseries; j++)
			fn(arg, e->key, e->series[j].sub, &e->series[j].h);
	}
	for (unsigned int j = 0; j < t->other.nseries; j++)
		fn(arg, NULL, t->other.series[j].sub, &t->other.series[j].h);
}

void req_table_foreach_parts(const struct req_table *t, req_parts_fn fn, void *arg)
{
	for (unsigned int i = 0; i < t->n; i++) {
		const struct entry *e = &t->e[i];

		if (e->used && e->labelled && (e->parts.sched || e->parts.pg))
			fn(arg, e->key, &e->parts);
	}
	if (t->other.parts.sched || t->other.parts.pg)
		fn(arg, NULL, &t->other.parts);
}

unsigned int req_table_labelled(const struct req_table *t)
{
	return t->labelled;
}

unsigned int req_table_candidates(const struct req_table *t)
{
	return t->candidates;
}

uint64_t req_table_evictions(const struct req_table *t)
{
	return t->evictions;
}
