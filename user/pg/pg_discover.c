// SPDX-License-Identifier: GPL-2.0
/*
 * PostgreSQL server binaries: found at the usual install paths and from the
 * executables of running PostgreSQL processes, told apart by (device,
 * inode) so an upgraded binary at the same path is a new one. Each binary's
 * .note.stapsdt notes say which postgresql:* probes it has; the probe's
 * programs are attached to each binary with pid -1 (every process running
 * it, now or later), so a running server is not needed. A binary without
 * notes is logged once and reported in erpscope_pg_binary_info.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "core/bpfutil.h"
#include "core/elfsym.h"
#include "core/erpscope.h"
#include "core/expo.h"
#include "core/grow.h"
#include "core/log.h"
#include "pg/pg.h"
#include "pg.skel.h"
#include "core/usdt_arg.h"

#define PG_MAX_LINKS 32
#define PG_MAX_BINS ES_PG_MAX_BINS /* a binary's index is its pg_bins slot */
#define PG_MAX_NOTES 512

/* Where distributions install the server. */
static const char *const install_globs[] = {
	"/usr/lib/postgresql/*/bin/postgres", /* Debian, Ubuntu */
	"/usr/pgsql-*/bin/postgres", /* PGDG RPMs */
	"/usr/local/pgsql/bin/postgres", /* source builds */
	"/usr/bin/postgres",
};

/* Probe name -> program; required ones decide whether a binary is usable. */
static const struct pg_usdt {
	const char *probe;
	const char *prog;
	bool required;
	bool uprobe; /* a plain uprobe at the note: libbpf cannot parse its arguments */
	/*
	 * With uprobe: the program to attach through libbpf's USDT runtime
	 * instead where usdt_arg_parse() cannot place the first argument;
	 * otherwise the uprobe's cookie carries it (see enum es_pg_reg).
	 */
	const char *usdt_prog;
} usdts[] = {
	{ "query__start", "es_pg_query_start", true, false, NULL },
	{ "query__done", "es_pg_query_done", true, true, "es_pg_query_done_usdt" },
	{ "transaction__commit", "es_pg_xact_commit", false, false, NULL },
	{ "transaction__abort", "es_pg_xact_abort", false, false, NULL },
	{ "lock__wait__start", "es_pg_lock_start", false, false, NULL },
	{ "lock__wait__done", "es_pg_lock_done", false, false, NULL },
	{ "deadlock__found", "es_pg_deadlock", false, false, NULL },
	{ "smgr__md__read__done", "es_pg_read_done", false, false, NULL },
	{ "checkpoint__start", "es_pg_ckpt_start", false, false, NULL },
	{ "checkpoint__done", "es_pg_ckpt_done", false, true, NULL },
	{ "buffer__sync__written", "es_pg_buf_written", false, false, NULL },
};

struct pg_note {
	char name[64];
	char args[96]; /* the argument specs, "4@60(%rax)" */
	uint64_t va; /* link-time address of the probe site */
	uint64_t off; /* file offset of the probe site */
	uint64_t sema_off; /* file offset of its semaphore, 0: none */
};

/* Link-time addresses of the globals the kernel reads (see struct es_pg_bin). */
struct pg_syms {
	uint64_t text, myproc, mybeentry, dqs, myport, mydb;
};

struct pg_bin {
	dev_t dev;
	ino_t ino;
	char path[PATH_MAX]; /* what is attached to: a path, or /proc/<pid>/exe */
	char shown[PATH_MAX]; /* for people: the path (" (deleted)" for an old one) */
	bool usdt;
	bool attached;
	bool kernel_commits; /* commits counted at query__done, not transaction__commit */
	bool one_trap; /* statements on query__done alone (struct es_pg_bin) */
	bool done_direct; /* query__done's argument from the cookie, not libbpf's runtime */
	bool start_failed_logged;
	struct pg_note start_note; /* query__start, attached while a server needs it */
	struct bpf_link *start_link; /* one_trap: query__start for servers on two probes */
	unsigned int two_pms; /* live postmasters of it on two probes (struct es_pg_pm) */
	unsigned int nprobes;
	struct bpf_link *links[PG_MAX_LINKS];
	unsigned int nlinks;
};

/*
 * Reads the postgresql provider's USDT notes of path. Returns how many
 * (0: none), or -errno when the file is not a readable ELF file.
 */
static int read_notes(const char *path, struct pg_note *out, int max, struct pg_syms *syms)
{
	struct stapsdt_iter it;
	struct stapsdt_note note;
	int fd, n = 0, err;
	Elf *elf;

	err = elf_open_path(path, &fd, &elf);
	if (err)
		return err;
	err = stapsdt_begin(elf, &it);
	if (err) {
		if (err == -ENOENT)
			err = 0; /* no notes */
		goto out;
	}
	syms->text = elf_exec_vaddr(elf);
	syms->myproc = elf_symbol(elf, "MyProc", NULL);
	syms->mybeentry = elf_symbol(elf, "MyBEEntry", NULL);
	syms->dqs = elf_symbol(elf, "debug_query_string", NULL);
	syms->myport = elf_symbol(elf, "MyProcPort", NULL);
	syms->mydb = elf_symbol(elf, "MyDatabaseId", NULL);
	while (n < max && stapsdt_next(&it, &note) > 0) {
		if (note.name_len >= sizeof(out[n].name) || strcmp(note.provider, "postgresql"))
			continue;
		if (elf_va_to_off(elf, note.pc, &out[n].off))
			continue;
		out[n].sema_off = 0;
		if (note.sema && elf_va_to_off(elf, note.sema, &out[n].sema_off))
			continue;
		out[n].va = note.pc;
		snprintf(out[n].name, sizeof(out[n].name), "%.*s", (int)note.name_len, note.name);
		snprintf(out[n].args, sizeof(out[n].args), "%.*s",
			 (int)(note.args_len < sizeof(out[n].args) ? note.args_len :
								     sizeof(out[n].args) - 1),
			 note.args);
		n++;
	}
	err = n;
out:
	elf_close_path(fd, elf);
	return err;
}

static void bin_detach(struct pg_bin *b)
{
	for (unsigned int i = 0; i < b->nlinks; i++)
		bpf_link__destroy(b->links[i]);
	b->nlinks = 0;
	bpf_link__destroy(b->start_link);
	b->start_link = NULL;
	b->attached = false;
}

static int count_notes(const struct pg_note *notes, int nn, const char *name, int *last)
{
	int k = 0;

	for (int i = 0; i < nn; i++) {
		if (!strcmp(notes[i].name, name)) {
			k++;
			*last = i;
		}
	}
	return k;
}

/*
 * What the kernel needs to know of a binary (struct es_pg_bin): lxid's
 * offset from transaction__commit's argument ("4@60(%rax)": MyProc->lxid),
 * the globals from the symbols. one_trap needs a single query__done and
 * transaction__abort site and the status entry and query text globals.
 */
static void bin_info(const struct pg_note *notes, int nn, const struct pg_syms *syms,
		     bool one_trap_ok, struct es_pg_bin *kb)
{
	int done = -1, commit = -1, abort_ = -1, size, off;
	char reg[16];

	memset(kb, 0, sizeof(*kb));
	if (!syms->text || count_notes(notes, nn, "query__done", &done) != 1)
		return;
	kb->text_va = syms->text;
	kb->myport_va = syms->myport;
	kb->mydb_va = syms->mydb;
	if (count_notes(notes, nn, "transaction__abort", &abort_) == 1)
		kb->abort_va = notes[abort_].va;
	if (syms->myproc && count_notes(notes, nn, "transaction__commit", &commit) == 1 &&
	    sscanf(notes[commit].args, "%d@%d(%%%15[^)])", &size, &off, reg) == 3 && size == 4 &&
	    off > 0 && off < 4096) {
		kb->myproc_va = syms->myproc;
		kb->lxid_off = (__u32)off + 1;
	}
	if (one_trap_ok && syms->mybeentry && syms->dqs && kb->abort_va) {
		kb->mybeentry_va = syms->mybeentry;
		kb->dqs_va = syms->dqs;
		kb->one_trap = 1;
	}
}

/* Whether every site of d's probe has a first argument the cookie can carry. */
static bool args_direct(const struct pg_priv *pp, const struct pg_usdt *d,
			const struct pg_note *notes, int nn)
{
	struct usdt_arg_loc loc;

	if (!d->usdt_prog)
		return true;
	if (!pp->es->cfg.pg_direct_args)
		return false;
	for (int i = 0; i < nn; i++) {
		if (!strcmp(notes[i].name, d->probe) && usdt_arg_parse(notes[i].args, 0, &loc))
			return false;
	}
	return true;
}

/*
 * Attaches d's program to the probe site n (a plain uprobe) or to every
 * site of the probe (through libbpf's USDT runtime). direct: d's argument
 * goes in the uprobe's cookie (args_direct()).
 */
static struct bpf_link *attach_one(struct pg_priv *pp, const struct pg_bin *b,
				   const struct pg_usdt *d, const struct pg_note *n, bool direct)
{
	bool uprobe = d->uprobe && (direct || !d->usdt_prog);
	const char *name = uprobe || !d->usdt_prog ? d->prog : d->usdt_prog;
	struct bpf_program *prog = bpf_object__find_program_by_name(pp->skel->obj, name);
	__u64 slot1 = (__u64)(b - pp->bins) + 1;

	if (!prog) {
		errno = ENOENT;
		return NULL;
	}
	if (uprobe) {
		struct usdt_arg_loc loc = { 0 };
		LIBBPF_OPTS(bpf_uprobe_opts, o, .ref_ctr_offset = n->sema_off);

		if (d->usdt_prog && !usdt_arg_parse(n->args, 0, &loc))
			o.bpf_cookie = ES_PG_COOKIE(slot1, loc.reg, loc.deref, loc.off);
		else
			o.bpf_cookie = slot1;
		return bpf_program__attach_uprobe_opts(prog, -1, b->path, n->off, &o);
	} else {
		/* The cookie says which binary: its pg_bins slot + 1. */
		LIBBPF_OPTS(bpf_usdt_opts, uo, .usdt_cookie = slot1);

		return bpf_program__attach_usdt(prog, -1, b->path, "postgresql", d->probe, &uo);
	}
}

/* Attaches every program whose probe the binary has. */
static int bin_attach(struct pg_priv *pp, struct pg_bin *b, const struct pg_note *notes, int nn,
		      const struct pg_syms *syms)
{
	__u32 slot = (__u32)(b - pp->bins);
	struct es_pg_bin kb;
	char q[PATH_MAX + 8];
	int err = 0;

	bin_info(notes, nn, syms, pp->es->cfg.pg_single_probe, &kb);
	b->kernel_commits = kb.lxid_off != 0;
	b->one_trap = kb.one_trap;
	if (bpf_map_update_elem(bpf_map__fd(pp->skel->maps.pg_bins), &slot, &kb, BPF_ANY))
		return -errno;

	for (size_t u = 0; u < sizeof(usdts) / sizeof(usdts[0]); u++) {
		const struct pg_usdt *d = &usdts[u];
		bool found = false, direct = args_direct(pp, d, notes, nn);

		if (!strcmp(d->probe, "query__done"))
			b->done_direct = direct;
		for (int i = 0; i < nn; i++) {
			struct bpf_link *l;

			if (strcmp(notes[i].name, d->probe))
				continue;
			/* A trap per block read from the OS: only when asked for. */
			if (!pp->es->cfg.pg_buffer_misses && !strcmp(d->probe, "smgr__md__read__done")) {
				found = true;
				break;
			}
			/* Counted at query__done: one uprobe less per statement. */
			if (b->kernel_commits && !strcmp(d->probe, "transaction__commit")) {
				found = true;
				break;
			}
			/* Timed at query__done alone: one more uprobe less. */
			if (b->one_trap && !strcmp(d->probe, "query__start")) {
				b->start_note = notes[i];
				found = true;
				break;
			}
			if (found && !(d->uprobe && direct))
				break; /* libbpf attached every site of the probe at once */
			found = true;
			l = attach_one(pp, b, d, &notes[i], direct);
			if (!l) {
				err = -errno;
				log_debug("cannot attach to a PostgreSQL probe",
					  "probe=pg usdt=%s path=%s err=%d", d->probe,
					  log_quote(q, sizeof(q), b->shown), err);
				if (d->required)
					goto fail;
				continue;
			}
			if (b->nlinks < PG_MAX_LINKS)
				b->links[b->nlinks++] = l;
			else
				bpf_link__destroy(l);
		}
		if (found)
			b->nprobes++;
		else if (d->required)
			goto missing;
		else
			log_debug("PostgreSQL binary lacks a probe", "probe=pg usdt=%s path=%s",
				  d->probe, log_quote(q, sizeof(q), b->shown));
	}
	b->attached = true;
	return 0;
missing:
	err = -ENOENT;
fail:
	bin_detach(b);
	return err ? err : -ENOENT;
}

/*
 * A server (postmaster pm) of a binary on query__done alone whose
 * backends' start stamps stopped moving (track_activities off, for the
 * server or a session) or whose status entries did not check out goes
 * back to timing statements from query__start: attach it to the binary
 * (once for all its servers), then mark the server for the kernel. Returns
 * whether it moved.
 */
static bool pm_to_two_probes(struct pg_priv *pp, struct pg_bin *b, __u32 pm,
			     const struct es_pg_pm *v)
{
	int fd = bpf_map__fd(pp->skel->maps.pg_pms);
	struct es_pg_pm nv = *v;
	char q[PATH_MAX + 8];

	if (!b->start_link) {
		b->start_link = attach_one(pp, b, &usdts[0], &b->start_note, false);
		if (!b->start_link) {
			if (!b->start_failed_logged)
				log_warn("cannot attach query__start to time statements without PostgreSQL's start stamps",
					 "probe=pg path=%s err=%d",
					 log_quote(q, sizeof(q), b->shown), -errno);
			b->start_failed_logged = true;
			return false;
		}
	}
	nv.two_probes = 1;
	if (bpf_map_update_elem(fd, &pm, &nv, BPF_EXIST))
		return false;
	log_info("PostgreSQL statements the server did not stamp: timing this server's from query__start until it exits, one more uprobe per statement for the binary's servers meanwhile",
		 "probe=pg path=%s postmaster=%u why=\"%s\"", log_quote(q, sizeof(q), b->shown),
		 pm, v->stale ? "track_activities off?" :
				"backend status entries do not match PostgreSQL 15's layout");
	return true;
}

struct pms_walk {
	struct pg_priv *pp;
	bool changed; /* a server moved or went: cached modes expire */
};

/* One server in pg_pms: forgotten when gone, moved to two probes when due. */
static bool pm_visit(void *arg, const void *key, const void *value)
{
	struct pms_walk *w = arg;
	const struct es_pg_pm *v = value;
	__u32 pm = *(const __u32 *)key;
	struct pg_bin *b = NULL;

	if (kill((pid_t)pm, 0) && errno == ESRCH) {
		w->changed = true;
		return true;
	}
	if (v->slot1 && v->slot1 <= w->pp->nbins)
		b = &w->pp->bins[v->slot1 - 1];
	if (!b || !b->attached || !b->one_trap)
		return false;
	if (!v->two_probes && (v->stale || v->no_status) && pm_to_two_probes(w->pp, b, pm, v))
		w->changed = true;
	else if (!v->two_probes)
		return false;
	b->two_pms++;
	/* Detached after a failed walk: the server still needs it. */
	if (!b->start_link)
		b->start_link = attach_one(w->pp, b, &usdts[0], &b->start_note, false);
	return false;
}

void pg_pms_check(struct pg_priv *pp)
{
	struct pms_walk w = { .pp = pp };
	char q[PATH_MAX + 8];

	int err;

	for (size_t i = 0; i < pp->nbins; i++)
		pp->bins[i].two_pms = 0;
	err = bpf_hash_delete_if(bpf_map__fd(pp->skel->maps.pg_pms), sizeof(__u32),
				 sizeof(struct es_pg_pm), false, pm_visit, &w);
	if (w.changed)
		__atomic_add_fetch(&pp->skel->bss->pms_gen, 1, __ATOMIC_RELEASE);
	if (err < 0)
		return; /* not every server was seen: detach nothing */
	/* The last server on two probes went (a restart): one probe again. */
	for (size_t i = 0; i < pp->nbins; i++) {
		struct pg_bin *b = &pp->bins[i];

		if (!b->start_link || b->two_pms)
			continue;
		bpf_link__destroy(b->start_link);
		b->start_link = NULL;
		log_info("PostgreSQL servers timed from query__start are gone: query__start detached, one uprobe per statement again",
			 "probe=pg path=%s", log_quote(q, sizeof(q), b->shown));
	}
}

static struct pg_bin *bin_find(struct pg_priv *pp, dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < pp->nbins; i++) {
		if (pp->bins[i].dev == dev && pp->bins[i].ino == ino)
			return &pp->bins[i];
	}
	return NULL;
}

/* Looks at a binary not seen before: reads its notes, attaches. */
static void bin_add(struct pg_priv *pp, const char *path, const char *shown, dev_t dev, ino_t ino)
{
	struct pg_note *notes;
	struct pg_syms syms = { 0 };
	char q[PATH_MAX + 8];
	struct pg_bin *b;
	int nn, err;

	if (pp->nbins >= PG_MAX_BINS)
		return;
	if (grow_array(&pp->bins, &pp->capbins, pp->nbins + 1, sizeof(*pp->bins), 4))
		return;
	b = &pp->bins[pp->nbins++];
	memset(b, 0, sizeof(*b));
	b->dev = dev;
	b->ino = ino;
	snprintf(b->path, sizeof(b->path), "%s", path);
	snprintf(b->shown, sizeof(b->shown), "%s", shown);
	log_quote(q, sizeof(q), shown);
	notes = calloc(PG_MAX_NOTES, sizeof(*notes));
	nn = notes ? read_notes(path, notes, PG_MAX_NOTES, &syms) : -ENOMEM;
	if (nn < 0) {
		log_warn("cannot read PostgreSQL binary", "probe=pg path=%s err=%d", q, nn);
		goto out;
	}
	b->usdt = nn > 0;
	if (!b->usdt) {
		log_warn(
			"PostgreSQL binary lacks USDT probes (built without --enable-dtrace): its statements, locks and checkpoints are not seen",
			"probe=pg path=%s", q);
		goto out;
	}
	err = bin_attach(pp, b, notes, nn, &syms);
	if (err == -EACCES || err == -EPERM)
		log_warn(
			"cannot attach to a PostgreSQL binary found after erpscope dropped its capabilities (uprobes need CAP_SYS_ADMIN on this kernel): restart erpscope to see its statements",
			"probe=pg path=%s err=%d", q, err);
	else if (err)
		log_warn("cannot attach to PostgreSQL binary", "probe=pg path=%s err=%d", q, err);
	if (err)
		goto out;
	pp->nattached++;
	log_info("attached to PostgreSQL binary",
		 "probe=pg path=%s probes=%u links=%u commits=%s statements=%s done_args=%s", q,
		 b->nprobes, b->nlinks, b->kernel_commits ? "query__done" : "transaction__commit",
		 b->one_trap ? "query__done" : "query__start+query__done",
		 b->done_direct ? "register" : "libbpf");
out:
	free(notes);
}

int pg_bins_scan_installed(struct pg_priv *pp)
{
	for (size_t g = 0; g < sizeof(install_globs) / sizeof(install_globs[0]); g++) {
		glob_t gl;

		if (glob(install_globs[g], 0, NULL, &gl))
			continue;
		for (size_t i = 0; i < gl.gl_pathc; i++) {
			struct stat st;

			/* Root's only: another's is taken when a server runs it. */
			if (stat(gl.gl_pathv[i], &st) || !S_ISREG(st.st_mode) ||
			    !pg_bin_owner_ok(st.st_uid, 0) || bin_find(pp, st.st_dev, st.st_ino))
				continue;
			bin_add(pp, gl.gl_pathv[i], gl.gl_pathv[i], st.st_dev, st.st_ino);
		}
		globfree(&gl);
	}
	return (int)pp->nattached;
}

bool pg_bin_owner_ok(uid_t owner, uid_t proc_uid)
{
	return owner == 0 || owner == proc_uid;
}

static bool refused(const struct pg_priv *pp, dev_t dev, ino_t ino)
{
	unsigned int n = pp->nrefused < 16 ? pp->nrefused : 16;

	for (unsigned int i = 0; i < n; i++) {
		if (pp->refused[i].dev == dev && pp->refused[i].ino == ino)
			return true;
	}
	return false;
}

/*
 * The path to attach to and read: the link's target where it names this
 * very file here, else the same path under the process's root (a
 * container), else /proc/<pid>/exe itself (replaced, or not reachable).
 */
static void exe_path(__u32 pid, const char *target, const struct stat *want, char *out,
		     size_t size)
{
	struct stat st;

	if (target[0] == '/' && !strstr(target, " (deleted)") && !stat(target, &st) &&
	    st.st_dev == want->st_dev && st.st_ino == want->st_ino) {
		snprintf(out, size, "%s", target);
		return;
	}
	snprintf(out, size, "/proc/%u/root%s", pid, target);
	if (target[0] == '/' && !strstr(target, " (deleted)") && !stat(out, &st) &&
	    st.st_dev == want->st_dev && st.st_ino == want->st_ino)
		return;
	snprintf(out, size, "/proc/%u/exe", pid);
}

void pg_bins_check_pid(struct pg_priv *pp, __u32 pid, dev_t *dev, ino_t *ino, bool *known)
{
	char exe[32], target[PATH_MAX], path[PATH_MAX + 32], q[PATH_MAX + 8];
	struct stat st, proc;
	ssize_t n;
	int fd;

	*known = false;
	/* The process's own file, whatever its mount namespace calls it. */
	snprintf(exe, sizeof(exe), "/proc/%u/exe", pid);
	fd = open(exe, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		goto out;
	*dev = st.st_dev;
	*ino = st.st_ino;
	*known = true;
	if (bin_find(pp, st.st_dev, st.st_ino) || refused(pp, st.st_dev, st.st_ino))
		goto out;
	n = readlink(exe, target, sizeof(target) - 1);
	if (n <= 0)
		goto out;
	target[n] = 0;
	/* /proc/<pid> is owned by the process's effective uid. */
	snprintf(path, sizeof(path), "/proc/%u", pid);
	if (stat(path, &proc))
		goto out;
	if (!pg_bin_owner_ok(st.st_uid, proc.st_uid)) {
		unsigned int i = pp->nrefused++ % 16;

		pp->refused[i].dev = st.st_dev;
		pp->refused[i].ino = st.st_ino;
		log_warn("not reading a PostgreSQL binary owned by neither root nor the user it runs as",
			 "probe=pg path=%s pid=%u owner=%u uid=%u",
			 log_quote(q, sizeof(q), target), pid, (unsigned int)st.st_uid,
			 (unsigned int)proc.st_uid);
		goto out;
	}
	exe_path(pid, target, &st, path, sizeof(path));
	bin_add(pp, path, target, st.st_dev, st.st_ino);
out:
	close(fd);
}

void pg_bins_free(struct pg_priv *pp)
{
	for (size_t i = 0; i < pp->nbins; i++)
		bin_detach(&pp->bins[i]);
	free(pp->bins);
	pp->bins = NULL;
	pp->nbins = pp->capbins = 0;
	pp->nattached = 0;
}

/* The reasons a statement was not timed, as pg_bin_stats counts them. */
static const char *const untimed_reasons[ES_PG_BIN_STAT_COUNT] = {
	[ES_PG_BIN_STALE] = "no_stamp",
	[ES_PG_BIN_NO_STATUS] = "no_status",
	[ES_PG_BIN_CLOCK_STEP] = "clock_step",
};

static void untimed_collect(struct pg_priv *pp, struct expo *e)
{
	int fd = bpf_map__fd(pp->skel->maps.pg_bin_stats);
	struct expo_label l;

	expo_family(
		e, "erpscope_pg_statements_untimed_total", EXPO_COUNTER,
		"PostgreSQL statements seen ending but not timed (nor counted in calls), by reason: no_stamp (track_activities off, before the switch to two probes), no_status (the backend's status entry did not check out), clock_step (its start stamp may predate a wall-clock step).");
	for (unsigned int r = 0; r < ES_PG_BIN_STAT_COUNT; r++) {
		uint64_t sum = 0, v;

		for (size_t i = 0; i < pp->nbins; i++)
			if (!bpf_percpu_sum_u64(fd, (__u32)i * ES_PG_BIN_STAT_COUNT + r, &v))
				sum += v;
		l = (struct expo_label){ "reason", untimed_reasons[r] };
		expo_sample_u64(e, &l, 1, sum);
	}
	expo_family(
		e, "erpscope_pg_clock_steps_total", EXPO_COUNTER,
		"Wall-clock steps seen (CLOCK_REALTIME - CLOCK_MONOTONIC moved by more than 1 ms between two 100 ms readings).");
	expo_sample_u64(e, NULL, 0, pp->clock_steps);
}

void pg_bins_collect(struct pg_priv *pp, struct expo *e)
{
	struct expo_label l[4];

	expo_family(
		e, "erpscope_pg_binary_info", EXPO_GAUGE,
		"PostgreSQL server binaries found: usdt=\"true\" when it has probes, attached=\"true\" when erpscope's programs are attached to it, statements=the probes that time its statements when attached (query__done alone, or query__start+query__done).");
	for (size_t i = 0; i < pp->nbins; i++) {
		const struct pg_bin *b = &pp->bins[i];

		l[0] = (struct expo_label){ "path", b->shown };
		l[1] = (struct expo_label){ "usdt", b->usdt ? "true" : "false" };
		l[2] = (struct expo_label){ "attached", b->attached ? "true" : "false" };
		l[3] = (struct expo_label){ "statements", b->one_trap && !b->start_link ?
								  "query__done" :
								  "query__start+query__done" };
		expo_sample_u64(e, l, b->attached ? 4 : 3, 1);
	}
	untimed_collect(pp, e);
}
