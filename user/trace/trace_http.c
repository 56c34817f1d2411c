// SPDX-License-Identifier: GPL-2.0
/*
 * GET /trace?seconds=N[&role=R][&worker=W][&pid=P]: records the next N
 * seconds (1..60, default 10) and answers with the Perfetto trace. The
 * loop is not held: the connection waits (http_defer) and the trace
 * poller's tick answers it once the time is up. One recording at a time;
 * another request meanwhile answers 429.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/erpscope.h"
#include "core/http.h"
#include "core/log.h"
#include "core/poller.h"
#include "procs/title.h"
#include "trace/trace.h"

#define TRACE_SECONDS_DEFAULT 10
#define TRACE_SECONDS_MAX 60
#define JSON "application/json"

int trace_http_error(struct http_exchange *x, int status, const char *why)
{
	char body[160];

	snprintf(body, sizeof(body), "{\"error\":\"%s\"}\n", why);
	return http_reply_text(x, status, JSON, body);
}

static int parse_filter(struct http_exchange *x, struct trace_filter *f, uint64_t *seconds)
{
	const char *s = http_query(x, "seconds"), *role = http_query(x, "role");
	const char *pid = http_query(x, "pid"), *worker = http_query(x, "worker");
	uint64_t v;

	*seconds = TRACE_SECONDS_DEFAULT;
	if (s && (http_parse_u64(s, seconds) || *seconds < 1 || *seconds > TRACE_SECONDS_MAX))
		return trace_http_error(x, 400, "seconds must be 1..60");
	f->role = -1;
	if (role) {
		for (int r = 0; r < ES_ROLE_COUNT; r++) {
			if (!strcmp(role, role_name((enum es_role)r)))
				f->role = r;
		}
		if (f->role < 0)
			return trace_http_error(x, 400, "unknown role");
	}
	if (pid) {
		if (http_parse_u64(pid, &v) || !v || v > UINT32_MAX)
			return trace_http_error(x, 400, "pid must be a process id");
		f->pid = (uint32_t)v;
	}
	if (worker) {
		if (http_parse_u64(worker, &v) || !v || v > UINT32_MAX)
			return trace_http_error(x, 400, "worker must be a worker label (its pid)");
		snprintf(f->worker, sizeof(f->worker), "%llu", (unsigned long long)v);
	}
	return 1;
}

static void name_file(struct trace_priv *tp)
{
	char host[64] = "host", when[32];
	time_t now = time(NULL);
	struct tm tm;

	gethostname(host, sizeof(host) - 1);
	for (char *c = host; *c; c++) {
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '-' || *c == '.'))
			*c = '_';
	}
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(tp->disposition, sizeof(tp->disposition),
		 "attachment; filename=erpscope-%s-%s.perfetto-trace", host, when);
}

int trace_http(void *arg, struct http_exchange *x)
{
	struct erpscope *es = arg;
	struct trace_priv *tp = trace_priv(es);
	struct trace_filter f = { .role = -1 };
	uint64_t seconds;
	int rc;

	if (!tp)
		return trace_http_error(x, 503, "traces are not available");
	rc = parse_filter(x, &f, &seconds);
	if (rc <= 0)
		return rc;
	/* HEAD learns what GET would answer without starting a recording. */
	if (x->method && !strcmp(x->method, "HEAD"))
		return http_reply_text(x, tp->recording ? 429 : 200, "application/octet-stream", "");
	if (tp->recording)
		return trace_http_error(x, 429, "a recording is running; one at a time");
	tp->later = http_defer(x);
	if (!tp->later)
		return -ENOMEM;
	tp->filter = f;
	name_file(tp);
	trace_rec_reset(&tp->rec);
	es->trace.consume = trace_rec_consume;
	es->trace.ctx = &tp->rec;
	tp->start_ns = clock_ns();
	tp->end_ns = tp->start_ns + seconds * 1000000000ull;
	tp->recording = true;
	trace_sink_update(tp);
	log_info("trace recording", "seconds=%llu", (unsigned long long)seconds);
	return 0;
}

static void finish(struct trace_priv *tp)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int err;

	uint64_t t0 = clock_ns();

	tp->recording = false;
	trace_sink_update(tp);
	err = trace_write(&tp->rec, &tp->filter, tp->start_ns, tp->end_ns, &buf, &len);
	tp->recordings++;
	tp->dropped_done += tp->rec.dropped + tp->rec.dropped_oldest;
	log_info("trace recorded", "events=%zu dropped=%llu bytes=%zu write_ms=%.1f err=%d",
		 tp->rec.n - tp->rec.first,
		 (unsigned long long)(tp->rec.dropped + tp->rec.dropped_oldest), len,
		 (double)(clock_ns() - t0) / 1e6, err);
	if (err) {
		char *body = strdup("{\"error\":\"the trace could not be written\"}\n");

		http_later_reply(tp->later, 500, JSON, NULL, body, body ? strlen(body) : 0);
	} else {
		http_later_reply(tp->later, 200, "application/octet-stream", tp->disposition,
				 (char *)buf, len);
	}
	tp->later = NULL;
	trace_rec_reset(&tp->rec);
}

void trace_http_tick(struct trace_priv *tp, uint64_t now_ns)
{
	if (tp->recording && now_ns >= tp->end_ns)
		finish(tp);
}

/* The server is gone, and with it the connection that waited. */
void trace_http_free(struct trace_priv *tp)
{
	tp->recording = false;
	tp->later = NULL;
	trace_rec_reset(&tp->rec);
}
