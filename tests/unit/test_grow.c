// SPDX-License-Identifier: GPL-2.0
/* core/grow.c: capacities from first by doubling, overflow refused, failure harmless. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "core/grow.h"

struct pair {
	uint32_t a;
	uint64_t b;
};

/* Appending one at a time: 8, then 16, 32, ... as the count passes each. */
static void test_append(void)
{
	struct pair *v = NULL;
	size_t n = 0, cap = 0, grew = 0;
	int bad = 0;

	for (uint32_t i = 0; i < 100; i++) {
		size_t was = cap;

		CHECK_INT(grow_array(&v, &cap, n + 1, sizeof(*v), 8), 0);
		if (cap != was)
			grew++;
		v[n++] = (struct pair){ i, (uint64_t)i * 1000 };
		if (i == 0)
			CHECK_INT(cap, 8);
		if (i == 7)
			CHECK_INT(cap, 8);
		if (i == 8)
			CHECK_INT(cap, 16);
		if (i == 16)
			CHECK_INT(cap, 32);
	}
	CHECK_INT(cap, 128);
	CHECK_INT(grew, 5); /* 8, 16, 32, 64, 128 */
	for (uint32_t i = 0; i < 100; i++)
		bad += v[i].a != i || v[i].b != (uint64_t)i * 1000;
	CHECK_INT(bad, 0);
	free(v);
}

/* Room for need at once: doubling from first, or from the capacity held. */
static void test_need(void)
{
	char *buf = NULL, *was;
	size_t cap = 0;

	CHECK_INT(grow_array(&buf, &cap, 5000, 1, 4096), 0);
	CHECK_INT(cap, 8192);
	CHECK(buf != NULL);
	buf[0] = 'x';
	buf[8191] = 'y';
	was = buf;
	/* enough already: nothing moves */
	CHECK_INT(grow_array(&buf, &cap, 8192, 1, 4096), 0);
	CHECK_INT(cap, 8192);
	CHECK(buf == was);
	CHECK_INT(grow_array(&buf, &cap, 0, 1, 4096), 0);
	CHECK_INT(cap, 8192);
	/* first only counts from empty: 8192 -> 16384 -> 32768 -> 65536 */
	CHECK_INT(grow_array(&buf, &cap, 40000, 1, 16), 0);
	CHECK_INT(cap, 65536);
	CHECK_INT(buf[0], 'x');
	CHECK_INT(buf[8191], 'y');
	/* first already past need */
	{
		int *v = NULL;
		size_t c = 0;

		CHECK_INT(grow_array(&v, &c, 3, sizeof(*v), 256), 0);
		CHECK_INT(c, 256);
		free(v);
	}
	free(buf);
}

/* Overflows and failed allocations leave the array and its capacity as they were. */
static void test_refused(void)
{
	uint64_t *v = NULL, *was;
	size_t cap = 0;

	CHECK_INT(grow_array(&v, &cap, 4, sizeof(*v), 4), 0);
	CHECK_INT(cap, 4);
	for (int i = 0; i < 4; i++)
		v[i] = 0x1111111111111111ull * (uint64_t)(i + 1);
	was = v;
	/* the element count doubles past SIZE_MAX */
	CHECK_INT(grow_array(&v, &cap, SIZE_MAX / 2 + 2, sizeof(*v), 4), -ENOMEM);
	CHECK(v == was);
	CHECK_INT(cap, 4);
	/* the count fits, its bytes do not: 2^62 elements of 8 bytes */
	CHECK_INT(grow_array(&v, &cap, (SIZE_MAX >> 2) + 1 - 7, sizeof(*v), 4), -ENOMEM);
	CHECK(v == was);
	CHECK_INT(cap, 4);
	/* the bytes fit in size_t but no memory holds them: 2^61 bytes */
	CHECK_INT(grow_array(&v, &cap, (SIZE_MAX >> 6) + 1, sizeof(*v), 4), -ENOMEM);
	CHECK(v == was);
	CHECK_INT(cap, 4);
	CHECK(v[0] == 0x1111111111111111ull && v[3] == 0x4444444444444444ull);
	/* misuse */
	CHECK_INT(grow_array(&v, &cap, 5, 0, 4), -EINVAL);
	{
		char *p = NULL;
		size_t c = 0;

		CHECK_INT(grow_array(&p, &c, 1, 1, 0), -EINVAL);
		CHECK(p == NULL);
		CHECK_INT(c, 0);
	}
	CHECK(v == was);
	CHECK_INT(cap, 4);
	/* and it still grows afterwards */
	CHECK_INT(grow_array(&v, &cap, 5, sizeof(*v), 4), 0);
	CHECK_INT(cap, 8);
	CHECK(v[3] == 0x4444444444444444ull);
	free(v);
}

int main(void)
{
	test_append();
	test_need();
	test_refused();
	return check_summary("test_grow");
}
