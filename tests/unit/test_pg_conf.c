// SPDX-License-Identifier: GPL-2.0
/*
 * max_connections from a postmaster's argv and configuration files (an
 * in-memory file system), the port in postmaster.pid, and the quantiles
 * /queries computes from the kernel's fine bins.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <linux/types.h>

#include "check.h"
#include "pg/pg.h"
#include "pg/pg_conf.h"

struct file {
	const char *path, *text;
};

static const struct file files[] = {
	{ "/etc/pg/postgresql.conf",
	  "# comment\nshared_buffers = 128MB\nmax_connections = 100\t# the default\n"
	  "include_dir = 'conf.d'\ninclude_if_exists = '/nope.conf'\n" },
	{ "/etc/pg/conf.d/10-a.conf", "MAX_CONNECTIONS 150\n" },
	{ "/etc/pg/conf.d/20-b.conf", "max_connections='175' # quoted\ninclude 'deep.conf'\n" },
	{ "/etc/pg/conf.d/deep.conf", "work_mem = '4MB'\n" },
	{ "/data/postgresql.auto.conf", "max_connections = '300'\n" },
	{ "/data2/postgresql.conf", "max_connections = 42\ninclude 'loop.conf'\n" },
	{ "/data2/loop.conf", "include 'loop.conf'\n" },
	{ "/cwd/rel/postgresql.conf", "max_connections = 7\n" },
};

static int fake_read(void *arg, const char *path, char **text, size_t *len)
{
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (!strcmp(files[i].path, path)) {
			*text = strdup(files[i].text);
			*len = strlen(files[i].text);
			return *text ? 0 : -ENOMEM;
		}
	}
	return -ENOENT;
}

static int fake_list(void *arg, const char *dir, char ***names, size_t *n)
{
	char **v;

	if (strcmp(dir, "/etc/pg/conf.d"))
		return -ENOENT;
	v = malloc(2 * sizeof(*v));
	v[0] = strdup("10-a.conf");
	v[1] = strdup("20-b.conf");
	*names = v;
	*n = 2;
	return 0;
}

static const struct pg_conf_io io = { fake_read, fake_list, NULL };

static int maxconn(const char *argv, size_t len, char *dd)
{
	return pg_conf_max_connections(argv, len, "/cwd", dd, 256, &io);
}

static void test_conf(void)
{
	char dd[256], v[64];
	static const char debian[] = "/usr/lib/postgresql/15/bin/postgres\0-D\0/data\0-c\0"
				     "config_file=/etc/pg/postgresql.conf";
	static const char auto_less[] =
		"postgres\0-D\0/nodata\0-c\0config_file=/etc/pg/postgresql.conf";
	static const char cmdline[] = "postgres\0-D/data\0-N\0"
				      "55";
	static const char dashdash[] = "postgres\0--max_connections=66\0-D\0/data";
	static const char loop[] = "postgres\0-D\0/data2";
	static const char rel[] = "postgres\0-D\0rel";
	static const char none[] = "postgres\0-c\0max_connections=5";
	static const char defaults[] = "postgres\0-D\0/empty";

	/* auto.conf wins over the file and its include_dir */
	CHECK_INT(maxconn(debian, sizeof(debian), dd), 300);
	CHECK_STR(dd, "/data");
	/* include_dir files in name order; the last setting wins */
	CHECK_INT(maxconn(auto_less, sizeof(auto_less), dd), 175);
	/* the command line wins over everything */
	CHECK_INT(maxconn(cmdline, sizeof(cmdline) - 1, dd), 55);
	CHECK_INT(maxconn(dashdash, sizeof(dashdash), dd), 66);
	/* an include loop stops at the depth limit */
	CHECK_INT(maxconn(loop, sizeof(loop), dd), 42);
	/* a relative data directory is the postmaster's cwd's */
	CHECK_INT(maxconn(rel, sizeof(rel), dd), 7);
	CHECK_STR(dd, "/cwd/rel");
	CHECK_INT(maxconn(none, sizeof(none), dd), -ENOENT);
	CHECK_INT(maxconn(defaults, sizeof(defaults), dd), PG_CONF_DEFAULT_MAX_CONNECTIONS);

	CHECK(pg_conf_lookup("a = 'it''s \\'x\\''\n", 19, "/", "A", v, sizeof(v), &io, 0));
	CHECK_STR(v, "it's 'x'");
	CHECK(!pg_conf_lookup("#a = 1\n", 7, "/", "a", v, sizeof(v), &io, 0));
	CHECK(pg_conf_lookup("a 1", 3, "/", "a", v, sizeof(v), &io, 0));
	CHECK_STR(v, "1");
}

static void test_quantiles(void)
{
	uint64_t fine[ES_PG_FINE_BINS] = { 0 }, lo, hi, prev_hi = 0;

	/* The bins tile [0, inf) without gaps. */
	for (unsigned int b = 0; b < ES_PG_FINE_BINS; b++) {
		pg_fine_bounds(b, &lo, &hi);
		CHECK(lo == prev_hi);
		CHECK(hi > lo);
		prev_hi = hi;
	}
	CHECK(prev_hi == UINT64_MAX);
	CHECK(pg_fine_quantile(fine, ES_PG_FINE_BINS, 0.5, 0, 0) == 0);
	/* 100 observations in the bin of 300 ms: every quantile inside it */
	for (unsigned int b = 0; b < ES_PG_FINE_BINS; b++) {
		pg_fine_bounds(b, &lo, &hi);
		if (lo <= 300000000ull && 300000000ull < hi) {
			fine[b] = 100;
			CHECK(pg_fine_quantile(fine, ES_PG_FINE_BINS, 0.5, 0, 0) >= (double)lo / 1e9);
			CHECK(pg_fine_quantile(fine, ES_PG_FINE_BINS, 0.99, 0, 0) <= (double)hi / 1e9);
			/* within a quarter octave: +-12.5% of 300 ms */
			CHECK(pg_fine_quantile(fine, ES_PG_FINE_BINS, 0.5, 0, 0) > 0.25);
			CHECK(pg_fine_quantile(fine, ES_PG_FINE_BINS, 0.5, 0, 0) < 0.35);
			fine[b] = 0;
		}
	}
	/*
	 * 4 x ~201.5 ms, as 4 x pg_sleep(0.2) measure: their bin is
	 * [201.3 ms, 234.9 ms); the quantiles stay at or below the largest.
	 */
	for (unsigned int b = 0; b < ES_PG_FINE_BINS; b++) {
		pg_fine_bounds(b, &lo, &hi);
		if (lo <= 201500000ull && 201500000ull < hi) {
			fine[b] = 4;
			CHECK(lo > 201000000ull && lo < 201500000ull);
			CHECK(pg_fine_quantile(fine, ES_PG_FINE_BINS, 0.5, 0, 0) > 0.21);
			CHECK(pg_fine_quantile(fine, ES_PG_FINE_BINS, 0.5, 0, 201700000ull) >= (double)lo / 1e9);
			CHECK(pg_fine_quantile(fine, ES_PG_FINE_BINS, 0.5, 0, 201700000ull) <= 0.2017);
			CHECK(pg_fine_quantile(fine, ES_PG_FINE_BINS, 0.99, 0, 201700000ull) <= 0.2017);
			CHECK(pg_fine_quantile(fine, ES_PG_FINE_BINS, 1.0, 0, 201700000ull) == 0.2017);
			fine[b] = 0;
		}
	}
	/*
	 * 4 x pg_sleep(0.2) on a faster host: 200.4-200.9 ms, 802.6 ms in all,
	 * in [167.8 ms, 201.3 ms). Without a floor the p50 read 184.3 ms,
	 * below every call; the others add at most 3 x 200.9 ms, so the
	 * smallest is at least 199.9 ms.
	 */
	CHECK(pg_min_bound(4, 802600000ull, 200900000ull) == 199900000ull);
	CHECK(pg_min_bound(0, 0, 0) == 0);
	CHECK(pg_min_bound(1, 5, 5) == 5);
	CHECK(pg_min_bound(3, 100, 90) == 0);           /* spread out: says nothing */
	CHECK(pg_min_bound(~0ull, 10, 1) == 0);         /* no overflow */
	for (unsigned int b = 0; b < ES_PG_FINE_BINS; b++) {
		pg_fine_bounds(b, &lo, &hi);
		if (lo <= 200600000ull && 200600000ull < hi) {
			uint64_t floor = pg_min_bound(4, 802600000ull, 200900000ull);

			fine[b] = 4;
			CHECK(lo < 170000000ull && hi > 201000000ull);
			CHECK(pg_fine_quantile(fine, ES_PG_FINE_BINS, 0.5, 0, 200900000ull) < 0.19);
			CHECK(pg_fine_quantile(fine, ES_PG_FINE_BINS, 0.5, floor, 200900000ull) >= 0.1999);
			CHECK(pg_fine_quantile(fine, ES_PG_FINE_BINS, 0.99, floor, 200900000ull) <= 0.2009);
			fine[b] = 0;
		}
	}
	/* A floor in an empty bin below the lowest occupied one changes nothing. */
	for (unsigned int b = 0; b < ES_PG_FINE_BINS; b++) {
		pg_fine_bounds(b, &lo, &hi);
		if (lo <= 300000000ull && 300000000ull < hi) {
			fine[b] = 100;
			CHECK(pg_fine_quantile(fine, ES_PG_FINE_BINS, 0.5, 100000000ull, 0) ==
			      pg_fine_quantile(fine, ES_PG_FINE_BINS, 0.5, 0, 0));
			fine[b] = 0;
		}
	}
	/* The last bin has no upper bound: the largest observation is it. */
	fine[ES_PG_FINE_BINS - 1] = 1;
	CHECK(pg_fine_quantile(fine, ES_PG_FINE_BINS, 0.5, 0, 0) > 0);
	CHECK(pg_fine_quantile(fine, ES_PG_FINE_BINS, 0.5, 0, 400000000000ull) <= 400.0);
}

/* postmaster.pid as PostgreSQL 15 writes it, and broken ones. */
static void test_pidfile_port(void)
{
	static const char good[] = "2611\n/var/lib/postgresql/15/main\n1764825600\n5433\n"
				   "/var/run/postgresql\n127.0.0.1\n  5433001   0\nready   \n";
	static const char *const bad[] = {
		"", "2611\n/data\n1764825600\n", "2611\n/data\n1764825600\n\n",
		"2611\n/data\n1764825600\n0\n", "2611\n/data\n1764825600\n65536\n",
		"2611\n/data\n1764825600\n-5432\n", "2611\n/data\n1764825600\n54x2\n",
		"2611\n/data\n1764825600\n99999999999999999999\n",
	};

	CHECK(pg_conf_pidfile_port(good, sizeof(good) - 1) == 5433);
	/* Not terminated: the length bounds it, and the last line may end the text. */
	CHECK(pg_conf_pidfile_port(good, 48) == 5433);
	CHECK(pg_conf_pidfile_port(good, 44) == -EINVAL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(pg_conf_pidfile_port(bad[i], strlen(bad[i])) == -EINVAL);
}

int main(void)
{
	test_conf();
	test_quantiles();
	test_pidfile_port();
	return check_summary("test_pg_conf");
}
