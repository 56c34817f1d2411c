// SPDX-License-Identifier: GPL-2.0
/* The cron poller's metric families: one table, one loop. */
#include <stdbool.h>

#include "core/expo.h"
#include "cron/cron.h"

struct emit {
	struct expo *e;
	void (*series)(struct expo *e, const struct cron_stats *s);
};

static void emit_duration(struct expo *e, const struct cron_stats *s)
{
	struct expo_label l[1] = { { "cron", s->name } };

	expo_histogram(e, l, 1, cron_edges, s->buckets, CRON_NEDGES, (double)s->sum_ns / 1e9);
}

static void emit_parts(struct expo *e, const struct cron_stats *s)
{
	struct expo_label l[2] = { { "cron", s->name } };

	for (int p = 0; p < CRON_PART_COUNT; p++) {
		l[1] = (struct expo_label){ "part", cron_part_name((enum cron_part)p) };
		expo_sample(e, l, 2, (double)s->part_ns[p] / 1e9);
	}
}

static void emit_runs(struct expo *e, const struct cron_stats *s)
{
	struct expo_label l[2] = { { "cron", s->name } };

	for (int r = 0; r < CRON_RESULT_COUNT; r++) {
		l[1] = (struct expo_label){ "result", cron_result_name((enum cron_result)r) };
		expo_sample_u64(e, l, 2, s->runs[r]);
	}
}

static void emit_last_success(struct expo *e, const struct cron_stats *s)
{
	struct expo_label l[1] = { { "cron", s->name } };

	if (s->last_success > 0)
		expo_sample(e, l, 1, s->last_success);
}

static const struct family {
	const char *name;
	enum expo_type type;
	const char *help;
	void (*series)(struct expo *e, const struct cron_stats *s);
} families[] = {
	{ "erpscope_odoo_cron_duration_seconds", EXPO_HISTOGRAM,
	  "Odoo cron runs (an ir_cron._callback frame in an odoo_cron worker's stack, read every --odoo.cron-poll-interval) by cron name, to +/- one interval; the first 256 names have series, the rest cron=\"other\".",
	  emit_duration },
	{ "erpscope_odoo_cron_time_seconds_total", EXPO_COUNTER,
	  "Where those runs' time went: cpu and runqueue from the thread's schedstat, the rest of the duration split into iowait, blocked and sleep by the states sampled at each poll.",
	  emit_parts },
	{ "erpscope_odoo_cron_runs_total", EXPO_COUNTER,
	  "Cron runs by result: failed when a PostgreSQL backend linked to the worker aborted a transaction during the run (Odoo rolls a failed run back) or the worker died in it, ok when none did, unknown when no backend is linked or the pg probe is off.",
	  emit_runs },
	{ "erpscope_odoo_cron_last_success_timestamp_seconds", EXPO_GAUGE,
	  "Unix time of the end of the last run with result ok; no series before one.",
	  emit_last_success },
};

static void one(void *arg, const struct cron_stats *s)
{
	struct emit *em = arg;

	em->series(em->e, s);
}

void cron_collect(const struct cron_table *t, struct expo *e)
{
	struct emit em = { .e = e };

	for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
		expo_family(e, families[f].name, families[f].type, families[f].help);
		em.series = families[f].series;
		cron_table_foreach(t, one, &em);
	}
}
