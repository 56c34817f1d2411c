// SPDX-License-Identifier: GPL-2.0
/*
 * The normalised text of a statement, built from the tokens of the shared
 * tokenizer in bpf/pg_norm.h: identical fingerprints by construction.
 * Placeholders print as "?", every other token as the bytes it came from,
 * with one space where the statement had whitespace or a comment.
 */
#include "pg/pg_normalize.h"

#include <string.h>
#include <linux/types.h>

#include "../../bpf/pg.h"

struct pg_norm_ctx;
static void pg_norm_emit(struct pg_norm_ctx *x, unsigned int kind, __u32 start, __u32 end, int ws);

/* The hook gets the tokenizer state, the first member of pg_norm_ctx. */
#define ES_PG_NORM_EMIT(n, kind, start, end, ws) \
	pg_norm_emit((struct pg_norm_ctx *)(void *)(n), kind, start, end, ws)
#include "../../bpf/pg_norm.h"

struct pg_norm_ctx {
	struct es_pg_norm n; /* first: the hook casts back */
	const char *src;
	char *out;
	size_t cap, len;
	int full; /* out is full: the rest is dropped */
};

static const char *const cmd_names[ES_PG_CMD_COUNT] = {
	[ES_PG_CMD_OTHER] = "OTHER",   [ES_PG_CMD_SELECT] = "SELECT",
	[ES_PG_CMD_INSERT] = "INSERT", [ES_PG_CMD_UPDATE] = "UPDATE",
	[ES_PG_CMD_DELETE] = "DELETE", [ES_PG_CMD_BEGIN] = "BEGIN",
	[ES_PG_CMD_COMMIT] = "COMMIT", [ES_PG_CMD_ROLLBACK] = "ROLLBACK",
};

const char *pg_cmd_name(unsigned int cmd)
{
	return cmd < ES_PG_CMD_COUNT ? cmd_names[cmd] : "OTHER";
}

static void pg_norm_emit(struct pg_norm_ctx *x, unsigned int kind, __u32 start, __u32 end, int ws)
{
	const char *tok = kind == ES_PG_TK_PH ? "?" : x->src + start;
	size_t n = kind == ES_PG_TK_PH ? 1 : end - start;
	size_t need = n + (ws && x->n.ntok ? 1 : 0);

	if (x->full || !x->cap)
		return;
	if (x->len + need + 1 > x->cap) {
		/* Does not fit: end with "...", cutting back to make room. */
		size_t keep = x->len + 4 > x->cap ? (x->cap >= 4 ? x->cap - 4 : 0) : x->len;
		size_t dots = x->cap - 1 - keep < 3 ? x->cap - 1 - keep : 3;

		memcpy(x->out + keep, "...", dots);
		x->len = keep + dots;
		x->full = 1;
		return;
	}
	if (ws && x->n.ntok)
		x->out[x->len++] = ' ';
	memcpy(x->out + x->len, tok, n);
	x->len += n;
}

void pg_normalize(const char *text, size_t len, char *out, size_t cap, struct pg_norm_result *res)
{
	struct pg_norm_ctx x = { .src = text, .out = out, .cap = cap };
	const char *nul = memchr(text, 0, len);
	size_t i;

	if (nul)
		len = (size_t)(nul - text);
	/* Offsets are 32-bit in the shared state, as in the kernel. */
	if (len > 0x7fffffff)
		len = 0x7fffffff;
	es_pg_norm_init(&x.n);
	/* As the kernel does it: runs skipped, the rest byte by byte. */
	for (i = 0; i < len;)
		i = es_pg_norm_chunk(&x.n, text, (__u32)i, (__u32)len, ~0u);
	res->fp = es_pg_norm_finish(&x.n, (__u32)len);
	res->cmd = x.n.cmd < ES_PG_CMD_COUNT ? x.n.cmd : ES_PG_CMD_OTHER;
	res->tokens = x.n.ntok;
	res->truncated = x.full;
	if (cap) {
		if (x.len >= cap)
			x.len = cap - 1;
		out[x.len] = 0;
	}
	res->len = x.len;
}

uint64_t pg_fingerprint_stepwise(const char *text, size_t len, unsigned int *tokens)
{
	const char *nul = memchr(text, 0, len);
	struct pg_norm_ctx x = { .src = text }; /* no output: cap 0 */
	uint64_t fp;

	if (nul)
		len = (size_t)(nul - text);
	if (len > 0x7fffffff)
		len = 0x7fffffff;
	es_pg_norm_init(&x.n);
	for (size_t i = 0; i < len; i++)
		es_pg_norm_step(&x.n, (__u8)text[i], (__u32)i);
	fp = es_pg_norm_finish(&x.n, (__u32)len);
	if (tokens)
		*tokens = x.n.ntok;
	return fp;
}
