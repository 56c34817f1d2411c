/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What PostgreSQL did for each client process on this host: written by
 * bpf/pg.bpf.c when a statement of a backend whose client it knows ends,
 * read by bpf/requests.bpf.c at a request's start and end (the request's
 * "pg" time and statement count) and by user/requests/ for the statements
 * of a slow request. Fixed-width types only, no includes.
 */
#ifndef ERPSCOPE_BPF_PG_CLIENT_H
#define ERPSCOPE_BPF_PG_CLIENT_H

/* Client processes followed at once (an LRU: exited ones age out). */
#define ES_PG_CLIENTS_MAX 4096
/* The last statements of a client kept, for a slow request's top statements. */
#define ES_PG_CLIENT_RECENT 64

struct es_pg_client_stmt {
	__u64 fp;     /* the statement's fingerprint */
	__u64 dur_ns; /* as the backend timed it */
	__u64 end_ns; /* bpf_ktime_get_ns() when it ended */
};

struct es_pg_client {
	__u64 ns;    /* statements' time, in all; only grows */
	__u64 stmts; /* statements, in all */
	__u64 next;  /* statements recorded in recent[]: the next goes at next % RECENT */
	struct es_pg_client_stmt recent[ES_PG_CLIENT_RECENT];
};

#endif
