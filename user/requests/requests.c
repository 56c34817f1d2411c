// SPDX-License-Identifier: GPL-2.0
/*
 * The "requests" probe (bpf/requests.bpf.c): every HTTP request served by a
 * tracked HTTP worker (odoo_http, odoo_gevent; python and odoo_master
 * processes while they hold a listening socket), timed from its first
 * bytes received to its response's last send, by role, templated route,
 * method and status; Odoo's RPCs by model and method. The kernel sends the
 * first bytes of each request on a ring buffer, as they come or with the
 * request's end (requests/req_pending.c); requests/req_conns.c parses them
 * and keeps only the method, route and RPC names.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "requests.skel.h"
#include "core/bpfutil.h"
#include "core/erpscope.h"
#include "core/expo.h"
#include "core/libc_uprobes.h"
#include "core/log.h"
#include "core/mapstats.h"
#include "core/probe.h"
#include "core/reqtag_map.h"
#include "procs/proctable.h"
#include "requests/requests.h"

/* odoo_master serves HTTP itself in Odoo's threaded mode (workers = 0). */
static const enum es_role served_roles[] = { ES_ROLE_ODOO_HTTP, ES_ROLE_ODOO_GEVENT, ES_ROLE_PYTHON,
					     ES_ROLE_ODOO_MASTER };

bool req_role_served(enum es_role r)
{
	for (size_t i = 0; i < sizeof(served_roles) / sizeof(served_roles[0]); i++) {
		if (served_roles[i] == r)
			return true;
	}
	return false;
}

static int on_event(void *ctx, void *data, size_t len)
{
	struct req_priv *rp = ctx;
	const __u32 *type = data;

	if (len < sizeof(*type))
		return 0;
	if (*type == ES_REQ_EV_DATA && len >= offsetof(struct es_req_data, data)) {
		const struct es_req_data *ev = data;

		if (len >= offsetof(struct es_req_data, data) + ev->len)
			req_conns_data(rp, ev);
	} else if (*type == ES_REQ_EV_DONE && len >= sizeof(struct es_req_done)) {
		req_conns_done(rp, data);
	} else if (*type == ES_REQ_EV_FULL) {
		req_pending_full(rp, data, len);
	}
	return 0;
}

void req_sync(struct probe *p)
{
	if (p->rb)
		ring_buffer__consume(p->rb);
	if (p->priv)
		req_pending_scan(p->priv);
}

static int requests_open(struct probe *p)
{
	struct erpscope *es = p->es;
	struct req_priv *rp;
	int err;

	rp = calloc(1, sizeof(*rp));
	if (!rp)
		return -ENOMEM;
	p->priv = rp;
	rp->es = es;
	rp->nslots = procs_nslots(es->procs);
	err = req_conns_init(rp);
	if (err)
		return err;
	rp->slow = req_slow_new(ES_ROLE_COUNT, REQ_SLOW_K, es->cfg.py_window_ms * 1000000ull);
	if (!rp->slow)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(served_roles) / sizeof(served_roles[0]); i++) {
		struct req_role *r = &rp->roles[served_roles[i]];

		r->routes = req_table_new(es->cfg.http_top_routes);
		r->rpcs = req_table_new(es->cfg.http_top_rpcs);
		if (!r->routes || !r->rpcs || req_table_pin(r->routes, "unparsed"))
			return -ENOMEM;
	}
	rp->skel = requests_bpf__open();
	if (!rp->skel)
		return -errno;
	err = libc_uprobes_prepare(NULL, rp->skel->progs.es_req_io, "requests");
	if (err)
		return err; /* nothing to do without multi-uprobe links */
	/* Attached while a worker is followed (req_attach.c), in the flavour picked. */
	bpf_pick_flavour(rp->skel->obj, es->tp_btf);
	err = bpf_map__set_max_entries(rp->skel->maps.req_procs,
				       rp->nslots > ES_SLOT_FIRST_WORKER ?
					       rp->nslots - ES_SLOT_FIRST_WORKER : 1);
	if (err)
		return err;
	/* Where each request's time went: the sched and pg probes' maps, when they are up. */
	if (es->task_sched_fd >= 0) {
		err = bpf_map__reuse_fd(rp->skel->maps.task_sched, es->task_sched_fd);
		rp->skel->rodata->sched_shared = true;
	}
	if (!err && es->pg_clients_fd >= 0) {
		err = bpf_map__reuse_fd(rp->skel->maps.pg_clients, es->pg_clients_fd);
		rp->skel->rodata->pg_shared = true;
	}
	/* Each thread's request is only read by the Python probe's samples. */
	rp->skel->rodata->tag_serving = config_probe_enabled(&es->cfg, "python");
	if (!err)
		err = reqtag_map_reuse(es, rp->skel->maps.req_serving);
	if (err)
		return err;
	err = requests_bpf__load(rp->skel);
	if (err)
		return err;
	p->obj = rp->skel->obj;
	reqtag_map_loaded(es, rp->skel->maps.req_serving);
	p->drops_fd = bpf_map__fd(rp->skel->maps.req_drops);
	p->map_errors_fd = bpf_map__fd(rp->skel->maps.map_errors);
	p->rb = ring_buffer__new(bpf_map__fd(rp->skel->maps.req_events), on_event, rp, NULL);
	if (!p->rb)
		return -errno;
	err = req_pending_open(rp);
	if (err)
		return err;
	err = req_pids_open(rp);
	if (err)
		return err;
	req_tag_writer(p, true);
	rp->parts_sched = es->task_sched_fd >= 0;
	rp->parts_pg = es->pg_clients_fd >= 0;
	log_debug("requests probe loaded", "top_routes=%u top_rpcs=%u parts_sched=%d parts_pg=%d",
		  es->cfg.http_top_routes, es->cfg.http_top_rpcs, rp->parts_sched, rp->parts_pg);
	return 0;
}

/*
 * The uprobes go on each HTTP worker as the process table finds it, and the
 * socket tracepoints (one lookup for every process but the HTTP workers)
 * with the first one (req_attach.c).
 */
static int requests_attach(struct probe *p)
{
	return req_attach_start(p->priv);
}

struct req_priv *requests_priv(struct erpscope *es)
{
	struct probe *p = erpscope_probe(es, "requests");

	return p && p->up ? p->priv : NULL;
}

static int requests_collect(struct probe *p, struct expo *e)
{
	struct req_priv *rp = p->priv;

	/* What is in the ring first: a request that ended before the scrape is in it. */
	req_sync(p);
	req_collect(rp, e);
	return 0;
}

static void requests_close(struct probe *p)
{
	struct req_priv *rp = p->priv;

	ring_buffer__free(p->rb);
	p->rb = NULL;
	if (!rp)
		return;
	req_tag_writer(p, false);
	reqtag_map_closed(p->es, rp->skel ? rp->skel->maps.req_serving : NULL);
	libc_uprobes_free(rp->lu);
	req_pending_close(rp);
	req_pids_close(rp);
	requests_bpf__destroy(rp->skel);
	req_conns_free(rp);
	req_slow_free(rp->slow);
	for (int r = 0; r < ES_ROLE_COUNT; r++) {
		req_table_free(rp->roles[r].routes);
		req_table_free(rp->roles[r].rpcs);
	}
	free(rp);
	p->priv = NULL;
	p->obj = NULL;
}

const struct probe_ops requests_probe_ops = {
	.name = "requests",
	.open = requests_open,
	.attach = requests_attach,
	.collect = requests_collect,
	.close = requests_close,
};
