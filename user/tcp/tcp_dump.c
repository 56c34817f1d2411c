// SPDX-License-Identifier: GPL-2.0
/*
 * One SOCK_DIAG dump of the listening TCP sockets of one family, on a
 * NETLINK_SOCK_DIAG socket of the caller's (core of the tcp poller's listen
 * queues and of the requests poller's "does this python serve HTTP"). The
 * kernel walks its listening hash only: unlike /proc/net/tcp, the cost does
 * not grow with the established and TIME_WAIT sockets of a busy server.
 */
#include <errno.h>
#include <sys/socket.h>
#include <linux/netlink.h>

#include "tcp/tcp.h"

int tcp_diag_dump(int nl, void *buf, size_t size, uint32_t *seq, int family, tcp_listener_fn fn,
		  void *arg)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	int len, err;

	/* What an interrupted dump left behind must not be read as this one's. */
	while (recv(nl, buf, size, MSG_DONTWAIT) > 0)
		;
	len = tcp_diag_request(buf, size, family, ++*seq);
	if (len < 0)
		return len;
	if (sendto(nl, buf, (size_t)len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	for (;;) {
		ssize_t n = recv(nl, buf, size, 0);

		if (n < 0)
			return errno == EINTR ? 0 : -errno;
		if (n == 0)
			return -EPIPE;
		err = tcp_diag_parse(buf, (size_t)n, fn, arg);
		if (err)
			return err < 0 ? err : 0;
	}
}
