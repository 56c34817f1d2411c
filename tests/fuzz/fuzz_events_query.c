// SPDX-License-Identifier: GPL-2.0
/* GET /events query values (since, limit, type) from arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/events.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *parts[3] = { NULL, NULL, NULL }, err[256];
	struct events_query q;
	size_t start = 0;
	int np = 0;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = 0;
	/* NUL-separated: since, limit, type; a missing one is "absent". */
	for (size_t i = 0; i <= size && np < 3; i++) {
		if (buf[i] == 0) {
			parts[np++] = buf + start;
			start = i + 1;
		}
	}
	if (events_parse_query(&q, parts[0], parts[1], parts[2], err, sizeof(err)) == 0) {
		if (q.limit < 1 || q.limit > 1024)
			abort();
		if (memchr(q.type, 0, sizeof(q.type)) == NULL)
			abort();
	} else if (!memchr(err, 0, sizeof(err))) {
		abort();
	}
	free(buf);
	return 0;
}
