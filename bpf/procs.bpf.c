// SPDX-License-Identifier: GPL-2.0
/*
 * Process lifecycle: tells user space when to look at /proc. Only what can
 * change a role is sent: every exec, forks of tracked processes (Odoo's
 * master forking a worker, the postmaster forking a backend) and exits of
 * tracked processes. Threads are never reported.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "procs.h"
#include "ringbuf.bpf.h"
#include "workers.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define PROC_EVENTS_SIZE (256 * 1024)

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, PROC_EVENTS_SIZE);
} proc_events SEC(".maps");

/* Events lost to a full ring buffer; user space rescans /proc when it rises. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} proc_drops SEC(".maps");

static __always_inline bool tracked(__u32 tgid)
{
	return bpf_map_lookup_elem(&workers, &tgid) != NULL;
}

static __always_inline void emit(__u32 type, __u32 pid, __u32 ppid, __u32 exit_code)
{
	struct es_proc_event *ev;
	__u32 zero = 0;
	__u64 *drops;

	ev = bpf_ringbuf_reserve(&proc_events, sizeof(*ev), 0);
	if (!ev) {
		drops = bpf_map_lookup_elem(&proc_drops, &zero);
		if (drops)
			*drops += 1;
		return;
	}
	ev->type = type;
	ev->pid = pid;
	ev->ppid = ppid;
	ev->exit_code = exit_code;
	ev->ts_ns = bpf_ktime_get_ns();
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	/* Forks are looked at 50 ms later anyway; an exec'd image may fork at once. */
	bpf_ringbuf_submit(ev, type == ES_PROC_EXEC ? 0 : es_rb_lazy(&proc_events, PROC_EVENTS_SIZE));
}

/* Runs in the parent: current's tgid is the parent process. */
static __always_inline void on_fork(__u32 child_pid, __u32 child_tgid)
{
	__u32 ptgid = bpf_get_current_pid_tgid() >> 32;

	if (child_pid != child_tgid || !tracked(ptgid))
		return;
	emit(ES_PROC_FORK, child_tgid, ptgid, 0);
}

static __always_inline void on_exec(void)
{
	emit(ES_PROC_EXEC, bpf_get_current_pid_tgid() >> 32, 0, 0);
}

/* Runs in the exiting thread; only the group leader of a tracked process. */
static __always_inline void on_exit(__u32 exit_code)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;

	if ((__u32)id != tgid || !tracked(tgid))
		return;
	emit(ES_PROC_EXIT, tgid, 0, exit_code);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(es_fork, struct task_struct *parent, struct task_struct *child)
{
	on_fork(child->pid, child->tgid);
	return 0;
}

SEC("raw_tp/sched_process_fork")
int BPF_PROG(es_fork_raw, struct task_struct *parent, struct task_struct *child)
{
	on_fork(BPF_CORE_READ(child, pid), BPF_CORE_READ(child, tgid));
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(es_exec)
{
	on_exec();
	return 0;
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(es_exec_raw)
{
	on_exec();
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(es_exit, struct task_struct *p)
{
	on_exit(p->exit_code);
	return 0;
}

SEC("raw_tp/sched_process_exit")
int BPF_PROG(es_exit_raw, struct task_struct *p)
{
	on_exit(BPF_CORE_READ(p, exit_code));
	return 0;
}
