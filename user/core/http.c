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

#define HTTPD_BACKLOG 64
#define HTTPD_CONN_LIMIT 64
#define HTTPD_CONN_TIMEOUT_S 10
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

/* Queues a response for a static text body (404, 405, 500). */
static enum MHD_Result reply_static(struct MHD_Connection *conn, unsigned int status,
				    const char *text, bool allow)
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
	ret = MHD_queue_response(conn, status, r);
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

static enum MHD_Result reply_exchange(struct MHD_Connection *conn, struct http_exchange *x)
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
	ret = MHD_queue_response(conn, (unsigned int)x->status, r);
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
	ret = reply_exchange(conn, &l->x);
	l->x.body = NULL; /* the response owns it, or reply_exchange freed it */
	later_unlink(h, l);
	return ret;
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
	int err;

	err = route->handler(h->arg, &x);
	if (err < 0 || x.status < 100 || x.status > 599) {
		log_warn("handler failed", "path=%s err=%s status=%d",
			 log_quote(q, sizeof(q), route->path),
			 log_quote(e, sizeof(e), err < 0 ? strerror(-err) : "bad status"),
			 x.status);
		free(x.body);
		free(x.later);
		return reply_static(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
				    "500 internal server error\n", false);
	}
	if (x.later) {
		x.later->h = h;
		x.later->next = h->laters;
		h->laters = x.later;
		*req_cls = x.later;
		free(x.body);
		MHD_suspend_connection(conn);
		return MHD_YES;
	}
	return reply_exchange(conn, &x);
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
	if (!route)
		return reply_static(conn, MHD_HTTP_NOT_FOUND, "404 page not found\n", false);
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply_static(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "405 method not allowed\n",
				    true);
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

struct httpd *httpd_start(const char *listen, const struct http_route *routes, size_t nroutes,
			  void *arg, int *err)
{
	struct MHD_OptionItem opts[] = {
		{ MHD_OPTION_LISTEN_SOCKET, -1, NULL },
		{ MHD_OPTION_CONNECTION_LIMIT, HTTPD_CONN_LIMIT, NULL },
		{ MHD_OPTION_CONNECTION_TIMEOUT, HTTPD_CONN_TIMEOUT_S, NULL },
		{ MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTPD_CONN_MEMORY, NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
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
	h->log_window_start = mono_ns();
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
	opts[0].value = fd;
	/* No MHD thread: MHD_run from our loop, so handlers need no locks. */
	h->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL, on_request, h,
				  MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, MHD_OPTION_ARRAY, opts,
				  MHD_OPTION_END);
	if (!h->mhd) {
		*err = -EIO;
		log_error("cannot start libmicrohttpd", "address=%s",
			  log_quote(q, sizeof(q), listen));
		close(fd);
		goto fail;
	}
	log_info("listening", "address=%s port=%d", log_quote(q, sizeof(q), listen), h->port);
	return h;
fail:
	free(h);
	return NULL;
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

void httpd_run(struct httpd *h)
{
	MHD_run(h->mhd);
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
	free(h);
}
