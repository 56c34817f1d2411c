// SPDX-License-Identifier: GPL-2.0
/*
 * Window quantiles (user/pg/pg_window.c): a statement that ran at 50 ms for
 * hours and at 300 ms for the last minute has a lifetime p50 of 50 ms and a
 * window p50 of 300 ms; old calls leave the window slot by slot; a late
 * tick, a bin that goes down and counts past 2^32 are handled.
 */
#include <stdint.h>
#include <string.h>
#include <linux/types.h>

#include "check.h"
#include "pg/pg.h"

#define MS 1000000ull

static unsigned int bin_of(uint64_t ns)
{
	for (unsigned int b = 0; b < ES_PG_FINE_BINS; b++) {
		uint64_t lo, hi;

		pg_fine_bounds(b, &lo, &hi);
		if (ns >= lo && ns < hi)
			return b;
	}
	return ES_PG_FINE_BINS - 1;
}

static int near(double got, double want, double rel)
{
	double d = got - want;

	return (d < 0 ? -d : d) <= want * rel;
}

/* 5 s window: ten 500 ms slots. */
static void test_regression(void)
{
	static struct pg_win w;
	uint64_t cum[ES_PG_FINE_BINS] = { 0 }, out[ES_PG_FINE_BINS];
	const uint64_t slot = 500, span = 5000;
	uint64_t now = 1000000, calls;
	unsigned int fast = bin_of(50 * MS), slow = bin_of(300 * MS);

	cum[fast] = 1000000; /* hours of history before the window began */
	pg_win_init(&w, cum, now);
	/* 20 s of 50 ms calls, 10 a slot, then 3 s of 300 ms calls, 2 a slot. */
	for (int i = 0; i < 40; i++) {
		now += slot;
		cum[fast] += 10;
		pg_win_advance(&w, cum, now, slot);
	}
	calls = pg_win_bins(&w, cum, span, slot, out);
	CHECK_INT(calls, 90); /* 9 closed slots, the current one empty */
	CHECK(near(pg_fine_quantile(out, ES_PG_FINE_BINS, 0.5, 0, 51 * MS), 0.05, 0.1));
	for (int i = 0; i < 6; i++) {
		now += slot;
		cum[slow] += 2;
		pg_win_advance(&w, cum, now, slot);
	}
	cum[slow] += 1; /* in the current slot */
	calls = pg_win_bins(&w, cum, span, slot, out);
	CHECK_INT(calls, 3 * 10 + 6 * 2 + 1);
	CHECK_INT(out[slow], 13);
	/* Lifetime: the million fast calls. Window: 13 of 43 slow, so p50 fast... */
	CHECK(near(pg_fine_quantile(cum, ES_PG_FINE_BINS, 0.5, 0, 301 * MS), 0.05, 0.1));
	CHECK(near(pg_fine_quantile(out, ES_PG_FINE_BINS, 0.95, 0, 301 * MS), 0.3, 0.1));
	/* ... and 3 slots on, only slow calls are left in it. */
	for (int i = 0; i < 3; i++) {
		now += slot;
		cum[slow] += 2;
		pg_win_advance(&w, cum, now, slot);
	}
	calls = pg_win_bins(&w, cum, span, slot, out);
	CHECK_INT(calls, 8 * 2 + 3); /* the slot that had the 1 more closed with 3 */
	CHECK_INT(out[fast], 0);
	CHECK(near(pg_fine_quantile(out, ES_PG_FINE_BINS, 0.5, 0, 301 * MS), 0.3, 0.1));
	/* A shorter span: the current slot and the newest closed one. */
	cum[slow] += 1;
	CHECK_INT(pg_win_bins(&w, cum, 1000, slot, out), 3);
	CHECK_INT(pg_win_bins(&w, cum, 1, slot, out), 1);
	/* A longer one is capped at the window. */
	CHECK_INT(pg_win_bins(&w, cum, 60000, slot, out), 20);
}

/* A tick late by 3 slots: the gain is in the newest, two empty before it. */
static void test_late_tick(void)
{
	static struct pg_win w;
	uint64_t cum[ES_PG_FINE_BINS] = { 0 }, out[ES_PG_FINE_BINS];
	unsigned int b = bin_of(MS);

	pg_win_init(&w, cum, 0);
	cum[b] = 7;
	pg_win_advance(&w, cum, 1600, 500); /* slots ending at 500, 1000, 1500 */
	CHECK_INT(w.slot_start_ms, 1500);
	CHECK_INT(pg_win_bins(&w, cum, 1000, 500, out), 7);
	CHECK_INT(pg_win_bins(&w, cum, 500, 500, out), 0);
	/* Before a slot ends nothing moves. */
	cum[b] = 9;
	pg_win_advance(&w, cum, 1999, 500);
	CHECK_INT(w.slot_start_ms, 1500);
	CHECK_INT(pg_win_bins(&w, cum, 500, 500, out), 2);
	/* Eleven slots late: what came since (2, when is unknown) is in the
	 * newest slot, the 7 before have left. */
	pg_win_advance(&w, cum, 1500 + 11 * 500, 500);
	CHECK_INT(pg_win_bins(&w, cum, 5000, 500, out), 2);
	CHECK_INT(pg_win_bins(&w, cum, 500, 500, out), 0);
	pg_win_advance(&w, cum, 1500 + 20 * 500, 500);
	CHECK_INT(pg_win_bins(&w, cum, 5000, 500, out), 0);
}

/* Counts moved to another record: a bin going down gains nothing. */
static void test_bin_down(void)
{
	static struct pg_win w;
	uint64_t cum[ES_PG_FINE_BINS] = { 0 }, out[ES_PG_FINE_BINS];

	cum[3] = 100;
	pg_win_init(&w, cum, 0);
	cum[3] = 40;
	cum[4] = 5;
	CHECK_INT(pg_win_bins(&w, cum, 5000, 500, out), 5);
	pg_win_advance(&w, cum, 500, 500);
	cum[3] = 41;
	CHECK_INT(pg_win_bins(&w, cum, 5000, 500, out), 6);
}

/* The kernel's bins are 64-bit: 2^32 calls in one bin on one CPU do not wrap. */
static void test_64bit(void)
{
	uint64_t fine[ES_PG_FINE_BINS] = { 0 };
	unsigned int fast = bin_of(50 * MS), slow = bin_of(300 * MS);

	CHECK_INT(sizeof(((struct es_pg_fine *)0)->fine[0]), 8);
	fine[fast] = 5000000000ull; /* past 2^32 */
	fine[slow] = 1000000000ull;
	CHECK(near(pg_fine_quantile(fine, ES_PG_FINE_BINS, 0.5, 0, 0), 0.05, 0.2));
	CHECK(pg_fine_quantile(fine, ES_PG_FINE_BINS, 0.99, 0, 0) > 0.25);
}

int main(void)
{
	test_regression();
	test_late_tick();
	test_bin_down();
	test_64bit();
	return check_summary("test_pg_window");
}
