// SPDX-License-Identifier: GPL-2.0
/*
 * The trace capability's poller: the sink's consumer (GET /trace's
 * recording and the flight recorder, either or both), the 100 ms tick that
 * ends recordings and saves flight traces, and the self-metrics.
 */
#include <errno.h>
#include <stdlib.h>

#include "core/clock.h"
#include "core/erpscope.h"
#include "core/expo.h"
#include "core/log.h"
#include "core/poller.h"
#include "sched/sched_trace.h"
#include "trace/trace.h"

const char *const trace_trigger_names[TRACE_TRIG_COUNT] = {
	[TRACE_TRIG_SLOW_REQUEST] = "slow_request",
	[TRACE_TRIG_KILLED] = "killed",
	[TRACE_TRIG_OOM_KILL] = "oom_kill",
	[TRACE_TRIG_DEADLOCK] = "deadlock",
};

struct trace_priv *trace_priv(struct erpscope *es)
{
	for (int i = 0; i < es->npollers; i++) {
		if (es->pollers[i].ops == &trace_poller_ops && es->pollers[i].up)
			return es->pollers[i].priv;
	}
	return NULL;
}

static void consume(void *ctx, const struct trace_ev *ev)
{
	struct trace_priv *tp = ctx;

	if (tp->recording)
		trace_rec_consume(&tp->rec, ev);
	if (tp->window_ns) {
		trace_rec_consume(&tp->flight, ev);
		trace_flight_check(tp, ev);
	}
}

void trace_sink_update(struct trace_priv *tp)
{
	bool on = tp->recording || tp->window_ns;

	if (tp->es->trace.on != on)
		trace_sink_set(&tp->es->trace, on);
}

static int trace_init(struct poller *pl)
{
	struct erpscope *es = pl->es;
	struct trace_priv *tp = calloc(1, sizeof(*tp));

	if (!tp)
		return -ENOMEM;
	tp->es = es;
	trace_rec_init(&tp->rec, es, es->cfg.trace_buffer_bytes);
	trace_rec_init(&tp->flight, es, es->cfg.trace_buffer_bytes);
	tp->window_ns = (uint64_t)es->cfg.trace_flight_ms * 1000000ull;
	pl->priv = tp;
	es->trace.consume = consume;
	es->trace.ctx = tp;
	trace_files_init(tp);
	trace_sink_update(tp);
	if (tp->window_ns)
		log_info("flight recorder on", "window_ms=%u buffer_bytes=%u slow_request_ms=%u",
			 es->cfg.trace_flight_ms, es->cfg.trace_buffer_bytes,
			 es->cfg.trace_slow_ms);
	return 0;
}

static void trace_tick(struct poller *pl, uint64_t now_ms)
{
	struct trace_priv *tp = pl->priv;
	uint64_t now = clock_ns();

	(void)now_ms;
	trace_http_tick(tp, now);
	trace_flight_tick(tp, now);
}

static uint64_t events_dropped(const struct trace_priv *tp)
{
	return tp->dropped_done + tp->rec.dropped + tp->rec.dropped_oldest + tp->flight.dropped +
	       tp->flight.dropped_oldest + sched_trace_drops(tp->es);
}

static void collect_saved(const struct trace_priv *tp, struct expo *e)
{
	for (int k = 0; k < TRACE_TRIG_COUNT; k++) {
		struct expo_label l = { "trigger", trace_trigger_names[k] };

		expo_sample_u64(e, &l, 1, tp->saves[k]);
	}
}

static void collect_one(const struct trace_priv *tp, struct expo *e, int which);

static const struct {
	const char *name;
	enum expo_type type;
	const char *help;
} families[] = {
	{ "erpscope_traces_saved_total", EXPO_COUNTER,
	  "Traces the flight recorder saved, by what triggered them." },
	{ "erpscope_trace_save_failures_total", EXPO_COUNTER,
	  "Flight recorder traces that could not be written (see --trace.dir)." },
	{ "erpscope_trace_events_dropped_total", EXPO_COUNTER,
	  "Trace events lost: pushed out of a full --trace.buffer-size (oldest first), refused by a full kernel ring, or out of memory." },
	{ "erpscope_trace_buffer_bytes", EXPO_GAUGE,
	  "Memory the flight recorder's and GET /trace's events hold now." },
	{ "erpscope_trace_recordings_total", EXPO_COUNTER, "GET /trace recordings answered." },
};

static void collect_one(const struct trace_priv *tp, struct expo *e, int which)
{
	switch (which) {
	case 0:
		collect_saved(tp, e);
		break;
	case 1:
		expo_sample_u64(e, NULL, 0, tp->save_failures);
		break;
	case 2:
		expo_sample_u64(e, NULL, 0, events_dropped(tp));
		break;
	case 3:
		expo_sample_u64(e, NULL, 0, tp->rec.bytes + tp->flight.bytes);
		break;
	case 4:
		expo_sample_u64(e, NULL, 0, tp->recordings);
		break;
	}
}

static void trace_collect(struct poller *pl, struct expo *e)
{
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		expo_family(e, families[i].name, families[i].type, families[i].help);
		collect_one(pl->priv, e, (int)i);
	}
}

static void trace_free(struct poller *pl)
{
	struct trace_priv *tp = pl->priv;

	if (!tp)
		return;
	trace_sink_set(&tp->es->trace, false);
	tp->es->trace.consume = NULL;
	trace_http_free(tp);
	trace_rec_reset(&tp->flight);
	free(tp->saved);
	free(tp);
	pl->priv = NULL;
}

const struct poller_ops trace_poller_ops = {
	.name = "trace",
	.interval_ms = 100,
	.init = trace_init,
	.tick = trace_tick,
	.collect = trace_collect,
	.free = trace_free,
};
