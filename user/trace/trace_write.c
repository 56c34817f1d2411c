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
 *     sched_switch; TrackEvent slices would draw as ordinary slices; an
 *     uninterruptible sleep says whether it is iowait with an ftrace
 *     sched_blocked_reason;
 *   - requests and statements as TrackEvent slices on their thread, a flow
 *     from each request to the statements its process sent during it;
 *   - block requests as slices on a track per device, in lanes (slices of
 *     one track must nest, requests in flight together do not);
 *   - exits and OOM kills as instants on their process's track;
 *   - cron runs, outbound connects and lock waits as slices on their
 *     thread (a lock wait inside its statement).
 *   - Python CPU samples as PerfSample with interned callstacks
 *     (trace_samples.c);
 *   - an untracked thread's wakeup of a tracked one as an ftrace sched_waking
 *     on the waker's CPU: trace_processor records the waker of the woken
 *     thread's runnable state, the UI draws the arrow from it. The waker's
 *     process gets a track of its own named as every untracked one is,
 *     "other <pid> <cmdline>": the pid is what sched_waking names, and the
 *     command line says who it was.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/pb.h"
#include "procs/title.h"
#include "trace/trace.h"
#include "trace/trace_pb.h"

/* perfetto.protos.* field numbers (TracePacket's: trace_pb.h) */
enum {
	CS_CLOCKS = 1, CS_PRIMARY = 2, CLK_ID = 1, CLK_TS = 2,
	TD_UUID = 1, TD_NAME = 2, TD_PROCESS = 3, TD_THREAD = 4, TD_PARENT = 5,
	PD_PID = 1, PD_NAME = 6,
	THD_PID = 1, THD_TID = 2, THD_NAME = 5,
	TE_ANNOT = 4, TE_TYPE = 9, TE_NAME_IID = 10, TE_TRACK = 11, TE_FLOW = 47, TE_FLOW_END = 48,
	DA_NAME_IID = 1, DA_UINT = 3, DA_STRING_IID = 17,
	TS_CPU = 1, TS_COMM = 2, TS_TID = 3, TS_STATE = 4,
	FB_CPU = 1, FB_EVENT = 2,                     /* FtraceEventBundle */
	FE_TIMESTAMP = 1, FE_PID = 2, FE_BLOCKED_REASON = 18, FE_WAKING = 20, /* FtraceEvent */
	BR_PID = 1, BR_IO_WAIT = 3,                   /* SchedBlockedReasonFtraceEvent */
	SW_COMM = 1, SW_PID = 2, SW_PRIO = 3, SW_SUCCESS = 4, SW_TARGET_CPU = 5, /* SchedWaking... */
};

enum { TE_SLICE_BEGIN = 1, TE_SLICE_END = 2, TE_INSTANT = 3 };
/* GenericKernelTaskStateEvent.TaskStateEnum */
enum { TS_RUNNABLE = 2, TS_RUNNING = 3, TS_SLEEP = 4, TS_UNINTERRUPTIBLE = 5 };

#define PROCESS_UUID(tgid) (0x100000000ull | (uint64_t)(tgid))
#define THREAD_UUID(tid) (0x200000000ull | (uint64_t)(tid))
#define DEVICE_UUID(dev) (0x4000000000000ull | (uint64_t)(dev) << 8)
#define LANE_UUID(dev, lane) (DEVICE_UUID(dev) | ((uint64_t)(lane) + 1))
#define LANES 32
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
	uint64_t *end;    /* per event: a slice's end (a block request's, found) */
	uint32_t *kept_tgids; /* sorted */
	size_t nkept;
	uint8_t *lane;    /* per event: a block request's lane on its device */
	bool *woken;      /* per thread: a sched_waking of it is its last state change written */
	uint8_t *last;    /* per thread: its last state (enum trace_state) written, 0: none */
	struct trace_interns in;
	struct pb ev;     /* the TrackEvent being built (its interned strings go first) */
	uint64_t boot_minus_mono; /* CLOCK_BOOTTIME - CLOCK_MONOTONIC, for ftrace events */
};

static bool is_slice(enum trace_ev_kind k)
{
	return k == TRACE_EV_REQUEST || k == TRACE_EV_STATEMENT || k == TRACE_EV_BIO ||
	       k == TRACE_EV_GC || k == TRACE_EV_CRON || k == TRACE_EV_CONNECT ||
	       k == TRACE_EV_LOCK_WAIT;
}

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

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The processes the filter keeps, sorted, for statements' clients. */
static int kept_processes(struct writer *w)
{
	const struct trace_rec *r = w->r;

	w->kept_tgids = malloc((r->nthreads + 1) * sizeof(*w->kept_tgids));
	if (!w->kept_tgids)
		return -ENOMEM;
	for (size_t i = 0; i < r->nthreads; i++) {
		if (thread_kept(w->f, &r->threads[i]))
			w->kept_tgids[w->nkept++] = r->threads[i].tgid;
	}
	qsort(w->kept_tgids, w->nkept, sizeof(*w->kept_tgids), cmp_u32);
	return 0;
}

/* Its own thread is kept, or a statement sent by (a wakeup of) a kept process. */
static bool ev_kept(const struct writer *w, size_t i)
{
	const struct trace_ev *ev = &w->r->evs[i].ev;

	if (thread_kept(w->f, &w->r->threads[w->r->evs[i].thread]))
		return true;
	return (ev->kind == TRACE_EV_STATEMENT || ev->kind == TRACE_EV_LOCK_WAIT ||
		ev->kind == TRACE_EV_WAKING) && ev->peer &&
	       bsearch(&ev->peer, w->kept_tgids, w->nkept, sizeof(*w->kept_tgids), cmp_u32);
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

static void clocks(struct writer *w)
{
	struct pb *pb = &w->pb;
	uint64_t mono = now_of(CLOCK_MONOTONIC), boot = now_of(CLOCK_BOOTTIME);

	pb_begin(pb, TRACE_PACKET);
	pb_varint(pb, TP_TIMESTAMP, mono);
	pb_varint(pb, TP_CLOCK_ID, CLOCK_MONOTONIC_ID);
	pb_varint(pb, TP_SEQ_ID, SEQ_ID);
	pb_varint(pb, TP_SEQ_FLAGS, SEQ_INCREMENTAL_STATE_CLEARED);
	pb_begin(pb, TP_CLOCK_SNAPSHOT);
	clock_entry(pb, CLOCK_MONOTONIC_ID, mono);
	clock_entry(pb, CLOCK_BOOTTIME_ID, boot);
	clock_entry(pb, CLOCK_REALTIME_ID, now_of(CLOCK_REALTIME));
	pb_varint(pb, CS_PRIMARY, CLOCK_MONOTONIC_ID);
	pb_end(pb);
	pb_end(pb);
	w->boot_minus_mono = boot - mono;
}

static int by_tgid(const void *a, const void *b, void *arg)
{
	const struct trace_thread *t = arg;
	uint32_t x = t[*(const size_t *)a].tgid, y = t[*(const size_t *)b].tgid;

	return x < y ? -1 : x > y;
}

/* A track per process, then one per thread under it (threads sorted by process). */
static int descriptors(struct writer *w, const bool *keep_thread)
{
	const struct trace_rec *r = w->r;
	size_t *order = malloc((r->nthreads + 1) * sizeof(*order)), n = 0;
	struct pb *pb = &w->pb;

	if (!order)
		return -ENOMEM;
	for (size_t i = 0; i < r->nthreads; i++) {
		if (keep_thread[i])
			order[n++] = i;
	}
	qsort_r(order, n, sizeof(*order), by_tgid, r->threads);
	for (size_t k = 0; k < n; k++) {
		const struct trace_thread *t = &r->threads[order[k]];

		if (!k || r->threads[order[k - 1]].tgid != t->tgid) {
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
	free(order);
	return 0;
}

/*
 * TrackEvents name everything by iid: event names, annotation names and
 * string values are interned (trace_intern.c). An event is built in w->ev,
 * then written in its packet after the InternedData of the names it used
 * first.
 */
static struct pb *event_begin(struct writer *w, int type, uint64_t track)
{
	pb_reset(&w->ev);
	pb_varint(&w->ev, TE_TYPE, type);
	pb_varint(&w->ev, TE_TRACK, track);
	return &w->ev;
}

static void event_end(struct writer *w, uint64_t ts)
{
	struct pb *pb = &w->pb;

	if (w->ev.err && !pb->err)
		pb->err = w->ev.err;
	trace_packet_begin(pb, ts, true);
	trace_interned_write(pb, &w->in);
	pb_bytes(pb, TP_TRACK_EVENT, w->ev.buf, w->ev.len);
	pb_end(pb);
}

static uint64_t intern(struct writer *w, struct trace_intern *t, enum trace_intern_table table,
		       const char *s)
{
	return trace_intern(&w->in, t, table, s, strlen(s));
}

static void event_name(struct writer *w, const char *name)
{
	pb_varint(&w->ev, TE_NAME_IID, intern(w, &w->in.names, TI_EVENT_NAMES, name));
}

static void annotation(struct writer *w, const char *name, const char *s, uint64_t u)
{
	struct pb *e = &w->ev;

	pb_begin(e, TE_ANNOT);
	pb_varint(e, DA_NAME_IID, intern(w, &w->in.annots, TI_ANNOTATION_NAMES, name));
	if (s)
		pb_varint(e, DA_STRING_IID,
			  intern(w, &w->in.values, TI_ANNOTATION_STRINGS, s));
	else
		pb_varint(e, DA_UINT, u);
	pb_end(e);
}

/*
 * Whether an uninterruptible sleep is iowait: GenericKernelTaskStateEvent
 * has one "D" for both, so a sched_blocked_reason ftrace event (pid,
 * io_wait) follows it 1 ns later, as the kernel's own tracepoint would
 * after a D sleep: trace_processor sets the io_wait of the thread's last
 * D state from it, and the UI then says "Uninterruptible Sleep (IO)"
 * (orange) or "(non-IO)" (dark red). Ftrace timestamps are BOOTTIME.
 */
static void blocked_reason(struct writer *w, const struct trace_ev *ev)
{
	struct pb *pb = &w->pb;

	pb_begin(pb, TRACE_PACKET);
	pb_begin(pb, TP_FTRACE_EVENTS);
	pb_varint(pb, FB_CPU, 0);
	pb_begin(pb, FB_EVENT);
	pb_varint(pb, FE_TIMESTAMP, ev->ts_ns + 1 + w->boot_minus_mono);
	pb_varint(pb, FE_PID, ev->tid);
	pb_begin(pb, FE_BLOCKED_REASON);
	pb_varint(pb, BR_PID, ev->tid);
	pb_varint(pb, BR_IO_WAIT, ev->state == TRACE_ST_IOWAIT);
	pb_end(pb);
	pb_end(pb);
	pb_end(pb);
	pb_end(pb);
}

/* The waker's sched_waking (TRACE_EV_WAKING), on its CPU, as the kernel's tracepoint. */
static void waking(struct writer *w, const struct trace_ev *ev)
{
	const struct trace_thread *woken = trace_rec_thread(w->r, (uint32_t)ev->id);
	struct pb *pb = &w->pb;

	/* As trace_processor: a waking of a thread asleep (or of no state yet) begins its runnable. */
	if (woken) {
		size_t t = (size_t)(woken - w->r->threads);

		w->woken[t] = w->last[t] != TRACE_ST_RUNNING && w->last[t] != TRACE_ST_RUNNABLE;
	}
	pb_begin(pb, TRACE_PACKET);
	pb_begin(pb, TP_FTRACE_EVENTS);
	pb_varint(pb, FB_CPU, ev->cpu);
	pb_begin(pb, FB_EVENT);
	pb_varint(pb, FE_TIMESTAMP, ev->ts_ns + w->boot_minus_mono);
	pb_varint(pb, FE_PID, ev->tid);
	pb_begin(pb, FE_WAKING);
	pb_string(pb, SW_COMM, woken ? woken->comm : "");
	pb_varint(pb, SW_PID, ev->id);
	pb_varint(pb, SW_PRIO, ev->state);
	pb_varint(pb, SW_SUCCESS, 1);
	pb_varint(pb, SW_TARGET_CPU, ev->code);
	pb_end(pb);
	pb_end(pb);
	pb_end(pb);
	pb_end(pb);
}

/*
 * Whether event i, a state change, is the runnable state a sched_waking of
 * its thread began: trace_processor opened it at the waking, with its waker,
 * and would close it at a second one (the UI's wakeup arrow is drawn from the
 * runnable state that ends where the thread runs).
 */
static bool after_waking(struct writer *w, size_t i)
{
	uint32_t t = w->r->evs[i].thread;
	bool was = w->woken[t];

	w->woken[t] = false;
	w->last[t] = (uint8_t)w->r->evs[i].ev.state;
	return was && w->r->evs[i].ev.state == TRACE_ST_RUNNABLE;
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
	trace_packet_begin(pb, ev->ts_ns, false);
	pb_begin(pb, TP_TASK_STATE);
	if (ev->state == TRACE_ST_RUNNING)
		pb_varint(pb, TS_CPU, ev->cpu);
	pb_string(pb, TS_COMM, t ? t->comm : "");
	pb_varint(pb, TS_TID, ev->tid);
	pb_varint(pb, TS_STATE, map[ev->state]);
	pb_end(pb);
	pb_end(pb);
	if (ev->state == TRACE_ST_IOWAIT || ev->state == TRACE_ST_BLOCKED)
		blocked_reason(w, ev);
}

/* Event i, a state change, unless it is the runnable state a waking began. */
static void state_change(struct writer *w, size_t i)
{
	if (!after_waking(w, i))
		task_state(w, &w->r->evs[i].ev);
}

/* What the kind's detail and status are, as the slice's arguments. */
static const struct {
	const char *detail, *status;
} arg_names[] = {
	[TRACE_EV_CRON] = { NULL, "result" },
	[TRACE_EV_CONNECT] = { "remote", "result" },
	[TRACE_EV_LOCK_WAIT] = { "locktype", "mode" },
};

/* A slice named by its event, its strings as arguments. */
static void named_slice(struct writer *w, const struct trace_ev *ev)
{
	bool known = ev->kind < sizeof(arg_names) / sizeof(arg_names[0]);

	event_name(w, ev->name ? ev->name : "?");
	if (known && arg_names[ev->kind].detail && ev->detail)
		annotation(w, arg_names[ev->kind].detail, ev->detail, 0);
	if (known && arg_names[ev->kind].status && ev->status)
		annotation(w, arg_names[ev->kind].status, ev->status, 0);
}

static void slice_begin(struct writer *w, size_t i)
{
	const struct trace_ev *ev = &w->r->evs[i].ev;
	struct pb *e = event_begin(w, TE_SLICE_BEGIN, THREAD_UUID(ev->tid));
	char fp[20];

	if (ev->kind == TRACE_EV_REQUEST) {
		event_name(w, ev->detail ? ev->detail : ev->name);
		for (long s = w->first_flow[i]; s >= 0; s = w->next_flow[s])
			pb_fixed64(e, TE_FLOW, (uint64_t)s + 1);
		annotation(w, "route", ev->name, 0);
		if (ev->detail)
			annotation(w, "rpc", ev->detail, 0);
		annotation(w, "code", ev->status ? ev->status : "", 0);
	} else if (ev->kind == TRACE_EV_GC) {
		event_name(w, ev->name);
		annotation(w, "collected", NULL, ev->code);
	} else if (ev->kind != TRACE_EV_STATEMENT) {
		named_slice(w, ev);
	} else {
		event_name(w, ev->name);
		if (w->req_of[i] >= 0)
			pb_fixed64(e, TE_FLOW_END, (uint64_t)i + 1);
		snprintf(fp, sizeof(fp), "%016llx", (unsigned long long)ev->id);
		annotation(w, "fingerprint", fp, 0);
		if (ev->peer)
			annotation(w, "client_pid", NULL, ev->peer);
		if (ev->code)
			annotation(w, "error", NULL, 1);
	}
	event_end(w, ev->ts_ns);
}

static void slice_end(struct writer *w, size_t i, uint64_t ts)
{
	const struct trace_ev *ev = &w->r->evs[i].ev;
	struct pb *pb = &w->pb;

	trace_packet_begin(pb, ts, false);
	pb_begin(pb, TP_TRACK_EVENT);
	pb_varint(pb, TE_TYPE, TE_SLICE_END);
	pb_varint(pb, TE_TRACK, ev->kind == TRACE_EV_BIO ? LANE_UUID(ev->id, w->lane[i]) :
							   THREAD_UUID(ev->tid));
	pb_end(pb);
	pb_end(pb);
}

static int by_process_start(const void *a, const void *b, void *arg)
{
	const struct trace_rec *r = arg;
	const struct trace_ev *x = &r->evs[*(const size_t *)a].ev, *y = &r->evs[*(const size_t *)b].ev;

	if (x->tgid != y->tgid)
		return x->tgid < y->tgid ? -1 : 1;
	return x->ts_ns < y->ts_ns ? -1 : x->ts_ns > y->ts_ns;
}

/*
 * Each statement's request: one of its client's, running when it ran (the
 * latest begun before it; in a threaded server, a few back are looked at).
 * Requests sorted by process and start, so a statement costs a binary search.
 */
static int link_flows(struct writer *w, const bool *keep)
{
	const struct trace_rec *r = w->r;
	size_t *reqs = malloc((r->n + 1) * sizeof(*reqs)), nreqs = 0;

	if (!reqs)
		return -ENOMEM;
	for (size_t i = r->first; i < r->n; i++) {
		if (keep[i] && r->evs[i].ev.kind == TRACE_EV_REQUEST)
			reqs[nreqs++] = i;
	}
	qsort_r(reqs, nreqs, sizeof(*reqs), by_process_start, (void *)r);
	for (size_t i = r->first; i < r->n; i++) {
		const struct trace_ev *s = &r->evs[i].ev;
		size_t lo = 0, hi = nreqs;

		if (!keep[i] || s->kind != TRACE_EV_STATEMENT || !s->peer)
			continue;
		/* the first request past (peer, s->ts_ns) */
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			const struct trace_ev *q = &r->evs[reqs[mid]].ev;

			if (q->tgid < s->peer || (q->tgid == s->peer && q->ts_ns <= s->ts_ns))
				lo = mid + 1;
			else
				hi = mid;
		}
		for (size_t k = lo, tries = 0; k-- > 0 && tries < 16; tries++) {
			size_t j = reqs[k];
			const struct trace_ev *q = &r->evs[j].ev;

			if (q->tgid != s->peer)
				break;
			if (q->end_ns < s->end_ns)
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

/*
 * A block request whose completion was not seen ends where its submitter
 * left iowait (its wakeup), else at the end of the recording.
 */
static uint64_t bio_end(const struct writer *w, const struct trace_ev *b, uint64_t end_ns)
{
	uint64_t best = end_ns;

	if (b->end_ns)
		return b->end_ns;
	for (size_t i = w->r->first; i < w->r->n; i++) {
		const struct trace_ev *e = &w->r->evs[i].ev;

		if (e->kind == TRACE_EV_STATE && e->tid == b->tid && e->ts_ns > b->ts_ns &&
		    e->ts_ns < best && e->state != TRACE_ST_IOWAIT)
			best = e->ts_ns;
	}
	return best;
}

static int by_start(const void *a, const void *b, void *arg)
{
	const struct trace_rec *r = arg;
	uint64_t x = r->evs[*(const size_t *)a].ev.ts_ns, y = r->evs[*(const size_t *)b].ev.ts_ns;

	return x < y ? -1 : x > y;
}

/* Lanes per device: the first whose last request ended before this one began. */
static int bio_lanes(struct writer *w, const bool *keep, uint64_t end_ns)
{
	const struct trace_rec *r = w->r;
	size_t *bios = malloc((r->n + 1) * sizeof(*bios)), n = 0;
	struct { uint32_t dev; uint64_t busy[LANES]; } devs[16];
	size_t ndevs = 0;

	if (!bios)
		return -ENOMEM;
	for (size_t i = r->first; i < r->n; i++) {
		if (keep[i] && r->evs[i].ev.kind == TRACE_EV_BIO) {
			w->end[i] = bio_end(w, &r->evs[i].ev, end_ns);
			bios[n++] = i;
		}
	}
	qsort_r(bios, n, sizeof(*bios), by_start, (void *)r);
	for (size_t k = 0; k < n; k++) {
		const struct trace_ev *b = &r->evs[bios[k]].ev;
		size_t d, l;

		for (d = 0; d < ndevs && devs[d].dev != (uint32_t)b->id; d++)
			;
		if (d == ndevs && ndevs < sizeof(devs) / sizeof(devs[0])) {
			memset(&devs[ndevs], 0, sizeof(devs[0]));
			devs[ndevs++].dev = (uint32_t)b->id;
		}
		if (d == ndevs) {
			w->lane[bios[k]] = 0;
			continue;
		}
		for (l = 0; l < LANES - 1 && devs[d].busy[l] > b->ts_ns; l++)
			;
		devs[d].busy[l] = w->end[bios[k]];
		w->lane[bios[k]] = (uint8_t)l;
	}
	free(bios);
	return 0;
}

static void track(struct pb *pb, uint64_t uuid, uint64_t parent, const char *name)
{
	pb_begin(pb, TRACE_PACKET);
	pb_varint(pb, TP_SEQ_ID, SEQ_ID);
	pb_begin(pb, TP_TRACK_DESCRIPTOR);
	pb_varint(pb, TD_UUID, uuid);
	if (parent)
		pb_varint(pb, TD_PARENT, parent);
	pb_string(pb, TD_NAME, name);
	pb_end(pb);
	pb_end(pb);
}

/* A track per device in use, and one per lane used under it. */
static void device_tracks(struct writer *w, const bool *keep)
{
	const struct trace_rec *r = w->r;
	struct { uint64_t dev; uint32_t lanes; } seen[64];
	size_t nseen = 0, d;
	char name[96];

	for (size_t i = r->first; i < r->n; i++) {
		const struct trace_ev *b = &r->evs[i].ev;
		uint32_t bit = 1u << w->lane[i];

		if (!keep[i] || b->kind != TRACE_EV_BIO)
			continue;
		for (d = 0; d < nseen && seen[d].dev != b->id; d++)
			;
		if (d == nseen) {
			if (nseen == sizeof(seen) / sizeof(seen[0]))
				continue;
			seen[nseen].dev = b->id;
			seen[nseen++].lanes = 0;
			snprintf(name, sizeof(name), "block I/O %s", b->name ? b->name : "?");
			track(&w->pb, DEVICE_UUID(b->id), 0, name);
		}
		if (!(seen[d].lanes & bit)) {
			seen[d].lanes |= bit;
			snprintf(name, sizeof(name), "%s #%u", b->name ? b->name : "?", w->lane[i] + 1);
			track(&w->pb, LANE_UUID(b->id, w->lane[i]), DEVICE_UUID(b->id), name);
		}
	}
}

static void bio_begin(struct writer *w, size_t i)
{
	const struct trace_ev *b = &w->r->evs[i].ev;
	const struct trace_thread *t = trace_rec_thread(w->r, b->tid);
	char name[96];

	event_begin(w, TE_SLICE_BEGIN, LANE_UUID(b->id, w->lane[i]));
	snprintf(name, sizeof(name), "%s %u B %s", b->detail ? b->detail : "?", b->code,
		 t ? t->comm : "");
	event_name(w, name);
	annotation(w, "op", b->detail ? b->detail : "?", 0);
	annotation(w, "bytes", NULL, b->code);
	annotation(w, "pid", NULL, b->tgid);
	annotation(w, "tid", NULL, b->tid);
	if (!b->end_ns)
		annotation(w, "end", "its submitter's wakeup (completion not seen)", 0);
	event_end(w, b->ts_ns);
}

static void instant(struct writer *w, const struct trace_ev *ev)
{
	event_begin(w, TE_INSTANT, PROCESS_UUID(ev->tgid));
	event_name(w, ev->name);
	if (ev->detail)
		annotation(w, "detail", ev->detail, 0);
	event_end(w, ev->ts_ns);
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
	w.end = calloc(r->n + 1, sizeof(*w.end));
	w.lane = calloc(r->n + 1, sizeof(*w.lane));
	w.woken = calloc(r->nthreads + 1, sizeof(*w.woken));
	w.last = calloc(r->nthreads + 1, sizeof(*w.last));
	pb_init(&w.pb, TRACE_MAX_BYTES);
	pb_init(&w.ev, TRACE_MAX_BYTES);
	if (!keep || !keep_thread || !outs || !w.req_of || !w.first_flow || !w.next_flow ||
	    !w.end || !w.lane || !w.woken || !w.last || kept_processes(&w))
		goto out;
	for (size_t i = r->first; i < r->n; i++) {
		const struct trace_ev *ev = &r->evs[i].ev;
		bool slice = is_slice(ev->kind);

		w.req_of[i] = w.first_flow[i] = w.next_flow[i] = -1;
		w.end[i] = ev->end_ns;
		if (ev->ts_ns > end_ns || (slice && ev->end_ns && ev->end_ns < start_ns) ||
		    (!slice && ev->ts_ns < start_ns))
			continue;
		keep[i] = ev_kept(&w, i);
		if (!keep[i])
			continue;
		keep_thread[r->evs[i].thread] = true;
	}
	err = link_flows(&w, keep);
	if (!err)
		err = bio_lanes(&w, keep, end_ns);
	if (err)
		goto out;
	for (size_t i = r->first; i < r->n; i++) {
		const struct trace_ev *ev = &r->evs[i].ev;

		if (!keep[i])
			continue;
		outs[nout++] = (struct out){ .ts = ev->ts_ns, .ev = i };
		if (is_slice(ev->kind))
			outs[nout++] = (struct out){ .ts = w.end[i], .ev = i, .end = 1 };
	}
	qsort(outs, nout, sizeof(*outs), by_time);
	clocks(&w);
	err = descriptors(&w, keep_thread);
	if (err)
		goto out;
	device_tracks(&w, keep);
	for (size_t k = 0; k < nout && !w.pb.err; k++) {
		size_t i = outs[k].ev;
		const struct trace_ev *ev = &r->evs[i].ev;

		if (ev->kind == TRACE_EV_STATE)
			state_change(&w, i);
		else if (ev->kind == TRACE_EV_SAMPLE)
			trace_sample_write(&w.pb, &w.in, ev);
		else if (ev->kind == TRACE_EV_INSTANT)
			instant(&w, ev);
		else if (ev->kind == TRACE_EV_WAKING)
			waking(&w, ev);
		else if (outs[k].end)
			slice_end(&w, i, outs[k].ts);
		else if (ev->kind == TRACE_EV_BIO)
			bio_begin(&w, i);
		else
			slice_begin(&w, i);
	}
	err = w.in.err ? w.in.err : pb_finish(&w.pb);
	if (!err) {
		*outp = w.pb.buf;
		*lenp = w.pb.len;
		w.pb.buf = NULL;
	}
out:
	pb_free(&w.pb);
	pb_free(&w.ev);
	free(keep);
	free(keep_thread);
	free(outs);
	free(w.req_of);
	free(w.first_flow);
	free(w.next_flow);
	free(w.end);
	free(w.lane);
	free(w.woken);
	free(w.last);
	free(w.kept_tgids);
	trace_interns_free(&w.in);
	return err;
}
