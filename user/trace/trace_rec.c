// SPDX-License-Identifier: GPL-2.0
/*
 * A recording in memory: the sink's events with their strings copied, and
 * each thread named when its first event comes (its process's role, pid
 * and title, its comm), so a worker that exits before the trace is written
 * keeps its name. Bounded by max_bytes: past it the oldest events go first
 * (counted in dropped). Events live in evs[first, n); the dead front is
 * reclaimed once it is half the array, with the threads no event names.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/erpscope.h"
#include "core/grow.h"
#include "core/readfile.h"
#include "procs/proctable.h"
#include "procs/title.h"
#include "trace/trace.h"

#define COMPACT_MIN 4096

void trace_rec_init(struct trace_rec *r, struct erpscope *es, size_t max_bytes)
{
	memset(r, 0, sizeof(*r));
	r->es = es;
	r->max_bytes = max_bytes;
}

void trace_rec_reset(struct trace_rec *r)
{
	for (size_t i = r->first; i < r->n; i++)
		free(r->evs[i].strs);
	free(r->evs);
	free(r->threads);
	free(r->hash);
	trace_rec_init(r, r->es, r->max_bytes);
}

/* tid -> index in threads: open addressing, hash slots hold index + 1. */
static size_t hash_of(uint32_t tid, size_t mask)
{
	return (tid * 2654435761u) & mask;
}

static long find_thread(const struct trace_rec *r, uint32_t tid)
{
	size_t mask = r->nhash - 1;

	if (!r->nhash)
		return -1;
	for (size_t h = hash_of(tid, mask);; h = (h + 1) & mask) {
		uint32_t v = r->hash[h];

		if (!v)
			return -1;
		if (r->threads[v - 1].tid == tid)
			return (long)v - 1;
	}
}

static int rehash(struct trace_rec *r, size_t nhash)
{
	uint32_t *h = calloc(nhash, sizeof(*h));

	if (!h)
		return -ENOMEM;
	free(r->hash);
	r->hash = h;
	r->nhash = nhash;
	for (size_t i = 0; i < r->nthreads; i++) {
		size_t k = hash_of(r->threads[i].tid, nhash - 1);

		while (h[k])
			k = (k + 1) & (nhash - 1);
		h[k] = (uint32_t)i + 1;
	}
	return 0;
}

const struct trace_thread *trace_rec_thread(const struct trace_rec *r, uint32_t tid)
{
	long i = find_thread(r, tid);

	return i < 0 ? NULL : &r->threads[i];
}

/* Printable ASCII only: Perfetto's strings are UTF-8, titles are any bytes. */
static void clean(char *s)
{
	for (; *s; s++) {
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = ' ';
	}
}

/* comm: what the event says, for a thread gone from /proc (an untracked waker); NULL: none. */
static void name_thread(struct trace_rec *r, struct trace_thread *t, const char *comm)
{
	const struct worker *w = procs_lookup(r->es->procs, t->tgid);
	char path[64], cmd[128];
	ssize_t n;

	t->role = w ? (int)w->role : -1;
	snprintf(path, sizeof(path), "/proc/%u/task/%u/comm", t->tgid, t->tid);
	n = read_small_file(path, t->comm, sizeof(t->comm));
	if (n <= 0 && comm)
		snprintf(t->comm, sizeof(t->comm), "%s", comm);
	else if (n <= 0)
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
		n = snprintf(cmd, sizeof(cmd), "%s", w ? w->comm : comm ? comm : "");
	while (n > 0 && cmd[n - 1] == ' ')
		cmd[--n] = 0;
	clean(cmd);
	snprintf(t->title, sizeof(t->title), "%s %u %s", role_name(w ? w->role : ES_ROLE_OTHER),
		 t->tgid, cmd);
}

/* The index of thread tid, named at its first sight; -1 when out of memory. */
static long see_thread(struct trace_rec *r, uint32_t tgid, uint32_t tid, const char *comm)
{
	long i = find_thread(r, tid);
	struct trace_thread *t;

	if (i >= 0) {
		t = &r->threads[i];
		/*
		 * First seen untracked (it held a CPU or woke a thread: a worker
		 * just forked, say); its own state now: named again if tracked.
		 */
		if (t->role < 0 && !comm && procs_lookup(r->es->procs, tgid))
			name_thread(r, t, NULL);
		return i;
	}
	if (grow_array(&r->threads, &r->capthreads, r->nthreads + 1, sizeof(*r->threads), 64))
		return -1;
	if (2 * (r->nthreads + 1) > r->nhash && rehash(r, r->nhash ? 2 * r->nhash : 256))
		return -1;
	t = &r->threads[r->nthreads];
	memset(t, 0, sizeof(*t));
	t->tgid = tgid;
	t->tid = tid;
	name_thread(r, t, comm);
	r->bytes += sizeof(*t);
	i = (long)r->nthreads++;
	rehash(r, r->nhash); /* cannot fail: same size */
	return i;
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

/* Moves the live events to the front and forgets threads none of them names. */
static void compact(struct trace_rec *r)
{
	size_t live = r->n - r->first, nt = 0;
	uint32_t *map = calloc(r->nthreads + 1, sizeof(*map));

	memmove(r->evs, r->evs + r->first, live * sizeof(*r->evs));
	r->first = 0;
	r->n = live;
	if (!map)
		return;
	for (size_t i = 0; i < r->n; i++)
		map[r->evs[i].thread] = 1;
	for (size_t t = 0; t < r->nthreads; t++) {
		if (!map[t]) {
			r->bytes -= sizeof(r->threads[t]);
			continue;
		}
		r->threads[nt] = r->threads[t];
		map[t] = (uint32_t)nt++;
	}
	r->nthreads = nt;
	for (size_t i = 0; i < r->n; i++)
		r->evs[i].thread = map[r->evs[i].thread];
	rehash(r, r->nhash ? r->nhash : 256);
	free(map);
}

static void drop_first(struct trace_rec *r)
{
	struct trace_rec_ev *e = &r->evs[r->first++];

	r->bytes -= sizeof(*e) + e->size;
	free(e->strs);
	r->dropped_oldest++;
}

void trace_rec_trim(struct trace_rec *r, uint64_t before_ns)
{
	while (r->first < r->n) {
		const struct trace_ev *ev = &r->evs[r->first].ev;
		uint64_t last = ev->end_ns > ev->ts_ns ? ev->end_ns : ev->ts_ns;

		if (last >= before_ns)
			break;
		drop_first(r);
		r->dropped_oldest--; /* aged out: not a drop */
	}
	if (r->first >= COMPACT_MIN && 2 * r->first >= r->n)
		compact(r);
}

void trace_rec_consume(void *ctx, const struct trace_ev *ev)
{
	struct trace_rec *r = ctx;
	struct trace_rec_ev *e;
	long thread;
	int strs;

	if (grow_array(&r->evs, &r->cap, r->n + 1, sizeof(*r->evs), 4096)) {
		r->dropped++;
		return;
	}
	e = &r->evs[r->n];
	e->ev = *ev;
	strs = copy_strings(e);
	thread = strs < 0 ? -1 :
		 see_thread(r, ev->tgid, ev->tid,
				    ev->kind == TRACE_EV_WAKING || ev->kind == TRACE_EV_STATE ?
				    e->ev.name : NULL);
	if (thread < 0) {
		free(e->strs);
		r->dropped++;
		return;
	}
	e->size = (uint32_t)strs;
	e->thread = (uint32_t)thread;
	r->n++;
	r->bytes += sizeof(*e) + (size_t)strs;
	/* Oldest first; threads no event names any more go with a compaction. */
	while (r->bytes > r->max_bytes && r->first + 1 < r->n)
		drop_first(r);
	if (r->first && ((r->first >= COMPACT_MIN && 2 * r->first >= r->n) ||
			 r->bytes > r->max_bytes))
		compact(r);
}
