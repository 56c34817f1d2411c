/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Statement normalisation in user space: the tokenizer of bpf/pg_norm.h
 * (the one the kernel runs to fingerprint every statement) turned into
 * text. Literals become ?, IN (...) and ARRAY[...] lists of literals
 * collapse to one ?, comments go, whitespace runs become one space, and the
 * rest keeps the case it was written in. Input is untrusted: any bytes, any
 * length; the text ends at the first NUL or after len bytes.
 */
#ifndef ERPSCOPE_PG_NORMALIZE_H
#define ERPSCOPE_PG_NORMALIZE_H

#include <stddef.h>
#include <stdint.h>

struct pg_norm_result {
	uint64_t fp;      /* the fingerprint the kernel computes for the same bytes */
	unsigned int cmd; /* enum es_pg_cmd */
	size_t len;       /* bytes written to out, NUL excluded */
	unsigned int tokens;
	int truncated;    /* out was too small: the text ends with "..." */
};

/*
 * Writes the normalised text of text[0..len) into out (cap bytes, always
 * NUL-terminated when cap > 0). The text is never longer than the input,
 * so cap = len + 1 always suffices; a smaller cap cuts it at a token
 * boundary and ends it with "...". The fingerprint and command do not
 * depend on cap.
 */
void pg_normalize(const char *text, size_t len, char *out, size_t cap, struct pg_norm_result *res);

/*
 * The fingerprint from stepping every byte through the state machine,
 * without the runs pg_normalize() and the kernel skip: the reference the
 * tests and the fuzzer hold the fast path to.
 */
uint64_t pg_fingerprint_stepwise(const char *text, size_t len, unsigned int *tokens);

/* "SELECT", "INSERT", ..., "OTHER". */
const char *pg_cmd_name(unsigned int cmd);

#endif
