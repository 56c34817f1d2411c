// SPDX-License-Identifier: GPL-2.0
/*
 * GET /workers (text, or ?format=json; ?role= filters): every tracked
 * worker's role, pid, scheduler state and for how long (from the sched
 * probe's per-task state), and for Python workers each thread's stack read
 * now from user space (process_vm_readv), asleep or not, innermost first,
 * with the captured arguments of the configured functions, and what it holds
 * on GPUs at the gpu poller's last poll (core/gpu_use.h).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/erpscope.h"
#include "core/gpu_use.h"
#include "core/grow.h"
#include "core/http.h"
#include "core/json.h"
#include "procs/proctable.h"
#include "python/python.h"
#include "core/readfile.h"
#include "sched/sched.h"

#define MAX_THREADS 16

struct wk_frame {
	char func[256];
	char file[256];
	int line;
	int nargs;
	char arg_names[ES_PY_ARGS_PER_FUNC][PY_CAPTURE_NAME_MAX];
	char arg_vals[ES_PY_ARGS_PER_FUNC][128];
};

struct wk_thread {
	__u32 tid;
	const char *state;
	double secs; /* NAN: not known */
	bool truncated;
	int depth;
	struct wk_frame frames[ES_PY_MAX_DEPTH];
};

struct wk_proc {
	const struct worker *w;
	const char *state;
	double secs;
	const char *python; /* pyver: "3.11", or NULL */
	char pyver[16];
	char gc[400];
	const char *why;    /* why there is no stack, or NULL */
	int nthreads;
	struct wk_thread threads[MAX_THREADS];
	struct py_frame frames[MAX_THREADS][ES_PY_MAX_DEPTH];
};

struct wk_walk {
	struct erpscope *es;
	struct py_priv *pp;
	int role; /* -1: all */
	bool json;
	struct json j;
	char *text;
	size_t len, cap;
	bool oom;
	struct wk_proc *scratch;
};

/* /proc/<pid>/stat's state letter, for threads the sched probe has not seen. */
static const char *proc_state(__u32 pid, __u32 tid)
{
	char path[64], buf[512], *p;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%u/task/%u/stat", pid, tid);
	n = read_small_file(path, buf, sizeof(buf));
	if (n <= 0)
		return "unknown";
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return "unknown";
	switch (p[2]) {
	case 'R':
		return "running";
	case 'D':
		return "blocked";
	case 'S':
		return "sleeping";
	default:
		return "other";
	}
}

static void thread_state(struct erpscope *es, __u32 pid, __u32 tid, const char **state,
			 double *secs)
{
	uint64_t since, now = clock_ns();

	if (!sched_thread_state(es, tid, state, &since)) {
		*secs = now > since ? (double)(now - since) / 1e9 : 0;
		return;
	}
	*state = proc_state(pid, tid);
	*secs = NAN;
}

static void fill_python(struct wk_walk *ww, struct wk_proc *wp)
{
	struct py_proc *pr = ww->pp ? py_proc_find(ww->pp, wp->w->pid) : NULL;
	struct py_thread th[MAX_THREADS];
	int n;

	if (!ww->pp) {
		wp->why = "the python probe is not running";
		return;
	}
	if (!pr || pr->err) {
		wp->why = !pr ? "not looked at yet" :
			  pr->err == -EPERM ? "its owner is not in --python.users: memory not read" :
			  pr->err == -ENOTSUP || pr->err == -ENOENT ? py_target_why(&pr->t, pr->err) :
								      "interpreter not readable";
		return;
	}
	snprintf(wp->pyver, sizeof(wp->pyver), "%u.%u", pr->t.version >> 8, pr->t.version & 0xff);
	wp->python = wp->pyver;
	py_gc_status(ww->pp, pr, wp->gc, sizeof(wp->gc));
	for (int i = 0; i < MAX_THREADS; i++)
		th[i].frames = wp->frames[i];
	n = py_walk_threads(&pr->t, th, MAX_THREADS, (int)ww->es->cfg.py_depth);
	if (n < 0) {
		wp->why = n == -ESRCH ? "exited" : "interpreter not readable";
		return;
	}
	wp->nthreads = n;
	for (int i = 0; i < n; i++) {
		struct wk_thread *t = &wp->threads[i];

		t->tid = (__u32)th[i].tid;
		t->truncated = th[i].truncated;
		t->depth = th[i].depth < ES_PY_MAX_DEPTH ? th[i].depth : ES_PY_MAX_DEPTH;
		thread_state(ww->es, wp->w->pid, t->tid, &t->state, &t->secs);
		for (int d = 0; d < t->depth; d++) {
			const struct py_code_entry *ce =
				py_code_lookup(ww->pp, pr, th[i].frames[d].code);
			struct wk_frame *f = &t->frames[d];

			f->nargs = 0;
			if (!ce) {
				snprintf(f->func, sizeof(f->func), "[unknown]");
				f->file[0] = '\0';
				f->line = 0;
				continue;
			}
			py_frame_name(ce, f->func, sizeof(f->func));
			snprintf(f->file, sizeof(f->file), "%s", ce->c.filename);
			f->line = ce->c.firstlineno;
			for (int a = 0; a < ES_PY_ARGS_PER_FUNC; a++) {
				if (ce->arg_index[a] < 0 || !ce->arg_names[a])
					continue;
				snprintf(f->arg_names[f->nargs], sizeof(f->arg_names[0]), "%s",
					 ce->arg_names[a]);
				py_frame_arg_repr(&pr->t, th[i].frames[d].frame, ce->arg_index[a],
						  f->arg_vals[f->nargs], sizeof(f->arg_vals[0]));
				f->nargs++;
			}
		}
	}
}

static void text_add(struct wk_walk *ww, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_add(struct wk_walk *ww, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ww->oom)
		return;
	for (;;) {
		size_t room = ww->cap - ww->len;

		va_start(ap, fmt);
		n = vsnprintf(ww->text ? ww->text + ww->len : NULL, ww->text ? room : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			ww->oom = true;
			return;
		}
		if (ww->text && (size_t)n < room) {
			ww->len += (size_t)n;
			return;
		}
		if (grow_array(&ww->text, &ww->cap, ww->len + (size_t)n + 1, 1, 8192)) {
			ww->oom = true;
			return;
		}
	}
}

static void render_text(struct wk_walk *ww, const struct wk_proc *wp)
{
	const struct worker *w = wp->w;
	const struct gpu_use *u;

	text_add(ww, "%s pid=%u comm=%s state=%s", role_name(w->role), w->pid, w->comm, wp->state);
	if (!isnan(wp->secs))
		text_add(ww, " for=%.1fs", wp->secs);
	if (wp->python)
		text_add(ww, " python=%s gc=%s", wp->python, wp->gc);
	text_add(ww, "\n");
	for (unsigned int i = 0; (u = gpu_use_next(&ww->es->gpu_use, w->pid, &i));) {
		text_add(ww, "  gpu %s: memory=%.1fMiB", u->gpu, (double)u->memory_bytes / (1 << 20));
		if (u->utilization >= 0)
			text_add(ww, " utilization=%.0f%%", u->utilization * 100);
		text_add(ww, "\n");
	}
	if (wp->why && wp->w->role != ES_ROLE_PG_BACKEND)
		text_add(ww, "  (no Python stack: %s)\n", wp->why);
	for (int i = 0; i < wp->nthreads; i++) {
		const struct wk_thread *t = &wp->threads[i];

		text_add(ww, "  thread %u %s", t->tid, t->state);
		if (!isnan(t->secs))
			text_add(ww, " for %.1fs", t->secs);
		text_add(ww, "%s\n", t->truncated ? " (stack cut short)" : "");
		for (int d = 0; d < t->depth; d++) {
			const struct wk_frame *f = &t->frames[d];

			text_add(ww, "    %s", f->func);
			for (int a = 0; a < f->nargs; a++)
				text_add(ww, "%s%s=%s", a ? ", " : " (", f->arg_names[a], f->arg_vals[a]);
			text_add(ww, "%s", f->nargs ? ")" : "");
			if (f->file[0])
				text_add(ww, "  %s:%d", f->file, f->line);
			text_add(ww, "\n");
		}
	}
}

static void render_json(struct wk_walk *ww, const struct wk_proc *wp)
{
	const struct worker *w = wp->w;
	const struct gpu_use *u;
	struct json *j = &ww->j;

	json_object_begin(j, NULL);
	json_u64(j, "pid", w->pid);
	json_str(j, "role", role_name(w->role));
	json_str(j, "worker", w->label);
	json_str(j, "comm", w->comm);
	json_str(j, "state", wp->state);
	json_double(j, "state_seconds", wp->secs);
	if (wp->python) {
		json_str(j, "python", wp->python);
		json_str(j, "gc", wp->gc);
	} else {
		json_null(j, "python");
		json_null(j, "gc");
	}
	if (wp->why)
		json_str(j, "stack_unavailable", wp->why);
	json_array_begin(j, "gpu");
	for (unsigned int i = 0; (u = gpu_use_next(&ww->es->gpu_use, w->pid, &i));) {
		json_object_begin(j, NULL);
		json_str(j, "gpu", u->gpu);
		json_u64(j, "memory_bytes", u->memory_bytes);
		if (u->utilization >= 0)
			json_double(j, "utilization_ratio", u->utilization);
		else
			json_null(j, "utilization_ratio");
		json_object_end(j);
	}
	json_array_end(j);
	json_array_begin(j, "threads");
	for (int i = 0; i < wp->nthreads; i++) {
		const struct wk_thread *t = &wp->threads[i];

		json_object_begin(j, NULL);
		json_u64(j, "tid", t->tid);
		json_str(j, "state", t->state);
		json_double(j, "state_seconds", t->secs);
		json_bool(j, "truncated", t->truncated);
		json_array_begin(j, "stack");
		for (int d = 0; d < t->depth; d++) {
			const struct wk_frame *f = &t->frames[d];

			json_object_begin(j, NULL);
			json_str(j, "function", f->func);
			json_str(j, "file", f->file);
			json_i64(j, "line", f->line);
			json_object_begin(j, "args");
			for (int a = 0; a < f->nargs; a++)
				json_str(j, f->arg_names[a], f->arg_vals[a]);
			json_object_end(j);
			json_object_end(j);
		}
		json_array_end(j);
		json_object_end(j);
	}
	json_array_end(j);
	json_object_end(j);
}

static void one_worker(void *arg, const struct slot_view *sv)
{
	struct wk_walk *ww = arg;
	struct wk_proc *wp = ww->scratch;

	if (!sv->w || sv->w->exited || (ww->role >= 0 && (int)sv->w->role != ww->role))
		return;
	wp->w = sv->w;
	wp->python = NULL;
	wp->why = NULL;
	wp->gc[0] = '\0';
	wp->nthreads = 0;
	thread_state(ww->es, sv->w->pid, sv->w->pid, &wp->state, &wp->secs);
	if (python_role(sv->w->role))
		fill_python(ww, wp);
	else
		wp->why = "not a Python process";
	if (ww->json)
		render_json(ww, wp);
	else
		render_text(ww, wp);
}

int py_workers_http(void *arg, struct http_exchange *x)
{
	struct erpscope *es = arg;
	const char *fmt = http_query(x, "format"), *role_s = http_query(x, "role");
	struct wk_walk ww = { .es = es, .pp = python_priv(es), .role = -1 };
	int err;

	if (fmt && strcmp(fmt, "json") && strcmp(fmt, "text"))
		return http_reply_text(x, 400, "text/plain; charset=utf-8",
				       "bad request: format must be text or json\n");
	ww.json = fmt && !strcmp(fmt, "json");
	if (role_s) {
		for (int r = 0; r < ES_ROLE_COUNT; r++) {
			if (!strcmp(role_s, role_name((enum es_role)r)))
				ww.role = r;
		}
		if (ww.role < 0)
			return http_reply_text(x, 400, "text/plain; charset=utf-8",
					       "bad request: unknown role\n");
	}
	ww.scratch = malloc(sizeof(*ww.scratch));
	if (!ww.scratch)
		return -ENOMEM;
	if (ww.json) {
		json_init(&ww.j);
		json_object_begin(&ww.j, NULL);
		json_array_begin(&ww.j, "workers");
	}
	procs_for_each_slot(es->procs, one_worker, &ww);
	free(ww.scratch);
	if (ww.json) {
		json_array_end(&ww.j);
		json_object_end(&ww.j);
		err = json_finish(&ww.j);
		if (err) {
			json_free(&ww.j);
			return err;
		}
		x->status = 200;
		x->content_type = "application/json";
		x->body = ww.j.buf;
		x->len = ww.j.len;
		return 0;
	}
	if (ww.oom) {
		free(ww.text);
		return -ENOMEM;
	}
	if (!ww.text)
		text_add(&ww, "no tracked workers\n");
	x->status = 200;
	x->content_type = "text/plain; charset=utf-8";
	x->body = ww.text;
	x->len = ww.len;
	return 0;
}

int python_worker_frames(struct erpscope *es, __u32 pid, py_frame_fn fn, void *arg)
{
	struct wk_walk ww = { .es = es, .pp = python_priv(es), .role = -1 };
	const struct worker *w = procs_lookup(es->procs, pid);
	struct wk_proc *wp;
	int err = 0;

	if (!ww.pp)
		return -ENODEV;
	if (!w || w->exited || !python_role(w->role))
		return -ENOENT;
	wp = calloc(1, sizeof(*wp));
	if (!wp)
		return -ENOMEM;
	wp->w = w;
	fill_python(&ww, wp);
	if (wp->why)
		err = -ENODATA;
	for (int i = 0; i < wp->nthreads; i++) {
		const struct wk_thread *t = &wp->threads[i];

		for (int d = 0; d < t->depth; d++) {
			const struct wk_frame *f = &t->frames[d];
			char args[256] = "";
			size_t o = 0;

			for (int a = 0; a < f->nargs && o + 1 < sizeof(args); a++) {
				int n = snprintf(args + o, sizeof(args) - o, "%s%s=%s", a ? ", " : "",
						 f->arg_names[a], f->arg_vals[a]);

				if (n < 0)
					break;
				o += (size_t)n;
			}
			fn(arg, (unsigned int)i, t->tid, t->state, t->secs, (unsigned int)d, f->func,
			   f->file, f->line, args);
		}
	}
	free(wp);
	return err;
}
