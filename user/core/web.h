/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Who may see what: the web config in force (--web.config.file, reread when
 * it or a file it names changes, or on SIGHUP), basic auth, the rate limit
 * and the sensitive endpoints' exposure (--web.sensitive-endpoints).
 *
 * With basic_auth_users every request needs a valid user, from loopback too
 * (as exporter-toolkit does). Sensitive endpoints (every route but / and
 * the metrics path) then also depend on the exposure mode:
 *   localhost  only to clients connecting from a loopback address;
 *   auth       also to remote clients once authenticated (basic_auth_users
 *              set; without users it is the same as localhost);
 *   all        to every client the rest lets in;
 *   off        to nobody (404).
 * A sensitive endpoint refused for the address answers 404, as if absent.
 */
#ifndef ERPSCOPE_WEB_H
#define ERPSCOPE_WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/webconfig.h"

struct sockaddr;
struct web;

/* Loads path ("" or NULL: no file). Returns 0, or negative errno with one line in err. */
int web_open(struct web **out, const char *path, enum web_exposure mode, char *err,
	     size_t errlen);
void web_free(struct web *w);

/*
 * Rereads the file when forced (SIGHUP) or, at most once a second, when it
 * or a file it names changed (inode, size or mtime). A bad file is logged
 * and the old config stays. Returns 1 when the TLS settings changed (the
 * server must restart to apply them), else 0.
 */
int web_reload(struct web *w, bool force, uint64_t now_ms);

const struct web_config *web_config(const struct web *w);
uint64_t web_bcrypts(const struct web *w);

/*
 * Decides one request: 0 to serve it, else the status to answer (401, 404,
 * 429). sensitive: the route is not a metrics one (unknown paths are not).
 */
unsigned int web_gate(struct web *w, bool sensitive, const struct sockaddr *peer,
		      const char *authorization, uint64_t now_ms);

/* The decision without state, for tests: see the comment at the top. */
enum web_auth_state { WEB_AUTH_OFF, WEB_AUTH_PASSED, WEB_AUTH_FAILED, WEB_AUTH_BUSY };
unsigned int web_verdict(enum web_exposure mode, bool sensitive, bool loopback,
			 enum web_auth_state auth);
/* 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
bool web_is_loopback(const struct sockaddr *sa);

#endif
