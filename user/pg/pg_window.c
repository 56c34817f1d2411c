// SPDX-License-Identifier: GPL-2.0
/*
 * A statement's fine bins over the last few minutes, beside the lifetime
 * ones: cumulative counts cannot show this morning's regression once a
 * month of history sits under them. User space keeps, per statement shown
 * in /queries, what each of the last PG_WIN_SLOTS slots added; the kernel's
 * hot path is unchanged.
 */
#include <stdint.h>
#include <string.h>
#include <linux/types.h>

#include "pg/pg.h"

void pg_win_init(struct pg_win *w, const uint64_t *cum, uint64_t now_ms)
{
	memset(w, 0, sizeof(*w));
	memcpy(w->last, cum, sizeof(w->last));
	w->slot_start_ms = now_ms;
}

/* What cum gained since last, per bin. A bin that went down (counts moved to
 * another record) gained nothing; a slot never holds 2^32 calls of a bin. */
static void gained_since(const struct pg_win *w, const uint64_t *cum, uint64_t *out)
{
	for (unsigned int b = 0; b < ES_PG_FINE_BINS; b++)
		out[b] = cum[b] > w->last[b] ? cum[b] - w->last[b] : 0;
}

static void push(struct pg_win *w, const uint64_t *gained)
{
	w->head = (w->head + 1) % PG_WIN_SLOTS;
	for (unsigned int b = 0; b < ES_PG_FINE_BINS; b++)
		w->gained[w->head][b] = gained[b] > UINT32_MAX ? UINT32_MAX : (uint32_t)gained[b];
}

void pg_win_advance(struct pg_win *w, const uint64_t *cum, uint64_t now_ms, uint64_t interval_ms)
{
	static const uint64_t none[ES_PG_FINE_BINS];
	uint64_t g[ES_PG_FINE_BINS], ended;

	if (!interval_ms || now_ms < w->slot_start_ms + interval_ms)
		return;
	ended = (now_ms - w->slot_start_ms) / interval_ms;
	/* Late by several slots: the counts are in the newest, the others empty. */
	for (uint64_t i = 1; i < ended && i < PG_WIN_SLOTS; i++)
		push(w, none);
	gained_since(w, cum, g);
	push(w, g);
	memcpy(w->last, cum, sizeof(w->last));
	w->slot_start_ms += ended * interval_ms;
}

uint64_t pg_win_bins(const struct pg_win *w, const uint64_t *cum, uint64_t span_ms,
		     uint64_t interval_ms, uint64_t *out)
{
	uint64_t closed = interval_ms ? (span_ms + interval_ms - 1) / interval_ms : 0, calls = 0;

	closed = closed ? closed - 1 : 0;
	if (closed > PG_WIN_SLOTS - 1)
		closed = PG_WIN_SLOTS - 1;
	gained_since(w, cum, out);
	for (uint64_t i = 0; i < closed; i++) {
		unsigned int s = (w->head + PG_WIN_SLOTS - (unsigned int)i) % PG_WIN_SLOTS;

		for (unsigned int b = 0; b < ES_PG_FINE_BINS; b++)
			out[b] += w->gained[s][b];
	}
	for (unsigned int b = 0; b < ES_PG_FINE_BINS; b++)
		calls += out[b];
	return calls;
}
