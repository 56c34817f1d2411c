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
#include <zlib.h>

#include "diagnose/diagnose.h"

int diag_history_init(struct diag_history *h)
{
	memset(h, 0, sizeof(*h));
	h->fine = calloc(DIAG_FINE_N, sizeof(*h->fine));
	h->coarse = calloc(DIAG_COARSE_N, sizeof(*h->coarse));
	h->unpacked = calloc(2, sizeof(*h->unpacked));
	h->ev = calloc(DIAG_EVENTS, sizeof(*h->ev));
	if (!h->fine || !h->coarse || !h->unpacked || !h->ev) {
		diag_history_free(h);
		return -ENOMEM;
	}
	return 0;
}

void diag_history_free(struct diag_history *h)
{
	free(h->fine);
	for (unsigned int i = 0; h->coarse && i < DIAG_COARSE_N; i++)
		free(h->coarse[i].z);
	free(h->coarse);
	free(h->unpacked);
	free(h->ev);
	free(h->acc);
	memset(h, 0, sizeof(*h));
}

size_t diag_history_bytes(void)
{
	return (DIAG_FINE_N + 2) * sizeof(struct diag_snap) +
	       DIAG_COARSE_N * sizeof(struct diag_packed) + DIAG_EVENTS * sizeof(struct diag_event) +
	       sizeof(struct diag_history);
}

size_t diag_history_packed_bytes(const struct diag_history *h)
{
	size_t n = 0;

	for (unsigned int i = 0; i < DIAG_COARSE_N; i++)
		n += h->coarse[i].len;
	return n;
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

/* s deflated into a new buffer: 0, or -ENOMEM (or -EIO from zlib). */
static int pack(const struct diag_snap *s, struct diag_packed *p)
{
	uLongf len = compressBound(sizeof(*s));
	unsigned char *z = malloc(len), *fit;

	if (!z)
		return -ENOMEM;
	if (compress2(z, &len, (const Bytef *)s, sizeof(*s), Z_BEST_SPEED) != Z_OK) {
		free(z);
		return -EIO;
	}
	fit = realloc(z, len);
	p->z = fit ? fit : z;
	p->len = (uint32_t)len;
	p->t = s->t;
	return 0;
}

/* p inflated into out; a buffer that does not inflate to a whole snapshot reads empty but for t. */
static void unpack(const struct diag_packed *p, struct diag_snap *out)
{
	uLongf len = sizeof(*out);

	if (!p->z || uncompress((Bytef *)out, &len, p->z, p->len) != Z_OK || len != sizeof(*out)) {
		memset(out, 0, sizeof(*out));
		out->t = p->t;
	}
}

static const struct diag_packed *coarse_at(const struct diag_history *h, unsigned int i)
{
	return &h->coarse[(h->coarse_head + i) % DIAG_COARSE_N];
}

static void coarse_put(struct diag_history *h, const struct diag_snap *s)
{
	struct diag_packed p, *slot;

	if (pack(s, &p))
		return; /* one point fewer in the day's history */
	if (h->coarse_n == DIAG_COARSE_N) {
		slot = &h->coarse[h->coarse_head];
		h->coarse_head = (h->coarse_head + 1) % DIAG_COARSE_N;
		h->coarse_wrapped = true;
	} else {
		slot = &h->coarse[(h->coarse_head + h->coarse_n) % DIAG_COARSE_N];
		h->coarse_n++;
	}
	free(slot->z);
	*slot = p;
}

void diag_history_snap(struct diag_history *h, const struct diag_snap *s)
{
	ring_put(h->fine, DIAG_FINE_N, &h->fine_head, &h->fine_n, s);
	h->last_fine = s->t;
	if (!h->coarse_n || s->t >= h->last_coarse + DIAG_COARSE_S - 0.5) {
		coarse_put(h, s);
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

/* The same over the coarse ring, inflated into h's two unpacked snapshots. */
static void coarse_window(const struct diag_history *h, double from, double to,
			  const struct diag_snap **start, const struct diag_snap **end)
{
	const struct diag_packed *a = NULL, *b = NULL;

	for (unsigned int i = 0; i < h->coarse_n; i++) {
		const struct diag_packed *p = coarse_at(h, i);

		if (!a && p->t >= from && p->t <= to)
			a = p;
		if (p->t <= to)
			b = p;
	}
	*start = *end = NULL;
	if (a) {
		unpack(a, &h->unpacked[0]);
		*start = &h->unpacked[0];
	}
	if (b) {
		unpack(b, &h->unpacked[1]);
		*end = &h->unpacked[1];
	}
}

void diag_history_window(const struct diag_history *h, double from, double to,
			 const struct diag_snap **start, const struct diag_snap **end)
{
	const struct diag_snap *oldest_fine = h->fine_n ? ring_at(h->fine, DIAG_FINE_N, h->fine_head, 0) : NULL;

	/* Fine when it reaches back to from (or holds everything: the daemon is young). */
	if (oldest_fine && (oldest_fine->t <= from || !h->coarse_n ||
			    coarse_at(h, 0)->t >= oldest_fine->t)) {
		ring_window(h->fine, DIAG_FINE_N, h->fine_head, h->fine_n, from, to, start, end);
		if (*start && *end)
			return;
	}
	coarse_window(h, from, to, start, end);
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

	struct diag_snap *s = NULL;

	for (unsigned int i = 0; i < h->coarse_n; i++) {
		const struct diag_packed *p = coarse_at(h, i);

		if ((h->fine_n && p->t >= fine0) || p->t > to)
			break;
		if (!s && !(s = malloc(sizeof(*s))))
			break; /* the day without its coarse points */
		unpack(p, s);
		fn(arg, s);
	}
	free(s);
	for (unsigned int i = 0; i < h->fine_n; i++) {
		const struct diag_snap *s = ring_at(h->fine, DIAG_FINE_N, h->fine_head, i);

		if (s->t > to)
			break;
		fn(arg, s);
	}
}

bool diag_history_from_start(const struct diag_history *h)
{
	return h->coarse_n && !h->coarse_wrapped;
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
