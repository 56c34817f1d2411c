/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Process titles and argv -> role. Input is untrusted (any bytes, any
 * length): everything is bounded and copied, never trusted to be terminated.
 */
#ifndef ERPSCOPE_TITLE_H
#define ERPSCOPE_TITLE_H

#include <stddef.h>
#include <linux/types.h>

#include "../../bpf/procs.h"

#define TITLE_FIELD_MAX 64

struct title_info {
	enum es_role role;
	/* PostgreSQL client backends; Odoo cron workers fill db too. */
	char db[TITLE_FIELD_MAX];
	char user[TITLE_FIELD_MAX];
	char cluster[TITLE_FIELD_MAX];
	char state[TITLE_FIELD_MAX]; /* pg backend state: idle, active, SELECT ... */
	char client[TITLE_FIELD_MAX]; /* pg backend client: [local] or host(port) */
};

/*
 * cmdline: raw /proc/<pid>/cmdline (NUL-separated argv, possibly a single
 * setproctitle string, possibly not terminated). exe_base: basename of
 * /proc/<pid>/exe (may be "" when unreadable). comm: /proc/<pid>/comm.
 * Odoo's master is recognised by user/procs/procs.c from its children; here it is
 * recognised by argv (odoo-bin, odoo, openerp-server run by a python).
 * Odoo roles need a python exe, or an unreadable one (exe_base ""): a
 * process of another binary that sets an Odoo-like title stays "other".
 * exe_base may also be a full path and may end in " (deleted)"; comm may
 * end in a newline. out may be NULL.
 * Returns the role, also stored in out->role.
 */
enum es_role title_classify(const char *cmdline, size_t len, const char *exe_base,
			    const char *comm, struct title_info *out);

const char *role_name(enum es_role role);

#endif
