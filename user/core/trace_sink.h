/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Where probes hand events to a trace recording (user/trace) without
 * knowing about it, and the trace capability without knowing the probes:
 * producers call trace_sink_emit(), which costs one test of `on` while
 * nothing records; probes with a kernel-side switch (a BPF global that gates
 * their trace events) register a gate, which the consumer flips.
 */
#ifndef ERPSCOPE_TRACE_SINK_H
#define ERPSCOPE_TRACE_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRACE_SINK_MAX_GATES 8

enum trace_ev_kind {
	TRACE_EV_STATE = 1, /* a thread's scheduler state changed at ts */
	TRACE_EV_REQUEST,   /* an HTTP request, [ts, end] on its serving thread */
	TRACE_EV_STATEMENT, /* a PostgreSQL statement, [ts, end] on its backend */
	TRACE_EV_BIO,       /* a block request, [ts, end] (end 0: its completion was not seen) */
	TRACE_EV_INSTANT,   /* something happened to a process at ts: an exit, an OOM kill */
	TRACE_EV_GC,        /* a Python GC pause, [ts, end] on its thread; code: objects collected */
	TRACE_EV_CRON,      /* an Odoo cron run, [ts, end] on its thread; name: the cron, status: result */
	TRACE_EV_CONNECT,   /* an outbound connect, [ts, end] on the connecting thread;
			     * name: "connect <remote>", detail: remote, status: result */
	TRACE_EV_LOCK_WAIT, /* a PostgreSQL lock wait, [ts, end] on its backend (inside its
			     * statement); detail: lock type, status: mode */
	TRACE_EV_SAMPLE,    /* a CPU sample of a thread at ts on cpu; name: its stack, frames
			     * outermost first joined by ';' */
	TRACE_EV_WAKING,    /* an untracked thread (tgid, tid) on cpu woke tracked thread id of
			     * process peer at ts; name: the waker's comm, code: the CPU the
			     * woken one ran on last, state: its priority */
};

/* Scheduler states, as the sched probe tells them apart. */
enum trace_state {
	TRACE_ST_RUNNING = 1,
	TRACE_ST_RUNNABLE,
	TRACE_ST_IOWAIT,
	TRACE_ST_BLOCKED,
	TRACE_ST_SLEEPING,
};

struct trace_ev {
	enum trace_ev_kind kind;
	uint32_t tgid, tid;
	uint64_t ts_ns;  /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
	uint64_t end_ns; /* slices */
	uint32_t state;  /* STATE: enum trace_state; BIO: op; REQUEST: 1 for a session (websocket, long poll) */
	uint32_t cpu;    /* TRACE_EV_STATE, running */
	uint32_t peer;   /* TRACE_EV_STATEMENT: the client's tgid, 0: unknown */
	uint32_t code;   /* REQUEST: HTTP status (0: none); STATEMENT: 1 on error; BIO: bytes */
	uint64_t id;     /* STATEMENT: fingerprint; BIO: the device's dev_t */
	const char *name;   /* route, statement text (normalised), device, instant's name, an
			     * untracked thread's comm (WAKING, STATE); copied */
	const char *detail; /* model.method of an RPC, a request's op, an instant's why; NULL: none */
	const char *status; /* a request's code label ("200", "killed"); copied; NULL: none */
};

struct ring_buffer;

struct trace_gate {
	volatile uint32_t *flag; /* a BPF global (a probe's trace_on) set to on; NULL: none */
	void (*set)(void *arg, bool on); /* after the flag; NULL: none */
	void *arg;
	/* The probe's trace-only ring, mapped as *rb only while recording; ring_fd < 0: none. */
	struct ring_buffer **rb;
	int ring_fd;
	int (*fn)(void *ctx, void *data, size_t size);
};

struct trace_sink {
	bool on; /* a consumer records: producers test this before building an event */
	void (*consume)(void *ctx, const struct trace_ev *ev);
	void *ctx;
	struct trace_gate gates[TRACE_SINK_MAX_GATES];
	int ngates;
	unsigned int rings_gen; /* bumped when rings are mapped: the daemon polls the new ones */
};

static inline void trace_sink_emit(struct trace_sink *s, const struct trace_ev *ev)
{
	if (s->on && s->consume)
		s->consume(s->ctx, ev);
}

/*
 * A probe's trace events: the ring at ring_fd read into fn(ctx) as *rb
 * (ring_fd < 0: none, the events come on a ring the probe has), and its
 * kernel switch, the BPF global *flag, flipped with the sink; set, if
 * given, runs after the flag with ctx (a flush when recording stops).
 * The ring is mapped (*rb) only while the sink is on: libbpf maps a ring's
 * data twice and all of it counts in the daemon's RSS at once (8 MiB for
 * the scheduler's 4 MiB ring), for rings nothing reads between recordings.
 * *rb is NULL otherwise. Returns 0 or -errno, with nothing left open.
 */
int trace_sink_probe_start(struct trace_sink *s, struct ring_buffer **rb, int ring_fd,
			   int (*fn)(void *ctx, void *data, size_t size), void *ctx,
			   volatile uint32_t *flag, void (*set)(void *ctx, bool on));
/* Undoes trace_sink_probe_start (rb NULL: no ring of its own). */
void trace_sink_probe_stop(struct trace_sink *s, struct ring_buffer **rb, volatile uint32_t *flag);
/* Turns recording on or off: `on` and every gate. */
void trace_sink_set(struct trace_sink *s, bool on);

#endif
