// SPDX-License-Identifier: GPL-2.0
/*
 * Requests in flight, one record per followed connection (tgid, fd) with a
 * request open: the bytes of its head until they are parsed (then wiped),
 * and when it began. A DONE event from the kernel counts it; a worker that
 * died first has its requests counted by the sweep: "killed" when no
 * answer was being sent. The kernel ends a request when the worker's next
 * read of its descriptor returns: one whose thread blocks in that read
 * (a keep-alive client that sends nothing yet) is counted by the sweep
 * from the kernel's entry ("settled"), and its end event then only frees it;
 * so is one whose descriptor was closed (the kernel side hooks no close)
 * and not read since, found by its /proc link.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "requests.skel.h"
#include "core/clock.h"
#include "core/erpscope.h"
#include "core/log.h"
#include "core/strcopy.h"
#include "core/worker_note.h"
#include "procs/proctable.h"
#include "requests/requests.h"

#define NBUCKETS 4096
/* An answer whose last send is this old, its thread blocked reading the connection, is out. */
#define IDLE_SETTLE_NS (200 * 1000000ull)
/* A thread found elsewhere (polling with a timeout) is looked at again after this. */
#define IDLE_RECHECK_NS (1000 * 1000000ull)
/* A session's descriptor is looked at this often at least, however old. */
#define CLOSED_RECHECK_MAX_NS (30 * 1000000000ull)

struct req_conn {
	struct req_conn *next;
	__u32 tgid;
	__s32 fd;
	__u64 conn_id;
	__u32 seq;
	__u32 tid; /* the serving thread (for where the time went, later) */
	__u32 kslot; /* the kernel's entry: its req_slots index, or ES_REQ_NO_SLOT (req_conns) */
	__u32 fed; /* bytes of the request parsed so far */
	__u64 start_ns;
	__u64 starttime; /* of the worker: a reused pid is another process */
	enum es_role role;
	unsigned int orphan; /* sweeps that found no kernel entry for it */
	unsigned int noted; /* 0, 1: its route is in the worker's note, 2: with its RPC */
	bool answered; /* its answer began (seen by a sweep): no longer in the note */
	bool settled; /* counted by the sweep (an idle keep-alive wait): its end event only frees it */
	uint64_t idle_checked_ns; /* when the sweep last read its thread's syscall */
	uint64_t fd_checked_ns; /* when the sweep last read its descriptor's link */
	struct req_acc *acc; /* the parser's; NULL once settled (settle_from_kernel()) */
};

static unsigned int bucket(__u32 tgid, __s32 fd)
{
	return (tgid * 2654435761u ^ (__u32)fd * 40503u) % NBUCKETS;
}

int req_conns_init(struct req_priv *rp)
{
	rp->buckets = calloc(NBUCKETS, sizeof(*rp->buckets));
	return rp->buckets ? 0 : -ENOMEM;
}

/* The worker's note (core/worker_note.h) of this request. */
static uint64_t note_owner(const struct req_conn *c)
{
	return c->conn_id ^ ((uint64_t)(__u32)c->fd << 44) ^ ((uint64_t)c->seq << 24);
}

static void conn_note_clear(struct req_priv *rp, struct req_conn *c)
{
	if (c->noted)
		worker_note_clear(rp->es->notes, c->tgid, note_owner(c));
	c->noted = 0;
}

/* The parser's buffer goes, wiped: what the request held is no longer needed. */
static void acc_drop(struct req_conn *c)
{
	if (!c->acc)
		return;
	explicit_bzero(c->acc, sizeof(*c->acc));
	free(c->acc);
	c->acc = NULL;
}

static void conn_free(struct req_priv *rp, struct req_conn **pp)
{
	struct req_conn *c = *pp;

	conn_note_clear(rp, c);
	*pp = c->next;
	acc_drop(c);
	free(c);
	rp->nconns--;
}

void req_conns_free(struct req_priv *rp)
{
	if (!rp->buckets)
		return;
	for (unsigned int b = 0; b < NBUCKETS; b++) {
		while (rp->buckets[b])
			conn_free(rp, &rp->buckets[b]);
	}
	free(rp->buckets);
	rp->buckets = NULL;
}

/*
 * Request (conn_id, seq) of (tgid, fd)'s record, or where to link it. A
 * descriptor may hold two: a kept buffer read (req_pending.c) can see the
 * next request begin before the ring brings the last one's end.
 */
static struct req_conn **find(struct req_priv *rp, __u32 tgid, __s32 fd, __u64 conn_id,
			      __u32 seq)
{
	struct req_conn **pp = &rp->buckets[bucket(tgid, fd)];

	while (*pp && ((*pp)->tgid != tgid || (*pp)->fd != fd || (*pp)->conn_id != conn_id ||
		       (*pp)->seq != seq))
		pp = &(*pp)->next;
	return pp;
}

/* A descriptor's requests come in order: connections by their first start, then seq. */
static bool before(const struct req_conn *c, __u64 conn_id, __u32 seq)
{
	return c->conn_id < conn_id || (c->conn_id == conn_id && c->seq < seq);
}

/*
 * The ring brings a descriptor's events in order: when one of request
 * (conn_id, seq) comes, an earlier request of the descriptor still without
 * its end lost it (a full ring), and is not counted.
 */
static void drop_earlier(struct req_priv *rp, __u32 tgid, __s32 fd, __u64 conn_id, __u32 seq)
{
	struct req_conn **pp = &rp->buckets[bucket(tgid, fd)];

	while (*pp) {
		struct req_conn *c = *pp;

		if (c->tgid == tgid && c->fd == fd && before(c, conn_id, seq)) {
			if (!c->settled)
				rp->lost++;
			conn_free(rp, pp);
			continue;
		}
		pp = &c->next;
	}
}

static unsigned int code_of(const char *status)
{
	unsigned int v = 0;

	for (int i = 0; i < 3; i++) {
		if (status[i] < '0' || status[i] > '9')
			return REQ_CODE_UNKNOWN;
		v = v * 10 + (unsigned int)(status[i] - '0');
	}
	return v >= 100 && v <= 999 ? v : REQ_CODE_UNKNOWN;
}

void req_observe(struct req_priv *rp, enum es_role role, const struct req_head *h,
		 unsigned int code, uint64_t ns, const struct req_parts *parts)
{
	struct req_role *r;
	char key[2 * REQ_NAME_MAX + 2];

	if ((unsigned int)role >= ES_ROLE_COUNT)
		role = ES_ROLE_OTHER;
	r = &rp->roles[role];
	r->seen = true;
	if (h->fail && h->fail < REQ_FAIL_COUNT)
		r->failures[h->fail]++;
	if (h->pipelined)
		r->failures[REQ_FAIL_PIPELINED]++;
	if (h->session) {
		r->sessions[!strncmp(h->route, "/websocket", 10) ? REQ_SESS_WEBSOCKET :
								   REQ_SESS_LONGPOLLING]++;
		return;
	}
	if (r->routes)
		req_table_observe(r->routes, h->route, REQ_SUB(h->method, code), ns, parts);
	if (h->rpc && r->rpcs) {
		snprintf(key, sizeof(key), "%s %s", h->model, h->rpc_method);
		req_table_observe(r->rpcs, key, 0, ns, parts);
	}
}

/*
 * Where a request's time went, from the totals the kernel read at its start
 * and end (NULL when none were). gevent serves many requests on one thread
 * at once: its thread's time is not one request's, so it gets no parts.
 */
static const struct req_parts *parts_of(const struct req_conn *c, const struct es_req_done *ev,
					struct req_parts *p)
{
	uint64_t pg;

	memset(p, 0, sizeof(*p));
	if (!ev || c->role == ES_ROLE_ODOO_GEVENT || !ev->resp_ns)
		return NULL;
	p->sched = ev->parts_ok & ES_REQ_OK_SCHED;
	p->pg = ev->parts_ok & ES_REQ_OK_PG;
	if (p->sched) {
		for (int i = 0; i <= REQ_PART_SLEEP; i++)
			p->ns[i] = ev->parts[ES_REQ_T_CPU + i];
	}
	if (p->pg) {
		pg = ev->parts[ES_REQ_T_PG_NS];
		/*
		 * The worker sleeps in recv() while its statement runs: that wait
		 * is the pg part. Statements of another thread of the process
		 * (threaded servers) cannot make it more than the thread slept.
		 */
		if (p->sched) {
			if (pg > p->ns[REQ_PART_SLEEP])
				pg = p->ns[REQ_PART_SLEEP];
			p->ns[REQ_PART_SLEEP] -= pg;
		}
		p->ns[REQ_PART_PG] = pg;
		p->pg_stmts = ev->parts[ES_REQ_T_PG_STMTS];
	}
	return p->sched || p->pg ? p : NULL;
}

/* Names the request in its worker's note once its route (then its RPC) is known. */
static void note(struct req_priv *rp, struct req_conn *c)
{
	const struct req_head *h = &c->acc->head;
	unsigned int level = h->rpc ? 2 : h->route[0] ? 1 : 0;

	if (level <= c->noted || c->answered)
		return;
	c->noted = level;
	worker_note_set(rp->es->notes, c->tgid, note_owner(c), c->start_ns, h->route,
			h->rpc ? h->model : "", h->rpc ? h->rpc_method : "");
}

/* The kernel's entry of c's connection into *kc: -ENOENT when there is none. */
static int kconn_get(const struct req_priv *rp, const struct req_conn *c, struct es_req_conn *kc)
{
	struct es_req_conn_key k = { .tgid = c->tgid, .fd = c->fd };
	int err;

	if (c->kslot == ES_REQ_NO_SLOT)
		err = bpf_map_lookup_elem(bpf_map__fd(rp->skel->maps.req_conns), &k, kc);
	else
		err = bpf_map_lookup_elem(bpf_map__fd(rp->skel->maps.req_slots), &c->kslot, kc);
	/* A slot another process took since is not this connection's. */
	return err || kc->tgid != c->tgid ? -ENOENT : 0;
}

/* The same, and the entry goes: its worker is gone. */
static int kconn_take(const struct req_priv *rp, const struct req_conn *c, struct es_req_conn *kc)
{
	struct es_req_conn_key k = { .tgid = c->tgid, .fd = c->fd };
	struct es_req_conn zero = { 0 };
	int err;

	if (c->kslot == ES_REQ_NO_SLOT) {
		err = bpf_map_lookup_and_delete_elem(bpf_map__fd(rp->skel->maps.req_conns), &k, kc);
		return err || kc->tgid != c->tgid ? -ENOENT : 0;
	}
	err = kconn_get(rp, c, kc);
	if (!err)
		bpf_map_update_elem(bpf_map__fd(rp->skel->maps.req_slots), &c->kslot, &zero,
				    BPF_ANY);
	return err;
}

/* Its answer began: the kernel's record of the connection is at this request, answering. */
static bool answering(const struct req_conn *c, const struct es_req_conn *kc)
{
	return kc->conn_id == c->conn_id && kc->seq == c->seq && kc->state == ES_REQ_S_RESP;
}

/* Among the slowest of the window unless it is a long-lived session. */
static void keep_slow(struct req_priv *rp, const struct req_conn *c, const struct req_head *h,
		      unsigned int code, uint64_t end_ns, uint64_t ns)
{
	struct req_slow_entry *e;

	if (h->session)
		return;
	e = req_slow_place(rp->slow, (unsigned int)c->role, end_ns, ns);
	if (!e)
		return;
	*e = (struct req_slow_entry){
		.end_ns = end_ns, .ns = ns, .pid = c->tgid, .code = code, .method = h->method
	};
	str_copy(e->route, sizeof(e->route), h->route[0] ? h->route : "unparsed");
	if (h->rpc) {
		str_copy(e->model, sizeof(e->model), h->model);
		str_copy(e->rpc_method, sizeof(e->rpc_method), h->rpc_method);
	}
}

/* Counts what a record holds; ev: its end event, NULL when it has none. */
static void count(struct req_priv *rp, struct req_conn *c, unsigned int code, uint64_t end_ns,
		  const struct es_req_done *ev)
{
	const struct req_head *h = req_acc_finish(c->acc);
	uint64_t ns = end_ns > c->start_ns ? end_ns - c->start_ns : 0;
	struct req_parts parts;
	struct req_ended slow = { .tgid = c->tgid, .tid = c->tid, .role = c->role, .code = code,
				 .start_ns = c->start_ns, .end_ns = end_ns, .head = h,
				 .parts = parts_of(c, ev, &parts) };

	req_tag_end(rp, c->role, c->conn_id, c->seq, h);
	req_observe(rp, c->role, h, code, ns, slow.parts);
	req_slow_event(rp, &slow);
	req_trace(rp->es, &slow);
	keep_slow(rp, c, h, code, end_ns, ns);
	/* A killed worker's note stays for its worker_exit event (the oom probe's ring). */
	if (code == REQ_CODE_KILLED && c->noted) {
		worker_note_died(rp->es->notes, c->tgid, note_owner(c), clock_ms());
		c->noted = 0;
	}
}

/* Counts what a record holds and frees it. */
static void settle(struct req_priv *rp, struct req_conn **pp, unsigned int code, uint64_t end_ns,
		   const struct es_req_done *ev)
{
	count(rp, *pp, code, end_ns, ev);
	conn_free(rp, pp);
}

/*
 * Counts c now from the kernel's entry kc, as its end event (reason) would:
 * that event then only frees it.
 */
static void settle_from_kernel(struct req_priv *rp, struct req_conn *c,
			       const struct es_req_conn *kc, __u32 reason, uint64_t now)
{
	struct es_req_done ev = { .type = ES_REQ_EV_DONE,
				  .tgid = c->tgid,
				  .tid = c->tid,
				  .fd = c->fd,
				  .conn_id = c->conn_id,
				  .ts_ns = now,
				  .seq = c->seq,
				  .reason = reason,
				  .start_ns = kc->start_ns,
				  .resp_ns = kc->resp_ns,
				  .end_ns = kc->end_ns,
				  .eof = kc->eof,
				  .parts_ok = kc->start_ok & kc->end_ok };

	memcpy(ev.status, kc->status, sizeof(ev.status));
	for (int i = 0; i < ES_REQ_T_COUNT; i++)
		ev.parts[i] = kc->at_end[i] > kc->at_start[i] ? kc->at_end[i] - kc->at_start[i] : 0;
	c->start_ns = kc->start_ns;
	if (kc->resp_ns)
		count(rp, c, code_of(kc->status),
		      kc->end_ns > kc->resp_ns ? kc->end_ns : kc->resp_ns, &ev);
	else
		count(rp, c, REQ_CODE_RESET, kc->end_ns ? kc->end_ns : now, &ev);
	c->settled = true;
	/*
	 * It now waits for its end event (or its worker's exit) only to tell
	 * that event from a lost request's: its identity is enough. A gevent
	 * process's closed connections on high descriptors wait so until their
	 * number is read again.
	 */
	acc_drop(c);
}

/*
 * An answered request whose worker now waits in a read of its connection
 * (a keep-alive client that sends nothing yet): counted now from the
 * kernel's entry kc, as its end event would. Not a session (a websocket's
 * reads are its traffic), not an answer still being sent.
 */
static void settle_idle(struct req_priv *rp, struct req_conn *c, const struct es_req_conn *kc,
			uint64_t now)
{
	if (c->acc->head.session || !memcmp(kc->status, "101", 3) || !kc->resp_ns ||
	    now < kc->end_ns + IDLE_SETTLE_NS || now < c->idle_checked_ns + IDLE_RECHECK_NS)
		return;
	/* One /proc read a second at most per answered request, not one a sweep. */
	c->idle_checked_ns = now;
	if (!req_thread_reads(c->tgid, c->tid, c->fd))
		return;
	settle_from_kernel(rp, c, kc, ES_REQ_END_NEXT, now);
}

/*
 * A request whose connection was closed (the kernel side hooks no close)
 * and whose descriptor was not read since: counted from the kernel's entry
 * kc once the descriptor no longer names its socket. A worker's last
 * request before it goes idle ends so, ~0.3 s after its last send; one
 * followed by another on the same descriptor number ends at that one's
 * first read instead, in the kernel. One readlink 0.2 s after the
 * request's last sign of life, then one a second at most while it makes
 * none, an eighth of its age apart once older (at most
 * CLOSED_RECHECK_MAX_NS: a websocket session open for hours costs one
 * every 30 s). Unanswered, it is a reset, ending where the worker met the
 * reset, else when this sweep saw the close.
 */
static void settle_closed(struct req_priv *rp, struct req_conn *c, const struct es_req_conn *kc,
			  uint64_t now)
{
	uint64_t last = kc->end_ns > kc->start_ns ? kc->end_ns : kc->start_ns;
	/* A long-lived one (a websocket session) is looked at less often as it ages. */
	uint64_t every = now > kc->start_ns ? (now - kc->start_ns) / 8 : 0;

	if (every < IDLE_RECHECK_NS)
		every = IDLE_RECHECK_NS;
	if (every > CLOSED_RECHECK_MAX_NS)
		every = CLOSED_RECHECK_MAX_NS;
	if (kc->conn_id != c->conn_id || kc->seq != c->seq || !kc->ino ||
	    (kc->state != ES_REQ_S_REQ && kc->state != ES_REQ_S_RESP) ||
	    now < last + IDLE_SETTLE_NS)
		return;
	/* Looked at since its last send (a slow answer's link read while it ran): wait. */
	if (c->fd_checked_ns > last && now < c->fd_checked_ns + every)
		return;
	c->fd_checked_ns = now;
	if (req_fd_holds(c->tgid, c->fd, kc->ino) != 0)
		return;
	settle_from_kernel(rp, c, kc, ES_REQ_END_CLOSE, now);
	c->answered = true;
	conn_note_clear(rp, c);
}

void req_conns_foreach(const struct req_priv *rp, req_inflight_fn fn, void *arg)
{
	for (unsigned int b = 0; rp->buckets && b < NBUCKETS; b++) {
		for (const struct req_conn *c = rp->buckets[b]; c; c = c->next) {
			struct req_inflight r = { .tgid = c->tgid,
						  .tid = c->tid,
						  .role = c->role,
						  .start_ns = c->start_ns };
			struct es_req_conn kc;

			/* Its answer began: the worker is done with it (a settled one's long since). */
			if (c->answered || !c->acc || kconn_get(rp, c, &kc) || answering(c, &kc))
				continue;
			r.head = &c->acc->head;
			fn(arg, &r);
		}
	}
}

void req_conns_bytes(struct req_priv *rp, const struct req_bytes *b)
{
	struct req_conn **pp, *c;
	const struct worker *w;
	__u32 skip = 0;

	/* A kept buffer is read out of the ring's order: it settles nothing. */
	if (!b->kept)
		drop_earlier(rp, b->tgid, b->fd, b->conn_id, b->seq);
	pp = find(rp, b->tgid, b->fd, b->conn_id, b->seq);
	c = *pp;
	/* Counted already (its head with it): later bytes are not its. */
	if (c && !c->acc)
		return;
	if (!c) {
		w = procs_lookup(rp->es->procs, b->tgid);
		if (!w)
			return; /* no longer tracked: its role is unknown */
		if (rp->nconns >= ES_REQ_MAX_CONNS) {
			rp->conns_dropped++;
			return;
		}
		c = calloc(1, sizeof(*c));
		/* Not zeroed: req_acc_init() readies it, nothing past its length is read. */
		if (c)
			c->acc = malloc(sizeof(*c->acc));
		if (!c || !c->acc) {
			free(c);
			rp->conns_dropped++;
			return;
		}
		c->tgid = b->tgid;
		c->fd = b->fd;
		c->conn_id = b->conn_id;
		c->seq = b->seq;
		c->tid = b->tid;
		c->kslot = b->slot < ES_REQ_SLOTS ? b->slot : ES_REQ_NO_SLOT;
		c->start_ns = b->start_ns;
		c->role = w->role;
		c->starttime = w->starttime;
		req_acc_init(c->acc);
		*pp = c; /* the chain's end */
		rp->nconns++;
	}
	/* A kept buffer read again (req_pending.c): only what is new since. */
	if (b->from != REQ_BYTES_NEXT)
		skip = c->fed > b->from ? c->fed - b->from : 0;
	if (b->len && skip >= b->len)
		return;
	req_acc_feed(c->acc, b->data + skip, b->len - skip);
	c->fed += b->len - skip;
	note(rp, c);
	req_tag_begin(rp, c->role, c->conn_id, c->seq, req_acc_head(c->acc));
}

long req_conns_fed(struct req_priv *rp, __u32 tgid, __s32 fd, __u64 conn_id, __u32 seq)
{
	const struct req_conn *c = *find(rp, tgid, fd, conn_id, seq);

	return c ? (long)c->fed : -ENOENT;
}

void req_conns_data(struct req_priv *rp, const struct es_req_data *ev)
{
	struct req_bytes b = { .tgid = ev->tgid,
			       .tid = ev->tid,
			       .fd = ev->fd,
			       .seq = ev->seq,
			       .slot = ev->slot,
			       .conn_id = ev->conn_id,
			       .start_ns = ev->ts_ns,
			       .from = REQ_BYTES_NEXT,
			       .data = ev->data,
			       .len = ev->len < ES_REQ_CAP ? ev->len : ES_REQ_CAP };

	req_conns_bytes(rp, &b);
}

void req_conns_done(struct req_priv *rp, const struct es_req_done *ev)
{
	struct req_conn **pp, *c;
	unsigned int code;
	uint64_t end;

	drop_earlier(rp, ev->tgid, ev->fd, ev->conn_id, ev->seq);
	pp = find(rp, ev->tgid, ev->fd, ev->conn_id, ev->seq);
	c = *pp;
	if (!c) {
		rp->lost++; /* its first bytes were lost */
		return;
	}
	if (c->settled) {
		conn_free(rp, pp); /* counted while its worker waited */
		return;
	}
	if (ev->resp_ns) {
		code = code_of(ev->status);
		end = ev->end_ns > ev->resp_ns ? ev->end_ns : ev->resp_ns;
	} else {
		/* Where the worker met the client's reset; else when its close was seen. */
		code = REQ_CODE_RESET;
		end = ev->end_ns ? ev->end_ns : ev->ts_ns;
	}
	c->start_ns = ev->start_ns;
	settle(rp, pp, code, end, ev);
}

/* Whether the record's worker died; *at: when it was seen gone (ns), if known. */
static bool worker_gone(const struct req_priv *rp, const struct req_conn *c, uint64_t *at)
{
	const struct worker *w = procs_lookup(rp->es->procs, c->tgid);

	if (w && w->exited && w->starttime == c->starttime && w->exited_ms)
		*at = w->exited_ms * 1000000ull;
	return !w || w->exited || w->starttime != c->starttime;
}

void req_conns_sweep(struct req_priv *rp)
{
	uint64_t now = clock_ns();

	for (unsigned int b = 0; b < NBUCKETS; b++) {
		struct req_conn **pp = &rp->buckets[b];

		while (*pp) {
			struct req_conn *c = *pp;
			struct es_req_conn kc;
			uint64_t at = now;
			bool answered;

			if (c->settled && worker_gone(rp, c, &at)) {
				conn_free(rp, pp);
				continue;
			}
			if (!worker_gone(rp, c, &at)) {
				/*
				 * Its connection no longer followed (detached) with no end
				 * event: twice, since a close between the ring's drain and
				 * this lookup leaves its event for the next drain.
				 */
				if (!kconn_get(rp, c, &kc)) {
					c->orphan = 0;
					if (!c->answered && answering(c, &kc)) {
						/* The worker no longer serves it. */
						c->answered = true;
						conn_note_clear(rp, c);
					}
					if (!c->settled && answering(c, &kc))
						settle_idle(rp, c, &kc, now);
					if (!c->settled)
						settle_closed(rp, c, &kc, now);
				} else if (++c->orphan >= 2) {
					req_tag_drop_thread(rp, c->tid, c->conn_id, c->seq);
					if (!c->settled)
						rp->lost++;
					conn_free(rp, pp);
					continue;
				}
				pp = &c->next;
				continue;
			}
			req_tag_drop_thread(rp, c->tid, c->conn_id, c->seq);
			answered = !kconn_take(rp, c, &kc) && answering(c, &kc);
			if (answered) {
				settle(rp, pp, code_of(kc.status),
				       kc.end_ns > kc.resp_ns ? kc.end_ns : kc.resp_ns, NULL);
			} else {
				rp->killed++;
				settle(rp, pp, REQ_CODE_KILLED, at < now ? at : now, NULL);
			}
		}
	}
	worker_notes_expire(rp->es->notes, now / 1000000ull);
}
