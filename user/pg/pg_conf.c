// SPDX-License-Identifier: GPL-2.0
/*
 * A reader for postgresql.conf's syntax (guc-file.l): "name [=] value"
 * lines, # comments, values bare or 'quoted' ('' and backslash escapes),
 * and the include directives. Only what is asked for is kept.
 */
#include "pg/pg_conf.h"
#include "core/grow.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME_MAX_LEN 64

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_name(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-';
}

/* Parses the value at p (up to end); returns where it stopped. */
static const char *parse_value(const char *p, const char *end, char *out, size_t size)
{
	size_t o = 0;

	if (p < end && *p == '\'') {
		for (p++; p < end && *p != '\n'; p++) {
			char c = *p;

			if (c == '\'') {
				if (p + 1 < end && p[1] == '\'') {
					p++;
				} else {
					p++;
					break;
				}
			} else if (c == '\\' && p + 1 < end && p[1] != '\n') {
				c = *++p;
				c = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
			}
			if (o + 1 < size)
				out[o++] = c;
		}
	} else {
		for (; p < end && *p != '\n' && *p != '#' && !is_space(*p); p++) {
			if (o + 1 < size)
				out[o++] = *p;
		}
	}
	if (size)
		out[o] = 0;
	return p;
}

/* Formats into out; false (and "") when it does not fit. */
static bool fmt(char *out, size_t size, const char *f, ...) __attribute__((format(printf, 3, 4)));

static bool fmt(char *out, size_t size, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(out, size, f, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size) {
		if (size)
			out[0] = 0;
		return false;
	}
	return true;
}

/* dir/rel, or rel when it is absolute ("" when too long). */
static void join(char *out, size_t size, const char *dir, const char *rel)
{
	if (rel[0] == '/' || !dir || !dir[0])
		fmt(out, size, "%s", rel);
	else
		fmt(out, size, "%s/%s", dir, rel);
}

static void dir_of(const char *path, char *out, size_t size)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(out, size, ".");
	else if (slash == path)
		snprintf(out, size, "/");
	else
		snprintf(out, size, "%.*s", (int)(slash - path), path);
}

static int lookup_file(const char *path, const char *name, char *value, size_t vsize,
		       const struct pg_conf_io *io, int depth)
{
	char dir[PATH_MAX];
	char *text = NULL;
	size_t len = 0;
	int found;

	if (depth > PG_CONF_DEPTH_MAX || io->read(io->arg, path, &text, &len))
		return 0;
	dir_of(path, dir, sizeof(dir));
	found = pg_conf_lookup(text, len, dir, name, value, vsize, io, depth);
	free(text);
	return found;
}

static int lookup_dir(const char *path, const char *name, char *value, size_t vsize,
		      const struct pg_conf_io *io, int depth)
{
	char **names = NULL, file[PATH_MAX];
	size_t n = 0;
	int found = 0;

	if (depth > PG_CONF_DEPTH_MAX || io->list(io->arg, path, &names, &n))
		return 0;
	for (size_t i = 0; i < n; i++) {
		join(file, sizeof(file), path, names[i]);
		found |= lookup_file(file, name, value, vsize, io, depth + 1);
		free(names[i]);
	}
	free(names);
	return found;
}

int pg_conf_lookup(const char *text, size_t len, const char *dir, const char *name, char *value,
		   size_t vsize, const struct pg_conf_io *io, int depth)
{
	const char *p = text, *end = text + len;
	int found = 0;

	while (p < end) {
		char key[NAME_MAX_LEN + 1], val[PATH_MAX], path[PATH_MAX];
		size_t k = 0;

		while (p < end && (is_space(*p) || *p == '\n'))
			p++;
		if (p < end && is_name(*p)) {
			while (p < end && is_name(*p)) {
				if (k < NAME_MAX_LEN)
					key[k++] = *p;
				p++;
			}
			key[k] = 0;
			while (p < end && is_space(*p))
				p++;
			if (p < end && *p == '=')
				p++;
			while (p < end && is_space(*p))
				p++;
			p = parse_value(p, end, val, sizeof(val));
			if (!strcasecmp(key, "include") || !strcasecmp(key, "include_if_exists")) {
				join(path, sizeof(path), dir, val);
				if (val[0])
					found |= lookup_file(path, name, value, vsize, io,
							     depth + 1);
			} else if (!strcasecmp(key, "include_dir")) {
				join(path, sizeof(path), dir, val);
				if (val[0])
					found |= lookup_dir(path, name, value, vsize, io, depth);
			} else if (!strcasecmp(key, name)) {
				snprintf(value, vsize, "%s", val);
				found = 1;
			}
		}
		/* The rest of the line is a comment or junk. */
		while (p < end && *p != '\n')
			p++;
	}
	return found;
}

/* ---------------------------------------------------------------- argv */

struct args {
	char datadir[PATH_MAX];
	char config_file[PATH_MAX];
	char max_conn[32];
};

/* "name=value" of -c or --name=value. */
static void setting(struct args *a, const char *s)
{
	const char *eq = strchr(s, '=');
	size_t n;

	if (!eq)
		return;
	n = (size_t)(eq - s);
	/* PostgreSQL accepts - for _ in option names. */
	if (n == strlen("config_file") && !strncmp(s, "config_file", n))
		snprintf(a->config_file, sizeof(a->config_file), "%s", eq + 1);
	else if (n == strlen("max_connections") &&
		 (!strncmp(s, "max_connections", n) || !strncmp(s, "max-connections", n)))
		snprintf(a->max_conn, sizeof(a->max_conn), "%s", eq + 1);
	else if (n == strlen("data_directory") && !strncmp(s, "data_directory", n) &&
		 !a->datadir[0])
		snprintf(a->datadir, sizeof(a->datadir), "%s", eq + 1);
}

static void parse_args(const char *argv, size_t len, struct args *a)
{
	const char *p = argv, *end = argv + len;
	char tok[PATH_MAX], want = 0; /* the option whose value comes next */

	memset(a, 0, sizeof(*a));
	while (p < end) {
		const char *nul = memchr(p, 0, (size_t)(end - p));
		size_t n = nul ? (size_t)(nul - p) : (size_t)(end - p);

		snprintf(tok, sizeof(tok), "%.*s", (int)(n < sizeof(tok) ? n : sizeof(tok) - 1), p);
		if (want == 'D')
			fmt(a->datadir, sizeof(a->datadir), "%s", tok);
		else if (want == 'c')
			setting(a, tok);
		else if (want == 'N')
			fmt(a->max_conn, sizeof(a->max_conn), "%s", tok);
		else if (!strncmp(tok, "-D", 2) && tok[2])
			fmt(a->datadir, sizeof(a->datadir), "%s", tok + 2);
		else if (!strncmp(tok, "--", 2))
			setting(a, tok + 2);
		want = 0;
		if (!strcmp(tok, "-D") || !strcmp(tok, "-c") || !strcmp(tok, "-N"))
			want = tok[1];
		p += n + 1;
	}
}

static int to_int(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || v < 0 || v > 1000000)
		return -1;
	return (int)v;
}

int pg_conf_max_connections(const char *argv, size_t len, const char *cwd, char *datadir,
			    size_t dsize, const struct pg_conf_io *io)
{
	char conf[PATH_MAX], dd[PATH_MAX], val[64], moved[PATH_MAX];
	struct args a;
	int v = PG_CONF_DEFAULT_MAX_CONNECTIONS, x;

	parse_args(argv, len, &a);
	if (!a.datadir[0])
		return -ENOENT;
	join(dd, sizeof(dd), cwd, a.datadir);
	if (a.config_file[0])
		join(conf, sizeof(conf), cwd, a.config_file);
	else
		fmt(conf, sizeof(conf), "%s/postgresql.conf", dd);
	if (lookup_file(conf, "max_connections", val, sizeof(val), io, 0) && (x = to_int(val)) >= 0)
		v = x;
	/* The configuration file may move the data directory (Debian's do not). */
	if (a.config_file[0] && lookup_file(conf, "data_directory", moved, sizeof(moved), io, 0) &&
	    moved[0])
		join(dd, sizeof(dd), cwd, moved);
	fmt(conf, sizeof(conf), "%s/postgresql.auto.conf", dd);
	if (lookup_file(conf, "max_connections", val, sizeof(val), io, 0) && (x = to_int(val)) >= 0)
		v = x;
	if (a.max_conn[0] && (x = to_int(a.max_conn)) >= 0)
		v = x;
	fmt(datadir, dsize, "%s", dd);
	return v;
}

/* ---------------------------------------------------------------- the file system */

static int fs_read(void *arg, const char *path, char **text, size_t *len)
{
	struct stat st;
	ssize_t n;
	char *buf;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > PG_CONF_FILE_MAX) {
		err = -EINVAL;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	n = read(fd, buf, (size_t)st.st_size);
	if (n < 0) {
		err = -errno;
		free(buf);
		goto out;
	}
	buf[n] = 0;
	*text = buf;
	*len = (size_t)n;
out:
	close(fd);
	return err;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int fs_list(void *arg, const char *dir, char ***names, size_t *n)
{
	DIR *dp = opendir(dir);
	struct dirent *d;
	char **v = NULL;
	size_t k = 0, cap = 0;

	if (!dp)
		return -errno;
	while ((d = readdir(dp))) {
		size_t l = strlen(d->d_name);

		if (d->d_name[0] == '.' || l < 6 || strcmp(d->d_name + l - 5, ".conf"))
			continue;
		if (grow_array(&v, &cap, k + 1, sizeof(*v), 8))
			break;
		if (!(v[k] = strdup(d->d_name)))
			break;
		k++;
	}
	closedir(dp);
	qsort(v, k, sizeof(*v), by_name);
	*names = v;
	*n = k;
	return 0;
}

const struct pg_conf_io pg_conf_fs = { .read = fs_read, .list = fs_list, .arg = NULL };

int pg_conf_pidfile_port(const char *text, size_t len)
{
	size_t i = 0;
	long port = 0;
	int line = 1;

	while (i < len && line < 4) {
		if (text[i++] == '\n')
			line++;
	}
	if (line < 4 || i >= len || text[i] < '0' || text[i] > '9')
		return -EINVAL;
	for (; i < len && text[i] >= '0' && text[i] <= '9'; i++) {
		port = port * 10 + (text[i] - '0');
		if (port > 65535)
			return -EINVAL;
	}
	if ((i < len && text[i] != '\n') || port < 1)
		return -EINVAL;
	return (int)port;
}
