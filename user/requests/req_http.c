// SPDX-License-Identifier: GPL-2.0
/*
 * GET /requests (text, or ?format=json; ?role= filters): the requests in
 * flight now (worker, serving thread and its scheduler state from the
 * sched probe, method, route, RPC, age) and the REQ_SLOW_K slowest that
 * ended in the last --python.profile-window (requests/req_slow.c). Only
 * what the probe keeps is shown: templated routes and RPC names, never a
 * query string, a header or a body. Titles and routes are untrusted:
 * escaped in both forms.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/erpscope.h"
#include "core/http.h"
#include "core/json.h"
#include "procs/proctable.h"
#include "requests/req_http.h"
#include "requests/requests.h"
#include "sched/sched.h"

struct rq_walk {
	struct erpscope *es;
	int role; /* -1: all */
	bool json;
	struct json j;
	FILE *f; /* the text form */
	uint64_t now_ns;
	double now_unix;
	unsigned int n;
};

/* key=value, the value's bytes outside printable ASCII (and " \ space) as \xNN. */
static void text_kv(FILE *f, const char *key, const char *v)
{
	fprintf(f, " %s=", key);
	if (!*v)
		fputs("-", f);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p > ' ' && *p < 0x7f && *p != '"' && *p != '\\')
			fputc(*p, f);
		else
			fprintf(f, "\\x%02x", *p);
	}
}

/* An RPC's model and method, null when model is "". */
static void json_rpc(struct json *j, const char *model, const char *method)
{
	if (model[0]) {
		json_str(j, "model", model);
		json_str(j, "method", method);
	} else {
		json_null(j, "model");
		json_null(j, "method");
	}
}

static double secs(uint64_t a, uint64_t b)
{
	return a > b ? (double)(a - b) / 1e9 : 0;
}

static void one_inflight(void *arg, const struct req_inflight *r)
{
	struct rq_walk *rw = arg;
	const struct req_head *h = r->head;
	const struct worker *w = procs_lookup(rw->es->procs, r->tgid);
	const char *state = NULL, *route = h->route[0] ? h->route : "";
	uint64_t since;
	bool have_state;

	if (rw->role >= 0 && (int)r->role != rw->role)
		return;
	rw->n++;
	have_state = !sched_thread_state(rw->es, r->tid, &state, &since);
	if (rw->json) {
		struct json *j = &rw->j;

		json_object_begin(j, NULL);
		json_str(j, "role", role_name(r->role));
		json_u64(j, "pid", r->tgid);
		json_u64(j, "tid", r->tid);
		if (w)
			json_str(j, "comm", w->comm);
		else
			json_null(j, "comm");
		json_str(j, "http_method", route[0] ? req_method_name(h->method) : "");
		json_str(j, "route", route);
		json_bool(j, "session", h->session);
		json_rpc(j, h->rpc ? h->model : "", h->rpc_method);
		json_double(j, "age_seconds", secs(rw->now_ns, r->start_ns));
		if (have_state) {
			json_str(j, "state", state);
			json_double(j, "state_seconds", secs(rw->now_ns, since));
		} else {
			json_null(j, "state");
			json_null(j, "state_seconds");
		}
		json_object_end(j);
		return;
	}
	fprintf(rw->f, "%s pid=%u tid=%u", role_name(r->role), r->tgid, r->tid);
	text_kv(rw->f, "comm", w ? w->comm : "");
	text_kv(rw->f, "method", route[0] ? req_method_name(h->method) : "");
	text_kv(rw->f, "route", route);
	if (h->rpc) {
		text_kv(rw->f, "model", h->model);
		text_kv(rw->f, "rpc", h->rpc_method);
	}
	fprintf(rw->f, " age=%.3fs", secs(rw->now_ns, r->start_ns));
	if (have_state)
		fprintf(rw->f, " state=%s for=%.3fs", state, secs(rw->now_ns, since));
	fprintf(rw->f, "%s\n", h->session ? " session" : "");
}

static void one_slow(struct rq_walk *rw, enum es_role role, const struct req_slow_entry *e)
{
	double end = rw->now_unix - secs(rw->now_ns, e->end_ns);
	char code[16];

	req_code_label(e->code, code, sizeof(code));
	if (rw->json) {
		struct json *j = &rw->j;

		json_object_begin(j, NULL);
		json_str(j, "role", role_name(role));
		json_u64(j, "pid", e->pid);
		json_str(j, "http_method", req_method_name(e->method));
		json_str(j, "route", e->route);
		json_rpc(j, e->model, e->rpc_method);
		json_str(j, "code", code);
		json_double(j, "duration_seconds", (double)e->ns / 1e9);
		json_double(j, "end_time", end);
		json_object_end(j);
		return;
	}
	fprintf(rw->f, "%s pid=%u", role_name(role), e->pid);
	text_kv(rw->f, "method", req_method_name(e->method));
	text_kv(rw->f, "route", e->route);
	if (e->model[0]) {
		text_kv(rw->f, "model", e->model);
		text_kv(rw->f, "rpc", e->rpc_method);
	}
	fprintf(rw->f, " code=%s duration=%.3fs ended=%.1fs_ago\n", code, (double)e->ns / 1e9,
		secs(rw->now_ns, e->end_ns));
}

static void slowest(struct rq_walk *rw, struct req_priv *rp, struct req_slow_entry *buf)
{
	for (int r = 0; r < ES_ROLE_COUNT; r++) {
		unsigned int n;

		if (rw->role >= 0 && r != rw->role)
			continue;
		n = req_slow_get(rp->slow, (unsigned int)r, rw->now_ns, buf, REQ_SLOW_K);
		for (unsigned int i = 0; i < n; i++)
			one_slow(rw, (enum es_role)r, &buf[i]);
		rw->n += n;
	}
}

static int bad(struct http_exchange *x, const char *why)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "bad request: %s\n", why);
	return http_reply_text(x, 400, "text/plain; charset=utf-8", msg);
}

static int render(struct rq_walk *rw, struct req_priv *rp, struct http_exchange *x)
{
	struct req_slow_entry *buf = calloc(REQ_SLOW_K, sizeof(*buf));
	double window = (double)rw->es->cfg.py_window_ms / 1000;
	char *text = NULL;
	size_t len = 0;
	int err;

	if (!buf)
		return -ENOMEM;
	if (rw->json) {
		json_init(&rw->j);
		json_object_begin(&rw->j, NULL);
		json_double(&rw->j, "window_seconds", window);
		json_array_begin(&rw->j, "in_flight");
		req_conns_foreach(rp, one_inflight, rw);
		json_array_end(&rw->j);
		json_array_begin(&rw->j, "slowest");
		slowest(rw, rp, buf);
		json_array_end(&rw->j);
		json_object_end(&rw->j);
		free(buf);
		err = json_finish(&rw->j);
		if (err) {
			json_free(&rw->j);
			return err;
		}
		x->content_type = "application/json";
		x->body = rw->j.buf;
		x->len = rw->j.len;
		x->status = 200;
		return 0;
	}
	rw->f = open_memstream(&text, &len);
	if (!rw->f) {
		free(buf);
		return -ENOMEM;
	}
	fputs("# in flight\n", rw->f);
	req_conns_foreach(rp, one_inflight, rw);
	if (!rw->n)
		fputs("(none)\n", rw->f);
	fprintf(rw->f, "# slowest of the last %gs (at most %u per role)\n", window, REQ_SLOW_K);
	rw->n = 0;
	slowest(rw, rp, buf);
	if (!rw->n)
		fputs("(none)\n", rw->f);
	free(buf);
	if (fclose(rw->f)) {
		free(text);
		return -ENOMEM;
	}
	x->content_type = "text/plain; charset=utf-8";
	x->body = text;
	x->len = len;
	x->status = 200;
	return 0;
}

int requests_http(void *arg, struct http_exchange *x)
{
	struct erpscope *es = arg;
	const char *fmt = http_query(x, "format"), *role_s = http_query(x, "role");
	struct rq_walk rw = { .es = es, .role = -1 };
	struct req_priv *rp = requests_priv(es);
	struct timespec rt;

	if (fmt && strcmp(fmt, "json") && strcmp(fmt, "text"))
		return bad(x, "format must be text or json");
	rw.json = fmt && !strcmp(fmt, "json");
	if (role_s) {
		for (int r = 0; r < ES_ROLE_COUNT; r++) {
			if (!strcmp(role_s, role_name((enum es_role)r)))
				rw.role = r;
		}
		if (rw.role < 0)
			return bad(x, "unknown role");
	}
	if (!rp)
		return http_reply_text(x, 503, "text/plain; charset=utf-8",
				       "the requests probe is not running\n");
	clock_gettime(CLOCK_REALTIME, &rt);
	rw.now_ns = clock_ns();
	rw.now_unix = (double)rt.tv_sec + (double)rt.tv_nsec / 1e9;
	return render(&rw, rp, x);
}
