// SPDX-License-Identifier: GPL-2.0
/*
 * A recording as a Perfetto trace (perfetto.protos.Trace, field numbers
 * from Perfetto's perfetto_trace.proto; tests/perfetto/ holds the subset):
 *
 *   - a ClockSnapshot (MONOTONIC, BOOTTIME, REALTIME read together), with
 *     MONOTONIC the trace's clock: every packet's timestamp is
 *     bpf_ktime_get_ns() and says so (timestamp_clock_id 3);
 *   - a TrackDescriptor per process ("role pid title") and per thread;
 *   - thread states as GenericKernelTaskStateEvent: trace_processor turns
 *     them into its thread_state table (and sched slices for running), which
 *     the UI draws as the thread's state bar, as it does for ftrace's
 *     sched_switch; TrackEvent slices would draw as ordinary slices;
 *   - requests and statements as TrackEvent slices on their thread, a flow
 *     from each request to the statements its process sent during it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/pb.h"
#include "procs/title.h"
#include "trace/trace.h"

/* perfetto.protos.* field numbers */
enum {
	TRACE_PACKET = 1,
	TP_CLOCK_SNAPSHOT = 6,
	TP_TIMESTAMP = 8,
	TP_SEQ_ID = 10,
	TP_TRACK_EVENT = 11,
	TP_SEQ_FLAGS = 13,
	TP_CLOCK_ID = 58,
	TP_TRACK_DESCRIPTOR = 60,
	TP_TASK_STATE = 117,
	CS_CLOCKS = 1, CS_PRIMARY = 2, CLK_ID = 1, CLK_TS = 2,
	TD_UUID = 1, TD_NAME = 2, TD_PROCESS = 3, TD_THREAD = 4, TD_PARENT = 5,
	PD_PID = 1, PD_NAME = 6,
	THD_PID = 1, THD_TID = 2, THD_NAME = 5,
	TE_ANNOT = 4, TE_TYPE = 9, TE_TRACK = 11, TE_NAME = 23, TE_FLOW = 47, TE_FLOW_END = 48,
	DA_NAME = 10, DA_UINT = 3, DA_STRING = 6,
	TS_CPU = 1, TS_COMM = 2, TS_TID = 3, TS_STATE = 4,
};

enum { CLOCK_REALTIME_ID = 1, CLOCK_MONOTONIC_ID = 3, CLOCK_BOOTTIME_ID = 6 };
enum { TE_SLICE_BEGIN = 1, TE_SLICE_END = 2, TE_INSTANT = 3 };
enum { SEQ_ID = 1, SEQ_INCREMENTAL_STATE_CLEARED = 1 };
/* GenericKernelTaskStateEvent.TaskStateEnum */
enum { TS_RUNNABLE = 2, TS_RUNNING = 3, TS_SLEEP = 4, TS_UNINTERRUPTIBLE = 5 };

#define PROCESS_UUID(tgid) (0x100000000ull | (uint64_t)(tgid))
#define THREAD_UUID(tid) (0x200000000ull | (uint64_t)(tid))
/* A trace is at most this big (the ~20 MiB of 10 s of a loaded server, and room). */
#define TRACE_MAX_BYTES (256u << 20)

struct out {
	uint64_t ts;
	size_t ev;
	int end; /* 1: a slice's end */
};

struct writer {
	const struct trace_rec *r;
	const struct trace_filter *f;
	struct pb pb;
	long *req_of;     /* per event: a statement's request (event index), -1 */
	long *first_flow; /* per event: a request's first statement, -1 */
	long *next_flow;  /* per event: the request's next statement, -1 */
};

static bool thread_kept(const struct trace_filter *f, const struct trace_thread *t)
{
	char pid[16];

	if (!t)
		return false;
	if (f->role >= 0 && t->role != f->role)
		return false;
	if (f->pid && t->tgid != f->pid)
		return false;
	snprintf(pid, sizeof(pid), "%u", t->tgid);
	return !f->worker[0] || !strcmp(f->worker, pid);
}

/* Its own thread is kept, or a statement sent by a kept process. */
static bool ev_kept(const struct writer *w, const struct trace_ev *ev)
{
	const struct trace_thread *t = trace_rec_thread(w->r, ev->tid), *c;

	if (thread_kept(w->f, t))
		return true;
	if (ev->kind != TRACE_EV_STATEMENT || !ev->peer)
		return false;
	for (size_t i = 0; i < w->r->nthreads; i++) {
		c = &w->r->threads[i];
		if (c->tgid == ev->peer && thread_kept(w->f, c))
			return true;
	}
	return false;
}

static void packet_begin(struct pb *pb, uint64_t ts)
{
	pb_begin(pb, TRACE_PACKET);
	pb_varint(pb, TP_TIMESTAMP, ts);
	pb_varint(pb, TP_CLOCK_ID, CLOCK_MONOTONIC_ID);
	pb_varint(pb, TP_SEQ_ID, SEQ_ID);
}

static uint64_t now_of(clockid_t id)
{
	struct timespec t;

	clock_gettime(id, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void clock_entry(struct pb *pb, uint32_t id, uint64_t ts)
{
	pb_begin(pb, CS_CLOCKS);
	pb_varint(pb, CLK_ID, id);
	pb_varint(pb, CLK_TS, ts);
	pb_end(pb);
}

static void clocks(struct pb *pb)
{
	uint64_t mono = now_of(CLOCK_MONOTONIC);

	pb_begin(pb, TRACE_PACKET);
	pb_varint(pb, TP_TIMESTAMP, mono);
	pb_varint(pb, TP_CLOCK_ID, CLOCK_MONOTONIC_ID);
	pb_varint(pb, TP_SEQ_ID, SEQ_ID);
	pb_varint(pb, TP_SEQ_FLAGS, SEQ_INCREMENTAL_STATE_CLEARED);
	pb_begin(pb, TP_CLOCK_SNAPSHOT);
	clock_entry(pb, CLOCK_MONOTONIC_ID, mono);
	clock_entry(pb, CLOCK_BOOTTIME_ID, now_of(CLOCK_BOOTTIME));
	clock_entry(pb, CLOCK_REALTIME_ID, now_of(CLOCK_REALTIME));
	pb_varint(pb, CS_PRIMARY, CLOCK_MONOTONIC_ID);
	pb_end(pb);
	pb_end(pb);
}

static void descriptors(struct writer *w, const bool *keep_thread)
{
	const struct trace_rec *r = w->r;
	struct pb *pb = &w->pb;

	for (size_t i = 0; i < r->nthreads; i++) {
		const struct trace_thread *t = &r->threads[i];
		bool first = true;

		if (!keep_thread[i])
			continue;
		for (size_t j = 0; j < i; j++) {
			if (keep_thread[j] && r->threads[j].tgid == t->tgid)
				first = false;
		}
		if (first) {
			pb_begin(pb, TRACE_PACKET);
			pb_varint(pb, TP_SEQ_ID, SEQ_ID);
			pb_begin(pb, TP_TRACK_DESCRIPTOR);
			pb_varint(pb, TD_UUID, PROCESS_UUID(t->tgid));
			pb_begin(pb, TD_PROCESS);
			pb_varint(pb, PD_PID, t->tgid);
			pb_string(pb, PD_NAME, t->title);
			pb_end(pb);
			pb_end(pb);
			pb_end(pb);
		}
		pb_begin(pb, TRACE_PACKET);
		pb_varint(pb, TP_SEQ_ID, SEQ_ID);
		pb_begin(pb, TP_TRACK_DESCRIPTOR);
		pb_varint(pb, TD_UUID, THREAD_UUID(t->tid));
		pb_varint(pb, TD_PARENT, PROCESS_UUID(t->tgid));
		pb_begin(pb, TD_THREAD);
		pb_varint(pb, THD_PID, t->tgid);
		pb_varint(pb, THD_TID, t->tid);
		pb_string(pb, THD_NAME, t->comm);
		pb_end(pb);
		pb_end(pb);
		pb_end(pb);
	}
}

static void annotation(struct pb *pb, const char *name, const char *s, uint64_t u)
{
	pb_begin(pb, TE_ANNOT);
	pb_string(pb, DA_NAME, name);
	if (s)
		pb_string(pb, DA_STRING, s);
	else
		pb_varint(pb, DA_UINT, u);
	pb_end(pb);
}

static void task_state(struct writer *w, const struct trace_ev *ev)
{
	static const uint32_t map[] = {
		[TRACE_ST_RUNNING] = TS_RUNNING,
		[TRACE_ST_RUNNABLE] = TS_RUNNABLE,
		[TRACE_ST_IOWAIT] = TS_UNINTERRUPTIBLE,
		[TRACE_ST_BLOCKED] = TS_UNINTERRUPTIBLE,
		[TRACE_ST_SLEEPING] = TS_SLEEP,
	};
	const struct trace_thread *t = trace_rec_thread(w->r, ev->tid);
	struct pb *pb = &w->pb;

	if (ev->state >= sizeof(map) / sizeof(map[0]) || !map[ev->state])
		return;
	packet_begin(pb, ev->ts_ns);
	pb_begin(pb, TP_TASK_STATE);
	if (ev->state == TRACE_ST_RUNNING)
		pb_varint(pb, TS_CPU, ev->cpu);
	pb_string(pb, TS_COMM, t ? t->comm : "");
	pb_varint(pb, TS_TID, ev->tid);
	pb_varint(pb, TS_STATE, map[ev->state]);
	pb_end(pb);
	pb_end(pb);
}

static void slice_begin(struct writer *w, size_t i)
{
	const struct trace_ev *ev = &w->r->evs[i].ev;
	struct pb *pb = &w->pb;
	char fp[20];

	packet_begin(pb, ev->ts_ns);
	pb_begin(pb, TP_TRACK_EVENT);
	pb_varint(pb, TE_TYPE, TE_SLICE_BEGIN);
	pb_varint(pb, TE_TRACK, THREAD_UUID(ev->tid));
	if (ev->kind == TRACE_EV_REQUEST) {
		pb_string(pb, TE_NAME, ev->detail ? ev->detail : ev->name);
		for (long s = w->first_flow[i]; s >= 0; s = w->next_flow[s])
			pb_fixed64(pb, TE_FLOW, (uint64_t)s + 1);
		annotation(pb, "route", ev->name, 0);
		if (ev->detail)
			annotation(pb, "rpc", ev->detail, 0);
		annotation(pb, "code", ev->status ? ev->status : "", 0);
	} else {
		pb_string(pb, TE_NAME, ev->name);
		if (w->req_of[i] >= 0)
			pb_fixed64(pb, TE_FLOW_END, (uint64_t)i + 1);
		snprintf(fp, sizeof(fp), "%016llx", (unsigned long long)ev->id);
		annotation(pb, "fingerprint", fp, 0);
		if (ev->peer)
			annotation(pb, "client_pid", NULL, ev->peer);
		if (ev->code)
			annotation(pb, "error", NULL, 1);
	}
	pb_end(pb);
	pb_end(pb);
}

static void slice_end(struct writer *w, const struct trace_ev *ev)
{
	struct pb *pb = &w->pb;

	packet_begin(pb, ev->end_ns);
	pb_begin(pb, TP_TRACK_EVENT);
	pb_varint(pb, TE_TYPE, TE_SLICE_END);
	pb_varint(pb, TE_TRACK, THREAD_UUID(ev->tid));
	pb_end(pb);
	pb_end(pb);
}

/* Each statement's request: one of its client's, running when it ran. */
static int link_flows(struct writer *w, const bool *keep)
{
	const struct trace_rec *r = w->r;
	size_t *reqs = malloc((r->n + 1) * sizeof(*reqs)), nreqs = 0;

	if (!reqs)
		return -ENOMEM;
	for (size_t i = 0; i < r->n; i++) {
		if (keep[i] && r->evs[i].ev.kind == TRACE_EV_REQUEST)
			reqs[nreqs++] = i;
	}
	for (size_t i = 0; i < r->n; i++) {
		const struct trace_ev *s = &r->evs[i].ev;

		if (!keep[i] || s->kind != TRACE_EV_STATEMENT || !s->peer)
			continue;
		for (size_t k = 0; k < nreqs; k++) {
			size_t j = reqs[k];
			const struct trace_ev *q = &r->evs[j].ev;

			if (q->tgid != s->peer || q->ts_ns > s->ts_ns || q->end_ns < s->end_ns)
				continue;
			w->req_of[i] = (long)j;
			w->next_flow[i] = w->first_flow[j];
			w->first_flow[j] = (long)i;
			break;
		}
	}
	free(reqs);
	return 0;
}

static int by_time(const void *a, const void *b)
{
	const struct out *x = a, *y = b;

	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	return y->end - x->end; /* ends first */
}

int trace_write(const struct trace_rec *r, const struct trace_filter *f, uint64_t start_ns,
		uint64_t end_ns, uint8_t **outp, size_t *lenp)
{
	struct writer w = { .r = r, .f = f };
	bool *keep = calloc(r->n + 1, sizeof(*keep));
	bool *keep_thread = calloc(r->nthreads + 1, sizeof(*keep_thread));
	struct out *outs = calloc(2 * r->n + 1, sizeof(*outs));
	size_t nout = 0;
	int err = -ENOMEM;

	w.req_of = malloc((r->n + 1) * sizeof(long));
	w.first_flow = malloc((r->n + 1) * sizeof(long));
	w.next_flow = malloc((r->n + 1) * sizeof(long));
	pb_init(&w.pb, TRACE_MAX_BYTES);
	if (!keep || !keep_thread || !outs || !w.req_of || !w.first_flow || !w.next_flow)
		goto out;
	for (size_t i = 0; i < r->n; i++) {
		const struct trace_ev *ev = &r->evs[i].ev;
		bool slice = ev->kind == TRACE_EV_REQUEST || ev->kind == TRACE_EV_STATEMENT;

		w.req_of[i] = w.first_flow[i] = w.next_flow[i] = -1;
		if (slice ? ev->end_ns < start_ns || ev->ts_ns > end_ns :
			    ev->ts_ns < start_ns || ev->ts_ns > end_ns)
			continue;
		if (ev->kind != TRACE_EV_STATE && !slice)
			continue;
		keep[i] = ev_kept(&w, ev);
		if (!keep[i])
			continue;
		for (size_t t = 0; t < r->nthreads; t++) {
			if (r->threads[t].tid == ev->tid)
				keep_thread[t] = true;
		}
		outs[nout++] = (struct out){ .ts = ev->ts_ns, .ev = i };
		if (slice)
			outs[nout++] = (struct out){ .ts = ev->end_ns, .ev = i, .end = 1 };
	}
	err = link_flows(&w, keep);
	if (err)
		goto out;
	qsort(outs, nout, sizeof(*outs), by_time);
	clocks(&w.pb);
	descriptors(&w, keep_thread);
	for (size_t k = 0; k < nout && !w.pb.err; k++) {
		const struct trace_ev *ev = &r->evs[outs[k].ev].ev;

		if (ev->kind == TRACE_EV_STATE)
			task_state(&w, ev);
		else if (outs[k].end)
			slice_end(&w, ev);
		else
			slice_begin(&w, outs[k].ev);
	}
	err = pb_finish(&w.pb);
	if (!err) {
		*outp = w.pb.buf;
		*lenp = w.pb.len;
		w.pb.buf = NULL;
	}
out:
	pb_free(&w.pb);
	free(keep);
	free(keep_thread);
	free(outs);
	free(w.req_of);
	free(w.first_flow);
	free(w.next_flow);
	return err;
}
