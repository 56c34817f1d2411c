// SPDX-License-Identifier: GPL-2.0
/*
 * Transactions aborted by the backends of one client process, from the
 * kernel's per-backend counter (task storage pg_xacts, bpf/pg.h
 * es_pg_xacts), looked up by each backend's pidfd: what tells a failed Odoo
 * cron run (its cursor rolled back) from one that did not roll back.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "core/erpscope.h"
#include "pg/pg.h"
#include "pg.skel.h"

/* The backend's count; a backend that never aborted has no entry: 0. */
static int backend_aborts(int map_fd, __u32 pid, uint64_t *aborts)
{
	struct es_pg_xacts x = { 0 };
	int fd = (int)syscall(SYS_pidfd_open, pid, 0), err = 0;

	if (fd < 0)
		return -errno;
	if (bpf_map_lookup_elem(map_fd, &fd, &x))
		err = errno == ENOENT ? 0 : -errno;
	close(fd);
	if (!err)
		*aborts += x.aborts;
	return err;
}

int pg_client_aborts(struct erpscope *es, __u32 client_pid, uint64_t *aborts)
{
	struct probe *p = erpscope_probe(es, "pg");
	struct pg_procs *procs = pg_procs_of(es);
	struct pg_priv *pp;
	int map_fd, n = 0;

	*aborts = 0;
	if (!p || !p->up || !procs)
		return -ENODEV;
	pp = p->priv;
	map_fd = bpf_map__fd(pp->skel->maps.pg_xacts);
	for (size_t i = 0; i < pg_procs_count(procs); i++) {
		const struct pg_proc *pr = pg_procs_at(procs, i);

		if (pr->gone || pr->role != ES_ROLE_PG_BACKEND ||
		    pr->client.kind != PG_LINK_WORKER || pr->client.pid != client_pid)
			continue;
		if (!backend_aborts(map_fd, pr->pid, aborts))
			n++;
	}
	return n;
}
