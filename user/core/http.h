/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The HTTP server: libmicrohttpd driven from the daemon's one epoll loop
 * (MHD_USE_EPOLL, no MHD threads), so handlers run on the main thread and
 * need no locks against the ring-buffer consumers.
 */
#ifndef ERPSCOPE_HTTP_H
#define ERPSCOPE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct httpd;
struct MHD_Connection;

struct http_exchange {
	/* request */
	const char *method;
	const char *path;
	const char *accept;          /* "" when absent */
	const char *accept_encoding; /* "" when absent */
	struct MHD_Connection *conn;
	/* response, filled by the handler */
	int status;
	const char *content_type;
	const char *disposition; /* Content-Disposition, NULL: none */
	char *body;     /* malloc'd (freed by http.c) */
	size_t len;
	struct http_later *later; /* set by http_defer: answered later */
};

/*
 * Answering later, without holding the loop: a handler calls http_defer and
 * returns 0; the connection waits (suspended in libmicrohttpd) while the
 * loop runs on, until http_later_reply answers it. A client that went away
 * meanwhile is found when the answer is sent. Stopping the server drops
 * what is still waiting: the handle is then gone.
 */
struct http_later;
/* Returns the handle, or NULL (-ENOMEM: answer now instead). */
struct http_later *http_defer(struct http_exchange *x);
/* Takes body (malloc'd) whatever happens; gzips it as the request allows.
 * content_type: a literal; disposition is copied. */
void http_later_reply(struct http_later *l, int status, const char *content_type,
		      const char *disposition, char *body, size_t len);

/* Returns a query-string value, or NULL. */
const char *http_query(struct http_exchange *x, const char *key);
/* Sets a malloc'd copy of text as the body. Returns 0 or -ENOMEM. */
int http_reply_text(struct http_exchange *x, int status, const char *content_type,
		    const char *text);

struct http_route {
	const char *path; /* exact, or ending in '/': that prefix and more */
	/* Handles GET and HEAD; returns 0 or negative errno (-> 500). */
	int (*handler)(void *arg, struct http_exchange *x);
	/* Costs a token from the client's bucket (--web.client-rate), 429 when none. */
	bool expensive;
	/* / and the metrics path; every other route is sensitive (core/web.h). */
	bool metrics;
};

struct web;

/* What clients may cost (core/web_guard.h has the rules). */
struct http_limits {
	unsigned int max_conns;	  /* --web.max-connections: served at once, 503 beyond */
	unsigned int client_rate; /* --web.client-rate: expensive requests a second per client */
	/* Called before each handler runs (the daemon drains its event rings). */
	void (*yield)(void *arg);
	/* Who sees what, and TLS (core/web.h); NULL: everyone, plain HTTP. Outlives the server. */
	struct web *web;
};

/*
 * listen: "host:port", "[v6]:port" or ":port" (all addresses: IPv6
 * dual-stack, or 0.0.0.0 where the host has no IPv6); hosts are numeric or
 * "localhost" (127.0.0.1); port 0 takes a free one (see httpd_port). On
 * failure returns NULL with a negative errno in *err (-EINVAL for a bad
 * address, -EADDRINUSE, ...) and a log line naming the address and why.
 * routes must outlive the server.
 */
struct httpd *httpd_start(const char *listen, const struct http_route *routes, size_t nroutes,
			  const struct http_limits *limits, void *arg, int *err);
/*
 * Starts a new libmicrohttpd on the same listening socket with the web
 * config's current TLS settings, then stops the old one (its connections
 * close). Returns 0 (httpd_fd has changed: watch the new one) or negative
 * errno, the old server still running.
 */
int httpd_restart(struct httpd *h);
/* The port bound, useful after asking for port 0. */
int httpd_port(struct httpd *h);
/* An fd to watch for readability in the main epoll set. */
int httpd_fd(struct httpd *h);
/* Runs MHD's work; call when httpd_fd is readable and on every loop turn. */
void httpd_run(struct httpd *h);
/* Milliseconds until MHD needs httpd_run again, -1 for none. */
int httpd_timeout_ms(struct httpd *h);
void httpd_stop(struct httpd *h);
/* The server's own metrics (erpscope_web_*). */
struct expo;
void httpd_collect(const struct httpd *h, struct expo *e);

/* Parses a listen address into a sockaddr. Exposed for tests. */
struct sockaddr_storage;
/* A query parameter's number: decimal digits only, so no sign, no spaces and
 * no overflow (strtoul takes "-1" as ULONG_MAX). */
int http_parse_u64(const char *s, uint64_t *out);

int http_parse_listen(const char *listen, struct sockaddr_storage *ss, unsigned int *sslen);

#endif
