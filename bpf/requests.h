/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Contract between bpf/requests.bpf.c and user/requests/: the connections
 * the kernel follows in HTTP workers and the events it sends about their
 * requests. Fixed-width types only, no includes.
 */
#ifndef ERPSCOPE_BPF_REQUESTS_H
#define ERPSCOPE_BPF_REQUESTS_H

/* Bytes of a request sent to user space, at most: request line, headers, the body's head. */
#define ES_REQ_CAP 2048
/*
 * Of a request whose body user space does not read, only the first
 * ES_REQ_HEAD_CAP bytes: its request line and the headers that fit. Only
 * the JSON-RPC and XML-RPC endpoints name the RPC in the body; the rest of
 * any other request is headers (a browser's cookies, user agent, referer:
 * ~1 KiB) that would be copied twice, from the worker and onto the ring,
 * for nothing. requests.bpf.c head_only() tells them apart from the first
 * ES_REQ_HEAD_PEEK bytes.
 */
#define ES_REQ_HEAD_CAP 512
#define ES_REQ_HEAD_PEEK 16
/* Connections followed at once (all tracked workers together). */
#define ES_REQ_MAX_CONNS 8192
/* Listening TCP ports noted, all processes together. */
#define ES_REQ_MAX_LISTEN 1024
/*
 * Descriptors below this have an array slot each (req_slots); above (many
 * connections at once), a hash entry (req_conns). Either stays after its
 * connection is closed, for the next connection that gets its number (a
 * prefork worker's next one does): the hash holds at most one entry per
 * descriptor number a followed process used, and its entries go with it.
 */
#define ES_REQ_KEEP_FD 64
/*
 * Processes whose low descriptors (below ES_REQ_KEEP_FD) have array slots:
 * process i (1.., in req_procs and the upper half of its attach cookies, given by user
 * space) keeps descriptor fd in req_slots[(i - 1) * ES_REQ_KEEP_FD + fd],
 * found without hashing. Higher descriptors, and processes beyond these,
 * are in the req_conns hash.
 */
#define ES_REQ_SLOT_PROCS 128
#define ES_REQ_SLOTS (ES_REQ_SLOT_PROCS * ES_REQ_KEEP_FD)
#define ES_REQ_NO_SLOT 0xffffffffu
/* Descriptors above this are not followed. */
#define ES_REQ_MAX_FD (1 << 16)
/* HTTP worker processes followed at once (req_procs): user space sizes it to its worker table. */
#define ES_REQ_MAX_PROCS 16384
/*
 * req_pids, what every socket call of the host looks at first: entry
 * tgid % ES_REQ_PIDS holds the followed process of those low bits, as a
 * u64 (one load; user space maps the array and stores each entry
 * atomically, so it is never torn): the tgid in the low
 * half, its index in the high half, with ES_REQ_PID_MORE set when another
 * followed process has the same low bits (then in req_procs only). One
 * cache line where a hash lookup reads three.
 */
#define ES_REQ_PID_BITS 15
#define ES_REQ_PIDS (1u << ES_REQ_PID_BITS)
#define ES_REQ_PID_MORE 0x80000000u

/* Attach cookies: which C library function a uprobe is on. */
enum es_req_hook {
	ES_REQ_HOOK_LISTEN = 2, /* listen: (fd, backlog), a port the process will accept on */
};

/* Where a connection stands. */
enum es_req_state {
	ES_REQ_S_IDLE = 0, /* accepted, or between requests */
	ES_REQ_S_REQ, /* a request is being received: no response yet */
	ES_REQ_S_RESP, /* its response is being sent */
	ES_REQ_S_IGNORED, /* not a connection the worker accepted: not followed */
	ES_REQ_S_CLOSED, /* found closed (another socket under its number): adopted again */
};

/*
 * The TCP ports some followed process listens on, all processes together,
 * a bit each: what every socket call of the host looks at first, from its
 * socket alone, before anything of the caller's. Port p's bit is in two
 * words of req_ports, each written by one side only (an array element is
 * written whole, so neither side's write can lose the other's bit): word
 * 2 * (p / 64) by user space (the ports it notes), 2 * (p / 64) + 1 by
 * on_listen() (the listen() calls seen). A bit is never cleared: a port no
 * longer listened on only sends its sockets on to the per-process checks.
 */
#define ES_REQ_PORT_WORDS (2 * 65536 / 64)

/* A TCP port a process listens on (requests.bpf.c served()). */
struct es_req_listen_key {
	__u32 tgid;
	__u32 port; /* host order */
};

/*
 * Running totals read at a request's start and at its end:
 * the serving thread's time by scheduler state (the sched probe's
 * es_task_sched.acc_ns plus its open interval) and its process's
 * PostgreSQL statements (bpf/pg_client.h). A request's parts are end - start.
 */
enum es_req_total {
	ES_REQ_T_CPU = 0, /* in the order of es_task_sched.acc_ns */
	ES_REQ_T_RUNQUEUE,
	ES_REQ_T_IOWAIT,
	ES_REQ_T_BLOCKED,
	ES_REQ_T_SLEEP,
	ES_REQ_T_PG_NS, /* statements' time, as the backends timed them */
	ES_REQ_T_PG_STMTS,
	ES_REQ_T_COUNT,
};

/* Which totals were read (es_req_conn.totals_ok, es_req_done.parts_ok). */
#define ES_REQ_OK_SCHED 1 /* the thread's times: the sched probe is on (tp_btf) */
#define ES_REQ_OK_PG 2 /* the process's statements: the pg probe is on */

struct es_req_conn_key {
	__u32 tgid;
	__s32 fd;
};

struct es_req_conn {
	__u64 conn_id; /* its first request's start_ns (0 before): tells a reused fd apart */
	__u64 start_ns; /* the request's first bytes came (recv returned them) */
	__u64 resp_ns; /* its response's first send returned */
	__u64 end_ns; /* its response's last send returned (so far); with no response, the client's reset was seen */
	__u32 tid; /* the thread that received the request */
	__u32 seq; /* requests begun on this connection */
	__u32 captured; /* bytes of this request sent to user space */
	__u32 state; /* enum es_req_state */
	__u32 eof; /* the client closed its side (recv returned 0) */
	char status[4]; /* the response's status code, 3 digits; "" when unreadable */
	__u32 start_ok, end_ok; /* ES_REQ_OK_* of the totals below */
	__u32 tgid; /* whose: a slot of req_slots another process held is not its entry */
	__u32 port; /* the TCP port it was served on: the descriptor's next one on it needs no lookup */
	__u32 pending; /* its request's bytes are in its process's req_pending buffer */
	__u32 cap; /* bytes of its request kept at most: ES_REQ_CAP, or ES_REQ_HEAD_CAP */
	/*
	 * Its socket's inode number (sock_ino()): a read that finds another
	 * socket under the descriptor ends this connection, closed since (no
	 * close is hooked); user space looks for it in /proc/<pid>/fd.
	 */
	__u64 ino;
	__u64 at_start[ES_REQ_T_COUNT];
	__u64 at_end[ES_REQ_T_COUNT]; /* at end_ns */
};

enum es_req_event_type {
	ES_REQ_EV_DATA = 1, /* the next bytes of a request */
	ES_REQ_EV_DONE, /* a request ended */
	ES_REQ_EV_FULL, /* a request ended, with its bytes: struct es_req_pending */
};

/* Why a request ended. */
enum es_req_end {
	ES_REQ_END_NEXT = 1, /* the worker read the connection again (keep-alive) */
	ES_REQ_END_CLOSE, /* the connection was closed: another socket under its descriptor */
};

struct es_req_data {
	__u32 type; /* ES_REQ_EV_DATA */
	__u32 tgid;
	__u32 tid;
	__s32 fd;
	__u64 conn_id;
	__u64 ts_ns; /* the recv returned */
	__u32 seq;
	__u32 len; /* bytes in data; only those are on the ring */
	__u32 slot; /* the connection's entry: its req_slots index, or ES_REQ_NO_SLOT (req_conns) */
	__u32 pad;
	__u8 data[ES_REQ_CAP];
};

struct es_req_done {
	__u32 type; /* ES_REQ_EV_DONE */
	__u32 tgid;
	__u32 tid; /* the thread that received the request */
	__s32 fd;
	__u64 conn_id;
	__u64 ts_ns; /* when the end was seen */
	__u32 seq;
	__u32 reason; /* enum es_req_end */
	__u64 start_ns, resp_ns, end_ns; /* as in es_req_conn; resp_ns 0: no response (end_ns: its reset, if seen) */
	__u32 eof;
	char status[4];
	__u32 parts_ok; /* ES_REQ_OK_* read at both ends, by the same thread */
	__u32 pad;
	__u64 parts[ES_REQ_T_COUNT]; /* at_end - at_start */
};

/*
 * A request's bytes kept in the kernel until its end, in its process's
 * buffer (req_pending, by the process's index: ES_REQ_SLOT_PROCS): the end
 * then goes to user space with them, one ring record where there were two.
 * One request of a process at a time (a prefork worker serves one); another
 * begun meanwhile (threads, gevent) sends its bytes as ES_REQ_EV_DATA. User
 * space reads a buffer in use (a slow request, a killed worker's) through
 * mmap: busy, then the header, then len before the bytes (written in the
 * opposite order).
 */
struct es_req_pending {
	/* tgid, tid, fd, conn_id, seq, start_ns from the first bytes on; the rest at the end */
	struct es_req_done done; /* type ES_REQ_EV_FULL once ended */
	__u64 busy; /* 1 from the request's first bytes to its end (64 bits: BPF's cmpxchg) */
	__u32 len; /* bytes in data: on the ring, only these follow */
	__u32 pad;
	__u8 data[2 * ES_REQ_CAP]; /* only the first ES_REQ_CAP used: the rest bounds the copy */
};

#endif
