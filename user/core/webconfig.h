/* SPDX-License-Identifier: GPL-2.0 */
/*
 * --web.config.file: the Prometheus exporter-toolkit's YAML web config
 * (tls_server_config, http_server_config, basic_auth_users, rate_limit), the
 * file node_exporter accepts. webconfig_parse() only reads the YAML (no file
 * access, fuzzed); webconfig_load() reads the file and the certificate files
 * it names and checks them with GnuTLS.
 */
#ifndef ERPSCOPE_WEBCONFIG_H
#define ERPSCOPE_WEBCONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEB_MAX_USERS 256
#define WEB_MAX_HEADERS 5
#define WEB_MAX_SUITES 32
#define WEB_MAX_CURVES 4
#define WEB_CONFIG_MAX (256 * 1024)

/* Go's crypto/tls ClientAuthType, by the names the file uses. */
enum web_client_auth {
	WEB_NO_CLIENT_CERT,
	WEB_REQUEST_CLIENT_CERT,
	WEB_REQUIRE_ANY_CLIENT_CERT,
	WEB_VERIFY_CLIENT_CERT_IF_GIVEN,
	WEB_REQUIRE_AND_VERIFY_CLIENT_CERT,
};

struct web_user {
	char *name;
	char *hash; /* bcrypt: $2a$, $2b$ or $2y$ */
};

struct web_header {
	const char *name; /* one of the five exporter-toolkit allows */
	char *value;
};

struct web_config {
	/* tls_server_config; paths are joined to the config file's directory */
	bool tls;                   /* any TLS key given: serve HTTPS */
	char *cert_file, *key_file, *client_ca_file;
	char *cert, *key, *client_ca; /* the inline PEM forms */
	enum web_client_auth client_auth;
	unsigned int min_version, max_version; /* 0x0301 (TLS10) .. 0x0304 (TLS13) */
	uint16_t suites[WEB_MAX_SUITES];       /* Go cipher suite IDs, in order */
	unsigned int nsuites;
	uint16_t curves[WEB_MAX_CURVES];       /* Go CurveIDs, in order */
	unsigned int ncurves;
	bool prefer_server_suites;
	/* http_server_config */
	bool http2; /* accepted; libmicrohttpd speaks HTTP/1.1 only */
	struct web_header headers[WEB_MAX_HEADERS];
	unsigned int nheaders;
	/* basic_auth_users */
	struct web_user users[WEB_MAX_USERS];
	unsigned int nusers;
	/* rate_limit: a token bucket over every request; interval 0 = off */
	unsigned int rate_interval_ms, rate_burst;
	/* Lines of the keys (1-based, 0 = absent), for messages about files. */
	unsigned int line_cert_file, line_key_file, line_client_ca_file, line_cert, line_key,
		line_client_ca, line_suites, line_curves;
	/* What webconfig_load read, PEM text, NUL-terminated (NULL: none). */
	char *cert_pem, *key_pem, *ca_pem;
	char priority[1024]; /* GnuTLS priority string (webtls.c) */
};

/*
 * Parses text (len bytes) into *c, as exporter-toolkit's strict YAML
 * decoding would: unknown and repeated keys are errors, as are values it
 * refuses (a TLS version, cipher, curve or header it does not know, a header
 * value it does not allow). dir is joined to relative paths (NULL: none).
 * name is used in messages. Returns 0, or -EINVAL with one line naming
 * name:line and the key in err. *c must be zeroed or freed before; on error
 * it holds nothing to free.
 */
int webconfig_parse(struct web_config *c, const char *text, size_t len, const char *dir,
		    const char *name, char *err, size_t errlen);

/*
 * Reads path (at most WEB_CONFIG_MAX bytes), parses it, reads the files it
 * names and checks the key pair, the CA and the priority string with GnuTLS.
 * Returns 0, or a negative errno with one line in err naming the key and its
 * line.
 */
int webconfig_load(struct web_config *c, const char *path, char *err, size_t errlen);

void webconfig_free(struct web_config *c);

/* True when any TLS-relevant setting (keys, certificates, priority) differs. */
bool webconfig_tls_differs(const struct web_config *a, const struct web_config *b);

#endif
