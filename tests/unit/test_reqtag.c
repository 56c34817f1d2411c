// SPDX-License-Identifier: GPL-2.0
/* The request tag registry: names by tag, grace after the end, bounds, reuse. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/types.h>

#include "check.h"
#include "../../bpf/reqtag.h"
#include "core/reqtag.h"

static int syncs;

static void count_sync(void *arg)
{
	(void)arg;
	syncs++;
}

static void names(void)
{
	struct reqtags *rt = reqtags_new(60000);
	const struct reqtag_label *l;
	uint16_t a, b;

	CHECK(rt != NULL);
	/* No reader: the writer's calls do nothing. */
	CHECK_INT(reqtags_begin(rt, 77, "/web/dataset/call_kw", "res.partner", "read", 1000), 0);
	CHECK_INT(reqtags_resolve(rt, 77, 1000), 0);
	reqtags_set_reader(rt, true);
	CHECK(!reqtags_has_writer(rt));
	reqtags_set_writer(rt, count_sync, NULL);
	CHECK(reqtags_has_writer(rt));
	reqtags_sync(rt, 1000);
	CHECK_INT(syncs, 1);
	CHECK_INT(reqtags_resolve(rt, 0, 1000), 0);
	CHECK_INT(reqtags_resolve(rt, 77, 1000), 0);
	CHECK_INT(reqtags_begin(rt, 77, "/web/dataset/call_kw", "res.partner", "read", 1000), 0);
	CHECK_INT(reqtags_begin(rt, 78, "/web/dataset/call_kw", "res.partner", "read", 1000), 0);
	CHECK_INT(reqtags_begin(rt, 79, "/web/dataset/call_kw", "sale.order", "read", 1000), 0);
	/* Idempotent: a second head of the same request changes nothing. */
	CHECK_INT(reqtags_begin(rt, 79, "/shop", "", "", 1000), 0);
	a = reqtags_resolve(rt, 77, 1000);
	b = reqtags_resolve(rt, 79, 1000);
	CHECK(a != 0 && b != 0 && a != b);
	CHECK_INT(reqtags_resolve(rt, 78, 1000), a); /* one label per triple */
	l = reqtags_label(rt, b);
	CHECK(l != NULL);
	CHECK_STR(l ? l->model : NULL, "sale.order");
	CHECK_STR(l ? l->route : NULL, "/web/dataset/call_kw");
	CHECK(reqtags_label(rt, 0) == NULL);
	CHECK(reqtags_label(rt, 999) == NULL);
	/* Ended: resolves for the grace, then not. */
	reqtags_end(rt, 77, 2000);
	reqtags_sync(rt, 2000 + REQTAG_GRACE_MS - 1);
	CHECK_INT(reqtags_resolve(rt, 77, 2000), a);
	reqtags_sync(rt, 2000 + REQTAG_GRACE_MS);
	CHECK_INT(reqtags_resolve(rt, 77, 2000), 0);
	CHECK_INT(reqtags_resolve(rt, 78, 2000), a); /* in flight: kept */
	CHECK(reqtags_label(rt, a) != NULL); /* the label stays */
	/* Long strings are cut, not overrun. */
	{
		char big[300];

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = 0;
		CHECK_INT(reqtags_begin(rt, 80, big, big, big, 3000), 0);
		l = reqtags_label(rt, reqtags_resolve(rt, 80, 3000));
		CHECK(l && strlen(l->route) == REQTAG_ROUTE_MAX - 1 &&
		      strlen(l->model) == REQTAG_NAME_MAX - 1);
	}
	reqtags_set_writer(rt, NULL, NULL);
	CHECK(!reqtags_has_writer(rt));
	reqtags_free(rt);
}

/* Every label in use: a new triple waits until one is idle for keep_ms. */
static void labels_full(void)
{
	struct reqtags *rt = reqtags_new(10000);
	char route[32];
	uint16_t first = 0, second = 0;

	reqtags_set_reader(rt, true);
	for (uint64_t i = 1; i < REQTAG_LABELS; i++) {
		snprintf(route, sizeof(route), "/r%llu", (unsigned long long)i);
		CHECK_INT(reqtags_begin(rt, i, route, "", "", 1000 + i), 0);
		if (i == 1)
			first = reqtags_resolve(rt, i, 1000 + i);
		if (i == 3)
			second = reqtags_resolve(rt, i, 1000 + i);
		reqtags_end(rt, i, 1000 + i);
	}
	/* /r2 used again later: /r1 then /r3 are the least recently used. */
	CHECK(first != 0 && second != 0);
	CHECK(reqtags_resolve(rt, 2, 1000 + REQTAG_LABELS) != 0);
	CHECK_INT(reqtags_begin(rt, 5000, "/new", "", "", 2000), -ENOSPC);
	CHECK_INT(reqtags_full(rt), 1);
	CHECK_INT(reqtags_resolve(rt, 5000, 2000), 0);
	/* /r1 was last used at 1001: at 11001 its id goes to the new triple. */
	CHECK_INT(reqtags_begin(rt, 5001, "/new", "", "", 11001), 0);
	CHECK_INT(reqtags_resolve(rt, 5001, 11001), first);
	CHECK_STR(reqtags_label(rt, first)->route, "/new");
	CHECK_INT(reqtags_resolve(rt, 1, 11001), 0); /* not the old request's any more */
	CHECK_INT(reqtags_begin(rt, 5002, "/newer", "", "", 11002), -ENOSPC); /* /r3: 1003 */
	CHECK_INT(reqtags_begin(rt, 5003, "/newer", "", "", 11003), 0);
	CHECK_INT(reqtags_resolve(rt, 5003, 11003), second);
	CHECK_INT(reqtags_full(rt), 2);
	reqtags_free(rt);
}

/* More requests than the pool: ended ones make room, then the new is refused. */
static void reqs_full(void)
{
	struct reqtags *rt = reqtags_new(10000);

	reqtags_set_reader(rt, true);
	for (uint64_t i = 1; i <= REQTAG_REQS; i++)
		CHECK(!reqtags_begin(rt, i, "/a", "", "", 1000));
	CHECK_INT(reqtags_begin(rt, REQTAG_REQS + 1, "/a", "", "", 1000), -ENOSPC);
	reqtags_end(rt, 5, 1000);
	CHECK_INT(reqtags_begin(rt, REQTAG_REQS + 2, "/a", "", "", 1000), 0);
	CHECK_INT(reqtags_resolve(rt, 5, 1000), 0);
	CHECK(reqtags_resolve(rt, REQTAG_REQS + 2, 1000) != 0);
	CHECK(reqtags_resolve(rt, 6, 1000) != 0);
	reqtags_free(rt);
}

/* The kernel's and user space's tags of one request agree and rarely collide. */
static void tags(void)
{
	CHECK(es_req_tag(0, 0) != 0);
	CHECK(es_req_tag(123456789, 1) != es_req_tag(123456789, 2));
	CHECK(es_req_tag(123456789, 1) != es_req_tag(123456790, 1));
	CHECK_INT(es_req_tag(5, 7), es_req_tag(5, 7));
}

int main(void)
{
	names();
	labels_full();
	reqs_full();
	tags();
	return check_summary("test_reqtag");
}
