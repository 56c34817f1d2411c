// SPDX-License-Identifier: GPL-2.0
/* Flags, the config file and durations: values, defaults and error messages. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/config.h"

#define MAX_ARGS 16

static struct config cfg;
static char err[512];

/* Parses a NULL-terminated list of flags over the defaults. */
static int parse(const char *first, ...)
{
	char *argv[MAX_ARGS + 2] = { (char *)"erpscope" };
	const char *a = first;
	int argc = 1;
	va_list ap;

	va_start(ap, first);
	for (; a && argc <= MAX_ARGS; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	config_defaults(&cfg);
	err[0] = 0;
	return config_parse_args(&cfg, argc, argv, err, sizeof(err));
}

static int text(const char *t)
{
	config_defaults(&cfg);
	err[0] = 0;
	return config_parse_text(&cfg, t, strlen(t), "/etc/erpscope.yml", err, sizeof(err));
}

/* Writes a temporary config file; the caller unlinks it. */
static void write_file(char *path, const char *content, size_t len)
{
	int fd;

	strcpy(path, "/tmp/erpscope-test-config.XXXXXX");
	fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK_INT(write(fd, content, len), (long long)len);
	close(fd);
}

static void test_defaults(void)
{
	CHECK_INT(parse(NULL), 0);
	CHECK_STR(cfg.listen_address, "127.0.0.1:9435");
	CHECK_STR(cfg.telemetry_path, "/metrics");
	CHECK_STR(cfg.probes, "");
	CHECK_INT(cfg.strict, 0);
	CHECK_INT(cfg.check, 0);
	CHECK_INT(cfg.log_level, LOG_INFO);
	CHECK_INT(cfg.max_workers, 512);
	CHECK_INT(cfg.rescan_ms, 5000);
	CHECK_INT(cfg.tcp_max_remotes, 50);
	CHECK_INT(cfg.tcp_idle_ms, 600 * 1000);
	CHECK_INT(cfg.http_top_routes, 100);
	CHECK_INT(cfg.http_top_rpcs, 200);
	CHECK_INT(cfg.attach, ATTACH_AUTO);
	CHECK_STR(cfg.config_file, "");
	CHECK_INT(cfg.help, 0);
	CHECK_INT(cfg.version, 0);
	CHECK_STR(err, "");
}

static void test_flags(void)
{
	/* --flag=value and --flag value */
	CHECK_INT(parse("--web.listen-address=0.0.0.0:9100", NULL), 0);
	CHECK_STR(cfg.listen_address, "0.0.0.0:9100");
	CHECK_INT(parse("--web.listen-address", ":9100", NULL), 0);
	CHECK_STR(cfg.listen_address, ":9100");
	CHECK_INT(parse("--web.listen-address=[::1]:9435", NULL), 0);
	CHECK_STR(cfg.listen_address, "[::1]:9435");
	CHECK_INT(parse("--web.listen-address", "localhost:0", NULL), 0);
	CHECK_STR(cfg.listen_address, "localhost:0");
	CHECK_INT(parse("--web.telemetry-path=/m", NULL), 0);
	CHECK_STR(cfg.telemetry_path, "/m");
	CHECK_INT(parse("--web.telemetry-path", "/x/metrics", NULL), 0);
	CHECK_STR(cfg.telemetry_path, "/x/metrics");
	CHECK_INT(parse("--probes=sched,procs", NULL), 0);
	CHECK_STR(cfg.probes, "sched,procs");
	CHECK_INT(parse("--probes", "oom_kill", NULL), 0);
	CHECK_STR(cfg.probes, "oom_kill");
	CHECK_INT(parse("--probes=sched", "--probes=", NULL), 0);
	CHECK_STR(cfg.probes, "");
	CHECK_INT(parse("--log.level=debug", NULL), 0);
	CHECK_INT(cfg.log_level, LOG_DEBUG);
	CHECK_INT(parse("--log.level", "error", NULL), 0);
	CHECK_INT(cfg.log_level, LOG_ERROR);
	CHECK_INT(parse("--log.level=warn", NULL), 0);
	CHECK_INT(cfg.log_level, LOG_WARN);
	CHECK_INT(parse("--max-workers=1", NULL), 0);
	CHECK_INT(cfg.max_workers, 1);
	CHECK_INT(parse("--max-workers", "8192", NULL), 0);
	CHECK_INT(cfg.max_workers, 8192);
	CHECK_INT(parse("--procs.rescan-interval=250ms", NULL), 0);
	CHECK_INT(cfg.rescan_ms, 250);
	CHECK_INT(parse("--procs.rescan-interval", "1h", NULL), 0);
	CHECK_INT(cfg.rescan_ms, 3600 * 1000);
	CHECK_INT(parse("--procs.rescan-interval", "100ms", NULL), 0);
	CHECK_INT(cfg.rescan_ms, 100);
	CHECK_INT(parse("--tcp.remote-idle-timeout=2s", NULL), 0);
	CHECK_INT(cfg.tcp_idle_ms, 2000);
	CHECK_INT(parse("--tcp.remote-idle-timeout", "24h", NULL), 0);
	CHECK_INT(cfg.tcp_idle_ms, 24 * 3600 * 1000);
	CHECK_INT(parse("--tcp.remote-idle-timeout=999ms", NULL), -EINVAL);
	CHECK_INT(parse("--tcp.remote-idle-timeout=25h", NULL), -EINVAL);
	CHECK_INT(parse("--bpf.attach-mode=tp_btf", NULL), 0);
	CHECK_INT(cfg.attach, ATTACH_TP_BTF);
	CHECK_INT(parse("--bpf.attach-mode", "raw_tp", NULL), 0);
	CHECK_INT(cfg.attach, ATTACH_RAW_TP);
	CHECK_INT(parse("--bpf.attach-mode", "auto", NULL), 0);
	CHECK_INT(cfg.attach, ATTACH_AUTO);

	/* booleans: --x, --no-x, --x=true|false (Go's ParseBool forms) */
	CHECK_INT(parse("--strict", NULL), 0);
	CHECK_INT(cfg.strict, 1);
	CHECK_INT(parse("--strict", "--no-strict", NULL), 0);
	CHECK_INT(cfg.strict, 0);
	CHECK_INT(parse("--strict=true", NULL), 0);
	CHECK_INT(cfg.strict, 1);
	CHECK_INT(parse("--strict=true", "--strict=false", NULL), 0);
	CHECK_INT(cfg.strict, 0);
	CHECK_INT(parse("--strict=1", NULL), 0);
	CHECK_INT(cfg.strict, 1);
	CHECK_INT(parse("--strict=TRUE", "--strict=F", NULL), 0);
	CHECK_INT(cfg.strict, 0);
	CHECK_INT(parse("--check", NULL), 0);
	CHECK_INT(cfg.check, 1);
	CHECK_INT(parse("--check=true", "--no-check", NULL), 0);
	CHECK_INT(cfg.check, 0);
	CHECK_INT(parse("--check=false", NULL), 0);
	CHECK_INT(cfg.check, 0);
	/* a bool never eats the next argument */
	CHECK_INT(parse("--strict", "false", NULL), -EINVAL);
	CHECK_STR(err, "unexpected argument \"false\"");

	CHECK_INT(parse("-h", NULL), 0);
	CHECK_INT(cfg.help, 1);
	CHECK_INT(parse("--help", NULL), 0);
	CHECK_INT(cfg.help, 1);
	CHECK_INT(parse("--version", NULL), 0);
	CHECK_INT(cfg.version, 1);
	CHECK_INT(cfg.help, 0);

	/* the last one wins */
	CHECK_INT(parse("--max-workers=3", "--max-workers", "4", NULL), 0);
	CHECK_INT(cfg.max_workers, 4);
	/* a value may contain '=' */
	CHECK_INT(parse("--config.file=/tmp/a=b", "--help", NULL), 0);
	CHECK_STR(cfg.config_file, "/tmp/a=b");
}

static void test_flag_errors(void)
{
	char longv[300];

	CHECK_INT(parse("--web.listen-adress=:9100", NULL), -EINVAL);
	CHECK_STR(err, "unknown flag --web.listen-adress");
	CHECK_INT(parse("--nope", NULL), -EINVAL);
	CHECK_STR(err, "unknown flag --nope");
	CHECK_INT(parse("-x", NULL), -EINVAL);
	CHECK_STR(err, "unknown flag -x");
	CHECK_INT(parse("--no-max-workers", NULL), -EINVAL);
	CHECK_STR(err, "unknown flag --no-max-workers");
	CHECK_INT(parse("--no-strict=true", NULL), -EINVAL);
	CHECK_STR(err, "flag --no-strict takes no value");
	CHECK_INT(parse("--bad\nflag", NULL), -EINVAL);
	CHECK_STR(err, "unknown flag --bad\\x0aflag");

	CHECK_INT(parse("--max-workers", NULL), -EINVAL);
	CHECK_STR(err, "missing value for flag --max-workers");
	CHECK_INT(parse("--web.listen-address", "--strict", NULL), -EINVAL);
	CHECK_STR(err, "missing value for flag --web.listen-address");
	CHECK_INT(parse("--config.file", NULL), -EINVAL);
	CHECK_STR(err, "missing value for flag --config.file");

	CHECK_INT(parse("--max-workers=abc", NULL), -EINVAL);
	CHECK_STR(err, "invalid value \"abc\" for flag --max-workers: not an integer");
	CHECK_INT(parse("--max-workers", "-1", NULL), -EINVAL);
	CHECK_STR(err, "missing value for flag --max-workers");
	CHECK_INT(parse("--max-workers=-1", NULL), -EINVAL);
	CHECK_STR(err, "invalid value \"-1\" for flag --max-workers: not an integer");
	CHECK_INT(parse("--max-workers=0", NULL), -EINVAL);
	CHECK_STR(err, "invalid value \"0\" for flag --max-workers: out of range 1..8192");
	CHECK_INT(parse("--max-workers=8193", NULL), -EINVAL);
	CHECK_STR(err, "invalid value \"8193\" for flag --max-workers: out of range 1..8192");
	CHECK_INT(parse("--max-workers=99999999999999999999", NULL), -EINVAL);
	CHECK(strstr(err, "--max-workers: out of range") != NULL);
	CHECK_INT(parse("--max-workers= 5", NULL), -EINVAL);
	CHECK_INT(parse("--max-workers=0x10", NULL), -EINVAL);
	CHECK_INT(parse("--max-workers=", NULL), -EINVAL);
	CHECK_STR(err, "invalid value \"\" for flag --max-workers: not an integer");

	CHECK_INT(parse("--procs.rescan-interval=abc", NULL), -EINVAL);
	CHECK_STR(err, "invalid value \"abc\" for flag --procs.rescan-interval: not a duration "
		       "(like 250ms, 5s, 1m30s)");
	CHECK_INT(parse("--procs.rescan-interval=50ms", NULL), -EINVAL);
	CHECK_STR(err, "invalid value \"50ms\" for flag --procs.rescan-interval: out of range "
		       "100ms..1h");
	CHECK_INT(parse("--procs.rescan-interval", "61m", NULL), -EINVAL);
	CHECK_STR(err, "invalid value \"61m\" for flag --procs.rescan-interval: out of range "
		       "100ms..1h");

	CHECK_INT(parse("--log.level=verbose", NULL), -EINVAL);
	CHECK_STR(err, "invalid value \"verbose\" for flag --log.level: want debug, info, warn or "
		       "error");
	CHECK_INT(parse("--bpf.attach-mode=kprobe", NULL), -EINVAL);
	CHECK_STR(err, "invalid value \"kprobe\" for flag --bpf.attach-mode: want auto, tp_btf or "
		       "raw_tp");
	CHECK_INT(parse("--strict=yes", NULL), -EINVAL);
	CHECK_STR(err, "invalid value \"yes\" for flag --strict: want true or false");
	CHECK_INT(parse("--check=", NULL), -EINVAL);
	CHECK_STR(err, "invalid value \"\" for flag --check: want true or false");
	CHECK_INT(parse("--help=maybe", NULL), -EINVAL);
	CHECK_STR(err, "invalid value \"maybe\" for flag --help: want true or false");

	CHECK_INT(parse("--web.telemetry-path=metrics", NULL), -EINVAL);
	CHECK_STR(err,
		  "invalid value \"metrics\" for flag --web.telemetry-path: must start with /");
	CHECK_INT(parse("--web.telemetry-path=/a b", NULL), -EINVAL);
	CHECK(strstr(err, "for flag --web.telemetry-path: ") != NULL);
	CHECK_INT(parse("--web.listen-address=9100", NULL), -EINVAL);
	CHECK_STR(err, "invalid value \"9100\" for flag --web.listen-address: want host:port");
	CHECK_INT(parse("--web.listen-address=::1:9100", NULL), -EINVAL);
	CHECK(strstr(err, "for flag --web.listen-address: an IPv6 address needs brackets") != NULL);
	CHECK_INT(parse("--web.listen-address=:99999", NULL), -EINVAL);
	CHECK(strstr(err, "for flag --web.listen-address: the port") != NULL);
	CHECK_INT(parse("--web.listen-address=[::1", NULL), -EINVAL);
	CHECK(strstr(err, "--web.listen-address") != NULL);
	CHECK_INT(parse("--web.listen-address=host:", NULL), -EINVAL);
	CHECK_INT(parse("--web.listen-address=a b:1", NULL), -EINVAL);
	CHECK_INT(parse("--probes=sched,,procs", NULL), -EINVAL);
	CHECK_STR(err, "invalid value \"sched,,procs\" for flag --probes: want probe names "
		       "([a-z0-9_]+) separated by commas");
	CHECK_INT(parse("--probes=Sched", NULL), -EINVAL);
	CHECK_INT(parse("--probes=sched,", NULL), -EINVAL);
	CHECK_INT(parse("--probes=,sched", NULL), -EINVAL);
	CHECK_INT(parse("--probes=sched procs", NULL), -EINVAL);
	CHECK_INT(parse("--config.file=", NULL), -EINVAL);
	CHECK_STR(err, "invalid value \"\" for flag --config.file: empty path");

	/* too long for the field */
	memset(longv, 'a', sizeof(longv));
	memcpy(longv, "--web.listen-address=", 21);
	longv[sizeof(longv) - 1] = 0;
	CHECK_INT(parse(longv, NULL), -EINVAL);
	CHECK(strstr(err, "...\" for flag --web.listen-address: too long (at most 127 bytes)") !=
	      NULL);
	CHECK(strlen(err) < 200);

	/* positional arguments */
	CHECK_INT(parse("serve", NULL), -EINVAL);
	CHECK_STR(err, "unexpected argument \"serve\"");
	CHECK_INT(parse("-", NULL), -EINVAL);
	CHECK_STR(err, "unexpected argument \"-\"");
	CHECK_INT(parse("--", "--strict", NULL), -EINVAL);
	CHECK_STR(err, "unexpected argument \"--strict\"");
	CHECK_INT(parse("--", NULL), 0);
	CHECK_INT(parse("--max-workers", "2", "3", NULL), -EINVAL);
	CHECK_STR(err, "unexpected argument \"3\"");

	/* a failed parse leaves the config as it was */
	{
		char *argv[] = { (char *)"erpscope", (char *)"--max-workers=7", (char *)"--bogus",
				 NULL };

		config_defaults(&cfg);
		CHECK_INT(config_parse_args(&cfg, 3, argv, err, sizeof(err)), -EINVAL);
		CHECK_INT(cfg.max_workers, 512);
		/* and a tiny or missing err buffer is fine */
		CHECK_INT(config_parse_args(&cfg, 3, argv, err, 1), -EINVAL);
		CHECK_STR(err, "");
		CHECK_INT(config_parse_args(&cfg, 3, argv, NULL, 0), -EINVAL);
	}
}

static void test_file_text(void)
{
	CHECK_INT(text("# erpscope\n"
		       "\n"
		       "web.listen-address = 0.0.0.0:9435\n"
		       "web.telemetry-path: /prom\n"
		       "probes=sched,procs\n"
		       "  strict = true  \n"
		       "check: 'false'\n"
		       "log.level = \"debug\"   # chatty\n"
		       "max-workers = 64 # comment\n"
		       "procs.rescan-interval = 1m30s\r\n"
		       "bpf.attach-mode:raw_tp\n"
		       "\t# indented comment\n"
		       "   \n"),
		  0);
	CHECK_STR(err, "");
	CHECK_STR(cfg.listen_address, "0.0.0.0:9435");
	CHECK_STR(cfg.telemetry_path, "/prom");
	CHECK_STR(cfg.probes, "sched,procs");
	CHECK_INT(cfg.strict, 1);
	CHECK_INT(cfg.check, 0);
	CHECK_INT(cfg.log_level, LOG_DEBUG);
	CHECK_INT(cfg.max_workers, 64);
	CHECK_INT(cfg.rescan_ms, 90000);
	CHECK_INT(cfg.attach, ATTACH_RAW_TP);

	CHECK_INT(text("---\nprobes: \"\"\nweb.telemetry-path: \"/a#b\"\n"), -EINVAL);
	CHECK_STR(err, "/etc/erpscope.yml:3: invalid value \"/a#b\" for key web.telemetry-path: "
		       "must not contain spaces, control characters, ? or #");
	CHECK_INT(text("probes: \"\"\nstrict = true"), 0); /* no final newline */
	CHECK_STR(cfg.probes, "");
	CHECK_INT(cfg.strict, 1);
	CHECK_INT(text("probes = # all of them\n"), 0);
	CHECK_STR(cfg.probes, "");
	CHECK_INT(text(""), 0);

	/* errors name file:line and the key */
	CHECK_INT(text("# comment\nstrict = true\nweb.listen-adress = :9100\n"), -EINVAL);
	CHECK_STR(err, "/etc/erpscope.yml:3: unknown key \"web.listen-adress\"");
	CHECK_INT(text("max-workers = lots\n"), -EINVAL);
	CHECK_STR(err, "/etc/erpscope.yml:1: invalid value \"lots\" for key max-workers: "
		       "not an integer");
	CHECK_INT(text("\n\nstrict\n"), -EINVAL);
	CHECK_STR(err, "/etc/erpscope.yml:3: expected \"=\" or \":\" after key strict");
	CHECK_INT(text("= 5\n"), -EINVAL);
	CHECK_STR(err, "/etc/erpscope.yml:1: expected \"key = value\", got \"= 5\"");
	CHECK_INT(text("log.level = \"debug\n"), -EINVAL);
	CHECK_STR(err, "/etc/erpscope.yml:1: unterminated quote in the value of key log.level");
	CHECK_INT(text("log.level = \"debug\" info\n"), -EINVAL);
	CHECK_STR(err, "/etc/erpscope.yml:1: text after the quoted value of key log.level");
	CHECK_INT(text("config.file = /etc/other.yml\n"), -EINVAL);
	CHECK_STR(err, "/etc/erpscope.yml:1: key \"config.file\" cannot be set in a config file");
	CHECK_INT(text("help = true\n"), -EINVAL);
	CHECK_STR(err, "/etc/erpscope.yml:1: unknown key \"help\"");
	CHECK_INT(text("--strict = true\n"), -EINVAL);
	CHECK_STR(err, "/etc/erpscope.yml:1: unknown key \"--strict\"");
	CHECK_INT(text("strict = on\n"), -EINVAL);
	CHECK_STR(err,
		  "/etc/erpscope.yml:1: invalid value \"on\" for key strict: want true or false");
	CHECK_INT(text("procs.rescan-interval = 10ms\n"), -EINVAL);
	CHECK_STR(err, "/etc/erpscope.yml:1: invalid value \"10ms\" for key procs.rescan-interval: "
		       "out of range 100ms..1h");
	CHECK_INT(config_parse_text(&cfg, "strict = t\0rue\n", 15, "f", err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "f:1: NUL byte in line");
	CHECK_INT(text("probes = \"a\nb\"\n"), -EINVAL);
	CHECK_STR(err, "/etc/erpscope.yml:1: unterminated quote in the value of key probes");

	/* a value longer than any field */
	{
		char big[2048];

		memset(big, 'x', sizeof(big));
		memcpy(big, "probes = ", 9);
		big[sizeof(big) - 1] = 0;
		CHECK_INT(text(big), -EINVAL);
		CHECK(strstr(err, "/etc/erpscope.yml:1: invalid value \"xxx") == err);
		CHECK(strstr(err, "...\" for key probes: too long") != NULL);
	}

	/* only text up to len is read */
	config_defaults(&cfg);
	CHECK_INT(config_parse_text(&cfg, "max-workers = 12345", 16, "f", err, sizeof(err)), 0);
	CHECK_INT(cfg.max_workers, 12);
	/* a failed file leaves the config as it was */
	config_defaults(&cfg);
	CHECK_INT(config_parse_text(&cfg, "max-workers = 9\nbogus = 1\n", 26, "f", err,
				    sizeof(err)),
		  -EINVAL);
	CHECK_INT(cfg.max_workers, 512);
	CHECK_INT(config_parse_text(&cfg, NULL, 0, NULL, err, sizeof(err)), 0);
}

static void test_file_and_flags(void)
{
	static const char file[] = "web.listen-address = 127.0.0.1:9500\n"
				   "max-workers: 100\n"
				   "strict = true\n"
				   "log.level = warn\n";
	char path[64], flag[160], *big;

	write_file(path, file, sizeof(file) - 1);
	snprintf(flag, sizeof(flag), "--config.file=%s", path);

	CHECK_INT(parse(flag, NULL), 0);
	CHECK_STR(cfg.config_file, path);
	CHECK_STR(cfg.listen_address, "127.0.0.1:9500");
	CHECK_INT(cfg.max_workers, 100);
	CHECK_INT(cfg.strict, 1);
	CHECK_INT(cfg.log_level, LOG_WARN);
	CHECK_INT(cfg.rescan_ms, 5000);

	/* flags win, before or after --config.file */
	CHECK_INT(parse("--max-workers=7", "--config.file", path, "--no-strict", NULL), 0);
	CHECK_INT(cfg.max_workers, 7);
	CHECK_INT(cfg.strict, 0);
	CHECK_STR(cfg.listen_address, "127.0.0.1:9500");
	CHECK_INT(cfg.log_level, LOG_WARN);
	CHECK_INT(parse(flag, "--web.listen-address", ":9600", "--log.level=debug", NULL), 0);
	CHECK_STR(cfg.listen_address, ":9600");
	CHECK_INT(cfg.log_level, LOG_DEBUG);
	CHECK_INT(cfg.max_workers, 100);
	unlink(path);

	/* the file's errors name the file and line */
	write_file(path, "strict = true\n\nweb.listen-adress = :1\n", 37);
	snprintf(flag, sizeof(flag), "--config.file=%s", path);
	CHECK_INT(parse(flag, NULL), -EINVAL);
	snprintf(flag, sizeof(flag), "%s:3: unknown key \"web.listen-adress\"", path);
	CHECK_STR(err, flag);
	/* --help and --version do not need the file */
	CHECK_INT(parse("--config.file", path, "--help", NULL), 0);
	CHECK_INT(cfg.help, 1);
	unlink(path);

	CHECK_INT(parse("--config.file=/nonexistent/erpscope.yml", NULL), -ENOENT);
	CHECK_STR(err, "config file \"/nonexistent/erpscope.yml\": No such file or directory");
	CHECK_INT(parse("--config.file=/tmp", NULL), -EISDIR);
	CHECK(strstr(err, "config file \"/tmp\": ") == err);

	/* 64 KiB is the limit */
	big = malloc(64 * 1024 + 1);
	CHECK(big != NULL);
	if (!big)
		return;
	memset(big, '#', 64 * 1024 + 1);
	big[64 * 1024 - 1] = '\n';
	write_file(path, big, 64 * 1024);
	CHECK_INT(parse("--config.file", path, NULL), 0);
	unlink(path);
	write_file(path, big, 64 * 1024 + 1);
	CHECK_INT(parse("--config.file", path, NULL), -EFBIG);
	snprintf(flag, sizeof(flag), "config file \"%s\": larger than 64 KiB", path);
	CHECK_STR(err, flag);
	unlink(path);
	free(big);
}

static void test_durations(void)
{
	static const struct {
		const char *s;
		int rc;
		unsigned int ms;
	} cases[] = {
		{ "250ms", 0, 250 },
		{ "5s", 0, 5000 },
		{ "2m", 0, 120000 },
		{ "1h", 0, 3600000 },
		{ "1.5s", 0, 1500 },
		{ "0.1s", 0, 100 },
		{ ".5s", 0, 500 },
		{ "1.s", 0, 1000 },
		{ "5", 0, 5000 },
		{ "1.5", 0, 1500 },
		{ "0", 0, 0 },
		{ "0ms", 0, 0 },
		{ "1m30s", 0, 90000 },
		{ "1h0m0.5s", 0, 3600500 },
		{ "1.0000000001s", 0, 1000 },
		{ "4294967295ms", 0, 4294967295u },
		{ "1193h", 0, 4294800000u },
		{ "4294967296ms", -ERANGE, 0 },
		{ "1194h", -ERANGE, 0 },
		{ "99999999999999999999999999h", -ERANGE, 0 },
		{ "1193h2m", 0, 4294920000u },
		{ "1193h3m", -ERANGE, 0 },
		{ "", -EINVAL, 0 },
		{ "-5s", -EINVAL, 0 },
		{ "+5s", -EINVAL, 0 },
		{ "5 s", -EINVAL, 0 },
		{ " 5s", -EINVAL, 0 },
		{ "5s ", -EINVAL, 0 },
		{ "s", -EINVAL, 0 },
		{ "ms", -EINVAL, 0 },
		{ ".", -EINVAL, 0 },
		{ ".s", -EINVAL, 0 },
		{ "5x", -EINVAL, 0 },
		{ "5d", -EINVAL, 0 },
		{ "5us", -EINVAL, 0 },
		{ "5s5", -EINVAL, 0 },
		{ "1..5s", -EINVAL, 0 },
		{ "abc", -EINVAL, 0 },
		{ "5sms", -EINVAL, 0 },
	};
	unsigned int ms;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ms = 12345;
		if (config_parse_duration_ms(cases[i].s, &ms) != cases[i].rc)
			fprintf(stderr, "duration \"%s\"\n", cases[i].s);
		CHECK_INT(config_parse_duration_ms(cases[i].s, &ms), cases[i].rc);
		CHECK_INT(ms, cases[i].rc ? 12345 : cases[i].ms);
	}
	CHECK_INT(config_parse_duration_ms(NULL, &ms), -EINVAL);
}

static void test_bytes(void)
{
	static const struct { const char *s; int rc; unsigned int v; } cases[] = {
		{ "0", 0, 0 },
		{ "65536", 0, 65536 },
		{ "100B", 0, 100 },
		{ "64KiB", 0, 65536 },
		{ "32MiB", 0, 32u << 20 },
		{ "3GiB", 0, 3u << 30 },
		{ "4GiB", -ERANGE, 0 },
		{ "99999999999", -ERANGE, 0 },
		{ "", -EINVAL, 0 },
		{ "MiB", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
		{ "1.5MiB", -EINVAL, 0 },
		{ "32 MiB", -EINVAL, 0 },
		{ "32mib", -EINVAL, 0 },
		{ "32MB", -EINVAL, 0 },
	};
	const char *argv[] = { "erpscope", "--trace.buffer-size=1MiB", "--trace.max-bytes=8MiB",
			       "--trace.flight-recorder=30s", NULL };
	char err[256] = "";
	unsigned int v;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = 7;
		if (config_parse_bytes(cases[i].s, &v) != cases[i].rc)
			fprintf(stderr, "bytes \"%s\"\n", cases[i].s);
		CHECK_INT(config_parse_bytes(cases[i].s, &v), cases[i].rc);
		CHECK_INT(v, cases[i].rc ? 7 : cases[i].v);
	}
	config_defaults(&cfg);
	CHECK_INT(cfg.trace_flight_ms, 0);
	CHECK_INT(cfg.trace_buffer_bytes, 32u << 20);
	CHECK_INT(cfg.trace_max_bytes, 512u << 20);
	CHECK_INT(cfg.trace_max_files, 20);
	CHECK_INT(cfg.trace_slow_ms, 5000);
	CHECK_STR(cfg.trace_dir, "/var/lib/erpscope/traces");
	CHECK_INT(config_parse_args(&cfg, 4, (char **)argv, err, sizeof(err)), 0);
	CHECK_INT(cfg.trace_buffer_bytes, 1u << 20);
	CHECK_INT(cfg.trace_max_bytes, 8u << 20);
	CHECK_INT(cfg.trace_flight_ms, 30000);
	argv[1] = "--trace.buffer-size=1KiB"; /* under 64 KiB */
	CHECK_INT(config_parse_args(&cfg, 2, (char **)argv, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "--trace.buffer-size") != NULL);
}

static void test_probe_enabled(void)
{
	config_defaults(&cfg);
	CHECK(config_probe_enabled(&cfg, "sched"));
	CHECK(config_probe_enabled(&cfg, "anything"));
	strcpy(cfg.probes, "sched,procs,oom");
	CHECK(config_probe_enabled(&cfg, "sched"));
	CHECK(config_probe_enabled(&cfg, "procs"));
	CHECK(config_probe_enabled(&cfg, "oom"));
	CHECK(!config_probe_enabled(&cfg, "oo"));
	CHECK(!config_probe_enabled(&cfg, "oomkill"));
	CHECK(!config_probe_enabled(&cfg, "sched,procs"));
	CHECK(!config_probe_enabled(&cfg, ""));
	CHECK(!config_probe_enabled(&cfg, NULL));
}

static void test_diagnose_flags(void)
{
	CHECK_INT(parse(NULL), 0);
	CHECK_INT(cfg.diag_cron_ms, 600000);
	CHECK_INT(parse("--diagnose.cron-threshold=5s", NULL), 0);
	CHECK_INT(cfg.diag_cron_ms, 5000);
	CHECK_INT(parse("--diagnose.cron-threshold=24h", NULL), 0);
	CHECK_INT(cfg.diag_cron_ms, 86400000);
	CHECK_INT(parse("--diagnose.cron-threshold=500ms", NULL), -EINVAL);
	CHECK_INT(parse("--diagnose.cron-threshold=25h", NULL), -EINVAL);
}

static void test_python_flags(void)
{
	CHECK_INT(parse(NULL), 0);
	CHECK_INT(cfg.py_sample_hz, 49);
	CHECK_INT(cfg.py_offcpu_ms, 10);
	CHECK_INT(cfg.py_depth, 64);
	CHECK_INT(cfg.py_top_funcs, 20);
	CHECK_INT(cfg.py_window_ms, 300000);
	CHECK_STR(cfg.py_capture, "_callback:cron_name,call_kw:model:method,_process_job:job");
	CHECK_INT(cfg.cron_poll_ms, 100);
	CHECK_INT(parse("--odoo.cron-poll-interval=10s", NULL), 0);
	CHECK_INT(cfg.cron_poll_ms, 10000);
	CHECK_INT(parse("--odoo.cron-poll-interval=250ms", NULL), 0);
	CHECK_INT(cfg.cron_poll_ms, 250);
	CHECK_INT(parse("--odoo.cron-poll-interval=50ms", NULL), -EINVAL);
	CHECK_INT(parse("--odoo.cron-poll-interval=11s", NULL), -EINVAL);

	CHECK_INT(parse("--python.sample-frequency=0", "--python.offcpu-threshold=1s",
			"--python.stack-depth=1", "--python.top-functions=1000",
			"--python.profile-window=10s", "--python.capture-args=", NULL),
		  0);
	CHECK_INT(cfg.py_sample_hz, 0);
	CHECK_INT(cfg.py_offcpu_ms, 1000);
	CHECK_INT(cfg.py_depth, 1);
	CHECK_INT(cfg.py_top_funcs, 1000);
	CHECK_INT(cfg.py_window_ms, 10000);
	CHECK_STR(cfg.py_capture, "");
	CHECK_INT(parse("--python.sample-frequency", "1000", "--python.profile-window=1h",
			"--python.capture-args=run:a:b,_callback:cron_name", NULL),
		  0);
	CHECK_INT(cfg.py_sample_hz, 1000);
	CHECK_INT(cfg.py_window_ms, 3600000);
	CHECK_STR(cfg.py_capture, "run:a:b,_callback:cron_name");

	/* out of range, or a capture list that would not parse */
	CHECK_INT(parse("--python.sample-frequency=1001", NULL), -EINVAL);
	CHECK_INT(parse("--python.sample-frequency=-1", NULL), -EINVAL);
	CHECK_INT(parse("--python.stack-depth=0", NULL), -EINVAL);
	CHECK_INT(parse("--python.stack-depth=65", NULL), -EINVAL);
	CHECK_INT(parse("--python.top-functions=0", NULL), -EINVAL);
	CHECK_INT(parse("--python.offcpu-threshold=0s", NULL), -EINVAL);
	CHECK_INT(parse("--python.offcpu-threshold=0.5ms", NULL), -EINVAL);
	CHECK_INT(parse("--python.offcpu-threshold=2", NULL), 0); /* bare: seconds */
	CHECK_INT(cfg.py_offcpu_ms, 2000);
	CHECK_INT(cfg.py_max_stacks, 32768);
	CHECK_INT(parse("--python.profile-max-stacks=100", NULL), 0);
	CHECK_INT(cfg.py_max_stacks, 100);
	CHECK_INT(parse("--python.profile-max-stacks=99", NULL), -EINVAL);
	CHECK_INT(parse("--python.profile-max-stacks=1000001", NULL), -EINVAL);
	CHECK_INT(parse("--python.profile-window=9s", NULL), -EINVAL);
	CHECK_INT(parse("--python.profile-window=2h", NULL), -EINVAL);
	CHECK_INT(parse("--python.capture-args=_callback", NULL), -EINVAL);
	CHECK(strstr(err, "--python.capture-args") != NULL);
	CHECK_INT(parse("--python.capture-args=f:a:b:c", NULL), -EINVAL);
	CHECK_INT(parse("--python.capture-args=f:", NULL), -EINVAL);
	CHECK_INT(parse("--python.capture-args=f:a,,g:b", NULL), -EINVAL);
	CHECK_INT(parse(NULL), 0);
	CHECK_STR(cfg.gpu_nvml_library, "libnvidia-ml.so.1");
	CHECK_INT(cfg.gpu_poll_ms, 5000);
	CHECK_INT(parse("--gpu.nvml-library=/opt/nv/libnvidia-ml.so.1", "--gpu.poll-interval=1s",
			NULL), 0);
	CHECK_STR(cfg.gpu_nvml_library, "/opt/nv/libnvidia-ml.so.1");
	CHECK_INT(cfg.gpu_poll_ms, 1000);
	CHECK_INT(parse("--gpu.nvml-library=", NULL), 0);
	CHECK_STR(cfg.gpu_nvml_library, "");
	CHECK_INT(parse("--gpu.poll-interval=500ms", NULL), -EINVAL);
	CHECK_INT(parse("--gpu.poll-interval=61s", NULL), -EINVAL);
	CHECK(strstr(err, "--gpu.poll-interval") != NULL);
}

static void test_usage(void)
{
	static const char *const want[] = {
		"usage: erpscope [<flags>]\n",
		"\nFlags:\n",
		"  -h, --help ",
		"      --version ",
		"      --config.file=FILE ",
		"      --web.listen-address=\"127.0.0.1:9435\" ",
		"      --web.telemetry-path=\"/metrics\" ",
		"      --web.config.file=\"\" ",
		"      --web.sensitive-endpoints=localhost ",
		"      --probes=\"\" ",
		"      --[no-]strict ",
		"      --[no-]check ",
		"      --log.level=info ",
		"      --max-workers=512 ",
		"      --procs.rescan-interval=5s ",
		"      --pg.top-statements=100 ",
		"      --pg.max-fingerprints=4096 ",
		"      --pg.slow-query-threshold=100ms ",
		"      --pg.quantile-window=5m ",
		"      --[no-]pg.single-probe ",
		"      --[no-]pg.direct-args ",
		"      --[no-]pg.buffer-misses ",
		"      --tcp.max-remotes=50 ",
		"      --tcp.remote-idle-timeout=10m ",
		"      --http.top-routes=100 ",
		"      --http.top-rpcs=200 ",
		"      --http.slow-request-threshold=2s ",
		"      --python.sample-frequency=49 ",
		"      --python.offcpu-threshold=10ms ",
		"      --python.stack-depth=64 ",
		"      --python.top-functions=20 ",
		"      --python.profile-window=5m ",
		"      --python.profile-max-stacks=32768 ",
		"      --python.capture-args=\"_callback:cron_name,call_kw:model:method,_process_job:job\" ",
		"      --odoo.cron-poll-interval=100ms ",
		"      --python.users=\"\" ",
		"      --web.max-connections=64 ",
		"      --web.client-rate=10 ",
		"      --gpu.nvml-library=\"libnvidia-ml.so.1\" ",
		"      --gpu.poll-interval=5s ",
		"      --diagnose.cron-threshold=10m ",
		"      --trace.flight-recorder=0 ",
		"      --trace.buffer-size=32MiB ",
		"      --trace.slow-request=5s ",
		"      --trace.dir=\"/var/lib/erpscope/traces\" ",
		"      --trace.max-files=20 ",
		"      --trace.max-bytes=512MiB ",
		"      --[no-]bpf.stats ",
		"      --bpf.attach-mode=auto ",
	};
	/* Every flag line is listed above: the two headers aside. */
	const int nflags = (int)(sizeof(want) / sizeof(want[0])) - 2;
	char *buf = NULL, *line;
	size_t len = 0;
	int col = -1, lines = 0;
	FILE *f = open_memstream(&buf, &len);

	CHECK(f != NULL);
	if (!f)
		return;
	config_usage(f, "erpscope");
	fclose(f);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (!strstr(buf, want[i]))
			fprintf(stderr, "usage lacks \"%s\"\n", want[i]);
		CHECK(strstr(buf, want[i]) != NULL);
	}
	/* the help texts of the flag lines start in one column */
	for (line = strstr(buf, "\nFlags:\n") + 8; line && *line && *line != '\n';
	     line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		const char *flag = strstr(line, "-");
		const char *gap = strstr(flag, "  ");
		int c;

		while (*gap == ' ')
			gap++;
		c = (int)(gap - line);
		CHECK(col < 0 || c == col);
		col = c;
		lines++;
	}
	CHECK_INT(lines, nflags);
	free(buf);
}

int main(void)
{
	test_defaults();
	test_flags();
	test_diagnose_flags();
	test_flag_errors();
	test_file_text();
	test_file_and_flags();
	test_durations();
	test_bytes();
	test_probe_enabled();
	test_python_flags();
	test_usage();
	return check_summary("test_config");
}
