// SPDX-License-Identifier: GPL-2.0
/*
 * Whether a worker's descriptor still names the socket a request came on:
 * /proc/<pid>/fd/<fd> reads "socket:[ino]" for it. The kernel side sees a
 * close through the TCP state change it makes; a UNIX socket's close, or a
 * TCP one's that the client had reset, changes no state, and the kernel
 * side finds it only at the descriptor's next read. The sweep asks here
 * for a request left open that long.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "requests/requests.h"

int req_fd_holds(__u32 tgid, __s32 fd, __u64 ino)
{
	char path[64], link[64], want[40];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%u/fd/%d", tgid, fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return errno == ENOENT ? 0 : -errno;
	link[n] = 0;
	snprintf(want, sizeof(want), "socket:[%" PRIu64 "]", (uint64_t)ino);
	return !strcmp(link, want);
}
