/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The tcp probe's uprobe session on the C library's accept/select functions
 * (bpf/tcp.bpf.c, pool occupancy), kept on the processes of pool roles
 * only: attached to each such worker with its pid as it appears in the
 * process table, released when it goes. The tcp_pool poller drives it.
 */
#ifndef ERPSCOPE_TCP_POOL_ATTACH_H
#define ERPSCOPE_TCP_POOL_ATTACH_H

#include <stdint.h>

struct bpf_program;
struct erpscope;
struct expo;
struct procs;
struct tcp_pool_attach;

/*
 * Before load: prog (es_tcp_wait) is to be attached as a uprobe session.
 * -EOPNOTSUPP when the kernel has none: prog is then not loaded.
 */
int tcp_pool_attach_prepare(struct bpf_program *prog);
/*
 * After load. roles: bit r set for each pool role r. threads_fd: the
 * probe's threads map, whose entries of a worker go when it is detached.
 */
struct tcp_pool_attach *tcp_pool_attach_new(struct bpf_program *prog, uint32_t roles,
					    int threads_fd, unsigned int nslots);
/* Releases every link (waits for the kernel). */
void tcp_pool_attach_free(struct tcp_pool_attach *pa);
/* Follows the process table: attaches to new pool workers (a few per call), detaches gone ones. */
void tcp_pool_attach_sync(struct tcp_pool_attach *pa, const struct procs *procs);
/* erpscope_tcp_pool_processes_attached, erpscope_tcp_pool_attach_failures_total; none for NULL. */
void tcp_pool_attach_collect(const struct tcp_pool_attach *pa, struct expo *e);

/* The tcp probe's table when the probe is up (user/tcp/tcp.c), else NULL. */
struct tcp_pool_attach *tcp_probe_pool(struct erpscope *es);

#endif
