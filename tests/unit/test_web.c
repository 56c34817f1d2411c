// SPDX-License-Identifier: GPL-2.0
/*
 * The web config's YAML, its GnuTLS priority string, the Authorization
 * header, the bcrypt cache and the access rules.
 */
#include <arpa/inet.h>
#include <crypt.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "check.h"
#include "core/web.h"
#include "core/webauth.h"
#include "core/webconfig.h"
#include "core/webtls.h"

static int parse(struct web_config *c, const char *text, char *err, size_t errlen)
{
	return webconfig_parse(c, text, strlen(text), "/etc/erpscope", "web.yml", err, errlen);
}

static void test_parse_ok(void)
{
	struct web_config c;
	char err[512] = "";

	/* exporter-toolkit's web_config_noAuth_someCiphers.good.yml, with a CA */
	CHECK_INT(parse(&c, "tls_server_config:\n  cert_file: \"server.crt\"\n"
			    "  key_file: /abs/server.key\n"
			    "  client_auth_type: \"VerifyClientCertIfGiven\"\n"
			    "  client_ca_file: ca.crt\n  cipher_suites:\n"
			    "  - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n"
			    "  - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n"
			    "  min_version: TLS12\n  max_version: TLS12\n",
		      err, sizeof(err)), 0);
	CHECK(c.tls);
	CHECK_STR(c.cert_file, "/etc/erpscope/server.crt");
	CHECK_STR(c.key_file, "/abs/server.key");
	CHECK_INT(c.client_auth, WEB_VERIFY_CLIENT_CERT_IF_GIVEN);
	CHECK_INT(c.nsuites, 2);
	CHECK_INT(c.suites[0], 0xc02f);
	CHECK_INT(c.min_version, 0x0303);
	CHECK_INT(c.max_version, 0x0303);
	CHECK_STR(c.priority, "NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+ECDHE-RSA:-CIPHER-ALL"
			      ":+AES-128-GCM:+AES-256-GCM:-MAC-ALL:+AEAD:%SERVER_PRECEDENCE");
	webconfig_free(&c);

	/* defaults; curves; TLS 1.3 keeps its AEADs next to a CBC suite */
	CHECK_INT(parse(&c, "tls_server_config:\n  cert: PEM\n  key: PEM\n"
			    "  prefer_server_cipher_suites: no\n"
			    "  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA]\n"
			    "  curve_preferences: [X25519, CurveP384]\n",
		      err, sizeof(err)), 0);
	CHECK_INT(c.min_version, 0x0303);
	CHECK_INT(c.max_version, 0x0304);
	CHECK(!c.prefer_server_suites);
	CHECK_STR(c.priority, "NORMAL:-VERS-ALL:+VERS-TLS1.2:+VERS-TLS1.3:-KX-ALL:+ECDHE-ECDSA"
			      ":-CIPHER-ALL:+AES-128-CBC:+AES-128-GCM:+AES-256-GCM"
			      ":+CHACHA20-POLY1305:-MAC-ALL:+SHA1:+AEAD"
			      ":-GROUP-ALL:+GROUP-X25519:+GROUP-SECP384R1");
	webconfig_free(&c);

	/* headers (blank: unset), users, rate_limit, null sections, http2 */
	CHECK_INT(parse(&c, "tls_server_config:\nhttp_server_config:\n  http2: false\n"
			    "  headers:\n    X-Frame-Options: sameorigin\n    X-XSS-Protection: 1\n"
			    "    Strict-Transport-Security: \"\"\n"
			    "basic_auth_users:\n"
			    "  alice: $2y$10$mDwo.lAisC94iLAyP81MCesa29IzH37oigHC/42V2pdJlUprsJPze\n"
			    "rate_limit:\n  interval: 1500000000\n  burst: 20\n",
		      err, sizeof(err)), 0);
	CHECK(!c.tls && !c.http2);
	CHECK_INT(c.nheaders, 2);
	CHECK_STR(c.headers[1].name, "X-XSS-Protection");
	CHECK_STR(c.headers[1].value, "1");
	CHECK_INT(c.nusers, 1);
	CHECK_STR(c.users[0].name, "alice");
	CHECK_INT(c.rate_interval_ms, 1500);
	CHECK_INT(c.rate_burst, 20);
	webconfig_free(&c);

	CHECK_INT(parse(&c, "", err, sizeof(err)), 0);
	CHECK(!c.tls && !c.nusers);
	webconfig_free(&c);
	CHECK_INT(parse(&c, "rate_limit:\n  interval: 250ms\n", err, sizeof(err)), 0);
	CHECK_INT(c.rate_interval_ms, 250);
	webconfig_free(&c);
}

static void test_parse_bad(void)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "tls_server_config:\n  cert_file: a\n  cert_file: b\n",
		  "web.yml:3: tls_server_config: key \"cert_file\" already set" },
		{ "tls_server_config:\n  cert_file: a\n", "tls_server_config: missing one of key" },
		{ "tls_server_config:\n  key_file: a\n", "tls_server_config: missing one of cert" },
		{ "tls_server_config:\n  cert: a\n  key: b\n  min_version: TLS13\n  max_version: TLS12\n",
		  "tls_server_config.min_version: above max_version" },
		{ "tls_server_config:\n  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n",
		  "web.yml:2: tls_server_config.cipher_suites: unknown cipher" },
		{ "tls_server_config:\n  curve_preferences: [P256]\n", "unknown curve: P256" },
		{ "tls_server_config:\n  client_auth_type: Maybe\n", "invalid ClientAuth: Maybe" },
		{ "tls_server_config:\n  client_allowed_sans: [a]\n", "not supported by erpscope" },
		{ "tls_server_config:\n  prefer_server_cipher_suites: maybe\n", "want true or false" },
		{ "tls_server_config: [a]\n", "web.yml:1: tls_server_config: want a mapping" },
		{ "http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n",
		  "web.yml:3: http_server_config.headers.X-Content-Type-Options: invalid value" },
		{ "http_server_config:\n  headers:\n    x-frame-options: deny\n",
		  "HTTP header can not be configured" },
		{ "http_server_config:\n  headers:\n    X-XSS-Protection: \"1\\r\\nSet-Cookie: x\"\n",
		  "contains a control character" },
		{ "basic_auth_users:\n  a: $2y$03$mDwo.lAisC94iLAyP81MCesa29IzH37oigHC/42V2pdJlUprsJPze\n",
		  "basic_auth_users.a: not a bcrypt hash" },
		{ "basic_auth_users:\n  a: $1$abc\n", "not a bcrypt hash" },
		{ "basic_auth_users:\n  a: [x]\n", "basic_auth_users.a: want a string" },
		{ "rate_limit:\n  burst: -1\n", "rate_limit.burst: want an integer" },
		{ "rate_limit:\n  interval: soon\n", "rate_limit.interval: not a duration" },
		{ "junk\n", "web config: want a mapping" },
		{ "a: [\n", "web.yml:2: yaml: " },
		{ "tls_server_config:\n  cert_file: \"a\\0b\"\n", "contains a NUL byte" },
	};
	struct web_config c;
	char err[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = 0;
		CHECK_INT(parse(&c, cases[i].text, err, sizeof(err)), -EINVAL);
		if (!strstr(err, cases[i].want))
			fprintf(stderr, "case %zu: got \"%s\", want \"%s\"\n", i, err, cases[i].want);
		CHECK(strstr(err, cases[i].want) != NULL);
		CHECK(!strchr(err, '\n'));
	}
}

static void test_basic_header(void)
{
	char u[WEBAUTH_USER_MAX], p[WEBAUTH_PASS_MAX];

	CHECK_INT(webauth_parse_basic("Basic YWxpY2U6c2VjcmV0", u, sizeof(u), p, sizeof(p)), 0);
	CHECK_STR(u, "alice");
	CHECK_STR(p, "secret");
	/* scheme in any case; the password may hold colons; empty password */
	CHECK_INT(webauth_parse_basic("bASIC   YTpiOmM=", u, sizeof(u), p, sizeof(p)), 0);
	CHECK_STR(u, "a");
	CHECK_STR(p, "b:c");
	CHECK_INT(webauth_parse_basic("Basic Ym9iOg==", u, sizeof(u), p, sizeof(p)), 0);
	CHECK_STR(p, "");
	CHECK_INT(webauth_parse_basic("Bearer YWxpY2U6c2VjcmV0", u, sizeof(u), p, sizeof(p)), -EINVAL);
	CHECK_INT(webauth_parse_basic("Basic YWxpY2U", u, sizeof(u), p, sizeof(p)), -EINVAL);
	CHECK_INT(webauth_parse_basic("Basic YWxpY2U=", u, sizeof(u), p, sizeof(p)), -EINVAL); /* no colon */
	CHECK_INT(webauth_parse_basic("Basic Ym9iOg5=", u, sizeof(u), p, sizeof(p)), -EINVAL); /* not canonical */
	CHECK_INT(webauth_parse_basic("Basic YQBiOmM=", u, sizeof(u), p, sizeof(p)), -EINVAL); /* NUL */
	CHECK_INT(webauth_parse_basic("Basic Y=Fs", u, sizeof(u), p, sizeof(p)), -EINVAL);
	CHECK_INT(webauth_parse_basic("Basic", u, sizeof(u), p, sizeof(p)), -EINVAL);
	CHECK_INT(webauth_parse_basic(NULL, u, sizeof(u), p, sizeof(p)), -EINVAL);
	CHECK_INT(webauth_parse_basic("Basic YWxpY2U6c2VjcmV0", u, 5, p, sizeof(p)), -EINVAL);
}

/* Counts bcrypts: one for the first right password, none after, one per wrong one. */
static void test_cache(void)
{
	struct web_config c;
	struct webauth *a = webauth_new();
	struct crypt_data cd;
	char text[256], err[256];
	const char *right = "Basic YWxpY2U6c2VjcmV0", *wrong = "Basic YWxpY2U6c2VjcmVU";
	uint64_t now = 1000000;
	char *hash;

	memset(&cd, 0, sizeof(cd));
	hash = crypt_r("secret", crypt_gensalt_rn("$2b$", 4, NULL, 0, text, sizeof(text)), &cd);
	CHECK(hash && !strncmp(hash, "$2b$04$", 7));
	snprintf(text, sizeof(text), "basic_auth_users:\n  alice: %s\n", hash);
	CHECK_INT(parse(&c, text, err, sizeof(err)), 0);
	CHECK_INT(webauth_check(a, &c, right, now), WEBAUTH_OK);
	CHECK_INT(webauth_bcrypts(a), 1);
	for (int i = 0; i < 10; i++)
		CHECK_INT(webauth_check(a, &c, right, now + 100 + i), WEBAUTH_OK);
	CHECK_INT(webauth_bcrypts(a), 1);
	CHECK_INT(webauth_check(a, &c, wrong, now + 200), WEBAUTH_DENIED);
	CHECK_INT(webauth_check(a, &c, "Basic bWFsbG9yeTpzZWNyZXQ=", now + 200), WEBAUTH_DENIED);
	CHECK_INT(webauth_bcrypts(a), 3); /* failures are never remembered; unknown users cost one too */
	CHECK_INT(webauth_check(a, &c, NULL, now + 200), WEBAUTH_DENIED);
	CHECK_INT(webauth_bcrypts(a), 3);
	/* the ration: 5 fresh checks a second, then BUSY; a remembered one still passes */
	CHECK_INT(webauth_check(a, &c, wrong, now + 300), WEBAUTH_DENIED);
	CHECK_INT(webauth_check(a, &c, wrong, now + 300), WEBAUTH_DENIED);
	CHECK_INT(webauth_check(a, &c, wrong, now + 300), WEBAUTH_BUSY);
	CHECK_INT(webauth_check(a, &c, right, now + 300), WEBAUTH_OK);
	CHECK_INT(webauth_check(a, &c, wrong, now + 1000), WEBAUTH_DENIED);
	/* expiry and flush */
	CHECK_INT(webauth_check(a, &c, right, now + WEBAUTH_TTL_MS + 1000), WEBAUTH_OK);
	CHECK_INT(webauth_bcrypts(a), 7);
	webauth_flush(a);
	CHECK_INT(webauth_check(a, &c, right, now + WEBAUTH_TTL_MS + 2000), WEBAUTH_OK);
	CHECK_INT(webauth_bcrypts(a), 8);
	webconfig_free(&c);
	webauth_free(a);
}

static void test_verdict(void)
{
	struct sockaddr_in v4 = { .sin_family = AF_INET };
	struct sockaddr_in6 v6 = { .sin6_family = AF_INET6 };

	inet_pton(AF_INET, "127.3.2.1", &v4.sin_addr);
	CHECK(web_is_loopback((struct sockaddr *)&v4));
	inet_pton(AF_INET, "10.0.0.1", &v4.sin_addr);
	CHECK(!web_is_loopback((struct sockaddr *)&v4));
	inet_pton(AF_INET6, "::1", &v6.sin6_addr);
	CHECK(web_is_loopback((struct sockaddr *)&v6));
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &v6.sin6_addr);
	CHECK(web_is_loopback((struct sockaddr *)&v6));
	inet_pton(AF_INET6, "::ffff:10.0.0.1", &v6.sin6_addr);
	CHECK(!web_is_loopback((struct sockaddr *)&v6));
	inet_pton(AF_INET6, "fe80::1", &v6.sin6_addr);
	CHECK(!web_is_loopback((struct sockaddr *)&v6));
	CHECK(!web_is_loopback(NULL));

	/* metrics: only auth matters */
	CHECK_INT(web_verdict(WEB_EXPOSE_OFF, false, false, WEB_AUTH_OFF), 0);
	CHECK_INT(web_verdict(WEB_EXPOSE_LOCALHOST, false, true, WEB_AUTH_FAILED), 401);
	CHECK_INT(web_verdict(WEB_EXPOSE_LOCALHOST, false, false, WEB_AUTH_BUSY), 429);
	/* sensitive */
	CHECK_INT(web_verdict(WEB_EXPOSE_LOCALHOST, true, true, WEB_AUTH_OFF), 0);
	CHECK_INT(web_verdict(WEB_EXPOSE_LOCALHOST, true, false, WEB_AUTH_OFF), 404);
	CHECK_INT(web_verdict(WEB_EXPOSE_LOCALHOST, true, false, WEB_AUTH_PASSED), 404);
	CHECK_INT(web_verdict(WEB_EXPOSE_AUTH, true, false, WEB_AUTH_PASSED), 0);
	CHECK_INT(web_verdict(WEB_EXPOSE_AUTH, true, false, WEB_AUTH_OFF), 404);
	CHECK_INT(web_verdict(WEB_EXPOSE_AUTH, true, false, WEB_AUTH_FAILED), 401);
	CHECK_INT(web_verdict(WEB_EXPOSE_AUTH, true, true, WEB_AUTH_OFF), 0);
	CHECK_INT(web_verdict(WEB_EXPOSE_ALL, true, false, WEB_AUTH_OFF), 0);
	CHECK_INT(web_verdict(WEB_EXPOSE_OFF, true, true, WEB_AUTH_PASSED), 404);
}

int main(void)
{
	test_parse_ok();
	test_parse_bad();
	test_basic_header();
	test_cache();
	test_verdict();
	return check_summary("test_web");
}
