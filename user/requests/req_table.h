/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A bounded set of latency histograms keyed by a string (a route, or an
 * RPC's "model method"), each split by a small sub-key (method and status).
 * At most k keys have series of their own ("labelled"); the rest count in
 * "other". A hot key waits among at most 4k candidates (scores only) and
 * takes the label of the coldest labelled key at a rotation (each scrape)
 * when it is clearly hotter; the evicted key's counts are folded into
 * "other", so the sum over a table's series never goes down. Pinned keys
 * (route "unparsed") are labelled outside k and never evicted. Pure: no
 * I/O, unit-tested.
 */
#ifndef ERPSCOPE_REQ_TABLE_H
#define ERPSCOPE_REQ_TABLE_H

#include <stdbool.h>
#include <stdint.h>

/* Seconds: 5 ms .. 60 s, as the requests issue asks. */
#define REQ_NEDGES 13
extern const double req_edges[REQ_NEDGES];

#define REQ_KEY_MAX 128

struct req_hist {
	uint64_t buckets[REQ_NEDGES + 1]; /* the last: above 60 s */
	uint64_t sum_ns;
};

/* Where requests' time went: the serving thread's states, and PostgreSQL. */
enum req_part {
	REQ_PART_CPU,
	REQ_PART_RUNQUEUE,
	REQ_PART_IOWAIT,
	REQ_PART_BLOCKED,
	REQ_PART_SLEEP, /* sleeping, less the pg part */
	REQ_PART_PG, /* its statements' time in PostgreSQL (taken out of sleep) */
	REQ_PART_COUNT,
};
extern const char *const req_part_names[REQ_PART_COUNT];

struct req_parts {
	uint64_t ns[REQ_PART_COUNT];
	uint64_t pg_stmts;
	bool sched, pg; /* which parts are known: the sched ones, pg and pg_stmts */
};

void req_parts_add(struct req_parts *d, const struct req_parts *s);

void req_hist_add(struct req_hist *h, uint64_t ns);
uint64_t req_hist_count(const struct req_hist *h);

struct req_table;

struct req_table *req_table_new(unsigned int k);
void req_table_free(struct req_table *t);
/* A key labelled outside the bound, never evicted. 0 or -ENOMEM. */
int req_table_pin(struct req_table *t, const char *key);
/*
 * One observation: ns under (key, sub), and where it went (parts, NULL when
 * not known) under key. 0 or -ENOMEM (then counted in other when possible).
 */
int req_table_observe(struct req_table *t, const char *key, uint32_t sub, uint64_t ns,
		      const struct req_parts *parts);
/* At each scrape: hot candidates take cold labels; scores decay. Returns the evictions. */
unsigned int req_table_rotate(struct req_table *t);

/* Each series: labelled keys' (key, sub), then other's with key NULL. */
typedef void (*req_series_fn)(void *arg, const char *key, uint32_t sub, const struct req_hist *h);
void req_table_foreach(const struct req_table *t, req_series_fn fn, void *arg);

/* Each key's parts (labelled keys, then other with key NULL), where any were added. */
typedef void (*req_parts_fn)(void *arg, const char *key, const struct req_parts *p);
void req_table_foreach_parts(const struct req_table *t, req_parts_fn fn, void *arg);

unsigned int req_table_labelled(const struct req_table *t); /* pinned ones excluded */
unsigned int req_table_candidates(const struct req_table *t);
uint64_t req_table_evictions(const struct req_table *t);

#endif
