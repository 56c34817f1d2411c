/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The "memhistory" poller: every MH_INTERVAL_MS it reads the resident size
 * of each tracked worker from /proc/<pid>/statm and keeps the last
 * MH_SAMPLES of them, so an OOM kill can say how the victim's memory grew.
 * Rings are allocated when a worker is first sampled and freed a while
 * after it is gone (the OOM event is read after the victim died).
 */
#ifndef ERPSCOPE_MEMHISTORY_H
#define ERPSCOPE_MEMHISTORY_H

#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

struct erpscope;

#define MH_INTERVAL_MS 5000
#define MH_SAMPLES 120 /* 10 minutes */
#define MH_KEEP_GONE_MS (60 * 1000) /* rings of gone workers, for late readers */
#define MH_RETIRED_MAX 64 /* at most this many of them */

struct mh_sample {
	uint64_t mono_ms; /* CLOCK_MONOTONIC, ms */
	uint64_t rss_bytes;
};

/*
 * Copies pid's samples, oldest first, into out (at most max). Returns how
 * many: 0 when pid was never sampled or the poller is not running.
 */
unsigned int memhistory_get(struct erpscope *es, __u32 pid, struct mh_sample *out,
			    unsigned int max);

/*
 * One sentence on how RSS went from the first sample to rss_now at now_ms:
 * "rss rose from 4.0 GiB to 7.8 GiB over 17 minutes". n may be 0.
 */
void memhistory_summary(const struct mh_sample *s, unsigned int n, uint64_t rss_now,
			uint64_t now_ms, char *buf, size_t size);

#endif
