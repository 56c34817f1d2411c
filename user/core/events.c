// SPDX-License-Identifier: GPL-2.0
/*
 * The event log: a ring of the last EVENTS_MAX events, bounded in bytes
 * too, and the GET /events handler that filters it.
 */
#include "core/events.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/erpscope.h"
#include "core/expo.h"
#include "core/http.h"
#include "core/json.h"

#define JSON_CT "application/json"

struct event {
	uint64_t id;
	struct timespec ts; /* CLOCK_REALTIME when added */
	char type[EVENTS_TYPE_MAX];
	char *body;
	size_t len;
};

struct events {
	struct event *ring; /* [cap]; the oldest at head */
	unsigned int cap, head, n;
	size_t bytes, max_bytes;
	uint64_t next_id, dropped;
};

struct events *events_new(unsigned int cap, size_t max_bytes)
{
	struct events *ev;

	if (!cap)
		return NULL;
	ev = calloc(1, sizeof(*ev));
	if (!ev)
		return NULL;
	ev->ring = calloc(cap, sizeof(*ev->ring));
	if (!ev->ring) {
		free(ev);
		return NULL;
	}
	ev->cap = cap;
	ev->max_bytes = max_bytes;
	ev->next_id = 1;
	return ev;
}

void events_free(struct events *ev)
{
	if (!ev)
		return;
	for (unsigned int i = 0; i < ev->n; i++)
		free(ev->ring[(ev->head + i) % ev->cap].body);
	free(ev->ring);
	free(ev);
}

static bool valid_type(const char *t)
{
	size_t n = 0;

	for (; t[n]; n++) {
		if (n + 1 >= EVENTS_TYPE_MAX)
			return false;
		if (!((t[n] >= 'a' && t[n] <= 'z') || (t[n] >= '0' && t[n] <= '9') || t[n] == '_'))
			return false;
	}
	return n > 0;
}

static void drop_oldest(struct events *ev)
{
	struct event *e = &ev->ring[ev->head];

	ev->bytes -= e->len;
	free(e->body);
	memset(e, 0, sizeof(*e));
	ev->head = (ev->head + 1) % ev->cap;
	ev->n--;
	ev->dropped++;
}

int64_t events_add(struct events *ev, const char *type, const char *body, size_t len)
{
	struct event *e;
	char *copy;

	if (!valid_type(type) || len < 2 || body[0] != '{' || body[len - 1] != '}')
		return -EINVAL;
	if (len > EVENTS_BODY_MAX || len > ev->max_bytes)
		return -E2BIG;
	copy = malloc(len + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, body, len);
	copy[len] = 0;
	while (ev->n == ev->cap || ev->bytes + len > ev->max_bytes)
		drop_oldest(ev);
	e = &ev->ring[(ev->head + ev->n) % ev->cap];
	e->id = ev->next_id++;
	clock_gettime(CLOCK_REALTIME, &e->ts);
	snprintf(e->type, sizeof(e->type), "%s", type);
	e->body = copy;
	e->len = len;
	ev->bytes += len;
	ev->n++;
	return (int64_t)e->id;
}

void events_foreach(const struct events *ev, uint64_t since, events_fn fn, void *arg)
{
	for (unsigned int i = 0; i < ev->n; i++) {
		const struct event *e = &ev->ring[(ev->head + i) % ev->cap];

		if (e->id > since)
			fn(arg, e->id, (double)e->ts.tv_sec + (double)e->ts.tv_nsec / 1e9, e->type,
			   e->body, e->len);
	}
}

uint64_t events_dropped(const struct events *ev)
{
	return ev->dropped;
}

unsigned int events_count(const struct events *ev)
{
	return ev->n;
}

int events_parse_query(struct events_query *q, const char *since, const char *limit,
		       const char *type, char *err, size_t errlen)
{
	uint64_t v;

	memset(q, 0, sizeof(*q));
	q->limit = EVENTS_LIMIT_DEFAULT;
	if (since && http_parse_u64(since, &q->since)) {
		snprintf(err, errlen, "since must be an event id: a non-negative integer");
		return -EINVAL;
	}
	if (limit) {
		if (http_parse_u64(limit, &v) || v < 1 || v > EVENTS_MAX) {
			snprintf(err, errlen, "limit must be an integer from 1 to %u", EVENTS_MAX);
			return -EINVAL;
		}
		q->limit = (unsigned int)v;
	}
	if (type) {
		if (!valid_type(type)) {
			snprintf(err, errlen, "type must be an event type such as oom_kill");
			return -EINVAL;
		}
		snprintf(q->type, sizeof(q->type), "%s", type);
	}
	return 0;
}

static void render_one(const struct event *e, struct json *out)
{
	char date[32], ts[64];
	struct tm tm;

	gmtime_r(&e->ts.tv_sec, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts, sizeof(ts), "%s.%03dZ", date, (int)(e->ts.tv_nsec / 1000000));
	json_object_begin(out, NULL);
	json_u64(out, "id", e->id);
	json_str(out, "time", ts);
	json_double(out, "timestamp",
		    (double)e->ts.tv_sec + (double)(e->ts.tv_nsec / 1000000) / 1e3);
	json_str(out, "type", e->type);
	json_raw(out, "data", e->body, e->len);
	json_object_end(out);
}

void events_render(const struct events *ev, const struct events_query *q, struct json *out)
{
	unsigned int shown = 0;

	json_object_begin(out, NULL);
	json_array_begin(out, "events");
	for (unsigned int i = ev->n; i-- > 0 && shown < q->limit;) {
		const struct event *e = &ev->ring[(ev->head + i) % ev->cap];

		if (e->id <= q->since)
			break; /* ids grow with the index: the rest are older */
		if (q->type[0] && strcmp(q->type, e->type))
			continue;
		render_one(e, out);
		shown++;
	}
	json_array_end(out);
	json_u64(out, "last_id", ev->next_id - 1);
	json_u64(out, "dropped", ev->dropped);
	json_object_end(out);
}

void events_collect(const struct events *ev, struct expo *e)
{
	expo_family(
		e, "erpscope_events_dropped_total", EXPO_COUNTER,
		"Events dropped from the in-memory log behind /events to make room for newer ones.");
	expo_sample_u64(e, NULL, 0, ev->dropped);
}

static int reply_json(struct http_exchange *x, int status, struct json *j)
{
	int err = json_finish(j);

	if (err) {
		json_free(j);
		return err;
	}
	free(x->body);
	x->body = j->buf; /* http.c frees it */
	x->len = j->len;
	x->status = status;
	x->content_type = JSON_CT;
	j->buf = NULL;
	return 0;
}

int events_http(void *arg, struct http_exchange *x)
{
	struct erpscope *es = arg;
	struct events_query q;
	char why[128];
	struct json j;

	json_init(&j);
	if (events_parse_query(&q, http_query(x, "since"), http_query(x, "limit"),
			       http_query(x, "type"), why, sizeof(why))) {
		json_object_begin(&j, NULL);
		json_str(&j, "error", why);
		json_object_end(&j);
		return reply_json(x, 400, &j);
	}
	events_render(es->events, &q, &j);
	return reply_json(x, 200, &j);
}
