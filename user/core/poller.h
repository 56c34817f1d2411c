/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Pollers: work that reads /proc, statvfs, PSI and the like on the main
 * loop's timer, never on the scrape path. A poller keeps what it read in its
 * own state; collect() only formats it. user/core/pollers.c lists them.
 */
#ifndef ERPSCOPE_POLLER_H
#define ERPSCOPE_POLLER_H

#include <stdbool.h>
#include <stdint.h>

struct erpscope;
struct expo;

struct poller {
	const struct poller_ops *ops;
	struct erpscope *es;
	bool up;
	uint64_t next_ms; /* when tick() is due */
	unsigned int interval_ms; /* set by init() from a flag; 0: ops->interval_ms */
	void *priv;
};

struct poller_ops {
	const char *name;
	/* How often tick() runs. */
	unsigned int interval_ms;
	/* Allocates priv; a failure leaves the poller down with a log line (and
	 * fails --strict), except -ENODEV: its probe is off, so is the poller. */
	int (*init)(struct poller *pl);
	/* Reads its sources. now_ms is CLOCK_MONOTONIC in ms. */
	void (*tick)(struct poller *pl, uint64_t now_ms);
	/* Formats what the last tick read. Runs on every scrape: no I/O. */
	void (*collect)(struct poller *pl, struct expo *e);
	void (*free)(struct poller *pl);
};

#endif
