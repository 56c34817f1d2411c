/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The "diagnose" capability: GET /diagnose turns what the other
 * capabilities hold into ranked findings (rules over the daemon's own data,
 * no model), now or around a past time (?at=). It only reads: other
 * capabilities' public accessors and the event log; none of them includes
 * anything from here.
 *
 *   diag_rules.c   the rule table: id, severity, threshold, evidence, action
 *   diag_history.c snapshots of cumulative counters (every 5 s for 15 min,
 *                  every minute for 24 h) and the events the rules need
 *                  (24 h, bounded), on a clock its caller passes in
 *   diag_sql.c     tables and filtered columns of a normalised statement
 *   diag_eval.c    the rules over a window: findings, ranked
 *   diag_find.c    a finding's parts: added, formatted, evidence
 *   diag_capacity.c rules on what the host gives: CPU taken by others,
 *                  checkpoints too frequent, GPU pressure
 *   diag_trend.c   rules against the past: statements per request rising
 *   diag_render.c  text and JSON
 *   diag_read.c    reads the other capabilities into a snapshot and events
 *   diagnose.c     the poller and the HTTP handler
 */
#ifndef ERPSCOPE_DIAGNOSE_H
#define ERPSCOPE_DIAGNOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct erpscope;
struct http_exchange;
struct json;
struct poller_ops;

/* ---------------------------------------------------------------- snapshots */

#define DIAG_FINE_MS 5000u  /* fine snapshots: every 5 s ... */
#define DIAG_FINE_N 180u    /* ... for 15 minutes */
#define DIAG_COARSE_S 60u   /* coarse: every minute ... */
#define DIAG_COARSE_N 1440u /* ... for 24 hours */
#define DIAG_KEEP_S (24 * 3600)
#define DIAG_ROUTES 8 /* the routes and RPCs holding workers longest, per snapshot */
#define DIAG_STMTS 8  /* the statements with the most PostgreSQL time */
#define DIAG_IOW 8    /* the (worker, device) pairs with the most iowait */
#define DIAG_HOT 4    /* the statements with the most calls */
#define DIAG_POOLS 4  /* HTTP pools (listening ports), the most workers first */
#define DIAG_ROLES 12 /* enum es_role's ES_ROLE_COUNT (checked in diag_read.c) */
#define DIAG_GPUS 4   /* NVML devices: the most pressed first */
#define DIAG_ISSUERS 8 /* the (issuer, device) pairs with the most bytes of block I/O */

struct diag_route {
	char key[48]; /* route, or "model method" */
	uint8_t role; /* enum es_role */
	bool rpc;
	uint64_t count, sum_ns, pg_stmts, pg_ns;
};

struct diag_stmt {
	uint64_t fp;
	uint64_t calls, total_ns, lock_ns, lock_waits, misses;
	char sender[24]; /* "role/worker" that sent it most, "" when unknown */
};

/* The HTTP workers holding one listening port (0: not known yet). */
struct diag_pool {
	uint16_t port;
	uint32_t busy, idle; /* workers now */
	uint64_t busy_ns, waits, wait_ns;
};

/*
 * Throttle reasons that are pressure (bit i: gpu_reason_name(i)):
 * sw_power_cap, hw_slowdown, sw_thermal_slowdown, hw_thermal_slowdown,
 * hw_power_brake_slowdown; not gpu_idle, application or display clocks, sync boost.
 */
#define DIAG_GPU_PRESSURE 0xecu

/* An NVML device at one time. */
struct diag_gpu {
	char index[8], name[32];
	bool mem_known, util_known;
	double mem_used, mem_total, util;
	uint32_t reasons; /* throttle reasons holding the clocks down (gpu_reason_name) */
};

struct diag_iow {
	char device[16];
	char who[32]; /* "role/worker" */
	uint64_t ns;
};

/* What one worker (or "other": the untracked tasks) issued to one block device. */
struct diag_issuer {
	char device[16];
	char who[48]; /* "role/worker (comm)", or a role's aggregate */
	uint64_t ops, bytes;
};

/* Cumulative counters at one time (counts only grow, except over restarts). */
struct diag_snap {
	double t; /* Unix seconds; 0: empty */
	bool pool_known, routes_known, pg_known;
	unsigned int npools;
	struct diag_pool pools[DIAG_POOLS]; /* HTTP pools, by listening port */
	uint64_t pg_total_ns, pg_calls; /* every statement */
	/* the cluster nearest its max_connections */
	bool conns_known;
	char cluster[32];
	uint32_t conns, max_conns;
	/* Odoo workers (http, cron, gevent): how many, their CPU and run-queue time */
	bool odoo_known;
	uint32_t odoo_workers;
	uint64_t odoo_cpu_ns, odoo_runq_ns; /* only grow (struct diag_history's acc) */
	uint64_t role_cpu_ns[DIAG_ROLES];   /* every tracked worker's CPU by role, the same way */
	/* checkpoints started, by cause: time, wal, requested (enum es_pg_ckpt_cause) */
	bool ckpt_known;
	uint64_t ckpts[3];
	unsigned int ngpus;
	struct diag_gpu gpus[DIAG_GPUS];
	/* the host poller */
	bool host_known, psi_known;
	uint64_t cpu_busy_ticks, cpu_ticks;
	uint64_t mem_total, mem_available;
	char fs_mount[48];
	double fs_used;
	uint64_t psi_mem_us, psi_io_us;
	unsigned int niow;
	struct diag_iow iow[DIAG_IOW];
	unsigned int nroutes, nstmts;
	struct diag_route routes[DIAG_ROUTES];
	struct diag_stmt stmts[DIAG_STMTS];
	unsigned int nhot;
	struct diag_stmt hot[DIAG_HOT];
	unsigned int nissuers;
	struct diag_issuer issuers[DIAG_ISSUERS];
};

/* ---------------------------------------------------------------- events */

enum diag_ev {
	DIAG_EV_OOM,
	DIAG_EV_EXIT,
	DIAG_EV_CONNECT,
	DIAG_EV_LOCK,
	DIAG_EV_DEADLOCK,
	DIAG_EV_COUNT,
};

/* One event of the log, or several alike within a minute (count > 1). */
struct diag_event {
	double t, t_last; /* Unix seconds: first and last */
	uint8_t type;     /* enum diag_ev */
	uint32_t count;
	double seconds;   /* waited (connect, lock), summed */
	uint64_t rss;     /* OOM: bytes */
	uint32_t pid;
	char role[16], worker[24], comm[24];
	char route[56], rpc[56];     /* what the worker was serving ("" none) */
	char reason[24];             /* exit reason, connect failure reason, lock mode */
	char signal[12];
	char sender_role[16], sender_comm[24];
	char remote[56];
	char fp[20];
	char query[128];
	char summary[96];           /* OOM: the memory history in one sentence */
	char cgroup[64];
	/* lock wait: the likely holder (holder_pid 0: none seen) */
	uint32_t holder_pid;
	char holder_role[16], holder_worker[24];
	char holder_query[128];
	double holder_xact_s, holder_gap_s;
};

/* Fills ev from an event of the log; false for types the rules do not use. */
bool diag_event_parse(const char *type, const char *body, size_t len, double t,
		      struct diag_event *ev);

/* ---------------------------------------------------------------- crons */

/* An Odoo cron seen running (IrCron._callback with its cron_name) in a worker. */
struct diag_cron {
	uint32_t pid;
	char name[64];
	double first, last; /* Unix seconds: seen running from, until */
	char where[96];     /* the innermost frame of its thread at the last look */
	char state[12];     /* that thread's scheduler state ... */
	double state_secs;  /* ... and for how long (< 0: not known) */
};

/* ---------------------------------------------------------------- history */

#define DIAG_EVENTS 1024
#define DIAG_CRONS 32

/*
 * A coarse snapshot as the ring keeps it: deflated (a snapshot is mostly
 * empty slots and short names: 3.3 KiB in, a few hundred bytes out), so
 * 24 hours of them do not grow the daemon by 4.6 MiB as the day fills.
 */
struct diag_packed {
	double t;        /* the snapshot's, kept plain for the searches; 0: empty */
	uint32_t len;
	unsigned char *z;
};

struct diag_history {
	struct diag_snap *fine;     /* ring of DIAG_FINE_N */
	struct diag_packed *coarse; /* ring of DIAG_COARSE_N */
	struct diag_snap *unpacked; /* 2: the coarse start and end diag_history_window() gave */
	unsigned int fine_head, fine_n, coarse_head, coarse_n;
	bool coarse_wrapped; /* the first snapshot, kept coarse, was dropped */
	double last_fine, last_coarse;
	struct diag_event *ev; /* ring of DIAG_EVENTS */
	unsigned int ev_head, ev_n;
	uint64_t ev_dropped;
	uint64_t last_event_id; /* of the event log, read up to */
	struct diag_cron crons[DIAG_CRONS];
	unsigned int ncrons;
	/*
	 * Odoo workers' CPU and run-queue time, summed as it grows: per slot
	 * the last value seen, so a worker that exits takes nothing back.
	 */
	struct diag_acc {
		uint32_t pid;
		uint64_t cpu_ns, runq_ns;
	} *acc;
	unsigned int nacc;
	uint64_t odoo_cpu_ns, odoo_runq_ns;
	uint64_t role_cpu_ns[DIAG_ROLES];
};

int diag_history_init(struct diag_history *h);
void diag_history_free(struct diag_history *h);
/* Bytes the history holds, allocated once. */
size_t diag_history_bytes(void);
/* What the coarse ring's deflated snapshots take now (at most DIAG_COARSE_N of them). */
size_t diag_history_packed_bytes(const struct diag_history *h);
/* Stores s (taken at s->t) in the fine ring, and in the coarse one once a minute. */
void diag_history_snap(struct diag_history *h, const struct diag_snap *s);
/* Adds an event; alike ones within a minute are merged. Drops those past 24 h before now. */
void diag_history_event(struct diag_history *h, const struct diag_event *ev, double now);
/*
 * The snapshots bounding [from, to]: *start the first taken at or after
 * from (from the fine ring when it reaches back that far), *end the last at
 * or before to. NULL when there is none.
 */
void diag_history_window(const struct diag_history *h, double from, double to,
			 const struct diag_snap **start, const struct diag_snap **end);
/*
 * A cron seen running now: the same pid and name seen within the last
 * 30 s continue an entry; else a new one (the oldest makes room).
 */
void diag_history_cron(struct diag_history *h, const struct diag_cron *c, double now);
typedef void (*diag_snap_fn)(void *arg, const struct diag_snap *s);
/* Every snapshot taken at or before to, oldest first (the coarse ring, then the fine one). */
void diag_history_foreach(const struct diag_history *h, double to, diag_snap_fn fn, void *arg);
/*
 * Whether the history still holds the first snapshot it was given (the
 * daemon's first): then what any counter held at its oldest point was
 * counted within the history's span.
 */
bool diag_history_from_start(const struct diag_history *h);
/* The newest snapshot, or NULL. */
const struct diag_snap *diag_history_last(const struct diag_history *h);
typedef void (*diag_event_fn)(void *arg, const struct diag_event *ev);
/* Events whose time span meets [from, to], oldest first. */
void diag_history_events(const struct diag_history *h, double from, double to, diag_event_fn fn,
			 void *arg);

/* ---------------------------------------------------------------- rules */

enum diag_severity { DIAG_INFO, DIAG_WARNING, DIAG_CRITICAL };

enum diag_rule_id {
	DIAG_R_POOL,
	DIAG_R_SLOW_STMT,
	DIAG_R_LOCKS,
	DIAG_R_OOM,
	DIAG_R_KILLED,
	DIAG_R_CONNECT,
	DIAG_R_PG_CONNS,
	DIAG_R_HOST,
	DIAG_R_N_PLUS_ONE,
	DIAG_R_IOWAIT,
	DIAG_R_CRON,
	DIAG_R_WORKERS,
	DIAG_R_CPU_ELSEWHERE,
	DIAG_R_STMTS_RISING,
	DIAG_R_CHECKPOINTS,
	DIAG_R_GPU,
	DIAG_R_COUNT,
};

struct diag_rule {
	const char *id;
	int number; /* the issue's finding number */
	enum diag_severity severity;
	double threshold, threshold2; /* what they mean: see desc */
	const char *desc;     /* when it fires, with the thresholds */
	const char *evidence; /* what it reads */
	const char *action;   /* what to do */
};

extern const struct diag_rule diag_rules[DIAG_R_COUNT];
const char *diag_severity_name(enum diag_severity s);

/* ---------------------------------------------------------------- findings */

#define DIAG_EVIDENCE_MAX 6
#define DIAG_TEXT_MAX 512

struct diag_evidence {
	char what[200];  /* the number, in words */
	char check[160]; /* the metric or endpoint to check it with */
};

struct diag_finding {
	enum diag_rule_id rule;
	enum diag_severity severity;
	double score; /* ranks findings of one severity: seconds lost, roughly */
	double since; /* Unix seconds */
	char title[DIAG_TEXT_MAX];
	char cause[DIAG_TEXT_MAX];
	char action[DIAG_TEXT_MAX];
	struct diag_evidence ev[DIAG_EVIDENCE_MAX];
	unsigned int nev;
};

/* What the rules read over one window. */
struct diag_input {
	double from, to;                     /* the window asked for */
	const struct diag_snap *start, *end; /* NULL: none */
	const struct diag_history *h;
	unsigned int cores;
	double cron_threshold; /* seconds: --diagnose.cron-threshold */
	/* The normalised text of a fingerprint (hex), or NULL. */
	const char *(*fp_text)(void *arg, uint64_t fp);
	void *fp_arg;
	/* Live numbers, only when the window ends now (NULL otherwise). */
	double (*fp_p95)(void *arg, uint64_t fp); /* seconds over --pg.quantile-window, < 0 unknown */
};

/* The numbers that say whether anything is wrong, whatever the findings. */
struct diag_summary {
	double span; /* seconds between the snapshots used */
	bool pool_known, pg_known;
	double occupancy; /* HTTP workers' busy share */
	uint32_t workers;
	uint64_t waits;
	double wait_mean;
	double pg_seconds;
	uint64_t pg_calls;
	unsigned int oom_kills, worker_kills, connect_failures, lock_waits, deadlocks;
};

struct diag_result {
	struct diag_finding *f;
	size_t n, cap;
	struct diag_summary sum;
};

/* diag_find.c: a new finding of rule (NULL: no memory); its texts. */
struct diag_finding *diag_add(struct diag_result *r, enum diag_rule_id rule, double score,
			      double since);
void diag_fmt(char *buf, const char *f, ...) __attribute__((format(printf, 2, 3)));
void diag_evidence(struct diag_finding *f, const char *check, const char *what, ...)
	__attribute__((format(printf, 3, 4)));
static inline uint64_t diag_delta(uint64_t end, uint64_t start)
{
	return end > start ? end - start : 0;
}
/* Host CPU busy share and seconds over the window; false when not known. */
bool diag_host_cpu(const struct diag_input *in, double *busy, double *busy_s);

/* diag_capacity.c, diag_trend.c: 0 or -ENOMEM. */
int diag_rule_cpu_elsewhere(const struct diag_input *in, struct diag_result *res);
int diag_rule_checkpoints(const struct diag_input *in, struct diag_result *res);
int diag_rule_gpu(const struct diag_input *in, struct diag_result *res);
int diag_rule_stmts_rising(const struct diag_input *in, struct diag_result *res);
/* The CPUs saturated while Odoo's workers are not the cause (cpu_not_odoo's test). */
bool diag_cpu_not_odoo(const struct diag_input *in, const struct diag_summary *sum);
/* "CPUs x% busy ...": the pool rule's note on idle CPU (too few workers) into buf. */
void diag_pool_cpu_note(const struct diag_input *in, char *buf, size_t size);

/* Runs every rule over in; findings ranked (severity, then score). 0 or -ENOMEM. */
int diag_evaluate(const struct diag_input *in, struct diag_result *out);
void diag_result_free(struct diag_result *r);

/* diag_sql.c: "table(col, col); table2(col)" of the tables a statement reads and the
 * columns its WHERE/JOIN conditions compare; "" when none is found. */
void diag_sql_filters(const char *sql, char *out, size_t size);
/* The first table's "CREATE INDEX ON t (c, ...)" from diag_sql_filters' result, or "". */
void diag_sql_index_hint(const char *filters, char *out, size_t size);

/* diag_render.c */
int diag_render_text(const struct diag_input *in, const struct diag_result *r, char **body,
		     size_t *len);
void diag_render_json(const struct diag_input *in, const struct diag_result *r, struct json *j);
/* "2026-12-01T03:00:00Z" */
void diag_rfc3339(double t, char *buf, size_t size);
/* Parses RFC 3339 ("2026-12-01T03:00:00Z", "...+02:00", fractions allowed). */
int diag_parse_rfc3339(const char *s, double *out);

/*
 * diag_read.c: the other capabilities now. What is kept of routes,
 * statements and iowait is what grew most since prev (NULL: since start).
 */
void diag_read_snap(struct erpscope *es, struct diag_history *h, double now,
		    const struct diag_snap *prev, struct diag_snap *s);
/* Notes the crons running now (Odoo cron workers' Python stacks). */
void diag_read_crons(struct erpscope *es, struct diag_history *h, double now);
/* Moves new events of the log into the history. */
void diag_read_events(struct erpscope *es, struct diag_history *h, double now);

/* diagnose.c */
extern const struct poller_ops diagnose_poller_ops;
/* GET /diagnose; arg is the daemon. */
int diagnose_http(void *arg, struct http_exchange *x);

#endif
