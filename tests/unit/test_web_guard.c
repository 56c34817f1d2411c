// SPDX-License-Identifier: GPL-2.0
/*
 * What a client may cost the HTTP server (user/core/web_guard.c), on a
 * made-up clock:
 *   - with 2 places, 300 connections that never complete a request leave
 *     both places free: the next complete request is admitted, the one
 *     after is too, the third is BUSY (503) until one closes
 *   - the waiting ones are overdue 2 s after they connected, not before,
 *     each reported once; served ones never are
 *   - near the hard cap the oldest waiting connection is handed out to be
 *     shut, never a served one
 *   - 10 requests a second per client: 10 back to back pass, the 11th is
 *     SLOW_DOWN (429), another address is not affected, 100 ms later one
 *     more passes; cheap routes never take a token
 *   - the self-metrics count per handler and code, "other" for unknown
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/expo.h"
#include "core/web_guard.h"

#define MS 1000000ull

static struct sockaddr_in addr(int last)
{
	struct sockaddr_in a = { .sin_family = AF_INET };

	a.sin_addr.s_addr = htonl(0x7f000000u | (unsigned int)last);
	return a;
}

static void test_places(void)
{
	struct web_limits l = { .max_conns = 2, .hard_conns = 0, .header_timeout_ms = 2000 };
	struct web_guard *g = web_guard_new(&l, NULL, 0);
	struct sockaddr_in a = addr(1);
	struct web_conn *waiting[300], *c[3];
	int fds[400], ev;
	size_t n;

	for (int i = 0; i < 300; i++)
		waiting[i] = web_conn_open(g, 100 + i, (struct sockaddr *)&a, 0, &ev);
	for (int i = 0; i < 3; i++)
		c[i] = web_conn_open(g, 10 + i, (struct sockaddr *)&a, 500 * MS, &ev);
	CHECK_INT(web_admit(g, c[0], false, 500 * MS), WEB_ADMIT_OK);
	CHECK_INT(web_admit(g, c[1], false, 500 * MS), WEB_ADMIT_OK);
	CHECK_INT(web_admit(g, c[2], false, 500 * MS), WEB_ADMIT_BUSY);
	/* A served connection's next request keeps its place. */
	CHECK_INT(web_admit(g, c[0], false, 600 * MS), WEB_ADMIT_OK);
	web_conn_close(g, c[1]);
	CHECK_INT(web_admit(g, c[2], false, 700 * MS), WEB_ADMIT_OK);

	CHECK_INT((int)web_overdue(g, 1999 * MS, fds, 400), 0);
	n = web_overdue(g, 2000 * MS, fds, 400);
	CHECK_INT((int)n, 300);
	CHECK(n == 300 && fds[0] == 100 && fds[299] == 399);
	CHECK_INT((int)web_overdue(g, 9000 * MS, fds, 400), 0); /* reported once; served never */
	for (int i = 0; i < 300; i++)
		web_conn_close(g, waiting[i]);
	web_guard_free(g);
}

static void test_evict(void)
{
	struct web_limits l = { .max_conns = 1, .hard_conns = 8, .header_timeout_ms = 2000 };
	struct web_guard *g = web_guard_new(&l, NULL, 0);
	struct sockaddr_in a = addr(1);
	int ev, evicted[8], ne = 0;
	struct web_conn *s;

	s = web_conn_open(g, 1, (struct sockaddr *)&a, 0, &ev);
	CHECK_INT(web_admit(g, s, false, 0), WEB_ADMIT_OK);
	for (int i = 0; i < 8; i++) {
		web_conn_open(g, 10 + i, (struct sockaddr *)&a, (uint64_t)i * MS, &ev);
		if (ev >= 0)
			evicted[ne++] = ev;
	}
	/* 9 open with a cap of 8: room is made from the 6th on, oldest waiting first. */
	CHECK_INT(ne, 3);
	CHECK(ne == 3 && evicted[0] == 10 && evicted[1] == 11 && evicted[2] == 12);
	web_guard_free(g);
}

static void test_rate(void)
{
	struct web_limits l = { .max_conns = 64, .client_rate = 10, .header_timeout_ms = 2000 };
	struct web_guard *g = web_guard_new(&l, NULL, 0);
	struct sockaddr_in a = addr(1), b = addr(2);
	struct web_conn *ca, *cb;
	int ev, ok = 0;

	ca = web_conn_open(g, 1, (struct sockaddr *)&a, 0, &ev);
	cb = web_conn_open(g, 2, (struct sockaddr *)&b, 0, &ev);
	for (int i = 0; i < 10; i++)
		ok += web_admit(g, ca, true, 1000 * MS) == WEB_ADMIT_OK;
	CHECK_INT(ok, 10);
	CHECK_INT(web_admit(g, ca, true, 1000 * MS), WEB_ADMIT_SLOW_DOWN);
	CHECK_INT(web_admit(g, ca, false, 1000 * MS), WEB_ADMIT_OK);
	CHECK_INT(web_admit(g, cb, true, 1000 * MS), WEB_ADMIT_OK);
	CHECK_INT(web_admit(g, ca, true, 1099 * MS), WEB_ADMIT_SLOW_DOWN);
	CHECK_INT(web_admit(g, ca, true, 1100 * MS), WEB_ADMIT_OK);
	CHECK_INT(web_admit(g, ca, true, 1100 * MS), WEB_ADMIT_SLOW_DOWN);
	web_guard_free(g);
}

static void test_metrics(void)
{
	static const char *const names[] = { "/metrics", "/queries" };
	struct web_limits l = { .max_conns = 64 };
	struct web_guard *g = web_guard_new(&l, names, 2);
	struct expo e;

	web_record(g, 0, 200, 2 * MS);
	web_record(g, 0, 200, 60 * MS);
	web_record(g, 1, 429, 0);
	web_record(g, 2, 404, 0);
	expo_init(&e, EXPO_TEXT_004);
	web_collect(g, &e);
	CHECK_INT(expo_finish(&e), 0);
	CHECK(strstr(e.buf, "erpscope_web_requests_total{handler=\"/metrics\",code=\"200\"} 2\n"));
	CHECK(strstr(e.buf, "erpscope_web_requests_total{handler=\"/queries\",code=\"429\"} 1\n"));
	CHECK(strstr(e.buf, "erpscope_web_requests_total{handler=\"other\",code=\"404\"} 1\n"));
	CHECK(strstr(e.buf, "erpscope_web_request_duration_seconds_bucket{handler=\"/metrics\",le=\"0.0025\"} 1\n"));
	CHECK(strstr(e.buf, "erpscope_web_request_duration_seconds_count{handler=\"/metrics\"} 2\n"));
	CHECK(strstr(e.buf, "erpscope_web_over_budget_total{handler=\"/metrics\"} 1\n"));
	CHECK(strstr(e.buf, "erpscope_web_max_connections 64\n"));
	expo_free(&e);
	web_guard_free(g);
}

int main(void)
{
	test_places();
	test_evict();
	test_rate();
	test_metrics();
	return check_summary("test_web_guard");
}
