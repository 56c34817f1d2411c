// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for the Authorization header (webauth_parse_basic): what
 * it accepts must encode back to the same base64 (RFC 7617's user:password),
 * with a user free of ':' and control bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/webauth.h"

static const char alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void encode(const unsigned char *in, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		unsigned int v = (unsigned int)in[i] << 16;

		v |= i + 1 < n ? (unsigned int)in[i + 1] << 8 : 0;
		v |= i + 2 < n ? in[i + 2] : 0;
		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		out[o++] = i + 1 < n ? alphabet[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? alphabet[v & 63] : '=';
	}
	out[o] = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char user[WEBAUTH_USER_MAX], pass[WEBAUTH_PASS_MAX];
	unsigned char joined[WEBAUTH_USER_MAX + WEBAUTH_PASS_MAX + 1];
	char again[(sizeof(joined) + 2) / 3 * 4 + 1];
	const char *b64;
	size_t ul, pl;
	char *s = malloc(size + 1);

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	if (webauth_parse_basic(s, user, sizeof(user), pass, sizeof(pass))) {
		free(s);
		return 0;
	}
	ul = strlen(user);
	pl = strlen(pass);
	if (strchr(user, ':'))
		abort();
	for (size_t i = 0; i < ul; i++) {
		if ((unsigned char)user[i] < 0x20 || user[i] == 0x7f)
			abort();
	}
	memcpy(joined, user, ul);
	joined[ul] = ':';
	memcpy(joined + ul + 1, pass, pl);
	encode(joined, ul + 1 + pl, again);
	b64 = s + 6;
	while (*b64 == ' ')
		b64++;
	if (strncmp(b64, again, strlen(again)))
		abort();
	free(s);
	return 0;
}
