/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The slowest requests of the last window (--python.profile-window), for
 * GET /requests: per role, the window is cut in REQ_SLOW_SLICES slices and
 * each keeps its k slowest requests; a query merges the slices, keeps the
 * requests that ended inside the window and returns the k slowest. Bounded
 * (nroles * (REQ_SLOW_SLICES + 1) * k entries), pure: unit-tested.
 */
#ifndef ERPSCOPE_REQ_SLOW_H
#define ERPSCOPE_REQ_SLOW_H

#include <stdint.h>
#include <linux/types.h>

#include "requests/req_parse.h"

#define REQ_SLOW_K 20
#define REQ_SLOW_SLICES 5

struct req_slow_entry {
	uint64_t end_ns; /* CLOCK_MONOTONIC */
	uint64_t ns; /* how long it took */
	__u32 pid;
	unsigned int code; /* the HTTP status, or REQ_CODE_KILLED, ... (requests.h) */
	enum req_method method;
	char route[REQ_ROUTE_MAX];
	char model[REQ_NAME_MAX]; /* "" when no RPC */
	char rpc_method[REQ_NAME_MAX];
};

struct req_slow;

struct req_slow *req_slow_new(unsigned int nroles, unsigned int k, uint64_t window_ns);
void req_slow_free(struct req_slow *s);
/*
 * The entry a request of role that ended at end_ns after ns takes among the
 * slowest (ends come roughly in order), for the caller to fill at once;
 * NULL when it is not one of them (most requests: nothing to build for those).
 */
struct req_slow_entry *req_slow_place(struct req_slow *s, unsigned int role, uint64_t end_ns,
				      uint64_t ns);
/* The slowest (at most max) of role that ended in (now - window, now], slowest first. */
unsigned int req_slow_get(const struct req_slow *s, unsigned int role, uint64_t now_ns,
			  struct req_slow_entry *out, unsigned int max);

#endif
