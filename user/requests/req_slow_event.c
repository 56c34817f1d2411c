// SPDX-License-Identifier: GPL-2.0
/*
 * Slow requests one by one: an http_slow_request event in /events for each
 * request that lasted --http.slow-request-threshold or more, with where its
 * time went and the statements it sent, heaviest first. The statements come
 * from the pg probe's per-client ring of the last ES_PG_CLIENT_RECENT
 * statements (bpf/pg_client.h), kept to those that ended within the
 * request: a request that sent more is described by its last ones, and the
 * event says how many it sent in all. With the Python probe on, the stacks
 * its worker was seen in most, on and off CPU, while serving it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>

#include "../../bpf/pg_client.h"
#include "core/erpscope.h"
#include "core/events.h"
#include "core/json.h"
#include "core/log.h"
#include "pg/pg.h"
#include "python/python.h"
#include "procs/title.h"
#include "requests/requests.h"

#define TOP_STATEMENTS 5

struct stmt_sum {
	__u64 fp;
	uint64_t calls, ns;
};

static int by_time(const void *a, const void *b)
{
	const struct stmt_sum *x = a, *y = b;

	return x->ns < y->ns ? 1 : x->ns > y->ns ? -1 : 0;
}

/* The statements client tgid ended within [start, end], summed by fingerprint; their count. */
static size_t statements(struct erpscope *es, __u32 tgid, uint64_t start, uint64_t end,
			 struct stmt_sum *out)
{
	struct es_pg_client *v;
	size_t n = 0;

	if (es->pg_clients_fd < 0 || !(v = malloc(sizeof(*v))))
		return 0;
	if (bpf_map_lookup_elem(es->pg_clients_fd, &tgid, v))
		goto out;
	for (unsigned int i = 0; i < ES_PG_CLIENT_RECENT && i < v->next; i++) {
		const struct es_pg_client_stmt *s = &v->recent[i];
		size_t j;

		if (s->end_ns < start || s->end_ns > end)
			continue;
		for (j = 0; j < n && out[j].fp != s->fp; j++)
			;
		if (j == n)
			out[n++] = (struct stmt_sum){ .fp = s->fp };
		out[j].calls++;
		out[j].ns += s->dur_ns;
	}
	qsort(out, n, sizeof(*out), by_time);
out:
	free(v);
	return n;
}

static void statements_json(struct req_priv *rp, struct json *j, const struct req_ended *r)
{
	struct stmt_sum sums[ES_PG_CLIENT_RECENT];
	/* The pg probe stamps a statement when its end is accounted: a little after. */
	size_t n = statements(rp->es, r->tgid, r->start_ns, r->end_ns + 1000000, sums);
	char fp[20];
	const char *text;

	json_array_begin(j, "top_statements");
	for (size_t i = 0; i < n && i < TOP_STATEMENTS; i++) {
		json_object_begin(j, NULL);
		snprintf(fp, sizeof(fp), "%016llx", (unsigned long long)sums[i].fp);
		json_str(j, "fingerprint", fp);
		text = pg_fingerprint_text(rp->es, sums[i].fp);
		if (text)
			json_str(j, "query", text);
		else
			json_null(j, "query");
		json_u64(j, "calls", sums[i].calls);
		json_double(j, "seconds", (double)sums[i].ns / 1e9);
		json_object_end(j);
	}
	json_array_end(j);
}

/*
 * The Python stacks seen most while it ran (the Python probe's samples of
 * its worker that carry its route and RPC), folded outermost first.
 */
static void stacks_json(struct req_priv *rp, struct json *j, const struct req_ended *r)
{
	static const struct {
		const char *key;
		enum es_py_kind kind;
	} kinds[] = { { "cpu_stack", ES_PY_CPU }, { "offcpu_stack", ES_PY_OFFCPU } };
	const struct req_head *h = r->head;
	uint64_t since_ms = r->start_ns / 1000000;
	char folded[2048];

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (py_profile_top_stack(rp->es, r->tgid, kinds[i].kind, h->route,
					 h->rpc ? h->model : "", h->rpc ? h->rpc_method : "", since_ms,
					 folded, sizeof(folded)))
			json_str(j, kinds[i].key, folded);
		else
			json_null(j, kinds[i].key);
	}
}

static void parts_json(struct json *j, const struct req_parts *p)
{
	json_object_begin(j, "parts_seconds");
	for (int i = 0; i < REQ_PART_COUNT; i++) {
		if (i == REQ_PART_PG ? p->pg : p->sched)
			json_double(j, req_part_names[i], (double)p->ns[i] / 1e9);
	}
	json_object_end(j);
	if (p->pg)
		json_u64(j, "pg_statements", p->pg_stmts);
}

void req_slow_event(struct req_priv *rp, const struct req_ended *r)
{
	const struct req_head *h = r->head;
	uint64_t ns = r->end_ns > r->start_ns ? r->end_ns - r->start_ns : 0;
	char code[16], worker[16];
	struct json j;
	int64_t id;
	int err;

	if (ns < (uint64_t)rp->es->cfg.http_slow_ms * 1000000ull || h->session)
		return;
	req_code_label(r->code, code, sizeof(code));
	json_init(&j);
	json_object_begin(&j, NULL);
	snprintf(worker, sizeof(worker), "%u", r->tgid);
	json_str(&j, "role", role_name(r->role));
	json_str(&j, "worker", worker);
	json_u64(&j, "pid", r->tgid);
	json_u64(&j, "tid", r->tid);
	json_str(&j, "method", req_method_name(h->method));
	json_str(&j, "route", h->route);
	if (h->rpc) {
		json_str(&j, "model", h->model);
		json_str(&j, "rpc_method", h->rpc_method);
	} else {
		json_null(&j, "model");
		json_null(&j, "rpc_method");
	}
	json_str(&j, "code", code);
	json_double(&j, "duration_seconds", (double)ns / 1e9);
	if (r->parts) {
		parts_json(&j, r->parts);
		if (r->parts->pg)
			statements_json(rp, &j, r);
	}
	stacks_json(rp, &j, r);
	json_object_end(&j);
	err = json_finish(&j);
	id = err ? err : events_add(rp->es->events, "http_slow_request", j.buf, j.len);
	if (id < 0)
		log_warn("cannot log event", "probe=requests type=http_slow_request err=%d", (int)id);
	json_free(&j);
}
