// SPDX-License-Identifier: GPL-2.0
/*
 * Wall-clock steps against PostgreSQL's statement stamps (bpf/pg_clock.h,
 * the code the kernel runs): a step is seen, drift is not, and a statement
 * whose stamp may predate the step is not timed, whichever way the clock
 * went; the others are timed exactly.
 */
#include <stdint.h>
#include <linux/types.h>

#include "check.h"
#include "pg/pg.h"

#define MS 1000000ll
#define S (1000 * MS)

/* Wall clock = monotonic + this, before any step (some date in 2025). */
static const __s64 OFF = 1750000000 * S;

/* A statement's stamp: its true monotonic start read on the wall clock
 * whose offset was off then. */
static __s64 stamp(__s64 mono, __s64 off)
{
	return mono + off;
}

static void test_no_step(void)
{
	struct es_pg_clock c = { 0 };
	__u64 now = 100 * S;

	CHECK_INT(es_pg_clock_update(&c, OFF, 10 * S), 0); /* the first reading */
	/* NTP slewing at 500 ppm moves the offset 50 us per 100 ms: no step. */
	CHECK_INT(es_pg_clock_update(&c, OFF + 50000, 10 * S + 100 * MS), 0);
	CHECK_INT(es_pg_clock_update(&c, OFF + 100000, 10 * S + 200 * MS), 0);
	CHECK_INT(c.step_ns, 0);
	/* Started 1 s ago: timed to the ns. */
	CHECK_INT(es_pg_stamp_to_mono(&c, stamp(now - S, c.off_ns), now, 0), now - S);
	/* In the future by more than the tolerance: refused. */
	CHECK_INT(es_pg_stamp_to_mono(&c, stamp(now + 2 * MS, c.off_ns), now, 0), 0);
	CHECK_INT(es_pg_stamp_to_mono(&c, stamp(now, c.off_ns), now, 0), now);
	/* Before the epoch of the monotonic clock: refused. */
	CHECK_INT(es_pg_stamp_to_mono(&c, OFF - S, now, 0), 0);
}

/*
 * A statement starts at 50 s, the clock steps by delta at 50.3 s, user space
 * sees it at 50.35 s, the statement ends at 51 s. Without the step record it
 * would be converted with the new offset: 1 s + delta long (3 s for +2 s, a
 * negative one, clamped to 0, for -2 s).
 */
static void test_step(__s64 delta)
{
	struct es_pg_clock c = { 0 };
	__s64 start = 50 * S, seen = start + 350 * MS;
	__u64 end = 51 * S;
	__s64 st = stamp(start, OFF);

	es_pg_clock_update(&c, OFF, 1 * S);
	CHECK_INT(es_pg_clock_update(&c, OFF + 5 * MS / 10, start + 250 * MS), 0);
	CHECK_INT(es_pg_clock_update(&c, OFF + delta, seen), 1);
	CHECK_INT(c.prev_off_ns, OFF + 5 * MS / 10);
	CHECK_INT(c.off_ns, OFF + delta);
	CHECK_INT(c.step_ns, seen);
	/* What the old code computed: a false duration of 1 s + delta. */
	CHECK_INT((__s64)end - (st - c.off_ns), S + delta);
	/* Now: not timed. */
	CHECK_INT(es_pg_stamp_to_mono(&c, st, end, 0), 0);
	/* Even when its backend's previous statement ended just before the
	 * step was seen. */
	CHECK_INT(es_pg_stamp_to_mono(&c, st, end, seen - MS), 0);
	/* Stamped after the step, in the new clock: timed exactly once clear
	 * of it by more than the step (either offset puts it after). */
	__s64 later = seen + (delta < 0 ? -delta : delta) + MS;

	CHECK_INT(es_pg_stamp_to_mono(&c, stamp(later, OFF + delta), later + S, 0), later);
	/* Steady again: no new step, the record stays. */
	CHECK_INT(es_pg_clock_update(&c, OFF + delta, seen + 100 * MS), 0);
	CHECK_INT(c.step_ns, seen);
}

/*
 * A step back by an hour: for an hour after it, wall-clock values repeat,
 * so a stamp alone cannot say which side of the step it is from. A backend
 * that finished a statement after the step was seen started this one after
 * it: timed. Its first statement after the step is not.
 */
static void test_step_back_hour(void)
{
	struct es_pg_clock c = { 0 };
	__s64 hour = 3600 * S, seen = 100 * S, start = seen + 600 * S;

	es_pg_clock_update(&c, OFF, 50 * S);
	CHECK_INT(es_pg_clock_update(&c, OFF - hour, seen), 1);
	CHECK_INT(es_pg_stamp_to_mono(&c, stamp(start, OFF - hour), start + S, 0), 0);
	CHECK_INT(es_pg_stamp_to_mono(&c, stamp(start, OFF - hour), start + S, seen - S), 0);
	CHECK_INT(es_pg_stamp_to_mono(&c, stamp(start, OFF - hour), start + S, start - MS), start);
	/* An hour on, no doubt left: timed without help. */
	CHECK_INT(es_pg_stamp_to_mono(&c, stamp(seen + hour + S, OFF - hour), seen + hour + 2 * S,
				      0),
		  seen + hour + S);
	/* A statement across the step stays untimed whatever its backend did. */
	CHECK_INT(es_pg_stamp_to_mono(&c, stamp(seen - S, OFF), seen + S, seen - 2 * S), 0);
}

/* +2 s and -2 s within one 100 ms refresh cancel out: nothing to see, and
 * a stamp from before both is converted right. */
static void test_step_and_back(void)
{
	struct es_pg_clock c = { 0 };

	es_pg_clock_update(&c, OFF, 1 * S);
	CHECK_INT(es_pg_clock_update(&c, OFF, 1 * S + 100 * MS), 0);
	CHECK_INT(es_pg_stamp_to_mono(&c, stamp(900 * MS, OFF), 2 * S, 0), 900 * MS);
}

int main(void)
{
	test_no_step();
	test_step(2 * S);
	test_step(-2 * S);
	test_step(5 * MS);
	test_step(-5 * MS);
	test_step_and_back();
	test_step_back_hour();
	return check_summary("test_pg_clock");
}
