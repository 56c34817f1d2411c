// SPDX-License-Identifier: GPL-2.0
/*
 * The pg probe's side of traces: while a trace records, the kernel sends
 * every statement (ES_PG_EV_STMT; slow ones come as ES_PG_EV_SLOW anyway)
 * and they go to the trace sink with their normalised text, never a literal.
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

int pg_trace_start(struct pg_priv *pp)
{
	return trace_sink_probe_start(&pp->es->trace, NULL, -1, NULL, pp, &pp->skel->bss->trace_on,
				      NULL);
}

void pg_trace_stop(struct pg_priv *pp)
{
	trace_sink_probe_stop(&pp->es->trace, NULL, &pp->skel->bss->trace_on);
}
