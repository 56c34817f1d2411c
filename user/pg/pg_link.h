/* SPDX-License-Identifier: GPL-2.0 */
/* Backend -> client process on this host (user/pg/pg_link.c). */
#ifndef ERPSCOPE_PG_LINK_H
#define ERPSCOPE_PG_LINK_H

#include <stddef.h>
#include <linux/types.h>

#include "pg/pg.h"

/* A process that may be a client: a tracked worker. */
struct pg_cand {
	__u32 pid;
	enum es_role role;
	char worker[16];
};

struct pg_link_ctx;

/* One linking round over these candidates (kept by the caller until the end). */
struct pg_link_ctx *pg_link_begin(const struct pg_cand *cands, size_t n);
void pg_link_end(struct pg_link_ctx *x);

/*
 * Finds the client of backend pid. Returns 0 with c filled: PG_LINK_WORKER
 * (a candidate holds the peer socket), PG_LINK_LOCAL (the peer is on this
 * host, held by no candidate) or PG_LINK_REMOTE (with the address); or
 * -errno (-ENOENT: no connected socket found).
 */
int pg_link_client(struct pg_link_ctx *x, __u32 pid, struct pg_client *c);

struct es_pg_ev_link;
struct procs;

/*
 * The client the kernel reported at a backend's first statement, resolved
 * against the process table: a tracked worker, a local process, or a remote
 * address. Returns 0, or -ENOENT when the kernel could not tell (an inet
 * client on this host that connected before erpscope started): user space
 * looks at the sockets then.
 */
int pg_link_from_kernel(const struct procs *procs, const struct es_pg_ev_link *ev,
			struct pg_client *c);
/* Upgrades a local client to a worker once the table tracks its pid. */
void pg_link_refresh(const struct procs *procs, struct pg_client *c);

/* 0 when sock_diag can be opened (RestrictAddressFamilies= without
 * AF_NETLINK forbids it), else -errno: linking would fail on every round. */
int pg_link_available(void);

#endif
