// SPDX-License-Identifier: GPL-2.0
/*
 * The pg poller: PostgreSQL processes as the process table sees them, every
 * tick (100 ms) so a new backend's database reaches the kernel before many
 * of its statements run. From them: erpscope_pg_backends{db,user,state}
 * from the backends' titles, erpscope_pg_connections and
 * erpscope_pg_max_connections per cluster (the postmaster's argv names the
 * data directory and configuration file, read again every 30 s), and the
 * client process of each new backend (user/pg/pg_link.c), tried a few times
 * while the client may not be tracked yet. Then the probe's sync: the
 * kernel's tgid -> database map, binaries not seen yet, retirement.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/erpscope.h"
#include "core/expo.h"
#include "core/grow.h"
#include "core/log.h"
#include "core/readfile.h"
#include "pg/pg.h"
#include "pg/pg_conf.h"
#include "pg/pg_link.h"
#include "core/poller.h"
#include "procs/proctable.h"

/*
 * Gone processes are kept for late lookups (events still in a ring) until
 * their series are folded, then this long: a host that opens a connection
 * per request ends hundreds of backends a second.
 */
#define GONE_KEEP_MS 1000
/* How often an adopted backend's pid is checked (one /proc read). */
#define ADOPTED_CHECK_MS 1000
#define CONF_READ_MS 30000
#define LINK_TRIES 6 /* 1.5 s */
#define LINK_GRACE_MS 1000
#define LINK_RETRY_MS 250
#define LINK_RETRY_SLOW_MS 10000

struct pg_cluster {
	__u32 pid; /* the postmaster */
	__u64 starttime;
	bool live;
	char name[PG_NAME_MAX];
	char datadir[PATH_MAX];
	int max_connections; /* < 0: not known */
	int port; /* its TCP port (postmaster.pid); 0: not known */
	uint64_t next_read_ms;
	unsigned int connections;
};

struct pg_procs {
	struct erpscope *es;
	struct pg_proc *v;
	size_t n, cap;
	struct pg_cluster *cl;
	size_t ncl, capcl;
	uint64_t now_ms;
	struct pg_cand *cands;
	size_t ncands, capcands;
};

/* Defined at the end of this file; the daemon's poller table lists it. */
extern const struct poller_ops pg_poller_ops;

struct pg_procs *pg_procs_of(struct erpscope *es)
{
	for (int i = 0; i < es->npollers; i++) {
		if (es->pollers[i].ops == &pg_poller_ops && es->pollers[i].up)
			return es->pollers[i].priv;
	}
	return NULL;
}

struct pg_proc *pg_procs_find(struct pg_procs *pp, __u32 pid)
{
	struct pg_proc *best = NULL;

	/* A live process first; else the latest that had this pid. */
	for (size_t i = 0; i < pp->n; i++) {
		struct pg_proc *pr = &pp->v[i];

		if (pr->pid != pid)
			continue;
		if (!pr->gone)
			return pr;
		if (!best || pr->gone_ms > best->gone_ms)
			best = pr;
	}
	return best;
}

size_t pg_procs_count(const struct pg_procs *pp)
{
	return pp->n;
}

struct pg_proc *pg_procs_at(struct pg_procs *pp, size_t i)
{
	return &pp->v[i];
}

static bool is_pg(enum es_role r)
{
	return r == ES_ROLE_PG_BACKEND || r == ES_ROLE_PG_AUTOVACUUM ||
	       r == ES_ROLE_PG_CHECKPOINTER || r == ES_ROLE_PG_WALWRITER ||
	       r == ES_ROLE_PG_BGWRITER || r == ES_ROLE_PG_OTHER;
}

/* pg_stat_activity's words, plus "waiting" (for a lock) and "starting". */
static void normalise_state(const char *s, char *out, size_t size)
{
	size_t n = strlen(s);
	const char *st = "active";

	if (!strncmp(s, "idle in transaction (aborted)", 29))
		st = "idle in transaction (aborted)";
	else if (!strncmp(s, "idle in transaction", 19))
		st = "idle in transaction";
	else if (!strncmp(s, "idle", 4))
		st = "idle";
	else if (!n)
		st = "unknown";
	else if (!strcmp(s, "startup") || !strcmp(s, "authentication"))
		st = "starting";
	else if (n >= 8 && !strcmp(s + n - 8, " waiting"))
		st = "waiting";
	snprintf(out, size, "%s", st);
}

static struct pg_proc *proc_add(struct pg_procs *pp)
{
	if (grow_array(&pp->v, &pp->cap, pp->n + 1, sizeof(*pp->v), 64))
		return NULL;
	memset(&pp->v[pp->n], 0, sizeof(pp->v[0]));
	return &pp->v[pp->n++];
}

static void add_cand(struct pg_procs *pp, const struct worker *w)
{
	if (grow_array(&pp->cands, &pp->capcands, pp->ncands + 1, sizeof(*pp->cands), 64))
		return;
	pp->cands[pp->ncands].pid = w->pid;
	pp->cands[pp->ncands].role = w->role;
	snprintf(pp->cands[pp->ncands].worker, sizeof(pp->cands[0].worker), "%s", w->label);
	pp->ncands++;
}

static void visit(void *arg, const struct slot_view *sv)
{
	struct pg_procs *pp = arg;
	const struct worker *w = sv->w;
	struct pg_proc *pr;

	if (!w || w->exited)
		return;
	if (!is_pg(w->role)) {
		if (w->role != ES_ROLE_OTHER)
			add_cand(pp, w);
		return;
	}
	pr = pg_procs_find(pp, w->pid);
	if (pr && (pr->gone || pr->starttime != w->starttime))
		pr = NULL;
	if (!pr) {
		pr = proc_add(pp);
		if (!pr)
			return;
		pr->pid = w->pid;
		pr->starttime = w->starttime;
		pr->next_link_ms = pp->now_ms;
	}
	pr->ppid = w->ppid;
	pr->role = w->role;
	pr->seen_ms = pp->now_ms;
	snprintf(pr->db, sizeof(pr->db), "%s", w->ti.db);
	snprintf(pr->user, sizeof(pr->user), "%s", w->ti.user);
	snprintf(pr->cluster, sizeof(pr->cluster), "%s", w->ti.cluster);
	normalise_state(w->ti.state, pr->state, sizeof(pr->state));
}

static bool adopted_alive(struct pg_procs *pp, struct pg_proc *pr)
{
	if (!pr->adopted)
		return false;
	if (pr->checked_ms + ADOPTED_CHECK_MS > pp->now_ms)
		return true;
	pr->checked_ms = pp->now_ms;
	return procs_starttime(pr->pid) == pr->starttime;
}

/* Marks what the table no longer has as gone; forgets the long gone. */
static void sweep(struct pg_procs *pp)
{
	size_t k = 0;

	for (size_t i = 0; i < pp->n; i++) {
		struct pg_proc *pr = &pp->v[i];

		/* Adopted ones live as long as their pid does: looked at now and then. */
		if (!pr->gone && pr->seen_ms != pp->now_ms && !adopted_alive(pp, pr)) {
			pr->gone = true;
			pr->gone_ms = pp->now_ms;
		}
		if (pr->gone && pr->retired && pr->gone_ms + GONE_KEEP_MS < pp->now_ms)
			continue;
		pp->v[k++] = *pr;
	}
	pp->n = k;
}

struct pg_proc *pg_procs_adopt(struct pg_procs *pp, __u32 pid, const char *title, size_t len,
			       __u64 start)
{
	struct pg_proc *pr = pg_procs_find(pp, pid);
	struct title_info ti;

	if (pr && !pr->gone) {
		if (pr->starttime == start)
			return pr;
		/* Its pid was reused before the table noticed it had gone. */
		pr->gone = true;
		pr->gone_ms = pp->now_ms;
	}
	if (title_classify(title, len, "postgres", "postgres", &ti) != ES_ROLE_PG_BACKEND)
		return NULL;
	pr = proc_add(pp);
	if (!pr)
		return NULL;
	pr->pid = pid;
	pr->starttime = start;
	pr->role = ES_ROLE_PG_BACKEND;
	pr->adopted = true;
	pr->exe_seen = true; /* its binary fired our probe: attached already */
	pr->seen_ms = pp->now_ms;
	pr->checked_ms = pp->now_ms;
	pr->next_link_ms = pp->now_ms;
	snprintf(pr->db, sizeof(pr->db), "%s", ti.db);
	snprintf(pr->user, sizeof(pr->user), "%s", ti.user);
	snprintf(pr->cluster, sizeof(pr->cluster), "%s", ti.cluster);
	normalise_state(ti.state, pr->state, sizeof(pr->state));
	return pr;
}

/* One try at linking pr to its client, within a linking round x (NULL: by pid only). */
static void link_one(struct pg_procs *pp, struct pg_link_ctx *x, struct pg_proc *pr)
{
	struct pg_client c = { .kind = PG_LINK_UNKNOWN };

	if (!x)
		pg_link_refresh(pp->es->procs, &pr->client); /* the kernel named its pid */
	else if (!pg_link_client(x, pr->pid, &c) && c.kind != PG_LINK_UNKNOWN)
		pr->client = c;
	pr->link_tries++;
	/*
	 * A local client may not be tracked yet (the table reads a new
	 * process's title within a second): look again soon, then seldom.
	 */
	pr->next_link_ms =
		pp->now_ms + (pr->link_tries < LINK_TRIES ? LINK_RETRY_MS : LINK_RETRY_SLOW_MS);
	if (pr->client.kind == PG_LINK_WORKER)
		log_debug("backend linked to its client",
			  "probe=pg backend_pid=%u client_pid=%u role=%s", pr->pid, pr->client.pid,
			  role_name(pr->client.role));
}

static bool needs_link(const struct pg_proc *pr)
{
	return !pr->gone && pr->role == ES_ROLE_PG_BACKEND && pr->client.kind != PG_LINK_WORKER &&
	       pr->client.kind != PG_LINK_REMOTE;
}

void pg_procs_link_kernel(struct pg_procs *pp, struct pg_proc *pr, const struct es_pg_ev_link *ev)
{
	struct pg_client c;

	if (pr->client.kind == PG_LINK_WORKER || pg_link_from_kernel(pp->es->procs, ev, &c))
		return;
	pr->client = c;
	pr->kernel_linked = true;
}

/*
 * Backends the kernel did not link: those that ran no statement yet (it
 * links at the first), or whose client it could not tell. Walking sockets
 * costs a /proc/net/tcp read, so a new backend gets LINK_GRACE_MS for its
 * first statement; one that ran it and stayed local-but-untracked is
 * looked up by pid only.
 */
static void link_clients(struct pg_procs *pp)
{
	struct pg_link_ctx *x = NULL;

	for (size_t i = 0; i < pp->n; i++) {
		struct pg_proc *pr = &pp->v[i];

		if (!needs_link(pr) || pr->next_link_ms > pp->now_ms)
			continue;
		if (pr->kernel_linked) {
			link_one(pp, NULL, pr);
			continue;
		}
		if (pr->seen_ms + LINK_GRACE_MS > pp->now_ms)
			continue;
		if (!x && !(x = pg_link_begin(pp->cands, pp->ncands)))
			return;
		link_one(pp, x, pr);
	}
	pg_link_end(x);
}

/* ---------------------------------------------------------------- clusters */

static struct pg_cluster *cluster_of(struct pg_procs *pp, __u32 pid)
{
	for (size_t i = 0; i < pp->ncl; i++) {
		if (pp->cl[i].pid == pid)
			return &pp->cl[i];
	}
	if (grow_array(&pp->cl, &pp->capcl, pp->ncl + 1, sizeof(*pp->cl), 4))
		return NULL;
	memset(&pp->cl[pp->ncl], 0, sizeof(pp->cl[0]));
	pp->cl[pp->ncl].pid = pid;
	pp->cl[pp->ncl].max_connections = -1;
	return &pp->cl[pp->ncl++];
}

/*
 * The port in postmaster.pid, read through the postmaster's working
 * directory, which is its data directory (PostgreSQL changes to it at
 * start): right in another mount namespace too.
 */
static int read_port(__u32 pid)
{
	char path[64], text[1024];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%u/cwd/postmaster.pid", pid);
	n = read_small_file(path, text, sizeof(text));
	return n < 0 ? (int)n : pg_conf_pidfile_port(text, (size_t)n);
}

static void read_cluster(struct pg_cluster *c)
{
	char path[64], cwd[PATH_MAX], argv[8192];
	ssize_t n, len = 0;
	int fd, v;

	v = read_port(c->pid);
	if (v != c->port)
		log_debug("PostgreSQL port", "probe=pg postmaster=%u port=%d", c->pid, v);
	c->port = v > 0 ? v : 0;
	snprintf(path, sizeof(path), "/proc/%u/cwd", c->pid);
	n = readlink(path, cwd, sizeof(cwd) - 1);
	cwd[n > 0 ? n : 0] = 0;
	snprintf(path, sizeof(path), "/proc/%u/cmdline", c->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	while (len < (ssize_t)sizeof(argv) &&
	       (n = read(fd, argv + len, sizeof(argv) - (size_t)len)) > 0)
		len += n;
	close(fd);
	v = pg_conf_max_connections(argv, (size_t)len, cwd, c->datadir, sizeof(c->datadir),
				    &pg_conf_fs);
	if (v >= 0 && v != c->max_connections)
		log_debug("PostgreSQL max_connections", "probe=pg postmaster=%u max_connections=%d",
			  c->pid, v);
	c->max_connections = v;
}

int pg_procs_ports(const struct pg_procs *pp, __u16 *ports, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < pp->ncl; i++) {
		if (!pp->cl[i].live)
			continue;
		if (!pp->cl[i].port)
			return -ENOENT;
		if (n == max)
			return -E2BIG;
		ports[n++] = (__u16)pp->cl[i].port;
	}
	return (int)n;
}

/* Postmasters are the parents of backends and helpers. */
static void update_clusters(struct pg_procs *pp)
{
	for (size_t i = 0; i < pp->ncl; i++) {
		pp->cl[i].live = false;
		pp->cl[i].connections = 0;
	}
	for (size_t i = 0; i < pp->n; i++) {
		struct pg_proc *pr = &pp->v[i], *pm;
		struct pg_cluster *c;

		if (pr->gone || pr->role == ES_ROLE_PG_OTHER)
			continue;
		pm = pg_procs_find(pp, pr->ppid);
		if (!pm || pm->gone || !(c = cluster_of(pp, pm->pid)))
			continue;
		if (c->starttime != pm->starttime) {
			c->starttime = pm->starttime;
			c->next_read_ms = 0;
			c->port = 0;
			c->name[0] = 0;
		}
		c->live = true;
		if (pr->cluster[0])
			snprintf(c->name, sizeof(c->name), "%s", pr->cluster);
		if (pr->role == ES_ROLE_PG_BACKEND)
			c->connections++;
	}
	for (size_t i = 0; i < pp->ncl; i++) {
		struct pg_cluster *c = &pp->cl[i];

		if (c->live && c->next_read_ms <= pp->now_ms) {
			read_cluster(c);
			c->next_read_ms = pp->now_ms + CONF_READ_MS;
		}
	}
}

/* ---------------------------------------------------------------- poller ops */

static int pg_poll_init(struct poller *pl)
{
	struct pg_procs *pp;
	int err = pg_link_available();

	/* Without sock_diag no backend is linked to its client: fatal under
	 * --strict, else said once and the rest (backends, clusters) goes on. */
	if (err && pl->es->cfg.strict)
		return err;
	if (err)
		log_warn(
			"cannot open sock_diag: PostgreSQL backends are not linked to their clients",
			"err=%d", err);
	pp = calloc(1, sizeof(*pp));
	if (!pp)
		return -ENOMEM;
	pp->es = pl->es;
	pl->priv = pp;
	return 0;
}

static void pg_poll_tick(struct poller *pl, uint64_t now_ms)
{
	struct pg_procs *pp = pl->priv;
	struct probe *p = erpscope_probe(pp->es, "pg");

	if (!pp->es->procs)
		return;
	/* The same ms twice would read as "seen this tick". */
	pp->now_ms = now_ms > pp->now_ms ? now_ms : pp->now_ms + 1;
	pp->ncands = 0;
	procs_for_each_slot(pp->es->procs, visit, pp);
	sweep(pp);
	link_clients(pp);
	update_clusters(pp);
	if (p && p->up && p->priv)
		pg_probe_sync(p, pp, pp->now_ms);
}

struct backend_count {
	const char *db, *user, *state;
	unsigned int n;
};

static void pg_poll_collect(struct poller *pl, struct expo *e)
{
	struct pg_procs *pp = pl->priv;
	struct backend_count *bc = calloc(pp->n ? pp->n : 1, sizeof(*bc));
	struct expo_label l[3];
	size_t nbc = 0;

	expo_family(
		e, "erpscope_pg_backends", EXPO_GAUGE,
		"PostgreSQL client backends per database, user and state, from their process titles.");
	for (size_t i = 0; bc && i < pp->n; i++) {
		const struct pg_proc *pr = &pp->v[i];
		size_t k;

		if (pr->gone || pr->role != ES_ROLE_PG_BACKEND)
			continue;
		for (k = 0; k < nbc; k++) {
			if (!strcmp(bc[k].db, pr->db) && !strcmp(bc[k].user, pr->user) &&
			    !strcmp(bc[k].state, pr->state))
				break;
		}
		if (k == nbc)
			bc[nbc++] = (struct backend_count){ pr->db, pr->user, pr->state, 0 };
		bc[k].n++;
	}
	for (size_t k = 0; k < nbc; k++) {
		l[0] = (struct expo_label){ "db", bc[k].db[0] ? bc[k].db : "unknown" };
		l[1] = (struct expo_label){ "user", bc[k].user[0] ? bc[k].user : "unknown" };
		l[2] = (struct expo_label){ "state", bc[k].state };
		expo_sample_u64(e, l, 3, bc[k].n);
	}
	free(bc);
	expo_family(
		e, "erpscope_pg_connections", EXPO_GAUGE,
		"PostgreSQL client backends per cluster (its cluster_name and data directory).");
	for (size_t i = 0; i < pp->ncl; i++) {
		const struct pg_cluster *c = &pp->cl[i];

		if (!c->live)
			continue;
		l[0] = (struct expo_label){ "cluster", c->name };
		l[1] = (struct expo_label){ "data_directory", c->datadir };
		expo_sample_u64(e, l, 2, c->connections);
	}
	expo_family(
		e, "erpscope_pg_max_connections", EXPO_GAUGE,
		"max_connections of each running PostgreSQL cluster, from its configuration files and command line.");
	for (size_t i = 0; i < pp->ncl; i++) {
		const struct pg_cluster *c = &pp->cl[i];

		if (!c->live || c->max_connections < 0)
			continue;
		l[0] = (struct expo_label){ "cluster", c->name };
		l[1] = (struct expo_label){ "data_directory", c->datadir };
		expo_sample_u64(e, l, 2, (uint64_t)c->max_connections);
	}
}

int pg_clusters(struct erpscope *es, pg_cluster_fn fn, void *arg)
{
	struct pg_procs *pp = pg_procs_of(es);

	if (!pp)
		return -ENODEV;
	for (size_t i = 0; i < pp->ncl; i++) {
		const struct pg_cluster *c = &pp->cl[i];

		if (c->live)
			fn(arg, c->name, c->connections, c->max_connections);
	}
	return 0;
}

static void pg_poll_free(struct poller *pl)
{
	struct pg_procs *pp = pl->priv;

	if (!pp)
		return;
	free(pp->v);
	free(pp->cl);
	free(pp->cands);
	free(pp);
	pl->priv = NULL;
}

const struct poller_ops pg_poller_ops = {
	.name = "pg",
	.interval_ms = 100,
	.init = pg_poll_init,
	.tick = pg_poll_tick,
	.collect = pg_poll_collect,
	.free = pg_poll_free,
};
