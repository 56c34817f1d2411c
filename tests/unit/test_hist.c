// SPDX-License-Identifier: GPL-2.0
/* The in-kernel bucket search against a linear reference, on the real edges. */
#include <linux/types.h>
#include <stdint.h>

#include "check.h"
#include "../../bpf/hist.h"

static __u32 linear(const __u64 *edges, __u32 n, __u64 v)
{
	__u32 i = 0;

	while (i < n && v > edges[i])
		i++;
	return i;
}

int main(void)
{
	/* The runqueue latency edges, ns (user/sched/sched.c). */
	static const __u64 runq[] = { 10000,    25000,    50000,     100000,    250000,   500000,
				      1000000,  2500000,  5000000,   10000000,  25000000, 50000000,
				      100000000, 250000000, 500000000, 1000000000 };
	__u64 edges[ES_HIST_MAX_EDGES];
	__u32 n = sizeof(runq) / sizeof(runq[0]);

	/* Exactly on an edge counts in that edge's bucket (le is inclusive). */
	CHECK_INT(es_hist_bucket(runq, n, 24, 10000), 0);
	CHECK_INT(es_hist_bucket(runq, n, 24, 10001), 1);
	CHECK_INT(es_hist_bucket(runq, n, 24, 0), 0);
	CHECK_INT(es_hist_bucket(runq, n, 24, 1000000000), 15);
	CHECK_INT(es_hist_bucket(runq, n, 24, 1000000001), 16); /* +Inf */
	CHECK_INT(es_hist_bucket(runq, n, 24, UINT64_MAX), 16);

	/* Every edge count from 0 to the max, values around every edge. */
	for (__u32 cnt = 0; cnt <= ES_HIST_MAX_EDGES; cnt++) {
		int bad = 0;

		for (__u32 i = 0; i < cnt; i++)
			edges[i] = (i + 1) * 100;
		for (__u64 v = 0; v <= (cnt + 1) * 100 + 1; v++) {
			if (es_hist_bucket(edges, cnt, ES_HIST_MAX_EDGES, v) != linear(edges, cnt, v))
				bad++;
		}
		CHECK_INT(bad, 0);
	}
	/* n larger than the array bound is clamped, never read past max. */
	CHECK(es_hist_bucket(runq, 100, n, UINT64_MAX) == n);
	return check_summary("test_hist");
}
