/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the tcp probe's files share: user/tcp/tcp.c (the probe), user/tcp/tcp_poll.c
 * (the poller: listen queues from sock_diag), user/tcp/tcp_remote.c (remote labels per role, bounded) and
 * user/tcp/tcp_diag.c (pure parsers, unit-tested and fuzzed).
 */
#ifndef ERPSCOPE_TCP_H
#define ERPSCOPE_TCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "../../bpf/procs.h"
#include "../../bpf/tcp.h"

/* ---------------------------------------------------------------- tcp_diag.c */

/* One listening socket from a SOCK_DIAG dump. */
struct tcp_listener {
	uint32_t inode;
	uint16_t family; /* AF_INET or AF_INET6 */
	uint16_t port;
	uint32_t backlog; /* connections in the accept queue (sk_ack_backlog) */
	uint32_t max;     /* its limit (sk_max_ack_backlog) */
	uint64_t drops;   /* the listener's drops (SK_MEMINFO_DROPS) */
	bool has_drops;
};

/* Builds a dump request for TCP listeners of family into buf. Returns its length or -errno. */
int tcp_diag_request(void *buf, size_t size, int family, uint32_t seq);

typedef void (*tcp_listener_fn)(void *arg, const struct tcp_listener *l);
/*
 * Parses what one recv() of the dump returned. Calls fn for each listener.
 * Returns 1 at the end of the dump (NLMSG_DONE), 0 when more is to come,
 * -errno for an error message from the kernel or a malformed buffer.
 */
int tcp_diag_parse(const void *buf, size_t len, tcp_listener_fn fn, void *arg);

/* "socket:[12345]" (a /proc/<pid>/fd link, n bytes) -> 12345. */
bool tcp_socket_link_inode(const char *s, size_t n, uint32_t *inode);

/* "127.0.0.1:5432", "[2001:db8::1]:443"; IPv4-mapped IPv6 as IPv4; "other" for family 0. */
void tcp_format_remote(const struct es_tcp_remote_key *k, char *buf, size_t size);

/* ---------------------------------------------------------------- tcp_dump.c */

/*
 * One dump of family's listening TCP sockets on nl (a NETLINK_SOCK_DIAG
 * socket, SO_RCVTIMEO set) through buf (size bytes), fn called for each.
 * Returns 0 or -errno.
 */
int tcp_diag_dump(int nl, void *buf, size_t size, uint32_t *seq, int family, tcp_listener_fn fn,
		  void *arg);

/* ---------------------------------------------------------------- tcp_remote.c */

/*
 * Remote labels per role, bounded: the first max_per_role destinations of a
 * role get a label of their own; the rest are summed under "other". The
 * busiest unlabelled destination active within idle_ms takes a label given
 * back by an eviction, or the label of one idle for idle_ms. The kernel keys
 * up to pool destinations per role; once a role holds 3/4 of them, its
 * destinations idle for idle_ms are evicted, the coldest first, down to half:
 * their counts move to "other" and a new destination gets an entry again.
 * Every series stays monotonic: a destination's own series starts at zero
 * when it gets its label, and what it counted under "other" until then, or
 * before it was evicted, stays there.
 */
struct tcp_remotes;

struct tcp_remote_row {
	struct es_tcp_remote_key key; /* family 0: the role's other */
	char label[56];
	struct es_tcp_remote v; /* what the series show */
};

struct tcp_remotes *tcp_remotes_new(unsigned int max_per_role, unsigned int pool,
				    unsigned int capacity, uint64_t idle_ms);
void tcp_remotes_free(struct tcp_remotes *t);
/* Starts a scrape's update. */
void tcp_remotes_begin(struct tcp_remotes *t);
/* Feeds one kernel entry (key, cumulative value). */
void tcp_remotes_feed(struct tcp_remotes *t, const struct es_tcp_remote_key *k,
		      const struct es_tcp_remote *v, uint64_t now_ms);
/*
 * After the feeds: writes the keys of the destinations to evict into keys
 * (room for capacity of them). Returns how many.
 */
unsigned int tcp_remotes_cold(struct tcp_remotes *t, uint64_t now_ms,
			      struct es_tcp_remote_key *keys);
/*
 * k's kernel entry is gone, its value v when deleted (NULL: as last fed):
 * its counts move to its role's other, its record goes at the end.
 */
void tcp_remotes_evicted(struct tcp_remotes *t, const struct es_tcp_remote_key *k,
			 const struct es_tcp_remote *v);
/* Ends the update: hands labels over, builds the rows. Returns their number. */
unsigned int tcp_remotes_end(struct tcp_remotes *t, uint64_t now_ms);
const struct tcp_remote_row *tcp_remotes_row(const struct tcp_remotes *t, unsigned int i);
/*
 * A role's destinations with a kernel entry at the last update (evictions
 * taken off) and its evictions so far; seen once it has had a destination.
 */
void tcp_remotes_role(const struct tcp_remotes *t, uint32_t role, bool *seen, unsigned int *entries,
		      uint64_t *evicted);

/* ---------------------------------------------------------------- tcp.c: for other capabilities */

struct erpscope;

/*
 * An HTTP pool, the workers of role holding one listening port: occupancy
 * now, cumulative busy time and listen queue waits.
 */
struct tcp_pool_stats {
	enum es_role role;
	uint16_t port;       /* 0: workers whose listener is not known (yet) */
	uint64_t busy, idle; /* workers now */
	uint64_t busy_ns;    /* summed over its live workers (erpscope_worker_busy_seconds_total) */
	uint64_t waits, wait_ns; /* erpscope_listen_queue_wait_seconds{port} count and sum */
};

#define TCP_POOL_PORTS 8 /* pools reported per role, the most workers first */
typedef void (*tcp_pool_fn)(void *arg, const struct tcp_pool_stats *st);
/* Calls fn for each pool of role (ES_ROLE_ODOO_HTTP). 0, or -ENODEV when the tcp probe is off. */
int tcp_pools(struct erpscope *es, enum es_role role, tcp_pool_fn fn, void *arg);

/* ---------------------------------------------------------------- tcp_trace.c */

struct tcp_bpf;

/* A connect that ended (result: "established", or a failure's reason) as a trace slice. */
void tcp_trace_connect(struct erpscope *es, const struct es_tcp_event *k, const char *result);
/* The kernel's switch for established connects, flipped with the trace sink. */
int tcp_trace_start(struct erpscope *es, struct tcp_bpf *skel);
void tcp_trace_stop(struct erpscope *es, struct tcp_bpf *skel);

/* ---------------------------------------------------------------- tcp_poll.c */

/* The port of the listening socket the process in slot holds (its pool), 0 when none is known. */
uint16_t tcp_poll_worker_port(const struct erpscope *es, __u32 slot);

#endif
