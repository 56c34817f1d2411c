// SPDX-License-Identifier: GPL-2.0
/*
 * The python probe's side of traces: while a trace records (the sink's gate
 * sets the BPF global trace_on), tracked threads' GC pauses and CPU samples
 * come on the py_trace ring and go to the trace sink as TRACE_EV_GC slices
 * and TRACE_EV_SAMPLE (the sample's stack named as GET /profile names it).
 */
#include <stdio.h>
#include <bpf/libbpf.h>
#include <linux/types.h>

#include "../../bpf/python.h"
#include "python.skel.h"
#include "core/erpscope.h"
#include "core/probe.h"
#include "core/trace_sink.h"
#include "python/python.h"

static void gc_event(struct probe *p, const struct es_py_gc_trace_ev *k)
{
	char name[32];
	struct trace_ev ev = { .kind = TRACE_EV_GC };

	snprintf(name, sizeof(name), "GC generation %u", k->generation);
	ev.tgid = k->tgid;
	ev.tid = k->tid;
	ev.ts_ns = k->start_ns;
	ev.end_ns = k->end_ns;
	ev.code = k->collected > 0 ? (uint32_t)k->collected : 0;
	ev.name = name;
	trace_sink_emit(&p->es->trace, &ev);
}

static void sample_event(struct probe *p, const struct es_py_sample_trace_ev *k)
{
	struct py_priv *pp = python_priv(p->es);
	struct trace_ev ev = {
		.kind = TRACE_EV_SAMPLE,
		.tgid = k->tgid,
		.tid = k->tid,
		.ts_ns = k->ts,
		.cpu = k->cpu,
	};

	if (!pp || !p->es->trace.on)
		return;
	ev.name = py_profile_stack_text(pp, k->stack_id, k->tgid);
	if (ev.name)
		trace_sink_emit(&p->es->trace, &ev);
}

static int on_event(void *ctx, void *data, size_t size)
{
	struct probe *p = ctx;
	const __u32 *kind = data;

	if (size >= sizeof(struct es_py_gc_trace_ev) && *kind == ES_PY_TR_GC)
		gc_event(p, data);
	else if (size >= sizeof(struct es_py_sample_trace_ev) && *kind == ES_PY_TR_SAMPLE)
		sample_event(p, data);
	return 0;
}

int py_trace_start(struct probe *p, struct python_bpf *skel)
{
	return trace_sink_probe_start(&p->es->trace, &p->rb, bpf_map__fd(skel->maps.py_trace),
				      on_event, p, &skel->bss->trace_on, NULL);
}

void py_trace_stop(struct probe *p, struct python_bpf *skel)
{
	trace_sink_probe_stop(&p->es->trace, &p->rb, &skel->bss->trace_on);
}
