// SPDX-License-Identifier: GPL-2.0
/*
 * The python poller: which tracked workers are Python processes we can walk
 * (user/python/pyrt.c finds and checks the interpreter), mirrored into the
 * kernel's py_procs map; the binaries they run, with GC probes attached
 * once per file; each process's resolved code objects; and, once a second,
 * the stacks the kernel counted (py_profile.c).
 */
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "core/clock.h"
#include "core/erpscope.h"
#include "core/grow.h"
#include "core/intern.h"
#include "core/log.h"
#include "core/poller.h"
#include "procs/proctable.h"
#include "python/python.h"
#include "python.skel.h"

#define DRAIN_MS 1000
/*
 * A process caught right after its exec has no interpreter yet, and every
 * sample until a try succeeds is lost: the first tries come at each tick
 * (2 s of them), then every RETRY_MS, 10 s in all.
 */
#define RETRY_FAST_MS 200 /* the next tick (250 ms), late or early */
#define RETRY_FAST_TRIES 8
#define RETRY_MS 2000
#define MAX_TRIES 12
#define CODES_MAX 16384 /* per process; past it the cache starts over */

struct py_proc *py_proc_find(struct py_priv *pp, __u32 pid)
{
	for (size_t i = 0; i < pp->nprocs; i++) {
		if (pp->procs[i].pid == pid)
			return &pp->procs[i];
	}
	return NULL;
}

static void bump_gen(struct py_priv *pp)
{
	__u32 zero = 0;

	pp->gen++;
	bpf_map_update_elem(pp->gen_fd, &zero, &pp->gen, BPF_ANY);
}

/* --- binaries and their GC probes --- */

static struct py_bin *bin_find(struct py_priv *pp, dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < pp->nbins; i++) {
		if (pp->bins[i].dev == dev && pp->bins[i].ino == ino)
			return &pp->bins[i];
	}
	return NULL;
}

/*
 * Attaches gc__start/gc__done for every process running path (pid -1: the
 * uprobe is on the file, and libbpf arms the semaphores). A binary without
 * the notes fails with -ENOENT, which is how we learn it has none.
 */
static struct py_bin *bin_add(struct py_priv *pp, const char *path, const char *shown)
{
	struct bpf_program *progs[2] = { pp->skel->progs.es_py_gc_start, pp->skel->progs.es_py_gc_done };
	static const char *const names[2] = { "gc__start", "gc__done" };
	struct py_bin *b;
	struct stat st;

	if (stat(path, &st) || !S_ISREG(st.st_mode))
		return NULL;
	b = bin_find(pp, st.st_dev, st.st_ino);
	if (b)
		return b;
	if (grow_array(&pp->bins, &pp->bins_cap, pp->nbins + 1, sizeof(*pp->bins), 8))
		return NULL;
	b = &pp->bins[pp->nbins++];
	memset(b, 0, sizeof(*b));
	b->dev = st.st_dev;
	b->ino = st.st_ino;
	snprintf(b->path, sizeof(b->path), "%s", shown);
	for (int i = 0; i < 2; i++) {
		b->links[i] = bpf_program__attach_usdt(progs[i], -1, path, "python", names[i], NULL);
		if (!b->links[i]) {
			b->err = -errno;
			break;
		}
	}
	b->gc_usdt = !b->err;
	if (b->err) {
		for (int i = 0; i < 2; i++) {
			bpf_link__destroy(b->links[i]);
			b->links[i] = NULL;
		}
	}
	log_info(b->gc_usdt ? "Python GC probes attached" :
			      "Python binary without GC probes (no python:gc__start USDT): no GC pauses for its processes",
		 "probe=python path=%s err=%d", b->path, b->err);
	return b;
}

int py_bins_scan_installed(struct py_priv *pp)
{
	static const char *const globs[] = { "/usr/bin/python3.[0-9]*", "/usr/local/bin/python3.[0-9]*" };
	int n = 0;

	for (size_t g = 0; g < sizeof(globs) / sizeof(globs[0]); g++) {
		glob_t gl;

		if (glob(globs[g], 0, NULL, &gl))
			continue;
		for (size_t i = 0; i < gl.gl_pathc; i++) {
			const char *p = gl.gl_pathv[i];
			size_t len = strlen(p);

			/* python3.11-config and the like are scripts */
			if (len > 7 && !strcmp(p + len - 7, "-config"))
				continue;
			if (bin_add(pp, p, p))
				n++;
		}
		globfree(&gl);
	}
	return n;
}

const char *py_gc_status(struct py_priv *pp, const struct py_proc *pr, char *buf, size_t size)
{
	const struct py_bin *b = bin_find(pp, pr->t.dev, pr->t.ino);

	if (b && b->gc_usdt)
		snprintf(buf, size, "available");
	else if (!pr->t.has_gc_usdt || (b && b->err == -ENOENT))
		snprintf(buf, size, "unavailable: %s has no python:gc__start/gc__done USDT probes",
			 pr->t.binary);
	else if (b)
		snprintf(buf, size, "unavailable: cannot attach to %s (error %d)", pr->t.binary,
			 b->err);
	else
		snprintf(buf, size, "unavailable: %s not attached", pr->t.binary);
	return buf;
}

/* --- code objects --- */

static void capture_setup(struct py_priv *pp, struct py_proc *pr, struct py_code_entry *ce)
{
	const struct py_capture_func *f = py_capture_find(&pp->capture, ce->c.name);
	struct es_py_capture cap = { .idx = { ES_PY_NO_ARG, ES_PY_NO_ARG } };
	bool any = false;

	for (int i = 0; i < ES_PY_ARGS_PER_FUNC; i++)
		ce->arg_index[i] = -1;
	if (!f)
		return;
	for (int i = 0; i < f->nargs; i++) {
		int idx = py_code_arg_index(&pr->t, ce->code, f->args[i]);

		ce->arg_names[i] = f->args[i];
		if (idx < 0 || idx >= ES_PY_NO_ARG)
			continue;
		ce->arg_index[i] = idx;
		cap.idx[i] = (__u16)idx;
		any = true;
	}
	if (any)
		bpf_map_update_elem(pp->capture_fd, &ce->code, &cap, BPF_ANY);
}

static void names_put(struct py_priv *pp, struct py_code_names *c)
{
	intern_put(pp->names, c->qualname);
	intern_put(pp->names, c->name);
	intern_put(pp->names, c->filename);
	intern_put(pp->names, c->module);
	memset(c, 0, sizeof(*c));
}

static int names_get(struct py_priv *pp, const struct py_code *raw, struct py_code_names *c)
{
	c->qualname = intern_get(pp->names, raw->qualname);
	c->name = intern_get(pp->names, raw->name);
	c->filename = intern_get(pp->names, raw->filename);
	c->module = intern_get(pp->names, raw->module);
	c->firstlineno = raw->firstlineno;
	if (!c->qualname || !c->name || !c->filename || !c->module) {
		names_put(pp, c);
		return -ENOMEM;
	}
	return 0;
}

/* Every resolved entry of the cache lets its names go. */
static void codes_release(struct py_priv *pp, struct py_proc *pr)
{
	for (unsigned int i = 0; i < pr->ncodes_cap; i++) {
		if (pr->codes[i].ok)
			names_put(pp, &pr->codes[i].c);
	}
}

static int codes_grow(struct py_priv *pp, struct py_proc *pr)
{
	unsigned int cap = pr->ncodes_cap ? pr->ncodes_cap * 2 : 256;
	struct py_code_entry *old = pr->codes, *nc;
	unsigned int oldcap = pr->ncodes_cap;

	if (cap > CODES_MAX) {
		/* A process that keeps making code (exec, lambdas): start over. */
		codes_release(pp, pr);
		memset(pr->codes, 0, sizeof(*pr->codes) * oldcap);
		pr->ncodes = 0;
		return 0;
	}
	nc = calloc(cap, sizeof(*nc));
	if (!nc)
		return -ENOMEM;
	pr->codes = nc;
	pr->ncodes_cap = cap;
	pr->ncodes = 0;
	for (unsigned int i = 0; i < oldcap; i++) {
		if (!old[i].code)
			continue;
		for (unsigned int j = (unsigned int)(old[i].code >> 4) & (cap - 1);;
		     j = (j + 1) & (cap - 1)) {
			if (!nc[j].code) {
				nc[j] = old[i];
				pr->ncodes++;
				break;
			}
		}
	}
	free(old);
	return 0;
}

const struct py_code_entry *py_code_lookup(struct py_priv *pp, struct py_proc *pr, uint64_t code)
{
	struct py_code_entry *ce;
	struct py_code raw;
	unsigned int j;

	if (!code || pr->err)
		return NULL;
	if ((pr->ncodes + 1) * 4 > pr->ncodes_cap * 3 && codes_grow(pp, pr))
		return NULL;
	for (j = (unsigned int)(code >> 4) & (pr->ncodes_cap - 1);; j = (j + 1) & (pr->ncodes_cap - 1)) {
		ce = &pr->codes[j];
		if (ce->code == code)
			return ce->ok ? ce : NULL;
		if (!ce->code)
			break;
	}
	memset(ce, 0, sizeof(*ce));
	ce->code = code;
	pr->ncodes++;
	ce->ok = !py_code_read(&pr->t, code, &raw) && !names_get(pp, &raw, &ce->c);
	if (!ce->ok) {
		pp->resolve_errors++;
		return NULL;
	}
	capture_setup(pp, pr, ce);
	return ce;
}

size_t py_codes_cached(const struct py_priv *pp)
{
	size_t n = 0;

	for (size_t i = 0; i < pp->nprocs; i++)
		n += pp->procs[i].ncodes;
	return n;
}

void py_frame_name(const struct py_code_entry *ce, char *buf, size_t size)
{
	snprintf(buf, size, "%s:%s", ce->c.module, ce->c.qualname);
}

/* --- processes --- */

static void proc_drop(struct py_priv *pp, size_t i)
{
	struct py_proc *pr = &pp->procs[i];

	if (!pr->err)
		bpf_map_delete_elem(pp->procs_fd, &pr->pid);
	py_profile_forget(pp, pr->pid);
	codes_release(pp, pr);
	free(pr->codes);
	pp->procs[i] = pp->procs[--pp->nprocs];
}

static int proc_try(struct py_priv *pp, struct py_proc *pr, uint64_t now_ms)
{
	struct es_py_proc kp = { 0 };
	int err;

	pr->tries++;
	err = py_target_open((pid_t)pr->pid, &pr->t);
	pr->err = err;
	pr->retry_ms = now_ms + (pr->tries < RETRY_FAST_TRIES ? RETRY_FAST_MS : RETRY_MS);
	if (err) {
		bool final = err == -ENOENT || err == -ESRCH || err == -ENOTSUP || pr->tries >= MAX_TRIES;

		if (final && err != -ENOENT && err != -ESRCH)
			log_info("Python process not profiled",
				 "probe=python pid=%u version=%u.%u binary=%s err=%d why=\"%s\"",
				 pr->pid, pr->t.version >> 8, pr->t.version & 0xff, pr->t.binary, err,
				 py_target_why(&pr->t, err));
		if (final)
			pr->tries = MAX_TRIES;
		return err;
	}
	kp.tstate_head = pr->t.interp + pr->t.lay->interp_tstate_head;
	kp.off = pr->t.off;
	if (bpf_map_update_elem(pp->procs_fd, &pr->pid, &kp, BPF_ANY)) {
		pr->err = -errno;
		log_warn("cannot add a Python process to the kernel map", "probe=python pid=%u err=%d",
			 pr->pid, pr->err);
		return pr->err;
	}
	bump_gen(pp);
	if (pr->t.binary[0]) {
		char path[320];

		snprintf(path, sizeof(path), "/proc/%u/root%s", pr->pid, pr->t.binary);
		bin_add(pp, path, pr->t.binary);
	}
	log_debug("Python process profiled", "pid=%u version=%u.%u binary=%s gc_usdt=%d", pr->pid,
		  pr->t.version >> 8, pr->t.version & 0xff, pr->t.binary, pr->t.has_gc_usdt);
	return 0;
}

bool python_role(enum es_role r)
{
	return r == ES_ROLE_PYTHON || r == ES_ROLE_ODOO_MASTER || r == ES_ROLE_ODOO_HTTP ||
	       r == ES_ROLE_ODOO_CRON || r == ES_ROLE_ODOO_GEVENT;
}

struct scan {
	struct py_priv *pp;
	uint64_t now_ms;
};

static void scan_slot(void *arg, const struct slot_view *sv)
{
	struct scan *s = arg;
	struct py_priv *pp = s->pp;
	const struct worker *w = sv->w;
	struct py_proc *pr;

	if (!w || w->exited || !python_role(w->role))
		return;
	pr = py_proc_find(pp, w->pid);
	if (pr && pr->starttime != w->starttime) {
		proc_drop(pp, (size_t)(pr - pp->procs));
		pr = NULL;
	}
	if (!pr) {
		if (grow_array(&pp->procs, &pp->procs_cap, pp->nprocs + 1, sizeof(*pp->procs), 64))
			return;
		pr = &pp->procs[pp->nprocs++];
		memset(pr, 0, sizeof(*pr));
		pr->pid = w->pid;
		pr->starttime = w->starttime;
		pr->err = -EAGAIN;
		if (py_proc_owner(pr->pid, &pr->uid))
			pr->uid = (uid_t)-1;
		if (w->role != ES_ROLE_PYTHON && pr->uid != (uid_t)-1)
			py_scope_saw_odoo(&pp->scope, pr->uid);
	}
	pr->seen = true;
	/* Out of scope: accounted by the other probes, its memory never read. */
	if (!py_scope_allows(&pp->scope, w->role, pr->uid)) {
		pr->err = -EPERM;
		return;
	}
	if (pr->err == -EPERM)
		pr->err = -EAGAIN; /* an Odoo worker of its owner showed up since */
	if (pr->err && pr->tries < MAX_TRIES && s->now_ms >= pr->retry_ms)
		proc_try(pp, pr, s->now_ms);
}

static void targets_scan(struct py_priv *pp, uint64_t now_ms)
{
	struct scan s = { .pp = pp, .now_ms = now_ms };
	bool dropped = false;

	for (size_t i = 0; i < pp->nprocs; i++)
		pp->procs[i].seen = false;
	procs_for_each_slot(pp->es->procs, scan_slot, &s);
	for (size_t i = 0; i < pp->nprocs;) {
		if (pp->procs[i].seen) {
			i++;
			continue;
		}
		dropped |= !pp->procs[i].err;
		proc_drop(pp, i);
	}
	if (dropped)
		bump_gen(pp);
}

void py_targets_free(struct py_priv *pp)
{
	for (size_t i = 0; i < pp->nprocs; i++) {
		codes_release(pp, &pp->procs[i]);
		free(pp->procs[i].codes);
	}
	free(pp->procs);
	pp->procs = NULL;
	pp->nprocs = pp->procs_cap = 0;
	for (size_t i = 0; i < pp->nbins; i++) {
		for (int l = 0; l < 2; l++)
			bpf_link__destroy(pp->bins[i].links[l]);
	}
	free(pp->bins);
	pp->bins = NULL;
	pp->nbins = pp->bins_cap = 0;
}

/* --- the poller --- */

struct py_poll {
	uint64_t next_drain_ms;
};

static int py_poll_init(struct poller *pl)
{
	struct py_poll *st;

	if (!python_priv(pl->es))
		return -ENODEV; /* the probe is off: nothing to poll */
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	pl->priv = st;
	return 0;
}

static void py_poll_tick(struct poller *pl, uint64_t now_ms)
{
	struct py_priv *pp = python_priv(pl->es);
	struct py_poll *st = pl->priv;

	if (!pp)
		return;
	targets_scan(pp, now_ms);
	if (now_ms >= st->next_drain_ms) {
		py_profile_drain(pp, now_ms);
		st->next_drain_ms = now_ms + DRAIN_MS;
	}
}

static void py_poll_collect(struct poller *pl, struct expo *e)
{
	(void)pl;
	(void)e;
}

static void py_poll_free(struct poller *pl)
{
	free(pl->priv);
	pl->priv = NULL;
}

const struct poller_ops python_poller_ops = {
	.name = "python",
	.interval_ms = 250,
	.init = py_poll_init,
	.tick = py_poll_tick,
	.collect = py_poll_collect,
	.free = py_poll_free,
};
