// SPDX-License-Identifier: GPL-2.0
/*
 * Request bytes the kernel keeps until the request's end (bpf/requests.h,
 * struct es_req_pending): they come with the end as one ES_REQ_EV_FULL
 * record. A request still open is read here, from the buffers mapped into
 * the daemon, at each drain of the ring: so it is in flight for GET
 * /requests, tagged for the Python probe and named in its worker's note (a
 * killed worker's exit event names its route) as soon as when its bytes
 * had a record of their own.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "requests.skel.h"
#include "core/bpfutil.h"
#include "requests/requests.h"

int req_pending_open(struct req_priv *rp)
{
	void *m = bpf_map_mmap(bpf_map__fd(rp->skel->maps.req_pending),
			       sizeof(struct es_req_pending) * ES_REQ_SLOT_PROCS, false,
			       &rp->pending_len);

	if (!m)
		return -errno;
	rp->pending = m;
	return 0;
}

void req_pending_close(struct req_priv *rp)
{
	if (rp->pending)
		munmap((void *)rp->pending, rp->pending_len);
	rp->pending = NULL;
}

/* Whether the kernel's entry of the buffer's connection still has this request open in it. */
static bool still_open(const struct req_priv *rp, unsigned int i, const struct es_req_done *h)
{
	__u32 slot = i * ES_REQ_KEEP_FD + (__u32)h->fd;
	struct es_req_conn kc;

	if (h->fd < 0 || h->fd >= ES_REQ_KEEP_FD ||
	    bpf_map_lookup_elem(bpf_map__fd(rp->skel->maps.req_slots), &slot, &kc))
		return false;
	return kc.tgid == h->tgid && kc.conn_id == h->conn_id && kc.seq == h->seq &&
	       kc.pending && (kc.state == ES_REQ_S_REQ || kc.state == ES_REQ_S_RESP);
}

/* The header's identity, read again: the buffer was not taken by another request meanwhile. */
static bool same_request(const volatile struct es_req_pending *p, const struct es_req_done *h)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return p->busy && p->done.tgid == h->tgid && p->done.fd == h->fd &&
	       p->done.conn_id == h->conn_id && p->done.seq == h->seq;
}

/* Buffer i's request, when one is open there and has bytes not fed yet. */
static void read_one(struct req_priv *rp, unsigned int i)
{
	const volatile struct es_req_pending *p = &rp->pending[i];
	struct es_req_done h = { 0 };
	__u8 data[ES_REQ_CAP];
	struct req_bytes b;
	long fed;
	__u32 len;

	if (!p->busy)
		return;
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	h.tgid = p->done.tgid;
	h.tid = p->done.tid;
	h.fd = p->done.fd;
	h.conn_id = p->done.conn_id;
	h.seq = p->done.seq;
	h.start_ns = p->done.start_ns;
	len = p->len;
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (!len || len > ES_REQ_CAP)
		return;
	fed = req_conns_fed(rp, h.tgid, h.fd, h.conn_id, h.seq);
	if (fed >= (long)len || !still_open(rp, i, &h))
		return;
	memcpy(data, (const void *)p->data, len);
	/* Its end and another request's start came meanwhile: the end's record has the bytes. */
	if (same_request(p, &h)) {
		b = (struct req_bytes){ .tgid = h.tgid,
					.tid = h.tid,
					.fd = h.fd,
					.seq = h.seq,
					.slot = i * ES_REQ_KEEP_FD + (__u32)h.fd,
					.conn_id = h.conn_id,
					.start_ns = h.start_ns,
					.from = 0,
					.len = len,
					.kept = true,
					.data = data };
		req_conns_bytes(rp, &b);
	}
}

void req_pending_scan(struct req_priv *rp)
{
	for (unsigned int i = 0; rp->pending && i < ES_REQ_SLOT_PROCS; i++)
		read_one(rp, i);
}

void req_pending_release(struct req_priv *rp, unsigned int index)
{
	struct es_req_pending *zero;
	__u32 i = index - 1;

	if (!rp->pending || !index || index > ES_REQ_SLOT_PROCS || !rp->pending[i].busy)
		return;
	read_one(rp, i);
	zero = calloc(1, sizeof(*zero));
	if (zero)
		bpf_map_update_elem(bpf_map__fd(rp->skel->maps.req_pending), &i, zero, BPF_ANY);
	free(zero);
}

void req_pending_full(struct req_priv *rp, const void *data, size_t size)
{
	const size_t head = offsetof(struct es_req_pending, data);
	const struct es_req_pending *ev = data;
	struct req_bytes b;

	if (size < head || ev->len > ES_REQ_CAP || size < head + ev->len)
		return;
	b = (struct req_bytes){ .tgid = ev->done.tgid,
				.tid = ev->done.tid,
				.fd = ev->done.fd,
				.seq = ev->done.seq,
				.slot = ES_REQ_NO_SLOT,
				.conn_id = ev->done.conn_id,
				.start_ns = ev->done.start_ns,
				.from = 0,
				.len = ev->len,
				.data = ev->data };
	req_conns_bytes(rp, &b);
	req_conns_done(rp, &ev->done);
}
