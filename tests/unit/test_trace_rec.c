// SPDX-License-Identifier: GPL-2.0
/*
 * trace/trace_rec.c and trace/trace_write.c: a recording bounded by bytes
 * drops its oldest events, ages out by time, forgets threads no event
 * names; a written trace joins a request to its statement by a flow; an
 * untracked waker is kept with the process it woke.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/erpscope.h"
#include "procs/proctable.h"
#include "trace/trace.h"

/* Pids no process has (/proc reads fail): named by their tid. */
#define TID(i) (4000000u + (i))

static void state(struct trace_rec *r, uint32_t tid, uint64_t ts)
{
	struct trace_ev ev = { .kind = TRACE_EV_STATE, .tgid = tid, .tid = tid, .ts_ns = ts,
			       .state = TRACE_ST_RUNNING };

	trace_rec_consume(r, &ev);
}

static void test_bounded(struct erpscope *es)
{
	struct trace_rec r;
	bool contiguous = true;
	size_t live;

	trace_rec_init(&r, es, 64 << 10);
	for (uint64_t i = 0; i < 20000; i++)
		state(&r, TID(i / 100), 1000 + i); /* 200 threads, 100 events each */
	live = r.n - r.first;
	CHECK(r.bytes <= 64 << 10);
	CHECK(r.bytes > 60 << 10);
	CHECK_INT(r.dropped_oldest + live, 20000);
	CHECK_INT(r.dropped, 0);
	/* the newest are kept, in order, none missing */
	CHECK_INT(r.evs[r.n - 1].ev.ts_ns, 1000 + 19999);
	for (size_t i = r.first + 1; i < r.n; i++)
		contiguous = contiguous && r.evs[i].ev.ts_ns == r.evs[i - 1].ev.ts_ns + 1;
	CHECK(contiguous);
	/* threads no live event names were forgotten at compactions */
	CHECK(r.nthreads <= live / 100 + 2 + 4096 / 100 + 1);
	CHECK(trace_rec_thread(&r, TID(199)) != NULL);
	CHECK(trace_rec_thread(&r, TID(0)) == NULL);
	CHECK_STR(trace_rec_thread(&r, TID(199))->comm, "4000199");
	CHECK(strstr(trace_rec_thread(&r, TID(199))->title, "other 4000199") != NULL);
	/* each event's thread index still names its thread */
	for (size_t i = r.first; i < r.n; i++)
		contiguous = contiguous && r.threads[r.evs[i].thread].tid == r.evs[i].ev.tid;
	CHECK(contiguous);
	trace_rec_reset(&r);
	CHECK_INT(r.n, 0);
	CHECK_INT(r.bytes, 0);
}

static void test_trim(struct erpscope *es)
{
	struct trace_rec r;
	struct trace_ev req = { .kind = TRACE_EV_REQUEST, .tgid = TID(1), .tid = TID(1),
				.ts_ns = 10, .end_ns = 5000, .name = "/web" };

	trace_rec_init(&r, es, 1 << 20);
	trace_rec_consume(&r, &req); /* began long ago, ended late: kept by its end */
	for (uint64_t i = 0; i < 10000; i++)
		state(&r, TID(2), 100 + i);
	trace_rec_trim(&r, 4000);
	CHECK_INT(r.evs[r.first].ev.kind, TRACE_EV_REQUEST);
	trace_rec_trim(&r, 6000);
	CHECK_INT(r.evs[r.first].ev.ts_ns, 6000);
	CHECK_INT(r.dropped_oldest, 0); /* aged out is no drop */
	trace_rec_reset(&r);
}

/* Where field (wire type 1, fixed64) holds v in buf. */
static const uint8_t *find_fixed64(const uint8_t *buf, size_t len, uint32_t field, uint64_t v)
{
	uint8_t pat[10];
	size_t n = 0;
	uint64_t tag = (uint64_t)field << 3 | 1;

	while (tag >= 0x80) {
		pat[n++] = (uint8_t)(tag | 0x80);
		tag >>= 7;
	}
	pat[n++] = (uint8_t)tag;
	for (int i = 0; i < 8; i++)
		pat[n++] = (uint8_t)(v >> (8 * i));
	return memmem(buf, len, pat, n);
}

static void test_write_flow(struct erpscope *es)
{
	struct trace_rec r;
	struct trace_filter all = { .role = -1 }, other = { .role = -1, .pid = 1 };
	struct trace_ev req = { .kind = TRACE_EV_REQUEST, .tgid = TID(1), .tid = TID(1),
				.ts_ns = 1000, .end_ns = 5000, .name = "/web/dataset/call_kw",
				.detail = "sale.order.read", .status = "200" };
	struct trace_ev stmt = { .kind = TRACE_EV_STATEMENT, .tgid = TID(2), .tid = TID(2),
				 .ts_ns = 2000, .end_ns = 3000, .peer = TID(1),
				 .name = "SELECT ? FROM sale_order", .id = 0xabc };
	uint8_t *buf = NULL;
	size_t len = 0;

	trace_rec_init(&r, es, 1 << 20);
	state(&r, TID(1), 1500);
	trace_rec_consume(&r, &stmt); /* statements end first */
	trace_rec_consume(&r, &req);
	CHECK_INT(trace_write(&r, &all, 0, 10000, &buf, &len), 0);
	CHECK(len > 0 && buf[0] == 0x0a); /* Trace.packet */
	CHECK(memmem(buf, len, "sale.order.read", 15) != NULL);
	CHECK(memmem(buf, len, "SELECT ? FROM sale_order", 24) != NULL);
	/* the request's flow_ids (47) and the statement's terminating_flow_ids (48) */
	{
		const uint8_t *out = memmem(buf, len, "\xf9\x02", 2), *in = NULL;
		uint64_t id = 0;

		CHECK(out != NULL);
		if (out) {
			for (int i = 0; i < 8; i++)
				id |= (uint64_t)out[2 + i] << (8 * i);
			in = find_fixed64(buf, len, 48, id);
		}
		CHECK(id != 0 && in != NULL);
	}
	free(buf);
	/* a filter that keeps neither process: no slice, no statement text */
	CHECK_INT(trace_write(&r, &other, 0, 10000, &buf, &len), 0);
	CHECK(memmem(buf, len, "SELECT", 6) == NULL);
	CHECK(memmem(buf, len, "sale.order", 10) == NULL);
	free(buf);
	trace_rec_reset(&r);
}

/*
 * An untracked thread's wakeup of a kept one is kept, its process track with
 * it, named by its comm when /proc has it no more.
 */
static void test_write_waker(struct erpscope *es)
{
	struct trace_rec r;
	struct trace_filter woken = { .role = -1, .pid = TID(1) }, other = { .role = -1, .pid = 1 };
	struct trace_ev wk = { .kind = TRACE_EV_WAKING, .tgid = TID(3), .tid = TID(3),
			       .ts_ns = 2000, .cpu = 1, .peer = TID(1), .id = TID(1),
			       .code = 0, .state = 120, .name = "bash" };
	/* gone from /proc: named by the comm the kernel sent */
	static const char track[] = "other 4000003 bash";
	/* FtraceEvent.sched_waking (20, length-delimited) */
	static const uint8_t tag[] = { 0xa2, 0x01 };
	uint8_t *buf = NULL;
	size_t len = 0;

	trace_rec_init(&r, es, 1 << 20);
	state(&r, TID(1), 1500);
	trace_rec_consume(&r, &wk);
	state(&r, TID(1), 2100);
	CHECK_INT(trace_write(&r, &woken, 0, 10000, &buf, &len), 0);
	CHECK(memmem(buf, len, track, sizeof(track) - 1) != NULL);
	CHECK(memmem(buf, len, tag, sizeof(tag)) != NULL);
	free(buf);
	CHECK_INT(trace_write(&r, &other, 0, 10000, &buf, &len), 0);
	CHECK(memmem(buf, len, track, sizeof(track) - 1) == NULL);
	CHECK(memmem(buf, len, tag, sizeof(tag)) == NULL);
	free(buf);
	trace_rec_reset(&r);
}

static void state_of(struct trace_rec *r, uint32_t tid, uint64_t ts, uint32_t st)
{
	struct trace_ev ev = { .kind = TRACE_EV_STATE, .tgid = tid, .tid = tid, .ts_ns = ts,
			       .state = st };

	trace_rec_consume(r, &ev);
}

/* Runnable states in a written trace (GenericKernelTaskStateEvent.state 2: field 4). */
static int runnables(const uint8_t *buf, size_t len)
{
	int n = 0;

	for (const uint8_t *p = buf; (p = memmem(p, buf + len - p, "\x20\x02", 2)); p += 2)
		n++;
	return n;
}

/*
 * A waking of a sleeping thread begins its runnable state: the one that
 * follows is not written; a waking of a running thread (the kernel's wakeup
 * of one about to sleep) is no such thing, its later preemption is written.
 */
static void test_write_waking_runnable(struct erpscope *es)
{
	struct trace_rec r;
	struct trace_filter all = { .role = -1 };
	struct trace_ev wk = { .kind = TRACE_EV_WAKING, .tgid = TID(3), .tid = TID(3),
			       .peer = TID(1), .id = TID(1), .name = "bash" };
	uint8_t *buf = NULL;
	size_t len = 0;

	trace_rec_init(&r, es, 1 << 20);
	state_of(&r, TID(1), 1000, TRACE_ST_SLEEPING);
	wk.ts_ns = 2000;
	trace_rec_consume(&r, &wk);
	state_of(&r, TID(1), 2010, TRACE_ST_RUNNABLE); /* its wakeup: not written */
	state_of(&r, TID(1), 2050, TRACE_ST_RUNNING);
	wk.ts_ns = 2100;
	trace_rec_consume(&r, &wk);                     /* running: spurious */
	state_of(&r, TID(1), 9000, TRACE_ST_RUNNABLE); /* preempted: written */
	state_of(&r, TID(1), 9500, TRACE_ST_RUNNING);
	CHECK_INT(trace_write(&r, &all, 0, 10000, &buf, &len), 0);
	CHECK_INT(runnables(buf, len), 1);
	free(buf);
	trace_rec_reset(&r);
}

int main(void)
{
	struct erpscope es = { 0 };

	es.procs = procs_new(16);
	test_bounded(&es);
	test_trim(&es);
	test_write_flow(&es);
	test_write_waker(&es);
	test_write_waking_runnable(&es);
	procs_free(es.procs);
	return check_summary("test_trace_rec");
}
