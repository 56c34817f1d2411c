/* SPDX-License-Identifier: GPL-2.0 */
/* The sched probe's trace events (user/sched/sched_trace.c). */
#ifndef ERPSCOPE_SCHED_TRACE_H
#define ERPSCOPE_SCHED_TRACE_H

#include <stdint.h>

struct probe;
struct erpscope;
struct sched_bpf;

/* Opens the sched_trace ring as p->rb and registers the kernel switch. */
int sched_trace_start(struct probe *p, struct sched_bpf *skel);
void sched_trace_stop(struct probe *p, struct sched_bpf *skel);
/* The probe's skeleton (sched.c). */
struct sched_bpf *sched_trace_skel(struct probe *p);
/* Events the kernel could not put on a full ring, since start. */
uint64_t sched_trace_drops(struct erpscope *es);

#endif
