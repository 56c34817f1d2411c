/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Per-process uprobes on functions of the C library: per process, a uprobe
 * session link (v6.13, with the process's pid) over the functions a probe
 * names that may want their return, and a plain entry uprobe link over
 * those that never do, in the libc that process maps. Shared by the tcp
 * probe (accept/select of pool workers) and the requests probe (the socket
 * calls of HTTP workers). The caller walks its processes once per tick:
 * begin, want() for every process it wants instrumented, end; processes not
 * wanted in a pass are detached. Links are closed by a helper thread (the
 * kernel waits for a grace period there).
 */
#ifndef ERPSCOPE_LIBC_UPROBES_H
#define ERPSCOPE_LIBC_UPROBES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

struct bpf_program;
struct libc_uprobes;

struct libc_hook {
	const char *func;
	__u64 cookie; /* bpf_get_attach_cookie() in the program */
	bool entry_only; /* never wants its return: on the plain entry link */
};

/* Up to this many hooks per table. */
#define LIBC_UPROBES_MAX_HOOKS 16

/*
 * Before load: prog is to be attached as a uprobe session, entry_prog as
 * plain entry uprobes, for the hooks marked entry_only; either may be NULL
 * when no hook is of its kind. -EOPNOTSUPP when the kernel has no sessions
 * (no multi-uprobe links, for entry_prog alone): neither is then loaded
 * (what: the log line's subject).
 */
int libc_uprobes_prepare(struct bpf_program *prog, struct bpf_program *entry_prog,
			 const char *what);

struct libc_uprobes_ops {
	/* /proc/<pid>/stat's starttime, 0 when gone: tells a gone process from a failure. */
	__u64 (*starttime)(__u32 pid);
	/* Once pid's links are up, with the index it got (below). May be NULL. */
	void (*attached)(void *arg, __u32 pid, unsigned int index);
	/*
	 * Once pid's links are closed (no program runs for it any more: its
	 * kernel state may go), a pass or more after its detach, with the index
	 * it had (below). May be NULL.
	 */
	void (*detached)(void *arg, __u32 pid, unsigned int index);
	void *arg;
	/*
	 * When > 0, each attached process gets the lowest index 1..indexes free
	 * (0 when all are taken; free again after its detached() call) in the
	 * upper 32 bits of every cookie of its links, so a program can keep
	 * per-process state in an array slot instead of a hash lookup; the
	 * hook's own cookie is the lower 32 bits.
	 */
	unsigned int indexes;
};

/* After load: a table of nprocs entries (the caller's indexes) for prog and entry_prog. */
struct libc_uprobes *libc_uprobes_new(struct bpf_program *prog, struct bpf_program *entry_prog,
				      const struct libc_hook *hooks, unsigned int nhooks,
				      unsigned int nprocs, const char *what,
				      const struct libc_uprobes_ops *ops);
/* Releases every link (waits for the kernel). NULL is fine. */
void libc_uprobes_free(struct libc_uprobes *lu);

/* One pass: begin, want() per process, end (detaches those not wanted). */
void libc_uprobes_begin(struct libc_uprobes *lu);
void libc_uprobes_want(struct libc_uprobes *lu, unsigned int idx, __u32 pid, __u64 starttime);
void libc_uprobes_end(struct libc_uprobes *lu);

/* Whether pid (of starttime) was attached at idx: its link is up, or failed. */
bool libc_uprobes_tried(const struct libc_uprobes *lu, unsigned int idx, __u32 pid,
			__u64 starttime);
unsigned int libc_uprobes_attached(const struct libc_uprobes *lu);
uint64_t libc_uprobes_failures(const struct libc_uprobes *lu);

#endif
