// SPDX-License-Identifier: GPL-2.0
/*
 * /queries' senders (user/pg/pg_senders.c) at the kernel map's size:
 * 16,384 entries over 64 fingerprints x 128 workers x 2 (each worker's
 * backend seen once before its database was known, once after), worker w
 * sending w + 1 calls of each. Every row's top 8 is exactly workers
 * 127..120 with 2 x (w + 1) calls each; adding, sealing and asking all 64
 * rows costs under 50 ms of CPU (the quadratic merge it replaced took
 * seconds), and 16,384 more entries are dropped and counted past the cap.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "pg/pg_senders.h"

#define NFP 64
#define NW 128
#define DB 3

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fill(struct pg_senders *s, uint64_t fp0)
{
	for (int pass = 0; pass < 2; pass++) {
		for (uint64_t f = 0; f < NFP; f++) {
			for (int w = 0; w < NW; w++) {
				struct pg_sender x = { .fp = fp0 + f * 0x9e37, .calls = (uint64_t)w + 1 };

				x.db = pass ? DB : PG_SENDER_ANY_DB;
				snprintf(x.role, sizeof(x.role), "odoo_http");
				snprintf(x.worker, sizeof(x.worker), "%d", 1000 + w);
				pg_senders_add(s, &x);
			}
		}
	}
}

int main(void)
{
	struct pg_senders s = { .max = 16384 };
	struct pg_sender top[8];
	bool exact = true;
	double t0, spent;
	size_t n = 0;

	t0 = cpu_s();
	fill(&s, 1);
	CHECK_INT((int)s.n, 16384);
	pg_senders_seal(&s);
	for (uint64_t f = 0; f < NFP; f++) {
		n = pg_senders_of(&s, 1 + f * 0x9e37, DB, top, 8);
		exact &= n == 8;
		for (size_t k = 0; k < n; k++) {
			char want[16];

			snprintf(want, sizeof(want), "%d", 1000 + NW - 1 - (int)k);
			exact &= !strcmp(top[k].worker, want) && top[k].calls == 2 * (uint64_t)(NW - k);
		}
	}
	spent = cpu_s() - t0;
	CHECK(exact);
	printf("16384 senders, 64 rows: %.1f ms of CPU\n", spent * 1e3);
	CHECK(spent < 0.050);
	/* Another database's row sees only the entries of unknown database. */
	n = pg_senders_of(&s, 1, DB + 1, top, 8);
	CHECK_INT((int)n, 8);
	CHECK(top[0].calls == NW);
	CHECK_INT((int)pg_senders_of(&s, 2, DB, top, 8), 0);
	/* Past the cap: dropped and counted, the kept ones unchanged. */
	pg_senders_free(&s);
	s.max = 16384;
	fill(&s, 1);
	fill(&s, 1u << 20);
	CHECK_INT((int)s.n, 16384);
	CHECK_INT((int)s.dropped, 16384);
	pg_senders_free(&s);
	return check_summary("test_pg_senders");
}
