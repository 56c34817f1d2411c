// SPDX-License-Identifier: GPL-2.0
/*
 * Whether a worker's thread is waiting in a read of a given descriptor: the
 * syscall it is blocked in, from /proc/<pid>/task/<tid>/syscall ("nr arg0
 * ... sp pc", or "running"). A thread that answered a request and now
 * blocks reading the same connection waits for the client's next request:
 * its answer is out. The kernel side sees that read only when it returns.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>

#include "core/readfile.h"
#include "requests/requests.h"

bool req_thread_reads(__u32 tgid, __u32 tid, __s32 fd)
{
	char path[64], buf[256], *end;
	unsigned long long arg0;
	long nr;

	snprintf(path, sizeof(path), "/proc/%u/task/%u/syscall", tgid, tid);
	if (read_small_file(path, buf, sizeof(buf)) <= 0)
		return false;
	nr = strtol(buf, &end, 10);
	if (end == buf || *end != ' ')
		return false; /* "running", or no syscall */
	arg0 = strtoull(end + 1, &end, 16);
	if (*end != ' ')
		return false;
	if (nr != SYS_read && nr != SYS_recvfrom && nr != SYS_recvmsg && nr != SYS_readv)
		return false;
	return (long long)arg0 == fd;
}
