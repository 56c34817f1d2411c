// SPDX-License-Identifier: GPL-2.0
/*
 * bpf/sched_run.bpf.h, the arithmetic the sched, Python and requests
 * probes share where a switch-in went unseen: when the current run began
 * (run_began), what CPU it used (run_cpu), and what becomes of the block
 * that run ended (late_block_note, late_block_take): kept across
 * preemptions, handed over once when the task blocks again, replaced by
 * one seen later.
 */
#include <stdbool.h>
#include <linux/types.h>

#include "check.h"
#include "../bpf/sched_run.bpf.h"

#define MS 1000000ull
#define S (1000 * MS)

static void test_run_began(void)
{
	/* 30 ms into a run at 10 s, blocked since 8 s: the run began at 9.97 s. */
	CHECK_INT(run_began(130 * MS, 100 * MS, 10 * S, 8 * S), 10 * S - 30 * MS);
	/* A class that never set prev_sum (sum <= prev_sum): unknown, since. */
	CHECK_INT(run_began(100 * MS, 100 * MS, 10 * S, 8 * S), 8 * S);
	CHECK_INT(run_began(50 * MS, 100 * MS, 10 * S, 8 * S), 8 * S);
	/* A run longer than the interval cannot be this run's: since. */
	CHECK_INT(run_began(5 * S, 1 * S, 10 * S, 8 * S), 8 * S);
	CHECK_INT(run_began(3 * S, 1 * S, 10 * S, 8 * S), 8 * S);
	/* The clock not past since: since. */
	CHECK_INT(run_began(130 * MS, 100 * MS, 8 * S, 8 * S), 8 * S);
}

static void test_run_cpu(void)
{
	/* The scheduler's 40 ms of a 50 ms stamp interval (10 ms stolen). */
	CHECK_INT(run_cpu(140 * MS, 100 * MS, 10 * S, 10 * S - 50 * MS), 40 * MS);
	/* More than the stamps: stale, the stamps' figure. */
	CHECK_INT(run_cpu(200 * MS, 100 * MS, 10 * S, 10 * S - 50 * MS), 50 * MS);
	/* prev_sum not set: the stamps'. */
	CHECK_INT(run_cpu(100 * MS, 100 * MS, 10 * S, 10 * S - 50 * MS), 50 * MS);
}

static void test_late_block(void)
{
	struct es_late_block l = { 0 };
	__u64 off = 0;

	/* No stamp, a block under the minimum, a run not after it: nothing kept. */
	late_block_note(&l, 0, 5 * S, 10 * MS);
	late_block_note(&l, 5 * S, 5 * S + 9 * MS, 10 * MS);
	late_block_note(&l, 5 * S, 5 * S, 10 * MS);
	late_block_note(&l, 5 * S, 4 * S, 10 * MS);
	CHECK_INT(l.ns, 0);
	CHECK_INT(late_block_take(&l, true, &off), 0);

	/* A 1 s block from 5 s: kept, not handed over at a preemption. */
	late_block_note(&l, 5 * S, 6 * S, 10 * MS);
	CHECK_INT(l.ns, 1 * S);
	CHECK_INT(late_block_take(&l, false, &off), 0);
	CHECK_INT(off, 0);
	CHECK_INT(late_block_take(&l, false, &off), 0);
	/* Handed over once, when the task blocks again. */
	CHECK_INT(late_block_take(&l, true, &off), 1 * S);
	CHECK_INT(off, 5 * S);
	CHECK_INT(late_block_take(&l, true, &off), 0);

	/* One found later, before the task blocked, replaces the first. */
	late_block_note(&l, 7 * S, 7 * S + 200 * MS, 10 * MS);
	late_block_note(&l, 8 * S, 8 * S + 300 * MS, 10 * MS);
	CHECK_INT(late_block_take(&l, true, &off), 300 * MS);
	CHECK_INT(off, 8 * S);

	/* Exactly the minimum is kept. */
	late_block_note(&l, 9 * S, 9 * S + 10 * MS, 10 * MS);
	CHECK_INT(late_block_take(&l, true, &off), 10 * MS);
}

int main(void)
{
	test_run_began();
	test_run_cpu();
	test_late_block();
	return check_summary("test_sched_run");
}
