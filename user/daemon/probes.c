// SPDX-License-Identifier: GPL-2.0
/* The probe table. procs comes first: it owns the map the others share. */
#include "core/probe.h"
#include "daemon/probes.h"

const struct probe_ops *const probe_table[] = {
	&procs_probe_ops,
	&sched_probe_ops,
	&oom_probe_ops,
	&blkio_probe_ops,
	&tcp_probe_ops,
	&pg_probe_ops,
	&python_probe_ops,
	&requests_probe_ops,
};

const unsigned int probe_table_len = sizeof(probe_table) / sizeof(probe_table[0]);
