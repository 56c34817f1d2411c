/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Flags in node_exporter's style (--web.listen-address=ADDR or
 * --web.listen-address ADDR, --strict / --no-strict) and an optional config
 * file with the same keys (key = value, # comments). Flags win over the file.
 */
#ifndef ERPSCOPE_CONFIG_H
#define ERPSCOPE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "core/log.h"

enum attach_mode { ATTACH_AUTO, ATTACH_TP_BTF, ATTACH_RAW_TP };
/* Who sees the sensitive endpoints (core/web.h). */
enum web_exposure { WEB_EXPOSE_LOCALHOST, WEB_EXPOSE_AUTH, WEB_EXPOSE_ALL, WEB_EXPOSE_OFF };

struct config {
	char listen_address[128];  /* web.listen-address, default 127.0.0.1:9435 */
	char telemetry_path[128];  /* web.telemetry-path, default /metrics */
	char web_config_file[256]; /* web.config.file: exporter-toolkit YAML, "" = none */
	enum web_exposure web_sensitive; /* web.sensitive-endpoints, default localhost */
	char probes[256];          /* probes: comma list, "" = all that attach */
	bool strict;               /* strict */
	bool check;                /* check */
	enum log_level log_level;  /* log.level */
	unsigned int max_workers;  /* max-workers, default 512, 1..ES_WORKERS_MAP_MAX/2 */
	unsigned int rescan_ms;    /* procs.rescan-interval, duration, default 5s */
	unsigned int pg_top_k;     /* pg.top-statements, default 100: statements with own series */
	unsigned int pg_max_fps;   /* pg.max-fingerprints, default 4096: pg_stats entries */
	unsigned int pg_slow_ms;   /* pg.slow-query-threshold, duration, default 100ms */
	unsigned int pg_window_ms; /* pg.quantile-window, duration, default 5m */
	bool pg_single_probe;      /* pg.single-probe, default true: statements on query__done alone */
	bool pg_direct_args;       /* pg.direct-args, default true: query__done's argument from its note */
	unsigned int tcp_max_remotes; /* tcp.max-remotes, default 50: remote labels per role */
	unsigned int tcp_idle_ms;     /* tcp.remote-idle-timeout, duration, default 10m */
	unsigned int http_slow_ms; /* http.slow-request-threshold, default 2 s */
	unsigned int http_top_routes; /* http.top-routes, default 100: routes with own series per role */
	unsigned int http_top_rpcs;   /* http.top-rpcs, default 200: model.method pairs with own series per role */
	unsigned int py_sample_hz;    /* python.sample-frequency, default 49 (Hz per CPU), 0 = off */
	unsigned int py_offcpu_ms;    /* python.offcpu-threshold, duration, default 10ms */
	unsigned int py_depth;        /* python.stack-depth, default 64 (1..64) */
	unsigned int py_top_funcs;    /* python.top-functions, default 20: functions with own series per role */
	unsigned int py_window_ms;    /* python.profile-window, duration, default 5m */
	unsigned int py_max_stacks;   /* python.profile-max-stacks, default 32768 */
	unsigned int diag_cron_ms;    /* diagnose.cron-threshold, duration, default 10m */
	char py_capture[512];         /* python.capture-args: FUNC:ARG[:ARG],... ("" = none) */
	unsigned int cron_poll_ms;    /* odoo.cron-poll-interval, duration, default 100ms */
	char py_users[256];           /* python.users: users (names or uids) whose Python is read; "" = Odoo's */
	unsigned int web_max_conns;   /* web.max-connections, default 64: served at once, 503 beyond */
	unsigned int web_client_rate; /* web.client-rate, default 10: expensive requests/s per client, 0 = off */
	char gpu_nvml_library[256];   /* gpu.nvml-library: dlopen()ed, "" = NVML off */
	unsigned int gpu_poll_ms;     /* gpu.poll-interval, duration, default 5s (1s..60s) */
	unsigned int trace_flight_ms;  /* trace.flight-recorder, duration, default 0 (off) */
	unsigned int trace_buffer_bytes; /* trace.buffer-size, default 32 MiB */
	unsigned int trace_slow_ms;    /* trace.slow-request, duration, default 5s */
	char trace_dir[256];           /* trace.dir, default /var/lib/erpscope/traces */
	unsigned int trace_max_files;  /* trace.max-files, default 20 */
	unsigned int trace_max_bytes;  /* trace.max-bytes, default 512 MiB */
	bool pg_buffer_misses;     /* pg.buffer-misses: attach smgr__md__read__done */
	bool bpf_stats;            /* bpf.stats: BPF_ENABLE_STATS while running */
	enum attach_mode attach;   /* bpf.attach-mode: auto|tp_btf|raw_tp */
	char config_file[256];     /* config.file */
	bool help;                 /* --help / -h */
	bool version;              /* --version */
};

void config_defaults(struct config *c);

/*
 * Parses argv (argv[0] skipped). Reads --config.file first, then applies the
 * flags over it. Returns 0, or -EINVAL with a one-line message naming the
 * flag (or file:line and key) in err; a config file that cannot be read
 * gives its -errno (-ENOENT, -EACCES, ...; -EFBIG over 64 KiB) and a message.
 * On error *c is left as it was. --help and --version skip the file.
 */
int config_parse_args(struct config *c, int argc, char **argv, char *err, size_t errlen);

/* Parses config file text. name is used in messages. Same errors as above. */
int config_parse_text(struct config *c, const char *text, size_t len, const char *name,
		      char *err, size_t errlen);

/* Parses a duration: 250ms, 5s, 2m, 1h, or a bare number of seconds. */
int config_parse_duration_ms(const char *s, unsigned int *out_ms);
/* "65536", "64KiB", "32MiB", "1GiB" to bytes. Returns 0, -EINVAL or -ERANGE (over 4 GiB - 1). */
int config_parse_bytes(const char *s, unsigned int *out);

/* True when name is in the --probes list (or the list is empty). */
bool config_probe_enabled(const struct config *c, const char *name);

void config_usage(FILE *f, const char *prog);

#endif
