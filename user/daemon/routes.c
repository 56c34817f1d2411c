// SPDX-License-Identifier: GPL-2.0
#include "daemon/routes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/clock.h"
#include "core/erpscope.h"
#include "core/events.h"
#include "core/expo.h"
#include "core/http.h"
#include "core/log.h"
#include "core/mapstats.h"
#include "core/negotiate.h"
#include "pg/pg.h"
#include "procs/pools.h"
#include "procs/proctable.h"
#include "python/python.h"
#include "requests/req_http.h"
#include "core/selfstats.h"
#include "diagnose/diagnose.h"
#include "trace/trace.h"

static int handle_metrics(void *arg, struct http_exchange *x)
{
	struct erpscope *es = arg;
	uint64_t t0 = clock_ns();
	struct expo e;
	int err;

	expo_init(&e, negotiate_format(x->accept));
	selfstats_collect(es, &e);
	for (int i = 0; i < es->nprobes; i++) {
		struct probe *p = &es->probes[i];

		if (p->up && p->ops->collect && (err = p->ops->collect(p, &e)))
			log_warn("collect failed", "probe=%s err=%d", p->ops->name, err);
	}
	pools_collect(es->pools, &e);
	mapstats_collect(es, &e);
	httpd_collect(es->httpd, &e);
	for (int i = 0; i < es->npollers; i++) {
		struct poller *pl = &es->pollers[i];

		if (pl->up && pl->ops->collect)
			pl->ops->collect(pl, &e);
	}
	events_collect(es->events, &e);
	expo_family(&e, "erpscope_scrape_duration_seconds", EXPO_GAUGE,
		    "Time this scrape took to read the maps and format the text.");
	expo_sample(&e, NULL, 0, (double)(clock_ns() - t0) / 1e9);
	err = expo_finish(&e);
	if (err) {
		expo_free(&e);
		return err;
	}
	x->status = 200;
	x->content_type = expo_content_type(e.format);
	x->body = e.buf;
	x->len = e.len;
	es->scrapes++;
	/* The buffer now belongs to the response. */
	procs_scrape_done(es->procs, t0 / 1000000ull);
	return 0;
}

static int handle_index(void *arg, struct http_exchange *x)
{
	struct erpscope *es = arg;
	char page[2048];

	snprintf(page, sizeof(page),
		 "<!DOCTYPE html>\n<html><head><title>erpscope</title></head><body>\n"
		 "<h1>erpscope %s</h1>\n"
		 "<p>Kernel-level profiler for Odoo, PostgreSQL and Python hosts.</p>\n"
		 "<ul>\n<li><a href=\"%s\">%s</a>: Prometheus metrics</li>\n"
		 "<li><a href=\"/events\">/events</a>: OOM kills and worker deaths, as JSON</li>\n"
		 "<li><a href=\"/queries\">/queries</a>: top PostgreSQL statements (<a href=\"/queries?format=json\">JSON</a>)</li>\n"
		 "<li><a href=\"/workers\">/workers</a>: what each worker is doing now, with its Python stack (<a href=\"/workers?format=json\">JSON</a>)</li>\n"
		 "<li><a href=\"/requests\">/requests</a>: HTTP requests in flight and the slowest of the window (<a href=\"/requests?format=json\">JSON</a>)</li>\n"
		 "<li><a href=\"/diagnose\">/diagnose</a>: what is wrong, why and what to do, now or at a past time (<a href=\"/diagnose?format=json\">JSON</a>)</li>\n"
		 "<li><a href=\"/trace?seconds=10\">/trace?seconds=10</a>: record 10 s as a Perfetto trace; <a href=\"/traces\">/traces</a>: those the flight recorder saved</li>\n"
		 "<li><a href=\"/profile?kind=cpu&amp;seconds=60\">/profile</a>: Python CPU and off-CPU (<a href=\"/profile?kind=offcpu&amp;seconds=60\">kind=offcpu</a>) profiles, folded stacks</li>\n</ul>\n"
		 "</body></html>\n",
		 ERPSCOPE_VERSION, es->cfg.telemetry_path, es->cfg.telemetry_path);
	return http_reply_text(x, 200, "text/html; charset=utf-8", page);
}

/* Between two handlers: what the rings hold, so no handler run stalls them long. */
static void drain_between(void *arg)
{
	daemon_drain_rings(arg);
}

int routes_start(struct erpscope *es)
{
	struct http_limits lim = {
		.max_conns = es->cfg.web_max_conns,
		.client_rate = es->cfg.web_client_rate,
		.yield = drain_between,
		.web = es->web,
	};
	size_t n = 0;
	int err = 0;

	es->routes[n++] = (struct http_route){ "/", handle_index, false, .metrics = true };
	es->routes[n++] = (struct http_route){ es->cfg.telemetry_path, handle_metrics, false,
					       .metrics = true };
	es->routes[n++] = (struct http_route){ "/events", events_http, true, .metrics = false };
	es->routes[n++] = (struct http_route){ "/queries", pg_queries_http, true, .metrics = false };
	es->routes[n++] = (struct http_route){ "/profile", py_profile_http, true, .metrics = false };
	es->routes[n++] = (struct http_route){ "/workers", py_workers_http, true, .metrics = false };
	es->routes[n++] = (struct http_route){ "/requests", requests_http, true, .metrics = false };
	es->routes[n++] = (struct http_route){ "/diagnose", diagnose_http, true, .metrics = false };
	es->routes[n++] = (struct http_route){ "/trace", trace_http, true, .metrics = false };
	es->routes[n++] = (struct http_route){ "/traces", trace_files_http, true, .metrics = false };
	es->routes[n++] = (struct http_route){ "/traces/", trace_file_http, true, .metrics = false };
	es->httpd = httpd_start(es->cfg.listen_address, es->routes, n, &lim, es, &err);
	return es->httpd ? 0 : (err ? err : -EINVAL);
}
