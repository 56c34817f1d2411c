// SPDX-License-Identifier: GPL-2.0
/*
 * The flight recorder (--trace.flight-recorder=W): every trace event goes to
 * a buffer that keeps the last W (and 2 s more), bounded by
 * --trace.buffer-size, oldest first. A trigger (a request slower than
 * --trace.slow-request, a worker killed mid-request, an OOM kill, a
 * PostgreSQL deadlock) schedules a save of [trigger - W, trigger + 2 s] for
 * 2 s later; one save per trigger kind per minute.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/erpscope.h"
#include "core/log.h"
#include "trace/trace.h"

#define AFTER_NS (2000000000ull)
#define PER_KIND_NS (60000000000ull)

static int trigger_of(const struct trace_priv *tp, const struct trace_ev *ev)
{
	uint64_t slow = (uint64_t)tp->es->cfg.trace_slow_ms * 1000000ull;

	switch (ev->kind) {
	case TRACE_EV_REQUEST:
		if (ev->state) /* a websocket or a long poll: long by design */
			return -1;
		if (ev->status && !strcmp(ev->status, "killed"))
			return TRACE_TRIG_KILLED;
		return ev->end_ns >= ev->ts_ns + slow ? TRACE_TRIG_SLOW_REQUEST : -1;
	case TRACE_EV_INSTANT:
		if (ev->name && !strcmp(ev->name, "OOM kill"))
			return TRACE_TRIG_OOM_KILL;
		if (ev->name && !strcmp(ev->name, "deadlock"))
			return TRACE_TRIG_DEADLOCK;
		return -1;
	default:
		return -1;
	}
}

void trace_flight_check(struct trace_priv *tp, const struct trace_ev *ev)
{
	int k = trigger_of(tp, ev);
	struct trace_pending *p;
	struct trace_saved *m;
	uint64_t now;

	if (k < 0)
		return;
	now = clock_ns();
	if (tp->last_save_ns[k] && now < tp->last_save_ns[k] + PER_KIND_NS)
		return;
	tp->last_save_ns[k] = now;
	p = &tp->pending[k];
	m = &p->meta;
	memset(p, 0, sizeof(*p));
	p->on = true;
	p->at_ns = now;
	p->due_ns = now + AFTER_NS;
	m->trigger = k;
	m->time = (int64_t)time(NULL);
	m->pid = ev->tgid;
	m->role = -1;
	for (size_t i = 0; i < tp->flight.nthreads; i++) {
		if (tp->flight.threads[i].tgid == ev->tgid)
			m->role = tp->flight.threads[i].role;
	}
	if (ev->kind == TRACE_EV_REQUEST) {
		snprintf(m->route, sizeof(m->route), "%s", ev->name ? ev->name : "");
		snprintf(m->rpc, sizeof(m->rpc), "%s", ev->detail ? ev->detail : "");
		m->duration = (double)(ev->end_ns - ev->ts_ns) / 1e9;
	}
	log_info("flight recorder triggered", "trigger=%s pid=%u", trace_trigger_names[k],
		 ev->tgid);
}

static void save(struct trace_priv *tp, struct trace_pending *p)
{
	uint64_t start = p->at_ns > tp->window_ns ? p->at_ns - tp->window_ns : 0;
	struct trace_filter all = { .role = -1 };
	struct trace_saved *m = &p->meta;
	uint8_t *buf = NULL;
	size_t len = 0, events = tp->flight.n - tp->flight.first;
	uint64_t t0 = clock_ns();
	int err;

	p->on = false;
	err = trace_write(&tp->flight, &all, start, p->due_ns, &buf, &len);
	if (!err)
		err = trace_files_save(tp, m, buf, len);
	free(buf);
	if (err) {
		tp->save_failures++;
		return;
	}
	tp->saves[m->trigger]++;
	log_info("flight recorder saved a trace", "id=%s trigger=%s events=%zu bytes=%zu took_ms=%.1f",
		 m->id, trace_trigger_names[m->trigger], events, len, (double)(clock_ns() - t0) / 1e6);
}

void trace_flight_tick(struct trace_priv *tp, uint64_t now_ns)
{
	if (!tp->window_ns)
		return;
	for (int k = 0; k < TRACE_TRIG_COUNT; k++) {
		if (tp->pending[k].on && now_ns >= tp->pending[k].due_ns)
			save(tp, &tp->pending[k]);
	}
	/* Kept: the window, and the 2 s a trigger's trace reaches past it. */
	if (now_ns > tp->window_ns + AFTER_NS)
		trace_rec_trim(&tp->flight, now_ns - tp->window_ns - AFTER_NS);
}
