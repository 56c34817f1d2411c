/* SPDX-License-Identifier: GPL-2.0 */
/* What the sched probe knows of one thread, for GET /workers. */
#ifndef ERPSCOPE_SCHED_H
#define ERPSCOPE_SCHED_H

#include <stdint.h>
#include <linux/types.h>

#include "../../bpf/sched.h"
#include "../../bpf/procs.h"

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

/*
 * Each worker's iowait per block device (erpscope_iowait_seconds_total):
 * role, worker label, device name ("unknown" when none was seen), ns so far
 * (a sched_visitor's).
 */
typedef void (*sched_iowait_fn)(void *arg, enum es_role role, const char *worker,
				const char *device, uint64_t ns);

/*
 * What each tracked worker (or a role's overflow aggregate), and each
 * untracked task (role other, its pid as worker), issued to each block
 * device so far, all ops together (erpscope_disk_io_ops_total and
 * erpscope_disk_io_bytes_total, the untracked one by one): role, worker
 * label, comm ("" for an aggregate), device name. Returns 0, -ENODEV when
 * the blkio probe is down, or -ENOMEM.
 */
typedef void (*blkio_issuer_fn)(void *arg, enum es_role role, const char *worker,
				const char *comm, const char *device, uint64_t ops,
				uint64_t bytes);
int blkio_issuers_foreach(struct erpscope *es, blkio_issuer_fn fn, void *arg);

/*
 * Each worker's time on CPU and waiting for one so far (as
 * erpscope_cpu_seconds_total and erpscope_offcpu_seconds_total{reason="runqueue"}):
 * its accounting slot, role and pid (a sched_visitor's).
 */
typedef void (*sched_worker_fn)(void *arg, __u32 slot, enum es_role role, __u32 pid,
				uint64_t cpu_ns, uint64_t runq_ns);

/*
 * One read of the sched probe's maps, handed to each visitor set: its
 * iowait series, then its workers (a poller that wants both reads once).
 * 0, or -ENODEV when the sched probe is down.
 */
struct sched_visitor {
	sched_iowait_fn iowait;
	void *iowait_arg;
	sched_worker_fn worker;
	void *worker_arg;
};
int sched_foreach(struct erpscope *es, const struct sched_visitor *v);

#endif
