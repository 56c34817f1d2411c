/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Histogram bucket search shared by the BPF programs and the unit tests:
 * buckets are exactly the exported le edges, so the kernel finds the first
 * edge >= v by binary search. No includes: callers provide __u32/__u64.
 */
#ifndef ERPSCOPE_BPF_HIST_H
#define ERPSCOPE_BPF_HIST_H

#define ES_HIST_MAX_EDGES 32 /* 2^ES_HIST_SEARCH_STEPS >= this + 1 */
#define ES_HIST_SEARCH_STEPS 6

/*
 * Returns i such that edges[i-1] < v <= edges[i], or n when v is above the
 * last edge (the +Inf bucket). edges must be sorted ascending; n <= max.
 */
static inline __u32 es_hist_bucket(const volatile __u64 *edges, __u32 n, __u32 max, __u64 v)
{
	__u32 lo = 0, hi = n < max ? n : max;

	for (int i = 0; i < ES_HIST_SEARCH_STEPS; i++) {
		__u32 mid;

		if (lo >= hi)
			break;
		mid = (lo + hi) / 2;
		if (mid >= max)
			break;
		if (v <= edges[mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

#endif
