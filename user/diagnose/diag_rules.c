// SPDX-License-Identifier: GPL-2.0
/*
 * The rules, in one table: what each finding means, its thresholds, the
 * evidence it reads and the action it suggests. README's "Diagnose" table
 * is this one.
 */
#include "diagnose/diagnose.h"

const struct diag_rule diag_rules[DIAG_R_COUNT] = {
	[DIAG_R_POOL] = {
		.id = "http_pool_saturated", .number = 1, .severity = DIAG_CRITICAL,
		.threshold = 0.9, .threshold2 = 0.1,
		.desc = "HTTP workers busy >= 90% of the window and connections waited >= 100 ms on average in the listen queue",
		.evidence = "tcp probe: erpscope_worker_busy_seconds_total, erpscope_workers, erpscope_listen_queue_wait_seconds; requests probe: erpscope_http_request_duration_seconds, erpscope_odoo_rpc_duration_seconds",
		.action = "raise Odoo's `workers` (guideline 2 x cores + 1, within RAM at the workers' RSS), or make the routes holding the workers faster",
	},
	[DIAG_R_SLOW_STMT] = {
		.id = "slow_statement", .number = 3, .severity = DIAG_WARNING,
		.threshold = 0.3, .threshold2 = 1.0,
		.desc = "one statement fingerprint takes >= 30% of PostgreSQL's time in the window and >= 1 s of it, with a mean >= 10 ms; or its p95 >= 1 s",
		.evidence = "pg probe: /queries, erpscope_pg_statement_duration_seconds",
		.action = "EXPLAIN (ANALYZE, BUFFERS) the statement; consider an index on the columns it filters on",
	},
	[DIAG_R_LOCKS] = {
		.id = "lock_contention", .number = 5, .severity = DIAG_WARNING,
		.threshold = 1.0, .threshold2 = 1,
		.desc = "statements waited >= 1 s in all on locks in the window (waits over --pg.slow-query-threshold), or any deadlock",
		.evidence = "pg probe: pg_lock_wait (with its likely holder: the transaction of the same database open before the wait began that ended as the wait did) and pg_deadlock events, erpscope_pg_lock_wait_seconds, erpscope_pg_deadlocks_total",
		.action = "keep transactions that lock rows short (no slow work between the lock and the commit: see the holder's worker and last statement); while it happens, pg_blocking_pids() names the holder; set lock_timeout",
	},
	[DIAG_R_OOM] = {
		.id = "oom_kill", .number = 7, .severity = DIAG_CRITICAL,
		.threshold = 1,
		.desc = "the kernel's OOM killer killed a tracked process",
		.evidence = "oom probe: oom_kill events (memory history of the victim), erpscope_oom_kills_total",
		.action = "process the work in smaller batches; set limit_memory_soft/limit_memory_hard below RAM / (workers + max_cron_threads); add RAM",
	},
	[DIAG_R_KILLED] = {
		.id = "worker_killed", .number = 8, .severity = DIAG_WARNING,
		.threshold = 1,
		.desc = "Odoo's master killed a worker (limit_time_real), or a worker got SIGXCPU (limit_time_cpu)",
		.evidence = "oom probe: worker_exit events (sender, route), erpscope_worker_kills_total",
		.action = "make the route or cron faster; raise limit_time_real / limit_time_cpu only if the work is legitimately long",
	},
	[DIAG_R_CONNECT] = {
		.id = "outbound_failing", .number = 10, .severity = DIAG_WARNING,
		.threshold = 3,
		.desc = ">= 3 outbound connects of tracked processes (any role but other) to one destination failed (refused, timed out, unreachable) in the window",
		.evidence = "tcp probe: tcp_connect_failed events, erpscope_tcp_connect_failures_total",
		.action = "check the service at that destination and the settings that point Odoo at it (outgoing mail server, payment or EDI provider); a cron that keeps retrying it holds a worker",
	},
	[DIAG_R_PG_CONNS] = {
		.id = "pg_connections_near_max", .number = 11, .severity = DIAG_WARNING,
		.threshold = 0.8,
		.desc = "a cluster's client backends reach 80% of its max_connections (at the window's end)",
		.evidence = "pg poller: erpscope_pg_connections, erpscope_pg_max_connections",
		.action = "lower Odoo's db_maxconn (per process: workers x db_maxconn must fit), put a pooler (PgBouncer) in front, or raise max_connections with the memory it needs",
	},
	[DIAG_R_HOST] = {
		.id = "host_pressure", .number = 12, .severity = DIAG_WARNING,
		.threshold = 0.9, .threshold2 = 0.1,
		.desc = "a filesystem >= 90% full or memory available < 10% (at the window's end); CPUs >= 90% busy, or memory or I/O stalls (PSI some) >= 10% of the window",
		.evidence = "host poller: erpscope_filesystem_used_ratio, erpscope_host_memory_bytes, erpscope_host_cpu_seconds_total, erpscope_pressure_seconds_total",
		.action = "free or grow the filesystem (PostgreSQL stops on a full disk: WAL, the filestore, logs); for memory: fewer workers or lower limit_memory_soft/hard, or more RAM; for CPU: fewer workers or more cores",
	},
	[DIAG_R_N_PLUS_ONE] = {
		.id = "statements_per_request", .number = 4, .severity = DIAG_WARNING,
		.threshold = 50, .threshold2 = 500,
		.desc = "a route's or RPC's requests sent >= 50 PostgreSQL statements each on average, and >= 500 in the window (an ORM loop: N+1)",
		.evidence = "requests probe: erpscope_http_request_pg_statements_total, erpscope_odoo_rpc_pg_statements_total; pg probe: /queries",
		.action = "read the records in one go (search_read or read with the fields, mapped(), prefetching) instead of one query per record in a loop",
	},
	[DIAG_R_IOWAIT] = {
		.id = "disk_iowait", .number = 9, .severity = DIAG_WARNING,
		.threshold = 0.1,
		.desc = "tracked workers waited on one block device's I/O (iowait) >= 10% of the window, summed over them",
		.evidence = "sched and blkio probes: erpscope_iowait_seconds_total by device; the device's top issuers in the window (erpscope_disk_io_ops_total, erpscope_disk_io_bytes_total by worker; untracked tasks by pid)",
		.action = "see what loads the device (its top issuers: a backup, autovacuum, the filestore); move it off peak hours or to another disk; PostgreSQL: more shared_buffers, faster storage",
	},
	[DIAG_R_CRON] = {
		.id = "cron_long", .number = 6, .severity = DIAG_WARNING,
		.desc = "an Odoo cron (IrCron._callback, its cron_name) ran in one worker for --diagnose.cron-threshold (10m) or more within the window",
		.evidence = "python probe: GET /workers (the cron worker's stack, its thread's state); tcp probe: its failed connects",
		.action = "see where it spends its time (GET /profile?kind=offcpu&seconds=300 for a blocked one); fix or disable the cron, process smaller batches per run, and bound it with limit_time_real_cron",
	},
	[DIAG_R_WORKERS] = {
		.id = "too_many_workers", .number = 2, .severity = DIAG_WARNING,
		.threshold = 0.3, .threshold2 = 0.2,
		.desc = "Odoo workers waited for a CPU >= 30% of the time they wanted one (run queue / (CPU + run queue)) and >= 0.2 s per second of the window, with more Odoo workers than cores",
		.evidence = "sched probe: erpscope_offcpu_seconds_total{reason=\"runqueue\"}, erpscope_cpu_seconds_total, erpscope_runqueue_latency_seconds; host poller: erpscope_host_cpu_seconds_total",
		.action = "fewer workers (and max_cron_threads) for these cores, or more cores: Odoo's guideline is 2 x cores + 1 workers at most",
	},
	/*
	 * 2, the other side: too few workers is http_pool_saturated while the
	 * CPUs have room (its action says how busy they were); idle workers on
	 * saturated CPUs are not too few: the CPU goes elsewhere.
	 */
	[DIAG_R_CPU_ELSEWHERE] = {
		.id = "cpu_not_odoo", .number = 2, .severity = DIAG_WARNING,
		.threshold = 0.9, .threshold2 = 0.5,
		.desc = "CPUs >= 90% busy over the window while every HTTP pool's workers were busy < 50% of it and Odoo's workers used < 50% of the busy CPU time: something else takes the CPU (not too few workers)",
		.evidence = "host poller: erpscope_host_cpu_seconds_total; sched probe: erpscope_cpu_seconds_total by role; tcp probe: erpscope_worker_busy_seconds_total",
		.action = "find what else runs on the host (the roles named, or processes erpscope does not track: top, pidstat); move it off peak hours, nice it, or give Odoo its own cores; more Odoo workers would not help",
	},
	[DIAG_R_STMTS_RISING] = {
		.id = "statements_per_request_rising", .number = 4, .severity = DIAG_WARNING,
		.threshold = 2.0, .threshold2 = 10,
		.desc = "a route's or RPC's statements per request in the window are >= 2x and >= 10 more than before the window (the history of the last 24 h, >= 5 requests on each side)",
		.evidence = "requests probe: erpscope_http_request_pg_statements_total, erpscope_odoo_rpc_pg_statements_total (their rate over the duration counts)",
		.action = "look at what changed in that route's code or data when it began (a deployment, a module update, a record rule, a computed field without store or prefetch): an ORM loop now reads one record per query",
	},
	[DIAG_R_CHECKPOINTS] = {
		.id = "checkpoints_too_frequent", .number = 11, .severity = DIAG_WARNING,
		.threshold = 30, .threshold2 = 2,
		.desc = "PostgreSQL started >= 2 checkpoints because WAL reached max_wal_size in the window, closer than 30 s apart on average (PostgreSQL's own checkpoint_warning); requested ones (CHECKPOINT, backups) are counted, not judged",
		.evidence = "pg probe: erpscope_pg_checkpoints_total{cause=\"wal\"} (checkpoint__start's flags), erpscope_pg_checkpoint_duration_seconds, erpscope_pg_checkpoint_buffers_written_total",
		.action = "raise max_wal_size (and checkpoint_timeout) so checkpoints are timed, not forced by WAL volume: every checkpoint makes the next writes of each page full-page images",
	},
	[DIAG_R_GPU] = {
		.id = "gpu_pressure", .number = 12, .severity = DIAG_WARNING,
		.threshold = 0.9,
		.desc = "an NVML GPU's memory >= 90% used, or its clocks held down by a power cap, thermal or hardware slowdown (not idle or application clocks) at the window's end",
		.evidence = "gpu poller: erpscope_gpu_memory_used_bytes, erpscope_gpu_memory_total_bytes, erpscope_gpu_throttled, erpscope_gpu_utilization_ratio; per process: erpscope_gpu_process_memory_bytes",
		.action = "memory: fewer or smaller models or batches on that GPU, or free what idle processes hold; throttling: check cooling and power limits (nvidia-smi -q -d PERFORMANCE), spread the load",
	},
};

const char *diag_severity_name(enum diag_severity s)
{
	switch (s) {
	case DIAG_CRITICAL:
		return "critical";
	case DIAG_WARNING:
		return "warning";
	default:
		return "info";
	}
}
