// SPDX-License-Identifier: GPL-2.0
/*
 * The "pg" probe: PostgreSQL statements, transactions, lock waits,
 * deadlocks and checkpoints from bpf/pg.bpf.c (see user/pg/pg.h for the other
 * files). open loads the programs; attach finds the installed server
 * binaries and attaches to those with USDT probes, and fails (probe down,
 * fatal under --strict) when there is none; binaries that appear later
 * (another version, an upgrade, a copy a cluster runs from) are attached by
 * pg_probe_sync, which the pg poller calls. Ring-buffer events: the text of
 * each new fingerprint (normalised at once, the raw text dropped), slow
 * statements, long lock waits and deadlocks, which go to the event log.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "core/bpfutil.h"
#include "core/clock.h"
#include "core/erpscope.h"
#include "core/events.h"
#include "core/expo.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mapstats.h"
#include "pg/pg.h"
#include "pg.skel.h"
#include "pg/pg_normalize.h"
#include "procs/proctable.h"
#include "core/probe.h"

#define BINS_RESCAN_MS 30000
#define RETIRE_MS 2000

__u32 pg_db_id(struct pg_priv *pp, const char *name)
{
	if (!name || !name[0])
		return ES_PG_DB_UNKNOWN;
	for (unsigned int i = 1; i < pp->ndbs; i++) {
		if (!strcmp(pp->dbnames[i], name))
			return i;
	}
	if (pp->ndbs >= ES_PG_MAX_DBS)
		return ES_PG_DB_UNKNOWN;
	snprintf(pp->dbnames[pp->ndbs], sizeof(pp->dbnames[0]), "%s", name);
	return pp->ndbs++;
}

const char *pg_db_name(const struct pg_priv *pp, __u32 id)
{
	return id && id < pp->ndbs ? pp->dbnames[id] : "unknown";
}

static int pg_open(struct probe *p)
{
	struct erpscope *es = p->es;
	const double *lat, *ckpt;
	unsigned int nlat, nckpt;
	struct pg_priv *pp;
	int err;

	pp = calloc(1, sizeof(*pp));
	if (!pp)
		return -ENOMEM;
	p->priv = pp;
	pp->es = es;
	pp->ndbs = 1; /* id 0 is "unknown" */
	pp->q = pg_queries_new(es->cfg.pg_top_k, es->cfg.pg_window_ms);
	if (!pp->q)
		return -ENOMEM;
	pp->skel = pg_bpf__open();
	if (!pp->skel)
		return -errno;
	pg_queries_edges(&lat, &nlat, &ckpt, &nckpt);
	for (unsigned int i = 0; i < nlat; i++)
		pp->skel->rodata->lat_edges_ns[i] = (__u64)(lat[i] * 1e9 + 0.5);
	pp->skel->rodata->lat_nedges = nlat;
	for (unsigned int i = 0; i < nckpt; i++)
		pp->skel->rodata->ckpt_edges_ns[i] = (__u64)(ckpt[i] * 1e9 + 0.5);
	pp->skel->rodata->ckpt_nedges = nckpt;
	pp->skel->rodata->slow_ns = (__u64)es->cfg.pg_slow_ms * 1000000ull;
	bpf_pick_flavour(pp->skel->obj, es->tp_btf);
	err = bpf_map__set_max_entries(pp->skel->maps.pg_stats, es->cfg.pg_max_fps);
	if (!err)
		err = bpf_map__set_max_entries(pp->skel->maps.pg_fine, es->cfg.pg_max_fps);
	if (err)
		return err;
	err = procs_share_maps(es, pp->skel->obj);
	if (err)
		return err;
	err = pg_bpf__load(pp->skel);
	if (err)
		return err;
	p->obj = pp->skel->obj;
	p->drops_fd = bpf_map__fd(pp->skel->maps.pg_drops);
	p->map_errors_fd = bpf_map__fd(pp->skel->maps.map_errors);
	mapstats_track(es, ES_MAP_PG_STATS, pp->skel->maps.pg_stats);
	mapstats_track(es, ES_MAP_PG_DB_STATS, pp->skel->maps.pg_db_stats);
	mapstats_track(es, ES_MAP_PG_LOCK_HIST, pp->skel->maps.pg_lock_hist);
	mapstats_track(es, ES_MAP_PG_SENDERS, pp->skel->maps.pg_senders);
	mapstats_track(es, ES_MAP_PG_CLIENTS, pp->skel->maps.pg_clients);
	es->pg_clients_fd = bpf_map__fd(pp->skel->maps.pg_clients);
	return 0;
}

/* ---------------------------------------------------------------- events */

static void add_event(struct erpscope *es, const char *type, struct json *j)
{
	int err = json_finish(j);
	int64_t id = err ? err : events_add(es->events, type, j->buf, j->len);

	if (id < 0)
		log_warn("cannot log event", "probe=pg type=%s err=%d", type, (int)id);
}

/* Database, user and client of the backend that sent an event. */
static void who_json(struct pg_priv *pp, struct json *j, __u32 tgid, __u32 dbkey)
{
	struct pg_procs *procs = pg_procs_of(pp->es);
	struct pg_proc *pr = procs ? pg_procs_find(procs, tgid) : NULL;
	char role[24], worker[48];
	bool gone;
	int db = pg_resolve_db(pp, procs, dbkey, &gone);

	json_str(j, "db",
		 db >= 0 ? pg_db_name(pp, (__u32)db) : (pr && pr->db[0] ? pr->db : "unknown"));
	if (pr && pr->user[0])
		json_str(j, "user", pr->user);
	else
		json_null(j, "user");
	json_u64(j, "backend_pid", tgid);
	pg_client_labels(pr ? &pr->client : NULL, role, sizeof(role), worker, sizeof(worker));
	json_object_begin(j, "client");
	json_str(j, "role", role);
	if (worker[0])
		json_str(j, "worker", worker);
	else
		json_null(j, "worker");
	if (pr && pr->client.pid)
		json_u64(j, "pid", pr->client.pid);
	else
		json_null(j, "pid");
	json_object_end(j);
}

static void statement_json(struct pg_priv *pp, struct json *j, __u64 fp)
{
	unsigned int cmd = ES_PG_CMD_OTHER;
	const char *text = fp ? pg_queries_text(pp->q, fp, &cmd) : NULL;
	char fps[20];

	snprintf(fps, sizeof(fps), "%016llx", (unsigned long long)fp);
	if (fp)
		json_str(j, "fingerprint", fps);
	else
		json_null(j, "fingerprint");
	/* Normalised text only; null when it was never captured. */
	if (text)
		json_str(j, "query", text);
	else
		json_null(j, "query");
	json_str(j, "command", pg_cmd_name(cmd));
}

const char *pg_fingerprint_text(struct erpscope *es, __u64 fp)
{
	struct probe *p = erpscope_probe(es, "pg");
	struct pg_priv *pp = p && p->up ? p->priv : NULL;
	unsigned int cmd;

	return pp && fp ? pg_queries_text(pp->q, fp, &cmd) : NULL;
}

static void on_slow(struct pg_priv *pp, const struct es_pg_ev_slow *ev)
{
	struct json j;

	json_init(&j);
	json_object_begin(&j, NULL);
	statement_json(pp, &j, ev->fp);
	json_double(&j, "duration_seconds", (double)ev->dur_ns / 1e9);
	json_double(&j, "lock_wait_seconds", (double)ev->lock_ns / 1e9);
	json_u64(&j, "buffer_misses", ev->misses);
	json_bool(&j, "error", ev->error);
	who_json(pp, &j, ev->h.tgid, ev->db);
	json_object_end(&j);
	add_event(pp->es, "pg_slow_query", &j);
	json_free(&j);
	log_debug("slow statement", "probe=pg fingerprint=%016llx seconds=%.3f backend_pid=%u",
		  (unsigned long long)ev->fp, (double)ev->dur_ns / 1e9, ev->h.tgid);
}

/* "holder": the transaction likely holding what the wait was for (pg_holder.c), or null. */
static void holder_json(struct pg_priv *pp, struct json *j, const struct es_pg_ev_lock *ev,
			const struct pg_holder *h)
{
	if (!h) {
		json_null(j, "holder");
		return;
	}
	json_object_begin(j, "holder");
	who_json(pp, j, h->tgid, ev->db);
	statement_json(pp, j, h->fp);
	json_double(j, "transaction_seconds", h->xact_s);
	json_double(j, "opened_before_wait_seconds", h->before_s);
	json_double(j, "ended_before_wait_end_seconds", h->gap_s);
	json_object_end(j);
}

/*
 * A wait's event. The holder's transaction is noted when its statement ends,
 * just after it released the lock, so the waiter's event can come first: a
 * wait with no holder yet is kept for one more look at the next sync (100
 * ms); last_try is that look.
 */
static void on_lock(struct pg_priv *pp, const struct es_pg_ev_lock *ev, bool last_try)
{
	bool deadlock = ev->h.type == ES_PG_EV_DEADLOCK;
	struct pg_holder h;
	bool holder = !deadlock && pg_holder_find(pp, ev, &h);
	struct json j;

	if (!deadlock && !holder && !last_try && pp->npending_locks < PG_PENDING_LOCKS) {
		pp->pending_locks[pp->npending_locks++] = *ev;
		return;
	}

	json_init(&j);
	json_object_begin(&j, NULL);
	statement_json(pp, &j, ev->fp);
	json_double(&j, deadlock ? "waited_seconds" : "wait_seconds", (double)ev->wait_ns / 1e9);
	json_str(&j, "locktype", pg_lock_type_name(ev->locktype));
	json_str(&j, "mode", pg_lock_mode_name(ev->mode));
	/* The lock tag: database oid, relation oid (or xid), block, offset. */
	json_array_begin(&j, "locktag");
	json_u64(&j, NULL, ev->field1);
	json_u64(&j, NULL, ev->field2);
	json_u64(&j, NULL, ev->field3);
	json_u64(&j, NULL, ev->field4);
	json_array_end(&j);
	who_json(pp, &j, ev->h.tgid, ev->db);
	if (!deadlock)
		holder_json(pp, &j, ev, holder ? &h : NULL);
	json_object_end(&j);
	add_event(pp->es, deadlock ? "pg_deadlock" : "pg_lock_wait", &j);
	json_free(&j);
	if (deadlock) {
		struct trace_ev tev = { .kind = TRACE_EV_INSTANT, .tgid = ev->h.tgid,
					.tid = ev->h.tgid, .ts_ns = clock_ns(), .name = "deadlock" };

		trace_sink_emit(&pp->es->trace, &tev);
	}
	if (deadlock)
		log_info("PostgreSQL deadlock", "probe=pg backend_pid=%u locktype=%s mode=%s",
			 ev->h.tgid, pg_lock_type_name(ev->locktype), pg_lock_mode_name(ev->mode));
}

/*
 * The database of (postmaster, OID), once per database: the kernel keys
 * every later backend of it from its first statement, and no backend needs
 * an entry of its own (hundreds a second where clients connect per request).
 */
static void map_database(struct pg_priv *pp, struct pg_proc *pr, const struct es_pg_ev_hello *ev)
{
	struct es_pg_dbkey k = { .postmaster = ev->postmaster, .oid = ev->db_oid };
	int fd = bpf_map__fd(pp->skel->maps.pg_dbs);
	__u32 id, have;

	if (!ev->db_oid || !ev->postmaster || !pr->db[0])
		return;
	id = pg_db_id(pp, pr->db);
	if (!id)
		return;
	/* One the table mapped per backend keeps that entry until it goes. */
	if (!pr->dbid) {
		pr->dbid = id;
		pr->db_by_key = true;
	}
	if (!bpf_map_lookup_elem(fd, &k, &have) && have == id)
		return;
	if (!bpf_map_update_elem(fd, &k, &id, BPF_ANY))
		__atomic_add_fetch(&pp->skel->bss->backends_gen, 1, __ATOMIC_RELEASE);
}

/* A database key of a cluster whose postmaster has ended. */
static bool postmaster_gone(void *arg, const void *key, const void *value)
{
	const struct es_pg_dbkey *k = key;

	return kill((pid_t)k->postmaster, 0) && errno == ESRCH;
}

void pg_probe_map_backend(struct pg_priv *pp, struct pg_proc *pr)
{
	int fd = bpf_map__fd(pp->skel->maps.pg_backends);
	__u32 id;

	if (pr->gone || !pr->db[0] || pr->dbid)
		return;
	id = pg_db_id(pp, pr->db);
	if (id && !bpf_map_update_elem(fd, &pr->pid, &id, BPF_ANY)) {
		pr->dbid = id;
		/* Backends cache their database id until this moves. */
		__atomic_add_fetch(&pp->skel->bss->backends_gen, 1, __ATOMIC_RELEASE);
	}
}

/* The kernel met a backend the table does not know yet: look at it now. */
static void on_hello(struct pg_priv *pp, const struct es_pg_ev_hello *ev)
{
	struct pg_procs *procs = pg_procs_of(pp->es);
	struct pg_proc *pr;

	if (!procs || ev->len > sizeof(ev->title))
		return;
	/* /proc/<pid>/stat's starttime, without reading it: clock ticks since boot. */
	pr = pg_procs_adopt(procs, ev->h.tgid, ev->title, ev->len,
			    ev->start_boottime_ns / (1000000000ull / (__u64)sysconf(_SC_CLK_TCK)));
	if (!pr)
		return;
	/* Its client comes next (ES_PG_EV_LINK), from the same statement. */
	map_database(pp, pr, ev);
	pg_probe_map_backend(pp, pr);
}

/* The kernel found a backend's client at its first statement. */
static void on_link(struct pg_priv *pp, const struct es_pg_ev_link *ev)
{
	struct pg_procs *procs = pg_procs_of(pp->es);
	struct pg_proc *pr = procs ? pg_procs_find(procs, ev->h.tgid) : NULL;

	if (pr)
		pg_procs_link_kernel(procs, pr, ev);
}

static int on_event(void *ctx, void *data, size_t size)
{
	struct probe *p = ctx;
	struct pg_priv *pp = p->priv;
	const struct es_pg_ev_hdr *h = data;

	if (size < sizeof(*h))
		return 0;
	switch (h->type) {
	case ES_PG_EV_TEXT: {
		const struct es_pg_ev_text *t = data;
		size_t off = __builtin_offsetof(struct es_pg_ev_text, text);

		if (size >= off && t->len <= size - off && t->len < ES_PG_TEXT_MAX)
			pg_queries_add_text(pp, t->fp, t->text, t->len);
		break;
	}
	case ES_PG_EV_SLOW:
		if (size >= sizeof(struct es_pg_ev_slow)) {
			on_slow(pp, data);
			pg_trace_statement(pp, data);
		}
		break;
	case ES_PG_EV_STMT:
		if (size >= sizeof(struct es_pg_ev_slow))
			pg_trace_statement(pp, data);
		break;
	case ES_PG_EV_DEADLOCK:
	case ES_PG_EV_LOCK:
		if (size >= sizeof(struct es_pg_ev_lock)) {
			on_lock(pp, data, false);
			pg_trace_lock(pp, data); /* a slow wait is a trace's too */
		}
		break;
	case ES_PG_EV_LOCK_TRACE:
		if (size >= sizeof(struct es_pg_ev_lock))
			pg_trace_lock(pp, data);
		break;
	case ES_PG_EV_HELLO:
		if (size >= sizeof(struct es_pg_ev_hello))
			on_hello(pp, data);
		break;
	case ES_PG_EV_LINK:
		if (size >= sizeof(struct es_pg_ev_link))
			on_link(pp, data);
		break;
	}
	return 0;
}

/* ---------------------------------------------------------------- attach, sync */

static __s64 ts_ns(const struct timespec *t)
{
	return (__s64)t->tv_sec * 1000000000 + t->tv_nsec;
}

/*
 * CLOCK_REALTIME - CLOCK_MONOTONIC for the kernel, which turns PostgreSQL's
 * wall-clock statement stamps into its own clock (see pg_clock.h): the
 * monotonic reading is bracketed by two wall-clock ones and the midpoint
 * taken, so the offset is off by at most half the gap (~100 ns). A gap
 * wider than a step's tolerance (preempted, or a step in between) is read
 * again, so that it is never taken for a step.
 */
static void realtime_off_update(struct pg_priv *pp)
{
	struct es_pg_clock *k = &pp->skel->bss->realtime_clock;
	struct timespec r0, m, r1;
	__s64 gap;

	for (int tries = 0; tries < 3; tries++) {
		if (clock_gettime(CLOCK_REALTIME, &r0) || clock_gettime(CLOCK_MONOTONIC, &m) ||
		    clock_gettime(CLOCK_REALTIME, &r1))
			return;
		gap = ts_ns(&r1) - ts_ns(&r0);
		if (gap >= 0 && gap < ES_PG_CLOCK_STEP_NS / 2)
			break;
	}
	if (gap < 0 || gap >= ES_PG_CLOCK_STEP_NS / 2)
		return; /* the next refresh, 100 ms on */
	if (es_pg_clock_update(&pp->clock, (ts_ns(&r0) + ts_ns(&r1)) / 2 - ts_ns(&m),
			       (__u64)ts_ns(&m))) {
		pp->clock_steps++;
		log_info("wall-clock step: statements that started before it are not timed",
			 "step_ms=%.3f", (double)(pp->clock.off_ns - pp->clock.prev_off_ns) / 1e6);
		/* The step first: a stamp read in between is refused, not misread. */
		__atomic_store_n(&k->step_ns, pp->clock.step_ns, __ATOMIC_RELAXED);
		__atomic_store_n(&k->prev_off_ns, pp->clock.prev_off_ns, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&k->off_ns, pp->clock.off_ns, __ATOMIC_RELEASE);
}

static int attach_conn_state(struct pg_priv *pp)
{
	struct bpf_program *prog = pp->es->tp_btf ? pp->skel->progs.es_pg_conn_state :
						    pp->skel->progs.es_pg_conn_state_r;
	struct bpf_link *l = bpf_program__attach(prog);

	if (!l) {
		int err = -errno;

		log_warn("cannot attach to inet_sock_set_state", "probe=pg program=%s err=%s",
			 bpf_program__name(prog), strerror(-err));
		return err;
	}
	if (pp->es->tp_btf)
		pp->skel->links.es_pg_conn_state = l;
	else
		pp->skel->links.es_pg_conn_state_r = l;
	return 0;
}

static int pg_attach(struct probe *p)
{
	struct pg_priv *pp = p->priv;
	int err;

	realtime_off_update(pp);
	/* Connects are watched first: backends link to clients seen from now on. */
	err = attach_conn_state(pp);
	if (err)
		return err;
	pg_bins_scan_installed(pp);
	if (!pp->nattached) {
		log_warn(pp->nbins ?
				 "no PostgreSQL binary with USDT probes: statements are not seen" :
				 "no PostgreSQL server binary found at the usual install paths",
			 "probe=pg binaries=%zu", pp->nbins);
		return -ENOENT;
	}
	p->rb = ring_buffer__new(bpf_map__fd(pp->skel->maps.pg_events), on_event, p, NULL);
	if (!p->rb)
		return -errno;
	pp->rb = p->rb;
	/* Statements are still seen without it: no pg_backend pool then. */
	pg_busy_attach(pp);
	return pg_trace_start(pp);
}

/*
 * A backend linked to a worker through the sockets (its client connected
 * before erpscope started): the kernel charges its statements to that
 * worker from now on (bpf/pg_client.h). Returns true when the map changed.
 */
static bool map_client(struct pg_priv *pp, struct pg_proc *pr)
{
	int fd = bpf_map__fd(pp->skel->maps.pg_backend_clients);
	bool want = !pr->gone && pr->client.kind == PG_LINK_WORKER && pr->client.pid;

	if (want == pr->client_mapped)
		return false;
	if (want && bpf_map_update_elem(fd, &pr->pid, &pr->client.pid, BPF_ANY))
		return false;
	if (!want)
		bpf_map_delete_elem(fd, &pr->pid);
	pr->client_mapped = want;
	return want;
}

void pg_probe_sync(struct probe *p, struct pg_procs *procs, uint64_t now_ms)
{
	struct pg_priv *pp = p->priv;
	int fd = bpf_map__fd(pp->skel->maps.pg_backends);
	bool newly_gone = false, changed = false;

	for (unsigned int i = 0; i < pp->npending_locks; i++)
		on_lock(pp, &pp->pending_locks[i], true);
	pp->npending_locks = 0;

	for (size_t i = 0; i < pg_procs_count(procs); i++) {
		struct pg_proc *pr = pg_procs_at(procs, i);

		if (!pr->gone && !pr->exe_seen) {
			pg_bins_check_pid(pp, pr->pid, &pr->exe_dev, &pr->exe_ino, &pr->exe_known);
			pr->exe_seen = true;
		}
		if (pr->role != ES_ROLE_PG_BACKEND)
			continue;
		changed |= map_client(pp, pr);
		if (!pr->gone && pr->db[0] && !pr->dbid) {
			pg_probe_map_backend(pp, pr);
		} else if (pr->gone && pr->dbid) {
			if (!pr->db_by_key) {
				bpf_map_delete_elem(fd, &pr->pid);
				changed = true;
			}
			pr->dbid = 0;
		}
		newly_gone |= pr->gone && !pr->retired;
	}
	/* Backends cache their database id until this moves. */
	if (changed)
		__atomic_add_fetch(&pp->skel->bss->backends_gen, 1, __ATOMIC_RELEASE);
	/*
	 * Series keyed by backends that are gone move to user space: soon
	 * after one goes, and now and then for backends never tracked.
	 */
	if ((newly_gone && now_ms >= pp->last_retire_ms + RETIRE_MS) ||
	    now_ms >= pp->last_retire_ms + 30 * RETIRE_MS) {
		pg_queries_retire(pp, procs);
		pp->last_retire_ms = now_ms;
		for (size_t i = 0; i < pg_procs_count(procs); i++) {
			struct pg_proc *pr = pg_procs_at(procs, i);

			pr->retired |= pr->gone;
		}
	}
	if (now_ms >= pp->last_bins_scan_ms + BINS_RESCAN_MS) {
		bpf_hash_delete_if(bpf_map__fd(pp->skel->maps.pg_dbs), sizeof(struct es_pg_dbkey),
				   sizeof(__u32), false, postmaster_gone, NULL);
		pg_bins_scan_installed(pp);
		pp->last_bins_scan_ms = now_ms;
	}
	realtime_off_update(pp);
	pg_pms_check(pp);
	pg_ports_sync(pp, procs);
	/* The quantile windows move on without scrapes too. */
	if (now_ms >= pp->last_refresh_ms + pg_queries_window_slot_ms(pp))
		pg_queries_refresh(pp, now_ms, false);
}

static int pg_collect(struct probe *p, struct expo *e)
{
	struct pg_priv *pp = p->priv;
	int err;

	err = pg_busy_read(pp);
	if (err)
		log_warn("cannot read the backends' busy time", "probe=pg err=%d", err);
	pg_queries_refresh(pp, clock_ms(), false);
	pg_queries_collect(pp, e);
	pg_bins_collect(pp, e);
	return 0;
}

static void pg_close(struct probe *p)
{
	struct pg_priv *pp = p->priv;

	if (!pp)
		return;
	if (pp->skel)
		pg_trace_stop(pp);
	ring_buffer__free(p->rb);
	p->rb = NULL;
	pg_bins_free(pp);
	if (pp->skel && p->es->pg_clients_fd == bpf_map__fd(pp->skel->maps.pg_clients))
		p->es->pg_clients_fd = -1;
	pg_busy_free(pp);
	pg_bpf__destroy(pp->skel);
	pg_queries_free(pp->q);
	free(pp);
	p->priv = NULL;
	p->obj = NULL;
}

const struct probe_ops pg_probe_ops = {
	.name = "pg",
	.open = pg_open,
	.attach = pg_attach,
	.collect = pg_collect,
	.close = pg_close,
};
