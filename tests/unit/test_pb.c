// SPDX-License-Identifier: GPL-2.0
/* core/pb.c: protobuf encoding against bytes computed by hand from the spec. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "core/pb.h"

static int same(const struct pb *b, const void *want, size_t n)
{
	return b->len == n && !memcmp(b->buf, want, n);
}

static void test_varints(void)
{
	struct pb b;

	pb_init(&b, 0);
	pb_varint(&b, 1, 150); /* the spec's example: 08 96 01 */
	pb_varint(&b, 8, 0);   /* tag 8<<3|0 = 0x40 */
	pb_varint(&b, 58, 3);  /* tag 58<<3 = 464 = d0 03 */
	pb_varint(&b, 4, (uint64_t)-1); /* int64 -1: ten bytes */
	{
		const unsigned char want[] = { 0x08, 0x96, 0x01, 0x40, 0x00, 0xd0, 0x03, 0x03,
					       0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					       0xff, 0xff, 0x01 };

		CHECK(same(&b, want, sizeof(want)));
	}
	CHECK_INT(pb_finish(&b), 0);
	CHECK_INT(pb_varint_size(0), 1);
	CHECK_INT(pb_varint_size(127), 1);
	CHECK_INT(pb_varint_size(128), 2);
	CHECK_INT(pb_varint_size(16383), 2);
	CHECK_INT(pb_varint_size(16384), 3);
	CHECK_INT(pb_varint_size(UINT64_MAX), 10);
	pb_free(&b);
}

static void test_fixed_and_strings(void)
{
	struct pb b;
	const unsigned char want[] = {
		0x12, 0x07, 't', 'e', 's', 't', 'i', 'n', 'g', /* the spec's field 2 "testing" */
		0xf9, 0x02, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* fixed64 field 47 */
		0x29, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, /* double 1.5, field 5 */
		0xba, 0x01, 0x00, /* empty string, field 23 */
	};

	pb_init(&b, 0);
	pb_string(&b, 2, "testing");
	pb_fixed64(&b, 47, 0x0102030405060708ull);
	pb_double(&b, 5, 1.5);
	pb_string(&b, 23, "");
	CHECK(same(&b, want, sizeof(want)));
	pb_free(&b);
}

static void test_nested(void)
{
	struct pb b;
	/* Trace { packet { timestamp: 1 track_event { type: 1 } } } */
	const unsigned char want[] = { 0x0a, 0x06, 0x40, 0x01, 0x5a, 0x02, 0x48, 0x01 };
	char big[200];

	pb_init(&b, 0);
	pb_begin(&b, 1);
	pb_varint(&b, 8, 1);
	pb_begin(&b, 11);
	pb_varint(&b, 9, 1);
	pb_end(&b);
	pb_end(&b);
	CHECK_INT(pb_finish(&b), 0);
	CHECK(same(&b, want, sizeof(want)));
	pb_free(&b);

	/* content of 203 bytes: its length takes two bytes (cb 01), the rest moves up */
	memset(big, 'x', sizeof(big));
	pb_init(&b, 0);
	pb_begin(&b, 1);
	pb_bytes(&b, 2, big, sizeof(big)); /* 12 c8 01 + 200 bytes */
	pb_end(&b);
	CHECK_INT(b.len, 2 + 1 + 203);
	CHECK(b.buf[0] == 0x0a && b.buf[1] == 0xcb && b.buf[2] == 0x01);
	CHECK(b.buf[3] == 0x12 && b.buf[4] == 0xc8 && b.buf[5] == 0x01 && b.buf[6] == 'x');
	CHECK(b.buf[b.len - 1] == 'x');
	pb_free(&b);
}

static void test_errors(void)
{
	struct pb b;

	pb_init(&b, 0);
	pb_begin(&b, 1);
	CHECK_INT(pb_finish(&b), -EINVAL); /* left open */
	pb_free(&b);

	pb_init(&b, 0);
	pb_end(&b);
	CHECK_INT(pb_finish(&b), -EINVAL); /* closed what was not open */
	pb_free(&b);

	pb_init(&b, 0);
	for (int i = 0; i <= PB_MAX_DEPTH; i++)
		pb_begin(&b, 1);
	CHECK_INT(b.err, -EINVAL);
	pb_free(&b);

	pb_init(&b, 16);
	pb_string(&b, 1, "0123456789");
	CHECK_INT(b.err, 0);
	pb_string(&b, 1, "0123456789");
	CHECK_INT(pb_finish(&b), -E2BIG);
	CHECK_INT(b.len, 12); /* nothing past the limit, the first field whole */
	pb_varint(&b, 1, 1);
	CHECK_INT(b.len, 12);
	pb_free(&b);
}

int main(void)
{
	test_varints();
	test_fixed_and_strings();
	test_nested();
	test_errors();
	return check_summary("test_pb");
}
