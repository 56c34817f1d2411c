// SPDX-License-Identifier: GPL-2.0
/*
 * The history behind /diagnose?at=: two rings of snapshots of cumulative
 * counters (fine: every 5 s for 15 minutes; coarse: every minute for 24
 * hours) and a ring of the events the rules need, alike ones within a
 * minute merged. Allocated once, at start; the clock is the caller's (Unix
 * seconds passed in), so tests can move it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "diagnose/diagnose.h"

int diag_history_init(struct diag_history *h)
{
	memset(h, 0, sizeof(*h));
	h->fine = calloc(DIAG_FINE_N, sizeof(*h->fine));
	h->coarse = calloc(DIAG_COARSE_N, sizeof(*h->coarse));
	h->ev = calloc(DIAG_EVENTS, sizeof(*h->ev));
	if (!h->fine || !h->coarse || !h->ev) {
		diag_history_free(h);
		return -ENOMEM;
	}
	return 0;
}

void diag_history_free(struct diag_history *h)
{
	free(h->fine);
	free(h->coarse);
	free(h->ev);
	free(h->acc);
	memset(h, 0, sizeof(*h));
}

size_t diag_history_bytes(void)
{
	return (DIAG_FINE_N + DIAG_COARSE_N) * sizeof(struct diag_snap) +
	       DIAG_EVENTS * sizeof(struct diag_event) + sizeof(struct diag_history);
}

static void ring_put(struct diag_snap *ring, unsigned int cap, unsigned int *head,
		     unsigned int *n, const struct diag_snap *s)
{
	if (*n == cap) {
		ring[*head] = *s;
		*head = (*head + 1) % cap;
	} else {
		ring[(*head + *n) % cap] = *s;
		(*n)++;
	}
}

static const struct diag_snap *ring_at(const struct diag_snap *ring, unsigned int cap,
				       unsigned int head, unsigned int i)
{
	return &ring[(head + i) % cap];
}

void diag_history_snap(struct diag_history *h, const struct diag_snap *s)
{
	ring_put(h->fine, DIAG_FINE_N, &h->fine_head, &h->fine_n, s);
	h->last_fine = s->t;
	if (!h->coarse_n || s->t >= h->last_coarse + DIAG_COARSE_S - 0.5) {
		ring_put(h->coarse, DIAG_COARSE_N, &h->coarse_head, &h->coarse_n, s);
		h->last_coarse = s->t;
	}
}

static bool alike(const struct diag_event *a, const struct diag_event *b)
{
	if (a->type != b->type || (a->type != DIAG_EV_CONNECT && a->type != DIAG_EV_LOCK))
		return false;
	/* One record per minute at most, so a window counts about what it holds. */
	return b->t - a->t < 60 && b->t >= a->t && !strcmp(a->role, b->role) &&
	       !strcmp(a->worker, b->worker) && !strcmp(a->remote, b->remote) &&
	       !strcmp(a->reason, b->reason) && !strcmp(a->fp, b->fp);
}

void diag_history_event(struct diag_history *h, const struct diag_event *ev, double now)
{
	/* Past 24 h, the oldest go first. */
	while (h->ev_n && h->ev[h->ev_head].t_last < now - DIAG_KEEP_S) {
		h->ev_head = (h->ev_head + 1) % DIAG_EVENTS;
		h->ev_n--;
	}
	for (unsigned int i = 0; i < h->ev_n && i < 16; i++) {
		struct diag_event *e = &h->ev[(h->ev_head + h->ev_n - 1 - i) % DIAG_EVENTS];

		if (alike(e, ev)) {
			e->count += ev->count;
			e->seconds += ev->seconds;
			if (ev->t_last > e->t_last)
				e->t_last = ev->t_last;
			return;
		}
	}
	if (h->ev_n == DIAG_EVENTS) {
		h->ev_head = (h->ev_head + 1) % DIAG_EVENTS;
		h->ev_n--;
		h->ev_dropped++;
	}
	h->ev[(h->ev_head + h->ev_n) % DIAG_EVENTS] = *ev;
	h->ev_n++;
}

/* The first snapshot at or after from, and the last at or before to, in one ring. */
static void ring_window(const struct diag_snap *ring, unsigned int cap, unsigned int head,
			unsigned int n, double from, double to, const struct diag_snap **start,
			const struct diag_snap **end)
{
	*start = *end = NULL;
	for (unsigned int i = 0; i < n; i++) {
		const struct diag_snap *s = ring_at(ring, cap, head, i);

		if (!*start && s->t >= from && s->t <= to)
			*start = s;
		if (s->t <= to)
			*end = s;
	}
}

void diag_history_window(const struct diag_history *h, double from, double to,
			 const struct diag_snap **start, const struct diag_snap **end)
{
	const struct diag_snap *oldest_fine = h->fine_n ? ring_at(h->fine, DIAG_FINE_N, h->fine_head, 0) : NULL;

	/* Fine when it reaches back to from (or holds everything: the daemon is young). */
	if (oldest_fine && (oldest_fine->t <= from || !h->coarse_n ||
			    ring_at(h->coarse, DIAG_COARSE_N, h->coarse_head, 0)->t >= oldest_fine->t)) {
		ring_window(h->fine, DIAG_FINE_N, h->fine_head, h->fine_n, from, to, start, end);
		if (*start && *end)
			return;
	}
	ring_window(h->coarse, DIAG_COARSE_N, h->coarse_head, h->coarse_n, from, to, start, end);
}

void diag_history_cron(struct diag_history *h, const struct diag_cron *c, double now)
{
	unsigned int at = h->ncrons;

	for (unsigned int i = 0; i < h->ncrons; i++) {
		struct diag_cron *e = &h->crons[i];

		if (e->pid == c->pid && !strcmp(e->name, c->name) && now - e->last <= 30) {
			double first = e->first;

			*e = *c;
			e->first = first;
			e->last = now;
			return;
		}
	}
	if (at == DIAG_CRONS) {
		at = 0;
		for (unsigned int i = 1; i < DIAG_CRONS; i++)
			if (h->crons[i].last < h->crons[at].last)
				at = i;
	} else {
		h->ncrons++;
	}
	h->crons[at] = *c;
	h->crons[at].first = h->crons[at].last = now;
}

void diag_history_foreach(const struct diag_history *h, double to, diag_snap_fn fn, void *arg)
{
	double fine0 = h->fine_n ? ring_at(h->fine, DIAG_FINE_N, h->fine_head, 0)->t : 0;

	for (unsigned int i = 0; i < h->coarse_n; i++) {
		const struct diag_snap *s = ring_at(h->coarse, DIAG_COARSE_N, h->coarse_head, i);

		if ((h->fine_n && s->t >= fine0) || s->t > to)
			break;
		fn(arg, s);
	}
	for (unsigned int i = 0; i < h->fine_n; i++) {
		const struct diag_snap *s = ring_at(h->fine, DIAG_FINE_N, h->fine_head, i);

		if (s->t > to)
			break;
		fn(arg, s);
	}
}

const struct diag_snap *diag_history_last(const struct diag_history *h)
{
	return h->fine_n ? ring_at(h->fine, DIAG_FINE_N, h->fine_head, h->fine_n - 1) : NULL;
}

void diag_history_events(const struct diag_history *h, double from, double to, diag_event_fn fn,
			 void *arg)
{
	for (unsigned int i = 0; i < h->ev_n; i++) {
		const struct diag_event *e = &h->ev[(h->ev_head + i) % DIAG_EVENTS];

		if (e->t_last >= from && e->t <= to)
			fn(arg, e);
	}
}
