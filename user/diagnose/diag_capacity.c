// SPDX-License-Identifier: GPL-2.0
/*
 * Rules on what the host gives Odoo: CPUs saturated by something other
 * than Odoo's workers (2), the pool's note on idle CPU (2: too few
 * workers), checkpoints forced by WAL volume (11), GPU memory and
 * throttling (12).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "diagnose/diagnose.h"
#include "gpu/gpu.h"
#include "procs/title.h"

/* ---------------------------------------------------------------- 2: CPU elsewhere */

struct cpu_use {
	double busy, busy_s; /* host: share, CPU seconds */
	double odoo_s;       /* Odoo's workers (http, cron, gevent) */
	double role_s[DIAG_ROLES];
	double untracked_s; /* busy, less every tracked worker */
};

static bool odoo_role(unsigned int r)
{
	return r == ES_ROLE_ODOO_HTTP || r == ES_ROLE_ODOO_CRON || r == ES_ROLE_ODOO_GEVENT;
}

static bool cpu_use(const struct diag_input *in, struct cpu_use *u)
{
	const struct diag_snap *a = in->start, *b = in->end;
	double tracked = 0;

	memset(u, 0, sizeof(*u));
	if (!diag_host_cpu(in, &u->busy, &u->busy_s) || !a->odoo_known || !b->odoo_known)
		return false;
	u->odoo_s = (double)diag_delta(b->odoo_cpu_ns, a->odoo_cpu_ns) / 1e9;
	for (unsigned int r = 0; r < DIAG_ROLES; r++) {
		u->role_s[r] = (double)diag_delta(b->role_cpu_ns[r], a->role_cpu_ns[r]) / 1e9;
		tracked += u->role_s[r];
	}
	u->untracked_s = u->busy_s > tracked ? u->busy_s - tracked : 0;
	return true;
}

/* The busiest HTTP pool's busy share over the window. */
static double max_occupancy(const struct diag_input *in, double span)
{
	double best = 0;

	for (unsigned int i = 0; i < in->end->npools; i++) {
		const struct diag_pool *p = &in->end->pools[i], *o = NULL;
		unsigned int n = p->busy + p->idle;
		double occ;

		for (unsigned int k = 0; k < in->start->npools; k++)
			if (in->start->pools[k].port == p->port)
				o = &in->start->pools[k];
		occ = n ? (double)diag_delta(p->busy_ns, o ? o->busy_ns : 0) / 1e9 / ((double)n * span) : 0;
		if (occ > best)
			best = occ;
	}
	return best;
}

bool diag_cpu_not_odoo(const struct diag_input *in, const struct diag_summary *sum)
{
	const struct diag_rule *rl = &diag_rules[DIAG_R_CPU_ELSEWHERE];
	struct cpu_use u;

	return sum->pool_known && sum->workers && sum->span > 0 &&
	       max_occupancy(in, sum->span) < rl->threshold2 && cpu_use(in, &u) &&
	       u.busy >= rl->threshold && u.odoo_s < rl->threshold2 * u.busy_s;
}

/* "untracked processes 9.1 s, pg_backend 0.4 s": the three largest non-Odoo users. */
static void top_users(const struct cpu_use *u, char *buf, size_t size)
{
	bool used[DIAG_ROLES + 1] = { false };
	size_t len = 0;

	buf[0] = '\0';
	for (int k = 0; k < 3 && len < size; k++) {
		int best = -1;
		double s = 0.05; /* less is noise */

		for (int r = 0; r <= DIAG_ROLES; r++) {
			double v = r == DIAG_ROLES ? u->untracked_s : u->role_s[r];

			if (!used[r] && (r == DIAG_ROLES || !odoo_role((unsigned int)r)) && v >= s) {
				best = r;
				s = v;
			}
		}
		if (best < 0)
			break;
		used[best] = true;
		len += (size_t)snprintf(buf + len, size - len, "%s%s %.1f s", k ? ", " : "",
					best == DIAG_ROLES ? "processes erpscope does not track (not Odoo, Python or PostgreSQL)" :
					best == ES_ROLE_OTHER ? "other tracked processes" :
					role_name((enum es_role)best), s);
	}
}

int diag_rule_cpu_elsewhere(const struct diag_input *in, struct diag_result *res)
{
	const struct diag_rule *rl = &diag_rules[DIAG_R_CPU_ELSEWHERE];
	const struct diag_summary *sum = &res->sum;
	struct diag_finding *f;
	struct cpu_use u;
	char users[320];

	if (!diag_cpu_not_odoo(in, sum) || !cpu_use(in, &u))
		return 0;
	f = diag_add(res, DIAG_R_CPU_ELSEWHERE, u.busy_s - u.odoo_s, in->start->t);
	if (!f)
		return -ENOMEM;
	top_users(&u, users, sizeof(users));
	diag_fmt(f->title, "CPUs %.0f%% busy while the %u HTTP workers were busy %.0f%% of the window: the CPU goes to something other than Odoo (not too few workers)",
		 u.busy * 100, sum->workers, sum->occupancy * 100);
	diag_fmt(f->cause, "of %.1f CPU-seconds used in %.0f s, Odoo's workers used %.1f s (%.0f%%); the most: %s",
		 u.busy_s, sum->span, u.odoo_s, u.busy_s > 0 ? 100.0 * u.odoo_s / u.busy_s : 0,
		 users[0] ? users : "(no other user known)");
	diag_evidence(f, "erpscope_host_cpu_seconds_total", "CPUs %.0f%% busy (%.1f CPU-seconds) over %.0f s",
		      u.busy * 100, u.busy_s, sum->span);
	diag_evidence(f, "erpscope_cpu_seconds_total by role", "Odoo workers %.1f s on CPU; %s", u.odoo_s,
		      users[0] ? users : "no other");
	diag_evidence(f, "erpscope_worker_busy_seconds_total{role=\"odoo_http\"}",
		      "%u HTTP workers busy %.0f%% of the window", sum->workers, sum->occupancy * 100);
	diag_fmt(f->action, "%s", rl->action);
	return 0;
}

void diag_pool_cpu_note(const struct diag_input *in, char *buf, size_t size)
{
	double busy, busy_s;

	if (!diag_host_cpu(in, &busy, &busy_s))
		return;
	if (busy < 0.7)
		snprintf(buf, size, "; the CPUs were only %.0f%% busy over the window: they have room for more workers (too few for this load)",
			 busy * 100);
	else if (busy >= diag_rules[DIAG_R_HOST].threshold)
		snprintf(buf, size, "; but the CPUs were %.0f%% busy: more workers would wait for a CPU, make the route faster first",
			 busy * 100);
	else
		snprintf(buf, size, "; the CPUs were %.0f%% busy over the window", busy * 100);
}

/* ---------------------------------------------------------------- 11: checkpoints */

struct ckpt_walk {
	const struct diag_snap *prev;
	double from;           /* the window's first snapshot */
	double before, last;   /* the snapshot before the first growth, the last growth */
	uint64_t wal;
};

static void ckpt_step(void *arg, const struct diag_snap *s)
{
	struct ckpt_walk *w = arg;

	if (s->t < w->from || !s->ckpt_known)
		return;
	if (w->prev && s->ckpts[1] > w->prev->ckpts[1]) {
		if (!w->wal)
			w->before = w->prev->t;
		w->wal += s->ckpts[1] - w->prev->ckpts[1];
		w->last = s->t;
	}
	w->prev = s;
}

int diag_rule_checkpoints(const struct diag_input *in, struct diag_result *res)
{
	const struct diag_rule *rl = &diag_rules[DIAG_R_CHECKPOINTS];
	const struct diag_snap *a = in->start, *b = in->end;
	struct ckpt_walk w = { .from = a->t };
	struct diag_finding *f;
	double gap;

	if (!a->ckpt_known || !b->ckpt_known || !in->h)
		return 0;
	diag_history_foreach(in->h, b->t, ckpt_step, &w);
	if (w.prev != b && w.prev && b->t > w.prev->t)
		ckpt_step(&w, b); /* the live snapshot */
	if ((double)w.wal < rl->threshold2)
		return 0;
	/* The starts lie in (before, last]: their mean gap is at most this. */
	gap = (w.last - w.before) / (double)(w.wal - 1);
	if (gap >= rl->threshold)
		return 0;
	f = diag_add(res, DIAG_R_CHECKPOINTS, 10.0 * (double)w.wal, w.before);
	if (!f)
		return -ENOMEM;
	diag_fmt(f->title, "checkpoints too frequent: %llu forced by WAL volume (max_wal_size) within %.0f s, one every %.0f s at most (PostgreSQL warns under 30 s)",
		 (unsigned long long)w.wal, w.last - w.before, gap);
	diag_fmt(f->cause, "writes fill max_wal_size faster than checkpoint_timeout: each checkpoint flushes the dirty buffers and makes the next write of every page a full-page image, more WAL again");
	diag_evidence(f, "erpscope_pg_checkpoints_total{cause=...}",
		      "checkpoints started in the window: wal %llu, time %llu, requested %llu",
		      (unsigned long long)diag_delta(b->ckpts[1], a->ckpts[1]),
		      (unsigned long long)diag_delta(b->ckpts[0], a->ckpts[0]),
		      (unsigned long long)diag_delta(b->ckpts[2], a->ckpts[2]));
	diag_evidence(f, "erpscope_pg_checkpoint_duration_seconds; erpscope_pg_checkpoint_buffers_written_total",
		      "how long they took and what they wrote");
	diag_fmt(f->action, "%s", rl->action);
	return 0;
}

/* ---------------------------------------------------------------- 12: GPU */

int diag_rule_gpu(const struct diag_input *in, struct diag_result *res)
{
	const struct diag_rule *rl = &diag_rules[DIAG_R_GPU];
	const struct diag_snap *b = in->end;

	for (unsigned int i = 0; i < b->ngpus; i++) {
		const struct diag_gpu *g = &b->gpus[i];
		bool full = g->mem_known && g->mem_used >= rl->threshold * g->mem_total;
		uint32_t thr = g->reasons & DIAG_GPU_PRESSURE;
		char reasons[160] = "", mem[96];
		struct diag_finding *f;
		size_t len = 0;

		if (!full && !thr)
			continue;
		for (unsigned int r = 0; r < 32 && len < sizeof(reasons); r++)
			if (thr & (1u << r))
				len += (size_t)snprintf(reasons + len, sizeof(reasons) - len, "%s%s",
							len ? ", " : "", gpu_reason_name(r));
		snprintf(mem, sizeof(mem), "memory %.0f%% used (%.1f of %.1f GiB)",
			 g->mem_total > 0 ? 100.0 * g->mem_used / g->mem_total : 0,
			 g->mem_used / 1073741824.0, g->mem_total / 1073741824.0);
		f = diag_add(res, DIAG_R_GPU, 50.0 * (full + !!thr), in->start ? in->start->t : b->t);
		if (!f)
			return -ENOMEM;
		diag_fmt(f->title, "GPU %s (%s): %s%s%s%s", g->index, g->name, full ? mem : "",
			 full && thr ? "; " : "", thr ? "clocks held down by " : "", reasons);
		diag_fmt(f->cause, "%s%s%s", full ? "the GPU is nearly out of memory: a new allocation fails (CUDA out of memory)" : "",
			 full && thr ? "; " : "",
			 thr ? "the GPU runs slower than it can: power cap, heat or a hardware slowdown" : "");
		diag_evidence(f, "erpscope_gpu_memory_used_bytes / erpscope_gpu_memory_total_bytes", "%s", mem);
		diag_evidence(f, "erpscope_gpu_throttled{reason=...}", "throttle reasons: %s",
			      reasons[0] ? reasons : "none");
		if (g->util_known)
			diag_evidence(f, "erpscope_gpu_utilization_ratio", "utilisation %.0f%%", g->util * 100);
		diag_evidence(f, "erpscope_gpu_process_memory_bytes", "which workers hold its memory");
		diag_fmt(f->action, "%s", rl->action);
	}
	return 0;
}
