// SPDX-License-Identifier: GPL-2.0
/*
 * The tcp probe's uprobes, per pool worker. A syscall tracepoint would put
 * every syscall of every process on the kernel's slow tracing path while it
 * is enabled; a uprobe attached with a pid is armed in that process's memory
 * only (for all its threads), so nothing else on the host pays.
 *
 * Each worker gets one BPF link: a uprobe session (v6.13) over accept,
 * accept4, select and pselect of the C library it maps, found in
 * /proc/<pid>/maps and opened through /proc/<pid>/root so a container's own
 * libc is the one probed. Not one perf event per function and direction
 * (libbpf's bpf_program__attach_uprobe_opts): releasing each of those waits
 * for an RCU tasks-trace grace period while holding the kernel's global
 * event_mutex (0.1-0.2 s apiece measured here, so 8 per worker stalled the
 * loop for 1-2 s and blocked every tracepoint or uprobe attach on the host
 * meanwhile); a session link waits once, without that lock. Even that wait
 * is kept off the main loop: a detached link's fd goes to a thread that
 * closes it.
 *
 * The table follows the process table on the poller's 100 ms tick, one
 * entry per worker slot: a live worker of a pool role is attached, at most
 * ATTACH_PER_TICK a tick; a worker that exited, was replaced in its slot or
 * left the pool is detached and its per-thread state in the kernel deleted.
 * A process is tried once: one that fails stays uninstrumented (its pool
 * state unknown) until it goes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "core/bpfutil.h"
#include "core/clock.h"
#include "core/elfsym.h"
#include "core/erpscope.h"
#include "core/expo.h"
#include "core/kfeatures.h"
#include "core/log.h"
#include "core/poller.h"
#include "core/uprobe_site.h"
#include "procs/proctable.h"
#include "tcp/tcp.h"
#include "tcp/tcp_pool_attach.h"

/* New workers attached per tick: a burst of forks must not stall the main loop. */
#define ATTACH_PER_TICK 8

/* uapi values newer than the installed headers (v6.6, v6.13). */
#define ES_BPF_LINK_CREATE 28
#define ES_BPF_TRACE_UPROBE_SESSION 57

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

/* What is hooked in the C library, and the cookie the program reads. */
static const struct hook {
	const char *func;
	__u64 cookie;
} hooks[] = {
	{ "accept", ES_TCP_HOOK_ACCEPT },
	{ "accept4", ES_TCP_HOOK_ACCEPT },
	{ "select", ES_TCP_HOOK_SELECT },
	{ "pselect", ES_TCP_HOOK_SELECT },
};
#define NHOOKS (sizeof(hooks) / sizeof(hooks[0]))

/* Basenames of the C library as maps shows it: glibc >= 2.34, older glibc, musl. */
static const char *const libc_names[] = { "libc.so.", "libc-2.", "ld-musl-" };

/* The functions' file offsets in one C library file. */
struct libc_syms {
	dev_t dev;
	ino_t ino;
	__u64 off[NHOOKS];
	__u64 cookie[NHOOKS];
	__u32 n;
};

struct pool_proc {
	__u32 pid; /* 0: nothing attached or tried in this slot */
	__u64 starttime;
	uint64_t seen; /* the sync pass that last saw it wanted */
	int link; /* -1: tried and failed */
};

struct tcp_pool_attach {
	int prog_fd;
	uint32_t roles;
	int threads_fd;
	unsigned int nprocs;
	struct pool_proc *procs; /* by slot - ES_SLOT_FIRST_WORKER */
	struct libc_syms libc; /* the last C library read: most workers share it */
	uint64_t pass;
	unsigned int budget; /* attaches left in this pass */
	unsigned int attached;
	uint64_t failures;
	bool warned;
	int closer[2]; /* pipe: link fds for the closer thread */
	pthread_t closer_thread;
	bool closer_up;
};

/* ---------------------------------------------------------------- closing links */

/* Closes the link fds it is sent until the pipe's write end goes. */
static void *closer_main(void *arg)
{
	struct tcp_pool_attach *pa = arg;
	int fd;

	while (read(pa->closer[0], &fd, sizeof(fd)) == sizeof(fd))
		close(fd);
	return NULL;
}

static void close_link(struct tcp_pool_attach *pa, int fd)
{
	if (fd < 0)
		return;
	if (!pa->closer_up || write(pa->closer[1], &fd, sizeof(fd)) != sizeof(fd))
		close(fd);
}

int tcp_pool_attach_prepare(struct bpf_program *prog)
{
	bpf_program__set_autoattach(prog, false);
	/* Decided by BTF: the kfunc came with kprobe sessions (v6.10), before uprobe ones. */
	if (!feature_enum_value("bpf_attach_type", "BPF_TRACE_UPROBE_SESSION")) {
		bpf_program__set_autoload(prog, false);
		log_warn("kernel without uprobe sessions (6.13): no pool occupancy or listen queue wait for HTTP workers");
		return -EOPNOTSUPP;
	}
	return bpf_program__set_expected_attach_type(prog, ES_BPF_TRACE_UPROBE_SESSION);
}

struct tcp_pool_attach *tcp_pool_attach_new(struct bpf_program *prog, uint32_t roles,
					    int threads_fd, unsigned int nslots)
{
	struct tcp_pool_attach *pa = calloc(1, sizeof(*pa));
	sigset_t all, old;

	if (!pa)
		return NULL;
	pa->prog_fd = bpf_program__fd(prog);
	pa->roles = roles;
	pa->threads_fd = threads_fd;
	pa->nprocs = nslots > ES_SLOT_FIRST_WORKER ? nslots - ES_SLOT_FIRST_WORKER : 0;
	pa->procs = calloc(pa->nprocs ? pa->nprocs : 1, sizeof(*pa->procs));
	if (!pa->procs || pipe2(pa->closer, O_CLOEXEC)) {
		free(pa->procs);
		free(pa);
		return NULL;
	}
	/*
	 * The thread takes no signal: the main loop reads them from a signalfd.
	 * Without it links are closed in place: slower, still correct.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pa->closer_up = !pthread_create(&pa->closer_thread, NULL, closer_main, pa);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!pa->closer_up)
		log_warn("cannot start the tcp link closer thread: detaching will block the loop");
	return pa;
}

void tcp_pool_attach_free(struct tcp_pool_attach *pa)
{
	if (!pa)
		return;
	for (unsigned int i = 0; i < pa->nprocs; i++) {
		if (pa->procs[i].pid)
			close_link(pa, pa->procs[i].link);
	}
	close(pa->closer[1]);
	if (pa->closer_up)
		pthread_join(pa->closer_thread, NULL);
	close(pa->closer[0]);
	free(pa->procs);
	free(pa);
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

/* The hooked functions' file offsets in path (st: its stat), cached for the last file. */
static int libc_syms(struct tcp_pool_attach *pa, const char *path, const struct stat *st)
{
	struct libc_syms *ls = &pa->libc;
	Elf *elf;
	int fd, err;

	if (ls->n && ls->dev == st->st_dev && ls->ino == st->st_ino)
		return 0;
	memset(ls, 0, sizeof(*ls));
	err = elf_open_path(path, &fd, &elf);
	if (err)
		return err;
	for (size_t i = 0; i < NHOOKS; i++) {
		uint64_t va = elf_function(elf, hooks[i].func), off;
		unsigned char code[32];
		ssize_t got;

		if (!va || elf_va_to_off(elf, va, &off))
			continue;
		/* Past a first instruction the kernel would single-step (accept4's cmpb). */
		got = pread(fd, code, sizeof(code), (off_t)off);
		if (got > 0)
			off += uprobe_cheap_site(code, (size_t)got);
		ls->off[ls->n] = off;
		ls->cookie[ls->n++] = hooks[i].cookie;
	}
	elf_close_path(fd, elf);
	if (!ls->n)
		return -ENOENT;
	ls->dev = st->st_dev;
	ls->ino = st->st_ino;
	return 0;
}

/* ---------------------------------------------------------------- attach, detach */

static bool thread_of_pid(void *arg, const void *key, const void *value)
{
	return ((const struct es_tcp_thread *)value)->tgid == *(const __u32 *)arg;
}

static void detach(struct tcp_pool_attach *pa, struct pool_proc *pp)
{
	if (pp->link >= 0) {
		close_link(pa, pp->link);
		/* A reused tid must not inherit this worker's state. */
		bpf_hash_delete_if(pa->threads_fd, sizeof(__u32), sizeof(struct es_tcp_thread), false,
				   thread_of_pid, &pp->pid);
		pa->attached--;
		log_debug("tcp pool worker detached", "pid=%u", pp->pid);
	}
	memset(pp, 0, sizeof(*pp));
}

static int link_create(struct tcp_pool_attach *pa, const char *path, __u32 pid)
{
	union link_attr a;
	int fd;

	memset(&a, 0, sizeof(a));
	a.um.prog_fd = (__u32)pa->prog_fd;
	a.um.attach_type = ES_BPF_TRACE_UPROBE_SESSION;
	a.um.path = (__u64)(uintptr_t)path;
	a.um.offsets = (__u64)(uintptr_t)pa->libc.off;
	a.um.cookies = (__u64)(uintptr_t)pa->libc.cookie;
	a.um.cnt = pa->libc.n;
	a.um.pid = pid;
	fd = (int)syscall(__NR_bpf, ES_BPF_LINK_CREATE, &a, sizeof(a));
	return fd < 0 ? -errno : fd;
}

static int attach(struct tcp_pool_attach *pa, struct pool_proc *pp, const struct worker *w)
{
	char path[PATH_MAX + 32];
	uint64_t t0 = clock_ns();
	struct stat st;
	int err;

	pp->pid = w->pid;
	pp->starttime = w->starttime;
	pp->link = -1;
	err = find_libc(w->pid, path, sizeof(path), &st);
	if (err == -ENOENT) {
		pa->failures++;
		log_debug("no C library found in the worker's maps: its pool state stays unknown",
			  "pid=%u", w->pid);
		return err;
	}
	if (!err)
		err = libc_syms(pa, path, &st);
	if (!err)
		err = link_create(pa, path, w->pid);
	if (err >= 0) {
		pp->link = err;
		pa->attached++;
		log_debug("tcp pool worker attached", "pid=%u libc=%s took_us=%llu", w->pid, path,
			  (unsigned long long)((clock_ns() - t0) / 1000));
		return 0;
	}
	/* Gone meanwhile: no failure, the next pass drops the entry. */
	if (err == -ESRCH || procs_starttime(w->pid) != w->starttime) {
		log_debug("tcp pool worker exited while attaching", "pid=%u err=%d", w->pid, err);
		return err;
	}
	pa->failures++;
	if (!pa->warned) {
		log_warn("cannot attach to a pool worker: its pool state stays unknown (later failures are logged at debug)",
			 "pid=%u libc=%s err=%d", w->pid, path, err);
		pa->warned = true;
	} else {
		log_debug("cannot attach to a pool worker", "pid=%u err=%d", w->pid, err);
	}
	return err;
}

/* ---------------------------------------------------------------- sync */

static bool pool_role(const struct tcp_pool_attach *pa, enum es_role r)
{
	return (unsigned int)r < 32 && (pa->roles & (1u << r));
}

static void sync_slot(void *arg, const struct slot_view *sv)
{
	struct tcp_pool_attach *pa = arg;
	const struct worker *w = sv->w;
	struct pool_proc *pp;

	if (!w || w->exited || !pool_role(pa, sv->role) || sv->slot < ES_SLOT_FIRST_WORKER ||
	    sv->slot - ES_SLOT_FIRST_WORKER >= pa->nprocs)
		return;
	pp = &pa->procs[sv->slot - ES_SLOT_FIRST_WORKER];
	if (pp->pid && (pp->pid != w->pid || pp->starttime != w->starttime))
		detach(pa, pp);
	if (!pp->pid) {
		if (!pa->budget)
			return; /* the next tick */
		pa->budget--;
		attach(pa, pp, w);
	}
	pp->seen = pa->pass;
}

void tcp_pool_attach_sync(struct tcp_pool_attach *pa, const struct procs *procs)
{
	pa->pass++;
	pa->budget = ATTACH_PER_TICK;
	procs_for_each_slot(procs, sync_slot, pa);
	/* Exited, out of the pool, or their slot freed. */
	for (unsigned int i = 0; i < pa->nprocs; i++) {
		if (pa->procs[i].pid && pa->procs[i].seen != pa->pass)
			detach(pa, &pa->procs[i]);
	}
}

void tcp_pool_attach_collect(const struct tcp_pool_attach *pa, struct expo *e)
{
	if (!pa)
		return;
	expo_family(e, "erpscope_tcp_pool_processes_attached", EXPO_GAUGE,
		    "Pool workers (odoo_http) whose C library's accept/select functions carry the tcp probe's uprobes.");
	expo_sample_u64(e, NULL, 0, pa->attached);
	expo_family(e, "erpscope_tcp_pool_attach_failures_total", EXPO_COUNTER,
		    "Pool workers the tcp probe could not attach to (no C library found in their maps, or the attach failed): their busy/idle state is unknown.");
	expo_sample_u64(e, NULL, 0, pa->failures);
}

/* ---------------------------------------------------------------- the poller */

/* Always up: the tcp probe may be off, then a tick does nothing. */
static int pool_poll_init(struct poller *pl)
{
	return 0;
}

/* Runs every tick: a new worker is instrumented within 100 ms of being tracked. */
static void pool_poll_tick(struct poller *pl, uint64_t now_ms)
{
	struct tcp_pool_attach *pa = tcp_probe_pool(pl->es);

	if (pa)
		tcp_pool_attach_sync(pa, pl->es->procs);
}

const struct poller_ops tcp_pool_poller_ops = {
	.name = "tcp_pool",
	.interval_ms = 100,
	.init = pool_poll_init,
	.tick = pool_poll_tick,
};
