// SPDX-License-Identifier: GPL-2.0
/*
 * The "blkio" probe: disk latency histograms per device and op, and ops and
 * bytes per device, op and submitting worker, from bpf/blkio.bpf.c.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>

#include "../../bpf/blkio.h"
#include "blkio.skel.h"
#include "core/bpfutil.h"
#include "core/erpscope.h"
#include "core/expo.h"
#include "core/kfeatures.h"
#include "core/log.h"
#include "core/mapstats.h"
#include "core/probe.h"
#include "procs/proctable.h"
#include "sched/blkio.h"
#include "sched/blkio_trace.h"

/* Disk latency edges, seconds: 10 us to 10 s. */
static const double lat_edges[] = { 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3,
				    2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 0.1, 0.25,
				    0.5,    1.0,  2.5,  5.0,  10.0 };
#define NEDGES (sizeof(lat_edges) / sizeof(lat_edges[0]))

static const char *const op_names[ES_BLK_OP_COUNT] = {
	[ES_BLK_READ] = "read",	      [ES_BLK_WRITE] = "write", [ES_BLK_FLUSH] = "flush",
	[ES_BLK_DISCARD] = "discard", [ES_BLK_OTHER] = "other",
};

struct blkio_priv {
	struct blkio_bpf *skel;
	struct blkio_trace *trace;
	/* For the map walk callbacks, during one collect. */
	struct expo *e;
	struct erpscope *es;
};

static const char *op_name(__u32 op)
{
	return op < ES_BLK_OP_COUNT ? op_names[op] : "other";
}

static bool key_has_slot(void *arg, const void *key, const void *value)
{
	return ((const struct es_blk_io_key *)key)->slot == *(const __u32 *)arg;
}

static void reset_slot(void *arg, __u32 slot)
{
	struct blkio_priv *bp = arg;

	bpf_hash_delete_if(bpf_map__fd(bp->skel->maps.io_by_worker), sizeof(struct es_blk_io_key),
			   sizeof(struct es_blk_io), true, key_has_slot, &slot);
}

/* Requests' start (v6.5+) replaces insert as where the submitter is taken. */
static void pick_start_hook(struct blkio_bpf *s, bool io_start, bool tp_btf)
{
	bpf_program__set_autoload(s->progs.es_io_start, io_start && tp_btf);
	bpf_program__set_autoload(s->progs.es_io_start_raw, io_start && !tp_btf);
	bpf_program__set_autoload(s->progs.es_rq_insert, !io_start && tp_btf);
	bpf_program__set_autoload(s->progs.es_rq_insert_raw, !io_start && !tp_btf);
}

static int blkio_open(struct probe *p)
{
	struct erpscope *es = p->es;
	struct blkio_priv *bp;
	int nargs, rq_nargs, err;
	bool io_start;

	bp = calloc(1, sizeof(*bp));
	if (!bp)
		return -ENOMEM;
	p->priv = bp;
	bp->es = es;
	bp->skel = blkio_bpf__open();
	if (!bp->skel)
		return -errno;
	for (unsigned int i = 0; i < NEDGES; i++)
		bp->skel->rodata->lat_edges_ns[i] = (__u64)(lat_edges[i] * 1e9 + 0.5);
	bp->skel->rodata->lat_nedges = NEDGES;
	/* Before v5.11 insert/issue/requeue had (q, rq); since, (rq). */
	nargs = feature_tp_nargs("block_rq_issue");
	bp->skel->rodata->rq_arg = nargs == 2 ? 1 : 0;
	rq_nargs = feature_tp_nargs("block_rq_requeue");
	bp->skel->rodata->requeue_arg = rq_nargs == 2 ? 1 : 0;
	io_start = feature_tp_nargs("block_io_start") == 1;
	bpf_pick_flavour(bp->skel->obj, es->tp_btf);
	pick_start_hook(bp->skel, io_start, es->tp_btf);
	err = procs_share_maps(es, bp->skel->obj);
	if (!err && es->iodev_fd >= 0)
		err = bpf_map__reuse_fd(bp->skel->maps.task_iodev, es->iodev_fd);
	if (err)
		return err;
	err = blkio_bpf__load(bp->skel);
	if (err)
		return err;
	p->obj = bp->skel->obj;
	p->map_errors_fd = bpf_map__fd(bp->skel->maps.map_errors);
	mapstats_track(es, ES_MAP_IO_LATENCY, bp->skel->maps.io_latency);
	mapstats_track(es, ES_MAP_QUEUE_LATENCY, bp->skel->maps.queue_latency);
	mapstats_track(es, ES_MAP_IO_BY_WORKER, bp->skel->maps.io_by_worker);
	log_debug("blkio probe loaded", "rq_arg=%u requeue_arg=%u start_hook=%s iodev_shared=%d",
		  nargs == 2 ? 1 : 0, rq_nargs == 2 ? 1 : 0,
		  io_start ? "block_io_start" : "block_rq_insert", es->iodev_fd >= 0);
	return procs_on_slot_reset(es->procs, reset_slot, bp);
}

static int blkio_attach(struct probe *p)
{
	struct blkio_priv *bp = p->priv;
	int err = blkio_bpf__attach(bp->skel);

	if (err)
		return err;
	bp->trace = blkio_trace_start(p, bp->skel);
	return bp->trace ? 0 : -ENOMEM;
}

static void hist_sample(void *arg, const void *key, const void *values, int n, size_t stride)
{
	const struct es_blk_hist_key *k = key;
	struct blkio_priv *bp = arg;
	uint64_t counts[NEDGES + 1] = { 0 }, sum = 0;
	struct expo_label l[2];

	for (int c = 0; c < n; c++) {
		const struct es_blk_hist *h = (const void *)((const char *)values + (size_t)c * stride);

		for (unsigned int b = 0; b <= NEDGES; b++)
			counts[b] += h->buckets[b];
		sum += h->sum_ns;
	}
	l[0] = (struct expo_label){ "device", blockdev_name(&bp->es->blockdevs, k->dev) };
	l[1] = (struct expo_label){ "op", op_name(k->op) };
	expo_histogram(bp->e, l, 2, lat_edges, counts, NEDGES, (double)sum / 1e9);
}

static void io_sample(void *arg, const void *key, const void *values, int n, size_t stride,
		      int want_bytes)
{
	const struct es_blk_io_key *k = key;
	struct blkio_priv *bp = arg;
	struct expo_label l[4];
	struct slot_view sv;
	uint64_t v = 0;

	if (procs_slot_view(bp->es->procs, k->slot, &sv))
		return;
	for (int c = 0; c < n; c++) {
		const struct es_blk_io *io = (const void *)((const char *)values + (size_t)c * stride);

		v += want_bytes ? io->bytes : io->ops;
	}
	l[0] = (struct expo_label){ "device", blockdev_name(&bp->es->blockdevs, k->dev) };
	l[1] = (struct expo_label){ "op", op_name(k->op) };
	l[2] = (struct expo_label){ "role", role_name(sv.role) };
	l[3] = (struct expo_label){ "worker", sv.worker };
	expo_sample_u64(bp->e, l, 4, v);
}

static void ops_sample(void *arg, const void *key, const void *values, int n, size_t stride)
{
	io_sample(arg, key, values, n, stride, 0);
}

static void bytes_sample(void *arg, const void *key, const void *values, int n, size_t stride)
{
	io_sample(arg, key, values, n, stride, 1);
}

static int blkio_collect(struct probe *p, struct expo *e)
{
	struct blkio_priv *bp = p->priv;
	struct blkio_bpf *s = bp->skel;
	size_t hk = sizeof(struct es_blk_hist_key), hv = sizeof(struct es_blk_hist);
	size_t ik = sizeof(struct es_blk_io_key), iv = sizeof(struct es_blk_io);
	int n;

	bp->e = e;
	expo_family(e, "erpscope_disk_io_latency_seconds", EXPO_HISTOGRAM,
		    "Block requests from issue to the device until completion, per disk and op.");
	n = bpf_hash_foreach(bpf_map__fd(s->maps.io_latency), hk, hv, true, hist_sample, bp);
	mapstats_count(bp->es, ES_MAP_IO_LATENCY, n);
	expo_family(e, "erpscope_disk_queue_latency_seconds", EXPO_HISTOGRAM,
		    "Block requests from their start (block_io_start; insertion into the I/O scheduler on kernels without it) until issue to the device, per disk and op.");
	n = bpf_hash_foreach(bpf_map__fd(s->maps.queue_latency), hk, hv, true, hist_sample, bp);
	mapstats_count(bp->es, ES_MAP_QUEUE_LATENCY, n);
	expo_family(e, "erpscope_disk_io_ops_total", EXPO_COUNTER,
		    "Block requests issued to the disk (once each, at the first issue), per disk, op and the worker that submitted them.");
	n = bpf_hash_foreach(bpf_map__fd(s->maps.io_by_worker), ik, iv, true, ops_sample, bp);
	mapstats_count(bp->es, ES_MAP_IO_BY_WORKER, n);
	expo_family(e, "erpscope_disk_io_bytes_total", EXPO_COUNTER,
		    "Bytes of block requests issued to the disk, per disk, op and the worker that submitted them.");
	bpf_hash_foreach(bpf_map__fd(s->maps.io_by_worker), ik, iv, true, bytes_sample, bp);
	bp->e = NULL;
	return 0;
}

int blkio_io_map_fd(struct erpscope *es, bool untracked)
{
	struct probe *p = erpscope_probe(es, "blkio");
	struct blkio_priv *bp = p && p->up ? p->priv : NULL;

	if (!bp || !bp->skel)
		return -ENODEV;
	return bpf_map__fd(untracked ? bp->skel->maps.io_by_other : bp->skel->maps.io_by_worker);
}

static void blkio_close(struct probe *p)
{
	struct blkio_priv *bp = p->priv;

	if (!bp)
		return;
	procs_off_slot_reset(p->es->procs, reset_slot, bp);
	blkio_trace_stop(p, bp->trace);
	blkio_bpf__destroy(bp->skel);
	free(bp);
	p->priv = NULL;
	p->obj = NULL;
}

const struct probe_ops blkio_probe_ops = {
	.name = "blkio",
	.open = blkio_open,
	.attach = blkio_attach,
	.collect = blkio_collect,
	.close = blkio_close,
};
