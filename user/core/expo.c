// SPDX-License-Identifier: GPL-2.0
/*
 * Prometheus text 0.0.4 and OpenMetrics 1.0.0 writer. Numbers are written the
 * way client_golang writes them, so dashboards and promtool see what they
 * expect from any other exporter.
 */
#include "core/expo.h"
#include "core/grow.h"
#include "core/utf8.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPO_MIN_CAP 16384
/* Enough for any double in either format ("-1.7976931348623157e+308"). */
#define EXPO_NUM_MAX 40

void expo_init(struct expo *e, enum expo_format format)
{
	memset(e, 0, sizeof(*e));
	e->format = format;
}

void expo_free(struct expo *e)
{
	free(e->buf);
	memset(e, 0, sizeof(*e));
}

void expo_reset(struct expo *e, enum expo_format format)
{
	e->format = format;
	e->type = EXPO_COUNTER;
	e->family[0] = 0;
	e->len = 0;
	e->err = 0;
	if (e->buf)
		e->buf[0] = 0;
}

const char *expo_content_type(enum expo_format format)
{
	if (format == EXPO_OPENMETRICS_100)
		return "application/openmetrics-text; version=1.0.0; charset=utf-8";
	return "text/plain; version=0.0.4; charset=utf-8";
}

static void expo_fail(struct expo *e, int err)
{
	if (!e->err)
		e->err = err;
}

/* Makes room for extra bytes plus the NUL kept after the text. */
static int expo_reserve(struct expo *e, size_t extra)
{
	if (e->err)
		return e->err;
	/* e->cap is 0 or, once grown, at least EXPO_MIN_CAP */
	if (extra > SIZE_MAX / 4 - e->len ||
	    grow_array(&e->buf, &e->cap, e->len + extra + 1, 1, EXPO_MIN_CAP)) {
		expo_fail(e, -ENOMEM);
		return e->err;
	}
	return 0;
}

static void put(struct expo *e, const char *s, size_t n)
{
	if (expo_reserve(e, n))
		return;
	memcpy(e->buf + e->len, s, n);
	e->len += n;
	e->buf[e->len] = 0;
}

static void put_str(struct expo *e, const char *s)
{
	put(e, s, strlen(s));
}

static void put_char(struct expo *e, char c)
{
	put(e, &c, 1);
}

/*
 * Appends s escaped: backslash and newline always, the double quote when
 * quote is set. Other control bytes become '?' and ill-formed UTF-8 becomes
 * U+FFFD, so whatever a process put in its title cannot break the scrape.
 */
static void put_escaped(struct expo *e, const char *s, bool quote)
{
	const unsigned char *start = (const unsigned char *)(s ? s : ""), *p = start;
	size_t n = strlen((const char *)p);
	char *o;

	/* Worst case: every byte becomes a 3-byte U+FFFD. */
	if (expo_reserve(e, n > SIZE_MAX / 4 ? SIZE_MAX : 3 * n))
		return;
	o = e->buf + e->len;
	while (*p) {
		size_t bad = 0, len = utf8_seq(p, n - (size_t)(p - start), &bad);

		if (!len) {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			p += bad;
		} else if (len > 1) {
			memcpy(o, p, len);
			o += len;
			p += len;
		} else if (*p == '\\' || (*p == '"' && quote)) {
			*o++ = '\\';
			*o++ = (char)*p++;
		} else if (*p == '\n') {
			*o++ = '\\';
			*o++ = 'n';
			p++;
		} else if (*p < 0x20 || *p == 0x7f) {
			*o++ = '?';
			p++;
		} else {
			*o++ = (char)*p++;
		}
	}
	e->len = (size_t)(o - e->buf);
	e->buf[e->len] = 0;
}

void expo_escape_label(struct expo *e, const char *value)
{
	put_escaped(e, value, true);
}

/* Go's strconv.FormatFloat(v, 'g', -1, 64), which client_golang uses. */
static void format_go(char *buf, size_t size, double v)
{
	char tmp[EXPO_NUM_MAX];
	const char *ep;
	int digits, exp;

	/* Common case (bucket edges, small gauges): integers Go prints plainly. */
	if (fabs(v) < 1e6 && v == (double)(int64_t)v) {
		snprintf(buf, size, "%.0f", v);
		return;
	}
	/* Fewest significant digits that read back as the same double (17 always do). */
	for (digits = 1;; digits++) {
		snprintf(tmp, sizeof(tmp), "%.*e", digits - 1, v);
		if (digits >= 17 || strtod(tmp, NULL) == v)
			break;
	}
	ep = strchr(tmp, 'e');
	exp = ep ? atoi(ep + 1) : 0;
	/* Go switches to an exponent below 1e-4 and from 1e6 on (precision 6). */
	if (exp < -4 || exp >= 6)
		snprintf(buf, size, "%s", tmp);
	else
		snprintf(buf, size, "%.*f", digits - 1 - exp > 0 ? digits - 1 - exp : 0, v);
}

void expo_format_double(char *buf, size_t size, double v, int openmetrics)
{
	size_t n;

	if (!size)
		return;
	if (isnan(v)) {
		snprintf(buf, size, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	format_go(buf, size, v);
	/* OpenMetrics wants canonical floats: le="1.0", not le="1". */
	n = strlen(buf);
	if (openmetrics && !strpbrk(buf, ".e") && n + 3 <= size)
		memcpy(buf + n, ".0", 3);
}

static bool is_metric_name(const char *s)
{
	if (!*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++) {
		if (!(*s == '_' || *s == ':' || (*s >= 'a' && *s <= 'z') ||
		      (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
			return false;
	}
	return true;
}

static bool is_label_name(const char *s)
{
	return s && !strchr(s, ':') && is_metric_name(s);
}

static bool has_total(const char *name)
{
	size_t n = strlen(name);

	return n > 6 && !strcmp(name + n - 6, "_total");
}

/* Family name for HELP/TYPE: OpenMetrics names a counter without _total. */
static void put_family_name(struct expo *e)
{
	size_t n = strlen(e->family);

	if (e->format == EXPO_OPENMETRICS_100 && e->type == EXPO_COUNTER && has_total(e->family))
		n -= 6;
	put(e, e->family, n);
}

static const char *const type_names[] = { "counter", "gauge", "histogram" };

void expo_family(struct expo *e, const char *name, enum expo_type type, const char *help)
{
	bool om = e->format == EXPO_OPENMETRICS_100;

	e->family[0] = 0;
	if (!name || !is_metric_name(name) || strlen(name) >= sizeof(e->family) ||
	    (unsigned int)type > EXPO_HISTOGRAM) {
		expo_fail(e, -EINVAL);
		return;
	}
	strcpy(e->family, name);
	e->type = type;
	if (help && *help) {
		put_str(e, "# HELP ");
		put_family_name(e);
		put_char(e, ' ');
		/* 0.0.4 escapes only \ and newline in HELP; OpenMetrics also ". */
		put_escaped(e, help, om);
		put_char(e, '\n');
	}
	put_str(e, "# TYPE ");
	put_family_name(e);
	put_char(e, ' ');
	put_str(e, type_names[type]);
	put_char(e, '\n');
}

/*
 * {name="value",...} with le appended when given. A label whose name is not
 * a valid label name (empty included), or a caller's own le on a bucket, is
 * dropped: one bad label must not make Prometheus reject the whole scrape.
 */
static void put_labels(struct expo *e, const struct expo_label *labels, size_t nlabels,
		       const char *le)
{
	bool open = false;

	for (size_t i = 0; labels && i < nlabels; i++) {
		if (!is_label_name(labels[i].name) || (le && !strcmp(labels[i].name, "le")))
			continue;
		put_char(e, open ? ',' : '{');
		open = true;
		put_str(e, labels[i].name);
		put(e, "=\"", 2);
		put_escaped(e, labels[i].value, true);
		put_char(e, '"');
	}
	if (le) {
		put_str(e, open ? ",le=\"" : "{le=\"");
		put_str(e, le);
		put_char(e, '"');
		open = true;
	}
	if (open)
		put_char(e, '}');
}

/* Sample name: the family name plus suffix; OpenMetrics counters end in _total. */
static void put_sample_name(struct expo *e, const char *suffix)
{
	put_str(e, e->family);
	if (e->format == EXPO_OPENMETRICS_100 && e->type == EXPO_COUNTER && !has_total(e->family))
		put_str(e, "_total");
	put_str(e, suffix);
}

static void put_line(struct expo *e, const char *suffix, const struct expo_label *labels,
		     size_t nlabels, const char *le, const char *value)
{
	put_sample_name(e, suffix);
	put_labels(e, labels, nlabels, le);
	put_char(e, ' ');
	put_str(e, value);
	put_char(e, '\n');
}

static bool sample_ok(struct expo *e, bool histogram)
{
	if (!e->family[0] || (e->type == EXPO_HISTOGRAM) != histogram) {
		expo_fail(e, -EINVAL);
		return false;
	}
	return !e->err;
}

void expo_sample(struct expo *e, const struct expo_label *labels, size_t nlabels, double value)
{
	char num[EXPO_NUM_MAX];

	if (!sample_ok(e, false))
		return;
	expo_format_double(num, sizeof(num), value, e->format == EXPO_OPENMETRICS_100);
	put_line(e, "", labels, nlabels, NULL, num);
}

void expo_sample_u64(struct expo *e, const struct expo_label *labels, size_t nlabels,
		     uint64_t value)
{
	char num[EXPO_NUM_MAX];

	if (!sample_ok(e, false))
		return;
	snprintf(num, sizeof(num), "%llu", (unsigned long long)value);
	put_line(e, "", labels, nlabels, NULL, num);
}

void expo_histogram(struct expo *e, const struct expo_label *labels, size_t nlabels,
		    const double *edges, const uint64_t *counts, size_t nedges, double sum)
{
	bool om = e->format == EXPO_OPENMETRICS_100;
	char le[EXPO_NUM_MAX], num[EXPO_NUM_MAX];
	uint64_t cum = 0;

	if (!sample_ok(e, true))
		return;
	for (size_t i = 0; i < nedges; i++) {
		cum += counts[i];
		/* A caller's own +Inf edge folds into the one written last. */
		if (isinf(edges[i]) && edges[i] > 0)
			continue;
		expo_format_double(le, sizeof(le), edges[i], om);
		snprintf(num, sizeof(num), "%llu", (unsigned long long)cum);
		put_line(e, "_bucket", labels, nlabels, le, num);
	}
	cum += counts[nedges];
	snprintf(num, sizeof(num), "%llu", (unsigned long long)cum);
	put_line(e, "_bucket", labels, nlabels, "+Inf", num);
	expo_format_double(le, sizeof(le), sum, om);
	put_line(e, "_sum", labels, nlabels, NULL, le);
	put_line(e, "_count", labels, nlabels, NULL, num);
}

int expo_finish(struct expo *e)
{
	if (e->format == EXPO_OPENMETRICS_100)
		put_str(e, "# EOF\n");
	return e->err;
}
