// SPDX-License-Identifier: GPL-2.0
#include "core/mapstats.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "core/bpfutil.h"
#include "core/erpscope.h"
#include "core/expo.h"

#define ES_MAP_NAME(id, name) [id] = name,
static const char *const map_names[ES_MAP_COUNT] = { ES_MAPS(ES_MAP_NAME) };
#undef ES_MAP_NAME

const char *mapstats_name(enum es_map_id id)
{
	return id < ES_MAP_COUNT ? map_names[id] : "unknown";
}

void mapstats_track(struct erpscope *es, enum es_map_id id, const struct bpf_map *m)
{
	if (id >= ES_MAP_COUNT || !m)
		return;
	es->maps[id].tracked = true;
	es->maps[id].max = bpf_map__max_entries(m);
}

void mapstats_count(struct erpscope *es, enum es_map_id id, int n)
{
	if (id >= ES_MAP_COUNT || n < 0)
		return;
	es->maps[id].counted = true;
	es->maps[id].entries = (uint32_t)n;
}

/* Each probe's object has its own counters; a map id belongs to one probe. */
static void sum_errors(struct erpscope *es, uint64_t *out)
{
	for (int i = 0; i < es->nprobes; i++) {
		const struct probe *p = &es->probes[i];

		if (p->map_errors_fd < 0 || !p->up)
			continue;
		for (uint32_t id = 0; id < ES_MAP_COUNT; id++) {
			uint64_t n = 0;

			if (!bpf_percpu_sum_u64(p->map_errors_fd, id, &n))
				out[id] += n;
		}
	}
}

enum fill_field { FILL_ERRORS, FILL_ENTRIES, FILL_MAX };

static const struct {
	const char *name;
	enum expo_type type;
	const char *help;
} families[] = {
	[FILL_ERRORS] = { "erpscope_bpf_map_update_errors_total", EXPO_COUNTER,
			  "Inserts into a BPF map that failed, mostly because it was full; what they would have counted is lost or folded into an \"other\" series." },
	[FILL_ENTRIES] = { "erpscope_bpf_map_entries", EXPO_GAUGE,
			   "Entries in a bounded BPF map at the last walk of it (every scrape)." },
	[FILL_MAX] = { "erpscope_bpf_map_max_entries", EXPO_GAUGE,
		       "Capacity of a bounded BPF map (max_entries)." },
};

void mapstats_collect(struct erpscope *es, struct expo *e)
{
	uint64_t errors[ES_MAP_COUNT] = { 0 };
	struct expo_label l[1];

	sum_errors(es, errors);
	for (unsigned int f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
		expo_family(e, families[f].name, families[f].type, families[f].help);
		for (uint32_t id = 0; id < ES_MAP_COUNT; id++) {
			const struct map_fill *m = &es->maps[id];

			/* Fill levels only where a walk counts the entries. */
			if (!m->tracked || (f != FILL_ERRORS && !m->counted))
				continue;
			l[0] = (struct expo_label){ "map", map_names[id] };
			expo_sample_u64(e, l, 1,
					f == FILL_ERRORS ? errors[id] :
					f == FILL_ENTRIES ? m->entries : m->max);
		}
	}
}
