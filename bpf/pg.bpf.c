// SPDX-License-Identifier: GPL-2.0
/*
 * PostgreSQL from its USDT probes (postgresql:*), attached per server
 * binary by user/pg/pg_discover.c.
 *
 * query__start reads the statement text (at most ES_PG_TEXT_MAX bytes) into
 * a per-CPU buffer and runs the tokenizer of pg_norm.h over it in one pass
 * (bpf_loop; a round skips a run of bytes inside a token, or steps one
 * byte through the state machine): the fingerprint ignores literals,
 * whitespace, comments and keyword case. A fingerprint not in `known` sends
 * its raw text to user space once, which keeps only the normalised text.
 * query__done adds the statement to per-CPU aggregates per (fingerprint,
 * database): calls, time, max, exported buckets and fine log2 bins, buffer
 * misses and lock waits that happened during it; slow ones go to the ring
 * buffer as events without text. A statement that fails is accounted when
 * its transaction aborts.
 *
 * The database is an id user space writes per (postmaster, database OID)
 * (pg_dbs), or per backend where the OID cannot be read (pg_backends);
 * until it is there the backend's tgid stands in (ES_PG_DB_PID).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/usdt.bpf.h>

#include "hist.h"
#include "maps.bpf.h"
#include "pg.h"
#include "pg_client.h"
#include "pg_clock.h"
#include "pg_norm.h"
#include "ringbuf.bpf.h"
#include "sock.bpf.h"
#include "workers.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/*
 * What goes through it is rare or comes back: a fingerprint's text once
 * (resent while dropped), a backend's hello once (likewise), slow
 * statements and lock waits. The daemon maps it twice (for the wrap), so
 * each KiB here is two of its RSS.
 */
#define PG_EVENTS_SIZE (256 * 1024)

/* Set by user space before load. */
const volatile __u64 lat_edges_ns[ES_PG_MAX_EDGES] = {};
const volatile __u32 lat_nedges = 0;
const volatile __u64 ckpt_edges_ns[ES_PG_MAX_EDGES] = {};
const volatile __u32 ckpt_nedges = 0;
const volatile __u64 slow_ns = 100000000;

/*
 * Fingerprints whose text user space has, direct-mapped: a slot holds the
 * last fingerprint sent that hashed to it. A collision only sends a text
 * again, which user space ignores.
 */
__u64 pg_known[ES_PG_KNOWN_SLOTS];
/* Bumped by user space on every pg_backends change: cached db ids expire. */
__u32 backends_gen;
/* When a lock wait last began, and the transactions that ended since (struct es_pg_ender). */
__u64 lock_last_start;
struct es_pg_ender lock_enders[ES_PG_ENDERS];
__u64 lock_enders_next;
/* Set by user space while a trace records: every statement is an event (ES_PG_EV_STMT). */
volatile __u32 trace_on;
/* Bumped by user space when a postmaster goes to two probes: cached modes expire. */
__u32 pms_gen;
/*
 * CLOCK_REALTIME - CLOCK_MONOTONIC in ns and its last step, kept by user
 * space every 100 ms: PostgreSQL stamps statements with the wall clock, the
 * kernel's clock is monotonic (see pg_clock.h).
 */
struct es_pg_clock realtime_clock;
/*
 * The TCP ports this host's clusters listen on, a bit each, kept by user
 * space (postmaster.pid, pg_probe_sync()): a connect to another port is
 * not a PostgreSQL client's, and costs on_conn_state() no map update. Port
 * ES_PG_PORT_ANY's bit, set until the first scan of the host's processes
 * and while a cluster's port is not known: every connect is followed.
 */
__u64 pg_port_bits[ES_PG_PORT_WORDS] = { 1ull << ES_PG_PORT_ANY };

/* The statement a backend is running, and the lock it waits for. */
struct pg_task {
	__u64 fp;
	__u64 start_ns; /* 0: none in flight */
	__u64 misses;
	__u64 lock_ns;
	__u64 lock_start; /* 0: not waiting */
	__u32 lock_waits;
	__u32 cmd;
	__u32 db; /* cached db_of(tgid) ... */
	__u32 db_gen; /* ... valid while backends_gen + 1 equals this */
	__u32 hello; /* asked user space for this backend's database */
	__u32 aborted; /* the transaction aborted during the statement */
	__u64 myproc; /* the backend's MyProc, read once; 0: not yet */
	__u64 bias;   /* load bias of the binary, learnt at query__done */
	__u64 mybe;   /* the backend's MyBEEntry, read once; 0: not yet */
	__s64 last_start_us;  /* start stamp of the last statement done (one_trap) */
	__s64 abort_start_us; /* ... of the last one accounted at transaction__abort */
	__u64 last_done_ns;   /* when the last statement ended (one_trap): the next began after */
	__u32 bias_ok;
	__u32 linked; /* the client was looked for */
	struct es_pg_dbkey dbk; /* oid 0: not read (yet) */
	__u32 raw_ok; /* st_activity_raw held what query__done reported */
	__u32 pm;     /* the backend's postmaster, read once; 0: not yet */
	__u32 pm_gen; /* two is valid while pms_gen + 1 equals this */
	__u32 two;    /* its postmaster is timed from two probes (struct es_pg_pm) */
	__u32 client;     /* the client's tgid when known on this host, else 0 */
	__u32 client_gen; /* client was looked up in pg_backend_clients while backends_gen + 1 */
	__u32 tag[4];
	__u16 locktype;
	__u16 mode;
	__u64 busy_since; /* busy (struct es_pg_busy) since then; 0: idle */
	__u64 busy_ns;    /* closed busy intervals */
	__u64 xact_fp;    /* the transaction's last statement but BEGIN, COMMIT, ROLLBACK */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pg_task);
} pg_tasks SEC(".maps");

/* Aborts per backend (struct es_pg_xacts), for user space: its own map, so
 * that pg_task's layout stays private. Aborts are rare: one more lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct es_pg_xacts);
} pg_xacts SEC(".maps");

/*
 * Per-CPU scratch: the tokenizer state and the text buffer, laid out as the
 * event that may carry it. The tokenizer state lives in a map value rather
 * than on the stack so the verifier sees unknown values there and checks
 * the bpf_loop body once, not once per combination of constants.
 */
struct pg_scratch {
	struct es_pg_norm n;
	__u32 pos, len; /* the bpf_loop's progress through ev.text, up to len */
	__u32 end;      /* the text's length: len until the head is done, on a miss */
	__u32 nwords;   /* whole 8-byte words in the text */
	__u32 head_words; /* the head's words so far (see es_pg_head_word()) */
	__u32 pad;
	__u64 head_hash;  /* ... and their hash */
	__u64 head_prev;  /* the last word of the head so far */
	struct es_pg_ev_text ev;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pg_scratch);
} pg_scratch SEC(".maps");

/*
 * The normaliser's state after a statement head (see es_pg_head_word()),
 * by the head's hash and length: statements of one shape skip their head.
 * The key is repeated in the value: an LRU slot can be reused under a
 * reader, which then sees another key and normalises from the start.
 */
struct pg_head_key {
	__u64 hash;
	__u32 len;
	__u32 pad;
};

struct pg_head {
	struct pg_head_key k;
	struct es_pg_norm n;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ES_PG_HEAD_SLOTS);
	__type(key, struct pg_head_key);
	__type(value, struct pg_head);
} pg_heads SEC(".maps");

/*
 * Entries are allocated as fingerprints appear (no preallocation);
 * max_entries = --pg.max-fingerprints, set by user space.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, struct es_pg_stat_key);
	__type(value, struct es_pg_stat);
} pg_stats SEC(".maps");

/* The fine bins of pg_stats' keys; max_entries set with pg_stats'. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, struct es_pg_stat_key);
	__type(value, struct es_pg_fine);
} pg_fine SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1024);
	__type(key, struct es_pg_db_key);
	__type(value, struct es_pg_dbstat);
} pg_db_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 2048);
	__type(key, struct es_pg_lock_key);
	__type(value, struct es_pg_hist);
} pg_lock_hist SEC(".maps");

/* Calls per (fingerprint, backend): who sent what. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct es_pg_sender_key);
	__type(value, __u64);
} pg_senders SEC(".maps");

/* tgid -> database id, written by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
} pg_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct es_pg_dbkey);
	__type(value, __u32);
} pg_dbs SEC(".maps");

/*
 * backend tgid -> client tgid, written by user space for backends the kernel
 * could not link at their first statement (a TCP client that connected
 * before erpscope started), found through the sockets.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
} pg_backend_clients SEC(".maps");

/* client tgid -> what its statements cost (bpf/pg_client.h); shared with requests. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ES_PG_CLIENTS_MAX);
	__type(key, __u32);
	__type(value, struct es_pg_client);
} pg_clients SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct es_pg_ckpt);
} pg_ckpt SEC(".maps");

/* checkpointer tgid -> checkpoint__start time */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} pg_ckpt_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, PG_EVENTS_SIZE);
} pg_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} pg_drops SEC(".maps");

/* Per server binary, at USDT cookie - 1 (see struct es_pg_bin). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ES_PG_MAX_BINS);
	__type(key, __u32);
	__type(value, struct es_pg_bin);
} pg_bins SEC(".maps");

/* Statements the kernel could not time, per binary and reason (ES_PG_BIN_*). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ES_PG_MAX_BINS * ES_PG_BIN_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} pg_bin_stats SEC(".maps");

/* Postmasters whose entries did not check out, by tgid (see struct es_pg_pm). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct es_pg_pm);
} pg_pms SEC(".maps");

/* A head entry being built: too big for the stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pg_head);
} pg_head_new SEC(".maps");

/* Statements whose head was not cached (each normalised from the start). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} pg_head_misses SEC(".maps");

/*
 * Who connected to a backend over TCP on this host. connect() runs in the
 * client (CLOSE -> SYN_SENT) before its port is chosen, so the socket
 * names the process until the handshake completes; then its 4-tuple does,
 * for the backend's first statement to find (see link_client()).
 */
struct pg_conn_key {
	__u8 caddr[16]; /* IPv4 as ::ffff:a.b.c.d, whatever the socket's family */
	__u8 saddr[16];
	__u16 cport;
	__u16 sport;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u32);
} pg_connecting SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct pg_conn_key);
	__type(value, __u32);
} pg_conn_owner SEC(".maps");

static const struct es_pg_stat zero_stat = {};
static const struct es_pg_fine zero_fine = {};
static const struct es_pg_hist zero_hist = {};
static const struct es_pg_dbstat zero_dbstat = {};

static __always_inline __u32 current_tgid(void)
{
	return bpf_get_current_pid_tgid() >> 32;
}

static __always_inline struct pg_task *task_get(bool create)
{
	return bpf_task_storage_get(&pg_tasks, bpf_get_current_task_btf(), 0,
				    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}

static __always_inline __u32 db_of(__u32 tgid)
{
	__u32 *db = bpf_map_lookup_elem(&pg_backends, &tgid);

	return db ? *db : (ES_PG_DB_PID | tgid);
}

/* db_of() through the task's cache, and its database's key where known. */
static __always_inline __u32 task_db(struct pg_task *t, __u32 tgid)
{
	__u32 gen = backends_gen + 1, *db;

	if (t->db_gen != gen) {
		db = t->dbk.oid ? bpf_map_lookup_elem(&pg_dbs, &t->dbk) : NULL;
		t->db = db ? *db : db_of(tgid);
		t->db_gen = gen;
	}
	return t->db;
}

static __always_inline void count_drop(void)
{
	__u32 zero = 0;
	__u64 *d = bpf_map_lookup_elem(&pg_drops, &zero);

	if (d)
		*d += 1;
}

static __always_inline __u32 fine_bin(__u64 v)
{
	__u64 x = v;
	__u32 lg = 0;

	if (v < (1ULL << ES_PG_FINE_MIN_LOG2))
		return 0;
	if (x >> 32) {
		lg += 32;
		x >>= 32;
	}
	if (x >> 16) {
		lg += 16;
		x >>= 16;
	}
	if (x >> 8) {
		lg += 8;
		x >>= 8;
	}
	if (x >> 4) {
		lg += 4;
		x >>= 4;
	}
	if (x >> 2) {
		lg += 2;
		x >>= 2;
	}
	if (x >> 1)
		lg += 1;
	if (lg > ES_PG_FINE_MAX_LOG2)
		return ES_PG_FINE_BINS - 1;
	return 1 + (lg - ES_PG_FINE_MIN_LOG2) * ES_PG_FINE_SUB +
	       ((v >> (lg - ES_PG_FINE_SUB_BITS)) & (ES_PG_FINE_SUB - 1));
}

static __always_inline void hist_add(struct es_pg_hist *h, const volatile __u64 *edges, __u32 n,
				     __u64 v)
{
	__u32 b = es_hist_bucket(edges, n, ES_PG_MAX_EDGES, v);

	if (b <= ES_PG_MAX_EDGES)
		h->buckets[b] += 1;
	h->sum_ns += v;
}

/* ---------------------------------------------------------------- busy time */

/* A statement began at start: the backend is busy, since then unless it was already. */
static __always_inline void busy_open(struct pg_task *t, __u64 start)
{
	if (!t->busy_since)
		t->busy_since = start;
}

/*
 * A transaction open from since to now ended: noted (struct es_pg_ender)
 * when a lock wait began while it was open and it lasted longer than a
 * slow wait, so it may have held what the waiter waited for. One load of a
 * global for all others.
 */
static __always_inline void note_ender(struct pg_task *t, __u64 since, __u64 now)
{
	struct es_pg_ender *e;
	__u32 tgid;
	__u64 i;

	if (*(volatile __u64 *)&lock_last_start < since || now - since <= slow_ns)
		return;
	tgid = current_tgid();
	i = __sync_fetch_and_add(&lock_enders_next, 1) & (ES_PG_ENDERS - 1);
	e = &lock_enders[i];
	e->since_ns = since;
	e->end_ns = now;
	e->fp = t->xact_fp;
	e->db = task_db(t, tgid);
	e->tgid = tgid;
}

/* No transaction is open any more at now: the busy interval closes. */
static __always_inline void busy_close(struct pg_task *t, __u64 now)
{
	__u64 since = t->busy_since;

	if (since && now > since)
		note_ender(t, since, now);
	t->xact_fp = 0;

	/* The sum first: a scrape reads it before the start (es_pg_busy_iter). */
	if (since && now > since)
		*(volatile __u64 *)&t->busy_ns = t->busy_ns + now - since;
	*(volatile __u64 *)&t->busy_since = 0;
}

/*
 * The transaction aborted at now, in a statement that began at start (0:
 * none runs, or its start is unknown). A transaction block open before that
 * statement stays open, aborted, until the client's ROLLBACK ends it; else
 * the backend is idle again.
 */
static __always_inline void busy_abort(struct pg_task *t, __u64 start, __u64 now)
{
	if (start && t->busy_since && t->busy_since < start)
		return;
	if (start)
		busy_open(t, start);
	busy_close(t, now);
}

/* ---------------------------------------------------------------- statements */

/*
 * Chunks per bpf_loop round. One: with two, the verifier of some kernels
 * (6.18.44, for one) walks more than its 1M instructions through the round
 * (the chunk's bounded runs multiply its states) and the probe does not
 * load; a round's call costs a few ns more per chunk of a statement.
 */
#define ES_PG_CHUNKS_PER_ROUND 1

/*
 * One bpf_loop round: a chunk (a run of bytes and the byte ending it). The position lives in
 * the scratch map value too, so the verifier checks the body once.
 */
static void head_save(struct pg_scratch *sc);

static long norm_round(__u64 i, void *arg)
{
	struct pg_scratch *sc = *(struct pg_scratch **)arg;

	/* A head not cached is done: keep its state, go on to the end. */
	if (sc->pos >= sc->len && sc->len < sc->end) {
		head_save(sc);
		sc->len = sc->end;
	}

	/*
	 * The position goes through memory between chunks (volatile), so each
	 * chunk starts from an unknown value and is verified once.
	 */
	for (int k = 0; k < ES_PG_CHUNKS_PER_ROUND; k++) {
		__u32 pos = *(volatile __u32 *)&sc->pos;

		if (pos >= sc->len || pos >= ES_PG_TEXT_MAX)
			return sc->len < sc->end ? 0 : 1;
		*(volatile __u32 *)&sc->pos =
			es_pg_norm_chunk(&sc->n, sc->ev.text, pos, sc->len, ES_PG_TEXT_MAX - 1);
	}
	return 0;
}

#define ES_PG_HEAD_WORDS_PER_ROUND 8
/* Heads shorter than this are normalised from the start: it costs less than the lookup. */
#define ES_PG_HEAD_MIN 16

/* One bpf_loop round of the head scan: a few words of ev.text. */
static long head_round(__u64 i, void *arg)
{
	struct pg_scratch *sc = *(struct pg_scratch **)arg;

	for (int k = 0; k < ES_PG_HEAD_WORDS_PER_ROUND; k++) {
		__u32 w = *(volatile __u32 *)&sc->head_words;
		__u64 word;

		if (w >= sc->nwords || w >= ES_PG_TEXT_MAX / 8)
			return 1;
		word = *(__u64 *)&sc->ev.text[w * 8];
		if (!es_pg_head_word(word, sc->head_prev))
			return 1;
		sc->head_prev = word;
		sc->head_hash = es_pg_head_mix(sc->head_hash, word);
		*(volatile __u32 *)&sc->head_words = w + 1;
	}
	return 0;
}

/* Caches the state after the head (sc->pos bytes), keyed by its hash and length. */
static __noinline void head_save(struct pg_scratch *sc)
{
	__u32 zero = 0;
	struct pg_head *nh = bpf_map_lookup_elem(&pg_head_new, &zero);
	__u64 *miss = bpf_map_lookup_elem(&pg_head_misses, &zero);

	if (!nh || !miss)
		return;
	nh->k.hash = sc->head_hash;
	nh->k.len = sc->pos;
	nh->k.pad = 0;
	__builtin_memcpy(&nh->n, &sc->n, sizeof(nh->n));
	bpf_map_update_elem(&pg_heads, &nh->k, nh, BPF_ANY);
	*miss += 1;
}

/*
 * Fingerprints the len bytes of ev.text into sc->n: the head from the
 * cache when a statement of this shape was seen, the rest by the machine.
 * One bpf_loop over norm_round, which caches a head it went through. A
 * global function: the verifier checks it once, not in every program.
 */
__noinline int es_pg_normalise(struct pg_scratch *sc, __u32 len)
{
	struct pg_head_key hk = {};
	struct pg_head *h;
	__u32 head;

	if (!sc)
		return 0;
	sc->pos = 0;
	sc->len = len;
	sc->end = len;
	sc->head_hash = ES_PG_FNV_BASIS;
	sc->head_words = 0;
	sc->head_prev = 0;
	sc->nwords = len / 8;
	bpf_loop(ES_PG_TEXT_MAX / 8 / ES_PG_HEAD_WORDS_PER_ROUND + 1, head_round, &sc, 0);
	head = sc->head_words * 8;
	es_pg_norm_init(&sc->n);
	if (head >= ES_PG_HEAD_MIN) {
		hk.hash = sc->head_hash;
		hk.len = head;
		h = bpf_map_lookup_elem(&pg_heads, &hk);
		if (h) {
			__builtin_memcpy(&sc->n, &h->n, sizeof(sc->n));
			/* Read the key after the state: a slot reused meanwhile shows here. */
			asm volatile("" ::: "memory");
			if (h->k.hash == hk.hash && h->k.len == hk.len)
				sc->pos = head;
			else
				es_pg_norm_init(&sc->n);
		}
		if (!sc->pos)
			sc->len = head; /* norm_round saves the state there */
	}
	/* One more round than bytes: the one that saves the head. */
	bpf_loop(len + 2, norm_round, &sc, 0);
	return 0;
}

/* The binary of the probe that fired (cookie - 1 indexes pg_bins), or NULL. */
static __always_inline struct es_pg_bin *bin_of(struct pt_regs *ctx, __u32 *idx)
{
	__u64 c = bpf_usdt_cookie(ctx);

	if (!c || c > ES_PG_MAX_BINS)
		return NULL;
	*idx = (__u32)c - 1;
	return bpf_map_lookup_elem(&pg_bins, idx);
}

static __always_inline void learn_db(struct pg_task *t, const struct es_pg_bin *b);

/*
 * Reads, normalises and fingerprints the statement text at query into
 * t->fp and t->cmd; sends user space the text of a fingerprint it may not
 * have, and asks for the database of a backend it has not mapped.
 */
static __always_inline void statement_text(struct pg_task *t, const char *query)
{
	struct es_pg_ev_text *ev;
	struct pg_scratch *sc;
	__u32 zero = 0, len = 0;
	__u64 *known;
	long n;

	sc = bpf_map_lookup_elem(&pg_scratch, &zero);
	if (!sc)
		return;
	ev = &sc->ev;
	n = bpf_probe_read_user_str(ev->text, sizeof(ev->text), query);
	if (n > 1)
		len = n - 1;
	if (len > ES_PG_TEXT_MAX - 1)
		len = ES_PG_TEXT_MAX - 1;
	es_pg_normalise(sc, len);
	t->fp = es_pg_norm_finish(&sc->n, len);
	t->cmd = sc->n.cmd < ES_PG_CMD_COUNT ? sc->n.cmd : ES_PG_CMD_OTHER;

	known = &pg_known[t->fp & (ES_PG_KNOWN_SLOTS - 1)];
	if (*known != t->fp) {
		ev->h.type = ES_PG_EV_TEXT;
		ev->h.tgid = current_tgid();
		ev->fp = t->fp;
		ev->len = len;
		ev->cmd = t->cmd;
		/*
		 * A no-op mask (len < ES_PG_TEXT_MAX) kept from the compiler, so
		 * the verifier sees the bound even after len was spilled.
		 */
		asm volatile("" : "+r"(len));
		len &= ES_PG_TEXT_MAX - 1;
		if (bpf_ringbuf_output(&pg_events, ev, __builtin_offsetof(struct es_pg_ev_text, text) + len,
				       es_rb_lazy(&pg_events, PG_EVENTS_SIZE)))
			count_drop();
		else
			*known = t->fp;
	}
	/* Once per backend: who it is (its database, user and client). */
	if (!t->hello) {
		struct es_pg_ev_hello *h = bpf_ringbuf_reserve(&pg_events, sizeof(*h), 0);

		if (h) {
			struct task_struct *task = (void *)bpf_get_current_task();
			unsigned long title = BPF_CORE_READ(task, mm, arg_start);
			long m = bpf_probe_read_user_str(h->title, sizeof(h->title), (void *)title);

			h->h.type = ES_PG_EV_HELLO;
			h->h.tgid = current_tgid();
			h->len = m > 1 ? m - 1 : 0;
			h->pad = 0;
			h->start_boottime_ns = BPF_CORE_READ(task, start_boottime);
			h->postmaster = t->dbk.postmaster;
			h->db_oid = t->dbk.oid;
			bpf_ringbuf_submit(h, es_rb_lazy(&pg_events, PG_EVENTS_SIZE));
			t->hello = 1;
		}
	}
}

/* The backend's postmaster: the parent it was forked by, read once. */
static __always_inline __u32 postmaster_of(struct pg_task *t)
{
	if (!t->pm) {
		struct task_struct *task = bpf_get_current_task_btf();

		t->pm = BPF_CORE_READ(task, real_parent, tgid);
	}
	return t->pm;
}

/* A statement of this backend's postmaster could not be timed (rare). */
static __always_inline void pm_stat(struct pg_task *t, __u32 idx, bool stale)
{
	struct es_pg_pm zero = { .slot1 = idx + 1 }, *pm;
	__u32 key = postmaster_of(t);

	pm = bpf_map_lookup_elem(&pg_pms, &key);
	if (!pm) {
		bpf_map_update_elem(&pg_pms, &key, &zero, BPF_NOEXIST);
		pm = bpf_map_lookup_elem(&pg_pms, &key);
		if (!pm)
			return;
	}
	if (stale)
		__sync_fetch_and_add(&pm->stale, 1);
	else
		__sync_fetch_and_add(&pm->no_status, 1);
}

/*
 * Whether this backend's statements are timed at query__done alone: the
 * binary allows it and its postmaster was not moved to two probes. The
 * mode is cached in the task until user space moves a postmaster.
 */
static __always_inline bool one_trap(struct pg_task *t, const struct es_pg_bin *b)
{
	__u32 gen = pms_gen + 1;

	if (!b || !b->one_trap || !t)
		return false;
	if (t->pm_gen != gen) {
		__u32 key = postmaster_of(t);
		struct es_pg_pm *pm = bpf_map_lookup_elem(&pg_pms, &key);

		t->two = pm && pm->two_probes;
		t->pm_gen = gen;
	}
	return !t->two;
}

/* What a statement gathers while it runs starts from zero. */
static __always_inline void statement_reset(struct pg_task *t)
{
	t->misses = 0;
	t->lock_ns = 0;
	t->lock_waits = 0;
	t->lock_start = 0;
	t->aborted = 0;
}

SEC("usdt")
int BPF_USDT(es_pg_query_start, const char *query)
{
	struct pg_task *t = task_get(true);
	struct es_pg_bin *b;
	__u32 idx = 0;

	if (!t)
		return 0;
	b = bin_of(ctx, &idx);
	/* Attached for another server of the binary that went to two probes. */
	if (one_trap(t, b))
		return 0;
	learn_db(t, b);
	statement_text(t, query);
	statement_reset(t);
	/* Last, so the time spent here is not the statement's. */
	t->start_ns = bpf_ktime_get_ns();
	busy_open(t, t->start_ns);
	return 0;
}

static __always_inline void send_slow(struct pg_task *t, __u32 tgid, __u32 db, __u64 dur,
				      __u32 error, __u32 type)
{
	struct es_pg_ev_slow *ev = bpf_ringbuf_reserve(&pg_events, sizeof(*ev), 0);

	if (!ev) {
		count_drop();
		return;
	}
	ev->h.type = type;
	ev->h.tgid = tgid;
	ev->fp = t->fp;
	ev->dur_ns = dur;
	ev->lock_ns = t->lock_ns;
	ev->misses = t->misses;
	ev->db = db;
	ev->cmd = t->cmd;
	ev->error = error;
	ev->client = t->client;
	ev->end_ns = bpf_ktime_get_ns();
	bpf_ringbuf_submit(ev, type == ES_PG_EV_SLOW ? 0 : es_rb_lazy(&pg_events, PG_EVENTS_SIZE));
}

static __always_inline void add_sender(__u64 fp, __u32 tgid)
{
	struct es_pg_sender_key k = { .fp = fp, .tgid = tgid };
	static const __u64 zero;
	__u64 *v = es_lookup_or_init(&pg_senders, &k, &zero, ES_MAP_PG_SENDERS);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* Accounts the statement in flight, which took dur. */
static const struct es_pg_client zero_client;

/* The statement's time, charged to the process that sent it when it is on this host. */
static __always_inline void add_client(struct pg_task *t, __u32 tgid, __u64 dur)
{
	__u32 gen = backends_gen + 1, *c;
	struct es_pg_client *v;
	__u64 slot;

	if (!t->client && t->client_gen != gen) {
		c = bpf_map_lookup_elem(&pg_backend_clients, &tgid);
		t->client = c ? *c : 0;
		t->client_gen = gen;
	}
	if (!t->client)
		return;
	v = es_lookup_or_init(&pg_clients, &t->client, &zero_client, ES_MAP_PG_CLIENTS);
	if (!v)
		return;
	/* Two backends of one client can end statements on two CPUs at once. */
	slot = __sync_fetch_and_add(&v->next, 1) % ES_PG_CLIENT_RECENT;
	v->recent[slot].fp = t->fp;
	v->recent[slot].dur_ns = dur;
	v->recent[slot].end_ns = bpf_ktime_get_ns();
	__sync_fetch_and_add(&v->stmts, 1);
	__sync_fetch_and_add(&v->ns, dur);
}

static __always_inline void account(struct pg_task *t, __u64 dur, __u32 error, __u32 commit)
{
	__u32 tgid = current_tgid(), db = task_db(t, tgid), b;
	struct es_pg_stat_key k = { .fp = t->fp, .db = db };
	struct es_pg_stat *s;
	struct es_pg_fine *f;
	bool slow = dur > slow_ns;

	if (t->cmd != ES_PG_CMD_BEGIN && t->cmd != ES_PG_CMD_COMMIT && t->cmd != ES_PG_CMD_ROLLBACK)
		t->xact_fp = t->fp;

	s = es_lookup_or_init(&pg_stats, &k, &zero_stat, ES_MAP_PG_STATS);
	if (!s) {
		/* The map is full: fold it into the database's "other". */
		k.fp = ES_PG_FP_OTHER;
		k.pad = t->cmd;
		s = es_lookup_or_init(&pg_stats, &k, &zero_stat, ES_MAP_PG_STATS);
	}
	if (s) {
		s->calls += 1;
		s->total_ns += dur;
		if (dur > s->max_ns)
			s->max_ns = dur;
		s->misses += t->misses;
		s->lock_ns += t->lock_ns;
		s->lock_waits += t->lock_waits;
		s->slow += slow;
		s->errors += error;
		s->commits += commit;
		s->cmd = t->cmd;
		b = es_hist_bucket(lat_edges_ns, lat_nedges, ES_PG_MAX_EDGES, dur);
		if (b <= ES_PG_MAX_EDGES)
			s->buckets[b] += 1;
		b = fine_bin(dur);
		f = es_lookup_or_init(&pg_fine, &k, &zero_fine, ES_MAP_PG_STATS);
		if (f && b < ES_PG_FINE_BINS)
			f->fine[b] += 1;
	}
	add_sender(t->fp, tgid);
	add_client(t, tgid, dur);
	if (slow) {
		struct es_pg_db_key dk = { .db = db };
		struct es_pg_dbstat *d = es_lookup_or_init(&pg_db_stats, &dk, &zero_dbstat, ES_MAP_PG_DB_STATS);

		if (d)
			d->slow += 1;
		send_slow(t, tgid, db, dur, error, ES_PG_EV_SLOW);
	} else if (trace_on) {
		send_slow(t, tgid, db, dur, error, ES_PG_EV_STMT);
	}
	t->start_ns = 0;
}

/* The binary's load bias in this backend (see struct es_pg_bin). */
static __always_inline bool learn_bias(struct pg_task *t, const struct es_pg_bin *b)
{
	if (!t->bias_ok && b->text_va) {
		struct task_struct *task = bpf_get_current_task_btf();

		t->bias = BPF_CORE_READ(task, mm, start_code) - b->text_va;
		t->bias_ok = 1;
	}
	return t->bias_ok;
}

/*
 * Once per backend: its database's key, so its statements land in their
 * database from the first one when user space has seen another backend of
 * it. MyDatabaseId is set before the backend runs any statement.
 */
static __always_inline void learn_db(struct pg_task *t, const struct es_pg_bin *b)
{
	struct task_struct *task;
	__u32 oid = 0;

	if (t->dbk.oid || t->hello || !b || !b->mydb_va || !learn_bias(t, b))
		return;
	if (bpf_probe_read_user(&oid, sizeof(oid), (void *)(t->bias + b->mydb_va)) || !oid)
		return;
	task = bpf_get_current_task_btf();
	t->dbk.postmaster = BPF_CORE_READ(task, real_parent, tgid);
	t->dbk.oid = oid;
	t->db_gen = 0; /* look again with the key */
}

/*
 * Whether the statement that just ended committed a transaction: none is
 * open any more (MyProc->lxid is 0) and none aborted. 0 when the binary
 * does not say where MyProc is (transaction__commit counts then). With
 * query__start attached; one_trap reads its status entry instead.
 */
static __always_inline bool commits_at_done(const struct es_pg_bin *b)
{
	return b && b->myproc_va && b->lxid_off;
}

/* MyProc->lxid: 0 when no transaction is open, -1 when it cannot be read. */
static __always_inline long xact_lxid(struct pg_task *t, const struct es_pg_bin *b)
{
	__u32 lxid = 1;

	if (!commits_at_done(b) || !learn_bias(t, b))
		return -1;
	/* MyProc is set once at backend start: read it once. */
	if (!t->myproc && (bpf_probe_read_user(&t->myproc, sizeof(t->myproc),
					       (void *)(t->bias + b->myproc_va)) ||
			   !t->myproc))
		return -1;
	if (bpf_probe_read_user(&lxid, sizeof(lxid), (void *)(t->myproc + b->lxid_off - 1)))
		return -1;
	return lxid;
}

/* A statement the kernel could not time, by reason (ES_PG_BIN_*): the metric. */
static __always_inline void bin_stat(__u32 idx, __u32 reason)
{
	__u32 k = idx * ES_PG_BIN_STAT_COUNT + reason;
	__u64 *v = bpf_map_lookup_elem(&pg_bin_stats, &k);

	if (v)
		*v += 1;
}

/*
 * The running statement's start, in the kernel's monotonic ns, from the
 * backend's status entry (one_trap); 0 when it cannot be had or the
 * statement was accounted already (at transaction__abort). Checks that the
 * entry is this backend's before trusting the stamp. no_xact (NULL: not
 * wanted): no transaction is open any more.
 */
static __always_inline __u64 statement_start(struct pg_task *t, const struct es_pg_bin *b,
					     __u32 idx, bool at_done, __s64 *start_us,
					     __u32 *no_xact)
{
	/* The head of PgBackendStatus, up to st_activity_start_timestamp. */
	struct {
		__s32 changecount, procpid, backend_type, pad;
		__s64 ts[3]; /* backend start, xact start, statement start */
	} be;
	_Static_assert(__builtin_offsetof(typeof(be), procpid) == ES_PG_BE_PROCPID_OFF, "");
	_Static_assert(__builtin_offsetof(typeof(be), ts[2]) == ES_PG_BE_ACTIVITY_START_OFF, "");
	struct es_pg_clock clk;
	__u64 ns;

	*start_us = 0;
	if (no_xact)
		*no_xact = 0;
	/*
	 * Only a statement that ran says the entry is wrong: a transaction
	 * can abort in a backend whose entry is not filled in yet (its role or
	 * database does not exist, or shutdown came while it started:
	 * pgstat_bestart() runs at the end of InitPostgres()).
	 */
	if (!learn_bias(t, b)) {
		if (at_done) {
			bin_stat(idx, ES_PG_BIN_NO_STATUS);
			pm_stat(t, idx, false);
		}
		return 0;
	}
	if (!t->mybe && (bpf_probe_read_user(&t->mybe, sizeof(t->mybe),
					     (void *)(t->bias + b->mybeentry_va)) ||
			 !t->mybe)) {
		if (at_done) {
			bin_stat(idx, ES_PG_BIN_NO_STATUS);
			pm_stat(t, idx, false);
		}
		return 0;
	}
	if (bpf_probe_read_user(&be, sizeof(be), (void *)t->mybe) ||
	    (__u32)be.procpid != current_tgid()) {
		if (at_done) {
			bin_stat(idx, ES_PG_BIN_NO_STATUS);
			pm_stat(t, idx, false);
		}
		return 0;
	}
	if (!be.ts[2] || be.ts[2] == t->last_start_us) {
		/*
		 * At query__done the stamp did not move or was cleared:
		 * track_activities is off. At transaction__abort no statement runs (a backend
		 * exiting inside a transaction).
		 */
		if (at_done)
		{
			bin_stat(idx, ES_PG_BIN_STALE);
			pm_stat(t, idx, true);
		}
		return 0;
	}
	if (be.ts[2] == t->abort_start_us)
		return 0; /* failed, and accounted when its transaction aborted */
	*start_us = be.ts[2];
	/* PostgreSQL clears it when a transaction commits, aborts or is prepared. */
	if (no_xact)
		*no_xact = !be.ts[1];
	clk = realtime_clock;
	ns = es_pg_stamp_to_mono(&clk, (be.ts[2] + (__s64)ES_PG_EPOCH_UNIX_S * 1000000) * 1000,
				 bpf_ktime_get_ns(), t->last_done_ns);
	/* Either side of a clock step: no duration to trust. Counted at
	 * query__done only: a ROLLBACK reaches both. */
	if (!ns && at_done)
		bin_stat(idx, ES_PG_BIN_CLOCK_STEP);
	return ns;
}

/*
 * Once per backend: does st_activity_raw hold the statement query__done
 * just reported (its text is in the scratch)? Only then is it trusted at
 * transaction__abort.
 */
static __always_inline void raw_text_check(struct pg_task *t, __u32 idx)
{
	struct pg_scratch *sc;
	const char *raw = NULL;
	__u32 zero = 0;
	char buf[32];
	long n;

	if (t->raw_ok)
		return;
	sc = bpf_map_lookup_elem(&pg_scratch, &zero);
	if (!sc)
		return;
	if (bpf_probe_read_user(&raw, sizeof(raw), (void *)(t->mybe + ES_PG_BE_ACTIVITY_RAW_OFF)) ||
	    !raw)
		goto bad;
	n = bpf_probe_read_user_str(buf, sizeof(buf), raw);
	if (n <= 1)
		goto bad;
	for (int i = 0; i < (int)sizeof(buf) - 1; i++) {
		if (i >= n - 1)
			break;
		if (buf[i] != sc->ev.text[i])
			goto bad;
	}
	t->raw_ok = 1;
	return;
bad:
	bin_stat(idx, ES_PG_BIN_NO_STATUS);
	pm_stat(t, idx, false);
}

/* ---------------------------------------------------------------- clients */

/* addr (4 or 16 bytes at src) as 16 bytes, IPv4 mapped into IPv6. */
static __always_inline void addr16(__u8 *dst, struct sock *sk, bool v6, bool remote)
{
	if (v6) {
		if (remote)
			bpf_core_read(dst, 16, &sk->__sk_common.skc_v6_daddr);
		else
			bpf_core_read(dst, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		return;
	}
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	if (remote)
		bpf_core_read(dst + 12, 4, &sk->__sk_common.skc_daddr);
	else
		bpf_core_read(dst + 12, 4, &sk->__sk_common.skc_rcv_saddr);
}

/* The 4-tuple of an inet socket, seen from the client (client_side) or the server. */
static __always_inline bool conn_key(struct sock *sk, struct pg_conn_key *k, bool client_side)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u16 lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	__u16 rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	bool v6 = family == ES_AF_INET6;

	if (family != ES_AF_INET && !v6)
		return false;
	addr16(client_side ? k->caddr : k->saddr, sk, v6, false);
	addr16(client_side ? k->saddr : k->caddr, sk, v6, true);
	k->cport = client_side ? lport : rport;
	k->sport = client_side ? rport : lport;
	k->pad = 0;
	return true;
}

/* Whether sk connects to a port a cluster of this host listens on (pg_port_bits). */
static __always_inline bool to_pg_port(struct sock *sk)
{
	__u16 port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));

	if (pg_port_bits[0] & (1ull << ES_PG_PORT_ANY))
		return true;
	return (pg_port_bits[(port >> 6) & (ES_PG_PORT_WORDS - 1)] >> (port & 63)) & 1;
}

/*
 * A connect's SYN_SENT notes its process under the socket; its handshake's
 * end (ESTABLISHED) moves that to the connection's 4-tuple, which the
 * backend's first statement finds (link_client()). The destination port is
 * set before SYN_SENT (tcp_v4_connect(), tcp_v6_connect()).
 */
static __always_inline void on_conn_state(struct sock *sk, int oldstate, int newstate)
{
	struct pg_conn_key k;
	__u64 key = (__u64)sk;
	__u32 *owner, tgid;

	if (newstate != ES_TCP_SYN_SENT && oldstate != ES_TCP_SYN_SENT)
		return;
	if (!to_pg_port(sk))
		return;
	if (newstate == ES_TCP_SYN_SENT) {
		tgid = current_tgid();
		bpf_map_update_elem(&pg_connecting, &key, &tgid, BPF_ANY);
		return;
	}
	owner = bpf_map_lookup_elem(&pg_connecting, &key);
	if (!owner)
		return;
	tgid = *owner;
	bpf_map_delete_elem(&pg_connecting, &key);
	if (newstate == ES_TCP_ESTABLISHED && conn_key(sk, &k, true))
		bpf_map_update_elem(&pg_conn_owner, &k, &tgid, BPF_ANY);
}

/*
 * At a backend's first statement: the process at the other end of its
 * connection (MyProcPort->sock is the first field of struct Port), so
 * statements of backends that live a few milliseconds still name their
 * sender. A Unix socket's peer is in its credentials; a TCP client on this
 * host was seen connecting (on_conn_state()).
 */
/*
 * Statement time is kept per client only for tracked workers (the requests
 * probe's parts): pgbench or psql cost no map update. A client tracked
 * later is mapped by user space (pg_backend_clients).
 */
static __always_inline __u32 tracked_client(__u32 tgid)
{
	return tgid && bpf_map_lookup_elem(&workers, &tgid) ? tgid : 0;
}

static __always_inline void link_client(struct pg_task *t, const struct es_pg_bin *b)
{
	struct es_pg_ev_link *ev;
	struct pg_conn_key k;
	struct sock *sk;
	__u64 port = 0;
	__s32 fd = -1;
	__u32 *owner;

	t->linked = 1;
	if (!b || !b->myport_va || !learn_bias(t, b))
		return;
	if (bpf_probe_read_user(&port, sizeof(port), (void *)(t->bias + b->myport_va)) || !port ||
	    bpf_probe_read_user(&fd, sizeof(fd), (void *)port) || fd < 0)
		return;
	sk = fd_sock((__u32)fd);
	if (!sk)
		return;
	ev = bpf_ringbuf_reserve(&pg_events, sizeof(*ev), 0);
	if (!ev) {
		count_drop();
		return;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->h.type = ES_PG_EV_LINK;
	ev->h.tgid = current_tgid();
	ev->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (ev->family == ES_AF_UNIX) {
		ev->client_tgid = BPF_CORE_READ(sk, sk_peer_pid, numbers[0].nr);
		t->client = tracked_client(ev->client_tgid);
	} else if (conn_key(sk, &k, false)) {
		owner = bpf_map_lookup_elem(&pg_conn_owner, &k);
		if (owner)
			ev->client_tgid = *owner;
		t->client = tracked_client(ev->client_tgid);
		__builtin_memcpy(ev->addr, k.caddr, 16);
		ev->port = k.cport;
	}
	bpf_ringbuf_submit(ev, es_rb_lazy(&pg_events, PG_EVENTS_SIZE));
}

/* A statement ended (query__done) in binary b (slot idx; NULL: unknown). */
static __always_inline int query_done(struct es_pg_bin *b, __u32 idx, const char *query, __u64 now)
{
	struct pg_task *t;
	__u64 start;
	__u32 no_xact;
	__s64 start_us;

	t = task_get(true);
	if (!t)
		return 0;
	if (!one_trap(t, b)) {
		long lxid;

		if (!t->start_ns)
			return 0;
		if (!t->linked)
			link_client(t, b);
		lxid = xact_lxid(t, b);
		account(t, now - t->start_ns, 0, !t->aborted && lxid == 0);
		/* Where MyProc cannot be read, busy is the statement alone. */
		if (lxid <= 0)
			busy_close(t, now);
		return 0;
	}
	learn_db(t, b);
	start = statement_start(t, b, idx, true, &start_us, &no_xact);
	if (start) {
		statement_text(t, query);
		raw_text_check(t, idx);
		if (!t->linked)
			link_client(t, b);
		t->start_ns = start;
		/*
		 * Committed: no transaction open any more and none aborted, as
		 * xact_lxid() says from MyProc, but from the entry just read.
		 */
		account(t, now > start ? now - start : 0, 0,
			commits_at_done(b) && no_xact && !t->aborted);
		t->last_start_us = start_us;
		busy_open(t, start);
	}
	if (no_xact)
		busy_close(t, now);
	t->last_done_ns = now;
	statement_reset(t);
	return 0;
}

/*
 * One pt_regs field, read from the context at a constant offset (the
 * verifier refuses a computed one, which is what clang turns a switch of
 * plain loads into).
 */
#define CTX_REG(ctx, field)                                                          \
	({                                                                           \
		__u64 __v;                                                           \
		asm volatile("%0 = *(u64 *)(%1 + %2)"                                \
			     : "=r"(__v)                                             \
			     : "r"(ctx), "i"(__builtin_offsetof(struct pt_regs, field))); \
		__v;                                                                 \
	})

/* A pt_regs register by enum es_pg_reg. */
static __always_inline __u64 reg_value(struct pt_regs *ctx, __u32 reg)
{
#if defined(__TARGET_ARCH_x86)
	switch (reg) {
	case ES_PG_REG_AX:
		return CTX_REG(ctx, ax);
	case ES_PG_REG_BX:
		return CTX_REG(ctx, bx);
	case ES_PG_REG_CX:
		return CTX_REG(ctx, cx);
	case ES_PG_REG_DX:
		return CTX_REG(ctx, dx);
	case ES_PG_REG_SI:
		return CTX_REG(ctx, si);
	case ES_PG_REG_DI:
		return CTX_REG(ctx, di);
	case ES_PG_REG_BP:
		return CTX_REG(ctx, bp);
	case ES_PG_REG_SP:
		return CTX_REG(ctx, sp);
	case ES_PG_REG_R8:
		return CTX_REG(ctx, r8);
	case ES_PG_REG_R9:
		return CTX_REG(ctx, r9);
	case ES_PG_REG_R10:
		return CTX_REG(ctx, r10);
	case ES_PG_REG_R11:
		return CTX_REG(ctx, r11);
	case ES_PG_REG_R12:
		return CTX_REG(ctx, r12);
	case ES_PG_REG_R13:
		return CTX_REG(ctx, r13);
	case ES_PG_REG_R14:
		return CTX_REG(ctx, r14);
	case ES_PG_REG_R15:
		return CTX_REG(ctx, r15);
	}
#endif
	return 0;
}

/*
 * query__done as a plain uprobe (see enum es_pg_reg): the cookie names the
 * binary and where the statement text's address is.
 */
SEC("uprobe")
int es_pg_query_done(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_ns(), c = bpf_get_attach_cookie(ctx), q;
	__u32 idx = ES_PG_COOKIE_SLOT1(c) - 1;
	struct es_pg_bin *b;

	if (!ES_PG_COOKIE_SLOT1(c) || idx >= ES_PG_MAX_BINS)
		return 0;
	b = bpf_map_lookup_elem(&pg_bins, &idx);
	if (!b || !b->one_trap)
		return query_done(b, idx, NULL, now); /* the text comes at query__start */
	q = reg_value(ctx, ES_PG_COOKIE_REG(c));
	if (ES_PG_COOKIE_DEREF(c) &&
	    bpf_probe_read_user(&q, sizeof(q), (void *)(q + ES_PG_COOKIE_OFF(c))))
		return 0;
	return query_done(b, idx, (const char *)q, now);
}

/* query__done through libbpf's USDT runtime, where the argument is in another form. */
SEC("usdt")
int BPF_USDT(es_pg_query_done_usdt, const char *query)
{
	__u64 now = bpf_ktime_get_ns();
	struct es_pg_bin *b;
	__u32 idx = 0;

	b = bin_of(ctx, &idx);
	return query_done(b, idx, query, now);
}

/*
 * one_trap: the text of the statement running now (debug_query_string)
 * into t->fp and t->cmd; false when it cannot be read.
 */
static __always_inline bool current_text(struct pg_task *t, const struct es_pg_bin *b)
{
	const char *q = NULL;

	if (!learn_bias(t, b) ||
	    bpf_probe_read_user(&q, sizeof(q), (void *)(t->bias + b->dqs_va)) || !q)
		return false;
	statement_text(t, q);
	return true;
}

/*
 * one_trap, at transaction__abort: the failing statement's text, from the
 * status entry (PostgreSQL clears debug_query_string before it aborts).
 */
static __always_inline bool failed_text(struct pg_task *t)
{
	const char *q = NULL;

	if (!t->raw_ok ||
	    bpf_probe_read_user(&q, sizeof(q), (void *)(t->mybe + ES_PG_BE_ACTIVITY_RAW_OFF)) || !q)
		return false;
	statement_text(t, q);
	return true;
}

/*
 * one_trap, at transaction__abort: is the statement in the status entry a
 * plain ROLLBACK or ABORT? Odoo ends every read-only request with one; its
 * query__done comes and accounts it, so the abort has nothing to read. A
 * peek at 16 bytes instead of normalising the text (what failed_text()
 * would do to learn the same); anything else, a comment first included,
 * takes that path.
 */
static __always_inline bool raw_is_rollback(const struct pg_task *t)
{
	const char *q = NULL;
	__u32 len = 0;
	char buf[16] = {};
	__u64 kw = 0;
	__u8 c;

	if (!t->raw_ok ||
	    bpf_probe_read_user(&q, sizeof(q), (void *)(t->mybe + ES_PG_BE_ACTIVITY_RAW_OFF)) || !q ||
	    bpf_probe_read_user_str(buf, sizeof(buf), q) <= 1)
		return false;
	/* Up to 4 blanks, then the first word, case-folded, as es_pg_end_word() sees it. */
	for (__u32 j = 0; j < 13; j++) {
		c = buf[j];
		if (!len && (c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
			if (j >= 4)
				return false;
			continue;
		}
		if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
			kw = (kw << 8) | (c | 0x20);
		else if ((c >= '0' && c <= '9') || c == '_' || c == '$' || c >= 0x80)
			return false; /* a word character es_pg_end_word() would keep */
		else
			break;
		if (++len > 8)
			return false;
	}
	return kw == ES_PG_KWV_ROLLBACK || kw == ES_PG_KWV_ABORT;
}

/* ---------------------------------------------------------------- transactions */

static __always_inline void count_db(struct pg_task *t, __u32 what)
{
	__u32 tgid = current_tgid();
	struct es_pg_db_key dk = { .db = t ? task_db(t, tgid) : db_of(tgid) };
	struct es_pg_dbstat *d = es_lookup_or_init(&pg_db_stats, &dk, &zero_dbstat, ES_MAP_PG_DB_STATS);

	if (!d)
		return;
	if (what == 0)
		d->commits += 1;
	else if (what == 1)
		d->aborts += 1;
	else
		d->deadlocks += 1;
}

SEC("usdt")
int BPF_USDT(es_pg_xact_commit)
{
	count_db(task_get(false), 0);
	return 0;
}

static __always_inline void lock_done(struct pt_regs *ctx, struct pg_task *t, __u64 now);

SEC("usdt")
int BPF_USDT(es_pg_xact_abort)
{
	__u64 now = bpf_ktime_get_ns();
	struct pg_task *t = task_get(true);
	struct es_pg_bin *b;
	struct es_pg_xacts *x;
	__u32 idx = 0;

	count_db(t, 1);
	x = bpf_task_storage_get(&pg_xacts, bpf_get_current_task_btf(), 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (x)
		__sync_fetch_and_add(&x->aborts, 1);
	if (!t)
		return 0;
	t->aborted = 1;
	/* A wait cut short by an error (a deadlock victim) still waited. */
	if (t->lock_start)
		lock_done(ctx, t, now);
	b = bin_of(ctx, &idx);
	if (one_trap(t, b)) {
		/* Its query__done comes, and ends the busy interval. */
		if (raw_is_rollback(t))
			return 0;
		/*
		 * The failing statement never reaches query__done: account it
		 * here, once (its start stamp marks it as accounted). ROLLBACK
		 * aborts from inside its own statement: no error, and its
		 * query__done comes.
		 */
		__u64 start;
		__s64 start_us;

		start = statement_start(t, b, idx, false, &start_us, NULL);
		if (start && failed_text(t)) {
			if (t->cmd == ES_PG_CMD_ROLLBACK)
				return 0;
			t->start_ns = start;
			account(t, now > start ? now - start : 0, 1, 0);
			t->abort_start_us = start_us;
			t->last_done_ns = now;
			statement_reset(t);
			t->aborted = 1;
		}
		busy_abort(t, start, now);
		return 0;
	}
	/* ROLLBACK aborts from inside its own statement: that is no error. */
	if (t->start_ns && t->cmd == ES_PG_CMD_ROLLBACK)
		return 0;
	busy_abort(t, t->start_ns, now);
	if (t->start_ns)
		account(t, now - t->start_ns, 1, 0);
	return 0;
}

/* ---------------------------------------------------------------- locks */

SEC("usdt")
int BPF_USDT(es_pg_lock_start, __u32 f1, __u32 f2, __u32 f3, __u16 f4, __u8 type, int mode)
{
	struct pg_task *t = task_get(true);

	if (!t)
		return 0;
	t->tag[0] = f1;
	t->tag[1] = f2;
	t->tag[2] = f3;
	t->tag[3] = f4;
	t->locktype = type;
	t->mode = mode;
	t->lock_start = bpf_ktime_get_ns();
	lock_last_start = t->lock_start;
	return 0;
}

static __always_inline void send_lock(struct pt_regs *ctx, struct pg_task *t, __u32 type,
				      __u64 wait_ns, __u64 end_ns)
{
	struct es_pg_ev_lock *ev;
	__u32 tgid = current_tgid(), idx = 0;
	__u64 fp = t->start_ns ? t->fp : 0;
	struct es_pg_bin *b = bin_of(ctx, &idx);

	/* one_trap: which statement waited is read now (rare: slow waits only). */
	if (type != ES_PG_EV_LOCK_TRACE && one_trap(t, b))
		fp = current_text(t, b) ? t->fp : 0;
	ev = bpf_ringbuf_reserve(&pg_events, sizeof(*ev), 0);

	if (!ev) {
		count_drop();
		return;
	}
	ev->h.type = type;
	ev->h.tgid = tgid;
	ev->fp = fp;
	ev->wait_ns = wait_ns;
	ev->db = task_db(t, tgid);
	ev->field1 = t->tag[0];
	ev->field2 = t->tag[1];
	ev->field3 = t->tag[2];
	ev->field4 = t->tag[3];
	ev->locktype = t->locktype;
	ev->mode = t->mode;
	ev->pad = 0;
	ev->client = t->client;
	ev->pad2 = 0;
	ev->end_ns = end_ns;
	bpf_ringbuf_submit(ev, 0);
}

static __always_inline void lock_done(struct pt_regs *ctx, struct pg_task *t, __u64 now)
{
	struct es_pg_lock_key k = { .db = task_db(t, current_tgid()),
				    .mode = t->mode,
				    .locktype = t->locktype };
	__u64 wait = now - t->lock_start;
	struct es_pg_hist *h;

	t->lock_start = 0;
	h = es_lookup_or_init(&pg_lock_hist, &k, &zero_hist, ES_MAP_PG_LOCK_HIST);
	if (h)
		hist_add(h, lat_edges_ns, lat_nedges, wait);
	t->lock_ns += wait;
	t->lock_waits += 1;
	if (wait > slow_ns)
		send_lock(ctx, t, ES_PG_EV_LOCK, wait, now);
	else if (trace_on)
		send_lock(ctx, t, ES_PG_EV_LOCK_TRACE, wait, now);
}

SEC("usdt")
int BPF_USDT(es_pg_lock_done)
{
	__u64 now = bpf_ktime_get_ns();
	struct pg_task *t = task_get(false);

	if (t && t->lock_start)
		lock_done(ctx, t, now);
	return 0;
}

SEC("usdt")
int BPF_USDT(es_pg_deadlock)
{
	struct pg_task *t = task_get(false);

	count_db(t, 2);
	if (t)
		send_lock(ctx, t, ES_PG_EV_DEADLOCK,
			  t->lock_start ? bpf_ktime_get_ns() - t->lock_start : 0, 0);
	return 0;
}

/* ---------------------------------------------------------------- buffers, checkpoints */

/* Reads from the OS: blocks that missed shared buffers. */
SEC("usdt")
int BPF_USDT(es_pg_read_done)
{
	/* Created here too: a new backend's first statement reads before it ends. */
	struct pg_task *t = task_get(true);
	struct es_pg_bin *b;
	__u32 idx = 0;

	if (!t)
		return 0;
	b = bin_of(ctx, &idx);
	if (t->start_ns || one_trap(t, b))
		t->misses += 1;
	return 0;
}

SEC("usdt")
int BPF_USDT(es_pg_ckpt_start, int flags)
{
	__u32 tgid = current_tgid(), zero = 0;
	__u64 now = bpf_ktime_get_ns();
	struct es_pg_ckpt *c = bpf_map_lookup_elem(&pg_ckpt, &zero);

	bpf_map_update_elem(&pg_ckpt_start, &tgid, &now, BPF_ANY);
	if (c)
		c->started[flags & ES_PG_CKPT_FLAG_XLOG ? ES_PG_CKPT_WAL :
			   flags & ES_PG_CKPT_FLAG_TIME ? ES_PG_CKPT_TIME : ES_PG_CKPT_REQUESTED] += 1;
	return 0;
}

/* A plain uprobe: libbpf cannot parse this probe's %rip-relative arguments. */
SEC("uprobe")
int es_pg_ckpt_done(struct pt_regs *ctx)
{
	__u32 tgid = current_tgid(), zero = 0;
	__u64 now = bpf_ktime_get_ns(), *start;
	struct es_pg_ckpt *c;
	__u32 b;

	start = bpf_map_lookup_elem(&pg_ckpt_start, &tgid);
	c = bpf_map_lookup_elem(&pg_ckpt, &zero);
	if (!start || !c)
		return 0;
	b = es_hist_bucket(ckpt_edges_ns, ckpt_nedges, ES_PG_MAX_EDGES, now - *start);
	if (b <= ES_PG_MAX_EDGES)
		c->buckets[b] += 1;
	c->sum_ns += now - *start;
	bpf_map_delete_elem(&pg_ckpt_start, &tgid);
	return 0;
}

SEC("usdt")
int BPF_USDT(es_pg_buf_written)
{
	__u32 zero = 0;
	struct es_pg_ckpt *c = bpf_map_lookup_elem(&pg_ckpt, &zero);

	if (c)
		c->buffers_written += 1;
	return 0;
}

/* ---------------------------------------------------------------- connects */

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(es_pg_conn_state, struct sock *sk, int oldstate, int newstate)
{
	on_conn_state(sk, oldstate, newstate);
	return 0;
}

SEC("raw_tp/inet_sock_set_state")
int BPF_PROG(es_pg_conn_state_r, struct sock *sk, int oldstate, int newstate)
{
	on_conn_state(sk, oldstate, newstate);
	return 0;
}

/* ---------------------------------------------------------------- busy time at scrape */

/*
 * one_trap: since when the status entry says the backend is held (a
 * statement runs, or a transaction is open), in monotonic ns; now when
 * that stamp cannot be converted, 0 when it is idle or the entry does not
 * check out. The transaction's start comes first: PostgreSQL takes it from
 * the first statement's stamp.
 */
static __always_inline __u64 status_busy_since(struct task_struct *task, struct pg_task *t,
					       __u64 now)
{
	/* The head of PgBackendStatus, up to st_state_start_timestamp. */
	struct {
		__s32 changecount, procpid, backend_type, pad;
		__s64 ts[4]; /* backend start, xact start, statement start, state start */
	} be;
	struct es_pg_clock clk;
	__s32 state = 0;
	__s64 us;
	__u64 ns;

	if (bpf_copy_from_user_task(&be, sizeof(be), (void *)t->mybe, task, 0) ||
	    bpf_copy_from_user_task(&state, sizeof(state), (void *)(t->mybe + ES_PG_BE_STATE_OFF),
				    task, 0) ||
	    (__u32)be.procpid != task->tgid)
		return 0;
	if (state == ES_PG_BE_RUNNING || state == ES_PG_BE_FASTPATH)
		us = be.ts[1] ? be.ts[1] : be.ts[2];
	else if (state == ES_PG_BE_IDLE_IN_XACT || state == ES_PG_BE_IDLE_IN_XACT_ABORTED)
		us = be.ts[1] ? be.ts[1] : be.ts[3]; /* an abort cleared the transaction's */
	else
		return 0;
	clk = realtime_clock;
	ns = us ? es_pg_stamp_to_mono(&clk, (us + (__s64)ES_PG_EPOCH_UNIX_S * 1000000) * 1000, now,
				      t->last_done_ns) : 0;
	return ns ? ns : now;
}

/* One record per backend: its busy time, the interval open now included. */
SEC("iter.s/task")
int es_pg_busy_iter(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	struct es_pg_busy rec = {};
	struct pg_task *t;
	__u64 now, since;

	if (!task)
		return 0;
	t = bpf_task_storage_get(&pg_tasks, task, NULL, 0);
	if (!t)
		return 0;
	now = bpf_ktime_get_ns();
	rec.tgid = task->tgid;
	/* The sum first: an interval closing in between is missed, not counted twice. */
	rec.busy_ns = *(volatile __u64 *)&t->busy_ns;
	since = *(volatile __u64 *)&t->busy_since;
	/* Timed from two probes, query__start opened the interval. */
	if (!since && !t->two && t->mybe)
		since = status_busy_since(task, t, now);
	if (since) {
		rec.busy = 1;
		rec.open_ns = now > since ? now - since : 0;
	}
	bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	return 0;
}
