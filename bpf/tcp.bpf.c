// SPDX-License-Identifier: GPL-2.0
/*
 * TCP: queueing at listen sockets, pool worker occupancy, outbound
 * connection health.
 *
 * - Listen queue wait: a passively opened socket becoming ESTABLISHED
 *   (SYN_RECV -> ESTABLISHED: the handshake completed, the child sits in its
 *   listener's accept queue) is stamped by address; when accept() returns a
 *   tracked process the fd's socket is looked up in its file table and the
 *   wait goes to a histogram per role of the acceptor and local port.
 * - Pool occupancy: a thread of an HTTP pool worker (odoo_http) is idle
 *   while it is in accept(), or in select() on a set that holds a
 *   listening TCP socket; busy from that wait's return to the next one.
 *   Busy nanoseconds accumulate per worker slot.
 * - Outbound connections: connect() (CLOSE -> SYN_SENT, in the caller's
 *   context) remembers the caller and the destination per socket; the
 *   handshake's completion gives the connect latency, a close before it a
 *   failure classified by the socket's error (also sent one by one on a ring
 *   buffer), a close after it the duration and the smoothed RTT.
 *   Retransmits and resets are counted for the sockets known this way.
 *   Per destination and role everything is in one hash entry updated with
 *   atomic adds; destinations past a per-role pool go to the role's "other".
 *
 * The socket tracepoints come as tp_btf (typed, direct loads) with raw_tp
 * twins. The waits come from a uprobe session on the C library's accept,
 * accept4, select and pselect, which user space (user/tcp/tcp_pool_attach.c)
 * attaches to pool workers only, each with its pid: a syscall tracepoint
 * would put every syscall of the host on the kernel's slow tracing path.
 * No strings, no loops beyond the bucket search and the bounded scan of
 * select sets.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "hist.h"
#include "maps.bpf.h"
#include "procs.h"
#include "tcp.h"
#include "sock.bpf.h"
#include "workers.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* include/uapi/asm-generic/errno.h */
#define ES_ENETUNREACH 101
#define ES_ECONNRESET 104
#define ES_ETIMEDOUT 110
#define ES_ECONNREFUSED 111
#define ES_EHOSTUNREACH 113

/* How much of a select set is looked at: the listen socket of a prefork
 * worker is one of its first descriptors. */
#define SELECT_WORDS 4 /* 256 descriptors */
#define FD_CHECKS 8 /* descriptors resolved per call, at most */

/* Set by user space before load. */
const volatile __u64 wait_edges_ns[ES_TCP_MAX_EDGES] = {};
const volatile __u32 wait_nedges = 0;
const volatile __u64 lat_edges_ns[ES_TCP_MAX_EDGES] = {};
const volatile __u32 lat_nedges = 0;
const volatile __u64 rtt_edges_ns[ES_TCP_MAX_EDGES] = {};
const volatile __u32 rtt_nedges = 0;
const volatile __u64 dur_edges_ns[ES_TCP_MAX_EDGES] = {};
const volatile __u32 dur_nedges = 0;
const volatile __u32 remote_pool = 100; /* destinations per role with a key of their own */
const volatile __u32 pool_roles = 1u << ES_ROLE_ODOO_HTTP; /* roles whose busy/idle is kept */
/* Set by user space while a trace records: established connects are events too. */
volatile __u32 trace_on;

/* An outbound connection from connect() to close. */
struct conn {
	__u64 syn_ns;
	__u64 est_ns;    /* 0 until established */
	__u64 closed_ns; /* aborted (see on_close); the entry waits for the reset that follows */
	struct es_tcp_remote_key rk;
	__u32 tgid;
	__u32 slot;
	__s32 err; /* last error reported on the socket */
	__u32 rst_rx; /* a reset was received */
	char comm[16];
	__u32 tid;
	__u32 pad;
};

/* By socket address. LRU: a socket freed unseen cannot leak. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct conn);
} conns SEC(".maps");

/* Established children waiting in an accept queue: socket -> since (ns). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u64);
} pending_accept SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct es_tcp_wait_key);
	__type(value, struct es_tcp_hist);
} listen_wait SEC(".maps");

/* max_entries = ES_ROLE_COUNT * (remote_pool + 2), set by user space, which
 * also creates every role's "other" key before attach, and deletes the keys
 * of destinations gone cold (user/tcp/tcp_remote.c). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ES_ROLE_COUNT);
	__type(key, struct es_tcp_remote_key);
	__type(value, struct es_tcp_remote);
} remotes SEC(".maps");

/* A reset sent after an abort comes in the same call as the close: within this. */
#define ABORT_RST_NS 10000000ull

/*
 * Destinations with a key of their own, per role: counted here on insert,
 * taken off by user space (atomically, through its mapping of the array)
 * for each one it evicts.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ES_ROLE_COUNT);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} remote_admitted SEC(".maps");

/*
 * Pool worker threads by tid. User space deletes a worker's entries when it
 * detaches from it, before a reused pid can be attached again.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct es_tcp_thread);
} threads SEC(".maps");

/* max_entries = the number of slots, set by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ES_ROLE_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} busy_ns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} tcp_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} tcp_drops SEC(".maps");

/*
 * Reads a field of a socket: a direct load through the typed tracepoint's
 * pointer, a probed read in the raw_tp flavour. btf is a constant in every
 * caller, so one branch remains.
 */
#define SK_RD(btf, sk, field) ((btf) ? (sk)->field : BPF_CORE_READ(sk, field))

static __always_inline __u32 hist_bucket(const volatile __u64 *edges, __u32 n, __u64 v)
{
	__u32 b = es_hist_bucket(edges, n, ES_TCP_MAX_EDGES, v);

	return b > ES_TCP_MAX_EDGES ? ES_TCP_MAX_EDGES : b;
}

/* The caller's role and slot; "other" when untracked. */
static __always_inline struct es_worker current_worker(__u32 tgid)
{
	struct es_worker *w = bpf_map_lookup_elem(&workers, &tgid);
	struct es_worker none = { .slot = ES_ROLE_OTHER, .role = ES_ROLE_OTHER };

	return w ? *w : none;
}

/* ---------------------------------------------------------------- destinations */

static __always_inline struct es_tcp_remote *remote_of(const struct es_tcp_remote_key *rk)
{
	static const struct es_tcp_remote zero = {};
	struct es_tcp_remote_key other = {};
	struct es_tcp_remote *r;
	__u32 role = rk->role;
	__u64 *n;
	long err;

	r = bpf_map_lookup_elem(&remotes, rk);
	if (r)
		return r;
	n = bpf_map_lookup_elem(&remote_admitted, &role);
	if (n && *n < remote_pool) {
		/*
		 * Counted only by the CPU whose insert made the key, so the count
		 * stays the role's keys as user space evicts some. Two CPUs may
		 * both pass the check: the pool is a bound, not a quota.
		 */
		err = bpf_map_update_elem(&remotes, rk, &zero, BPF_NOEXIST);
		if (!err)
			__sync_fetch_and_add(n, 1);
		else if (err != -EEXIST)
			es_map_error(ES_MAP_TCP_REMOTES);
		r = bpf_map_lookup_elem(&remotes, rk);
		if (r)
			return r;
	}
	other.role = role;
	return bpf_map_lookup_elem(&remotes, &other);
}

static __always_inline void remote_hist(__u64 *buckets, __u64 *sum, const volatile __u64 *edges,
					__u32 n, __u64 v)
{
	__u32 b = hist_bucket(edges, n, v);

	__sync_fetch_and_add(&buckets[b], 1);
	__sync_fetch_and_add(sum, v);
}

/* Destination of a connecting socket; false when it is not TCP over IP. */
static __always_inline bool read_remote(struct sock *sk, bool btf, struct es_tcp_remote_key *rk)
{
	__u16 family = SK_RD(btf, sk, __sk_common.skc_family);
	__u16 proto;

	if (btf)
		proto = BPF_CORE_READ_BITFIELD(sk, sk_protocol);
	else
		proto = BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol);
	if (proto != ES_IPPROTO_TCP)
		return false;
	rk->family = family;
	rk->port = bpf_ntohs(SK_RD(btf, sk, __sk_common.skc_dport));
	if (family == ES_AF_INET) {
		__u32 a = SK_RD(btf, sk, __sk_common.skc_daddr);

		__builtin_memcpy(rk->addr, &a, 4);
		return true;
	}
	if (family != ES_AF_INET6)
		return false;
	if (btf)
		__builtin_memcpy(rk->addr, &sk->__sk_common.skc_v6_daddr, 16);
	else
		bpf_core_read(rk->addr, 16, &sk->__sk_common.skc_v6_daddr);
	return true;
}

/* ---------------------------------------------------------------- state changes */

/* connect(): runs in the caller's context. */
static __always_inline void on_syn_sent(struct sock *sk, bool btf)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct es_worker w = current_worker(tgid);
	__u64 key = (__u64)sk;
	struct conn c = {};

	if (!read_remote(sk, btf, &c.rk))
		return;
	c.rk.role = w.role;
	c.syn_ns = bpf_ktime_get_ns();
	c.tgid = tgid;
	c.tid = (__u32)id;
	c.slot = w.slot;
	bpf_get_current_comm(c.comm, sizeof(c.comm));
	bpf_map_update_elem(&conns, &key, &c, BPF_ANY);
}

static __always_inline __u32 fail_reason(__s32 err)
{
	switch (err) {
	case ES_ECONNREFUSED:
		return ES_TCP_FAIL_REFUSED;
	case 0: /* the application closed it first: its own connect timeout */
	case ES_ETIMEDOUT:
		return ES_TCP_FAIL_TIMEOUT;
	case ES_EHOSTUNREACH:
	case ES_ENETUNREACH:
		return ES_TCP_FAIL_UNREACHABLE;
	case ES_ECONNRESET:
		return ES_TCP_FAIL_RESET;
	default:
		return ES_TCP_FAIL_OTHER;
	}
}

static __always_inline void emit_conn(const struct conn *c, __u32 reason, __s32 err, __u64 now,
				      __u32 connected)
{
	struct es_tcp_event *ev;
	__u32 zero = 0;
	__u64 *drops;

	ev = bpf_ringbuf_reserve(&tcp_events, sizeof(*ev), 0);
	if (!ev) {
		drops = bpf_map_lookup_elem(&tcp_drops, &zero);
		if (drops)
			*drops += 1;
		return;
	}
	ev->ts_ns = now;
	ev->waited_ns = now - c->syn_ns;
	ev->tgid = c->tgid;
	ev->slot = c->slot;
	ev->reason = reason;
	ev->err = err;
	ev->remote = c->rk;
	__builtin_memcpy(ev->comm, c->comm, sizeof(ev->comm));
	ev->tid = c->tid;
	ev->connected = connected;
	bpf_ringbuf_submit(ev, 0);
}

static __always_inline void on_connected(struct sock *sk)
{
	__u64 key = (__u64)sk, now = bpf_ktime_get_ns();
	struct conn *c = bpf_map_lookup_elem(&conns, &key);
	struct es_tcp_remote *r;

	if (!c || c->est_ns || c->closed_ns || now < c->syn_ns)
		return;
	c->est_ns = now;
	r = remote_of(&c->rk);
	if (r)
		remote_hist(r->lat, &r->lat_sum_ns, lat_edges_ns, lat_nedges, now - c->syn_ns);
	if (trace_on && c->rk.role != ES_ROLE_OTHER)
		emit_conn(c, 0, 0, now, 1);
}

/*
 * An established connection that goes straight to CLOSE without having
 * received a reset was aborted (SO_LINGER 0, closed with unread data, ...):
 * the kernel sends its reset right after the state change, so the entry is
 * kept, marked, for on_reset() to count it and drop it. One left unclaimed
 * is ignored by everything else and goes when the address is reused or the
 * LRU needs room.
 */
static __always_inline void on_close(struct sock *sk, int oldstate, bool btf)
{
	__u64 key = (__u64)sk, now = bpf_ktime_get_ns();
	struct conn *c = bpf_map_lookup_elem(&conns, &key);
	struct es_tcp_remote *r;

	if (!c) {
		/* A child closed before anyone accepted it. */
		bpf_map_delete_elem(&pending_accept, &key);
		return;
	}
	if (c->closed_ns || now < c->syn_ns)
		goto out;
	r = remote_of(&c->rk);
	if (c->est_ns) {
		__u64 srtt_us = BPF_CORE_READ((struct tcp_sock *)sk, srtt_us) >> 3;

		if (r && now >= c->est_ns) {
			remote_hist(r->dur, &r->dur_sum_ns, dur_edges_ns, dur_nedges,
				    now - c->est_ns);
			remote_hist(r->rtt, &r->rtt_sum_ns, rtt_edges_ns, rtt_nedges,
				    srtt_us * 1000);
		}
		if (!c->rst_rx &&
		    (oldstate == ES_TCP_ESTABLISHED || oldstate == ES_TCP_CLOSE_WAIT)) {
			c->closed_ns = now;
			return;
		}
	} else {
		__s32 err = SK_RD(btf, sk, sk_err);
		__u32 reason;

		if (!err)
			err = SK_RD(btf, sk, sk_err_soft);
		if (!err)
			err = c->err;
		reason = fail_reason(err);
		/* Keep the range check the verifier needs. */
		asm volatile("" : "+r"(reason));
		if (r && reason < ES_TCP_FAIL_COUNT)
			__sync_fetch_and_add(&r->failures[reason], 1);
		emit_conn(c, reason, err, now, 0);
	}
out:
	bpf_map_delete_elem(&conns, &key);
}

static __always_inline void on_state(struct sock *sk, int oldstate, int newstate, bool btf)
{
	__u64 key, now;

	switch (newstate) {
	case ES_TCP_SYN_SENT:
		on_syn_sent(sk, btf);
		break;
	case ES_TCP_ESTABLISHED:
		if (oldstate == ES_TCP_SYN_SENT) {
			on_connected(sk);
		} else if (oldstate == ES_TCP_SYN_RECV) {
			/* Handshake done: the child is in its listener's accept queue. */
			key = (__u64)sk;
			now = bpf_ktime_get_ns();
			bpf_map_update_elem(&pending_accept, &key, &now, BPF_ANY);
		}
		break;
	case ES_TCP_CLOSE:
		on_close(sk, oldstate, btf);
		break;
	}
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(es_tcp_state, struct sock *sk, int oldstate, int newstate)
{
	on_state(sk, oldstate, newstate, true);
	return 0;
}

SEC("raw_tp/inet_sock_set_state")
int BPF_PROG(es_tcp_state_r, struct sock *sk, int oldstate, int newstate)
{
	on_state(sk, oldstate, newstate, false);
	return 0;
}

/* ---------------------------------------------------------------- errors, retransmits, resets */

static __always_inline void on_error(struct sock *sk, bool btf)
{
	__u64 key = (__u64)sk;
	struct conn *c = bpf_map_lookup_elem(&conns, &key);

	if (c && !c->closed_ns)
		c->err = SK_RD(btf, sk, sk_err);
}

SEC("tp_btf/inet_sk_error_report")
int BPF_PROG(es_tcp_skerr, struct sock *sk)
{
	on_error(sk, true);
	return 0;
}

SEC("raw_tp/inet_sk_error_report")
int BPF_PROG(es_tcp_skerr_r, struct sock *sk)
{
	on_error(sk, false);
	return 0;
}

static __always_inline void on_retransmit(struct sock *sk)
{
	__u64 key = (__u64)sk;
	struct conn *c = bpf_map_lookup_elem(&conns, &key);
	struct es_tcp_remote *r;

	if (!c || c->closed_ns)
		return;
	r = remote_of(&c->rk);
	if (r)
		__sync_fetch_and_add(&r->retransmits, 1);
}

/* (sk, skb) before v6.7, (sk, skb, err) since: only sk is read. */
SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(es_tcp_rexmit, struct sock *sk)
{
	on_retransmit(sk);
	return 0;
}

SEC("raw_tp/tcp_retransmit_skb")
int BPF_PROG(es_tcp_rexmit_r, struct sock *sk)
{
	on_retransmit(sk);
	return 0;
}

/*
 * Resets on established connections; a reset in answer to a SYN is a
 * refused connect and counted there. sk may be NULL for a reset sent in
 * answer to a segment for no socket.
 */
static __always_inline void on_reset(struct sock *sk, __u32 dir)
{
	__u64 key = (__u64)sk;
	struct conn *c;
	struct es_tcp_remote *r;
	bool aborted;

	if (!sk)
		return;
	c = bpf_map_lookup_elem(&conns, &key);
	if (!c || !c->est_ns)
		return;
	aborted = c->closed_ns != 0;
	if (aborted && (dir != ES_TCP_RST_SENT || bpf_ktime_get_ns() - c->closed_ns > ABORT_RST_NS))
		return;
	r = remote_of(&c->rk);
	if (r)
		__sync_fetch_and_add(&r->resets[dir & 1], 1);
	if (aborted)
		bpf_map_delete_elem(&conns, &key);
	else if (dir == ES_TCP_RST_RECEIVED)
		c->rst_rx = 1;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(es_tcp_rst_tx, struct sock *sk)
{
	on_reset(sk, ES_TCP_RST_SENT);
	return 0;
}

SEC("raw_tp/tcp_send_reset")
int BPF_PROG(es_tcp_rst_tx_r, struct sock *sk)
{
	on_reset(sk, ES_TCP_RST_SENT);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(es_tcp_rst_rx, struct sock *sk)
{
	on_reset(sk, ES_TCP_RST_RECEIVED);
	return 0;
}

SEC("raw_tp/tcp_receive_reset")
int BPF_PROG(es_tcp_rst_rx_r, struct sock *sk)
{
	on_reset(sk, ES_TCP_RST_RECEIVED);
	return 0;
}

/* ---------------------------------------------------------------- descriptors */

/* Is sk (NULL: no socket) a TCP listener? btf: sk came from fd_sock_direct(). */
static __always_inline bool is_tcp_listener(struct sock *sk, bool btf)
{
	__u16 family;

	if (!sk || SK_RD(btf, sk, __sk_common.skc_state) != ES_TCP_LISTEN)
		return false;
	family = SK_RD(btf, sk, __sk_common.skc_family);
	return family == ES_AF_INET || family == ES_AF_INET6;
}

/* Index of the lowest set bit of x (x != 0). */
static __always_inline __u32 low_bit(__u64 x)
{
	__u32 n = 0;

	if (!(x & 0xffffffffull)) {
		n += 32;
		x >>= 32;
	}
	if (!(x & 0xffff)) {
		n += 16;
		x >>= 16;
	}
	if (!(x & 0xff)) {
		n += 8;
		x >>= 8;
	}
	if (!(x & 0xf)) {
		n += 4;
		x >>= 4;
	}
	if (!(x & 0x3)) {
		n += 2;
		x >>= 2;
	}
	if (!(x & 0x1))
		n += 1;
	return n;
}

/* Is fd in a select() read set and still a listener? */
static __always_inline bool select_holds_listener(__u64 nfds, const void *readfds, __u32 fd)
{
	__u64 bits = 0;

	if (fd >= nfds || fd >= SELECT_WORDS * 64 ||
	    bpf_probe_read_user(&bits, sizeof(bits), (const __u64 *)readfds + fd / 64))
		return false;
	return (bits & (1ull << (fd % 64))) && is_tcp_listener(fd_sock_direct(fd), true);
}

/*
 * Does a select() read set (the first SELECT_WORDS words) hold a listener?
 * A pool worker selects on the same listener each time: the one its
 * thread found last (t) is tried first, one socket walk instead of a scan.
 */
static __always_inline bool select_waits_listener(struct es_tcp_thread *t, __u64 nfds,
						  const void *readfds)
{
	__u32 checks = 0;

	if (!readfds)
		return false;
	if (t && t->listen_fd1 && select_holds_listener(nfds, readfds, t->listen_fd1 - 1))
		return true;
	for (__u32 i = 0; i < SELECT_WORDS; i++) {
		__u64 bits = 0;

		if ((__u64)i * 64 >= nfds)
			break;
		if (bpf_probe_read_user(&bits, sizeof(bits), (const __u64 *)readfds + i))
			break;
		if (nfds - (__u64)i * 64 < 64)
			bits &= (1ull << (nfds - (__u64)i * 64)) - 1;
		for (__u32 j = 0; j < FD_CHECKS && bits; j++) {
			__u32 fd = i * 64 + low_bit(bits);

			bits &= bits - 1;
			if (checks++ >= FD_CHECKS)
				return false;
			if (is_tcp_listener(fd_sock(fd), false)) {
				if (t)
					t->listen_fd1 = fd + 1;
				return true;
			}
		}
	}
	return false;
}

/* ---------------------------------------------------------------- pool occupancy */

enum wait_kind { WAIT_ACCEPT, WAIT_SELECT };

static __always_inline bool pool_role(__u32 role)
{
	return role < 32 && (pool_roles & (1u << role));
}

static __always_inline void add_busy(__u32 slot, __u64 ns)
{
	__u64 *v = bpf_map_lookup_elem(&busy_ns, &slot);

	if (!v) {
		/* A slot past the array (shrunk under us): the role's overflow is lost. */
		return;
	}
	*v += ns;
}

/* A pool worker's thread (t: its entry, if any) starts waiting for a connection. */
static __always_inline void wait_begin(struct es_tcp_thread *t, const struct es_worker *w,
				       __u32 tid, __u32 tgid)
{
	__u64 now = bpf_ktime_get_ns();
	struct es_tcp_thread fresh = {};

	if (!t) {
		fresh.since_ns = now;
		fresh.state = ES_TCP_T_IDLE;
		fresh.tgid = tgid;
		fresh.slot = w->slot;
		bpf_map_update_elem(&threads, &tid, &fresh, BPF_ANY);
		return;
	}
	if (t->state == ES_TCP_T_BUSY && now > t->since_ns)
		add_busy(w->slot, now - t->since_ns);
	t->state = ES_TCP_T_IDLE;
	t->since_ns = now;
	t->tgid = tgid;
	t->slot = w->slot;
}

/* Any hooked call returns: a thread that was waiting is busy from now. */
static __always_inline void wait_end(void)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct es_tcp_thread *t = bpf_map_lookup_elem(&threads, &tid);

	if (!t || t->state != ES_TCP_T_IDLE)
		return;
	t->state = ES_TCP_T_BUSY;
	t->since_ns = bpf_ktime_get_ns();
}

/* Returns 1 when the caller's thread now waits for a connection, else 0. */
static __always_inline int on_wait_enter(enum wait_kind kind, __u64 a0, __u64 a1)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;
	struct es_worker *w = bpf_map_lookup_elem(&workers, &tgid);
	struct es_tcp_thread *t;
	bool listens;

	if (!w || !pool_role(w->role))
		return 0;
	t = bpf_map_lookup_elem(&threads, &tid);
	if (kind == WAIT_SELECT)
		listens = select_waits_listener(t, a0, (const void *)a1);
	else
		listens = true; /* accept() waits for a connection by definition */
	if (listens)
		wait_begin(t, w, tid, tgid);
	return listens;
}

/* ---------------------------------------------------------------- accept */

static __always_inline void queue_wait(__u32 role, __u32 fd)
{
	static const struct es_tcp_hist zero = {};
	struct es_tcp_wait_key k = { .role = role };
	struct es_tcp_hist *h;
	struct sock *sk = fd_sock_direct(fd);
	__u64 key, *since, now, delta;
	__u32 b;

	if (!sk)
		return;
	key = (__u64)sk;
	since = bpf_map_lookup_elem(&pending_accept, &key);
	if (!since)
		return;
	now = bpf_ktime_get_ns();
	delta = now > *since ? now - *since : 0;
	bpf_map_delete_elem(&pending_accept, &key);
	k.port = sk->__sk_common.skc_num;
	h = es_lookup_or_init(&listen_wait, &k, &zero, ES_MAP_LISTEN_WAIT);
	if (!h)
		return;
	b = hist_bucket(wait_edges_ns, wait_nedges, delta);
	h->buckets[b] += 1;
	h->sum_ns += delta;
}

static __always_inline int on_accept_exit(long ret)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct es_worker *w = bpf_map_lookup_elem(&workers, &tgid);

	/* Untracked acceptors: their children's stamps go when they close. */
	if (!w)
		return 0;
	if (ret >= 0)
		queue_wait(w->role, (__u32)ret);
	if (pool_role(w->role))
		wait_end();
	return 0;
}

/*
 * One uprobe session on the C library's accept, accept4, select and pselect,
 * attached by user space (user/tcp/tcp_pool_attach.c) to each pool worker with
 * its pid; the attach cookie says which kind of function. The session runs
 * this program at entry and, unless the entry returned non-zero, at return.
 * The poll family is not hooked: libpq waits for every PostgreSQL reply in
 * poll(), which would cost an Odoo worker two traps per statement, and
 * Odoo's prefork workers wait in select().
 */
extern bool bpf_session_is_return(void) __ksym;

SEC("uprobe")
int es_tcp_wait(struct pt_regs *ctx)
{
	__u64 hook = bpf_get_attach_cookie(ctx);
	__s64 nfds;

	if (bpf_session_is_return()) {
		if (hook == ES_TCP_HOOK_ACCEPT)
			on_accept_exit((int)PT_REGS_RC(ctx));
		else
			wait_end();
		return 0;
	}
	if (hook == ES_TCP_HOOK_ACCEPT) {
		on_wait_enter(WAIT_ACCEPT, 0, 0);
		return 0; /* its return always counts: the queue wait */
	}
	nfds = (int)PT_REGS_PARM1(ctx);
	/* A select that waits for no connection has nothing to do at return: skip its trap. */
	return on_wait_enter(WAIT_SELECT, nfds < 0 ? 0 : nfds, PT_REGS_PARM2(ctx)) != 1;
}
