// SPDX-License-Identifier: GPL-2.0
/*
 * The sched probe's side of traces: while a trace records (the sink's gate
 * sets the BPF global trace_on), tracked threads' state changes come on the
 * sched_trace ring and go to the trace sink as TRACE_EV_STATE.
 */
#include <bpf/libbpf.h>

#include <linux/types.h>

#include "../../bpf/sched.h"
#include "sched.skel.h"
#include "core/erpscope.h"
#include "core/probe.h"
#include "core/trace_sink.h"
#include "sched/sched_trace.h"

static const enum trace_state states[ES_ST_OFF + ES_OFF_COUNT] = {
	[ES_ST_ONCPU] = TRACE_ST_RUNNING,
	[ES_ST_OFF + ES_OFF_RUNQUEUE] = TRACE_ST_RUNNABLE,
	[ES_ST_OFF + ES_OFF_IOWAIT] = TRACE_ST_IOWAIT,
	[ES_ST_OFF + ES_OFF_BLOCKED] = TRACE_ST_BLOCKED,
	[ES_ST_OFF + ES_OFF_SLEEP] = TRACE_ST_SLEEPING,
};

static int on_event(void *ctx, void *data, size_t size)
{
	struct probe *p = ctx;
	const struct es_sched_trace_ev *k = data;
	struct trace_ev ev = { .kind = TRACE_EV_STATE };

	if (size < sizeof(*k) || k->state >= ES_ST_OFF + ES_OFF_COUNT || !states[k->state])
		return 0;
	ev.tgid = k->tgid;
	ev.tid = k->pid;
	ev.ts_ns = k->ts;
	ev.state = states[k->state];
	ev.cpu = k->cpu;
	trace_sink_emit(&p->es->trace, &ev);
	return 0;
}

int sched_trace_start(struct probe *p, struct sched_bpf *skel)
{
	return trace_sink_probe_start(&p->es->trace, &p->rb, bpf_map__fd(skel->maps.sched_trace),
				      on_event, p, &skel->bss->trace_on, NULL);
}

void sched_trace_stop(struct probe *p, struct sched_bpf *skel)
{
	trace_sink_probe_stop(&p->es->trace, &p->rb, &skel->bss->trace_on);
}

uint64_t sched_trace_drops(struct erpscope *es)
{
	struct probe *p = erpscope_probe(es, "sched");
	struct sched_bpf *skel = p && p->up ? sched_trace_skel(p) : NULL;

	return skel ? __atomic_load_n(&skel->bss->trace_drops, __ATOMIC_RELAXED) : 0;
}
