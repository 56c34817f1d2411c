// SPDX-License-Identifier: GPL-2.0
/*
 * Rules against the past: a route's or RPC's statements per request in the
 * window against the history before it (4: "12 -> 480 statements per
 * request since 14:05"). The counters are cumulative, so any snapshot that
 * kept the route is a point of its curve, however many missed it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "diagnose/diagnose.h"

#define MIN_REQUESTS 5 /* on each side */

struct pt {
	double t;
	uint64_t count, stmts;
};

struct curve {
	const struct diag_route *r;
	struct pt *p;
	unsigned int n, cap;
};

static void route_point(void *arg, const struct diag_snap *s)
{
	struct curve *c = arg;

	if (c->n == c->cap)
		return;
	for (unsigned int i = 0; i < s->nroutes; i++) {
		const struct diag_route *r = &s->routes[i];

		if (r->rpc == c->r->rpc && r->role == c->r->role && !strcmp(r->key, c->r->key)) {
			c->p[c->n++] = (struct pt){ s->t, r->count, r->pg_stmts };
			return;
		}
	}
}

static double per(const struct pt *a, const struct pt *b)
{
	uint64_t n = diag_delta(b->count, a->count);

	return n ? (double)diag_delta(b->stmts, a->stmts) / (double)n : 0;
}

static void hhmm(double t, char *buf, size_t size)
{
	time_t s = (time_t)t;
	struct tm tm;

	gmtime_r(&s, &tm);
	strftime(buf, size, "%H:%M:%SZ", &tm);
}

static int judge(const struct diag_input *in, struct diag_result *res, struct curve *c)
{
	const struct diag_rule *rl = &diag_rules[DIAG_R_STMTS_RISING];
	struct pt zero = { 0 }, *base0, *base1, *rise, end = { in->end->t, c->r->count, c->r->pg_stmts };
	double before, now;
	struct diag_finding *f;
	unsigned int i;
	char at[16];

	c->n = 0;
	diag_history_foreach(in->h, in->start->t, route_point, c);
	if (!c->n)
		return 0;
	base1 = &c->p[c->n - 1];
	if (diag_delta(end.count, base1->count) < MIN_REQUESTS)
		return 0;
	now = per(base1, &end);
	/* Back from the window to the last step at the old rate: the rise began after it. */
	for (i = c->n - 1; i > 0; i--)
		if (c->p[i].count > c->p[i - 1].count && per(&c->p[i - 1], &c->p[i]) < now / 2)
			break;
	rise = &c->p[i];
	/*
	 * Before the rise, from the route's first point on; or from zero, all
	 * its counts since the daemon started, when the rise is that point or
	 * the history reaches back to the daemon's start (a snapshot may have
	 * split an earlier burst: its part before that point is still before).
	 */
	base0 = i > 0 && c->p[0].count < rise->count && !diag_history_from_start(in->h) ?
			&c->p[0] : &zero;
	if (diag_delta(rise->count, base0->count) < MIN_REQUESTS)
		return 0;
	before = per(base0, rise);
	if (now < rl->threshold * before || now - before < rl->threshold2)
		return 0;
	f = diag_add(res, DIAG_R_STMTS_RISING, (double)diag_delta(end.stmts, base1->stmts) / 1e3,
		     rise->t);
	if (!f)
		return -ENOMEM;
	hhmm(rise->t, at, sizeof(at));
	diag_fmt(f->title, "%s %s: %.0f -> %.0f PostgreSQL statements per request since %s",
		 c->r->rpc ? "RPC" : "route", c->r->key, before, now, at);
	diag_fmt(f->cause, "its requests send %.1fx the statements they sent before: in the window %llu requests, %llu statements; since %s %llu requests, %llu statements; before: %llu requests, %llu statements (%s)",
		 before > 0 ? now / before : now, (unsigned long long)diag_delta(end.count, base1->count),
		 (unsigned long long)diag_delta(end.stmts, base1->stmts), at,
		 (unsigned long long)diag_delta(end.count, rise->count),
		 (unsigned long long)diag_delta(end.stmts, rise->stmts),
		 (unsigned long long)diag_delta(rise->count, base0->count),
		 (unsigned long long)diag_delta(rise->stmts, base0->stmts),
		 base0 == &zero ? "since the daemon started" : "the history before");
	diag_evidence(f, c->r->rpc ? "erpscope_odoo_rpc_pg_statements_total / erpscope_odoo_rpc_duration_seconds_count" :
				     "erpscope_http_request_pg_statements_total / erpscope_http_request_duration_seconds_count",
		      "%.1f statements per request in the window, %.1f before %s", now, before, at);
	diag_fmt(f->action, "%s", rl->action);
	return 0;
}

int diag_rule_stmts_rising(const struct diag_input *in, struct diag_result *res)
{
	struct curve c = { .cap = DIAG_FINE_N + DIAG_COARSE_N };
	int err = 0;

	if (!in->h || !in->end->routes_known)
		return 0;
	c.p = malloc(c.cap * sizeof(*c.p));
	if (!c.p)
		return -ENOMEM;
	for (unsigned int i = 0; i < in->end->nroutes && !err; i++) {
		c.r = &in->end->routes[i];
		if (strcmp(c.r->key, "other"))
			err = judge(in, res, &c);
	}
	free(c.p);
	return err;
}
