/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Contract between bpf/oom.bpf.c and user/procs/oom.c: OOM kills (oom:mark_victim)
 * and the exits of tracked processes, with what killed them. Fixed-width
 * types only, no includes.
 */
#ifndef ERPSCOPE_BPF_OOM_H
#define ERPSCOPE_BPF_OOM_H

#define ES_OOM_COMM_LEN 16

enum es_oom_event_type {
	ES_OOM_KILL = 1, /* struct es_oom_kill */
	ES_OOM_EXIT = 2, /* struct es_oom_exit */
};

/* The OOM killer picked a victim. Every struct starts with its type. */
struct es_oom_kill {
	__u32 type;
	__u32 tgid; /* victim process */
	__u32 pid; /* victim thread the kernel looked at */
	__u32 uid;
	__u32 trigger_pid; /* current: the task whose allocation failed */
	__u32 trigger_tgid;
	__u32 role; /* victim's role in the workers map, 0 (other) if untracked */
	__u32 trigger_role;
	__s32 oom_score_adj;
	__u32 has_task; /* 0: the kernel's tracepoint gave only a pid (see core_fixes) */
	__u64 memcg_id; /* kernfs id (the inode) of the victim's memory cgroup, 0 unknown */
	__u64 total_vm_pages;
	__u64 anon_pages; /* RSS as the kernel counts it (get_mm_counter) */
	__u64 file_pages;
	__u64 shmem_pages;
	__u64 ts_ns; /* bpf_ktime_get_ns() */
	char comm[ES_OOM_COMM_LEN];
	char trigger_comm[ES_OOM_COMM_LEN];
};

/*
 * The group leader of a tracked process exited. code is a wait status: the
 * signal that ended it in bits 0-6 (0x80: core dumped), else the exit
 * status in bits 8-15. sig and the sender describe the last signal sent to
 * it whose default action is to terminate; they explain the exit only when
 * sig equals code & 0x7f.
 */
struct es_oom_exit {
	__u32 type;
	__u32 tgid;
	__u32 role; /* at exit, or when it was signalled if no longer in the map */
	__u32 code;
	__u32 oom; /* the OOM killer picked it */
	__u32 sig; /* 0: none seen */
	__s32 si_code; /* SI_USER (0), SI_TKILL (-6), ... <= 0: sent by a process */
	__u32 sender_pid;
	__u32 sender_tgid;
	__u32 sender_role;
	__u64 ts_ns;
	char comm[ES_OOM_COMM_LEN];
	char sender_comm[ES_OOM_COMM_LEN];
};

#endif
