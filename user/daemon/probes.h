/* SPDX-License-Identifier: GPL-2.0 */
/* The daemon's probe and poller tables: every capability's ops, in order. */
#ifndef ERPSCOPE_PROBES_H
#define ERPSCOPE_PROBES_H

struct probe_ops;
struct poller_ops;

extern const struct probe_ops *const probe_table[];
extern const unsigned int probe_table_len;

extern const struct probe_ops procs_probe_ops;
extern const struct probe_ops sched_probe_ops;
extern const struct probe_ops oom_probe_ops;
extern const struct probe_ops blkio_probe_ops;
extern const struct probe_ops tcp_probe_ops;
extern const struct probe_ops pg_probe_ops;
extern const struct probe_ops python_probe_ops;
extern const struct probe_ops requests_probe_ops;

extern const struct poller_ops *const poller_table[];
extern const unsigned int poller_table_len;

extern const struct poller_ops host_poller_ops;
extern const struct poller_ops memhistory_poller_ops;
extern const struct poller_ops tcp_poller_ops;
extern const struct poller_ops tcp_pool_poller_ops;
extern const struct poller_ops pg_poller_ops;
extern const struct poller_ops python_poller_ops;
extern const struct poller_ops requests_poller_ops;
extern const struct poller_ops cron_poller_ops;
extern const struct poller_ops gpu_poller_ops;
extern const struct poller_ops diagnose_poller_ops;
extern const struct poller_ops trace_poller_ops;

#endif
