// SPDX-License-Identifier: GPL-2.0
/*
 * The request tag registry (core/reqtag.h): requests by tag in a chained
 * hash over a fixed pool, triples interned to label ids likewise.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/reqtag.h"
#include "core/strcopy.h"

#define NONE (-1)

struct req_ent {
	uint64_t tag;
	uint64_t ended_ms; /* 0: in flight */
	int32_t next; /* hash chain, or free list */
	uint16_t label;
	bool used;
};

struct label_ent {
	struct reqtag_label l;
	uint64_t last_ms;
	uint32_t hash;
	int32_t next; /* hash chain */
	int32_t older, newer; /* the use list (0: end) */
	bool used;
};

struct reqtags {
	uint64_t keep_ms;
	struct req_ent reqs[REQTAG_REQS];
	int32_t rbuckets[REQTAG_REQS];
	int32_t rfree;
	unsigned int nreqs;
	struct label_ent labels[REQTAG_LABELS]; /* [0] unused: id 0 is "none" */
	int32_t lbuckets[REQTAG_LABELS];
	int32_t oldest, newest; /* used labels by last use, 0 when none */
	int32_t nlabels; /* ids handed out so far (1 .. nlabels) */
	uint64_t full;
	bool reader;
	void (*sync)(void *);
	void *sync_arg;
};

struct reqtags *reqtags_new(uint64_t keep_ms)
{
	struct reqtags *rt = calloc(1, sizeof(*rt));

	if (!rt)
		return NULL;
	rt->keep_ms = keep_ms;
	for (int i = 0; i < REQTAG_REQS; i++) {
		rt->rbuckets[i] = NONE;
		rt->reqs[i].next = i + 1 < REQTAG_REQS ? i + 1 : NONE;
	}
	for (int i = 0; i < REQTAG_LABELS; i++)
		rt->lbuckets[i] = NONE;
	return rt;
}

void reqtags_free(struct reqtags *rt)
{
	free(rt);
}

static unsigned int rbucket(uint64_t tag)
{
	return (unsigned int)((tag ^ tag >> 32) % REQTAG_REQS);
}

static int32_t req_find(const struct reqtags *rt, uint64_t tag)
{
	int32_t i = rt->rbuckets[rbucket(tag)];

	while (i != NONE && rt->reqs[i].tag != tag)
		i = rt->reqs[i].next;
	return i;
}

static void req_remove(struct reqtags *rt, int32_t idx)
{
	int32_t *pp = &rt->rbuckets[rbucket(rt->reqs[idx].tag)];

	while (*pp != idx)
		pp = &rt->reqs[*pp].next;
	*pp = rt->reqs[idx].next;
	rt->reqs[idx] = (struct req_ent){ .next = rt->rfree };
	rt->rfree = idx;
	rt->nreqs--;
}

/* Forgets ended requests past their grace (all ended ones with force). */
static void req_expire(struct reqtags *rt, uint64_t now_ms, bool force)
{
	for (int32_t i = 0; i < REQTAG_REQS; i++) {
		const struct req_ent *r = &rt->reqs[i];

		if (r->used && r->ended_ms && (force || r->ended_ms + REQTAG_GRACE_MS <= now_ms))
			req_remove(rt, i);
	}
}

static uint32_t label_hash(const char *route, const char *model, const char *method)
{
	const char *parts[3] = { route, model, method };
	uint32_t h = 2166136261u;

	for (int p = 0; p < 3; p++) {
		for (const char *s = parts[p]; *s; s++)
			h = (h ^ (unsigned char)*s) * 16777619u;
		h = (h ^ 0xff) * 16777619u;
	}
	return h;
}

/* Out of the use list. */
static void use_unlink(struct reqtags *rt, int32_t id)
{
	struct label_ent *e = &rt->labels[id];

	if (e->older)
		rt->labels[e->older].newer = e->newer;
	else
		rt->oldest = e->newer;
	if (e->newer)
		rt->labels[e->newer].older = e->older;
	else
		rt->newest = e->older;
	e->older = e->newer = 0;
}

/* Used now: to the new end of the use list. */
static void label_touch(struct reqtags *rt, int32_t id, uint64_t now_ms)
{
	struct label_ent *e = &rt->labels[id];

	if (rt->newest != id) {
		if (e->older || e->newer || rt->oldest == id)
			use_unlink(rt, id);
		e->older = rt->newest;
		if (rt->newest)
			rt->labels[rt->newest].newer = id;
		else
			rt->oldest = id;
		rt->newest = id;
	}
	e->last_ms = now_ms;
}

static void label_unlink(struct reqtags *rt, int32_t id)
{
	int32_t *pp = &rt->lbuckets[rt->labels[id].hash % REQTAG_LABELS];

	while (*pp != id)
		pp = &rt->labels[*pp].next;
	*pp = rt->labels[id].next;
	use_unlink(rt, id);
	rt->labels[id].used = false;
	/* No request may keep pointing at a reused id. */
	for (int32_t i = 0; i < REQTAG_REQS; i++) {
		if (rt->reqs[i].used && rt->reqs[i].label == id)
			req_remove(rt, i);
	}
}

/* A new id, or the least recently used one idle for keep_ms; 0 when none. */
static int32_t label_slot(struct reqtags *rt, uint64_t now_ms)
{
	int32_t lru = rt->oldest;

	if (rt->nlabels < REQTAG_LABELS - 1)
		return ++rt->nlabels;
	if (!lru || rt->labels[lru].last_ms + rt->keep_ms > now_ms)
		return 0;
	label_unlink(rt, lru);
	return lru;
}

static uint16_t label_intern(struct reqtags *rt, const char *route, const char *model,
			     const char *method, uint64_t now_ms)
{
	struct reqtag_label want;
	uint32_t h;
	int32_t id;

	str_copy(want.route, sizeof(want.route), route);
	str_copy(want.model, sizeof(want.model), model);
	str_copy(want.method, sizeof(want.method), method);
	h = label_hash(want.route, want.model, want.method);
	for (id = rt->lbuckets[h % REQTAG_LABELS]; id != NONE; id = rt->labels[id].next) {
		const struct reqtag_label *l = &rt->labels[id].l;

		if (rt->labels[id].hash == h && !strcmp(l->route, want.route) &&
		    !strcmp(l->model, want.model) && !strcmp(l->method, want.method))
			break;
	}
	if (id == NONE) {
		id = label_slot(rt, now_ms);
		if (!id)
			return 0;
		rt->labels[id] = (struct label_ent){
			.l = want, .hash = h, .used = true, .next = rt->lbuckets[h % REQTAG_LABELS]
		};
		rt->lbuckets[h % REQTAG_LABELS] = id;
	}
	label_touch(rt, id, now_ms);
	return (uint16_t)id;
}

int reqtags_begin(struct reqtags *rt, uint64_t tag, const char *route, const char *model,
		  const char *method, uint64_t now_ms)
{
	unsigned int b = rbucket(tag);
	uint16_t label;
	int32_t i;

	if (!rt || !rt->reader || !tag || req_find(rt, tag) != NONE)
		return 0;
	if (rt->rfree == NONE)
		req_expire(rt, now_ms, true);
	label = rt->rfree == NONE ? 0 : label_intern(rt, route, model, method, now_ms);
	if (!label) {
		rt->full++;
		return -ENOSPC;
	}
	i = rt->rfree;
	rt->rfree = rt->reqs[i].next;
	rt->reqs[i] = (struct req_ent){
		.tag = tag, .label = label, .used = true, .next = rt->rbuckets[b]
	};
	rt->rbuckets[b] = i;
	rt->nreqs++;
	return 0;
}

void reqtags_end(struct reqtags *rt, uint64_t tag, uint64_t now_ms)
{
	/* Nothing begun (no reader): not even a bucket to look at. */
	int32_t i = rt && rt->nreqs && tag ? req_find(rt, tag) : NONE;

	if (i != NONE && !rt->reqs[i].ended_ms)
		rt->reqs[i].ended_ms = now_ms ? now_ms : 1;
}

void reqtags_set_writer(struct reqtags *rt, void (*sync)(void *), void *arg)
{
	if (!rt)
		return;
	rt->sync = sync;
	rt->sync_arg = arg;
}

void reqtags_set_reader(struct reqtags *rt, bool on)
{
	if (rt)
		rt->reader = on;
}

bool reqtags_has_reader(const struct reqtags *rt)
{
	return rt && rt->reader;
}

bool reqtags_has_writer(const struct reqtags *rt)
{
	return rt && rt->sync;
}

void reqtags_sync(struct reqtags *rt, uint64_t now_ms)
{
	if (!rt)
		return;
	if (rt->sync)
		rt->sync(rt->sync_arg);
	req_expire(rt, now_ms, false);
}

uint16_t reqtags_resolve(struct reqtags *rt, uint64_t tag, uint64_t now_ms)
{
	int32_t i = rt && tag ? req_find(rt, tag) : NONE;
	uint16_t id;

	if (i == NONE)
		return 0;
	id = rt->reqs[i].label;
	label_touch(rt, id, now_ms);
	return id;
}

const struct reqtag_label *reqtags_label(const struct reqtags *rt, uint16_t id)
{
	if (!rt || !id || id >= REQTAG_LABELS || !rt->labels[id].used)
		return NULL;
	return &rt->labels[id].l;
}

uint64_t reqtags_full(const struct reqtags *rt)
{
	return rt ? rt->full : 0;
}
