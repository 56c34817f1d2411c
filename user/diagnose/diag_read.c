// SPDX-License-Identifier: GPL-2.0
/*
 * What the rules need from the other capabilities, read through their
 * public accessors (tcp, requests, pg) and the event log: one snapshot of
 * cumulative counters, and the new events.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/erpscope.h"
#include "core/events.h"
#include "diagnose/diagnose.h"
#include "gpu/gpu.h"
#include "host/host.h"
#include "pg/pg.h"
#include "procs/proctable.h"
#include "procs/title.h"
#include "python/python.h"
#include "requests/requests.h"
#include "sched/sched.h"
#include "tcp/tcp.h"

/*
 * One read: the snapshot being filled, the one before it, and the scores
 * that pick what is kept: what grew most since the previous snapshot (all
 * of it for what that one did not keep), so a route or statement busy now
 * is kept even when others hold more since the daemon started.
 */
struct rd {
	struct diag_snap *s;
	const struct diag_snap *prev;
	uint64_t rscore[DIAG_ROUTES], sscore[DIAG_STMTS], hscore[DIAG_HOT], iscore[DIAG_IOW];
	uint64_t bscore[DIAG_ISSUERS];
};

static uint64_t grown(uint64_t now, const uint64_t *before)
{
	return before && *before < now ? now - *before : before ? 0 : now;
}

/* The slot for an entry of score among *n kept (cap at most), or -1 when it is not kept. */
static int pick(uint64_t *scores, unsigned int *n, unsigned int cap, uint64_t score)
{
	unsigned int at = *n;

	if (at == cap) {
		at = 0;
		for (unsigned int i = 1; i < cap; i++)
			if (scores[i] < scores[at])
				at = i;
		if (scores[at] >= score)
			return -1;
	} else {
		(*n)++;
	}
	scores[at] = score;
	return (int)at;
}

static void on_route(void *arg, const struct req_total *t)
{
	struct rd *rd = arg;
	struct diag_snap *s = rd->s;
	const uint64_t *before = NULL;
	int at;

	for (unsigned int i = 0; rd->prev && i < rd->prev->nroutes; i++) {
		const struct diag_route *o = &rd->prev->routes[i];

		if (o->rpc == t->rpc && o->role == t->role && !strncmp(o->key, t->key, sizeof(o->key) - 1))
			before = &o->sum_ns;
	}
	at = pick(rd->rscore, &s->nroutes, DIAG_ROUTES, grown(t->sum_ns, before));
	if (at < 0)
		return;
	snprintf(s->routes[at].key, sizeof(s->routes[at].key), "%.47s", t->key);
	s->routes[at].role = (uint8_t)t->role;
	s->routes[at].rpc = t->rpc;
	s->routes[at].count = t->count;
	s->routes[at].sum_ns = t->sum_ns;
	s->routes[at].pg_stmts = t->pg_stmts;
	s->routes[at].pg_ns = t->pg_ns;
}

static const struct diag_stmt *stmt_of(const struct diag_stmt *v, unsigned int n, uint64_t fp)
{
	for (unsigned int i = 0; i < n; i++)
		if (v[i].fp == fp)
			return &v[i];
	return NULL;
}

static void sender(struct diag_stmt *d, const struct pg_stmt *st)
{
	if (st->sender_role)
		snprintf(d->sender, sizeof(d->sender), "%s%s%s", st->sender_role,
			 st->sender_worker && st->sender_worker[0] ? "/" : "",
			 st->sender_worker ? st->sender_worker : "");
}

static void on_stmt(void *arg, const struct pg_stmt *st)
{
	struct rd *rd = arg;
	struct diag_snap *s = rd->s;
	const struct pg_row *r = st->row;
	const struct diag_stmt *o;
	int at;

	s->pg_total_ns += r->total_ns;
	s->pg_calls += r->calls;
	if (r->fp == ES_PG_FP_OTHER)
		return;
	/* The most called too: an N+1 loop's statement is cheap. */
	o = rd->prev ? stmt_of(rd->prev->hot, rd->prev->nhot, r->fp) : NULL;
	at = pick(rd->hscore, &s->nhot, DIAG_HOT, grown(r->calls, o ? &o->calls : NULL));
	if (at >= 0) {
		s->hot[at] = (struct diag_stmt){ .fp = r->fp, .calls = r->calls, .total_ns = r->total_ns };
		sender(&s->hot[at], st);
	}
	o = rd->prev ? stmt_of(rd->prev->stmts, rd->prev->nstmts, r->fp) : NULL;
	at = pick(rd->sscore, &s->nstmts, DIAG_STMTS, grown(r->total_ns, o ? &o->total_ns : NULL));
	if (at < 0)
		return;
	s->stmts[at] = (struct diag_stmt){ .fp = r->fp, .calls = r->calls, .total_ns = r->total_ns,
					   .lock_ns = r->lock_ns, .lock_waits = r->lock_waits,
					   .misses = r->misses };
	sender(&s->stmts[at], st);
}

/* Keeps the cluster with the highest share of its max_connections. */
static void on_cluster(void *arg, const char *name, unsigned int conns, int max)
{
	struct diag_snap *s = arg;

	if (max <= 0)
		return;
	if (s->max_conns && (double)conns / max <= (double)s->conns / s->max_conns)
		return;
	snprintf(s->cluster, sizeof(s->cluster), "%.31s", name);
	s->conns = conns;
	s->max_conns = (uint32_t)max;
}

static void on_iowait(void *arg, enum es_role role, const char *worker, const char *device,
		      uint64_t ns)
{
	struct rd *rd = arg;
	struct diag_snap *s = rd->s;
	const uint64_t *before = NULL;
	char who[sizeof(s->iow[0].who)];
	int at;

	/* Untracked tasks (a backup, the kernel's writeback) are no workers waiting. */
	if (!ns || !strcmp(device, "unknown") || role == ES_ROLE_OTHER)
		return;
	snprintf(who, sizeof(who), "%.15s/%.15s", role_name(role), worker);
	for (unsigned int i = 0; rd->prev && i < rd->prev->niow; i++)
		if (!strcmp(rd->prev->iow[i].who, who) &&
		    !strncmp(rd->prev->iow[i].device, device, sizeof(s->iow[0].device) - 1))
			before = &rd->prev->iow[i].ns;
	at = pick(rd->iscore, &s->niow, DIAG_IOW, grown(ns, before));
	if (at < 0)
		return;
	snprintf(s->iow[at].device, sizeof(s->iow[at].device), "%.15s", device);
	memcpy(s->iow[at].who, who, sizeof(who));
	s->iow[at].ns = ns;
}

/* Keeps the (issuer, device) pairs whose bytes grew most. */
static void on_issuer(void *arg, enum es_role role, const char *worker, const char *comm,
		      const char *device, uint64_t ops, uint64_t bytes)
{
	struct rd *rd = arg;
	struct diag_snap *s = rd->s;
	const uint64_t *before = NULL;
	char who[sizeof(s->issuers[0].who)];
	int at;

	if (!bytes || !strcmp(device, "unknown"))
		return;
	if (comm[0])
		snprintf(who, sizeof(who), "%.15s/%.11s (%.16s)", role_name(role), worker, comm);
	else
		snprintf(who, sizeof(who), "%.15s", role_name(role));
	for (unsigned int i = 0; rd->prev && i < rd->prev->nissuers; i++)
		if (!strcmp(rd->prev->issuers[i].who, who) &&
		    !strncmp(rd->prev->issuers[i].device, device, sizeof(s->issuers[0].device) - 1))
			before = &rd->prev->issuers[i].bytes;
	at = pick(rd->bscore, &s->nissuers, DIAG_ISSUERS, grown(bytes, before));
	if (at < 0)
		return;
	snprintf(s->issuers[at].device, sizeof(s->issuers[at].device), "%.15s", device);
	memcpy(s->issuers[at].who, who, sizeof(who));
	s->issuers[at].ops = ops;
	s->issuers[at].bytes = bytes;
}

struct worker_acc {
	struct diag_history *h;
	uint32_t workers;
};

/* Adds what each Odoo worker's CPU and run-queue time grew since the last read. */
static void on_worker(void *arg, __u32 slot, enum es_role role, __u32 pid, uint64_t cpu_ns,
		      uint64_t runq_ns)
{
	struct worker_acc *wa = arg;
	struct diag_history *h = wa->h;
	struct diag_acc *a;

	bool odoo = role == ES_ROLE_ODOO_HTTP || role == ES_ROLE_ODOO_CRON ||
		    role == ES_ROLE_ODOO_GEVENT;
	uint64_t cpu;

	wa->workers += odoo;
	if (slot >= h->nacc) {
		unsigned int n = slot + 64;
		struct diag_acc *na = realloc(h->acc, n * sizeof(*na));

		if (!na)
			return;
		memset(na + h->nacc, 0, (n - h->nacc) * sizeof(*na));
		h->acc = na;
		h->nacc = n;
	}
	a = &h->acc[slot];
	if (a->pid != pid) /* a new worker in the slot: all of it is new */
		*a = (struct diag_acc){ .pid = pid };
	cpu = cpu_ns > a->cpu_ns ? cpu_ns - a->cpu_ns : 0;
	if ((unsigned int)role < DIAG_ROLES)
		h->role_cpu_ns[role] += cpu;
	if (odoo) {
		h->odoo_cpu_ns += cpu;
		h->odoo_runq_ns += runq_ns > a->runq_ns ? runq_ns - a->runq_ns : 0;
	}
	a->cpu_ns = cpu_ns;
	a->runq_ns = runq_ns;
}

/* Keeps the DIAG_POOLS pools with the most workers. */
static void on_pool(void *arg, const struct tcp_pool_stats *st)
{
	struct diag_snap *s = arg;
	unsigned int at = s->npools;
	uint64_t n = st->busy + st->idle;

	if (at == DIAG_POOLS) {
		at = 0;
		for (unsigned int i = 1; i < DIAG_POOLS; i++)
			if (s->pools[i].busy + s->pools[i].idle < s->pools[at].busy + s->pools[at].idle)
				at = i;
		if (s->pools[at].busy + s->pools[at].idle >= n)
			return;
	} else {
		s->npools++;
	}
	s->pools[at] = (struct diag_pool){ .port = st->port, .busy = (uint32_t)st->busy,
					   .idle = (uint32_t)st->idle, .busy_ns = st->busy_ns,
					   .waits = st->waits, .wait_ns = st->wait_ns };
}

_Static_assert(DIAG_ROLES == ES_ROLE_COUNT, "DIAG_ROLES is enum es_role's count");

static int gpu_rank(const struct diag_gpu *g)
{
	return __builtin_popcount(g->reasons & DIAG_GPU_PRESSURE) + (g->mem_known && g->mem_used >= 0.9 * g->mem_total) * 4;
}

/* Keeps the DIAG_GPUS devices under the most pressure (memory, then throttle reasons). */
static void on_gpu(void *arg, const struct gpu_dev_view *v)
{
	struct diag_snap *s = arg;
	struct diag_gpu g = { .mem_known = v->mem_known, .util_known = v->util_known,
			      .mem_used = v->mem_used, .mem_total = v->mem_total,
			      .util = v->util, .reasons = v->reasons };
	unsigned int at = s->ngpus;

	snprintf(g.index, sizeof(g.index), "%.7s", v->index);
	snprintf(g.name, sizeof(g.name), "%.31s", v->name);
	if (at == DIAG_GPUS) {
		at = 0;
		for (unsigned int i = 1; i < DIAG_GPUS; i++)
			if (gpu_rank(&s->gpus[i]) < gpu_rank(&s->gpus[at]))
				at = i;
		if (gpu_rank(&s->gpus[at]) >= gpu_rank(&g))
			return;
	} else {
		s->ngpus++;
	}
	s->gpus[at] = g;
}

void diag_read_snap(struct erpscope *es, struct diag_history *h, double now,
		    const struct diag_snap *prev, struct diag_snap *s)
{
	struct rd rd = { .s = s, .prev = prev };
	struct worker_acc wa = { .h = h };
	struct sched_visitor sv = {
		.iowait = on_iowait, .iowait_arg = &rd, .worker = on_worker, .worker_arg = &wa,
	};
	struct host_view hv;

	memset(s, 0, sizeof(*s));
	s->t = now;
	s->pool_known = !tcp_pools(es, ES_ROLE_ODOO_HTTP, on_pool, s);
	s->routes_known = !requests_totals(es, on_route, &rd);
	s->pg_known = !pg_statements(es, on_stmt, &rd);
	s->conns_known = !pg_clusters(es, on_cluster, s) && s->max_conns;
	blkio_issuers_foreach(es, on_issuer, &rd);
	if (!sched_foreach(es, &sv)) {
		s->odoo_known = true;
		s->odoo_workers = wa.workers;
		s->odoo_cpu_ns = h->odoo_cpu_ns;
		s->odoo_runq_ns = h->odoo_runq_ns;
		memcpy(s->role_cpu_ns, h->role_cpu_ns, sizeof(s->role_cpu_ns));
	}
	s->ckpt_known = !pg_checkpoints(es, s->ckpts);
	gpu_devices(es, on_gpu, s);
	if (!host_view(es, &hv)) {
		s->host_known = hv.cpu_ok && hv.mem_ok;
		s->cpu_busy_ticks = hv.cpu_busy_ticks;
		s->cpu_ticks = hv.cpu_ticks;
		s->mem_total = hv.mem_total;
		s->mem_available = hv.mem_available;
		snprintf(s->fs_mount, sizeof(s->fs_mount), "%.47s", hv.fs_mount);
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

/* One cron worker's look: the _callback frame's cron_name and its thread's innermost frame. */
struct cron_look {
	struct diag_cron c;
	int thread; /* of the _callback frame, -1 none */
	char leaf[16][96];
	char state[16][12];
	double secs[16];
};

static void on_frame(void *arg, unsigned int thread, __u32 tid, const char *state, double secs,
		     unsigned int depth, const char *func, const char *file, int line,
		     const char *args)
{
	struct cron_look *cl = arg;
	const char *cn = strstr(args, "cron_name=");
	size_t fl = strlen(func);

	if (thread >= 16)
		return;
	if (!depth) {
		const char *base = strrchr(file, '/');

		snprintf(cl->leaf[thread], sizeof(cl->leaf[0]), "%.48s (%.32s:%d)", func,
			 base ? base + 1 : file, line);
		snprintf(cl->state[thread], sizeof(cl->state[0]), "%.11s", state ? state : "");
		cl->secs[thread] = secs == secs ? secs : -1; /* NaN: not known */
	}
	if (cl->thread >= 0 || !cn || fl < 9 || strcmp(func + fl - 9, "_callback"))
		return;
	cn += strlen("cron_name=");
	if (*cn == '\'' || *cn == '"')
		cn++;
	snprintf(cl->c.name, sizeof(cl->c.name), "%.*s", (int)strcspn(cn, "'\","), cn);
	cl->thread = (int)thread;
}

struct crons_ctx {
	struct erpscope *es;
	struct diag_history *h;
	double now;
};

static void cron_worker(void *arg, const struct slot_view *sv)
{
	struct crons_ctx *cc = arg;
	struct cron_look *cl;

	if (!sv->w || sv->w->exited || sv->role != ES_ROLE_ODOO_CRON)
		return;
	cl = calloc(1, sizeof(*cl));
	if (!cl)
		return;
	cl->thread = -1;
	if (python_worker_frames(cc->es, sv->w->pid, on_frame, cl) >= 0 && cl->thread >= 0 &&
	    cl->c.name[0]) {
		cl->c.pid = sv->w->pid;
		snprintf(cl->c.where, sizeof(cl->c.where), "%s", cl->leaf[cl->thread]);
		snprintf(cl->c.state, sizeof(cl->c.state), "%s", cl->state[cl->thread]);
		cl->c.state_secs = cl->secs[cl->thread];
		diag_history_cron(cc->h, &cl->c, cc->now);
	}
	free(cl);
}

void diag_read_crons(struct erpscope *es, struct diag_history *h, double now)
{
	struct crons_ctx cc = { .es = es, .h = h, .now = now };

	procs_for_each_slot(es->procs, cron_worker, &cc);
}
