/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What each worker holds on the GPUs, as the gpu poller read it at its last
 * poll: the gpu poller fills the table, GET /workers reads it. It lives in
 * struct erpscope so neither capability includes the other.
 */
#ifndef ERPSCOPE_GPU_USE_H
#define ERPSCOPE_GPU_USE_H

#include <stddef.h>
#include <stdint.h>

struct gpu_use {
	uint32_t pid;
	char gpu[96]; /* "0" (NVML index) or "i915 0000:00:02.0" (DRM) */
	uint64_t memory_bytes;
	double utilization; /* share of the device over the last poll; < 0: unknown */
};

struct gpu_use_table {
	struct gpu_use *v;
	unsigned int n;
	size_t cap;
};

/* Forgets the entries, keeps the memory: the next poll refills it. */
void gpu_use_clear(struct gpu_use_table *t);
/* Returns 0 or -ENOMEM. */
int gpu_use_add(struct gpu_use_table *t, uint32_t pid, const char *gpu, uint64_t memory_bytes,
		double utilization);
/* The next entry for pid after *i (start with *i = 0), or NULL. */
const struct gpu_use *gpu_use_next(const struct gpu_use_table *t, uint32_t pid, unsigned int *i);
void gpu_use_free(struct gpu_use_table *t);

#endif
