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

int bpf_hash_foreach(int map_fd, size_t key_size, size_t value_size, bool percpu, bpf_hash_fn fn,
		     void *arg)
{
	int nvalues = percpu ? libbpf_num_possible_cpus() : 1;
	size_t stride = percpu ? (value_size + 7) / 8 * 8 : value_size;
	char *key = NULL, *next = NULL, *values = NULL;
	void *prev = NULL;
	int err = 0;

	if (nvalues <= 0)
		return nvalues ? nvalues : -EINVAL;
	key = malloc(key_size);
	next = malloc(key_size);
	values = malloc(stride * (size_t)nvalues);
	if (!key || !next || !values) {
		err = -ENOMEM;
		goto out;
	}
	while (!bpf_map_get_next_key(map_fd, prev, next)) {
		memcpy(key, next, key_size);
		prev = key;
		/* Deleted between the two calls: go on with the next key. */
		if (bpf_map_lookup_elem(map_fd, key, values))
			continue;
		fn(arg, key, values, nvalues, stride);
	}
	if (errno != ENOENT)
		err = -errno;
out:
	free(key);
	free(next);
	free(values);
	return err;
}

int bpf_hash_delete_if(int map_fd, size_t key_size, bool (*pred)(void *arg, const void *key),
		       void *arg)
{
	char *key = malloc(key_size), *next = malloc(key_size);
	void *prev = NULL;
	int n = 0;

	if (!key || !next) {
		n = -ENOMEM;
		goto out;
	}
	/* Collect-then-delete would need memory; restarting after a delete is simpler. */
	while (!bpf_map_get_next_key(map_fd, prev, next)) {
		memcpy(key, next, key_size);
		if (pred(arg, key) && !bpf_map_delete_elem(map_fd, key)) {
			n++;
			prev = NULL; /* the walk order changed: start over */
			continue;
		}
		prev = key;
	}
out:
	free(key);
	free(next);
	return n;
}
