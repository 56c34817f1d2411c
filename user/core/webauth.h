/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Basic auth against the web config's bcrypt hashes. A bcrypt costs tens of
 * milliseconds on the daemon's one thread, so a password that checked out is
 * remembered (by user and the SHA-256 of user and password, never the
 * password) for WEBAUTH_TTL_MS; failures are never remembered, and fresh
 * checks are rationed (WEBAUTH_CHECKS_PER_S) so guessing cannot stall the
 * loop, while a remembered scrape never waits for that ration.
 */
#ifndef ERPSCOPE_WEBAUTH_H
#define ERPSCOPE_WEBAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/webconfig.h"

#define WEBAUTH_USER_MAX 256
#define WEBAUTH_PASS_MAX 256
#define WEBAUTH_CACHE 64
#define WEBAUTH_TTL_MS (10 * 60 * 1000)
#define WEBAUTH_CHECKS_PER_S 5

/*
 * Parses an Authorization header: "Basic" (any case), spaces, base64 of
 * "user:password" (RFC 7617). Returns 0 with NUL-terminated user and pass,
 * or -EINVAL (another scheme, bad base64, no colon, a NUL or control byte in
 * user, too long).
 */
int webauth_parse_basic(const char *header, char *user, size_t ulen, char *pass, size_t plen);

enum webauth_result { WEBAUTH_OK, WEBAUTH_DENIED, WEBAUTH_BUSY };

struct webauth;

struct webauth *webauth_new(void);
void webauth_free(struct webauth *a);
/* Forgets every remembered password: the users or their hashes changed. */
void webauth_flush(struct webauth *a);
/* How many bcrypt checks ran, for tests and self-metrics. */
uint64_t webauth_bcrypts(const struct webauth *a);

/*
 * Checks the Authorization header (NULL: none) against c's users.
 * WEBAUTH_BUSY: the ration of fresh checks for this second is spent.
 */
enum webauth_result webauth_check(struct webauth *a, const struct web_config *c,
				  const char *header, uint64_t now_ms);

#endif
