// SPDX-License-Identifier: GPL-2.0
/* The web config in force, its reloads, and the gate each request passes. */
#include "core/web.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"
#include "core/webauth.h"

#define WEB_CHECK_EVERY_MS 1000
#define WEB_FILES 4 /* the config, cert_file, key_file, client_ca_file */

struct file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	int err;
};

struct web {
	char *path; /* NULL: no file */
	enum web_exposure mode;
	struct web_config cfg;
	struct webauth *auth;
	struct file_id ids[WEB_FILES];
	uint64_t next_check_ms;
	/* rate_limit's token bucket, in thousandths of a request */
	uint64_t tokens_milli, refill_ms;
};

static void file_id(const char *path, struct file_id *id)
{
	struct stat st;

	memset(id, 0, sizeof(*id));
	if (!path)
		return;
	if (stat(path, &st)) {
		id->err = errno;
		return;
	}
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	id->size = st.st_size;
	id->mtime = st.st_mtim;
}

static void file_ids(const struct web *w, struct file_id *ids)
{
	file_id(w->path, &ids[0]);
	file_id(w->cfg.cert_file, &ids[1]);
	file_id(w->cfg.key_file, &ids[2]);
	file_id(w->cfg.client_ca_file, &ids[3]);
}

static void log_config(const struct web *w, const char *what)
{
	char q[300];

	log_info(what, "file=%s tls=%s client_auth=%d users=%u headers=%u exposure=%d",
		 log_quote(q, sizeof(q), w->path), w->cfg.tls ? "on" : "off",
		 (int)w->cfg.client_auth, w->cfg.nusers, w->cfg.nheaders, (int)w->mode);
}

int web_open(struct web **out, const char *path, enum web_exposure mode, char *err,
	     size_t errlen)
{
	struct web *w = calloc(1, sizeof(*w));
	int rc = -ENOMEM;

	*out = NULL;
	if (!w)
		return -ENOMEM;
	w->mode = mode;
	w->auth = webauth_new();
	if (!w->auth)
		goto fail;
	if (path && *path) {
		w->path = strdup(path);
		if (!w->path)
			goto fail;
		rc = webconfig_load(&w->cfg, path, err, errlen);
		if (rc)
			goto fail;
		file_ids(w, w->ids);
		log_config(w, "web config loaded");
	}
	if (mode == WEB_EXPOSE_AUTH && !w->cfg.nusers)
		log_warn("--web.sensitive-endpoints=auth without basic_auth_users: sensitive endpoints stay loopback-only");
	w->tokens_milli = (uint64_t)w->cfg.rate_burst * 1000;
	*out = w;
	return 0;
fail:
	web_free(w);
	return rc;
}

void web_free(struct web *w)
{
	if (!w)
		return;
	webconfig_free(&w->cfg);
	webauth_free(w->auth);
	free(w->path);
	free(w);
}

const struct web_config *web_config(const struct web *w)
{
	return &w->cfg;
}

uint64_t web_bcrypts(const struct web *w)
{
	return webauth_bcrypts(w->auth);
}

int web_reload(struct web *w, bool force, uint64_t now_ms)
{
	struct file_id ids[WEB_FILES];
	struct web_config next;
	char err[512], q[600];
	bool tls_changed;
	int rc;

	if (!w->path || (!force && now_ms < w->next_check_ms))
		return 0;
	w->next_check_ms = now_ms + WEB_CHECK_EVERY_MS;
	file_ids(w, ids);
	if (!force && !memcmp(ids, w->ids, sizeof(ids)))
		return 0;
	memcpy(w->ids, ids, sizeof(ids)); /* a bad file is reported once, not every second */
	rc = webconfig_load(&next, w->path, err, sizeof(err));
	if (rc) {
		log_error("web config not reloaded, keeping the previous one", "err=%s",
			  log_quote(q, sizeof(q), err));
		return 0;
	}
	tls_changed = webconfig_tls_differs(&w->cfg, &next);
	webconfig_free(&w->cfg);
	w->cfg = next;
	file_ids(w, w->ids);
	webauth_flush(w->auth);
	if (w->tokens_milli > (uint64_t)w->cfg.rate_burst * 1000)
		w->tokens_milli = (uint64_t)w->cfg.rate_burst * 1000;
	log_config(w, "web config reloaded");
	return tls_changed ? 1 : 0;
}

/* exporter-toolkit's rate_limit: rate.NewLimiter(rate.Every(interval), burst). */
static bool rate_allows(struct web *w, uint64_t now_ms)
{
	uint64_t cap = (uint64_t)w->cfg.rate_burst * 1000;

	if (!w->cfg.rate_interval_ms)
		return true;
	if (now_ms > w->refill_ms) {
		w->tokens_milli += (now_ms - w->refill_ms) * 1000 / w->cfg.rate_interval_ms;
		if (w->tokens_milli > cap)
			w->tokens_milli = cap;
	}
	w->refill_ms = now_ms;
	if (w->tokens_milli < 1000)
		return false;
	w->tokens_milli -= 1000;
	return true;
}

unsigned int web_gate(struct web *w, bool sensitive, const struct sockaddr *peer,
		      const char *authorization, uint64_t now_ms)
{
	enum web_auth_state auth = WEB_AUTH_OFF;

	if (!rate_allows(w, now_ms))
		return 429;
	if (w->cfg.nusers) {
		switch (webauth_check(w->auth, &w->cfg, authorization, now_ms)) {
		case WEBAUTH_OK:
			auth = WEB_AUTH_PASSED;
			break;
		case WEBAUTH_BUSY:
			auth = WEB_AUTH_BUSY;
			break;
		default:
			auth = WEB_AUTH_FAILED;
		}
	}
	return web_verdict(w->mode, sensitive, web_is_loopback(peer), auth);
}
