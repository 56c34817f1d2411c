// SPDX-License-Identifier: GPL-2.0
/*
 * The statement table. The kernel keeps cumulative per-CPU numbers per
 * (fingerprint, database key); here they are summed per (fingerprint,
 * database name), with the normalised text each fingerprint had when it was
 * first seen. Series keyed by a backend whose database was not known yet
 * (ES_PG_DB_PID | tgid) count once their database is known, and are folded
 * into user space ("retired") and deleted once that backend is gone, so
 * every total only grows.
 *
 * Metrics show the top-K (fingerprint, database) pairs by total time; the
 * rest goes to fingerprint="other" per database, which accumulates what
 * statements did while they were outside the top K, so it never decreases.
 *
 * The kernel's table is bounded: once it is over EVICT_HIGH full, the
 * coldest statements (not grown for the longest) are folded into their
 * records' retired sums and their entries deleted at the next refresh, down
 * to EVICT_LOW, so a new statement gets an entry of its own again instead
 * of the kernel's fingerprint="other".
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "core/bpfutil.h"
#include "core/clock.h"
#include "core/erpscope.h"
#include "core/expo.h"
#include "core/grow.h"
#include "core/http.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mapstats.h"
#include "pg/pg.h"
#include "pg.skel.h"
#include "pg/pg_normalize.h"

#define NB (ES_PG_MAX_EDGES + 1)
#define TEXTS_MAX 65536 /* normalised texts kept */
#define RECS_MAX 16384 /* (fingerprint, database) pairs kept */
#define AGG_MAX 4096 /* entries of each small per-database table */
#define PINS_MAX 1024 /* backend keys counted under "unknown" */
#define PIN_KEEP_MS (10 * 60 * 1000ull) /* long after the retire walk took their entries */
#define EVICT_HIGH 75 /* percent of pg_stats full: evict */
#define EVICT_LOW 50 /* percent left after evicting */

struct pg_sum {
	uint64_t calls, total_ns, max_ns, misses, lock_ns, lock_waits, slow, errors, commits;
	uint64_t buckets[NB];
	uint64_t fine[ES_PG_FINE_BINS];
};

struct pg_rec {
	__u64 fp;
	__u32 db;
	__u32 ocmd; /* for fp ES_PG_FP_OTHER: the command (the key's pad) */
	__u32 cmd; /* enum es_pg_cmd */
	__u32 gen; /* refresh that last filled live */
	struct pg_sum live; /* summed from the kernel's entries */
	struct pg_sum *retired; /* folded from entries of backends that are gone, or evicted */
	bool shown; /* among the top K at the last refresh */
	__u32 born; /* the refresh that created it */
	struct pg_win *win; /* its recent fine bins, while shown */
	bool evict; /* fold and delete its kernel entries at the next refresh */
	__u32 nkeys; /* its kernel entries at the last refresh */
	__u32 grew_gen; /* refresh at which its calls last grew */
	/* What "other" already took from this record. */
	uint64_t prev_calls, prev_total_ns, prev_misses;
	uint64_t prev_buckets[NB];
};

struct pg_text {
	__u64 fp; /* 0: free slot */
	unsigned int cmd;
	char *text;
};

/* Small per-database tables: command histograms, counters, lock waits. */
#define AGG_VALS (NB + 1)
struct pg_agg_ent {
	__u32 db, sub;
	__u32 gen;
	uint64_t live[AGG_VALS];
	uint64_t retired[AGG_VALS];
};

struct pg_agg {
	struct pg_agg_ent *v;
	size_t n, cap;
	unsigned int nvals;
};

struct pg_other {
	bool used;
	uint64_t calls, total_ns, misses;
	uint64_t buckets[NB];
};

/* A backend key (ES_PG_DB_PID | tgid) once counted under db "unknown". */
struct pg_pin {
	__u32 dbkey;
	uint64_t ms;
};

struct pg_queries {
	unsigned int topk;
	struct pg_pin pins[PINS_MAX];
	unsigned int npins;
	__u32 gen;
	struct pg_rec *recs;
	size_t nrecs, caprecs;
	uint32_t *rix; /* open addressing over recs: index + 1, 0 empty */
	size_t rixcap;
	struct pg_text *texts; /* open addressing on fp */
	size_t ntexts, captexts;
	struct pg_agg dbs, locks;
	struct pg_other other[ES_PG_MAX_DBS];
	uint64_t ckpt[NB + 2]; /* buckets, sum_ns, buffers written */
	uint64_t ckpt_started[3]; /* by enum es_pg_ckpt_cause */
	unsigned int nshown;
	uint64_t win_ms, win_slot_ms; /* --pg.quantile-window and its slots */
	uint64_t evicted; /* kernel entries of cold statements folded and deleted */
	uint64_t fine_ms; /* last walk of pg_fine */
	__u32 fine_gen;   /* the refresh that did it */
	uint64_t read_bytes[2]; /* copied from pg_stats, pg_fine */
};

/* Edges of the statement histograms, seconds: 1 ms to 60 s. */
static const double lat_edges[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
				    0.5,   1.0,	   2.5,	  5.0,	10.0,  30.0, 60.0 };
#define NLAT (sizeof(lat_edges) / sizeof(lat_edges[0]))
/* Checkpoints: 10 ms to 30 min (spread checkpoints take minutes). */
static const double ckpt_edges[] = { 0.01, 0.1,	 0.5,	1.0,   5.0,   10.0,
				     30.0, 60.0, 120.0, 300.0, 600.0, 1800.0 };
#define NCKPT (sizeof(ckpt_edges) / sizeof(ckpt_edges[0]))

static const char *const lock_modes[] = {
	"none",
	"AccessShareLock",
	"RowShareLock",
	"RowExclusiveLock",
	"ShareUpdateExclusiveLock",
	"ShareLock",
	"ShareRowExclusiveLock",
	"ExclusiveLock",
	"AccessExclusiveLock",
};

/* LockTagType as pg_locks.locktype names it (PostgreSQL 13 and later). */
static const char *const lock_types[] = {
	"relation",   "extend",	   "frozenid", "page",	   "tuple",    "transactionid",
	"virtualxid", "spectoken", "object",   "userlock", "advisory",
};

const char *const pg_ckpt_cause_names[3] = { "time", "wal", "requested" };

int pg_checkpoints(struct erpscope *es, uint64_t started[3])
{
	struct probe *p = erpscope_probe(es, "pg");
	struct pg_priv *pp = p && p->up ? p->priv : NULL;

	int ncpus = bpf_ncpus(), err = 0;
	struct es_pg_ckpt *c;
	__u32 zero = 0;

	if (!pp || ncpus <= 0)
		return -ENODEV;
	/* One per-CPU slot: cheap, unlike a refresh of the statement table. */
	c = calloc((size_t)ncpus, sizeof(*c));
	if (!c)
		return -ENOMEM;
	memset(started, 0, 3 * sizeof(*started));
	if (bpf_map_lookup_elem(bpf_map__fd(pp->skel->maps.pg_ckpt), &zero, c))
		err = -errno;
	for (int i = 0; !err && i < ncpus; i++)
		for (int k = 0; k < 3; k++)
			started[k] += c[i].started[k];
	free(c);
	return err;
}

void pg_queries_edges(const double **lat, unsigned int *nlat, const double **ckpt,
		      unsigned int *nckpt)
{
	*lat = lat_edges;
	*nlat = NLAT;
	*ckpt = ckpt_edges;
	*nckpt = NCKPT;
}

static uint64_t mix(uint64_t fp, uint32_t db)
{
	uint64_t h = (fp ^ ((uint64_t)db << 32 | db)) * 0x9e3779b97f4a7c15ULL;

	return h ^ (h >> 29);
}

struct pg_queries *pg_queries_new(unsigned int topk, unsigned int window_ms)
{
	struct pg_queries *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->topk = topk;
	q->win_ms = window_ms;
	q->win_slot_ms = window_ms / PG_WIN_SLOTS;
	q->dbs.nvals = 4;
	q->locks.nvals = NB + 1;
	return q;
}

void pg_queries_free(struct pg_queries *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->nrecs; i++) {
		free(q->recs[i].retired);
		free(q->recs[i].win);
	}
	for (size_t i = 0; i < q->captexts; i++)
		free(q->texts[i].text);
	free(q->recs);
	free(q->rix);
	free(q->texts);
	free(q->dbs.v);
	free(q->locks.v);
	free(q);
}

/* ---------------------------------------------------------------- texts */

static struct pg_text *text_slot(const struct pg_queries *q, __u64 fp)
{
	size_t mask = q->captexts - 1;

	if (!q->captexts)
		return NULL;
	for (size_t i = mix(fp, 0) & mask;; i = (i + 1) & mask) {
		if (q->texts[i].fp == fp || !q->texts[i].fp)
			return &q->texts[i];
	}
}

static int texts_grow(struct pg_queries *q)
{
	size_t ncap = q->captexts ? q->captexts * 2 : 1024;
	struct pg_text *old = q->texts, *nt = calloc(ncap, sizeof(*nt));
	size_t ocap = q->captexts;

	if (!nt)
		return -ENOMEM;
	q->texts = nt;
	q->captexts = ncap;
	for (size_t i = 0; i < ocap; i++) {
		if (old[i].fp)
			*text_slot(q, old[i].fp) = old[i];
	}
	free(old);
	return 0;
}

const char *pg_queries_text(const struct pg_queries *q, __u64 fp, unsigned int *cmd)
{
	struct pg_text *t = text_slot(q, fp);

	if (!t || !t->fp)
		return NULL;
	if (cmd)
		*cmd = t->cmd;
	return t->text;
}

void pg_queries_add_text(struct pg_priv *pp, __u64 fp, const char *raw, size_t len)
{
	struct pg_queries *q = pp->q;
	struct pg_norm_result r;
	struct pg_text *t;
	char *out;

	if (!fp || q->ntexts >= TEXTS_MAX)
		return;
	t = text_slot(q, fp);
	if (t && t->fp)
		return; /* sent again after the kernel forgot it (LRU): keep the first */
	if ((q->ntexts + 1) * 2 > q->captexts && texts_grow(q))
		return;
	out = malloc(len + 1);
	if (!out)
		return;
	pg_normalize(raw, len, out, len + 1, &r);
	if (r.fp != fp) {
		/* Cannot happen with one tokenizer; counted so a test can say so. */
		pp->fp_mismatches++;
		log_warn("statement fingerprint differs between kernel and user space",
			 "probe=pg kernel=%016llx user=%016llx len=%zu", (unsigned long long)fp,
			 (unsigned long long)r.fp, len);
	}
	t = text_slot(q, fp);
	t->fp = fp;
	t->cmd = r.cmd;
	t->text = realloc(out, r.len + 1) ?: out;
	q->ntexts++;
}

/* ---------------------------------------------------------------- records */

static struct pg_rec *rec_find(struct pg_queries *q, __u64 fp, __u32 db, __u32 ocmd, bool create)
{
	size_t mask, i;

	if (q->rixcap) {
		mask = q->rixcap - 1;
		for (i = mix(fp, db) & mask; q->rix[i]; i = (i + 1) & mask) {
			struct pg_rec *r = &q->recs[q->rix[i] - 1];

			if (r->fp == fp && r->db == db && r->ocmd == ocmd)
				return r;
		}
	}
	/* Past the bound, only the few "other" records (databases x commands). */
	if (!create || (q->nrecs >= RECS_MAX && fp != ES_PG_FP_OTHER))
		return NULL;
	if (grow_array(&q->recs, &q->caprecs, q->nrecs + 1, sizeof(*q->recs), 256))
		return NULL;
	if ((q->nrecs + 1) * 2 > q->rixcap) {
		size_t ncap = q->rixcap ? q->rixcap * 2 : 1024;
		uint32_t *ni = calloc(ncap, sizeof(*ni));

		if (!ni)
			return NULL;
		free(q->rix);
		q->rix = ni;
		q->rixcap = ncap;
		for (size_t k = 0; k < q->nrecs; k++) {
			for (i = mix(q->recs[k].fp, q->recs[k].db) & (ncap - 1); q->rix[i];
			     i = (i + 1) & (ncap - 1))
				;
			q->rix[i] = (uint32_t)k + 1;
		}
	}
	mask = q->rixcap - 1;
	for (i = mix(fp, db) & mask; q->rix[i]; i = (i + 1) & mask)
		;
	memset(&q->recs[q->nrecs], 0, sizeof(q->recs[0]));
	q->recs[q->nrecs].fp = fp;
	q->recs[q->nrecs].db = db;
	q->recs[q->nrecs].ocmd = ocmd;
	q->recs[q->nrecs].born = q->gen;
	q->recs[q->nrecs].cmd = fp == ES_PG_FP_OTHER ? ocmd : ES_PG_CMD_OTHER;
	q->rix[i] = (uint32_t)++q->nrecs;
	return &q->recs[q->nrecs - 1];
}

static void sum_add(struct pg_sum *s, const struct es_pg_stat *v)
{
	s->calls += v->calls;
	s->total_ns += v->total_ns;
	if (v->max_ns > s->max_ns)
		s->max_ns = v->max_ns;
	s->misses += v->misses;
	s->lock_ns += v->lock_ns;
	s->lock_waits += v->lock_waits;
	s->slow += v->slow;
	s->errors += v->errors;
	s->commits += v->commits;
	for (int b = 0; b < NB; b++)
		s->buckets[b] += v->buckets[b];
}

/* Everything but the fine bins, which the fine walk alone recounts. */
static void live_zero(struct pg_sum *s)
{
	memset(s, 0, offsetof(struct pg_sum, fine));
}

/* live + retired of r, into out. */
static void rec_total(const struct pg_rec *r, struct pg_sum *out)
{
	*out = r->live;
	if (!r->retired)
		return;
	out->calls += r->retired->calls;
	out->total_ns += r->retired->total_ns;
	if (r->retired->max_ns > out->max_ns)
		out->max_ns = r->retired->max_ns;
	out->misses += r->retired->misses;
	out->lock_ns += r->retired->lock_ns;
	out->lock_waits += r->retired->lock_waits;
	out->slow += r->retired->slow;
	out->errors += r->retired->errors;
	out->commits += r->retired->commits;
	for (int b = 0; b < NB; b++)
		out->buckets[b] += r->retired->buckets[b];
	for (int b = 0; b < ES_PG_FINE_BINS; b++)
		out->fine[b] += r->retired->fine[b];
}

static struct pg_agg_ent *agg_find(struct pg_agg *a, __u32 db, __u32 sub, bool create)
{
	for (size_t i = 0; i < a->n; i++) {
		if (a->v[i].db == db && a->v[i].sub == sub)
			return &a->v[i];
	}
	if (!create || a->n >= AGG_MAX)
		return NULL;
	if (grow_array(&a->v, &a->cap, a->n + 1, sizeof(*a->v), 32))
		return NULL;
	memset(&a->v[a->n], 0, sizeof(a->v[0]));
	a->v[a->n].db = db;
	a->v[a->n].sub = sub;
	return &a->v[a->n++];
}

/* ---------------------------------------------------------------- reading the kernel */

struct walk {
	struct pg_priv *pp;
	struct pg_procs *procs;
	__u32 gen;
	bool retire; /* fold entries of gone backends into user space */
	int entries; /* in pg_stats after the walk, or -errno */
	void *dead; /* keys to delete after the walk */
	size_t ndead, capdead, ksize;
};

int pg_resolve_db(struct pg_priv *pp, struct pg_procs *procs, __u32 dbkey, bool *gone)
{
	__u32 tgid = dbkey & ~ES_PG_DB_PID;
	struct pg_proc *pr;
	char path[32];

	*gone = false;
	if (!(dbkey & ES_PG_DB_PID))
		return dbkey < pp->ndbs ? (int)dbkey : ES_PG_DB_UNKNOWN;
	pr = procs ? pg_procs_find(procs, tgid) : NULL;
	if (pr && pr->db[0]) {
		*gone = pr->gone;
		return (int)pg_db_id(pp, pr->db);
	}
	if (pr && !pr->gone)
		return -1;
	snprintf(path, sizeof(path), "/proc/%u", tgid);
	if (!pr && !access(path, F_OK))
		return -1;
	*gone = true;
	return ES_PG_DB_UNKNOWN;
}

static void remember_dead(struct walk *w, const void *key)
{
	if (grow_array(&w->dead, &w->capdead, w->ndead + 1, w->ksize, 64))
		return;
	memcpy((char *)w->dead + w->ndead++ * w->ksize, key, w->ksize);
}

static bool pinned(const struct pg_queries *q, __u32 dbkey)
{
	for (unsigned int i = 0; i < q->npins; i++) {
		if (q->pins[i].dbkey == dbkey)
			return true;
	}
	return false;
}

/* Forgets pins past PIN_KEEP_MS; the oldest goes when full. */
static void pin(struct pg_queries *q, __u32 dbkey)
{
	uint64_t now = clock_ms();
	unsigned int oldest = 0;

	for (unsigned int i = 0; i < q->npins;) {
		if (q->pins[i].ms + PIN_KEEP_MS < now) {
			q->pins[i] = q->pins[--q->npins];
			continue;
		}
		if (q->pins[i].ms < q->pins[oldest].ms)
			oldest = i;
		i++;
	}
	if (q->npins == PINS_MAX)
		q->pins[oldest] = q->pins[--q->npins];
	q->pins[q->npins++] = (struct pg_pin){ dbkey, now };
}

/* Resolves the key's database; NULL target when the entry is to be skipped. */
static int walk_db(struct walk *w, const void *key, __u32 dbkey, bool *retire)
{
	bool gone = true;
	int db = ES_PG_DB_UNKNOWN;

	/*
	 * A gone backend's key counted under "unknown" stays there: its
	 * database may turn up later (adopted from a late event), and moving
	 * what was exported would make "unknown" go down.
	 */
	if (!(dbkey & ES_PG_DB_PID) || !pinned(w->pp->q, dbkey)) {
		db = pg_resolve_db(w->pp, w->procs, dbkey, &gone);
		if (db == ES_PG_DB_UNKNOWN && (dbkey & ES_PG_DB_PID))
			pin(w->pp->q, dbkey);
	}
	*retire = false;
	if (db < 0)
		return -1;
	if (w->retire) {
		if (!(dbkey & ES_PG_DB_PID) || !gone)
			return -1;
		*retire = true;
		remember_dead(w, key);
	}
	return db;
}

/* The command of a statement's entry: any CPU's that ran it. */
static __u32 stat_cmd(const void *values, int n, size_t stride)
{
	for (int c = 0; c < n; c++) {
		const struct es_pg_stat *v =
			(const void *)((const char *)values + (size_t)c * stride);

		if (v->calls && v->cmd < ES_PG_CMD_COUNT)
			return v->cmd;
	}
	return ES_PG_CMD_OTHER;
}

/* A key about to be deleted: its fine bins into dst, one lookup. */
static void fold_fine(struct pg_priv *pp, const void *key, struct pg_sum *dst, int ncpus)
{
	size_t stride = sizeof(struct es_pg_fine);
	struct es_pg_fine *v = calloc((size_t)ncpus, stride);

	if (!v)
		return;
	if (!bpf_map_lookup_elem(bpf_map__fd(pp->skel->maps.pg_fine), key, v)) {
		pp->q->read_bytes[1] += (uint64_t)ncpus * stride;
		for (int c = 0; c < ncpus; c++) {
			for (int b = 0; b < ES_PG_FINE_BINS; b++)
				dst->fine[b] += v[c].fine[b];
		}
	}
	free(v);
}

/*
 * pg_fine's entries into their records' live fine bins. The database is
 * resolved as the statement walk just did (it pinned what it had to);
 * keys with no record (the kernel's "other" overflow) have no quantiles.
 */
static void fine_entry(void *arg, const void *key, const void *values, int n, size_t stride)
{
	const struct es_pg_stat_key *k = key;
	struct walk *w = arg;
	struct pg_queries *q = w->pp->q;
	bool gone;
	int db = ES_PG_DB_UNKNOWN;
	struct pg_rec *r;

	if (!(k->db & ES_PG_DB_PID) || !pinned(q, k->db))
		db = pg_resolve_db(w->pp, w->procs, k->db, &gone);
	if (db < 0)
		return;
	r = rec_find(q, k->fp, (__u32)db, k->fp == ES_PG_FP_OTHER ? k->pad : 0, false);
	if (!r)
		return;
	for (int c = 0; c < n; c++) {
		const struct es_pg_fine *v = (const void *)((const char *)values + (size_t)c * stride);

		for (int b = 0; b < ES_PG_FINE_BINS; b++)
			r->live.fine[b] += v->fine[b];
	}
}

static void stat_entry(void *arg, const void *key, const void *values, int n, size_t stride)
{
	const struct es_pg_stat_key *k = key;
	struct walk *w = arg;
	struct pg_sum *dst;
	__u32 cmd = stat_cmd(values, n, stride);
	struct pg_rec *r;
	bool retire;
	int db = walk_db(w, key, k->db, &retire);

	if (db < 0)
		return;
	r = rec_find(w->pp->q, k->fp, (__u32)db, k->fp == ES_PG_FP_OTHER ? k->pad : 0, true);
	if (!r && k->fp != ES_PG_FP_OTHER) {
		/*
		 * No room for another statement: its database's "other" takes
		 * the entry, which goes, lest the kernel's table fill with
		 * entries no record can evict.
		 */
		r = rec_find(w->pp->q, ES_PG_FP_OTHER, (__u32)db, cmd, true);
		if (r && !retire) {
			retire = true;
			remember_dead(w, key);
		}
	}
	if (!r)
		return;
	if (r->fp != ES_PG_FP_OTHER && cmd != ES_PG_CMD_OTHER)
		r->cmd = cmd;
	if (!w->retire && r->evict) {
		retire = true;
		remember_dead(w, key);
	}
	if (retire) {
		if (!r->retired && !(r->retired = calloc(1, sizeof(*r->retired))))
			return;
		dst = r->retired;
	} else {
		if (r->gen != w->gen) {
			live_zero(&r->live);
			r->nkeys = 0;
			r->gen = w->gen;
		}
		r->nkeys++;
		dst = &r->live;
	}
	for (int c = 0; c < n; c++)
		sum_add(dst, (const void *)((const char *)values + (size_t)c * stride));
	if (retire)
		fold_fine(w->pp, key, dst, n);
}

static void agg_entry(struct walk *w, struct pg_agg *a, const void *key, __u32 dbkey, __u32 sub,
		      const void *values, int n, size_t stride)
{
	struct pg_agg_ent *e;
	uint64_t *dst;
	bool retire;
	int db = walk_db(w, key, dbkey, &retire);

	if (db < 0 || !(e = agg_find(a, (__u32)db, sub, true)))
		return;
	if (retire) {
		dst = e->retired;
	} else {
		if (e->gen != w->gen) {
			memset(e->live, 0, sizeof(e->live));
			e->gen = w->gen;
		}
		dst = e->live;
	}
	for (int c = 0; c < n; c++) {
		const uint64_t *v = (const void *)((const char *)values + (size_t)c * stride);

		for (unsigned int i = 0; i < a->nvals; i++)
			dst[i] += v[i];
	}
}

static void db_entry(void *arg, const void *key, const void *values, int n, size_t stride)
{
	const struct es_pg_db_key *k = key;
	struct walk *w = arg;

	agg_entry(w, &w->pp->q->dbs, key, k->db, 0, values, n, stride);
}

static void lock_entry(void *arg, const void *key, const void *values, int n, size_t stride)
{
	const struct es_pg_lock_key *k = key;
	struct walk *w = arg;

	agg_entry(w, &w->pp->q->locks, key, k->db, (__u32)k->mode | (__u32)k->locktype << 16,
		  values, n, stride);
}

static void agg_zero_stale(struct pg_agg *a, __u32 gen)
{
	for (size_t i = 0; i < a->n; i++) {
		if (a->v[i].gen != gen) {
			memset(a->v[i].live, 0, sizeof(a->v[i].live));
			a->v[i].gen = gen;
		}
	}
}

/* Returns the entries the walk saw before its deletes, or -errno. */
static int walk_map(struct walk *w, int fd, size_t ksize, size_t vsize, bpf_hash_fn fn)
{
	int n;

	w->ksize = ksize;
	w->ndead = 0;
	n = bpf_hash_foreach(fd, ksize, vsize, true, fn, w);
	if (n > 0 && vsize == sizeof(struct es_pg_stat))
		w->pp->q->read_bytes[0] += (uint64_t)n * (uint64_t)bpf_ncpus() * ((vsize + 7) / 8 * 8);
	bpf_hash_delete_keys(fd, w->dead, ksize, (__u32)w->ndead);
	return n < 0 ? n : n - (int)w->ndead;
}

static void walk_all(struct pg_priv *pp, struct walk *w)
{
	struct pg_bpf *s = pp->skel;

	/*
	 * Events are drained lazily; a backend's HELLO precedes its first
	 * accounted statement in the ring, so taking them first means no
	 * backend key is resolved before its backend is known.
	 */
	if (pp->rb)
		ring_buffer__consume(pp->rb);
	w->entries = walk_map(w, bpf_map__fd(s->maps.pg_stats), sizeof(struct es_pg_stat_key),
			      sizeof(struct es_pg_stat), stat_entry);
	/* Their fine bins went with them (stat_entry folded them). */
	bpf_hash_delete_keys(bpf_map__fd(s->maps.pg_fine), w->dead, w->ksize, (__u32)w->ndead);
	mapstats_count(pp->es, ES_MAP_PG_STATS, w->entries);
	if (!w->retire)
		pp->q->evicted += w->ndead;
	mapstats_count(pp->es, ES_MAP_PG_DB_STATS,
		       walk_map(w, bpf_map__fd(s->maps.pg_db_stats), sizeof(struct es_pg_db_key),
				sizeof(struct es_pg_dbstat), db_entry));
	mapstats_count(pp->es, ES_MAP_PG_LOCK_HIST,
		       walk_map(w, bpf_map__fd(s->maps.pg_lock_hist), sizeof(struct es_pg_lock_key),
				sizeof(struct es_pg_hist), lock_entry));
	free(w->dead);
}

void pg_queries_retire(struct pg_priv *pp, struct pg_procs *procs)
{
	struct walk w = { .pp = pp, .procs = procs, .retire = true };

	walk_all(pp, &w);
}

static int by_total_desc(const void *a, const void *b, void *arg)
{
	const struct pg_rec *recs = arg;
	const struct pg_rec *x = &recs[*(const uint32_t *)a], *y = &recs[*(const uint32_t *)b];
	uint64_t tx = x->live.total_ns + (x->retired ? x->retired->total_ns : 0);
	uint64_t ty = y->live.total_ns + (y->retired ? y->retired->total_ns : 0);

	if (tx != ty)
		return tx < ty ? 1 : -1;
	return x->fp < y->fp ? -1 : x->fp > y->fp;
}

/* Indices of records by total time, largest first; caller frees. */
static uint32_t *ranked(struct pg_queries *q)
{
	uint32_t *idx = malloc((q->nrecs ? q->nrecs : 1) * sizeof(*idx));

	if (!idx)
		return NULL;
	for (size_t i = 0; i < q->nrecs; i++)
		idx[i] = (uint32_t)i;
	qsort_r(idx, q->nrecs, sizeof(*idx), by_total_desc, q->recs);
	return idx;
}

/* Picks the top K and gives "other" what the rest did since the last time. */
static void update_topk(struct pg_queries *q)
{
	uint32_t *idx = ranked(q);
	unsigned int shown = 0;

	if (!idx)
		return;
	for (size_t i = 0; i < q->nrecs; i++) {
		struct pg_rec *r = &q->recs[idx[i]];

		r->shown = r->fp != ES_PG_FP_OTHER && shown < q->topk;
		shown += r->shown;
	}
	q->nshown = shown;
	free(idx);
	for (size_t i = 0; i < q->nrecs; i++) {
		struct pg_rec *r = &q->recs[i];
		struct pg_other *o = &q->other[r->db < ES_PG_MAX_DBS ? r->db : 0];
		struct pg_sum t;

		rec_total(r, &t);
		if (t.calls != r->prev_calls)
			r->grew_gen = q->gen;
		if (!r->shown && t.calls >= r->prev_calls) {
			o->used = true;
			o->calls += t.calls - r->prev_calls;
			o->total_ns += t.total_ns - r->prev_total_ns;
			o->misses += t.misses - r->prev_misses;
			for (int b = 0; b < NB; b++)
				o->buckets[b] += t.buckets[b] - r->prev_buckets[b];
		}
		r->prev_calls = t.calls;
		r->prev_total_ns = t.total_ns;
		r->prev_misses = t.misses;
		memcpy(r->prev_buckets, t.buckets, sizeof(r->prev_buckets));
	}
}

/*
 * Shown statements keep a window of their recent fine bins; the others none
 * (memory: K windows). One created since the last fine walk (refresh since)
 * counts from zero: all its calls are recent. One that climbs into the top
 * K starts empty.
 */
static void update_windows(struct pg_queries *q, uint64_t now_ms, __u32 since)
{
	static const uint64_t zero[ES_PG_FINE_BINS];

	for (size_t i = 0; i < q->nrecs; i++) {
		struct pg_rec *r = &q->recs[i];
		struct pg_sum t;

		if (!r->shown) {
			free(r->win);
			r->win = NULL;
			continue;
		}
		rec_total(r, &t);
		if (r->win) {
			pg_win_advance(r->win, t.fine, now_ms, q->win_slot_ms);
			continue;
		}
		r->win = malloc(sizeof(*r->win));
		if (r->win)
			pg_win_init(r->win, r->born > since ? zero : t.fine, now_ms);
	}
}

uint64_t pg_queries_window_ms(const struct pg_priv *pp)
{
	return pp->q->win_ms;
}

uint64_t pg_queries_window_slot_ms(const struct pg_priv *pp)
{
	return pp->q->win_slot_ms;
}

static int by_coldness(const void *a, const void *b, void *arg)
{
	const struct pg_rec *recs = arg;
	const struct pg_rec *x = &recs[*(const uint32_t *)a], *y = &recs[*(const uint32_t *)b];
	uint64_t tx = x->live.total_ns + (x->retired ? x->retired->total_ns : 0);
	uint64_t ty = y->live.total_ns + (y->retired ? y->retired->total_ns : 0);

	if (x->grew_gen != y->grew_gen)
		return x->grew_gen < y->grew_gen ? -1 : 1;
	return tx < ty ? -1 : tx > ty;
}

/*
 * Over EVICT_HIGH of max entries: marks the coldest statements, those that
 * did not grow at this refresh, until EVICT_LOW would be left. The next
 * refresh's walk moves their entries into retired sums and deletes them.
 */
static void pick_evictions(struct pg_queries *q, int entries, uint32_t max)
{
	uint64_t need, freed = 0;
	uint32_t *idx;
	size_t n = 0;

	if (entries <= 0 || !max || (uint64_t)entries * 100 <= (uint64_t)max * EVICT_HIGH)
		return;
	need = (uint64_t)entries - (uint64_t)max * EVICT_LOW / 100;
	idx = malloc((q->nrecs ? q->nrecs : 1) * sizeof(*idx));
	if (!idx)
		return;
	for (size_t i = 0; i < q->nrecs; i++) {
		const struct pg_rec *r = &q->recs[i];

		/* The kernel's own "other" keys stay: they catch failed inserts. */
		if (r->fp != ES_PG_FP_OTHER && r->nkeys && r->grew_gen != q->gen)
			idx[n++] = (uint32_t)i;
	}
	qsort_r(idx, n, sizeof(*idx), by_coldness, q->recs);
	for (size_t i = 0; i < n && freed < need; i++) {
		q->recs[idx[i]].evict = true;
		freed += q->recs[idx[i]].nkeys;
	}
	free(idx);
}

/* Recounts every record's live fine bins from pg_fine. */
static void walk_fine(struct pg_priv *pp, struct walk *w)
{
	struct pg_queries *q = pp->q;
	int n;

	for (size_t i = 0; i < q->nrecs; i++)
		memset(q->recs[i].live.fine, 0, sizeof(q->recs[i].live.fine));
	n = bpf_hash_foreach(bpf_map__fd(pp->skel->maps.pg_fine), sizeof(struct es_pg_stat_key),
			     sizeof(struct es_pg_fine), true, fine_entry, w);
	if (n > 0)
		q->read_bytes[1] += (uint64_t)n * (uint64_t)bpf_ncpus() * sizeof(struct es_pg_fine);
}

void pg_queries_refresh(struct pg_priv *pp, uint64_t now_ms, bool fine)
{
	struct pg_queries *q = pp->q;
	struct walk w = { .pp = pp, .procs = pg_procs_of(pp->es), .gen = ++q->gen };
	int ncpus = bpf_ncpus();
	__u32 zero = 0;

	walk_all(pp, &w);
	for (size_t i = 0; i < q->nrecs; i++) {
		if (q->recs[i].gen != w.gen) {
			live_zero(&q->recs[i].live);
			q->recs[i].nkeys = 0;
			q->recs[i].gen = w.gen;
		}
		q->recs[i].evict = false; /* the walk took their entries */
	}
	agg_zero_stale(&q->dbs, w.gen);
	agg_zero_stale(&q->locks, w.gen);
	update_topk(q);
	/*
	 * Fine bins only where they are read: /queries, and the windows once
	 * a slot; in between they may lag (retired keys counted twice), which
	 * nothing sees, as each reader recounts first.
	 */
	if (fine || now_ms >= q->fine_ms + q->win_slot_ms) {
		__u32 since = q->fine_gen;

		walk_fine(pp, &w);
		update_windows(q, now_ms, since);
		q->fine_ms = now_ms;
		q->fine_gen = q->gen;
	}
	pick_evictions(q, w.entries, pp->es->maps[ES_MAP_PG_STATS].max);

	memset(q->ckpt, 0, sizeof(q->ckpt));
	memset(q->ckpt_started, 0, sizeof(q->ckpt_started));
	if (ncpus > 0) {
		struct es_pg_ckpt *c = calloc((size_t)ncpus, sizeof(*c));

		if (c && !bpf_map_lookup_elem(bpf_map__fd(pp->skel->maps.pg_ckpt), &zero, c)) {
			for (int i = 0; i < ncpus; i++) {
				for (int b = 0; b < NB; b++)
					q->ckpt[b] += c[i].buckets[b];
				q->ckpt[NB] += c[i].sum_ns;
				q->ckpt[NB + 1] += c[i].buffers_written;
				for (int k = 0; k < 3; k++)
					q->ckpt_started[k] += c[i].started[k];
			}
		}
		free(c);
	}
	pp->last_refresh_ms = now_ms;
}

/* ---------------------------------------------------------------- metrics */

static void fp_label(char *buf, size_t size, __u64 fp)
{
	if (fp == ES_PG_FP_OTHER)
		snprintf(buf, size, "other");
	else
		snprintf(buf, size, "%016llx", (unsigned long long)fp);
}

static void hist_out(struct expo *e, const struct expo_label *l, size_t nl, const uint64_t *buckets,
		     double sum_s)
{
	expo_histogram(e, l, nl, lat_edges, buckets, NLAT, sum_s);
}

enum rec_field { F_CALLS, F_SECONDS, F_MISSES, F_HIST };

static void recs_family(struct pg_priv *pp, struct expo *e, enum rec_field f)
{
	struct pg_queries *q = pp->q;
	struct expo_label l[2];
	char fpl[20];

	for (size_t i = 0; i < q->nrecs; i++) {
		const struct pg_rec *r = &q->recs[i];
		struct pg_sum t;

		if (!r->shown)
			continue;
		rec_total(r, &t);
		fp_label(fpl, sizeof(fpl), r->fp);
		l[0] = (struct expo_label){ "fingerprint", fpl };
		l[1] = (struct expo_label){ "db", pg_db_name(pp, r->db) };
		if (f == F_CALLS)
			expo_sample_u64(e, l, 2, t.calls);
		else if (f == F_SECONDS)
			expo_sample(e, l, 2, (double)t.total_ns / 1e9);
		else if (f == F_MISSES)
			expo_sample_u64(e, l, 2, t.misses);
		else
			hist_out(e, l, 2, t.buckets, (double)t.total_ns / 1e9);
	}
	for (unsigned int d = 0; d < ES_PG_MAX_DBS; d++) {
		const struct pg_other *o = &q->other[d];

		if (!o->used)
			continue;
		l[0] = (struct expo_label){ "fingerprint", "other" };
		l[1] = (struct expo_label){ "db", pg_db_name(pp, d) };
		if (f == F_CALLS)
			expo_sample_u64(e, l, 2, o->calls);
		else if (f == F_SECONDS)
			expo_sample(e, l, 2, (double)o->total_ns / 1e9);
		else if (f == F_MISSES)
			expo_sample_u64(e, l, 2, o->misses);
		else
			hist_out(e, l, 2, o->buckets, (double)o->total_ns / 1e9);
	}
}

static void agg_total(const struct pg_agg_ent *a, unsigned int nvals, uint64_t *out)
{
	for (unsigned int i = 0; i < nvals; i++)
		out[i] = a->live[i] + a->retired[i];
}

/*
 * A per-database counter: which is the index in es_pg_dbstat; commits add
 * those counted at query__done (per statement) to transaction__commit's.
 */
static void db_counter(struct pg_priv *pp, struct expo *e, unsigned int which, const char *outcome)
{
	struct pg_queries *q = pp->q;
	struct expo_label l[2];
	uint64_t *v = calloc(pp->ndbs ? pp->ndbs : 1, sizeof(*v)), t[AGG_VALS];
	bool *used = calloc(pp->ndbs ? pp->ndbs : 1, sizeof(*used));

	if (!v || !used)
		goto out;
	for (size_t i = 0; i < q->dbs.n; i++) {
		if (q->dbs.v[i].db >= pp->ndbs)
			continue;
		agg_total(&q->dbs.v[i], q->dbs.nvals, t);
		v[q->dbs.v[i].db] += t[which];
		used[q->dbs.v[i].db] = true;
	}
	for (size_t i = 0; which == 0 && i < q->nrecs; i++) {
		const struct pg_rec *r = &q->recs[i];
		struct pg_sum s;

		if (r->db >= pp->ndbs)
			continue;
		rec_total(r, &s);
		v[r->db] += s.commits;
		used[r->db] = true;
	}
	for (__u32 d = 0; d < pp->ndbs; d++) {
		if (!used[d])
			continue;
		l[0] = (struct expo_label){ "db", pg_db_name(pp, d) };
		l[1] = (struct expo_label){ "outcome", outcome };
		expo_sample_u64(e, l, outcome ? 2 : 1, v[d]);
	}
out:
	free(v);
	free(used);
}

static const char *lock_mode_name(unsigned int m)
{
	return m < sizeof(lock_modes) / sizeof(lock_modes[0]) ? lock_modes[m] : "unknown";
}

static const char *lock_type_name(unsigned int t)
{
	return t < sizeof(lock_types) / sizeof(lock_types[0]) ? lock_types[t] : "unknown";
}

const char *pg_lock_mode_name(unsigned int m)
{
	return lock_mode_name(m);
}

const char *pg_lock_type_name(unsigned int t)
{
	return lock_type_name(t);
}

/* Per (database, command): the sum of every statement's histogram. */
static void cmd_family(struct pg_priv *pp, struct expo *e)
{
	struct pg_queries *q = pp->q;
	struct cmd_hist {
		uint64_t buckets[NB];
		uint64_t sum_ns;
		bool used;
	} *h = calloc((size_t)pp->ndbs * ES_PG_CMD_COUNT, sizeof(*h));
	struct expo_label l[2];

	if (!h)
		return;
	for (size_t i = 0; i < q->nrecs; i++) {
		const struct pg_rec *r = &q->recs[i];
		struct cmd_hist *c;
		struct pg_sum t;

		if (r->db >= pp->ndbs || r->cmd >= ES_PG_CMD_COUNT)
			continue;
		c = &h[(size_t)r->db * ES_PG_CMD_COUNT + r->cmd];
		rec_total(r, &t);
		c->used = true;
		c->sum_ns += t.total_ns;
		for (int b = 0; b < NB; b++)
			c->buckets[b] += t.buckets[b];
	}
	for (size_t i = 0; i < (size_t)pp->ndbs * ES_PG_CMD_COUNT; i++) {
		if (!h[i].used)
			continue;
		l[0] = (struct expo_label){ "db", pg_db_name(pp, (__u32)(i / ES_PG_CMD_COUNT)) };
		l[1] = (struct expo_label){ "command",
					    pg_cmd_name((unsigned int)(i % ES_PG_CMD_COUNT)) };
		hist_out(e, l, 2, h[i].buckets, (double)h[i].sum_ns / 1e9);
	}
	free(h);
}

void pg_queries_collect(struct pg_priv *pp, struct expo *e)
{
	struct pg_queries *q = pp->q;
	struct expo_label l[3];
	uint64_t v[AGG_VALS];

	expo_family(
		e, "erpscope_pg_statement_calls_total", EXPO_COUNTER,
		"Statements run, per normalised statement (fingerprint) and database; the top K by total time, the rest under fingerprint=\"other\". GET /queries has the text.");
	recs_family(pp, e, F_CALLS);
	expo_family(
		e, "erpscope_pg_statement_seconds_total", EXPO_COUNTER,
		"Time spent in statements (query__start to query__done), per fingerprint and database.");
	recs_family(pp, e, F_SECONDS);
	expo_family(e, "erpscope_pg_statement_duration_seconds", EXPO_HISTOGRAM,
		    "Statement latency per fingerprint and database.");
	recs_family(pp, e, F_HIST);
	expo_family(
		e, "erpscope_pg_statement_buffer_misses_total", EXPO_COUNTER,
		"Blocks statements read from the OS because they were not in shared buffers, per fingerprint and database.");
	recs_family(pp, e, F_MISSES);

	expo_family(e, "erpscope_pg_query_duration_seconds", EXPO_HISTOGRAM,
		    "Statement latency per database and command (the statement's first keyword).");
	cmd_family(pp, e);
	expo_family(
		e, "erpscope_pg_slow_queries_total", EXPO_COUNTER,
		"Statements slower than --pg.slow-query-threshold, per database (each is an event at GET /events).");
	db_counter(pp, e, 3, NULL);
	expo_family(e, "erpscope_pg_transactions_total", EXPO_COUNTER,
		    "Transactions ended, per database and outcome (commit or abort).");
	db_counter(pp, e, 0, "commit");
	db_counter(pp, e, 1, "abort");
	expo_family(e, "erpscope_pg_deadlocks_total", EXPO_COUNTER,
		    "Deadlocks PostgreSQL found, per database of the backend that found it.");
	db_counter(pp, e, 2, NULL);

	expo_family(
		e, "erpscope_pg_lock_wait_seconds", EXPO_HISTOGRAM,
		"Waits for heavyweight locks, per database, lock mode and lock type (pg_locks' names).");
	for (size_t i = 0; i < q->locks.n; i++) {
		agg_total(&q->locks.v[i], q->locks.nvals, v);
		l[0] = (struct expo_label){ "db", pg_db_name(pp, q->locks.v[i].db) };
		l[1] = (struct expo_label){ "mode", lock_mode_name(q->locks.v[i].sub & 0xffff) };
		l[2] = (struct expo_label){ "locktype", lock_type_name(q->locks.v[i].sub >> 16) };
		hist_out(e, l, 3, v, (double)v[NB] / 1e9);
	}

	expo_family(e, "erpscope_pg_checkpoint_duration_seconds", EXPO_HISTOGRAM,
		    "Checkpoints, checkpoint__start to checkpoint__done.");
	expo_histogram(e, NULL, 0, ckpt_edges, q->ckpt, NCKPT, (double)q->ckpt[NB] / 1e9);
	expo_family(e, "erpscope_pg_checkpoint_buffers_written_total", EXPO_COUNTER,
		    "Shared buffers written by checkpoints (buffer__sync__written).");
	expo_sample_u64(e, NULL, 0, q->ckpt[NB + 1]);
	expo_family(e, "erpscope_pg_checkpoints_total", EXPO_COUNTER,
		    "Checkpoints started (checkpoint__start), by what asked for them.");
	for (int k = 0; k < 3; k++) {
		struct expo_label cl = { "cause", pg_ckpt_cause_names[k] };

		expo_sample_u64(e, &cl, 1, q->ckpt_started[k]);
	}
	expo_family(e, "erpscope_pg_statement_fingerprints", EXPO_GAUGE,
		    "Distinct normalised statements whose text erpscope has.");
	expo_sample_u64(e, NULL, 0, q->ntexts);
	expo_family(
		e, "erpscope_pg_statement_evictions_total", EXPO_COUNTER,
		"Kernel entries of cold statements moved into user space to make room in the kernel's statement table (--pg.max-fingerprints); their series keep counting.");
	expo_sample_u64(e, NULL, 0, q->evicted);
	expo_family(
		e, "erpscope_pg_map_read_bytes_total", EXPO_COUNTER,
		"Bytes copied from the kernel's per-CPU statement maps: pg_stats (every scrape and refresh) and pg_fine (fine bins for quantiles: /queries and once a --pg.quantile-window slot).");
	l[0] = (struct expo_label){ "map", "pg_stats" };
	expo_sample_u64(e, l, 1, q->read_bytes[0]);
	l[0].value = "pg_fine";
	expo_sample_u64(e, l, 1, q->read_bytes[1]);
	expo_family(
		e, "erpscope_pg_fingerprint_mismatches_total", EXPO_COUNTER,
		"Statement texts whose fingerprint in user space differed from the kernel's (0 unless the two builds of the tokenizer disagree).");
	expo_sample_u64(e, NULL, 0, pp->fp_mismatches);
	expo_family(
		e, "erpscope_pg_statement_head_misses_total", EXPO_COUNTER,
		"Statements the kernel normalised from their first byte: no statement with the same head (the text before its first digit or quote) was in its cache. The others resumed after the head.");
	v[0] = 0;
	bpf_percpu_sum_u64(bpf_map__fd(pp->skel->maps.pg_head_misses), 0, &v[0]);
	expo_sample_u64(e, NULL, 0, v[0]);
}

/* ---------------------------------------------------------------- rows for /queries */

int pg_queries_rows(struct pg_priv *pp, uint64_t window_ms, struct pg_row **rows, size_t *n)
{
	struct pg_queries *q = pp->q;
	uint32_t *idx = ranked(q);
	struct pg_row *v;
	size_t k = 0;

	*rows = NULL;
	*n = 0;
	v = calloc(q->nshown + ES_PG_MAX_DBS + 1, sizeof(*v));
	if (!idx || !v) {
		free(idx);
		free(v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < q->nrecs && k < q->nshown; i++) {
		const struct pg_rec *r = &q->recs[idx[i]];
		struct pg_row *w = &v[k];
		struct pg_sum t;
		uint64_t floor_ns;

		if (!r->shown)
			continue;
		rec_total(r, &t);
		w->fp = r->fp;
		w->db = r->db;
		w->calls = t.calls;
		w->total_ns = t.total_ns;
		w->max_ns = t.max_ns;
		w->misses = t.misses;
		w->lock_ns = t.lock_ns;
		w->lock_waits = t.lock_waits;
		w->slow = t.slow;
		w->errors = t.errors;
		/* The window's calls are some of all: the floor holds for them too. */
		floor_ns = pg_min_bound(t.calls, t.total_ns, t.max_ns);
		w->p50 = pg_fine_quantile(t.fine, ES_PG_FINE_BINS, 0.50, floor_ns, t.max_ns);
		w->p95 = pg_fine_quantile(t.fine, ES_PG_FINE_BINS, 0.95, floor_ns, t.max_ns);
		w->p99 = pg_fine_quantile(t.fine, ES_PG_FINE_BINS, 0.99, floor_ns, t.max_ns);
		if (r->win) {
			uint64_t wf[ES_PG_FINE_BINS];

			w->wcalls = pg_win_bins(r->win, t.fine, window_ms, q->win_slot_ms, wf);
			w->wp50 = pg_fine_quantile(wf, ES_PG_FINE_BINS, 0.50, floor_ns, t.max_ns);
			w->wp95 = pg_fine_quantile(wf, ES_PG_FINE_BINS, 0.95, floor_ns, t.max_ns);
			w->wp99 = pg_fine_quantile(wf, ES_PG_FINE_BINS, 0.99, floor_ns, t.max_ns);
		}
		k++;
	}
	for (unsigned int d = 0; d < ES_PG_MAX_DBS; d++) {
		const struct pg_other *o = &q->other[d];

		if (!o->used)
			continue;
		v[k].fp = ES_PG_FP_OTHER;
		v[k].db = d;
		v[k].calls = o->calls;
		v[k].total_ns = o->total_ns;
		v[k].misses = o->misses;
		k++;
	}
	free(idx);
	*rows = v;
	*n = k;
	return 0;
}

size_t pg_queries_count(const struct pg_priv *pp)
{
	return pp->q->nrecs;
}

unsigned int pg_queries_topk(const struct pg_priv *pp)
{
	return pp->q->topk;
}
