// SPDX-License-Identifier: GPL-2.0
/*
 * The rules over one window: deltas of the snapshots bounding it, and the
 * events inside it. Each rule adds its findings; they are ranked by
 * severity, then by score (about the seconds of work the problem cost).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diagnose/diagnose.h"
#include "procs/title.h"

/* The parts of a finding: diag_find.c. */
#define delta(end, start) diag_delta(end, start)
#define add(r, rule, score, since) diag_add(r, rule, score, since)
#define fmt(buf, ...) diag_fmt(buf, __VA_ARGS__)
#define evidence(f, check, ...) diag_evidence(f, check, __VA_ARGS__)

/* ---------------------------------------------------------------- 1: pool */

static const struct diag_route *route_in(const struct diag_snap *s, const struct diag_route *r)
{
	for (unsigned int i = 0; s && i < s->nroutes; i++)
		if (s->routes[i].rpc == r->rpc && s->routes[i].role == r->role &&
		    !strcmp(s->routes[i].key, r->key))
			return &s->routes[i];
	return NULL;
}

/* The route (not an RPC) of the end snapshot with the most time in the window. */
static const struct diag_route *top_route(const struct diag_input *in, bool rpc, uint64_t *ns,
					  uint64_t *count)
{
	const struct diag_route *best = NULL;

	*ns = *count = 0;
	for (unsigned int i = 0; i < in->end->nroutes; i++) {
		const struct diag_route *r = &in->end->routes[i], *o = route_in(in->start, r);
		uint64_t d = delta(r->sum_ns, o ? o->sum_ns : 0);

		if (r->rpc == rpc && d > *ns && strcmp(r->key, "other")) {
			best = r;
			*ns = d;
			*count = delta(r->count, o ? o->count : 0);
		}
	}
	return best;
}

static const struct diag_pool *pool_in(const struct diag_snap *s, uint16_t port)
{
	for (unsigned int i = 0; s && i < s->npools; i++)
		if (s->pools[i].port == port)
			return &s->pools[i];
	return NULL;
}

static int pool_finding(const struct diag_input *in, struct diag_result *res,
			const struct diag_pool *b)
{
	const struct diag_rule *rl = &diag_rules[DIAG_R_POOL];
	const struct diag_pool *a = pool_in(in->start, b->port);
	const struct diag_route *route, *rpc;
	uint64_t rns, rcount, pns, pcount, busy, waits;
	double span = res->sum.span, occ, wait_mean;
	unsigned int workers = b->busy + b->idle, advise;
	struct diag_finding *f;
	char rpcs[200] = "", port[24] = "";

	busy = delta(b->busy_ns, a ? a->busy_ns : 0);
	waits = delta(b->waits, a ? a->waits : 0);
	occ = workers ? (double)busy / 1e9 / ((double)workers * span) : 0;
	wait_mean = waits ? (double)delta(b->wait_ns, a ? a->wait_ns : 0) / 1e9 / (double)waits : 0;
	if (!workers || occ < rl->threshold || wait_mean < rl->threshold2 || waits < 5)
		return 0;
	f = add(res, DIAG_R_POOL, (double)busy / 1e9, in->start->t);
	if (!f)
		return -ENOMEM;
	if (b->port)
		snprintf(port, sizeof(port), " on port %u", b->port);
	fmt(f->title, "HTTP worker pool%s saturated: %u workers busy %.0f%% of the last %.0f s, connections waited %.2f s on average to be accepted",
	    port, workers, occ * 100, span, wait_mean);
	route = top_route(in, false, &rns, &rcount);
	rpc = top_route(in, true, &pns, &pcount);
	if (rpc)
		snprintf(rpcs, sizeof(rpcs), "; the RPC %s took %.1f s (%llu calls, mean %.2f s)",
			 rpc->key, (double)pns / 1e9, (unsigned long long)pcount,
			 pcount ? (double)pns / 1e9 / (double)pcount : 0);
	if (route) {
		const struct diag_route *o = route_in(in->start, route);
		uint64_t pgns = delta(route->pg_ns, o ? o->pg_ns : 0);
		char pgs[120] = "";

		/* The same story as a slow statement: say so, both are listed. */
		if (pgns * 2 >= rns)
			snprintf(pgs, sizeof(pgs), "; %.0f%% of that time was PostgreSQL's (see slow_statement)",
				 100.0 * (double)pgns / (double)rns);
		fmt(f->cause, "route %s held the workers longest: its %llu requests took %.1f s (mean %.2f s) while the workers were busy %.1f s%s%s",
		    route->key, (unsigned long long)rcount, (double)rns / 1e9,
		    rcount ? (double)rns / 1e9 / (double)rcount : 0, (double)busy / 1e9, rpcs, pgs);
	} else {
		fmt(f->cause, "requests take the workers' time (no route seen: is the requests probe on?)");
	}
	evidence(f, "erpscope_worker_busy_seconds_total{role=\"odoo_http\"}",
		 "HTTP workers busy %.0f%% of the window (%.1f s of %u x %.0f s)", occ * 100,
		 (double)busy / 1e9, workers, span);
	evidence(f, "erpscope_workers{role=\"odoo_http\"}", "%u of %u workers busy at the end",
		 b->busy, workers);
	evidence(f, "erpscope_listen_queue_wait_seconds{role=\"odoo_http\",port=...}",
		 "%llu connections waited %.3f s on average in the listen queue",
		 (unsigned long long)waits, wait_mean);
	if (route)
		evidence(f, "erpscope_http_request_duration_seconds{route=...}; GET /requests",
			 "%s: %llu requests, %.1f s", route->key, (unsigned long long)rcount,
			 (double)rns / 1e9);
	advise = 2 * in->cores + 1;
	fmt(f->action, "this host has %u cores: Odoo's guideline is `workers = %u` (2 x cores + 1), within RAM at the workers' RSS (erpscope_worker_resident_memory_bytes)%s%s",
	    in->cores, advise, route ? "; or make " : "", route ? route->key : "");
	if (route)
		snprintf(f->action + strlen(f->action), DIAG_TEXT_MAX - strlen(f->action),
			 " faster (GET /profile?route=%s)", route->key);
	diag_pool_cpu_note(in, f->action + strlen(f->action), DIAG_TEXT_MAX - strlen(f->action));
	return 0;
}

/* Each HTTP pool (listening port) on its own: another instance's idle workers hide nothing. */
static int rule_pool(const struct diag_input *in, struct diag_result *res)
{
	int err = 0;

	if (!res->sum.pool_known || res->sum.span <= 0)
		return 0;
	for (unsigned int i = 0; i < in->end->npools && !err; i++)
		err = pool_finding(in, res, &in->end->pools[i]);
	return err;
}

/* ---------------------------------------------------------------- 3: statements */

static const struct diag_stmt *stmt_in(const struct diag_snap *s, uint64_t fp)
{
	for (unsigned int i = 0; s && i < s->nstmts; i++)
		if (s->stmts[i].fp == fp)
			return &s->stmts[i];
	return NULL;
}

static int rule_slow_stmt(const struct diag_input *in, struct diag_result *res)
{
	const struct diag_rule *rl = &diag_rules[DIAG_R_SLOW_STMT];
	double pg = res->sum.pg_seconds;

	if (!res->sum.pg_known)
		return 0;
	for (unsigned int i = 0; i < in->end->nstmts; i++) {
		const struct diag_stmt *st = &in->end->stmts[i], *o = stmt_in(in->start, st->fp);
		uint64_t calls = delta(st->calls, o ? o->calls : 0);
		double sec = (double)delta(st->total_ns, o ? o->total_ns : 0) / 1e9;
		double locked = (double)delta(st->lock_ns, o ? o->lock_ns : 0) / 1e9;
		double misses = (double)delta(st->misses, o ? o->misses : 0);
		double p95 = in->fp_p95 ? in->fp_p95(in->fp_arg, st->fp) : -1;
		double share = pg > 0 ? sec / pg : 0, mean = calls ? sec / (double)calls : 0;
		const char *text = in->fp_text ? in->fp_text(in->fp_arg, st->fp) : NULL;
		const char *sender = st->sender;
		char filters[256], hint[256];
		struct diag_finding *f;

		/* Mostly waiting on locks: lock_contention says it, not an index. */
		if (!calls || locked >= sec / 2)
			continue;
		if (!((share >= rl->threshold && sec >= rl->threshold2 && mean >= 0.01) ||
		      p95 >= rl->threshold2))
			continue;
		f = add(res, DIAG_R_SLOW_STMT, sec, in->start->t);
		if (!f)
			return -ENOMEM;
		diag_sql_filters(text, filters, sizeof(filters));
		diag_sql_index_hint(filters, hint, sizeof(hint));
		fmt(f->title, "slow statement %016llx: %.1f s of PostgreSQL time (%.0f%%) in %llu calls, mean %.3f s",
		    (unsigned long long)st->fp, sec, share * 100, (unsigned long long)calls, mean);
		/* A sender gone by the window's end was known at its start. */
		if ((!st->sender[0] || !strcmp(st->sender, "unlinked")) && o && o->sender[0])
			sender = o->sender;
		fmt(f->cause, "%.300s; sent mostly by %s; reads %s", text ? text : "(text not captured)",
		    sender[0] ? sender : "an unknown client", filters[0] ? filters : "(no table found)");
		evidence(f, "GET /queries; erpscope_pg_statement_duration_seconds{fingerprint=...}",
			 "%llu calls, %.2f s, %.0f%% of the %.2f s PostgreSQL spent on statements",
			 (unsigned long long)calls, sec, share * 100, pg);
		if (p95 >= 0)
			evidence(f, "GET /queries (w_p95_ms)", "p95 %.3f s over --pg.quantile-window", p95);
		if (locked > 0)
			evidence(f, "GET /queries (lockwait_ms)", "%.2f s of it waiting on locks", locked);
		evidence(f, "GET /queries (misses)", "%.1f buffer misses per call (read from the OS)",
			 misses / (double)calls);
		fmt(f->action, "%s%s%s%s", rl->action, hint[0] ? ": " : "", hint,
		    hint[0] ? " (check it first: the columns are read from the statement's text)" : "");
	}
	return 0;
}

/* ---------------------------------------------------------------- 4: N+1 */

static int rule_n_plus_one(const struct diag_input *in, struct diag_result *res)
{
	const struct diag_rule *rl = &diag_rules[DIAG_R_N_PLUS_ONE];
	const struct diag_stmt *loop = NULL;
	uint64_t loop_calls = 0;

	for (unsigned int i = 0; i < in->end->nroutes; i++) {
		const struct diag_route *r = &in->end->routes[i], *o = route_in(in->start, r);
		const char *role = role_name((enum es_role)r->role);
		size_t rl_len = strlen(role);

		/* The statement its role's workers called most in the window: the loop's, likely. */
		loop = NULL;
		loop_calls = 0;
		for (unsigned int h = 0; h < in->end->nhot; h++) {
			const struct diag_stmt *st = &in->end->hot[h], *so = NULL;
			uint64_t c;

			if (strncmp(st->sender, role, rl_len) || st->sender[rl_len] != '/')
				continue;
			for (unsigned int k = 0; in->start && k < in->start->nhot; k++)
				if (in->start->hot[k].fp == st->fp)
					so = &in->start->hot[k];
			c = delta(st->calls, so ? so->calls : 0);
			if (c > loop_calls) {
				loop = st;
				loop_calls = c;
			}
		}
		uint64_t n = delta(r->count, o ? o->count : 0);
		uint64_t stmts = delta(r->pg_stmts, o ? o->pg_stmts : 0);
		const char *text = loop && in->fp_text ? in->fp_text(in->fp_arg, loop->fp) : NULL;
		double per = n ? (double)stmts / (double)n : 0;
		struct diag_finding *f;

		if (!n || per < rl->threshold || (double)stmts < rl->threshold2 ||
		    !strcmp(r->key, "other"))
			continue;
		f = add(res, DIAG_R_N_PLUS_ONE, (double)delta(r->pg_ns, o ? o->pg_ns : 0) / 1e9,
			in->start->t);
		if (!f)
			return -ENOMEM;
		fmt(f->title, "%s %s sends %.0f PostgreSQL statements per request (%llu in %llu requests)",
		    r->rpc ? "RPC" : "route", r->key, per, (unsigned long long)stmts,
		    (unsigned long long)n);
		if (loop && loop_calls * 2 >= stmts)
			fmt(f->cause, "an ORM loop, one query per record: the statement called most in the window is %016llx (%llu calls): %.300s",
			    (unsigned long long)loop->fp, (unsigned long long)loop_calls,
			    text ? text : "(text not captured)");
		else
			fmt(f->cause, "an ORM loop, one query per record (its statement is not among the %d called most)",
			    DIAG_HOT);
		evidence(f, r->rpc ? "erpscope_odoo_rpc_pg_statements_total / erpscope_odoo_rpc_duration_seconds_count" :
				     "erpscope_http_request_pg_statements_total / erpscope_http_request_duration_seconds_count",
			 "%.1f statements per request, %.2f s of PostgreSQL time in all", per,
			 (double)delta(r->pg_ns, o ? o->pg_ns : 0) / 1e9);
		fmt(f->action, "%s", rl->action);
	}
	return 0;
}

/* ---------------------------------------------------------------- 9: iowait */

static uint64_t iow_delta(const struct diag_input *in, const struct diag_iow *w)
{
	for (unsigned int i = 0; in->start && i < in->start->niow; i++)
		if (!strcmp(in->start->iow[i].device, w->device) && !strcmp(in->start->iow[i].who, w->who))
			return delta(w->ns, in->start->iow[i].ns);
	return w->ns;
}

static const struct diag_issuer *issuer_in(const struct diag_snap *s, const struct diag_issuer *b)
{
	for (unsigned int i = 0; s && i < s->nissuers; i++)
		if (!strcmp(s->issuers[i].device, b->device) && !strcmp(s->issuers[i].who, b->who))
			return &s->issuers[i];
	return NULL;
}

/*
 * "; top issuers of dev in the window: who X MiB (n requests), ..." into buf:
 * the 3 that issued the most bytes to it (tracked workers one by one, the
 * untracked tasks as "other"); "" when none did.
 */
static void top_issuers(const struct diag_input *in, const char *dev, char *buf, size_t size)
{
	const struct diag_issuer *top[3] = { NULL };
	uint64_t bytes[3] = { 0 }, ops[3] = { 0 };
	size_t len;

	buf[0] = 0;
	for (unsigned int i = 0; i < in->end->nissuers; i++) {
		const struct diag_issuer *b = &in->end->issuers[i], *a = issuer_in(in->start, b);
		uint64_t d = delta(b->bytes, a ? a->bytes : 0);
		int k = 3;

		if (strcmp(b->device, dev) || !d)
			continue;
		while (k > 0 && d > bytes[k - 1])
			k--;
		if (k == 3)
			continue;
		for (int j = 2; j > k; j--) {
			top[j] = top[j - 1];
			bytes[j] = bytes[j - 1];
			ops[j] = ops[j - 1];
		}
		top[k] = b;
		bytes[k] = d;
		ops[k] = delta(b->ops, a ? a->ops : 0);
	}
	for (int k = 0; k < 3 && top[k]; k++) {
		len = strlen(buf);
		snprintf(buf + len, size - len, "%s%s %.1f MiB (%llu requests)",
			 k ? ", " : "; top issuers on it in the window: ", top[k]->who,
			 (double)bytes[k] / 1048576.0, (unsigned long long)ops[k]);
	}
}

static int rule_iowait(const struct diag_input *in, struct diag_result *res)
{
	const struct diag_rule *rl = &diag_rules[DIAG_R_IOWAIT];
	const struct diag_snap *b = in->end;
	double span = res->sum.span;

	for (unsigned int i = 0; i < b->niow; i++) {
		const struct diag_iow *top = NULL;
		char issuers[300];
		uint64_t sum = 0, best = 0;
		unsigned int n = 0;
		struct diag_finding *f;
		bool seen = false;

		for (unsigned int k = 0; k < i && !seen; k++)
			seen = !strcmp(b->iow[k].device, b->iow[i].device);
		if (seen)
			continue; /* the device was judged at its first pair */
		for (unsigned int k = i; k < b->niow; k++) {
			uint64_t d;

			if (strcmp(b->iow[k].device, b->iow[i].device))
				continue;
			d = iow_delta(in, &b->iow[k]);
			sum += d;
			n += d > 0;
			if (d > best) {
				best = d;
				top = &b->iow[k];
			}
		}
		if (!top || (double)sum / 1e9 < rl->threshold * span)
			continue;
		f = add(res, DIAG_R_IOWAIT, (double)sum / 1e9, in->start->t);
		if (!f)
			return -ENOMEM;
		fmt(f->title, "disk %s: workers waited %.1f s on its I/O in %.0f s (%.0f%% of the window)",
		    top->device, (double)sum / 1e9, span, 100.0 * (double)sum / 1e9 / span);
		top_issuers(in, top->device, issuers, sizeof(issuers));
		fmt(f->cause, "%s waited longest: %.1f s in iowait on %s (%u worker%s in all)%s",
		    top->who, (double)best / 1e9, top->device, n, n > 1 ? "s" : "", issuers);
		evidence(f, "erpscope_iowait_seconds_total{device=...}", "%.2f s of iowait on %s, %.2f s of it %s",
			 (double)sum / 1e9, top->device, (double)best / 1e9, top->who);
		evidence(f, "erpscope_disk_io_ops_total{device=...}, erpscope_disk_io_bytes_total{device=...}",
			 "what each worker issued to %s%s", top->device,
			 issuers[0] ? issuers + 1 : " (nothing seen: is the blkio probe on?)");
		fmt(f->action, "%s", rl->action);
	}
	return 0;
}

/* ---------------------------------------------------------------- 2: workers and cores */

static int rule_workers(const struct diag_input *in, struct diag_result *res)
{
	const struct diag_rule *rl = &diag_rules[DIAG_R_WORKERS];
	const struct diag_snap *a = in->start, *b = in->end;
	double cpu, runq, share, busy;
	struct diag_finding *f;

	if (!a->odoo_known || !b->odoo_known || !a->host_known || !b->host_known ||
	    b->cpu_ticks <= a->cpu_ticks || b->odoo_workers <= in->cores)
		return 0;
	cpu = (double)delta(b->odoo_cpu_ns, a->odoo_cpu_ns) / 1e9;
	runq = (double)delta(b->odoo_runq_ns, a->odoo_runq_ns) / 1e9;
	share = cpu + runq > 0 ? runq / (cpu + runq) : 0;
	busy = (double)delta(b->cpu_busy_ticks, a->cpu_busy_ticks) / (double)(b->cpu_ticks - a->cpu_ticks);
	/* Waiting for a CPU means they were all busy then: no separate CPU test. */
	if (share < rl->threshold || runq < rl->threshold2 * res->sum.span)
		return 0;
	f = add(res, DIAG_R_WORKERS, runq, a->t);
	if (!f)
		return -ENOMEM;
	fmt(f->title, "too many Odoo workers for %u cores: %u workers waited %.1f s for a CPU (%.0f%% of the time they wanted one)",
	    in->cores, b->odoo_workers, runq, share * 100);
	fmt(f->cause, "%u Odoo workers (http, cron, gevent) compete for %u cores: they ran %.1f s and waited %.1f s in the run queue in %.0f s",
	    b->odoo_workers, in->cores, cpu, runq, res->sum.span);
	evidence(f, "erpscope_offcpu_seconds_total{reason=\"runqueue\"}; erpscope_runqueue_latency_seconds",
		 "%.1f s waiting for a CPU, %.1f s on one", runq, cpu);
	evidence(f, "erpscope_host_cpu_seconds_total", "CPUs %.0f%% busy over the window", busy * 100);
	fmt(f->action, "%s (%u here)", rl->action, 2 * in->cores + 1);
	return 0;
}

/* ---------------------------------------------------------------- 11: connections */

static int rule_pg_conns(const struct diag_input *in, struct diag_result *res)
{
	const struct diag_snap *e = in->end;
	struct diag_finding *f;
	double share;

	if (!e->conns_known || !e->max_conns)
		return 0;
	share = (double)e->conns / e->max_conns;
	if (share < diag_rules[DIAG_R_PG_CONNS].threshold)
		return 0;
	f = add(res, DIAG_R_PG_CONNS, 10.0 * e->conns, e->t);
	if (!f)
		return -ENOMEM;
	fmt(f->title, "PostgreSQL cluster %s has %u client connections of its max_connections %u (%.0f%%)",
	    e->cluster, e->conns, e->max_conns, share * 100);
	fmt(f->cause, "new connections are refused once %u more open (superuser_reserved_connections aside)",
	    e->max_conns > e->conns ? e->max_conns - e->conns : 0);
	evidence(f, "erpscope_pg_connections / erpscope_pg_max_connections", "%u / %u at %s",
		 e->conns, e->max_conns, "the window's end");
	evidence(f, "erpscope_pg_backends", "who holds them: by db, user and state");
	fmt(f->action, "%s", diag_rules[DIAG_R_PG_CONNS].action);
	return 0;
}

/* ---------------------------------------------------------------- 12: host */

static int rule_host(const struct diag_input *in, struct diag_result *res)
{
	const struct diag_rule *rl = &diag_rules[DIAG_R_HOST];
	const struct diag_snap *a = in->start, *b = in->end;
	double span = res->sum.span, cpu = 0, mem_stall = 0, io_stall = 0, avail = 1;
	char what[4][160];
	unsigned int n = 0;
	struct diag_finding *f;

	if (!b->host_known)
		return 0;
	if (b->fs_mount[0] && b->fs_used >= rl->threshold)
		snprintf(what[n++], sizeof(what[0]), "filesystem %s %.0f%% full", b->fs_mount,
			 b->fs_used * 100);
	if (b->mem_total) {
		avail = (double)b->mem_available / (double)b->mem_total;
		if (avail < rl->threshold2)
			snprintf(what[n++], sizeof(what[0]), "memory available %.0f%% (%.0f MiB of %.0f MiB)",
				 avail * 100, (double)b->mem_available / 1048576.0,
				 (double)b->mem_total / 1048576.0);
	}
	if (a && span > 0 && a->host_known && b->cpu_ticks > a->cpu_ticks) {
		cpu = (double)delta(b->cpu_busy_ticks, a->cpu_busy_ticks) /
		      (double)(b->cpu_ticks - a->cpu_ticks);
		if (cpu >= rl->threshold)
			snprintf(what[n++], sizeof(what[0]), "CPUs %.0f%% busy", cpu * 100);
	}
	if (a && span > 0 && a->psi_known && b->psi_known) {
		mem_stall = (double)delta(b->psi_mem_us, a->psi_mem_us) / 1e6 / span;
		io_stall = (double)delta(b->psi_io_us, a->psi_io_us) / 1e6 / span;
		if (mem_stall >= rl->threshold2)
			snprintf(what[n++], sizeof(what[0]), "tasks stalled on memory %.0f%% of the time",
				 mem_stall * 100);
		if (io_stall >= rl->threshold2)
			snprintf(what[n++ & 3], sizeof(what[0]), "tasks stalled on I/O %.0f%% of the time",
				 io_stall * 100);
	}
	if (!n)
		return 0;
	if (n > 4)
		n = 4;
	f = add(res, DIAG_R_HOST, 50.0 * n, a ? a->t : b->t);
	if (!f)
		return -ENOMEM;
	fmt(f->title, "host pressure: %s%s%s%s%s%s%s", what[0], n > 1 ? "; " : "", n > 1 ? what[1] : "",
	    n > 2 ? "; " : "", n > 2 ? what[2] : "", n > 3 ? "; " : "", n > 3 ? what[3] : "");
	{
		bool disk = b->fs_used >= rl->threshold;
		bool mem = avail < rl->threshold2 || mem_stall >= rl->threshold2;
		bool busy = cpu >= rl->threshold;

		fmt(f->cause, "the host itself is short of %s", disk ? "disk space" : mem ? "memory" :
								busy ? "CPU" : "I/O capacity");
		fmt(f->action, "%s", disk ? "free or grow the filesystem (PostgreSQL stops on a full disk: WAL, the filestore, logs)" :
				   mem ? "fewer workers, lower limit_memory_soft/limit_memory_hard, or more RAM" :
				   busy && diag_cpu_not_odoo(in, &res->sum) ? "the CPU goes to processes other than Odoo's workers (see cpu_not_odoo): fewer Odoo workers would not help" :
				   busy ? "fewer workers or max_cron_threads, or more cores; see which roles use the CPU (erpscope_cpu_seconds_total)" :
					  "find the processes waiting on I/O (erpscope_iowait_seconds_total by device); faster disks");
	}
	if (b->fs_mount[0])
		evidence(f, "erpscope_filesystem_used_ratio{mountpoint=...}",
			 "fullest filesystem %s: %.1f%% used", b->fs_mount, b->fs_used * 100);
	evidence(f, "erpscope_host_memory_bytes{kind=\"available\"}", "memory available %.0f%%", avail * 100);
	if (span > 0)
		evidence(f, "erpscope_host_cpu_seconds_total; erpscope_pressure_seconds_total",
			 "CPUs %.0f%% busy; stalls: memory %.0f%%, I/O %.0f%% of the window",
			 cpu * 100, mem_stall * 100, io_stall * 100);
	return 0;
}

/* ---------------------------------------------------------------- events */

struct evsum {
	const struct diag_input *in;
	struct diag_result *res;
	int err;
	/* 5: lock waits, by fingerprint: the one waited in most */
	double lock_s, lock_best;
	uint32_t locks, deadlocks;
	double lock_since;
	const struct diag_event *lock_top;
	/* 8 */
	uint32_t kills;
	const struct diag_event *kill_first;
	/* 10: by destination */
	struct {
		const struct diag_event *first;
		uint32_t count;
		double seconds;
		char reasons[64];
	} dest[16];
	unsigned int ndest;
};

static void oom_finding(struct evsum *es, const struct diag_event *e)
{
	struct diag_finding *f = add(es->res, DIAG_R_OOM, 1e6, e->t);
	char serving[200] = "";

	if (!f) {
		es->err = -ENOMEM;
		return;
	}
	if (e->route[0] || e->rpc[0])
		snprintf(serving, sizeof(serving), " while serving %s%s%s", e->route,
			 e->rpc[0] ? " " : "", e->rpc);
	fmt(f->title, "OOM kill: %s worker %s (pid %u, %s) killed by the kernel's OOM killer at %.0f MiB",
	    e->role, e->worker[0] ? e->worker : "-", e->pid, e->comm, (double)e->rss / 1048576.0);
	fmt(f->cause, "%s%s; memory cgroup %s", e->summary[0] ? e->summary : "no memory history",
	    serving, e->cgroup[0] ? e->cgroup : "(none)");
	evidence(f, "GET /events?type=oom_kill", "rss %.0f MiB at the kill; %s",
		 (double)e->rss / 1048576.0, e->summary);
	evidence(f, "erpscope_oom_kills_total", "the kernel's OOM killer chose pid %u", e->pid);
	fmt(f->action, "%s", diag_rules[DIAG_R_OOM].action);
}

static void on_event(void *arg, const struct diag_event *e)
{
	struct evsum *es = arg;
	struct diag_summary *s = &es->res->sum;

	switch (e->type) {
	case DIAG_EV_OOM:
		s->oom_kills += e->count;
		oom_finding(es, e);
		break;
	case DIAG_EV_EXIT:
		if (!strcmp(e->sender_role, "odoo_master") || !strcmp(e->signal, "SIGXCPU")) {
			s->worker_kills += e->count;
			es->kills += e->count;
			/* The first with a route says most; else the first. */
			if (!es->kill_first || (!es->kill_first->route[0] && e->route[0]))
				es->kill_first = e;
		}
		break;
	case DIAG_EV_CONNECT: {
		unsigned int i;

		/* Processes erpscope does not track are not the host's Odoo or PostgreSQL. */
		if (!strcmp(e->role, "other"))
			break;
		s->connect_failures += e->count;
		for (i = 0; i < es->ndest; i++)
			if (!strcmp(es->dest[i].first->remote, e->remote) &&
			    !strcmp(es->dest[i].first->role, e->role))
				break;
		if (i == es->ndest) {
			if (i == 16)
				break;
			es->ndest++;
			es->dest[i].first = e;
		}
		es->dest[i].count += e->count;
		es->dest[i].seconds += e->seconds;
		if (!strstr(es->dest[i].reasons, e->reason) &&
		    strlen(es->dest[i].reasons) + strlen(e->reason) + 2 < sizeof(es->dest[i].reasons))
			snprintf(es->dest[i].reasons + strlen(es->dest[i].reasons),
				 sizeof(es->dest[i].reasons) - strlen(es->dest[i].reasons), "%s%s",
				 es->dest[i].reasons[0] ? "," : "", e->reason);
		break;
	}
	case DIAG_EV_LOCK:
	case DIAG_EV_DEADLOCK:
		if (e->type == DIAG_EV_LOCK) {
			s->lock_waits += e->count;
			es->locks += e->count;
		} else {
			s->deadlocks += e->count;
			es->deadlocks += e->count;
		}
		es->lock_s += e->seconds;
		if (!es->lock_since || e->t < es->lock_since)
			es->lock_since = e->t;
		if (e->seconds > es->lock_best) {
			es->lock_best = e->seconds;
			es->lock_top = e;
		}
		break;
	}
}

/* 6: crons running long, with the failed connects of their worker. */
struct cron_fails {
	uint32_t pid;
	uint32_t count;
	double seconds;
	const struct diag_event *first;
};

static void cron_connects(void *arg, const struct diag_event *e)
{
	struct cron_fails *cf = arg;

	if (e->type != DIAG_EV_CONNECT || e->pid != cf->pid)
		return;
	cf->count += e->count;
	cf->seconds += e->seconds;
	if (!cf->first)
		cf->first = e;
}

static int rule_crons(const struct diag_input *in, struct diag_result *res)
{
	for (unsigned int i = 0; in->h && in->cron_threshold > 0 && i < in->h->ncrons; i++) {
		const struct diag_cron *c = &in->h->crons[i];
		double end = c->last < in->to ? c->last : in->to, ran = end - c->first;
		bool running = c->last >= in->to - 30;
		struct cron_fails cf = { .pid = c->pid };
		char fails[240] = "";
		struct diag_finding *f;

		if (c->last < in->from || c->first > in->to || ran < in->cron_threshold)
			continue;
		diag_history_events(in->h, c->first, end, cron_connects, &cf);
		if (cf.count)
			snprintf(fails, sizeof(fails), "; its connects to %s failed %u times (%s), %.1f s spent waiting on them",
				 cf.first->remote, cf.count, cf.first->reason, cf.seconds);
		f = add(res, DIAG_R_CRON, ran + cf.seconds, c->first);
		if (!f)
			return -ENOMEM;
		fmt(f->title, "cron '%s' %s %.0f s in odoo_cron worker %u (threshold %.0f s)", c->name,
		    running ? "has been running for" : "ran", ran, c->pid, in->cron_threshold);
		if (c->state_secs >= 0)
			fmt(f->cause, "%s in %s, its thread %s for %.1f s%s", running ? "now" : "last seen",
			    c->where, c->state, c->state_secs, fails);
		else
			fmt(f->cause, "%s in %s, its thread %s%s", running ? "now" : "last seen", c->where,
			    c->state, fails);
		evidence(f, "GET /workers?role=odoo_cron", "IrCron._callback(cron_name='%s') seen from %.0f s to %.0f s (Unix)",
			 c->name, c->first, c->last);
		if (cf.count)
			evidence(f, "GET /events?type=tcp_connect_failed", "%u failed connects of pid %u to %s",
				 cf.count, c->pid, cf.first->remote);
		fmt(f->action, "%s%s", diag_rules[DIAG_R_CRON].action,
		    cf.count ? "; it waits on a failing outside service: check that service and the settings pointing at it, or disable the cron until it is back" : "");
	}
	return 0;
}

static int rule_locks(struct evsum *es)
{
	const struct diag_rule *rl = &diag_rules[DIAG_R_LOCKS];
	const struct diag_event *t = es->lock_top;
	struct diag_finding *f;

	if (es->lock_s < rl->threshold && es->deadlocks < rl->threshold2)
		return 0;
	f = add(es->res, DIAG_R_LOCKS, es->lock_s, es->lock_since);
	if (!f)
		return -ENOMEM;
	fmt(f->title, "lock contention: %u lock waits, %.1f s waited, %u deadlocks", es->locks,
	    es->lock_s, es->deadlocks);
	if (t && t->holder_pid)
		fmt(f->cause, "%s/%s waited %.2f s for a %s lock in statement %s: %.160s; likely holder: backend %u of %s/%s, whose transaction (open %.1f s, from before the wait began) ended within %.0f ms of the wait's end; its last statement: %.120s",
		    t->role[0] ? t->role : "unlinked", t->worker[0] ? t->worker : "-", t->seconds,
		    t->reason, t->fp, t->query, t->holder_pid,
		    t->holder_role[0] ? t->holder_role : "unlinked",
		    t->holder_worker[0] ? t->holder_worker : "-", t->holder_xact_s,
		    fabs(t->holder_gap_s) * 1e3, t->holder_query[0] ? t->holder_query : "(not captured)");
	else if (t)
		fmt(f->cause, "%s/%s waited %.2f s for a %s lock in statement %s: %.300s (the holder: pg_blocking_pids() while it happens)",
		    t->role[0] ? t->role : "unlinked", t->worker[0] ? t->worker : "-", t->seconds,
		    t->reason, t->fp, t->query);
	evidence(f, "GET /events?type=pg_lock_wait; erpscope_pg_lock_wait_seconds",
		 "%u waits over the slow threshold, %.2f s in all", es->locks, es->lock_s);
	evidence(f, "GET /events?type=pg_deadlock; erpscope_pg_deadlocks_total", "%u deadlocks",
		 es->deadlocks);
	if (t && t->holder_pid)
		evidence(f, "GET /events?type=pg_lock_wait (holder)",
			 "backend %u's transaction was open before the wait began and ended as it did, in the same database: the lock is released at a transaction's end",
			 t->holder_pid);
	fmt(f->action, "%s", rl->action);
	return 0;
}

static int rule_killed(struct evsum *es)
{
	const struct diag_event *e = es->kill_first;
	struct diag_finding *f;

	if (es->kills < diag_rules[DIAG_R_KILLED].threshold || !e)
		return 0;
	f = add(es->res, DIAG_R_KILLED, 100.0 * es->kills, e->t);
	if (!f)
		return -ENOMEM;
	fmt(f->title, "%u %s worker%s killed by %s", es->kills, e->role, es->kills > 1 ? "s" : "",
	    !strcmp(e->signal, "SIGXCPU") ? "SIGXCPU (limit_time_cpu)" :
					     "Odoo's master (past limit_time_real or limit_time_cpu, or a forced stop)");
	fmt(f->cause, "pid %u (%s) got %s from %s %s while serving %s%s%s", e->pid, e->comm,
	    e->signal[0] ? e->signal : "a signal", e->sender_role[0] ? e->sender_role : "the kernel",
	    e->sender_comm, e->route[0] ? e->route : "no request (a cron, or idle)",
	    e->rpc[0] ? " " : "", e->rpc);
	evidence(f, "GET /events?type=worker_exit; erpscope_worker_kills_total",
		 "%u worker exits killed by the master or SIGXCPU", es->kills);
	fmt(f->action, "%s", diag_rules[DIAG_R_KILLED].action);
	return 0;
}

static int rule_connect(struct evsum *es)
{
	for (unsigned int i = 0; i < es->ndest; i++) {
		const struct diag_event *e = es->dest[i].first;
		struct diag_finding *f;

		if (es->dest[i].count < diag_rules[DIAG_R_CONNECT].threshold)
			continue;
		f = add(es->res, DIAG_R_CONNECT, es->dest[i].seconds + es->dest[i].count, e->t);
		if (!f)
			return -ENOMEM;
		fmt(f->title, "outbound dependency failing: %u connects to %s failed (%s)",
		    es->dest[i].count, e->remote, es->dest[i].reasons);
		fmt(f->cause, "%s worker %s (%s) connects to %s and fails; it waited %.2f s on them",
		    e->role, e->worker[0] ? e->worker : "-", e->comm, e->remote, es->dest[i].seconds);
		evidence(f, "GET /events?type=tcp_connect_failed; erpscope_tcp_connect_failures_total",
			 "%u failed connects to %s (%s)", es->dest[i].count, e->remote,
			 es->dest[i].reasons);
		fmt(f->action, "%s", diag_rules[DIAG_R_CONNECT].action);
	}
	return 0;
}

/* ---------------------------------------------------------------- all */

static void summarize(const struct diag_input *in, struct diag_summary *s)
{
	const struct diag_snap *a = in->start, *b = in->end;

	memset(s, 0, sizeof(*s));
	if (!a || !b || b->t <= a->t)
		return;
	s->span = b->t - a->t;
	s->pool_known = a->pool_known && b->pool_known;
	if (s->pool_known) {
		uint64_t busy = 0, wait_ns = 0;

		/* Every pool together. */
		for (unsigned int i = 0; i < b->npools; i++) {
			const struct diag_pool *p = &b->pools[i], *o = pool_in(a, p->port);

			s->workers += p->busy + p->idle;
			s->waits += delta(p->waits, o ? o->waits : 0);
			wait_ns += delta(p->wait_ns, o ? o->wait_ns : 0);
			busy += delta(p->busy_ns, o ? o->busy_ns : 0);
		}
		s->wait_mean = s->waits ? (double)wait_ns / 1e9 / (double)s->waits : 0;
		s->occupancy = s->workers ? (double)busy / 1e9 / ((double)s->workers * s->span) : 0;
	}
	s->pg_known = a->pg_known && b->pg_known;
	if (s->pg_known) {
		s->pg_seconds = (double)delta(b->pg_total_ns, a->pg_total_ns) / 1e9;
		s->pg_calls = delta(b->pg_calls, a->pg_calls);
	}
}

static int by_rank(const void *x, const void *y)
{
	const struct diag_finding *a = x, *b = y;

	if (a->severity != b->severity)
		return a->severity > b->severity ? -1 : 1;
	if (a->score != b->score)
		return a->score > b->score ? -1 : 1;
	return a->since < b->since ? -1 : a->since > b->since;
}

int diag_evaluate(const struct diag_input *in, struct diag_result *out)
{
	struct evsum es = { .in = in, .res = out };
	int err = 0;

	memset(out, 0, sizeof(*out));
	summarize(in, &out->sum);
	if (out->sum.span > 0) {
		err = rule_pool(in, out);
		if (!err)
			err = rule_slow_stmt(in, out);
		if (!err)
			err = rule_n_plus_one(in, out);
		if (!err)
			err = rule_iowait(in, out);
		if (!err)
			err = rule_workers(in, out);
		if (!err)
			err = diag_rule_cpu_elsewhere(in, out);
		if (!err)
			err = diag_rule_stmts_rising(in, out);
		if (!err)
			err = diag_rule_checkpoints(in, out);
	}
	if (!err && in->end)
		err = diag_rule_gpu(in, out);
	if (!err && in->end)
		err = rule_pg_conns(in, out);
	if (!err && in->end)
		err = rule_host(in, out);
	if (!err && in->h) {
		diag_history_events(in->h, in->from, in->to, on_event, &es);
		err = es.err;
	}
	if (!err)
		err = rule_locks(&es);
	if (!err)
		err = rule_killed(&es);
	if (!err)
		err = rule_connect(&es);
	if (!err)
		err = rule_crons(in, out);
	if (err) {
		diag_result_free(out);
		return err;
	}
	qsort(out->f, out->n, sizeof(*out->f), by_rank);
	return 0;
}

void diag_result_free(struct diag_result *r)
{
	free(r->f);
	memset(r, 0, sizeof(*r));
}
