/* SPDX-License-Identifier: GPL-2.0 */
/* Contract between bpf/blkio.bpf.c and user/sched/blkio.c. No includes. */
#ifndef ERPSCOPE_BPF_BLKIO_H
#define ERPSCOPE_BPF_BLKIO_H

enum es_blk_op {
	ES_BLK_READ = 0,
	ES_BLK_WRITE,
	ES_BLK_FLUSH,
	ES_BLK_DISCARD,
	ES_BLK_OTHER,
	ES_BLK_OP_COUNT,
};

/* Latency edges (ns) live in rodata; at most this many (<= ES_HIST_MAX_EDGES). */
#define ES_BLK_MAX_EDGES 24

/* dev is the kernel's dev_t of the whole disk: major << 20 | minor. */
struct es_blk_hist_key {
	__u32 dev;
	__u32 op;
};

struct es_blk_hist {
	__u64 buckets[ES_BLK_MAX_EDGES + 1]; /* the last one is +Inf */
	__u64 sum_ns;
};

/* Who issued what: per device, op and worker slot. */
struct es_blk_io_key {
	__u32 dev;
	__u32 op;
	__u32 slot;
};

struct es_blk_io {
	__u64 ops;
	__u64 bytes;
};

/*
 * Untracked submitters one by one (slot ES_ROLE_OTHER: a backup, a copy,
 * the kernel's writeback), per device, in an LRU map: what the diagnose
 * rules name as a busy disk's top issuers.
 */
struct es_blk_other_key {
	__u32 dev;
	__u32 tgid;
};

struct es_blk_other {
	__u64 ops;
	__u64 bytes;
	char comm[16]; /* read in its own context, at the first request and every 16th; "" before */
};

/*
 * While a trace records (user space sets trace_on): each request at its
 * first issue and at its completion, on the blk_trace ring. The two share
 * key; user space pairs them (a completion can be lost, see README).
 */
enum { ES_BLK_TR_ISSUE = 1, ES_BLK_TR_DONE };

struct es_blk_trace_ev {
	__u64 key;      /* the request's address */
	__u64 start_ns; /* ISSUE: when it started (io_start or insert), 0: unknown */
	__u64 ts;       /* when issued / completed */
	__u32 kind;     /* ES_BLK_TR_* */
	__u32 tgid;     /* ISSUE: the submitter */
	__u32 tid;
	__u32 dev;
	__u32 op;
	__u32 bytes;
};

#define ES_BLK_TRACE_RING (1u << 20)

#endif
