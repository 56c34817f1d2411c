// SPDX-License-Identifier: GPL-2.0
/* What each worker is doing now, for other capabilities' events (core/worker_note.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/strcopy.h"
#include "core/worker_note.h"

#define NBUCKETS 1024

struct slot {
	struct worker_note n;
	int next; /* in its bucket's chain, or the free list; -1 ends */
};

struct worker_notes {
	unsigned int cap, used, dead;
	/*
	 * Slots let go, then those never used from fresh on: the table is
	 * calloc'd whole but only the slots ever used are touched, so its
	 * pages count in the RSS as the notes do (8192 slots are 2.6 MiB).
	 */
	int free;
	unsigned int fresh;
	int buckets[NBUCKETS];
	struct slot s[];
};

static unsigned int bucket(__u32 pid)
{
	return (pid * 2654435761u) % NBUCKETS;
}

struct worker_notes *worker_notes_new(unsigned int cap)
{
	struct worker_notes *wn;

	if (!cap)
		return NULL;
	wn = calloc(1, sizeof(*wn) + cap * sizeof(wn->s[0]));
	if (!wn)
		return NULL;
	wn->cap = cap;
	for (unsigned int b = 0; b < NBUCKETS; b++)
		wn->buckets[b] = -1;
	wn->free = -1;
	return wn;
}

void worker_notes_free(struct worker_notes *wn)
{
	free(wn);
}

/* The link that points at pid's note for owner (or the chain's end). */
static int *link_of(struct worker_notes *wn, __u32 pid, uint64_t owner)
{
	int *l = &wn->buckets[bucket(pid)];

	while (*l >= 0 && (wn->s[*l].n.pid != pid || wn->s[*l].n.owner != owner))
		l = &wn->s[*l].next;
	return l;
}

static void unlink_at(struct worker_notes *wn, int *l)
{
	int i = *l;

	*l = wn->s[i].next;
	if (wn->s[i].n.died_ms)
		wn->dead--;
	memset(&wn->s[i].n, 0, sizeof(wn->s[i].n));
	wn->s[i].next = wn->free;
	wn->free = i;
	wn->used--;
}

int worker_note_set(struct worker_notes *wn, __u32 pid, uint64_t owner, uint64_t since_ns,
		    const char *route, const char *model, const char *method)
{
	int *l, i;
	struct worker_note *n;

	if (!wn)
		return 0;
	l = link_of(wn, pid, owner);
	i = *l;
	if (i < 0) {
		if (wn->free >= 0) {
			i = wn->free;
			wn->free = wn->s[i].next;
		} else if (wn->fresh < wn->cap) {
			i = (int)wn->fresh++;
		} else {
			return -ENOSPC;
		}
		wn->s[i].next = wn->buckets[bucket(pid)];
		wn->buckets[bucket(pid)] = i;
		wn->used++;
	} else if (wn->s[i].n.died_ms) {
		wn->dead--;
	}
	n = &wn->s[i].n;
	n->pid = pid;
	n->owner = owner;
	n->since_ns = since_ns;
	n->died_ms = 0;
	str_copy(n->route, sizeof(n->route), route ? route : "");
	str_copy(n->model, sizeof(n->model), model ? model : "");
	str_copy(n->method, sizeof(n->method), method ? method : "");
	return 0;
}

void worker_note_clear(struct worker_notes *wn, __u32 pid, uint64_t owner)
{
	int *l;

	if (!wn)
		return;
	l = link_of(wn, pid, owner);
	if (*l >= 0)
		unlink_at(wn, l);
}

void worker_note_died(struct worker_notes *wn, __u32 pid, uint64_t owner, uint64_t now_ms)
{
	int *l;

	if (!wn)
		return;
	l = link_of(wn, pid, owner);
	if (*l < 0 || wn->s[*l].n.died_ms)
		return;
	wn->s[*l].n.died_ms = now_ms ? now_ms : 1;
	wn->dead++;
}

void worker_notes_expire(struct worker_notes *wn, uint64_t now_ms)
{
	if (!wn || !wn->dead)
		return;
	for (unsigned int b = 0; b < NBUCKETS; b++) {
		int *l = &wn->buckets[b];

		while (*l >= 0) {
			const struct worker_note *n = &wn->s[*l].n;

			if (n->died_ms && now_ms >= n->died_ms + WORKER_NOTE_LINGER_MS)
				unlink_at(wn, l);
			else
				l = &wn->s[*l].next;
		}
	}
}

unsigned int worker_note_get(const struct worker_notes *wn, __u32 pid, struct worker_note *out)
{
	const struct worker_note *live = NULL, *dead = NULL;
	unsigned int count = 0;

	if (!wn)
		return 0;
	for (int i = wn->buckets[bucket(pid)]; i >= 0; i = wn->s[i].next) {
		const struct worker_note *n = &wn->s[i].n;

		if (n->pid != pid)
			continue;
		count++;
		if (!n->died_ms && (!live || n->since_ns < live->since_ns))
			live = n;
		if (n->died_ms && (!dead || n->since_ns > dead->since_ns))
			dead = n;
	}
	if (live || dead)
		*out = live ? *live : *dead;
	return count;
}

unsigned int worker_notes_count(const struct worker_notes *wn)
{
	return wn ? wn->used : 0;
}

static void field(struct json *j, const char *key, const char *v, bool known)
{
	if (known && v[0])
		json_str(j, key, v);
	else
		json_null(j, key);
}

void worker_note_json(const struct worker_notes *wn, __u32 pid, struct json *j)
{
	struct worker_note n;
	bool known = worker_note_get(wn, pid, &n) > 0;

	field(j, "route", n.route, known);
	field(j, "model", n.model, known);
	field(j, "method", n.method, known);
}
