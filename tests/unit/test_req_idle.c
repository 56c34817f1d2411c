// SPDX-License-Identifier: GPL-2.0
/*
 * req_thread_reads() against real waits: a thread of this process blocks in
 * each kind of call on one end of a socketpair (at a descriptor above 64, so
 * a select set's second word), and the check must say whether that wait is
 * one to read the descriptor, and not another's.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "requests/requests.h"

#define FD 100    /* the connection */
#define OTHER 101 /* another socket */
#define FULL 102  /* a connection whose send buffer is full */

enum wait_kind { W_READ, W_POLL, W_POLL_OTHER, W_POLL_OUT, W_SELECT, W_SELECT_OTHER,
		 W_EPOLL, W_EPOLL_OTHER, W_SLEEP };

struct waiter {
	enum wait_kind kind;
	int ep; /* W_EPOLL*: the set */
	volatile pid_t tid;
};

static void *wait_in(void *arg)
{
	struct waiter *w = arg;
	struct pollfd p[2] = { { .fd = OTHER, .events = POLLIN }, { .fd = FD, .events = POLLIN } };
	struct epoll_event ev;
	struct timespec ts = { 1, 0 };
	fd_set r;
	char c;

	w->tid = (pid_t)syscall(SYS_gettid);
	FD_ZERO(&r);
	switch (w->kind) {
	case W_READ:
		(void)!read(FD, &c, 1);
		break;
	case W_POLL:
		poll(p, 2, -1);
		break;
	case W_POLL_OTHER:
		poll(p, 1, -1);
		break;
	case W_POLL_OUT:
		/* readable or writable: an answer still going out (its send buffer is full) */
		p[0].fd = FULL;
		p[0].events = POLLIN | POLLOUT;
		poll(p, 1, -1);
		break;
	case W_SELECT:
		FD_SET(FD, &r);
		select(FD + 1, &r, NULL, NULL, NULL);
		break;
	case W_SELECT_OTHER:
		FD_SET(OTHER, &r);
		select(OTHER + 1, &r, NULL, NULL, NULL);
		break;
	case W_EPOLL:
	case W_EPOLL_OTHER:
		epoll_wait(w->ep, &ev, 1, -1);
		break;
	case W_SLEEP:
		nanosleep(&ts, NULL);
		break;
	}
	return NULL;
}

/* Whether thread tid is in a syscall other than the one it made first (gettid). */
static bool blocked(pid_t tid)
{
	char path[64], buf[64];
	FILE *f;
	bool in = false;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (fgets(buf, sizeof(buf), f))
		in = strncmp(buf, "running", 7) && atoi(buf) != SYS_gettid;
	fclose(f);
	return in;
}

/*
 * Runs one wait; returns what req_thread_reads() said of descriptor ask
 * while it lasted. A byte to peer ends it.
 */
static int one(enum wait_kind kind, int ep, int ask, int peer)
{
	struct waiter w = { .kind = kind, .ep = ep };
	struct timespec tick = { 0, 2000000 };
	pthread_t th;
	int said = -1;

	if (pthread_create(&th, NULL, wait_in, &w))
		return -1;
	for (int i = 0; i < 1000 && !(w.tid && blocked(w.tid)); i++)
		nanosleep(&tick, NULL);
	nanosleep(&tick, NULL);
	if (w.tid && blocked(w.tid))
		said = req_thread_reads((__u32)getpid(), (__u32)w.tid, ask);
	/* let it go: a byte for the readers, and the sleeper wakes by itself */
	(void)!write(peer, "x", 1);
	pthread_join(th, NULL);
	{
		char drain[8];

		while (recv(FD, drain, sizeof(drain), MSG_DONTWAIT) > 0 ||
		       recv(OTHER, drain, sizeof(drain), MSG_DONTWAIT) > 0 ||
		       recv(FULL, drain, sizeof(drain), MSG_DONTWAIT) > 0)
			;
	}
	return said;
}

int main(void)
{
	int sv[2], ov[2], full[2], ep, ep_other;
	struct epoll_event ev = { .events = EPOLLIN };

	CHECK(!socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	CHECK(!socketpair(AF_UNIX, SOCK_STREAM, 0, ov));
	CHECK(dup2(sv[0], FD) == FD && dup2(ov[0], OTHER) == OTHER);
	CHECK(!socketpair(AF_UNIX, SOCK_STREAM, 0, full) && dup2(full[0], FULL) == FULL);
	{
		char junk[4096] = { 0 };

		while (send(FULL, junk, sizeof(junk), MSG_DONTWAIT) > 0)
			;
	}
	ep = epoll_create1(0);
	ep_other = epoll_create1(0);
	CHECK(ep >= 0 && ep_other >= 0);
	CHECK(!epoll_ctl(ep, EPOLL_CTL_ADD, FD, &ev));
	CHECK(!epoll_ctl(ep_other, EPOLL_CTL_ADD, OTHER, &ev));

	CHECK_INT(one(W_READ, -1, FD, sv[1]), 1);
	CHECK_INT(one(W_POLL, -1, FD, sv[1]), 1);
	CHECK_INT(one(W_POLL_OTHER, -1, FD, ov[1]), 0);
	CHECK_INT(one(W_SELECT, -1, FD, sv[1]), 1);
	CHECK_INT(one(W_SELECT_OTHER, -1, FD, ov[1]), 0);
	CHECK_INT(one(W_EPOLL, ep, FD, sv[1]), 1);
	CHECK_INT(one(W_EPOLL_OTHER, ep_other, FD, ov[1]), 0);
	CHECK_INT(one(W_SLEEP, -1, FD, sv[1]), 0);
	/* waiting to write as well as to read: an answer still going out */
	CHECK_INT(one(W_POLL_OUT, -1, FULL, full[1]), 0);
	/* a thread that does not exist, a descriptor out of range */
	CHECK(!req_thread_reads((__u32)getpid(), 0x7ffffff0u, FD));
	return check_summary("test_req_idle");
}
