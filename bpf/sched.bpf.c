// SPDX-License-Identifier: GPL-2.0
/*
 * Scheduler accounting per worker: on-CPU time, off-CPU time by reason,
 * runqueue latency, context switches. Every task is accounted (untracked
 * ones to the "other" slot), so a worker's cpu + off-CPU adds up to its wall
 * time.
 *
 * Per-task state says what the task is doing since when. sched_switch closes
 * the on-CPU interval of prev and the off-CPU interval of next; sched_wakeup
 * closes a sleep and opens a runqueue wait. No strings, no loops beyond the
 * bucket search, per-CPU accumulators.
 *
 * Two attach flavours share the logic: tp_btf (typed args, task local
 * storage) and raw_tp (probed reads, an LRU hash by pid) where tp_btf is
 * missing. User space enables one set at load time after a feature probe.
 *
 * Intervals still open at scrape (a sleep of minutes, a long run on CPU)
 * are read by a task iterator over task storage (tp_btf flavour) or by user
 * space walking the hash (raw_tp flavour), so counters grow with wall time.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "core_fixes.bpf.h"
#include "hist.h"
#include "iodev.bpf.h"
#include "maps.bpf.h"
#include "procs.h"
#include "ringbuf.bpf.h"
#include "sched.h"
#include "sched_run.bpf.h"
#include "switch_hook.bpf.h"
#include "workers.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by user space before load. */
const volatile __u64 runq_edges_ns[ES_SCHED_MAX_EDGES] = {};
const volatile __u32 runq_nedges = 0;
const volatile bool sched_switch_has_prev_state = true;
/* tp_btf flavour: blocks this long go to the switch hook; 0: no hook. */
const volatile __u64 switch_hook_min_ns = 0;

/*
 * Set by user space while a trace records (user/sched/sched_trace.c): then
 * tracked threads' state changes go to sched_trace. Off, each program pays
 * one load of it and a branch.
 */
volatile __u32 trace_on;
__u64 trace_drops; /* events a full sched_trace ring refused */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, ES_SCHED_TRACE_RING);
} sched_trace SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct es_task_sched);
} task_sched SEC(".maps");

/* raw_tp flavour only; user space shrinks it to 1 entry otherwise. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct es_task_sched);
} task_sched_by_pid SEC(".maps");

/* max_entries = ES_ROLE_COUNT + --max-workers, set by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ES_ROLE_COUNT);
	__type(key, __u32);
	__type(value, struct es_sched_slot);
} sched_slots SEC(".maps");

/* Entries are few: workers that ever waited for I/O times devices. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct es_iowait_key);
	__type(value, __u64);
} iowait_by_dev SEC(".maps");

static __always_inline struct es_sched_slot *slot_of(struct es_task_sched *s, __u32 tgid,
						      __u32 *slotp)
{
	__u32 gen = workers_generation() + 1, slot;
	struct es_sched_slot *v;

	if (s->slot_gen == gen) {
		slot = s->slot;
	} else {
		slot = worker_slot(tgid);
		s->slot = slot;
		s->slot_gen = gen;
	}
	v = bpf_map_lookup_elem(&sched_slots, &slot);

	/* A slot past the array (map shrunk under us) falls back to "other". */
	if (!v) {
		slot = ES_ROLE_OTHER;
		v = bpf_map_lookup_elem(&sched_slots, &slot);
	}
	*slotp = slot;
	return v;
}

static __always_inline void add_iowait_dev(__u32 slot, __u32 dev, __u64 delta)
{
	static const __u64 zero;
	struct es_iowait_key k = { .slot = slot, .dev = dev };
	__u64 *ns = es_lookup_or_init(&iowait_by_dev, &k, &zero, ES_MAP_IOWAIT_BY_DEV);

	if (ns)
		*ns += delta;
}

/* Closes an off-CPU interval of task s of process tgid at now. */
static __always_inline void close_offcpu(struct es_task_sched *s, __u32 tgid, __u64 now)
{
	__u32 reason = s->state - ES_ST_OFF, slot, idx;
	struct es_sched_slot *v;
	__u64 delta;

	if (!s->ts || s->state < ES_ST_OFF || reason >= ES_OFF_COUNT || now < s->ts)
		return;
	v = slot_of(s, tgid, &slot);
	if (!v)
		return;
	delta = now - s->ts;
	idx = reason;
	/* Hide the range check from the compiler so the mask the verifier needs stays. */
	asm volatile("" : "+r"(idx));
	idx &= ES_OFF_COUNT - 1;
	v->off_ns[idx] += delta;
	s->acc_ns[1 + idx] += delta;
	if (reason == ES_OFF_IOWAIT)
		add_iowait_dev(slot, s->iodev, delta);
	if (reason == ES_OFF_RUNQUEUE) {
		__u32 b = es_hist_bucket(runq_edges_ns, runq_nedges, ES_SCHED_MAX_EDGES, delta);

		if (b > ES_SCHED_MAX_EDGES)
			b = ES_SCHED_MAX_EDGES;
		v->runq_buckets[b] += 1;
		v->runq_sum_ns += delta;
	}
}

static __always_inline __u32 offcpu_reason(bool preempt, unsigned int state, bool iowait)
{
	if (preempt || state == ES_TASK_RUNNING)
		return ES_OFF_RUNQUEUE;
	if ((state & ES_TASK_UNINTERRUPTIBLE) && !(state & ES_TASK_NOLOAD))
		return iowait ? ES_OFF_IOWAIT : ES_OFF_BLOCKED;
	return ES_OFF_SLEEP;
}

static __always_inline void switch_out(struct es_task_sched *s, __u32 tgid, bool preempt,
				       unsigned int state, bool iowait, __u64 sum,
				       __u64 prev_sum, __u64 now)
{
	__u32 reason = offcpu_reason(preempt, state, iowait), slot, *dev;
	struct es_sched_slot *v = slot_of(s, tgid, &slot);

	if (!v)
		return;
	s->tgid = tgid;
	s->iodev = 0;
	if (reason == ES_OFF_IOWAIT) {
		/* prev is current here, in both flavours: a trusted pointer. */
		dev = bpf_task_storage_get(&task_iodev, bpf_get_current_task_btf(), NULL, 0);
		if (dev)
			s->iodev = *dev;
	}
	/*
	 * The worker's CPU as the kernel charged it; a request's part is the
	 * wall time it held the CPU, so that its parts add up to its duration.
	 */
	if (s->state == ES_ST_ONCPU && s->ts && now >= s->ts) {
		v->cpu_ns += run_cpu(sum, prev_sum, now, s->ts);
		s->acc_ns[ES_ACC_CPU] += now - s->ts;
	}
	if (reason == ES_OFF_RUNQUEUE)
		v->nivcsw += 1;
	else
		v->nvcsw += 1;
	s->state = ES_ST_OFF + reason;
	s->ts = now;
	if (switch_hook_min_ns)
		s->block_ts = reason == ES_OFF_RUNQUEUE ? 0 : now;
}

static __always_inline void switch_in(struct es_task_sched *s, __u32 tgid, __u64 now)
{
	close_offcpu(s, tgid, now);
	s->tgid = tgid;
	s->state = ES_ST_ONCPU;
	s->ts = now;
}

/* A sleeper becomes runnable: close the sleep, open a runqueue wait. Returns whether it did. */
static __always_inline bool wakeup(struct es_task_sched *s, __u32 tgid, __u64 now)
{
	if (s->state == ES_ST_ONCPU || s->state == ES_ST_OFF + ES_OFF_RUNQUEUE)
		return false; /* already running or runnable: a wakeup of a runnable task */
	close_offcpu(s, tgid, now);
	s->tgid = tgid;
	s->state = ES_ST_OFF + ES_OFF_RUNQUEUE;
	s->ts = now;
	return true;
}

/* While a trace records: thread pid of tgid is in state since ts. */
static __always_inline void trace_send(__u32 pid, __u32 tgid, __u32 state, __u64 ts)
{
	struct es_sched_trace_ev *ev = bpf_ringbuf_reserve(&sched_trace, sizeof(*ev), 0);

	if (!ev) {
		__sync_fetch_and_add(&trace_drops, 1);
		return;
	}
	ev->ts = ts;
	ev->pid = pid;
	ev->tgid = tgid;
	ev->state = state;
	ev->cpu = bpf_get_smp_processor_id();
	bpf_ringbuf_submit(ev, es_rb_lazy(&sched_trace, ES_SCHED_TRACE_RING));
}

/* The same, if the thread is tracked. */
static __always_inline void trace_emit(struct es_task_sched *s, __u32 pid, __u32 tgid,
				       __u32 state, __u64 ts)
{
	__u32 slot;

	if (slot_of(s, tgid, &slot) && slot != ES_ROLE_OTHER)
		trace_send(pid, tgid, state, ts);
}

/* An untracked waker's run (see es_waking) ends: the state it leaves in. */
static __always_inline void trace_waker_out(struct es_task_sched *s, __u32 pid, __u32 tgid,
					    __u64 now)
{
	if (!s->waker_run)
		return;
	s->waker_run = 0;
	trace_send(pid, tgid, s->state, now);
}

static __always_inline void trace_state(struct es_task_sched *s, __u32 pid, __u32 tgid, __u64 now)
{
	trace_emit(s, pid, tgid, s->state, now);
}

/*
 * prev leaves the CPU but its switch-in was not seen: the VM kernel these
 * tests run on skips programs while a thread of PID 1 is current, and at
 * sched_switch that is the task switched from (see blkio in README's How it
 * works). Without this the run is lost: a CPU-bound worker read 2.29 s on
 * CPU where /proc said 3.02 s. Its run began `ran` ago: CFS sets
 * prev_sum_exec_runtime to sum_exec_runtime when it switches a task in, and
 * brings sum_exec_runtime up to date before sched_switch. Not before its
 * last known change. The wait before it is closed there, the run opened,
 * and switch_out then charges it as any other. Returns the run's start, 0
 * when its switch-in was seen.
 */
static __always_inline __u64 missed_run(struct es_task_sched *s, __u32 pid, __u32 tgid,
					__u64 sum, __u64 prev_sum, __u64 now, bool tr)
{
	__u64 start;

	if (s->state == ES_ST_ONCPU || sum <= prev_sum || sum - prev_sum > now)
		return 0;
	start = run_began(sum, prev_sum, now, s->ts);
	close_offcpu(s, tgid, start);
	s->tgid = tgid;
	s->state = ES_ST_ONCPU;
	s->ts = start;
	if (tr)
		trace_emit(s, pid, tgid, ES_ST_ONCPU, start);
	return start;
}

/*
 * A record of an untracked task (from) on a tracked thread's (to) track: its
 * waking of to (ES_TR_WAKING) or its run on the CPU to waited for (ES_TR_HELD).
 */
static __always_inline void send_other(struct task_struct *from, struct task_struct *to,
				       __u32 state, __u32 target_cpu, __u64 run_start, __u32 left,
				       __u64 now)
{
	struct es_sched_waking_ev *ev = bpf_ringbuf_reserve(&sched_trace, sizeof(*ev), 0);

	if (!ev) {
		__sync_fetch_and_add(&trace_drops, 1);
		return;
	}
	ev->h.ts = now;
	ev->h.pid = from->pid;
	ev->h.tgid = from->tgid;
	ev->h.state = state;
	ev->h.cpu = bpf_get_smp_processor_id();
	ev->woken_pid = to->pid;
	ev->woken_tgid = to->tgid;
	ev->woken_prio = to->prio;
	ev->target_cpu = target_cpu;
	ev->run_start = run_start;
	ev->left = left;
	ev->pad = 0;
	__builtin_memcpy(ev->comm, from->comm, sizeof(ev->comm));
	bpf_ringbuf_submit(ev, es_rb_lazy(&sched_trace, ES_SCHED_TRACE_RING));
}

/*
 * While a trace records: prev, untracked, gives the CPU to next, tracked and
 * runnable: prev held the CPU next waited for. Sent before prev's switch-out
 * (its run is open: s->ts is its start) with the reason it leaves (left); a run
 * that already began as a waker's (es_waking) is not sent again, and its
 * end is this event's.
 */
static __always_inline void trace_held(struct es_task_sched *s, struct task_struct *prev,
				       struct es_task_sched *ns, struct task_struct *next,
				       __u32 left, __u64 now)
{
	__u64 run_start;
	__u32 slot;

	if (ns->state != ES_ST_OFF + ES_OFF_RUNQUEUE || s->state != ES_ST_ONCPU ||
	    !slot_of(s, prev->tgid, &slot) || slot != ES_ROLE_OTHER ||
	    !slot_of(ns, next->tgid, &slot) || slot == ES_ROLE_OTHER)
		return;
	run_start = s->waker_run ? 0 : s->ts;
	s->waker_run = 0;
	send_other(prev, next, ES_TR_HELD, bpf_get_smp_processor_id(), run_start, ES_ST_OFF + left,
		   now);
}

/* tp_btf flavour: typed pointers, task local storage. */

static __always_inline struct es_task_sched *btf_state(struct task_struct *t)
{
	return bpf_task_storage_get(&task_sched, t, NULL, BPF_LOCAL_STORAGE_GET_F_CREATE);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(es_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 now = bpf_ktime_get_ns(), next_blocked = 0, prev_blocked = 0, prev_off = 0;
	struct es_task_sched *s, *ns = next->pid ? btf_state(next) : NULL;
	unsigned int state;

	if (prev->pid) {
		state = sched_switch_has_prev_state ? (unsigned int)ctx[3] : task_state(prev);
		s = btf_state(prev);
		if (s) {
			__u64 sum = prev->se.sum_exec_runtime;
			__u64 prev_sum = prev->se.prev_sum_exec_runtime;
			bool tr = trace_on;
			__u64 began = missed_run(s, prev->pid, prev->tgid, sum, prev_sum, now, tr);

			/* A block whose switch-in went unseen: walked when prev blocks again. */
			if (switch_hook_min_ns) {
				late_block_note(&s->late, s->block_ts, began, switch_hook_min_ns);
				prev_blocked = late_block_take(&s->late,
							       !preempt && state != ES_TASK_RUNNING,
							       &prev_off);
			}
			if (tr && ns)
				trace_held(s, prev, ns, next,
					   offcpu_reason(preempt, state, task_in_iowait(prev)), now);
			switch_out(s, prev->tgid, preempt, state, task_in_iowait(prev), sum,
				   prev_sum, now);
			if (tr) {
				trace_state(s, prev->pid, prev->tgid, now);
				trace_waker_out(s, prev->pid, prev->tgid, now);
			}
		}
	}
	s = ns;
	if (s) {
		switch_in(s, next->tgid, now);
		if (trace_on)
			trace_state(s, next->pid, next->tgid, now);
		if (switch_hook_min_ns && s->block_ts) {
			__u64 blocked = now > s->block_ts ? now - s->block_ts : 0;

			s->block_ts = 0;
			if (blocked >= switch_hook_min_ns)
				next_blocked = blocked;
		}
	}
	if (next_blocked || prev_blocked)
		switch_hook_call(ctx, next_blocked, prev_blocked, prev_off);
	return 0;
}

static __always_inline void btf_wakeup(struct task_struct *p)
{
	struct es_task_sched *s = btf_state(p);
	__u64 now = bpf_ktime_get_ns();

	if (s && wakeup(s, p->tgid, now) && trace_on)
		trace_state(s, p->pid, p->tgid, now);
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(es_wakeup, struct task_struct *p)
{
	btf_wakeup(p);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(es_wakeup_new, struct task_struct *p)
{
	btf_wakeup(p);
	return 0;
}

/*
 * Who woke a tracked thread, when the waker is not tracked: sched_waking
 * runs in the waker's context (sched_wakeup may run on the woken task's CPU,
 * from its IPI). Not attached with the others: user space attaches it while
 * a trace records and destroys the link when it stops
 * (user/sched/sched_trace.c), so the host pays nothing for it otherwise;
 * sched_waking fires on every wakeup, a gate tested inside would still cost
 * a program run each.
 *
 * In task context only: a wakeup from a hard IRQ, an NMI or a softirq has
 * no waker, whatever task it interrupted (this loses loopback TCP, whose
 * receiver is woken from the softirq the sender runs). The preempt count
 * would say so, but it is a per-CPU variable, a ksym this kernel
 * (no CONFIG_KALLSYMS_ALL) cannot resolve. Two things say it instead:
 *
 *   - the stack: an IRQ, softirq or NMI that interrupts the kernel runs on a
 *     stack of its own (x86-64, arm64), so the program runs on current's
 *     stack only in task context. Its frame pointer is read as a number by a
 *     32-bit move, which the verifier allows a loader with CAP_PERFMON
 *     (which tp_btf needs anyway); 32 bits tell whether it is within
 *     THREAD_SIZE of current->stack. A kernel with bigger stacks (KASAN's
 *     32 KiB) would lose wakeups, never take one from an IRQ;
 *   - the registers saved at kernel entry: an IRQ that interrupts user mode
 *     stays on the task's stack, but its entry saved orig_ax -1 (x86-64;
 *     arm64's syscallno: NO_SYSCALL) where a syscall saved its number (a
 *     kernel thread's are zero). This also loses the few wakeups made on the
 *     way back to user mode after an IRQ or a fault (a ptrace stop's).
 */
#define ES_THREAD_SIZE (16u << 10)

static __always_inline bool in_task_ctx(struct task_struct *cur)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(cur);
	__u32 base = (__u32)(unsigned long)cur->stack;
	__u64 fp;

	asm volatile("w0 = w10; %0 = r0" : "=r"(fp) : : "r0");
	if ((__u32)fp - base >= ES_THREAD_SIZE || !regs)
		return false;
#if defined(__TARGET_ARCH_x86)
	return (long)regs->orig_ax != -1;
#elif defined(__TARGET_ARCH_arm64)
	return regs->syscallno != -1;
#else
	return false;
#endif
}

/*
 * The waker's run goes with its first wakeup in it (Perfetto draws a wakeup
 * from the waker's running state): its start, from how long it ran since
 * its switch-in, as missed_run; its switch-out sends its end.
 */
static __always_inline __u64 waker_run_start(struct task_struct *cur, __u64 now)
{
	struct es_task_sched *s = btf_state(cur);
	__u64 run = cur->se.prev_sum_exec_runtime + 1, start;

	if (!s || s->waker_run == run)
		return 0;
	s->waker_run = run;
	/* 0 says "sent already": a start not known is now. */
	start = run_began(cur->se.sum_exec_runtime, cur->se.prev_sum_exec_runtime, now, 0);
	return start ? start : now;
}

SEC("tp_btf/sched_waking")
int BPF_PROG(es_waking, struct task_struct *p)
{
	struct task_struct *cur = bpf_get_current_task_btf();
	__u64 now;

	if (!cur->pid || !in_task_ctx(cur) || worker_slot(p->tgid) == ES_ROLE_OTHER ||
	    worker_slot(cur->tgid) != ES_ROLE_OTHER)
		return 0;
	now = bpf_ktime_get_ns();
	send_other(cur, p, ES_TR_WAKING, p->wake_cpu, waker_run_start(cur, now), 0, now);
	return 0;
}

/*
 * The interval task t has open at scrape, one record each, charged to the
 * slot its close would charge (slot_of). Skips tasks without an interval.
 */
SEC("iter/task")
int es_sched_open_iter(struct bpf_iter__task *ctx)
{
	struct task_struct *t = ctx->task;
	struct es_sched_open rec = {};
	struct es_task_sched *s;
	__u64 now, ts;

	if (!t)
		return 0;
	s = bpf_task_storage_get(&task_sched, t, NULL, 0);
	if (!s)
		return 0;
	/* Racing a switch on another CPU: one load each, checked together. */
	rec.state = s->state;
	ts = s->ts;
	now = bpf_ktime_get_ns();
	if (!ts || now < ts || rec.state < ES_ST_ONCPU || rec.state >= ES_ST_OFF + ES_OFF_COUNT)
		return 0;
	rec.iodev = s->iodev;
	if (!slot_of(s, t->tgid, &rec.slot))
		return 0;
	/* On a CPU with its switch-in missed (see missed_run): split as its switch-out will. */
	if (rec.state != ES_ST_ONCPU && t->on_cpu) {
		__u64 start = run_began(t->se.sum_exec_runtime, t->se.prev_sum_exec_runtime, now, ts);

		rec.ns = start - ts;
		if (rec.ns)
			bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
		rec.state = ES_ST_ONCPU;
		ts = start;
	}
	/* A run as switch_out will charge it (sum lags by a tick at most: caught up there). */
	if (rec.state == ES_ST_ONCPU)
		rec.ns = run_cpu(t->se.sum_exec_runtime, t->se.prev_sum_exec_runtime, now, ts);
	else
		rec.ns = now - ts;
	bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	return 0;
}

/* raw_tp flavour: probed reads, state in an LRU hash keyed by pid. */

static __always_inline struct es_task_sched *raw_state(__u32 pid)
{
	static const struct es_task_sched fresh = {};

	return es_lookup_or_init(&task_sched_by_pid, &pid, &fresh, ES_MAP_TASK_SCHED_BY_PID);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(es_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 now = bpf_ktime_get_ns();
	__u32 pid = BPF_CORE_READ(prev, pid);
	unsigned int state;
	struct es_task_sched *s;

	if (pid) {
		state = sched_switch_has_prev_state ? (unsigned int)ctx[3] : task_state(prev);
		s = raw_state(pid);
		if (s) {
			__u64 sum = BPF_CORE_READ(prev, se.sum_exec_runtime);
			__u64 prev_sum = BPF_CORE_READ(prev, se.prev_sum_exec_runtime);
			bool tr = trace_on;

			missed_run(s, pid, BPF_CORE_READ(prev, tgid), sum, prev_sum, now, tr);
			switch_out(s, BPF_CORE_READ(prev, tgid), preempt, state,
				   task_in_iowait_probed(prev), sum, prev_sum, now);
			if (tr)
				trace_state(s, pid, s->tgid, now);
		}
		/*
		 * Its last switch: the state goes with the task (task storage
		 * does that itself), or a task reusing the pid would inherit
		 * "off since" and count the time between as its own.
		 */
		if (state & ES_TASK_DEAD)
			bpf_map_delete_elem(&task_sched_by_pid, &pid);
	}
	pid = BPF_CORE_READ(next, pid);
	if (pid) {
		s = raw_state(pid);
		if (s) {
			switch_in(s, BPF_CORE_READ(next, tgid), now);
			if (trace_on)
				trace_state(s, pid, s->tgid, now);
		}
	}
	return 0;
}

static __always_inline void raw_wakeup(struct task_struct *p)
{
	__u32 pid = BPF_CORE_READ(p, pid);
	struct es_task_sched *s = raw_state(pid);
	__u64 now = bpf_ktime_get_ns();

	if (s && wakeup(s, BPF_CORE_READ(p, tgid), now) && trace_on)
		trace_state(s, pid, s->tgid, now);
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(es_wakeup_raw, struct task_struct *p)
{
	raw_wakeup(p);
	return 0;
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(es_wakeup_new_r, struct task_struct *p)
{
	raw_wakeup(p);
	return 0;
}
