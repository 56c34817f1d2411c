// SPDX-License-Identifier: GPL-2.0
/*
 * The "tcp" probe (bpf/tcp.bpf.c): listen queue wait, pool occupancy of
 * HTTP workers (the source of role odoo_http for user/procs/pools.c),
 * outbound connect latency, failures, retransmits, resets, RTT and duration
 * per role and destination, and each failed connect as an event at
 * GET /events. Remote labels are bounded per role by user/tcp/tcp_remote.c;
 * the uprobes on pool workers are kept by user/tcp/tcp_pool_attach.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>

#include "tcp.skel.h"
#include "core/bpfutil.h"
#include "core/clock.h"
#include "core/erpscope.h"
#include "core/events.h"
#include "core/expo.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mapstats.h"
#include "core/probe.h"
#include "procs/pools.h"
#include "procs/proctable.h"
#include "tcp/tcp.h"
#include "tcp/tcp_pool_attach.h"

/* Seconds. Listen queue wait: 100 us to 10 s. */
static const double wait_edges[] = { 100e-6, 1e-3, 5e-3, 10e-3, 25e-3, 50e-3, 0.1, 0.25,
				     0.5,    0.75, 1.0,  1.5,   2.0,   2.5,   5.0, 10.0 };
/* Connect latency (SYN sent to established): 50 us to 10 s. */
static const double lat_edges[] = { 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3,
				    5e-3,  10e-3,  25e-3,  50e-3,  0.1,  0.25,
				    0.5,   1.0,    2.5,    5.0,    10.0 };
/* Smoothed RTT at close: 10 us to 1 s. */
static const double rtt_edges[] = { 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3,
				    5e-3,  10e-3, 25e-3, 50e-3,  0.1,    0.25,   0.5,  1.0 };
/* Connection duration (established to close): 1 ms to 1 h. */
static const double dur_edges[] = { 1e-3, 10e-3, 0.1,  0.5,   1.0,   2.5,    5.0,   10.0,
				    30.0, 60.0,  120., 300.0, 600.0, 1800.0, 3600.0 };
#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Destinations per role the kernel keys on their own: labels and candidates. */
#define POOL_FACTOR 2

static const char *const fail_names[ES_TCP_FAIL_COUNT] = {
	[ES_TCP_FAIL_REFUSED] = "refused", [ES_TCP_FAIL_TIMEOUT] = "timeout",
	[ES_TCP_FAIL_UNREACHABLE] = "unreachable", [ES_TCP_FAIL_RESET] = "reset",
	[ES_TCP_FAIL_OTHER] = "other",
};

#define ST_IDLE 1
#define ST_BUSY 2

/* Open-addressed set of tids, twice the threads map (bpf/tcp.bpf.c). */
#define TIDS_SET 8192

struct tcp_priv {
	struct tcp_bpf *skel;
	struct erpscope *es;
	int ncpus;
	unsigned int nslots;
	struct tcp_remotes *remotes;
	struct es_tcp_remote_key *cold; /* one collect: keys to evict, as many as remotes holds */
	uint64_t *admitted; /* the remote_admitted array, mapped: per role */
	size_t admitted_len;
	struct tcp_pool_attach *pool; /* uprobes on pool workers, from attach on */
	bool pooled; /* the pools source of role odoo_http */
	bool traced; /* its trace gate registered */
	__u64 *percpu;     /* ncpus: lookup buffer */
	uint8_t *state;    /* per slot, one collect: ST_IDLE / ST_BUSY threads seen */
	uint64_t *closed_ns; /* per slot, one collect: busy_ns, read before the walk */
	uint64_t *open_ns; /* per slot, one collect: busy intervals still open */
	__u32 *tids;       /* one collect: threads counted (an LRU eviction restarts the walk) */
	/* For the map walk callbacks, during one collect. */
	struct expo *e;
	uint64_t now_ns;
	bool moved; /* collect_pool(): a worker's closed busy time moved under it */
	uint64_t now_ms;
};

static enum es_role role_of(__u32 role)
{
	return role < ES_ROLE_COUNT ? (enum es_role)role : ES_ROLE_OTHER;
}

static void put_edges(__u64 *dst, __u32 *n, const double *edges, size_t count)
{
	for (size_t i = 0; i < count && i < ES_TCP_MAX_EDGES; i++)
		dst[i] = (__u64)(edges[i] * 1e9 + 0.5);
	*n = count < ES_TCP_MAX_EDGES ? (__u32)count : ES_TCP_MAX_EDGES;
}

/* ---------------------------------------------------------------- events */

static int on_event(void *ctx, void *data, size_t len)
{
	struct probe *p = ctx;
	struct erpscope *es = p->es;
	const struct es_tcp_event *ev = data;
	enum es_role role;
	const char *ename;
	struct slot_view sv;
	char remote[64], q[40];
	struct json j;
	int64_t id;
	int err;

	if (len < sizeof(*ev))
		return 0;
	tcp_trace_connect(es, ev, ev->connected ? "established" :
			  ev->reason < ES_TCP_FAIL_COUNT ? fail_names[ev->reason] : "other");
	if (ev->connected || !es->events)
		return 0;
	role = role_of(ev->remote.role);
	tcp_format_remote(&ev->remote, remote, sizeof(remote));
	json_init(&j);
	json_object_begin(&j, NULL);
	json_u64(&j, "pid", ev->tgid);
	json_strn(&j, "comm", ev->comm, strnlen(ev->comm, sizeof(ev->comm)));
	json_str(&j, "role", role_name(role));
	if (!procs_slot_view(es->procs, ev->slot, &sv) && (!sv.w || sv.w->pid == ev->tgid) &&
	    role != ES_ROLE_OTHER)
		json_str(&j, "worker", sv.worker);
	else
		json_null(&j, "worker");
	json_str(&j, "remote", remote);
	json_str(&j, "reason",
		 ev->reason < ES_TCP_FAIL_COUNT ? fail_names[ev->reason] : "other");
	json_i64(&j, "errno", ev->err);
	ename = ev->err > 0 ? strerrorname_np(ev->err) : NULL;
	if (ename)
		json_str(&j, "error", ename);
	else
		json_null(&j, "error");
	json_double(&j, "waited_seconds", (double)ev->waited_ns / 1e9);
	json_object_end(&j);
	err = json_finish(&j);
	id = err ? err : events_add(es->events, "tcp_connect_failed", j.buf, j.len);
	if (id < 0)
		log_warn("cannot log event", "type=tcp_connect_failed err=%d", (int)id);
	json_free(&j);
	log_debug("connect failed", "pid=%u comm=%s role=%s remote=%s reason=%s waited_ms=%llu",
		  ev->tgid, log_quote(q, sizeof(q), ev->comm), role_name(role), remote,
		  ev->reason < ES_TCP_FAIL_COUNT ? fail_names[ev->reason] : "other",
		  (unsigned long long)(ev->waited_ns / 1000000));
	return 0;
}

/* ---------------------------------------------------------------- slots */

static bool thread_in_slot(void *arg, const void *key, const void *value)
{
	return ((const struct es_tcp_thread *)value)->slot == *(const __u32 *)arg;
}

static void reset_slot(void *arg, __u32 slot)
{
	struct tcp_priv *tp = arg;

	memset(tp->percpu, 0, sizeof(*tp->percpu) * (size_t)tp->ncpus);
	if (bpf_map_update_elem(bpf_map__fd(tp->skel->maps.busy_ns), &slot, tp->percpu, BPF_ANY))
		log_warn("cannot reset slot", "probe=tcp slot=%u err=%d", slot, -errno);
	bpf_hash_delete_if(bpf_map__fd(tp->skel->maps.threads), sizeof(__u32),
			   sizeof(struct es_tcp_thread), false, thread_in_slot, &slot);
}

/* ---------------------------------------------------------------- open, attach */

/* Every role's "other" destination exists before attach: the kernel never has to create it. */
static int create_other_keys(struct tcp_priv *tp)
{
	int fd = bpf_map__fd(tp->skel->maps.remotes);
	struct es_tcp_remote zero;

	memset(&zero, 0, sizeof(zero));
	for (__u32 r = 0; r < ES_ROLE_COUNT; r++) {
		struct es_tcp_remote_key k;

		memset(&k, 0, sizeof(k));
		k.role = r;
		if (bpf_map_update_elem(fd, &k, &zero, BPF_NOEXIST) && errno != EEXIST)
			return -errno;
	}
	return 0;
}

/* The kernel's count of keys per role, mapped so it can be taken off atomically. */
static int map_admitted(struct tcp_priv *tp)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t len = ES_ROLE_COUNT * sizeof(*tp->admitted);
	void *m;

	if (page <= 0)
		return -EINVAL;
	len = (len + (size_t)page - 1) / (size_t)page * (size_t)page;
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
		 bpf_map__fd(tp->skel->maps.remote_admitted), 0);
	if (m == MAP_FAILED)
		return -errno;
	tp->admitted = m;
	tp->admitted_len = len;
	return 0;
}

static int tcp_open(struct probe *p)
{
	struct erpscope *es = p->es;
	struct tcp_priv *tp;
	unsigned int pool, nremotes;
	int err;

	tp = calloc(1, sizeof(*tp));
	if (!tp)
		return -ENOMEM;
	p->priv = tp;
	tp->es = es;
	tp->ncpus = bpf_ncpus();
	tp->nslots = procs_nslots(es->procs);
	if (tp->ncpus <= 0)
		return tp->ncpus ? tp->ncpus : -EINVAL;
	tp->percpu = calloc((size_t)tp->ncpus, sizeof(*tp->percpu));
	tp->state = calloc(tp->nslots, sizeof(*tp->state));
	tp->open_ns = calloc(tp->nslots, sizeof(*tp->open_ns));
	tp->closed_ns = calloc(tp->nslots, sizeof(*tp->closed_ns));
	tp->tids = calloc(TIDS_SET, sizeof(*tp->tids));
	if (!tp->percpu || !tp->state || !tp->open_ns || !tp->closed_ns || !tp->tids)
		return -ENOMEM;

	tp->skel = tcp_bpf__open();
	if (!tp->skel)
		return -errno;
	put_edges(tp->skel->rodata->wait_edges_ns, &tp->skel->rodata->wait_nedges, wait_edges,
		  N(wait_edges));
	put_edges(tp->skel->rodata->lat_edges_ns, &tp->skel->rodata->lat_nedges, lat_edges,
		  N(lat_edges));
	put_edges(tp->skel->rodata->rtt_edges_ns, &tp->skel->rodata->rtt_nedges, rtt_edges,
		  N(rtt_edges));
	put_edges(tp->skel->rodata->dur_edges_ns, &tp->skel->rodata->dur_nedges, dur_edges,
		  N(dur_edges));
	pool = POOL_FACTOR * es->cfg.tcp_max_remotes;
	/* Per role: its pool, its other, and room for two CPUs counting one key twice. */
	nremotes = ES_ROLE_COUNT * (pool + 2);
	tp->skel->rodata->remote_pool = pool;
	tp->skel->rodata->pool_roles = 1u << ES_ROLE_ODOO_HTTP;
	bpf_pick_flavour(tp->skel->obj, es->tp_btf);
	bpf_map__set_max_entries(tp->skel->maps.remotes, nremotes);
	bpf_map__set_max_entries(tp->skel->maps.busy_ns, tp->nslots);
	/* Without uprobe sessions the rest of the probe still works. */
	err = tcp_pool_attach_prepare(tp->skel->progs.es_tcp_wait);
	if (err && err != -EOPNOTSUPP)
		return err;
	err = procs_share_maps(es, tp->skel->obj);
	if (err)
		return err;
	err = tcp_bpf__load(tp->skel);
	if (err)
		return err;
	err = create_other_keys(tp);
	if (!err)
		err = map_admitted(tp);
	if (err)
		return err;
	tp->remotes = tcp_remotes_new(es->cfg.tcp_max_remotes, pool, nremotes, es->cfg.tcp_idle_ms);
	tp->cold = calloc(nremotes, sizeof(*tp->cold));
	if (!tp->remotes || !tp->cold)
		return -ENOMEM;
	p->obj = tp->skel->obj;
	p->drops_fd = bpf_map__fd(tp->skel->maps.tcp_drops);
	p->map_errors_fd = bpf_map__fd(tp->skel->maps.map_errors);
	mapstats_track(es, ES_MAP_TCP_REMOTES, tp->skel->maps.remotes);
	mapstats_track(es, ES_MAP_LISTEN_WAIT, tp->skel->maps.listen_wait);
	p->rb = ring_buffer__new(bpf_map__fd(tp->skel->maps.tcp_events), on_event, p, NULL);
	if (!p->rb)
		return -errno;
	log_debug("tcp probe loaded",
		  "flavour=%s max_remotes=%u kernel_pool=%u remote_idle_ms=%u slots=%u",
		  es->tp_btf ? "tp_btf" : "raw_tp", es->cfg.tcp_max_remotes, pool,
		  es->cfg.tcp_idle_ms, tp->nslots);
	return procs_on_slot_reset(es->procs, reset_slot, tp);
}

static bool http_worker(void *arg, const struct slot_view *sv, enum pool_state *state,
			uint64_t *busy_ns);

/* The tracepoints here; the uprobes per worker, by the tcp_pool poller. */
static int tcp_attach(struct probe *p)
{
	struct tcp_priv *tp = p->priv;
	struct tcp_bpf *s = tp->skel;
	int err;

	err = tcp_bpf__attach(s);
	if (!err)
		err = tcp_trace_start(tp->es, s);
	if (err)
		return err;
	tp->traced = true;
	/* Without uprobe sessions every HTTP worker's state stays unknown. */
	err = pools_add(tp->es->pools, ES_ROLE_ODOO_HTTP, http_worker, tp);
	if (err)
		return err;
	tp->pooled = true;
	if (bpf_program__fd(s->progs.es_tcp_wait) < 0)
		return 0;
	tp->pool = tcp_pool_attach_new(s->progs.es_tcp_wait, s->rodata->pool_roles,
				       bpf_map__fd(s->maps.threads), tp->nslots);
	return tp->pool ? 0 : -ENOMEM;
}

struct tcp_pool_attach *tcp_probe_pool(struct erpscope *es)
{
	struct probe *p = erpscope_probe(es, "tcp");
	struct tcp_priv *tp = p && p->up ? p->priv : NULL;

	return tp ? tp->pool : NULL;
}

/* ---------------------------------------------------------------- collect: listen wait */

static void wait_sample(void *arg, const void *key, const void *values, int n, size_t stride)
{
	const struct es_tcp_wait_key *k = key;
	struct tcp_priv *tp = arg;
	uint64_t counts[N(wait_edges) + 1] = { 0 }, sum = 0;
	struct expo_label l[2];
	char port[8];

	for (int c = 0; c < n; c++) {
		const struct es_tcp_hist *h =
			(const void *)((const char *)values + (size_t)c * stride);

		for (unsigned int b = 0; b <= N(wait_edges); b++)
			counts[b] += h->buckets[b];
		sum += h->sum_ns;
	}
	snprintf(port, sizeof(port), "%u", k->port);
	l[0] = (struct expo_label){ "role", role_name(role_of(k->role)) };
	l[1] = (struct expo_label){ "port", port };
	expo_histogram(tp->e, l, 2, wait_edges, counts, N(wait_edges), (double)sum / 1e9);
}

/* ---------------------------------------------------------------- collect: destinations */

static void remote_feed(void *arg, const void *key, const void *values, int n, size_t stride)
{
	struct tcp_priv *tp = arg;

	tcp_remotes_feed(tp->remotes, key, values, tp->now_ms);
}

static void remote_hist(struct expo *e, const struct expo_label *l, const double *edges,
			size_t nedges, const __u64 *buckets, __u64 sum_ns)
{
	uint64_t counts[ES_TCP_MAX_EDGES + 1];

	for (size_t b = 0; b <= nedges; b++)
		counts[b] = buckets[b];
	expo_histogram(e, l, 2, edges, counts, nedges, (double)sum_ns / 1e9);
}

static void row_labels(struct expo_label *l, const struct tcp_remote_row *row)
{
	l[0] = (struct expo_label){ "role", role_name(role_of(row->key.role)) };
	l[1] = (struct expo_label){ "remote", row->label };
}

/* One of a role's keys left the kernel's table: room for another (never below 0). */
static void release_key(uint64_t *n)
{
	uint64_t v = __atomic_load_n(n, __ATOMIC_RELAXED);

	while (v && !__atomic_compare_exchange_n(n, &v, v - 1, false, __ATOMIC_RELAXED,
						 __ATOMIC_RELAXED))
		;
}

/*
 * Deletes the kernel entries of cold destinations. Each value is taken as it
 * was deleted: what was counted since the walk moves to other with the rest.
 * Returns how many went.
 */
static int evict_cold(struct tcp_priv *tp)
{
	int fd = bpf_map__fd(tp->skel->maps.remotes);
	unsigned int n = tcp_remotes_cold(tp->remotes, tp->now_ms, tp->cold);
	struct es_tcp_remote v;
	char remote[64];
	int gone = 0;

	for (unsigned int i = 0; i < n; i++) {
		const struct es_tcp_remote_key *k = &tp->cold[i];

		if (bpf_map_lookup_and_delete_elem(fd, k, &v)) {
			tcp_format_remote(k, remote, sizeof(remote));
			log_warn("cannot evict destination", "probe=tcp role=%s remote=%s err=%d",
				 role_name(role_of(k->role)), remote, -errno);
			continue;
		}
		tcp_remotes_evicted(tp->remotes, k, &v);
		release_key(&tp->admitted[k->role]);
		gone++;
	}
	if (gone)
		log_debug("evicted cold destinations", "probe=tcp count=%d", gone);
	return gone;
}

static void collect_pools(struct tcp_priv *tp, struct expo *e)
{
	struct expo_label l[1];
	unsigned int entries;
	uint64_t evicted;
	bool seen;

	expo_family(e, "erpscope_tcp_remote_destinations", EXPO_GAUGE,
		    "Destinations the kernel keeps counts of their own for, per role: up to twice --tcp.max-remotes, past which new ones count under remote=\"other\" until cold ones are evicted.");
	for (uint32_t r = 0; r < ES_ROLE_COUNT; r++) {
		tcp_remotes_role(tp->remotes, r, &seen, &entries, &evicted);
		l[0] = (struct expo_label){ "role", role_name(role_of(r)) };
		if (seen)
			expo_sample_u64(e, l, 1, entries);
	}
	expo_family(e, "erpscope_tcp_remote_evictions_total", EXPO_COUNTER,
		    "Destinations idle for --tcp.remote-idle-timeout whose kernel entries were deleted to make room for new ones; what they counted moved to remote=\"other\".");
	for (uint32_t r = 0; r < ES_ROLE_COUNT; r++) {
		tcp_remotes_role(tp->remotes, r, &seen, &entries, &evicted);
		l[0] = (struct expo_label){ "role", role_name(role_of(r)) };
		if (seen)
			expo_sample_u64(e, l, 1, evicted);
	}
}

static void collect_remotes(struct tcp_priv *tp, struct expo *e)
{
	unsigned int nrows;
	int n;
	struct expo_label l[3];

	tcp_remotes_begin(tp->remotes);
	n = bpf_hash_foreach(bpf_map__fd(tp->skel->maps.remotes), sizeof(struct es_tcp_remote_key),
			     sizeof(struct es_tcp_remote), false, remote_feed, tp);
	/* After a failed walk the counts are partial: evict at the next one. */
	if (n >= 0)
		n -= evict_cold(tp);
	mapstats_count(tp->es, ES_MAP_TCP_REMOTES, n);
	nrows = tcp_remotes_end(tp->remotes, tp->now_ms);

	expo_family(e, "erpscope_tcp_connect_latency_seconds", EXPO_HISTOGRAM,
		    "Outbound TCP connects from SYN sent to established, per role of the connecting process and destination.");
	for (unsigned int i = 0; i < nrows; i++) {
		const struct tcp_remote_row *row = tcp_remotes_row(tp->remotes, i);

		row_labels(l, row);
		remote_hist(e, l, lat_edges, N(lat_edges), row->v.lat, row->v.lat_sum_ns);
	}
	expo_family(e, "erpscope_tcp_connect_failures_total", EXPO_COUNTER,
		    "Outbound TCP connects that failed: refused (RST), timeout (the kernel gave up, or the application closed the socket first), unreachable (ICMP), reset, other.");
	for (unsigned int i = 0; i < nrows; i++) {
		const struct tcp_remote_row *row = tcp_remotes_row(tp->remotes, i);

		row_labels(l, row);
		for (int r = 0; r < ES_TCP_FAIL_COUNT; r++) {
			l[2] = (struct expo_label){ "reason", fail_names[r] };
			expo_sample_u64(e, l, 3, row->v.failures[r]);
		}
	}
	expo_family(e, "erpscope_tcp_retransmits_total", EXPO_COUNTER,
		    "Segments retransmitted on outbound connections (SYNs included).");
	for (unsigned int i = 0; i < nrows; i++) {
		const struct tcp_remote_row *row = tcp_remotes_row(tp->remotes, i);

		row_labels(l, row);
		expo_sample_u64(e, l, 2, row->v.retransmits);
	}
	expo_family(e, "erpscope_tcp_resets_total", EXPO_COUNTER,
		    "Resets sent or received on established outbound connections (a reset answering a SYN is a refused connect).");
	for (unsigned int i = 0; i < nrows; i++) {
		const struct tcp_remote_row *row = tcp_remotes_row(tp->remotes, i);

		row_labels(l, row);
		l[2] = (struct expo_label){ "direction", "sent" };
		expo_sample_u64(e, l, 3, row->v.resets[ES_TCP_RST_SENT]);
		l[2] = (struct expo_label){ "direction", "received" };
		expo_sample_u64(e, l, 3, row->v.resets[ES_TCP_RST_RECEIVED]);
	}
	expo_family(e, "erpscope_tcp_rtt_seconds", EXPO_HISTOGRAM,
		    "Smoothed round-trip time of outbound connections, sampled once per connection when it closes.");
	for (unsigned int i = 0; i < nrows; i++) {
		const struct tcp_remote_row *row = tcp_remotes_row(tp->remotes, i);

		row_labels(l, row);
		remote_hist(e, l, rtt_edges, N(rtt_edges), row->v.rtt, row->v.rtt_sum_ns);
	}
	expo_family(e, "erpscope_tcp_connection_duration_seconds", EXPO_HISTOGRAM,
		    "Outbound connections from established to closed.");
	for (unsigned int i = 0; i < nrows; i++) {
		const struct tcp_remote_row *row = tcp_remotes_row(tp->remotes, i);

		row_labels(l, row);
		remote_hist(e, l, dur_edges, N(dur_edges), row->v.dur, row->v.dur_sum_ns);
	}
	collect_pools(tp, e);
}

/* ---------------------------------------------------------------- collect: pool occupancy */

/* The live worker a thread entry belongs to, or NULL. */
static const struct worker *thread_worker(struct tcp_priv *tp, const struct es_tcp_thread *t)
{
	struct slot_view sv;

	if (t->slot >= tp->nslots || procs_slot_view(tp->es->procs, t->slot, &sv))
		return NULL;
	if (!sv.w || sv.w->pid != t->tgid)
		return NULL;
	return sv.w;
}

/* False when tid was counted already in this walk. */
static bool first_visit(struct tcp_priv *tp, __u32 tid)
{
	for (unsigned int i = 0, h = tid * 2654435761u; i < TIDS_SET; i++, h++) {
		__u32 *e = &tp->tids[h % TIDS_SET];

		if (*e == tid)
			return false;
		if (!*e) {
			*e = tid;
			return true;
		}
	}
	return false;
}

static void thread_sample(void *arg, const void *key, const void *values, int n, size_t stride)
{
	const struct es_tcp_thread *t = values;
	struct tcp_priv *tp = arg;

	if (!thread_worker(tp, t) || !first_visit(tp, *(const __u32 *)key))
		return;
	if (t->state == ES_TCP_T_IDLE) {
		tp->state[t->slot] |= ST_IDLE;
	} else if (t->state == ES_TCP_T_BUSY) {
		tp->state[t->slot] |= ST_BUSY;
		if (tp->now_ns > t->since_ns)
			tp->open_ns[t->slot] += tp->now_ns - t->since_ns;
	}
}

/* The pools source of role odoo_http: what collect_pool() read for the slot. */
static bool http_worker(void *arg, const struct slot_view *sv, enum pool_state *state,
			uint64_t *busy_ns)
{
	struct tcp_priv *tp = arg;

	if (sv->slot >= tp->nslots)
		return false;
	/* Idle when one of its threads waits for a connection; unknown when none was seen. */
	*state = tp->state[sv->slot] & ST_IDLE ? POOL_IDLE :
		 tp->state[sv->slot] & ST_BUSY ? POOL_BUSY : POOL_UNKNOWN;
	*busy_ns = tp->closed_ns[sv->slot] + tp->open_ns[sv->slot];
	return *busy_ns || tp->state[sv->slot];
}

/* A slot's closed busy time (the BPF side's per-CPU sum); 0 when unreadable. */
static uint64_t closed_busy(struct tcp_priv *tp, __u32 slot)
{
	uint64_t ns = 0;

	if (bpf_map_lookup_elem(bpf_map__fd(tp->skel->maps.busy_ns), &slot, tp->percpu))
		return 0;
	for (int c = 0; c < tp->ncpus; c++)
		ns += tp->percpu[c];
	return ns;
}

/* Closed busy time of HTTP workers, read before the walk adds open intervals. */
static void read_busy(void *arg, const struct slot_view *sv)
{
	struct tcp_priv *tp = arg;

	if (sv->slot >= tp->nslots)
		return;
	tp->closed_ns[sv->slot] = sv->role == ES_ROLE_ODOO_HTTP ? closed_busy(tp, sv->slot) : 0;
}

/*
 * A request that ended between read_busy() and the walk is in neither
 * (core/bpfutil.h, ES_REREAD_*). The overflow slot always moves and is not
 * checked.
 */
static void busy_moved(void *arg, const struct slot_view *sv)
{
	struct tcp_priv *tp = arg;

	if (tp->moved || !sv->w || sv->slot >= tp->nslots || sv->role != ES_ROLE_ODOO_HTTP)
		return;
	tp->moved = closed_busy(tp, sv->slot) > tp->closed_ns[sv->slot] + ES_REREAD_SLACK_NS;
}

/*
 * Per slot, for http_worker(): closed busy time, open intervals, thread
 * states. Closed time first, so a thread going idle between the reads is
 * not counted twice; again while one did and its request was long.
 */
static void collect_pool(struct tcp_priv *tp)
{
	int tries = 0;

	do {
		memset(tp->state, 0, tp->nslots);
		memset(tp->open_ns, 0, sizeof(*tp->open_ns) * tp->nslots);
		memset(tp->tids, 0, sizeof(*tp->tids) * TIDS_SET);
		tp->now_ns = clock_ns();
		procs_for_each_slot(tp->es->procs, read_busy, tp);
		bpf_hash_foreach(bpf_map__fd(tp->skel->maps.threads), sizeof(__u32),
				 sizeof(struct es_tcp_thread), false, thread_sample, tp);
		tp->moved = false;
		if (++tries < ES_REREAD_TRIES)
			procs_for_each_slot(tp->es->procs, busy_moved, tp);
	} while (tp->moved);
}

struct pool_sum {
	struct tcp_priv *tp;
	enum es_role role;
	struct tcp_pool_stats v[TCP_POOL_PORTS];
	unsigned int n;
};

static struct tcp_pool_stats *pool_of(struct pool_sum *ps, uint16_t port)
{
	for (unsigned int i = 0; i < ps->n; i++)
		if (ps->v[i].port == port)
			return &ps->v[i];
	if (ps->n == TCP_POOL_PORTS)
		return NULL;
	ps->v[ps->n] = (struct tcp_pool_stats){ .role = ps->role, .port = port };
	return &ps->v[ps->n++];
}

static void sum_busy(void *arg, const struct slot_view *sv)
{
	struct pool_sum *ps = arg;
	struct tcp_priv *tp = ps->tp;
	struct tcp_pool_stats *st;

	if (sv->role != ps->role || sv->slot >= tp->nslots || !sv->w || sv->w->exited)
		return;
	st = pool_of(ps, tcp_poll_worker_port(tp->es, sv->slot));
	if (!st)
		return;
	if (tp->state[sv->slot] & ST_IDLE)
		st->idle++;
	else if (tp->state[sv->slot] & ST_BUSY)
		st->busy++;
	st->busy_ns += tp->closed_ns[sv->slot] + tp->open_ns[sv->slot];
}

static void sum_wait(void *arg, const void *key, const void *values, int n, size_t stride)
{
	const struct es_tcp_wait_key *k = key;
	struct pool_sum *ps = arg;
	struct tcp_pool_stats *st;

	if (role_of(k->role) != ps->role || !(st = pool_of(ps, (uint16_t)k->port)))
		return;
	for (int c = 0; c < n; c++) {
		const struct es_tcp_hist *h =
			(const void *)((const char *)values + (size_t)c * stride);

		for (unsigned int b = 0; b <= N(wait_edges); b++)
			st->waits += h->buckets[b];
		st->wait_ns += h->sum_ns;
	}
}

int tcp_pools(struct erpscope *es, enum es_role role, tcp_pool_fn fn, void *arg)
{
	struct probe *p = erpscope_probe(es, "tcp");
	struct tcp_priv *tp = p && p->up ? p->priv : NULL;
	struct pool_sum ps = { .tp = tp, .role = role };

	if (!tp || role != ES_ROLE_ODOO_HTTP)
		return -ENODEV;
	tp->now_ns = clock_ns();
	tp->now_ms = tp->now_ns / 1000000ull;
	collect_pool(tp);
	procs_for_each_slot(es->procs, sum_busy, &ps);
	bpf_hash_foreach(bpf_map__fd(tp->skel->maps.listen_wait), sizeof(struct es_tcp_wait_key),
			 sizeof(struct es_tcp_hist), true, sum_wait, &ps);
	for (unsigned int i = 0; i < ps.n; i++)
		fn(arg, &ps.v[i]);
	return 0;
}

static int tcp_collect(struct probe *p, struct expo *e)
{
	struct tcp_priv *tp = p->priv;
	int n;

	tp->e = e;
	tp->now_ns = clock_ns();
	tp->now_ms = tp->now_ns / 1000000ull;
	expo_family(e, "erpscope_listen_queue_wait_seconds", EXPO_HISTOGRAM,
		    "Time accepted connections waited in a listen socket's accept queue, from the handshake's completion to accept() returning them, per role of the accepting process and local port.");
	n = bpf_hash_foreach(bpf_map__fd(tp->skel->maps.listen_wait), sizeof(struct es_tcp_wait_key),
			     sizeof(struct es_tcp_hist), true, wait_sample, tp);
	mapstats_count(p->es, ES_MAP_LISTEN_WAIT, n);
	collect_pool(tp);
	tcp_pool_attach_collect(tp->pool, e);
	collect_remotes(tp, e);
	tp->e = NULL;
	return 0;
}

static void tcp_close(struct probe *p)
{
	struct tcp_priv *tp = p->priv;

	ring_buffer__free(p->rb);
	p->rb = NULL;
	if (!tp)
		return;
	if (tp->traced)
		tcp_trace_stop(p->es, tp->skel);
	procs_off_slot_reset(p->es->procs, reset_slot, tp);
	if (tp->pooled)
		pools_remove(p->es->pools, ES_ROLE_ODOO_HTTP);
	tcp_pool_attach_free(tp->pool);
	if (tp->admitted)
		munmap(tp->admitted, tp->admitted_len);
	tcp_bpf__destroy(tp->skel);
	tcp_remotes_free(tp->remotes);
	free(tp->cold);
	free(tp->percpu);
	free(tp->state);
	free(tp->open_ns);
	free(tp->closed_ns);
	free(tp->tids);
	free(tp);
	p->priv = NULL;
	p->obj = NULL;
}

const struct probe_ops tcp_probe_ops = {
	.name = "tcp",
	.open = tcp_open,
	.attach = tcp_attach,
	.collect = tcp_collect,
	.close = tcp_close,
};
