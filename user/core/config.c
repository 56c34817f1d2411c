// SPDX-License-Identifier: GPL-2.0
/*
 * Flags in node_exporter's (kingpin's) style and a config file with the same
 * keys. One table describes every key: defaults, --help and both parsers go
 * through it, so they cannot disagree. Parsing works on a copy and commits
 * only when everything parsed, so a failed parse leaves the config as it was.
 */
#include "core/config.h"
#include "core/pycapture.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/types.h>

#include "../../bpf/procs.h"

#define CONFIG_FILE_MAX (64 * 1024)
#define MAX_WORKERS_MAX (ES_WORKERS_MAP_MAX / 2)
/* Longest value a config file line may carry; every field is shorter. */
#define VALUE_MAX 512
/* How much of an offending value or flag a message quotes. */
#define QUOTE_MAX 64

enum opt_type { OPT_STRING, OPT_BOOL, OPT_UINT, OPT_DURATION, OPT_BYTES, OPT_LEVEL, OPT_ATTACH,
		OPT_EXPOSURE };

struct opt {
	const char *name;
	enum opt_type type;
	size_t off; /* of the field in struct config */
	size_t size; /* of a string field */
	unsigned int min, max;
	/* Strings: returns a reason when v is not acceptable, else NULL. */
	const char *(*check)(const char *v);
	const char *def; /* default, applied by config_defaults(); NULL: none */
	const char *shown; /* --help's "=..." part: the default, quoted or not */
	const char *help;
	bool cli_only; /* not a config file key */
};

static const char *check_listen(const char *v);
static const char *check_path(const char *v);
static const char *check_probes(const char *v);
static const char *check_file(const char *v);
static const char *check_capture(const char *v);
static const char *check_users(const char *v);
static const char *check_dir(const char *v);

#define STR(field) OPT_STRING, offsetof(struct config, field), sizeof(((struct config *)0)->field)
#define VAL(type, field) type, offsetof(struct config, field), 0

static const struct opt opts[] = {
	{ "help", VAL(OPT_BOOL, help), .def = "false", .shown = "",
	  .help = "Show this help and exit.", .cli_only = true },
	{ "version", VAL(OPT_BOOL, version), .def = "false", .shown = "",
	  .help = "Show the version and exit.", .cli_only = true },
	{ "config.file", STR(config_file), .check = check_file, .shown = "=FILE",
	  .help = "Read these settings from FILE (key = value per line); flags win over it.",
	  .cli_only = true },
	{ "web.listen-address", STR(listen_address), .check = check_listen, .def = "127.0.0.1:9435",
	  .shown = "=\"127.0.0.1:9435\"",
	  .help = "Address on which to expose metrics and web interface." },
	{ "web.telemetry-path", STR(telemetry_path), .check = check_path, .def = "/metrics",
	  .shown = "=\"/metrics\"", .help = "Path under which to expose metrics." },
	{ "web.config.file", STR(web_config_file), .def = "", .shown = "=\"\"",
	  .help = "Path to a web config file in the Prometheus exporter-toolkit format (TLS, basic auth, headers, rate limit); reread when it changes or on SIGHUP." },
	{ "web.sensitive-endpoints", VAL(OPT_EXPOSURE, web_sensitive), .def = "localhost",
	  .shown = "=localhost",
	  .help = "Who may read the endpoints besides / and the metrics (SQL, stacks, arguments, events): localhost (loopback clients), auth (also authenticated clients), all, or off." },
	{ "probes", STR(probes), .check = check_probes, .def = "", .shown = "=\"\"",
	  .help = "Comma-separated probes to load; empty loads every probe." },
	{ "strict", VAL(OPT_BOOL, strict), .def = "false", .shown = "",
	  .help = "Exit when a probe cannot be loaded or attached (default: false)." },
	{ "check", VAL(OPT_BOOL, check), .def = "false", .shown = "",
	  .help = "Load and attach every probe, then exit (default: false)." },
	{ "log.level", VAL(OPT_LEVEL, log_level), .def = "info", .shown = "=info",
	  .help = "Only log messages with this severity or above: debug, info, warn, error." },
	{ "max-workers", VAL(OPT_UINT, max_workers), 1, MAX_WORKERS_MAX, .def = "512",
	  .shown = "=512",
	  .help = "Workers given series of their own (1..8192); the rest go to \"overflow\"." },
	{ "procs.rescan-interval", VAL(OPT_DURATION, rescan_ms), 100, 3600 * 1000, .def = "5s",
	  .shown = "=5s",
	  .help = "How often /proc is rescanned for processes to track (100ms..1h)." },
	{ "pg.top-statements", VAL(OPT_UINT, pg_top_k), 1, 10000, .def = "100", .shown = "=100",
	  .help = "PostgreSQL statements (by total time) with series of their own (1..10000); the rest are fingerprint=\"other\"." },
	{ "pg.max-fingerprints", VAL(OPT_UINT, pg_max_fps), 64, 1 << 20, .def = "4096",
	  .shown = "=4096",
	  .help = "Entries of the kernel's PostgreSQL statement table, (fingerprint, database) pairs (64..1048576); over 75% full the coldest move to user space." },
	{ "pg.slow-query-threshold", VAL(OPT_DURATION, pg_slow_ms), 1, 3600 * 1000, .def = "100ms",
	  .shown = "=100ms",
	  .help = "PostgreSQL statements slower than this are events at /events (1ms..1h)." },
	{ "pg.quantile-window", VAL(OPT_DURATION, pg_window_ms), 5 * 1000, 3600 * 1000,
	  .def = "5m", .shown = "=5m",
	  .help = "The recent window of the window quantiles at /queries (5s..1h; ?window= asks for a shorter one)." },
	{ "pg.single-probe", VAL(OPT_BOOL, pg_single_probe), .def = "true", .shown = "",
	  .help = "Time PostgreSQL statements at query__done alone from the server's own start stamp (one uprobe per statement); --no-pg.single-probe adds query__start (default: true)." },
	{ "pg.direct-args", VAL(OPT_BOOL, pg_direct_args), .def = "true", .shown = "",
	  .help = "Read query__done's statement argument from the register its probe note names, in a plain uprobe (about 0.2us a statement less than libbpf's USDT runtime); --no-pg.direct-args uses libbpf's runtime (default: true)." },
	{ "pg.buffer-misses", VAL(OPT_BOOL, pg_buffer_misses), .def = "false", .shown = "",
	  .help = "Count the blocks each PostgreSQL statement reads from the OS (smgr__md__read__done: one uprobe trap per 8 KiB block read, which can double the CPU of a sequential scan served from the page cache) (default: false)." },
	{ "tcp.max-remotes", VAL(OPT_UINT, tcp_max_remotes), 1, 1000, .def = "50", .shown = "=50",
	  .help = "Remote ip:port labels per role (1..1000); the rest are remote=\"other\"." },
	{ "tcp.remote-idle-timeout", VAL(OPT_DURATION, tcp_idle_ms), 1000, 24 * 3600 * 1000,
	  .def = "10m", .shown = "=10m",
	  .help = "A destination that counted nothing for this long gives its label up to a busier one, and is evicted once its role fills 3/4 of its kernel pool (1s..24h)." },
	{ "http.top-routes", VAL(OPT_UINT, http_top_routes), 1, 10000, .def = "100", .shown = "=100",
	  .help = "HTTP routes per role with series of their own in erpscope_http_request_duration_seconds (1..10000); the rest are route=\"other\"." },
	{ "http.top-rpcs", VAL(OPT_UINT, http_top_rpcs), 1, 10000, .def = "200", .shown = "=200",
	  .help = "Odoo RPC model.method pairs per role with series of their own in erpscope_odoo_rpc_duration_seconds (1..10000); the rest are model=\"other\"." },
	{ "http.slow-request-threshold", VAL(OPT_DURATION, http_slow_ms), 1, 3600 * 1000,
	  .def = "2s", .shown = "=2s",
	  .help = "A request that lasts this long is an http_slow_request event in /events, with where its time went and its top statements (1ms..1h)." },
	{ "python.sample-frequency", VAL(OPT_UINT, py_sample_hz), 0, 1000, .def = "49",
	  .shown = "=49",
	  .help = "CPU samples per second per CPU for Python profiles (0..1000; 0 turns CPU profiling off)." },
	{ "python.offcpu-threshold", VAL(OPT_DURATION, py_offcpu_ms), 1, 3600 * 1000, .def = "10ms",
	  .shown = "=10ms",
	  .help = "Python threads blocked longer than this have their stack recorded for the off-CPU profile (1ms..1h)." },
	{ "python.stack-depth", VAL(OPT_UINT, py_depth), 1, 64, .def = "64", .shown = "=64",
	  .help = "Python frames read per stack, innermost first (1..64); deeper stacks are cut." },
	{ "python.top-functions", VAL(OPT_UINT, py_top_funcs), 1, 1000, .def = "20", .shown = "=20",
	  .help = "Python functions per role (by self CPU) with series of their own (1..1000); the rest are function=\"other\"." },
	{ "python.profile-window", VAL(OPT_DURATION, py_window_ms), 10 * 1000, 3600 * 1000,
	  .def = "5m", .shown = "=5m",
	  .help = "How far back GET /profile can look (10s..1h)." },
	{ "python.profile-max-stacks", VAL(OPT_UINT, py_max_stacks), 100, 1000000, .def = "32768",
	  .shown = "=32768",
	  .help = "Distinct Python stacks GET /profile holds over its window (100..1000000; about 10 bytes a frame, texts shared); past it a new stack's samples are dropped and counted." },
	{ "python.capture-args", STR(py_capture), .check = check_capture,
	  .def = "_callback:cron_name,call_kw:model:method,_process_job:job",
	  .shown = "=\"_callback:cron_name,call_kw:model:method,_process_job:job\"",
	  .help = "Arguments shown for these Python functions: FUNC:ARG[:ARG] (two at most), comma-separated; \"\" for none." },
	{ "odoo.cron-poll-interval", VAL(OPT_DURATION, cron_poll_ms), 100, 10 * 1000,
	  .def = "100ms", .shown = "=100ms",
	  .help = "How often the stack of each Odoo cron worker is read for the cron it runs (100ms..10s): runs are timed to +/- one interval, and shorter ones may be missed." },
	{ "python.users", STR(py_users), .check = check_users, .def = "", .shown = "=\"\"",
	  .help = "Users (names or uids, comma-separated; \"all\" for every user) whose Python processes have their stacks and arguments read, besides Odoo's roles; empty: the users that run Odoo workers on this host. Others' Python is still accounted (CPU, off-CPU), never read." },
	{ "web.max-connections", VAL(OPT_UINT, web_max_conns), 1, 4096, .def = "64", .shown = "=64",
	  .help = "Connections served at once (1..4096); the next is answered 503. A connection takes a place with its first complete request; one that sends none within 2s is closed." },
	{ "web.client-rate", VAL(OPT_UINT, web_client_rate), 0, 10000, .def = "10", .shown = "=10",
	  .help = "Requests a second each client address may make to the sensitive endpoints (/events, /queries, /profile, /workers, /requests, /diagnose, /trace, /traces), as many in a burst (0..10000, 0: no limit); past it 429." },
	{ "gpu.nvml-library", STR(gpu_nvml_library), .def = "libnvidia-ml.so.1",
	  .shown = "=\"libnvidia-ml.so.1\"",
	  .help = "NVIDIA's management library, loaded at run time (a name goes through the library search path, a path is used as is); \"\" turns the NVML collector off." },
	{ "gpu.poll-interval", VAL(OPT_DURATION, gpu_poll_ms), 1000, 60 * 1000, .def = "5s",
	  .shown = "=5s",
	  .help = "How often GPUs are polled, through NVML and DRM fdinfo (1s..60s)." },
	{ "diagnose.cron-threshold", VAL(OPT_DURATION, diag_cron_ms), 1000, 24 * 3600 * 1000,
	  .def = "10m", .shown = "=10m",
	  .help = "GET /diagnose reports an Odoo cron still running after this long, with where it is (1s..24h)." },
	{ "trace.flight-recorder", VAL(OPT_DURATION, trace_flight_ms), 0, 600 * 1000, .def = "0",
	  .shown = "=0",
	  .help = "Keep this much of the last trace events in memory and save a trace when a request is slower than --trace.slow-request, a worker dies mid-request, an OOM kill or a PostgreSQL deadlock happens (0 turns it off; up to 10m)." },
	{ "trace.buffer-size", VAL(OPT_BYTES, trace_buffer_bytes), 1 << 16, 1u << 30,
	  .def = "32MiB", .shown = "=32MiB",
	  .help = "Memory for the events of the flight recorder and of a GET /trace recording (64KiB..1GiB); the oldest go first." },
	{ "trace.slow-request", VAL(OPT_DURATION, trace_slow_ms), 1, 3600 * 1000, .def = "5s",
	  .shown = "=5s", .help = "A request this slow makes the flight recorder save a trace (1ms..1h)." },
	{ "trace.dir", STR(trace_dir), .check = check_dir, .def = "/var/lib/erpscope/traces",
	  .shown = "=\"/var/lib/erpscope/traces\"",
	  .help = "Where the flight recorder saves traces (created 0700)." },
	{ "trace.max-files", VAL(OPT_UINT, trace_max_files), 1, 10000, .def = "20", .shown = "=20",
	  .help = "Saved traces kept (1..10000); the oldest are deleted first." },
	{ "trace.max-bytes", VAL(OPT_BYTES, trace_max_bytes), 1 << 20, 4095u << 20,
	  .def = "512MiB", .shown = "=512MiB",
	  .help = "Bytes of saved traces kept (1MiB..4095MiB); the oldest are deleted first." },
	{ "bpf.stats", VAL(OPT_BOOL, bpf_stats), .def = "false", .shown = "",
	  .help = "Turn on the kernel's BPF run-time stats while erpscope runs, for erpscope_bpf_program_run_seconds_total; they add two clock reads to every BPF program run on the host, not only erpscope's (default: false)." },
	{ "bpf.attach-mode", VAL(OPT_ATTACH, attach), .def = "auto", .shown = "=auto",
	  .help = "Tracepoint flavour: auto (probe the kernel), tp_btf or raw_tp." },
};

static const char *const exposure_names[] = {
	[WEB_EXPOSE_LOCALHOST] = "localhost",
	[WEB_EXPOSE_AUTH] = "auth",
	[WEB_EXPOSE_ALL] = "all",
	[WEB_EXPOSE_OFF] = "off",
};

static const char *const attach_names[] = {
	[ATTACH_AUTO] = "auto",
	[ATTACH_TP_BTF] = "tp_btf",
	[ATTACH_RAW_TP] = "raw_tp",
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/*
 * Writes s (n bytes) for a message: control bytes, quotes and backslashes
 * escaped so the message stays one line, cut at QUOTE_MAX with "...".
 */
static const char *printable(char *buf, size_t size, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;

	for (i = 0; i < n && o + 8 < size; i++) {
		unsigned char c = (unsigned char)s[i];

		if (i == QUOTE_MAX) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		} else {
			buf[o++] = (char)c;
		}
	}
	buf[o] = 0;
	return buf;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static const char *check_listen(const char *v)
{
	const char *port, *p;
	size_t n = 0;

	if (v[0] == '[') {
		p = strchr(v, ']');
		if (!p || p == v + 1 || p[1] != ':')
			return "want [ipv6]:port";
		port = p + 2;
	} else {
		port = strrchr(v, ':');
		if (!port)
			return "want host:port";
		if (memchr(v, ':', (size_t)(port - v)))
			return "an IPv6 address needs brackets: [addr]:port";
		port++;
	}
	for (p = v; *p; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return "contains a space or a control character";
	}
	for (p = port; *p >= '0' && *p <= '9'; p++)
		n = n * 10 + (size_t)(*p - '0');
	if (p == port || *p || p - port > 5 || n > 65535)
		return "the port must be a number from 0 to 65535";
	return NULL;
}

static const char *check_dir(const char *v)
{
	if (v[0] != '/')
		return "must be an absolute path";
	for (; *v; v++) {
		if ((unsigned char)*v < ' ' || *v == 0x7f)
			return "must not contain control characters";
	}
	return NULL;
}

static const char *check_path(const char *v)
{
	if (v[0] != '/')
		return "must start with /";
	for (; *v; v++) {
		if ((unsigned char)*v <= ' ' || *v == 0x7f || *v == '?' || *v == '#')
			return "must not contain spaces, control characters, ? or #";
	}
	return NULL;
}

static const char *check_probes(const char *v)
{
	bool name = false;

	if (!v[0])
		return NULL; /* every probe */
	for (; *v; v++) {
		if ((*v >= 'a' && *v <= 'z') || (*v >= '0' && *v <= '9') || *v == '_')
			name = true;
		else if (*v == ',' && name)
			name = false;
		else
			break;
	}
	return name && !*v ? NULL : "want probe names ([a-z0-9_]+) separated by commas";
}

static const char *check_capture(const char *v)
{
	struct py_capture_spec spec;
	char why[160];

	if (!py_capture_parse(v, &spec, why, sizeof(why)))
		return NULL;
	return "want FUNC:ARG[:ARG],... of Python identifiers (2 arguments, 16 functions at most)";
}

/* Names as useradd takes them ([a-z_][a-z0-9_.-]*), uids, or "all". */
static const char *check_users(const char *v)
{
	bool name = false;

	for (; *v; v++) {
		if ((*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z') || (*v >= '0' && *v <= '9') ||
		    *v == '_' || *v == '.' || *v == '-')
			name = true;
		else if (*v == ',' && name)
			name = false;
		else
			return "want user names or uids separated by commas, or all";
	}
	return NULL;
}

static const char *check_file(const char *v)
{
	return v[0] ? NULL : "empty path";
}

/* Go's strconv.ParseBool, which kingpin uses. */
static int parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "1", "t", "T", "true", "TRUE", "True" };
	static const char *const no[] = { "0", "f", "F", "false", "FALSE", "False" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcmp(v, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcmp(v, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* Decimal digits only: no sign, no spaces, no 0x. */
static int parse_uint(const char *v, unsigned int *out)
{
	unsigned long long n = 0;
	const char *p;

	for (p = v; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (unsigned long long)(*p - '0');
		if (n > UINT_MAX)
			return -ERANGE;
	}
	if (p == v || *p)
		return -EINVAL;
	*out = (unsigned int)n;
	return 0;
}

int config_parse_duration_ms(const char *s, unsigned int *out_ms)
{
	uint64_t total = 0;
	bool unit_seen = false;
	const char *p = s;

	if (!s || !out_ms || !*s)
		return -EINVAL;
	/* A sequence of <number>[.<fraction>]<unit>, as Go's "1m30s". */
	while (*p) {
		uint64_t whole = 0, frac = 0, scale = 1, unit;
		bool digits = false, big = false;

		for (; *p >= '0' && *p <= '9'; p++, digits = true) {
			whole = whole * 10 + (uint64_t)(*p - '0');
			big = big || whole > UINT_MAX;
			if (big)
				whole = UINT_MAX;
		}
		if (*p == '.') {
			/* nanoseconds of an hour still fit: keep 9 digits */
			for (p++; *p >= '0' && *p <= '9'; p++, digits = true) {
				if (scale < 1000000000) {
					frac = frac * 10 + (uint64_t)(*p - '0');
					scale *= 10;
				}
			}
		}
		if (!digits)
			return -EINVAL;
		if (!*p && !unit_seen) {
			unit = 1000; /* a bare number is seconds */
		} else if (p[0] == 'm' && p[1] == 's') {
			unit = 1;
			p += 2;
		} else if (*p == 's' || *p == 'm' || *p == 'h') {
			unit = *p == 's' ? 1000 : *p == 'm' ? 60 * 1000 : 3600 * 1000;
			p++;
		} else {
			return -EINVAL;
		}
		unit_seen = true;
		if (big)
			return -ERANGE;
		total += whole * unit + frac * unit / scale;
		if (total > UINT_MAX)
			return -ERANGE;
	}
	*out_ms = (unsigned int)total;
	return 0;
}

/* Bytes: digits, then nothing, B, KiB, MiB or GiB. */
int config_parse_bytes(const char *s, unsigned int *out)
{
	static const struct { const char *unit; unsigned long long mul; } units[] = {
		{ "", 1 }, { "B", 1 }, { "KiB", 1ull << 10 }, { "MiB", 1ull << 20 },
		{ "GiB", 1ull << 30 },
	};
	unsigned long long n = 0;
	const char *p = s;

	if (!s || !out)
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (unsigned long long)(*p - '0');
		if (n > UINT_MAX)
			return -ERANGE;
	}
	if (p == s)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (!strcmp(p, units[i].unit)) {
			if (n * units[i].mul > UINT_MAX)
				return -ERANGE;
			*out = (unsigned int)(n * units[i].mul);
			return 0;
		}
	}
	return -EINVAL;
}

/* 250ms, 5s, 2m, 1h: the largest unit that shows ms exactly. */
static void format_ms(char *buf, size_t size, unsigned int ms)
{
	if (ms && !(ms % (3600 * 1000)))
		snprintf(buf, size, "%uh", ms / (3600 * 1000));
	else if (ms && !(ms % (60 * 1000)))
		snprintf(buf, size, "%um", ms / (60 * 1000));
	else if (ms && !(ms % 1000))
		snprintf(buf, size, "%us", ms / 1000);
	else
		snprintf(buf, size, "%ums", ms);
}

/*
 * Sets one key from its text. Returns 0, or -EINVAL with why (a buffer of
 * whylen bytes) saying what is wrong, for the caller to put in context.
 */
static int opt_set(struct config *c, const struct opt *o, const char *v, char *why, size_t whylen)
{
	char *field = (char *)c + o->off;
	const char *reason = NULL;
	char lo[16], hi[16];
	unsigned int u;
	int rc;

	switch (o->type) {
	case OPT_STRING:
		if (strlen(v) >= o->size) {
			snprintf(why, whylen, "too long (at most %zu bytes)", o->size - 1);
			return -EINVAL;
		}
		reason = o->check ? o->check(v) : NULL;
		if (!reason)
			strcpy(field, v);
		break;
	case OPT_BOOL:
		if (parse_bool(v, (bool *)field))
			reason = "want true or false";
		break;
	case OPT_UINT:
		rc = parse_uint(v, &u);
		if (rc == -EINVAL) {
			reason = "not an integer";
		} else if (rc || u < o->min || u > o->max) {
			snprintf(why, whylen, "out of range %u..%u", o->min, o->max);
			return -EINVAL;
		} else {
			*(unsigned int *)field = u;
		}
		break;
	case OPT_DURATION:
		rc = config_parse_duration_ms(v, &u);
		if (rc == -EINVAL) {
			reason = "not a duration (like 250ms, 5s, 1m30s)";
		} else if (rc || u < o->min || u > o->max) {
			format_ms(lo, sizeof(lo), o->min);
			format_ms(hi, sizeof(hi), o->max);
			snprintf(why, whylen, "out of range %s..%s", lo, hi);
			return -EINVAL;
		} else {
			*(unsigned int *)field = u;
		}
		break;
	case OPT_BYTES:
		rc = config_parse_bytes(v, &u);
		if (rc == -EINVAL) {
			reason = "not a size (like 65536, 64KiB, 32MiB, 1GiB)";
		} else if (rc || u < o->min || u > o->max) {
			snprintf(why, whylen, "out of range %u..%u bytes", o->min, o->max);
			return -EINVAL;
		} else {
			*(unsigned int *)field = u;
		}
		break;
	case OPT_LEVEL:
		if (log_level_parse(v, (enum log_level *)field))
			reason = "want debug, info, warn or error";
		break;
	case OPT_ATTACH:
		reason = "want auto, tp_btf or raw_tp";
		for (u = 0; u < sizeof(attach_names) / sizeof(attach_names[0]); u++) {
			if (!strcmp(v, attach_names[u])) {
				*(enum attach_mode *)field = (enum attach_mode)u;
				reason = NULL;
			}
		}
		break;
	case OPT_EXPOSURE:
		reason = "want localhost, auth, all or off";
		for (u = 0; u < sizeof(exposure_names) / sizeof(exposure_names[0]); u++) {
			if (!strcmp(v, exposure_names[u])) {
				*(enum web_exposure *)field = (enum web_exposure)u;
				reason = NULL;
			}
		}
		break;
	}
	if (!reason)
		return 0;
	snprintf(why, whylen, "%s", reason);
	return -EINVAL;
}

static const struct opt *opt_find(const char *name, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		if (strlen(opts[i].name) == n && !memcmp(opts[i].name, name, n))
			return &opts[i];
	}
	return NULL;
}

void config_defaults(struct config *c)
{
	char why[128];
	size_t i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		if (opts[i].def)
			opt_set(c, &opts[i], opts[i].def, why, sizeof(why));
	}
}

/* Applies argv over c. Kingpin's rules: see config.h. */
static int parse_flags(struct config *c, int argc, char **argv, char *err, size_t errlen)
{
	char why[128], q[QUOTE_MAX * 4 + 8], q2[QUOTE_MAX * 4 + 8];
	bool positional = false;
	int i;

	for (i = 1; i < argc && argv[i]; i++) {
		const char *a = argv[i], *name, *eq, *value;
		const struct opt *o;
		bool negated = false;
		size_t n;

		if (positional || a[0] != '-' || !a[1])
			return fail(err, errlen, "unexpected argument \"%s\"",
				    printable(q, sizeof(q), a, strlen(a)));
		if (!strcmp(a, "--")) {
			positional = true;
			continue;
		}
		if (!strcmp(a, "-h")) {
			c->help = true;
			continue;
		}
		if (a[1] != '-')
			return fail(err, errlen, "unknown flag %s",
				    printable(q, sizeof(q), a, strlen(a)));
		name = a + 2;
		eq = strchr(name, '=');
		n = eq ? (size_t)(eq - name) : strlen(name);
		o = opt_find(name, n);
		if (!o && n > 3 && !memcmp(name, "no-", 3)) {
			o = opt_find(name + 3, n - 3);
			negated = o && o->type == OPT_BOOL;
			o = negated ? o : NULL;
		}
		if (!o)
			return fail(err, errlen, "unknown flag --%s",
				    printable(q, sizeof(q), name, n));
		if (negated && eq)
			return fail(err, errlen, "flag --no-%s takes no value", o->name);
		if (negated)
			value = "false";
		else if (eq)
			value = eq + 1;
		else if (o->type == OPT_BOOL)
			value = "true"; /* a bool never takes the next argument */
		else if (i + 1 < argc && argv[i + 1] && (argv[i + 1][0] != '-' || !argv[i + 1][1]))
			value = argv[++i];
		else
			return fail(err, errlen, "missing value for flag --%s", o->name);
		if (opt_set(c, o, value, why, sizeof(why)))
			return fail(err, errlen, "invalid value \"%s\" for flag --%s%s: %s",
				    printable(q2, sizeof(q2), value, strlen(value)),
				    negated ? "no-" : "", o->name, why);
	}
	return 0;
}

/*
 * One line of a config file: blank, "# comment", or key = value / key: value,
 * the value optionally quoted and followed by a comment.
 */
static int parse_line(struct config *c, const char *s, size_t n, const char *name,
		      unsigned int lineno, char *err, size_t errlen)
{
	char value[VALUE_MAX], why[128], q[QUOTE_MAX * 4 + 8];
	const struct opt *o;
	size_t k = 0, v;

	while (n && is_space(s[0]))
		s++, n--;
	while (n && is_space(s[n - 1]))
		n--;
	if (!n || s[0] == '#' || (n == 3 && !memcmp(s, "---", 3)))
		return 0;
	if (memchr(s, 0, n))
		return fail(err, errlen, "%s:%u: NUL byte in line", name, lineno);
	while (k < n && ((s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z') ||
			 (s[k] >= '0' && s[k] <= '9') || s[k] == '.' || s[k] == '-' || s[k] == '_'))
		k++;
	if (!k)
		return fail(err, errlen, "%s:%u: expected \"key = value\", got \"%s\"", name,
			    lineno, printable(q, sizeof(q), s, n));
	o = opt_find(s, k);
	if (!o || o->cli_only) {
		if (o && !strcmp(o->name, "config.file"))
			return fail(err, errlen,
				    "%s:%u: key \"config.file\" cannot be set in a config file",
				    name, lineno);
		return fail(err, errlen, "%s:%u: unknown key \"%s\"", name, lineno,
			    printable(q, sizeof(q), s, k));
	}
	for (v = k; v < n && is_space(s[v]); v++)
		;
	if (v == n || (s[v] != '=' && s[v] != ':'))
		return fail(err, errlen, "%s:%u: expected \"=\" or \":\" after key %s", name,
			    lineno, o->name);
	for (v++; v < n && is_space(s[v]); v++)
		;
	s += v;
	n -= v;
	if (n && (s[0] == '"' || s[0] == '\'')) {
		const char *close = memchr(s + 1, s[0], n - 1);
		size_t rest;

		if (!close)
			return fail(err, errlen, "%s:%u: unterminated quote in the value of key %s",
				    name, lineno, o->name);
		rest = (size_t)(close - s) + 1;
		while (rest < n && is_space(s[rest]))
			rest++;
		if (rest < n && s[rest] != '#')
			return fail(err, errlen, "%s:%u: text after the quoted value of key %s",
				    name, lineno, o->name);
		n = (size_t)(close - s) - 1;
		s++;
	} else {
		/* an unquoted value ends where a comment starts */
		for (v = 0; v < n; v++) {
			if (s[v] == '#' && (!v || is_space(s[v - 1])))
				break;
		}
		n = v;
		while (n && is_space(s[n - 1]))
			n--;
	}
	if (n >= sizeof(value))
		return fail(err, errlen, "%s:%u: invalid value \"%s\" for key %s: too long", name,
			    lineno, printable(q, sizeof(q), s, n), o->name);
	memcpy(value, s, n);
	value[n] = 0;
	if (opt_set(c, o, value, why, sizeof(why)))
		return fail(err, errlen, "%s:%u: invalid value \"%s\" for key %s: %s", name, lineno,
			    printable(q, sizeof(q), value, n), o->name, why);
	return 0;
}

int config_parse_text(struct config *c, const char *text, size_t len, const char *name, char *err,
		      size_t errlen)
{
	struct config next = *c;
	unsigned int lineno = 0;
	size_t off = 0;
	int rc;

	if (!name)
		name = "config";
	while (off < len) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (text + off)) : len - off;

		rc = parse_line(&next, text + off, n, name, ++lineno, err, errlen);
		if (rc)
			return rc;
		off += n + 1;
	}
	*c = next;
	return 0;
}

/* Reads the whole file, at most CONFIG_FILE_MAX bytes, into a new buffer. */
static int read_file(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
	char *buf = NULL, q[QUOTE_MAX * 4 + 8];
	size_t n = 0;
	ssize_t r;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		fail(err, errlen, "config file \"%s\": %s",
		     printable(q, sizeof(q), path, strlen(path)), strerror(-rc));
		goto out;
	}
	buf = malloc(CONFIG_FILE_MAX + 1);
	if (!buf) {
		rc = -ENOMEM;
		fail(err, errlen, "config file: out of memory");
		goto out;
	}
	/* one byte more than allowed tells a file that is too large */
	while (n < CONFIG_FILE_MAX + 1) {
		r = read(fd, buf + n, CONFIG_FILE_MAX + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			fail(err, errlen, "config file \"%s\": %s",
			     printable(q, sizeof(q), path, strlen(path)), strerror(-rc));
			goto out;
		}
		if (!r)
			break;
		n += (size_t)r;
	}
	if (n > CONFIG_FILE_MAX) {
		rc = -EFBIG;
		fail(err, errlen, "config file \"%s\": larger than %d KiB",
		     printable(q, sizeof(q), path, strlen(path)), CONFIG_FILE_MAX / 1024);
		goto out;
	}
	*out = buf;
	*len = n;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

int config_parse_args(struct config *c, int argc, char **argv, char *err, size_t errlen)
{
	struct config first = *c, next = *c;
	char *text = NULL;
	size_t len = 0;
	int rc;

	if (err && errlen)
		err[0] = 0;
	/* first pass: every flag checked, and where the config file is */
	rc = parse_flags(&first, argc, argv, err, errlen);
	if (rc)
		goto out;
	/* --help and --version answer without reading anything */
	if (first.config_file[0] && !first.help && !first.version) {
		rc = read_file(first.config_file, &text, &len, err, errlen);
		if (rc)
			goto out;
		rc = config_parse_text(&next, text, len, first.config_file, err, errlen);
		if (rc)
			goto out;
	}
	rc = parse_flags(&next, argc, argv, err, errlen);
	if (rc)
		goto out;
	*c = next;
out:
	free(text);
	return rc;
}

bool config_probe_enabled(const struct config *c, const char *name)
{
	const char *p = c->probes;
	size_t n;

	if (!p[0])
		return true;
	if (!name)
		return false;
	n = strlen(name);
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (len == n && !memcmp(p, name, n))
			return true;
		if (!comma)
			return false;
		p = comma + 1;
	}
}

static int usage_left(char *buf, size_t size, const struct opt *o)
{
	if (!strcmp(o->name, "help"))
		return snprintf(buf, size, "  -h, --help");
	if (o->type == OPT_BOOL && !o->cli_only)
		return snprintf(buf, size, "      --[no-]%s", o->name);
	return snprintf(buf, size, "      --%s%s", o->name, o->shown);
}

void config_usage(FILE *f, const char *prog)
{
	char left[128];
	int width = 0, n;
	size_t i;

	if (!prog)
		prog = "erpscope";
	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		n = usage_left(left, sizeof(left), &opts[i]);
		width = n > width ? n : width;
	}
	fprintf(f, "usage: %s [<flags>]\n\n", prog);
	fprintf(f, "eBPF profiler for Odoo, PostgreSQL and Python hosts. It watches their\n"
		   "workers from the kernel and serves Prometheus metrics, findings and\n"
		   "traces, without touching the applications.\n\n");
	fprintf(f, "Flags:\n");
	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		usage_left(left, sizeof(left), &opts[i]);
		fprintf(f, "%-*s  %s\n", width, left, opts[i].help);
	}
	fprintf(f, "\nA config file (--config.file) takes the same keys without \"--\", one\n"
		   "\"key = value\" per line, # for comments; flags given here win over it.\n");
}
