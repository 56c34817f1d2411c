// SPDX-License-Identifier: GPL-2.0
/* The access rules of web.h, without state. */
#include "core/web.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

bool web_is_loopback(const struct sockaddr *sa)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const struct sockaddr_in6 *sin6;

	if (!sa)
		return false;
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family != AF_INET6)
		return false;
	sin6 = (const struct sockaddr_in6 *)sa;
	if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
		return true;
	return !memcmp(sin6->sin6_addr.s6_addr, mapped, sizeof(mapped)) &&
	       sin6->sin6_addr.s6_addr[12] == 127;
}

unsigned int web_verdict(enum web_exposure mode, bool sensitive, bool loopback,
			 enum web_auth_state auth)
{
	if (auth == WEB_AUTH_FAILED)
		return 401;
	if (auth == WEB_AUTH_BUSY)
		return 429;
	if (!sensitive)
		return 0;
	switch (mode) {
	case WEB_EXPOSE_ALL:
		return 0;
	case WEB_EXPOSE_AUTH:
		return loopback || auth == WEB_AUTH_PASSED ? 0 : 404;
	case WEB_EXPOSE_LOCALHOST:
		return loopback ? 0 : 404;
	case WEB_EXPOSE_OFF:
		break;
	}
	return 404;
}
