// SPDX-License-Identifier: GPL-2.0
/*
 * Uprobes of the tcp probe, per pool worker. A syscall tracepoint would put
 * every syscall of every process on the kernel's slow tracing path while it
 * is enabled; a uprobe attached with a pid is armed in that process's
 * memory only (for all its threads: the kernel filters on the process's mm),
 * so nothing else on the host pays.
 *
 * The table follows the process table on the poller's 100 ms tick, one
 * entry per worker slot: a live worker of a pool role gets the C library it
 * maps (/proc/<pid>/maps, opened through /proc/<pid>/root so a container's
 * own libc is the one probed), at most ATTACH_PER_TICK processes a tick; a
 * worker that exited, was replaced in its slot or left the pool loses its
 * links and its per-thread state in the kernel. A process is tried once: one
 * that fails stays uninstrumented (its pool state unknown) until it goes.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpfutil.h"
#include "clock.h"
#include "erpscope.h"
#include "expo.h"
#include "log.h"
#include "poller.h"
#include "proctable.h"
#include "tcp.h"
#include "tcp_pool_attach.h"

/* New workers attached per tick: a burst of forks must not stall the main loop. */
#define ATTACH_PER_TICK 8

/* What is hooked in the C library; the programs are picked by kind. */
enum hook_prog { HOOK_ACC_IN, HOOK_ACC_OUT, HOOK_SEL_IN, HOOK_SEL_OUT };

static const struct hook {
	const char *func;
	enum hook_prog prog;
	bool ret;
} hooks[] = {
	{ "accept", HOOK_ACC_IN, false },  { "accept", HOOK_ACC_OUT, true },
	{ "accept4", HOOK_ACC_IN, false }, { "accept4", HOOK_ACC_OUT, true },
	{ "select", HOOK_SEL_IN, false },  { "select", HOOK_SEL_OUT, true },
	{ "pselect", HOOK_SEL_IN, false }, { "pselect", HOOK_SEL_OUT, true },
};
#define NHOOKS (sizeof(hooks) / sizeof(hooks[0]))

/* Basenames of the C library as maps shows it: glibc >= 2.34, older glibc, musl. */
static const char *const libc_names[] = { "libc.so.", "libc-2.", "ld-musl-" };

struct pool_proc {
	__u32 pid; /* 0: nothing attached or tried in this slot */
	__u64 starttime;
	uint64_t seen; /* the sync pass that last saw it wanted */
	bool attached; /* else it was tried and failed */
	struct bpf_link *links[NHOOKS];
};

struct tcp_pool_attach {
	struct bpf_program *progs[4]; /* by enum hook_prog */
	uint32_t roles;
	int threads_fd;
	unsigned int nprocs;
	struct pool_proc *procs; /* by slot - ES_SLOT_FIRST_WORKER */
	uint64_t pass;
	unsigned int budget; /* attaches left in this pass */
	unsigned int attached;
	uint64_t failures;
	bool warned;
};

struct tcp_pool_attach *tcp_pool_attach_new(const struct tcp_pool_progs *progs, uint32_t roles,
					    int threads_fd, unsigned int nslots)
{
	struct tcp_pool_attach *pa = calloc(1, sizeof(*pa));

	if (!pa)
		return NULL;
	pa->progs[HOOK_ACC_IN] = progs->acc_in;
	pa->progs[HOOK_ACC_OUT] = progs->acc_out;
	pa->progs[HOOK_SEL_IN] = progs->sel_in;
	pa->progs[HOOK_SEL_OUT] = progs->sel_out;
	pa->roles = roles;
	pa->threads_fd = threads_fd;
	pa->nprocs = nslots > ES_SLOT_FIRST_WORKER ? nslots - ES_SLOT_FIRST_WORKER : 0;
	pa->procs = calloc(pa->nprocs ? pa->nprocs : 1, sizeof(*pa->procs));
	if (!pa->procs) {
		free(pa);
		return NULL;
	}
	return pa;
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
static int find_libc(__u32 pid, char *out, size_t size)
{
	char p[64], line[PATH_MAX + 256];
	unsigned long long ino = 0;
	bool skip = false, found = false;
	struct stat st;
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
	if (stat(out, &st))
		return errno == ENOENT ? -ENOENT : -errno;
	return st.st_ino == ino ? 0 : -ENOENT;
}

/* ---------------------------------------------------------------- attach, detach */

struct pid_match {
	int fd;
	__u32 pid;
};

static bool thread_of_pid(void *arg, const void *key)
{
	const struct pid_match *m = arg;
	struct es_tcp_thread t;

	return !bpf_map_lookup_elem(m->fd, key, &t) && t.tgid == m->pid;
}

static void detach(struct tcp_pool_attach *pa, struct pool_proc *pp)
{
	struct pid_match m = { pa->threads_fd, pp->pid };
	uint64_t t0 = clock_ns();

	for (size_t i = 0; i < NHOOKS; i++) {
		bpf_link__destroy(pp->links[i]);
		pp->links[i] = NULL;
	}
	/* A reused tid must not inherit this worker's state. */
	if (pp->attached) {
		bpf_hash_delete_if(pa->threads_fd, sizeof(__u32), thread_of_pid, &m);
		pa->attached--;
		log_debug("tcp pool worker detached", "pid=%u took_us=%llu", pp->pid,
			  (unsigned long long)((clock_ns() - t0) / 1000));
	}
	memset(pp, 0, sizeof(*pp));
}

/* Whether pid is still the process that started at starttime. */
static bool still_there(__u32 pid, __u64 starttime)
{
	return procs_starttime(pid) == starttime;
}

static int attach(struct tcp_pool_attach *pa, struct pool_proc *pp, const struct worker *w)
{
	char path[PATH_MAX + 32];
	uint64_t t0 = clock_ns();
	bool have_libc = false;
	size_t i;
	int err;

	pp->pid = w->pid;
	pp->starttime = w->starttime;
	err = find_libc(w->pid, path, sizeof(path));
	if (err)
		goto fail;
	have_libc = true;
	for (i = 0; i < NHOOKS; i++) {
		LIBBPF_OPTS(bpf_uprobe_opts, o, .func_name = hooks[i].func,
			    .retprobe = hooks[i].ret);

		pp->links[i] = bpf_program__attach_uprobe_opts(pa->progs[hooks[i].prog],
							       (pid_t)w->pid, path, 0, &o);
		if (!pp->links[i]) {
			err = -errno;
			goto fail;
		}
	}
	pp->attached = true;
	pa->attached++;
	log_debug("tcp pool worker attached", "pid=%u libc=%s took_us=%llu", w->pid, path,
		  (unsigned long long)((clock_ns() - t0) / 1000));
	return 0;
fail:
	for (i = 0; i < NHOOKS; i++) {
		bpf_link__destroy(pp->links[i]);
		pp->links[i] = NULL;
	}
	/* Gone meanwhile: no failure, the next pass drops the entry. */
	if (err == -ESRCH || !still_there(w->pid, w->starttime)) {
		log_debug("tcp pool worker exited while attaching", "pid=%u err=%d", w->pid, err);
		return err;
	}
	pa->failures++;
	if (!have_libc) {
		log_debug("no C library found in the worker's maps: its pool state stays unknown",
			  "pid=%u", w->pid);
	} else if (!pa->warned) {
		log_warn("cannot attach to a pool worker: its pool state stays unknown (later failures are logged at debug)",
			 "pid=%u err=%d", w->pid, err);
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

void tcp_pool_attach_free(struct tcp_pool_attach *pa)
{
	if (!pa)
		return;
	for (unsigned int i = 0; i < pa->nprocs; i++) {
		for (size_t k = 0; k < NHOOKS; k++)
			bpf_link__destroy(pa->procs[i].links[k]);
	}
	free(pa->procs);
	free(pa);
}

void tcp_pool_attach_collect(const struct tcp_pool_attach *pa, struct expo *e)
{
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
