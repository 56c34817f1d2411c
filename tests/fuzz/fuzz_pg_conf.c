// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for the postgresql.conf reader and the postmaster argv
 * parser. The input is split at the first "\n--\n": the first part is a
 * postmaster argv ('\n' for NUL), the rest the configuration file; every
 * include reads the same text again, so nesting runs to its limit. The
 * whole input is also read as a postmaster.pid for its port line.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pg/pg_conf.h"

struct input {
	const char *conf;
	size_t len;
	unsigned int reads;
};

static int fake_read(void *arg, const char *path, char **text, size_t *len)
{
	struct input *in = arg;

	if (!path || ++in->reads > 1000)
		return -ENOENT;
	*text = malloc(in->len + 1);
	if (!*text)
		return -ENOMEM;
	memcpy(*text, in->conf, in->len);
	(*text)[in->len] = 0;
	*len = in->len;
	return 0;
}

static int fake_list(void *arg, const char *dir, char ***names, size_t *n)
{
	char **v = malloc(2 * sizeof(*v));

	if (!v)
		return -ENOMEM;
	v[0] = strdup("a.conf");
	v[1] = strdup("b.conf");
	if (!v[0] || !v[1]) {
		free(v[0]);
		free(v[1]);
		free(v);
		return -ENOMEM;
	}
	*names = v;
	*n = 2;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *sep = memmem(data, size, "\n--\n", 4);
	size_t alen = sep ? (size_t)(sep - (const char *)data) : size;
	struct input in = { sep ? sep + 4 : "", sep ? size - alen - 4 : 0, 0 };
	struct pg_conf_io io = { fake_read, fake_list, &in };
	char *argv = malloc(alen ? alen : 1), value[128], dd[4096];
	int v;

	if (!argv)
		abort();
	memcpy(argv, data, alen);
	for (size_t i = 0; i < alen; i++)
		argv[i] = argv[i] == '\n' ? 0 : argv[i];
	v = pg_conf_max_connections(argv, alen, "/cwd", dd, sizeof(dd), &io);
	if (v < -4096 || v > 1000000)
		abort();
	if (v >= 0 && strnlen(dd, sizeof(dd)) == sizeof(dd))
		abort();
	in.reads = 0;
	if (pg_conf_lookup(in.conf, in.len, "/etc", "max_connections", value, sizeof(value), &io,
			   0) &&
	    strnlen(value, sizeof(value)) == sizeof(value))
		abort();
	/* The whole input as a postmaster.pid: a port or -EINVAL, nothing else. */
	v = pg_conf_pidfile_port((const char *)data, size);
	if (v != -EINVAL && (v < 1 || v > 65535))
		abort();
	free(argv);
	return 0;
}
