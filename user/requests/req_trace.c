// SPDX-License-Identifier: GPL-2.0
/* Each request that ended, for a trace recording (user/core/trace_sink.h). */
#include <stdio.h>

#include "core/erpscope.h"
#include "core/trace_sink.h"
#include "requests/req_parse.h"
#include "requests/requests.h"

void req_trace(struct erpscope *es, const struct req_ended *r)
{
	const struct req_head *h = r->head;
	char rpc[2 * REQ_NAME_MAX + 2], code[16];
	struct trace_ev ev = {
		.kind = TRACE_EV_REQUEST,
		.tgid = r->tgid,
		.tid = r->tid,
		.ts_ns = r->start_ns,
		.end_ns = r->end_ns,
		.code = r->code,
		.state = h->session,
		.name = h->route[0] ? h->route : "unparsed",
		.detail = NULL,
		.status = code,
	};

	if (!es->trace.on)
		return;
	req_code_label(r->code, code, sizeof(code));
	if (h->rpc) {
		snprintf(rpc, sizeof(rpc), "%s.%s", h->model, h->rpc_method);
		ev.detail = rpc;
	}
	trace_sink_emit(&es->trace, &ev);
}
