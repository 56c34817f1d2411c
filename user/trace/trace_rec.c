// SPDX-License-Identifier: GPL-2.0
/*
 * A recording in memory: the sink's events with their strings copied, and
 * each thread named when its first event comes (its process's role, pid
 * and title, its comm), so a worker that exits before the trace is written
 * keeps its name. Bounded by max_bytes: past it events are counted, not kept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/erpscope.h"
#include "core/readfile.h"
#include "procs/proctable.h"
#include "procs/title.h"
#include "trace/trace.h"

void trace_rec_init(struct trace_rec *r, struct erpscope *es, size_t max_bytes)
{
	memset(r, 0, sizeof(*r));
	r->es = es;
	r->max_bytes = max_bytes;
}

void trace_rec_reset(struct trace_rec *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->evs[i].strs);
	free(r->evs);
	free(r->threads);
	trace_rec_init(r, r->es, r->max_bytes);
}

const struct trace_thread *trace_rec_thread(const struct trace_rec *r, uint32_t tid)
{
	for (size_t i = 0; i < r->nthreads; i++) {
		if (r->threads[i].tid == tid)
			return &r->threads[i];
	}
	return NULL;
}

/* Printable ASCII only: Perfetto's strings are UTF-8, titles are any bytes. */
static void clean(char *s)
{
	for (; *s; s++) {
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = ' ';
	}
}

static void name_thread(struct trace_rec *r, struct trace_thread *t)
{
	const struct worker *w = procs_lookup(r->es->procs, t->tgid);
	char path[64], cmd[128];
	ssize_t n;

	t->role = w ? (int)w->role : -1;
	snprintf(path, sizeof(path), "/proc/%u/task/%u/comm", t->tgid, t->tid);
	if (read_small_file(path, t->comm, sizeof(t->comm)) <= 0)
		snprintf(t->comm, sizeof(t->comm), "%u", t->tid);
	t->comm[strcspn(t->comm, "\n")] = 0;
	clean(t->comm);
	snprintf(path, sizeof(path), "/proc/%u/cmdline", t->tgid);
	n = read_small_file(path, cmd, sizeof(cmd));
	for (ssize_t i = 0; i < n; i++) {
		if (!cmd[i])
			cmd[i] = ' ';
	}
	if (n <= 0)
		snprintf(cmd, sizeof(cmd), "%s", w ? w->comm : "");
	while (n > 0 && cmd[n - 1] == ' ')
		cmd[--n] = 0;
	clean(cmd);
	snprintf(t->title, sizeof(t->title), "%s %u %s", role_name(w ? w->role : ES_ROLE_OTHER),
		 t->tgid, cmd);
}

static int see_thread(struct trace_rec *r, uint32_t tgid, uint32_t tid)
{
	struct trace_thread *t;

	if (!tid || trace_rec_thread(r, tid))
		return 0;
	if (r->nthreads == r->capthreads) {
		size_t cap = r->capthreads ? 2 * r->capthreads : 64;

		t = realloc(r->threads, cap * sizeof(*t));
		if (!t)
			return -1;
		r->threads = t;
		r->capthreads = cap;
	}
	t = &r->threads[r->nthreads++];
	memset(t, 0, sizeof(*t));
	t->tgid = tgid;
	t->tid = tid;
	name_thread(r, t);
	r->bytes += sizeof(*t);
	return 0;
}

/* Copies the event's strings into one allocation its pointers then point into. */
static int copy_strings(struct trace_rec_ev *e)
{
	const char *src[3] = { e->ev.name, e->ev.detail, e->ev.status };
	const char **dst[3] = { &e->ev.name, &e->ev.detail, &e->ev.status };
	size_t len[3], total = 0;
	char *p;

	for (int i = 0; i < 3; i++) {
		len[i] = src[i] ? strlen(src[i]) + 1 : 0;
		total += len[i];
	}
	e->strs = NULL;
	if (!total)
		return 0;
	p = e->strs = malloc(total);
	if (!p)
		return -1;
	for (int i = 0; i < 3; i++) {
		if (!src[i])
			continue;
		memcpy(p, src[i], len[i]);
		clean(p);
		*dst[i] = p;
		p += len[i];
	}
	return (int)total;
}

void trace_rec_consume(void *ctx, const struct trace_ev *ev)
{
	struct trace_rec *r = ctx;
	struct trace_rec_ev *e;
	int strs;

	if (r->bytes + sizeof(*e) > r->max_bytes) {
		r->dropped++;
		return;
	}
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 4096;

		e = realloc(r->evs, cap * sizeof(*e));
		if (!e) {
			r->dropped++;
			return;
		}
		r->evs = e;
		r->cap = cap;
	}
	e = &r->evs[r->n];
	e->ev = *ev;
	strs = copy_strings(e);
	if (strs < 0 || see_thread(r, ev->tgid, ev->tid)) {
		free(e->strs);
		r->dropped++;
		return;
	}
	r->n++;
	r->bytes += sizeof(*e) + (size_t)strs;
}
