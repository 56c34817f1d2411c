/* SPDX-License-Identifier: GPL-2.0 */
/* Contract between bpf/sched.bpf.c and user/sched/sched.c. No includes. */
#ifndef ERPSCOPE_BPF_SCHED_H
#define ERPSCOPE_BPF_SCHED_H

/* Off-CPU reasons, in the order erpscope_offcpu_seconds_total lists them. */
enum es_offcpu_reason {
	ES_OFF_RUNQUEUE = 0, /* runnable, waiting for a CPU */
	ES_OFF_IOWAIT,       /* TASK_UNINTERRUPTIBLE with in_iowait */
	ES_OFF_BLOCKED,      /* TASK_UNINTERRUPTIBLE otherwise */
	ES_OFF_SLEEP,        /* TASK_INTERRUPTIBLE and the rest */
	ES_OFF_COUNT, /* a power of two: the BPF side masks with it */
};

/* Runqueue latency edges (le, in ns) live in rodata; at most this many. */
#define ES_SCHED_MAX_EDGES 24 /* <= ES_HIST_MAX_EDGES in hist.h */

/*
 * A block whose switch-in went unseen: ns long, from off. Kept in a task's
 * state until the task blocks again (sched_run.bpf.h: late_block_note/take).
 */
struct es_late_block {
	__u64 off, ns;
};

/* Per-slot, per-CPU accumulators. Everything is cumulative. */
struct es_sched_slot {
	__u64 cpu_ns;
	__u64 off_ns[ES_OFF_COUNT];
	__u64 nvcsw;
	__u64 nivcsw;
	__u64 runq_sum_ns;
	__u64 runq_buckets[ES_SCHED_MAX_EDGES + 1]; /* last one is +Inf */
};

/* iowait time per worker slot and the device it waited on (0 = unknown). */
struct es_iowait_key {
	__u32 slot;
	__u32 dev; /* dev_t of the disk: major << 20 | minor */
};

/* What a task is doing since ts (task_sched / task_sched_by_pid values). */
enum {
	ES_ST_UNKNOWN = 0, /* first seen: no interval to close */
	ES_ST_ONCPU = 1,
	ES_ST_OFF = 2, /* ES_ST_OFF + enum es_offcpu_reason */
};

/* A task's own cumulative time, by what it did: [0] on CPU, [1 + reason] off. */
#define ES_ACC_CPU 0
#define ES_ACC_COUNT (1 + ES_OFF_COUNT)

struct es_task_sched {
	__u64 ts;       /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 state;
	__u32 iodev;    /* in iowait: the device of its last request, 0 = unknown */
	__u32 slot;     /* cached worker_slot(tgid) ... */
	__u32 slot_gen; /* ... valid while workers_gen + 1 equals this */
	__u32 tgid;     /* raw_tp flavour: for user space's walk of the hash */
	__u32 pad;
	__u64 block_ts; /* off-CPU by its own choice since, 0: not (switch_hook_min_ns set) */
	/* for the hook to walk when the task blocks again (switch_hook.bpf.h) */
	struct es_late_block late;
	/*
	 * An untracked task that woke a tracked one while a trace records: the
	 * run it did it in (se.prev_sum_exec_runtime + 1, constant during a run),
	 * whose start went with its first waking event, and whose end its
	 * switch-out sends. 0: none.
	 */
	__u64 waker_run;
	/*
	 * Closed intervals only (the open one is state since ts): read by the
	 * requests probe at a request's start and end, for where its time went.
	 */
	__u64 acc_ns[ES_ACC_COUNT];
};

/*
 * An interval still open at scrape: what one task does since when, and the
 * slot it will be charged to when it closes. The iter/task program writes
 * one per task (tp_btf flavour); user space makes them from the hash walk
 * (raw_tp flavour).
 */
struct es_sched_open {
	__u64 ns;    /* now - ts */
	__u32 slot;
	__u32 state; /* ES_ST_ONCPU or ES_ST_OFF + reason */
	__u32 iodev; /* in iowait: the device it will be charged to */
	__u32 pad;
};

/*
 * A tracked thread's scheduler state changed (sched_trace ring), sent only
 * while user space sets trace_on: a trace records (user/trace).
 */
struct es_sched_trace_ev {
	__u64 ts;    /* bpf_ktime_get_ns() */
	__u32 pid;
	__u32 tgid;
	__u32 state; /* ES_ST_ONCPU or ES_ST_OFF + reason, from then on */
	__u32 cpu;
};

/*
 * On the same ring, while a trace records, an untracked task (h.pid, h.tgid,
 * on CPU h.cpu) and a tracked thread (woken_*), as h.state says:
 *   - ES_TR_WAKING (the sched_waking program, attached only then): the
 *     untracked task woke the tracked thread;
 *   - ES_TR_HELD (sched_switch): the untracked task left the CPU at h.ts to
 *     the tracked thread, which was runnable: it held the CPU the thread
 *     waited for. It leaves in state `left`.
 */
#define ES_TR_WAKING 0x100
#define ES_TR_HELD 0x101

struct es_sched_waking_ev {
	struct es_sched_trace_ev h;
	__u32 woken_pid;
	__u32 woken_tgid;
	__s32 woken_prio;
	__u32 target_cpu;
	__u64 run_start; /* the untracked task's run on h.cpu began then; 0: sent already */
	char comm[16];   /* the untracked task's */
	__u32 left;      /* ES_TR_HELD: its state from h.ts on (ES_ST_OFF + reason) */
	__u32 pad;
};

#define ES_SCHED_TRACE_RING (4u << 20)

#endif
