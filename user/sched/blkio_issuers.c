// SPDX-License-Identifier: GPL-2.0
/*
 * Who issued what to each block device, for other capabilities (the
 * diagnose rules name a busy disk's top issuers): tracked workers from the
 * blkio probe's io_by_worker, all ops summed; untracked tasks one by one
 * from io_by_other, named by their comm.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/types.h>

#include "../../bpf/blkio.h"
#include "../../bpf/procs.h"
#include "core/bpfutil.h"
#include "core/erpscope.h"
#include "core/grow.h"
#include "procs/proctable.h"
#include "sched/blkio.h"
#include "sched/sched.h"

struct issuer {
	__u32 dev, id; /* id: the slot, or an untracked task's tgid */
	uint64_t ops, bytes;
	char comm[16]; /* an untracked task's, "" when the kernel did not read it */
};

struct issuers {
	struct issuer *v;
	size_t n, cap;
	int err;
};

static struct issuer *issuer_of(struct issuers *is, __u32 dev, __u32 id)
{
	for (size_t i = 0; i < is->n; i++)
		if (is->v[i].dev == dev && is->v[i].id == id)
			return &is->v[i];
	if (grow_array(&is->v, &is->cap, is->n + 1, sizeof(*is->v), 16)) {
		is->err = -ENOMEM;
		return NULL;
	}
	is->v[is->n] = (struct issuer){ .dev = dev, .id = id };
	return &is->v[is->n++];
}

static void add_io(struct issuers *is, __u32 dev, __u32 id, const void *values, int n,
		   size_t stride)
{
	struct issuer *it = issuer_of(is, dev, id);

	for (int c = 0; it && c < n; c++) {
		const struct es_blk_io *io = (const void *)((const char *)values + (size_t)c * stride);

		it->ops += io->ops;
		it->bytes += io->bytes;
	}
}

/* Tracked workers; the untracked ones' aggregate is io_by_other's, one by one. */
static void add_worker(void *arg, const void *key, const void *values, int n, size_t stride)
{
	const struct es_blk_io_key *k = key;

	if (k->slot != ES_ROLE_OTHER)
		add_io(arg, k->dev, k->slot, values, n, stride);
}

static void add_other(void *arg, const void *key, const void *values, int n, size_t stride)
{
	const struct es_blk_other_key *k = key;
	const struct es_blk_other *v = values;
	struct issuer *it = issuer_of(arg, k->dev, k->tgid);

	(void)n;
	(void)stride;
	if (!it)
		return;
	it->ops += v->ops;
	it->bytes += v->bytes;
	memcpy(it->comm, v->comm, sizeof(it->comm));
	it->comm[sizeof(it->comm) - 1] = 0;
}

/* The comm the kernel read, else /proc's now. */
static void comm_of(const struct issuer *it, char *buf, size_t size)
{
	char path[40];
	FILE *f;

	if (it->comm[0]) {
		snprintf(buf, size, "%s", it->comm);
		return;
	}
	snprintf(path, sizeof(path), "/proc/%u/comm", it->id);
	snprintf(buf, size, "gone");
	f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(buf, (int)size, f))
		buf[strcspn(buf, "\n")] = 0;
	fclose(f);
}

static int walk(struct erpscope *es, bool untracked, struct issuers *is)
{
	int fd = blkio_io_map_fd(es, untracked), err;

	if (fd < 0)
		return fd;
	err = untracked ? bpf_hash_foreach(fd, sizeof(struct es_blk_other_key),
					   sizeof(struct es_blk_other), false, add_other, is) :
			  bpf_hash_foreach(fd, sizeof(struct es_blk_io_key),
					   sizeof(struct es_blk_io), true, add_worker, is);
	return err < 0 ? err : is->err;
}

int blkio_issuers_foreach(struct erpscope *es, blkio_issuer_fn fn, void *arg)
{
	struct issuers tracked = { 0 }, other = { 0 };
	char comm[17], pid[16];
	int err;

	err = walk(es, false, &tracked);
	if (!err)
		err = walk(es, true, &other);
	for (size_t i = 0; !err && i < tracked.n; i++) {
		struct slot_view sv;

		if (procs_slot_view(es->procs, tracked.v[i].id, &sv))
			continue;
		fn(arg, sv.role, sv.worker, sv.w ? sv.w->comm : "",
		   blockdev_name(&es->blockdevs, tracked.v[i].dev), tracked.v[i].ops,
		   tracked.v[i].bytes);
	}
	for (size_t i = 0; !err && i < other.n; i++) {
		comm_of(&other.v[i], comm, sizeof(comm));
		snprintf(pid, sizeof(pid), "%u", other.v[i].id);
		fn(arg, ES_ROLE_OTHER, pid, comm, blockdev_name(&es->blockdevs, other.v[i].dev),
		   other.v[i].ops, other.v[i].bytes);
	}
	free(tracked.v);
	free(other.v);
	return err;
}
