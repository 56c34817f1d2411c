// SPDX-License-Identifier: GPL-2.0
/*
 * req_fd_holds() against real descriptors: a socket this process holds, the
 * same number once closed or holding another socket, and a process that
 * exited (a zombie holds no descriptor: its requests are not closes).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "requests/requests.h"

static __u64 ino_of(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? 0 : (__u64)st.st_ino;
}

int main(void)
{
	__u32 me = (__u32)getpid();
	int sv[2], other[2], fd;
	__u64 ino, ino2;
	pid_t kid;

	/* a socketpair */
	CHECK(!socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	fd = sv[0];
	ino = ino_of(fd);
	/* its inode */
	CHECK(ino != 0);
	/* the descriptor names its socket */
	CHECK(req_fd_holds(me, fd, ino) == 1);
	/* not another inode */
	CHECK(req_fd_holds(me, fd, ino + 1) == 0);
	close(sv[0]);
	/* closed: it names nothing */
	CHECK(req_fd_holds(me, fd, ino) == 0);
	/* another socketpair */
	CHECK(!socketpair(AF_UNIX, SOCK_STREAM, 0, other));
	/* which takes the number again */
	CHECK(other[0] == fd);
	ino2 = ino_of(other[0]);
	/* the number now names the new socket, not the old */
	CHECK(req_fd_holds(me, fd, ino) == 0 && req_fd_holds(me, fd, ino2) == 1);

	kid = fork();
	if (kid == 0)
		_exit(0);
	/* a child */
	CHECK(kid > 0);
	/* Not reaped: a zombie, which holds no descriptor. */
	for (int i = 0; i < 200 && req_fd_holds((__u32)kid, 1, 1) != -ESRCH; i++)
		usleep(10000);
	/* an exited process's descriptors are not closes (-ESRCH) */
	CHECK(req_fd_holds((__u32)kid, 1, 1) == -ESRCH);
	waitpid(kid, NULL, 0);
	/* nor a reaped one's */
	CHECK(req_fd_holds((__u32)kid, 1, 1) < 0);
	close(sv[1]);
	close(other[0]);
	close(other[1]);
	return check_summary("test_req_fd");
}
