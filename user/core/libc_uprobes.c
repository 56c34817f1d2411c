// SPDX-License-Identifier: GPL-2.0
/*
 * Per-process uprobe sessions on the C library (see core/libc_uprobes.h).
 *
 * A syscall tracepoint would put every syscall of every process on the
 * kernel's slow tracing path while it is enabled; a uprobe attached with a
 * pid is armed in that process's memory only (for all its threads), so
 * nothing else on the host pays.
 *
 * Each process gets one BPF link, or two: a uprobe session (v6.13) over the
 * hooked functions that may want their return, and a plain entry uprobe
 * link (v6.6) over those that never do (libc_hook.entry_only). Why two: the
 * kernel calls every process's consumer of a probed function, and a
 * session's consumer for another pid answers "want the return"; with two
 * processes attached, each call of a session-hooked function in either
 * paid a return trap, whatever its own program answered. Both links cover
 * functions of the C library the process maps, found in /proc/<pid>/maps and opened
 * through /proc/<pid>/root so a container's own libc is the one probed. Not
 * one perf event per function and direction (libbpf's
 * bpf_program__attach_uprobe_opts): releasing each of those waits for an RCU
 * tasks-trace grace period while holding the kernel's global event_mutex
 * (0.1-0.2 s apiece measured here, so 8 per worker stalled the loop for
 * 1-2 s and blocked every tracepoint or uprobe attach on the host
 * meanwhile); a session link waits once, without that lock. Even that wait
 * is kept off the main loop: a detached link's fd goes to threads that
 * close it. Several, because waits that overlap share a grace period: one
 * thread alone closed a link per ~0.15 s under load, so a daemon stopping
 * with 100 workers attached took 15 s. Until both its links are closed, a
 * detached process that still runs still runs the programs: its detached()
 * callback and the reuse of its index (and of its pid, should it come back
 * that fast) wait for that, so the state cleared there stays cleared.
 *
 * At most ATTACH_PER_PASS new processes are attached per pass, so a burst
 * of forks does not stall the main loop. A process is tried once: one that
 * fails stays uninstrumented until it goes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "core/clock.h"
#include "core/elfsym.h"
#include "core/kfeatures.h"
#include "core/libc_uprobes.h"
#include "core/log.h"
#include "core/uprobe_site.h"

#define ATTACH_PER_PASS 8
/* Threads closing detached links (see above). */
#define CLOSERS 4

/* uapi values newer than the installed headers (v6.6, v6.13). */
#define ES_BPF_LINK_CREATE 28
#define ES_BPF_TRACE_UPROBE_MULTI 48
#define ES_BPF_TRACE_UPROBE_SESSION 57

/* A process's links: the session's, the plain entry uprobes'. */
enum { LU_SESSION, LU_ENTRY, LU_KINDS };

/* union bpf_attr's link_create for uprobe_multi and sessions (v6.6). */
union link_attr {
	struct {
		__u32 prog_fd;
		__u32 target_fd;
		__u32 attach_type;
		__u32 flags;
		__aligned_u64 path;
		__aligned_u64 offsets;
		__aligned_u64 ref_ctr_offsets;
		__aligned_u64 cookies;
		__u32 cnt;
		__u32 uflags;
		__u32 pid;
	} um;
	char size[144]; /* the rest stays zero, as the kernel checks */
};

/* Basenames of the C library as maps shows it: glibc >= 2.34, older glibc, musl. */
static const char *const libc_names[] = { "libc.so.", "libc-2.", "ld-musl-" };

/* The functions' file offsets in one C library file, per link kind. */
struct libc_syms {
	dev_t dev;
	ino_t ino;
	__u64 off[LU_KINDS][LIBC_UPROBES_MAX_HOOKS];
	__u64 cookie[LU_KINDS][LIBC_UPROBES_MAX_HOOKS];
	__u32 n[LU_KINDS];
};

struct lu_proc {
	__u32 pid; /* 0: nothing attached or tried at this index */
	__u64 starttime;
	uint64_t seen; /* the pass that last wanted it */
	bool up; /* its links are: false after a failed try */
	unsigned int index; /* libc_uprobes_ops.indexes: 1.., 0 for none */
	int link[LU_KINDS]; /* -1: none of that kind */
};

/* A detached process whose links the closer threads have not all closed yet. */
struct lu_gone {
	__u32 pid;
	unsigned int index;
	atomic_int left; /* its links still open */
};

/* What a closer thread is sent: a link, and whose. */
struct lu_close {
	int fd;
	struct lu_gone *g;
};

struct libc_uprobes {
	int prog_fd[LU_KINDS]; /* -1: no program of that kind */
	const char *what;
	struct libc_hook hooks[LIBC_UPROBES_MAX_HOOKS];
	unsigned int nhooks;
	struct libc_uprobes_ops ops;
	unsigned int nprocs;
	struct lu_proc *procs;
	struct libc_syms libc; /* the last C library read: most processes share it */
	uint64_t pass;
	unsigned int budget; /* attaches left in this pass */
	unsigned int attached;
	uint64_t failures;
	bool *index_used; /* [ops.indexes]: index i + 1 is a process's, or its links are closing */
	struct lu_gone **gone; /* detached, links closing */
	unsigned int ngone, gone_cap;
	bool warned;
	int closer[2]; /* pipe: link fds for the closer threads */
	pthread_t closers[CLOSERS];
	unsigned int nclosers; /* started */
};

/* ---------------------------------------------------------------- closing links */

/*
 * Closes the links it is sent until the pipe's write end goes (a pipe
 * passes writes of up to PIPE_BUF bytes whole), and counts each closed.
 */
static void *closer_main(void *arg)
{
	struct libc_uprobes *lu = arg;
	struct lu_close m;

	while (read(lu->closer[0], &m, sizeof(m)) == sizeof(m)) {
		close(m.fd);
		atomic_fetch_sub(&m.g->left, 1);
	}
	return NULL;
}

/* A record of pp's links closing, in lu->gone; NULL when there is no memory for it. */
static struct lu_gone *gone_add(struct libc_uprobes *lu, const struct lu_proc *pp)
{
	struct lu_gone *g;

	if (lu->ngone == lu->gone_cap) {
		unsigned int cap = lu->gone_cap ? 2 * lu->gone_cap : 16;
		struct lu_gone **n = realloc(lu->gone, cap * sizeof(*n));

		if (!n)
			return NULL;
		lu->gone = n;
		lu->gone_cap = cap;
	}
	g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->pid = pp->pid;
	g->index = pp->index;
	atomic_init(&g->left, (pp->link[LU_SESSION] >= 0) + (pp->link[LU_ENTRY] >= 0));
	lu->gone[lu->ngone++] = g;
	return g;
}

/* g's link fd, closed by a closer thread (here when there is none). */
static void close_link(struct libc_uprobes *lu, int fd, struct lu_gone *g)
{
	struct lu_close m = { .fd = fd, .g = g };

	if (fd < 0)
		return;
	if (lu->nclosers && write(lu->closer[1], &m, sizeof(m)) == sizeof(m))
		return;
	close(fd);
	atomic_fetch_sub(&g->left, 1);
}

int libc_uprobes_prepare(struct bpf_program *prog, struct bpf_program *entry_prog,
			 const char *what)
{
	int err = 0;

	if (prog)
		bpf_program__set_autoattach(prog, false);
	if (entry_prog)
		bpf_program__set_autoattach(entry_prog, false);
	/* Decided by BTF: the kfunc came with kprobe sessions (v6.10), before uprobe ones. */
	if (!feature_enum_value("bpf_attach_type", prog ? "BPF_TRACE_UPROBE_SESSION" :
							   "BPF_TRACE_UPROBE_MULTI")) {
		if (prog)
			bpf_program__set_autoload(prog, false);
		if (entry_prog)
			bpf_program__set_autoload(entry_prog, false);
		log_warn(prog ? "kernel without uprobe sessions (6.13): no per-worker C library uprobes" :
				"kernel without multi-uprobe links (6.6): no per-worker C library uprobes",
			 "for=%s", what);
		return -EOPNOTSUPP;
	}
	if (prog)
		err = bpf_program__set_expected_attach_type(prog, ES_BPF_TRACE_UPROBE_SESSION);
	if (!err && entry_prog)
		err = bpf_program__set_expected_attach_type(entry_prog, ES_BPF_TRACE_UPROBE_MULTI);
	return err;
}

struct libc_uprobes *libc_uprobes_new(struct bpf_program *prog, struct bpf_program *entry_prog,
				      const struct libc_hook *hooks, unsigned int nhooks,
				      unsigned int nprocs, const char *what,
				      const struct libc_uprobes_ops *ops)
{
	struct libc_uprobes *lu;
	sigset_t all, old;

	if (nhooks > LIBC_UPROBES_MAX_HOOKS)
		return NULL;
	for (unsigned int i = 0; i < nhooks; i++) {
		if (hooks[i].entry_only ? !entry_prog : !prog)
			return NULL;
	}
	lu = calloc(1, sizeof(*lu));
	if (!lu)
		return NULL;
	lu->prog_fd[LU_SESSION] = prog ? bpf_program__fd(prog) : -1;
	lu->prog_fd[LU_ENTRY] = entry_prog ? bpf_program__fd(entry_prog) : -1;
	lu->what = what;
	memcpy(lu->hooks, hooks, nhooks * sizeof(*hooks));
	lu->nhooks = nhooks;
	lu->ops = *ops;
	lu->nprocs = nprocs;
	lu->procs = calloc(nprocs ? nprocs : 1, sizeof(*lu->procs));
	lu->index_used = calloc(ops->indexes ? ops->indexes : 1, sizeof(*lu->index_used));
	if (!lu->procs || !lu->index_used || pipe2(lu->closer, O_CLOEXEC)) {
		free(lu->index_used);
		free(lu->procs);
		free(lu);
		return NULL;
	}
	/*
	 * The thread takes no signal: the main loop reads them from a signalfd.
	 * Without it links are closed in place: slower, still correct.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	while (lu->nclosers < CLOSERS &&
	       !pthread_create(&lu->closers[lu->nclosers], NULL, closer_main, lu))
		lu->nclosers++;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!lu->nclosers)
		log_warn("cannot start the link closer thread: detaching will block the loop",
			 "for=%s", what);
	return lu;
}

void libc_uprobes_free(struct libc_uprobes *lu)
{
	if (!lu)
		return;
	/* Detached as at the end of a pass, their callbacks left out: the maps go too. */
	for (unsigned int i = 0; i < lu->nprocs; i++) {
		struct lu_proc *pp = &lu->procs[i];
		struct lu_gone *g = pp->pid && pp->up ? gone_add(lu, pp) : NULL;

		for (int k = 0; g && k < LU_KINDS; k++)
			close_link(lu, pp->link[k], g);
		for (int k = 0; !g && pp->pid && pp->up && k < LU_KINDS; k++) {
			if (pp->link[k] >= 0)
				close(pp->link[k]);
		}
	}
	close(lu->closer[1]);
	for (unsigned int i = 0; i < lu->nclosers; i++)
		pthread_join(lu->closers[i], NULL);
	close(lu->closer[0]);
	for (unsigned int i = 0; i < lu->ngone; i++)
		free(lu->gone[i]);
	free(lu->gone);
	free(lu->index_used);
	free(lu->procs);
	free(lu);
}

/* ---------------------------------------------------------------- the C library */

static bool is_libc(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	for (size_t i = 0; i < sizeof(libc_names) / sizeof(libc_names[0]); i++) {
		if (!strncmp(base, libc_names[i], strlen(libc_names[i])))
			return true;
	}
	return false;
}

/*
 * The C library pid maps, as /proc/<pid>/root<path>, into out. -ENOENT when
 * none is mapped or the path names another file now (replaced, deleted),
 * -ESRCH when the process is gone.
 */
static int find_libc(__u32 pid, char *out, size_t size, struct stat *st)
{
	char p[64], line[PATH_MAX + 256];
	unsigned long long ino = 0;
	bool skip = false, found = false;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%u/maps", pid);
	f = fopen(p, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	while (!found && fgets(line, sizeof(line), f)) {
		size_t ll = strlen(line);
		bool whole = ll && line[ll - 1] == '\n';
		int pos = 0;

		/* The rest of a line longer than the buffer. */
		if (skip || !whole) {
			skip = !whole;
			continue;
		}
		line[ll - 1] = 0;
		if (sscanf(line, "%*x-%*x %*s %*x %*x:%*x %llu %n", &ino, &pos) < 1 || !pos ||
		    line[pos] != '/' || !is_libc(line + pos))
			continue;
		if (snprintf(out, size, "/proc/%u/root%s", pid, line + pos) < (int)size)
			found = true;
	}
	fclose(f);
	if (!found)
		return -ENOENT;
	if (stat(out, st))
		return errno == ENOENT ? -ENOENT : -errno;
	return st->st_ino == ino ? 0 : -ENOENT;
}

/*
 * Past a first instruction the kernel would single-step: glibc's syscall
 * wrappers (accept, accept4, recv, send, close, ...) open with a
 * RIP-relative `cmpb $0,__libc_single_threaded(%rip)`; see
 * core/uprobe_site.c.
 */
static uint64_t cheap_site(int fd, uint64_t off)
{
	unsigned char b[32];
	ssize_t n = pread(fd, b, sizeof(b), (off_t)off);

	return n > 0 ? uprobe_cheap_site(b, (size_t)n) : 0;
}

/* The hooked functions' file offsets in path (st: its stat), cached for the last file. */
static int libc_syms(struct libc_uprobes *lu, const char *path, const struct stat *st)
{
	struct libc_syms *ls = &lu->libc;
	Elf *elf;
	int fd, err;

	if ((ls->n[LU_SESSION] || ls->n[LU_ENTRY]) && ls->dev == st->st_dev &&
	    ls->ino == st->st_ino)
		return 0;
	memset(ls, 0, sizeof(*ls));
	err = elf_open_path(path, &fd, &elf);
	if (err)
		return err;
	for (size_t i = 0; i < lu->nhooks; i++) {
		uint64_t va = elf_function(elf, lu->hooks[i].func), off;
		int k = lu->hooks[i].entry_only ? LU_ENTRY : LU_SESSION;

		if (!va || elf_va_to_off(elf, va, &off))
			continue;
		ls->off[k][ls->n[k]] = off + cheap_site(fd, off);
		ls->cookie[k][ls->n[k]++] = lu->hooks[i].cookie;
	}
	elf_close_path(fd, elf);
	if (!ls->n[LU_SESSION] && !ls->n[LU_ENTRY])
		return -ENOENT;
	ls->dev = st->st_dev;
	ls->ino = st->st_ino;
	return 0;
}

/* ---------------------------------------------------------------- attach, detach */

/* The lowest free process index (libc_uprobes_ops.indexes), 0 when none is. */
static unsigned int index_take(struct libc_uprobes *lu)
{
	for (unsigned int i = 0; i < lu->ops.indexes; i++) {
		if (!lu->index_used[i]) {
			lu->index_used[i] = true;
			return i + 1;
		}
	}
	return 0;
}

static void index_put(struct libc_uprobes *lu, unsigned int index)
{
	if (index && index <= lu->ops.indexes)
		lu->index_used[index - 1] = false;
}

/* Its links are closed: no program runs for it any more. */
static void gone_done(struct libc_uprobes *lu, __u32 pid, unsigned int index)
{
	/* A reused tid must not inherit this process's state. */
	if (lu->ops.detached)
		lu->ops.detached(lu->ops.arg, pid, index);
	index_put(lu, index);
}

/* The detached processes whose links are all closed now: done with. */
static void gone_reap(struct libc_uprobes *lu)
{
	unsigned int i = 0;

	while (i < lu->ngone) {
		struct lu_gone *g = lu->gone[i];

		if (atomic_load(&g->left) > 0) {
			i++;
			continue;
		}
		gone_done(lu, g->pid, g->index);
		free(g);
		lu->gone[i] = lu->gone[--lu->ngone];
	}
}

/* Whether pid's last links are still closing. */
static bool gone_pending(const struct libc_uprobes *lu, __u32 pid)
{
	for (unsigned int i = 0; i < lu->ngone; i++) {
		if (lu->gone[i]->pid == pid)
			return true;
	}
	return false;
}

static void detach(struct libc_uprobes *lu, struct lu_proc *pp)
{
	struct lu_gone *g = pp->up ? gone_add(lu, pp) : NULL;

	if (pp->up) {
		lu->attached--;
		log_debug("uprobes detached", "for=%s pid=%u", lu->what, pp->pid);
	}
	if (g) {
		for (int k = 0; k < LU_KINDS; k++)
			close_link(lu, pp->link[k], g);
	} else if (pp->up) {
		/* No memory to wait with: closed here, on the loop. */
		for (int k = 0; k < LU_KINDS; k++) {
			if (pp->link[k] >= 0)
				close(pp->link[k]);
		}
		gone_done(lu, pp->pid, pp->index);
	} else {
		index_put(lu, pp->index);
	}
	memset(pp, 0, sizeof(*pp));
}

/* The link of kind k over the functions found for it into *fd (-1: none were found). */
static int link_create(struct libc_uprobes *lu, const char *path, __u32 pid, unsigned int index,
		       int k, int *fd)
{
	__u64 cookies[LIBC_UPROBES_MAX_HOOKS];
	union link_attr a;

	*fd = -1;
	if (!lu->libc.n[k])
		return 0;
	for (__u32 i = 0; i < lu->libc.n[k]; i++)
		cookies[i] = (lu->libc.cookie[k][i] & 0xffffffffu) | (__u64)index << 32;
	memset(&a, 0, sizeof(a));
	a.um.prog_fd = (__u32)lu->prog_fd[k];
	a.um.attach_type = k == LU_SESSION ? ES_BPF_TRACE_UPROBE_SESSION : ES_BPF_TRACE_UPROBE_MULTI;
	a.um.path = (__u64)(uintptr_t)path;
	a.um.offsets = (__u64)(uintptr_t)lu->libc.off[k];
	a.um.cookies = (__u64)(uintptr_t)cookies;
	a.um.cnt = lu->libc.n[k];
	a.um.pid = pid;
	*fd = (int)syscall(__NR_bpf, ES_BPF_LINK_CREATE, &a, sizeof(a));
	return *fd < 0 ? -errno : 0;
}

/* Both kinds' links, or neither: -errno. */
static int links_create(struct libc_uprobes *lu, struct lu_proc *pp, const char *path, __u32 pid)
{
	int k, err;

	for (k = 0; k < LU_KINDS; k++) {
		err = link_create(lu, path, pid, pp->index, k, &pp->link[k]);
		if (err)
			goto fail;
	}
	return 0;
fail:
	/* Closed here: the index is given back at once, so no program may run with it after. */
	while (k--) {
		if (pp->link[k] >= 0)
			close(pp->link[k]);
		pp->link[k] = -1;
	}
	return err;
}

static int attach(struct libc_uprobes *lu, struct lu_proc *pp, __u32 pid, __u64 starttime)
{
	char path[PATH_MAX + 32];
	uint64_t t0 = clock_ns();
	struct stat st;
	int err;

	pp->pid = pid;
	pp->starttime = starttime;
	pp->up = false;
	pp->link[LU_SESSION] = pp->link[LU_ENTRY] = -1;
	err = find_libc(pid, path, sizeof(path), &st);
	if (err == -ENOENT) {
		lu->failures++;
		log_debug("no C library found in the process's maps: not instrumented",
			  "for=%s pid=%u", lu->what, pid);
		return err;
	}
	if (!err)
		err = libc_syms(lu, path, &st);
	if (!err) {
		pp->index = index_take(lu);
		err = links_create(lu, pp, path, pid);
		if (err) {
			index_put(lu, pp->index);
			pp->index = 0;
		}
	}
	if (!err) {
		pp->up = true;
		lu->attached++;
		if (lu->ops.attached)
			lu->ops.attached(lu->ops.arg, pid, pp->index);
		log_debug("uprobes attached", "for=%s pid=%u libc=%s took_us=%llu", lu->what, pid,
			  path, (unsigned long long)((clock_ns() - t0) / 1000));
		return 0;
	}
	/* Gone meanwhile: no failure, the next pass drops the entry. */
	if (err == -ESRCH || (lu->ops.starttime && lu->ops.starttime(pid) != starttime)) {
		log_debug("process exited while attaching", "for=%s pid=%u err=%d", lu->what, pid,
			  err);
		return err;
	}
	lu->failures++;
	if (!lu->warned) {
		log_warn("cannot attach uprobes to a worker (later failures are logged at debug)",
			 "for=%s pid=%u libc=%s err=%d", lu->what, pid, path, err);
		lu->warned = true;
	} else {
		log_debug("cannot attach uprobes to a worker", "for=%s pid=%u err=%d", lu->what,
			  pid, err);
	}
	return err;
}

/* ---------------------------------------------------------------- passes */

void libc_uprobes_begin(struct libc_uprobes *lu)
{
	gone_reap(lu);
	lu->pass++;
	lu->budget = ATTACH_PER_PASS;
}

void libc_uprobes_want(struct libc_uprobes *lu, unsigned int idx, __u32 pid, __u64 starttime)
{
	struct lu_proc *pp;

	if (idx >= lu->nprocs || !pid)
		return;
	pp = &lu->procs[idx];
	if (pp->pid && (pp->pid != pid || pp->starttime != starttime))
		detach(lu, pp);
	if (!pp->pid) {
		/* The next pass: no budget left, or its pid's last links still closing. */
		if (!lu->budget || gone_pending(lu, pid))
			return;
		lu->budget--;
		attach(lu, pp, pid, starttime);
	}
	pp->seen = lu->pass;
}

void libc_uprobes_end(struct libc_uprobes *lu)
{
	for (unsigned int i = 0; i < lu->nprocs; i++) {
		if (lu->procs[i].pid && lu->procs[i].seen != lu->pass)
			detach(lu, &lu->procs[i]);
	}
}

bool libc_uprobes_tried(const struct libc_uprobes *lu, unsigned int idx, __u32 pid,
			__u64 starttime)
{
	const struct lu_proc *pp;

	if (!lu || idx >= lu->nprocs)
		return false;
	pp = &lu->procs[idx];
	return pp->pid == pid && pp->starttime == starttime;
}

unsigned int libc_uprobes_attached(const struct libc_uprobes *lu)
{
	return lu ? lu->attached : 0;
}

uint64_t libc_uprobes_failures(const struct libc_uprobes *lu)
{
	return lu ? lu->failures : 0;
}
