/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A bounded string copy for paths that run per request: snprintf("%s")
 * costs a format parse and a stdio stream setup each time.
 */
#ifndef ERPSCOPE_STRCOPY_H
#define ERPSCOPE_STRCOPY_H

#include <stddef.h>
#include <string.h>

/* src into dst (size > 0), cut to fit and NUL-terminated; returns the length copied. */
static inline size_t str_copy(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
	return n;
}

#endif
