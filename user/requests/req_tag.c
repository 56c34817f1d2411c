// SPDX-License-Identifier: GPL-2.0
/*
 * The requests probe as the writer of the request tag registry
 * (core/reqtag.h): each request's names go there once its head is parsed,
 * so the Python probe can filter its samples by route and RPC. The kernel
 * keeps which request each thread serves (bpf/reqtag.bpf.h); this only
 * names them. Not for odoo_gevent: its one thread serves many requests at
 * once, so its samples' tags name whichever request it received last.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "requests.skel.h"
#include "../../bpf/reqtag.h"
#include "core/clock.h"
#include "core/erpscope.h"
#include "core/reqtag.h"
#include "requests/requests.h"

static bool tagged_role(enum es_role role)
{
	return role != ES_ROLE_ODOO_GEVENT;
}

void req_tag_begin(struct req_priv *rp, enum es_role role, __u64 conn_id, __u32 seq,
		   const struct req_head *h)
{
	if (!h || !tagged_role(role) || !reqtags_has_reader(rp->es->reqtags))
		return;
	reqtags_begin(rp->es->reqtags, es_req_tag(conn_id, seq), h->route, h->rpc ? h->model : "",
		      h->rpc ? h->rpc_method : "", clock_ms());
}

void req_tag_end(struct req_priv *rp, enum es_role role, __u64 conn_id, __u32 seq,
		 const struct req_head *h)
{
	req_tag_begin(rp, role, conn_id, seq, h); /* a head complete only at the end */
	if (reqtags_has_reader(rp->es->reqtags))
		reqtags_end(rp->es->reqtags, es_req_tag(conn_id, seq), clock_ms());
}

void req_tag_drop_thread(struct req_priv *rp, __u32 tid, __u64 conn_id, __u32 seq)
{
	int fd = bpf_map__fd(rp->skel->maps.req_serving);
	struct es_req_serving s;

	if (!bpf_map_lookup_elem(fd, &tid, &s) && s.tag == es_req_tag(conn_id, seq))
		bpf_map_delete_elem(fd, &tid);
}

static void sync_ring(void *arg)
{
	struct probe *p = arg;

	if (p->up)
		req_sync(p);
}

void req_tag_writer(struct probe *p, bool on)
{
	reqtags_set_writer(p->es->reqtags, on ? sync_ring : NULL, p);
}
