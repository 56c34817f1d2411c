/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Traces: GET /trace?seconds=N records the next N seconds of what the probes
 * hand the trace sink (user/core/trace_sink.h) and answers with a Perfetto
 * trace (protobuf perfetto.protos.Trace; tests/perfetto/ has the subset of
 * its schema written here).
 */
#ifndef ERPSCOPE_TRACE_H
#define ERPSCOPE_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/trace_sink.h"

struct erpscope;
struct http_exchange;
struct poller_ops;

#define TRACE_NAME_MAX 160

/* A process or thread seen in a recording, named when first seen. */
struct trace_thread {
	uint32_t tgid, tid;
	int role;       /* enum es_role, -1: untracked */
	char comm[17];
	char title[TRACE_NAME_MAX]; /* "role pid title" of its process */
};

/* One event as recorded: the sink's, with its strings copied. */
struct trace_rec_ev {
	struct trace_ev ev;
	char *strs;      /* name, detail, status, NUL-separated; ev's pointers point here */
	uint32_t size;   /* of strs */
	uint32_t thread; /* index in threads */
};

struct trace_rec {
	struct trace_rec_ev *evs; /* live: [first, n) */
	size_t first, n, cap;
	size_t bytes, max_bytes;  /* what events, strings and threads hold; its bound */
	uint64_t dropped_oldest;  /* pushed out past max_bytes */
	uint64_t dropped;         /* not kept: out of memory */
	struct trace_thread *threads;
	size_t nthreads, capthreads;
	uint32_t *hash;           /* tid -> index + 1, open addressing */
	size_t nhash;
	struct erpscope *es;
};

/* What a recording keeps: -1 / 0 for no filter. */
struct trace_filter {
	int role;
	uint32_t pid;
	char worker[16];
};

/* trace_rec.c */
void trace_rec_init(struct trace_rec *r, struct erpscope *es, size_t max_bytes);
/* The sink's consumer: ctx is a struct trace_rec. */
void trace_rec_consume(void *ctx, const struct trace_ev *ev);
void trace_rec_reset(struct trace_rec *r);
/* Forgets the oldest events, those that ended before before_ns (not counted as drops). */
void trace_rec_trim(struct trace_rec *r, uint64_t before_ns);
const struct trace_thread *trace_rec_thread(const struct trace_rec *r, uint32_t tid);

/*
 * trace_write.c: the recording as a Perfetto trace of [start, end] (ns,
 * CLOCK_MONOTONIC), kept to what f selects. Returns 0 with *out malloc'd,
 * or -errno.
 */
int trace_write(const struct trace_rec *r, const struct trace_filter *f, uint64_t start_ns,
		uint64_t end_ns, uint8_t **out, size_t *len);

/* What makes the flight recorder save a trace. */
enum trace_trigger {
	TRACE_TRIG_SLOW_REQUEST,
	TRACE_TRIG_KILLED,   /* a worker died mid-request */
	TRACE_TRIG_OOM_KILL,
	TRACE_TRIG_DEADLOCK, /* PostgreSQL found one */
	TRACE_TRIG_COUNT,
};

/* A saved trace, as GET /traces lists it. */
struct trace_saved {
	char id[64];     /* file name without .perfetto-trace */
	int64_t time;    /* Unix seconds */
	int trigger;     /* enum trace_trigger */
	int role;        /* enum es_role, -1: unknown (found on disk) */
	uint32_t pid;    /* 0: unknown */
	char route[96];
	char rpc[132];
	double duration; /* of the request that triggered it, 0: none */
	uint64_t size;
};

/* The flight recorder's save to come: the trigger, and 2 s after it. */
struct trace_pending {
	bool on;
	uint64_t at_ns, due_ns;
	struct trace_saved meta;
};

struct trace_priv {
	struct erpscope *es;
	/* GET /trace */
	struct trace_rec rec;
	bool recording;
	uint64_t start_ns, end_ns;
	struct trace_filter filter;
	struct http_later *later;
	char disposition[192];
	/* the flight recorder, when window_ns */
	struct trace_rec flight;
	uint64_t window_ns;
	struct trace_pending pending[TRACE_TRIG_COUNT]; /* one per trigger kind */
	uint64_t last_save_ns[TRACE_TRIG_COUNT];
	bool dir_ok;
	struct trace_saved *saved; /* oldest first */
	char file_disposition[128]; /* GET /traces/<id>'s answer */
	size_t nsaved, capsaved;
	/* self-metrics */
	uint64_t saves[TRACE_TRIG_COUNT], save_failures, recordings, dropped_done;
};

/* trace.c */
extern const struct poller_ops trace_poller_ops;
extern const char *const trace_trigger_names[TRACE_TRIG_COUNT];
/* The trace poller's state, NULL when it is down. */
struct trace_priv *trace_priv(struct erpscope *es);
/* The sink on while something records. */
void trace_sink_update(struct trace_priv *tp);

/* trace_http.c: GET /trace */
int trace_http(void *arg, struct http_exchange *x);
/* Answers status with {"error": why} (why: a literal, no quotes). */
int trace_http_error(struct http_exchange *x, int status, const char *why);
void trace_http_tick(struct trace_priv *tp, uint64_t now_ns);
void trace_http_free(struct trace_priv *tp);

/* trace_flight.c: triggers and saves */
void trace_flight_check(struct trace_priv *tp, const struct trace_ev *ev);
void trace_flight_tick(struct trace_priv *tp, uint64_t now_ns);

/* trace_files.c: the saved traces, GET /traces and /traces/<id> */
void trace_files_init(struct trace_priv *tp);
/* Writes a saved trace and applies the caps. Returns 0 or -errno. */
int trace_files_save(struct trace_priv *tp, struct trace_saved *meta, const uint8_t *buf,
		     size_t len);
int trace_files_http(void *arg, struct http_exchange *x);
int trace_file_http(void *arg, struct http_exchange *x);

#endif
