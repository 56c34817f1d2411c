/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What every part of a written trace shares: perfetto.protos.TracePacket's
 * field numbers (Perfetto's perfetto_trace.proto; tests/perfetto/ holds the
 * subset), its one sequence, and the interned strings of that sequence.
 */
#ifndef ERPSCOPE_TRACE_PB_H
#define ERPSCOPE_TRACE_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/pb.h"

enum {
	TRACE_PACKET = 1,
	TP_FTRACE_EVENTS = 1,
	TP_CLOCK_SNAPSHOT = 6,
	TP_TIMESTAMP = 8,
	TP_SEQ_ID = 10,
	TP_TRACK_EVENT = 11,
	TP_INTERNED_DATA = 12,
	TP_SEQ_FLAGS = 13,
	TP_CLOCK_ID = 58,
	TP_TRACK_DESCRIPTOR = 60,
	TP_PERF_SAMPLE = 66,
	TP_TASK_STATE = 117,
};

enum { CLOCK_REALTIME_ID = 1, CLOCK_MONOTONIC_ID = 3, CLOCK_BOOTTIME_ID = 6 };
/* The one sequence; its first packet clears the incremental state, those that use it need it. */
enum { SEQ_ID = 1, SEQ_INCREMENTAL_STATE_CLEARED = 1, SEQ_NEEDS_INCREMENTAL_STATE = 2 };

/* InternedData's tables erpscope writes (their field numbers in InternedData). */
enum trace_intern_table {
	TI_EVENT_NAMES = 2,      /* EventName: TrackEvent.name_iid */
	TI_ANNOTATION_NAMES = 3, /* DebugAnnotationName: DebugAnnotation.name_iid */
	TI_FUNCTION_NAMES = 5,   /* InternedString: Frame.function_name_id */
	TI_FRAMES = 6,           /* Frame */
	TI_CALLSTACKS = 7,       /* Callstack: PerfSample.callstack_iid */
	TI_MAPPING_PATHS = 17,   /* InternedString: Mapping.path_string_ids */
	TI_MAPPINGS = 19,        /* Mapping: Frame.mapping_id */
	TI_ANNOTATION_STRINGS = 29, /* InternedString: DebugAnnotation.string_value_iid */
};

/* One table: string -> iid (1, 2, ...), open addressing. */
struct trace_intern {
	char **keys;    /* by iid - 1 */
	size_t n, cap;
	uint32_t *slots; /* iid, 0: empty */
	size_t nslots;
};

/* Strings first used by the packet being written, put in its InternedData. */
struct trace_fresh {
	enum trace_intern_table table;
	uint64_t iid;
	const char *s;
	size_t len;
	const uint64_t *frames; /* TI_CALLSTACKS: frame iids, outermost first */
	size_t nframes;
};

#define TRACE_FRESH_MAX 256

struct trace_interns {
	struct trace_intern names, annots, values, funcs, stacks;
	bool mapping; /* the one mapping (Python code) is written */
	struct trace_fresh fresh[TRACE_FRESH_MAX];
	size_t nfresh;
	uint64_t frames[TRACE_FRESH_MAX]; /* the callstack being interned */
	int err;
};

/* trace_intern.c */
void trace_interns_free(struct trace_interns *in);
/* The iid of s[0, len) in t, queued in fresh when new; 0: out of memory or room (in->err). */
uint64_t trace_intern(struct trace_interns *in, struct trace_intern *t,
		      enum trace_intern_table table, const char *s, size_t len);
/* A packet of the sequence at ts, its SequenceFlags saying it uses interned data. */
void trace_packet_begin(struct pb *pb, uint64_t ts, bool interned);
/* The packet's InternedData: what was queued since the last call. */
void trace_interned_write(struct pb *pb, struct trace_interns *in);

/* trace_samples.c: a CPU sample (TRACE_EV_SAMPLE) as a PerfSample packet. */
struct trace_ev;
void trace_sample_write(struct pb *pb, struct trace_interns *in, const struct trace_ev *ev);

#endif
