// SPDX-License-Identifier: GPL-2.0
#include "core/webauth.h"

#include <crypt.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DIGEST_LEN 32

/* Checked against for an unknown user, so its answer takes as long (exporter-toolkit does the same). */
static const char dummy_hash[] = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

struct cached {
	unsigned char digest[DIGEST_LEN]; /* SHA-256 of user NUL password */
	uint64_t until_ms;                /* 0: empty */
};

struct webauth {
	struct cached cache[WEBAUTH_CACHE];
	unsigned int next; /* round-robin victim */
	uint64_t window_s;
	unsigned int checks_in_window;
	uint64_t bcrypts;
	struct crypt_data cd; /* large: why this struct is on the heap */
};

static int b64(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Standard base64 with padding, canonical only. Returns the length or -EINVAL. */
static int b64_decode(const char *s, size_t n, unsigned char *out, size_t size)
{
	size_t o = 0, i;

	if (n % 4)
		return -EINVAL;
	for (i = 0; i < n; i += 4) {
		int v[4], pad = 0;

		for (int j = 0; j < 4; j++) {
			v[j] = b64((unsigned char)s[i + j]);
			if (v[j] < 0) {
				/* '=' only as the last one or two of the last quad */
				if (s[i + j] != '=' || i + 4 != n || j < 2)
					return -EINVAL;
				pad++;
				v[j] = 0;
			} else if (pad) {
				return -EINVAL;
			}
		}
		/* bits past the last byte must be zero: one encoding per header */
		if (o + 3 - (size_t)pad > size || (pad == 1 && (v[2] & 3)) ||
		    (pad == 2 && (v[1] & 15)))
			return -EINVAL;
		out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			out[o++] = (unsigned char)(v[1] << 4 | v[2] >> 2);
		if (pad < 1)
			out[o++] = (unsigned char)(v[2] << 6 | v[3]);
	}
	return (int)o;
}

int webauth_parse_basic(const char *h, char *user, size_t ulen, char *pass, size_t plen)
{
	unsigned char raw[WEBAUTH_USER_MAX + WEBAUTH_PASS_MAX + 2];
	const unsigned char *colon;
	size_t n, ul;
	int len;

	if (!h || strncasecmp(h, "Basic ", 6))
		return -EINVAL;
	for (h += 6; *h == ' '; h++)
		;
	n = strlen(h);
	while (n && h[n - 1] == ' ')
		n--;
	len = b64_decode(h, n, raw, sizeof(raw));
	if (len < 0)
		return -EINVAL;
	colon = memchr(raw, ':', (size_t)len);
	if (!colon || memchr(raw, 0, (size_t)len))
		return -EINVAL;
	ul = (size_t)(colon - raw);
	if (ul >= ulen || (size_t)len - ul - 1 >= plen)
		return -EINVAL;
	for (size_t i = 0; i < ul; i++) {
		if (raw[i] < 0x20 || raw[i] == 0x7f)
			return -EINVAL;
	}
	memcpy(user, raw, ul);
	user[ul] = 0;
	memcpy(pass, colon + 1, (size_t)len - ul - 1);
	pass[len - ul - 1] = 0;
	return 0;
}

struct webauth *webauth_new(void)
{
	return calloc(1, sizeof(struct webauth));
}

void webauth_free(struct webauth *a)
{
	if (!a)
		return;
	explicit_bzero(a, sizeof(*a));
	free(a);
}

void webauth_flush(struct webauth *a)
{
	explicit_bzero(a->cache, sizeof(a->cache));
}

uint64_t webauth_bcrypts(const struct webauth *a)
{
	return a->bcrypts;
}

static bool same(const void *x, const void *y, size_t n)
{
	const unsigned char *a = x, *b = y;
	unsigned char d = 0;

	for (size_t i = 0; i < n; i++)
		d |= a[i] ^ b[i];
	return !d;
}

/* Looks at every entry, whatever matches, so the time says nothing. */
static bool remembered(const struct webauth *a, const unsigned char *digest, uint64_t now)
{
	bool hit = false;

	for (size_t i = 0; i < WEBAUTH_CACHE; i++)
		hit |= same(a->cache[i].digest, digest, DIGEST_LEN) & (a->cache[i].until_ms > now);
	return hit;
}

static void remember(struct webauth *a, const unsigned char *digest, uint64_t now)
{
	struct cached *e = &a->cache[a->next];

	a->next = (a->next + 1) % WEBAUTH_CACHE;
	memcpy(e->digest, digest, DIGEST_LEN);
	e->until_ms = now + WEBAUTH_TTL_MS;
}

static bool ration(struct webauth *a, uint64_t now_ms)
{
	if (now_ms / 1000 != a->window_s) {
		a->window_s = now_ms / 1000;
		a->checks_in_window = 0;
	}
	if (a->checks_in_window >= WEBAUTH_CHECKS_PER_S)
		return false;
	a->checks_in_window++;
	return true;
}

static bool bcrypt_ok(struct webauth *a, const char *pass, const char *hash)
{
	const char *out;
	size_t n = strlen(hash);

	a->bcrypts++;
	out = crypt_r(pass, hash, &a->cd);
	return out && strlen(out) == n && same(out, hash, n);
}

enum webauth_result webauth_check(struct webauth *a, const struct web_config *c,
				  const char *header, uint64_t now_ms)
{
	char user[WEBAUTH_USER_MAX], pass[WEBAUTH_PASS_MAX];
	unsigned char digest[DIGEST_LEN], buf[WEBAUTH_USER_MAX + WEBAUTH_PASS_MAX + 1];
	enum webauth_result res = WEBAUTH_DENIED;
	const struct web_user *u = NULL;
	size_t ul, pl;

	if (webauth_parse_basic(header, user, sizeof(user), pass, sizeof(pass)))
		return WEBAUTH_DENIED;
	ul = strlen(user);
	pl = strlen(pass);
	memcpy(buf, user, ul + 1);
	memcpy(buf + ul + 1, pass, pl);
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, buf, ul + 1 + pl, digest))
		goto out;
	for (unsigned int i = 0; i < c->nusers; i++) {
		if (!strcmp(c->users[i].name, user))
			u = &c->users[i];
	}
	if (u && remembered(a, digest, now_ms)) {
		res = WEBAUTH_OK;
		goto out;
	}
	if (!ration(a, now_ms)) {
		res = WEBAUTH_BUSY;
		goto out;
	}
	if (bcrypt_ok(a, pass, u ? u->hash : dummy_hash) && u) {
		remember(a, digest, now_ms);
		res = WEBAUTH_OK;
	}
out:
	explicit_bzero(pass, sizeof(pass));
	explicit_bzero(buf, sizeof(buf));
	return res;
}
