// SPDX-License-Identifier: GPL-2.0
#include "core/pb.h"
#include "core/grow.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { PB_WIRE_VARINT = 0, PB_WIRE_I64 = 1, PB_WIRE_LEN = 2 };

void pb_init(struct pb *b, size_t limit)
{
	memset(b, 0, sizeof(*b));
	b->limit = limit;
}

void pb_reset(struct pb *b)
{
	b->len = 0;
	b->err = 0;
	b->depth = 0;
}

void pb_free(struct pb *b)
{
	free(b->buf);
	b->buf = NULL;
	b->len = b->cap = 0;
}

size_t pb_varint_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* Makes room for n more bytes. */
static int reserve(struct pb *b, size_t n)
{
	if (b->err)
		return b->err;
	if (b->limit && b->len + n > b->limit)
		return b->err = -E2BIG;
	if (grow_array(&b->buf, &b->cap, b->len + n, 1, 4096))
		return b->err = -ENOMEM;
	return 0;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static void raw_varint(struct pb *b, uint64_t v)
{
	if (!reserve(b, 10))
		b->len += put_varint(b->buf + b->len, v);
}

static void tag(struct pb *b, uint32_t field, unsigned int wire)
{
	raw_varint(b, (uint64_t)field << 3 | wire);
}

void pb_varint(struct pb *b, uint32_t field, uint64_t v)
{
	tag(b, field, PB_WIRE_VARINT);
	raw_varint(b, v);
}

void pb_fixed64(struct pb *b, uint32_t field, uint64_t v)
{
	tag(b, field, PB_WIRE_I64);
	if (reserve(b, 8))
		return;
	for (int i = 0; i < 8; i++)
		b->buf[b->len++] = (uint8_t)(v >> (8 * i));
}

void pb_double(struct pb *b, uint32_t field, double v)
{
	uint64_t u;

	memcpy(&u, &v, sizeof(u));
	pb_fixed64(b, field, u);
}

void pb_bytes(struct pb *b, uint32_t field, const void *p, size_t n)
{
	tag(b, field, PB_WIRE_LEN);
	raw_varint(b, n);
	if (n && !reserve(b, n)) {
		memcpy(b->buf + b->len, p, n);
		b->len += n;
	}
}

void pb_string(struct pb *b, uint32_t field, const char *s)
{
	pb_bytes(b, field, s ? s : "", s ? strlen(s) : 0);
}

void pb_begin(struct pb *b, uint32_t field)
{
	tag(b, field, PB_WIRE_LEN);
	if (b->err)
		return;
	if (b->depth >= PB_MAX_DEPTH) {
		b->err = -EINVAL;
		return;
	}
	b->open[b->depth++] = b->len;
}

/* The content was written where its length goes: move it up by the length's size. */
void pb_end(struct pb *b)
{
	size_t start, n, k;

	if (b->err)
		return;
	if (!b->depth) {
		b->err = -EINVAL;
		return;
	}
	start = b->open[--b->depth];
	n = b->len - start;
	k = pb_varint_size(n);
	if (reserve(b, k))
		return;
	memmove(b->buf + start + k, b->buf + start, n);
	put_varint(b->buf + start, n);
	b->len += k;
}

int pb_finish(struct pb *b)
{
	if (!b->err && b->depth)
		b->err = -EINVAL;
	return b->err;
}
