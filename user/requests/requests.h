/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the requests probe's files share: user/requests/requests.c (the
 * probe: load, events), req_conns.c (requests in flight, by connection),
 * req_pending.c (request bytes the kernel keeps until the request's end),
 * req_collect.c (the metric families), req_attach.c (the poller: uprobes on
 * HTTP workers, requests of workers that died), req_pids.c (which processes
 * the kernel side follows), req_idle.c (a thread
 * blocked reading its connection: an idle keep-alive wait). Parsing and the bounded
 * tables are pure: req_parse.c, req_table.c.
 */
#ifndef ERPSCOPE_REQUESTS_H
#define ERPSCOPE_REQUESTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "../../bpf/procs.h"
#include "../../bpf/requests.h"
#include "requests/req_parse.h"
#include "requests/req_slow.h"
#include "requests/req_table.h"

/* The parser's sizes are the kernel's (req_parse.h is pure, it includes neither). */
_Static_assert(REQ_ACC_CAP == ES_REQ_CAP, "req_parse.h REQ_ACC_CAP is bpf/requests.h ES_REQ_CAP");
_Static_assert(REQ_HEAD_CAP == ES_REQ_HEAD_CAP,
	       "req_parse.h REQ_HEAD_CAP is bpf/requests.h ES_REQ_HEAD_CAP");

struct erpscope;
struct expo;
struct libc_uprobes;
struct requests_bpf;
struct probe;

/* Status codes beyond HTTP's: the route's code label. */
#define REQ_CODE_UNKNOWN 0 /* a response whose status line was not read */
#define REQ_CODE_KILLED 1000 /* the worker died before answering */
#define REQ_CODE_RESET 1001 /* the connection ended before an answer */
#define REQ_CODE_COUNT 1002
/* Sub-key of a route's series: method and code. */
#define REQ_SUB(method, code) ((uint32_t)(method)*2048u + (uint32_t)(code))

/* Session routes (long-lived: counted, not timed). */
enum req_session { REQ_SESS_WEBSOCKET, REQ_SESS_LONGPOLLING, REQ_SESS_COUNT };

struct req_role {
	struct req_table *routes;
	struct req_table *rpcs;
	uint64_t sessions[REQ_SESS_COUNT];
	uint64_t failures[REQ_FAIL_COUNT];
	bool seen;
};

struct req_conn;

struct req_priv {
	struct requests_bpf *skel;
	struct erpscope *es;
	struct libc_uprobes *lu; /* from attach on */
	unsigned int nslots;
	struct req_role roles[ES_ROLE_COUNT];
	/* Requests in flight by (tgid, fd): chained hash. */
	struct req_conn **buckets;
	unsigned int nconns;
	uint64_t conns_dropped; /* requests not followed: too many in flight */
	uint64_t lost; /* requests whose end or start was lost (ring drops) */
	uint64_t killed;
	bool parts_sched, parts_pg; /* the sched / pg probe's maps are shared */
	uint64_t detaches; /* processes detached so far (req_attach.c) */
	unsigned int followed; /* processes followed (req_pids.c): the socket tracepoints are on while > 0 */
	struct req_slow *slow; /* the slowest of the window, for GET /requests */
	const volatile struct es_req_pending *pending; /* req_pending, mapped: [ES_REQ_SLOT_PROCS] */
	size_t pending_len;
	__u64 *pids; /* req_pids, mapped: [ES_REQ_PIDS] (req_pids.c) */
	size_t pids_len;
	__u64 port_bits[ES_REQ_PORT_WORDS / 2]; /* user space's half of req_ports (req_pids.c) */
};

/* The roles whose processes serve HTTP and get the uprobes. */
bool req_role_served(enum es_role r);

/* requests/req_idle.c: tid of tgid is blocked reading fd. */
bool req_thread_reads(__u32 tgid, __u32 tid, __s32 fd);

/*
 * requests/req_fd.c: 1 when tgid's fd is the socket of inode ino, 0 when it
 * is closed or another file, -errno when that cannot be told (the process
 * is gone, no access).
 */
int req_fd_holds(__u32 tgid, __s32 fd, __u64 ino);

/* requests/req_pids.c: the processes the socket tracepoints follow. */
int req_pids_open(struct req_priv *rp);
void req_pids_close(struct req_priv *rp);
int req_pids_follow(struct req_priv *rp, __u32 pid, __u32 idx);
void req_pids_unfollow(struct req_priv *rp, __u32 pid);
/* A TCP port a followed process listens on, into the kernel's prefilter (req_ports). */
int req_ports_add(struct req_priv *rp, __u16 port);

/* requests/req_conns.c */
int req_conns_init(struct req_priv *rp);
void req_conns_free(struct req_priv *rp);
/* Bytes of a request: an es_req_data's, or a kernel buffer's (requests/req_pending.c). */
struct req_bytes {
	__u32 tgid, tid;
	__s32 fd;
	__u32 seq;
	__u32 slot; /* its kernel entry's req_slots index, or ES_REQ_NO_SLOT */
	__u64 conn_id;
	uint64_t start_ns; /* its first bytes came (the kernel's clock) */
	__u32 from; /* data's offset in the request, or REQ_BYTES_NEXT: after those fed so far */
	__u32 len;
	bool kept; /* read from a kept buffer (req_pending.c), not from the ring */
	const __u8 *data;
};
#define REQ_BYTES_NEXT UINT32_MAX
/* Feeds a request's bytes: the first begin its record. */
void req_conns_bytes(struct req_priv *rp, const struct req_bytes *b);
void req_conns_data(struct req_priv *rp, const struct es_req_data *ev);
/* Bytes fed so far of request (conn_id, seq) on (tgid, fd); -ENOENT: it has no record. */
long req_conns_fed(struct req_priv *rp, __u32 tgid, __s32 fd, __u64 conn_id, __u32 seq);
void req_conns_done(struct req_priv *rp, const struct es_req_done *ev);
/* Requests of processes that died: counted killed (or with the status they sent). */
void req_conns_sweep(struct req_priv *rp);
/* A request in flight as GET /requests shows it. */
struct req_inflight {
	__u32 tgid, tid;
	enum es_role role;
	uint64_t start_ns; /* CLOCK_MONOTONIC */
	const struct req_head *head; /* parsed so far: route "" before its request line */
};
typedef void (*req_inflight_fn)(void *arg, const struct req_inflight *r);
void req_conns_foreach(const struct req_priv *rp, req_inflight_fn fn, void *arg);
/* Counts one request. */
void req_observe(struct req_priv *rp, enum es_role role, const struct req_head *h,
		 unsigned int code, uint64_t ns, const struct req_parts *parts);

/* requests/req_pending.c: request bytes the kernel keeps until the request's end */
int req_pending_open(struct req_priv *rp);
void req_pending_close(struct req_priv *rp);
/* Feeds the bytes of the requests still open in the buffers. */
void req_pending_scan(struct req_priv *rp);
/* A process's buffer (index: its libc_uprobes index) after its detach: read, then cleared. */
void req_pending_release(struct req_priv *rp, unsigned int index);
/* An ES_REQ_EV_FULL record: its bytes, then its end. */
void req_pending_full(struct req_priv *rp, const void *data, size_t size);
/* What the kernel sent so far, and what it keeps: the ring, then the buffers. */
void req_sync(struct probe *p);

/* requests/req_tag.c: names of the requests Python samples were taken in (core/reqtag.h) */
void req_tag_begin(struct req_priv *rp, enum es_role role, __u64 conn_id, __u32 seq,
		   const struct req_head *h);
void req_tag_end(struct req_priv *rp, enum es_role role, __u64 conn_id, __u32 seq,
		 const struct req_head *h);
/* A request whose end the kernel did not see: its thread no longer serves it. */
void req_tag_drop_thread(struct req_priv *rp, __u32 tid, __u64 conn_id, __u32 seq);
/* Registers (or not) the probe as the registry's writer. */
void req_tag_writer(struct probe *p, bool on);

/* requests/req_collect.c */
void req_collect(struct req_priv *rp, struct expo *e);
/* The code label of a status (REQ_CODE_* included). */
void req_code_label(unsigned int code, char *buf, size_t size);

/* A request that ended, as requests/req_slow_event.c reads it. */
struct req_ended {
	__u32 tgid, tid;
	enum es_role role;
	unsigned int code;
	uint64_t start_ns, end_ns;
	const struct req_head *head;
	const struct req_parts *parts; /* NULL: not known */
};
/* requests/req_slow_event.c: an http_slow_request event when r lasted the threshold or more. */
void req_slow_event(struct req_priv *rp, const struct req_ended *r);
/* requests/req_trace.c: r as a slice of a trace recording, when one is on. */
void req_trace(struct erpscope *es, const struct req_ended *r);

/* requests/req_totals.c: for other capabilities (user/diagnose) */
struct req_total {
	enum es_role role;
	bool rpc;           /* key is "model method" (erpscope_odoo_rpc_*), else a route */
	char key[REQ_KEY_MAX]; /* "other" for what has no label of its own */
	uint64_t count, sum_ns; /* requests, and their time (the duration histogram) */
	uint64_t pg_stmts, pg_ns; /* their statements and PostgreSQL time, where known */
};
typedef void (*req_total_fn)(void *arg, const struct req_total *t);
/* Calls fn for each route and RPC of each role. 0, or -ENODEV when the probe is off. */
int requests_totals(struct erpscope *es, req_total_fn fn, void *arg);

/* requests/req_attach.c */
int req_attach_start(struct req_priv *rp);
/* The probe's state when it is up, else NULL. */
struct req_priv *requests_priv(struct erpscope *es);

#endif
