// SPDX-License-Identifier: GPL-2.0
/*
 * The blkio probe's side of traces: while a trace records (the sink's gate
 * sets the BPF global trace_on), tracked workers' block requests come on
 * the blk_trace ring at their first issue and at their completion, paired
 * here by the request's address into one TRACE_EV_BIO. A completion the
 * kernel did not run the program for (see README, How it works) leaves its
 * issue unpaired: it goes out with end_ns 0 when its slot is needed or the
 * recording stops, and the trace ends it where its submitter left iowait.
 */
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>
#include <linux/types.h>

#include "../../bpf/blkio.h"
#include "blkio.skel.h"
#include "core/blockdev.h"
#include "core/erpscope.h"
#include "core/probe.h"
#include "core/trace_sink.h"
#include "sched/blkio_trace.h"

#define PENDING 1024 /* a power of two */

struct blkio_trace {
	struct probe *p;
	struct blkio_bpf *skel;
	struct es_blk_trace_ev pending[PENDING]; /* issues waiting for their completion */
};

static const char *const op_names[ES_BLK_OP_COUNT] = {
	[ES_BLK_READ] = "read", [ES_BLK_WRITE] = "write", [ES_BLK_FLUSH] = "flush",
	[ES_BLK_DISCARD] = "discard", [ES_BLK_OTHER] = "other",
};

static void emit(struct blkio_trace *bt, const struct es_blk_trace_ev *issue, __u64 end_ns)
{
	struct erpscope *es = bt->p->es;
	struct trace_ev ev = {
		.kind = TRACE_EV_BIO,
		.tgid = issue->tgid,
		.tid = issue->tid,
		.ts_ns = issue->start_ns && issue->start_ns <= issue->ts ? issue->start_ns : issue->ts,
		.end_ns = end_ns,
		.state = issue->op,
		.code = issue->bytes,
		.id = issue->dev,
		.name = blockdev_name(&es->blockdevs, issue->dev),
		.detail = op_names[issue->op < ES_BLK_OP_COUNT ? issue->op : ES_BLK_OTHER],
	};

	trace_sink_emit(&es->trace, &ev);
}

static struct es_blk_trace_ev *slot_of(struct blkio_trace *bt, __u64 key)
{
	return &bt->pending[(key >> 6 ^ key >> 16) & (PENDING - 1)];
}

static int on_event(void *ctx, void *data, size_t size)
{
	struct blkio_trace *bt = ctx;
	const struct es_blk_trace_ev *k = data;
	struct es_blk_trace_ev *s;

	if (size < sizeof(*k))
		return 0;
	s = slot_of(bt, k->key);
	if (k->kind == ES_BLK_TR_ISSUE) {
		if (s->kind)
			emit(bt, s, 0);
		*s = *k;
	} else if (k->kind == ES_BLK_TR_DONE && s->kind && s->key == k->key) {
		emit(bt, s, k->ts);
		s->kind = 0;
	}
	return 0;
}

/* After the kernel switch. */
static void gate(void *arg, bool on)
{
	struct blkio_trace *bt = arg;

	if (on)
		return;
	/* Issues still waiting: their end is found in the trace (NULL: the ring never mapped). */
	if (bt->p->rb)
		ring_buffer__consume(bt->p->rb);
	for (unsigned int i = 0; i < PENDING; i++) {
		if (bt->pending[i].kind)
			emit(bt, &bt->pending[i], 0);
		bt->pending[i].kind = 0;
	}
}

struct blkio_trace *blkio_trace_start(struct probe *p, struct blkio_bpf *skel)
{
	struct blkio_trace *bt = calloc(1, sizeof(*bt));

	if (!bt)
		return NULL;
	bt->p = p;
	bt->skel = skel;
	if (trace_sink_probe_start(&p->es->trace, &p->rb, bpf_map__fd(skel->maps.blk_trace),
				   on_event, bt, &skel->bss->trace_on, gate)) {
		free(bt);
		return NULL;
	}
	return bt;
}

void blkio_trace_stop(struct probe *p, struct blkio_trace *bt)
{
	if (!bt)
		return;
	trace_sink_probe_stop(&p->es->trace, &p->rb, &bt->skel->bss->trace_on);
	free(bt);
}
