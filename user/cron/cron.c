// SPDX-License-Identifier: GPL-2.0
/*
 * The "cron" poller. Every --odoo.cron-poll-interval it reads, from the
 * process's memory (user/python/pyrt.h, as GET /workers does), the Python
 * stack of every thread of each odoo_cron worker and looks, outermost first,
 * for a frame of a function named _callback whose cron_name parameter
 * --python.capture-args captures (Odoo's ir_cron._callback(self, cron_name,
 * server_action_id, job_id)). A run is one such frame: it begins at the
 * poll that first sees it (its frame address, thread and name) and ends at
 * the first poll that does not; both ends are taken halfway between the two
 * polls around them, so a duration is right to +/- one interval and a run
 * shorter than one may be missed. A duration is never less than the CPU and
 * runqueue time of its thread over those polls.
 *
 * Parts: the thread's CPU and runqueue time from
 * /proc/<pid>/task/<tid>/schedstat (the kernel's exact sums) between the
 * poll before the run and the one after it; the rest of the duration split
 * by the scheduler states (sched probe) seen at the polls during the run.
 *
 * Result: the kernel counts each PostgreSQL backend's aborted transactions
 * (pg_client_aborts()); Odoo rolls a failed run's cursor back inside
 * _callback, before the frame goes, and commits a good one after it
 * returns. So: aborts by the worker's linked backends rose during the run:
 * failed; did not: ok; no linked backend or no pg probe: unknown.
 *
 * While a trace records, each run is a slice on its thread (TRACE_EV_CRON).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/erpscope.h"
#include "core/grow.h"
#include "core/log.h"
#include "core/poller.h"
#include "core/readfile.h"
#include "core/trace_sink.h"
#include "cron/cron.h"
#include "pg/pg.h"
#include "procs/proctable.h"
#include "python/python.h"
#include "sched/sched.h"

#define CRON_THREADS 8
/* Deeper than --python.stack-depth allows: _callback is near the outermost
 * frame and a cron's own code can nest deep below it. */
#define CRON_DEPTH 256
/* The main loop's timer: ticks come this far apart at best. */
#define TICK_SLACK_MS 50

struct cron_tstat {
	__u32 tid;
	uint64_t cpu_ns, rq_ns;
	bool exact; /* acc holds the sched probe's totals (cpu_ns, rq_ns are from them) */
	uint64_t acc[ES_ACC_COUNT];
};

struct cron_worker {
	__u32 pid;
	__u64 starttime;
	bool seen;
	uint64_t last_poll_ns; /* 0: never polled */
	struct cron_tstat prev[CRON_THREADS]; /* schedstat at the last poll */
	int nprev;
	/* the run open now */
	bool in_run;
	uint64_t frame;
	__u32 tid;
	char name[CRON_NAME_MAX];
	uint64_t start_ns, last_seen_ns;
	uint64_t cpu0, rq0, cpu1, rq1; /* the thread's schedstat before it and at the last poll */
	struct cron_tstat t0, t1; /* the thread's times before it and at the last poll */
	uint64_t off[CRON_OFF_COUNT]; /* states seen at the polls, when t0/t1 are not exact */
	int backends0; /* pg_client_aborts() at its start */
	uint64_t aborts0;
};

struct cron_priv {
	struct cron_table *table;
	struct cron_worker *w;
	size_t nw, capw;
	uint64_t due_ms;
	struct py_thread th[CRON_THREADS];
	struct py_frame frames[CRON_THREADS][CRON_DEPTH];
};

/* What one poll found in a worker. */
struct cron_seen {
	bool found;
	uint64_t frame;
	__u32 tid;
	char name[CRON_NAME_MAX];
	struct cron_tstat cur[CRON_THREADS];
	int ncur;
};

static int schedstat(__u32 pid, __u32 tid, uint64_t *cpu, uint64_t *rq)
{
	char path[64], buf[128];
	unsigned long long c, r;

	snprintf(path, sizeof(path), "/proc/%u/task/%u/schedstat", pid, tid);
	if (read_small_file(path, buf, sizeof(buf)) <= 0 || sscanf(buf, "%llu %llu", &c, &r) != 2)
		return -ENOENT;
	*cpu = c;
	*rq = r;
	return 0;
}

static const struct cron_tstat *tstat_of(const struct cron_tstat *v, int n, __u32 tid)
{
	for (int i = 0; i < n; i++) {
		if (v[i].tid == tid)
			return &v[i];
	}
	return NULL;
}

/* The captured cron_name of a _callback frame, or false. */
static bool callback_name(struct py_priv *pp, struct py_proc *pr, const struct py_frame *f,
			  char *name, size_t size)
{
	const struct py_code_entry *ce = py_code_lookup(pp, pr, f->code);
	char repr[CRON_NAME_MAX + 8];

	if (!ce || strcmp(ce->c.name, "_callback"))
		return false;
	for (int a = 0; a < ES_PY_ARGS_PER_FUNC; a++) {
		if (ce->arg_index[a] < 0 || !ce->arg_names[a] ||
		    strcmp(ce->arg_names[a], "cron_name"))
			continue;
		py_frame_arg_repr(&pr->t, f->frame, ce->arg_index[a], repr, sizeof(repr));
		cron_name_from_repr(repr, name, size);
		return true;
	}
	return false;
}

/*
 * A thread's times: the sched probe's totals by state when it has them,
 * else the kernel's schedstat (CPU and runqueue only).
 */
static int thread_times(struct erpscope *es, __u32 pid, __u32 tid, struct cron_tstat *ts)
{
	ts->tid = tid;
	ts->exact = !sched_thread_totals(es, tid, ts->acc);
	if (!ts->exact)
		return schedstat(pid, tid, &ts->cpu_ns, &ts->rq_ns);
	ts->cpu_ns = ts->acc[ES_ACC_CPU];
	ts->rq_ns = ts->acc[1 + ES_OFF_RUNQUEUE];
	return 0;
}

/* Reads the worker's threads: the outermost _callback frame and every thread's times. */
static int look(struct erpscope *es, struct cron_priv *cp, struct py_priv *pp, __u32 pid,
		struct cron_seen *s)
{
	struct py_proc *pr = py_proc_find(pp, pid);
	int n;

	memset(s, 0, sizeof(*s));
	if (!pr || pr->err)
		return -EAGAIN;
	for (int i = 0; i < CRON_THREADS; i++)
		cp->th[i].frames = cp->frames[i];
	n = py_walk_threads(&pr->t, cp->th, CRON_THREADS, CRON_DEPTH);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		const struct py_thread *th = &cp->th[i];
		struct cron_tstat *ts = &s->cur[s->ncur];

		if (!thread_times(es, pid, (__u32)th->tid, ts))
			s->ncur++;
		for (int d = th->depth - 1; d >= 0 && !s->found; d--) {
			if (callback_name(pp, pr, &th->frames[d], s->name, sizeof(s->name))) {
				s->found = true;
				s->frame = th->frames[d].frame;
				s->tid = (__u32)th->tid;
			}
		}
	}
	return 0;
}

static double unix_of(uint64_t mono_ns)
{
	struct timespec ts;
	uint64_t now = clock_ns();

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 - (double)(now - mono_ns) / 1e9;
}

static void run_begin(struct erpscope *es, struct cron_worker *cw, const struct cron_seen *s,
		      uint64_t now)
{
	const struct cron_tstat *before = tstat_of(cw->prev, cw->nprev, s->tid);
	const struct cron_tstat *at = tstat_of(s->cur, s->ncur, s->tid);

	cw->in_run = true;
	cw->frame = s->frame;
	cw->tid = s->tid;
	snprintf(cw->name, sizeof(cw->name), "%s", s->name);
	cw->start_ns = cw->last_poll_ns ? cw->last_poll_ns + (now - cw->last_poll_ns) / 2 : now;
	if (!before)
		before = at;
	cw->cpu0 = before ? before->cpu_ns : 0;
	cw->rq0 = before ? before->rq_ns : 0;
	cw->cpu1 = cw->cpu0;
	cw->rq1 = cw->rq0;
	memset(&cw->t0, 0, sizeof(cw->t0));
	if (before)
		cw->t0 = *before;
	cw->t1 = cw->t0;
	memset(cw->off, 0, sizeof(cw->off));
	cw->backends0 = pg_client_aborts(es, cw->pid, &cw->aborts0);
}

/* At a poll inside the run: the thread's state and schedstat. */
static void run_sample(struct erpscope *es, struct cron_worker *cw, const struct cron_seen *s,
		       uint64_t now)
{
	const struct cron_tstat *at = tstat_of(s->cur, s->ncur, cw->tid);
	const char *state;
	uint64_t since;

	cw->last_seen_ns = now;
	if (at) {
		cw->cpu1 = at->cpu_ns;
		cw->rq1 = at->rq_ns;
		cw->t1 = *at;
	}
	if (sched_thread_state(es, cw->tid, &state, &since))
		return;
	if (!strcmp(state, "iowait"))
		cw->off[CRON_OFF_IOWAIT]++;
	else if (!strcmp(state, "blocked"))
		cw->off[CRON_OFF_BLOCKED]++;
	else if (!strcmp(state, "sleeping"))
		cw->off[CRON_OFF_SLEEP]++;
}

/* The run as a slice on its thread, for a trace recording. */
static void run_trace(struct erpscope *es, const struct cron_worker *cw, const struct cron_run *r)
{
	struct trace_ev ev = {
		.kind = TRACE_EV_CRON,
		.tgid = cw->pid,
		.tid = cw->tid,
		.ts_ns = cw->start_ns,
		.end_ns = cw->start_ns + r->dur_ns,
		.name = cw->name,
		.status = cron_result_name(r->result),
	};

	trace_sink_emit(&es->trace, &ev);
}

/* s: the poll that no longer sees it (NULL: the worker is gone). */
static void run_end(struct erpscope *es, struct cron_priv *cp, struct cron_worker *cw,
		    const struct cron_seen *s, uint64_t now)
{
	const struct cron_tstat *at = s ? tstat_of(s->cur, s->ncur, cw->tid) : NULL;
	uint64_t end = cw->last_seen_ns + (now - cw->last_seen_ns) / 2, aborts = 0;
	uint64_t cpu = at ? at->cpu_ns : cw->cpu1, rq = at ? at->rq_ns : cw->rq1;
	struct cron_run r = { .name = cw->name };
	int backends;

	cw->in_run = false;
	cpu = cpu > cw->cpu0 ? cpu - cw->cpu0 : 0;
	rq = rq > cw->rq0 ? rq - cw->rq0 : 0;
	r.dur_ns = end > cw->start_ns ? end - cw->start_ns : 0;
	/* the thread ran or waited for a CPU at least that long */
	if (r.dur_ns < cpu + rq)
		r.dur_ns = cpu + rq;
	if (at)
		cw->t1 = *at;
	/* Exact off-CPU time by state over the polls around it, when the sched probe had both. */
	if (cw->t0.exact && cw->t1.exact) {
		for (int i = 0; i < CRON_OFF_COUNT; i++) {
			int k = 1 + ES_OFF_IOWAIT + i; /* iowait, blocked, sleep: in that order */

			cw->off[i] = cw->t1.acc[k] > cw->t0.acc[k] ? cw->t1.acc[k] - cw->t0.acc[k] : 0;
		}
	}
	cron_split(r.dur_ns, cpu, rq, cw->off, r.part_ns);
	backends = pg_client_aborts(es, cw->pid, &aborts);
	if (!s)
		r.result = CRON_FAILED;
	else if (backends <= 0)
		r.result = CRON_UNKNOWN;
	else if (cw->backends0 >= 0 && aborts > cw->aborts0)
		r.result = CRON_FAILED;
	else if (cw->backends0 >= 0 && aborts == cw->aborts0)
		r.result = CRON_OK;
	else
		r.result = CRON_UNKNOWN; /* fewer aborts: a backend went away */
	r.end_unix = unix_of(end);
	run_trace(es, cw, &r);
	if (cron_table_add(cp->table, &r))
		log_debug("cron run counted as other", "cron=%s", cw->name);
	log_debug("cron run", "pid=%u cron=%s seconds=%.3f result=%s", cw->pid, cw->name,
		  (double)r.dur_ns / 1e9, cron_result_name(r.result));
}

static void poll_worker(struct erpscope *es, struct cron_priv *cp, struct py_priv *pp,
			struct cron_worker *cw, uint64_t now)
{
	struct cron_seen s;

	if (look(es, cp, pp, cw->pid, &s))
		return; /* not readable this time: nothing changes */
	if (cw->in_run &&
	    (!s.found || s.frame != cw->frame || s.tid != cw->tid || strcmp(s.name, cw->name)))
		run_end(es, cp, cw, &s, now);
	if (s.found && !cw->in_run)
		run_begin(es, cw, &s, now);
	if (cw->in_run)
		run_sample(es, cw, &s, now);
	memcpy(cw->prev, s.cur, sizeof(s.cur));
	cw->nprev = s.ncur;
	cw->last_poll_ns = now;
}

struct tick_walk {
	struct erpscope *es;
	struct cron_priv *cp;
	struct py_priv *pp;
	uint64_t now;
};

static struct cron_worker *worker_get(struct cron_priv *cp, const struct worker *w)
{
	for (size_t i = 0; i < cp->nw; i++) {
		if (cp->w[i].pid == w->pid && cp->w[i].starttime == w->starttime)
			return &cp->w[i];
	}
	if (grow_array(&cp->w, &cp->capw, cp->nw + 1, sizeof(*cp->w), 4))
		return NULL;
	memset(&cp->w[cp->nw], 0, sizeof(cp->w[0]));
	cp->w[cp->nw].pid = w->pid;
	cp->w[cp->nw].starttime = w->starttime;
	return &cp->w[cp->nw++];
}

static void one_slot(void *arg, const struct slot_view *sv)
{
	struct tick_walk *tw = arg;
	struct cron_worker *cw;

	if (!sv->w || sv->w->exited || sv->w->role != ES_ROLE_ODOO_CRON)
		return;
	cw = worker_get(tw->cp, sv->w);
	if (!cw)
		return;
	cw->seen = true;
	poll_worker(tw->es, tw->cp, tw->pp, cw, tw->now);
}

static void cron_tick(struct poller *pl, uint64_t now_ms)
{
	struct cron_priv *cp = pl->priv;
	struct tick_walk tw = { .es = pl->es, .cp = cp, .pp = python_priv(pl->es) };
	size_t keep = 0;

	if (!tw.pp || now_ms < cp->due_ms)
		return;
	tw.now = clock_ns();
	/* a late poll may merge two runs of one cron: say so for whoever wonders */
	if (cp->due_ms && now_ms > cp->due_ms + 2 * pl->es->cfg.cron_poll_ms)
		log_debug("cron poll late", "by_ms=%" PRIu64, now_ms - cp->due_ms);
	cp->due_ms = now_ms + pl->es->cfg.cron_poll_ms - TICK_SLACK_MS;
	for (size_t i = 0; i < cp->nw; i++)
		cp->w[i].seen = false;
	procs_for_each_slot(pl->es->procs, one_slot, &tw);
	for (size_t i = 0; i < cp->nw; i++) {
		struct cron_worker *cw = &cp->w[i];

		if (!cw->seen) {
			if (cw->in_run)
				run_end(pl->es, cp, cw, NULL, tw.now); /* died in it */
			continue;
		}
		if (keep != i)
			cp->w[keep] = *cw;
		keep++;
	}
	cp->nw = keep;
}

static int cron_init(struct poller *pl)
{
	struct cron_priv *cp;

	if (!python_priv(pl->es))
		return -ENODEV; /* stacks come from the python probe's targets */
	cp = calloc(1, sizeof(*cp));
	if (!cp)
		return -ENOMEM;
	cp->table = cron_table_new(CRON_MAX_NAMES);
	if (!cp->table) {
		free(cp);
		return -ENOMEM;
	}
	pl->priv = cp;
	return 0;
}

static void cron_poll_collect(struct poller *pl, struct expo *e)
{
	struct cron_priv *cp = pl->priv;

	cron_collect(cp->table, e);
}

static void cron_free(struct poller *pl)
{
	struct cron_priv *cp = pl->priv;

	if (!cp)
		return;
	cron_table_free(cp->table);
	free(cp->w);
	free(cp);
	pl->priv = NULL;
}

const struct poller_ops cron_poller_ops = {
	.name = "cron",
	.interval_ms = 100,
	.init = cron_init,
	.tick = cron_tick,
	.collect = cron_poll_collect,
	.free = cron_free,
};
