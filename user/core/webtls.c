// SPDX-License-Identifier: GPL-2.0
#include "core/webtls.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* crypto/tls's CipherSuites(), with the GnuTLS key exchange, cipher and MAC of each. */
static const struct suite {
	const char *name;
	unsigned int id;
	const char *kx, *cipher, *mac; /* kx NULL: a TLS 1.3 suite */
} suites[] = {
	{ "TLS_RSA_WITH_AES_128_CBC_SHA", 0x002f, "RSA", "AES-128-CBC", "SHA1" },
	{ "TLS_RSA_WITH_AES_256_CBC_SHA", 0x0035, "RSA", "AES-256-CBC", "SHA1" },
	{ "TLS_RSA_WITH_AES_128_GCM_SHA256", 0x009c, "RSA", "AES-128-GCM", "AEAD" },
	{ "TLS_RSA_WITH_AES_256_GCM_SHA384", 0x009d, "RSA", "AES-256-GCM", "AEAD" },
	{ "TLS_AES_128_GCM_SHA256", 0x1301, NULL, "AES-128-GCM", "AEAD" },
	{ "TLS_AES_256_GCM_SHA384", 0x1302, NULL, "AES-256-GCM", "AEAD" },
	{ "TLS_CHACHA20_POLY1305_SHA256", 0x1303, NULL, "CHACHA20-POLY1305", "AEAD" },
	{ "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", 0xc009, "ECDHE-ECDSA", "AES-128-CBC", "SHA1" },
	{ "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", 0xc00a, "ECDHE-ECDSA", "AES-256-CBC", "SHA1" },
	{ "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", 0xc013, "ECDHE-RSA", "AES-128-CBC", "SHA1" },
	{ "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", 0xc014, "ECDHE-RSA", "AES-256-CBC", "SHA1" },
	{ "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", 0xc02b, "ECDHE-ECDSA", "AES-128-GCM", "AEAD" },
	{ "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", 0xc02c, "ECDHE-ECDSA", "AES-256-GCM", "AEAD" },
	{ "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", 0xc02f, "ECDHE-RSA", "AES-128-GCM", "AEAD" },
	{ "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", 0xc030, "ECDHE-RSA", "AES-256-GCM", "AEAD" },
	{ "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", 0xcca8, "ECDHE-RSA", "CHACHA20-POLY1305", "AEAD" },
	{ "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", 0xcca9, "ECDHE-ECDSA", "CHACHA20-POLY1305", "AEAD" },
	/* Go's older names of the last two */
	{ "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", 0xcca8, "ECDHE-RSA", "CHACHA20-POLY1305", "AEAD" },
	{ "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", 0xcca9, "ECDHE-ECDSA", "CHACHA20-POLY1305", "AEAD" },
};

static const struct curve {
	const char *name;
	unsigned int id;
	const char *group;
} curves[] = {
	{ "CurveP256", 23, "GROUP-SECP256R1" },
	{ "CurveP384", 24, "GROUP-SECP384R1" },
	{ "CurveP521", 25, "GROUP-SECP521R1" },
	{ "X25519", 29, "GROUP-X25519" },
};

#define NSUITES (sizeof(suites) / sizeof(suites[0]))
#define NCURVES (sizeof(curves) / sizeof(curves[0]))

int webtls_suite_id(const char *name)
{
	for (size_t i = 0; i < NSUITES; i++) {
		if (!strcmp(name, suites[i].name))
			return (int)suites[i].id;
	}
	return -1;
}

int webtls_curve_id(const char *name)
{
	for (size_t i = 0; i < NCURVES; i++) {
		if (!strcmp(name, curves[i].name))
			return (int)curves[i].id;
	}
	return -1;
}

static const struct suite *suite_by_id(unsigned int id)
{
	for (size_t i = 0; i < NSUITES; i++) {
		if (suites[i].id == id)
			return &suites[i];
	}
	return NULL;
}

struct out {
	char *buf;
	size_t size, len;
	bool full;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->len, o->size - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->size - o->len)
		o->full = true;
	else
		o->len += (size_t)n;
}

static const char *part_of(const struct suite *s, int part)
{
	return part == 0 ? s->kx : part == 1 ? s->cipher : s->mac;
}

/* Adds "+v" unless seen already: the suites share their parts. */
static void put_once(struct out *o, const char **seen, size_t *n, const char *v)
{
	for (size_t i = 0; i < *n; i++) {
		if (!strcmp(seen[i], v))
			return;
	}
	seen[(*n)++] = v;
	put(o, ":+%s", v);
}

/* One part (0 kx, 1 cipher, 2 MAC) of each listed TLS 1.2 suite, and TLS 1.3's AEADs. */
static void put_parts(struct out *o, const struct web_config *c, int part)
{
	const char *seen[WEB_MAX_SUITES + NSUITES];
	size_t n = 0;

	for (unsigned int i = 0; i < c->nsuites; i++) {
		const struct suite *s = suite_by_id(c->suites[i]);

		if (s && s->kx)
			put_once(o, seen, &n, part_of(s, part));
	}
	if (c->max_version < 0x0304 || !part)
		return;
	for (size_t i = 0; i < NSUITES; i++) {
		if (!suites[i].kx)
			put_once(o, seen, &n, part_of(&suites[i], part));
	}
}

int webtls_priority(const struct web_config *c, char *buf, size_t size)
{
	struct out o = { .buf = buf, .size = size };
	bool any12 = false;

	put(&o, "NORMAL:-VERS-ALL");
	for (unsigned int v = c->min_version; v <= c->max_version && v <= 0x0304; v++)
		put(&o, ":+VERS-TLS1.%u", v - 0x0301);
	for (unsigned int i = 0; i < c->nsuites; i++) {
		const struct suite *s = suite_by_id(c->suites[i]);

		any12 = any12 || (s && s->kx);
	}
	if (any12) {
		put(&o, ":-KX-ALL");
		put_parts(&o, c, 0);
		put(&o, ":-CIPHER-ALL");
		put_parts(&o, c, 1);
		put(&o, ":-MAC-ALL");
		put_parts(&o, c, 2);
	}
	if (c->ncurves) {
		put(&o, ":-GROUP-ALL");
		for (unsigned int i = 0; i < c->ncurves; i++) {
			for (size_t j = 0; j < NCURVES; j++) {
				if (curves[j].id == c->curves[i])
					put(&o, ":+%s", curves[j].group);
			}
		}
	}
	if (c->prefer_server_suites)
		put(&o, ":%%SERVER_PRECEDENCE");
	return o.full ? -ENAMETOOLONG : 0;
}

/*
 * GnuTLS's handshake-time check for the Verify modes: a certificate sent
 * must chain to client_ca; none at all is fine here (REQUIRE, where set,
 * already refuses that). gnutls_session_set_verify_cert would also refuse a
 * client that sends none, which VerifyClientCertIfGiven must let in.
 */
static int verify_given(gnutls_session_t s)
{
	unsigned int n = 0, status = 0;

	if (!gnutls_certificate_get_peers(s, &n) || !n)
		return 0;
	if (gnutls_certificate_verify_peers2(s, &status) < 0 || status)
		return -1;
	return 0;
}

void webtls_session_policy(void *session, enum web_client_auth auth)
{
	gnutls_session_t s = session;

	switch (auth) {
	case WEB_NO_CLIENT_CERT:
		gnutls_certificate_server_set_request(s, GNUTLS_CERT_IGNORE);
		break;
	case WEB_REQUEST_CLIENT_CERT:
		gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUEST);
		break;
	case WEB_REQUIRE_ANY_CLIENT_CERT:
		gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
		break;
	case WEB_VERIFY_CLIENT_CERT_IF_GIVEN:
		gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUEST);
		gnutls_session_set_verify_function(s, verify_given);
		break;
	case WEB_REQUIRE_AND_VERIFY_CLIENT_CERT:
		gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
		gnutls_session_set_verify_function(s, verify_given);
		break;
	}
}
