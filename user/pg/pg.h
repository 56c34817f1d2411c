/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The "pg" probe's user-space parts, shared between its files:
 *   pg.c          probe_ops: open, attach, collect, close; ring-buffer events
 *   pg_discover.c server binaries: their USDT notes, attach per binary, rescans
 *   pg_queries.c  the statement table: texts, per (fingerprint, db) numbers,
 *                 top-K and "other", GET /queries
 *   pg_procs.c    the poller: PostgreSQL processes from the process table,
 *                 erpscope_pg_backends, erpscope_pg_max_connections, and the
 *                 client of each backend
 *   pg_link.c     backend -> client process (Unix and loopback TCP peers)
 *   pg_conf.c     max_connections from postgresql.conf and friends
 *   pg_normalize.c the normalised text of a statement
 *   pg_busy.c     pool occupancy of backends (busy/idle, busy seconds)
 */
#ifndef ERPSCOPE_PG_H
#define ERPSCOPE_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/types.h>

#include "../../bpf/pg.h"
#include "../../bpf/pg_clock.h"
#include "procs/title.h"

struct erpscope;
struct expo;
struct http_exchange;
struct probe;
struct pg_bpf;

#define PG_NAME_MAX TITLE_FIELD_MAX

/* ---------------------------------------------------------------- clients */

enum pg_link_kind {
	PG_LINK_UNKNOWN = 0, /* not looked up yet */
	PG_LINK_WORKER,      /* a tracked process on this host */
	PG_LINK_LOCAL,       /* a process on this host that erpscope does not track */
	PG_LINK_REMOTE,      /* another host */
};

struct pg_client {
	enum pg_link_kind kind;
	enum es_role role; /* PG_LINK_WORKER */
	__u32 pid;         /* PG_LINK_WORKER and PG_LINK_LOCAL when found */
	char worker[16];   /* the worker label (PG_LINK_WORKER) */
	char addr[48];     /* PG_LINK_REMOTE: the client's address */
};

/*
 * Display labels of a client: its role and worker label, "local" and its pid
 * (or "untracked"), "remote" and its address, or "unlinked" and "".
 */
void pg_client_labels(const struct pg_client *c, char *role, size_t rsize, char *worker,
		      size_t wsize);

/* ---------------------------------------------------------------- processes */

struct pg_proc {
	__u32 pid;
	__u32 ppid;
	__u64 starttime;
	enum es_role role;
	bool gone;        /* exited; kept a while for late lookups */
	uint64_t gone_ms;
	uint64_t seen_ms;
	char db[PG_NAME_MAX];
	char user[PG_NAME_MAX];
	char state[32];   /* normalised: active, idle, idle in transaction, ... */
	char cluster[PG_NAME_MAX];
	bool exe_known;   /* exe_dev/exe_ino read */
	dev_t exe_dev;
	ino_t exe_ino;
	struct pg_client client;
	unsigned int link_tries;
	uint64_t next_link_ms;
	/* Written by the probe: the database id given to the kernel, 0 none. */
	__u32 dbid;
	bool exe_seen; /* the probe looked at this process's binary */
	bool retired;  /* gone, and its series were folded into user space */
	bool adopted;  /* added on the kernel's request, before the table saw it */
	bool kernel_linked; /* the kernel named the client (ES_PG_EV_LINK) */
	bool client_mapped; /* its client is in the kernel's pg_backend_clients */
	uint64_t checked_ms; /* adopted: when its pid was last looked at */
	bool db_by_key; /* the kernel keys its database by (postmaster, OID): no pg_backends entry */
};

struct pg_procs;

/* The poller's table, or NULL when the poller is not running. */
struct pg_procs *pg_procs_of(struct erpscope *es);
/* The live or recently gone process pid; NULL if unknown. */
struct pg_proc *pg_procs_find(struct pg_procs *pp, __u32 pid);
/*
 * A backend the kernel asked about (its first statement ran before the
 * table knew it), with the title the kernel read (len bytes) and its start
 * time (/proc/<pid>/stat's field 22): added to the table. NULL when it is
 * no client backend.
 */
struct pg_proc *pg_procs_adopt(struct pg_procs *pp, __u32 pid, const char *title, size_t len,
			       __u64 starttime);
struct es_pg_ev_link;
/* Links a backend to the client the kernel found at its first statement. */
void pg_procs_link_kernel(struct pg_procs *pp, struct pg_proc *pr, const struct es_pg_ev_link *ev);
/*
 * The TCP ports of the live clusters (at most max, into ports). Returns
 * their number, -ENOENT when a live cluster's port is not known (its
 * postmaster.pid unread yet, or unreadable), -E2BIG past max.
 */
int pg_procs_ports(const struct pg_procs *pp, __u16 *ports, size_t max);
/* Every process in the table, gone ones included. */
size_t pg_procs_count(const struct pg_procs *pp);
struct pg_proc *pg_procs_at(struct pg_procs *pp, size_t i);

/*
 * pg_xacts.c: transactions aborted so far by the live backends linked to
 * the client process client_pid (summed into *aborts). Returns how many
 * such backends there are (0: none linked, *aborts 0), or -ENODEV when the
 * pg probe or its poller is down.
 */
int pg_client_aborts(struct erpscope *es, __u32 client_pid, uint64_t *aborts);

/*
 * Each running cluster: its name, client backends now (erpscope_pg_connections)
 * and max_connections (< 0: not known). 0, or -ENODEV when the poller is off.
 */
typedef void (*pg_cluster_fn)(void *arg, const char *name, unsigned int connections,
			      int max_connections);
int pg_clusters(struct erpscope *es, pg_cluster_fn fn, void *arg);

/*
 * Checkpoints started so far by cause (enum es_pg_ckpt_cause: time, wal,
 * requested), as erpscope_pg_checkpoints_total. 0, or -ENODEV when the pg
 * probe is off.
 */
int pg_checkpoints(struct erpscope *es, uint64_t started[3]);
extern const char *const pg_ckpt_cause_names[3];

/* ---------------------------------------------------------------- the probe */

struct pg_bin;
struct pg_queries;

struct ring_buffer;

#define PG_PENDING_LOCKS 16

struct pg_priv {
	struct pg_bpf *skel;
	struct erpscope *es;
	struct ring_buffer *rb; /* pg_events, NULL until attached */
	struct pg_bin *bins;
	size_t nbins, capbins;
	unsigned int nattached; /* binaries with probes attached */
	struct pg_queries *q;
	char dbnames[ES_PG_MAX_DBS][PG_NAME_MAX];
	unsigned int ndbs;
	uint64_t last_refresh_ms;
	uint64_t last_retire_ms;
	uint64_t last_bins_scan_ms;
	uint64_t fp_mismatches; /* texts whose user-space fingerprint differed */
	struct es_pg_clock clock; /* what the kernel has in realtime_clock */
	uint64_t clock_steps;     /* wall-clock steps seen */
	/* Binaries refused (pg_bin_owner_ok()), remembered to be refused quietly. */
	struct {
		dev_t dev;
		ino_t ino;
	} refused[16]; /* a ring: the last 16 */
	unsigned int nrefused;
	/* pg_busy.c: the backends' busy records of the last scrape, by tgid */
	struct es_pg_busy *busy;
	size_t nbusy, capbusy; /* capbusy in bytes */
	bool pooled; /* the pools source of role pg_backend */
	/* Lock waits whose holder was not noted yet, for one more look (pg.c on_lock) */
	struct es_pg_ev_lock pending_locks[PG_PENDING_LOCKS];
	unsigned int npending_locks;
};

/* pg_discover.c */
int pg_bins_scan_installed(struct pg_priv *pp);
/*
 * Whether a server binary owned by owner may be read and attached to for a
 * process running as proc_uid: root's, or the cluster user's own. Any
 * other user's file named postgres is not parsed by root nor given a slot.
 */
bool pg_bin_owner_ok(uid_t owner, uid_t proc_uid);
/* Looks at a running process's binary; attaches to it if it is new. */
void pg_bins_check_pid(struct pg_priv *pp, __u32 pid, dev_t *dev, ino_t *ino, bool *known);
void pg_bins_free(struct pg_priv *pp);
void pg_bins_collect(struct pg_priv *pp, struct expo *e);
/*
 * Servers whose start stamps stopped moving or whose entries did not check
 * out go back to query__start; binaries whose such servers are gone (a
 * restart) go back to query__done alone.
 */
void pg_pms_check(struct pg_priv *pp);
/* pg_ports.c: the live clusters' TCP ports (pg_procs_ports()) into the kernel's pg_port_bits. */
void pg_ports_sync(struct pg_priv *pp, const struct pg_procs *procs);

/* pg_busy.c: busy time of backends, the pools source of role pg_backend */
int pg_busy_attach(struct pg_priv *pp);
int pg_busy_read(struct pg_priv *pp);
void pg_busy_free(struct pg_priv *pp);

/* pg.c: the database id of a name ("" is unknown: id 0). */
__u32 pg_db_id(struct pg_priv *pp, const char *name);
const char *pg_db_name(const struct pg_priv *pp, __u32 id);
/* Gives a backend's database id to the kernel, if it has one and not yet. */
void pg_probe_map_backend(struct pg_priv *pp, struct pg_proc *pr);
/* Called by the poller after each tick when the probe is up. */
void pg_probe_sync(struct probe *p, struct pg_procs *procs, uint64_t now_ms);

/* pg_trace.c: statements for a trace recording (user/core/trace_sink.h) */
struct es_pg_ev_slow;
void pg_trace_statement(struct pg_priv *pp, const struct es_pg_ev_slow *k);
/* A lock wait that ended (a deadlock's has not: skipped), as a slice in its statement. */
void pg_trace_lock(struct pg_priv *pp, const struct es_pg_ev_lock *k);
int pg_trace_start(struct pg_priv *pp);
void pg_trace_stop(struct pg_priv *pp);

/* pg_queries.c */
struct pg_queries *pg_queries_new(unsigned int topk, unsigned int window_ms);
void pg_queries_free(struct pg_queries *q);
/* Stores the normalised text of fp (from the raw text, which is dropped). */
void pg_queries_add_text(struct pg_priv *pp, __u64 fp, const char *raw, size_t len);
/* The normalised text of fp, or NULL when it was never seen. */
const char *pg_queries_text(const struct pg_queries *q, __u64 fp, unsigned int *cmd);
/* The normalised text of fingerprint fp for other capabilities; NULL: not known, or pg is off. */
const char *pg_fingerprint_text(struct erpscope *es, __u64 fp);
/* Reads the kernel's aggregates into the table (cumulative, never reset). */
/* fine: read the fine bins too (they are otherwise read once a window slot). */
void pg_queries_refresh(struct pg_priv *pp, uint64_t now_ms, bool fine);
/* Folds the series keyed by backends that are gone into user space. */
void pg_queries_retire(struct pg_priv *pp, struct pg_procs *procs);
void pg_queries_collect(struct pg_priv *pp, struct expo *e);
/* GET /queries (arg: the daemon). */
int pg_queries_http(void *arg, struct http_exchange *x);
/* The database id a kernel db key stands for, or -1 while unknown. */
int pg_resolve_db(struct pg_priv *pp, struct pg_procs *procs, __u32 dbkey, bool *gone);

/* pg_holder.c: the likely holder of the lock a wait (not a deadlock) ended on. */
struct pg_holder {
	__u32 tgid;      /* its backend */
	__u64 fp;        /* its transaction's last statement (0: not known) */
	double xact_s;   /* how long its transaction was open */
	double before_s; /* how long before the wait began it opened */
	double gap_s;    /* how long before the wait's end it ended (< 0: after) */
};
bool pg_holder_find(const struct pg_priv *pp, const struct es_pg_ev_lock *ev,
		    struct pg_holder *out);

/* The exported edges (seconds) of statement/lock and checkpoint histograms. */
void pg_queries_edges(const double **lat, unsigned int *nlat, const double **ckpt,
		      unsigned int *nckpt);
const char *pg_lock_mode_name(unsigned int mode);
const char *pg_lock_type_name(unsigned int locktype);

/* One line of /queries: a statement among the top K, or a database's "other". */
struct pg_row {
	__u64 fp; /* ES_PG_FP_OTHER for "other" */
	__u32 db;
	uint64_t calls, total_ns, max_ns, misses, lock_ns, lock_waits, slow, errors;
	double p50, p95, p99; /* seconds; 0 for "other" */
	uint64_t wcalls;       /* calls in the window */
	double wp50, wp95, wp99; /* ... and their quantiles; 0 when none */
};

/* The top K by total time, largest first, then "other" per database; the
 * window quantiles over about the last window_ms (<= the configured one). */
int pg_queries_rows(struct pg_priv *pp, uint64_t window_ms, struct pg_row **rows, size_t *n);
/* A statement as other capabilities (user/diagnose) read it: valid during the call. */
struct pg_stmt {
	const struct pg_row *row; /* cumulative numbers; window quantiles over --pg.quantile-window */
	const char *db;
	const char *text;        /* normalised; NULL when not captured or "other" */
	const char *sender_role; /* the client that sent it most; NULL when none is known */
	const char *sender_worker;
	uint64_t sender_calls;
};
typedef void (*pg_stmt_fn)(void *arg, const struct pg_stmt *st);
/* Calls fn for the rows of /queries. 0, or -ENODEV when the pg probe is off. */
int pg_statements(struct erpscope *es, pg_stmt_fn fn, void *arg);

/* --pg.quantile-window, and how often the window moves on (a tenth of it). */
uint64_t pg_queries_window_ms(const struct pg_priv *pp);
uint64_t pg_queries_window_slot_ms(const struct pg_priv *pp);
/* (fingerprint, database) pairs seen, and K. */
size_t pg_queries_count(const struct pg_priv *pp);
unsigned int pg_queries_topk(const struct pg_priv *pp);

/*
 * Quantile q (0..1) of fine bins, in seconds; 0 when empty. min_ns: a floor
 * under the smallest observation (0: none), max_ns: the largest (0:
 * unknown); the answer stays between them. Exposed for tests.
 */
double pg_fine_quantile(const uint64_t *fine, unsigned int nbins, double q, uint64_t min_ns,
			uint64_t max_ns);
/* A floor under the smallest of calls observations summing to total_ns, each <= max_ns. */
uint64_t pg_min_bound(uint64_t calls, uint64_t total_ns, uint64_t max_ns);
/* Lower and upper bounds of fine bin b in ns (upper is UINT64_MAX for the last). */
void pg_fine_bounds(unsigned int b, uint64_t *lo, uint64_t *hi);

/*
 * pg_window.c: one statement's fine bins over a recent window. The window
 * is PG_WIN_SLOTS slots of interval_ms each; a slot holds what the
 * cumulative bins gained while it was the current one.
 */
#define PG_WIN_SLOTS 10

struct pg_win {
	uint64_t last[ES_PG_FINE_BINS]; /* cumulative bins when the current slot began */
	uint32_t gained[PG_WIN_SLOTS][ES_PG_FINE_BINS]; /* closed slots, newest at head */
	unsigned int head;
	uint64_t slot_start_ms;
};

/* Starts empty at now_ms: counts up to cum are before the window. */
void pg_win_init(struct pg_win *w, const uint64_t *cum, uint64_t now_ms);
/* Closes the slots that ended by now_ms, cum being the cumulative bins now. */
void pg_win_advance(struct pg_win *w, const uint64_t *cum, uint64_t now_ms, uint64_t interval_ms);
/*
 * The bins of about the last span_ms into out: the current slot (cum -
 * last) and the newest closed slots, as many as make span_ms (rounded up to
 * a slot, the current one counting as one) and at most PG_WIN_SLOTS - 1.
 * Returns how many calls that is.
 */
uint64_t pg_win_bins(const struct pg_win *w, const uint64_t *cum, uint64_t span_ms,
		     uint64_t interval_ms, uint64_t *out);

#endif
