// SPDX-License-Identifier: GPL-2.0
/*
 * Quantiles from the kernel's fine bins (bpf/pg.h: ES_PG_FINE_SUB bins per
 * power of two of nanoseconds), linear inside a bin: the p50/p95/p99 of
 * /queries, within a quarter of an octave and never above the largest
 * observation nor below a bound on the smallest.
 */
#include <stdint.h>
#include <linux/types.h>

#include "pg/pg.h"

void pg_fine_bounds(unsigned int b, uint64_t *lo, uint64_t *hi)
{
	unsigned int lg, sub;

	if (b == 0) {
		*lo = 0;
		*hi = 1ULL << ES_PG_FINE_MIN_LOG2;
		return;
	}
	if (b >= ES_PG_FINE_BINS - 1) {
		*lo = 1ULL << (ES_PG_FINE_MAX_LOG2 + 1);
		*hi = UINT64_MAX;
		return;
	}
	lg = ES_PG_FINE_MIN_LOG2 + (b - 1) / ES_PG_FINE_SUB;
	sub = (b - 1) % ES_PG_FINE_SUB;
	*lo = (1ULL << lg) + (uint64_t)sub * (1ULL << (lg - ES_PG_FINE_SUB_BITS));
	*hi = *lo + (1ULL << (lg - ES_PG_FINE_SUB_BITS));
}

/*
 * A floor under the smallest of calls observations that sum to total_ns,
 * none above max_ns: the others add at most (calls - 1) x max_ns. Tight
 * when they cluster, as a statement's calls often do; 0 when it says nothing.
 */
uint64_t pg_min_bound(uint64_t calls, uint64_t total_ns, uint64_t max_ns)
{
	uint64_t others;

	if (!calls || !max_ns || calls - 1 > total_ns / max_ns)
		return 0;
	others = (calls - 1) * max_ns;
	return total_ns - others < max_ns ? total_ns - others : max_ns;
}

double pg_fine_quantile(const uint64_t *fine, unsigned int nbins, double q, uint64_t min_ns,
			uint64_t max_ns)
{
	uint64_t total = 0, cum = 0;
	double target;

	for (unsigned int b = 0; b < nbins; b++)
		total += fine[b];
	if (!total)
		return 0;
	target = q * (double)total;
	for (unsigned int b = 0; b < nbins; b++) {
		uint64_t lo, hi;

		if (!fine[b] || (double)(cum + fine[b]) < target) {
			cum += fine[b];
			continue;
		}
		pg_fine_bounds(b, &lo, &hi);
		/*
		 * No observation lies above the largest: the bin holding it
		 * ends there (4 x 201.5 ms in [201 ms, 235 ms) have a p50 of
		 * ~201.5 ms, not the bin's middle, 218 ms).
		 */
		if (max_ns && max_ns >= lo && max_ns < hi)
			hi = max_ns;
		/*
		 * Nor below the smallest: 4 x 200.6 ms in [167.8 ms, 201.3 ms)
		 * had a p50 of 184 ms. Bins under min_ns are empty, so the bin
		 * holding it is the lowest.
		 */
		if (min_ns >= lo && min_ns < hi)
			lo = min_ns;
		if (hi == UINT64_MAX)
			return (double)lo / 1e9;
		return ((double)lo +
			((double)hi - (double)lo) * ((target - (double)cum) / (double)fine[b])) /
		       1e9;
	}
	return 0;
}
