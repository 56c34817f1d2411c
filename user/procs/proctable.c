// SPDX-License-Identifier: GPL-2.0
/*
 * The process table: recognises workers from /proc, hands out accounting
 * slots and mirrors tgid -> {slot, role} into the kernel map. Titles change
 * after fork (setproctitle, PostgreSQL's ps display), so a new process is
 * looked at again a few times soon after it appears, and everything is
 * rescanned periodically in case an event was lost.
 */
#include "procs/proctable.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "core/bpfutil.h"
#include "core/expo.h"
#include "core/grow.h"
#include "core/log.h"
#include "core/readfile.h"

#define PENDING_MAX 4096
#define PF_EXITING 0x00000004 /* include/linux/sched.h */
#define RESET_HOOKS_MAX 8
#define CMDLINE_MAX 4096
/* Exited workers are dropped after a scrape, or after this without one. */
#define EXITED_KEEP_MS (5 * 60 * 1000)

/* When to look again at a process after a fork or an exec, in ms. */
static const unsigned int fork_delays[] = { 50, 300, 1000 };
static const unsigned int exec_delays[] = { 0, 300, 1000 };
#define NDELAYS 3

struct pending {
	__u32 pid;
	__u8 round;
	__u8 exec;
	uint64_t due_ms;
};

struct overflow_entry {
	__u32 pid;
	enum es_role role;
	__u64 starttime;
};

struct procs {
	unsigned int max_workers;
	struct worker *w; /* [max_workers]; pid 0 = free; slot = index + ES_SLOT_FIRST_WORKER */
	int map_fd;
	int gen_fd;
	uint64_t map_gen; /* what gen_fd holds */
	uint64_t scan_gen;
	uint64_t last_scan_ms;
	bool rescan_soon;
	int drops_fd; /* the lifecycle ring's drops (per-CPU u64 [1]); -1 if none */
	uint64_t drops_seen;
	struct pending pend[PENDING_MAX];
	unsigned int npend;
	struct overflow_entry *ovf;
	unsigned int novf;
	size_t ovf_cap;
	uint64_t overflow_total[ES_ROLE_COUNT];
	bool overflowed[ES_ROLE_COUNT];
	struct {
		procs_slot_reset_fn fn;
		void *arg;
	} resets[RESET_HOOKS_MAX];
	unsigned int nresets;
	uint64_t scans;
};

struct proc_stat {
	char state; /* R, S, D, Z, X, ... */
	__u32 ppid;
	__u32 flags; /* task flags: PF_EXITING once do_exit() has begun */
	__u64 starttime;
	char comm[17];
};

struct procs *procs_new(unsigned int max_workers)
{
	struct procs *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->w = calloc(max_workers, sizeof(*p->w));
	if (!p->w) {
		free(p);
		return NULL;
	}
	p->max_workers = max_workers;
	p->map_fd = -1;
	p->gen_fd = -1;
	p->drops_fd = -1;
	return p;
}

void procs_free(struct procs *p)
{
	if (!p)
		return;
	free(p->ovf);
	free(p->w);
	free(p);
}

unsigned int procs_nslots(const struct procs *p)
{
	return ES_SLOT_FIRST_WORKER + p->max_workers;
}

void procs_set_map_fd(struct procs *p, int workers_fd, int gen_fd)
{
	p->map_fd = workers_fd;
	p->gen_fd = gen_fd;
}

void procs_set_drops_fd(struct procs *p, int drops_fd)
{
	p->drops_fd = drops_fd;
}

bool procs_note_drops(struct procs *p, uint64_t drops)
{
	bool lost = drops > p->drops_seen;

	if (lost) {
		log_debug("lifecycle events lost; rescanning /proc", "drops=%llu",
			  (unsigned long long)(drops - p->drops_seen));
		p->rescan_soon = true;
	}
	p->drops_seen = drops;
	return lost;
}

bool procs_rescan_due(const struct procs *p)
{
	return p->rescan_soon;
}

/* After the map changed: programs that cached a slot look it up again. */
static void bump_generation(struct procs *p)
{
	__u32 zero = 0;

	p->map_gen++;
	if (p->gen_fd >= 0 && bpf_map_update_elem(p->gen_fd, &zero, &p->map_gen, BPF_ANY))
		log_warn("cannot update workers generation", "err=%d", -errno);
}

int procs_on_slot_reset(struct procs *p, procs_slot_reset_fn fn, void *arg)
{
	if (p->nresets >= RESET_HOOKS_MAX)
		return -ENOSPC;
	p->resets[p->nresets].fn = fn;
	p->resets[p->nresets].arg = arg;
	p->nresets++;
	return 0;
}

void procs_off_slot_reset(struct procs *p, procs_slot_reset_fn fn, void *arg)
{
	for (unsigned int i = 0; i < p->nresets; i++) {
		if (p->resets[i].fn == fn && p->resets[i].arg == arg) {
			p->resets[i] = p->resets[--p->nresets];
			return;
		}
	}
}

static void map_put(struct procs *p, __u32 pid, __u32 slot, enum es_role role)
{
	struct es_worker v = { .slot = slot, .role = (__u32)role };

	if (p->map_fd < 0)
		return;
	if (bpf_map_update_elem(p->map_fd, &pid, &v, BPF_ANY))
		log_warn("cannot update workers map", "pid=%u err=%d", pid, -errno);
	bump_generation(p);
}

static void map_del(struct procs *p, __u32 pid)
{
	if (p->map_fd >= 0 && !bpf_map_delete_elem(p->map_fd, &pid))
		bump_generation(p);
}

/* /proc/<pid>/stat: "pid (comm) state ppid ... starttime(22) ..."; comm may hold ')'. */
static int read_stat(__u32 pid, struct proc_stat *st)
{
	char path[64], buf[1024], *open_paren, *close_paren, *s;
	unsigned long long v;
	ssize_t n;
	int field;

	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	n = read_small_file(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	open_paren = strchr(buf, '(');
	close_paren = strrchr(buf, ')');
	if (!open_paren || !close_paren || close_paren < open_paren)
		return -EINVAL;
	n = close_paren - open_paren - 1;
	if (n > 16)
		n = 16;
	memcpy(st->comm, open_paren + 1, (size_t)n);
	st->comm[n] = 0;
	/* Fields after comm: 3 state, 4 ppid, ... 22 starttime. */
	s = close_paren + 1;
	for (field = 3; field <= 22; field++) {
		while (*s == ' ')
			s++;
		if (!*s)
			return -EINVAL;
		if (field == 3)
			st->state = *s;
		if (field == 4 || field == 9 || field == 22) {
			v = strtoull(s, NULL, 10);
			if (field == 4)
				st->ppid = (__u32)v;
			else if (field == 9)
				st->flags = (__u32)v;
			else
				st->starttime = v;
		}
		while (*s && *s != ' ')
			s++;
	}
	return 0;
}

static void exe_basename(__u32 pid, char *out, size_t size)
{
	char path[64], target[512], *base;
	ssize_t n;

	out[0] = 0;
	snprintf(path, sizeof(path), "/proc/%u/exe", pid);
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return;
	target[n] = 0;
	/* An exe replaced on disk reads "/path (deleted)". */
	if (n > 10 && !strcmp(target + n - 10, " (deleted)"))
		target[n - 10] = 0;
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	n = (ssize_t)strnlen(base, size - 1);
	memcpy(out, base, (size_t)n);
	out[n] = 0;
}

static struct worker *find(const struct procs *p, __u32 pid)
{
	for (unsigned int i = 0; i < p->max_workers; i++) {
		if (p->w[i].pid == pid && !p->w[i].exited)
			return &p->w[i];
	}
	return NULL;
}

const struct worker *procs_lookup(const struct procs *p, __u32 pid)
{
	return find(p, pid);
}

static struct overflow_entry *find_overflow(struct procs *p, __u32 pid)
{
	for (unsigned int i = 0; i < p->novf; i++) {
		if (p->ovf[i].pid == pid)
			return &p->ovf[i];
	}
	return NULL;
}

static void drop_overflow(struct procs *p, struct overflow_entry *o)
{
	map_del(p, o->pid);
	*o = p->ovf[--p->novf];
}

static void mark_exited(struct procs *p, struct worker *w, uint64_t now_ms)
{
	map_del(p, w->pid);
	w->exited = true;
	w->exited_ms = now_ms;
	log_debug("worker exited", "pid=%u role=%s", w->pid, role_name(w->role));
}

static int add_overflow(struct procs *p, __u32 pid, enum es_role role, __u64 starttime)
{
	/* the capacity, 64 doubled, stops at the map's size: full is novf == ES_WORKERS_MAP_MAX */
	_Static_assert(ES_WORKERS_MAP_MAX >= 64 && !(ES_WORKERS_MAP_MAX & (ES_WORKERS_MAP_MAX - 1)),
		       "ES_WORKERS_MAP_MAX is not 64 doubled");
	if (p->novf >= ES_WORKERS_MAP_MAX)
		return -ENOSPC;
	if (grow_array(&p->ovf, &p->ovf_cap, (size_t)p->novf + 1, sizeof(*p->ovf), 64))
		return -ENOMEM;
	p->ovf[p->novf++] = (struct overflow_entry){ pid, role, starttime };
	p->overflow_total[role]++;
	if (!p->overflowed[role])
		log_warn("more workers than --max-workers: counting the rest as worker=\"overflow\"",
			 "role=%s max_workers=%u", role_name(role), p->max_workers);
	p->overflowed[role] = true;
	map_put(p, pid, role, role);
	return 0;
}

static struct worker *alloc_worker(struct procs *p)
{
	for (unsigned int i = 0; i < p->max_workers; i++) {
		if (!p->w[i].pid) {
			__u32 slot = i + ES_SLOT_FIRST_WORKER;

			for (unsigned int h = 0; h < p->nresets; h++)
				p->resets[h].fn(p->resets[h].arg, slot);
			memset(&p->w[i], 0, sizeof(p->w[i]));
			p->w[i].slot = slot;
			return &p->w[i];
		}
	}
	return NULL;
}

/* Odoo's master keeps its argv; it is recognised as the parent of workers. */
static void promote_parent(struct procs *p, struct worker *child)
{
	struct worker *parent;

	if (child->role != ES_ROLE_ODOO_HTTP && child->role != ES_ROLE_ODOO_CRON &&
	    child->role != ES_ROLE_ODOO_GEVENT)
		return;
	parent = find(p, child->ppid);
	if (parent && parent->role == ES_ROLE_PYTHON) {
		parent->role = ES_ROLE_ODOO_MASTER;
		parent->ti.role = ES_ROLE_ODOO_MASTER;
		map_put(p, parent->pid, parent->slot, parent->role);
	}
}

/* Looks at pid again after the delays of a fork (or, exec, of an exec). */
static void queue_inspection(struct procs *p, __u32 pid, bool exec, uint64_t now_ms)
{
	struct pending *pe;

	if (p->npend == PENDING_MAX) {
		p->rescan_soon = true; /* a fork storm: let the full scan catch up */
		return;
	}
	pe = &p->pend[p->npend++];
	pe->pid = pid;
	pe->exec = exec;
	/* An exec was looked at already: its first round is done. */
	pe->round = exec ? 1 : 0;
	pe->due_ms = now_ms + (exec ? exec_delays[1] : fork_delays[0]);
}

/*
 * The kernel reports forks of tracked processes only; a process may fork
 * before it is first tracked (Odoo's master starting its workers), so a
 * newly tracked process's children are queued too.
 */
static void queue_children(struct procs *p, __u32 pid, uint64_t now_ms)
{
	char path[64], buf[4096], *s, *end;
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%u/task", pid);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%u/task/%.16s/children", pid, de->d_name);
		if (read_small_file(path, buf, sizeof(buf)) <= 0)
			continue;
		for (s = buf;; s = end) {
			unsigned long child = strtoul(s, &end, 10);

			if (end == s)
				break;
			if (child && child <= UINT32_MAX && !find(p, (__u32)child))
				queue_inspection(p, (__u32)child, false, now_ms);
		}
	}
	closedir(d);
}

/* Looks at one process; adds, updates or drops it. Returns 0 or -errno. */
static int inspect(struct procs *p, __u32 pid, uint64_t now_ms, bool scanning)
{
	char path[64], cmdline[CMDLINE_MAX], exe[256];
	struct overflow_entry *o;
	struct title_info ti;
	struct proc_stat st;
	struct worker *w;
	ssize_t n;
	int err;

	w = find(p, pid);
	o = w ? NULL : find_overflow(p, pid);
	err = read_stat(pid, &st);
	/* Exiting: its /proc entry outlives the exit event for a while. */
	if (!err && (st.state == 'Z' || st.state == 'X' || (st.flags & PF_EXITING)))
		err = -ESRCH;
	if (err) {
		/* Gone (or never was): forget it. */
		if (w)
			mark_exited(p, w, now_ms);
		if (o)
			drop_overflow(p, o);
		return err;
	}
	if (w && w->starttime != st.starttime) {
		mark_exited(p, w, now_ms); /* pid reused */
		w = NULL;
	}
	if (o && o->starttime != st.starttime) {
		drop_overflow(p, o);
		o = NULL;
	}
	snprintf(path, sizeof(path), "/proc/%u/cmdline", pid);
	n = read_small_file(path, cmdline, sizeof(cmdline));
	if (n < 0)
		n = 0;
	exe_basename(pid, exe, sizeof(exe));
	title_classify(cmdline, (size_t)n, exe, st.comm, &ti);
	/* An Odoo master stays a master while its title says python. */
	if (w && w->role == ES_ROLE_ODOO_MASTER && ti.role == ES_ROLE_PYTHON)
		ti.role = ES_ROLE_ODOO_MASTER;

	if (ti.role == ES_ROLE_OTHER) {
		if (w)
			mark_exited(p, w, now_ms); /* exec'd into something untracked */
		if (o)
			drop_overflow(p, o);
		return 0;
	}
	if (o) {
		if (o->role != ti.role) {
			o->role = ti.role;
			map_put(p, pid, ti.role, ti.role);
		}
		return 0;
	}
	if (!w) {
		w = alloc_worker(p);
		if (!w)
			return add_overflow(p, pid, ti.role, st.starttime);
		w->pid = pid;
		w->starttime = st.starttime;
		w->role = ES_ROLE_COUNT; /* forces the map write below */
		snprintf(w->label, sizeof(w->label), "%u", pid);
		log_debug("tracking worker", "pid=%u role=%s slot=%u", pid, role_name(ti.role),
			  w->slot);
		if (!scanning)
			queue_children(p, pid, now_ms);
	}
	w->ppid = st.ppid;
	memcpy(w->comm, st.comm, sizeof(w->comm));
	w->seen_scan = p->scan_gen;
	w->ti = ti;
	if (w->role != ti.role) {
		w->role = ti.role;
		map_put(p, pid, w->slot, w->role);
	}
	promote_parent(p, w);
	return 0;
}

int procs_scan(struct procs *p, uint64_t now_ms)
{
	struct dirent *de;
	unsigned int tracked = 0;
	DIR *d = opendir("/proc");

	if (!d)
		return -errno;
	p->scan_gen++;
	p->scans++;
	while ((de = readdir(d))) {
		char *end;
		unsigned long pid = strtoul(de->d_name, &end, 10);

		if (*end || !pid || pid > UINT32_MAX)
			continue;
		inspect(p, (__u32)pid, now_ms, true);
	}
	closedir(d);
	/* Second pass: parents recognised after their children. */
	for (unsigned int i = 0; i < p->max_workers; i++) {
		struct worker *w = &p->w[i];

		if (!w->pid || w->exited)
			continue;
		if (w->seen_scan != p->scan_gen) {
			mark_exited(p, w, now_ms);
			continue;
		}
		promote_parent(p, w);
		tracked++;
	}
	p->last_scan_ms = now_ms;
	p->rescan_soon = false;
	return (int)tracked;
}

void procs_event(struct procs *p, __u32 type, __u32 pid, uint64_t now_ms)
{
	struct worker *w;
	bool exec = type == ES_PROC_EXEC;

	if (type == ES_PROC_EXIT) {
		struct overflow_entry *o = find_overflow(p, pid);

		/* A late look at a dying pid would track it again. */
		for (unsigned int i = 0; i < p->npend;) {
			if (p->pend[i].pid == pid)
				p->pend[i] = p->pend[--p->npend];
			else
				i++;
		}

		w = find(p, pid);
		if (w)
			mark_exited(p, w, now_ms);
		if (o)
			drop_overflow(p, o);
		return;
	}
	/* An exec'd image may fork at once: look now, not at the next tick. */
	if (exec)
		inspect(p, pid, now_ms, false);
	queue_inspection(p, pid, exec, now_ms);
}

void procs_tick(struct procs *p, uint64_t now_ms, unsigned int rescan_ms)
{
	unsigned int i = 0;
	uint64_t drops;
	int err;

	/* A lost fork or exec is a process nobody looks at: the scan finds it. */
	if (p->drops_fd >= 0 && !bpf_percpu_sum_u64(p->drops_fd, 0, &drops))
		procs_note_drops(p, drops);
	if (p->rescan_soon || !p->last_scan_ms || now_ms - p->last_scan_ms >= rescan_ms)
		procs_scan(p, now_ms);
	while (i < p->npend) {
		struct pending *pe = &p->pend[i];
		const unsigned int *delays = pe->exec ? exec_delays : fork_delays;

		if (pe->due_ms > now_ms) {
			i++;
			continue;
		}
		/* Gone (no /proc entry, or exiting): nothing more to learn. */
		err = inspect(p, pe->pid, now_ms, false);
		if (err == -ENOENT || err == -ESRCH || ++pe->round >= NDELAYS) {
			*pe = p->pend[--p->npend];
		} else {
			pe->due_ms = now_ms + delays[pe->round] - delays[pe->round - 1];
			i++;
		}
	}
	/* Nobody scrapes: do not hold slots of dead workers forever. */
	for (i = 0; i < p->max_workers; i++) {
		if (p->w[i].pid && p->w[i].exited && now_ms - p->w[i].exited_ms > EXITED_KEEP_MS)
			p->w[i].pid = 0;
	}
}

void procs_scrape_done(struct procs *p, uint64_t scrape_start_ms)
{
	for (unsigned int i = 0; i < p->max_workers; i++) {
		if (p->w[i].pid && p->w[i].exited && p->w[i].exited_ms <= scrape_start_ms)
			p->w[i].pid = 0;
	}
}

void procs_for_each_slot(const struct procs *p, procs_slot_fn fn, void *arg)
{
	struct slot_view sv;

	for (unsigned int r = 0; r < ES_ROLE_COUNT; r++) {
		if (r != ES_ROLE_OTHER && !p->overflowed[r])
			continue;
		sv.slot = r;
		sv.role = (enum es_role)r;
		sv.worker = r == ES_ROLE_OTHER ? "all" : "overflow";
		sv.w = NULL;
		fn(arg, &sv);
	}
	for (unsigned int i = 0; i < p->max_workers; i++) {
		const struct worker *w = &p->w[i];

		if (!w->pid)
			continue;
		sv.slot = w->slot;
		sv.role = w->role;
		sv.worker = w->label;
		sv.w = w;
		fn(arg, &sv);
	}
}

__u64 procs_starttime(__u32 pid)
{
	struct proc_stat st;

	return read_stat(pid, &st) ? 0 : st.starttime;
}

int procs_slot_view(const struct procs *p, __u32 slot, struct slot_view *out)
{
	const struct worker *w;

	if (slot < ES_SLOT_FIRST_WORKER) {
		if (slot != ES_ROLE_OTHER && !p->overflowed[slot])
			return -ENOENT;
		out->slot = slot;
		out->role = (enum es_role)slot;
		out->worker = slot == ES_ROLE_OTHER ? "all" : "overflow";
		out->w = NULL;
		return 0;
	}
	if (slot - ES_SLOT_FIRST_WORKER >= p->max_workers)
		return -ENOENT;
	w = &p->w[slot - ES_SLOT_FIRST_WORKER];
	if (!w->pid)
		return -ENOENT;
	out->slot = slot;
	out->role = w->role;
	out->worker = w->label;
	out->w = w;
	return 0;
}

static void info_sample(void *arg, const struct slot_view *sv)
{
	struct expo *e = arg;
	const struct worker *w = sv->w;
	char pid[16];
	struct expo_label l[6] = {
		{ "role", role_name(sv->role) },
		{ "worker", sv->worker },
		{ "pid", pid },
		{ "comm", w ? w->comm : "" },
	};
	size_t n = 4;

	if (!w)
		return;
	snprintf(pid, sizeof(pid), "%u", w->pid);
	if (w->role == ES_ROLE_PG_BACKEND || w->role == ES_ROLE_ODOO_CRON)
		l[n++] = (struct expo_label){ "db", w->ti.db };
	if (w->role == ES_ROLE_PG_BACKEND)
		l[n++] = (struct expo_label){ "user", w->ti.user };
	expo_sample(e, l, n, 1);
}

void procs_collect(const struct procs *p, struct expo *e)
{
	unsigned int per_role[ES_ROLE_COUNT] = { 0 };
	struct expo_label l[1];

	expo_family(e, "erpscope_worker_info", EXPO_GAUGE,
		    "Tracked workers: role, stable worker id, pid, comm; db and user for PostgreSQL backends.");
	procs_for_each_slot(p, info_sample, e);

	for (unsigned int i = 0; i < p->max_workers; i++) {
		if (p->w[i].pid && !p->w[i].exited)
			per_role[p->w[i].role]++;
	}
	for (unsigned int i = 0; i < p->novf; i++)
		per_role[p->ovf[i].role]++;
	expo_family(e, "erpscope_workers_tracked", EXPO_GAUGE,
		    "Processes currently tracked per role, including those over --max-workers.");
	for (unsigned int r = 1; r < ES_ROLE_COUNT; r++) {
		l[0] = (struct expo_label){ "role", role_name((enum es_role)r) };
		expo_sample_u64(e, l, 1, per_role[r]);
	}
	expo_family(e, "erpscope_worker_overflow_total", EXPO_COUNTER,
		    "Workers counted under worker=\"overflow\" because --max-workers slots were taken.");
	for (unsigned int r = 1; r < ES_ROLE_COUNT; r++) {
		l[0] = (struct expo_label){ "role", role_name((enum es_role)r) };
		expo_sample_u64(e, l, 1, p->overflow_total[r]);
	}
	expo_family(e, "erpscope_proc_scans_total", EXPO_COUNTER,
		    "Full scans of /proc (periodic, and after lost lifecycle events).");
	expo_sample_u64(e, NULL, 0, p->scans);
}
