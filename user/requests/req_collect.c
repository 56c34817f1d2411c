// SPDX-License-Identifier: GPL-2.0
/* The requests probe's metric families: one table, one loop. */
#include <stdio.h>
#include <string.h>

#include "core/expo.h"
#include "core/libc_uprobes.h"
#include "procs/title.h"
#include "requests/requests.h"

struct emit {
	struct req_priv *rp;
	struct expo *e;
	enum es_role role;
};

static const char *const session_routes[REQ_SESS_COUNT] = {
	[REQ_SESS_WEBSOCKET] = "/websocket",
	[REQ_SESS_LONGPOLLING] = "/longpolling/poll",
};

void req_code_label(unsigned int code, char *buf, size_t size)
{
	if (code == REQ_CODE_KILLED)
		snprintf(buf, size, "killed");
	else if (code == REQ_CODE_RESET)
		snprintf(buf, size, "reset");
	else if (code == REQ_CODE_UNKNOWN || code >= REQ_CODE_COUNT)
		snprintf(buf, size, "unknown");
	else
		snprintf(buf, size, "%u", code);
}

static void hist(struct expo *e, const struct expo_label *l, size_t nl, const struct req_hist *h)
{
	uint64_t counts[REQ_NEDGES + 1];

	memcpy(counts, h->buckets, sizeof(counts));
	expo_histogram(e, l, nl, req_edges, counts, REQ_NEDGES, (double)h->sum_ns / 1e9);
}

static void route_series(void *arg, const char *key, uint32_t sub, const struct req_hist *h)
{
	struct emit *em = arg;
	struct expo_label l[4];
	char code[16];

	req_code_label(sub % 2048u, code, sizeof(code));
	l[0] = (struct expo_label){ "role", role_name(em->role) };
	l[1] = (struct expo_label){ "route", key ? key : "other" };
	l[2] = (struct expo_label){ "method", req_method_name((enum req_method)(sub / 2048u)) };
	l[3] = (struct expo_label){ "code", code };
	hist(em->e, l, 4, h);
}

/* An RPC key "model method" (NULL: other) as labels role, model, method in l[0..2]. */
static void rpc_labels(const struct emit *em, const char *key, char *model, size_t size,
		       struct expo_label *l)
{
	const char *method = "other";
	char *sp;

	snprintf(model, size, "%s", key ? key : "other");
	sp = key ? strchr(model, ' ') : NULL;
	if (sp) {
		*sp = 0;
		method = sp + 1;
	}
	l[0] = (struct expo_label){ "role", role_name(em->role) };
	l[1] = (struct expo_label){ "model", model };
	l[2] = (struct expo_label){ "method", method };
}

static void rpc_series(void *arg, const char *key, uint32_t sub, const struct req_hist *h)
{
	struct emit *em = arg;
	struct expo_label l[3];
	char model[REQ_KEY_MAX];

	rpc_labels(em, key, model, sizeof(model), l);
	hist(em->e, l, 3, h);
}

/* The parts known of a key, one sample each, after its nl labels in l. */
static void part_samples(struct expo *e, struct expo_label *l, size_t nl, const struct req_parts *p)
{
	for (int i = 0; i < REQ_PART_COUNT; i++) {
		if (i == REQ_PART_PG ? !p->pg : !p->sched)
			continue;
		l[nl] = (struct expo_label){ "part", req_part_names[i] };
		expo_sample(e, l, nl + 1, (double)p->ns[i] / 1e9);
	}
}

static void route_parts(void *arg, const char *key, const struct req_parts *p)
{
	struct emit *em = arg;
	struct expo_label l[3] = { { "role", role_name(em->role) }, { "route", key ? key : "other" } };

	part_samples(em->e, l, 2, p);
}

static void rpc_parts(void *arg, const char *key, const struct req_parts *p)
{
	struct emit *em = arg;
	struct expo_label l[4];
	char model[REQ_KEY_MAX];

	rpc_labels(em, key, model, sizeof(model), l);
	part_samples(em->e, l, 3, p);
}

static void route_stmts(void *arg, const char *key, const struct req_parts *p)
{
	struct emit *em = arg;
	struct expo_label l[2] = { { "role", role_name(em->role) }, { "route", key ? key : "other" } };

	if (p->pg)
		expo_sample_u64(em->e, l, 2, p->pg_stmts);
}

static void rpc_stmts(void *arg, const char *key, const struct req_parts *p)
{
	struct emit *em = arg;
	struct expo_label l[3];
	char model[REQ_KEY_MAX];

	rpc_labels(em, key, model, sizeof(model), l);
	if (p->pg)
		expo_sample_u64(em->e, l, 3, p->pg_stmts);
}

static void emit_routes(struct emit *em, const struct req_role *r)
{
	req_table_foreach(r->routes, route_series, em);
}

static void emit_rpcs(struct emit *em, const struct req_role *r)
{
	req_table_foreach(r->rpcs, rpc_series, em);
}

static void emit_route_parts(struct emit *em, const struct req_role *r)
{
	req_table_foreach_parts(r->routes, route_parts, em);
}

static void emit_rpc_parts(struct emit *em, const struct req_role *r)
{
	req_table_foreach_parts(r->rpcs, rpc_parts, em);
}

static void emit_route_stmts(struct emit *em, const struct req_role *r)
{
	req_table_foreach_parts(r->routes, route_stmts, em);
}

static void emit_rpc_stmts(struct emit *em, const struct req_role *r)
{
	req_table_foreach_parts(r->rpcs, rpc_stmts, em);
}

static void emit_sessions(struct emit *em, const struct req_role *r)
{
	struct expo_label l[2] = { { "role", role_name(em->role) } };

	for (int s = 0; s < REQ_SESS_COUNT; s++) {
		l[1] = (struct expo_label){ "route", session_routes[s] };
		expo_sample_u64(em->e, l, 2, r->sessions[s]);
	}
}

static void emit_failures(struct emit *em, const struct req_role *r)
{
	struct expo_label l[2] = { { "role", role_name(em->role) } };

	for (int f = REQ_FAIL_LINE; f < REQ_FAIL_COUNT; f++) {
		l[1] = (struct expo_label){ "reason", req_fail_name((enum req_fail)f) };
		expo_sample_u64(em->e, l, 2, r->failures[f]);
	}
}

static void emit_labelled(struct emit *em, const struct req_role *r)
{
	struct expo_label l[2] = { { "role", role_name(em->role) } };

	l[1] = (struct expo_label){ "family", "routes" };
	expo_sample_u64(em->e, l, 2, req_table_labelled(r->routes));
	l[1] = (struct expo_label){ "family", "rpcs" };
	expo_sample_u64(em->e, l, 2, req_table_labelled(r->rpcs));
}

static void emit_evictions(struct emit *em, const struct req_role *r)
{
	struct expo_label l[2] = { { "role", role_name(em->role) } };

	l[1] = (struct expo_label){ "family", "routes" };
	expo_sample_u64(em->e, l, 2, req_table_evictions(r->routes));
	l[1] = (struct expo_label){ "family", "rpcs" };
	expo_sample_u64(em->e, l, 2, req_table_evictions(r->rpcs));
}

/* Per-role families: emitted for each role that served a request. */
static const struct family {
	const char *name;
	enum expo_type type;
	const char *help;
	void (*emit)(struct emit *em, const struct req_role *r);
} families[] = {
	{ "erpscope_http_request_duration_seconds", EXPO_HISTOGRAM,
	  "HTTP requests served by tracked workers, from their first bytes received to their response's last send, by templated route, method and status (killed: the worker died before answering; reset: the connection ended before an answer); the top --http.top-routes routes per role, the rest route=\"other\", requests that did not parse route=\"unparsed\".",
	  emit_routes },
	{ "erpscope_odoo_rpc_duration_seconds", EXPO_HISTOGRAM,
	  "Odoo RPCs (/web/dataset/call_kw|call_button/<model>/<method>, execute_kw over /jsonrpc and /xmlrpc/2/object) by model and method; the top --http.top-rpcs per role, the rest model=\"other\".",
	  emit_rpcs },
	{ "erpscope_http_request_time_seconds_total", EXPO_COUNTER,
	  "Where requests' time went, by route: the serving thread on CPU (cpu), waiting for one (runqueue), for the disk (iowait), blocked otherwise, sleeping less the time PostgreSQL spent on its statements (sleep), and that time (pg). Requests with an answer, not odoo_gevent's (one thread serves many at once).",
	  emit_route_parts },
	{ "erpscope_odoo_rpc_time_seconds_total", EXPO_COUNTER,
	  "Where Odoo RPCs' time went, by model and method; parts as in erpscope_http_request_time_seconds_total.",
	  emit_rpc_parts },
	{ "erpscope_http_request_pg_statements_total", EXPO_COUNTER,
	  "PostgreSQL statements sent by workers while serving requests, by route.",
	  emit_route_stmts },
	{ "erpscope_odoo_rpc_pg_statements_total", EXPO_COUNTER,
	  "PostgreSQL statements sent by workers while serving Odoo RPCs, by model and method.",
	  emit_rpc_stmts },
	{ "erpscope_http_sessions_total", EXPO_COUNTER,
	  "Long-lived HTTP sessions (/websocket, /longpolling/poll) that ended: counted here, not in the request latency histogram.",
	  emit_sessions },
	{ "erpscope_http_parse_failures_total", EXPO_COUNTER,
	  "Requests whose first bytes did not parse: request_line (not an HTTP request line), too_long (no complete request line, nor a whole path before its query string, in the bytes kept: 512, 2048 for /jsonrpc and /xmlrpc); pipelined: requests sent behind another before its answer, not timed on their own.",
	  emit_failures },
	{ "erpscope_http_labelled_keys", EXPO_GAUGE,
	  "Routes (family=routes) and model.method pairs (family=rpcs) with series of their own, per role.",
	  emit_labelled },
	{ "erpscope_http_label_evictions_total", EXPO_COUNTER,
	  "Labelled routes or RPCs that handed their label to a hotter one; their counts moved to \"other\".",
	  emit_evictions },
};

void req_collect(struct req_priv *rp, struct expo *e)
{
	struct emit em = { .rp = rp, .e = e };
	struct expo_label l[1];

	for (int r = 0; r < ES_ROLE_COUNT; r++) {
		if (rp->roles[r].routes)
			req_table_rotate(rp->roles[r].routes);
		if (rp->roles[r].rpcs)
			req_table_rotate(rp->roles[r].rpcs);
	}
	for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
		expo_family(e, families[f].name, families[f].type, families[f].help);
		for (int r = 0; r < ES_ROLE_COUNT; r++) {
			const struct req_role *rr = &rp->roles[r];

			if (!rr->seen || !rr->routes || !rr->rpcs)
				continue;
			em.role = (enum es_role)r;
			families[f].emit(&em, rr);
		}
	}
	expo_family(
		e, "erpscope_http_processes_attached", EXPO_GAUGE,
		"HTTP workers whose C library's socket functions carry the requests probe's uprobes.");
	expo_sample_u64(e, NULL, 0, libc_uprobes_attached(rp->lu));
	expo_family(
		e, "erpscope_http_attach_failures_total", EXPO_COUNTER,
		"HTTP workers the requests probe could not attach to: their requests are not seen.");
	expo_sample_u64(e, NULL, 0, libc_uprobes_failures(rp->lu));
	expo_family(
		e, "erpscope_http_requests_lost_total", EXPO_COUNTER,
		"Requests not counted: events lost to a full ring (reason=ring), or more requests in flight than followed (reason=in_flight).");
	l[0] = (struct expo_label){ "reason", "ring" };
	expo_sample_u64(e, l, 1, rp->lost);
	l[0] = (struct expo_label){ "reason", "in_flight" };
	expo_sample_u64(e, l, 1, rp->conns_dropped);
}
