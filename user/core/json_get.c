// SPDX-License-Identifier: GPL-2.0
/* Members of a JSON object by dotted path: a small recursive skipper. */
#include "core/json_get.h"

#include <stdlib.h>
#include <string.h>

struct cur {
	const char *p, *end;
};

static void ws(struct cur *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\t' || *c->p == '\r'))
		c->p++;
}

/* Past a string starting at '"'. False when unterminated. */
static bool skip_string(struct cur *c)
{
	for (c->p++; c->p < c->end; c->p++) {
		if (*c->p == '\\')
			c->p++;
		else if (*c->p == '"')
			break;
	}
	if (c->p >= c->end)
		return false;
	c->p++;
	return true;
}

static bool skip_value(struct cur *c, int depth)
{
	ws(c);
	if (c->p >= c->end || depth > 32)
		return false;
	if (*c->p == '"')
		return skip_string(c);
	if (*c->p == '{' || *c->p == '[') {
		char close = *c->p == '{' ? '}' : ']';

		c->p++;
		for (;;) {
			ws(c);
			if (c->p >= c->end)
				return false;
			if (*c->p == close) {
				c->p++;
				return true;
			}
			if (*c->p == ',') {
				c->p++;
				continue;
			}
			if (close == '}') {
				if (*c->p != '"' || !skip_string(c))
					return false;
				ws(c);
				if (c->p >= c->end || *c->p != ':')
					return false;
				c->p++;
			}
			if (!skip_value(c, depth + 1))
				return false;
		}
	}
	while (c->p < c->end && *c->p != ',' && *c->p != '}' && *c->p != ']' && *c->p != ' ')
		c->p++;
	return true;
}

/* Moves c onto the value of key (klen bytes) in the object at c. */
static bool find_key(struct cur *c, const char *key, size_t klen)
{
	ws(c);
	if (c->p >= c->end || *c->p != '{')
		return false;
	c->p++;
	for (;;) {
		const char *k;
		bool match;

		ws(c);
		if (c->p < c->end && *c->p == ',') {
			c->p++;
			ws(c);
		}
		if (c->p >= c->end || *c->p != '"')
			return false;
		k = c->p + 1;
		if (!skip_string(c))
			return false;
		/* Our keys carry no escapes: compare the raw bytes. */
		match = (size_t)(c->p - 1 - k) == klen && !memcmp(k, key, klen);
		ws(c);
		if (c->p >= c->end || *c->p != ':')
			return false;
		c->p++;
		ws(c);
		if (match)
			return true;
		if (!skip_value(c, 0))
			return false;
	}
}

static bool locate(const char *doc, size_t len, const char *path, struct cur *c)
{
	c->p = doc;
	c->end = doc + len;
	while (*path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);

		if (!find_key(c, path, n))
			return false;
		path += n + (dot ? 1 : 0);
	}
	return c->p < c->end;
}

static int hexval(char h)
{
	if (h >= '0' && h <= '9')
		return h - '0';
	if (h >= 'a' && h <= 'f')
		return h - 'a' + 10;
	if (h >= 'A' && h <= 'F')
		return h - 'A' + 10;
	return -1;
}

bool json_get_str(const char *doc, size_t len, const char *path, char *buf, size_t size)
{
	struct cur c;
	size_t o = 0;

	if (!size)
		return false;
	buf[0] = 0;
	if (!locate(doc, len, path, &c) || *c.p != '"')
		return false;
	for (c.p++; c.p < c.end && *c.p != '"'; c.p++) {
		char ch = *c.p;

		if (ch == '\\' && c.p + 1 < c.end) {
			c.p++;
			switch (*c.p) {
			case 'n': ch = '\n'; break;
			case 't': ch = '\t'; break;
			case 'r': ch = '\r'; break;
			case 'b': ch = '\b'; break;
			case 'f': ch = '\f'; break;
			case 'u': {
				int v = 0;

				for (int i = 1; i <= 4; i++) {
					int h = c.p + i < c.end ? hexval(c.p[i]) : -1;

					v = h < 0 ? -1 : (v < 0 ? -1 : v * 16 + h);
				}
				ch = v >= 0x20 && v < 0x7f ? (char)v : '?';
				c.p += c.p + 4 < c.end ? 4 : 0;
				break;
			}
			default: ch = *c.p; break;
			}
		}
		if (o + 1 < size)
			buf[o++] = ch;
	}
	buf[o] = 0;
	return c.p < c.end;
}

bool json_get_num(const char *doc, size_t len, const char *path, double *out)
{
	char tmp[48];
	struct cur c;
	size_t n = 0;
	char *e;

	if (!locate(doc, len, path, &c))
		return false;
	while (c.p + n < c.end && n + 1 < sizeof(tmp) && strchr("+-.0123456789eE", c.p[n]))
		n++;
	if (!n)
		return false;
	memcpy(tmp, c.p, n);
	tmp[n] = 0;
	*out = strtod(tmp, &e);
	return e == tmp + n;
}
