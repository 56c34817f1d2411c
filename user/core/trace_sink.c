// SPDX-License-Identifier: GPL-2.0
#include "core/trace_sink.h"

#include <errno.h>
#include <bpf/libbpf.h>

static int add(struct trace_sink *s, const struct trace_gate *g)
{
	if (s->ngates >= TRACE_SINK_MAX_GATES)
		return -ENOSPC;
	s->gates[s->ngates++] = *g;
	if (s->on) {
		if (g->flag)
			__atomic_store_n(g->flag, 1, __ATOMIC_RELEASE);
		if (g->set)
			g->set(g->arg, true);
	}
	return 0;
}

/* Removes the gates of flag. */
static void del(struct trace_sink *s, volatile uint32_t *flag)
{
	int n = 0;

	for (int i = 0; i < s->ngates; i++) {
		if (s->gates[i].flag == flag)
			continue;
		s->gates[n++] = s->gates[i];
	}
	s->ngates = n;
}

int trace_sink_probe_start(struct trace_sink *s, struct ring_buffer **rb, int ring_fd,
			   int (*fn)(void *ctx, void *data, size_t size), void *ctx,
			   volatile uint32_t *flag, void (*set)(void *ctx, bool on))
{
	int err;

	if (ring_fd >= 0) {
		*rb = ring_buffer__new(ring_fd, fn, ctx, NULL);
		if (!*rb)
			return -errno;
	}
	err = add(s, &(struct trace_gate){ .flag = flag, .set = set, .arg = ctx });
	if (err && ring_fd >= 0) {
		ring_buffer__free(*rb);
		*rb = NULL;
	}
	return err;
}

void trace_sink_probe_stop(struct trace_sink *s, struct ring_buffer **rb, volatile uint32_t *flag)
{
	del(s, flag);
	if (!rb)
		return;
	ring_buffer__free(*rb);
	*rb = NULL;
}

/* On: the sink first, so the first kernel events find it; off: the sink
 * last, so what the gates flush still gets in. */
void trace_sink_set(struct trace_sink *s, bool on)
{
	if (on)
		s->on = true;
	for (int i = 0; i < s->ngates; i++) {
		if (s->gates[i].flag)
			__atomic_store_n(s->gates[i].flag, on ? 1 : 0, __ATOMIC_RELEASE);
		if (s->gates[i].set)
			s->gates[i].set(s->gates[i].arg, on);
	}
	s->on = on;
}
