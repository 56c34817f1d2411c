/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What one client may cost the HTTP server. No MHD types: http.c feeds it.
 *
 * Places: at most max_conns connections are served at once. A connection
 * takes its place with its first complete request and keeps it until it
 * closes; the one past the limit is answered 503 and closed. A connection
 * that has not sent a complete request holds no place, so half-open
 * clients never lock a scrape out: they are shut down once header_timeout
 * has passed since they connected, and the oldest of them gives way when
 * the server nears its hard cap on sockets.
 *
 * Expensive routes (/queries, /workers, /profile, /events) cost a token
 * from the client address's bucket (client_rate a second, as many in a
 * burst); an empty bucket is 429.
 *
 * Self-metrics per handler: erpscope_web_requests_total{handler,code} and
 * erpscope_web_request_duration_seconds{handler}.
 */
#ifndef ERPSCOPE_WEB_GUARD_H
#define ERPSCOPE_WEB_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct expo;
struct sockaddr;

struct web_limits {
	unsigned int max_conns;		/* --web.max-connections */
	unsigned int hard_conns;	/* sockets MHD may hold, served or not */
	unsigned int client_rate;	/* --web.client-rate, 0: no limit */
	unsigned int header_timeout_ms; /* a request must be complete by then */
};

enum web_admit { WEB_ADMIT_OK, WEB_ADMIT_BUSY, WEB_ADMIT_SLOW_DOWN };

struct web_conn;
struct web_guard;

/* names[i] labels handler i; index nhandlers is handler="other". */
struct web_guard *web_guard_new(const struct web_limits *l, const char *const *names,
				size_t nhandlers);
void web_guard_free(struct web_guard *g);

/*
 * A connection accepted at now_ns. Returns its state (NULL when out of
 * memory: it is then never limited) and, in *evict_fd, the socket of an
 * unserved connection to shut down to make room, or -1.
 */
struct web_conn *web_conn_open(struct web_guard *g, int fd, const struct sockaddr *sa,
			       uint64_t now_ns, int *evict_fd);
void web_conn_close(struct web_guard *g, struct web_conn *c);

/* A complete request on c for an expensive route or not. */
enum web_admit web_admit(struct web_guard *g, struct web_conn *c, bool expensive,
			 uint64_t now_ns);

/*
 * Sockets of connections with no complete request header_timeout after
 * they connected, into fds (at most max); each is reported once.
 */
size_t web_overdue(struct web_guard *g, uint64_t now_ns, int *fds, size_t max);

/* One answered request: handler index (nhandlers: other), status, duration. */
void web_record(struct web_guard *g, size_t handler, int status, uint64_t ns);
void web_collect(const struct web_guard *g, struct expo *e);

#endif
