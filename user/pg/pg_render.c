// SPDX-License-Identifier: GPL-2.0
/*
 * GET /queries: the top statements as a table (text, or JSON with
 * ?format=json): fingerprint, database, normalised text, calls, total,
 * mean, p50/p95/p99 (from the fine bins), max, buffer misses, lock waits,
 * slow calls, errors, and which clients sent it (from the kernel's calls per
 * (fingerprint, backend) and each backend's linked client). Only normalised
 * text ever leaves: literals were dropped when the text was first seen.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "core/bpfutil.h"
#include "core/clock.h"
#include "core/erpscope.h"
#include "core/http.h"
#include "core/json.h"
#include "pg/pg.h"
#include "pg.skel.h"
#include "pg/pg_normalize.h"
#include "pg/pg_senders.h"

#define SENDERS_SHOWN 8
/* Budget: the kernel's pg_senders holds at most this many entries anyway. */
#define PG_SENDERS_MAX 16384

struct senders {
	struct pg_priv *pp;
	struct pg_procs *procs;
	struct pg_senders all;
};

void pg_client_labels(const struct pg_client *c, char *role, size_t rsize, char *worker,
		      size_t wsize)
{
	switch (c ? c->kind : PG_LINK_UNKNOWN) {
	case PG_LINK_WORKER:
		snprintf(role, rsize, "%s", role_name(c->role));
		snprintf(worker, wsize, "%s", c->worker);
		break;
	case PG_LINK_LOCAL:
		snprintf(role, rsize, "local");
		if (c->pid)
			snprintf(worker, wsize, "%u", c->pid);
		else
			snprintf(worker, wsize, "untracked");
		break;
	case PG_LINK_REMOTE:
		snprintf(role, rsize, "remote");
		snprintf(worker, wsize, "%s", c->addr);
		break;
	default:
		snprintf(role, rsize, "unlinked");
		worker[0] = 0;
		break;
	}
}

static void sender_entry(void *arg, const void *key, const void *values, int n, size_t stride)
{
	const struct es_pg_sender_key *k = key;
	struct senders *s = arg;
	struct pg_proc *pr = s->procs ? pg_procs_find(s->procs, k->tgid) : NULL;
	struct pg_sender x = { .fp = k->fp, .db = PG_SENDER_ANY_DB, .calls = *(const __u64 *)values };

	(void)n;
	(void)stride;
	if (pr && pr->db[0])
		x.db = pg_db_id(s->pp, pr->db);
	pg_client_labels(pr ? &pr->client : NULL, x.role, sizeof(x.role), x.worker,
			 sizeof(x.worker));
	pg_senders_add(&s->all, &x);
}

/* The senders of a row, most calls first, into out (at most max). */
static size_t row_senders(const struct senders *s, const struct pg_row *r,
			  struct pg_sender *out, size_t max)
{
	if (r->fp == ES_PG_FP_OTHER)
		return 0;
	return pg_senders_of(&s->all, r->fp, r->db, out, max);
}

static void fp_hex(char *buf, size_t size, __u64 fp)
{
	if (fp == ES_PG_FP_OTHER)
		snprintf(buf, size, "other");
	else
		snprintf(buf, size, "%016llx", (unsigned long long)fp);
}

static const char *row_text(struct pg_priv *pp, const struct pg_row *r, unsigned int *cmd)
{
	*cmd = ES_PG_CMD_OTHER;
	if (r->fp == ES_PG_FP_OTHER)
		return NULL;
	return pg_queries_text(pp->q, r->fp, cmd);
}

static void render_json(struct pg_priv *pp, const struct pg_row *rows, size_t n,
			unsigned int window_ms, const struct senders *s, struct json *j)
{
	struct pg_sender top[SENDERS_SHOWN];

	json_object_begin(j, NULL);
	json_u64(j, "top_k", pg_queries_topk(pp));
	json_u64(j, "fingerprints", pg_queries_count(pp));
	json_double(j, "window_seconds", (double)window_ms / 1e3);
	json_double(j, "window_step_seconds", (double)pg_queries_window_slot_ms(pp) / 1e3);
	json_array_begin(j, "statements");
	for (size_t i = 0; i < n; i++) {
		const struct pg_row *r = &rows[i];
		unsigned int cmd;
		const char *text = row_text(pp, r, &cmd);
		char fp[20];
		size_t ns;

		fp_hex(fp, sizeof(fp), r->fp);
		json_object_begin(j, NULL);
		json_str(j, "fingerprint", fp);
		json_str(j, "db", pg_db_name(pp, r->db));
		json_str(j, "command", pg_cmd_name(cmd));
		if (text)
			json_str(j, "query", text);
		else
			json_null(j, "query");
		json_u64(j, "calls", r->calls);
		json_double(j, "total_seconds", (double)r->total_ns / 1e9);
		json_double(j, "mean_seconds",
			    r->calls ? (double)r->total_ns / 1e9 / (double)r->calls : 0);
		if (r->fp != ES_PG_FP_OTHER) {
			json_double(j, "p50_seconds", r->p50);
			json_double(j, "p95_seconds", r->p95);
			json_double(j, "p99_seconds", r->p99);
			json_object_begin(j, "window");
			json_u64(j, "calls", r->wcalls);
			json_double(j, "p50_seconds", r->wp50);
			json_double(j, "p95_seconds", r->wp95);
			json_double(j, "p99_seconds", r->wp99);
			json_object_end(j);
			json_double(j, "max_seconds", (double)r->max_ns / 1e9);
			json_u64(j, "lock_waits", r->lock_waits);
			json_double(j, "lock_wait_seconds", (double)r->lock_ns / 1e9);
			json_u64(j, "slow_calls", r->slow);
			json_u64(j, "errors", r->errors);
		}
		json_u64(j, "buffer_misses", r->misses);
		json_array_begin(j, "senders");
		ns = row_senders(s, r, top, SENDERS_SHOWN);
		for (size_t k = 0; k < ns; k++) {
			json_object_begin(j, NULL);
			json_str(j, "role", top[k].role);
			json_str(j, "worker", top[k].worker);
			json_u64(j, "calls", top[k].calls);
			json_object_end(j);
		}
		json_array_end(j);
		json_object_end(j);
	}
	json_array_end(j);
	json_object_end(j);
}

static int appendf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int appendf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return -EINVAL;
		if ((size_t)n < *cap - *len)
			break;
		{
			size_t ncap = (*cap + (size_t)n + 1) * 2;
			char *nb = realloc(*buf, ncap);

			if (!nb)
				return -ENOMEM;
			*buf = nb;
			*cap = ncap;
		}
	}
	*len += (size_t)n;
	return 0;
}

/* The text on one line: control bytes (from quoted identifiers) as spaces. */
static void one_line(const char *in, char *out, size_t size)
{
	size_t i;

	for (i = 0; in[i] && i + 1 < size; i++)
		out[i] = (unsigned char)in[i] < 0x20 || in[i] == 0x7f ? ' ' : in[i];
	out[i] = 0;
}

static int render_text(struct pg_priv *pp, const struct pg_row *rows, size_t n,
		       unsigned int window_ms, const struct senders *s, char **body, size_t *blen)
{
	struct pg_sender top[SENDERS_SHOWN];
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	int err;

	if (!buf)
		return -ENOMEM;
	buf[0] = 0;
	err = appendf(
		&buf, &len, &cap,
		"# erpscope: top %u PostgreSQL statements by total time (%zu seen), then the rest per database as \"other\".\n"
		"# Literals are never shown: the text is the normalised statement. Times in ms; ?format=json for JSON.\n"
		"# p50..p99 over the daemon's lifetime; w_* over the last %.1f s (in steps of %.1f s; ?window=60s for less).\n"
		"%-16s %-16s %-8s %9s %11s %9s %9s %9s %9s %9s %9s %9s %9s %9s %8s %10s %6s %6s  %-30s %s\n",
		pg_queries_topk(pp), pg_queries_count(pp), (double)window_ms / 1e3,
		(double)pg_queries_window_slot_ms(pp) / 1e3, "fingerprint", "db", "command",
		"calls", "total_ms", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "w_calls", "w_p50_ms",
		"w_p95_ms", "w_p99_ms", "max_ms", "misses", "lockwait_ms", "slow", "errors",
		"sent_by", "query");
	for (size_t i = 0; i < n && !err; i++) {
		const struct pg_row *r = &rows[i];
		unsigned int cmd;
		const char *text = row_text(pp, r, &cmd);
		char fp[20], who[128] = "", line[ES_PG_TEXT_MAX];
		size_t ns = row_senders(s, r, top, 3), wl = 0;

		for (size_t k = 0; k < ns && wl + 1 < sizeof(who); k++) {
			int w = snprintf(who + wl, sizeof(who) - wl, "%s%s%s%s(%llu)", k ? "," : "",
					 top[k].role, top[k].worker[0] ? "/" : "", top[k].worker,
					 (unsigned long long)top[k].calls);

			if (w < 0)
				break;
			wl += (size_t)w;
		}
		if (wl >= sizeof(who))
			wl = sizeof(who) - 1;
		fp_hex(fp, sizeof(fp), r->fp);
		one_line(text ? text :
				(r->fp == ES_PG_FP_OTHER ? "(statements outside the top K)" :
							   "(text not captured)"),
			 line, sizeof(line));
		err = appendf(
			&buf, &len, &cap,
			"%-16s %-16s %-8s %9llu %11.3f %9.3f %9.3f %9.3f %9.3f %9llu %9.3f %9.3f %9.3f %9.3f %8llu %10.3f %6llu %6llu  %-30s %s\n",
			fp, pg_db_name(pp, r->db), pg_cmd_name(cmd), (unsigned long long)r->calls,
			(double)r->total_ns / 1e6,
			r->calls ? (double)r->total_ns / 1e6 / (double)r->calls : 0.0, r->p50 * 1e3,
			r->p95 * 1e3, r->p99 * 1e3, (unsigned long long)r->wcalls, r->wp50 * 1e3,
			r->wp95 * 1e3, r->wp99 * 1e3, (double)r->max_ns / 1e6,
			(unsigned long long)r->misses, (double)r->lock_ns / 1e6,
			(unsigned long long)r->slow, (unsigned long long)r->errors,
			who[0] ? who : "-", line);
	}
	if (err) {
		free(buf);
		return err;
	}
	*body = buf;
	*blen = len;
	return 0;
}

int pg_queries_http(void *arg, struct http_exchange *x)
{
	struct erpscope *es = arg;
	struct probe *p = erpscope_probe(es, "pg");
	const char *format = http_query(x, "format"), *limit = http_query(x, "limit");
	const char *window = http_query(x, "window");
	unsigned int window_ms;
	struct senders s = { .all.max = PG_SENDERS_MAX };
	struct pg_priv *pp;
	struct pg_row *rows;
	size_t n;
	int err;

	if (format && strcmp(format, "json") && strcmp(format, "text"))
		return http_reply_text(x, 400, "text/plain; charset=utf-8",
				       "format must be text or json\n");
	if (!p || !p->up || !p->priv)
		return http_reply_text(
			x, 503, "text/plain; charset=utf-8",
			"the pg probe is not running: no PostgreSQL binary with USDT probes was found (see the log)\n");
	pp = p->priv;
	window_ms = (unsigned int)pg_queries_window_ms(pp);
	if (window && (config_parse_duration_ms(window, &window_ms) || !window_ms ||
		       window_ms > pg_queries_window_ms(pp))) {
		char msg[96];

		snprintf(msg, sizeof(msg),
			 "window must be a duration from 1ms to %llus (--pg.quantile-window)\n",
			 (unsigned long long)pg_queries_window_ms(pp) / 1000);
		return http_reply_text(x, 400, "text/plain; charset=utf-8", msg);
	}
	pg_queries_refresh(pp, clock_ms(), true);
	err = pg_queries_rows(pp, window_ms, &rows, &n);
	if (err)
		return err;
	if (limit) {
		uint64_t v;

		if (http_parse_u64(limit, &v)) {
			free(rows);
			return http_reply_text(x, 400, "text/plain; charset=utf-8",
					       "limit must be a non-negative integer\n");
		}
		if (v < n)
			n = (size_t)v;
	}
	s.pp = pp;
	s.procs = pg_procs_of(es);
	bpf_hash_foreach(bpf_map__fd(pp->skel->maps.pg_senders), sizeof(struct es_pg_sender_key),
			 sizeof(__u64), false, sender_entry, &s);
	pg_senders_seal(&s.all);
	if (format && !strcmp(format, "json")) {
		struct json j;

		json_init(&j);
		render_json(pp, rows, n, window_ms, &s, &j);
		err = json_finish(&j);
		if (!err) {
			x->status = 200;
			x->content_type = "application/json";
			x->body = j.buf;
			x->len = j.len;
			j.buf = NULL;
		}
		json_free(&j);
	} else {
		err = render_text(pp, rows, n, window_ms, &s, &x->body, &x->len);
		if (!err) {
			x->status = 200;
			x->content_type = "text/plain; charset=utf-8";
		}
	}
	pg_senders_free(&s.all);
	free(rows);
	return err;
}
