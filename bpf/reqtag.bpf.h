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

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64); /* tag, 0: none */
} req_serving SEC(".maps");

/* The current thread's request, 0: none. */
static __always_inline __u64 req_serving_tag(void)
{
	__u64 *t = bpf_task_storage_get(&req_serving, bpf_get_current_task_btf(), NULL, 0);

	return t ? *t : 0;
}

/* The current thread begins serving this request. */
static __always_inline void req_serving_begin(__u64 conn_id, __u32 seq)
{
	__u64 *t = bpf_task_storage_get(&req_serving, bpf_get_current_task_btf(), NULL,
					BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (t)
		*t = es_req_tag(conn_id, seq);
}

/* The request tid received ended (seen by the current thread). */
static __always_inline void req_serving_end(__u32 tid, __u64 conn_id, __u32 seq)
{
	__u64 *t;

	if (tid != (__u32)bpf_get_current_pid_tgid())
		return;
	t = bpf_task_storage_get(&req_serving, bpf_get_current_task_btf(), NULL, 0);
	if (t && *t == es_req_tag(conn_id, seq))
		*t = 0;
}

#endif
