// SPDX-License-Identifier: GPL-2.0
/* core/intern.c: one copy per text, freed with its last holder, through rehashes. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "core/intern.h"

#define MANY 5000

/* The same text from two buffers is one copy; it lives until both let go. */
static void test_share(void)
{
	struct intern_pool *ip = intern_new();
	char a[] = "odoo/models.py", b[] = "odoo/models.py";
	const char *x, *y, *z;

	x = intern_get(ip, a);
	y = intern_get(ip, b);
	z = intern_get(ip, "odoo/fields.py");
	CHECK(x == y);
	CHECK(x != a && x != b);
	CHECK(x != z);
	CHECK_STR(x, "odoo/models.py");
	CHECK_INT(intern_count(ip), 2);
	a[0] = 'X'; /* the pool has its own copy */
	CHECK_STR(x, "odoo/models.py");
	intern_put(ip, x);
	CHECK_INT(intern_count(ip), 2);
	CHECK_STR(y, "odoo/models.py");
	intern_put(ip, y);
	CHECK_INT(intern_count(ip), 1);
	intern_put(ip, z);
	intern_put(ip, NULL);
	CHECK_INT(intern_count(ip), 0);
	CHECK_INT(intern_bytes(ip), 0);
	/* Empty text is a text like any other. */
	x = intern_get(ip, "");
	CHECK_STR(x, "");
	CHECK(intern_get(ip, "") == x);
	CHECK_INT(intern_count(ip), 1);
	intern_put(ip, x);
	intern_put(ip, x);
	CHECK_INT(intern_count(ip), 0);
	intern_free(ip);
}

/* Thousands of texts (several rehashes), each held twice, let go in another order. */
static void test_many(void)
{
	static const char *held[MANY];
	struct intern_pool *ip = intern_new();
	char buf[32];
	int wrong = 0, dup = 0;
	size_t bytes;

	for (int i = 0; i < MANY; i++) {
		snprintf(buf, sizeof(buf), "func_%d", i);
		held[i] = intern_get(ip, buf);
	}
	CHECK_INT(intern_count(ip), MANY);
	bytes = intern_bytes(ip);
	CHECK(bytes > MANY * sizeof("func_0"));
	for (int i = 0; i < MANY; i++) {
		snprintf(buf, sizeof(buf), "func_%d", i);
		if (intern_get(ip, buf) != held[i])
			dup++;
		if (strcmp(held[i], buf))
			wrong++;
	}
	CHECK_INT(dup, 0);
	CHECK_INT(wrong, 0);
	CHECK_INT(intern_count(ip), MANY);
	CHECK_INT(intern_bytes(ip), bytes);
	/* Odd ones let go twice: gone; even ones once: still there. */
	for (int i = MANY - 1; i >= 0; i--) {
		intern_put(ip, held[i]);
		if (i % 2)
			intern_put(ip, held[i]);
	}
	CHECK_INT(intern_count(ip), MANY / 2);
	wrong = 0;
	for (int i = 0; i < MANY; i += 2) {
		snprintf(buf, sizeof(buf), "func_%d", i);
		if (strcmp(held[i], buf))
			wrong++;
	}
	CHECK_INT(wrong, 0);
	/* A text let go is a new copy when it comes back. */
	CHECK_INT(intern_count(ip), MANY / 2);
	intern_put(ip, intern_get(ip, "func_1"));
	CHECK_INT(intern_count(ip), MANY / 2);
	for (int i = 0; i < MANY; i += 2)
		intern_put(ip, held[i]);
	CHECK_INT(intern_count(ip), 0);
	CHECK_INT(intern_bytes(ip), 0);
	intern_free(ip);
}

int main(void)
{
	test_share();
	test_many();
	return check_summary("test_intern");
}
