// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for the exposition writer. The first byte picks the
 * format; the rest, cut at NUL bytes, gives the help text, a label name, label
 * values and a gauge value. The output must be valid UTF-8 and parse line by
 * line as exposition text: no raw newline inside a label value or HELP text,
 * only known escapes, every quote closed.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/expo.h"

#define NPARTS 5

static void fail(void)
{
	abort();
}

static bool valid_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		uint32_t cp;
		size_t len;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0)
			len = 2, cp = c & 0x1f;
		else if ((c & 0xf0) == 0xe0)
			len = 3, cp = c & 0x0f;
		else if ((c & 0xf8) == 0xf0)
			len = 4, cp = c & 0x07;
		else
			return false;
		if (i + len > n)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

static bool name_char(char c, bool first)
{
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (!first && c >= '0' && c <= '9');
}

/* Escaped text up to the end of the line (HELP) or a closing quote (label). */
static const char *escaped_text(const char *p, bool quoted, bool om_help)
{
	for (;; p++) {
		if (*p == '\n')
			return quoted ? NULL : p;
		if (!*p)
			return NULL;
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return NULL;
		if (*p == '"') {
			if (quoted)
				return p;
			if (om_help)
				return NULL;
		}
		if (*p == '\\') {
			p++;
			if (*p != '\\' && *p != 'n' && !((quoted || om_help) && *p == '"'))
				return NULL;
		}
	}
}

static const char *metric_name(const char *p)
{
	if (!name_char(*p, true))
		return NULL;
	while (name_char(*p, false))
		p++;
	return p;
}

/* One sample line: name{l="v",...} value\n. Returns the next line or NULL. */
static const char *sample_line(const char *p)
{
	p = metric_name(p);
	if (!p)
		return NULL;
	if (*p == '{') {
		do {
			p++;
			if (!(p = metric_name(p)) || *p++ != '=' || *p++ != '"')
				return NULL;
			if (!(p = escaped_text(p, true, false)))
				return NULL;
			p++;
		} while (*p == ',');
		if (*p++ != '}')
			return NULL;
	}
	if (*p++ != ' ' || *p == '\n')
		return NULL;
	while (*p && *p != '\n' && *p != ' ')
		p++;
	return *p == '\n' ? p + 1 : NULL;
}

static void check_output(const struct expo *e, bool om)
{
	const char *p = e->buf, *end = e->buf + e->len;

	if (strlen(e->buf) != e->len || !valid_utf8((const unsigned char *)e->buf, e->len))
		fail();
	while (p < end) {
		if (!strncmp(p, "# HELP ", 7)) {
			p = metric_name(p + 7);
			if (!p || *p != ' ' || !(p = escaped_text(p + 1, false, om)))
				fail();
			p++;
		} else if (!strncmp(p, "# TYPE ", 7)) {
			p = strchr(p, '\n');
			if (!p)
				fail();
			p++;
		} else if (om && !strcmp(p, "# EOF\n")) {
			return;
		} else if (!(p = sample_line(p))) {
			fail();
		}
	}
	if (om)
		fail(); /* no # EOF */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const double edges[] = { 0.1, 0.25, 1, 2.5 };
	static const uint64_t counts[] = { 1, 2, 3, 4, 5 };
	const char *part[NPARTS] = { "", "", "", "", "" };
	char *buf;
	struct expo e;
	double v = 0;
	bool om;

	if (!size)
		return 0;
	om = data[0] & 1;
	buf = malloc(size);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = 0;
	/* NUL-separated parts; the last one runs to the end. */
	for (size_t i = 0, at = 0; i < NPARTS && at < size; i++) {
		part[i] = buf + at;
		at += strlen(buf + at) + 1;
	}
	if (strlen(part[4]) >= sizeof(v))
		memcpy(&v, part[4], sizeof(v));

	struct expo_label labels[] = {
		{ "role", part[1] },
		{ part[2], part[3] },
		{ "comm", part[4] },
	};

	expo_init(&e, om ? EXPO_OPENMETRICS_100 : EXPO_TEXT_004);
	expo_family(&e, "erpscope_fuzz_total", EXPO_COUNTER, part[0]);
	expo_sample_u64(&e, labels, 3, UINT64_MAX);
	expo_family(&e, "erpscope_fuzz_value", EXPO_GAUGE, part[3]);
	expo_sample(&e, labels, 3, v);
	expo_family(&e, "erpscope_fuzz_seconds", EXPO_HISTOGRAM, part[1]);
	expo_histogram(&e, labels, 3, edges, counts, 4, v);
	if (expo_finish(&e))
		fail();
	check_output(&e, om);
	expo_free(&e);
	free(buf);
	return 0;
}
