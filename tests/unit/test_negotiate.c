// SPDX-License-Identifier: GPL-2.0
/* Content negotiation (Accept, Accept-Encoding) and gzip. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "check.h"
#include "core/negotiate.h"

#define PROMETHEUS_ACCEPT                                                                        \
	"application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;" \
	"q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

static void test_format(void)
{
	CHECK_INT(negotiate_format(PROMETHEUS_ACCEPT), EXPO_OPENMETRICS_100);
	/* Prometheus 3 style: escaping parameters, text/plain 1.0.0 offered too. */
	CHECK_INT(negotiate_format(
			  "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;"
			  "q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,"
			  "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,"
			  "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"),
		  EXPO_OPENMETRICS_100);
	/* Prometheus with scrape_protocols preferring the classic text format. */
	CHECK_INT(negotiate_format("text/plain;version=0.0.4;q=0.5,"
				   "application/openmetrics-text;version=1.0.0;q=0.4,*/*;q=0.1"),
		  EXPO_TEXT_004);
	CHECK_INT(negotiate_format(NULL), EXPO_TEXT_004);
	CHECK_INT(negotiate_format(""), EXPO_TEXT_004);
	CHECK_INT(negotiate_format("*/*"), EXPO_TEXT_004);
	CHECK_INT(negotiate_format("text/plain"), EXPO_TEXT_004);
	CHECK_INT(negotiate_format("text/html,application/xhtml+xml,application/xml;q=0.9,"
				   "*/*;q=0.8"),
		  EXPO_TEXT_004);
	CHECK_INT(negotiate_format("application/openmetrics-text"), EXPO_OPENMETRICS_100);
	CHECK_INT(negotiate_format("APPLICATION/OpenMetrics-Text; Version=\"1.0.0\""),
		  EXPO_OPENMETRICS_100);
	/* q=0 means "not this one". */
	CHECK_INT(negotiate_format("application/openmetrics-text;q=0"), EXPO_TEXT_004);
	CHECK_INT(negotiate_format("application/openmetrics-text;q=0.000,text/plain"),
		  EXPO_TEXT_004);
	/* Preference by q; a tie goes to OpenMetrics. */
	CHECK_INT(negotiate_format("application/openmetrics-text;q=0.4,text/plain;q=0.5"),
		  EXPO_TEXT_004);
	CHECK_INT(negotiate_format("text/plain;q=0.5, application/openmetrics-text;q=0.5"),
		  EXPO_OPENMETRICS_100);
	CHECK_INT(negotiate_format("application/openmetrics-text;q=0.2,*/*"), EXPO_TEXT_004);
	/* The most specific range decides text/plain's q. */
	CHECK_INT(negotiate_format("text/plain;q=0,*/*;q=1,application/openmetrics-text;q=0.1"),
		  EXPO_OPENMETRICS_100);
	/* Unknown OpenMetrics versions are not ours. */
	CHECK_INT(negotiate_format("application/openmetrics-text;version=2.0.0"), EXPO_TEXT_004);
	/* Garbage never selects OpenMetrics and never crashes. */
	CHECK_INT(negotiate_format(";;;,,,=;q"), EXPO_TEXT_004);
	CHECK_INT(negotiate_format("application/openmetrics-text;q=banana"), EXPO_TEXT_004);
	CHECK_INT(negotiate_format("application/openmetrics-text;q=1.5"), EXPO_TEXT_004);
	CHECK_INT(negotiate_format("application/openmetrics-text;version=\"1.0.0"),
		  EXPO_OPENMETRICS_100);
	CHECK_INT(negotiate_format("application/openmetrics-text;foo=\"a,b;q=0\";q=1"),
		  EXPO_OPENMETRICS_100);
	CHECK_INT(negotiate_format("\"\\"), EXPO_TEXT_004);
	CHECK_INT(negotiate_format("application/openmetrics-text garbage"), EXPO_TEXT_004);
}

static void test_gzip_accept(void)
{
	CHECK(negotiate_gzip("gzip"));
	CHECK(negotiate_gzip("gzip, deflate, br"));
	CHECK(negotiate_gzip("deflate, GZIP;q=0.5"));
	CHECK(negotiate_gzip("*"));
	CHECK(negotiate_gzip("x-gzip"));
	CHECK(!negotiate_gzip(NULL));
	CHECK(!negotiate_gzip(""));
	CHECK(!negotiate_gzip("identity"));
	CHECK(!negotiate_gzip("deflate, br"));
	CHECK(!negotiate_gzip("gzip;q=0"));
	CHECK(!negotiate_gzip("gzip;q=0.0, *"));
	CHECK(!negotiate_gzip("*;q=0"));
	CHECK(negotiate_gzip("*;q=0, gzip"));
	CHECK(!negotiate_gzip("gzipped"));
	CHECK(!negotiate_gzip(",;=,\t;"));
}

static int gunzip(const void *in, size_t inlen, char *out, size_t outcap, size_t *outlen)
{
	z_stream zs = { 0 };
	int ret;

	if (inflateInit2(&zs, 15 + 16) != Z_OK)
		return -1;
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)inlen;
	zs.next_out = (Bytef *)out;
	zs.avail_out = (uInt)outcap;
	ret = inflate(&zs, Z_FINISH);
	*outlen = zs.total_out;
	inflateEnd(&zs);
	return ret == Z_STREAM_END ? 0 : -1;
}

static void test_gzip_roundtrip(void)
{
	size_t n = 200000, zlen = 0, outlen = 0;
	char *in = malloc(n), *out = malloc(n + 1);
	unsigned char *z = NULL;
	void *zp = NULL;

	for (size_t i = 0; i < n; i++)
		in[i] = (char)("erpscope_metric{a=\"b\"} 1\n"[i % 25] + (i % 7 == 0));
	CHECK_INT(gzip_compress(in, n, &zp, &zlen), 0);
	z = zp;
	CHECK(z && zlen > 18 && zlen < n);
	/* gzip magic and deflate method. */
	CHECK(z && z[0] == 0x1f && z[1] == 0x8b && z[2] == 8);
	CHECK_INT(gunzip(z, zlen, out, n + 1, &outlen), 0);
	CHECK_INT(outlen, n);
	CHECK(!memcmp(in, out, n));
	free(zp);

	/* Empty input is a valid, empty gzip stream. */
	CHECK_INT(gzip_compress("", 0, &zp, &zlen), 0);
	CHECK_INT(gunzip(zp, zlen, out, n, &outlen), 0);
	CHECK_INT(outlen, 0);
	free(zp);
	free(in);
	free(out);
}

int main(void)
{
	test_format();
	test_gzip_accept();
	test_gzip_roundtrip();
	return check_summary("test_negotiate");
}
