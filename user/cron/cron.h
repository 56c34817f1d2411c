/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Odoo cron runs, timed from outside the worker: the "cron" poller reads
 * the stack of each odoo_cron worker every --odoo.cron-poll-interval and
 * follows ir_cron._callback(cron_name=...) frames; a run is one frame, from
 * the poll it appeared in to the poll it was gone at.
 *   cron.c         the poller: workers, stacks, runs begun and ended
 *   cron_table.c   per-cron numbers, bounded (pure, unit-tested)
 *   cron_collect.c the metric families: one table, one loop
 */
#ifndef ERPSCOPE_CRON_H
#define ERPSCOPE_CRON_H

#include <stddef.h>
#include <stdint.h>

struct expo;

#define CRON_NAME_MAX 128
/* Crons with series of their own; the rest count under cron="other". */
#define CRON_MAX_NAMES 256

/* erpscope_http_request_duration_seconds's edges (5 ms .. 60 s), then 2, 5,
 * 10, 30 and 60 minutes: crons run minutes. */
#define CRON_NEDGES 18
extern const double cron_edges[CRON_NEDGES];

/* Where a run's time went, as erpscope_offcpu_seconds_total's reasons. */
enum cron_part {
	CRON_PART_CPU,
	CRON_PART_RUNQUEUE,
	CRON_PART_IOWAIT,
	CRON_PART_BLOCKED,
	CRON_PART_SLEEP,
	CRON_PART_COUNT,
};

enum cron_result {
	CRON_OK, /* no backend of the worker aborted a transaction during the run */
	CRON_FAILED, /* one did (Odoo rolls a failed run back), or the worker died in it */
	CRON_UNKNOWN, /* no backend linked to the worker, or the pg probe is off */
	CRON_RESULT_COUNT,
};

const char *cron_part_name(enum cron_part p);
const char *cron_result_name(enum cron_result r);

/* Off-CPU samples of a run's thread, by the state the sched probe saw. */
enum cron_off { CRON_OFF_IOWAIT, CRON_OFF_BLOCKED, CRON_OFF_SLEEP, CRON_OFF_COUNT };

/*
 * A run's parts: cpu and runqueue as measured; the rest of dur_ns (none if
 * they exceed it) split in proportion to the off-CPU weights (the sched
 * probe's exact off-CPU time by state over the polls around the run, or
 * the states it showed at the polls during it), all to sleep when all are 0.
 */
void cron_split(uint64_t dur_ns, uint64_t cpu_ns, uint64_t rq_ns,
		const uint64_t weights[CRON_OFF_COUNT], uint64_t part_ns[CRON_PART_COUNT]);

/*
 * The label value of a cron_name argument as py_value_repr rendered it: a
 * str's quotes dropped and \\ and \' undone; anything else as it is.
 */
void cron_name_from_repr(const char *repr, char *out, size_t size);

struct cron_stats {
	char name[CRON_NAME_MAX];
	uint64_t buckets[CRON_NEDGES + 1]; /* the last: above the last edge */
	uint64_t sum_ns;
	uint64_t part_ns[CRON_PART_COUNT];
	uint64_t runs[CRON_RESULT_COUNT];
	double last_success; /* unix seconds of the end of the last ok run; 0: none */
};

struct cron_run {
	const char *name;
	uint64_t dur_ns;
	uint64_t part_ns[CRON_PART_COUNT];
	enum cron_result result;
	double end_unix;
};

struct cron_table;

struct cron_table *cron_table_new(unsigned int max_names);
void cron_table_free(struct cron_table *t);
/* Counts a run under its name; 0, or -ENOSPC when it went to "other" (max_names taken). */
int cron_table_add(struct cron_table *t, const struct cron_run *r);
/* Labelled crons in the order they first ran, then "other" if it counted any. */
typedef void (*cron_stats_fn)(void *arg, const struct cron_stats *s);
void cron_table_foreach(const struct cron_table *t, cron_stats_fn fn, void *arg);

/* cron_collect.c */
void cron_collect(const struct cron_table *t, struct expo *e);

#endif
