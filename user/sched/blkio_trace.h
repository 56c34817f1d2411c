/* SPDX-License-Identifier: GPL-2.0 */
/* The blkio probe's trace events (user/sched/blkio_trace.c). */
#ifndef ERPSCOPE_BLKIO_TRACE_H
#define ERPSCOPE_BLKIO_TRACE_H

struct probe;
struct blkio_bpf;
struct blkio_trace;

/* Opens the blk_trace ring as p->rb and registers the kernel switch; NULL on failure. */
struct blkio_trace *blkio_trace_start(struct probe *p, struct blkio_bpf *skel);
void blkio_trace_stop(struct probe *p, struct blkio_trace *bt);

#endif
