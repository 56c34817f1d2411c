/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Fill levels and failed inserts of the bounded BPF maps (bpf/maps.h). A
 * probe tracks its maps after load and reports the entries its scrape walk
 * saw; the failed inserts come from each probe's map_errors array.
 */
#ifndef ERPSCOPE_MAPSTATS_H
#define ERPSCOPE_MAPSTATS_H

#include <stdbool.h>
#include <stdint.h>

#include "../../bpf/maps.h"

struct bpf_map;
struct erpscope;
struct expo;

struct map_fill {
	bool tracked;     /* a probe that owns the map is loaded */
	bool counted;     /* entries is known: its probe walks the map */
	uint32_t max;     /* max_entries as loaded */
	uint32_t entries; /* at the owner's last walk */
};

/* Records the map's size; call after load (user space may resize maps). */
void mapstats_track(struct erpscope *es, enum es_map_id id, const struct bpf_map *m);
/* The entries a walk of the map saw; n < 0 (a failed walk) is ignored. */
void mapstats_count(struct erpscope *es, enum es_map_id id, int n);
/* Name of a map id as exported. */
const char *mapstats_name(enum es_map_id id);
/* Writes the map families; runs after the probes' collects, which count. */
void mapstats_collect(struct erpscope *es, struct expo *e);

#endif
