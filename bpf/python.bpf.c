// SPDX-License-Identifier: GPL-2.0
/*
 * Python stacks and GC pauses of the Python processes user space found
 * (py_procs: tgid -> where the interpreter keeps its thread states).
 *
 * CPU: a perf event per CPU samples whatever runs; a sample of a Python
 * process walks the interpreter's frame chain (thread state -> current
 * frame -> previous ...) and counts one for (tgid, stack).
 *
 * Each count is also keyed by the request the thread was serving
 * (req_serving, set by the requests probe: bpf/reqtag.bpf.h); an off-CPU
 * block only by one it served when the block began.
 *
 * Off-CPU: sched_switch notes when a Python thread blocks; when it is
 * switched back in after more than the threshold, its stack is walked on
 * the way back to user space: the stack it blocked in, since the blocking
 * call has not returned yet. The walk runs as a task_work queued on it or,
 * where the kernel refuses a (sleepable) task_work from a tracepoint
 * (offcpu_rseq), at its next rseq_update tracepoint, which fires in the
 * same return to user space. So no walk happens for short blocks or other
 * processes, and the walk reads the task's own memory from its own context.
 *
 * GC: the python:gc__start/gc__done USDT probes (builds that have them).
 *
 * Pointers read from the target are never trusted: every read may fail and
 * ends the walk (the stack is marked truncated); loops are bounded.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/usdt.bpf.h>

#include "core_fixes.bpf.h"
#include "hist.h"
#include "maps.bpf.h"
#include "procs.h"
#include "python.h"
#include "reqtag.bpf.h"
#include "sched_run.bpf.h"
#include "switch_hook.bpf.h"
#include "workers.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by user space before load. */
const volatile __u32 stack_depth = ES_PY_MAX_DEPTH;
const volatile __u64 offcpu_threshold_ns = 10000000;
const volatile __u64 gc_edges_ns[ES_PY_MAX_EDGES] = {};
const volatile __u32 gc_nedges = 0;
const volatile bool sched_switch_has_prev_state = true;
/* Off-CPU walks from rseq_update (es_py_resume), not task work. */
const volatile bool offcpu_rseq = false;
/* Set by user space while a trace records (user/python/py_trace.c). */
volatile __u32 trace_on;
/*
 * offcpu_rseq: threads whose py_task.walk is set. es_py_resume runs at
 * every return to user space on the host; while this is 0 (nearly always:
 * a walk follows a block of offcpu_threshold_ns) it returns on one load.
 */
volatile __u64 walks_pending;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, ES_PY_TRACE_RING);
} py_trace SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct es_py_proc);
} py_procs SEC(".maps");

/* Bumped by user space after each change of py_procs (see py_task). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} py_gen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct es_py_capture);
} py_capture SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct es_py_stack);
} py_stacks SEC(".maps");

/* User space takes each value with lookup-and-delete once a second. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct es_py_count_key);
	__type(value, __u64);
} py_counts SEC(".maps");

/*
 * [0]: CPU samples; [1]: blocks walked at sched_switch (walk_late), which a
 * sample's NMI may interrupt.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct es_py_stack);
} py_scratch SEC(".maps");

/*
 * Per task: is it a Python thread (cached against py_gen, so the common
 * case is one task-storage load per switch), and since when it is blocked.
 */
struct py_task {
	__u64 off_ts;
	__u32 gen;   /* py_gen + 1 when is_py was decided */
	__u32 is_py;
	__u32 walk;  /* offcpu_rseq: a walk waits in py_work */
	__u32 pad;
	struct es_late_block late; /* for walk_late */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct py_task);
} py_task SEC(".maps");

/* A pending off-CPU walk: task storage cannot hold a task_work, a hash can. */
struct py_work {
	__u64 blocked_ns;
	__u64 off_ns; /* when the block began */
	__u32 tgid;
	__u32 pad;
	struct bpf_task_work tw;
	struct es_py_stack st; /* the callback's own scratch: it may sleep */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, __u32); /* tid */
	__type(value, struct py_work);
} py_work SEC(".maps");

/*
 * Never written: the zeroed value new py_work entries start from. Plain
 * bytes, because the verifier refuses a source value whose type holds a
 * bpf_task_work, and the value is too big for the stack.
 */
struct py_work_bytes {
	char b[sizeof(struct py_work)];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct py_work_bytes);
} py_work_zero SEC(".maps");

struct gc_start {
	__u64 ts;
	__u32 gen;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); /* tid */
	__type(value, struct gc_start);
} py_gc_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); /* slot << 2 | generation */
	__type(value, struct es_py_gc);
} py_gc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ES_PY_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} py_stats SEC(".maps");

extern int bpf_task_work_schedule_resume_impl(struct task_struct *task, struct bpf_task_work *tw,
					      void *map__map,
					      int (*cb)(struct bpf_map *, void *, void *),
					      void *aux__prog) __ksym __weak;

static __always_inline void stat_inc(__u32 i)
{
	__u64 *v = bpf_map_lookup_elem(&py_stats, &i);

	if (v)
		*v += 1;
}

static __always_inline int read_ptr(__u64 *out, __u64 addr)
{
	if (!addr)
		return -1;
	return bpf_probe_read_user(out, sizeof(*out), (const void *)addr);
}

/*
 * The native thread id of thread state ts: its native_thread_id, or (3.10)
 * the tid in the struct pthread its thread_id points to. 0: unreadable.
 */
static __always_inline __u32 tstate_tid(const struct es_py_proc *pp, __u64 ts)
{
	__u64 v = 0;
	__u32 tid = 0;

	if (read_ptr(&v, ts + pp->off.ts_thread))
		return 0;
	if (pp->off.pthread_tid == ES_PY_NO_OFF)
		return (__u32)v;
	if (!v || bpf_probe_read_user(&tid, sizeof(tid), (const void *)(v + pp->off.pthread_tid)))
		return 0;
	return tid;
}

/* The thread state whose thread is tid, or 0. */
static __always_inline __u64 find_tstate(const struct es_py_proc *pp, __u32 tid)
{
	__u64 ts = 0;

	if (read_ptr(&ts, pp->tstate_head))
		return 0;
	for (int i = 0; i < ES_PY_MAX_THREADS && ts; i++) {
		__u32 t = tstate_tid(pp, ts);

		if (!t)
			return 0;
		if (t == tid)
			return ts;
		if (read_ptr(&ts, ts + pp->off.ts_next))
			return 0;
	}
	return 0;
}

/* The thread's innermost frame: through _PyCFrame on 3.11 and 3.12. */
static __always_inline int first_frame(const struct es_py_proc *pp, __u64 ts, __u64 *frame)
{
	if (read_ptr(frame, ts + pp->off.ts_frame))
		return -1;
	if (pp->off.cframe_current == ES_PY_NO_OFF)
		return 0;
	return read_ptr(frame, *frame + pp->off.cframe_current);
}

/*
 * 1 for a frame that is not a C-stack shim (3.12+: no code of its own), 0
 * for one. Without a branch: a branch per frame would double the paths the
 * verifier walks at each step of the walk.
 */
static __always_inline __u32 not_shim(const struct es_py_proc *pp, __u64 frame)
{
	__u8 owner = 0;
	__u32 x;

	bpf_probe_read_user(&owner, 1, (const void *)(frame + pp->off.frame_owner));
	x = (__u32)owner ^ pp->off.shim_owner;
	return (x | (0u - x)) >> 31;
}

static __always_inline void capture_args(const struct es_py_proc *pp, struct es_py_stack *st,
					 __u64 code, __u64 frame, __u32 d)
{
	struct es_py_capture *c = bpf_map_lookup_elem(&py_capture, &code);

	if (!c)
		return;
	for (int a = 0; a < ES_PY_ARGS_PER_FUNC; a++) {
		__u32 n = st->nargs;
		__u64 obj;

		if (c->idx[a] == ES_PY_NO_ARG || n >= ES_PY_MAX_ARGS)
			break;
		if (read_ptr(&obj, frame + pp->off.frame_localsplus + (__u64)c->idx[a] * 8))
			break;
		st->args[n & (ES_PY_MAX_ARGS - 1)].frame = d;
		st->args[n & (ES_PY_MAX_ARGS - 1)].arg = a;
		st->args[n & (ES_PY_MAX_ARGS - 1)].obj = obj;
		st->nargs = n + 1;
	}
}

/* One walk in progress, for walk_step. */
struct walk_ctx {
	const struct es_py_proc *pp;
	struct es_py_stack *st;
	__u64 frame; /* the next frame to read */
	__u64 h;     /* hash of what was read */
	__u32 d;     /* frames kept */
	__u32 pad;
};

/*
 * One frame, from bpf_loop: the verifier checks this body once, not once per
 * frame, whatever each version's layout makes of the branches. Shims take
 * turns too (the loop stays bounded): each is written where the next frame
 * goes, and d does not move past it. Returns 1 to stop.
 */
static long walk_step(__u64 i, void *arg)
{
	struct walk_ctx *c = arg;
	const struct es_py_proc *pp = c->pp;
	struct es_py_stack *st = c->st;
	__u64 frame = c->frame, code;
	__u32 d = c->d, keep;

	if (!frame || d >= stack_depth || d >= ES_PY_MAX_DEPTH)
		return 1;
	if (read_ptr(&code, frame + pp->off.frame_code)) {
		st->truncated = 1;
		return 1;
	}
	keep = not_shim(pp, frame);
	st->code[d & (ES_PY_MAX_DEPTH - 1)] = code;
	c->h = (c->h ^ (code & (0ull - keep))) * 0x100000001b3ull;
	capture_args(pp, st, code, frame, d);
	c->d = d + keep;
	if (read_ptr(&c->frame, frame + pp->off.frame_previous)) {
		st->truncated = 1;
		return 1;
	}
	return 0;
}

/*
 * Walks the current thread's frames into st (innermost first) and returns
 * a hash of what was read, or 0 when the thread has no Python frames.
 */
static __always_inline __u64 walk(const struct es_py_proc *pp, __u32 tid, struct es_py_stack *st)
{
	struct walk_ctx c = { .pp = pp, .st = st, .h = 0xcbf29ce484222325ull };
	__u64 ts, frame, h;
	__u32 d;

	st->depth = 0;
	st->nargs = 0;
	st->truncated = 0;
	ts = find_tstate(pp, tid);
	if (!ts) {
		stat_inc(ES_PY_STAT_NO_THREAD);
		return 0;
	}
	if (first_frame(pp, ts, &c.frame))
		return 0;
	bpf_loop(ES_PY_MAX_DEPTH + 8, walk_step, &c, 0);
	frame = c.frame;
	h = c.h;
	d = c.d < ES_PY_MAX_DEPTH ? c.d : ES_PY_MAX_DEPTH;
	if (frame && !st->truncated)
		st->truncated = 1; /* deeper than the limit */
	st->depth = d;
	if (!d)
		return 0;
	for (int a = 0; a < ES_PY_MAX_ARGS; a++) {
		if (a >= st->nargs)
			break;
		h = (h ^ st->args[a].obj ^ ((__u64)st->args[a].frame << 48)) * 0x100000001b3ull;
	}
	h ^= (__u64)d << 56 | st->truncated;
	if (st->truncated)
		stat_inc(ES_PY_STAT_TRUNCATED);
	return h ? h : 1;
}

/* req: the request the sample or block was part of (reqtag.bpf.h), 0: none. */
static __always_inline void count(__u32 tgid, __u32 tid, __u32 kind, __u64 id,
				  const struct es_py_stack *st, __u64 v, __u64 req)
{
	struct es_py_count_key k = { .tgid = tgid, .kind = kind, .stack_id = id, .req = req };
	__u64 *c;

	if (bpf_map_update_elem(&py_stacks, &id, st, BPF_NOEXIST) && !bpf_map_lookup_elem(&py_stacks, &id)) {
		stat_inc(ES_PY_STAT_MAP_FULL);
		return;
	}
	c = bpf_map_lookup_elem(&py_counts, &k);
	if (c) {
		__sync_fetch_and_add(c, v);
		return;
	}
	if (!bpf_map_update_elem(&py_counts, &k, &v, BPF_NOEXIST))
		return;
	c = bpf_map_lookup_elem(&py_counts, &k);
	if (c)
		__sync_fetch_and_add(c, v);
	else
		stat_inc(ES_PY_STAT_MAP_FULL);
}

/* The sample for a trace: its stack is in py_stacks (count() put it there). */
static __always_inline void trace_sample(__u32 tgid, __u32 tid, __u64 sid)
{
	struct es_py_sample_trace_ev *ev = bpf_ringbuf_reserve(&py_trace, sizeof(*ev), 0);

	if (!ev)
		return;
	ev->kind = ES_PY_TR_SAMPLE;
	ev->cpu = bpf_get_smp_processor_id();
	ev->ts = bpf_ktime_get_ns();
	ev->stack_id = sid;
	ev->tgid = tgid;
	ev->tid = tid;
	bpf_ringbuf_submit(ev, BPF_RB_NO_WAKEUP);
}

SEC("perf_event")
int es_py_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), sid;
	__u32 tgid = id >> 32, zero = 0;
	struct es_py_proc *pp;
	struct es_py_stack *st;

	pp = bpf_map_lookup_elem(&py_procs, &tgid);
	if (!pp)
		return 0;
	st = bpf_map_lookup_elem(&py_scratch, &zero);
	if (!st)
		return 0;
	stat_inc(ES_PY_STAT_SAMPLES);
	sid = walk(pp, (__u32)id, st);
	if (!sid)
		return 0;
	count(tgid, (__u32)id, ES_PY_CPU, sid, st, 1, req_serving_tag());
	if (trace_on)
		trace_sample(tgid, (__u32)id, sid);
	return 0;
}

/*
 * Walks the current thread (of process tgid, else nothing: returns false)
 * into st and counts a block of blocked ns that began at off_ns, from its
 * own context.
 */
static __always_inline bool offcpu_count(__u32 tgid, struct es_py_stack *st, __u64 blocked,
					 __u64 off_ns)
{
	__u64 id = bpf_get_current_pid_tgid(), sid;
	struct es_py_proc *pp;

	pp = bpf_map_lookup_elem(&py_procs, &tgid);
	if (!pp || tgid != id >> 32)
		return false;
	stat_inc(ES_PY_STAT_OFFCPU_WALKS);
	sid = walk(pp, (__u32)id, st);
	if (sid)
		count(tgid, (__u32)id, ES_PY_OFFCPU, sid, st, blocked, req_serving_block_tag(off_ns));
	return true;
}

/* The pending walk w of the current thread, from its own context. */
static __always_inline void offcpu_walk_now(struct py_work *w)
{
	offcpu_count(w->tgid, &w->st, w->blocked_ns, w->off_ns);
}

/*
 * A block of blocked ns from off_ns whose switch-in no program saw, found
 * at a later switch-out and walked when the thread (prev, still current)
 * blocks again, so its time is not lost. The stack is where the thread
 * blocks now; for one that blocks again in the same call (a loop of reads,
 * a sleep) that is the stack it blocked in before. Not at a preemption:
 * the thread is amid other code there, not waiting.
 */
static __always_inline void walk_late(__u32 tgid, __u64 blocked, __u64 off_ns)
{
	__u32 one = 1;
	struct es_py_stack *st = bpf_map_lookup_elem(&py_scratch, &one);

	if (st && offcpu_count(tgid, st, blocked, off_ns))
		stat_inc(ES_PY_STAT_OFFCPU_LATE);
}

static int offcpu_walk(struct bpf_map *map, void *key, void *value)
{
	offcpu_walk_now(value);
	return 0;
}

static __always_inline struct py_task *task_get(struct task_struct *t, bool create)
{
	struct py_task *pt;
	__u32 zero = 0, gen;
	__u64 *g;

	pt = bpf_task_storage_get(&py_task, t, NULL, create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
	if (!pt)
		return NULL;
	g = bpf_map_lookup_elem(&py_gen, &zero);
	gen = g ? (__u32)*g + 1 : 1;
	if (pt->gen != gen) {
		__u32 tgid = t->tgid;

		/*
		 * off_ts stays: a worker found while it is blocked (a cron job
		 * stuck in connect when erpscope starts) still gets its walk.
		 */
		pt->is_py = bpf_map_lookup_elem(&py_procs, &tgid) != NULL;
		pt->gen = gen;
	}
	return pt;
}

/*
 * A walk of t's stack at its return to user space, for a block of blocked
 * ns that ended at now. pt: t's py_task, needed only with offcpu_rseq.
 */
static __always_inline void queue_walk(struct task_struct *t, struct py_task *pt, __u64 blocked,
				       __u64 now)
{
	__u32 tid = t->pid, zero = 0;
	struct py_work_bytes *fresh;
	struct py_work *w;

	w = bpf_map_lookup_elem(&py_work, &tid);
	if (!w) {
		fresh = bpf_map_lookup_elem(&py_work_zero, &zero);
		if (!fresh)
			return;
		w = es_lookup_or_init(&py_work, &tid, fresh, ES_MAP_PY_WORK);
		if (!w)
			return;
	}
	w->blocked_ns = blocked;
	w->off_ns = now - blocked;
	w->tgid = t->tgid;
	/* A known constant: the verifier never sees the branch not taken. */
	if (offcpu_rseq) {
		if (!pt)
			return;
		if (pt->walk) {
			stat_inc(ES_PY_STAT_OFFCPU_BUSY);
			return;
		}
		pt->walk = 1;
		__sync_fetch_and_add(&walks_pending, 1);
		return;
	}
	if (bpf_task_work_schedule_resume_impl(t, &w->tw, &py_work, offcpu_walk, NULL))
		stat_inc(ES_PY_STAT_OFFCPU_BUSY);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(es_py_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 now = 0, late, late_off;
	struct py_task *pt;

	/*
	 * Every task's block start is noted, not only known Python threads':
	 * user space finds a worker some 100 ms after it starts, and one
	 * that blocks before that must not lose its first (or only) block.
	 */
	if (prev->pid) {
		pt = task_get(prev, true);
		if (pt) {
			unsigned int state = sched_switch_has_prev_state ? (unsigned int)ctx[3] :
									     task_state(prev);
			bool blocks = !preempt && state != ES_TASK_RUNNING;

			/* Still set: its switch-in went unseen; walked when it blocks again. */
			if (pt->is_py && pt->off_ts) {
				now = bpf_ktime_get_ns();
				late_block_note(&pt->late, pt->off_ts,
						run_began(prev->se.sum_exec_runtime,
							  prev->se.prev_sum_exec_runtime, now,
							  pt->off_ts),
						offcpu_threshold_ns);
			}
			late = late_block_take(&pt->late, blocks, &late_off);
			if (late)
				walk_late(prev->tgid, late, late_off);
			if (!blocks) {
				pt->off_ts = 0;
			} else {
				if (!now)
					now = bpf_ktime_get_ns();
				pt->off_ts = now;
			}
		}
	}
	if (!next->pid)
		return 0;
	pt = task_get(next, false);
	if (!pt || !pt->is_py || !pt->off_ts)
		return 0;
	if (!now)
		now = bpf_ktime_get_ns();
	if (now - pt->off_ts >= offcpu_threshold_ns &&
	    (offcpu_rseq || bpf_task_work_schedule_resume_impl))
		queue_walk(next, pt, now - pt->off_ts, now);
	pt->off_ts = 0;
	return 0;
}

/*
 * The same walk where the sched probe's es_switch runs: it tail-calls here
 * for a task switched in after a block of offcpu_threshold_ns or more, or
 * blocking again after such a block whose switch-in it did not see (see
 * bpf/switch_hook.bpf.h), and es_py_switch is not loaded. Rare enough to
 * look the process up each time.
 */
SEC("tp_btf/sched_switch")
int BPF_PROG(es_py_offcpu, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	const struct es_switch_hook_arg *a = switch_hook_args();
	__u32 tgid = next->tgid;
	struct py_task *pt = NULL;
	__u64 blocked;

	if (!a)
		return 0;
	blocked = a->next_blocked;
	if (a->prev_blocked)
		walk_late(prev->tgid, a->prev_blocked, a->prev_off_ns);
	if (!blocked || !bpf_map_lookup_elem(&py_procs, &tgid))
		return 0;
	if (offcpu_rseq) {
		pt = bpf_task_storage_get(&py_task, next, NULL, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (!pt)
			return 0;
	} else if (!bpf_task_work_schedule_resume_impl) {
		return 0;
	}
	queue_walk(next, pt, blocked, bpf_ktime_get_ns());
	return 0;
}

/*
 * offcpu_rseq: the walk queue_walk left pending, at the thread's return to
 * user space after it was switched in (rseq_update fires there for each
 * task that registered rseq: glibc 2.35+ does for every thread). Runs for
 * every such return on the host, so the common path is one load
 * (walks_pending), and a task-storage lookup while some walk is pending.
 */
SEC("tp_btf/rseq_update")
int BPF_PROG(es_py_resume, struct task_struct *t)
{
	struct py_task *pt;
	struct py_work *w;
	__u32 tid;

	if (!walks_pending)
		return 0;
	pt = bpf_task_storage_get(&py_task, t, NULL, 0);
	if (!pt || !pt->walk)
		return 0;
	pt->walk = 0;
	__sync_fetch_and_sub(&walks_pending, 1);
	tid = (__u32)bpf_get_current_pid_tgid();
	w = bpf_map_lookup_elem(&py_work, &tid);
	if (w)
		offcpu_walk_now(w);
	return 0;
}

/*
 * A thread's pending walk dies with it (deleting cancels the task work;
 * offcpu_rseq: it no longer counts in walks_pending).
 */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(es_py_exit, struct task_struct *t)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct py_task *pt;

	bpf_map_delete_elem(&py_work, &tid);
	/* Every exit on the host: no storage lookup while no walk is pending. */
	if (!offcpu_rseq || !walks_pending)
		return 0;
	pt = bpf_task_storage_get(&py_task, bpf_get_current_task_btf(), NULL, 0);
	if (pt && pt->walk) {
		pt->walk = 0;
		__sync_fetch_and_sub(&walks_pending, 1);
	}
	return 0;
}

SEC("usdt")
int BPF_USDT(es_py_gc_start, int generation)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct gc_start s = { .ts = bpf_ktime_get_ns(), .gen = (__u32)generation };

	bpf_map_update_elem(&py_gc_start, &tid, &s, BPF_ANY);
	return 0;
}

SEC("usdt")
int BPF_USDT(es_py_gc_done, long collected)
{
	__u64 id = bpf_get_current_pid_tgid(), now = bpf_ktime_get_ns(), dur;
	__u32 tid = (__u32)id, key, b;
	static const struct es_py_gc fresh = {};
	struct gc_start *s;
	struct es_py_gc *g;

	s = bpf_map_lookup_elem(&py_gc_start, &tid);
	if (!s)
		return 0;
	dur = now - s->ts;
	key = worker_slot(id >> 32) << 2 | (s->gen < ES_PY_GC_GENERATIONS ? s->gen : 2);
	bpf_map_delete_elem(&py_gc_start, &tid);
	g = es_lookup_or_init(&py_gc, &key, &fresh, ES_MAP_PY_GC);
	if (!g)
		return 0;
	b = es_hist_bucket(gc_edges_ns, gc_nedges, ES_PY_MAX_EDGES, dur);
	g->count++;
	g->sum_ns += dur;
	if (collected > 0)
		g->collected += collected;
	if (b > ES_PY_MAX_EDGES)
		b = ES_PY_MAX_EDGES;
	g->buckets[b]++;
	if (trace_on && key >> 2 != ES_ROLE_OTHER) {
		struct es_py_gc_trace_ev *ev = bpf_ringbuf_reserve(&py_trace, sizeof(*ev), 0);

		if (!ev)
			return 0;
		ev->kind = ES_PY_TR_GC;
		ev->pad0 = 0;
		ev->start_ns = now - dur;
		ev->end_ns = now;
		ev->tgid = id >> 32;
		ev->tid = tid;
		ev->generation = key & 3;
		ev->pad = 0;
		ev->collected = collected;
		bpf_ringbuf_submit(ev, BPF_RB_NO_WAKEUP);
	}
	return 0;
}
