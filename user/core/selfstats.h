/* SPDX-License-Identifier: GPL-2.0 */
/* erpscope's own metrics: build info, probe state, BPF program cost, drops. */
#ifndef ERPSCOPE_SELFSTATS_H
#define ERPSCOPE_SELFSTATS_H

struct erpscope;
struct expo;

/* Turns on the kernel's BPF run-time stats for as long as the fd is open. */
int selfstats_enable(struct erpscope *es);
void selfstats_collect(struct erpscope *es, struct expo *e);

#endif
