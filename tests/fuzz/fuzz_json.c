// SPDX-License-Identifier: GPL-2.0
/*
 * The JSON writer on hostile strings (process titles, comm, cgroup paths end
 * up in /events): the output must be one valid JSON document whose strings
 * hold no raw control byte and are valid UTF-8.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"

static void check_utf8_no_controls(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 :
					     (c & 0xf8) == 0xf0 ? 4 : 0;

		if (c < 0x20 || !len || i + len > n)
			abort();
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				abort();
		}
		i += len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json j;
	size_t half = size / 2;

	json_init(&j);
	json_object_begin(&j, NULL);
	json_strn(&j, "a", (const char *)data, half);
	json_array_begin(&j, "list");
	json_strn(&j, NULL, (const char *)data + half, size - half);
	json_array_end(&j);
	json_object_end(&j);
	if (json_finish(&j) == 0) {
		check_utf8_no_controls((const unsigned char *)j.buf, j.len);
		if (!j.len || j.buf[0] != '{' || j.buf[j.len - 1] != '}')
			abort();
	}
	json_free(&j);
	return 0;
}
