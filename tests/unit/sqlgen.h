/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Random SQL-ish text for the normaliser's tests: up to 40 atoms (words,
 * literals, quotes, comments, operators, UTF-8) in any order, so every
 * state of the tokenizer is reached, including unterminated ones.
 */
#ifndef ERPSCOPE_TEST_SQLGEN_H
#define ERPSCOPE_TEST_SQLGEN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static const char *const sqlgen_atoms[] = {
	"SELECT", "select", " ",  "  ",	      "\n", "\t", "a",	  "id",	  "t1", "(",   ")",
	",",	  "IN",	    "in", "ARRAY",    "[",  "]",  "=",	  "-",	  "--", "/",   "/*",
	"*/",	  "*",	    "'",  "''",	      "E'", "\\", "\\'",  "$",	  "$$", "$t$", "\"",
	"\"\"",	  "1",	    "42", "1.5",      "e",  "e-", "NULL", "true", "IS", "NOT", "?",
	";",	  ":",	    "<>", "\xc3\xa9", "x'", "0x", ".",	  "\"res_partner\"",
};

static inline uint64_t sqlgen_next(uint64_t *seed)
{
	*seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
	return *seed >> 33;
}

/* Fills in (cap bytes, NUL-terminated) and returns the length. */
static inline size_t sqlgen(uint64_t *seed, char *in, size_t cap)
{
	size_t n = 0;
	int k = (int)(sqlgen_next(seed) % 40);

	for (int j = 0; j < k; j++) {
		const char *a =
			sqlgen_atoms[sqlgen_next(seed) % (sizeof(sqlgen_atoms) / sizeof(sqlgen_atoms[0]))];

		if (n + strlen(a) >= cap)
			break;
		memcpy(in + n, a, strlen(a));
		n += strlen(a);
	}
	in[n] = 0;
	return n;
}

#endif
