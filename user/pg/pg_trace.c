// SPDX-License-Identifier: GPL-2.0
/*
 * The pg probe's side of traces: while a trace records, the kernel sends
 * every statement (ES_PG_EV_STMT; slow ones come as ES_PG_EV_SLOW anyway)
 * and they go to the trace sink with their normalised text, never a literal;
 * every lock wait too (ES_PG_EV_LOCK_TRACE; slow ones as ES_PG_EV_LOCK), a
 * slice inside its statement's.
 */
#include <stdio.h>
#include <bpf/libbpf.h>

#include "core/erpscope.h"
#include "core/trace_sink.h"
#include "pg/pg.h"
#include "pg.skel.h"

void pg_trace_statement(struct pg_priv *pp, const struct es_pg_ev_slow *k)
{
	struct erpscope *es = pp->es;
	const char *text;
	char fallback[40];
	unsigned int cmd;
	struct trace_ev ev = {
		.kind = TRACE_EV_STATEMENT,
		.tgid = k->h.tgid,
		.tid = k->h.tgid, /* a backend is one thread */
		.ts_ns = k->end_ns > k->dur_ns ? k->end_ns - k->dur_ns : 0,
		.end_ns = k->end_ns,
		.peer = k->client,
		.code = k->error,
		.id = k->fp,
	};

	if (!es->trace.on || !k->end_ns)
		return;
	text = k->fp ? pg_queries_text(pp->q, k->fp, &cmd) : NULL;
	if (!text) {
		snprintf(fallback, sizeof(fallback), "statement %016llx", (unsigned long long)k->fp);
		text = fallback;
	}
	ev.name = text;
	trace_sink_emit(&es->trace, &ev);
}

void pg_trace_lock(struct pg_priv *pp, const struct es_pg_ev_lock *k)
{
	struct erpscope *es = pp->es;
	struct trace_ev ev = {
		.kind = TRACE_EV_LOCK_WAIT,
		.tgid = k->h.tgid,
		.tid = k->h.tgid,
		.ts_ns = k->end_ns > k->wait_ns ? k->end_ns - k->wait_ns : 0,
		.end_ns = k->end_ns,
		.peer = k->client,
		.name = "lock wait",
		.detail = pg_lock_type_name(k->locktype),
		.status = pg_lock_mode_name(k->mode),
	};

	if (!es->trace.on || !k->end_ns || k->h.type == ES_PG_EV_DEADLOCK)
		return;
	trace_sink_emit(&es->trace, &ev);
}

int pg_trace_start(struct pg_priv *pp)
{
	return trace_sink_probe_start(&pp->es->trace, NULL, -1, NULL, pp, &pp->skel->bss->trace_on,
				      NULL);
}

void pg_trace_stop(struct pg_priv *pp)
{
	trace_sink_probe_stop(&pp->es->trace, NULL, &pp->skel->bss->trace_on);
}
