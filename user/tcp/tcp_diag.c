// SPDX-License-Identifier: GPL-2.0
/*
 * Pure helpers of the tcp probe: the SOCK_DIAG request for listening TCP
 * sockets and the parser of its answer, /proc link and stat parsing, the
 * PostgreSQL busy rule and remote label formatting. Text and buffers in,
 * values out: no I/O, no allocation. Every length is checked against what
 * was received (the parser is fuzzed, tests/fuzz/fuzz_tcp_diag.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>

#include "tcp/tcp.h"

#define TCP_LISTEN_STATE 10 /* include/net/tcp_states.h */

struct diag_request {
	struct nlmsghdr nlh;
	struct inet_diag_req_v2 req;
};

int tcp_diag_request(void *buf, size_t size, int family, uint32_t seq)
{
	struct diag_request r;

	if (size < sizeof(r))
		return -ENOSPC;
	memset(&r, 0, sizeof(r));
	r.nlh.nlmsg_len = sizeof(r);
	r.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	r.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	r.nlh.nlmsg_seq = seq;
	r.req.sdiag_family = (__u8)family;
	r.req.sdiag_protocol = IPPROTO_TCP;
	r.req.idiag_states = 1u << TCP_LISTEN_STATE;
	r.req.idiag_ext = 1u << (INET_DIAG_SKMEMINFO - 1);
	memcpy(buf, &r, sizeof(r));
	return (int)sizeof(r);
}

/* The attributes after an inet_diag_msg: the listener's drop count. */
static void parse_attrs(const unsigned char *p, size_t len, struct tcp_listener *l)
{
	while (len >= sizeof(struct rtattr)) {
		struct rtattr rta;
		size_t alen, step;

		memcpy(&rta, p, sizeof(rta));
		alen = rta.rta_len;
		if (alen < sizeof(rta) || alen > len)
			return;
		if (rta.rta_type == INET_DIAG_SKMEMINFO &&
		    alen - RTA_LENGTH(0) >= (SK_MEMINFO_DROPS + 1) * sizeof(__u32)) {
			__u32 drops;

			memcpy(&drops, p + RTA_LENGTH(0) + SK_MEMINFO_DROPS * sizeof(__u32),
			       sizeof(drops));
			l->drops = drops;
			l->has_drops = true;
		}
		step = RTA_ALIGN(alen);
		if (step >= len)
			return;
		p += step;
		len -= step;
	}
}

static void parse_msg(const unsigned char *p, size_t len, tcp_listener_fn fn, void *arg)
{
	struct inet_diag_msg m;
	struct tcp_listener l;
	size_t off = NLMSG_ALIGN(sizeof(m));

	if (len < sizeof(m))
		return;
	memcpy(&m, p, sizeof(m));
	if (m.idiag_state != TCP_LISTEN_STATE ||
	    (m.idiag_family != AF_INET && m.idiag_family != AF_INET6))
		return;
	memset(&l, 0, sizeof(l));
	l.inode = m.idiag_inode;
	l.family = m.idiag_family;
	l.port = ntohs(m.id.idiag_sport);
	l.backlog = m.idiag_rqueue;
	l.max = m.idiag_wqueue;
	if (len > off)
		parse_attrs(p + off, len - off, &l);
	fn(arg, &l);
}

int tcp_diag_parse(const void *buf, size_t len, tcp_listener_fn fn, void *arg)
{
	const unsigned char *p = buf;

	while (len >= sizeof(struct nlmsghdr)) {
		struct nlmsghdr h;
		size_t mlen, step;

		memcpy(&h, p, sizeof(h));
		mlen = h.nlmsg_len;
		if (mlen < sizeof(h) || mlen > len)
			return -EBADMSG;
		if (h.nlmsg_type == NLMSG_DONE)
			return 1;
		if (h.nlmsg_type == NLMSG_ERROR) {
			struct nlmsgerr e;

			if (mlen < NLMSG_LENGTH(sizeof(e)))
				return -EBADMSG;
			memcpy(&e, p + NLMSG_HDRLEN, sizeof(e));
			if (e.error)
				return e.error < 0 && e.error > -4096 ? e.error : -EPROTO;
		} else if (h.nlmsg_type == SOCK_DIAG_BY_FAMILY) {
			parse_msg(p + NLMSG_HDRLEN, mlen - NLMSG_HDRLEN, fn, arg);
		}
		step = NLMSG_ALIGN(mlen);
		if (step >= len)
			return 0;
		p += step;
		len -= step;
	}
	return len ? -EBADMSG : 0;
}

bool tcp_socket_link_inode(const char *s, size_t n, uint32_t *inode)
{
	static const char pre[] = "socket:[";
	uint64_t v = 0;
	size_t i = sizeof(pre) - 1;

	if (n < sizeof(pre) + 1 || memcmp(s, pre, sizeof(pre) - 1))
		return false;
	/* The kernel writes no leading zeros: "socket:[0]" alone has one. */
	if (s[i] == '0' && i + 1 < n && s[i + 1] != ']')
		return false;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > UINT32_MAX)
			return false;
	}
	if (i == sizeof(pre) - 1 || i + 1 != n || s[i] != ']')
		return false;
	*inode = (uint32_t)v;
	return true;
}

void tcp_format_remote(const struct es_tcp_remote_key *k, char *buf, size_t size)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	char host[INET6_ADDRSTRLEN] = "?";

	if (k->family == AF_INET ||
	    (k->family == AF_INET6 && !memcmp(k->addr, mapped, sizeof(mapped)))) {
		inet_ntop(AF_INET, k->family == AF_INET ? k->addr : k->addr + 12, host,
			  sizeof(host));
		snprintf(buf, size, "%s:%u", host, k->port);
	} else if (k->family == AF_INET6) {
		inet_ntop(AF_INET6, k->addr, host, sizeof(host));
		snprintf(buf, size, "[%s]:%u", host, k->port);
	} else {
		snprintf(buf, size, "other");
	}
}
