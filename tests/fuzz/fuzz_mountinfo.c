// SPDX-License-Identifier: GPL-2.0
/*
 * /proc/self/mountinfo parsing: mount points are chosen by users (FUSE,
 * container runtimes) and may hold spaces, escapes and odd bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct host_fs fs[16];
	char *text = malloc(size + 1);
	bool full = false;
	int n;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	n = host_parse_mountinfo(text, fs, 16, &full);
	if (n > 16)
		abort();
	for (int i = 0; i < n; i++) {
		if (!memchr(fs[i].mountpoint, 0, sizeof(fs[i].mountpoint)) ||
		    !memchr(fs[i].device, 0, sizeof(fs[i].device)) ||
		    !memchr(fs[i].fstype, 0, sizeof(fs[i].fstype)))
			abort();
	}
	free(text);
	return 0;
}
