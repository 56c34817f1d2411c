/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Which Python processes have their memory read (stacks, arguments).
 * Odoo's roles always; a plain Python process only when its owner is in
 * scope: the users of --python.users, or, when it is empty, root and every
 * user seen running an Odoo worker. Others are still accounted (CPU,
 * off-CPU time) by the sched and procs probes; only their memory is left
 * alone.
 */
#ifndef ERPSCOPE_PY_SCOPE_H
#define ERPSCOPE_PY_SCOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <linux/types.h>

#include "../../bpf/procs.h"

#define PY_SCOPE_MAX 64

struct py_scope {
	bool all;      /* --python.users=all */
	bool listed;   /* --python.users named users: Odoo's owners are not added */
	uid_t uids[PY_SCOPE_MAX];
	size_t nuids;
};

/* Parses --python.users; unknown names are an error naming them. */
int py_scope_init(struct py_scope *s, const char *users, char *why, size_t len);
/* An Odoo worker's owner: in scope from now on unless users were listed. */
void py_scope_saw_odoo(struct py_scope *s, uid_t uid);
bool py_scope_allows(const struct py_scope *s, enum es_role role, uid_t uid);
/* The owner (effective uid) of a process. Returns 0 or -errno. */
int py_proc_owner(unsigned int pid, uid_t *uid);

#endif
