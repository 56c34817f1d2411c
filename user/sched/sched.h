/* SPDX-License-Identifier: GPL-2.0 */
/* What the sched probe knows of one thread, for GET /workers. */
#ifndef ERPSCOPE_SCHED_H
#define ERPSCOPE_SCHED_H

#include <stdint.h>
#include <linux/types.h>

struct erpscope;

/*
 * The state the scheduler tracepoints last put thread tid in: "running",
 * "runnable", "iowait", "blocked" or "sleeping", and since when (ns,
 * CLOCK_MONOTONIC). Returns 0, or -ENOENT when the sched probe is down or
 * has not seen the thread switch since it started.
 */
int sched_thread_state(struct erpscope *es, __u32 tid, const char **state, uint64_t *since_ns);

#endif
