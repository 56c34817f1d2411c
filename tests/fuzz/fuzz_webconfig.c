// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for the web config's YAML (webconfig_parse). Whatever it
 * accepts must be a config the server can use: bounded lists, known TLS
 * versions in order, bcrypt-shaped hashes, header values on one line, and a
 * priority string when TLS is on; a refusal is one line naming a key.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/webconfig.h"

static void check(const struct web_config *c)
{
	if (c->nusers > WEB_MAX_USERS || c->nheaders > WEB_MAX_HEADERS ||
	    c->nsuites > WEB_MAX_SUITES || c->ncurves > WEB_MAX_CURVES)
		abort();
	if (c->tls && (c->min_version < 0x0301 || c->max_version > 0x0304 ||
		       c->min_version > c->max_version || strncmp(c->priority, "NORMAL:", 7)))
		abort();
	if (c->tls && !(c->cert_file || c->cert) && !(c->key_file || c->key))
		abort();
	for (unsigned int i = 0; i < c->nusers; i++) {
		if (!c->users[i].name || strlen(c->users[i].hash) != 60 ||
		    strncmp(c->users[i].hash, "$2", 2))
			abort();
	}
	for (unsigned int i = 0; i < c->nheaders; i++) {
		for (const char *p = c->headers[i].value; *p; p++) {
			if ((unsigned char)*p < 0x20)
				abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct web_config c;
	char err[512];
	int rc;

	err[0] = 0;
	rc = webconfig_parse(&c, (const char *)data, size, "/etc/erpscope", "fuzz.yml", err,
			     sizeof(err));
	if (rc) {
		if (rc != -EINVAL && rc != -ENOMEM)
			abort();
		if (rc == -EINVAL && (!err[0] || strchr(err, '\n')))
			abort();
		return 0;
	}
	check(&c);
	webconfig_free(&c);
	return 0;
}
