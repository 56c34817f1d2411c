// SPDX-License-Identifier: GPL-2.0
#include "core/trace_sink.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>
#include <bpf/libbpf.h>

#include "core/log.h"

/*
 * Skips what the ring at fd holds: events a program sent after the last
 * recording's final drain (it read the switch on just before it went off)
 * belong to no recording. The consumer position is the reader's to move.
 */
static int ring_skip(int fd)
{
	long page = sysconf(_SC_PAGESIZE);
	unsigned long *cons, *prod;
	int err = 0;

	cons = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (cons == MAP_FAILED)
		return -errno;
	prod = mmap(NULL, (size_t)page, PROT_READ, MAP_SHARED, fd, page);
	if (prod == MAP_FAILED) {
		err = -errno;
		goto out;
	}
	__atomic_store_n(cons, __atomic_load_n(prod, __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
	munmap(prod, (size_t)page);
out:
	munmap(cons, (size_t)page);
	return err;
}

/* Maps the gates' rings for a recording; a ring that cannot be mapped is logged and left out. */
static void rings_map(struct trace_sink *s)
{
	for (int i = 0; i < s->ngates; i++) {
		struct trace_gate *g = &s->gates[i];
		int err;

		if (g->ring_fd < 0 || *g->rb)
			continue;
		err = ring_skip(g->ring_fd);
		if (!err) {
			*g->rb = ring_buffer__new(g->ring_fd, g->fn, g->arg, NULL);
			err = *g->rb ? 0 : -errno;
		}
		if (err)
			log_warn("a trace ring could not be mapped: its events are not recorded",
				 "ring_fd=%d err=%d", g->ring_fd, err);
	}
	s->rings_gen++;
}

/* What the gates' rings still hold goes in, then they are unmapped. */
static void rings_unmap(struct trace_sink *s)
{
	for (int i = 0; i < s->ngates; i++) {
		struct trace_gate *g = &s->gates[i];

		if (g->ring_fd < 0 || !*g->rb)
			continue;
		ring_buffer__consume(*g->rb);
		ring_buffer__free(*g->rb);
		*g->rb = NULL;
	}
}

static int add(struct trace_sink *s, const struct trace_gate *g)
{
	if (s->ngates >= TRACE_SINK_MAX_GATES)
		return -ENOSPC;
	s->gates[s->ngates++] = *g;
	if (s->on) {
		rings_map(s);
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
	if (ring_fd >= 0)
		*rb = NULL;
	return add(s, &(struct trace_gate){ .flag = flag, .set = set, .arg = ctx, .rb = rb,
					    .ring_fd = ring_fd >= 0 && rb ? ring_fd : -1,
					    .fn = fn });
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
	if (on) {
		s->on = true;
		rings_map(s);
	}
	for (int i = 0; i < s->ngates; i++) {
		if (s->gates[i].flag)
			__atomic_store_n(s->gates[i].flag, on ? 1 : 0, __ATOMIC_RELEASE);
		if (s->gates[i].set)
			s->gates[i].set(s->gates[i].arg, on);
	}
	if (!on)
		rings_unmap(s);
	s->on = on;
}
