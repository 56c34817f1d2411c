// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for title_classify(). The first byte picks where exe and
 * comm come from (fixed names that reach each parser, or text cut from the
 * input); the rest is the cmdline, exactly sized so ASan sees any overread.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "procs/title.h"

static const char *const names[] = { "postgres", "python3.11", "" };

/* Takes a '\n'-terminated name off the front of the input, bounded. */
static void take_name(const uint8_t **data, size_t *size, char *dst, size_t cap)
{
	const uint8_t *nl = memchr(*data, '\n', *size);
	size_t n = nl ? (size_t)(nl - *data) : *size;

	memcpy(dst, *data, n < cap - 1 ? n : cap - 1);
	dst[n < cap - 1 ? n : cap - 1] = 0;
	n = nl ? n + 1 : n;
	*data += n;
	*size -= n;
}

static void pick(unsigned int sel, const uint8_t **data, size_t *size, char *dst, size_t cap)
{
	if (sel < 3) {
		strcpy(dst, names[sel]);
		return;
	}
	take_name(data, size, dst, cap);
}

static void check(const char *cmd, size_t len, const char *exe, const char *comm)
{
	struct title_info ti;
	enum es_role role = title_classify(cmd, len, exe, comm, &ti);

	if ((unsigned int)role >= ES_ROLE_COUNT || role != ti.role)
		abort();
	if (role != title_classify(cmd, len, exe, comm, NULL))
		abort();
	if (strnlen(ti.db, TITLE_FIELD_MAX) == TITLE_FIELD_MAX ||
	    strnlen(ti.user, TITLE_FIELD_MAX) == TITLE_FIELD_MAX ||
	    strnlen(ti.cluster, TITLE_FIELD_MAX) == TITLE_FIELD_MAX ||
	    strnlen(ti.state, TITLE_FIELD_MAX) == TITLE_FIELD_MAX ||
	    strnlen(ti.client, TITLE_FIELD_MAX) == TITLE_FIELD_MAX)
		abort();
	if (!role_name(role)[0])
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char exe[256], comm[17];
	unsigned int sel;
	char *cmd;

	if (!size)
		return 0;
	sel = data[0];
	data++;
	size--;
	pick(sel & 3, &data, &size, exe, sizeof(exe));
	pick((sel >> 2) & 3, &data, &size, comm, sizeof(comm));

	cmd = malloc(size ? size : 1);
	if (!cmd)
		return 0;
	memcpy(cmd, data, size);
	check(cmd, size, exe, comm);
	/* every prefix length the parsers branch on is worth a look too */
	if (size > 1)
		check(cmd, size / 2, exe, comm);
	free(cmd);
	return 0;
}
