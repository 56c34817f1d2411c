// SPDX-License-Identifier: GPL-2.0
/*
 * Listen-address parsing, apart from http.c so the fuzzer links it without
 * libmicrohttpd. Numeric addresses and "localhost" only: resolving names
 * here would make startup depend on DNS and the bound address on its answer.
 */
#include "core/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

int http_parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

/* 1 to 5 decimal digits, at most 65535; 0 asks the kernel for a free port. */
static int parse_port(const char *s, unsigned int *port)
{
	unsigned int v = 0;
	size_t n;

	for (n = 0; s[n]; n++) {
		if (n == 5 || s[n] < '0' || s[n] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned int)(s[n] - '0');
	}
	if (!n || v > 65535)
		return -EINVAL;
	*port = v;
	return 0;
}

/*
 * "127.0.0.1:9435", "[::1]:9435", "localhost:9435" (127.0.0.1) and ":9435",
 * which gives the IPv6 wildcard: httpd_start makes it dual-stack, or falls
 * back to 0.0.0.0 where the host has no IPv6.
 */
int http_parse_listen(const char *listen, struct sockaddr_storage *ss, unsigned int *sslen)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	char host[INET6_ADDRSTRLEN];
	const char *h, *colon;
	unsigned int port;
	bool v6 = false;
	size_t hlen;

	if (!listen || !ss || !sslen)
		return -EINVAL;
	if (listen[0] == '[') {
		const char *end = strchr(listen, ']');

		if (!end || end[1] != ':')
			return -EINVAL;
		h = listen + 1;
		hlen = (size_t)(end - h);
		colon = end + 1;
		v6 = true;
		if (!hlen)
			return -EINVAL;
	} else {
		colon = strrchr(listen, ':');
		if (!colon)
			return -EINVAL;
		h = listen;
		hlen = (size_t)(colon - listen);
		/* An IPv6 address needs brackets, or the port is ambiguous. */
		if (memchr(h, ':', hlen))
			return -EINVAL;
	}
	if (hlen >= sizeof(host) || parse_port(colon + 1, &port))
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = 0;
	memset(ss, 0, sizeof(*ss));
	if (v6 || !hlen) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		if (!hlen)
			sin6->sin6_addr = in6addr_any;
		else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -EINVAL;
		*sslen = sizeof(*sin6);
		return 0;
	}
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	if (!strcasecmp(host, "localhost"))
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return -EINVAL;
	*sslen = sizeof(*sin);
	return 0;
}
