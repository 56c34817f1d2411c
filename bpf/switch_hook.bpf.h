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

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} switch_hook_arg SEC(".maps");

/* Tail-calls the hook; returns only when none is installed. */
static __always_inline void switch_hook_call(void *ctx, __u64 blocked_ns)
{
	__u32 zero = 0;
	__u64 *arg = bpf_map_lookup_elem(&switch_hook_arg, &zero);

	if (!arg)
		return;
	*arg = blocked_ns;
	bpf_tail_call(ctx, &switch_hook, 0);
}

/* In the hook: how long the switched-in task was blocked. */
static __always_inline __u64 switch_hook_blocked(void)
{
	__u32 zero = 0;
	__u64 *arg = bpf_map_lookup_elem(&switch_hook_arg, &zero);

	return arg ? *arg : 0;
}

#endif
