// SPDX-License-Identifier: GPL-2.0
#include "core/trace_sink.h"

#include <errno.h>

int trace_sink_add_gate(struct trace_sink *s, void (*set)(void *arg, bool on), void *arg)
{
	if (s->ngates >= TRACE_SINK_MAX_GATES)
		return -ENOSPC;
	s->gates[s->ngates++] = (struct trace_gate){ .set = set, .arg = arg };
	if (s->on)
		set(arg, true);
	return 0;
}

void trace_sink_del_gate(struct trace_sink *s, void *arg)
{
	int n = 0;

	for (int i = 0; i < s->ngates; i++) {
		if (s->gates[i].arg != arg)
			s->gates[n++] = s->gates[i];
	}
	s->ngates = n;
}

/* On: the sink first, so the first kernel events find it; off: the sink
 * last, so what the gates flush still gets in. */
void trace_sink_set(struct trace_sink *s, bool on)
{
	if (on)
		s->on = true;
	for (int i = 0; i < s->ngates; i++)
		s->gates[i].set(s->gates[i].arg, on);
	s->on = on;
}
