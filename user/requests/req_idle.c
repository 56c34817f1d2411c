// SPDX-License-Identifier: GPL-2.0
/*
 * Whether a worker's thread waits for its connection to be readable, and
 * not writable: the syscall it is blocked in, from
 * /proc/<pid>/task/<tid>/syscall ("nr arg0 ... arg5 sp pc", or "running").
 * A thread that answered a request and now waits to read that connection
 * waits for the client's next request: its answer is out. The kernel side
 * sees the read only when it returns.
 *
 * Waits that say so:
 *   - a read of the descriptor (read, recvfrom, recvmsg, readv): a blocking
 *     socket;
 *   - poll or ppoll with it for POLLIN: a socket with a timeout (CPython
 *     polls before it reads), or a server's own loop;
 *   - select or pselect6 with it in the read set, not in the write set;
 *   - epoll_wait, epoll_pwait or epoll_pwait2 on a set that watches it for
 *     EPOLLIN and not EPOLLOUT (the set's /proc fdinfo).
 * The arrays and sets are read from the process's memory while it waits in
 * the call: the kernel copied them in at its entry and writes back at its
 * return, so they still hold what the thread asked for.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>

#include "core/procmem.h"
#include "core/readfile.h"
#include "requests/requests.h"

/* pollfd entries looked at: a worker polls one or a few */
#define POLL_MAX 256

static bool polls(__u32 pid, uint64_t fds, uint64_t nfds, __s32 fd)
{
	struct pollfd p[POLL_MAX];
	size_t n = nfds < POLL_MAX ? (size_t)nfds : POLL_MAX;

	if (!fds || !n || proc_mem_read((pid_t)pid, fds, p, n * sizeof(p[0])))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (p[i].fd == fd && (p[i].events & POLLIN) && !(p[i].events & POLLOUT))
			return true;
	}
	return false;
}

/* fd's bit in the fd_set at set (a word of unsigned long per 64). */
static int fdset_has(__u32 pid, uint64_t set, __s32 fd)
{
	unsigned long word;
	unsigned int bits = 8 * sizeof(word);

	if (!set)
		return 0;
	if (proc_mem_read((pid_t)pid, set + (uint64_t)(fd / bits) * sizeof(word), &word,
			  sizeof(word)))
		return -EFAULT;
	return !!(word & (1UL << (fd % bits)));
}

static bool selects(__u32 pid, uint64_t nfds, uint64_t rset, uint64_t wset, __s32 fd)
{
	if ((uint64_t)fd >= nfds)
		return false;
	return fdset_has(pid, rset, fd) == 1 && fdset_has(pid, wset, fd) == 0;
}

/* fs/eventpoll.c ep_show_fdinfo(): "tfd: %8d events: %8x data: ..." per watch. */
static bool epoll_watches(__u32 pid, __u32 tid, uint64_t epfd, __s32 fd)
{
	char path[96], line[256];
	bool found = false;
	unsigned int ev;
	FILE *f;
	int tfd;

	if (epfd > INT32_MAX)
		return false;
	snprintf(path, sizeof(path), "/proc/%u/task/%u/fdinfo/%d", pid, tid, (int)epfd);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "tfd: %d events: %x", &tfd, &ev) == 2 && tfd == fd)
			found = (ev & EPOLLIN) && !(ev & EPOLLOUT);
	}
	fclose(f);
	return found;
}

bool req_thread_reads(__u32 tgid, __u32 tid, __s32 fd)
{
	char path[64], buf[256], *p, *end;
	unsigned long long a[6];
	long nr;

	snprintf(path, sizeof(path), "/proc/%u/task/%u/syscall", tgid, tid);
	if (read_small_file(path, buf, sizeof(buf)) <= 0)
		return false;
	nr = strtol(buf, &end, 10);
	if (end == buf || *end != ' ')
		return false; /* "running", or no syscall */
	for (int i = 0; i < 6; i++) {
		p = end;
		a[i] = strtoull(p, &end, 16);
		if (end == p || (*end != ' ' && *end != '\n' && *end))
			return false;
	}
	switch (nr) {
	case SYS_read:
	case SYS_recvfrom:
	case SYS_recvmsg:
	case SYS_readv:
		return (long long)a[0] == fd;
#ifdef SYS_poll
	case SYS_poll:
#endif
	case SYS_ppoll:
		return polls(tgid, a[0], a[1], fd);
#ifdef SYS_select
	case SYS_select:
#endif
	case SYS_pselect6:
		return selects(tgid, a[0], a[1], a[2], fd);
#ifdef SYS_epoll_wait
	case SYS_epoll_wait:
#endif
	case SYS_epoll_pwait:
#ifdef SYS_epoll_pwait2
	case SYS_epoll_pwait2:
#endif
		return epoll_watches(tgid, tid, a[0], fd);
	}
	return false;
}
