/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What each worker is doing now, in a few words other capabilities may
 * read without knowing who wrote them: the requests probe notes the route,
 * model and method of each request it sees a worker serve, and the oom
 * probe names them in the worker_exit and oom_kill events of a worker that
 * died serving it. Bounded: at most cap notes; a note of a worker that died
 * is kept WORKER_NOTE_LINGER_MS for the exit events, then dropped.
 * Single-threaded (the daemon's loop), no I/O: unit-tested.
 */
#ifndef ERPSCOPE_WORKER_NOTE_H
#define ERPSCOPE_WORKER_NOTE_H

#include <stdint.h>
#include <linux/types.h>

#define WORKER_NOTES_MAX 8192 /* the requests probe's ES_REQ_MAX_CONNS */
#define WORKER_NOTE_LINGER_MS 30000
#define WORKER_NOTE_FIELD 96

struct json;
struct worker_notes;

struct worker_note {
	__u32 pid;
	uint64_t owner; /* the writer's handle: one note per (pid, owner) */
	uint64_t since_ns; /* CLOCK_MONOTONIC: when the work began */
	uint64_t died_ms; /* 0 while the worker lives; else when it died doing this */
	char route[WORKER_NOTE_FIELD];
	char model[WORKER_NOTE_FIELD]; /* "" when none */
	char method[WORKER_NOTE_FIELD]; /* "" when none */
};

struct worker_notes *worker_notes_new(unsigned int cap);
void worker_notes_free(struct worker_notes *wn);

/* Notes (or updates) what pid is doing for owner. 0, or -ENOSPC when full. */
int worker_note_set(struct worker_notes *wn, __u32 pid, uint64_t owner, uint64_t since_ns,
		    const char *route, const char *model, const char *method);
/* The work ended: its note goes. */
void worker_note_clear(struct worker_notes *wn, __u32 pid, uint64_t owner);
/* The worker died doing it: the note stays WORKER_NOTE_LINGER_MS from now_ms. */
void worker_note_died(struct worker_notes *wn, __u32 pid, uint64_t owner, uint64_t now_ms);
/* Drops the notes of dead workers older than WORKER_NOTE_LINGER_MS. */
void worker_notes_expire(struct worker_notes *wn, uint64_t now_ms);

/*
 * What pid was doing: its oldest note of work in progress, else (it died)
 * its newest note. Returns how many notes pid has; 0 leaves *out untouched.
 */
unsigned int worker_note_get(const struct worker_notes *wn, __u32 pid, struct worker_note *out);
unsigned int worker_notes_count(const struct worker_notes *wn);

/* Event fields "route", "model", "method" (null when unknown) of pid's note. */
void worker_note_json(const struct worker_notes *wn, __u32 pid, struct json *j);

#endif
