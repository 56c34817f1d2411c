// SPDX-License-Identifier: GPL-2.0
/*
 * The diagnose capability's pure parts: reading event bodies back, the
 * history on a clock the test moves (an OOM kill found 30 minutes later
 * with ?at=, not in the window of now), the rules over known snapshots,
 * tables and columns of statements, RFC 3339 times.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/json_get.h"
#include "diagnose/diagnose.h"
#include "procs/title.h"

static void test_json_get(void)
{
	const char *d = "{\"a\": 1, \"s\": \"x\\\"y\\u0041\\n\", \"o\": {\"k\": [1, {\"z\": 2}], "
			"\"r\": \"odoo_master\", \"n\": null}, \"e\": -2.5e3}";
	char buf[32];
	double v;

	CHECK(json_get_num(d, strlen(d), "a", &v) && v == 1);
	CHECK(json_get_num(d, strlen(d), "e", &v) && v == -2500);
	CHECK(json_get_str(d, strlen(d), "s", buf, sizeof(buf)));
	CHECK_STR(buf, "x\"yA\n");
	CHECK(json_get_str(d, strlen(d), "o.r", buf, sizeof(buf)));
	CHECK_STR(buf, "odoo_master");
	CHECK(!json_get_str(d, strlen(d), "o.n", buf, sizeof(buf)));
	CHECK_STR(buf, "");
	CHECK(!json_get_num(d, strlen(d), "o.k", &v));
	CHECK(!json_get_str(d, strlen(d), "missing", buf, sizeof(buf)));
	CHECK(!json_get_str(d, strlen(d), "a.b", buf, sizeof(buf)));
	/* cut anywhere: never reads past len */
	for (size_t n = 0; n < strlen(d); n++) {
		json_get_str(d, n, "o.r", buf, sizeof(buf));
		json_get_num(d, n, "e", &v);
	}
	CHECK(json_get_str(d, strlen(d), "s", buf, 3));
	CHECK_STR(buf, "x\"");
}

static const char oom_body[] =
	"{\"pid\":4242,\"tid\":4242,\"comm\":\"odoo: WorkerCron\",\"role\":\"odoo_cron\","
	"\"worker\":\"cron-1\",\"rss_bytes\":8388608000,\"cgroup\":\"/system.slice/odoo.service\","
	"\"memory_history\":{\"interval_seconds\":5,\"samples\":[[1,2],[3,4]],"
	"\"summary\":\"rss rose from 4.0 GiB to 7.8 GiB over 17 minutes\"},"
	"\"route\":null,\"model\":null,\"method\":null}";

static void test_event_parse(void)
{
	const char *exit_body =
		"{\"pid\":77,\"comm\":\"odoo: WorkerHT\",\"role\":\"odoo_http\",\"reason\":\"killed\","
		"\"exit_status\":null,\"signal\":\"SIGKILL\",\"core_dumped\":false,"
		"\"sender\":{\"pid\":1,\"tid\":1,\"comm\":\"odoo-bin\",\"role\":\"odoo_master\"},"
		"\"route\":\"/web/dataset/call_kw\",\"model\":\"stock.picking\",\"method\":\"nap\"}";
	struct diag_event ev;

	CHECK(diag_event_parse("oom_kill", oom_body, strlen(oom_body), 100, &ev));
	CHECK_INT(ev.type, DIAG_EV_OOM);
	CHECK_INT(ev.pid, 4242);
	CHECK(ev.rss == 8388608000ull);
	CHECK_STR(ev.role, "odoo_cron");
	CHECK_STR(ev.summary, "rss rose from 4.0 GiB to 7.8 GiB over 17 minutes");
	CHECK_STR(ev.route, "");
	CHECK(diag_event_parse("worker_exit", exit_body, strlen(exit_body), 100, &ev));
	CHECK_STR(ev.sender_role, "odoo_master");
	CHECK_STR(ev.route, "/web/dataset/call_kw");
	CHECK_STR(ev.rpc, "stock.picking.nap");
	CHECK(!diag_event_parse("http_slow_request", "{}", 2, 100, &ev));
}

static void snap_at(struct diag_snap *s, double t)
{
	memset(s, 0, sizeof(*s));
	s->t = t;
	s->pool_known = s->pg_known = true;
	s->npools = 1;
	s->pools[0] = (struct diag_pool){ .port = 8069, .idle = 2 };
}

/* An OOM kill at t0 + 600, asked about 30 minutes later. */
static void test_history_at(void)
{
	struct diag_history h;
	struct diag_event ev;
	struct diag_result r;
	struct diag_input in = { 0 };
	struct diag_snap s;
	double t0 = 1.7e9, oom = t0 + 600, now = oom + 1800;

	CHECK(!diag_history_init(&h));
	for (double t = t0; t <= now; t += 5) {
		if (t == oom) {
			CHECK(diag_event_parse("oom_kill", oom_body, strlen(oom_body), oom, &ev));
			diag_history_event(&h, &ev, t);
		}
		snap_at(&s, t);
		diag_history_snap(&h, &s);
	}
	CHECK_INT(h.fine_n, DIAG_FINE_N);
	CHECK_INT(h.coarse_n, 41); /* one a minute from t0 to t0 + 40 min */
	/* at = the kill, a 15 minute window around it: from the coarse ring */
	in.h = &h;
	in.cores = 2;
	in.from = oom - 450;
	in.to = oom + 450;
	diag_history_window(&h, in.from, in.to, &in.start, &in.end);
	CHECK(in.start && in.end && in.start->t >= in.from && in.end->t <= in.to);
	CHECK(in.start && in.end && in.end->t - in.start->t >= 840);
	CHECK(!diag_evaluate(&in, &r));
	CHECK(r.n >= 1 && r.f[0].rule == DIAG_R_OOM && r.f[0].severity == DIAG_CRITICAL);
	CHECK(r.n >= 1 && strstr(r.f[0].cause, "rose from 4.0 GiB to 7.8 GiB"));
	CHECK(r.n >= 1 && strstr(r.f[0].title, "cron-1") && r.f[0].since == oom);
	CHECK_INT(r.sum.oom_kills, 1);
	diag_result_free(&r);
	/* the last 15 minutes: nothing */
	in.from = now - 900;
	in.to = now;
	diag_history_window(&h, in.from, in.to, &in.start, &in.end);
	CHECK(in.start && in.start->t >= now - 900 && in.end && in.end->t == now);
	CHECK(!diag_evaluate(&in, &r));
	CHECK_INT(r.n, 0);
	CHECK_INT(r.sum.oom_kills, 0);
	diag_result_free(&r);
	/* a day later the event is gone */
	snap_at(&s, oom + DIAG_KEEP_S + 10);
	CHECK(diag_event_parse("worker_exit", "{\"role\":\"python\"}", 17, s.t, &ev));
	diag_history_event(&h, &ev, s.t);
	CHECK_INT(h.ev_n, 1);
	CHECK_INT(h.ev[h.ev_head].type, DIAG_EV_EXIT);
	diag_history_free(&h);
}

struct foreach_seen {
	unsigned int n, bad;
	double last;
};

static void busy_snap(struct diag_snap *s, double t);

/* Every snapshot diag_history_foreach() gives is the one put at its t, in order. */
static void foreach_check(void *arg, const struct diag_snap *s)
{
	struct foreach_seen *seen = arg;
	struct diag_snap want;

	busy_snap(&want, s->t);
	if (memcmp(s, &want, sizeof(want)) || s->t <= seen->last)
		seen->bad++;
	seen->last = s->t;
	seen->n++;
}

/* A snapshot full of what a busy host's has, different for every t. */
static void busy_snap(struct diag_snap *s, double t)
{
	unsigned int k = (unsigned int)(t / 60);

	snap_at(s, t);
	s->pg_total_ns = (uint64_t)k * 123456789ull;
	s->nroutes = DIAG_ROUTES;
	for (unsigned int i = 0; i < DIAG_ROUTES; i++) {
		snprintf(s->routes[i].key, sizeof(s->routes[i].key), "sale.order search_read_%u",
			 (k + i) % 97);
		s->routes[i].count = k * 10 + i;
		s->routes[i].sum_ns = (uint64_t)k * 1000003ull * (i + 1);
	}
	s->nstmts = DIAG_STMTS;
	for (unsigned int i = 0; i < DIAG_STMTS; i++) {
		s->stmts[i].fp = 0x9e3779b97f4a7c15ull * (k + i);
		s->stmts[i].calls = k + i;
		snprintf(s->stmts[i].sender, sizeof(s->stmts[i].sender), "odoo_http/%u", i);
	}
}

/*
 * 25 hours of minute snapshots: the coarse ring holds the last 24 (its
 * oldest went), each inflated exactly as it was put, in order, and all of
 * them in under a quarter of what they would take plain.
 */
static void test_packed(void)
{
	struct diag_history h;
	struct diag_snap want;
	const struct diag_snap *a, *b;
	struct foreach_seen seen = { 0 };
	double t0 = 1.7e9, end = t0 + 25 * 3600;
	size_t plain = DIAG_COARSE_N * sizeof(struct diag_snap);

	CHECK(!diag_history_init(&h));
	for (double t = t0; t <= end; t += 60) {
		busy_snap(&want, t);
		diag_history_snap(&h, &want);
	}
	CHECK_INT(h.coarse_n, DIAG_COARSE_N);
	CHECK(diag_history_packed_bytes(&h) * 4 < plain);
	printf("coarse ring: %zu bytes deflated, %zu plain\n", diag_history_packed_bytes(&h), plain);
	/* Ten hours back: from the coarse ring. */
	diag_history_window(&h, end - 10 * 3600 - 30, end - 9 * 3600, &a, &b);
	CHECK(a && b);
	if (a && b) {
		busy_snap(&want, end - 10 * 3600);
		CHECK(!memcmp(a, &want, sizeof(want)));
		busy_snap(&want, end - 9 * 3600);
		CHECK(!memcmp(b, &want, sizeof(want)));
	}
	/* Older than 24 hours: gone. */
	diag_history_window(&h, t0, t0 + 3600 - 60, &a, &b);
	CHECK(!a);
	diag_history_foreach(&h, end, foreach_check, &seen);
	CHECK_INT(seen.bad, 0);
	CHECK(seen.n >= DIAG_COARSE_N);
	diag_history_free(&h);
}

static void test_merge(void)
{
	const char *b = "{\"role\":\"odoo_cron\",\"worker\":\"c1\",\"remote\":\"10.0.0.5:25\","
			"\"reason\":\"timeout\",\"waited_seconds\":2.0}";
	struct diag_history h;
	struct diag_event ev;
	struct diag_result r;
	struct diag_input in = { 0 };

	CHECK(!diag_history_init(&h));
	for (int i = 0; i < 5; i++) {
		CHECK(diag_event_parse("tcp_connect_failed", b, strlen(b), 1000 + i, &ev));
		diag_history_event(&h, &ev, 1000 + i);
	}
	CHECK_INT(h.ev_n, 1);
	CHECK_INT(h.ev[0].count, 5);
	CHECK(h.ev[0].seconds == 10.0 && h.ev[0].t_last == 1004);
	in.h = &h;
	in.from = 900;
	in.to = 1100;
	CHECK(!diag_evaluate(&in, &r));
	CHECK(r.n == 1 && r.f[0].rule == DIAG_R_CONNECT && strstr(r.f[0].title, "10.0.0.5:25"));
	diag_result_free(&r);
	/* two failures only: below the threshold */
	in.to = 1000.5;
	diag_history_free(&h);
	CHECK(!diag_history_init(&h));
	for (int i = 0; i < 2; i++) {
		CHECK(diag_event_parse("tcp_connect_failed", b, strlen(b), 1000 + i, &ev));
		diag_history_event(&h, &ev, 1000 + i);
	}
	in.h = &h;
	in.to = 1100;
	CHECK(!diag_evaluate(&in, &r));
	CHECK_INT(r.n, 0);
	CHECK_INT(r.sum.connect_failures, 2);
	diag_result_free(&r);
	/* an untracked process's failures are not counted */
	{
		const char *o = "{\"role\":\"other\",\"remote\":\"127.0.0.1:9435\",\"reason\":\"refused\"}";

		for (int i = 0; i < 5; i++) {
			CHECK(diag_event_parse("tcp_connect_failed", o, strlen(o), 1000 + i, &ev));
			diag_history_event(&h, &ev, 1000 + i);
		}
		CHECK(!diag_evaluate(&in, &r));
		CHECK(r.n == 0 && r.sum.connect_failures == 2);
		diag_result_free(&r);
	}
	diag_history_free(&h);
}

/* A cron seen every 5 s for 20 minutes, its connects failing: found at 15 minutes, not at 5. */
static void test_cron(void)
{
	const char *b = "{\"pid\":4242,\"role\":\"odoo_cron\",\"worker\":\"4242\",\"remote\":\"10.0.0.5:25\","
			"\"reason\":\"timeout\",\"waited_seconds\":20.0}";
	struct diag_cron c = { .pid = 4242, .name = "Mail: Fetchmail Service",
			       .where = "socket:create_connection (socket.py:828)", .state = "sleeping",
			       .state_secs = 12.5 };
	struct diag_input in = { .cron_threshold = 600 };
	struct diag_history h;
	struct diag_event ev;
	struct diag_result r;
	double t0 = 1.7e9;

	CHECK(!diag_history_init(&h));
	for (double t = t0; t <= t0 + 1200; t += 5) {
		diag_history_cron(&h, &c, t);
		if ((long)(t - t0) % 20 == 0) {
			CHECK(diag_event_parse("tcp_connect_failed", b, strlen(b), t, &ev));
			diag_history_event(&h, &ev, t);
		}
	}
	CHECK_INT(h.ncrons, 1);
	CHECK(h.crons[0].first == t0 && h.crons[0].last == t0 + 1200);
	in.h = &h;
	in.from = t0;
	in.to = t0 + 300;
	CHECK(!diag_evaluate(&in, &r));
	CHECK(r.n == 1 && r.f[0].rule == DIAG_R_CONNECT);
	diag_result_free(&r);
	in.to = t0 + 900;
	CHECK(!diag_evaluate(&in, &r));
	for (size_t i = 0; i < r.n; i++)
		if (r.f[i].rule == DIAG_R_CRON)
			CHECK(strstr(r.f[i].title, "cron 'Mail: Fetchmail Service' has been running for 900 s in odoo_cron worker 4242") &&
			      strstr(r.f[i].cause, "socket:create_connection") &&
			      /* 46 in the window, and the 2 merged into the record of its last minute */
			      strstr(r.f[i].cause, "its connects to 10.0.0.5:25 failed 48 times (timeout)"));
	CHECK(r.n == 2 && r.f[0].rule == DIAG_R_CRON);
	diag_result_free(&r);
	/* a new run of the same cron after a pause is a new entry */
	diag_history_cron(&h, &c, t0 + 1300);
	CHECK_INT(h.ncrons, 2);
	diag_history_free(&h);
}

static const char *text_of(void *arg, uint64_t fp)
{
	return fp == 0xabc ? "SELECT * FROM big b WHERE b.ref = ? AND flag IS NOT NULL" : NULL;
}

static void test_rules(void)
{
	struct diag_snap a, b;
	struct diag_input in = { .start = &a, .end = &b, .cores = 2, .fp_text = text_of };
	struct diag_result r;

	snap_at(&a, 1000);
	snap_at(&b, 1010);
	/* quiet: nothing, and the summary says so */
	CHECK(!diag_evaluate(&in, &r));
	CHECK_INT(r.n, 0);
	CHECK(r.sum.span == 10 && r.sum.occupancy == 0 && r.sum.workers == 2);
	diag_result_free(&r);
	/* 2 workers busy 19 of 20 s, 40 connections waiting 1 s each, /slow held them */
	b.pools[0] = (struct diag_pool){ .port = 8069, .busy = 2, .busy_ns = 19000000000ull,
					 .waits = 40, .wait_ns = 40000000000ull };
	/* another instance's pool, idle: it hides nothing */
	b.npools = 2;
	b.pools[1] = (struct diag_pool){ .port = 8070, .idle = 6 };
	b.nroutes = 2;
	snprintf(b.routes[0].key, sizeof(b.routes[0].key), "/slow");
	b.routes[0].count = 36;
	b.routes[0].sum_ns = 18000000000ull;
	snprintf(b.routes[1].key, sizeof(b.routes[1].key), "/fast");
	b.routes[1].count = 100;
	b.routes[1].sum_ns = 1000000000ull;
	/* and a statement with 90% of PostgreSQL's time */
	b.pg_total_ns = 10000000000ull;
	b.nstmts = 1;
	b.stmts[0] = (struct diag_stmt){ .fp = 0xabc, .calls = 100, .total_ns = 9000000000ull };
	snprintf(b.stmts[0].sender, sizeof(b.stmts[0].sender), "odoo_http/1234");
	CHECK(!diag_evaluate(&in, &r));
	CHECK(r.n == 2 && r.f[0].rule == DIAG_R_POOL && r.f[1].rule == DIAG_R_SLOW_STMT);
	CHECK(r.n == 2 && strstr(r.f[0].cause, "route /slow held the workers longest"));
	CHECK(r.n == 2 && strstr(r.f[0].action, "workers = 5"));
	CHECK(r.n == 2 && !strstr(r.f[0].cause, "PostgreSQL"));
	diag_result_free(&r);
	/* most of /slow's time in PostgreSQL: the pool finding points at the statement */
	b.routes[0].pg_ns = 15000000000ull;
	CHECK(!diag_evaluate(&in, &r));
	CHECK(r.n == 2 && strstr(r.f[0].cause, "83% of that time was PostgreSQL's (see slow_statement)"));
	CHECK(r.n == 2 && strstr(r.f[1].cause, "big(ref, flag)") &&
	      strstr(r.f[1].cause, "odoo_http/1234"));
	CHECK(r.n == 2 && strstr(r.f[1].action, "CREATE INDEX ON big (ref, flag)"));
	CHECK(r.n == 2 && strstr(r.f[0].title, "pool on port 8069 saturated: 2 workers busy 95%"));
	CHECK(r.sum.workers == 8 && r.sum.occupancy > 0.23 && r.sum.occupancy < 0.24 &&
	      r.sum.wait_mean == 1.0);
	diag_result_free(&r);
	/* the same, but 6 of its 9 s waiting on locks: lock_contention's, not an index */
	b.stmts[0].lock_ns = 6000000000ull;
	CHECK(!diag_evaluate(&in, &r));
	CHECK(r.n == 1 && r.f[0].rule == DIAG_R_POOL);
	diag_result_free(&r);
	b.stmts[0].lock_ns = 0;
	/* /fast: 100 requests sending 60 statements each: an ORM loop */
	b.routes[1].pg_stmts = 6000;
	b.nhot = 1;
	b.hot[0] = (struct diag_stmt){ .fp = 0xabc, .calls = 5000, .sender = "odoo_http/9" };
	b.routes[1].role = ES_ROLE_ODOO_HTTP;
	CHECK(!diag_evaluate(&in, &r));
	CHECK(r.n == 3);
	for (size_t i = 0; i < r.n; i++)
		if (r.f[i].rule == DIAG_R_N_PLUS_ONE)
			CHECK(strstr(r.f[i].title, "route /fast sends 60 PostgreSQL statements per request") &&
			      strstr(r.f[i].cause, "0000000000000abc (5000 calls)"));
	diag_result_free(&r);
	b.routes[1].pg_stmts = 4000; /* 40 each: below */
	CHECK(!diag_evaluate(&in, &r));
	CHECK(r.n == 2);
	diag_result_free(&r);
	b.routes[1].pg_stmts = 0;
	/* a backup waiting 3 s on vda in the 10 s window, PostgreSQL 0.5 s: 35% */
	b.niow = 2;
	b.iow[0] = (struct diag_iow){ .device = "vda", .who = "odoo_cron/77", .ns = 3000000000ull };
	b.iow[1] = (struct diag_iow){ .device = "vda", .who = "pg_backend/88", .ns = 600000000ull };
	a.niow = 1;
	a.iow[0] = (struct diag_iow){ .device = "vda", .who = "pg_backend/88", .ns = 100000000ull };
	CHECK(!diag_evaluate(&in, &r));
	CHECK(r.n == 3);
	for (size_t i = 0; i < r.n; i++)
		if (r.f[i].rule == DIAG_R_IOWAIT)
			CHECK(strstr(r.f[i].title, "disk vda: workers waited 3.5 s on its I/O in 10 s (35%") &&
			      strstr(r.f[i].cause, "odoo_cron/77 waited longest: 3.0 s"));
	diag_result_free(&r);
	b.iow[0].ns = 400000000ull; /* 0.9 s in all: below 10% */
	CHECK(!diag_evaluate(&in, &r));
	CHECK(r.n == 2);
	diag_result_free(&r);
	a.niow = b.niow = 0;
	/* 6 Odoo workers on 2 cores: 4 s on CPU, 8 s in the run queue, CPUs 95% busy */
	a.odoo_known = b.odoo_known = true;
	a.host_known = b.host_known = true;
	a.cpu_ticks = 1000;
	b.cpu_ticks = 3000;
	b.odoo_workers = 6;
	b.odoo_cpu_ns = 4000000000ull;
	b.odoo_runq_ns = 8000000000ull;
	b.cpu_busy_ticks = 1900;
	CHECK(!diag_evaluate(&in, &r));
	for (size_t i = 0; i < r.n; i++)
		if (r.f[i].rule == DIAG_R_WORKERS)
			CHECK(strstr(r.f[i].title, "too many Odoo workers for 2 cores: 6 workers waited 8.0 s for a CPU (67%") &&
			      strstr(r.f[i].action, "(5 here)"));
	CHECK(r.n == 4); /* pool, statement, host (CPUs), workers */
	diag_result_free(&r);
	b.odoo_workers = 2; /* no more workers than cores: the CPUs are short, not the workers many */
	CHECK(!diag_evaluate(&in, &r));
	CHECK(r.n == 3);
	diag_result_free(&r);
	b.odoo_workers = 6;
	b.odoo_runq_ns = 1800000000ull; /* 31%, but 0.18 s per second of the window: below */
	CHECK(!diag_evaluate(&in, &r));
	CHECK(r.n == 3);
	diag_result_free(&r);
	b.odoo_runq_ns = 1000000000ull; /* 20%: below */
	CHECK(!diag_evaluate(&in, &r));
	CHECK(r.n == 3);
	diag_result_free(&r);
	a.odoo_known = b.odoo_known = false;
	a.host_known = b.host_known = false;
	b.cpu_busy_ticks = 0;
	/* 17 of 20 connections: near max_connections */
	b.conns_known = true;
	b.conns = 17;
	b.max_conns = 20;
	snprintf(b.cluster, sizeof(b.cluster), "15/main");
	CHECK(!diag_evaluate(&in, &r));
	CHECK(r.n == 3 && r.f[0].rule == DIAG_R_POOL);
	for (size_t i = 0; i < r.n; i++)
		if (r.f[i].rule == DIAG_R_PG_CONNS)
			CHECK(strstr(r.f[i].title, "15/main has 17"));
	diag_result_free(&r);
	b.conns = 15;
	CHECK(!diag_evaluate(&in, &r));
	CHECK(r.n == 2);
	diag_result_free(&r);
	/* a filesystem 95% full; CPUs 50% busy, no stalls: one host finding, the disk */
	a.host_known = b.host_known = true;
	a.cpu_ticks = 1000;
	b.cpu_ticks = 3000;
	b.cpu_busy_ticks = 1000;
	b.mem_total = 1000;
	b.mem_available = 500;
	snprintf(b.fs_mount, sizeof(b.fs_mount), "/var/lib/postgresql");
	b.fs_used = 0.95;
	CHECK(!diag_evaluate(&in, &r));
	CHECK(r.n == 3);
	for (size_t i = 0; i < r.n; i++)
		if (r.f[i].rule == DIAG_R_HOST)
			CHECK(strstr(r.f[i].title, "filesystem /var/lib/postgresql 95% full") &&
			      !strstr(r.f[i].title, "CPU") && strstr(r.f[i].cause, "disk space"));
	diag_result_free(&r);
	b.fs_used = 0.5;
	b.cpu_busy_ticks = 1900; /* 95% */
	CHECK(!diag_evaluate(&in, &r));
	CHECK(r.n == 3);
	for (size_t i = 0; i < r.n; i++)
		if (r.f[i].rule == DIAG_R_HOST)
			CHECK(strstr(r.f[i].title, "CPUs 95% busy") && strstr(r.f[i].cause, "CPU"));
	diag_result_free(&r);
	b.cpu_busy_ticks = 1000;
	CHECK(!diag_evaluate(&in, &r));
	CHECK(r.n == 2);
	diag_result_free(&r);
	/* the same statements before the window: no delta, no finding */
	a.pg_total_ns = b.pg_total_ns;
	a.nstmts = 1;
	a.stmts[0] = b.stmts[0];
	/* busy but nobody waited: not saturated */
	b.pools[0].waits = 0;
	b.pools[0].wait_ns = 0;
	CHECK(!diag_evaluate(&in, &r));
	CHECK_INT(r.n, 0);
	diag_result_free(&r);
}

static void test_sql(void)
{
	char f[256], hint[256];

	diag_sql_filters("SELECT \"res_partner\".\"id\" FROM \"res_partner\" WHERE (\"res_partner\".\"ref\" = ?) "
			 "AND (\"res_partner\".\"active\" = ?) ORDER BY \"res_partner\".\"name\"",
			 f, sizeof(f));
	CHECK_STR(f, "res_partner(ref, active)");
	diag_sql_index_hint(f, hint, sizeof(hint));
	CHECK_STR(hint, "CREATE INDEX ON res_partner (ref, active)");
	diag_sql_filters("SELECT * FROM a JOIN b ON a.id = b.a_id WHERE b.x IN (?) AND a.y < ?", f,
			 sizeof(f));
	CHECK_STR(f, "a(id, y); b(a_id, x)");
	diag_sql_filters("UPDATE lk SET v = v + ? WHERE id = ?", f, sizeof(f));
	CHECK_STR(f, "lk(id)");
	diag_sql_filters("SELECT pg_sleep(?)", f, sizeof(f));
	CHECK_STR(f, "");
	diag_sql_index_hint(f, hint, sizeof(hint));
	CHECK_STR(hint, "");
	diag_sql_filters(NULL, f, sizeof(f));
	CHECK_STR(f, "");
	diag_sql_filters("SELECT count(*) FROM big", f, sizeof(f));
	CHECK_STR(f, "big()");
}

static void test_time(void)
{
	double t;
	char buf[32];

	CHECK(!diag_parse_rfc3339("2026-12-01T03:00:00Z", &t) && t == 1796094000);
	CHECK(!diag_parse_rfc3339("2026-12-01T05:00:00+02:00", &t) && t == 1796094000);
	CHECK(!diag_parse_rfc3339("2026-12-01T03:00:00.5Z", &t) && t == 1796094000.5);
	diag_rfc3339(1796094000, buf, sizeof(buf));
	CHECK_STR(buf, "2026-12-01T03:00:00Z");
	CHECK(diag_parse_rfc3339("2026-12-01T03:00:00", &t));
	CHECK(diag_parse_rfc3339("2026-13-01T03:00:00Z", &t));
	CHECK(diag_parse_rfc3339("yesterday", &t));
	CHECK(diag_parse_rfc3339("2026-12-01T03:00:00Zjunk", &t));
	CHECK(diag_parse_rfc3339("", &t));
}

/* The rules of diag_capacity.c and diag_trend.c over a built history. */
static bool has(const struct diag_result *r, enum diag_rule_id id, const char *in_title,
		const char *in_cause, const char *in_action)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->f[i].rule == id && strstr(r->f[i].title, in_title) &&
		    strstr(r->f[i].cause, in_cause) && strstr(r->f[i].action, in_action))
			return true;
	return false;
}

static void test_capacity(void)
{
	struct diag_history h;
	struct diag_snap a, b;
	struct diag_input in = { .start = &a, .end = &b, .cores = 2, .h = NULL };
	struct diag_result r;

	/* 2 idle HTTP workers, CPUs 95% busy over 10 s (19 of 20 CPU-s), Odoo 0.5 s, pg 1 s */
	snap_at(&a, 1000);
	snap_at(&b, 1010);
	a.odoo_known = b.odoo_known = a.host_known = b.host_known = true;
	a.cpu_ticks = 1000;
	b.cpu_ticks = 3000;
	b.cpu_busy_ticks = 1900;
	b.odoo_cpu_ns = b.role_cpu_ns[ES_ROLE_ODOO_HTTP] = 500000000ull;
	b.role_cpu_ns[ES_ROLE_PG_BACKEND] = 1000000000ull;
	CHECK(!diag_evaluate(&in, &r));
	CHECK(has(&r, DIAG_R_CPU_ELSEWHERE, "CPUs 95% busy while the 2 HTTP workers were busy 0%",
		  "Odoo's workers used 0.5 s (3%); the most: processes erpscope does not track (not Odoo, Python or PostgreSQL) 17.5 s, pg_backend 1.0 s",
		  "more Odoo workers would not help"));
	CHECK(has(&r, DIAG_R_HOST, "CPUs 95% busy", "", "see cpu_not_odoo"));
	diag_result_free(&r);
	/* Odoo's workers use the CPU: not elsewhere */
	b.odoo_cpu_ns = b.role_cpu_ns[ES_ROLE_ODOO_HTTP] = 12000000000ull;
	CHECK(!diag_evaluate(&in, &r));
	CHECK(!has(&r, DIAG_R_CPU_ELSEWHERE, "", "", "") && has(&r, DIAG_R_HOST, "", "", "fewer workers"));
	diag_result_free(&r);
	/* a saturated pool on CPUs 40% busy: too few workers, the action says so */
	b.cpu_busy_ticks = 800;
	b.pools[0] = (struct diag_pool){ .port = 8069, .busy = 2, .busy_ns = 19000000000ull,
					 .waits = 40, .wait_ns = 40000000000ull };
	CHECK(!diag_evaluate(&in, &r));
	CHECK(has(&r, DIAG_R_POOL, "", "", "the CPUs were only 40% busy over the window: they have room for more workers"));
	diag_result_free(&r);
	b.cpu_busy_ticks = 1900;
	CHECK(!diag_evaluate(&in, &r));
	CHECK(has(&r, DIAG_R_POOL, "", "", "but the CPUs were 95% busy: more workers would wait"));
	CHECK(!has(&r, DIAG_R_CPU_ELSEWHERE, "", "", ""));
	diag_result_free(&r);

	/* GPUs: one full and power-capped, one idle (gpu_idle is no pressure) */
	snap_at(&b, 1010);
	b.ngpus = 2;
	b.gpus[0] = (struct diag_gpu){ .index = "0", .name = "A100", .mem_known = true,
				       .mem_used = 38.0 * 1073741824.0, .mem_total = 40.0 * 1073741824.0,
				       .reasons = 0x4 };
	b.gpus[1] = (struct diag_gpu){ .index = "1", .name = "T4", .mem_known = true,
				       .mem_used = 1073741824.0, .mem_total = 16.0 * 1073741824.0,
				       .reasons = 0x1 };
	CHECK(!diag_evaluate(&in, &r));
	CHECK(r.n == 1 && has(&r, DIAG_R_GPU, "GPU 0 (A100): memory 95% used (38.0 of 40.0 GiB); clocks held down by sw_power_cap",
			      "nearly out of memory", "nvidia-smi"));
	diag_result_free(&r);

	/* History: /grow sends 3 statements per request for 10 minutes, then 100 from t0 + 600 */
	CHECK(!diag_history_init(&h));
	in.h = &h;
	for (int i = 0; i <= 180; i++) {
		struct diag_snap s;
		double t = 10000 + 5.0 * i;
		uint64_t n = (uint64_t)i * 2, before = n < 240 ? n : 240;

		snap_at(&s, t);
		s.routes_known = true;
		s.nroutes = 1;
		snprintf(s.routes[0].key, sizeof(s.routes[0].key), "/grow");
		s.routes[0].count = n;
		s.routes[0].pg_stmts = before * 3 + (n - before) * 100;
		/* WAL checkpoints: one every 10 s from t0 + 700 */
		s.ckpt_known = true;
		s.ckpts[0] = 2;
		s.ckpts[1] = t > 10700 ? (uint64_t)(t - 10700) / 10 : 0;
		s.ckpts[2] = (uint64_t)i; /* requested ones: counted, not judged */
		diag_history_snap(&h, &s);
	}
	in.from = 10000 + 840;
	in.to = 10000 + 900;
	diag_history_window(&h, in.from, in.to, &in.start, &in.end);
	CHECK(in.start && in.end && in.start->t == 10840 && in.end->t == 10900);
	CHECK(!diag_evaluate(&in, &r));
	CHECK(has(&r, DIAG_R_STMTS_RISING, "route /grow: 3 -> 100 PostgreSQL statements per request since 02:56:40Z",
		  "in the window 24 requests, 2400 statements; since 02:56:40Z 120 requests, 12000 statements; before: 240 requests, 720 statements", "what changed"));
	CHECK(has(&r, DIAG_R_CHECKPOINTS, "checkpoints too frequent: 6 forced by WAL volume (max_wal_size) within 55 s, one every 11 s at most",
		  "", "raise max_wal_size"));
	diag_result_free(&r);
	/* before the rise and the checkpoints: neither */
	in.from = 10000 + 300;
	in.to = 10000 + 590;
	diag_history_window(&h, in.from, in.to, &in.start, &in.end);
	CHECK(!diag_evaluate(&in, &r));
	CHECK(!has(&r, DIAG_R_STMTS_RISING, "", "", "") && !has(&r, DIAG_R_CHECKPOINTS, "", "", ""));
	diag_result_free(&r);
	diag_history_free(&h);
}

/* One /grow point: n requests, stmts statements, at t. */
static void grow_snap(struct diag_history *h, double t, uint64_t n, uint64_t stmts)
{
	struct diag_snap s;

	snap_at(&s, t);
	s.routes_known = true;
	s.nroutes = 1;
	snprintf(s.routes[0].key, sizeof(s.routes[0].key), "/grow");
	s.routes[0].count = n;
	s.routes[0].pg_stmts = stmts;
	diag_history_snap(h, &s);
}

/*
 * The daemon's first snapshot splits a burst of 6 requests at 3 statements
 * each (3 before it, 3 after); 5 minutes later 12 at 60: the 3 before the
 * first snapshot are before the rise too, so the rule sees 6 and finds it.
 * Once the history no longer reaches back to the daemon's start, the counts
 * at its oldest point are not the history's: then only the 3 after it are.
 */
static void test_rising_split(void)
{
	struct diag_history h;
	struct diag_input in = { .cores = 2 };
	struct diag_result r;
	double t = 20000;

	CHECK(!diag_history_init(&h));
	in.h = &h;
	grow_snap(&h, t, 3, 9);
	grow_snap(&h, t + 5, 6, 18);
	for (t += 10; t < 20300; t += 5)
		grow_snap(&h, t, 6, 18);
	for (int i = 1; i <= 12; i++, t += 5)
		grow_snap(&h, t, 6 + (uint64_t)i, 18 + 60 * (uint64_t)i);
	CHECK(diag_history_from_start(&h));
	in.from = 20300;
	in.to = t;
	diag_history_window(&h, in.from, in.to, &in.start, &in.end);
	CHECK(in.start && in.end && in.start->t == 20300);
	CHECK(!diag_evaluate(&in, &r));
	CHECK(has(&r, DIAG_R_STMTS_RISING, "route /grow: 3 -> 60 PostgreSQL statements per request since 05:33:25Z",
		  "before: 6 requests, 18 statements (since the daemon started)", ""));
	diag_result_free(&r);

	/* a day on: the first snapshot is gone from the coarse ring */
	h.coarse_wrapped = true;
	CHECK(!diag_history_from_start(&h));
	CHECK(!diag_evaluate(&in, &r));
	CHECK(!has(&r, DIAG_R_STMTS_RISING, "", "", ""));
	diag_result_free(&r);
	diag_history_free(&h);

	/* and the ring does wrap: DIAG_COARSE_N + 1 minutes */
	CHECK(!diag_history_init(&h));
	for (unsigned int i = 0; i <= DIAG_COARSE_N; i++) {
		CHECK(diag_history_from_start(&h) == (i > 0));
		grow_snap(&h, 30000 + 60.0 * i, i, i);
	}
	CHECK(!diag_history_from_start(&h));
	diag_history_free(&h);
}

int main(void)
{
	test_json_get();
	test_event_parse();
	test_history_at();
	test_packed();
	test_merge();
	test_cron();
	test_rules();
	test_capacity();
	test_rising_split();
	test_sql();
	test_time();
	printf("diagnose history: %zu bytes\n", diag_history_bytes());
	return check_summary("test_diagnose");
}
