// SPDX-License-Identifier: GPL-2.0
/*
 * OOM kills and why tracked processes die. oom:mark_victim reports the
 * victim with its RSS and memory cgroup and the task whose allocation
 * triggered the kill; signal_generate remembers, per tracked process, the
 * last signal sent to it that would end it and who sent it; at the exit of
 * a tracked process's group leader all of it goes to user space with the
 * exit code, so user space can tell an OOM kill from a SIGKILL sent by
 * Odoo's master, another fatal signal, an error exit and a normal one.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "core_fixes.bpf.h"
#include "maps.bpf.h"
#include "oom.h"
#include "workers.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Set from BTF by user space: mark_victim passes the task, not a pid. */
const volatile bool mark_victim_has_task = true;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} oom_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} oom_drops SEC(".maps");

/* What happened to a process before it exited. */
struct fate {
	__u32 role; /* its role when it happened */
	__u32 oom;
	__u32 sig;
	__s32 si_code;
	__u32 sender_pid;
	__u32 sender_tgid;
	__u32 sender_role;
	char sender_comm[ES_OOM_COMM_LEN];
};

/* Keyed by tgid; an entry lives from the signal (or OOM kill) to the exit. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct fate);
} fates SEC(".maps");

/* include/linux/sched/signal.h: signal_struct.flags while a group exit runs. */
#define ES_SIGNAL_GROUP_EXIT 0x00000004
/* include/trace/events/signal.h: signal_generate's result. */
#define ES_TRACE_SIGNAL_DELIVERED 0
#define ES_TRACE_SIGNAL_LOSE_INFO 4
/* include/uapi/asm-generic/siginfo.h */
#define ES_SI_USER 0
#define ES_SI_KERNEL 0x80
/*
 * Signals whose default action does not end the process (signal(7)), x86
 * and generic numbering: CHLD 17, CONT 18, STOP 19, TSTP 20, TTIN 21,
 * TTOU 22, URG 23, WINCH 28. Every other signal up to 64 terminates.
 */
#define ES_NONFATAL_SIGS 0x10fe0000u

static __always_inline bool fatal_by_default(int sig)
{
	if (sig <= 0 || sig > 64)
		return false;
	return sig >= 32 || !((1u << sig) & ES_NONFATAL_SIGS);
}

static __always_inline __u32 role_of(__u32 tgid)
{
	struct es_worker *w = bpf_map_lookup_elem(&workers, &tgid);

	return w ? w->role : ES_ROLE_OTHER;
}

static __always_inline void count_drop(void)
{
	__u32 zero = 0;
	__u64 *drops = bpf_map_lookup_elem(&oom_drops, &zero);

	if (drops)
		*drops += 1;
}

/* The fate entry of tgid, created with role when there is none. */
static __always_inline struct fate *fate_of(__u32 tgid, __u32 role)
{
	struct fate fresh = { .role = role };

	return es_lookup_or_init(&fates, &tgid, &fresh, ES_MAP_OOM_FATES);
}

/* Kernel id of the task's memory cgroup (its directory's inode), 0 if none. */
static __always_inline __u64 task_memcg_id(struct task_struct *t)
{
	struct cgroup_subsys_state *css = NULL;
	struct css_set *cset;
	int idx;

	if (!bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id))
		return 0;
	idx = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	cset = BPF_CORE_READ(t, cgroups);
	if (!cset || idx < 0 || idx >= (int)(bpf_core_field_size(cset->subsys) / sizeof(void *)))
		return 0;
	if (bpf_probe_read_kernel(&css, sizeof(css),
				  (void *)cset + bpf_core_field_offset(cset->subsys) +
					  idx * sizeof(void *)) ||
	    !css)
		return 0;
	return BPF_CORE_READ(css, cgroup, kn, id);
}

static __always_inline void fill_victim(struct es_oom_kill *ev, struct task_struct *t)
{
	struct mm_struct *mm = BPF_CORE_READ(t, mm);

	ev->has_task = 1;
	ev->pid = BPF_CORE_READ(t, pid);
	ev->tgid = BPF_CORE_READ(t, tgid);
	ev->uid = BPF_CORE_READ(t, cred, uid.val);
	ev->oom_score_adj = BPF_CORE_READ(t, signal, oom_score_adj);
	bpf_core_read_str(ev->comm, sizeof(ev->comm), &t->comm);
	ev->memcg_id = task_memcg_id(t);
	if (mm) {
		ev->total_vm_pages = BPF_CORE_READ(mm, total_vm);
		ev->anon_pages = mm_rss_pages(mm, ES_MM_ANONPAGES);
		ev->file_pages = mm_rss_pages(mm, ES_MM_FILEPAGES);
		ev->shmem_pages = mm_rss_pages(mm, ES_MM_SHMEMPAGES);
	}
}

/* arg is the victim task, or on older kernels its pid (core_fixes.bpf.h). */
static __always_inline void on_mark_victim(void *arg)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct es_oom_kill *ev;
	struct fate *f;

	ev = bpf_ringbuf_reserve(&oom_events, sizeof(*ev), 0);
	if (!ev) {
		count_drop();
		return;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->type = ES_OOM_KILL;
	if (mark_victim_has_task) {
		fill_victim(ev, arg);
	} else {
		ev->pid = (__u32)(unsigned long)arg;
		ev->tgid = ev->pid; /* the kernel looks at the leader's mm first */
	}
	ev->trigger_pid = (__u32)id;
	ev->trigger_tgid = id >> 32;
	bpf_get_current_comm(ev->trigger_comm, sizeof(ev->trigger_comm));
	ev->role = role_of(ev->tgid);
	ev->trigger_role = role_of(ev->trigger_tgid);
	ev->ts_ns = bpf_ktime_get_ns();
	f = fate_of(ev->tgid, ev->role);
	if (f)
		f->oom = 1;
	bpf_ringbuf_submit(ev, 0);
}

/* SEND_SIG_NOINFO (0) is a kill from user space, SEND_SIG_PRIV (1) the kernel. */
static __always_inline int sig_code(struct kernel_siginfo *info)
{
	unsigned long v = (unsigned long)info;

	if (v == 0)
		return ES_SI_USER;
	if (v == 1)
		return ES_SI_KERNEL;
	return BPF_CORE_READ(info, si_code);
}

static __always_inline void on_signal(int sig, struct kernel_siginfo *info, struct task_struct *t,
				      int result)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct es_worker *w;
	struct fate *f;
	__u32 tgid;

	/* Ignored or not queued signals change nothing. */
	if (result != ES_TRACE_SIGNAL_DELIVERED && result != ES_TRACE_SIGNAL_LOSE_INFO)
		return;
	if (!fatal_by_default(sig))
		return;
	tgid = BPF_CORE_READ(t, tgid);
	w = bpf_map_lookup_elem(&workers, &tgid);
	if (w)
		f = fate_of(tgid, w->role);
	else
		f = bpf_map_lookup_elem(&fates, &tgid); /* an OOM victim left the map */
	if (!f)
		return;
	if (w)
		f->role = w->role;
	f->sig = sig;
	f->si_code = sig_code(info);
	f->sender_pid = (__u32)id;
	f->sender_tgid = id >> 32;
	f->sender_role = role_of(id >> 32);
	bpf_get_current_comm(f->sender_comm, sizeof(f->sender_comm));
}

/* A group exit (exit_group(), a fatal signal) keeps its code in signal_struct. */
static __always_inline __u32 exit_code(struct task_struct *p)
{
	struct signal_struct *s = BPF_CORE_READ(p, signal);

	if (s && (BPF_CORE_READ(s, flags) & ES_SIGNAL_GROUP_EXIT))
		return BPF_CORE_READ(s, group_exit_code);
	return BPF_CORE_READ(p, exit_code);
}

static __always_inline void on_exit(struct task_struct *p)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);
	struct es_oom_exit *ev;
	struct es_worker *w;
	struct fate *f;
	__u32 role;

	if (BPF_CORE_READ(p, pid) != tgid)
		return;
	w = bpf_map_lookup_elem(&workers, &tgid);
	f = bpf_map_lookup_elem(&fates, &tgid);
	role = w ? w->role : (f ? f->role : ES_ROLE_OTHER);
	if (role == ES_ROLE_OTHER)
		goto out;
	ev = bpf_ringbuf_reserve(&oom_events, sizeof(*ev), 0);
	if (!ev) {
		count_drop();
		goto out;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->type = ES_OOM_EXIT;
	ev->tgid = tgid;
	ev->role = role;
	ev->code = exit_code(p);
	ev->ts_ns = bpf_ktime_get_ns();
	bpf_core_read_str(ev->comm, sizeof(ev->comm), &p->comm);
	if (f) {
		ev->oom = f->oom;
		ev->sig = f->sig;
		ev->si_code = f->si_code;
		ev->sender_pid = f->sender_pid;
		ev->sender_tgid = f->sender_tgid;
		ev->sender_role = f->sender_role;
		__builtin_memcpy(ev->sender_comm, f->sender_comm, sizeof(ev->sender_comm));
	}
	bpf_ringbuf_submit(ev, 0);
out:
	if (f)
		bpf_map_delete_elem(&fates, &tgid);
}

/*
 * Only the first argument is declared: on kernels where mark_victim takes a
 * pid it is the only one, and reading past a tracepoint's arguments is
 * refused at load (tp_btf) or attach (raw_tp).
 */
SEC("tp_btf/mark_victim")
int BPF_PROG(es_oom_mark, void *victim)
{
	on_mark_victim(victim);
	return 0;
}

SEC("raw_tp/mark_victim")
int BPF_PROG(es_oom_mark_raw, void *victim)
{
	on_mark_victim(victim);
	return 0;
}

SEC("tp_btf/signal_generate")
int BPF_PROG(es_oom_sig, int sig, struct kernel_siginfo *info, struct task_struct *t, int group,
	     int result)
{
	on_signal(sig, info, t, result);
	return 0;
}

SEC("raw_tp/signal_generate")
int BPF_PROG(es_oom_sig_raw, int sig, struct kernel_siginfo *info, struct task_struct *t, int group,
	     int result)
{
	on_signal(sig, info, t, result);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(es_oom_exit, struct task_struct *p)
{
	on_exit(p);
	return 0;
}

SEC("raw_tp/sched_process_exit")
int BPF_PROG(es_oom_exit_raw, struct task_struct *p)
{
	on_exit(p);
	return 0;
}
