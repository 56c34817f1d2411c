/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Contract between bpf/requests.bpf.c (writer), bpf/python.bpf.c (reader)
 * and user/core/reqtag.c: which request each thread of an HTTP worker is
 * serving, so Python samples can be filtered by route and RPC. The tag of
 * a request is a hash of what both the kernel and user space know of it
 * (its connection's id and its sequence number on that connection); 0 is
 * "no request". Fixed-width types only, no includes.
 */
#ifndef ERPSCOPE_BPF_REQTAG_H
#define ERPSCOPE_BPF_REQTAG_H

/* A thread's entry in req_serving. */
struct es_req_serving {
	__u64 tag; /* es_req_tag() of the request, 0: none */
	__u64 begin_ns; /* its first bytes were received */
	__s32 fd; /* its connection */
	__u32 answered; /* its answer began (its first send returned) */
};

static inline __u64 es_req_tag(__u64 conn_id, __u32 seq)
{
	__u64 h = (conn_id ^ ((__u64)seq << 32 | seq)) * 0x9e3779b97f4a7c15ull;

	h ^= h >> 29;
	return h ? h : 1;
}

#endif
