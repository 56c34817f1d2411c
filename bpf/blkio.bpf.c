// SPDX-License-Identifier: GPL-2.0
/*
 * Block I/O: per device and op, queue time (insert to issue) and device time
 * (issue to complete) histograms; per device, op and worker, ops and bytes
 * attributed to the process that submitted the request. Completion runs in
 * interrupt context, so the submitter is remembered when the request is
 * inserted (or issued directly, without a scheduler) in its context.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "blkio.h"
#include "core_fixes.bpf.h"
#include "hist.h"
#include "iodev.bpf.h"
#include "maps.bpf.h"
#include "procs.h"
#include "workers.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by user space before load. */
const volatile __u64 lat_edges_ns[ES_BLK_MAX_EDGES] = {};
const volatile __u32 lat_nedges = 0;
const volatile __u32 rq_arg = 0; /* index of struct request * in insert/issue */

struct rq_info {
	__u64 insert_ns; /* 0 when issued without passing a scheduler queue */
	__u64 issue_ns;
	__u32 slot;
	__u32 bytes;
};

/* In-flight requests by address. LRU: a lost completion cannot leak. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct rq_info);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct es_blk_hist_key);
	__type(value, struct es_blk_hist);
} io_latency SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct es_blk_hist_key);
	__type(value, struct es_blk_hist);
} queue_latency SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct es_blk_io_key);
	__type(value, struct es_blk_io);
} io_by_worker SEC(".maps");

/* REQ_OP_* from include/linux/blk_types.h (stable values). */
static __always_inline __u32 blk_op(__u32 cmd_flags)
{
	switch (cmd_flags & 0xff) {
	case 0: /* REQ_OP_READ */
		return ES_BLK_READ;
	case 1: /* REQ_OP_WRITE */
	case 9: /* REQ_OP_WRITE_ZEROES */
		return ES_BLK_WRITE;
	case 2: /* REQ_OP_FLUSH */
		return ES_BLK_FLUSH;
	case 3: /* REQ_OP_DISCARD */
	case 5: /* REQ_OP_SECURE_ERASE */
		return ES_BLK_DISCARD;
	default:
		return ES_BLK_OTHER;
	}
}

static __always_inline void hist_add(void *map, __u32 id, __u32 dev, __u32 op, __u64 ns)
{
	static const struct es_blk_hist zero = {};
	struct es_blk_hist_key k = { .dev = dev, .op = op };
	struct es_blk_hist *h = es_lookup_or_init(map, &k, &zero, id);
	__u32 b;

	if (!h)
		return;
	b = es_hist_bucket(lat_edges_ns, lat_nedges, ES_BLK_MAX_EDGES, ns);
	if (b > ES_BLK_MAX_EDGES)
		b = ES_BLK_MAX_EDGES;
	h->buckets[b] += 1;
	h->sum_ns += ns;
}

/* The submitting task (current) is waiting on this device from now on. */
static __always_inline void note_submitter_dev(__u32 dev)
{
	struct task_struct *t = bpf_get_current_task_btf();
	__u32 *d = bpf_task_storage_get(&task_iodev, t, NULL, BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (d)
		*d = dev;
}

/* What each hook needs from the request, read by the flavour's wrapper. */
struct rq_fields {
	__u64 key; /* the request's address */
	__u32 dev;
	__u32 op;
	__u32 bytes;
};

static __always_inline void on_insert(const struct rq_fields *f)
{
	struct rq_info ri = {};

	ri.insert_ns = bpf_ktime_get_ns();
	ri.slot = worker_slot(bpf_get_current_pid_tgid() >> 32);
	bpf_map_update_elem(&inflight, &f->key, &ri, BPF_ANY);
	note_submitter_dev(f->dev);
}

static __always_inline void on_issue(const struct rq_fields *f)
{
	__u64 now = bpf_ktime_get_ns();
	struct rq_info *ri, fresh = {};

	ri = bpf_map_lookup_elem(&inflight, &f->key);
	if (!ri) {
		/* Issued directly in the submitter's context. */
		fresh.slot = worker_slot(bpf_get_current_pid_tgid() >> 32);
		bpf_map_update_elem(&inflight, &f->key, &fresh, BPF_ANY);
		ri = bpf_map_lookup_elem(&inflight, &f->key);
		if (!ri)
			return;
		note_submitter_dev(f->dev);
	}
	ri->issue_ns = now;
	ri->bytes = f->bytes;
	if (ri->insert_ns && now >= ri->insert_ns)
		hist_add(&queue_latency, ES_MAP_QUEUE_LATENCY, f->dev, f->op, now - ri->insert_ns);
}

static __always_inline void on_complete(const struct rq_fields *f)
{
	static const struct es_blk_io zero = {};
	__u64 now = bpf_ktime_get_ns();
	struct es_blk_io_key k;
	struct rq_info *ri;
	struct es_blk_io *io;

	ri = bpf_map_lookup_elem(&inflight, &f->key);
	if (!ri)
		return;
	if (!ri->issue_ns || now < ri->issue_ns)
		goto out;
	k.dev = f->dev;
	k.op = f->op;
	k.slot = ri->slot;
	hist_add(&io_latency, ES_MAP_IO_LATENCY, k.dev, k.op, now - ri->issue_ns);
	io = es_lookup_or_init(&io_by_worker, &k, &zero, ES_MAP_IO_BY_WORKER);
	if (io) {
		io->ops += 1;
		io->bytes += ri->bytes;
	}
out:
	bpf_map_delete_elem(&inflight, &f->key);
}

static __always_inline struct request *rq_of(unsigned long long *ctx)
{
	return rq_arg ? (struct request *)ctx[1] : (struct request *)ctx[0];
}

/* tp_btf flavour: the request is a trusted pointer, fields are direct loads. */
static __always_inline void fields_btf(struct request *rq, struct rq_fields *f)
{
	f->key = (__u64)rq;
	f->dev = rq_devt_btf(rq);
	f->op = blk_op(rq->cmd_flags);
	f->bytes = rq->__data_len;
}

/* raw_tp flavour: probed reads. */
static __always_inline void fields_raw(struct request *rq, struct rq_fields *f)
{
	f->key = (__u64)rq;
	f->dev = rq_devt(rq);
	f->op = blk_op(BPF_CORE_READ(rq, cmd_flags));
	f->bytes = BPF_CORE_READ(rq, __data_len);
}

SEC("tp_btf/block_rq_insert")
int BPF_PROG(es_rq_insert)
{
	struct rq_fields f;

	fields_btf(rq_of(ctx), &f);
	on_insert(&f);
	return 0;
}

SEC("raw_tp/block_rq_insert")
int BPF_PROG(es_rq_insert_raw)
{
	struct rq_fields f;

	fields_raw(rq_of(ctx), &f);
	on_insert(&f);
	return 0;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(es_rq_issue)
{
	struct rq_fields f;

	fields_btf(rq_of(ctx), &f);
	on_issue(&f);
	return 0;
}

SEC("raw_tp/block_rq_issue")
int BPF_PROG(es_rq_issue_raw)
{
	struct rq_fields f;

	fields_raw(rq_of(ctx), &f);
	on_issue(&f);
	return 0;
}

/* (struct request *rq, blk_status_t error, unsigned int nr_bytes) since v4.x. */
SEC("tp_btf/block_rq_complete")
int BPF_PROG(es_rq_complete, struct request *rq)
{
	struct rq_fields f;

	fields_btf(rq, &f);
	on_complete(&f);
	return 0;
}

SEC("raw_tp/block_rq_complete")
int BPF_PROG(es_rq_complete_raw, struct request *rq)
{
	struct rq_fields f;

	fields_raw(rq, &f);
	on_complete(&f);
	return 0;
}
