// SPDX-License-Identifier: GPL-2.0
/*
 * The "memhistory" poller. A worker's ring lives in live[] at its slot's
 * index while procs tracks it; once it is gone the ring moves to retired[]
 * for MH_KEEP_GONE_MS, then is freed. Samples are 8 bytes (tenths of a
 * second since the poller started, KiB), so 512 workers with a full 10 minutes take
 * about 0.5 MiB.
 */
#include "procs/memhistory.h"
#include "core/readfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../bpf/procs.h"
#include "core/clock.h"
#include "core/erpscope.h"
#include "core/expo.h"
#include "core/poller.h"
#include "procs/proctable.h"
#include "procs/title.h"

struct mh_ring {
	__u32 pid;
	__u64 starttime; /* tells a reused pid apart */
	enum es_role role;
	char worker[16];
	bool seen; /* by the current tick */
	uint64_t gone_ms; /* retired at */
	unsigned int head, n;
	struct {
		uint32_t t_ds; /* 0.1 s since epoch_ms: 13 years */
		uint32_t rss_kib;
	} s[MH_SAMPLES];
};

/* 512 workers in well under 1 MiB, retired rings included. */
_Static_assert(sizeof(struct mh_ring) <= 1024, "a worker's ring grew past 1 KiB");

struct memhistory {
	struct erpscope *es;
	struct mh_ring **live; /* [nlive]: index = slot - ES_SLOT_FIRST_WORKER */
	unsigned int nlive;
	struct mh_ring *retired[MH_RETIRED_MAX];
	uint64_t epoch_ms;
	uint64_t now_ms; /* of the tick in progress */
	long page_size;
};

static int mh_init(struct poller *pl)
{
	struct memhistory *mh = calloc(1, sizeof(*mh));

	if (!mh)
		return -ENOMEM;
	mh->es = pl->es;
	mh->nlive = procs_nslots(pl->es->procs) - ES_SLOT_FIRST_WORKER;
	mh->live = calloc(mh->nlive, sizeof(*mh->live));
	if (!mh->live) {
		free(mh);
		return -ENOMEM;
	}
	mh->epoch_ms = clock_ms();
	mh->page_size = sysconf(_SC_PAGESIZE);
	if (mh->page_size <= 0)
		mh->page_size = 4096;
	pl->priv = mh;
	return 0;
}

static void mh_free(struct poller *pl)
{
	struct memhistory *mh = pl->priv;

	if (!mh)
		return;
	for (unsigned int i = 0; i < mh->nlive; i++)
		free(mh->live[i]);
	for (unsigned int i = 0; i < MH_RETIRED_MAX; i++)
		free(mh->retired[i]);
	free(mh->live);
	free(mh);
	pl->priv = NULL;
}

/* Moves a gone worker's ring to retired[], pushing out the oldest there. */
static void retire(struct memhistory *mh, struct mh_ring *r)
{
	unsigned int victim = 0;

	r->gone_ms = mh->now_ms;
	for (unsigned int i = 0; i < MH_RETIRED_MAX; i++) {
		if (!mh->retired[i]) {
			victim = i;
			break;
		}
		if (mh->retired[i]->gone_ms < mh->retired[victim]->gone_ms)
			victim = i;
	}
	free(mh->retired[victim]);
	mh->retired[victim] = r;
}

/* Resident set of pid in bytes: statm's second field, in pages. */
static int read_rss(struct memhistory *mh, __u32 pid, uint64_t *out)
{
	char path[64], buf[256];
	unsigned long long size, resident;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%u/statm", pid);
	n = read_small_file(path, buf, sizeof(buf));
	if (n <= 0)
		return n ? (int)n : -ENODATA;
	if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
		return -EINVAL;
	*out = (uint64_t)resident * (uint64_t)mh->page_size;
	return 0;
}

static void push(struct memhistory *mh, struct mh_ring *r, uint64_t rss)
{
	unsigned int i = (r->head + r->n) % MH_SAMPLES;
	uint64_t kib = rss >> 10;

	if (r->n == MH_SAMPLES)
		r->head = (r->head + 1) % MH_SAMPLES;
	else
		r->n++;
	r->s[i].t_ds = (uint32_t)((mh->now_ms - mh->epoch_ms) / 100);
	r->s[i].rss_kib = kib > UINT32_MAX ? UINT32_MAX : (uint32_t)kib;
}

static void sample(void *arg, const struct slot_view *sv)
{
	struct memhistory *mh = arg;
	const struct worker *w = sv->w;
	unsigned int i;
	struct mh_ring *r;
	uint64_t rss;

	if (!w || w->exited || sv->slot < ES_SLOT_FIRST_WORKER)
		return;
	i = sv->slot - ES_SLOT_FIRST_WORKER;
	if (i >= mh->nlive)
		return;
	r = mh->live[i];
	if (r && (r->pid != w->pid || r->starttime != w->starttime)) {
		retire(mh, r); /* the slot went to another worker between ticks */
		r = mh->live[i] = NULL;
	}
	if (read_rss(mh, w->pid, &rss))
		return; /* gone since procs last looked: retired below */
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return;
		r->pid = w->pid;
		r->starttime = w->starttime;
		mh->live[i] = r;
	}
	r->role = sv->role;
	snprintf(r->worker, sizeof(r->worker), "%s", sv->worker);
	r->seen = true;
	push(mh, r, rss);
}

static void mh_tick(struct poller *pl, uint64_t now_ms)
{
	struct memhistory *mh = pl->priv;

	mh->now_ms = now_ms;
	for (unsigned int i = 0; i < mh->nlive; i++) {
		if (mh->live[i])
			mh->live[i]->seen = false;
	}
	procs_for_each_slot(mh->es->procs, sample, mh);
	for (unsigned int i = 0; i < mh->nlive; i++) {
		if (mh->live[i] && !mh->live[i]->seen) {
			retire(mh, mh->live[i]);
			mh->live[i] = NULL;
		}
	}
	for (unsigned int i = 0; i < MH_RETIRED_MAX; i++) {
		if (mh->retired[i] && now_ms - mh->retired[i]->gone_ms > MH_KEEP_GONE_MS) {
			free(mh->retired[i]);
			mh->retired[i] = NULL;
		}
	}
}

static void mh_collect(struct poller *pl, struct expo *e)
{
	struct memhistory *mh = pl->priv;
	struct expo_label l[2];

	expo_family(
		e, "erpscope_worker_resident_memory_bytes", EXPO_GAUGE,
		"Resident set size of each tracked worker at the last memory sample (every 5 s).");
	for (unsigned int i = 0; i < mh->nlive; i++) {
		const struct mh_ring *r = mh->live[i];
		struct slot_view sv;

		if (!r || !r->n)
			continue;
		/*
		 * Only while the worker's other series are (procs drops an exited
		 * one after the next scrape), not until this poller's next tick.
		 */
		if (procs_slot_view(mh->es->procs, i + ES_SLOT_FIRST_WORKER, &sv) || !sv.w ||
		    sv.w->pid != r->pid || sv.w->starttime != r->starttime)
			continue;
		l[0] = (struct expo_label){ "role", role_name(r->role) };
		l[1] = (struct expo_label){ "worker", r->worker };
		expo_sample_u64(e, l, 2,
				(uint64_t)r->s[(r->head + r->n - 1) % MH_SAMPLES].rss_kib << 10);
	}
}

const struct poller_ops memhistory_poller_ops = {
	.name = "memhistory",
	.interval_ms = MH_INTERVAL_MS,
	.init = mh_init,
	.tick = mh_tick,
	.collect = mh_collect,
	.free = mh_free,
};

static const struct mh_ring *find(const struct memhistory *mh, __u32 pid)
{
	const struct mh_ring *best = NULL;

	for (unsigned int i = 0; i < mh->nlive; i++) {
		if (mh->live[i] && mh->live[i]->pid == pid)
			return mh->live[i];
	}
	/* The most recently retired one, should the pid have been reused. */
	for (unsigned int i = 0; i < MH_RETIRED_MAX; i++) {
		const struct mh_ring *r = mh->retired[i];

		if (r && r->pid == pid && (!best || r->gone_ms > best->gone_ms))
			best = r;
	}
	return best;
}

/* Defined at the end of this file; the daemon's poller table lists it. */
extern const struct poller_ops memhistory_poller_ops;

unsigned int memhistory_get(struct erpscope *es, __u32 pid, struct mh_sample *out, unsigned int max)
{
	const struct memhistory *mh = NULL;
	const struct mh_ring *r;
	unsigned int n = 0;

	for (int i = 0; i < es->npollers; i++) {
		if (es->pollers[i].ops == &memhistory_poller_ops && es->pollers[i].up)
			mh = es->pollers[i].priv;
	}
	if (!mh || !(r = find(mh, pid)))
		return 0;
	/* The newest ones when out is short. */
	for (unsigned int k = r->n > max ? r->n - max : 0; k < r->n; k++) {
		unsigned int i = (r->head + k) % MH_SAMPLES;

		out[n].mono_ms = mh->epoch_ms + (uint64_t)r->s[i].t_ds * 100;
		out[n].rss_bytes = (uint64_t)r->s[i].rss_kib << 10;
		n++;
	}
	return n;
}

static void human_bytes(uint64_t b, char *buf, size_t size)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	unsigned int u = 0;

	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static void human_span(uint64_t ms, char *buf, size_t size)
{
	if (ms < 10 * 1000)
		snprintf(buf, size, "%.1f seconds", (double)ms / 1000.0);
	else if (ms < 60 * 1000)
		snprintf(buf, size, "%llu seconds", (unsigned long long)(ms / 1000));
	else if (ms < 10 * 60 * 1000)
		snprintf(buf, size, "%.1f minutes", (double)ms / 60000.0);
	else
		snprintf(buf, size, "%.0f minutes", (double)ms / 60000.0);
}

void memhistory_summary(const struct mh_sample *s, unsigned int n, uint64_t rss_now,
			uint64_t now_ms, char *buf, size_t size)
{
	char from[32], to[32], span[32];

	if (!n) {
		snprintf(buf, size,
			 "no memory history: not sampled before (every %u s while tracked)",
			 MH_INTERVAL_MS / 1000);
		return;
	}
	human_bytes(s[0].rss_bytes, from, sizeof(from));
	human_bytes(rss_now, to, sizeof(to));
	human_span(now_ms > s[0].mono_ms ? now_ms - s[0].mono_ms : 0, span, sizeof(span));
	if (rss_now > s[0].rss_bytes)
		snprintf(buf, size, "rss rose from %s to %s over %s", from, to, span);
	else if (rss_now < s[0].rss_bytes)
		snprintf(buf, size, "rss fell from %s to %s over %s", from, to, span);
	else
		snprintf(buf, size, "rss stayed at %s over %s", to, span);
}
