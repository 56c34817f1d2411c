// SPDX-License-Identifier: GPL-2.0
/*
 * The exporter-toolkit web config's YAML, read with libyaml's document API
 * and checked as Go's yaml.UnmarshalStrict into exporter-toolkit's structs
 * would: unknown keys, repeated keys and values of the wrong kind are
 * errors, each reported with the key's path and line.
 */
#include "core/webconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/config.h"
#include "core/webtls.h"

struct ctx {
	yaml_document_t *doc;
	struct web_config *c;
	const char *dir, *name;
	char *err;
	size_t errlen;
};

static int bad(struct ctx *x, const yaml_node_t *n, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * "name:line: key: why", one line: control bytes become '?' (the key is the
 * file's own text, a YAML key may hold line breaks).
 */
static int bad(struct ctx *x, const yaml_node_t *n, const char *key, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (!x->err || !x->errlen)
		return -EINVAL;
	snprintf(x->err, x->errlen, "%s:%lu: %s: %s", x->name,
		 n ? (unsigned long)n->start_mark.line + 1 : 1ul, key, why);
	for (char *p = x->err; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	}
	return -EINVAL;
}

static yaml_node_t *node(struct ctx *x, int id)
{
	return yaml_document_get_node(x->doc, id);
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* A plain "", "~" or "null": Go leaves the field at its zero value. */
static bool is_null(const yaml_node_t *n)
{
	const char *s = scalar(n);

	if (!n)
		return true;
	if (!s || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	       !strcmp(s, "NULL");
}

/* A scalar without NUL bytes (YAML's "\0" escape would cut a C string). */
static int want_scalar(struct ctx *x, const yaml_node_t *n, const char *key, const char **out)
{
	*out = scalar(n);
	if (!*out)
		return bad(x, n, key, "want a string");
	if (strlen(*out) != n->data.scalar.length)
		return bad(x, n, key, "contains a NUL byte");
	return 0;
}

static int get_string(struct ctx *x, const yaml_node_t *n, const char *key, char **out)
{
	const char *s;
	int err;

	if (is_null(n))
		return 0;
	err = want_scalar(x, n, key, &s);
	if (err)
		return err;
	free(*out);
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

/* go-yaml v2's booleans (YAML 1.1). */
static int get_bool(struct ctx *x, const yaml_node_t *n, const char *key, bool *out)
{
	static const char *const yes[] = { "y", "Y", "yes", "Yes", "YES", "true", "True",
					   "TRUE", "on", "On", "ON" };
	static const char *const no[] = { "n", "N", "no", "No", "NO", "false", "False",
					  "FALSE", "off", "Off", "OFF" };
	const char *s = scalar(n);

	if (is_null(n))
		return 0;
	for (size_t i = 0; s && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
			   i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcmp(s, yes[i]) || !strcmp(s, no[i])) {
			*out = !strcmp(s, yes[i]);
			return 0;
		}
	}
	return bad(x, n, key, "want true or false");
}

/* A relative path names a file next to the config file, as exporter-toolkit does. */
static int get_path(struct ctx *x, const yaml_node_t *n, const char *key, char **out)
{
	char *joined;
	int err = get_string(x, n, key, out);

	if (err || !*out || !**out || (*out)[0] == '/' || !x->dir)
		return err;
	if (asprintf(&joined, "%s/%s", x->dir, *out) < 0)
		return -ENOMEM;
	free(*out);
	*out = joined;
	return 0;
}

static unsigned int line_of(const yaml_node_t *n)
{
	return (unsigned int)n->start_mark.line + 1;
}

/* A list of names each mapped to a Go ID by a table (cipher suites, curves). */
struct id_list {
	const char *item;  /* one name, in "unknown <item>" */
	const char *items; /* in "more than <max> <items>" */
	int (*id)(const char *name);
	unsigned int max;
};

static const struct id_list suite_list = { "cipher", "cipher suites", webtls_suite_id,
					   WEB_MAX_SUITES };
static const struct id_list curve_list = { "curve", "curves", webtls_curve_id, WEB_MAX_CURVES };

static int add_id(struct ctx *x, const yaml_node_t *n, const char *key, const struct id_list *l,
		  uint16_t *ids, unsigned int *count)
{
	const char *s;
	int id, err = want_scalar(x, n, key, &s);

	if (err)
		return err;
	id = l->id(s);
	if (id < 0)
		return bad(x, n, key, "unknown %s: %.64s", l->item, s);
	if (*count == l->max)
		return bad(x, n, key, "more than %u %s", l->max, l->items);
	ids[(*count)++] = (uint16_t)id;
	return 0;
}

static int get_ids(struct ctx *x, const yaml_node_t *n, const char *key, const struct id_list *l,
		   uint16_t *ids, unsigned int *count)
{
	yaml_node_item_t *it;
	int err;

	if (is_null(n))
		return 0;
	if (n->type != YAML_SEQUENCE_NODE)
		return bad(x, n, key, "want a list");
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		err = add_id(x, node(x, *it), key, l, ids, count);
		if (err)
			return err;
	}
	return 0;
}

static int get_version(struct ctx *x, const yaml_node_t *n, const char *key, unsigned int *out)
{
	static const char *const names[] = { "TLS10", "TLS11", "TLS12", "TLS13" };
	const char *s;
	int err;

	if (is_null(n))
		return 0;
	err = want_scalar(x, n, key, &s);
	if (err)
		return err;
	for (unsigned int i = 0; i < 4; i++) {
		if (!strcmp(s, names[i])) {
			*out = 0x0301 + i;
			return 0;
		}
	}
	return bad(x, n, key, "unknown TLS version: %.64s", s);
}

static int get_client_auth(struct ctx *x, const yaml_node_t *n, const char *key)
{
	static const struct {
		const char *name;
		enum web_client_auth v;
	} names[] = {
		{ "", WEB_NO_CLIENT_CERT },
		{ "NoClientCert", WEB_NO_CLIENT_CERT },
		{ "RequestClientCert", WEB_REQUEST_CLIENT_CERT },
		{ "RequireAnyClientCert", WEB_REQUIRE_ANY_CLIENT_CERT },
		{ "RequireClientCert", WEB_REQUIRE_ANY_CLIENT_CERT }, /* exporter-toolkit's old name */
		{ "VerifyClientCertIfGiven", WEB_VERIFY_CLIENT_CERT_IF_GIVEN },
		{ "RequireAndVerifyClientCert", WEB_REQUIRE_AND_VERIFY_CLIENT_CERT },
	};
	const char *s;
	int err;

	if (is_null(n))
		return 0;
	err = want_scalar(x, n, key, &s);
	if (err)
		return err;
	x->c->tls = x->c->tls || *s;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(s, names[i].name)) {
			x->c->client_auth = names[i].v;
			return 0;
		}
	}
	return bad(x, n, key, "invalid ClientAuth: %.64s", s);
}

/* Go rejects repeated keys in one mapping; so do we. */
static int check_unique(struct ctx *x, const yaml_node_t *map, const yaml_node_pair_t *upto,
			const char *k, const char *path)
{
	for (const yaml_node_pair_t *p = map->data.mapping.pairs.start; p < upto; p++) {
		const char *other = scalar(node(x, p->key));

		if (other && !strcmp(other, k))
			return bad(x, node(x, upto->key), path, "key \"%.64s\" already set",
				   k);
	}
	return 0;
}

typedef int (*pair_fn)(struct ctx *x, const char *k, const yaml_node_t *key,
		       const yaml_node_t *v, const char *path);

/* Calls fn for each key: value of a mapping (null: none). */
static int each_pair(struct ctx *x, const yaml_node_t *n, const char *path, pair_fn fn)
{
	yaml_node_pair_t *p;
	int err;

	if (is_null(n))
		return 0;
	if (n->type != YAML_MAPPING_NODE)
		return bad(x, n, path, "want a mapping");
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		const yaml_node_t *k = node(x, p->key);
		const char *ks = scalar(k);

		if (!ks || strlen(ks) != k->data.scalar.length)
			return bad(x, k ? k : n, path, "want string keys");
		err = check_unique(x, n, p, ks, path);
		if (!err)
			err = fn(x, ks, k, node(x, p->value), path);
		if (err)
			return err;
	}
	return 0;
}

static int unknown(struct ctx *x, const yaml_node_t *key, const char *path, const char *k)
{
	return bad(x, key, path, "unknown key \"%.64s\"", k);
}

static int tls_pair(struct ctx *x, const char *k, const yaml_node_t *key, const yaml_node_t *v,
		    const char *path)
{
	struct web_config *c = x->c;
	char full[96];
	int err;

	snprintf(full, sizeof(full), "%s.%s", path, k);
	if (!strcmp(k, "cert_file")) {
		c->line_cert_file = line_of(key);
		err = get_path(x, v, full, &c->cert_file);
	} else if (!strcmp(k, "key_file")) {
		c->line_key_file = line_of(key);
		err = get_path(x, v, full, &c->key_file);
	} else if (!strcmp(k, "client_ca_file")) {
		c->line_client_ca_file = line_of(key);
		err = get_path(x, v, full, &c->client_ca_file);
	} else if (!strcmp(k, "cert")) {
		c->line_cert = line_of(key);
		err = get_string(x, v, full, &c->cert);
	} else if (!strcmp(k, "key")) {
		c->line_key = line_of(key);
		err = get_string(x, v, full, &c->key);
	} else if (!strcmp(k, "client_ca")) {
		c->line_client_ca = line_of(key);
		err = get_string(x, v, full, &c->client_ca);
	} else if (!strcmp(k, "client_auth_type")) {
		err = get_client_auth(x, v, full);
	} else if (!strcmp(k, "min_version")) {
		err = get_version(x, v, full, &c->min_version);
	} else if (!strcmp(k, "max_version")) {
		err = get_version(x, v, full, &c->max_version);
	} else if (!strcmp(k, "cipher_suites")) {
		c->line_suites = line_of(key);
		err = get_ids(x, v, full, &suite_list, c->suites, &c->nsuites);
	} else if (!strcmp(k, "curve_preferences")) {
		c->line_curves = line_of(key);
		err = get_ids(x, v, full, &curve_list, c->curves, &c->ncurves);
	} else if (!strcmp(k, "prefer_server_cipher_suites")) {
		err = get_bool(x, v, full, &c->prefer_server_suites);
	} else if (!strcmp(k, "client_allowed_sans")) {
		/* Refused rather than ignored: ignoring it would let in more clients. */
		err = is_null(v) ? 0 : bad(x, key, full, "not supported by erpscope");
	} else {
		err = unknown(x, key, path, k);
	}
	return err;
}

/* exporter-toolkit's extraHTTPHeaders: the only headers it lets a file set. */
static const struct {
	const char *name;
	const char *allowed[2]; /* NULL: any value */
} header_rules[WEB_MAX_HEADERS] = {
	{ "Strict-Transport-Security", { NULL } },
	{ "X-Content-Type-Options", { "nosniff" } },
	{ "X-Frame-Options", { "deny", "sameorigin" } },
	{ "X-XSS-Protection", { NULL } },
	{ "Content-Security-Policy", { NULL } },
};

static int header_pair(struct ctx *x, const char *k, const yaml_node_t *key,
		       const yaml_node_t *v, const char *path)
{
	struct web_config *c = x->c;
	struct web_header *h;
	const char *s = "";
	char full[96];
	size_t i;
	int err;

	snprintf(full, sizeof(full), "%s.%.40s", path, k);
	for (i = 0; i < WEB_MAX_HEADERS && strcmp(k, header_rules[i].name); i++)
		;
	if (i == WEB_MAX_HEADERS)
		return bad(x, key, full, "HTTP header can not be configured");
	if (!is_null(v) && (err = want_scalar(x, v, full, &s)))
		return err;
	if (header_rules[i].allowed[0] && strcmp(s, header_rules[i].allowed[0]) &&
	    (!header_rules[i].allowed[1] || strcmp(s, header_rules[i].allowed[1])))
		return bad(x, v, full, "invalid value %.64s, want %s%s%s", s,
			   header_rules[i].allowed[0], header_rules[i].allowed[1] ? " or " : "",
			   header_rules[i].allowed[1] ? header_rules[i].allowed[1] : "");
	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return bad(x, v, full, "contains a control character");
	}
	if (!*s)
		return 0; /* "Unset if blank" */
	h = &c->headers[c->nheaders++];
	h->name = header_rules[i].name;
	h->value = strdup(s);
	return h->value ? 0 : -ENOMEM;
}

static int http_pair(struct ctx *x, const char *k, const yaml_node_t *key, const yaml_node_t *v,
		     const char *path)
{
	char full[96];

	snprintf(full, sizeof(full), "%s.%s", path, k);
	if (!strcmp(k, "http2"))
		return get_bool(x, v, full, &x->c->http2);
	if (!strcmp(k, "headers"))
		return each_pair(x, v, full, header_pair);
	return unknown(x, key, path, k);
}

/* $2a$, $2b$ or $2y$, a two-digit cost 04..31, '$', 53 characters of bcrypt's base64. */
static bool is_bcrypt(const char *s)
{
	size_t n = strlen(s);
	int cost;

	if (n != 60 || s[0] != '$' || s[1] != '2' || !strchr("aby", s[2]) || !s[2] ||
	    s[3] != '$' || s[4] < '0' || s[4] > '9' || s[5] < '0' || s[5] > '9' || s[6] != '$')
		return false;
	cost = (s[4] - '0') * 10 + (s[5] - '0');
	if (cost < 4 || cost > 31)
		return false;
	for (size_t i = 7; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '/'))
			return false;
	}
	return true;
}

static int user_pair(struct ctx *x, const char *k, const yaml_node_t *key, const yaml_node_t *v,
		     const char *path)
{
	struct web_config *c = x->c;
	struct web_user *u;
	char full[96];
	const char *s;
	int err;

	snprintf(full, sizeof(full), "%s.%.40s", path, k);
	if (c->nusers == WEB_MAX_USERS)
		return bad(x, key, path, "more than %d users", WEB_MAX_USERS);
	err = want_scalar(x, v, full, &s);
	if (err)
		return err;
	if (!is_bcrypt(s))
		return bad(x, v, full, "not a bcrypt hash ($2a$, $2b$ or $2y$, cost 04..31)");
	u = &c->users[c->nusers];
	u->name = strdup(k);
	u->hash = strdup(s);
	c->nusers++;
	return u->name && u->hash ? 0 : -ENOMEM;
}

/* A Go time.Duration: "1s", "500ms", "1m30s"; a bare integer is nanoseconds. */
static int get_interval(struct ctx *x, const yaml_node_t *n, const char *key, unsigned int *ms)
{
	unsigned long long ns = 0;
	const char *s, *p;
	int err;

	if (is_null(n))
		return 0;
	err = want_scalar(x, n, key, &s);
	if (err)
		return err;
	for (p = s; *p >= '0' && *p <= '9' && ns < 1000000000000000ull; p++)
		ns = ns * 10 + (unsigned long long)(*p - '0');
	if (p != s && !*p) {
		*ms = (unsigned int)((ns + 999999) / 1000000);
		return 0;
	}
	if (config_parse_duration_ms(s, ms))
		return bad(x, n, key, "not a duration (like 1s, 500ms)");
	return 0;
}

static int rate_pair(struct ctx *x, const char *k, const yaml_node_t *key, const yaml_node_t *v,
		     const char *path)
{
	char full[96];
	const char *s;
	unsigned long b = 0;
	char *end;
	int err;

	snprintf(full, sizeof(full), "%s.%s", path, k);
	if (!strcmp(k, "interval"))
		return get_interval(x, v, full, &x->c->rate_interval_ms);
	if (strcmp(k, "burst"))
		return unknown(x, key, path, k);
	if (is_null(v))
		return 0;
	err = want_scalar(x, v, full, &s);
	if (err)
		return err;
	if (*s >= '0' && *s <= '9')
		b = strtoul(s, &end, 10);
	if (!(*s >= '0' && *s <= '9') || *end || b > 1000000)
		return bad(x, v, full, "want an integer from 0 to 1000000");
	x->c->rate_burst = (unsigned int)b;
	return 0;
}

static int top_pair(struct ctx *x, const char *k, const yaml_node_t *key, const yaml_node_t *v,
		    const char *path)
{
	(void)path;
	if (!strcmp(k, "tls_server_config"))
		return each_pair(x, v, k, tls_pair);
	if (!strcmp(k, "http_server_config"))
		return each_pair(x, v, k, http_pair);
	if (!strcmp(k, "basic_auth_users"))
		return each_pair(x, v, k, user_pair);
	if (!strcmp(k, "rate_limit"))
		return each_pair(x, v, k, rate_pair);
	return bad(x, key, k, "unknown key");
}

/* exporter-toolkit's checks after decoding (validateTLSPaths, ConfigToTLSConfig). */
static int check_tls(struct ctx *x)
{
	struct web_config *c = x->c;

	c->tls = c->tls || c->cert_file || c->key_file || c->client_ca_file || c->cert ||
		 c->key || c->client_ca;
	if (!c->tls)
		return 0;
	if (!(c->cert_file && *c->cert_file) && !(c->cert && *c->cert))
		return bad(x, NULL, "tls_server_config", "missing one of cert or cert_file");
	if (!(c->key_file && *c->key_file) && !(c->key && *c->key))
		return bad(x, NULL, "tls_server_config", "missing one of key or key_file");
	if (((c->client_ca_file && *c->client_ca_file) || (c->client_ca && *c->client_ca)) &&
	    c->client_auth == WEB_NO_CLIENT_CERT)
		return bad(x, NULL, "tls_server_config.client_auth_type",
			   "client CA's have been configured without a Client Auth Policy");
	if (c->min_version > c->max_version)
		return bad(x, NULL, "tls_server_config.min_version", "above max_version");
	return webtls_priority(c, c->priority, sizeof(c->priority));
}

int webconfig_parse(struct web_config *c, const char *text, size_t len, const char *dir,
		    const char *name, char *err, size_t errlen)
{
	struct ctx x = { .c = c, .dir = dir, .name = name ? name : "web config", .err = err,
			 .errlen = errlen };
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	int rc;

	memset(c, 0, sizeof(*c));
	c->min_version = 0x0303;
	c->max_version = 0x0304;
	c->prefer_server_suites = true;
	c->http2 = true;
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		snprintf(err, errlen, "%s:%lu: %s: %s", x.name,
			 (unsigned long)parser.problem_mark.line + 1, "yaml",
			 parser.problem ? parser.problem : "invalid YAML");
		for (char *p = err; *p; p++)
			*p = (unsigned char)*p < 0x20 ? '?' : *p;
		yaml_parser_delete(&parser);
		return -EINVAL;
	}
	x.doc = &doc;
	root = yaml_document_get_root_node(&doc);
	rc = root ? each_pair(&x, root, "web config", top_pair) : 0;
	if (!rc)
		rc = check_tls(&x);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	if (rc)
		webconfig_free(c);
	return rc;
}

void webconfig_free(struct web_config *c)
{
	free(c->cert_file);
	free(c->key_file);
	free(c->client_ca_file);
	free(c->cert);
	free(c->key);
	free(c->client_ca);
	free(c->cert_pem);
	free(c->key_pem);
	free(c->ca_pem);
	for (unsigned int i = 0; i < c->nheaders; i++)
		free(c->headers[i].value);
	for (unsigned int i = 0; i < c->nusers; i++) {
		free(c->users[i].name);
		free(c->users[i].hash);
	}
	memset(c, 0, sizeof(*c));
}

static bool str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b));
}

bool webconfig_tls_differs(const struct web_config *a, const struct web_config *b)
{
	return a->tls != b->tls || a->client_auth != b->client_auth ||
	       strcmp(a->priority, b->priority) || str_differs(a->cert_pem, b->cert_pem) ||
	       str_differs(a->key_pem, b->key_pem) || str_differs(a->ca_pem, b->ca_pem);
}
