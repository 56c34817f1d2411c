// SPDX-License-Identifier: GPL-2.0
/* What an OOM event says besides the kernel's numbers: cgroup path, memory summary. */
#include <errno.h>
#include <string.h>

#include "procs/cgpath.h"
#include "check.h"
#include "procs/memhistory.h"

static const char *parse(const char *text)
{
	static char out[256];

	if (cgpath_parse(text, out, sizeof(out)))
		return "(none)";
	return out;
}

static void test_cgpath(void)
{
	char small[8];

	/* cgroup v1 beside a v2 hierarchy without the memory controller. */
	CHECK_STR(parse("9:name=systemd:/\n8:pids:/\n4:memory:/erpscope-test-oom-42\n"
			"2:cpu,cpuacct:/x\n0::/\n"),
		  "/erpscope-test-oom-42");
	/* memory among other controllers of one v1 hierarchy. */
	CHECK_STR(parse("3:cpu,memory,blkio:/a/b c\n0::/other\n"), "/a/b c");
	/* v2 only. */
	CHECK_STR(parse("0::/system.slice/odoo.service\n"), "/system.slice/odoo.service");
	CHECK_STR(parse("0::/user.slice"), "/user.slice"); /* no final newline */
	/* "memory" must be a whole controller name. */
	CHECK_STR(parse("5:memory_x:/no\n6:xmemory:/no\n0::/yes\n"), "/yes");
	/* A path with colons is kept whole. */
	CHECK_STR(parse("4:memory:/a:b:c\n"), "/a:b:c");
	CHECK_STR(parse(""), "(none)");
	CHECK_STR(parse("garbage\n::\n"), "(none)");
	CHECK_STR(parse("1:cpu:/x\n"), "(none)");
	CHECK_INT(cgpath_parse("4:memory:/far/too/long/for/it\n", small, sizeof(small)),
		  -ENAMETOOLONG);
}

static const char *summary(const struct mh_sample *s, unsigned int n, uint64_t now_rss,
			   uint64_t now_ms)
{
	static char buf[160];

	memhistory_summary(s, n, now_rss, now_ms, buf, sizeof(buf));
	return buf;
}

static void test_summary(void)
{
	struct mh_sample s[3] = {
		{ .mono_ms = 1000000, .rss_bytes = 4ull << 30 },
		{ .mono_ms = 1005000, .rss_bytes = 5ull << 30 },
		{ .mono_ms = 1010000, .rss_bytes = 6ull << 30 },
	};
	uint64_t mib = 1 << 20;

	/* The example: from 4 GB, 17 minutes before the kill. */
	CHECK_STR(summary(s, 3, (uint64_t)(7.8 * (1ull << 30)), 1000000 + 17 * 60000),
		  "rss rose from 4.0 GiB to 7.8 GiB over 17 minutes");
	CHECK_STR(summary(s, 1, 3ull << 30, 1000000 + 90000),
		  "rss fell from 4.0 GiB to 3.0 GiB over 1.5 minutes");
	CHECK_STR(summary(s, 1, 4ull << 30, 1000000 + 12000),
		  "rss stayed at 4.0 GiB over 12 seconds");
	s[0].rss_bytes = 8 * mib;
	CHECK_STR(summary(s, 1, 63 * mib + mib / 2, 1002500),
		  "rss rose from 8.0 MiB to 63.5 MiB over 2.5 seconds");
	CHECK_STR(summary(s, 0, 63 * mib, 1002500),
		  "no memory history: not sampled before (every 5 s while tracked)");
	/* A clock that went backwards reads as no time at all. */
	CHECK_STR(summary(s, 1, 9 * mib, 999000),
		  "rss rose from 8.0 MiB to 9.0 MiB over 0.0 seconds");
	CHECK_STR(summary(s, 1, 512, 1000000), "rss fell from 8.0 MiB to 512 B over 0.0 seconds");
}

int main(void)
{
	test_cgpath();
	test_summary();
	return check_summary("test_oom");
}
