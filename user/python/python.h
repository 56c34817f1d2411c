/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The "python" probe's user-space parts, shared between its files:
 *   python.c      probe_ops: load, perf events, sched_switch, GC USDT; metrics
 *   py_targets.c  the poller: Python processes found and checked (user/python/pyrt.h),
 *                 the kernel's py_procs map, GC probes per binary, code cache
 *   py_profile.c  stacks taken from the kernel each second, kept for the
 *                 profile window: GET /profile, per-function CPU counters
 *   py_workers.c  GET /workers: every tracked worker's state and stack now
 *   pyrt.c        CPython read from outside (process_vm_readv)
 */
#ifndef ERPSCOPE_PYTHON_H
#define ERPSCOPE_PYTHON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/types.h>

#include "../../bpf/procs.h"
#include "../../bpf/python.h"
#include "core/pycapture.h"
#include "python/py_scope.h"
#include "python/pyrt.h"

struct erpscope;
struct python_bpf;
struct bpf_link;
struct expo;
struct http_exchange;
struct py_profile;
struct intern_pool;

/*
 * A code object's names as the cache keeps them: interned in py_priv's
 * pool, as every forked worker of a server holds the same ones.
 */
struct py_code_names {
	const char *qualname, *name, *filename, *module;
	int firstlineno;
};

/* A code object of one process, resolved once. */
struct py_code_entry {
	uint64_t code;
	bool ok;
	struct py_code_names c;
	int arg_index[ES_PY_ARGS_PER_FUNC]; /* captured parameters, -1: none */
	const char *arg_names[ES_PY_ARGS_PER_FUNC];
};

/* A Python process we looked at. */
struct py_proc {
	__u32 pid;
	__u64 starttime;
	int err;              /* py_target_open's result; 0: in the kernel's map; -EPERM: out of scope */
	uid_t uid;            /* its owner when first seen */
	bool seen;            /* still tracked at the last poll */
	int tries;            /* py_target_open attempts: a fresh exec may not be ready */
	uint64_t retry_ms;
	struct py_target t;
	struct py_code_entry *codes; /* open-addressing cache, ncodes_cap slots */
	unsigned int ncodes, ncodes_cap;
};

/* A Python binary (executable or libpython) and its GC probes. */
struct py_bin {
	dev_t dev;
	ino_t ino;
	char path[256];
	bool gc_usdt;         /* has the notes */
	int err;              /* attaching them failed: -errno */
	struct bpf_link *links[2];
};

struct py_priv {
	struct erpscope *es;
	struct python_bpf *skel;
	int ncpus;
	struct bpf_link **perf_links; /* one per CPU; NULL where the CPU is offline */
	int *perf_fds;
	bool cpu_profile;     /* perf events attached */
	bool offcpu_profile;  /* tp_btf and the task_work kfunc are there */
	bool offcpu_hooked;   /* ... walked from the sched probe's es_switch */
	struct py_capture_spec capture;
	struct py_scope scope; /* --python.users */
	struct py_proc *procs;
	size_t nprocs, procs_cap;
	struct py_bin *bins;
	size_t nbins, bins_cap;
	__u64 gen;            /* py_gen mirror */
	struct py_profile *prof;
	struct intern_pool *names; /* the code caches' texts */
	int procs_fd, gen_fd, counts_fd, stacks_fd, capture_fd, gc_fd, stats_fd;
	uint64_t resolve_errors;
};

struct py_priv *python_priv(struct erpscope *es);
/* python/py_trace.c: GC pauses for traces (the py_trace ring as p->rb, its switch) */
struct probe;
int py_trace_start(struct probe *p, struct python_bpf *skel);
void py_trace_stop(struct probe *p, struct python_bpf *skel);

/* py_targets.c */
/* Roles whose processes are Python interpreters. */
bool python_role(enum es_role r);
struct py_proc *py_proc_find(struct py_priv *pp, __u32 pid);
/* The resolved code object (cached); NULL when it cannot be read. */
const struct py_code_entry *py_code_lookup(struct py_priv *pp, struct py_proc *pr, uint64_t code);
void py_targets_free(struct py_priv *pp);
/* Code objects in every process's cache. */
size_t py_codes_cached(const struct py_priv *pp);
/* Binary of a process as /workers shows it: "available" or why not. */
const char *py_gc_status(struct py_priv *pp, const struct py_proc *pr, char *buf, size_t size);
int py_bins_scan_installed(struct py_priv *pp);

/* py_profile.c */
struct py_profile *py_profile_new(unsigned int window_s, unsigned int top_funcs, double hz,
				  unsigned int max_stacks);
void py_profile_free(struct py_profile *prof);
/* Takes what the kernel counted since the last call. */
void py_profile_drain(struct py_priv *pp, uint64_t now_ms);
void py_profile_collect(struct py_priv *pp, struct expo *e);
/* Forgets per-process state of a pid that is gone (its samples stay). */
void py_profile_forget(struct py_priv *pp, __u32 pid);
int py_profile_http(void *arg, struct http_exchange *x);
/* A stack's frames, outermost first, joined by ';' (named now if new); NULL: unknown. */
const char *py_profile_stack_text(struct py_priv *pp, __u64 id, __u32 pid);
/* The stack seen most in pid since since_ms while serving (route, model, method); 0: none. */
uint64_t py_profile_top_stack(struct erpscope *es, __u32 pid, enum es_py_kind kind,
			      const char *route, const char *model, const char *method,
			      uint64_t since_ms, char *out, size_t size);

/* py_workers.c */
int py_workers_http(void *arg, struct http_exchange *x);
/*
 * For other capabilities (user/diagnose): each frame of each thread of the
 * Python worker pid read now, innermost first (depth 0): thread index and
 * tid, the thread's scheduler state and for how long (secs NaN: not known),
 * function, file, line and the captured arguments as "name=value, ...".
 * 0; -ENODEV without the python probe, -ENOENT for no such Python worker,
 * -ENODATA when its stack cannot be read.
 */
typedef void (*py_frame_fn)(void *arg, unsigned int thread, __u32 tid, const char *state,
			    double secs, unsigned int depth, const char *func, const char *file,
			    int line, const char *args);
int python_worker_frames(struct erpscope *es, __u32 pid, py_frame_fn fn, void *arg);

/* Name of the folded-stack frame for a code entry (module:qualname). */
void py_frame_name(const struct py_code_entry *ce, char *buf, size_t size);

#endif
