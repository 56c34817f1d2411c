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

void req_hist_add(struct req_hist *h, uint64_t ns);
uint64_t req_hist_count(const struct req_hist *h);

struct req_table;

struct req_table *req_table_new(unsigned int k);
void req_table_free(struct req_table *t);
/* A key labelled outside the bound, never evicted. 0 or -ENOMEM. */
int req_table_pin(struct req_table *t, const char *key);
/* One observation: ns under (key, sub). 0 or -ENOMEM (then counted in other when possible). */
int req_table_observe(struct req_table *t, const char *key, uint32_t sub, uint64_t ns);
/* At each scrape: hot candidates take cold labels; scores decay. Returns the evictions. */
unsigned int req_table_rotate(struct req_table *t);

/* Each series: labelled keys' (key, sub), then other's with key NULL. */
typedef void (*req_series_fn)(void *arg, const char *key, uint32_t sub, const struct req_hist *h);
void req_table_foreach(const struct req_table *t, req_series_fn fn, void *arg);

unsigned int req_table_labelled(const struct req_table *t); /* pinned ones excluded */
unsigned int req_table_candidates(const struct req_table *t);
uint64_t req_table_evictions(const struct req_table *t);

#endif
