// SPDX-License-Identifier: GPL-2.0
/*
 * The statement normaliser: normalised text and command for known inputs,
 * which statements share a fingerprint and which do not, the fast path
 * (what the kernel runs) against stepping every byte, idempotence, and on
 * random SQL-ish input that no literal survives.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sqlgen.h"
#include "pg/pg_normalize.h"

static const char *norm(const char *in, struct pg_norm_result *r)
{
	static char out[8192];
	struct pg_norm_result tmp;

	pg_normalize(in, strlen(in), out, sizeof(out), r ? r : &tmp);
	return out;
}

static uint64_t fp(const char *in)
{
	struct pg_norm_result r;

	norm(in, &r);
	return r.fp;
}

struct tcase {
	const char *in, *out, *cmd;
};

static const struct tcase cases[] = {
	{ "SELECT * FROM t WHERE id = 5", "SELECT * FROM t WHERE id = ?", "SELECT" },
	{ "  select *\n\tfrom T where ID=77 -- trailing comment", "select * from T where ID=?",
	  "SELECT" },
	{ "SELECT 1.5e-3, .5, 0x1F, 1e10", "SELECT ?, .?, ?, ?", "SELECT" },
	{ "SELECT 'it''s', E'a\\'b\\\\', 'C:\\', 'x'", "SELECT ?, ?, ?, ?", "SELECT" },
	{ "SELECT $$a 'b' $$, $fn$ x $y$ $fn$, $1", "SELECT ?, ?, ?", "SELECT" },
	{ "SELECT b'0101', x'ff', n'nat', e'\\n'", "SELECT ?, ?, ?, ?", "SELECT" },
	{ "WHERE a IN (1, 2, 3) AND b IN ('x') AND c NOT IN (1,2)",
	  "WHERE a IN (?) AND b IN (?) AND c NOT IN (?)", "OTHER" },
	{ "WHERE a IN (1, f(2), 3, 4)", "WHERE a IN (?, f(?), ?)", "OTHER" },
	{ "WHERE a IN (SELECT id FROM t WHERE x = 1)", "WHERE a IN (SELECT id FROM t WHERE x = ?)",
	  "OTHER" },
	{ "WHERE a = ANY(ARRAY[1,2,3])", "WHERE a = ANY(ARRAY[?])", "OTHER" },
	{ "UPDATE t SET a = NULL, b = true, c = FALSE WHERE d IS NULL AND e IS NOT TRUE",
	  "UPDATE t SET a = ?, b = ?, c = ? WHERE d IS NULL AND e IS NOT TRUE", "UPDATE" },
	{ "update t set a=a-1, b=-1, c = x -2", "update t set a=a-?, b=?, c = x -?", "UPDATE" },
	{ "INSERT INTO \"Res\"\"Partner\" (a) VALUES (1)",
	  "INSERT INTO \"Res\"\"Partner\" (a) VALUES (?)", "INSERT" },
	{ "DELETE FROM t/*x*/WHERE/* a 'b' */id=1", "DELETE FROM t WHERE id=?", "DELETE" },
	{ "BEGIN", "BEGIN", "BEGIN" },
	{ "start transaction", "start transaction", "BEGIN" },
	{ "COMMIT", "COMMIT", "COMMIT" },
	{ "end", "end", "COMMIT" },
	{ "ROLLBACK TO SAVEPOINT s1", "ROLLBACK TO SAVEPOINT s1", "ROLLBACK" },
	{ "abort", "abort", "ROLLBACK" },
	{ "SAVEPOINT \"s1\"", "SAVEPOINT \"s1\"", "OTHER" },
	{ "WITH x AS (SELECT 1) SELECT * FROM x", "WITH x AS (SELECT ?) SELECT * FROM x", "OTHER" },
	{ "SELECT a::text, b->>'k', c @> '{}'", "SELECT a::text, b->>?, c @> ?", "SELECT" },
	{ "SELECT ? , $2", "SELECT ? , ?", "SELECT" },
	{ "SELECT 'unterminated", "SELECT ?", "SELECT" },
	{ "SELECT $$unterminated", "SELECT ?", "SELECT" },
	{ "SELECT 1 -", "SELECT ? -", "SELECT" },
	{ "", "", "OTHER" },
	{ "-- only a comment", "", "OTHER" },
};

static void test_cases(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pg_norm_result r;
		const char *out = norm(cases[i].in, &r);

		CHECK_STR(out, cases[i].out);
		CHECK_STR(pg_cmd_name(r.cmd), cases[i].cmd);
		CHECK(r.fp != 0);
		CHECK_INT(r.len, strlen(cases[i].out));
	}
}

static void test_same_and_different(void)
{
	/* Literals, whitespace, comments and keyword case do not matter. */
	CHECK(fp("SELECT * FROM t WHERE id = 5") == fp("select  *  from t where id=77 /* c */"));
	CHECK(fp("SELECT name FROM p WHERE name = 'a''b\\' AND id IN (1)") ==
	      fp("SELECT name FROM p WHERE name = 'zz' AND id IN (1,2,3,4,5,6,7,8,9,10)"));
	CHECK(fp("SELECT x FROM t WHERE y = E'\\'q'") == fp("SELECT x FROM t WHERE y = 'q'"));
	CHECK(fp("SELECT a FROM t WHERE b = true") == fp("SELECT a FROM t WHERE b = 42"));
	CHECK(fp("SELECT a FROM t WHERE b = -5") == fp("SELECT a FROM t WHERE b = 5"));
	CHECK(fp("SELECT $a$x$a$") == fp("SELECT 'x'"));
	/* Identifiers, operators and structure do. */
	CHECK(fp("SELECT * FROM t WHERE id = 5") != fp("SELECT * FROM u WHERE id = 5"));
	CHECK(fp("SELECT * FROM t WHERE id = 5") != fp("SELECT * FROM t WHERE id > 5"));
	CHECK(fp("SELECT * FROM \"T\"") != fp("SELECT * FROM \"t\""));
	CHECK(fp("WHERE a IS NULL") != fp("WHERE a = NULL"));
	CHECK(fp("WHERE a IN (1, x)") != fp("WHERE a IN (1)"));
	CHECK(fp("SELECT 1") != fp("SELECT 1, 2"));
	/* The text ends at the first NUL, as the kernel reads it. */
	{
		struct pg_norm_result a, b;
		char out[64];

		pg_normalize("SELECT 1\0DROP", 13, out, sizeof(out), &a);
		CHECK_STR(out, "SELECT ?");
		pg_normalize("SELECT 1", 8, out, sizeof(out), &b);
		CHECK(a.fp == b.fp);
	}
}

static void test_truncation(void)
{
	const char *in = "SELECT alpha, beta, gamma, delta FROM t WHERE x = 1";
	struct pg_norm_result full, cut;
	char out[20];

	norm(in, &full);
	memset(out, 'Z', sizeof(out));
	pg_normalize(in, strlen(in), out, sizeof(out), &cut);
	CHECK(cut.truncated);
	CHECK(cut.fp == full.fp);
	CHECK(strlen(out) < sizeof(out));
	CHECK(strlen(out) >= 3 && !strcmp(out + strlen(out) - 3, "..."));
	pg_normalize(in, strlen(in), out, 1, &cut);
	CHECK_STR(out, "");
	pg_normalize(in, strlen(in), NULL, 0, &cut);
	CHECK(cut.fp == full.fp && cut.len == 0);
}

/* No literal survives: nothing outside "quoted identifiers" is a quote, and no word starts with a digit. */
static int literal_free(const char *s)
{
	int in_q = 0, word = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		int wc = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			 c >= 0x80 || (c >= '0' && c <= '9') || c == '$';

		if (in_q) {
			if (c == '"')
				in_q = 0;
			continue;
		}
		if (c == '"') {
			in_q = 1;
			word = 0;
			continue;
		}
		if (c == '\'')
			return 0;
		if (wc && !word && c >= '0' && c <= '9')
			return 0;
		word = wc;
	}
	return 1;
}

static void test_random(void)
{
	uint64_t seed = 42;
	char in[512], out[600], again[600];
	int bad_eq = 0, bad_lit = 0, bad_idem = 0;

	for (int iter = 0; iter < 100000; iter++) {
		struct pg_norm_result r, r2;
		size_t n;
		unsigned int toks;

		n = sqlgen(&seed, in, sizeof(in));
		pg_normalize(in, n, out, sizeof(out), &r);
		if (pg_fingerprint_stepwise(in, n, &toks) != r.fp || toks != r.tokens)
			bad_eq++;
		if (!literal_free(out)) {
			if (bad_lit++ < 3)
				fprintf(stderr, "literal survived: [%s] -> [%s]\n", in, out);
		}
		pg_normalize(out, strlen(out), again, sizeof(again), &r2);
		if (r2.fp != r.fp || strcmp(again, out)) {
			if (bad_idem++ < 3)
				fprintf(stderr, "not idempotent: [%s] -> [%s] -> [%s]\n", in, out,
					again);
		}
	}
	CHECK_INT(bad_eq, 0);
	CHECK_INT(bad_lit, 0);
	CHECK_INT(bad_idem, 0);
}

int main(void)
{
	test_cases();
	test_same_and_different();
	test_truncation();
	test_random();
	return check_summary("test_pg_normalize");
}
