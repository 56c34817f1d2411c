/* SPDX-License-Identifier: GPL-2.0 */
/* One-line logfmt logging to stderr: level=info ts=... msg="..." key=value */
#ifndef ERPSCOPE_LOG_H
#define ERPSCOPE_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Returns 0, or -EINVAL for a name that is not debug|info|warn|error. */
int log_level_parse(const char *name, enum log_level *out);
void log_set_level(enum log_level level);
int log_enabled(enum log_level level);

/*
 * msg is quoted and escaped; kvfmt is printf-style "key=value ..." appended
 * verbatim (use log_quote() style values via %s only for safe tokens, or
 * LOG_Q for untrusted strings).
 */
void log_kv(enum log_level level, const char *msg, const char *kvfmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Routes libbpf's messages through log_kv (level mapped, newline trimmed). */
void log_hook_libbpf(void);
/*
 * Around a load that may be refused, its caller then trying another way
 * (and saying so): libbpf's warnings, the verifier's log, go to debug.
 */
void log_libbpf_trial(bool on);

/* Writes s as a logfmt-safe quoted value into buf (always NUL-terminated). */
const char *log_quote(char *buf, unsigned long size, const char *s);

#define log_debug(msg, ...) log_kv(LOG_DEBUG, msg, "" __VA_ARGS__)
#define log_info(msg, ...) log_kv(LOG_INFO, msg, "" __VA_ARGS__)
#define log_warn(msg, ...) log_kv(LOG_WARN, msg, "" __VA_ARGS__)
#define log_error(msg, ...) log_kv(LOG_ERROR, msg, "" __VA_ARGS__)

#endif
