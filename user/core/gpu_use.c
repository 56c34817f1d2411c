// SPDX-License-Identifier: GPL-2.0
/* The per-worker GPU use table the gpu poller writes and /workers reads. */
#include "core/gpu_use.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

void gpu_use_clear(struct gpu_use_table *t)
{
	t->n = 0;
}

int gpu_use_add(struct gpu_use_table *t, uint32_t pid, const char *gpu, uint64_t memory_bytes,
		double utilization)
{
	struct gpu_use *u;

	if (t->n == t->cap) {
		unsigned int cap = t->cap ? t->cap * 2 : 16;
		struct gpu_use *v = realloc(t->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	u = &t->v[t->n++];
	u->pid = pid;
	snprintf(u->gpu, sizeof(u->gpu), "%s", gpu);
	u->memory_bytes = memory_bytes;
	u->utilization = utilization;
	return 0;
}

const struct gpu_use *gpu_use_next(const struct gpu_use_table *t, uint32_t pid, unsigned int *i)
{
	while (*i < t->n) {
		const struct gpu_use *u = &t->v[(*i)++];

		if (u->pid == pid)
			return u;
	}
	return NULL;
}

void gpu_use_free(struct gpu_use_table *t)
{
	free(t->v);
	t->v = NULL;
	t->n = t->cap = 0;
}
