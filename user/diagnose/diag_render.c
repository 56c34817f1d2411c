// SPDX-License-Identifier: GPL-2.0
/* /diagnose as text or JSON, and its times (RFC 3339, UTC). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/json.h"
#include "diagnose/diagnose.h"

void diag_rfc3339(double t, char *buf, size_t size)
{
	time_t s = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&s, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, size, "?");
}

static int digits(const char **p, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++, (*p)++) {
		if (**p < '0' || **p > '9')
			return -1;
		v = v * 10 + (**p - '0');
	}
	return v;
}

int diag_parse_rfc3339(const char *s, double *out)
{
	struct tm tm = { 0 };
	const char *p = s;
	double frac = 0;
	long off = 0;
	int v[6];
	static const char sep[6] = { '-', '-', 'T', ':', ':', 0 };
	static const int width[6] = { 4, 2, 2, 2, 2, 2 };

	for (int i = 0; i < 6; i++) {
		v[i] = digits(&p, width[i]);
		if (v[i] < 0)
			return -EINVAL;
		if (sep[i] && *p != sep[i] && !(i == 2 && (*p == 't' || *p == ' ')))
			return -EINVAL;
		if (sep[i])
			p++;
	}
	if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 60)
		return -EINVAL;
	if (*p == '.') {
		double scale = 0.1;

		if (p[1] < '0' || p[1] > '9')
			return -EINVAL;
		for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
			frac += (*p - '0') * scale;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, hh, mm;

		p++;
		hh = digits(&p, 2);
		if (hh < 0 || *p++ != ':')
			return -EINVAL;
		mm = digits(&p, 2);
		if (mm < 0 || hh > 23 || mm > 59)
			return -EINVAL;
		off = sign * (hh * 3600L + mm * 60L);
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	tm.tm_year = v[0] - 1900;
	tm.tm_mon = v[1] - 1;
	tm.tm_mday = v[2];
	tm.tm_hour = v[3];
	tm.tm_min = v[4];
	tm.tm_sec = v[5];
	*out = (double)(timegm(&tm) - off) + frac;
	return 0;
}

static enum diag_severity worst(const struct diag_result *r)
{
	enum diag_severity w = DIAG_INFO;

	for (size_t i = 0; i < r->n; i++)
		if (r->f[i].severity > w)
			w = r->f[i].severity;
	return w;
}

static bool wrong(const struct diag_result *r)
{
	return r->n && worst(r) >= DIAG_WARNING;
}

struct sbuf {
	char *buf;
	size_t len, cap;
	int err;
};

static void put(struct sbuf *b, const char *f, ...) __attribute__((format(printf, 2, 3)));
static void put(struct sbuf *b, const char *f, ...)
{
	va_list ap;
	int n;

	if (b->err)
		return;
	for (;;) {
		va_start(ap, f);
		n = vsnprintf(b->buf + b->len, b->cap - b->len, f, ap);
		va_end(ap);
		if (n < 0) {
			b->err = -EINVAL;
			return;
		}
		if ((size_t)n < b->cap - b->len)
			break;
		{
			size_t ncap = (b->cap + (size_t)n + 1) * 2;
			char *nb = realloc(b->buf, ncap);

			if (!nb) {
				b->err = -ENOMEM;
				return;
			}
			b->buf = nb;
			b->cap = ncap;
		}
	}
	b->len += (size_t)n;
}

/* The numbers that say nothing is wrong (or how things stand), one line each. */
static void summary_text(struct sbuf *b, const struct diag_summary *s)
{
	if (s->pool_known)
		put(b, "  HTTP workers: %u, busy %.0f%% of the window; %llu connections waited %.3f s on average in the listen queue\n",
		    s->workers, s->occupancy * 100, (unsigned long long)s->waits, s->wait_mean);
	else
		put(b, "  HTTP workers: not measured (tcp probe off, or no snapshot yet)\n");
	if (s->pg_known)
		put(b, "  PostgreSQL: %llu statements, %.2f s\n", (unsigned long long)s->pg_calls,
		    s->pg_seconds);
	put(b, "  OOM kills: %u; workers killed by the master: %u; failed outbound connects: %u; lock waits: %u; deadlocks: %u\n",
	    s->oom_kills, s->worker_kills, s->connect_failures, s->lock_waits, s->deadlocks);
}

int diag_render_text(const struct diag_input *in, const struct diag_result *r, char **body,
		     size_t *len)
{
	struct sbuf b = { .cap = 4096 };
	char from[32], to[32], since[32];
	size_t shown = 0;

	b.buf = malloc(b.cap);
	if (!b.buf)
		return -ENOMEM;
	b.buf[0] = 0;
	diag_rfc3339(in->from, from, sizeof(from));
	diag_rfc3339(in->to, to, sizeof(to));
	put(&b, "# erpscope diagnose: %s .. %s (%.0f s measured between snapshots); ?format=json for JSON\n",
	    from, to, r->sum.span);
	if (!wrong(r))
		put(&b, "nothing wrong: no rule found a problem in this window\n");
	else
		put(&b, "%s: %zu finding%s, most important first\n", diag_severity_name(worst(r)),
		    r->n, r->n > 1 ? "s" : "");
	summary_text(&b, &r->sum);
	for (size_t i = 0; i < r->n; i++) {
		const struct diag_finding *f = &r->f[i];

		diag_rfc3339(f->since, since, sizeof(since));
		put(&b, "\n%zu. [%s] %s: %s\n", ++shown, diag_severity_name(f->severity),
		    diag_rules[f->rule].id, f->title);
		put(&b, "   cause:    %s\n", f->cause);
		for (unsigned int k = 0; k < f->nev; k++)
			put(&b, "   %s %s (%s)\n", k ? "         " : "evidence:", f->ev[k].what,
			    f->ev[k].check);
		put(&b, "   action:   %s\n", f->action);
		put(&b, "   since:    %s\n", since);
	}
	if (b.err) {
		free(b.buf);
		return b.err;
	}
	*body = b.buf;
	*len = b.len;
	return 0;
}

void diag_render_json(const struct diag_input *in, const struct diag_result *r, struct json *j)
{
	const struct diag_summary *s = &r->sum;
	char t[32];

	json_object_begin(j, NULL);
	json_str(j, "status", wrong(r) ? diag_severity_name(worst(r)) : "ok");
	json_object_begin(j, "window");
	diag_rfc3339(in->from, t, sizeof(t));
	json_str(j, "from", t);
	diag_rfc3339(in->to, t, sizeof(t));
	json_str(j, "to", t);
	json_double(j, "measured_seconds", s->span);
	json_object_end(j);
	json_object_begin(j, "summary");
	if (s->pool_known) {
		json_u64(j, "http_workers", s->workers);
		json_double(j, "http_occupancy", s->occupancy);
		json_u64(j, "listen_queue_waits", s->waits);
		json_double(j, "listen_queue_wait_mean_seconds", s->wait_mean);
	}
	if (s->pg_known) {
		json_u64(j, "pg_statements", s->pg_calls);
		json_double(j, "pg_seconds", s->pg_seconds);
	}
	json_u64(j, "oom_kills", s->oom_kills);
	json_u64(j, "worker_kills", s->worker_kills);
	json_u64(j, "connect_failures", s->connect_failures);
	json_u64(j, "lock_waits", s->lock_waits);
	json_u64(j, "deadlocks", s->deadlocks);
	json_object_end(j);
	json_array_begin(j, "findings");
	for (size_t i = 0; i < r->n; i++) {
		const struct diag_finding *f = &r->f[i];

		json_object_begin(j, NULL);
		json_str(j, "id", diag_rules[f->rule].id);
		json_str(j, "severity", diag_severity_name(f->severity));
		json_str(j, "title", f->title);
		json_str(j, "cause", f->cause);
		json_array_begin(j, "evidence");
		for (unsigned int k = 0; k < f->nev; k++) {
			json_object_begin(j, NULL);
			json_str(j, "what", f->ev[k].what);
			json_str(j, "check", f->ev[k].check);
			json_object_end(j);
		}
		json_array_end(j);
		json_str(j, "action", f->action);
		diag_rfc3339(f->since, t, sizeof(t));
		json_str(j, "since", t);
		json_object_end(j);
	}
	json_array_end(j);
	json_object_end(j);
}
