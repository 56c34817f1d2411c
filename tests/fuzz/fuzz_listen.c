// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for http_parse_listen(). What it accepts must be a
 * consistent sockaddr, and writing that back as text must parse to the same.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/http.h"

static void roundtrip(const struct sockaddr_storage *ss, unsigned int len)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	char host[INET6_ADDRSTRLEN], text[80];
	struct sockaddr_storage again;
	unsigned int len2 = 0;

	if (ss->ss_family == AF_INET6) {
		if (len != sizeof(*sin6) ||
		    !inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host)))
			abort();
		snprintf(text, sizeof(text), "[%s]:%u", host, ntohs(sin6->sin6_port));
	} else if (ss->ss_family == AF_INET) {
		if (len != sizeof(*sin) || !inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host)))
			abort();
		snprintf(text, sizeof(text), "%s:%u", host, ntohs(sin->sin_port));
	} else {
		abort();
	}
	if (http_parse_listen(text, &again, &len2) || len2 != len || memcmp(ss, &again, len))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage ss;
	unsigned int len = 0;
	char *s = malloc(size + 1);

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	if (!http_parse_listen(s, &ss, &len))
		roundtrip(&ss, len);
	free(s);
	return 0;
}
