// SPDX-License-Identifier: GPL-2.0
/*
 * What the rules need from the other capabilities, read through their
 * public accessors (tcp, requests, pg) and the event log: one snapshot of
 * cumulative counters, and the new events.
 */
#include <stdio.h>
#include <string.h>

#include "core/erpscope.h"
#include "core/events.h"
#include "diagnose/diagnose.h"
#include "host/host.h"
#include "pg/pg.h"
#include "procs/title.h"
#include "requests/requests.h"
#include "tcp/tcp.h"

/* Keeps the DIAG_ROUTES routes (and RPCs) with the most time. */
static void on_route(void *arg, const struct req_total *t)
{
	struct diag_snap *s = arg;
	unsigned int at = s->nroutes;

	if (at == DIAG_ROUTES) {
		at = 0;
		for (unsigned int i = 1; i < DIAG_ROUTES; i++)
			if (s->routes[i].sum_ns < s->routes[at].sum_ns)
				at = i;
		if (s->routes[at].sum_ns >= t->sum_ns)
			return;
	} else {
		s->nroutes++;
	}
	snprintf(s->routes[at].key, sizeof(s->routes[at].key), "%.63s", t->key);
	s->routes[at].role = (uint8_t)t->role;
	s->routes[at].rpc = t->rpc;
	s->routes[at].count = t->count;
	s->routes[at].sum_ns = t->sum_ns;
	s->routes[at].pg_stmts = t->pg_stmts;
	s->routes[at].pg_ns = t->pg_ns;
}

static void on_stmt(void *arg, const struct pg_stmt *st)
{
	struct diag_snap *s = arg;
	const struct pg_row *r = st->row;
	unsigned int at = s->nstmts;

	s->pg_total_ns += r->total_ns;
	s->pg_calls += r->calls;
	if (r->fp == ES_PG_FP_OTHER)
		return;
	if (at == DIAG_STMTS) {
		at = 0;
		for (unsigned int i = 1; i < DIAG_STMTS; i++)
			if (s->stmts[i].total_ns < s->stmts[at].total_ns)
				at = i;
		if (s->stmts[at].total_ns >= r->total_ns)
			return;
	} else {
		s->nstmts++;
	}
	s->stmts[at] = (struct diag_stmt){ .fp = r->fp, .calls = r->calls, .total_ns = r->total_ns,
					   .lock_ns = r->lock_ns, .lock_waits = r->lock_waits,
					   .misses = r->misses };
	if (st->sender_role)
		snprintf(s->stmts[at].sender, sizeof(s->stmts[at].sender), "%s%s%s", st->sender_role,
			 st->sender_worker && st->sender_worker[0] ? "/" : "",
			 st->sender_worker ? st->sender_worker : "");
}

/* Keeps the cluster with the highest share of its max_connections. */
static void on_cluster(void *arg, const char *name, unsigned int conns, int max)
{
	struct diag_snap *s = arg;

	if (max <= 0)
		return;
	if (s->max_conns && (double)conns / max <= (double)s->conns / s->max_conns)
		return;
	snprintf(s->cluster, sizeof(s->cluster), "%.39s", name);
	s->conns = conns;
	s->max_conns = (uint32_t)max;
}

void diag_read_snap(struct erpscope *es, double now, struct diag_snap *s)
{
	struct tcp_pool_stats ps;
	struct host_view hv;

	memset(s, 0, sizeof(*s));
	s->t = now;
	if (!tcp_pool_stats(es, ES_ROLE_ODOO_HTTP, &ps)) {
		s->pool_known = true;
		s->http_busy = (uint32_t)ps.busy;
		s->http_idle = (uint32_t)ps.idle;
		s->busy_ns = ps.busy_ns;
		s->waits = ps.waits;
		s->wait_ns = ps.wait_ns;
	}
	s->routes_known = !requests_totals(es, on_route, s);
	s->pg_known = !pg_statements(es, on_stmt, s);
	s->conns_known = !pg_clusters(es, on_cluster, s) && s->max_conns;
	if (!host_view(es, &hv)) {
		s->host_known = hv.cpu_ok && hv.mem_ok;
		s->cpu_busy_ticks = hv.cpu_busy_ticks;
		s->cpu_ticks = hv.cpu_ticks;
		s->mem_total = hv.mem_total;
		s->mem_available = hv.mem_available;
		snprintf(s->fs_mount, sizeof(s->fs_mount), "%.63s", hv.fs_mount);
		s->fs_used = hv.fs_used;
		s->psi_known = hv.psi_ok;
		s->psi_mem_us = hv.psi_some_us[1];
		s->psi_io_us = hv.psi_some_us[2];
	}
}

struct ingest {
	struct diag_history *h;
	double now;
};

static void on_event(void *arg, uint64_t id, double t, const char *type, const char *body,
		     size_t len)
{
	struct ingest *in = arg;
	struct diag_event ev;

	in->h->last_event_id = id;
	if (diag_event_parse(type, body, len, t, &ev))
		diag_history_event(in->h, &ev, in->now);
}

void diag_read_events(struct erpscope *es, struct diag_history *h, double now)
{
	struct ingest in = { .h = h, .now = now };

	if (es->events)
		events_foreach(es->events, h->last_event_id, on_event, &in);
}
