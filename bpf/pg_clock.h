/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Wall-clock steps and PostgreSQL's statement stamps, shared by bpf/pg.bpf.c
 * and user space (user/pg/pg.c, tests/unit/test_pg_clock.c).
 *
 * In one-trap mode a statement's start is PostgreSQL's wall-clock stamp
 * minus CLOCK_REALTIME - CLOCK_MONOTONIC, an offset user space refreshes
 * every 100 ms. A clock step (settime, an NTP step) moves that offset: a
 * stamp taken on one side of it and converted with the offset of the other
 * makes a false slow statement or a zero duration. User space records each
 * step: the offset before it and when (monotonic) it was seen. A stamp that
 * may predate the step is not converted, unless the backend finished a
 * statement after the step was seen: then this one began after it too
 * (after a step back by X, a wall-clock value can be from either side of
 * it for X, so without that a step back of an hour would leave an hour of
 * statements untimed; with it, at most each backend's first one).
 */
#ifndef ERPSCOPE_PG_CLOCK_H
#define ERPSCOPE_PG_CLOCK_H

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* More than NTP slews in 100 ms (500 ppm: 50 us), less than any step. */
#define ES_PG_CLOCK_STEP_NS 1000000ll

struct es_pg_clock {
	__s64 off_ns; /* CLOCK_REALTIME - CLOCK_MONOTONIC now */
	__s64 prev_off_ns; /* the offset before the last step */
	__u64 step_ns; /* monotonic ns when the last step was seen; 0: none */
};

static __always_inline __s64 es_pg_abs(__s64 v)
{
	return v < 0 ? -v : v;
}

/*
 * The monotonic start of a statement stamped real_ns (wall clock, ns), or 0
 * when it cannot be trusted: converted with either offset it may have been
 * taken before the last step (so its side of the step is unknown), or it
 * lies in the future (a step not seen yet). after_ns: when the backend's
 * previous statement ended (monotonic; 0: unknown), which it began after.
 */
static __always_inline __u64 es_pg_stamp_to_mono(const struct es_pg_clock *c, __s64 real_ns,
						 __u64 now_ns, __u64 after_ns)
{
	__s64 start = real_ns - c->off_ns, before = real_ns - c->prev_off_ns;

	if (start <= 0)
		return 0;
	if (c->step_ns && after_ns <= c->step_ns &&
	    (start < (__s64)c->step_ns || before < (__s64)c->step_ns))
		return 0;
	if (start > (__s64)now_ns + ES_PG_CLOCK_STEP_NS)
		return 0;
	return (__u64)start;
}

/*
 * A new offset reading at monotonic mono_ns: returns 1 and records a step
 * when it moved by more than ES_PG_CLOCK_STEP_NS since the last reading.
 */
static __always_inline int es_pg_clock_update(struct es_pg_clock *c, __s64 off_ns, __u64 mono_ns)
{
	int step = c->off_ns && es_pg_abs(off_ns - c->off_ns) > ES_PG_CLOCK_STEP_NS;

	if (step) {
		c->prev_off_ns = c->off_ns;
		c->step_ns = mono_ns;
	}
	c->off_ns = off_ns;
	return step;
}

#endif
