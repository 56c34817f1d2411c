// SPDX-License-Identifier: GPL-2.0
/*
 * Accept and Accept-Encoding parsing (RFC 9110 12.5) for scrapes, and gzip.
 * Headers come from whoever connects, so the parser reads any bytes up to
 * the NUL and never more; a malformed element is skipped, not fatal.
 */
#include "core/negotiate.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

/* One element of a comma list: "name;k=v;q=0.5". */
struct elem {
	const char *name;
	size_t namelen;
	const char *version; /* the version parameter's value, or NULL */
	size_t versionlen;
	int q; /* thousandths, 0..1000; 0 also for an unreadable q */
};

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static const char *skip_ows(const char *p)
{
	while (is_ows(*p))
		p++;
	return p;
}

/* qvalue = "0" [ "." 0*3DIGIT ] / "1" [ "." 0*3"0" ]; -1 when not one. */
static int parse_q(const char *p, size_t n)
{
	int q, scale = 100;
	size_t i;

	if (!n || (p[0] != '0' && p[0] != '1'))
		return -1;
	q = (p[0] - '0') * 1000;
	if (n == 1)
		return q;
	if (p[1] != '.' || n > 5)
		return -1;
	for (i = 2; i < n; i++, scale /= 10) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		q += (p[i] - '0') * scale;
	}
	return q <= 1000 ? q : -1;
}

/* Token or quoted-string value; *end gets where the element goes on. */
static const char *param_value(const char *p, size_t *len, const char **end)
{
	const char *v;

	if (*p == '"') {
		v = ++p;
		while (*p && *p != '"') {
			if (*p == '\\' && p[1])
				p++;
			p++;
		}
		*len = (size_t)(p - v);
		*end = *p ? p + 1 : p;
		return v;
	}
	v = p;
	while (*p && *p != ';' && *p != ',')
		p++;
	*end = p;
	while (p > v && is_ows(p[-1]))
		p--;
	*len = (size_t)(p - v);
	return v;
}

static bool token_eq(const char *p, size_t n, const char *word)
{
	return n == strlen(word) && !strncasecmp(p, word, n);
}

/*
 * Parses the element at p into el. Returns where the next one starts, or
 * NULL at the end of the list.
 */
static const char *next_elem(const char *p, struct elem *el)
{
	const char *end;

	while (*p == ',' || is_ows(*p))
		p++;
	if (!*p)
		return NULL;
	memset(el, 0, sizeof(*el));
	el->q = 1000;
	el->name = p;
	while (*p && *p != ';' && *p != ',')
		p++;
	end = p;
	while (end > el->name && is_ows(end[-1]))
		end--;
	el->namelen = (size_t)(end - el->name);
	while (*p == ';') {
		const char *key = skip_ows(p + 1), *val = NULL;
		size_t keylen, vallen = 0;

		p = key;
		while (*p && *p != '=' && *p != ';' && *p != ',')
			p++;
		end = p;
		while (end > key && is_ows(end[-1]))
			end--;
		keylen = (size_t)(end - key);
		if (*p == '=')
			val = param_value(skip_ows(p + 1), &vallen, &p);
		p = skip_ows(p);
		if (token_eq(key, keylen, "q")) {
			el->q = val ? parse_q(val, vallen) : -1;
			if (el->q < 0)
				el->q = 0;
		} else if (val && token_eq(key, keylen, "version")) {
			el->version = val;
			el->versionlen = vallen;
		}
	}
	/* Garbage after the parameters: skip to the next element. */
	while (*p && *p != ',')
		p++;
	return p;
}

/* Best q seen at each level of specificity; a more specific match wins. */
struct pref {
	int q[3]; /* exact, type/star, star/star; -1 when none matched */
};

static void pref_init(struct pref *pr)
{
	pr->q[0] = pr->q[1] = pr->q[2] = -1;
}

static void pref_add(struct pref *pr, int level, int q)
{
	if (q > pr->q[level])
		pr->q[level] = q;
}

static int pref_q(const struct pref *pr)
{
	for (int i = 0; i < 3; i++) {
		if (pr->q[i] >= 0)
			return pr->q[i];
	}
	return 0;
}

static bool om_version_ok(const struct elem *el)
{
	return !el->version || token_eq(el->version, el->versionlen, "1.0.0") ||
	       token_eq(el->version, el->versionlen, "0.0.1");
}

// Prometheus 2 sends
//   application/openmetrics-text;version=1.0.0,
//   application/openmetrics-text;version=0.0.1;q=0.75,
//   text/plain;version=0.0.4;q=0.5,*/*;q=0.1
// OpenMetrics when its q is above 0 and at least that of text/plain.
// Wildcards stand for text only: curl and browsers send */* and get the
// classic format.
enum expo_format negotiate_format(const char *accept)
{
	struct pref text, om;
	struct elem el;
	const char *p = accept;
	int qt, qo;

	if (!p)
		return EXPO_TEXT_004;
	pref_init(&text);
	pref_init(&om);
	while ((p = next_elem(p, &el))) {
		if (token_eq(el.name, el.namelen, "application/openmetrics-text")) {
			if (om_version_ok(&el))
				pref_add(&om, 0, el.q);
		} else if (token_eq(el.name, el.namelen, "text/plain")) {
			pref_add(&text, 0, el.q);
		} else if (token_eq(el.name, el.namelen, "text/*")) {
			pref_add(&text, 1, el.q);
		} else if (token_eq(el.name, el.namelen, "*/*")) {
			pref_add(&text, 2, el.q);
		}
	}
	qo = pref_q(&om);
	qt = pref_q(&text);
	return qo > 0 && qo >= qt ? EXPO_OPENMETRICS_100 : EXPO_TEXT_004;
}

bool negotiate_gzip(const char *accept_encoding)
{
	struct pref gz;
	struct elem el;
	const char *p = accept_encoding;

	if (!p)
		return false;
	pref_init(&gz);
	while ((p = next_elem(p, &el))) {
		if (token_eq(el.name, el.namelen, "gzip") ||
		    token_eq(el.name, el.namelen, "x-gzip"))
			pref_add(&gz, 0, el.q);
		else if (token_eq(el.name, el.namelen, "*"))
			pref_add(&gz, 2, el.q);
	}
	return pref_q(&gz) > 0;
}

int gzip_compress(const void *in, size_t inlen, void **out, size_t *outlen)
{
	z_stream zs = { 0 };
	void *buf = NULL;
	uLong bound;
	int ret, zret;

	*out = NULL;
	*outlen = 0;
	/* One deflate() call: zlib counts in uInt; scrapes are far smaller. */
	if (inlen > UINT_MAX / 2)
		return -EFBIG;
	/* windowBits 15 + 16: a gzip header and trailer instead of zlib's. */
	zret = deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
	if (zret != Z_OK)
		return zret == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
	bound = deflateBound(&zs, (uLong)inlen);
	buf = malloc(bound);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)inlen;
	zs.next_out = buf;
	zs.avail_out = (uInt)bound;
	zret = deflate(&zs, Z_FINISH);
	if (zret != Z_STREAM_END) {
		ret = zret == Z_MEM_ERROR ? -ENOMEM : -EIO;
		goto out;
	}
	*out = buf;
	*outlen = zs.total_out;
	buf = NULL;
	ret = 0;
out:
	deflateEnd(&zs);
	free(buf);
	return ret;
}
