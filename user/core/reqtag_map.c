// SPDX-License-Identifier: GPL-2.0
/* The shared req_serving map: see core/reqtag_map.h. */
#include <bpf/libbpf.h>

#include "core/erpscope.h"
#include "core/reqtag_map.h"

int reqtag_map_reuse(struct erpscope *es, struct bpf_map *m)
{
	return es->req_serving_fd >= 0 ? bpf_map__reuse_fd(m, es->req_serving_fd) : 0;
}

void reqtag_map_loaded(struct erpscope *es, struct bpf_map *m)
{
	if (es->req_serving_fd < 0)
		es->req_serving_fd = bpf_map__fd(m);
}

void reqtag_map_closed(struct erpscope *es, struct bpf_map *m)
{
	if (m && es->req_serving_fd >= 0 && es->req_serving_fd == bpf_map__fd(m))
		es->req_serving_fd = -1;
}
