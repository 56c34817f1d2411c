// SPDX-License-Identifier: GPL-2.0
/* The poller table: timer-driven readers of /proc and friends. */
#include <stddef.h>

#include "core/poller.h"
#include "daemon/probes.h"

const struct poller_ops *const poller_table[] = {
	&host_poller_ops,
	&memhistory_poller_ops,
	&tcp_poller_ops,
	&tcp_pool_poller_ops,
	&pg_poller_ops,
	&python_poller_ops,
	&requests_poller_ops,
	&cron_poller_ops,
	&gpu_poller_ops,
	&trace_poller_ops,
	&diagnose_poller_ops, /* last: reads the others */
};

const unsigned int poller_table_len = sizeof(poller_table) / sizeof(poller_table[0]);
