// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for the statement normaliser (the tokenizer the kernel
 * runs too). Checks, on any bytes: the fast path agrees with stepping every
 * byte; the text is NUL-terminated, no longer than the input and free of
 * literals (no quote outside "identifiers", no word starting with a
 * digit); normalising the text again changes nothing; a small buffer cuts
 * the text but not the fingerprint.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pg/pg_normalize.h"

static int literal_free(const char *s)
{
	int in_q = 0, word = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		int wc = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			 c >= 0x80 || (c >= '0' && c <= '9') || c == '$';

		if (in_q) {
			in_q = c != '"';
			continue;
		}
		if (c == '"') {
			in_q = 1;
			word = 0;
			continue;
		}
		if (c == '\'' || (wc && !word && c >= '0' && c <= '9'))
			return 0;
		word = wc;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pg_norm_result r, r2, r3;
	char *in = malloc(size ? size : 1), *out = malloc(size + 1), *again = malloc(size + 1);
	char small[16];
	unsigned int toks;

	if (!in || !out || !again)
		abort();
	memcpy(in, data, size);
	pg_normalize(in, size, out, size + 1, &r);
	if (r.len != strlen(out) || r.len > size || r.truncated || !r.fp)
		abort();
	if (pg_fingerprint_stepwise(in, size, &toks) != r.fp || toks != r.tokens)
		abort();
	if (!literal_free(out))
		abort();
	pg_normalize(out, r.len, again, size + 1, &r2);
	if (r2.fp != r.fp || strcmp(again, out) || r2.cmd != r.cmd)
		abort();
	pg_normalize(in, size, small, sizeof(small), &r3);
	if (r3.fp != r.fp || strlen(small) >= sizeof(small))
		abort();
	free(in);
	free(out);
	free(again);
	return 0;
}
