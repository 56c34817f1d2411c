// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel's statement-head cache (bpf/pg.bpf.c es_pg_normalise()): the
 * normaliser resumed from a copy of its state at any byte gives the
 * fingerprint of one pass; heads end before the first word with a digit
 * or a quote; statements of one shape share a head; through a cache, hit
 * or miss, every fingerprint equals the stepwise reference.
 */
#include <stdint.h>
#include <string.h>
#include <linux/types.h>

#include "check.h"
#include "sqlgen.h"
#include "pg/pg_normalize.h"
#include "../bpf/pg_norm.h"

/* The state after feeding text[0..split) as the kernel's chunks do. */
static void feed(struct es_pg_norm *n, const char *text, uint32_t from, uint32_t to)
{
	for (uint32_t i = from; i < to;)
		i = es_pg_norm_chunk(n, text, i, to, ~0u);
}

/* One pass, stopping at split to continue from a copy of the state. */
static uint64_t fp_split(const char *text, uint32_t len, uint32_t split)
{
	struct es_pg_norm a, b;

	es_pg_norm_init(&a);
	feed(&a, text, 0, split);
	memcpy(&b, &a, sizeof(b));
	memset(&a, 0xa5, sizeof(a)); /* nothing of the first pass may be used */
	feed(&b, text, split, len);
	return es_pg_norm_finish(&b, len);
}

/* The head as the kernel finds it: its length in bytes and its hash. */
static uint32_t head_of(const char *text, uint32_t len, uint64_t *hash)
{
	uint64_t h = ES_PG_FNV_BASIS, w, prev = 0;
	uint32_t k = 0;

	for (; k < len / 8; k++) {
		memcpy(&w, text + 8 * k, 8);
		if (!es_pg_head_word(w, prev))
			break;
		h = es_pg_head_mix(h, w);
		prev = w;
	}
	*hash = h;
	return 8 * k;
}

/* A small cache of head states, as pg_heads holds them. */
#define SLOTS 64
static struct {
	uint64_t hash;
	uint32_t len;
	struct es_pg_norm n;
} cache[SLOTS];
static int hits, misses;

static uint64_t fp_cached(const char *text, uint32_t len)
{
	struct es_pg_norm n;
	uint64_t hash;
	uint32_t head = head_of(text, len, &hash), pos = 0;

	es_pg_norm_init(&n);
	if (head >= 16) {
		unsigned int s = (unsigned int)(hash % SLOTS);

		if (cache[s].len == head && cache[s].hash == hash) {
			memcpy(&n, &cache[s].n, sizeof(n));
			pos = head;
			hits++;
		} else {
			feed(&n, text, 0, head);
			cache[s].hash = hash;
			cache[s].len = head;
			memcpy(&cache[s].n, &n, sizeof(n));
			pos = head;
			misses++;
		}
	}
	feed(&n, text, pos, len);
	return es_pg_norm_finish(&n, len);
}

static void test_heads(void)
{
	const char *a = "SELECT abalance FROM pgbench_accounts WHERE aid = 12345;";
	const char *b = "SELECT abalance FROM pgbench_accounts WHERE aid = 7;";
	const char *c = "SELECT abalance FROM pgbench_accounts WHERE aid > 7;";
	uint64_t ha, hb, hc;

	/* "SELECT abalance FROM pgbench_accounts WHERE aid " is 48 bytes. */
	CHECK_INT(head_of(a, strlen(a), &ha), 48);
	CHECK_INT(head_of(b, strlen(b), &hb), 48);
	CHECK(ha == hb);
	/* The same head, another statement: the tail tells them apart. */
	CHECK_INT(head_of(c, strlen(c), &hc), 48);
	CHECK(fp_cached(a, strlen(a)) == fp_cached(b, strlen(b)));
	CHECK(fp_cached(a, strlen(a)) != fp_cached(c, strlen(c)));
	CHECK(fp_cached(c, strlen(c)) == pg_fingerprint_stepwise(c, strlen(c), NULL));
	/* A quote or a digit that starts a number in the first word: no head. */
	CHECK_INT(head_of("SELECT '1' FROM t", 17, &ha), 0);
	CHECK_INT(head_of("SELECT 1 FROM tab", 17, &ha), 0);
	CHECK_INT(head_of("SELECT(1) FROM ta", 17, &ha), 0);
	/* A digit glued to a name is not a number: in this word or across words. */
	CHECK_INT(head_of("SELECT1 FROM tab", 16, &ha), 16);
	CHECK_INT(head_of("SELECT x_field_1 FROM t WHERE a = 3", 35, &ha), 32);
	CHECK_INT(head_of("SELECT street2, x FROM t", 24, &ha), 24);
	CHECK_INT(head_of("SELECT a FROM tab_2024 WHERE x = 1", 34, &ha), 32);
	/* Odoo's long prefetch: the whole column list is head, up to the id list. */
	{
		char q[2048];
		int n = snprintf(q, sizeof(q), "SELECT ");

		for (int i = 0; i < 40; i++)
			n += snprintf(q + n, sizeof(q) - n, "\"res_partner\".\"street%d\" AS \"street%d\", ",
				      i, i);
		n += snprintf(q + n, sizeof(q) - n, "\"res_partner\".\"id\" AS \"id\" FROM \"res_partner\" WHERE \"res_partner\".id IN (1, 2, 3)");
		CHECK(head_of(q, (uint32_t)n, &ha) >= (uint32_t)n - 32);
		CHECK(fp_cached(q, (uint32_t)n) == pg_fingerprint_stepwise(q, (uint32_t)n, NULL));
		CHECK(fp_cached(q, (uint32_t)n) == pg_fingerprint_stepwise(q, (uint32_t)n, NULL));
	}
	/* Odoo's quoted names are heads; its string literal is not. */
	CHECK_INT(head_of("SELECT \"res_partner\".\"id\" FROM \"res_partner\" WHERE name = 'x'", 62,
			  &ha),
		  56);
	/* Bytes of 0x80 and above (UTF-8) are not digits. */
	CHECK_INT(head_of("SELECT \xc3\xa9t\xc3\xa9 FROM t WHERE x = 1", 30, &ha), 24);
}

static void test_random(void)
{
	uint64_t seed = 7;
	char in[512];
	int bad_split = 0, bad_cache = 0;

	for (int iter = 0; iter < 30000; iter++) {
		uint32_t n;
		uint64_t want;

		n = (uint32_t)sqlgen(&seed, in, sizeof(in));
		want = pg_fingerprint_stepwise(in, n, NULL);
		for (uint32_t s = 0; s <= n; s++) {
			if (fp_split(in, n, s) != want && bad_split++ < 3)
				fprintf(stderr, "split at %u differs: [%s]\n", s, in);
		}
		/* Twice: a miss that fills the cache, then (often) a hit. */
		for (int twice = 0; twice < 2; twice++) {
			if (fp_cached(in, n) != want && bad_cache++ < 3)
				fprintf(stderr, "cached differs: [%s]\n", in);
		}
	}
	CHECK_INT(bad_split, 0);
	CHECK_INT(bad_cache, 0);
	/* The cache was exercised both ways. */
	CHECK(hits > 1000);
	CHECK(misses > 1000);
}

int main(void)
{
	test_heads();
	test_random();
	return check_summary("test_pg_head");
}
