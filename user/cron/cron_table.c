// SPDX-License-Identifier: GPL-2.0
/* Per-cron numbers, bounded; a run's parts; cron names (cron/cron.h). Pure. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron/cron.h"

/* erpscope_http_request_duration_seconds's edges, then minutes (cron/cron.h) */
const double cron_edges[CRON_NEDGES] = {
	0.005, 0.01, 0.025, 0.05, 0.1,	0.25, 0.5, 1, 2, 5, 10, 30, 60, /* as requests */
	120,   300,  600,   1800, 3600,
};

static const char *const part_names[CRON_PART_COUNT] = {
	[CRON_PART_CPU] = "cpu",       [CRON_PART_RUNQUEUE] = "runqueue",
	[CRON_PART_IOWAIT] = "iowait", [CRON_PART_BLOCKED] = "blocked",
	[CRON_PART_SLEEP] = "sleep",
};

static const char *const result_names[CRON_RESULT_COUNT] = {
	[CRON_OK] = "ok",
	[CRON_FAILED] = "failed",
	[CRON_UNKNOWN] = "unknown",
};

const char *cron_part_name(enum cron_part p)
{
	return p < CRON_PART_COUNT ? part_names[p] : "?";
}

const char *cron_result_name(enum cron_result r)
{
	return r < CRON_RESULT_COUNT ? result_names[r] : "?";
}

void cron_split(uint64_t dur_ns, uint64_t cpu_ns, uint64_t rq_ns,
		const uint64_t samples[CRON_OFF_COUNT], uint64_t part_ns[CRON_PART_COUNT])
{
	uint64_t off = dur_ns > cpu_ns + rq_ns ? dur_ns - cpu_ns - rq_ns : 0, given = 0;
	uint64_t total = 0;

	part_ns[CRON_PART_CPU] = cpu_ns;
	part_ns[CRON_PART_RUNQUEUE] = rq_ns;
	for (int i = 0; i < CRON_OFF_COUNT; i++)
		total += samples[i];
	if (!total) {
		part_ns[CRON_PART_IOWAIT] = part_ns[CRON_PART_BLOCKED] = 0;
		part_ns[CRON_PART_SLEEP] = off;
		return;
	}
	part_ns[CRON_PART_IOWAIT] = (uint64_t)((double)off * samples[CRON_OFF_IOWAIT] / total);
	part_ns[CRON_PART_BLOCKED] = (uint64_t)((double)off * samples[CRON_OFF_BLOCKED] / total);
	given = part_ns[CRON_PART_IOWAIT] + part_ns[CRON_PART_BLOCKED];
	/* sleep takes the rest, so the parts add up to the duration exactly */
	part_ns[CRON_PART_SLEEP] = off > given ? off - given : 0;
}

void cron_name_from_repr(const char *repr, char *out, size_t size)
{
	size_t n = strlen(repr), o = 0;
	const char *end = repr + n;

	if (!size)
		return;
	if (n >= 1 && repr[0] == '\'') {
		repr++;
		if (end > repr && end[-1] == '\'' && (end - repr < 2 || end[-2] != '\\'))
			end--;
		for (; repr < end && o + 1 < size; repr++) {
			if (repr[0] == '\\' && repr + 1 < end &&
			    (repr[1] == '\\' || repr[1] == '\''))
				repr++;
			out[o++] = *repr;
		}
		out[o] = '\0';
		return;
	}
	snprintf(out, size, "%s", repr);
}

struct cron_table {
	unsigned int max, n;
	struct cron_stats *v;
	struct cron_stats other;
	bool other_used;
};

struct cron_table *cron_table_new(unsigned int max_names)
{
	struct cron_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->max = max_names;
	snprintf(t->other.name, sizeof(t->other.name), "other");
	return t;
}

void cron_table_free(struct cron_table *t)
{
	if (!t)
		return;
	free(t->v);
	free(t);
}

static struct cron_stats *entry(struct cron_table *t, const char *name)
{
	struct cron_stats *nv;

	for (unsigned int i = 0; i < t->n; i++) {
		if (!strcmp(t->v[i].name, name))
			return &t->v[i];
	}
	if (t->n >= t->max || !strcmp(name, "other"))
		goto other;
	nv = realloc(t->v, (t->n + 1) * sizeof(*nv));
	if (!nv)
		goto other;
	t->v = nv;
	memset(&nv[t->n], 0, sizeof(nv[0]));
	snprintf(nv[t->n].name, sizeof(nv[0].name), "%s", name);
	return &nv[t->n++];
other:
	t->other_used = true;
	return &t->other;
}

int cron_table_add(struct cron_table *t, const struct cron_run *r)
{
	struct cron_stats *s = entry(t, r->name);
	unsigned int b = 0;

	while (b < CRON_NEDGES && (double)r->dur_ns > cron_edges[b] * 1e9)
		b++;
	s->buckets[b]++;
	s->sum_ns += r->dur_ns;
	for (int p = 0; p < CRON_PART_COUNT; p++)
		s->part_ns[p] += r->part_ns[p];
	if (r->result < CRON_RESULT_COUNT)
		s->runs[r->result]++;
	if (r->result == CRON_OK && r->end_unix > s->last_success)
		s->last_success = r->end_unix;
	/* a new name past the bound, or one realloc could not make room for */
	return s == &t->other && strcmp(r->name, "other") ? -ENOSPC : 0;
}

void cron_table_foreach(const struct cron_table *t, cron_stats_fn fn, void *arg)
{
	for (unsigned int i = 0; i < t->n; i++)
		fn(arg, &t->v[i]);
	if (t->other_used)
		fn(arg, &t->other);
}
