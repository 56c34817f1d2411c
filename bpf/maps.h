/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Contract between bpf/maps.bpf.h and user/core/mapstats.c: one id per bounded
 * map whose inserts may fail. The BPF side counts failed inserts per id;
 * user space exports them, with the maps' fill levels, under the name in
 * this table. No includes.
 */
#ifndef ERPSCOPE_BPF_MAPS_H
#define ERPSCOPE_BPF_MAPS_H

/* X(id, exported name) */
#define ES_MAPS(X)                                  \
	X(ES_MAP_IO_LATENCY, "io_latency")          \
	X(ES_MAP_QUEUE_LATENCY, "queue_latency")    \
	X(ES_MAP_IO_BY_WORKER, "io_by_worker")      \
	X(ES_MAP_IOWAIT_BY_DEV, "iowait_by_dev")    \
	X(ES_MAP_TASK_SCHED_BY_PID, "task_sched_by_pid") \
	X(ES_MAP_LISTEN_WAIT, "listen_wait")        \
	X(ES_MAP_TCP_REMOTES, "tcp_remotes")        \
	X(ES_MAP_PG_STATS, "pg_stats")              \
	X(ES_MAP_PG_DB_STATS, "pg_db_stats")        \
	X(ES_MAP_PG_LOCK_HIST, "pg_lock_hist")      \
	X(ES_MAP_PG_SENDERS, "pg_senders")          \
	X(ES_MAP_PG_CLIENTS, "pg_clients")          \
	X(ES_MAP_PY_WORK, "py_work")                \
	X(ES_MAP_PY_GC, "py_gc")                    \
	X(ES_MAP_OOM_FATES, "oom_fates")            \
	X(ES_MAP_REQ_CONNS, "req_conns")          \
	X(ES_MAP_REQ_LISTEN, "req_listen")

#define ES_MAP_ID(id, name) id,
enum es_map_id { ES_MAPS(ES_MAP_ID) ES_MAP_COUNT };
#undef ES_MAP_ID

#endif
