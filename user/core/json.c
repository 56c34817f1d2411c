// SPDX-License-Identifier: GPL-2.0
/* The JSON writer: escaping of hostile bytes and comma bookkeeping. */
#include "core/json.h"
#include "core/grow.h"
#include "core/utf8.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/expo.h"

void json_init(struct json *j)
{
	memset(j, 0, sizeof(*j));
}

void json_free(struct json *j)
{
	free(j->buf);
	json_init(j);
}

static void put(struct json *j, const char *s, size_t n)
{
	if (j->err)
		return;
	if (grow_array(&j->buf, &j->cap, j->len + n + 1, 1, 256)) {
		j->err = -ENOMEM;
		return;
	}
	memcpy(j->buf + j->len, s, n);
	j->len += n;
	j->buf[j->len] = 0;
}

static void puts_(struct json *j, const char *s)
{
	put(j, s, strlen(s));
}

void json_escape(struct json *j, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run = 0, len, bad;
	char u[8];

	put(j, "\"", 1);
	while (i < n) {
		unsigned char c = s[i];
		const char *esc = NULL;

		len = utf8_seq(s + i, n - i, &bad);
		if (len == 1 && c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) {
			i++;
			run++;
			continue;
		}
		/* U+2028/U+2029 are valid JSON but end a line in JavaScript. */
		if (len == 3 && c == 0xe2 && s[i + 1] == 0x80 && (s[i + 2] & 0xfe) == 0xa8)
			esc = s[i + 2] == 0xa8 ? "\\u2028" : "\\u2029";
		if (len > 1 && !esc) {
			i += len;
			run += len;
			continue;
		}
		put(j, (const char *)s + i - run, run);
		run = 0;
		if (esc) {
			puts_(j, esc);
		} else if (!len) {
			puts_(j, "\\ufffd");
			len = bad;
		} else if (c == '"' || c == '\\') {
			u[0] = '\\';
			u[1] = (char)c;
			put(j, u, 2);
		} else {
			snprintf(u, sizeof(u), "\\u%04x", c);
			put(j, u, 6);
		}
		i += len;
	}
	put(j, (const char *)s + i - run, run);
	put(j, "\"", 1);
}

/* The comma and the key before a value; checks the key matches the container. */
static bool start_value(struct json *j, const char *key)
{
	if (j->err)
		return false;
	if (j->has_items[j->depth])
		put(j, ",", 1);
	j->has_items[j->depth] = true;
	if (key) {
		json_escape(j, key, strlen(key));
		put(j, ":", 1);
	}
	return !j->err;
}

static void open_(struct json *j, const char *key, const char *bracket)
{
	if (!start_value(j, key))
		return;
	if (j->depth >= JSON_MAX_DEPTH) {
		j->err = -E2BIG;
		return;
	}
	put(j, bracket, 1);
	j->has_items[++j->depth] = false;
}

static void close_(struct json *j, const char *bracket)
{
	if (j->err)
		return;
	if (!j->depth) {
		j->err = -EINVAL;
		return;
	}
	j->depth--;
	put(j, bracket, 1);
}

void json_object_begin(struct json *j, const char *key)
{
	open_(j, key, "{");
}

void json_object_end(struct json *j)
{
	close_(j, "}");
}

void json_array_begin(struct json *j, const char *key)
{
	open_(j, key, "[");
}

void json_array_end(struct json *j)
{
	close_(j, "]");
}

void json_strn(struct json *j, const char *key, const char *s, size_t n)
{
	if (start_value(j, key))
		json_escape(j, s ? s : "", s ? n : 0);
}

void json_str(struct json *j, const char *key, const char *s)
{
	json_strn(j, key, s, s ? strlen(s) : 0);
}

void json_u64(struct json *j, const char *key, uint64_t v)
{
	char b[24];

	if (start_value(j, key))
		put(j, b, (size_t)snprintf(b, sizeof(b), "%" PRIu64, v));
}

void json_i64(struct json *j, const char *key, int64_t v)
{
	char b[24];

	if (start_value(j, key))
		put(j, b, (size_t)snprintf(b, sizeof(b), "%" PRId64, v));
}

void json_double(struct json *j, const char *key, double v)
{
	char b[32];

	if (!start_value(j, key))
		return;
	if (!isfinite(v)) {
		puts_(j, "null");
		return;
	}
	expo_format_double(b, sizeof(b), v, 0);
	puts_(j, b);
}

void json_bool(struct json *j, const char *key, bool v)
{
	if (start_value(j, key))
		puts_(j, v ? "true" : "false");
}

void json_null(struct json *j, const char *key)
{
	if (start_value(j, key))
		puts_(j, "null");
}

void json_raw(struct json *j, const char *key, const char *raw, size_t n)
{
	if (start_value(j, key))
		put(j, raw, n);
}

int json_finish(struct json *j)
{
	if (!j->err && j->depth)
		j->err = -EINVAL;
	if (!j->err && !j->buf)
		put(j, "", 0);
	return j->err;
}
