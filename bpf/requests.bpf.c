// SPDX-License-Identifier: GPL-2.0
/*
 * HTTP requests served by tracked workers, seen from the kernel's socket
 * layer: the sock_recv_length and sock_send_length tracepoints (es_req_recv,
 * es_req_send: they fire once a socket receive or send returns, in the
 * caller's syscall, whatever the call: recv, recvfrom, recvmsg, read,
 * send, sendto, sendmsg, write), and a plain entry uprobe over listen of
 * each worker's C library (es_req_io, user/requests/req_attach.c through
 * core/libc_uprobes.c). The tracepoints fire for every socket call of the
 * host: a socket no followed process could serve costs a look at the socket
 * and one bit of a small array (maybe_served(): req_ports), one that could
 * but in a process that is not an HTTP worker one more array load
 * (req_pids, written by user space as it attaches a worker). No uprobe trap
 * on a request's socket calls nor on close: a trap costs the worker about
 * 0.5 us on a VM, more than the programs here, and its PostgreSQL calls
 * and every close of a file paid it too. Not syscall tracepoints: those put
 * every syscall of the host on the kernel's slow path. Not the TCP state
 * tracepoint for the close either: it fires ~5 times a connection at each
 * end, host-wide (10 runs a request on loopback, more than the request's
 * own), to learn what the next read of the descriptor or user space's
 * sweep learns for free (below).
 *
 * The descriptor and the user buffer come from the registers the task
 * entered its syscall with (sysargs.bpf.h); the socket from the tracepoint.
 * Accept is not hooked: the TCP ports a process listens on (req_listen) are
 * noted by user space before it attaches (inherited listeners: prefork
 * workers) and at listen()'s entry after (a server starting up).
 * - A call on a socket no followed process could serve (maybe_served(): a
 *   TCP port none listens on, a UNIX socket without an address of its own:
 *   a worker's PostgreSQL connection) stops at that, whoever makes it.
 * - A receive on a descriptor not seen before looks at its socket: the
 *   server's end of a connection (served()) is followed (tgid, fd); any
 *   other is remembered as ignored, with its socket's inode number: a read
 *   that finds another socket under the descriptor starts over (the last
 *   one was closed: its open request ends). The entry is kept for the next
 *   socket of its number.
 * - A receive that returns bytes on a followed connection with no request
 *   open begins a request; user space gets its first ES_REQ_CAP bytes,
 *   parses the request line (and the head of a JSON-RPC/XML-RPC body) and
 *   keeps nothing else. A prefork worker's wait in its process's buffer
 *   (req_pending) and go with the request's end, one ring record instead of
 *   two (user space reads the buffer of a request still open); others' go
 *   on the ring as they come.
 * - The first send after a request marks its response and reads the status
 *   code from "HTTP/1.x NNN". Each send of the response moves its end there,
 *   with the thread's totals read then: a request lasts from its first
 *   bytes received to its last bytes sent.
 * - The answer is out when the worker reads the connection again (keep-
 *   alive: the next request, the client's close, or a non-blocking read
 *   that finds nothing), or reads a new connection under the same
 *   descriptor (a prefork worker's next request): that ends the request
 *   here. One whose descriptor was closed and not reused since is ended by
 *   user space once /proc/<pid>/fd no longer names its socket (~0.3 s
 *   after its last send); its times are the kernel's all the same.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "maps.bpf.h"
#include "pg_client.h"
#include "reqtag.bpf.h"
#include "requests.h"
#include "ringbuf.bpf.h"
#include "sched.h"
#include "sched_run.bpf.h"
#include "sock.bpf.h"
#include "sysargs.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define REQ_EVENTS_SIZE (1024 * 1024)

/*
 * Set by user space before load: task_sched is the sched probe's, pg_clients
 * the pg probe's (else each is this object's own, always empty: not looked
 * in), and the Python probe reads req_serving (else nobody: not written).
 */
const volatile bool sched_shared = false;
const volatile bool pg_shared = false;
const volatile bool tag_serving = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ES_REQ_MAX_CONNS);
	__type(key, struct es_req_conn_key);
	__type(value, struct es_req_conn);
} req_conns SEC(".maps");

/*
 * The HTTP workers followed (tgid -> their index 1..ES_REQ_SLOT_PROCS, 0
 * when they have none), written by user space: all of them, and those
 * req_pids has no room for (requests.h) are looked up here.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, ES_REQ_MAX_PROCS);
	__type(key, __u32);
	__type(value, __u32);
} req_procs SEC(".maps");

/* Direct-mapped by tgid, in front of req_procs (requests.h): mapped and written by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, ES_REQ_PIDS);
	__type(key, __u32);
	__type(value, __u64);
} req_pids SEC(".maps");

/*
 * The low descriptors of processes with an index (requests.h): a prefork
 * worker's connection is looked at five times a request, and an array
 * lookup is a few instructions where a hash lookup is a helper call.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ES_REQ_SLOTS);
	__type(key, __u32);
	__type(value, struct es_req_conn);
} req_slots SEC(".maps");

/*
 * The ports of req_listen (below), all processes together, a bit a port
 * (requests.h), for maybe_served(). 16 KiB: the kernel takes an array
 * this small from kmalloc (bpf_map_area_alloc(), up to 32 KiB), in its
 * linear map, where the large arrays here are vmalloc'd 4 KiB pages.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ES_REQ_PORT_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} req_ports SEC(".maps");

/* The TCP ports each process listens on: noted by user space and on_listen(). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ES_REQ_MAX_LISTEN);
	__type(key, struct es_req_listen_key);
	__type(value, __u8);
} req_listen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, REQ_EVENTS_SIZE);
} req_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} req_drops SEC(".maps");

/* Request bytes waiting for their end, one buffer per process with an index (requests.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, ES_REQ_SLOT_PROCS);
	__type(key, __u32);
	__type(value, struct es_req_pending);
} req_pending SEC(".maps");

/* A data event is built here, then only its filled part goes on the ring. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct es_req_data);
} req_scratch SEC(".maps");

/* The sched probe's per-task state, shared (user space reuses its fd). */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct es_task_sched);
} task_sched SEC(".maps");

/* The pg probe's per-client statement totals, shared likewise. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ES_PG_CLIENTS_MAX);
	__type(key, __u32);
	__type(value, struct es_pg_client);
} pg_clients SEC(".maps");

/* net/unix/af_unix.c unix_autobind(): the family and "\0" + 5 hex digits. */
#define UNIX_AUTOBIND_LEN (2 + 6)

/* include/linux/socket.h: a peek is read again by the next receive. */
#define ES_MSG_PEEK 2
/* include/uapi/asm-generic/errno*.h: the client went away. */
#define ES_EPIPE 32
#define ES_ECONNRESET 104

/* n, at most ES_REQ_CAP, in a form the verifier keeps the bound of after a spill. */
static __always_inline __u32 cap_len(__u32 n)
{
	asm volatile("" : "+r"(n));
	n &= 2 * ES_REQ_CAP - 1;
	return n > ES_REQ_CAP ? ES_REQ_CAP : n;
}

/* The same for what follows the first ES_REQ_HEAD_CAP bytes. */
static __always_inline __u32 rest_len(__u32 n)
{
	asm volatile("" : "+r"(n));
	n &= 2 * ES_REQ_CAP - 1;
	return n > ES_REQ_CAP - ES_REQ_HEAD_CAP ? ES_REQ_CAP - ES_REQ_HEAD_CAP : n;
}

/*
 * Whether a request whose first ES_REQ_HEAD_PEEK bytes are d has nothing
 * user space reads past its request line: a method, a space and a target
 * in origin form ("/...") without "rpc" in what is seen of it (/jsonrpc,
 * /xmlrpc/2/object and the like name the RPC in the body). When unsure
 * (no such start: garbage, an absolute target), false: all is kept.
 */
static __always_inline bool head_only(const __u8 *d)
{
	int t = 0;

	for (int i = 1; i <= 8; i++) {
		if (d[i] == ' ') {
			t = i + 1;
			break;
		}
	}
	if (!t || d[t] != '/')
		return false;
	for (int i = 0; i + 2 < ES_REQ_HEAD_PEEK; i++) {
		if (d[i] == 'r' && d[i + 1] == 'p' && d[i + 2] == 'c')
			return false;
	}
	return true;
}

/*
 * A request's first bytes, n (at most ES_REQ_CAP) of them from buf, into
 * d (ES_REQ_CAP long at least): the first ES_REQ_HEAD_CAP, then the rest
 * only when head_only() does not say the request line is all user space
 * reads; when it does, c->cap drops to ES_REQ_HEAD_CAP. Returns the bytes
 * copied.
 */
static __always_inline __u32 capture_first(struct es_req_conn *c, __u8 *d, const void *buf,
					   __u32 n)
{
	__u32 head = n < ES_REQ_HEAD_CAP ? n : ES_REQ_HEAD_CAP, rest;

	head = cap_len(head);
	if (bpf_probe_read_user(d, head, buf))
		return 0;
	if (head >= ES_REQ_HEAD_PEEK && head_only(d)) {
		c->cap = ES_REQ_HEAD_CAP;
		return head;
	}
	if (n <= head)
		return head;
	rest = rest_len(n - head);
	if (bpf_probe_read_user(d + ES_REQ_HEAD_CAP, rest, buf + ES_REQ_HEAD_CAP))
		return head;
	return head + rest;
}

static __always_inline void count_drop(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&req_drops, &zero);

	if (n)
		*n += 1;
}

/*
 * The thread's interval open now: it runs (this is its own syscall), so CPU
 * time. When the sched probe still has it off the CPU, its switch-in went
 * unseen (sched_run.bpf.h): its current run is CPU time, the rest of the
 * interval its off-CPU state's.
 */
static __always_inline void add_open(__u64 *t, const struct es_task_sched *s,
				     struct task_struct *cur, __u64 now)
{
	__u64 start;
	__u32 idx;

	if (!s->ts || now <= s->ts)
		return;
	if (s->state == ES_ST_ONCPU) {
		t[ES_REQ_T_CPU] += now - s->ts;
		return;
	}
	if (s->state < ES_ST_OFF)
		return;
	start = run_began(cur->se.sum_exec_runtime, cur->se.prev_sum_exec_runtime, now, s->ts);
	t[ES_REQ_T_CPU] += now - start;
	idx = s->state - ES_ST_OFF;
	/* Hide the range check from the compiler so the mask the verifier needs stays. */
	asm volatile("" : "+r"(idx));
	idx &= ES_OFF_COUNT - 1;
	t[1 + idx] += start - s->ts;
}

/*
 * The current thread's and process's running totals now (enum es_req_total);
 * returns which could be read.
 */
static __always_inline __u32 read_totals(__u64 *t, __u32 tgid, __u64 now)
{
	struct task_struct *cur = bpf_get_current_task_btf();
	struct es_task_sched *s;
	struct es_pg_client *pg;
	__u32 ok = 0;

	s = sched_shared ? bpf_task_storage_get(&task_sched, cur, NULL, 0) : NULL;
	if (s) {
		for (int i = 0; i < ES_ACC_COUNT; i++)
			t[i] = s->acc_ns[i];
		add_open(t, s, cur, now);
		ok |= ES_REQ_OK_SCHED;
	}
	if (!pg_shared)
		return ok;
	pg = bpf_map_lookup_elem(&pg_clients, &tgid);
	t[ES_REQ_T_PG_NS] = pg ? pg->ns : 0;
	t[ES_REQ_T_PG_STMTS] = pg ? pg->stmts : 0;
	return ok | ES_REQ_OK_PG;
}

/* The end's fields of a request (es_req_done, es_req_pending.done). */
static __always_inline void fill_done(struct es_req_done *ev, const struct es_req_conn_key *k,
				      const struct es_req_conn *c, __u32 type, __u32 reason,
				      __u64 now)
{
	ev->type = type;
	ev->tgid = k->tgid;
	ev->tid = c->tid;
	ev->fd = k->fd;
	ev->conn_id = c->conn_id;
	ev->ts_ns = now;
	ev->seq = c->seq;
	ev->reason = reason;
	ev->start_ns = c->start_ns;
	ev->resp_ns = c->resp_ns;
	ev->end_ns = c->end_ns;
	ev->eof = c->eof;
	__builtin_memcpy(ev->status, c->status, sizeof(ev->status));
	ev->parts_ok = c->start_ok & c->end_ok;
	ev->pad = 0;
	for (int i = 0; i < ES_REQ_T_COUNT; i++)
		ev->parts[i] = c->at_end[i] > c->at_start[i] ? c->at_end[i] - c->at_start[i] : 0;
}

/* The request's end with its bytes from its process's buffer, which is free again. */
static __always_inline void send_full(const struct es_req_conn_key *k, struct es_req_conn *c,
				      __u32 slot, __u32 reason, __u64 now)
{
	__u32 idx = slot / ES_REQ_KEEP_FD, n;
	struct es_req_pending *p = bpf_map_lookup_elem(&req_pending, &idx);

	c->pending = 0;
	if (!p)
		return;
	fill_done(&p->done, k, c, ES_REQ_EV_FULL, reason, now);
	n = p->len;
	n = cap_len(n);
	if (bpf_ringbuf_output(&req_events, p, __builtin_offsetof(struct es_req_pending, data) + n,
			       es_rb_lazy(&req_events, REQ_EVENTS_SIZE)))
		count_drop();
	p->busy = 0;
}

static __always_inline void send_done(const struct es_req_conn_key *k, struct es_req_conn *c,
				      __u32 slot, __u32 reason, __u64 now)
{
	struct es_req_done *ev;

	if (tag_serving)
		req_serving_end(c->tid, c->conn_id, c->seq);
	if (c->pending) {
		send_full(k, c, slot, reason, now);
		return;
	}
	ev = bpf_ringbuf_reserve(&req_events, sizeof(*ev), 0);
	if (!ev) {
		count_drop();
		return;
	}
	fill_done(ev, k, c, ES_REQ_EV_DONE, reason, now);
	bpf_ringbuf_submit(ev, es_rb_lazy(&req_events, REQ_EVENTS_SIZE));
}

/* sk's local port when it is a TCP socket, else 0. */
static __always_inline __u16 tcp_port(struct sock *sk)
{
	__u16 family = sk->__sk_common.skc_family;

	if ((family != ES_AF_INET && family != ES_AF_INET6) || sk->sk_protocol != ES_IPPROTO_TCP)
		return 0;
	return sk->__sk_common.skc_num;
}

/*
 * Whether sk is a UNIX stream socket with an address of its own: an
 * accepted one shares its listener's, a client's has none unless the kernel
 * autobound one (SO_PASSCRED: an abstract name of 5 hex digits, left out).
 */
static __always_inline bool unix_served(struct sock *sk)
{
	struct unix_address *a;
	struct unix_sock *u;

	if (sk->__sk_common.skc_family != ES_AF_UNIX || sk->sk_type != ES_SOCK_STREAM)
		return false;
	u = bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct unix_sock));
	a = u->addr;
	if (!a)
		return false;
	return !(a->len == UNIX_AUTOBIND_LEN && a->name[0].sun_path[0] == 0);
}

/*
 * Whether sk may be the server's end of a followed connection, from the
 * socket alone: a TCP socket on a port some followed process listens on
 * (req_ports), or unix_served(). Asked first at every socket call of the
 * host, before anything of the caller's: the socket's lines are warm (the
 * call just used them). A worker's PostgreSQL and outbound connections stop
 * here too, where each of their calls looked up the worker's entry for the
 * descriptor.
 */
static __always_inline bool maybe_served(struct sock *sk)
{
	__u32 port, word;
	__u64 *u, *b;

	if (!sk)
		return false;
	port = tcp_port(sk);
	if (!port)
		return unix_served(sk);
	word = 2 * (port / 64);
	u = bpf_map_lookup_elem(&req_ports, &word);
	word++;
	b = bpf_map_lookup_elem(&req_ports, &word);
	return u && b && ((*u | *b) >> (port % 64)) & 1;
}

/*
 * Whether sk (k's descriptor's socket) is the server's end of a connection:
 * a TCP socket on a port the process listens on (req_listen), or
 * unix_served(). *port: in, the port the descriptor's last connection was
 * served on (taken without a lookup: a prefork worker's next connection);
 * out, this one's, or 0.
 */
static __always_inline bool served(const struct es_req_conn_key *k, struct sock *sk, __u32 *port)
{
	struct es_req_listen_key lk = { .tgid = k->tgid };
	__u32 last = *port;

	*port = 0;
	if (!sk)
		return false;
	lk.port = tcp_port(sk);
	if (lk.port) {
		if (lk.port != last && !bpf_map_lookup_elem(&req_listen, &lk))
			return false;
		*port = lk.port;
		return true;
	}
	return unix_served(sk);
}

/* listen()'s entry: the process will accept on this socket's port (bound by now). */
static __always_inline void on_listen(__u32 tgid, __s32 fd)
{
	struct es_req_listen_key lk = { .tgid = tgid };
	struct sock *sk = fd_sock_direct(fd);
	__u8 one = 1;
	__u32 word;
	__u64 *b;

	if (!sk)
		return;
	lk.port = tcp_port(sk);
	if (!lk.port)
		return;
	if (bpf_map_update_elem(&req_listen, &lk, &one, BPF_ANY) == -E2BIG)
		es_map_error(ES_MAP_REQ_LISTEN);
	word = 2 * (lk.port / 64) + 1;
	b = bpf_map_lookup_elem(&req_ports, &word);
	if (b)
		__sync_fetch_and_or(b, 1ull << (lk.port % 64));
}

/* k's entry: its slot (slot_of()) when its process's, else from req_conns; NULL: none. */
static __always_inline struct es_req_conn *conn_find(const struct es_req_conn_key *k, __u32 slot)
{
	struct es_req_conn *c;

	if (slot == ES_REQ_NO_SLOT)
		return bpf_map_lookup_elem(&req_conns, k);
	c = bpf_map_lookup_elem(&req_slots, &slot);
	return c && c->tgid == k->tgid ? c : NULL;
}

/* Where k's entry is: a req_slots index from its process's index (requests.h), or none. */
static __always_inline __u32 slot_of(const struct es_req_conn_key *k, __u32 proc)
{
	if (!proc || proc > ES_REQ_SLOT_PROCS || k->fd >= ES_REQ_KEEP_FD)
		return ES_REQ_NO_SLOT;
	return (proc - 1) * ES_REQ_KEEP_FD + (__u32)k->fd;
}

/*
 * A descriptor seen for the first time, or again after its close (old, its
 * entry: reused in place, no delete and insert per connection): followed
 * when it is the server's end of a connection, else ignored until another
 * socket (ino) is found under its number.
 */
static __always_inline struct es_req_conn *adopt(const struct es_req_conn_key *k, struct sock *sk,
						 __u64 ino, struct es_req_conn *old, __u32 slot)
{
	struct es_req_conn c = { .tgid = k->tgid, .port = old ? old->port : 0, .ino = ino };
	long err;

	if (!served(k, sk, &c.port))
		c.state = ES_REQ_S_IGNORED;
	/* A slot is the process's to take, whoever held it before. */
	if (!old && slot != ES_REQ_NO_SLOT)
		old = bpf_map_lookup_elem(&req_slots, &slot);
	if (old) {
		/* The rest is set when a request begins. */
		old->conn_id = 0;
		old->seq = 0;
		old->state = c.state;
		old->tgid = k->tgid;
		old->port = c.port;
		old->ino = ino;
		old->pending = 0; /* a slot taken over: the buffer was never this process's */
		return old;
	}
	err = bpf_map_update_elem(&req_conns, k, &c, BPF_NOEXIST);
	/* Full: a connection is lost (counted); an ignored one is just looked at again. */
	if (err == -E2BIG && c.state != ES_REQ_S_IGNORED)
		es_map_error(ES_MAP_REQ_CONNS);
	return bpf_map_lookup_elem(&req_conns, k);
}

/*
 * A request beginning on c (slot: its entry's) takes its process's buffer
 * when it is free: its bytes then wait there for its end (send_full()).
 */
static __always_inline void pending_take(const struct es_req_conn_key *k, struct es_req_conn *c,
					 __u32 slot)
{
	__u32 idx = slot / ES_REQ_KEEP_FD;
	struct es_req_pending *p;

	if (slot == ES_REQ_NO_SLOT)
		return;
	p = bpf_map_lookup_elem(&req_pending, &idx);
	/* Another thread's request has it: this one's bytes go on the ring. */
	if (!p || __sync_val_compare_and_swap(&p->busy, 0, 1) != 0)
		return;
	p->len = 0;
	p->done.type = 0;
	p->done.tgid = k->tgid;
	p->done.tid = c->tid;
	p->done.fd = k->fd;
	p->done.conn_id = c->conn_id;
	p->done.seq = c->seq;
	p->done.start_ns = c->start_ns;
	c->pending = 1;
}

/* The next bytes of a request whose bytes wait in its process's buffer. */
static __always_inline __u32 pending_capture(struct es_req_conn *c, __u32 slot, const void *buf,
					     __u64 ret)
{
	__u32 idx = slot / ES_REQ_KEEP_FD, off, n;
	struct es_req_pending *p = bpf_map_lookup_elem(&req_pending, &idx);

	if (!p)
		return 0;
	off = p->len;
	if (off >= c->cap || c->cap > ES_REQ_CAP)
		return 0;
	n = ret < c->cap - off ? (__u32)ret : c->cap - off;
	if (!off) {
		n = capture_first(c, p->data, buf, n);
		asm volatile("" ::: "memory");
		p->len = n;
		return n;
	}
	/* Kept from the compiler, so the verifier sees the bound after a spill. */
	asm volatile("" : "+r"(off));
	off &= ES_REQ_CAP - 1;
	n = cap_len(n);
	if (bpf_probe_read_user(p->data + off, n, buf))
		return 0;
	/* After the bytes: a reader that sees the length sees them. */
	asm volatile("" ::: "memory");
	p->len = off + n;
	return n;
}

/* Sends the next bytes of the open request to user space, up to ES_REQ_CAP in all. */
static __always_inline void capture(const struct es_req_conn_key *k, struct es_req_conn *c,
				    __u32 slot, const void *buf, __u64 ret, __u32 tid, __u64 now)
{
	__u32 zero = 0, n, room;
	struct es_req_data *ev;

	if (c->captured >= c->cap || c->cap > ES_REQ_CAP)
		return;
	if (c->pending) {
		c->captured += pending_capture(c, slot, buf, ret);
		return;
	}
	ev = bpf_map_lookup_elem(&req_scratch, &zero);
	if (!ev)
		return;
	room = c->cap - c->captured;
	n = ret < room ? (__u32)ret : room;
	ev->type = ES_REQ_EV_DATA;
	ev->tgid = k->tgid;
	ev->tid = tid;
	ev->fd = k->fd;
	ev->conn_id = c->conn_id;
	ev->ts_ns = now;
	ev->seq = c->seq;
	ev->slot = slot;
	ev->pad = 0;
	n = cap_len(n);
	if (!c->captured)
		n = capture_first(c, (__u8 *)ev->data, buf, n);
	else if (bpf_probe_read_user(ev->data, n, buf))
		n = 0;
	ev->len = n;
	c->captured += n;
	n = cap_len(n);
	if (bpf_ringbuf_output(&req_events, ev, __builtin_offsetof(struct es_req_data, data) + n,
			       es_rb_lazy(&req_events, REQ_EVENTS_SIZE)))
		count_drop();
}


/*
 * The request's answer is out (the worker reads the connection again or
 * closes it): its end. Its time and the thread's totals there were taken at
 * its last send (es_req_send).
 */
static __always_inline void finish(const struct es_req_conn_key *k, struct es_req_conn *c,
				   __u32 slot, __u32 reason, __u64 now)
{
	send_done(k, c, slot, reason, now);
	c->state = ES_REQ_S_IDLE;
}

/* The connection is closed or shut down (or found replaced): its open request ends. */
static __always_inline void end_open(const struct es_req_conn_key *k, struct es_req_conn *c,
				     __u32 slot, __u64 now)
{
	if (c->state == ES_REQ_S_REQ || c->state == ES_REQ_S_RESP)
		finish(k, c, slot, ES_REQ_END_CLOSE, now);
}

/* A session: the answer was "101 Switching Protocols"; it lasts until the close. */
static __always_inline bool in_session(const struct es_req_conn *c)
{
	return c->state == ES_REQ_S_RESP && c->status[0] == '1' && c->status[1] == '0' &&
	       c->status[2] == '1';
}

/* The first bytes of a response: "HTTP/1.1 200 ..." -> "200". */
static __always_inline void read_status(struct es_req_conn *c, const void *buf)
{
	char line[12];

	if (bpf_probe_read_user(line, sizeof(line), buf))
		return;
	if (line[0] != 'H' || line[1] != 'T' || line[2] != 'T' || line[3] != 'P' ||
	    line[4] != '/' || line[8] != ' ')
		return;
	for (int i = 0; i < 3; i++) {
		if (line[9 + i] < '0' || line[9 + i] > '9')
			return;
	}
	c->status[0] = line[9];
	c->status[1] = line[10];
	c->status[2] = line[11];
	c->status[3] = 0;
}

/* The first buffer of an iovec array: *len its length; NULL when unreadable. */
static __always_inline const void *iov_first(const struct iovec *iov, __u64 *len)
{
	struct iovec v;

	if (!iov || bpf_probe_read_user(&v, sizeof(v), iov))
		return NULL;
	*len = v.iov_len;
	return v.iov_base;
}

/* The first buffer of a msghdr's iovec array, as iov_first(). */
static __always_inline const void *msg_first(const struct user_msghdr *m, __u64 *len)
{
	struct iovec *iov = NULL;

	if (!m || bpf_probe_read_user(&iov, sizeof(iov), &m->msg_iov))
		return NULL;
	return iov_first(iov, len);
}

/*
 * Where the current syscall's bytes are: the buffer (or the first of its
 * iovecs) and its length; NULL when the call names none (sendfile).
 */
static __always_inline const void *sys_buf(const struct es_sysargs *a, __u64 *len)
{
	*len = a->arg[2];
	switch (a->nr) {
	case ES_NR_READ:
	case ES_NR_RECVFROM:
	case ES_NR_WRITE:
	case ES_NR_SENDTO:
		return (const void *)a->arg[1];
	case ES_NR_RECVMSG:
	case ES_NR_SENDMSG:
		return msg_first((const struct user_msghdr *)a->arg[1], len);
	case ES_NR_READV:
	case ES_NR_WRITEV:
		return iov_first((const struct iovec *)a->arg[1], len);
	}
	return NULL;
}

static __always_inline bool sys_is_recv(long nr)
{
	return nr == ES_NR_RECVFROM || nr == ES_NR_READ || nr == ES_NR_RECVMSG ||
	       nr == ES_NR_READV;
}

static __always_inline bool sys_is_send(long nr)
{
	return nr == ES_NR_SENDTO || nr == ES_NR_WRITE || nr == ES_NR_SENDMSG ||
	       nr == ES_NR_WRITEV || nr == ES_NR_SENDFILE;
}

/*
 * The current process's index when it is an HTTP worker followed (0: no
 * array slots), and its syscall's arguments; false for every other caller.
 */
static __always_inline bool follower(__u32 tgid, __u32 *proc, struct es_sysargs *a)
{
	__u32 low = tgid & (ES_REQ_PIDS - 1), *idx;
	__u64 *e = bpf_map_lookup_elem(&req_pids, &low), v;

	if (!e)
		return false;
	v = *e;
	if ((__u32)v == tgid && tgid) {
		*proc = (__u32)(v >> 32) & ~ES_REQ_PID_MORE;
	} else {
		if (!((__u32)(v >> 32) & ES_REQ_PID_MORE))
			return false;
		idx = bpf_map_lookup_elem(&req_procs, &tgid);
		if (!idx)
			return false;
		*proc = *idx;
	}
	current_sysargs(a);
	return true;
}

/*
 * The descriptor the current syscall names (its first argument) into k,
 * and where its entry is (slot_of()); false when it is out of range.
 */
static __always_inline bool sys_fd(struct es_req_conn_key *k, const struct es_sysargs *a,
				   __u32 proc, __u32 *slot)
{
	k->fd = (__s32)a->arg[0];
	if (k->fd < 0 || k->fd >= ES_REQ_MAX_FD)
		return false;
	*slot = slot_of(k, proc);
	return true;
}

/* A receive on a worker's socket returned ret: the last answer is out, or a request's bytes came. */
static __always_inline void on_recv(struct sock *sk, int ret, int flags)
{
	__u64 id = bpf_get_current_pid_tgid(), now, len, ino = 0;
	__u32 tgid = id >> 32, tid = (__u32)id, proc, slot;
	struct es_req_conn_key k = { .tgid = tgid };
	struct es_req_conn *c;
	struct es_sysargs a;
	const void *buf;

	if (!maybe_served(sk) || !follower(tgid, &proc, &a) || !sys_is_recv(a.nr) ||
	    (flags & ES_MSG_PEEK) || !sys_fd(&k, &a, proc, &slot))
		return;
	c = conn_find(&k, slot);
	if (c && c->state != ES_REQ_S_CLOSED) {
		ino = sock_ino(sk);
		/* Another socket under the number: the last one's close went unseen. */
		if (c->ino != ino) {
			end_open(&k, c, slot, bpf_ktime_get_ns());
			c->state = ES_REQ_S_CLOSED;
		}
	}
	if (!c || c->state == ES_REQ_S_CLOSED)
		c = adopt(&k, sk, ino ? ino : sock_ino(sk), c, slot);
	if (!c || c->state >= ES_REQ_S_IGNORED)
		return;
	now = bpf_ktime_get_ns();
	/* Reading again: the last answer is out, unless this is a session. */
	if (c->state == ES_REQ_S_RESP && !in_session(c))
		finish(&k, c, slot, ES_REQ_END_NEXT, now);
	if (ret == 0) {
		c->eof = 1;
		return;
	}
	if (ret < 0) {
		/* The client reset it mid-request: no answer will go; the close (or a read) ends it. */
		if (ret == -ES_ECONNRESET && c->state == ES_REQ_S_REQ)
			c->end_ns = now;
		return; /* EAGAIN of a non-blocking socket */
	}
	if (c->state == ES_REQ_S_RESP)
		return; /* a session after "101 Switching Protocols" */
	if (c->state == ES_REQ_S_IDLE) {
		c->state = ES_REQ_S_REQ;
		if (!c->conn_id)
			c->conn_id = now;
		c->seq++;
		c->start_ns = now;
		c->resp_ns = 0;
		c->end_ns = 0;
		c->tid = tid;
		if (tag_serving)
			req_serving_begin(c->conn_id, c->seq, k.fd, now);
		c->captured = 0;
		c->cap = ES_REQ_CAP;
		c->eof = 0;
		__builtin_memset(c->status, 0, sizeof(c->status));
		c->start_ok = read_totals(c->at_start, tgid, now);
		c->end_ok = 0;
		pending_take(&k, c, slot);
	}
	buf = sys_buf(&a, &len);
	if (buf)
		capture(&k, c, slot, buf, (__u64)ret < len ? (__u64)ret : len, tid, now);
	/* Bytes past the first iovec are not read: later ones would not follow on. */
	if (!buf || (__u64)ret > len)
		c->captured = ES_REQ_CAP;
}

/*
 * A send on a worker's socket returned: the first after a request begins
 * its answer; each moves the request's end to now, with the sending
 * thread's totals (a worker that dies now ended here).
 */
static __always_inline void on_send(struct sock *sk, int ret)
{
	__u64 id = bpf_get_current_pid_tgid(), now, len;
	__u32 tgid = id >> 32, tid = (__u32)id, proc, slot;
	struct es_req_conn_key k = { .tgid = tgid };
	struct es_req_conn *c;
	struct es_sysargs a;
	const void *buf;

	if (!maybe_served(sk) || !follower(tgid, &proc, &a) || !sys_is_send(a.nr) ||
	    (ret <= 0 && ret != -ES_EPIPE && ret != -ES_ECONNRESET) || !sys_fd(&k, &a, proc, &slot))
		return;
	c = conn_find(&k, slot);
	if (!c || c->state < ES_REQ_S_REQ || c->state >= ES_REQ_S_IGNORED)
		return;
	/* A session's frames (a websocket): counted, never timed, so no clock nor totals. */
	if (in_session(c))
		return;
	now = bpf_ktime_get_ns();
	if (ret < 0) {
		/* The client went away before the answer: its end, though the close may come later. */
		if (c->state == ES_REQ_S_REQ)
			c->end_ns = now;
		return;
	}
	if (c->state == ES_REQ_S_REQ) {
		buf = sys_buf(&a, &len);
		if (buf && len >= 12)
			read_status(c, buf);
		/* "100 Continue" and the like: the request goes on (101 starts a session). */
		if (c->status[0] == '1' && !(c->status[1] == '0' && c->status[2] == '1')) {
			__builtin_memset(c->status, 0, sizeof(c->status));
			return;
		}
		c->state = ES_REQ_S_RESP;
		c->resp_ns = now;
		if (tag_serving && tid == c->tid)
			req_serving_answered(c->conn_id, c->seq);
	}
	c->end_ns = now;
	/* Another thread answering: its times are not the receiver's. */
	c->end_ok = tid == c->tid ? read_totals(c->at_end, tgid, now) : 0;
}

/*
 * The tracepoints, typed (tp_btf) or, where that flavour is not picked
 * (--bpf.attach-mode, feature probe), raw: the socket is then cast to a
 * pointer the program may load through.
 */
SEC("tp_btf/sock_recv_length")
int BPF_PROG(es_req_recv, struct sock *sk, int ret, int flags)
{
	on_recv(sk, ret, flags);
	return 0;
}

SEC("raw_tp/sock_recv_length")
int BPF_PROG(es_req_recv_r, struct sock *sk, int ret, int flags)
{
	on_recv(bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct sock)), ret, flags);
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(es_req_send, struct sock *sk, int ret, int flags)
{
	on_send(sk, ret);
	return 0;
}

SEC("raw_tp/sock_send_length")
int BPF_PROG(es_req_send_r, struct sock *sk, int ret, int flags)
{
	on_send(bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct sock)), ret);
	return 0;
}

/* listen: a plain entry uprobe on the worker's C library, no return ever. */
SEC("uprobe")
int es_req_io(struct pt_regs *ctx)
{
	__s32 fd = (__s32)PT_REGS_PARM1(ctx);

	if (fd >= 0 && fd < ES_REQ_MAX_FD && (__u32)bpf_get_attach_cookie(ctx) == ES_REQ_HOOK_LISTEN)
		on_listen(bpf_get_current_pid_tgid() >> 32, fd);
	return 0;
}
