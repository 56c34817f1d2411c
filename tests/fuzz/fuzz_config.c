// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for the config parsers: the input as config file text,
 * then the same bytes split on NUL as an argv vector. A --config.file flag
 * is pointed at a path that does not exist, so the fuzzer never opens what
 * it names (a FIFO or /proc/kmsg would block); the file's text is covered
 * by the first half.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"

#define MAX_ARGS 64

static const char no_file[] = "--config.file=/nonexistent/erpscope-fuzz.yml";

/* Whatever parsed must be a config the daemon can run with. */
static void check(const struct config *c, int rc, const char *err, size_t errlen)
{
	if (rc) {
		if (rc > 0 || !memchr(err, 0, errlen) || strchr(err, '\n') || !err[0])
			abort();
		return;
	}
	if (!memchr(c->listen_address, 0, sizeof(c->listen_address)) ||
	    !memchr(c->telemetry_path, 0, sizeof(c->telemetry_path)) ||
	    !memchr(c->probes, 0, sizeof(c->probes)) ||
	    !memchr(c->config_file, 0, sizeof(c->config_file)))
		abort();
	if (c->telemetry_path[0] != '/' || !c->listen_address[0])
		abort();
	if (c->max_workers < 1 || c->max_workers > 8192 || c->rescan_ms < 100 ||
	    c->rescan_ms > 3600 * 1000)
		abort();
	if ((unsigned int)c->attach > ATTACH_RAW_TP || (unsigned int)c->log_level > LOG_ERROR)
		abort();
	config_probe_enabled(c, "sched");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *argv[MAX_ARGS + 2], *copy, err[256];
	struct config c;
	size_t off = 0;
	unsigned int ms;
	int argc = 1, rc;

	config_defaults(&c);
	rc = config_parse_text(&c, (const char *)data, size, "fuzz.yml", err, sizeof(err));
	check(&c, rc, err, sizeof(err));

	/* one NUL more than the input, so the last argument ends too */
	copy = malloc(size + 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = 0;
	argv[0] = (char *)"erpscope";
	while (off < size && argc <= MAX_ARGS) {
		char *a = copy + off;

		off += strlen(a) + 1;
		argv[argc++] = strncmp(a, "--config.file", 13) ? a : (char *)no_file;
	}
	argv[argc] = NULL;
	config_defaults(&c);
	rc = config_parse_args(&c, argc, argv, err, sizeof(err));
	check(&c, rc, err, sizeof(err));

	config_parse_duration_ms(copy, &ms);
	free(copy);
	return 0;
}
