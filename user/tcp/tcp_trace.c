// SPDX-License-Identifier: GPL-2.0
/*
 * The tcp probe's side of traces: while a trace records, the kernel sends
 * tracked processes' established connects as well as failed ones
 * (bpf/tcp.bpf.c, trace_on), and each connect of a tracked process goes to
 * the trace sink as a slice on the thread that called connect(), from the
 * SYN to established or the failure.
 */
#include <stdio.h>
#include <bpf/libbpf.h>

#include "tcp.skel.h"
#include "core/erpscope.h"
#include "core/trace_sink.h"
#include "tcp/tcp.h"

void tcp_trace_connect(struct erpscope *es, const struct es_tcp_event *k, const char *result)
{
	char remote[64], name[80];
	struct trace_ev ev = {
		.kind = TRACE_EV_CONNECT,
		.tgid = k->tgid,
		.tid = k->tid ? k->tid : k->tgid,
		.ts_ns = k->ts_ns > k->waited_ns ? k->ts_ns - k->waited_ns : 0,
		.end_ns = k->ts_ns,
		.name = name,
		.detail = remote,
		.status = result,
	};

	if (!es->trace.on || k->remote.role == ES_ROLE_OTHER)
		return; /* untracked processes are not in a trace */
	tcp_format_remote(&k->remote, remote, sizeof(remote));
	snprintf(name, sizeof(name), "connect %s", remote);
	trace_sink_emit(&es->trace, &ev);
}

int tcp_trace_start(struct erpscope *es, struct tcp_bpf *skel)
{
	return trace_sink_probe_start(&es->trace, NULL, -1, NULL, skel, &skel->bss->trace_on, NULL);
}

void tcp_trace_stop(struct erpscope *es, struct tcp_bpf *skel)
{
	trace_sink_probe_stop(&es->trace, NULL, &skel->bss->trace_on);
}
