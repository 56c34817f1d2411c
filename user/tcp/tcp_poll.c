// SPDX-License-Identifier: GPL-2.0
/*
 * The "tcp" poller, every second, off the scrape path:
 *  - listen queues: one SOCK_DIAG dump of the listening TCP sockets (IPv4
 *    and IPv6) gives each one's inode, port, accept backlog, its limit and
 *    its drop count (SK_MEMINFO_DROPS: the kernel's ListenDrops for that
 *    socket, counted on a full accept queue). A listener's role is that of
 *    the tracked process holding it, found by reading the /proc/<pid>/fd
 *    links of tracked processes: all of them once when a listener appears,
 *    after that only processes not read before (or whose role changed), and
 *    only while a listener is unresolved or held by Odoo's master or a plain
 *    python only: its workers, which do the accepting, win. Listeners of
 *    untracked processes are not shown.
 * collect() writes the listen gauges and the overflow counter.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <linux/netlink.h>

#include "core/erpscope.h"
#include "core/expo.h"
#include "core/log.h"
#include "core/poller.h"
#include "procs/proctable.h"
#include "tcp/tcp.h"

#define TCP_POLL_MS 1000
#define MAX_LISTENERS 256
#define MAX_PORTS 256
#define RECV_BUF (64 * 1024)
#define PRIO_NONE 0
#define PRIO_MASTER 1 /* held by an Odoo master or a python only */
#define PRIO_OTHER 2 /* by a worker that does not serve HTTP (a cron worker forked with it) */
#define PRIO_GEVENT 3
#define PRIO_FINAL 4 /* by an HTTP worker: the role that accepts on it */

struct listener {
	uint32_t inode;
	uint16_t port;
	uint8_t prio;
	bool seen;
	enum es_role role; /* valid when prio > PRIO_NONE */
	uint32_t backlog, max;
	uint64_t drops, drops_counted;
};

struct port_total {
	uint16_t port;
	uint64_t overflows;
};

struct tcp_poll {
	struct erpscope *es;
	int nl;
	uint32_t seq;
	char *buf; /* RECV_BUF: netlink answers */
	struct listener ls[MAX_LISTENERS];
	unsigned int nls;
	struct port_total ports[MAX_PORTS];
	unsigned int nports;
	bool scan_all;     /* a listener appeared: read every tracked process */
	uint64_t *scanned; /* per slot: scan_mark() of the process whose fds were read */
	uint16_t *wport;       /* per slot: the port of the listener its process holds, 0 none */
	unsigned int nslots;
	bool warned_full;
};

/* ---------------------------------------------------------------- listeners */

static struct listener *find_listener(struct tcp_poll *tp, uint32_t inode)
{
	for (unsigned int i = 0; i < tp->nls; i++) {
		if (tp->ls[i].inode == inode)
			return &tp->ls[i];
	}
	return NULL;
}

static void on_listener(void *arg, const struct tcp_listener *l)
{
	struct tcp_poll *tp = arg;
	struct listener *x = find_listener(tp, l->inode);

	if (!x) {
		if (tp->nls >= MAX_LISTENERS) {
			if (!tp->warned_full)
				log_warn("too many listening sockets; the rest are not shown",
					 "poller=tcp max=%d", MAX_LISTENERS);
			tp->warned_full = true;
			return;
		}
		x = &tp->ls[tp->nls++];
		memset(x, 0, sizeof(*x));
		x->inode = l->inode;
		x->port = l->port;
		tp->scan_all = true;
	}
	x->seen = true;
	x->backlog = l->backlog;
	x->max = l->max;
	if (l->has_drops)
		x->drops = l->drops;
}

/* One dump of one family. Returns 0 or -errno. */
static int dump_family(struct tcp_poll *tp, int family)
{
	return tcp_diag_dump(tp->nl, tp->buf, RECV_BUF, &tp->seq, family, on_listener, tp);
}

static void add_overflows(struct tcp_poll *tp, uint16_t port, uint64_t n)
{
	unsigned int i;

	for (i = 0; i < tp->nports; i++) {
		if (tp->ports[i].port == port)
			break;
	}
	if (i == tp->nports) {
		if (tp->nports >= MAX_PORTS)
			return;
		tp->ports[tp->nports++] = (struct port_total){ .port = port };
	}
	tp->ports[i].overflows += n;
}

static void read_listeners(struct tcp_poll *tp)
{
	static const int families[] = { AF_INET, AF_INET6 };
	unsigned int keep = 0;
	int err;

	for (unsigned int i = 0; i < tp->nls; i++)
		tp->ls[i].seen = false;
	for (unsigned int f = 0; f < 2; f++) {
		err = dump_family(tp, families[f]);
		if (err) {
			log_debug("sock_diag dump failed", "poller=tcp family=%d err=%d", families[f],
				  err);
			return; /* keep what we had rather than drop every listener */
		}
	}
	for (unsigned int i = 0; i < tp->nls; i++) {
		if (tp->ls[i].seen)
			tp->ls[keep++] = tp->ls[i];
	}
	tp->nls = keep;
}

/* ---------------------------------------------------------------- owners */

static bool want_owners(const struct tcp_poll *tp)
{
	for (unsigned int i = 0; i < tp->nls; i++) {
		if (tp->ls[i].prio < PRIO_FINAL)
			return true;
	}
	return false;
}

/*
 * Who a listener is shown under: the role that accepts on it, so an HTTP
 * worker over the gevent process, over any other worker that inherited it
 * (a cron worker forked after the socket was opened), over Odoo's master
 * (which only listens) or a python not yet known to be one.
 */
static uint8_t holder_prio(enum es_role role)
{
	switch (role) {
	case ES_ROLE_ODOO_HTTP:
		return PRIO_FINAL;
	case ES_ROLE_ODOO_GEVENT:
		return PRIO_GEVENT;
	case ES_ROLE_ODOO_MASTER:
	case ES_ROLE_PYTHON:
		return PRIO_MASTER;
	default:
		return PRIO_OTHER;
	}
}

static void scan_fds(struct tcp_poll *tp, const struct worker *w, __u32 slot)
{
	char path[64], link[64];
	struct dirent *de;
	DIR *d;
	int dfd;

	snprintf(path, sizeof(path), "/proc/%u/fd", w->pid);
	d = opendir(path);
	if (!d)
		return;
	dfd = dirfd(d);
	while ((de = readdir(d))) {
		struct listener *l;
		uint32_t inode;
		uint8_t prio;
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		n = readlinkat(dfd, de->d_name, link, sizeof(link));
		if (n <= 0 || !tcp_socket_link_inode(link, (size_t)n, &inode))
			continue;
		l = find_listener(tp, inode);
		if (!l)
			continue;
		tp->wport[slot] = l->port;
		prio = holder_prio(w->role);
		if (prio >= l->prio) { /* same rank: the latest role (a python became a master) */
			l->prio = prio;
			l->role = w->role;
		}
	}
	closedir(d);
}

/* A process is read again when it changed role (a python that became Odoo's master). */
static uint64_t scan_mark(const struct worker *w)
{
	return ((w->starttime << 5) | (uint64_t)w->role) + 1;
}

static void owner_slot(void *arg, const struct slot_view *sv)
{
	struct tcp_poll *tp = arg;
	const struct worker *w = sv->w;

	if (!w || w->exited || sv->slot >= tp->nslots)
		return;
	if (!tp->scan_all && tp->scanned[sv->slot] == scan_mark(w))
		return;
	tp->scanned[sv->slot] = scan_mark(w);
	tp->wport[sv->slot] = 0;
	scan_fds(tp, w, sv->slot);
}

static void count_overflows(struct tcp_poll *tp)
{
	for (unsigned int i = 0; i < tp->nls; i++) {
		struct listener *l = &tp->ls[i];

		if (l->prio == PRIO_NONE || l->drops < l->drops_counted)
			continue;
		add_overflows(tp, l->port, l->drops - l->drops_counted);
		l->drops_counted = l->drops;
	}
}

/* ---------------------------------------------------------------- poller ops */

static int tcp_poll_init(struct poller *pl)
{
	struct erpscope *es = pl->es;
	struct probe *p = erpscope_probe(es, "tcp");
	struct timeval tv = { .tv_sec = 1 };
	struct tcp_poll *tp;

	/* Off with the probe: --probes without tcp turns both off. */
	if (!p || !p->up)
		return -ENODEV;
	tp = calloc(1, sizeof(*tp));
	if (!tp)
		return -ENOMEM;
	pl->priv = tp;
	tp->es = es;
	tp->nslots = procs_nslots(es->procs);
	tp->buf = malloc(RECV_BUF);
	tp->scanned = calloc(tp->nslots, sizeof(*tp->scanned));
	tp->wport = calloc(tp->nslots, sizeof(*tp->wport));
	tp->nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (!tp->buf || !tp->scanned || !tp->wport || tp->nl < 0) {
		int err = tp->nl < 0 ? -errno : -ENOMEM;

		pl->ops->free(pl);
		return err;
	}
	setsockopt(tp->nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return 0;
}

static void tcp_poll_tick(struct poller *pl, uint64_t now_ms)
{
	struct tcp_poll *tp = pl->priv;

	read_listeners(tp);
	if (want_owners(tp))
		procs_for_each_slot(tp->es->procs, owner_slot, tp);
	tp->scan_all = false;
	count_overflows(tp);
}

/* One gauge per role and port: IPv4 and IPv6 sockets, and SO_REUSEPORT groups, add up. */
static void listen_family(struct tcp_poll *tp, struct expo *e, bool max)
{
	bool done[MAX_LISTENERS] = { false };
	struct expo_label l[2];
	char port[8];

	for (unsigned int i = 0; i < tp->nls; i++) {
		const struct listener *a = &tp->ls[i];
		uint64_t v = 0;

		if (a->prio == PRIO_NONE || done[i])
			continue;
		for (unsigned int j = i; j < tp->nls; j++) {
			const struct listener *b = &tp->ls[j];

			if (b->prio == PRIO_NONE || b->role != a->role || b->port != a->port)
				continue;
			done[j] = true;
			v += max ? b->max : b->backlog;
		}
		snprintf(port, sizeof(port), "%u", a->port);
		l[0] = (struct expo_label){ "role", role_name(a->role) };
		l[1] = (struct expo_label){ "port", port };
		expo_sample_u64(e, l, 2, v);
	}
}

static void tcp_poll_collect(struct poller *pl, struct expo *e)
{
	struct tcp_poll *tp = pl->priv;
	struct expo_label l[1];
	char port[8];

	expo_family(e, "erpscope_listen_queue_length", EXPO_GAUGE,
		    "Connections in the accept queues of the listening TCP sockets a role holds, per port (sampled every second).");
	listen_family(tp, e, false);
	expo_family(e, "erpscope_listen_queue_max", EXPO_GAUGE,
		    "Limit of those accept queues (the listen() backlog, capped by net.core.somaxconn).");
	listen_family(tp, e, true);
	expo_family(e, "erpscope_listen_overflows_total", EXPO_COUNTER,
		    "Connections the kernel dropped at the listening sockets of tracked roles, per port (the sockets' ListenDrops: mostly a full accept queue).");
	for (unsigned int i = 0; i < tp->nports; i++) {
		snprintf(port, sizeof(port), "%u", tp->ports[i].port);
		l[0] = (struct expo_label){ "port", port };
		expo_sample_u64(e, l, 1, tp->ports[i].overflows);
	}
}

static void tcp_poll_free(struct poller *pl)
{
	struct tcp_poll *tp = pl->priv;

	if (!tp)
		return;
	if (tp->nl >= 0)
		close(tp->nl);
	free(tp->buf);
	free(tp->scanned);
	free(tp->wport);
	free(tp);
	pl->priv = NULL;
}

const struct poller_ops tcp_poller_ops = {
	.name = "tcp",
	.interval_ms = TCP_POLL_MS,
	.init = tcp_poll_init,
	.tick = tcp_poll_tick,
	.collect = tcp_poll_collect,
	.free = tcp_poll_free,
};

/* Defined at the end of this file; the daemon's poller table lists it. */
extern const struct poller_ops tcp_poller_ops;

uint16_t tcp_poll_worker_port(const struct erpscope *es, __u32 slot)
{
	for (int i = 0; i < es->npollers; i++) {
		const struct poller *pl = &es->pollers[i];

		if (pl->ops == &tcp_poller_ops && pl->up && pl->priv) {
			const struct tcp_poll *tp = pl->priv;

			return slot < tp->nslots ? tp->wport[slot] : 0;
		}
	}
	return 0;
}
