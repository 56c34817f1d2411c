// SPDX-License-Identifier: GPL-2.0
/*
 * The TCP ports this host's clusters listen on, for the kernel: the connect
 * hook (on_conn_state() in bpf/pg.bpf.c) notes a connecting process only
 * when it connects to one of them, so the host's other connects (a proxy's
 * to its upstream, an HTTP client's) cost it no map update. A bit per port
 * in pg_port_bits; ES_PG_PORT_ANY's bit while a live cluster's port is not
 * known. A port stays once seen: a cluster restarted on it is followed
 * from its first connect, and a port a cluster left costs only what every
 * connect cost before. A connect to a new cluster in the tick (100 ms)
 * before it is seen is not linked to its process by the kernel; sock_diag
 * still links its backend while the connection lasts (pg_link.c).
 */
#include <stdbool.h>
#include <bpf/libbpf.h>

#include "pg/pg.h"
#include "pg.skel.h"

#define MAX_CLUSTERS 64

/* Sets bit b of the kernel's words unless it is set (the kernel reads them meanwhile). */
static void set_bit_once(__u64 *words, unsigned int b, bool on)
{
	__u64 *w = &words[b / 64], m = 1ull << (b % 64);
	bool is = __atomic_load_n(w, __ATOMIC_RELAXED) & m;

	if (on && !is)
		__atomic_fetch_or(w, m, __ATOMIC_RELEASE);
	else if (!on && is)
		__atomic_fetch_and(w, ~m, __ATOMIC_RELEASE);
}

void pg_ports_sync(struct pg_priv *pp, const struct pg_procs *procs)
{
	__u64 *bits = pp->skel->data->pg_port_bits;
	__u16 ports[MAX_CLUSTERS];
	int n = pg_procs_ports(procs, ports, MAX_CLUSTERS);

	for (int i = 0; i < n; i++)
		set_bit_once(bits, ports[i], true);
	/* After the ports: no connect to them is missed in between. */
	set_bit_once(bits, ES_PG_PORT_ANY, n < 0);
}
