/* SPDX-License-Identifier: GPL-2.0 */
/*
 * When a task's current run on a CPU began, by the scheduler's own account:
 * CFS sets se.prev_sum_exec_runtime to se.sum_exec_runtime when it switches
 * the task in, and brings sum_exec_runtime up to date at each tick and
 * before sched_switch. Used where a switch-in went unseen (the VM kernel
 * skips tracepoint programs while a PID 1 thread is current) by the sched
 * probe's switch-out and scrape-time iterator and the requests probe; and
 * what becomes of the block such a switch-in ended (late_block_note,
 * late_block_take), for the sched probe's hook and the Python probe alone.
 */
#ifndef ERPSCOPE_SCHED_RUN_BPF_H
#define ERPSCOPE_SCHED_RUN_BPF_H

#include "sched.h"

/* The run's start (sum, prev_sum: the task's se fields), not before since; since if unknown. */
static __always_inline __u64 run_began(__u64 sum, __u64 prev_sum, __u64 now, __u64 since)
{
	__u64 ran = sum - prev_sum;

	if (sum <= prev_sum || now <= since || ran >= now - since)
		return since;
	return now - ran;
}

/*
 * CPU time of the run ending now, begun at since: the scheduler's own
 * account where it agrees (rq clock_task, which leaves out what the
 * hypervisor stole when paravirt steal accounting is on: a stamp
 * difference counted 49 ms of a 1.46 s spin the kernel never charged),
 * else the stamps'. Not every class sets prev_sum at a switch-in (RT does
 * not): a figure over the stamps' is stale and not used.
 */
static __always_inline __u64 run_cpu(__u64 sum, __u64 prev_sum, __u64 now, __u64 since)
{
	__u64 wall = now - since, ran = sum - prev_sum;

	if (sum <= prev_sum || ran > wall)
		return wall;
	return ran;
}

/*
 * A block begun at off (its stamp still set at a switch-out, so its
 * switch-in went unseen) that lasted until began, the run now ending's
 * start: kept when it is at least min long. One seen later replaces it.
 */
static __always_inline void late_block_note(struct es_late_block *l, __u64 off, __u64 began,
					    __u64 min)
{
	if (off && began > off && began - off >= min) {
		l->off = off;
		l->ns = began - off;
	}
}

/*
 * At a switch-out: the kept block's length (and *off its start) when the
 * task blocks of its own accord (blocks: not preempted, not runnable), for
 * its stack to be walked there, in its own context, where a loop of reads
 * or sleeps blocked before; else 0. A task preempted is amid other code,
 * not where it waits: the block stays.
 */
static __always_inline __u64 late_block_take(struct es_late_block *l, bool blocks, __u64 *off)
{
	__u64 ns = l->ns;

	if (!ns || !blocks)
		return 0;
	*off = l->off;
	l->ns = 0;
	return ns;
}

#endif
