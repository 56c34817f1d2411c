// SPDX-License-Identifier: GPL-2.0
/*
 * Block I/O: per device and op, queue time (start to issue) and device time
 * (issue to complete) histograms; per device, op and worker, ops and bytes
 * attributed to the process that submitted the request.
 *
 * The submitter is remembered in its own context: at block_io_start where
 * the kernel has it (v6.5+, once per request, in blk_mq_bio_to_request),
 * else at block_rq_insert or, without a scheduler, at a direct issue. Ops
 * and bytes are counted at the request's first issue, in process context,
 * not at completion: completions run in interrupt context on whatever task
 * is current, and a kernel may run no BPF there (some VM kernels skip raw
 * tracepoint programs, misses uncounted, while a PID 1 thread is current).
 * Only the device-time histogram needs the completion.
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
#include "ringbuf.bpf.h"
#include "workers.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by user space before load. */
const volatile __u64 lat_edges_ns[ES_BLK_MAX_EDGES] = {};
const volatile __u32 lat_nedges = 0;
const volatile __u32 rq_arg = 0; /* index of struct request * in insert/issue */
const volatile __u32 requeue_arg = 0; /* the same for block_rq_requeue */

struct rq_info {
	__u64 start_ns; /* io_start, or insert without it; 0 if neither was seen */
	__u64 issue_ns; /* last issue; 0 until issued */
	__u32 slot;
	__u8 counted; /* ops and bytes taken at the first issue */
	__u8 requeued; /* the next issue is this request's again */
	__u8 pad[2];
	__u64 pid_tgid; /* the submitter, kept while a trace records (trace_on) or untracked */
};

/* Set by user space while a trace records (user/sched/blkio.c). */
volatile __u32 trace_on;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, ES_BLK_TRACE_RING);
} blk_trace SEC(".maps");

struct rq_fields;
static __always_inline void trace_rq(__u32 kind, const struct rq_info *ri,
				     const struct rq_fields *f, __u64 now);

/* Untracked submitters' ops and bytes (struct es_blk_other_key -> es_blk_other). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct es_blk_other_key);
	__type(value, struct es_blk_other);
} io_by_other SEC(".maps");

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

/* A new request: its submitter is current. */
static __always_inline void on_start(const struct rq_fields *f)
{
	struct rq_info ri = {};

	ri.start_ns = bpf_ktime_get_ns();
	ri.slot = worker_slot(bpf_get_current_pid_tgid() >> 32);
	if (trace_on || ri.slot == ES_ROLE_OTHER)
		ri.pid_tgid = bpf_get_current_pid_tgid();
	bpf_map_update_elem(&inflight, &f->key, &ri, BPF_ANY);
	note_submitter_dev(f->dev);
}

/* Without block_io_start: the submitter inserts, or a requeue re-inserts. */
static __always_inline void on_insert(const struct rq_fields *f)
{
	struct rq_info *ri = bpf_map_lookup_elem(&inflight, &f->key);

	if (ri && ri->requeued)
		return; /* from a kworker: keep the submitter */
	on_start(f);
}

static __always_inline void on_requeue(const struct rq_fields *f)
{
	struct rq_info *ri = bpf_map_lookup_elem(&inflight, &f->key);

	if (ri)
		ri->requeued = 1;
}

/* An untracked submitter's request: its own entry (shared by CPUs: atomic adds). */
static __always_inline void count_other(__u32 dev, __u32 tgid, __u32 bytes)
{
	struct es_blk_other_key k = { .dev = dev, .tgid = tgid };
	struct es_blk_other *io = bpf_map_lookup_elem(&io_by_other, &k);

	if (!io) {
		static const struct es_blk_other zero = {};

		bpf_map_update_elem(&io_by_other, &k, &zero, BPF_NOEXIST);
		io = bpf_map_lookup_elem(&io_by_other, &k);
		if (!io)
			return;
	}
	/*
	 * Its name while it runs (it may be gone when user space looks), read in
	 * its own context (not kblockd's) at its first request and every 16th: a
	 * child's page faults before its exec carry the parent's name.
	 */
	if ((!io->comm[0] || !(io->ops & 15)) && bpf_get_current_pid_tgid() >> 32 == tgid)
		bpf_get_current_comm(io->comm, sizeof(io->comm));
	__sync_fetch_and_add(&io->ops, 1);
	__sync_fetch_and_add(&io->bytes, bytes);
}

static __always_inline void on_issue(const struct rq_fields *f)
{
	static const struct es_blk_io zero = {};
	__u64 now = bpf_ktime_get_ns();
	struct rq_info *ri, fresh = {};
	struct es_blk_io_key k;
	struct es_blk_io *io;

	ri = bpf_map_lookup_elem(&inflight, &f->key);
	if (ri && ri->issue_ns && !ri->requeued)
		ri = NULL; /* left by a request whose completion we did not see */
	if (!ri) {
		/* Issued directly in the submitter's context (or a flush). */
		fresh.slot = worker_slot(bpf_get_current_pid_tgid() >> 32);
		if (trace_on || fresh.slot == ES_ROLE_OTHER)
			fresh.pid_tgid = bpf_get_current_pid_tgid();
		bpf_map_update_elem(&inflight, &f->key, &fresh, BPF_ANY);
		ri = bpf_map_lookup_elem(&inflight, &f->key);
		if (!ri)
			return;
		note_submitter_dev(f->dev);
	}
	ri->issue_ns = now;
	ri->requeued = 0;
	if (ri->counted)
		return;
	ri->counted = 1;
	if (trace_on)
		trace_rq(ES_BLK_TR_ISSUE, ri, f, now);
	if (ri->start_ns && now >= ri->start_ns)
		hist_add(&queue_latency, ES_MAP_QUEUE_LATENCY, f->dev, f->op, now - ri->start_ns);
	k.dev = f->dev;
	k.op = f->op;
	k.slot = ri->slot;
	io = es_lookup_or_init(&io_by_worker, &k, &zero, ES_MAP_IO_BY_WORKER);
	if (io) {
		io->ops += 1;
		io->bytes += f->bytes;
	}
	if (k.slot == ES_ROLE_OTHER && ri->pid_tgid)
		count_other(f->dev, ri->pid_tgid >> 32, f->bytes);
}

/* nr_bytes short of the request's bytes: a partial completion, more follows. */
static __always_inline void on_complete(const struct rq_fields *f, __u32 nr_bytes)
{
	__u64 now = bpf_ktime_get_ns();
	struct rq_info *ri;

	if (nr_bytes < f->bytes)
		return;
	ri = bpf_map_lookup_elem(&inflight, &f->key);
	if (!ri)
		return;
	if (ri->issue_ns && now >= ri->issue_ns)
		hist_add(&io_latency, ES_MAP_IO_LATENCY, f->dev, f->op, now - ri->issue_ns);
	if (trace_on)
		trace_rq(ES_BLK_TR_DONE, ri, f, now);
	bpf_map_delete_elem(&inflight, &f->key);
}

/* A tracked worker's request, issued or done, for a trace recording. */
static __always_inline void trace_rq(__u32 kind, const struct rq_info *ri,
				     const struct rq_fields *f, __u64 now)
{
	struct es_blk_trace_ev *ev;

	if (ri->slot == ES_ROLE_OTHER || !ri->pid_tgid)
		return;
	ev = bpf_ringbuf_reserve(&blk_trace, sizeof(*ev), 0);
	if (!ev)
		return;
	ev->key = f->key;
	ev->start_ns = ri->start_ns;
	ev->ts = now;
	ev->kind = kind;
	ev->tgid = ri->pid_tgid >> 32;
	ev->tid = (__u32)ri->pid_tgid;
	ev->dev = f->dev;
	ev->op = f->op;
	ev->bytes = f->bytes;
	bpf_ringbuf_submit(ev, es_rb_lazy(&blk_trace, ES_BLK_TRACE_RING));
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

SEC("tp_btf/block_io_start")
int BPF_PROG(es_io_start, struct request *rq)
{
	struct rq_fields f;

	fields_btf(rq, &f);
	on_start(&f);
	return 0;
}

SEC("raw_tp/block_io_start")
int BPF_PROG(es_io_start_raw, struct request *rq)
{
	struct rq_fields f;

	fields_raw(rq, &f);
	on_start(&f);
	return 0;
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

SEC("tp_btf/block_rq_requeue")
int BPF_PROG(es_rq_requeue)
{
	struct rq_fields f;

	fields_btf(requeue_arg ? (struct request *)ctx[1] : (struct request *)ctx[0], &f);
	on_requeue(&f);
	return 0;
}

SEC("raw_tp/block_rq_requeue")
int BPF_PROG(es_rq_requeue_raw)
{
	struct rq_fields f;

	fields_raw(requeue_arg ? (struct request *)ctx[1] : (struct request *)ctx[0], &f);
	on_requeue(&f);
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
int BPF_PROG(es_rq_complete, struct request *rq, int error, unsigned int nr_bytes)
{
	struct rq_fields f;

	fields_btf(rq, &f);
	on_complete(&f, nr_bytes);
	return 0;
}

SEC("raw_tp/block_rq_complete")
int BPF_PROG(es_rq_complete_raw, struct request *rq, int error, unsigned int nr_bytes)
{
	struct rq_fields f;

	fields_raw(rq, &f);
	on_complete(&f, nr_bytes);
	return 0;
}
