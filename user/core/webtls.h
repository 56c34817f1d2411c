/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The web config's TLS settings in GnuTLS terms: Go's cipher suite and curve
 * names, the priority string they make, and each session's client
 * certificate policy.
 */
#ifndef ERPSCOPE_WEBTLS_H
#define ERPSCOPE_WEBTLS_H

#include <stddef.h>

#include "core/webconfig.h"

/* Go's ID for a cipher suite name from tls.CipherSuites(), or -1. */
int webtls_suite_id(const char *name);
/* Go's CurveID for CurveP256, CurveP384, CurveP521 or X25519, or -1. */
int webtls_curve_id(const char *name);

/*
 * The GnuTLS priority string for c's versions, suites, curves and
 * preference. GnuTLS sets key exchanges, ciphers and MACs apart, so a list
 * of TLS 1.2 suites allows the products of their parts, and TLS 1.3 keeps
 * its AEAD ciphers (Go does not let cipher_suites touch TLS 1.3 either).
 * Returns 0 or -ENAMETOOLONG.
 */
int webtls_priority(const struct web_config *c, char *buf, size_t size);

/*
 * Applies the client_auth_type to a new TLS session (a gnutls_session_t),
 * before its handshake: request or require a certificate, and for the
 * Verify modes check a certificate sent against client_ca during the
 * handshake, so a refused client fails the handshake as with Go.
 */
void webtls_session_policy(void *session, enum web_client_auth auth);

#endif
