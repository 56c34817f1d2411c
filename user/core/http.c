// SPDX-License-Identifier: GPL-2.0
/*
 * HTTP server on libmicrohttpd, polled from the daemon's epoll loop.
 *
 * We bind the listening socket ourselves and hand it over with
 * MHD_OPTION_LISTEN_SOCKET rather than MHD_OPTION_SOCK_ADDR: MHD reports a
 * failed bind only as NULL, while we need the errno for the log and the
 * caller, dual-stack on ":port" with a fallback to IPv4, and the bound port
 * when asked for port 0.
 */
#include "core/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/negotiate.h"
#include "core/web.h"
#include "core/web_guard.h"
#include "core/webtls.h"

#define HTTPD_BACKLOG 512
/* Idle keep-alive connections close after this (MHD's own timeout). */
#define HTTPD_CONN_TIMEOUT_S 3
/* Requests must be complete this long after connecting. */
#define HTTPD_HEADER_TIMEOUT_MS 2000
#define HTTPD_SWEEP_NS (100ull * 1000000ull)
#define HTTPD_OVERDUE_BATCH 64
/* MHD's cap on sockets: 4 x --web.max-connections, at least this. */
#define HTTPD_HARD_CONNS_MIN 512
/* Per-connection pool: request line and headers plus response headers. */
#define HTTPD_CONN_MEMORY (32 * 1024)
/* Below this gzip costs more than it saves. */
#define HTTPD_GZIP_MIN 256
/* MHD logs client errors too: at most this many lines a minute. */
#define HTTPD_LOG_BURST 10
#define HTTPD_LOG_WINDOW_NS (60ull * 1000000000ull)

#define TEXT_PLAIN "text/plain; charset=utf-8"

struct http_later {
	struct httpd *h;
	struct MHD_Connection *conn;
	const struct http_route *route;
	uint64_t t0;
	struct http_exchange x; /* the answer, once ready */
	char *accept_encoding;
	char *disposition;
	bool ready;
	struct http_later *next;
};

struct httpd {
	struct MHD_Daemon *mhd;
	struct http_later *laters; /* connections waiting for their answer */
	const struct http_route *routes;
	size_t nroutes;
	void *arg;
	int port;
	uint64_t log_window_start;
	unsigned int log_lines, log_dropped;
	struct web_guard *guard;
	uint64_t next_sweep_ns;
	void (*yield)(void *arg); /* between handlers: drain the event rings */
	unsigned int hard_conns;  /* MHD's connection cap */
	/* access and TLS (core/web.h); the PEM copies live as long as mhd */
	struct web *web;
	int listen_fd;
	enum web_client_auth client_auth;
	char *tls_cert, *tls_key, *tls_ca, *tls_prio;
};

const char *http_query(struct http_exchange *x, const char *key)
{
	if (!x->conn || !key)
		return NULL;
	return MHD_lookup_connection_value(x->conn, MHD_GET_ARGUMENT_KIND, key);
}

int http_reply_text(struct http_exchange *x, int status, const char *content_type, const char *text)
{
	char *copy = strdup(text ? text : "");

	if (!copy)
		return -ENOMEM;
	free(x->body);
	x->body = copy;
	x->len = strlen(copy);
	x->status = status;
	x->content_type = content_type ? content_type : TEXT_PLAIN;
	return 0;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* MHD's messages, through our logger and rate-limited: clients can cause them. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct httpd *h = cls;
	char text[512], q[600];
	uint64_t now = mono_ns();
	int n;

	if (now - h->log_window_start >= HTTPD_LOG_WINDOW_NS) {
		if (h->log_dropped)
			log_warn("libmicrohttpd messages suppressed", "count=%u", h->log_dropped);
		h->log_window_start = now;
		h->log_lines = 0;
		h->log_dropped = 0;
	}
	if (h->log_lines >= HTTPD_LOG_BURST) {
		h->log_dropped++;
		return;
	}
	h->log_lines++;
	n = vsnprintf(text, sizeof(text), fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(text))
		n = sizeof(text) - 1;
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
		text[--n] = 0;
	log_warn("libmicrohttpd", "detail=%s", log_quote(q, sizeof(q), text));
}

static const struct http_route *route_find(const struct httpd *h, const char *url)
{
	size_t len = strcspn(url, "?");

	for (size_t i = 0; i < h->nroutes; i++) {
		const char *p = h->routes[i].path;

		size_t plen = p ? strlen(p) : 0;

		if (p && plen == len && !memcmp(p, url, len))
			return &h->routes[i];
		/* "/dir/" takes "/dir/<anything>" */
		if (plen > 1 && p[plen - 1] == '/' && len > plen && !memcmp(p, url, plen))
			return &h->routes[i];
	}
	return NULL;
}

/* Every response goes through here: the web config's extra headers, then MHD_queue_response. */
static enum MHD_Result queue(struct httpd *h, struct MHD_Connection *conn, unsigned int status,
			     struct MHD_Response *r)
{
	const struct web_config *wc = h->web ? web_config(h->web) : NULL;

	for (unsigned int i = 0; wc && i < wc->nheaders; i++) {
		if (MHD_add_response_header(r, wc->headers[i].name, wc->headers[i].value) !=
		    MHD_YES)
			return MHD_NO;
	}
	if (status == MHD_HTTP_UNAUTHORIZED &&
	    MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
				    "Basic realm=\"erpscope\"") != MHD_YES)
		return MHD_NO;
	return MHD_queue_response(conn, status, r);
}

/* Queues a response for a static text body (401, 404, 405, 500). */
static enum MHD_Result reply_static(struct httpd *h, struct MHD_Connection *conn,
				    unsigned int status, const char *text, bool allow)
{
	struct MHD_Response *r;
	enum MHD_Result ret = MHD_NO;

	r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, TEXT_PLAIN) != MHD_YES)
		goto out;
	if (allow && MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") != MHD_YES)
		goto out;
	ret = queue(h, conn, status, r);
out:
	MHD_destroy_response(r);
	return ret;
}

/* gzips the body in place when the client takes it and it is worth it. */
static bool maybe_gzip(struct http_exchange *x)
{
	size_t zlen;
	void *z;
	int err;

	if (x->len <= HTTPD_GZIP_MIN || !negotiate_gzip(x->accept_encoding))
		return false;
	err = gzip_compress(x->body, x->len, &z, &zlen);
	if (err) {
		log_warn("gzip failed, sending uncompressed", "err=%d", err);
		return false;
	}
	free(x->body);
	x->body = z;
	x->len = zlen;
	return true;
}

static enum MHD_Result reply_exchange(struct httpd *h, struct MHD_Connection *conn,
				      struct http_exchange *x)
{
	struct MHD_Response *r;
	bool gzipped = maybe_gzip(x);
	enum MHD_Result ret = MHD_NO;

	/* MHD frees the body with free() once sent. */
	r = MHD_create_response_from_buffer(x->len, x->body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(x->body);
		return MHD_NO;
	}
	x->body = NULL;
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				    x->content_type ? x->content_type : TEXT_PLAIN) != MHD_YES)
		goto out;
	/* The body depends on Accept-Encoding whether or not this one was gzipped. */
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept-Encoding") != MHD_YES)
		goto out;
	if (gzipped &&
	    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip") != MHD_YES)
		goto out;
	if (x->disposition &&
	    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_DISPOSITION, x->disposition) != MHD_YES)
		goto out;
	ret = queue(h, conn, (unsigned int)x->status, r);
out:
	MHD_destroy_response(r);
	return ret;
}

static const char *header(struct MHD_Connection *conn, const char *name)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);

	return v ? v : "";
}

struct http_later *http_defer(struct http_exchange *x)
{
	struct http_later *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->accept_encoding = strdup(x->accept_encoding ? x->accept_encoding : "");
	if (!l->accept_encoding) {
		free(l);
		return NULL;
	}
	l->conn = x->conn;
	x->later = l;
	return l;
}

void http_later_reply(struct http_later *l, int status, const char *content_type,
		      const char *disposition, char *body, size_t len)
{
	if (!l || l->ready) {
		free(body);
		return;
	}
	l->disposition = disposition ? strdup(disposition) : NULL;
	l->x = (struct http_exchange){ .status = status, .content_type = content_type,
				       .disposition = l->disposition, .body = body, .len = len,
				       .accept_encoding = l->accept_encoding, .conn = l->conn };
	l->ready = true;
	/* MHD calls on_request again for it on its next run. */
	MHD_resume_connection(l->conn);
}

static void later_unlink(struct httpd *h, struct http_later *l)
{
	for (struct http_later **pp = &h->laters; *pp; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	}
	free(l->accept_encoding);
	free(l->disposition);
	free(l->x.body);
	free(l);
}

static bool is_later(const struct httpd *h, const void *p)
{
	for (const struct http_later *l = h->laters; l; l = l->next) {
		if (l == p)
			return true;
	}
	return false;
}

/* A deferred exchange resumed: send its answer. */
static enum MHD_Result reply_later(struct httpd *h, struct MHD_Connection *conn,
				   struct http_later *l, void **req_cls)
{
	enum MHD_Result ret;

	if (!l->ready)
		return MHD_YES;
	*req_cls = h;
	ret = reply_exchange(h, conn, &l->x);
	l->x.body = NULL; /* the response owns it, or reply_exchange freed it */
	web_record(h->guard, (size_t)(l->route - h->routes), l->x.status, mono_ns() - l->t0);
	later_unlink(h, l);
	return ret;
}

/* The handler deferred its answer: the connection waits, the loop runs on. */
static enum MHD_Result suspend(struct httpd *h, const struct http_route *route,
			       struct MHD_Connection *conn, struct http_exchange *x,
			       uint64_t t0, void **req_cls)
{
	struct http_later *l = x->later;

	l->h = h;
	l->route = route;
	l->t0 = t0;
	l->next = h->laters;
	h->laters = l;
	*req_cls = l;
	free(x->body);
	MHD_suspend_connection(conn);
	return MHD_YES;
}

static enum MHD_Result run_route(struct httpd *h, const struct http_route *route,
				 struct MHD_Connection *conn, const char *url, const char *method,
				 void **req_cls)
{
	struct http_exchange x = {
		.method = method,
		.path = url,
		.accept = header(conn, MHD_HTTP_HEADER_ACCEPT),
		.accept_encoding = header(conn, MHD_HTTP_HEADER_ACCEPT_ENCODING),
		.conn = conn,
		.status = MHD_HTTP_OK,
		.content_type = TEXT_PLAIN,
	};
	char q[160], e[80];
	enum MHD_Result ret;
	uint64_t t0;
	int err;

	if (h->yield)
		h->yield(h->arg);
	t0 = mono_ns();
	err = route->handler(h->arg, &x);
	if (err < 0 || x.status < 100 || x.status > 599) {
		log_warn("handler failed", "path=%s err=%s status=%d",
			 log_quote(q, sizeof(q), route->path),
			 log_quote(e, sizeof(e), err < 0 ? strerror(-err) : "bad status"),
			 x.status);
		free(x.body);
		free(x.later);
		x.status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		ret = reply_static(h, conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
				   "500 internal server error\n", false);
	} else if (x.later) {
		return suspend(h, route, conn, &x, t0, req_cls);
	} else {
		ret = reply_exchange(h, conn, &x);
	}
	web_record(h->guard, (size_t)(route - h->routes), x.status, mono_ns() - t0);
	return ret;
}

/* 503 (no place left) or 429 (this client's bucket is empty), then close. */
static enum MHD_Result reply_refused(struct httpd *h, struct MHD_Connection *conn,
				     const struct http_route *route, enum web_admit a)
{
	static const char busy[] = "503 too many connections, try again\n";
	static const char slow[] = "429 too many requests from this client, try again\n";
	bool is_busy = a == WEB_ADMIT_BUSY;
	unsigned int status = is_busy ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_TOO_MANY_REQUESTS;
	const char *text = is_busy ? busy : slow;
	enum MHD_Result ret = MHD_NO;
	struct MHD_Response *r;

	web_record(h->guard, route ? (size_t)(route - h->routes) : h->nroutes, (int)status, 0);
	r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, TEXT_PLAIN) == MHD_YES &&
	    MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1") == MHD_YES &&
	    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close") == MHD_YES)
		ret = queue(h, conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum web_admit admit(struct httpd *h, struct MHD_Connection *conn,
			    const struct http_route *route)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return web_admit(h->guard, ci ? ci->socket_context : NULL, route && route->expensive,
			 mono_ns());
}

/* Tracks each connection from accept to close (MHD's socket context). */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	const union MHD_ConnectionInfo *fdi, *ai;
	struct httpd *h = cls;
	int evict;

	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		web_conn_close(h->guard, *socket_context);
		*socket_context = NULL;
		return;
	}
	fdi = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	ai = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	*socket_context = web_conn_open(h->guard, fdi ? fdi->connect_fd : -1,
					ai ? ai->client_addr : NULL, mono_ns(), &evict);
	/* MHD sees the shut socket at its next read and closes it. */
	if (evict >= 0)
		shutdown(evict, SHUT_RDWR);
	/* TLS sessions get the client_auth_type before their handshake. */
	ai = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (h->tls_cert && ai && ai->tls_session)
		webtls_session_policy(ai->tls_session, h->client_auth);
}

/* web.h's decision for this request: 0, or the status to answer. */
static unsigned int gate(struct httpd *h, struct MHD_Connection *conn,
			 const struct http_route *route)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	return web_gate(h->web, !route || !route->metrics, ci ? ci->client_addr : NULL,
			MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						    MHD_HTTP_HEADER_AUTHORIZATION),
			mono_ns() / 1000000ull);
}

/* 401, 404 or 429 from gate(). */
static enum MHD_Result reply_denied(struct httpd *h, struct MHD_Connection *conn,
				    const struct http_route *route, unsigned int status)
{
	const char *text = status == MHD_HTTP_UNAUTHORIZED ? "401 unauthorized\n" :
			   status == MHD_HTTP_TOO_MANY_REQUESTS ? "429 too many requests\n" :
								  "404 page not found\n";

	web_record(h->guard, route ? (size_t)(route - h->routes) : h->nroutes, (int)status, 0);
	return reply_static(h, conn, status, text, false);
}

/*
 * MHD calls this once with the headers, then with each piece of a request
 * body, then once more with none. *req_cls remembers the route, or h once
 * answered. 404 and 405 are answered at once, so their body is never read
 * (MHD then closes the connection); a route answers on the last call, which
 * lets MHD keep the connection alive for the next scrape. A body sent with
 * GET is read and dropped piece by piece, never stored.
 */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **req_cls)
{
	struct httpd *h = cls;
	const struct http_route *route = *req_cls;
	enum web_admit a;
	unsigned int deny;

	(void)version;
	(void)upload_data;
	if (*req_cls && *req_cls != h && is_later(h, *req_cls))
		return reply_later(h, conn, *req_cls, req_cls);
	if (*upload_data_size || *req_cls == h) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (route) {
		*req_cls = h;
		return run_route(h, route, conn, url, method, req_cls);
	}
	*req_cls = h;
	route = route_find(h, url);
	if ((a = admit(h, conn, route)) != WEB_ADMIT_OK)
		return reply_refused(h, conn, route, a);
	if (h->web && (deny = gate(h, conn, route)))
		return reply_denied(h, conn, route, deny);
	if (!route) {
		web_record(h->guard, h->nroutes, MHD_HTTP_NOT_FOUND, 0);
		return reply_static(h, conn, MHD_HTTP_NOT_FOUND, "404 page not found\n", false);
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD)) {
		web_record(h->guard, (size_t)(route - h->routes), MHD_HTTP_METHOD_NOT_ALLOWED, 0);
		return reply_static(h, conn, MHD_HTTP_METHOD_NOT_ALLOWED, "405 method not allowed\n",
				    true);
	}
	*req_cls = (void *)route;
	return MHD_YES;
}

static int listen_socket(const struct sockaddr_storage *ss, unsigned int sslen, int *fdp)
{
	int fd, err, one = 1, zero = 0;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		goto fail;
	/* [::] and ":port" take IPv4 too, whatever net.ipv6.bindv6only says. */
	if (ss->ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)))
		goto fail;
	if (bind(fd, (const struct sockaddr *)ss, sslen) || listen(fd, HTTPD_BACKLOG))
		goto fail;
	*fdp = fd;
	return 0;
fail:
	err = -errno;
	close(fd);
	return err;
}

/* Binds listen; ":port" falls back to 0.0.0.0 where IPv6 is missing. */
static int bind_listen(const char *listen, int *fdp, int *port)
{
	struct sockaddr_storage ss;
	unsigned int sslen;
	socklen_t len;
	int err;

	err = http_parse_listen(listen, &ss, &sslen);
	if (err)
		return err;
	err = listen_socket(&ss, sslen, fdp);
	if ((err == -EAFNOSUPPORT || err == -EADDRNOTAVAIL) && listen[0] == ':') {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		uint16_t p = ((struct sockaddr_in6 *)&ss)->sin6_port;

		memset(&ss, 0, sizeof(ss));
		sin->sin_family = AF_INET;
		sin->sin_port = p;
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		err = listen_socket(&ss, sizeof(*sin), fdp);
		if (!err)
			log_warn("no IPv6 on this host, listening on IPv4 only", "port=%u",
				 ntohs(p));
	}
	if (err)
		return err;
	len = sizeof(ss);
	if (getsockname(*fdp, (struct sockaddr *)&ss, &len)) {
		err = -errno;
		close(*fdp);
		return err;
	}
	*port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port :
						 ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

/* The guard's limits from the flags; MHD's cap leaves room for waiting clients. */
static struct web_guard *guard_new(const struct http_route *routes, size_t nroutes,
				   const struct http_limits *hl, unsigned int *hard)
{
	struct web_limits l = {
		.max_conns = hl->max_conns,
		.client_rate = hl->client_rate,
		.header_timeout_ms = HTTPD_HEADER_TIMEOUT_MS,
	};
	const char **names = calloc(nroutes + 1, sizeof(*names));
	struct web_guard *g;

	if (!names)
		return NULL;
	for (size_t i = 0; i < nroutes; i++)
		names[i] = routes[i].path;
	*hard = l.max_conns * 4 < HTTPD_HARD_CONNS_MIN ? HTTPD_HARD_CONNS_MIN : l.max_conns * 4;
	l.hard_conns = *hard;
	g = web_guard_new(&l, names, nroutes);
	free(names);
	return g;
}

static void tls_free(struct httpd *h)
{
	free(h->tls_cert);
	free(h->tls_key);
	free(h->tls_ca);
	free(h->tls_prio);
	h->tls_cert = h->tls_key = h->tls_ca = h->tls_prio = NULL;
}

/* Copies web's TLS settings into h (MHD keeps pointers to them). */
static int tls_copy(struct httpd *h)
{
	const struct web_config *wc = h->web ? web_config(h->web) : NULL;

	tls_free(h);
	if (!wc || !wc->tls)
		return 0;
	h->client_auth = wc->client_auth;
	h->tls_cert = strdup(wc->cert_pem);
	h->tls_key = strdup(wc->key_pem);
	h->tls_prio = strdup(wc->priority);
	h->tls_ca = wc->ca_pem ? strdup(wc->ca_pem) : NULL;
	if (!h->tls_cert || !h->tls_key || !h->tls_prio || (wc->ca_pem && !h->tls_ca)) {
		tls_free(h);
		return -ENOMEM;
	}
	return 0;
}

/* One libmicrohttpd on listening socket fd, with h's TLS copies when set. */
static struct MHD_Daemon *mhd_start(struct httpd *h, int fd)
{
	struct MHD_OptionItem opts[] = {
		{ MHD_OPTION_LISTEN_SOCKET, fd, NULL },
		{ MHD_OPTION_CONNECTION_LIMIT, h->hard_conns, NULL },
		{ MHD_OPTION_CONNECTION_TIMEOUT, HTTPD_CONN_TIMEOUT_S, NULL },
		{ MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTPD_CONN_MEMORY, NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	struct MHD_OptionItem tls[] = {
		{ MHD_OPTION_HTTPS_MEM_CERT, 0, h->tls_cert },
		{ MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls_key },
		{ MHD_OPTION_HTTPS_PRIORITIES, 0, h->tls_prio },
		{ h->tls_ca ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, 0, h->tls_ca },
		{ MHD_OPTION_END, 0, NULL },
	};
	/* Suspend/resume: GET /trace answers when its recording ends (http_defer). */
	unsigned int flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;

	if (h->tls_cert)
		flags |= MHD_USE_TLS;
	else
		tls[0].option = MHD_OPTION_END;
	/* No MHD thread: MHD_run from our loop, so handlers need no locks. */
	return MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER,
				mhd_log, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
				MHD_OPTION_ARRAY, opts, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
}

struct httpd *httpd_start(const char *listen, const struct http_route *routes, size_t nroutes,
			  const struct http_limits *hl, void *arg, int *err)
{
	char q[160], etext[80];
	struct httpd *h;
	int fd = -1;

	*err = 0;
	h = calloc(1, sizeof(*h));
	if (!h) {
		*err = -ENOMEM;
		return NULL;
	}
	h->routes = routes;
	h->nroutes = nroutes;
	h->arg = arg;
	h->yield = hl->yield;
	h->web = hl->web;
	h->log_window_start = mono_ns();
	h->guard = guard_new(routes, nroutes, hl, &h->hard_conns);
	if (!h->guard) {
		*err = -ENOMEM;
		goto fail;
	}
	*err = bind_listen(listen ? listen : "", &fd, &h->port);
	if (*err) {
		const char *why = *err == -EINVAL ?
					  "invalid address, want host:port, [v6]:port or :port" :
					  strerror(-*err);

		log_error("cannot listen on the web address", "address=%s err=%s",
			  log_quote(q, sizeof(q), listen ? listen : ""),
			  log_quote(etext, sizeof(etext), why));
		goto fail;
	}
	h->listen_fd = fd;
	*err = tls_copy(h);
	h->mhd = *err ? NULL : mhd_start(h, fd);
	if (!h->mhd) {
		*err = *err ? *err : -EIO;
		log_error("cannot start libmicrohttpd", "address=%s",
			  log_quote(q, sizeof(q), listen));
		close(fd);
		goto fail;
	}
	log_info("listening", "address=%s port=%d max_connections=%u tls=%s",
		 log_quote(q, sizeof(q), listen), h->port, hl->max_conns,
		 h->tls_cert ? "on" : "off");
	return h;
fail:
	tls_free(h);
	web_guard_free(h->guard);
	free(h);
	return NULL;
}

int httpd_restart(struct httpd *h)
{
	char *saved[4] = { h->tls_cert, h->tls_key, h->tls_ca, h->tls_prio };
	enum web_client_auth saved_auth = h->client_auth;
	struct MHD_Daemon *mhd;
	int fd, err;

	fd = fcntl(h->listen_fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	h->tls_cert = h->tls_key = h->tls_ca = h->tls_prio = NULL;
	err = tls_copy(h);
	mhd = err ? NULL : mhd_start(h, fd);
	if (!mhd) {
		log_error("cannot restart libmicrohttpd with the new TLS settings, keeping the old ones");
		tls_free(h);
		h->tls_cert = saved[0];
		h->tls_key = saved[1];
		h->tls_ca = saved[2];
		h->tls_prio = saved[3];
		h->client_auth = saved_auth;
		close(fd);
		return err ? err : -EIO;
	}
	/* The old one closes its connections and its copy of the socket. */
	MHD_stop_daemon(h->mhd);
	for (int i = 0; i < 4; i++)
		free(saved[i]);
	h->mhd = mhd;
	h->listen_fd = fd;
	log_info("web server restarted for new TLS settings", "tls=%s", h->tls_cert ? "on" : "off");
	return 0;
}

int httpd_fd(struct httpd *h)
{
	const union MHD_DaemonInfo *info;

	info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	return info ? info->epoll_fd : -EINVAL;
}

int httpd_port(struct httpd *h)
{
	return h->port;
}

/* Shuts connections whose request is overdue; MHD closes them at its next run. */
static void sweep(struct httpd *h)
{
	uint64_t now = mono_ns();
	int fds[HTTPD_OVERDUE_BATCH];
	size_t n;

	if (now < h->next_sweep_ns)
		return;
	h->next_sweep_ns = now + HTTPD_SWEEP_NS;
	do {
		n = web_overdue(h->guard, now, fds, HTTPD_OVERDUE_BATCH);
		for (size_t i = 0; i < n; i++)
			shutdown(fds[i], SHUT_RDWR);
	} while (n == HTTPD_OVERDUE_BATCH);
}

void httpd_run(struct httpd *h)
{
	MHD_run(h->mhd);
	sweep(h);
}

void httpd_collect(const struct httpd *h, struct expo *e)
{
	web_collect(h->guard, e);
}

int httpd_timeout_ms(struct httpd *h)
{
	MHD_UNSIGNED_LONG_LONG ms;

	if (MHD_get_timeout(h->mhd, &ms) != MHD_YES)
		return -1;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

void httpd_stop(struct httpd *h)
{
	if (!h)
		return;
	/* MHD must not stop with connections suspended: resume those still waiting. */
	for (struct http_later *l = h->laters; l; l = l->next) {
		if (!l->ready)
			MHD_resume_connection(l->conn);
	}
	/* Closes the listening socket and every connection. */
	MHD_stop_daemon(h->mhd);
	while (h->laters)
		later_unlink(h, h->laters);
	web_guard_free(h->guard);
	tls_free(h);
	free(h);
}
