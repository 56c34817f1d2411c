// SPDX-License-Identifier: GPL-2.0
/*
 * The tcp probe's pure parts: the SOCK_DIAG request and answer parser, the
 * /proc link and stat parsers, the PostgreSQL busy rule, remote formatting,
 * and the bounded remote labels (monotonic series through label hand-overs
 * and evictions).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>

#include "check.h"
#include "tcp/tcp.h"

/* ---------------------------------------------------------------- formatting */

static struct es_tcp_remote_key key4(uint32_t role, const char *ip, uint16_t port)
{
	struct es_tcp_remote_key k;

	memset(&k, 0, sizeof(k));
	k.role = role;
	k.family = AF_INET;
	k.port = port;
	inet_pton(AF_INET, ip, k.addr);
	return k;
}

static void test_format(void)
{
	struct es_tcp_remote_key k = key4(ES_ROLE_ODOO_HTTP, "127.0.0.1", 5432);
	char buf[64];

	tcp_format_remote(&k, buf, sizeof(buf));
	CHECK_STR(buf, "127.0.0.1:5432");
	k.family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::1", k.addr);
	k.port = 443;
	tcp_format_remote(&k, buf, sizeof(buf));
	CHECK_STR(buf, "[2001:db8::1]:443");
	inet_pton(AF_INET6, "::ffff:10.1.2.3", k.addr);
	k.port = 587;
	tcp_format_remote(&k, buf, sizeof(buf));
	CHECK_STR(buf, "10.1.2.3:587");
	memset(&k, 0, sizeof(k));
	tcp_format_remote(&k, buf, sizeof(buf));
	CHECK_STR(buf, "other");
	/* Never overruns a short buffer. */
	k = key4(0, "255.255.255.255", 65535);
	tcp_format_remote(&k, buf, 8);
	CHECK_INT(strlen(buf), 7);
}

/* ---------------------------------------------------------------- /proc parsers, busy rule */

static void test_link(void)
{
	uint32_t ino = 0;

	CHECK(tcp_socket_link_inode("socket:[12345]", 14, &ino) && ino == 12345);
	CHECK(tcp_socket_link_inode("socket:[0]", 10, &ino) && ino == 0);
	CHECK(tcp_socket_link_inode("socket:[4294967295]", 19, &ino) && ino == 4294967295u);
	CHECK(!tcp_socket_link_inode("socket:[4294967296]", 19, &ino));
	CHECK(!tcp_socket_link_inode("socket:[]", 9, &ino));
	CHECK(!tcp_socket_link_inode("socket:[012]", 12, &ino)); /* not how the kernel writes it */
	CHECK(!tcp_socket_link_inode("socket:[12", 10, &ino));
	CHECK(!tcp_socket_link_inode("socket:[12]x", 12, &ino));
	CHECK(!tcp_socket_link_inode("socket:[1a]", 11, &ino));
	CHECK(!tcp_socket_link_inode("pipe:[12345]", 12, &ino));
	CHECK(!tcp_socket_link_inode("/dev/null", 9, &ino));
	/* The length given is what counts, not a terminator. */
	CHECK(!tcp_socket_link_inode("socket:[12345]", 13, &ino));
}

/* ---------------------------------------------------------------- SOCK_DIAG */

struct seen {
	struct tcp_listener l[8];
	int n;
};

static void collect(void *arg, const struct tcp_listener *l)
{
	struct seen *s = arg;

	if (s->n < 8)
		s->l[s->n++] = *l;
}

/* Appends one SOCK_DIAG_BY_FAMILY message for a listener; returns the new length. */
static size_t put_listener(unsigned char *buf, size_t off, int family, uint8_t state,
			   uint16_t port, uint32_t inode, uint32_t rq, uint32_t wq, int drops)
{
	struct nlmsghdr h;
	struct inet_diag_msg m;
	struct rtattr rta;
	__u32 mem[SK_MEMINFO_VARS];
	size_t len = NLMSG_LENGTH(sizeof(m));

	if (drops >= 0)
		len = NLMSG_ALIGN(len) + RTA_LENGTH(sizeof(mem));
	memset(&h, 0, sizeof(h));
	h.nlmsg_len = (__u32)len;
	h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	memcpy(buf + off, &h, sizeof(h));
	memset(&m, 0, sizeof(m));
	m.idiag_family = (__u8)family;
	m.idiag_state = state;
	m.id.idiag_sport = htons(port);
	m.idiag_inode = inode;
	m.idiag_rqueue = rq;
	m.idiag_wqueue = wq;
	memcpy(buf + off + NLMSG_HDRLEN, &m, sizeof(m));
	if (drops >= 0) {
		size_t a = off + NLMSG_ALIGN(NLMSG_LENGTH(sizeof(m)));

		rta.rta_len = RTA_LENGTH(sizeof(mem));
		rta.rta_type = INET_DIAG_SKMEMINFO;
		memcpy(buf + a, &rta, sizeof(rta));
		memset(mem, 0, sizeof(mem));
		mem[SK_MEMINFO_DROPS] = (__u32)drops;
		memcpy(buf + a + RTA_LENGTH(0), mem, sizeof(mem));
	}
	return off + NLMSG_ALIGN(len);
}

static size_t put_done(unsigned char *buf, size_t off, int type, int error)
{
	struct nlmsghdr h;
	struct nlmsgerr e;

	memset(&h, 0, sizeof(h));
	h.nlmsg_type = (__u16)type;
	h.nlmsg_len = type == NLMSG_ERROR ? NLMSG_LENGTH(sizeof(e)) : NLMSG_LENGTH(sizeof(int));
	memcpy(buf + off, &h, sizeof(h));
	memset(&e, 0, sizeof(e));
	e.error = error;
	memcpy(buf + off + NLMSG_HDRLEN, &e, type == NLMSG_ERROR ? sizeof(e) : sizeof(int));
	return off + NLMSG_ALIGN(h.nlmsg_len);
}

static void test_diag(void)
{
	unsigned char buf[4096];
	struct nlmsghdr h;
	struct inet_diag_req_v2 req;
	struct seen s;
	size_t n;
	int len;

	len = tcp_diag_request(buf, sizeof(buf), AF_INET6, 7);
	CHECK_INT(len, NLMSG_LENGTH(sizeof(req)));
	memcpy(&h, buf, sizeof(h));
	memcpy(&req, buf + NLMSG_HDRLEN, sizeof(req));
	CHECK_INT(h.nlmsg_type, SOCK_DIAG_BY_FAMILY);
	CHECK(h.nlmsg_flags == (NLM_F_REQUEST | NLM_F_DUMP));
	CHECK_INT(h.nlmsg_seq, 7);
	CHECK_INT(req.sdiag_family, AF_INET6);
	CHECK_INT(req.sdiag_protocol, IPPROTO_TCP);
	CHECK_INT(req.idiag_states, 1 << 10);
	CHECK_INT(req.idiag_ext, 1 << (INET_DIAG_SKMEMINFO - 1));
	CHECK_INT(tcp_diag_request(buf, 8, AF_INET, 1), -ENOSPC);

	/* Two listeners, an established socket (skipped), then the end. */
	memset(buf, 0, sizeof(buf));
	n = put_listener(buf, 0, AF_INET, 10, 8069, 111, 3, 128, 5);
	n = put_listener(buf, n, AF_INET6, 10, 5432, 222, 0, 244, -1);
	n = put_listener(buf, n, AF_INET, 1, 40000, 333, 0, 0, 0);
	n = put_done(buf, n, NLMSG_DONE, 0);
	memset(&s, 0, sizeof(s));
	CHECK_INT(tcp_diag_parse(buf, n, collect, &s), 1);
	CHECK_INT(s.n, 2);
	CHECK(s.l[0].inode == 111 && s.l[0].port == 8069 && s.l[0].family == AF_INET);
	CHECK(s.l[0].backlog == 3 && s.l[0].max == 128);
	CHECK(s.l[0].has_drops && s.l[0].drops == 5);
	CHECK(s.l[1].inode == 222 && s.l[1].port == 5432 && s.l[1].family == AF_INET6);
	CHECK(!s.l[1].has_drops);

	/* A part of a multi-part dump: more to come. */
	memset(&s, 0, sizeof(s));
	n = put_listener(buf, 0, AF_INET, 10, 80, 9, 0, 10, 0);
	CHECK_INT(tcp_diag_parse(buf, n, collect, &s), 0);
	CHECK_INT(s.n, 1);

	/* Errors: from the kernel, a truncated message, a length past the buffer. */
	n = put_done(buf, 0, NLMSG_ERROR, -EPERM);
	CHECK_INT(tcp_diag_parse(buf, n, collect, &s), -EPERM);
	n = put_done(buf, 0, NLMSG_ERROR, 0); /* an ack is no error */
	n = put_done(buf, n, NLMSG_DONE, 0);
	CHECK_INT(tcp_diag_parse(buf, n, collect, &s), 1);
	n = put_listener(buf, 0, AF_INET, 10, 80, 9, 0, 10, 0);
	CHECK_INT(tcp_diag_parse(buf, n - 4, collect, &s), -EBADMSG);
	CHECK_INT(tcp_diag_parse(buf, 3, collect, &s), -EBADMSG);
	h.nlmsg_len = 2; /* shorter than its header */
	memcpy(buf, &h, sizeof(h));
	CHECK_INT(tcp_diag_parse(buf, 64, collect, &s), -EBADMSG);
	CHECK_INT(tcp_diag_parse(buf, 0, collect, &s), 0);

	/* An attribute claiming more than the message holds is ignored, not read. */
	memset(&s, 0, sizeof(s));
	n = put_listener(buf, 0, AF_INET, 10, 81, 10, 0, 10, 7);
	{
		struct rtattr rta;
		size_t a = NLMSG_ALIGN(NLMSG_LENGTH(sizeof(struct inet_diag_msg)));

		memcpy(&rta, buf + a, sizeof(rta));
		rta.rta_len = 4000;
		memcpy(buf + a, &rta, sizeof(rta));
	}
	CHECK_INT(tcp_diag_parse(buf, n, collect, &s), 0);
	CHECK(s.n == 1 && !s.l[0].has_drops);
}

/* ---------------------------------------------------------------- remote labels */

static struct es_tcp_remote val(uint64_t connects, uint64_t refused, uint64_t rexmit)
{
	struct es_tcp_remote v;

	memset(&v, 0, sizeof(v));
	v.lat[3] = connects;
	v.lat_sum_ns = connects * 1000;
	v.failures[ES_TCP_FAIL_REFUSED] = refused;
	v.retransmits = rexmit;
	return v;
}

static const struct tcp_remote_row *row_of(struct tcp_remotes *t, unsigned int n, uint32_t role,
					   const char *label)
{
	for (unsigned int i = 0; i < n; i++) {
		const struct tcp_remote_row *r = tcp_remotes_row(t, i);

		if (r->key.role == role && !strcmp(r->label, label))
			return r;
	}
	return NULL;
}

static void test_remotes(void)
{
	struct tcp_remotes *t = tcp_remotes_new(2, 4, 64, 1000);
	struct es_tcp_remote_key a = key4(ES_ROLE_ODOO_CRON, "10.0.0.1", 25);
	struct es_tcp_remote_key b = key4(ES_ROLE_ODOO_CRON, "10.0.0.2", 25);
	struct es_tcp_remote_key c = key4(ES_ROLE_ODOO_CRON, "10.0.0.3", 25);
	struct es_tcp_remote_key d = key4(ES_ROLE_ODOO_HTTP, "10.0.0.3", 25);
	struct es_tcp_remote_key ko = { .role = ES_ROLE_ODOO_CRON };
	struct es_tcp_remote va, vb, vc, vd, vo, zero;
	const struct tcp_remote_row *r;
	unsigned int n;

	CHECK(t != NULL);
	if (!t)
		return;
	memset(&zero, 0, sizeof(zero));
	/* Scrape 1: a and b get labels, c (a third of the role) goes to other. */
	va = val(5, 0, 1);
	vb = val(1, 2, 0);
	vc = val(3, 0, 0);
	vd = val(7, 0, 0);
	tcp_remotes_begin(t);
	tcp_remotes_feed(t, &ko, &zero, 0);
	tcp_remotes_feed(t, &a, &va, 0);
	tcp_remotes_feed(t, &b, &vb, 0);
	tcp_remotes_feed(t, &c, &vc, 0);
	tcp_remotes_feed(t, &d, &vd, 0);
	n = tcp_remotes_end(t, 0);
	CHECK_INT(n, 4); /* a, b, d, and cron's other */
	r = row_of(t, n, ES_ROLE_ODOO_CRON, "10.0.0.1:25");
	CHECK(r && r->v.lat[3] == 5 && r->v.retransmits == 1);
	r = row_of(t, n, ES_ROLE_ODOO_CRON, "10.0.0.2:25");
	CHECK(r && r->v.failures[ES_TCP_FAIL_REFUSED] == 2);
	CHECK(!row_of(t, n, ES_ROLE_ODOO_CRON, "10.0.0.3:25"));
	r = row_of(t, n, ES_ROLE_ODOO_CRON, "other");
	CHECK(r && r->v.lat[3] == 3);
	CHECK(row_of(t, n, ES_ROLE_ODOO_HTTP, "10.0.0.3:25") != NULL); /* roles count apart */
	CHECK(!row_of(t, n, ES_ROLE_ODOO_HTTP, "other"));              /* an all-zero other: none */

	/* Scrape 2 (500 ms later): b idle, c and the kernel's other busy; no hand-over yet. */
	vc = val(10, 0, 0);
	vo = val(4, 0, 0);
	va = val(6, 0, 1);
	tcp_remotes_begin(t);
	tcp_remotes_feed(t, &ko, &vo, 500);
	tcp_remotes_feed(t, &a, &va, 500);
	tcp_remotes_feed(t, &b, &vb, 500);
	tcp_remotes_feed(t, &c, &vc, 500);
	n = tcp_remotes_end(t, 500);
	r = row_of(t, n, ES_ROLE_ODOO_CRON, "other");
	CHECK(r && r->v.lat[3] == 14); /* c's 10 + the kernel's 4 */
	CHECK(row_of(t, n, ES_ROLE_ODOO_CRON, "10.0.0.2:25") != NULL);

	/* Scrape 3: b idle for 1 s, c still active: c takes b's label, from zero. */
	vc = val(12, 0, 0);
	va = val(7, 0, 1);
	tcp_remotes_begin(t);
	tcp_remotes_feed(t, &ko, &vo, 1200);
	tcp_remotes_feed(t, &a, &va, 1200);
	tcp_remotes_feed(t, &b, &vb, 1200);
	tcp_remotes_feed(t, &c, &vc, 1200);
	n = tcp_remotes_end(t, 1200);
	CHECK(!row_of(t, n, ES_ROLE_ODOO_CRON, "10.0.0.2:25"));
	r = row_of(t, n, ES_ROLE_ODOO_CRON, "10.0.0.3:25");
	CHECK(r && r->v.lat[3] == 0); /* its history stays in other */
	r = row_of(t, n, ES_ROLE_ODOO_CRON, "other");
	/* other never goes down: c's 12 frozen + the kernel's 4 + b's 0 since demotion */
	CHECK(r && r->v.lat[3] == 16 && r->v.failures[ES_TCP_FAIL_REFUSED] == 0);
	r = row_of(t, n, ES_ROLE_ODOO_CRON, "10.0.0.1:25");
	CHECK(r && r->v.lat[3] == 7);

	/* Scrape 4: b comes back (counted in other from its demotion), c grows on its own label. */
	vb = val(3, 2, 0);
	vc = val(15, 0, 0);
	tcp_remotes_begin(t);
	tcp_remotes_feed(t, &ko, &vo, 1300);
	tcp_remotes_feed(t, &a, &va, 1300);
	tcp_remotes_feed(t, &b, &vb, 1300);
	tcp_remotes_feed(t, &c, &vc, 1300);
	n = tcp_remotes_end(t, 1300);
	r = row_of(t, n, ES_ROLE_ODOO_CRON, "10.0.0.3:25");
	CHECK(r && r->v.lat[3] == 3);
	r = row_of(t, n, ES_ROLE_ODOO_CRON, "other");
	CHECK(r && r->v.lat[3] == 18 && r->v.failures[ES_TCP_FAIL_REFUSED] == 0);
	tcp_remotes_free(t);
}

/* One scrape's update: feeds the role's other and the destinations idx[0..n) of k/v. */
struct scrape {
	struct tcp_remotes *t;
	struct es_tcp_remote_key k[10];
	struct es_tcp_remote v[10];
	struct es_tcp_remote_key cold[64];
	unsigned int ncold;
};

static void feed_all(struct scrape *s, uint64_t now, const int *idx, int n)
{
	struct es_tcp_remote_key ko = { .role = ES_ROLE_ODOO_CRON };
	struct es_tcp_remote vo = val(100, 0, 0); /* the kernel's other: past the pool */

	tcp_remotes_begin(s->t);
	tcp_remotes_feed(s->t, &ko, &vo, now);
	for (int i = 0; i < n; i++)
		tcp_remotes_feed(s->t, &s->k[idx[i]], &s->v[idx[i]], now);
	s->ncold = tcp_remotes_cold(s->t, now, s->cold);
}

/* The keys picked are exactly those of idx[0..n), in order. */
static bool cold_are(const struct scrape *s, const int *idx, int n)
{
	if (s->ncold != (unsigned int)n)
		return false;
	for (int i = 0; i < n; i++) {
		if (memcmp(&s->cold[i], &s->k[idx[i]], sizeof(s->cold[i])))
			return false;
	}
	return true;
}

/* Connects the rows of the role show, its other included; own: on own labels only. */
static uint64_t connects(struct tcp_remotes *t, unsigned int n, const char *label)
{
	uint64_t sum = 0;

	for (unsigned int i = 0; i < n; i++) {
		const struct tcp_remote_row *r = tcp_remotes_row(t, i);

		if (r->key.role == ES_ROLE_ODOO_CRON && (!label || !strcmp(r->label, label)))
			sum += r->v.lat[3];
	}
	return sum;
}

static void check_role(struct tcp_remotes *t, unsigned int want_entries, uint64_t want_evicted)
{
	unsigned int entries;
	uint64_t evicted;
	bool seen;

	tcp_remotes_role(t, ES_ROLE_ODOO_CRON, &seen, &entries, &evicted);
	CHECK(seen);
	CHECK_INT(entries, want_entries);
	CHECK_INT(evicted, want_evicted);
	tcp_remotes_role(t, ES_ROLE_ODOO_HTTP, &seen, &entries, &evicted);
	CHECK(!seen && !entries && !evicted);
}

/*
 * Two labels, a kernel pool of 8 per role, 1 s idle: a role is evicted from
 * at 6 entries (3/4), down to 4 (half). a_i (127.0.0.<i + 2>:8000) made
 * i + 1 connects; the role's sum of connects never goes down.
 */
static void test_evict(void)
{
	static const int s1[] = { 0, 1, 2, 3 }, s2[] = { 0, 1, 2, 3, 4, 5, 6 };
	static const int c3[] = { 2, 3, 0 }, s4[] = { 1, 4, 5, 6, 0, 7, 8 }, c4[] = { 1, 4, 5 };
	static const int s5[] = { 6, 0, 7, 8 };
	struct scrape s = { .t = tcp_remotes_new(2, 8, 64, 1000) };
	struct es_tcp_remote final;
	unsigned int n;
	char ip[16];

	CHECK(s.t != NULL);
	if (!s.t)
		return;
	for (int i = 0; i < 10; i++) {
		snprintf(ip, sizeof(ip), "127.0.0.%d", i + 2);
		s.k[i] = key4(ES_ROLE_ODOO_CRON, ip, 8000);
		s.v[i] = val((uint64_t)i + 1, 0, 0);
	}

	/* 0 ms: a0, a1 get the labels. 4 entries: under 3/4 of the pool. */
	feed_all(&s, 0, s1, 4);
	CHECK_INT(s.ncold, 0);
	n = tcp_remotes_end(s.t, 0);
	CHECK_INT(connects(s.t, n, "127.0.0.2:8000"), 1);
	CHECK_INT(connects(s.t, n, "other"), 100 + 3 + 4);
	check_role(s.t, 4, 0);

	/* 500 ms: a4..a6 come, 7 entries; none idle for 1 s yet. */
	feed_all(&s, 500, s2, 7);
	CHECK_INT(s.ncold, 0);
	n = tcp_remotes_end(s.t, 500);
	CHECK_INT(connects(s.t, n, NULL), 100 + 28);
	check_role(s.t, 7, 0);

	/*
	 * 1600 ms: all idle; 3 go, the coldest (seen last at 0 ms), unlabelled
	 * first: a2, a3, then a0. a0 counted 5 more between the walk and its
	 * delete: they go to other with the rest.
	 */
	feed_all(&s, 1600, s2, 7);
	CHECK(cold_are(&s, c3, 3));
	final = val(1 + 5, 0, 0);
	tcp_remotes_evicted(s.t, &s.k[2], NULL);
	tcp_remotes_evicted(s.t, &s.k[3], NULL);
	tcp_remotes_evicted(s.t, &s.k[0], &final);
	tcp_remotes_evicted(s.t, &s.k[0], &final); /* once only */
	tcp_remotes_evicted(s.t, &s.k[9], NULL);   /* not in the table */
	n = tcp_remotes_end(s.t, 1600);
	CHECK_INT(connects(s.t, n, "127.0.0.2:8000"), 0);
	CHECK_INT(connects(s.t, n, "127.0.0.3:8000"), 2);
	CHECK_INT(connects(s.t, n, "other"), 100 + 28 + 5 - 2);
	CHECK_INT(connects(s.t, n, NULL), 100 + 28 + 5);
	check_role(s.t, 4, 3);

	/*
	 * 1700 ms: the kernel took a0 again (a fresh entry: 2 connects), a7 and
	 * a8. a0 takes the free label as it comes, from its first connect;
	 * a1 (labelled, idle since 0 ms), a4, a5 go; a8, the busiest active
	 * one, takes a1's label from zero (its 9 stay in other).
	 */
	s.v[0] = val(2, 0, 0);
	feed_all(&s, 1700, s4, 7);
	CHECK(cold_are(&s, c4, 3));
	for (int i = 0; i < 3; i++)
		tcp_remotes_evicted(s.t, &s.k[c4[i]], NULL);
	n = tcp_remotes_end(s.t, 1700);
	CHECK_INT(connects(s.t, n, "127.0.0.2:8000"), 2);
	CHECK(!row_of(s.t, n, ES_ROLE_ODOO_CRON, "127.0.0.3:8000"));
	CHECK(row_of(s.t, n, ES_ROLE_ODOO_CRON, "127.0.0.10:8000") != NULL);
	CHECK_INT(connects(s.t, n, "127.0.0.10:8000"), 0);
	CHECK(!row_of(s.t, n, ES_ROLE_ODOO_CRON, "127.0.0.9:8000"));
	CHECK_INT(connects(s.t, n, NULL), 100 + 28 + 5 + 2 + 8 + 9);
	check_role(s.t, 4, 6);

	/* 5 s: all idle, but 4 entries are under 3/4 of the pool: they stay. */
	feed_all(&s, 5000, s5, 4);
	CHECK_INT(s.ncold, 0);
	n = tcp_remotes_end(s.t, 5000);
	CHECK_INT(connects(s.t, n, NULL), 100 + 28 + 5 + 2 + 8 + 9);
	check_role(s.t, 4, 6);
	tcp_remotes_free(s.t);
}

int main(void)
{
	test_format();
	test_link();
	test_diag();
	test_remotes();
	test_evict();
	return check_summary("test_tcp");
}
