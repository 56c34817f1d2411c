/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Contract between bpf/procs.bpf.c and user/procs/procs.c: the tgid -> worker map
 * every probe shares, and the lifecycle events that tell user space when to
 * look at /proc. Fixed-width types only, no includes.
 */
#ifndef ERPSCOPE_BPF_PROCS_H
#define ERPSCOPE_BPF_PROCS_H

/* Roles, as DESIGN.md's table lists them. ES_ROLE_OTHER must stay 0. */
enum es_role {
	ES_ROLE_OTHER = 0,
	ES_ROLE_PYTHON,
	ES_ROLE_ODOO_MASTER,
	ES_ROLE_ODOO_HTTP,
	ES_ROLE_ODOO_CRON,
	ES_ROLE_ODOO_GEVENT,
	ES_ROLE_PG_BACKEND,
	ES_ROLE_PG_AUTOVACUUM,
	ES_ROLE_PG_CHECKPOINTER,
	ES_ROLE_PG_WALWRITER,
	ES_ROLE_PG_BGWRITER,
	ES_ROLE_PG_OTHER,
	ES_ROLE_COUNT,
};

/*
 * Accounting slots: slot r < ES_ROLE_COUNT aggregates role r (for
 * ES_ROLE_OTHER every untracked task, for the others the workers past
 * --max-workers); slots from ES_ROLE_COUNT on belong to one worker each.
 */
#define ES_SLOT_FIRST_WORKER ES_ROLE_COUNT

/* Upper bound of tracked processes in the shared map (workers + overflow). */
#define ES_WORKERS_MAP_MAX 16384

struct es_worker {
	__u32 slot;
	__u32 role;
};

enum es_proc_event_type {
	ES_PROC_FORK = 1,
	ES_PROC_EXEC = 2,
	ES_PROC_EXIT = 3,
};

struct es_proc_event {
	__u32 type;
	__u32 pid;       /* tgid of the new, exec'd or exiting process */
	__u32 ppid;      /* parent tgid for fork */
	__u32 exit_code; /* task->exit_code for exit */
	__u64 ts_ns;     /* bpf_ktime_get_ns() */
	char comm[16];
};

#endif
