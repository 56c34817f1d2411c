/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Lookup-or-init for the hash maps the programs accumulate into, and the
 * count of inserts that failed because a map was full. Each object that
 * includes this has its own map_errors; user space sums them per map id.
 */
#ifndef ERPSCOPE_MAPS_BPF_H
#define ERPSCOPE_MAPS_BPF_H

#include "maps.h"

#ifndef EEXIST
#define EEXIST 17
#endif
#ifndef E2BIG
#define E2BIG 7
#endif

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ES_MAP_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} map_errors SEC(".maps");

/* Off the hot path: only a failed insert gets here. */
static __always_inline void es_map_error(__u32 id)
{
	__u64 *n = bpf_map_lookup_elem(&map_errors, &id);

	if (n)
		*n += 1;
}

/*
 * The value at key, inserted as *zero first when missing; NULL when the map
 * is full (counted under id). -EEXIST is another CPU's insert winning.
 */
static __always_inline void *es_lookup_or_init(void *map, const void *key, const void *zero,
					       __u32 id)
{
	void *v = bpf_map_lookup_elem(map, key);
	long err;

	if (v)
		return v;
	err = bpf_map_update_elem(map, key, zero, BPF_NOEXIST);
	if (err && err != -EEXIST) {
		es_map_error(id);
		return NULL;
	}
	return bpf_map_lookup_elem(map, key);
}

#endif
