/* SPDX-License-Identifier: GPL-2.0 */
/* The HTTP endpoints: / and the telemetry path. */
#ifndef ERPSCOPE_ROUTES_H
#define ERPSCOPE_ROUTES_H

struct erpscope;
struct httpd;

/* Starts the server on cfg.listen_address. Returns 0 or -errno. */
int routes_start(struct erpscope *es);
/* Consumes every probe's ring buffer (main.c); handlers run between such drains. */
void daemon_drain_rings(struct erpscope *es);

#endif
