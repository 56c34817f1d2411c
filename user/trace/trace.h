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
	char *strs; /* name, detail, status, NUL-separated; ev's pointers point here */
};

struct trace_rec {
	struct trace_rec_ev *evs;
	size_t n, cap;
	size_t bytes, max_bytes; /* what events and strings hold, its bound */
	uint64_t dropped;        /* refused past max_bytes */
	struct trace_thread *threads;
	size_t nthreads, capthreads;
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
const struct trace_thread *trace_rec_thread(const struct trace_rec *r, uint32_t tid);

/*
 * trace_write.c: the recording as a Perfetto trace of [start, end] (ns,
 * CLOCK_MONOTONIC), kept to what f selects. Returns 0 with *out malloc'd,
 * or -errno.
 */
int trace_write(const struct trace_rec *r, const struct trace_filter *f, uint64_t start_ns,
		uint64_t end_ns, uint8_t **out, size_t *len);

/* trace_http.c */
int trace_http(void *arg, struct http_exchange *x);
extern const struct poller_ops trace_poller_ops;

#endif
