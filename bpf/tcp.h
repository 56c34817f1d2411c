/* SPDX-License-Identifier: GPL-2.0 */
/* Contract between bpf/tcp.bpf.c and user/tcp*.c. No includes. */
#ifndef ERPSCOPE_BPF_TCP_H
#define ERPSCOPE_BPF_TCP_H

/* Histogram edges (le, in ns) live in rodata; at most this many each. */
#define ES_TCP_MAX_EDGES 20 /* <= ES_HIST_MAX_EDGES in hist.h */

/* Outbound connect failures, in the order the reason label lists them. */
enum es_tcp_fail {
	ES_TCP_FAIL_REFUSED = 0, /* ECONNREFUSED: RST in answer to the SYN */
	ES_TCP_FAIL_TIMEOUT,     /* ETIMEDOUT, or closed by the application first */
	ES_TCP_FAIL_UNREACHABLE, /* EHOSTUNREACH, ENETUNREACH */
	ES_TCP_FAIL_RESET,       /* ECONNRESET */
	ES_TCP_FAIL_OTHER,
	ES_TCP_FAIL_COUNT,
};

enum es_tcp_rst_dir {
	ES_TCP_RST_SENT = 0,
	ES_TCP_RST_RECEIVED,
	ES_TCP_RST_COUNT,
};

/* Listen queue wait: per role of the accepting process and local port. */
struct es_tcp_wait_key {
	__u32 role;
	__u32 port;
};

struct es_tcp_hist {
	__u64 buckets[ES_TCP_MAX_EDGES + 1]; /* the last one is +Inf */
	__u64 sum_ns;
};

/*
 * A destination of outbound connections, per role of the connecting
 * process. family 0 (address and port zero) is the role's "other": where
 * destinations past the kernel's per-role pool are counted.
 */
struct es_tcp_remote_key {
	__u32 role;
	__u16 family; /* AF_INET (2) or AF_INET6 (10); 0 for the role's other */
	__u16 port;   /* host byte order */
	__u8 addr[16]; /* IPv4 in the first 4 bytes, network order */
};

/* Everything per destination; cumulative, updated with atomic adds. */
struct es_tcp_remote {
	__u64 failures[ES_TCP_FAIL_COUNT];
	__u64 resets[ES_TCP_RST_COUNT];
	__u64 retransmits;
	__u64 lat_sum_ns; /* connect latency: SYN sent to established */
	__u64 rtt_sum_ns; /* smoothed RTT at close, once per connection */
	__u64 dur_sum_ns; /* established to close */
	__u64 lat[ES_TCP_MAX_EDGES + 1];
	__u64 rtt[ES_TCP_MAX_EDGES + 1];
	__u64 dur[ES_TCP_MAX_EDGES + 1];
};

/* Attach cookie of each C library function the pool uprobe session hooks. */
enum es_tcp_hook {
	ES_TCP_HOOK_ACCEPT = 1, /* accept, accept4 */
	ES_TCP_HOOK_SELECT = 2, /* select, pselect: nfds and the read set come first */
};

/* Per-thread state of pool workers (odoo_http) for busy/idle. */
enum es_tcp_thread_state {
	ES_TCP_T_UNKNOWN = 0, /* never seen entering a wait for a connection */
	ES_TCP_T_IDLE,        /* blocked in select/accept on a listen socket */
	ES_TCP_T_BUSY,        /* anything else, since it left that wait */
};

struct es_tcp_thread {
	__u64 since_ns; /* bpf_ktime_get_ns() of the last transition */
	__u32 state;
	__u32 tgid;
	__u32 slot;
	__u32 listen_fd1; /* 1 + the listener last found in the thread's select set; 0: none */
};

/*
 * A failed outbound connect, one by one (ring buffer); while a trace
 * records (trace_on), an established one too.
 */
struct es_tcp_event {
	__u64 ts_ns;     /* bpf_ktime_get_ns() at the failure (established) */
	__u64 waited_ns; /* from connect() (SYN sent) to the failure (established) */
	__u32 tgid;
	__u32 slot;
	__u32 reason; /* enum es_tcp_fail */
	__s32 err;    /* the socket's error, 0 when the application closed it */
	struct es_tcp_remote_key remote;
	char comm[16];
	__u32 tid;       /* the thread that called connect() */
	__u32 connected; /* 1: established (trace_on), 0: failed */
};

#endif
