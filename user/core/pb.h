/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A protobuf writer: varints, fixed64, length-delimited fields and nested
 * messages, into one growing buffer. Enough for Perfetto's trace format
 * (user/trace); no reflection, no schema: callers name field numbers.
 * Errors stick (b->err) and make every later call a no-op.
 */
#ifndef ERPSCOPE_PB_H
#define ERPSCOPE_PB_H

#include <stddef.h>
#include <stdint.h>

#define PB_MAX_DEPTH 8

struct pb {
	uint8_t *buf;
	size_t len, cap;
	size_t limit;            /* the most bytes the buffer may hold, 0: no limit */
	int err;                 /* 0, -ENOMEM, -E2BIG (limit), -EINVAL (nesting) */
	int depth;
	size_t open[PB_MAX_DEPTH]; /* where each open message's content starts */
};

void pb_init(struct pb *b, size_t limit);
/* Frees the buffer. */
void pb_free(struct pb *b);
/* Empties it for reuse (keeps the buffer, clears the error). */
void pb_reset(struct pb *b);
/* Bytes a varint of v takes (1..10). */
size_t pb_varint_size(uint64_t v);

/* Wire type 0: uint32/64, int64 (as two's complement), bool, enum. */
void pb_varint(struct pb *b, uint32_t field, uint64_t v);
/* Wire type 1. */
void pb_fixed64(struct pb *b, uint32_t field, uint64_t v);
void pb_double(struct pb *b, uint32_t field, double v);
/* Wire type 2. */
void pb_bytes(struct pb *b, uint32_t field, const void *p, size_t n);
void pb_string(struct pb *b, uint32_t field, const char *s);
/* A nested message: pb_begin, its fields, pb_end (which writes its length). */
void pb_begin(struct pb *b, uint32_t field);
void pb_end(struct pb *b);
/* Returns b->err, or -EINVAL when a message is still open. */
int pb_finish(struct pb *b);

#endif
