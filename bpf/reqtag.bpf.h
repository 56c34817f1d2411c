/* SPDX-License-Identifier: GPL-2.0 */
/*
 * req_serving: tid -> tag (bpf/reqtag.h) of the request the thread is
 * serving. The requests probe sets it when a request's first bytes are
 * received and deletes it when the request ends; the Python probe reads it
 * into each sample's key. Defined by both objects; whichever loads first
 * creates it and the other reuses its fd (struct erpscope's req_serving_fd).
 */
#ifndef ERPSCOPE_REQTAG_BPF_H
#define ERPSCOPE_REQTAG_BPF_H

#include "reqtag.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ES_REQTAG_MAX_THREADS);
	__type(key, __u32); /* tid */
	__type(value, __u64); /* tag */
} req_serving SEC(".maps");

/* The request the current thread serves, or 0. */
static __always_inline __u64 req_serving_tag(__u32 tid)
{
	__u64 *t = bpf_map_lookup_elem(&req_serving, &tid);

	return t ? *t : 0;
}

static __always_inline void req_serving_begin(__u32 tid, __u64 conn_id, __u32 seq)
{
	__u64 tag = es_req_tag(conn_id, seq);

	bpf_map_update_elem(&req_serving, &tid, &tag, BPF_ANY);
}

/* The thread no longer serves that request (it may serve another by now). */
static __always_inline void req_serving_end(__u32 tid, __u64 conn_id, __u32 seq)
{
	__u64 *t = bpf_map_lookup_elem(&req_serving, &tid);

	if (t && *t == es_req_tag(conn_id, seq))
		bpf_map_delete_elem(&req_serving, &tid);
}

#endif
