/* SPDX-License-Identifier: GPL-2.0 */
/*
 * PostgreSQL's configuration, as far as erpscope needs it: max_connections
 * of a running server, from its postmaster's argv and the files it names.
 * File text is untrusted input: bounded, never assumed terminated.
 */
#ifndef ERPSCOPE_PG_CONF_H
#define ERPSCOPE_PG_CONF_H

#include <stddef.h>

#define PG_CONF_FILE_MAX (1u << 20) /* bigger files are not read */
#define PG_CONF_DEPTH_MAX 10         /* include nesting, as PostgreSQL's */
#define PG_CONF_DEFAULT_MAX_CONNECTIONS 100

struct pg_conf_io {
	/* Reads a whole file (malloc'd into *text). Returns 0 or -errno. */
	int (*read)(void *arg, const char *path, char **text, size_t *len);
	/* Names of the *.conf files in dir, sorted (malloc'd). Returns 0 or -errno. */
	int (*list)(void *arg, const char *dir, char ***names, size_t *n);
	void *arg;
};

/* The real file system. */
extern const struct pg_conf_io pg_conf_fs;

/*
 * Looks name up (case-insensitively) in one file's text, following
 * include, include_if_exists and include_dir (relative to dir, the file's
 * directory) through io. value gets the last setting's value, unquoted.
 * Returns 1 when name was set, 0 when not.
 */
int pg_conf_lookup(const char *text, size_t len, const char *dir, const char *name, char *value,
		   size_t vsize, const struct pg_conf_io *io, int depth);

/*
 * max_connections of the server whose postmaster has this argv (NUL
 * separated, len bytes) and working directory cwd: its -c/--max_connections
 * or -N, else postgresql.auto.conf in the data directory, else the
 * configuration file (-c config_file=..., else <data>/postgresql.conf) and
 * its includes, else PostgreSQL's default (100). datadir gets the data
 * directory. Returns the value, or -errno when argv names no data
 * directory (-D).
 */
int pg_conf_max_connections(const char *argv, size_t len, const char *cwd, char *datadir,
			    size_t dsize, const struct pg_conf_io *io);

/*
 * The TCP port of a running server, from its data directory's
 * postmaster.pid (text, len bytes): the fourth line (PID, data directory,
 * start time, port, ...). Returns 1..65535, or -EINVAL when that line is
 * missing or not a port.
 */
int pg_conf_pidfile_port(const char *text, size_t len);

#endif
