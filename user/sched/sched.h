/* SPDX-License-Identifier: GPL-2.0 */
/* What the sched probe knows of one thread, for GET /workers. */
#ifndef ERPSCOPE_SCHED_H
#define ERPSCOPE_SCHED_H

#include <stdint.h>
#include <linux/types.h>

#include "../../bpf/sched.h"

struct erpscope;

/*
 * The state the scheduler tracepoints last put thread tid in: "running",
 * "runnable", "iowait", "blocked" or "sleeping", and since when (ns,
 * CLOCK_MONOTONIC). Returns 0, or -ENOENT when the sched probe is down or
 * has not seen the thread switch since it started.
 */
int sched_thread_state(struct erpscope *es, __u32 tid, const char **state, uint64_t *since_ns);

/*
 * Thread tid's time since the sched probe first saw it, by state: [ES_ACC_CPU]
 * on CPU, [1 + enum es_offcpu_reason] off; the interval open now included.
 * Returns 0, or -errno (-ENOENT: the probe is down or never saw it).
 */
int sched_thread_totals(struct erpscope *es, __u32 tid, uint64_t acc[ES_ACC_COUNT]);

#endif
