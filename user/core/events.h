/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The event log: things that must be seen one by one (an OOM kill, a worker
 * that died, later a failed connect or a slow query), kept in memory in a
 * bounded ring (oldest dropped first, and counted) and served as JSON at
 * GET /events. Each event has a monotonic id, a wall-clock time, a type and
 * a JSON object body.
 */
#ifndef ERPSCOPE_EVENTS_H
#define ERPSCOPE_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct events;
struct expo;
struct http_exchange;
struct json;

#define EVENTS_MAX 1024 /* events kept */
#define EVENTS_MAX_BYTES (4u << 20) /* body bytes kept */
#define EVENTS_BODY_MAX (32u << 10) /* one body */
#define EVENTS_TYPE_MAX 32 /* type names: [a-z0-9_], shorter than this */
#define EVENTS_LIMIT_DEFAULT 100

struct events *events_new(unsigned int cap, size_t max_bytes);
void events_free(struct events *ev);

/*
 * Appends an event of type (a [a-z0-9_] name) with body, the text of one
 * JSON object (e.g. from user/core/json.h). The oldest events make room. Returns
 * the new event's id (ids start at 1 and only grow), or -errno: -EINVAL for
 * a bad type or a body that is not an object, -E2BIG for a body over
 * EVENTS_BODY_MAX.
 */
int64_t events_add(struct events *ev, const char *type, const char *body, size_t len);

/*
 * Calls fn for each event kept with an id above since, oldest first: its
 * id, wall-clock time (Unix seconds), type and body (NUL-terminated).
 */
typedef void (*events_fn)(void *arg, uint64_t id, double unix_s, const char *type,
			  const char *body, size_t len);
void events_foreach(const struct events *ev, uint64_t since, events_fn fn, void *arg);

/* Events dropped to make room so far. */
uint64_t events_dropped(const struct events *ev);
unsigned int events_count(const struct events *ev);

struct events_query {
	uint64_t since; /* only ids above this */
	unsigned int limit; /* at most this many, newest first */
	char type[EVENTS_TYPE_MAX]; /* "" for every type */
};

/*
 * Fills q from the raw query values (NULL when absent). Returns 0, or
 * -EINVAL with a message for the client in err.
 */
int events_parse_query(struct events_query *q, const char *since, const char *limit,
		       const char *type, char *err, size_t errlen);

/* Writes {"events":[...],"last_id":N,"dropped":N}, newest first. */
void events_render(const struct events *ev, const struct events_query *q, struct json *out);

/* erpscope_events_dropped_total. */
void events_collect(const struct events *ev, struct expo *e);

/* GET /events; arg is the daemon (struct erpscope). */
int events_http(void *arg, struct http_exchange *x);

#endif
