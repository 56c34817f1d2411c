// SPDX-License-Identifier: GPL-2.0
/*
 * The diagnose poller (a snapshot every 5 s, the new events with it) and
 * GET /diagnose: ?format=text|json, ?window=<duration> (10s..24h, default
 * 15m), ?at=<RFC 3339> (the window centred on that time, within the last
 * 24 h). Without at, the window ends now, with a snapshot taken now.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/erpscope.h"
#include "core/http.h"
#include "core/json.h"
#include "core/log.h"
#include "core/poller.h"
#include "diagnose/diagnose.h"
#include "pg/pg.h"

#define WINDOW_DEFAULT_MS (15u * 60 * 1000)
#define WINDOW_MIN_MS (10u * 1000)
#define TEXT_CT "text/plain; charset=utf-8"

static double unix_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int diag_init(struct poller *pl)
{
	struct diag_history *h = calloc(1, sizeof(*h));
	struct diag_snap s;
	double now = unix_now();
	int err;

	if (!h)
		return -ENOMEM;
	err = diag_history_init(h);
	if (err) {
		free(h);
		return err;
	}
	pl->priv = h;
	log_info("diagnose history", "bytes=%zu fine=%ux%us coarse=%ux%us events=%u",
		 diag_history_bytes(), DIAG_FINE_N, DIAG_FINE_MS / 1000, DIAG_COARSE_N,
		 DIAG_COARSE_S, DIAG_EVENTS);
	/* The baseline: what happened since the daemon started is in the window. */
	diag_read_snap(pl->es, h, now, NULL, &s);
	diag_history_snap(h, &s);
	return 0;
}

static void diag_tick(struct poller *pl, uint64_t now_ms)
{
	struct diag_history *h = pl->priv;
	struct diag_snap s;
	double now = unix_now();

	diag_read_events(pl->es, h, now);
	diag_read_crons(pl->es, h, now);
	diag_read_snap(pl->es, h, now, diag_history_last(h), &s);
	diag_history_snap(h, &s);
}

static void diag_free(struct poller *pl)
{
	if (pl->priv)
		diag_history_free(pl->priv);
	free(pl->priv);
	pl->priv = NULL;
}

const struct poller_ops diagnose_poller_ops = {
	.name = "diagnose",
	.interval_ms = DIAG_FINE_MS,
	.init = diag_init,
	.tick = diag_tick,
	.free = diag_free,
};

/* ---------------------------------------------------------------- GET /diagnose */

struct pg_lookup {
	struct erpscope *es;
	bool live;
	/* p95 per fingerprint, read once */
	uint64_t fp[64];
	double p95[64];
	unsigned int n;
	bool read;
};

static const char *fp_text(void *arg, uint64_t fp)
{
	struct pg_lookup *l = arg;

	return pg_fingerprint_text(l->es, fp);
}

static void on_p95(void *arg, const struct pg_stmt *st)
{
	struct pg_lookup *l = arg;

	if (l->n < 64 && st->row->fp != ES_PG_FP_OTHER) {
		l->fp[l->n] = st->row->fp;
		l->p95[l->n++] = st->row->wcalls ? st->row->wp95 : st->row->p95;
	}
}

static double fp_p95(void *arg, uint64_t fp)
{
	struct pg_lookup *l = arg;

	if (!l->live)
		return -1;
	if (!l->read) {
		l->read = true;
		pg_statements(l->es, on_p95, l);
	}
	for (unsigned int i = 0; i < l->n; i++)
		if (l->fp[i] == fp)
			return l->p95[i];
	return -1;
}

static int bad(struct http_exchange *x, const char *msg)
{
	return http_reply_text(x, 400, TEXT_CT, msg);
}

int diagnose_http(void *arg, struct http_exchange *x)
{
	struct erpscope *es = arg;
	struct poller *pl = NULL;
	const char *format = http_query(x, "format"), *window = http_query(x, "window");
	const char *at = http_query(x, "at");
	unsigned int window_ms = WINDOW_DEFAULT_MS;
	struct pg_lookup pg = { .es = es };
	struct diag_input in = { .fp_text = fp_text, .fp_p95 = fp_p95, .fp_arg = &pg };
	struct diag_result res;
	struct diag_snap live;
	double now = unix_now(), t_at;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	int err;

	for (int i = 0; i < es->npollers; i++)
		if (es->pollers[i].ops == &diagnose_poller_ops && es->pollers[i].up)
			pl = &es->pollers[i];
	if (format && strcmp(format, "json") && strcmp(format, "text"))
		return bad(x, "format must be text or json\n");
	if (window && (config_parse_duration_ms(window, &window_ms) || window_ms < WINDOW_MIN_MS ||
		       window_ms > DIAG_KEEP_S * 1000u))
		return bad(x, "window must be a duration from 10s to 24h\n");
	if (at && (diag_parse_rfc3339(at, &t_at) || t_at > now + 60 || t_at < now - DIAG_KEEP_S))
		return bad(x, "at must be an RFC 3339 time within the last 24h, e.g. 2026-01-31T03:00:00Z\n");
	if (!pl)
		return http_reply_text(x, 503, TEXT_CT, "the diagnose poller is not running (see the log)\n");
	in.h = pl->priv;
	in.cores = cores > 0 ? (unsigned int)cores : 1;
	in.cron_threshold = es->cfg.diag_cron_ms / 1000.0;
	/* What the log holds up to now, and the crons running now. */
	diag_read_events(es, pl->priv, now);
	if (!at)
		diag_read_crons(es, pl->priv, now);
	if (at) {
		in.from = t_at - window_ms / 2000.0;
		in.to = t_at + window_ms / 2000.0;
		if (in.to > now)
			in.to = now;
	} else {
		in.from = now - window_ms / 1000.0;
		in.to = now;
	}
	diag_history_window(in.h, in.from, in.to, &in.start, &in.end);
	if (in.to >= now - 1) {
		/* Kept: what grew most since the window began. */
		diag_read_snap(es, pl->priv, now, in.start, &live);
		in.end = &live;
		pg.live = true;
	}
	if (!in.start || !in.end)
		in.start = in.end = NULL;
	err = diag_evaluate(&in, &res);
	if (err)
		return err;
	if (format && !strcmp(format, "json")) {
		struct json j;

		json_init(&j);
		diag_render_json(&in, &res, &j);
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
		err = diag_render_text(&in, &res, &x->body, &x->len);
		if (!err) {
			x->status = 200;
			x->content_type = TEXT_CT;
		}
	}
	diag_result_free(&res);
	return err;
}
