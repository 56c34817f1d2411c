// SPDX-License-Identifier: GPL-2.0
/* The per-worker GPU use table the gpu poller writes and /workers reads. */
#include "core/gpu_use.h"
#include "core/grow.h"

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

	if (grow_array(&t->v, &t->cap, (size_t)t->n + 1, sizeof(*t->v), 16))
		return -ENOMEM;
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
