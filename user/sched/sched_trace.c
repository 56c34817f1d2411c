// SPDX-License-Identifier: GPL-2.0
/*
 * The sched probe's side of traces: while a trace records (the sink's gate
 * sets the BPF global trace_on), tracked threads' state changes come on the
 * sched_trace ring and go to the trace sink as TRACE_EV_STATE. The
 * sched_waking program (untracked wakers of tracked threads, TRACE_EV_WAKING)
 * is attached only while the sink is on: a link made when recording starts
 * and destroyed when it stops, so no program runs at every wakeup of the host
 * otherwise (each attach or detach costs a few hundred microseconds, logged at
 * debug level). The flight recorder keeps the sink on: then it stays attached.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include <bpf/libbpf.h>

#include <linux/types.h>

#include "../../bpf/sched.h"
#include "sched.skel.h"
#include "core/erpscope.h"
#include "core/log.h"
#include "core/probe.h"
#include "core/trace_sink.h"
#include "sched/sched_trace.h"

static const enum trace_state states[ES_ST_OFF + ES_OFF_COUNT] = {
	[ES_ST_ONCPU] = TRACE_ST_RUNNING,
	[ES_ST_OFF + ES_OFF_RUNQUEUE] = TRACE_ST_RUNNABLE,
	[ES_ST_OFF + ES_OFF_IOWAIT] = TRACE_ST_IOWAIT,
	[ES_ST_OFF + ES_OFF_BLOCKED] = TRACE_ST_BLOCKED,
	[ES_ST_OFF + ES_OFF_SLEEP] = TRACE_ST_SLEEPING,
};

/*
 * An untracked task woke a tracked thread: the waker's event, the woken
 * named in it, after the start of the waker's run (its first wakeup in it);
 * the run's end comes as a state change.
 */
static void on_waking(struct probe *p, const struct es_sched_waking_ev *k)
{
	char comm[sizeof(k->comm) + 1] = { 0 };
	struct trace_ev ev = {
		.kind = TRACE_EV_WAKING,
		.tgid = k->h.tgid,
		.tid = k->h.pid,
		.ts_ns = k->h.ts,
		.cpu = k->h.cpu,
		.peer = k->woken_tgid,
		.id = k->woken_pid,
		.code = k->target_cpu,
		.state = (uint32_t)k->woken_prio,
		.name = comm,
	};

	memcpy(comm, k->comm, sizeof(k->comm));
	if (k->run_start) {
		struct trace_ev run = { .kind = TRACE_EV_STATE, .tgid = k->h.tgid, .tid = k->h.pid,
					.ts_ns = k->run_start, .state = TRACE_ST_RUNNING,
					.cpu = k->h.cpu };

		trace_sink_emit(&p->es->trace, &run);
	}
	trace_sink_emit(&p->es->trace, &ev);
}

/*
 * An untracked task held the CPU a runnable tracked thread waited for: its
 * run on that CPU (from its start, unless a waking sent it) and the state it
 * left in, both on its own track, named by its comm. A filtered trace
 * (role=, pid=, worker=) leaves it out, as a waker's run.
 */
static void on_held(struct probe *p, const struct es_sched_waking_ev *k)
{
	char comm[sizeof(k->comm) + 1] = { 0 };
	struct trace_ev ev = { .kind = TRACE_EV_STATE, .tgid = k->h.tgid, .tid = k->h.pid,
			       .cpu = k->h.cpu, .name = comm };

	if (k->left >= ES_ST_OFF + ES_OFF_COUNT || !states[k->left])
		return;
	memcpy(comm, k->comm, sizeof(k->comm));
	if (k->run_start) {
		ev.ts_ns = k->run_start;
		ev.state = TRACE_ST_RUNNING;
		trace_sink_emit(&p->es->trace, &ev);
	}
	ev.ts_ns = k->h.ts;
	ev.state = states[k->left];
	trace_sink_emit(&p->es->trace, &ev);
}

static int on_event(void *ctx, void *data, size_t size)
{
	struct probe *p = ctx;
	const struct es_sched_trace_ev *k = data;
	struct trace_ev ev = { .kind = TRACE_EV_STATE };

	if (size >= sizeof(struct es_sched_waking_ev) && k->state == ES_TR_WAKING) {
		on_waking(p, data);
		return 0;
	}
	if (size >= sizeof(struct es_sched_waking_ev) && k->state == ES_TR_HELD) {
		on_held(p, data);
		return 0;
	}
	if (size < sizeof(*k) || k->state >= ES_ST_OFF + ES_OFF_COUNT || !states[k->state])
		return 0;
	ev.tgid = k->tgid;
	ev.tid = k->pid;
	ev.ts_ns = k->ts;
	ev.state = states[k->state];
	ev.cpu = k->cpu;
	trace_sink_emit(&p->es->trace, &ev);
	return 0;
}

static uint64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* The sink's gate: the sched_waking program attached while it is on. */
static void set_waking(void *ctx, bool on)
{
	struct sched_bpf *skel = sched_trace_skel(ctx);
	struct bpf_program *prog = skel->progs.es_waking;
	uint64_t t0 = mono_ns();
	int err = 0;

	/* Not loaded in the raw_tp flavour. */
	if (bpf_program__fd(prog) < 0 || on == !!skel->links.es_waking)
		return;
	if (on) {
		skel->links.es_waking = bpf_program__attach(prog);
		if (!skel->links.es_waking)
			err = -errno;
	} else {
		bpf_link__destroy(skel->links.es_waking);
		skel->links.es_waking = NULL;
	}
	if (err)
		log_warn("sched_waking not attached: no wakers in traces", "err=%d", err);
	else
		log_debug(on ? "sched_waking attached" : "sched_waking detached", "us=%llu",
			  (unsigned long long)((mono_ns() - t0) / 1000));
}

int sched_trace_start(struct probe *p, struct sched_bpf *skel)
{
	return trace_sink_probe_start(&p->es->trace, &p->rb, bpf_map__fd(skel->maps.sched_trace),
				      on_event, p, &skel->bss->trace_on, set_waking);
}

void sched_trace_stop(struct probe *p, struct sched_bpf *skel)
{
	trace_sink_probe_stop(&p->es->trace, &p->rb, &skel->bss->trace_on);
	set_waking(p, false);
}

uint64_t sched_trace_drops(struct erpscope *es)
{
	struct probe *p = erpscope_probe(es, "sched");
	struct sched_bpf *skel = p && p->up ? sched_trace_skel(p) : NULL;

	return skel ? __atomic_load_n(&skel->bss->trace_drops, __ATOMIC_RELAXED) : 0;
}
