// SPDX-License-Identifier: GPL-2.0
/* requests/req_slow.c: the k slowest requests of the window, by role. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "requests/req_slow.h"

#define S 1000000000ull

static struct req_slow_entry ent(uint64_t end, uint64_t ns, const char *route)
{
	struct req_slow_entry e = { .end_ns = end, .ns = ns, .pid = 1, .code = 200 };

	snprintf(e.route, sizeof(e.route), "%s", route);
	return e;
}

/* As the requests probe does: the entry, filled when it has a place. */
static void req_slow_add(struct req_slow *s, unsigned int role, const struct req_slow_entry *e)
{
	struct req_slow_entry *at = req_slow_place(s, role, e->end_ns, e->ns);

	if (at)
		*at = *e;
}

static void test_top_k(void)
{
	struct req_slow *s = req_slow_new(3, 3, 300 * S);
	struct req_slow_entry out[5], e;
	char r[16];

	/* 10 requests in one slice, 1..10 ms: the 3 slowest, slowest first */
	for (int i = 1; i <= 10; i++) {
		snprintf(r, sizeof(r), "/r%d", i);
		e = ent(1000 * S + (uint64_t)i, (uint64_t)i * 1000000, r);
		req_slow_add(s, 1, &e);
	}
	CHECK_INT(req_slow_get(s, 1, 1001 * S, out, 5), 3);
	CHECK_STR(out[0].route, "/r10");
	CHECK_STR(out[1].route, "/r9");
	CHECK_STR(out[2].route, "/r8");
	/* max bounds it, other roles are apart */
	CHECK_INT(req_slow_get(s, 1, 1001 * S, out, 1), 1);
	CHECK_INT(req_slow_get(s, 0, 1001 * S, out, 5), 0);
	CHECK_INT(req_slow_get(s, 7, 1001 * S, out, 5), 0);
	req_slow_add(s, 9, &e); /* a role out of range: ignored */
	/* across slices: the slowest of all of them */
	e = ent(1100 * S, 50 * 1000000ull, "/later");
	req_slow_add(s, 1, &e);
	CHECK_INT(req_slow_get(s, 1, 1101 * S, out, 5), 3);
	CHECK_STR(out[0].route, "/later");
	CHECK_STR(out[1].route, "/r10");
	/* 300 s after the first ones: they left the window, /later stays */
	CHECK_INT(req_slow_get(s, 1, 1000 * S + 300 * S + 11, out, 5), 1);
	CHECK_STR(out[0].route, "/later");
	/* a slot reused by a later slice forgets the old one */
	e = ent(1000 * S + 360 * S, 1000, "/new");
	req_slow_add(s, 1, &e);
	CHECK_INT(req_slow_get(s, 1, 1000 * S + 360 * S, out, 5), 2);
	CHECK_STR(out[0].route, "/later");
	CHECK_STR(out[1].route, "/new");
	/* one that ended long ago, late: not taken into a newer slot */
	e = ent(1000 * S, 99 * S, "/stale");
	req_slow_add(s, 1, &e);
	CHECK_INT(req_slow_get(s, 1, 1000 * S + 360 * S, out, 5), 2);
	req_slow_free(s);
	CHECK_INT(req_slow_get(NULL, 1, 1, out, 5), 0);
}

int main(void)
{
	test_top_k();
	return check_summary("test_req_slow");
}
