/* SPDX-License-Identifier: GPL-2.0 */
/* Small libbpf helpers every probe uses. */
#ifndef ERPSCOPE_BPFUTIL_H
#define ERPSCOPE_BPFUTIL_H

#include <stdbool.h>
#include <stdint.h>

struct bpf_object;

/* Keeps the tp_btf/ programs or their raw_tp/ twins, per the feature probe. */
void bpf_pick_flavour(struct bpf_object *obj, bool tp_btf);
/* Sums a per-CPU array of u64 at key 0..n-1 into out[]. Returns 0 or -errno. */
int bpf_percpu_sum_u64(int map_fd, uint32_t key, uint64_t *out);
/* Number of possible CPUs (per-CPU map value count), cached by the caller. */
int bpf_ncpus(void);

#endif
