// SPDX-License-Identifier: GPL-2.0
#include "pg/pg_senders.h"
#include "core/grow.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static uint64_t str_hash(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

static uint64_t sender_hash(const struct pg_sender *x)
{
	uint64_t h = (x->fp ^ ((uint64_t)x->db << 32)) * 0x9e3779b97f4a7c15ull;

	h = str_hash(h ^ 0xcbf29ce484222325ull, x->role);
	return str_hash(h * 31, x->worker);
}

static int same(const struct pg_sender *a, const struct pg_sender *b)
{
	return a->fp == b->fp && a->db == b->db && !strcmp(a->role, b->role) &&
	       !strcmp(a->worker, b->worker);
}

static int grow_index(struct pg_senders *s)
{
	size_t cap = s->ixcap ? s->ixcap * 2 : 256, mask = cap - 1;
	uint32_t *ix = calloc(cap, sizeof(*ix));

	if (!ix)
		return -ENOMEM;
	for (size_t i = 0; i < s->n; i++) {
		size_t k = sender_hash(&s->v[i]) & mask;

		while (ix[k])
			k = (k + 1) & mask;
		ix[k] = (uint32_t)i + 1;
	}
	free(s->ix);
	s->ix = ix;
	s->ixcap = cap;
	return 0;
}

int pg_senders_add(struct pg_senders *s, const struct pg_sender *x)
{
	size_t k, mask;

	if ((s->n + 1) * 2 > s->ixcap && grow_index(s))
		return -ENOMEM;
	mask = s->ixcap - 1;
	for (k = sender_hash(x) & mask; s->ix[k]; k = (k + 1) & mask) {
		struct pg_sender *y = &s->v[s->ix[k] - 1];

		if (same(x, y)) {
			y->calls += x->calls;
			return 0;
		}
	}
	if (s->max && s->n >= s->max) {
		s->dropped++;
		return -ENOSPC;
	}
	if (grow_array(&s->v, &s->cap, s->n + 1, sizeof(*s->v), 64))
		return -ENOMEM;
	s->v[s->n] = *x;
	s->ix[k] = (uint32_t)++s->n;
	return 0;
}

static int by_fp_client(const void *a, const void *b)
{
	const struct pg_sender *x = a, *y = b;
	int c;

	if (x->fp != y->fp)
		return x->fp < y->fp ? -1 : 1;
	c = strcmp(x->role, y->role);
	if (c)
		return c;
	c = strcmp(x->worker, y->worker);
	if (c)
		return c;
	return x->db < y->db ? -1 : x->db > y->db;
}

void pg_senders_seal(struct pg_senders *s)
{
	free(s->ix);
	s->ix = NULL;
	s->ixcap = 0;
	if (s->n)
		qsort(s->v, s->n, sizeof(*s->v), by_fp_client);
}

/* Keeps out[] the top max by calls, most first (insertion: max is small). */
static size_t keep_top(struct pg_sender *out, size_t n, size_t max, const struct pg_sender *x)
{
	size_t i;

	if (n == max && (!max || out[max - 1].calls >= x->calls))
		return n;
	i = n < max ? n++ : max - 1;
	while (i > 0 && out[i - 1].calls < x->calls) {
		out[i] = out[i - 1];
		i--;
	}
	out[i] = *x;
	return n;
}

size_t pg_senders_of(const struct pg_senders *s, uint64_t fp, uint32_t db,
		     struct pg_sender *out, size_t max)
{
	size_t lo = 0, hi = s->n, n = 0;
	struct pg_sender cur;
	bool have = false;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->v[mid].fp < fp)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < s->n && s->v[i].fp == fp; i++) {
		const struct pg_sender *x = &s->v[i];

		if (x->db != db && x->db != PG_SENDER_ANY_DB)
			continue;
		if (have && !strcmp(cur.role, x->role) && !strcmp(cur.worker, x->worker)) {
			cur.calls += x->calls;
			continue;
		}
		if (have)
			n = keep_top(out, n, max, &cur);
		cur = *x;
		cur.db = db;
		have = true;
	}
	if (have)
		n = keep_top(out, n, max, &cur);
	return n;
}

void pg_senders_free(struct pg_senders *s)
{
	free(s->v);
	free(s->ix);
	memset(s, 0, sizeof(*s));
}
