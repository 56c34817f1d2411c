/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The tgid -> worker map that user/procs/procs.c keeps current. Defined by every
 * object that needs it; user space loads procs.bpf.o first and hands its fd
 * to the others (bpf_map__reuse_fd), so there is one map in the kernel.
 */
#ifndef ERPSCOPE_WORKERS_BPF_H
#define ERPSCOPE_WORKERS_BPF_H

#include "procs.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ES_WORKERS_MAP_MAX);
	__type(key, __u32);
	__type(value, struct es_worker);
} workers SEC(".maps");

/*
 * Bumped by user space after every change to workers, so a program may keep
 * a task's slot in its own per-task state and trust it while the generation
 * is unchanged: an inlined array load instead of a hash lookup.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} workers_gen SEC(".maps");

static __always_inline __u32 workers_generation(void)
{
	__u32 zero = 0;
	__u64 *g = bpf_map_lookup_elem(&workers_gen, &zero);

	return g ? (__u32)*g : 0;
}

/* Accounting slot of a process: its own, its role's overflow, or "other". */
static __always_inline __u32 worker_slot(__u32 tgid)
{
	struct es_worker *w = bpf_map_lookup_elem(&workers, &tgid);

	return w ? w->slot : ES_ROLE_OTHER;
}

#endif
