// SPDX-License-Identifier: GPL-2.0
#include "core/bpfutil.h"
#include "core/grow.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
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

void *bpf_map_mmap(int map_fd, size_t size, bool writable, size_t *len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	void *m;

	*len = (size + page - 1) / page * page;
	m = mmap(NULL, *len, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, map_fd, 0);
	return m == MAP_FAILED ? NULL : m;
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

/* One key at a time: two syscalls per entry (kernels without batch ops). */
static int foreach_by_key(int map_fd, size_t key_size, char *values, int nvalues, size_t stride,
			  bpf_hash_fn fn, void *arg)
{
	char *key = malloc(key_size), *next = malloc(key_size);
	void *prev = NULL;
	int err = 0, n = 0;

	if (!key || !next) {
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
		n++;
	}
	err = errno == ENOENT ? n : -errno;
out:
	free(key);
	free(next);
	return err;
}

#define BATCH_MIN 64
#define BATCH_MAX 65536

/*
 * A chunk of entries per syscall. Returns 0 and the count in *seen, 1 when
 * the map cannot be read in batches (then the caller walks it key by key),
 * or -errno.
 */
static int foreach_batch(int map_fd, size_t key_size, size_t stride, int nvalues, bpf_hash_fn fn,
			 void *arg, int *seen)
{
	size_t vsize = stride * (size_t)nvalues, tsize = key_size < 8 ? 8 : key_size;
	char *keys = NULL, *values = NULL, *in = NULL, *out = NULL;
	__u32 chunk = BATCH_MIN, count;
	bool first = true, done = false;
	int err = 0;

	in = calloc(1, tsize);
	out = calloc(1, tsize);
	if (!in || !out) {
		err = -ENOMEM;
		goto out;
	}
	while (!done) {
		if (!keys) {
			keys = malloc((size_t)chunk * key_size);
			values = malloc((size_t)chunk * vsize);
			if (!keys || !values) {
				err = -ENOMEM;
				goto out;
			}
		}
		count = chunk;
		if (bpf_map_lookup_batch(map_fd, first ? NULL : in, out, keys, values, &count,
					 NULL)) {
			if (errno == ENOENT) {
				done = true; /* the last entries came with it */
			} else if (errno == ENOSPC && chunk < BATCH_MAX) {
				/* A bucket holds more than a chunk: bigger chunks. */
				chunk *= 4;
				free(keys);
				free(values);
				keys = values = NULL;
				continue;
			} else {
				err = first && (errno == EINVAL || errno == ENOTSUP) ? 1 : -errno;
				goto out;
			}
		}
		for (__u32 i = 0; i < count; i++)
			fn(arg, keys + (size_t)i * key_size, values + (size_t)i * vsize, nvalues,
			   stride);
		*seen += (int)count;
		memcpy(in, out, tsize);
		first = false;
	}
out:
	free(keys);
	free(values);
	free(in);
	free(out);
	return err;
}

int bpf_hash_foreach(int map_fd, size_t key_size, size_t value_size, bool percpu, bpf_hash_fn fn,
		     void *arg)
{
	int nvalues = percpu ? libbpf_num_possible_cpus() : 1;
	size_t stride = percpu ? (value_size + 7) / 8 * 8 : value_size;
	char *values;
	int err, seen = 0;

	if (nvalues <= 0)
		return nvalues ? nvalues : -EINVAL;
	err = foreach_batch(map_fd, key_size, stride, nvalues, fn, arg, &seen);
	if (err <= 0)
		return err ? err : seen;
	values = malloc(stride * (size_t)nvalues);
	if (!values)
		return -ENOMEM;
	err = foreach_by_key(map_fd, key_size, values, nvalues, stride, fn, arg);
	free(values);
	return err;
}

int bpf_hash_delete_keys(int map_fd, const void *keys, size_t key_size, uint32_t n)
{
	__u32 count = n;

	if (!n)
		return 0;
	if (!bpf_map_delete_batch(map_fd, keys, &count, NULL))
		return (int)count;
	/* No batch ops, or a key went meanwhile: one at a time. */
	count = 0;
	for (__u32 i = 0; i < n; i++)
		count += !bpf_map_delete_elem(map_fd, (const char *)keys + (size_t)i * key_size);
	return (int)count;
}

struct doomed {
	size_t key_size;
	bool (*pred)(void *arg, const void *key, const void *value);
	void *arg;
	char *keys;
	__u32 n;
	size_t cap;
};

static void collect_doomed(void *arg, const void *key, const void *values, int nvalues,
			   size_t stride)
{
	struct doomed *d = arg;

	if (!d->pred(d->arg, key, values))
		return;
	if (grow_array(&d->keys, &d->cap, (size_t)d->n + 1, d->key_size, 64))
		return;
	memcpy(d->keys + (size_t)d->n++ * d->key_size, key, d->key_size);
}

int bpf_hash_delete_if(int map_fd, size_t key_size, size_t value_size, bool percpu,
		       bool (*pred)(void *arg, const void *key, const void *value), void *arg)
{
	struct doomed d = { .key_size = key_size, .pred = pred, .arg = arg };
	int err = bpf_hash_foreach(map_fd, key_size, value_size, percpu, collect_doomed, &d);

	if (err >= 0)
		err = bpf_hash_delete_keys(map_fd, d.keys, key_size, d.n);
	free(d.keys);
	return err;
}
