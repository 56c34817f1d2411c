// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for the tcp probe's parsers of kernel output: a SOCK_DIAG
 * dump buffer (tcp_diag_parse), /proc/<pid>/fd links and /proc/<pid>/stat
 * text. Each gets an exactly sized copy so ASan sees any overread; what the
 * dump parser reports must be a listener of an IP family.
 * tcp_diag.c is compiled in here: it is not one of the Makefile's
 * FUZZ_UNITS, and it needs nothing but libc.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

#include "tcp/tcp.h"

static void on_listener(void *arg, const struct tcp_listener *l)
{
	unsigned int *n = arg;

	if (l->family != AF_INET && l->family != AF_INET6)
		abort();
	(*n)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *copy = malloc(size ? size : 1);
	unsigned int n = 0;
	uint32_t inode;
	int rc;

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	rc = tcp_diag_parse(copy, size, on_listener, &n);
	if (rc > 1 || (rc < 0 && rc < -4095))
		abort();
	/* A listener is at least a header and an inet_diag_msg. */
	if (n > size / (NLMSG_HDRLEN + sizeof(struct inet_diag_msg)))
		abort();
	if (tcp_socket_link_inode((const char *)copy, size, &inode)) {
		char again[32];

		snprintf(again, sizeof(again), "socket:[%u]", inode);
		if (strlen(again) != size || memcmp(again, copy, size))
			abort();
	}
	free(copy);
	return 0;
}
