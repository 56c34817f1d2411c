/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Contract between bpf/python.bpf.c and user/python*.c: Python stacks read
 * from the interpreter's own frame chain (CPU samples and long off-CPU
 * blocks) and GC pauses from the gc__start/gc__done USDT probes.
 * Fixed-width types only, no includes.
 */
#ifndef ERPSCOPE_BPF_PYTHON_H
#define ERPSCOPE_BPF_PYTHON_H

/* Frames kept per stack; the --python.stack-depth flag may lower it. */
#define ES_PY_MAX_DEPTH 64
/* Thread states looked at to find the current thread's (threaded servers). */
#define ES_PY_MAX_THREADS 32
/* Frames per stack whose arguments are captured (user/python/pyrt.h names them). */
#define ES_PY_MAX_ARGS 4
/* Arguments captured per function. */
#define ES_PY_ARGS_PER_FUNC 2

/* GC pause edges (le, ns) live in rodata; at most this many. */
#define ES_PY_MAX_EDGES 16 /* <= ES_HIST_MAX_EDGES in hist.h */
#define ES_PY_GC_GENERATIONS 3

/*
 * Offsets into one CPython version's structures, filled by user space from
 * a layout it has checked against the running process (user/python/pyrt.c).
 * ES_PY_NO_OFF: the version has no such step.
 */
struct es_py_offsets {
	__u16 ts_next;          /* PyThreadState.next */
	__u16 ts_thread;        /* .native_thread_id (3.11+), .thread_id (3.10: its struct pthread) */
	__u16 pthread_tid;      /* 3.10: the tid in struct pthread (found per process), else none */
	__u16 ts_frame;         /* .cframe (3.11, 3.12), .current_frame (3.13), .frame (3.10) */
	__u16 cframe_current;   /* _PyCFrame.current_frame (3.11, 3.12), else none */
	__u16 frame_code;       /* _PyInterpreterFrame.f_code / f_executable, PyFrameObject.f_code */
	__u16 frame_previous;   /* _PyInterpreterFrame.previous, PyFrameObject.f_back */
	__u16 frame_localsplus; /* _PyInterpreterFrame.localsplus, PyFrameObject.f_localsplus */
	__u16 frame_owner;      /* _PyInterpreterFrame.owner (0 where none): frames whose owner is ... */
	__u16 shim_owner;       /* ... are C-stack shims, skipped (3.12+); ES_PY_NO_SHIM: none */
	__u16 pad[2];
};
#define ES_PY_NO_OFF 0xffff
/* _PyInterpreterFrame.owner of a shim frame the C stack owns (3.12, 3.13). */
#define ES_PY_OWNED_BY_CSTACK 3
/* No byte has this value: no frame is a shim (3.10, 3.11; frame_owner is then 0). */
#define ES_PY_NO_SHIM 0x100

/* py_procs: tgid -> where its interpreter is. */
struct es_py_proc {
	__u64 tstate_head; /* address of the interpreter's threads.head pointer */
	struct es_py_offsets off;
};

/* py_capture: code object -> localsplus indexes of arguments to capture. */
struct es_py_capture {
	__u16 idx[ES_PY_ARGS_PER_FUNC]; /* 0xffff: none */
	__u32 pad;
};
#define ES_PY_NO_ARG 0xffff

enum es_py_kind {
	ES_PY_CPU = 0,    /* value: samples */
	ES_PY_OFFCPU = 1, /* value: blocked ns */
};

/* Captured argument: the frame it belongs to and the object's address. */
struct es_py_arg {
	__u16 frame; /* index into code[] */
	__u16 arg;   /* 0 .. ES_PY_ARGS_PER_FUNC-1 */
	__u32 pad;
	__u64 obj;
};

/* py_stacks: stack id -> frames, innermost first. */
struct es_py_stack {
	__u32 depth;
	__u32 nargs;
	__u32 truncated; /* the walk stopped at the depth limit or a bad read */
	__u32 pad;
	struct es_py_arg args[ES_PY_MAX_ARGS];
	__u64 code[ES_PY_MAX_DEPTH]; /* PyCodeObject addresses */
};

/*
 * py_counts: (tgid, kind, stack, request) -> value since user space last
 * took it. req: the tag (bpf/reqtag.h) of the request the thread was
 * serving, 0 when none.
 */
struct es_py_count_key {
	__u32 tgid;
	__u32 kind;
	__u64 stack_id;
	__u64 req;
};

/* Per-slot GC numbers (py_gc, per-CPU hash keyed by slot << 2 | generation). */
struct es_py_gc {
	__u64 count;
	__u64 sum_ns;
	__u64 collected;
	__u64 buckets[ES_PY_MAX_EDGES + 1]; /* last one is +Inf */
};

/* What comes on the py_trace ring while a trace records (trace_on). */
enum es_py_trace_kind {
	ES_PY_TR_GC = 1, /* struct es_py_gc_trace_ev */
	ES_PY_TR_SAMPLE, /* struct es_py_sample_trace_ev */
};

/* A tracked thread's GC pause. */
struct es_py_gc_trace_ev {
	__u32 kind; /* ES_PY_TR_GC */
	__u32 pad0;
	__u64 start_ns;
	__u64 end_ns;
	__u32 tgid;
	__u32 tid;
	__u32 generation;
	__u32 pad;
	__s64 collected;
};

/* A CPU sample of a tracked thread: its stack (py_stacks) and when. */
struct es_py_sample_trace_ev {
	__u32 kind; /* ES_PY_TR_SAMPLE */
	__u32 cpu;
	__u64 ts;
	__u64 stack_id;
	__u32 tgid;
	__u32 tid;
};

#define ES_PY_TRACE_RING (256u << 10)

/* Event counters (py_stats, per-CPU array). */
enum es_py_stat {
	ES_PY_STAT_SAMPLES = 0,   /* CPU samples of tracked Python threads */
	ES_PY_STAT_NO_THREAD,     /* no thread state for the sampled thread */
	ES_PY_STAT_TRUNCATED,     /* stacks cut at the depth limit or a bad read */
	ES_PY_STAT_OFFCPU_WALKS,  /* long blocks walked */
	ES_PY_STAT_OFFCPU_BUSY,   /* long blocks not walked: a walk was pending */
	ES_PY_STAT_MAP_FULL,      /* stacks or counts not stored: map full */
	ES_PY_STAT_OFFCPU_LATE,   /* walks (in OFFCPU_WALKS too) of unseen switch-ins, made at the next block */
	ES_PY_STAT_COUNT,
};

#endif
