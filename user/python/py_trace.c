// SPDX-License-Identifier: GPL-2.0
/*
 * The python probe's side of traces: while a trace records (the sink's gate
 * sets the BPF global trace_on), tracked threads' GC pauses come on the
 * py_trace ring and go to the trace sink as TRACE_EV_GC slices.
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

static int on_event(void *ctx, void *data, size_t size)
{
	struct probe *p = ctx;
	const struct es_py_gc_trace_ev *k = data;
	char name[32];
	struct trace_ev ev = { .kind = TRACE_EV_GC };

	if (size < sizeof(*k))
		return 0;
	snprintf(name, sizeof(name), "GC generation %u", k->generation);
	ev.tgid = k->tgid;
	ev.tid = k->tid;
	ev.ts_ns = k->start_ns;
	ev.end_ns = k->end_ns;
	ev.code = k->collected > 0 ? (uint32_t)k->collected : 0;
	ev.name = name;
	trace_sink_emit(&p->es->trace, &ev);
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
