// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for the Accept and Accept-Encoding parsers (the input as
 * a header value) and for gzip_compress, whose output must inflate back to
 * the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/negotiate.h"

/* Largest input also sent through gzip: keeps the fuzzer fast. */
#define GZIP_MAX 65536

static void check_gzip(const uint8_t *data, size_t size)
{
	z_stream zs = { 0 };
	size_t zlen = 0;
	void *z = NULL;
	uint8_t *out;

	if (size > GZIP_MAX || gzip_compress(data, size, &z, &zlen))
		return;
	out = malloc(size + 1);
	if (!out || inflateInit2(&zs, 15 + 16) != Z_OK)
		abort();
	zs.next_in = z;
	zs.avail_in = (uInt)zlen;
	zs.next_out = out;
	zs.avail_out = (uInt)size + 1;
	if (inflate(&zs, Z_FINISH) != Z_STREAM_END || zs.total_out != size ||
	    memcmp(out, data, size))
		abort();
	inflateEnd(&zs);
	free(out);
	free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	enum expo_format f;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	f = negotiate_format(s);
	if (f != EXPO_TEXT_004 && f != EXPO_OPENMETRICS_100)
		abort();
	/* Without the OpenMetrics media type named, never OpenMetrics. */
	if (f == EXPO_OPENMETRICS_100 && !strcasestr(s, "application/openmetrics-text"))
		abort();
	if (negotiate_gzip(s) && !strcasestr(s, "gzip") && !strchr(s, '*'))
		abort();
	free(s);
	check_gzip(data, size);
	return 0;
}
