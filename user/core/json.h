/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A tiny JSON writer into a growing buffer. Strings are untrusted (process
 * titles, comm): they are escaped here, control characters as \uXXXX and
 * invalid UTF-8 replaced by U+FFFD, so the output is always valid JSON.
 * Errors (-ENOMEM, unbalanced nesting) are sticky and reported by
 * json_finish().
 */
#ifndef ERPSCOPE_JSON_H
#define ERPSCOPE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 16

struct json {
	char *buf;
	size_t len, cap;
	int err;
	unsigned int depth;
	bool has_items[JSON_MAX_DEPTH + 1]; /* a comma goes before the next value */
};

void json_init(struct json *j);
void json_free(struct json *j);

/*
 * Every value takes a key: inside an object it names the member, inside an
 * array or at the top it must be NULL.
 */
void json_object_begin(struct json *j, const char *key);
void json_object_end(struct json *j);
void json_array_begin(struct json *j, const char *key);
void json_array_end(struct json *j);
void json_str(struct json *j, const char *key, const char *s);
/* The first n bytes of s, NULs included (escaped as \u0000). */
void json_strn(struct json *j, const char *key, const char *s, size_t n);
void json_u64(struct json *j, const char *key, uint64_t v);
void json_i64(struct json *j, const char *key, int64_t v);
/* NaN and infinities have no JSON form: they are written as null. */
void json_double(struct json *j, const char *key, double v);
void json_bool(struct json *j, const char *key, bool v);
void json_null(struct json *j, const char *key);
/* raw must be one valid JSON value (e.g. a body made by another writer). */
void json_raw(struct json *j, const char *key, const char *raw, size_t n);

/* Appends s[0..n) as a quoted, escaped JSON string. */
void json_escape(struct json *j, const char *s, size_t n);

/* 0 once everything opened was closed and nothing failed, else -errno. */
int json_finish(struct json *j);

#endif
