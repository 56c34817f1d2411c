// SPDX-License-Identifier: GPL-2.0
/* Exposition: escaping, number formats, histograms, both formats. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/expo.h"

static const char *fmt(double v, int om)
{
	static char buf[64];

	expo_format_double(buf, sizeof(buf), v, om);
	return buf;
}

static void test_numbers(void)
{
	/* Text 0.0.4: Go's strconv.FormatFloat(v, 'g', -1, 64). */
	CHECK_STR(fmt(1, 0), "1");
	CHECK_STR(fmt(0, 0), "0");
	CHECK_STR(fmt(-2, 0), "-2");
	CHECK_STR(fmt(0.25, 0), "0.25");
	CHECK_STR(fmt(0.1, 0), "0.1");
	CHECK_STR(fmt(1e-05, 0), "1e-05");
	CHECK_STR(fmt(0.0001, 0), "0.0001");
	CHECK_STR(fmt(2.5, 0), "2.5");
	CHECK_STR(fmt(123456, 0), "123456");
	CHECK_STR(fmt(1e6, 0), "1e+06");
	CHECK_STR(fmt(21671936, 0), "2.1671936e+07");
	CHECK_STR(fmt(1.0 / 3, 0), "0.3333333333333333");
	CHECK_STR(fmt(0.1 + 0.2, 0), "0.30000000000000004");
	CHECK_STR(fmt(1.7976931348623157e308, 0), "1.7976931348623157e+308");
	CHECK_STR(fmt(5e-324, 0), "5e-324");
	CHECK_STR(fmt(NAN, 0), "NaN");
	CHECK_STR(fmt(INFINITY, 0), "+Inf");
	CHECK_STR(fmt(-INFINITY, 0), "-Inf");
	/* OpenMetrics: canonical floats, integral values get ".0". */
	CHECK_STR(fmt(1, 1), "1.0");
	CHECK_STR(fmt(0, 1), "0.0");
	CHECK_STR(fmt(10, 1), "10.0");
	CHECK_STR(fmt(0.25, 1), "0.25");
	CHECK_STR(fmt(1e-05, 1), "1e-05");
	CHECK_STR(fmt(1e6, 1), "1e+06");
	CHECK_STR(fmt(INFINITY, 1), "+Inf");
	CHECK_STR(fmt(NAN, 1), "NaN");
	/* Every finite value reads back exactly. */
	for (int i = 0; i < 2000; i++) {
		double v = ldexp((double)rand() / RAND_MAX, rand() % 200 - 100);

		CHECK(strtod(fmt(v, 0), NULL) == v);
	}
}

static const char *escaped(const char *value)
{
	static char out[256];
	struct expo e;

	expo_init(&e, EXPO_TEXT_004);
	expo_escape_label(&e, value);
	snprintf(out, sizeof(out), "%s", e.buf ? e.buf : "");
	expo_free(&e);
	return out;
}

static void test_escape(void)
{
	CHECK_STR(escaped("plain"), "plain");
	CHECK_STR(escaped(""), "");
	CHECK_STR(escaped("a\\b"), "a\\\\b");
	CHECK_STR(escaped("say \"hi\""), "say \\\"hi\\\"");
	CHECK_STR(escaped("two\nlines"), "two\\nlines");
	CHECK_STR(escaped("tab\there\r"), "tab?here?");
	CHECK_STR(escaped("del\x7f"), "del?");
	/* Valid UTF-8 passes through. */
	CHECK_STR(escaped("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
		  "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	/* Ill-formed: stray continuation, truncated, overlong, surrogate, > U+10FFFF. */
	CHECK_STR(escaped("a\x80z"), "a\xef\xbf\xbdz");
	CHECK_STR(escaped("a\xe2\x82"), "a\xef\xbf\xbd");
	CHECK_STR(escaped("\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd");
	CHECK_STR(escaped("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	CHECK_STR(escaped("\xf4\x90\x80\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	CHECK_STR(escaped("\xff\""), "\xef\xbf\xbd\\\"");
}

static void test_text_counter_gauge(void)
{
	struct expo_label l[] = {
		{ "role", "odoo_http" },
		{ "", "skipped" },
		{ "title", "odoo: \"worker\"\n\\x" },
	};
	struct expo e;

	expo_init(&e, EXPO_TEXT_004);
	expo_family(&e, "erpscope_events_total", EXPO_COUNTER, "Events seen.\nSecond \\ line");
	expo_sample_u64(&e, l, 3, 18446744073709551615ull);
	expo_family(&e, "erpscope_load", EXPO_GAUGE, "Load \"now\".");
	expo_sample(&e, NULL, 0, 0.5);
	expo_sample(&e, l, 1, NAN);
	CHECK_INT(expo_finish(&e), 0);
	CHECK_STR(e.buf,
		  "# HELP erpscope_events_total Events seen.\\nSecond \\\\ line\n"
		  "# TYPE erpscope_events_total counter\n"
		  "erpscope_events_total{role=\"odoo_http\",title=\"odoo: \\\"worker\\\"\\n\\\\x\"}"
		  " 18446744073709551615\n"
		  "# HELP erpscope_load Load \"now\".\n"
		  "# TYPE erpscope_load gauge\n"
		  "erpscope_load 0.5\n"
		  "erpscope_load{role=\"odoo_http\"} NaN\n");
	CHECK_STR(expo_content_type(EXPO_TEXT_004), "text/plain; version=0.0.4; charset=utf-8");
	expo_free(&e);
}

static void test_openmetrics(void)
{
	struct expo_label l[] = { { "probe", "sched" } };
	struct expo e;

	expo_init(&e, EXPO_OPENMETRICS_100);
	expo_family(&e, "erpscope_events_total", EXPO_COUNTER, "Events \"seen\".");
	expo_sample_u64(&e, l, 1, 7);
	/* A counter named without _total still gets it on its samples. */
	expo_family(&e, "erpscope_drops", EXPO_COUNTER, "Drops.");
	expo_sample(&e, NULL, 0, 3);
	expo_family(&e, "erpscope_up", EXPO_GAUGE, NULL);
	expo_sample(&e, l, 1, 1);
	CHECK_INT(expo_finish(&e), 0);
	CHECK_STR(e.buf, "# HELP erpscope_events Events \\\"seen\\\".\n"
			 "# TYPE erpscope_events counter\n"
			 "erpscope_events_total{probe=\"sched\"} 7\n"
			 "# HELP erpscope_drops Drops.\n"
			 "# TYPE erpscope_drops counter\n"
			 "erpscope_drops_total 3.0\n"
			 "# TYPE erpscope_up gauge\n"
			 "erpscope_up{probe=\"sched\"} 1.0\n"
			 "# EOF\n");
	CHECK_STR(expo_content_type(EXPO_OPENMETRICS_100),
		  "application/openmetrics-text; version=1.0.0; charset=utf-8");
	expo_free(&e);
}

static void test_histogram(void)
{
	static const double edges[] = { 0.1, 0.25, 1, 2.5 };
	static const uint64_t counts[] = { 1, 2, 0, 3, 4 };
	struct expo_label l[] = { { "role", "pg_backend" } };
	struct expo e;

	expo_init(&e, EXPO_TEXT_004);
	expo_family(&e, "erpscope_query_seconds", EXPO_HISTOGRAM, "Query latency.");
	expo_histogram(&e, l, 1, edges, counts, 4, 12.5);
	CHECK_INT(expo_finish(&e), 0);
	CHECK_STR(e.buf, "# HELP erpscope_query_seconds Query latency.\n"
			 "# TYPE erpscope_query_seconds histogram\n"
			 "erpscope_query_seconds_bucket{role=\"pg_backend\",le=\"0.1\"} 1\n"
			 "erpscope_query_seconds_bucket{role=\"pg_backend\",le=\"0.25\"} 3\n"
			 "erpscope_query_seconds_bucket{role=\"pg_backend\",le=\"1\"} 3\n"
			 "erpscope_query_seconds_bucket{role=\"pg_backend\",le=\"2.5\"} 6\n"
			 "erpscope_query_seconds_bucket{role=\"pg_backend\",le=\"+Inf\"} 10\n"
			 "erpscope_query_seconds_sum{role=\"pg_backend\"} 12.5\n"
			 "erpscope_query_seconds_count{role=\"pg_backend\"} 10\n");

	/* Same in OpenMetrics, no labels: le="1.0", # EOF; buffer reused. */
	expo_reset(&e, EXPO_OPENMETRICS_100);
	expo_family(&e, "erpscope_query_seconds", EXPO_HISTOGRAM, "Query latency.");
	expo_histogram(&e, NULL, 0, edges, counts, 4, 12);
	CHECK_INT(expo_finish(&e), 0);
	CHECK_STR(e.buf, "# HELP erpscope_query_seconds Query latency.\n"
			 "# TYPE erpscope_query_seconds histogram\n"
			 "erpscope_query_seconds_bucket{le=\"0.1\"} 1\n"
			 "erpscope_query_seconds_bucket{le=\"0.25\"} 3\n"
			 "erpscope_query_seconds_bucket{le=\"1.0\"} 3\n"
			 "erpscope_query_seconds_bucket{le=\"2.5\"} 6\n"
			 "erpscope_query_seconds_bucket{le=\"+Inf\"} 10\n"
			 "erpscope_query_seconds_sum 12.0\n"
			 "erpscope_query_seconds_count 10\n"
			 "# EOF\n");
	expo_free(&e);
}

static void test_errors(void)
{
	struct expo e;

	/* A sample before any family, a bad name, a type mismatch: sticky -EINVAL. */
	expo_init(&e, EXPO_TEXT_004);
	expo_sample(&e, NULL, 0, 1);
	CHECK_INT(expo_finish(&e), -EINVAL);
	expo_reset(&e, EXPO_TEXT_004);
	CHECK_INT(e.err, 0);
	expo_family(&e, "bad name", EXPO_GAUGE, "x");
	CHECK_INT(expo_finish(&e), -EINVAL);
	expo_reset(&e, EXPO_TEXT_004);
	expo_family(&e, "g", EXPO_GAUGE, "x");
	expo_histogram(&e, NULL, 0, NULL, (const uint64_t[]){ 1 }, 0, 0);
	CHECK_INT(expo_finish(&e), -EINVAL);
	expo_free(&e);

	/* The buffer grows past its first allocation. */
	expo_init(&e, EXPO_TEXT_004);
	expo_family(&e, "erpscope_many", EXPO_GAUGE, "Many.");
	for (int i = 0; i < 5000; i++) {
		char v[16];
		struct expo_label l = { "i", v };

		snprintf(v, sizeof(v), "%d", i);
		expo_sample_u64(&e, &l, 1, (uint64_t)i);
	}
	CHECK_INT(expo_finish(&e), 0);
	CHECK(e.len > 16384);
	CHECK(strstr(e.buf, "erpscope_many{i=\"4999\"} 4999\n") != NULL);
	CHECK_INT(strlen(e.buf), e.len);
	expo_free(&e);
}

/* promtool (Debian's prometheus package) must accept hostile label values. */
static void test_promtool(void)
{
	static const double edges[] = { 0.1, 0.25, 0.5, 1, 2.5 };
	static const uint64_t counts[] = { 1, 2, 3, 4, 5, 6 };
	struct expo_label l[] = {
		{ "role", "odoo_http" },
		{ "title", "odoo: \"w\"\n\\ \xff\xfe \xc3\x28 tab\tcr\r \xe2\x82\xac" },
	};
	struct expo e;
	FILE *f;

	if (system("command -v promtool >/dev/null 2>&1")) {
		fprintf(stderr, "SKIP promtool check: promtool not installed\n");
		return;
	}
	expo_init(&e, EXPO_TEXT_004);
	expo_family(&e, "erpscope_test_events_total", EXPO_COUNTER, "Events, \"quoted\" \\\n.");
	expo_sample_u64(&e, l, 2, 42);
	expo_family(&e, "erpscope_test_ratio", EXPO_GAUGE, "A gauge \xff.");
	expo_sample(&e, l, 2, 0.1 + 0.2);
	expo_sample(&e, l, 1, NAN);
	expo_family(&e, "erpscope_test_request_seconds", EXPO_HISTOGRAM, "Latency.");
	expo_histogram(&e, l, 2, edges, counts, 5, 12.5);
	CHECK_INT(expo_finish(&e), 0);
	f = popen("promtool check metrics", "w");
	CHECK(f != NULL);
	if (f) {
		fwrite(e.buf, 1, e.len, f);
		CHECK_INT(pclose(f), 0);
	}
	expo_free(&e);
}

int main(void)
{
	test_numbers();
	test_escape();
	test_text_counter_gauge();
	test_openmetrics();
	test_histogram();
	test_errors();
	test_promtool();
	return check_summary("test_expo");
}
