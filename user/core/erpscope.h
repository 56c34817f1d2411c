/* SPDX-License-Identifier: GPL-2.0 */
/* The daemon's context: everything mutable lives here or in a probe's priv. */
#ifndef ERPSCOPE_H
#define ERPSCOPE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/blockdev.h"
#include "core/config.h"
#include "core/gpu_use.h"
#include "core/http.h"
#include "core/mapstats.h"
#include "core/poller.h"
#include "core/probe.h"
#include "core/trace_sink.h"

#define ERPSCOPE_VERSION "0.1.0"
#define ES_MAX_PROBES 16
#define ES_MAX_POLLERS 16
#define ES_MAX_ROUTES 16

struct procs;
struct pools;
struct events;
struct httpd;
struct worker_notes;
struct reqtags;
struct web;

struct erpscope {
	struct config cfg;
	int epfd;
	int sigfd;
	int timerfd;
	int workers_fd; /* the shared tgid -> worker map, owned by the procs probe */
	int workers_gen_fd; /* its change counter (bpf/workers.bpf.h) */
	int iodev_fd;   /* task -> last block device, sched's map, shared with blkio */
	int task_sched_fd; /* sched's per-task state (tp_btf flavour), read by requests */
	int pg_clients_fd; /* pg's per-client statement time, read by requests */
	/* sched's one sched_switch program hands long blocks to python (bpf/switch_hook.bpf.h) */
	int switch_hook_fd, switch_arg_fd;
	/* tid -> request served (bpf/reqtag.bpf.h): requests writes, python reads; first loaded creates */
	int req_serving_fd;
	struct reqtags *reqtags; /* those requests' names (user/core/reqtag.h) */
	int stats_fd;   /* BPF_ENABLE_STATS fd: run-time stats while it is open */
	bool stop;
	bool tp_btf;    /* feature probe result: typed tracepoints work */
	struct procs *procs;
	struct pools *pools; /* pool occupancy, fed by tcp and pg (user/procs/pools.h) */
	struct events *events; /* the log behind GET /events (user/core/events.h) */
	struct worker_notes *notes; /* what each worker is serving (user/core/worker_note.h) */
	struct gpu_use_table gpu_use; /* what workers hold on GPUs: gpu poller -> /workers */
	struct trace_sink trace; /* probes' events for a trace recording (user/trace) */
	struct httpd *httpd;
	struct web *web; /* --web.config.file and who sees what (core/web.h) */
	struct http_route routes[ES_MAX_ROUTES]; /* the server keeps a pointer to these */
	struct probe probes[ES_MAX_PROBES];
	int nprobes;
	struct poller pollers[ES_MAX_POLLERS];
	int npollers;
	struct blockdev_names blockdevs;
	struct map_fill maps[ES_MAP_COUNT]; /* by enum es_map_id (bpf/maps.h) */
	double last_scrape_seconds;
	uint64_t scrapes;
	uint64_t last_trim_ms; /* malloc_trim() on the timer tick */
};

/* Returns the probe named name, or NULL if it is not in the table. */
struct probe *erpscope_probe(struct erpscope *es, const char *name);

#endif
