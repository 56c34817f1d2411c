/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Which request a Python sample was taken in, as names. The kernel keys
 * each sample by the tag (bpf/reqtag.h) of the request its thread was
 * serving; the requests probe (writer) tells this registry what each tag
 * is once it parsed the request's head, and the Python probe (reader)
 * turns the tags of the samples it drains into label ids, small numbers
 * naming a (route, model, method) triple. So neither probe includes the
 * other. Pure: no I/O, unit-tested (tests/unit/test_reqtag.c).
 *
 * Bounds: REQTAG_REQS requests remembered (in flight, or ended less than
 * REQTAG_GRACE_MS ago, since their samples are drained up to a second
 * later), REQTAG_LABELS - 1 distinct triples. A triple no request used for
 * keep_ms (the profile window and some) gives its id to a new one; when
 * none is that old the new request is not tagged (counted in full).
 */
#ifndef ERPSCOPE_REQTAG_H
#define ERPSCOPE_REQTAG_H

#include <stdbool.h>
#include <stdint.h>

#define REQTAG_REQS 16384
#define REQTAG_LABELS 4096
#define REQTAG_GRACE_MS 5000
#define REQTAG_ROUTE_MAX 96
#define REQTAG_NAME_MAX 64

struct reqtag_label {
	char route[REQTAG_ROUTE_MAX];
	char model[REQTAG_NAME_MAX]; /* "" when the request is no RPC */
	char method[REQTAG_NAME_MAX];
};

struct reqtags;

struct reqtags *reqtags_new(uint64_t keep_ms);
void reqtags_free(struct reqtags *rt);

/* Writer: the request tagged tag is (route, model, method). Idempotent. 0 or -ENOSPC. */
int reqtags_begin(struct reqtags *rt, uint64_t tag, const char *route, const char *model,
		  const char *method, uint64_t now_ms);
/* Writer: the request ended; its tag still resolves for REQTAG_GRACE_MS. */
void reqtags_end(struct reqtags *rt, uint64_t tag, uint64_t now_ms);
/*
 * The writer's hook that makes it read what the kernel sent it so far
 * (NULL: no writer, the requests probe is off).
 */
void reqtags_set_writer(struct reqtags *rt, void (*sync)(void *), void *arg);
bool reqtags_has_writer(const struct reqtags *rt);

/* Whether a reader is there: without one the writer's calls do nothing. */
void reqtags_set_reader(struct reqtags *rt, bool on);
/* For the writer: skip naming its requests (and reading the clock) when false. */
bool reqtags_has_reader(const struct reqtags *rt);
/* Reader: lets the writer catch up, then forgets requests past their grace. */
void reqtags_sync(struct reqtags *rt, uint64_t now_ms);
/* Reader: label id of a tag, 0 when unknown (or tag 0). */
uint16_t reqtags_resolve(struct reqtags *rt, uint64_t tag, uint64_t now_ms);
/* The triple of a label id, NULL when the id is free. */
const struct reqtag_label *reqtags_label(const struct reqtags *rt, uint16_t id);

/* Requests not tagged because the tables were full. */
uint64_t reqtags_full(const struct reqtags *rt);

#endif
