/* SPDX-License-Identifier: GPL-2.0 */
/* Minimal unit-test harness: CHECK* count, each test binary ends with
 * "N passed, N failed" and exits non-zero on any failure. */
#ifndef ERPSCOPE_CHECK_H
#define ERPSCOPE_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                                      \
	do {                                                                             \
		if (cond) {                                                              \
			check_passed++;                                                  \
		} else {                                                                 \
			check_failed++;                                                  \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);   \
		}                                                                        \
	} while (0)

#define CHECK_STR(a, b)                                                                  \
	do {                                                                             \
		const char *_a = (a), *_b = (b);                                         \
		if (_a && _b && !strcmp(_a, _b)) {                                       \
			check_passed++;                                                  \
		} else {                                                                 \
			check_failed++;                                                  \
			fprintf(stderr, "FAIL %s:%d: %s == %s\n  got:  \"%s\"\n  want: \"%s\"\n", \
				__FILE__, __LINE__, #a, #b, _a ? _a : "(null)",          \
				_b ? _b : "(null)");                                     \
		}                                                                        \
	} while (0)

#define CHECK_INT(a, b)                                                                  \
	do {                                                                             \
		long long _a = (long long)(a), _b = (long long)(b);                      \
		if (_a == _b) {                                                          \
			check_passed++;                                                  \
		} else {                                                                 \
			check_failed++;                                                  \
			fprintf(stderr, "FAIL %s:%d: %s == %s (%lld != %lld)\n", __FILE__, \
				__LINE__, #a, #b, _a, _b);                               \
		}                                                                        \
	} while (0)

static inline int check_summary(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
	return check_failed ? 1 : 0;
}

#endif
