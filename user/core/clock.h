/* SPDX-License-Identifier: GPL-2.0 */
#ifndef ERPSCOPE_CLOCK_H
#define ERPSCOPE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC, the clock bpf_ktime_get_ns() reads too. */
static inline uint64_t clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t clock_ms(void)
{
	return clock_ns() / 1000000ull;
}

#endif
