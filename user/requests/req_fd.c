// SPDX-License-Identifier: GPL-2.0
/*
 * Whether a worker's descriptor still names the socket a request came on:
 * /proc/<pid>/fd/<fd> reads "socket:[ino]" for it. The kernel side hooks
 * no close (bpf/requests.bpf.c): it finds one at the descriptor's next
 * read, which sees another socket there. A worker's last request before it
 * goes idle has no such read; the sweep asks here for a request left open
 * that long.
 *
 * A process that exits closes all its descriptors before the daemon hears
 * of its exit: a descriptor gone from a process that holds none is not a
 * close but an exit (a killed worker's request is "killed", not a reset).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "requests/requests.h"
#include "tcp/tcp.h"

/* Whether /proc/<pid>/fd lists any descriptor: an exiting or dead process's lists none. */
static bool holds_any(__u32 tgid)
{
	char path[48];
	struct dirent *e;
	bool any = false;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%u/fd", tgid);
	d = opendir(path);
	if (!d)
		return false;
	while (!any && (e = readdir(d)))
		any = e->d_name[0] != '.';
	closedir(d);
	return any;
}

int req_fd_holds(__u32 tgid, __s32 fd, __u64 ino)
{
	char path[64], link[64];
	uint32_t got;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%u/fd/%d", tgid, fd);
	n = readlink(path, link, sizeof(link));
	if (n < 0) {
		if (errno != ENOENT)
			return -errno;
		return holds_any(tgid) ? 0 : -ESRCH;
	}
	/* Socket inode numbers are 32-bit (get_next_ino()). */
	return tcp_socket_link_inode(link, (size_t)n, &got) && got == ino;
}
