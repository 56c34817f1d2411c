// SPDX-License-Identifier: GPL-2.0
/* The slowest requests of the last window, by role (requests/req_slow.h). */
#include <stdlib.h>
#include <string.h>

#include "requests/req_slow.h"

/* The slices of the window, and the one being filled. */
#define NSLOTS (REQ_SLOW_SLICES + 1)

struct slice {
	uint64_t idx; /* end_ns / slice_ns of its requests, + 1 (0: empty) */
	unsigned int n;
	struct req_slow_entry *e; /* k of them */
};

struct req_slow {
	unsigned int nroles, k;
	uint64_t window_ns, slice_ns;
	struct slice *slices; /* nroles * NSLOTS */
	struct req_slow_entry *pool;
};

struct req_slow *req_slow_new(unsigned int nroles, unsigned int k, uint64_t window_ns)
{
	struct req_slow *s = calloc(1, sizeof(*s));
	unsigned int n = nroles * NSLOTS;

	if (!s)
		return NULL;
	s->nroles = nroles;
	s->k = k ? k : 1;
	s->window_ns = window_ns ? window_ns : 1;
	s->slice_ns = s->window_ns / REQ_SLOW_SLICES ? s->window_ns / REQ_SLOW_SLICES : 1;
	s->slices = calloc(n ? n : 1, sizeof(*s->slices));
	s->pool = calloc((size_t)(n ? n : 1) * s->k, sizeof(*s->pool));
	if (!s->slices || !s->pool) {
		req_slow_free(s);
		return NULL;
	}
	for (unsigned int i = 0; i < n; i++)
		s->slices[i].e = &s->pool[(size_t)i * s->k];
	return s;
}

void req_slow_free(struct req_slow *s)
{
	if (!s)
		return;
	free(s->slices);
	free(s->pool);
	free(s);
}

struct req_slow_entry *req_slow_place(struct req_slow *s, unsigned int role, uint64_t end_ns,
				      uint64_t ns)
{
	uint64_t idx;
	struct slice *sl;
	unsigned int min = 0;

	if (!s || role >= s->nroles)
		return NULL;
	idx = end_ns / s->slice_ns + 1;
	sl = &s->slices[role * NSLOTS + idx % NSLOTS];
	if (sl->idx > idx)
		return NULL; /* older than what its slot holds now: out of the window */
	if (sl->idx != idx) {
		sl->idx = idx;
		sl->n = 0;
	}
	if (sl->n < s->k)
		return &sl->e[sl->n++];
	for (unsigned int i = 1; i < sl->n; i++) {
		if (sl->e[i].ns < sl->e[min].ns)
			min = i;
	}
	return ns > sl->e[min].ns ? &sl->e[min] : NULL;
}

static int slower_first(const void *a, const void *b)
{
	const struct req_slow_entry *x = a, *y = b;

	if (x->ns != y->ns)
		return x->ns < y->ns ? 1 : -1;
	return x->end_ns < y->end_ns ? 1 : x->end_ns > y->end_ns ? -1 : 0;
}

unsigned int req_slow_get(const struct req_slow *s, unsigned int role, uint64_t now_ns,
			  struct req_slow_entry *out, unsigned int max)
{
	struct req_slow_entry *buf;
	uint64_t from;
	unsigned int n = 0;

	if (!s || role >= s->nroles || !max)
		return 0;
	from = now_ns > s->window_ns ? now_ns - s->window_ns : 0;
	buf = calloc((size_t)NSLOTS * s->k, sizeof(*buf));
	if (!buf)
		return 0;
	for (unsigned int i = 0; i < NSLOTS; i++) {
		const struct slice *sl = &s->slices[role * NSLOTS + i];

		for (unsigned int j = 0; sl->idx && j < sl->n; j++) {
			if (sl->e[j].end_ns > from && sl->e[j].end_ns <= now_ns)
				buf[n++] = sl->e[j];
		}
	}
	qsort(buf, n, sizeof(*buf), slower_first);
	if (n > max)
		n = max;
	if (n > s->k)
		n = s->k;
	memcpy(out, buf, n * sizeof(*out));
	free(buf);
	return n;
}
