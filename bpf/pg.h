/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Contract between bpf/pg.bpf.c and user/pg*.c: PostgreSQL statements,
 * transactions, lock waits, deadlocks and checkpoints from the server's
 * USDT probes. Fixed-width types only, no includes.
 */
#ifndef ERPSCOPE_BPF_PG_H
#define ERPSCOPE_BPF_PG_H

/* Statement text read per query__start; longer statements are cut here. */
#define ES_PG_TEXT_MAX 4096 /* a power of two */

/* Exported latency edges (ns) live in rodata; at most this many. */
#define ES_PG_MAX_EDGES 24 /* <= ES_HIST_MAX_EDGES in hist.h */

/*
 * Fine bins for quantiles: bin 0 is < 2^ES_PG_FINE_MIN_LOG2 ns (~1 us), then
 * ES_PG_FINE_SUB bins per power of two for the powers MIN_LOG2 .. MAX_LOG2
 * (up to 2^37 ns, ~137 s); the last bin holds everything above.
 */
#define ES_PG_FINE_MIN_LOG2 10
#define ES_PG_FINE_MAX_LOG2 36
#define ES_PG_FINE_SUB_BITS 2
#define ES_PG_FINE_SUB (1 << ES_PG_FINE_SUB_BITS)
#define ES_PG_FINE_BINS (2 + (ES_PG_FINE_MAX_LOG2 - ES_PG_FINE_MIN_LOG2 + 1) * ES_PG_FINE_SUB)

/*
 * Databases are small ids user space hands out (tgid -> id in pg_backends).
 * Until a backend's database is known, its series are keyed by its tgid
 * with this bit set; user space folds them into the right database later.
 */
#define ES_PG_DB_PID 0x80000000u
#define ES_PG_DB_UNKNOWN 0 /* id of "unknown" */
#define ES_PG_MAX_DBS 256  /* ids 0 .. ES_PG_MAX_DBS-1 */

/* Slots of the kernel's direct-mapped table of fingerprints already sent. */
#define ES_PG_KNOWN_SLOTS 16384 /* a power of two */

/* Statement heads whose normaliser state the kernel keeps (LRU). */
#define ES_PG_HEAD_SLOTS 4096

/* Fingerprint 0 is never produced; user space uses it for "other". */
#define ES_PG_FP_OTHER 0

/* Command of a statement, from its first keyword. */
enum es_pg_cmd {
	ES_PG_CMD_OTHER = 0,
	ES_PG_CMD_SELECT,
	ES_PG_CMD_INSERT,
	ES_PG_CMD_UPDATE,
	ES_PG_CMD_DELETE,
	ES_PG_CMD_BEGIN,
	ES_PG_CMD_COMMIT,
	ES_PG_CMD_ROLLBACK,
	ES_PG_CMD_COUNT,
};

/* Per (fingerprint, database): per-CPU, cumulative. */
struct es_pg_stat_key {
	__u64 fp;
	__u32 db;  /* database id, or ES_PG_DB_PID | tgid */
	__u32 pad; /* the command, for fp ES_PG_FP_OTHER (the map was full); else 0 */
};

struct es_pg_stat {
	__u64 calls;
	__u64 total_ns;
	__u64 max_ns;
	__u64 misses;     /* blocks read from the OS (smgr__md__read__done) */
	__u64 lock_ns;    /* time spent waiting for heavyweight locks */
	__u64 lock_waits; /* how many such waits */
	__u64 slow;       /* calls above the slow threshold */
	__u64 errors;     /* calls that ended in an error (counted at the abort) */
	__u64 commits;    /* calls that ended a transaction with a commit */
	__u32 cmd;        /* enum es_pg_cmd of the fingerprint */
	__u32 pad;
	__u64 buckets[ES_PG_MAX_EDGES + 1]; /* the last one is +Inf */
};

/*
 * The fine bins of the same key, in a map of their own (pg_fine): three
 * quarters of a statement's bytes, which only quantiles need, so a
 * scrape copies pg_stats' 280 bytes per key per CPU and user space reads
 * these only for /queries and when the quantile windows move on.
 */
struct es_pg_fine {
	__u64 fine[ES_PG_FINE_BINS]; /* 64-bit: 2^32 is a day at 50k/s */
};

struct es_pg_hist {
	__u64 buckets[ES_PG_MAX_EDGES + 1];
	__u64 sum_ns;
};

/* The TCP ports of this host's clusters, a bit each (pg_port_bits): 65536 bits. */
#define ES_PG_PORT_WORDS 1024
#define ES_PG_PORT_ANY 0 /* its bit: any port (not known yet, or a port not read) */

/*
 * Per server binary, at index (USDT cookie - 1) of pg_bins: where its
 * globals are (link-time addresses; the kernel adds the load bias, which is
 * the backend's mm->start_code minus text_va).
 *
 * Commits: a statement that leaves no transaction open (MyProc->lxid 0)
 * and saw no abort committed one, so commits are counted at query__done
 * without a third uprobe per statement (transaction__commit).
 *
 * One trap per statement (one_trap): PostgreSQL stamps each statement's
 * start in its own backend status entry (MyBEEntry->st_activity_start_
 * timestamp, set by pgstat_report_activity() just before query__start
 * fires) and keeps its text in debug_query_string, so query__done alone
 * can time, normalise and account a statement, and query__start is not
 * attached: one uprobe trap per statement instead of two. A statement that
 * fails never reaches query__done; transaction__abort accounts it, reading
 * its text from the status entry (st_activity_raw: debug_query_string is
 * cleared before the abort). A backend whose entry does not check out, or
 * whose stamps do not move (track_activities off), makes user space attach
 * query__start to the binary and time that postmaster's statements from
 * both probes (struct es_pg_pm) until it exits.
 */
#define ES_PG_MAX_BINS 64

struct es_pg_bin {
	__u64 text_va;      /* lowest executable PT_LOAD address, 0: unknown */
	__u64 abort_va;     /* the transaction__abort site, 0: not exactly one */
	__u64 myproc_va;    /* MyProc, 0: unknown (commits from transaction__commit) */
	__u64 mybeentry_va; /* MyBEEntry */
	__u64 dqs_va;       /* debug_query_string */
	__u64 myport_va;    /* MyProcPort, 0: unknown (clients are linked by user space) */
	__u64 mydb_va;      /* MyDatabaseId, 0: unknown (databases are mapped per backend) */
	__u32 lxid_off;     /* 1 + offset of lxid in PGPROC, 0: unknown */
	__u32 one_trap;     /* statements timed from MyBEEntry at query__done */
};

/*
 * query__done is attached as a plain uprobe where its argument is a
 * register or memory at a register plus an offset (x86-64, see
 * user/core/usdt_arg.c): libbpf's USDT runtime costs a spec lookup and a kernel
 * read per call, a fifth of what the kernel spends on a statement. The
 * uprobe's cookie says which binary and where the text's address is.
 */
enum es_pg_reg {
	ES_PG_REG_NONE = 0,
	ES_PG_REG_AX,
	ES_PG_REG_BX,
	ES_PG_REG_CX,
	ES_PG_REG_DX,
	ES_PG_REG_SI,
	ES_PG_REG_DI,
	ES_PG_REG_BP,
	ES_PG_REG_SP,
	ES_PG_REG_R8,
	ES_PG_REG_R9,
	ES_PG_REG_R10,
	ES_PG_REG_R11,
	ES_PG_REG_R12,
	ES_PG_REG_R13,
	ES_PG_REG_R14,
	ES_PG_REG_R15,
};

#define ES_PG_COOKIE(slot1, reg, deref, off)                                     \
	((__u64)(slot1) | ((__u64)(reg) << 8) | ((__u64)((deref) ? 1 : 0) << 16) | \
	 ((__u64)(__u32)(off) << 32))
#define ES_PG_COOKIE_SLOT1(c) ((__u32)((c) & 0xff)) /* the pg_bins slot + 1 */
#define ES_PG_COOKIE_REG(c) ((__u32)(((c) >> 8) & 0xff))
#define ES_PG_COOKIE_DEREF(c) ((__u32)(((c) >> 16) & 1))
#define ES_PG_COOKIE_OFF(c) ((__s32)(__u32)((c) >> 32))

/*
 * PgBackendStatus: st_procpid and st_activity_start_timestamp (PostgreSQL 10
 * and later), st_activity_raw (15; checked per backend against the text
 * query__done reports before it is used, see raw_text_ok()).
 */
#define ES_PG_BE_PROCPID_OFF 4
#define ES_PG_BE_ACTIVITY_START_OFF 32
#define ES_PG_BE_ACTIVITY_RAW_OFF 248
#define ES_PG_BE_STATE_OFF 232 /* st_state: BackendState (15) */
/* BackendState values that hold the backend: a statement runs or a transaction is open. */
#define ES_PG_BE_RUNNING 2
#define ES_PG_BE_IDLE_IN_XACT 3
#define ES_PG_BE_FASTPATH 4
#define ES_PG_BE_IDLE_IN_XACT_ABORTED 5
/* PostgreSQL's timestamps count microseconds from 2000-01-01 00:00 UTC. */
#define ES_PG_EPOCH_UNIX_S 946684800ull

/* Statements not timed, per binary, for erpscope_pg_statements_untimed_total. */
enum {
	ES_PG_BIN_STALE, /* one_trap, but the start stamp did not move: track_activities is off */
	ES_PG_BIN_NO_STATUS, /* one_trap, but the backend's status entry did not check out */
	ES_PG_BIN_CLOCK_STEP, /* one_trap, but the start stamp may predate a wall-clock step */
	ES_PG_BIN_STAT_COUNT,
};

/*
 * Per postmaster whose backends' statements the kernel could not time from
 * their status entries (pg_pms, by the postmaster's tgid): a backend of it
 * whose entry did not check out (no_status) or whose start stamp did not
 * move at query__done (stale: track_activities off). User space then
 * attaches query__start to the binary and sets two_probes: that server's
 * statements are timed from both probes until it exits. A restarted server
 * is a new postmaster and starts on query__done alone again.
 */
struct es_pg_pm {
	__u64 stale;
	__u64 no_status;
	__u32 slot1;      /* the binary's pg_bins slot + 1 */
	__u32 two_probes; /* set by user space once query__start is attached */
};

/* Per database: transactions, deadlocks, slow statements. */
struct es_pg_db_key {
	__u32 db;
	__u32 pad;
};

struct es_pg_dbstat {
	__u64 commits;
	__u64 aborts;
	__u64 deadlocks;
	__u64 slow;
};

/*
 * Per backend (task storage pg_xacts, read by user space with the
 * backend's pidfd): transactions it aborted (transaction__abort: a failed
 * statement's, or a ROLLBACK's), for the result of an Odoo cron run.
 */
struct es_pg_xacts {
	__u64 aborts;
};

/*
 * A database of a cluster: the postmaster's tgid and the database's OID
 * (OIDs repeat between clusters). User space maps it to a database id once
 * per database, from the first backend's title; every later backend of it
 * is keyed right from its first statement.
 */
struct es_pg_dbkey {
	__u32 postmaster;
	__u32 oid;
};

/* Per (database, lock mode, lock tag type): the lock wait histogram. */
struct es_pg_lock_key {
	__u32 db;
	__u16 mode;     /* LOCKMODE: 1 AccessShareLock .. 8 AccessExclusiveLock */
	__u16 locktype; /* LockTagType: 0 relation, 1 extend, ... */
};

/* Which backends ran a statement: calls per (fingerprint, backend). */
struct es_pg_sender_key {
	__u64 fp;
	__u32 tgid;
	__u32 pad;
};

/*
 * Pool occupancy of a backend (role pg_backend): it is busy from the start of
 * a statement until the end of the statement after which no transaction is
 * open, so idle in a transaction (aborted or not) is busy: the backend is
 * held by its client. The kernel keeps the open interval and the closed sum
 * in the backend's task storage, at the statement and abort probes already
 * attached (no map update of its own); at each scrape the iter.s/task program
 * es_pg_busy_iter writes one record per backend, the open interval included.
 * A statement timed at query__done alone (one_trap) began before the kernel
 * knew: the iterator reads the backend's status entry (st_state and its
 * stamps) to see it running.
 */
struct es_pg_busy {
	__u32 tgid;
	__u32 busy;    /* busy now */
	__u64 busy_ns; /* closed busy intervals */
	__u64 open_ns; /* the one open now */
};

/* Checkpoints: one global per-CPU slot. */
struct es_pg_ckpt {
	__u64 buckets[ES_PG_MAX_EDGES + 1];
	__u64 sum_ns;
	__u64 buffers_written; /* buffer__sync__written */
	__u64 started[3];      /* checkpoint__start by cause: enum es_pg_ckpt_cause */
};

/* What asked for a checkpoint (checkpoint__start's flags, PostgreSQL 9.6+). */
enum es_pg_ckpt_cause {
	ES_PG_CKPT_TIME,      /* CHECKPOINT_CAUSE_TIME: checkpoint_timeout */
	ES_PG_CKPT_WAL,       /* CHECKPOINT_CAUSE_XLOG: max_wal_size reached */
	ES_PG_CKPT_REQUESTED, /* anything else: CHECKPOINT, a backup, CREATE DATABASE, shutdown */
};
#define ES_PG_CKPT_FLAG_XLOG 0x80
#define ES_PG_CKPT_FLAG_TIME 0x100

/* Ring-buffer events. */
enum es_pg_event_type {
	ES_PG_EV_TEXT = 1, /* first sighting of a fingerprint: its raw text */
	ES_PG_EV_SLOW,     /* a statement above the slow threshold */
	ES_PG_EV_DEADLOCK, /* deadlock__found */
	ES_PG_EV_LOCK,     /* a lock wait above the slow threshold */
	ES_PG_EV_HELLO,    /* a backend's first statement: its title, start time, database key */
	ES_PG_EV_LINK,     /* a backend's first statement: who is at the other end */
	ES_PG_EV_STMT,     /* any other statement, while a trace records (trace_on) */
	ES_PG_EV_LOCK_TRACE, /* any other lock wait, while a trace records (trace_on) */
};

struct es_pg_ev_hdr {
	__u32 type;
	__u32 tgid;
};

/* Variable size: the header, then len bytes of text (no NUL). */
struct es_pg_ev_text {
	struct es_pg_ev_hdr h;
	__u64 fp;
	__u32 len;
	__u32 cmd;
	char text[ES_PG_TEXT_MAX];
};

/*
 * A backend's first statement, before user space gave it a database: its
 * process title (PostgreSQL writes it over argv), so user space knows the
 * database even when the backend is gone before it looks at /proc.
 */
#define ES_PG_TITLE_MAX 128

struct es_pg_ev_hello {
	struct es_pg_ev_hdr h;
	__u32 len; /* title bytes, NUL excluded */
	__u32 pad;
	__u64 start_boottime_ns; /* task->start_boottime: /proc/<pid>/stat's starttime, in ns */
	__u32 postmaster;        /* its parent's tgid */
	__u32 db_oid;            /* MyDatabaseId; 0: not known */
	char title[ES_PG_TITLE_MAX];
};

/*
 * The client of a backend, found in the kernel at its first statement:
 * a Unix socket's peer credentials, or the process this host saw connect
 * to the backend's TCP 4-tuple.
 */
struct es_pg_ev_link {
	struct es_pg_ev_hdr h; /* tgid: the backend */
	__u32 client_tgid;     /* 0: no local process known */
	__u16 family;          /* of the backend's socket: AF_UNIX, AF_INET, AF_INET6 */
	__u16 port;            /* inet: the client's port */
	__u8 addr[16];         /* inet: the client's address, IPv4 as ::ffff:a.b.c.d */
};

struct es_pg_ev_slow {
	struct es_pg_ev_hdr h;
	__u64 fp;
	__u64 dur_ns;
	__u64 lock_ns;
	__u64 misses;
	__u32 db;
	__u32 cmd;
	__u32 error; /* 1: ended in an error */
	__u32 client; /* the process on this host that sent it, 0: unknown */
	__u64 end_ns; /* bpf_ktime_get_ns() at its end */
};

/* Deadlocks and long lock waits: what the backend was waiting for. */
struct es_pg_ev_lock {
	struct es_pg_ev_hdr h;
	__u64 fp;      /* the statement waiting */
	__u64 wait_ns; /* 0 for a deadlock found before the wait ended */
	__u32 db;
	__u32 field1; /* locktag fields: database oid, relation oid, ... */
	__u32 field2;
	__u32 field3;
	__u16 field4;
	__u16 locktype;
	__u16 mode;
	__u16 pad;
	__u32 client;  /* the process on this host that sent the statement, 0: unknown */
	__u32 pad2;
	__u64 end_ns;  /* bpf_ktime_get_ns() at the wait's end; 0: not ended (deadlock) */
};

/*
 * A transaction that ended after a lock wait began in it and was open
 * longer than the slow threshold (bpf global lock_enders, a ring): the
 * likely holder of a lock whose waiter got it as this one ended. Written
 * without a lock: user space reads it as a hint.
 */
#define ES_PG_ENDERS 32

struct es_pg_ender {
	__u64 since_ns, end_ns; /* monotonic: the transaction's start and end */
	__u64 fp;               /* its last statement but BEGIN, COMMIT, ROLLBACK; 0: none */
	__u32 tgid, db;
};

#endif
