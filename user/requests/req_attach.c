// SPDX-License-Identifier: GPL-2.0
/*
 * The requests poller, every 100 ms: drains the probe's ring, counts the
 * requests of workers that died before answering ("killed"), and follows
 * every HTTP worker: odoo_http and odoo_gevent processes always, other
 * Python processes and Odoo's master (threaded mode: workers = 0) while
 * they hold a listening TCP socket, so a Python script that serves no HTTP
 * pays nothing. Following a process: its listen calls get an entry uprobe
 * (core/libc_uprobes.c), then its tgid goes into req_pids and req_procs
 * (req_pids.c), which the socket and TCP state tracepoints look in. Those
 * are attached while at least one process is followed: a host without
 * HTTP workers (a database server) runs nothing at its socket calls.
 *
 * The kernel side follows a connection whose local port is one its process
 * listens on, with no trap on accept(): the ports of the listening sockets
 * a process holds go into the probe's req_listen here, from before its
 * uprobes are attached until a look made right after they were, in the
 * same pass; the ports of its later listen() calls are noted by the
 * kernel side. The listeners of the daemon's own network namespace come
 * from one SOCK_DIAG dump per pass that needs them, and one more after each
 * attach (the kernel's listening hash only); a process in another namespace
 * has its /proc/<pid>/net/tcp{,6} read, whose cost grows with every
 * connection and TIME_WAIT socket there.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "requests.skel.h"
#include "core/bpfutil.h"
#include "core/erpscope.h"
#include "core/libc_uprobes.h"
#include "core/log.h"
#include "core/poller.h"
#include "procs/proctable.h"
#include "requests/requests.h"
#include "tcp/tcp.h"

#define LISTEN_RECHECK_MS 10000
/* A process this young is looked at every LISTEN_YOUNG_RECHECK_MS: servers listen early. */
#define LISTEN_YOUNG_MS 10000
#define LISTEN_YOUNG_RECHECK_MS 1000
/* Listening sockets looked for in one network namespace, at most. */
#define MAX_LISTENERS 256
/* Listening ports noted per process, at most. */
#define MAX_PORTS 8
#define DIAG_BUF (32 * 1024)

/*
 * The C library function whose calls no tracepoint sees in the caller's
 * context (a socket's listen): on the entry link, no return ever. Not
 * close: a trap there was paid by every close of the worker, of files too,
 * and the descriptor's next read or the sweep (req_fd.c) finds a close.
 */
static const struct libc_hook hooks[] = {
	{ "listen", ES_REQ_HOOK_LISTEN, true },
};
#define NHOOKS (sizeof(hooks) / sizeof(hooks[0]))

/* A served process's listening ports, as last looked for. */
struct listen_check {
	__u32 pid;
	__u64 starttime;
	uint64_t first_ms, checked_ms;
	bool settled; /* a look was made once the uprobes were attached (or failed to be) */
	uint64_t written; /* req_priv.detaches when ports[] went into req_listen; ~0: not yet */
	unsigned int nports;
	__u16 ports[MAX_PORTS];
};

/* The listeners of the daemon's network namespace, dumped at most once a pass. */
struct own_listeners {
	int nl; /* NETLINK_SOCK_DIAG, -1 when none could be opened */
	uint32_t seq;
	char *buf; /* DIAG_BUF */
	ino_t netns;
	bool dumped, ok; /* in this pass; its dump succeeded */
	struct tcp_listener l[MAX_LISTENERS];
	unsigned int n;
};

struct req_attach {
	struct req_priv *rp;
	struct listen_check *checks; /* per slot - ES_SLOT_FIRST_WORKER */
	unsigned int nchecks;
	uint64_t now_ms;
	struct own_listeners own;
};

/* Both maps' keys begin with the process's tgid. */
static bool key_of_pid(void *arg, const void *key, const void *value)
{
	return *(const __u32 *)key == *(const __u32 *)arg;
}

/* The process's array slots (index: its libc_uprobes index) are nobody's: one batch update. */
static void slots_clear(struct req_priv *rp, unsigned int index)
{
	int fd = bpf_map__fd(rp->skel->maps.req_slots);
	__u32 keys[ES_REQ_KEEP_FD], n = ES_REQ_KEEP_FD;
	struct es_req_conn *zero;

	if (!index || index > ES_REQ_SLOT_PROCS)
		return;
	zero = calloc(ES_REQ_KEEP_FD, sizeof(*zero));
	if (!zero)
		return;
	for (__u32 i = 0; i < ES_REQ_KEEP_FD; i++)
		keys[i] = (index - 1) * ES_REQ_KEEP_FD + i;
	if (bpf_map_update_batch(fd, keys, zero, &n, NULL)) {
		/* A kernel without batch updates of arrays: one at a time. */
		for (__u32 i = 0; i < ES_REQ_KEEP_FD; i++)
			bpf_map_update_elem(fd, &keys[i], &zero[i], BPF_ANY);
	}
	free(zero);
}

/*
 * The socket tracepoints on (the first process followed) or off (the last
 * one gone): -errno of the first that would not attach.
 */
static int tracepoints_set(struct req_priv *rp, bool on)
{
	bool btf = rp->es->tp_btf;
	struct bpf_link **links[] = { btf ? &rp->skel->links.es_req_recv :
					    &rp->skel->links.es_req_recv_r,
				      btf ? &rp->skel->links.es_req_send :
					    &rp->skel->links.es_req_send_r };
	struct bpf_program *progs[] = { btf ? rp->skel->progs.es_req_recv :
					      rp->skel->progs.es_req_recv_r,
					btf ? rp->skel->progs.es_req_send :
					      rp->skel->progs.es_req_send_r };
	int err = 0;

	for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		if (!on) {
			bpf_link__destroy(*links[i]);
			*links[i] = NULL;
		} else if (!*links[i] && !(*links[i] = bpf_program__attach(progs[i]))) {
			err = err ? err : -errno;
			log_warn("cannot attach a socket tracepoint: requests are not seen",
				 "program=%s err=%d", bpf_program__name(progs[i]), -errno);
		}
	}
	log_debug(on ? "socket tracepoints attached" : "socket tracepoints detached", "probe=%s",
		  "requests");
	return err;
}

/*
 * The process's connections and listening ports go with its link: a reused
 * pid starts clean. Every process writes its ports again at its next want
 * (req_priv.detaches): one detached and wanted again keeps its slot's check.
 */
static void detached(void *arg, __u32 pid, unsigned int index)
{
	struct req_priv *rp = arg;

	/* First: the tracepoints stop following it. */
	req_pids_unfollow(rp, pid);
	if (rp->followed && !--rp->followed)
		tracepoints_set(rp, false);
	rp->detaches++;
	req_pending_release(rp, index);
	slots_clear(rp, index);
	bpf_hash_delete_if(bpf_map__fd(rp->skel->maps.req_conns), sizeof(struct es_req_conn_key),
			   sizeof(struct es_req_conn), false, key_of_pid, &pid);
	bpf_hash_delete_if(bpf_map__fd(rp->skel->maps.req_listen),
			   sizeof(struct es_req_listen_key), sizeof(__u8), false, key_of_pid, &pid);
	log_debug("HTTP worker not followed any more", "pid=%u", pid);
}

/*
 * Its listen is hooked: the socket tracepoints follow it now, with
 * its index. Its pid's last process, if any, was detached() before.
 */
static void attached(void *arg, __u32 pid, unsigned int index)
{
	struct req_priv *rp = arg;
	int err = req_pids_follow(rp, pid, index);

	if (err)
		log_debug("cannot follow an HTTP worker", "pid=%u err=%d", pid, err);
	if (!rp->followed++)
		tracepoints_set(rp, true);
}

int req_attach_start(struct req_priv *rp)
{
	struct libc_uprobes_ops ops = { .starttime = procs_starttime,
					.attached = attached,
					.detached = detached,
					.arg = rp,
					.indexes = ES_REQ_SLOT_PROCS };
	unsigned int n = rp->nslots > ES_SLOT_FIRST_WORKER ? rp->nslots - ES_SLOT_FIRST_WORKER : 0;

	int err;

	/* Once now, so a tracepoint that will not attach fails the probe (and --check). */
	err = tracepoints_set(rp, true);
	tracepoints_set(rp, false);
	if (err)
		return err;
	rp->lu = libc_uprobes_new(NULL, rp->skel->progs.es_req_io, hooks, NHOOKS, n, "requests",
				  &ops);
	return rp->lu ? 0 : -ENOMEM;
}

/* The listening TCP sockets in /proc/<pid>/net/tcp{,6} (the process's namespace). */
static unsigned int proc_listeners(__u32 pid, struct tcp_listener *l, unsigned int max)
{
	static const char *const files[] = { "tcp", "tcp6" };
	unsigned int n = 0;
	char path[64], line[512];

	for (size_t f = 0; f < 2; f++) {
		FILE *fp;

		snprintf(path, sizeof(path), "/proc/%u/net/%s", pid, files[f]);
		fp = fopen(path, "re");
		if (!fp)
			continue;
		while (n < max && fgets(line, sizeof(line), fp)) {
			unsigned int st, port;
			unsigned long inode;

			if (sscanf(line, " %*u: %*x:%x %*x:%*x %x %*x:%*x %*x:%*x %*x %*u %*u %lu",
				   &port, &st, &inode) == 3 &&
			    st == 0x0A && inode && port && port <= 0xffff) {
				memset(&l[n], 0, sizeof(l[n]));
				l[n].inode = (uint32_t)inode;
				l[n++].port = (uint16_t)port;
			}
		}
		fclose(fp);
	}
	return n;
}

static ino_t netns_of(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : st.st_ino;
}

static void own_listener(void *arg, const struct tcp_listener *l)
{
	struct own_listeners *o = arg;

	if (o->n < MAX_LISTENERS && l->inode && l->port)
		o->l[o->n++] = *l;
}

/* The daemon's namespace's listeners, one dump per pass; false when it failed. */
static bool own_dump(struct own_listeners *o)
{
	static const int families[] = { AF_INET, AF_INET6 };
	int err = 0;

	if (o->dumped)
		return o->ok;
	o->dumped = true;
	o->n = 0;
	for (size_t f = 0; f < 2 && !err; f++)
		err = tcp_diag_dump(o->nl, o->buf, DIAG_BUF, &o->seq, families[f], own_listener, o);
	if (err)
		log_debug("sock_diag dump failed: reading /proc/<pid>/net/tcp instead",
			  "poller=requests err=%d", err);
	o->ok = !err;
	return o->ok;
}

/* The listening sockets of pid's network namespace, into *l; how many. */
static unsigned int listeners(struct own_listeners *o, __u32 pid, const struct tcp_listener **l,
			      struct tcp_listener *buf, unsigned int max)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%u/ns/net", pid);
	if (o->nl >= 0 && o->netns && netns_of(path) == o->netns && own_dump(o)) {
		*l = o->l;
		return o->n;
	}
	*l = buf;
	return proc_listeners(pid, buf, max);
}

/* Adds port to lc's list; false when it was there (or the list is full). */
static bool add_port(struct listen_check *lc, __u16 port)
{
	for (unsigned int i = 0; i < lc->nports; i++) {
		if (lc->ports[i] == port)
			return false;
	}
	if (lc->nports == MAX_PORTS)
		return false;
	lc->ports[lc->nports++] = port;
	return true;
}

/* Adds the ports of the listening TCP sockets pid holds to lc; true when one was new. */
static bool look_for_ports(struct own_listeners *o, __u32 pid, struct listen_check *lc)
{
	struct tcp_listener buf[MAX_LISTENERS];
	const struct tcp_listener *l;
	unsigned int n = listeners(o, pid, &l, buf, MAX_LISTENERS);
	char path[64], link[64];
	struct dirent *de;
	bool grew = false;
	uint32_t in;
	DIR *d;

	if (!n)
		return false;
	snprintf(path, sizeof(path), "/proc/%u/fd", pid);
	d = opendir(path);
	if (!d)
		return false;
	while ((de = readdir(d))) {
		ssize_t len = readlinkat(dirfd(d), de->d_name, link, sizeof(link));

		if (len <= 0 || !tcp_socket_link_inode(link, (size_t)len, &in))
			continue;
		for (unsigned int i = 0; i < n; i++) {
			if (l[i].inode == in && add_port(lc, l[i].port))
				grew = true;
		}
	}
	closedir(d);
	return grew;
}

/* lc's ports into req_listen, for the kernel side to follow their connections. */
static void write_ports(struct req_priv *rp, const struct listen_check *lc)
{
	int fd = bpf_map__fd(rp->skel->maps.req_listen);
	__u8 one = 1;

	for (unsigned int i = 0; i < lc->nports; i++) {
		struct es_req_listen_key k = { .tgid = lc->pid, .port = lc->ports[i] };

		if (bpf_map_update_elem(fd, &k, &one, BPF_ANY) || req_ports_add(rp, k.port))
			log_warn("listening port not noted: its connections are not followed",
				 "probe=requests pid=%u port=%u err=%d", lc->pid, lc->ports[i], -errno);
	}
}

/*
 * The ports the slot's last process had written, when it goes: its link's
 * detach takes them, but a process that was never attached (it exited
 * first, or the attach failed) has none.
 */
static void forget_ports(struct req_priv *rp, const struct listen_check *lc)
{
	int fd = bpf_map__fd(rp->skel->maps.req_listen);

	if (lc->written == ~0ull)
		return;
	for (unsigned int i = 0; i < lc->nports; i++) {
		struct es_req_listen_key k = { .tgid = lc->pid, .port = lc->ports[i] };

		bpf_map_delete_elem(fd, &k);
	}
}

/*
 * The process's listening ports into req_listen. Looked for when it is new
 * to its slot; then, for a process to be attached (always, or it listens),
 * on every pass until a look is made with its uprobes attached (listen() is
 * seen from then on); and while it has none, every second for its first
 * 10 s (as the daemon first saw it), every LISTEN_RECHECK_MS after (a plain
 * Python process is attached once it listens). Written again when a detach
 * may have taken them. Returns how many ports it holds.
 */
static unsigned int note_ports(struct req_attach *ra, const struct slot_view *sv, bool always,
			       bool attached)
{
	struct req_priv *rp = ra->rp;
	struct listen_check *lc;
	unsigned int i = sv->slot - ES_SLOT_FIRST_WORKER;
	bool grew = false, fresh = false;
	uint64_t every;

	if (i >= ra->nchecks)
		return 0;
	lc = &ra->checks[i];
	if (lc->pid != sv->w->pid || lc->starttime != sv->w->starttime) {
		forget_ports(rp, lc);
		memset(lc, 0, sizeof(*lc));
		lc->pid = sv->w->pid;
		lc->starttime = sv->w->starttime;
		lc->written = ~0ull;
		lc->first_ms = ra->now_ms;
		fresh = true;
	}
	every = ra->now_ms < lc->first_ms + LISTEN_YOUNG_MS ? LISTEN_YOUNG_RECHECK_MS :
							     LISTEN_RECHECK_MS;
	/* Detached meanwhile: its next attach is looked after again. */
	if (!attached)
		lc->settled = false;
	if (fresh || (!lc->settled && (always || lc->nports)) ||
	    (!lc->nports && ra->now_ms >= lc->checked_ms + every)) {
		lc->checked_ms = ra->now_ms;
		lc->settled = attached;
		grew = look_for_ports(&ra->own, lc->pid, lc);
	}
	if (grew || lc->written != rp->detaches) {
		write_ports(rp, lc);
		lc->written = rp->detaches;
	}
	return lc->nports;
}

static void sync_slot(void *arg, const struct slot_view *sv)
{
	struct req_attach *ra = arg;
	const struct worker *w = sv->w;
	unsigned int idx = sv->slot - ES_SLOT_FIRST_WORKER;
	bool always, tried;

	if (!w || w->exited || !req_role_served(sv->role) || sv->slot < ES_SLOT_FIRST_WORKER)
		return;
	/* A plain Python process or Odoo's master serves HTTP while it holds a listener. */
	always = sv->role != ES_ROLE_PYTHON && sv->role != ES_ROLE_ODOO_MASTER;
	tried = libc_uprobes_tried(ra->rp->lu, idx, w->pid, w->starttime);
	if (!note_ports(ra, sv, always, tried) && !always)
		return;
	libc_uprobes_want(ra->rp->lu, idx, w->pid, w->starttime);
	/*
	 * Attached just now: a socket that began listening between the look
	 * above and the attach was seen by neither that look nor listen()'s
	 * hook, and its first connections would go unfollowed until the next
	 * pass. A second look, on a fresh dump, closes that window.
	 */
	if (!tried && libc_uprobes_tried(ra->rp->lu, idx, w->pid, w->starttime)) {
		ra->own.dumped = false;
		note_ports(ra, sv, always, true);
	}
}

/* ---------------------------------------------------------------- the poller */

static int req_poll_init(struct poller *pl)
{
	struct timeval tv = { .tv_sec = 1 };
	struct req_attach *ra = calloc(1, sizeof(*ra));
	unsigned int nslots = procs_nslots(pl->es->procs);

	if (!ra)
		return -ENOMEM;
	ra->nchecks = nslots > ES_SLOT_FIRST_WORKER ? nslots - ES_SLOT_FIRST_WORKER : 0;
	ra->checks = calloc(ra->nchecks ? ra->nchecks : 1, sizeof(*ra->checks));
	ra->own.buf = malloc(DIAG_BUF);
	ra->own.nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	pl->priv = ra;
	if (!ra->checks || !ra->own.buf) {
		pl->ops->free(pl);
		return -ENOMEM;
	}
	/* Without it, every process's listeners come from /proc/<pid>/net/tcp. */
	if (ra->own.nl < 0)
		log_debug("no sock_diag socket", "poller=requests err=%d", -errno);
	else
		setsockopt(ra->own.nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ra->own.netns = netns_of("/proc/self/ns/net");
	return 0;
}

static void req_poll_tick(struct poller *pl, uint64_t now_ms)
{
	struct req_attach *ra = pl->priv;
	struct probe *p = erpscope_probe(pl->es, "requests");
	struct req_priv *rp = requests_priv(pl->es);

	if (!rp || !rp->lu)
		return;
	ra->rp = rp;
	ra->now_ms = now_ms;
	ra->own.dumped = false;
	/* Events first: a request answered before its worker died is counted as answered. */
	req_sync(p);
	req_conns_sweep(rp);
	libc_uprobes_begin(rp->lu);
	procs_for_each_slot(pl->es->procs, sync_slot, ra);
	libc_uprobes_end(rp->lu);
}

static void req_poll_free(struct poller *pl)
{
	struct req_attach *ra = pl->priv;

	if (!ra)
		return;
	if (ra->own.nl >= 0)
		close(ra->own.nl);
	free(ra->own.buf);
	free(ra->checks);
	free(ra);
	pl->priv = NULL;
}

const struct poller_ops requests_poller_ops = {
	.name = "requests",
	.interval_ms = 100,
	.init = req_poll_init,
	.tick = req_poll_tick,
	.free = req_poll_free,
};
