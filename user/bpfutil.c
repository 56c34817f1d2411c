// SPDX-License-Identifier: GPL-2.0
#include "bpfutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

void bpf_pick_flavour(struct bpf_object *obj, bool tp_btf)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, obj) {
		const char *sec = bpf_program__section_name(prog);

		if (!strncmp(sec, "tp_btf/", 7))
			bpf_program__set_autoload(prog, tp_btf);
		else if (!strncmp(sec, "raw_tp/", 7))
			bpf_program__set_autoload(prog, !tp_btf);
	}
}

int bpf_ncpus(void)
{
	return libbpf_num_possible_cpus();
}

int bpf_percpu_sum_u64(int map_fd, uint32_t key, uint64_t *out)
{
	int n = libbpf_num_possible_cpus();
	uint64_t *vals;
	int err = 0;

	if (n <= 0)
		return n ? n : -EINVAL;
	vals = calloc((size_t)n, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	if (bpf_map_lookup_elem(map_fd, &key, vals)) {
		err = -errno;
		goto out;
	}
	*out = 0;
	for (int i = 0; i < n; i++)
		*out += vals[i];
out:
	free(vals);
	return err;
}
