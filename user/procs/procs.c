// SPDX-License-Identifier: GPL-2.0
/*
 * The "procs" probe: process lifecycle from the kernel (bpf/procs.bpf.c)
 * feeding the process table (user/procs/proctable.c). Owns the shared workers
 * map; every other probe reuses its fd.
 */
#include <errno.h>
#include <stdlib.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <linux/types.h>

#include "../../bpf/procs.h"
#include "procs.skel.h"
#include "core/bpfutil.h"
#include "core/clock.h"
#include "core/erpscope.h"
#include "core/expo.h"
#include "core/log.h"
#include "core/probe.h"
#include "procs/proctable.h"

static int on_event(void *ctx, void *data, size_t len)
{
	struct probe *p = ctx;
	const struct es_proc_event *ev = data;

	if (len < sizeof(*ev))
		return 0;
	procs_event(p->es->procs, ev->type, ev->pid, clock_ms());
	return 0;
}

static int procs_open(struct probe *p)
{
	struct procs_bpf *skel;
	int err;

	skel = procs_bpf__open();
	if (!skel)
		return -errno;
	p->priv = skel;
	bpf_pick_flavour(skel->obj, p->es->tp_btf);
	err = procs_bpf__load(skel);
	if (err)
		return err;
	p->obj = skel->obj;
	p->drops_fd = bpf_map__fd(skel->maps.proc_drops);
	p->es->workers_fd = bpf_map__fd(skel->maps.workers);
	p->es->workers_gen_fd = bpf_map__fd(skel->maps.workers_gen);
	procs_set_map_fd(p->es->procs, p->es->workers_fd, p->es->workers_gen_fd);
	procs_set_drops_fd(p->es->procs, p->drops_fd);
	p->rb = ring_buffer__new(bpf_map__fd(skel->maps.proc_events), on_event, p, NULL);
	if (!p->rb)
		return -errno;
	return 0;
}

int procs_share_maps(struct erpscope *es, struct bpf_object *obj)
{
	struct bpf_map *m;
	int err;

	m = bpf_object__find_map_by_name(obj, "workers");
	if (!m || es->workers_fd < 0)
		return -ENOENT;
	err = bpf_map__reuse_fd(m, es->workers_fd);
	if (err)
		return err;
	m = bpf_object__find_map_by_name(obj, "workers_gen");
	if (m && es->workers_gen_fd >= 0)
		err = bpf_map__reuse_fd(m, es->workers_gen_fd);
	return err;
}

static int procs_attach(struct probe *p)
{
	return procs_bpf__attach(p->priv);
}

static int procs_collect_metrics(struct probe *p, struct expo *e)
{
	procs_collect(p->es->procs, e);
	return 0;
}

static void procs_close(struct probe *p)
{
	if (p->es->procs)
		procs_set_drops_fd(p->es->procs, -1);
	ring_buffer__free(p->rb);
	p->rb = NULL;
	procs_bpf__destroy(p->priv);
	p->priv = NULL;
	p->obj = NULL;
}

const struct probe_ops procs_probe_ops = {
	.name = "procs",
	.open = procs_open,
	.attach = procs_attach,
	.collect = procs_collect_metrics,
	.close = procs_close,
};
