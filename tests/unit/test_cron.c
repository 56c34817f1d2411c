// SPDX-License-Identifier: GPL-2.0
/* Odoo cron runs: the per-cron table and its bound, a run's parts, names from reprs. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "core/expo.h"
#include "cron/cron.h"

static void test_names(void)
{
	char out[CRON_NAME_MAX];

	cron_name_from_repr("'Mail: Fetchmail Service'", out, sizeof(out));
	CHECK_STR(out, "Mail: Fetchmail Service");
	cron_name_from_repr("'it\\'s a \\\\ path'", out, sizeof(out));
	CHECK_STR(out, "it's a \\ path");
	/* cut by the repr: no closing quote, the dots stay */
	cron_name_from_repr("'a long name...", out, sizeof(out));
	CHECK_STR(out, "a long name...");
	/* an escaped quote at the end is no closing quote */
	cron_name_from_repr("'x\\'", out, sizeof(out));
	CHECK_STR(out, "x'");
	cron_name_from_repr("'tab\\there'", out, sizeof(out));
	CHECK_STR(out, "tab\\there");
	cron_name_from_repr("42", out, sizeof(out));
	CHECK_STR(out, "42");
	cron_name_from_repr("?", out, sizeof(out));
	CHECK_STR(out, "?");
	cron_name_from_repr("''", out, sizeof(out));
	CHECK_STR(out, "");
	cron_name_from_repr("'abcdef'", out, 4);
	CHECK_STR(out, "abc");
}

static void test_split(void)
{
	uint64_t none[CRON_OFF_COUNT] = { 0 }, some[CRON_OFF_COUNT] = { 1, 1, 2 };
	uint64_t p[CRON_PART_COUNT];

	/* no off-CPU samples: the rest is sleep */
	cron_split(1000, 300, 100, none, p);
	CHECK_INT(p[CRON_PART_CPU], 300);
	CHECK_INT(p[CRON_PART_RUNQUEUE], 100);
	CHECK_INT(p[CRON_PART_IOWAIT], 0);
	CHECK_INT(p[CRON_PART_BLOCKED], 0);
	CHECK_INT(p[CRON_PART_SLEEP], 600);
	/* in proportion to the samples, adding up to the duration */
	cron_split(1000, 200, 0, some, p);
	CHECK_INT(p[CRON_PART_IOWAIT], 200);
	CHECK_INT(p[CRON_PART_BLOCKED], 200);
	CHECK_INT(p[CRON_PART_SLEEP], 400);
	cron_split(1001, 0, 0, (uint64_t[]){ 1, 1, 1 }, p);
	CHECK_INT(p[CRON_PART_IOWAIT] + p[CRON_PART_BLOCKED] + p[CRON_PART_SLEEP], 1001);
	/* CPU past the estimated duration: no off-CPU time, CPU kept as measured */
	cron_split(100, 150, 10, some, p);
	CHECK_INT(p[CRON_PART_CPU], 150);
	CHECK_INT(p[CRON_PART_RUNQUEUE], 10);
	CHECK_INT(p[CRON_PART_IOWAIT] + p[CRON_PART_BLOCKED] + p[CRON_PART_SLEEP], 0);
}

struct seen {
	unsigned int n;
	char names[8][CRON_NAME_MAX];
	struct cron_stats last;
};

static void collect_one(void *arg, const struct cron_stats *s)
{
	struct seen *sn = arg;

	if (sn->n < 8)
		snprintf(sn->names[sn->n], CRON_NAME_MAX, "%s", s->name);
	sn->n++;
	sn->last = *s;
}

static void test_table(void)
{
	struct cron_table *t = cron_table_new(2);
	struct cron_run r = { .name = "A", .dur_ns = 500000000, .result = CRON_OK, .end_unix = 100 };
	struct seen sn = { 0 };
	struct expo e;

	CHECK(t != NULL);
	r.part_ns[CRON_PART_SLEEP] = 500000000;
	CHECK_INT(cron_table_add(t, &r), 0);
	r.end_unix = 50; /* an older end does not move last_success back */
	CHECK_INT(cron_table_add(t, &r), 0);
	r.name = "C";
	r.result = CRON_FAILED;
	r.end_unix = 200;
	r.dur_ns = 3600ull * 1000000000ull + 1; /* above the last edge */
	CHECK_INT(cron_table_add(t, &r), 0);
	/* a third name past the bound of 2 goes to other */
	r.name = "D";
	CHECK(cron_table_add(t, &r) != 0);
	cron_table_foreach(t, collect_one, &sn);
	CHECK_INT(sn.n, 3);
	CHECK_STR(sn.names[0], "A");
	CHECK_STR(sn.names[1], "C");
	CHECK_STR(sn.names[2], "other");
	CHECK_INT(sn.last.runs[CRON_FAILED], 1);
	CHECK(sn.last.last_success == 0);
	CHECK_INT(sn.last.buckets[CRON_NEDGES], 1);

	expo_init(&e, EXPO_TEXT_004);
	cron_collect(t, &e);
	CHECK_INT(expo_finish(&e), 0);
	CHECK(strstr(e.buf,
		     "erpscope_odoo_cron_duration_seconds_bucket{cron=\"A\",le=\"0.5\"} 2\n"));
	CHECK(strstr(e.buf,
		     "erpscope_odoo_cron_duration_seconds_bucket{cron=\"A\",le=\"0.25\"} 0\n"));
	CHECK(strstr(e.buf,
		     "erpscope_odoo_cron_duration_seconds_bucket{cron=\"C\",le=\"3600\"} 0\n"));
	CHECK(strstr(e.buf, "erpscope_odoo_cron_duration_seconds_count{cron=\"C\"} 1\n"));
	CHECK(strstr(e.buf, "erpscope_odoo_cron_duration_seconds_sum{cron=\"A\"} 1\n"));
	CHECK(strstr(e.buf,
		     "erpscope_odoo_cron_time_seconds_total{cron=\"A\",part=\"sleep\"} 1\n"));
	CHECK(strstr(e.buf, "erpscope_odoo_cron_runs_total{cron=\"A\",result=\"ok\"} 2\n"));
	CHECK(strstr(e.buf, "erpscope_odoo_cron_runs_total{cron=\"C\",result=\"failed\"} 1\n"));
	CHECK(strstr(e.buf, "erpscope_odoo_cron_runs_total{cron=\"other\",result=\"failed\"} 1\n"));
	CHECK(strstr(e.buf, "erpscope_odoo_cron_last_success_timestamp_seconds{cron=\"A\"} 100\n"));
	CHECK(!strstr(e.buf, "erpscope_odoo_cron_last_success_timestamp_seconds{cron=\"C\"}"));
	expo_free(&e);
	cron_table_free(t);
}

int main(void)
{
	test_names();
	test_split();
	test_table();
	return check_summary("test_cron");
}
