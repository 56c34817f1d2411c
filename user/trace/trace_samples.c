// SPDX-License-Identifier: GPL-2.0
/*
 * A CPU sample (TRACE_EV_SAMPLE) as a PerfSample packet whose callstack is
 * interned: function names, one frame per function (in one mapping,
 * "python"), a callstack per distinct stack.
 *
 * PerfSample, not StreamingProfilePacket: a PerfSample names its own pid,
 * tid and CPU, so the samples of every thread share the trace's one
 * sequence, and trace_processor puts them in perf_sample with their
 * callstacks, which ui.perfetto.dev draws as the thread's CPU samples (a
 * mark per sample on its track) and, for a selected range, as a flame
 * graph. StreamingProfilePacket (Chrome's sampler) takes its thread from
 * the sequence's ThreadDescriptor: a sequence per thread, and timestamps
 * as deltas.
 */
#include <errno.h>
#include <string.h>

#include "core/trace_sink.h"
#include "trace/trace_pb.h"

enum { PS_CPU = 1, PS_PID = 2, PS_TID = 3, PS_CALLSTACK = 4 }; /* PerfSample */

static const char MAPPING[] = "python";

/* No room for a stack's frames (cannot happen: 65 frames take 131 entries). */
static uint64_t too_deep(struct trace_interns *in)
{
	if (!in->err)
		in->err = -E2BIG;
	return 0;
}

/* The function's iid, its frame's too (queued with it when new). */
static uint64_t frame_of(struct trace_interns *in, const char *s, size_t len)
{
	size_t before = in->nfresh;
	uint64_t iid = trace_intern(in, &in->funcs, TI_FUNCTION_NAMES, s, len);

	if (iid && in->nfresh > before) {
		if (in->nfresh == TRACE_FRESH_MAX)
			return too_deep(in);
		in->fresh[in->nfresh++] = (struct trace_fresh){ .table = TI_FRAMES, .iid = iid };
	}
	return iid;
}

static uint64_t callstack_of(struct trace_interns *in, const char *folded)
{
	size_t before = in->nfresh, n = 0;
	uint64_t iid = trace_intern(in, &in->stacks, TI_CALLSTACKS, folded, strlen(folded));

	if (!iid || in->nfresh == before)
		return iid;
	/* New: its frames, and it after them (it names them). */
	in->nfresh--;
	for (const char *p = folded; n < TRACE_FRESH_MAX;) {
		size_t len = strcspn(p, ";");

		in->frames[n] = frame_of(in, p, len);
		if (!in->frames[n++])
			return too_deep(in);
		if (!p[len])
			break;
		p += len + 1;
	}
	if (in->nfresh == TRACE_FRESH_MAX || n == TRACE_FRESH_MAX)
		return too_deep(in);
	in->fresh[in->nfresh++] = (struct trace_fresh){
		.table = TI_CALLSTACKS, .iid = iid, .frames = in->frames, .nframes = n,
	};
	return iid;
}

void trace_sample_write(struct pb *pb, struct trace_interns *in, const struct trace_ev *ev)
{
	uint64_t cs;

	if (!in->mapping) {
		in->mapping = true;
		in->fresh[in->nfresh++] = (struct trace_fresh){
			.table = TI_MAPPING_PATHS, .iid = 1, .s = MAPPING, .len = strlen(MAPPING),
		};
		in->fresh[in->nfresh++] = (struct trace_fresh){ .table = TI_MAPPINGS, .iid = 1 };
	}
	cs = callstack_of(in, ev->name ? ev->name : "");
	if (!cs) {
		in->nfresh = 0;
		return;
	}
	trace_packet_begin(pb, ev->ts_ns, true);
	trace_interned_write(pb, in);
	pb_begin(pb, TP_PERF_SAMPLE);
	pb_varint(pb, PS_CPU, ev->cpu);
	pb_varint(pb, PS_PID, ev->tgid);
	pb_varint(pb, PS_TID, ev->tid);
	pb_varint(pb, PS_CALLSTACK, cs);
	pb_end(pb);
	pb_end(pb);
}
