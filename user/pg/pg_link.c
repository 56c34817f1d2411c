// SPDX-License-Identifier: GPL-2.0
/*
 * Which process on this host is at the other end of a backend's
 * connection. The backend's socket inodes come from /proc/<pid>/fd; a Unix
 * socket's peer inode from sock_diag (the kernel's answer for exactly that
 * inode, UDIAG_SHOW_PEER); a TCP socket's 4-tuple from /proc/net/tcp{,6},
 * whose mirror image, when this host has it, is the client's socket. The
 * client is the candidate process holding that inode. That walk is the
 * fallback: the kernel names the client at a backend's first statement
 * (ES_PG_EV_LINK), so it runs only for backends that stay idle.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>

#include "core/grow.h"
#include "pg/pg.h"
#include "pg/pg_link.h"
#include "procs/proctable.h"

struct tcp_ent {
	unsigned char laddr[16], raddr[16];
	unsigned int lport, rport;
	bool v6;
	unsigned long ino;
};

struct holder {
	unsigned long ino;
	size_t cand; /* index into cands */
};

static int diag_socket(void)
{
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);

	return fd < 0 ? -errno : fd;
}

int pg_link_available(void)
{
	int fd = diag_socket();

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

struct pg_link_ctx {
	const struct pg_cand *cands;
	size_t ncands;
	struct holder *h; /* socket inode -> candidate, built on first need */
	size_t nh, caph;
	bool have_holders;
	struct tcp_ent *tcp;
	size_t ntcp, captcp;
	bool have_tcp;
};

struct pg_link_ctx *pg_link_begin(const struct pg_cand *cands, size_t n)
{
	struct pg_link_ctx *x = calloc(1, sizeof(*x));

	if (x) {
		x->cands = cands;
		x->ncands = n;
	}
	return x;
}

void pg_link_end(struct pg_link_ctx *x)
{
	if (!x)
		return;
	free(x->h);
	free(x->tcp);
	free(x);
}

/* Calls fn for each socket inode pid holds. */
static int for_each_socket(__u32 pid, void (*fn)(void *arg, unsigned long ino), void *arg)
{
	char dir[32], path[320], target[64];
	struct dirent *d;
	DIR *dp;

	snprintf(dir, sizeof(dir), "/proc/%u/fd", pid);
	dp = opendir(dir);
	if (!dp)
		return -errno;
	while ((d = readdir(dp))) {
		unsigned long ino;
		ssize_t n;

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		if (sscanf(target, "socket:[%lu]", &ino) == 1)
			fn(arg, ino);
	}
	closedir(dp);
	return 0;
}

struct holder_add {
	struct pg_link_ctx *x;
	size_t cand;
};

static void add_holder(void *arg, unsigned long ino)
{
	struct holder_add *a = arg;
	struct pg_link_ctx *x = a->x;

	if (grow_array(&x->h, &x->caph, x->nh + 1, sizeof(*x->h), 256))
		return;
	x->h[x->nh++] = (struct holder){ ino, a->cand };
}

static const struct pg_cand *holder_of(struct pg_link_ctx *x, unsigned long ino)
{
	if (!x->have_holders) {
		x->have_holders = true;
		for (size_t i = 0; i < x->ncands; i++) {
			struct holder_add a = { x, i };

			for_each_socket(x->cands[i].pid, add_holder, &a);
		}
	}
	for (size_t i = 0; i < x->nh; i++) {
		if (x->h[i].ino == ino)
			return &x->cands[x->h[i].cand];
	}
	return NULL;
}

/* The peer inode of Unix socket ino: >0, 0 when it has none, or -errno. */
static long unix_peer(unsigned long ino)
{
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req r;
	} req = {
		.nlh = { .nlmsg_len = sizeof(req),
			 .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST,
			 .nlmsg_seq = 1 },
		.r = { .sdiag_family = AF_UNIX,
		       .udiag_ino = (__u32)ino,
		       .udiag_show = UDIAG_SHOW_PEER,
		       .udiag_cookie = { INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE } },
	};
	long buf[1024];
	struct nlmsghdr *h = (void *)buf;
	long peer = 0;
	ssize_t n;
	int fd;

	fd = diag_socket();
	if (fd < 0)
		return fd;
	if (send(fd, &req, sizeof(req), 0) < 0 || (n = recv(fd, buf, sizeof(buf), 0)) < 0) {
		peer = -errno;
		goto out;
	}
	for (; NLMSG_OK(h, (unsigned int)n); h = NLMSG_NEXT(h, n)) {
		struct unix_diag_msg *m = NLMSG_DATA(h);
		struct rtattr *a;
		int len;

		if (h->nlmsg_type == NLMSG_ERROR) {
			struct nlmsgerr *e = NLMSG_DATA(h);

			peer = e->error ? e->error : -ENOENT;
			break;
		}
		if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || m->udiag_ino != ino)
			continue;
		len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
		for (a = (struct rtattr *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
			if (a->rta_type == UNIX_DIAG_PEER && RTA_PAYLOAD(a) >= (int)sizeof(__u32))
				peer = *(__u32 *)RTA_DATA(a);
		}
		break;
	}
out:
	close(fd);
	return peer;
}

/* Parses one /proc/net/tcp{,6} address "HEX:PORT". */
static bool parse_addr(const char *s, bool v6, unsigned char *addr, unsigned int *port)
{
	unsigned int words = v6 ? 4 : 1;

	for (unsigned int w = 0; w < words; w++) {
		unsigned int v;

		if (sscanf(s + w * 8, "%8x", &v) != 1)
			return false;
		/* Each 32-bit word is printed in host order. */
		memcpy(addr + w * 4, &v, 4);
	}
	s += words * 8;
	return *s == ':' && sscanf(s + 1, "%x", port) == 1;
}

static void read_tcp(struct pg_link_ctx *x, const char *path, bool v6)
{
	char line[512], la[64], ra[64];
	FILE *f = fopen(path, "re");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		struct tcp_ent t = { .v6 = v6 };

		if (sscanf(line, " %*u: %63s %63s %*x %*s %*s %*s %*u %*u %lu", la, ra, &t.ino) !=
			    3 ||
		    !parse_addr(la, v6, t.laddr, &t.lport) ||
		    !parse_addr(ra, v6, t.raddr, &t.rport))
			continue;
		if (grow_array(&x->tcp, &x->captcp, x->ntcp + 1, sizeof(*x->tcp), 256))
			break;
		x->tcp[x->ntcp++] = t;
	}
	fclose(f);
}

static const struct tcp_ent *tcp_by_ino(struct pg_link_ctx *x, unsigned long ino)
{
	if (!x->have_tcp) {
		x->have_tcp = true;
		read_tcp(x, "/proc/net/tcp", false);
		read_tcp(x, "/proc/net/tcp6", true);
	}
	for (size_t i = 0; i < x->ntcp; i++) {
		if (x->tcp[i].ino == ino)
			return &x->tcp[i];
	}
	return NULL;
}

/* The other end of t when it is on this host (its mirror image). */
static const struct tcp_ent *tcp_mirror(struct pg_link_ctx *x, const struct tcp_ent *t)
{
	size_t alen = t->v6 ? 16 : 4;

	for (size_t i = 0; i < x->ntcp; i++) {
		const struct tcp_ent *m = &x->tcp[i];

		if (m->v6 == t->v6 && m->lport == t->rport && m->rport == t->lport && m->ino &&
		    !memcmp(m->laddr, t->raddr, alen) && !memcmp(m->raddr, t->laddr, alen))
			return m;
	}
	return NULL;
}

static void fill_local(struct pg_client *c, const struct pg_cand *h)
{
	if (h) {
		c->kind = PG_LINK_WORKER;
		c->role = h->role;
		c->pid = h->pid;
		snprintf(c->worker, sizeof(c->worker), "%s", h->worker);
	} else {
		c->kind = PG_LINK_LOCAL;
		c->pid = 0;
	}
}

struct sockets {
	unsigned long ino[16];
	unsigned int n;
};

static void add_socket(void *arg, unsigned long ino)
{
	struct sockets *s = arg;

	if (s->n < sizeof(s->ino) / sizeof(s->ino[0]))
		s->ino[s->n++] = ino;
}

int pg_link_client(struct pg_link_ctx *x, __u32 pid, struct pg_client *c)
{
	struct sockets s = { .n = 0 };
	int err = for_each_socket(pid, add_socket, &s);

	if (err)
		return err;
	for (unsigned int i = 0; i < s.n; i++) {
		const struct tcp_ent *t;
		long peer = unix_peer(s.ino[i]);

		if (peer > 0) {
			fill_local(c, holder_of(x, (unsigned long)peer));
			return 0;
		}
		t = tcp_by_ino(x, s.ino[i]);
		if (!t || (!t->rport && !t->lport))
			continue;
		if (!t->rport)
			continue; /* a listening socket */
		{
			const struct tcp_ent *m = tcp_mirror(x, t);

			if (m) {
				fill_local(c, holder_of(x, m->ino));
				return 0;
			}
		}
		c->kind = PG_LINK_REMOTE;
		c->pid = 0;
		if (t->v6) {
			static const unsigned char mapped[12] = { 0, 0, 0, 0, 0,    0,
								  0, 0, 0, 0, 0xff, 0xff };

			if (!memcmp(t->raddr, mapped, 12))
				inet_ntop(AF_INET, t->raddr + 12, c->addr, sizeof(c->addr));
			else
				inet_ntop(AF_INET6, t->raddr, c->addr, sizeof(c->addr));
		} else {
			inet_ntop(AF_INET, t->raddr, c->addr, sizeof(c->addr));
		}
		return 0;
	}
	return -ENOENT;
}

/* ---------------------------------------------------------------- from the kernel */

static void client_of_pid(const struct procs *procs, __u32 pid, struct pg_client *c)
{
	const struct worker *w = procs ? procs_lookup(procs, pid) : NULL;

	if (w && !w->exited) {
		c->kind = PG_LINK_WORKER;
		c->role = w->role;
		snprintf(c->worker, sizeof(c->worker), "%s", w->label);
	} else {
		c->kind = PG_LINK_LOCAL;
	}
	c->pid = pid;
}

void pg_link_refresh(const struct procs *procs, struct pg_client *c)
{
	if (c->kind == PG_LINK_LOCAL && c->pid)
		client_of_pid(procs, c->pid, c);
}

/* Whether addr (IPv4 mapped) is loopback or one of this host's interfaces. */
static bool addr_is_local(const __u8 addr[16])
{
	static const __u8 mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	bool v4 = !memcmp(addr, mapped, 12), local = false;
	struct ifaddrs *ifs, *i;

	if ((v4 && addr[12] == 127) || !memcmp(addr, &in6addr_loopback, 16))
		return true;
	if (getifaddrs(&ifs))
		return true; /* cannot tell: let the socket walk decide */
	for (i = ifs; i && !local; i = i->ifa_next) {
		const struct sockaddr *sa = i->ifa_addr;

		if (!sa)
			continue;
		if (v4 && sa->sa_family == AF_INET)
			local = !memcmp(&((const struct sockaddr_in *)sa)->sin_addr, addr + 12, 4);
		else if (!v4 && sa->sa_family == AF_INET6)
			local = !memcmp(&((const struct sockaddr_in6 *)sa)->sin6_addr, addr, 16);
	}
	freeifaddrs(ifs);
	return local;
}

int pg_link_from_kernel(const struct procs *procs, const struct es_pg_ev_link *ev,
			struct pg_client *c)
{
	static const __u8 mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(c, 0, sizeof(*c));
	if (ev->client_tgid) {
		client_of_pid(procs, ev->client_tgid, c);
		return 0;
	}
	if ((ev->family != AF_INET && ev->family != AF_INET6) || addr_is_local(ev->addr))
		return -ENOENT;
	c->kind = PG_LINK_REMOTE;
	if (!memcmp(ev->addr, mapped, 12))
		inet_ntop(AF_INET, ev->addr + 12, c->addr, sizeof(c->addr));
	else
		inet_ntop(AF_INET6, ev->addr, c->addr, sizeof(c->addr));
	return 0;
}
