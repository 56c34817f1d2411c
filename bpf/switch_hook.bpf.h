/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One program on sched_switch for the whole daemon. The sched probe's
 * es_switch already keeps, per task, when it went off-CPU; a task switched
 * in after a block of at least its switch_hook_min_ns is handed to the
 * program in switch_hook[0] (the Python probe's off-CPU walk) by tail call,
 * with how long it was blocked in switch_hook_arg. A second program on
 * every switch, with its own task storage, would cost every context switch
 * on the host its run and lookups to serve the few blocks worth a walk.
 *
 * Defined by both objects; user space loads sched's first and hands the
 * fds to the Python probe (bpf_map__reuse_fd), so there is one of each.
 */
#ifndef ERPSCOPE_SWITCH_HOOK_BPF_H
#define ERPSCOPE_SWITCH_HOOK_BPF_H

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} switch_hook SEC(".maps");

/*
 * What this switch hands the hook. A switch-in the kernel ran no program
 * for (the VM kernel the tests run on skips tracepoint programs while a
 * PID 1 thread is current, and at sched_switch that is the thread switched
 * from) leaves its block unwalked; es_switch finds that at a later
 * switch-out (missed_run) and hands the block over when the thread blocks
 * again (late_block_note, late_block_take in sched_run.bpf.h), to be
 * walked from its own context, which prev still is at sched_switch.
 */
struct es_switch_hook_arg {
	__u64 next_blocked; /* next comes back from a block this long; 0: none */
	__u64 prev_blocked; /* prev's unseen switch-in ended a block this long; 0: none */
	__u64 prev_off_ns;  /* when that block began */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct es_switch_hook_arg);
} switch_hook_arg SEC(".maps");

/* Tail-calls the hook; returns only when none is installed. */
static __always_inline void switch_hook_call(void *ctx, __u64 next_blocked, __u64 prev_blocked,
					     __u64 prev_off_ns)
{
	__u32 zero = 0;
	struct es_switch_hook_arg *arg = bpf_map_lookup_elem(&switch_hook_arg, &zero);

	if (!arg)
		return;
	arg->next_blocked = next_blocked;
	arg->prev_blocked = prev_blocked;
	arg->prev_off_ns = prev_off_ns;
	bpf_tail_call(ctx, &switch_hook, 0);
}

/* In the hook: what es_switch handed over, NULL if the lookup fails. */
static __always_inline const struct es_switch_hook_arg *switch_hook_args(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&switch_hook_arg, &zero);
}

#endif
