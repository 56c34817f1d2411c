// SPDX-License-Identifier: GPL-2.0
/*
 * The requests poller, every 100 ms: drains the probe's ring, counts the
 * requests of workers that died before answering ("killed"), and keeps the
 * uprobe session (core/libc_uprobes.c) on every HTTP worker: odoo_http and
 * odoo_gevent processes always, other Python processes and Odoo's master
 * (threaded mode: workers = 0) while they hold a listening TCP socket (looked for once every LISTEN_RECHECK_MS while they
 * do not), so a Python script that serves no HTTP pays nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "requests.skel.h"
#include "core/bpfutil.h"
#include "core/erpscope.h"
#include "core/libc_uprobes.h"
#include "core/poller.h"
#include "procs/proctable.h"
#include "requests/requests.h"
#include "tcp/tcp.h"

#define LISTEN_RECHECK_MS 10000
/* Listening sockets looked for in one process's table, at most. */
#define MAX_LISTENERS 64

/* The C library functions CPython's socket module calls (Modules/socketmodule.c). */
static const struct libc_hook hooks[] = {
	{ "accept", ES_REQ_HOOK_ACCEPT },   { "accept4", ES_REQ_HOOK_ACCEPT },
	{ "recv", ES_REQ_HOOK_RECV },	    { "recvfrom", ES_REQ_HOOK_RECV },
	{ "send", ES_REQ_HOOK_SEND },	    { "sendto", ES_REQ_HOOK_SEND },
	{ "sendmsg", ES_REQ_HOOK_SENDMSG }, { "close", ES_REQ_HOOK_CLOSE },
};
#define NHOOKS (sizeof(hooks) / sizeof(hooks[0]))

struct listen_check {
	__u32 pid;
	__u64 starttime;
	bool listens;
	uint64_t checked_ms;
};

struct req_attach {
	struct req_priv *rp;
	struct listen_check *checks; /* per slot - ES_SLOT_FIRST_WORKER */
	unsigned int nchecks;
	uint64_t now_ms;
};

/* Both maps' keys begin with the process's tgid. */
static bool key_of_pid(void *arg, const void *key, const void *value)
{
	return *(const __u32 *)key == *(const __u32 *)arg;
}

/* The process's connections and listening sockets go with its link: a reused pid starts clean. */
static void detached(void *arg, __u32 pid)
{
	struct req_priv *rp = arg;

	bpf_hash_delete_if(bpf_map__fd(rp->skel->maps.req_conns), sizeof(struct es_req_conn_key),
			   sizeof(struct es_req_conn), false, key_of_pid, &pid);
	bpf_hash_delete_if(bpf_map__fd(rp->skel->maps.req_listen),
			   sizeof(struct es_req_listen_key), sizeof(__u8), false, key_of_pid, &pid);
}

int req_attach_start(struct req_priv *rp)
{
	struct libc_uprobes_ops ops = { .starttime = procs_starttime,
					.detached = detached,
					.arg = rp };
	unsigned int n = rp->nslots > ES_SLOT_FIRST_WORKER ? rp->nslots - ES_SLOT_FIRST_WORKER : 0;

	rp->lu = libc_uprobes_new(rp->skel->progs.es_req_io, hooks, NHOOKS, n, "requests", &ops);
	return rp->lu ? 0 : -ENOMEM;
}

/* Inodes of the listening TCP sockets in /proc/<pid>/net/tcp{,6} (the process's namespace). */
static unsigned int listeners(__u32 pid, uint32_t *ino, unsigned int max)
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
			unsigned int st;
			unsigned long inode;

			if (sscanf(line, " %*u: %*x:%*x %*x:%*x %x %*x:%*x %*x:%*x %*x %*u %*u %lu",
				   &st, &inode) == 2 &&
			    st == 0x0A && inode)
				ino[n++] = (uint32_t)inode;
		}
		fclose(fp);
	}
	return n;
}

/* Whether pid holds one of the listening TCP sockets of its network namespace. */
static bool holds_listener(__u32 pid)
{
	uint32_t ino[MAX_LISTENERS], in;
	unsigned int n = listeners(pid, ino, MAX_LISTENERS);
	char path[64], link[64];
	struct dirent *de;
	bool found = false;
	DIR *d;

	if (!n)
		return false;
	snprintf(path, sizeof(path), "/proc/%u/fd", pid);
	d = opendir(path);
	if (!d)
		return false;
	while (!found && (de = readdir(d))) {
		ssize_t l = readlinkat(dirfd(d), de->d_name, link, sizeof(link));

		if (l <= 0 || !tcp_socket_link_inode(link, (size_t)l, &in))
			continue;
		for (unsigned int i = 0; i < n && !found; i++)
			found = ino[i] == in;
	}
	closedir(d);
	return found;
}

/* A plain Python process or Odoo's master serves HTTP while it holds a listener. */
static bool python_serves(struct req_attach *ra, const struct slot_view *sv)
{
	struct listen_check *lc;
	unsigned int i = sv->slot - ES_SLOT_FIRST_WORKER;

	if (i >= ra->nchecks)
		return false;
	lc = &ra->checks[i];
	if (lc->pid != sv->w->pid || lc->starttime != sv->w->starttime) {
		memset(lc, 0, sizeof(*lc));
		lc->pid = sv->w->pid;
		lc->starttime = sv->w->starttime;
	} else if (lc->listens || ra->now_ms < lc->checked_ms + LISTEN_RECHECK_MS) {
		return lc->listens;
	}
	lc->checked_ms = ra->now_ms;
	lc->listens = holds_listener(sv->w->pid);
	return lc->listens;
}

static void sync_slot(void *arg, const struct slot_view *sv)
{
	struct req_attach *ra = arg;
	const struct worker *w = sv->w;

	if (!w || w->exited || !req_role_served(sv->role) || sv->slot < ES_SLOT_FIRST_WORKER)
		return;
	if ((sv->role == ES_ROLE_PYTHON || sv->role == ES_ROLE_ODOO_MASTER) &&
	    !python_serves(ra, sv))
		return;
	libc_uprobes_want(ra->rp->lu, sv->slot - ES_SLOT_FIRST_WORKER, w->pid, w->starttime);
}

/* ---------------------------------------------------------------- the poller */

static int req_poll_init(struct poller *pl)
{
	struct req_attach *ra = calloc(1, sizeof(*ra));
	unsigned int nslots = procs_nslots(pl->es->procs);

	if (!ra)
		return -ENOMEM;
	ra->nchecks = nslots > ES_SLOT_FIRST_WORKER ? nslots - ES_SLOT_FIRST_WORKER : 0;
	ra->checks = calloc(ra->nchecks ? ra->nchecks : 1, sizeof(*ra->checks));
	if (!ra->checks) {
		free(ra);
		return -ENOMEM;
	}
	pl->priv = ra;
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
	/* Events first: a request answered before its worker died is counted as answered. */
	if (p->rb)
		ring_buffer__consume(p->rb);
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
