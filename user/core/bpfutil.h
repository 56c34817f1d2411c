/* SPDX-License-Identifier: GPL-2.0 */
/* Small libbpf helpers every probe uses. */
#ifndef ERPSCOPE_BPFUTIL_H
#define ERPSCOPE_BPFUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bpf_object;

/* Keeps the tp_btf/ programs or their raw_tp/ twins, per the feature probe. */
void bpf_pick_flavour(struct bpf_object *obj, bool tp_btf);
/* Sums a per-CPU array of u64 at key 0..n-1 into out[]. Returns 0 or -errno. */
int bpf_percpu_sum_u64(int map_fd, uint32_t key, uint64_t *out);
/* Number of possible CPUs (per-CPU map value count), cached by the caller. */
int bpf_ncpus(void);

/*
 * A BPF_F_MMAPABLE array of size bytes mapped shared (writable or read
 * only): the mapping, its length (size rounded up to pages) in *len, or
 * NULL with errno set. Undone by munmap(p, *len).
 */
void *bpf_map_mmap(int map_fd, size_t size, bool writable, size_t *len);

/*
 * Time counters that add the intervals still open at a scrape read the
 * closed totals first, then the open intervals: an interval that closes
 * between the two reads is in neither (a thread spinning alone on a CPU
 * runs half a second between switches). So the closed totals are read
 * again after, and the whole read redone, ES_REREAD_TRIES reads at most,
 * while one moved by more than ES_REREAD_SLACK_NS: what moved bounds what
 * was missed.
 */
#define ES_REREAD_SLACK_NS 10000000ull
#define ES_REREAD_TRIES 3

/*
 * Walks a (per-CPU) hash map, a chunk of entries per syscall where the
 * kernel has batch lookups: fn gets each key and its value(s): ncpus
 * values, each value_stride bytes apart, for a per-CPU map; one otherwise.
 * Returns how many entries fn saw (a map's fill level for free), or -errno.
 */
typedef void (*bpf_hash_fn)(void *arg, const void *key, const void *values, int nvalues,
			    size_t value_stride);
int bpf_hash_foreach(int map_fd, size_t key_size, size_t value_size, bool percpu, bpf_hash_fn fn,
		     void *arg);
/*
 * Deletes the keys pred() says yes to (given the key and its value, the
 * first CPU's for a per-CPU map): one walk, then one batch delete.
 * Returns how many, or -errno.
 */
int bpf_hash_delete_if(int map_fd, size_t key_size, size_t value_size, bool percpu,
		       bool (*pred)(void *arg, const void *key, const void *value), void *arg);
/* Deletes n keys (key_size bytes each, back to back). Returns how many went. */
int bpf_hash_delete_keys(int map_fd, const void *keys, size_t key_size, uint32_t n);

#endif
