/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Lazy ring-buffer wakeups. Most events (a fork, a backend's first
 * statement, a new statement text) need no reader at once: the daemon
 * drains every ring on its 100 ms tick. Waking it per event cost an epoll
 * wakeup and a context switch each, hundreds a second on a host that opens
 * a PostgreSQL connection per request. A ring over a quarter full wakes
 * the reader anyway.
 */
#ifndef ERPSCOPE_RINGBUF_BPF_H
#define ERPSCOPE_RINGBUF_BPF_H

static __always_inline __u64 es_rb_lazy(void *rb, __u64 size)
{
	return bpf_ringbuf_query(rb, BPF_RB_AVAIL_DATA) > size / 4 ? BPF_RB_FORCE_WAKEUP :
								       BPF_RB_NO_WAKEUP;
}

#endif
