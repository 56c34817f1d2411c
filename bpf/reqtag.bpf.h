/* SPDX-License-Identifier: GPL-2.0 */
/*
 * req_serving: the tag (bpf/reqtag.h) of the request a thread is serving,
 * in the thread's task storage: the requests probe sets it when a request's
 * first bytes are received and clears it when the request ends; the Python
 * probe reads it into each sample's key. Task storage, not a hash by tid:
 * no insert or delete per request, and a thread's entry goes with it.
 * Both read and write the current thread's (the samples and off-CPU walks
 * run in the sampled thread); a request ended by another thread than the
 * one that received it leaves the tag until that thread's next request.
 * Defined by both objects; whichever loads first creates it and the other
 * reuses its fd (struct erpscope's req_serving_fd).
 */
#ifndef ERPSCOPE_REQTAG_BPF_H
#define ERPSCOPE_REQTAG_BPF_H

#include "reqtag.h"
#include "sysargs.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct es_req_serving);
} req_serving SEC(".maps");

/* include/uapi/asm-generic/poll.h: macros, not in BTF (struct pollfd is) */
#define ES_POLLIN 0x1
#define ES_POLLOUT 0x4

static __always_inline struct es_req_serving *req_serving_get(bool create)
{
	return bpf_task_storage_get(&req_serving, bpf_get_current_task_btf(), NULL,
				    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}

/* The current thread's request, 0: none. */
static __always_inline __u64 req_serving_tag(void)
{
	struct es_req_serving *s = req_serving_get(false);

	return s ? s->tag : 0;
}

/* Whether the current thread is back from a poll() for fd to be readable, and only that. */
static __always_inline bool polled_readable(__s32 fd)
{
	struct es_sysargs a;
	struct pollfd p;

	current_sysargs(&a);
	if ((a.nr != ES_NR_POLL && a.nr != ES_NR_PPOLL) || a.arg[1] != 1 ||
	    bpf_probe_read_user(&p, sizeof(p), (const void *)a.arg[0]))
		return false;
	return p.fd == fd && (p.events & ES_POLLIN) && !(p.events & ES_POLLOUT);
}

/*
 * The request a block of the current thread that began at off_ns was part
 * of (an off-CPU walk, at the thread's return to user space), 0: none. Not
 * the wait for a request: a request whose first bytes came after the block
 * began (the worker blocked reading its connection: that read brought
 * them), nor one already answered whose thread is back from polling its
 * connection for the client's next request (a socket with a timeout:
 * CPython polls before it reads, and the request ends at that read).
 */
static __always_inline __u64 req_serving_block_tag(__u64 off_ns)
{
	struct es_req_serving *s = req_serving_get(false);

	if (!s || !s->tag || s->begin_ns >= off_ns)
		return 0;
	if (s->answered && polled_readable(s->fd))
		return 0;
	return s->tag;
}

/* The current thread begins serving this request, received at now on fd. */
static __always_inline void req_serving_begin(__u64 conn_id, __u32 seq, __s32 fd, __u64 now)
{
	struct es_req_serving *s = req_serving_get(true);

	if (!s)
		return;
	s->tag = es_req_tag(conn_id, seq);
	s->begin_ns = now;
	s->fd = fd;
	s->answered = 0;
}

/* The current thread sent the first bytes of its answer to this request. */
static __always_inline void req_serving_answered(__u64 conn_id, __u32 seq)
{
	struct es_req_serving *s = req_serving_get(false);

	if (s && s->tag == es_req_tag(conn_id, seq))
		s->answered = 1;
}

/* The request tid received ended (seen by the current thread). */
static __always_inline void req_serving_end(__u32 tid, __u64 conn_id, __u32 seq)
{
	struct es_req_serving *s;

	if (tid != (__u32)bpf_get_current_pid_tgid())
		return;
	s = req_serving_get(false);
	if (s && s->tag == es_req_tag(conn_id, seq))
		s->tag = 0;
}

#endif
