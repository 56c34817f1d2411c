/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The req_serving map (bpf/reqtag.bpf.h) both the python and the requests
 * objects define: whichever loads first creates it, the other reuses it.
 */
#ifndef ERPSCOPE_REQTAG_MAP_H
#define ERPSCOPE_REQTAG_MAP_H

struct erpscope;
struct bpf_map;

/* Before load: reuse the map the other probe created, if it did. 0 or -errno. */
int reqtag_map_reuse(struct erpscope *es, struct bpf_map *m);
/* After load: publish it when this object created it. */
void reqtag_map_loaded(struct erpscope *es, struct bpf_map *m);
/* At close: unpublish it when this object published it. */
void reqtag_map_closed(struct erpscope *es, struct bpf_map *m);

#endif
