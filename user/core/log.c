// SPDX-License-Identifier: GPL-2.0
#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/libbpf.h>

/*
 * The one piece of process-wide state outside the daemon context: libbpf's
 * print callback carries no user pointer, so the level it filters on has to
 * live here.
 */
static enum log_level min_level = LOG_INFO;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

int log_level_parse(const char *name, enum log_level *out)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (!strcmp(name, level_names[i])) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void log_set_level(enum log_level level)
{
	min_level = level;
}

int log_enabled(enum log_level level)
{
	return level >= min_level;
}

const char *log_quote(char *buf, unsigned long size, const char *s)
{
	unsigned long o = 0;

	if (size < 3) {
		if (size)
			buf[0] = 0;
		return buf;
	}
	buf[o++] = '"';
	for (; *s && o + 4 < size; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
		} else if (c < 0x20 || c == 0x7f) {
			buf[o++] = '?';
		} else {
			buf[o++] = (char)c;
		}
	}
	buf[o++] = '"';
	buf[o] = 0;
	return buf;
}

static void vlog(enum log_level level, const char *msg, const char *kvfmt, va_list ap)
{
	char line[2048], qmsg[1024], ts[40];
	struct timespec now;
	struct tm tm;
	int n;

	if (!log_enabled(level))
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "level=%s ts=%s.%03ldZ msg=%s", level_names[level], ts,
		     now.tv_nsec / 1000000, log_quote(qmsg, sizeof(qmsg), msg));
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		n = (int)strlen(line);
	if (kvfmt && *kvfmt) {
		line[n++] = ' ';
		int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, kvfmt, ap);

		if (m > 0)
			n += m < (int)(sizeof(line) - (size_t)n - 1) ? m :
								       (int)(sizeof(line) - (size_t)n - 2);
	}
	line[n++] = '\n';
	fwrite(line, 1, (size_t)n, stderr);
}

void log_kv(enum log_level level, const char *msg, const char *kvfmt, ...)
{
	va_list ap;

	va_start(ap, kvfmt);
	vlog(level, msg, kvfmt, ap);
	va_end(ap);
}

/*
 * libbpf prints the verifier's log as one multi-line message. Each line
 * becomes a log line of its own; of a long log only the tail (where the
 * verifier says why it refused) stays at warn, the rest goes to debug.
 */
#define LIBBPF_TAIL_LINES 8

/* While a load that may be refused is being tried, libbpf's warnings go to debug. */
static bool libbpf_trial;

void log_libbpf_trial(bool on)
{
	libbpf_trial = on;
}

static int libbpf_print(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
	enum log_level level = lvl == LIBBPF_WARN && !libbpf_trial ? LOG_WARN : LOG_DEBUG;
	char *text = NULL, *line, *save = NULL;
	int nlines = 0, i = 0;
	char q[1100];

	if (!log_enabled(level) && !log_enabled(LOG_DEBUG))
		return 0;
	if (vasprintf(&text, fmt, ap) < 0)
		return 0;
	for (const char *c = text; *c; c++)
		nlines += *c == '\n';
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++) {
		enum log_level l = level;

		if (level == LOG_WARN && nlines > LIBBPF_TAIL_LINES && i > 0 &&
		    i < nlines - LIBBPF_TAIL_LINES)
			l = LOG_DEBUG;
		if (*line)
			log_kv(l, "libbpf", "detail=%s", log_quote(q, sizeof(q), line));
	}
	free(text);
	return 0;
}

void log_hook_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
