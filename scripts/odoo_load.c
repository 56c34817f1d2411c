// SPDX-License-Identifier: GPL-2.0
/*
 * HTTP load for scripts/odoo_server.py, for the odoo section of
 * scripts/bench.sh: CLIENTS threads, each POSTing Odoo web-client JSON-RPC
 * search_read calls (res.partner and sale.order in turn, a random page of 80)
 * to /web/dataset/call_kw/<model>/search_read, one request per connection
 * (Connection: close), for SECONDS. Prints one JSON line: requests, errors
 * (no 200 JSON-RPC result), seconds, p50_ms, p95_ms.
 *
 * With PATH, each request is a JSON-RPC call without parameters POSTed to
 * PATH instead (/web/webclient/version_info: the cheapest Odoo route, for
 * the requests section); with "keepalive" after it, each client sends its
 * requests one after the other on one HTTP/1.1 connection (reading each
 * answer to its Content-Length), opening another only when that one fails
 * or the answer says `Connection: close`; with "browser" instead, one
 * request per connection that carries the ~900 bytes of headers a browser
 * behind a reverse proxy sends (user agent, accepts, client hints,
 * forwarding, the session cookie), as Odoo's web client's calls do.
 *
 * C, not Python: erpscope profiles every python it finds, so a Python client
 * would add the daemon's work on its own samples to the measured CPU.
 *
 *   cc -O2 -pthread -o odoo_load scripts/odoo_load.c
 *   ./odoo_load PORT [SECONDS [CLIENTS [PATH [keepalive|browser]]]]
 *                                     (defaults 10 s, 6 clients, search_read)
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *const models[2] = { "res.partner", "sale.order" };
static const char *const fields[2] = {
	"[\"name\", \"complete_name\", \"email\", \"phone\", \"city\", \"country_id\", "
	"\"is_company\", \"user_id\"]",
	"[\"name\", \"date_order\", \"partner_id\", \"user_id\", \"amount_total\", "
	"\"currency_id\", \"state\", \"invoice_status\"]",
};
static const char *const domains[2] = {
	"[[\"active\", \"=\", true]]",
	"[[\"state\", \"in\", [\"sale\", \"done\", \"sent\"]]]",
};

static int port;
static const char *path; /* NULL: search_read calls */
static bool keepalive;
static const char *headers = ""; /* more header lines, each with its CRLF */

/* What Chrome sends with a JSON-RPC call through nginx: 896 bytes. */
static const char browser_headers[] =
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
	"Chrome/131.0.0.0 Safari/537.36\r\n"
	"Accept: application/json, text/javascript, */*; q=0.01\r\n"
	"Accept-Language: en-US,en;q=0.9,fr;q=0.8\r\n"
	"Accept-Encoding: gzip, deflate, br, zstd\r\n"
	"Origin: https://erp.example.com\r\n"
	"Referer: https://erp.example.com/odoo/action-sale.action_quotations_with_onboarding"
	"?view_type=list\r\n"
	"sec-ch-ua: \"Google Chrome\";v=\"131\", \"Chromium\";v=\"131\", "
	"\"Not_A Brand\";v=\"24\"\r\n"
	"sec-ch-ua-mobile: ?0\r\nsec-ch-ua-platform: \"Linux\"\r\n"
	"Sec-Fetch-Dest: empty\r\nSec-Fetch-Mode: cors\r\nSec-Fetch-Site: same-origin\r\n"
	"X-Forwarded-For: 203.0.113.57\r\nX-Forwarded-Proto: https\r\n"
	"X-Forwarded-Host: erp.example.com\r\nX-Real-IP: 203.0.113.57\r\n"
	"Cookie: frontend_lang=en_US; cids=1; tz=Europe/Brussels; session_id="
	"Xk3v9QeJ2mW8pT5rY7uN1bL4cD6fH0gA2sE9iO3kM5nB7vC1xZ8qW4eR6tY2uI0oP3aS5dF7gH9jK1l"
	"Z3xC5vB7nM9qW1eR3tY5uI7oP9aS1dF3gH5jK7l\r\n";
static double deadline;
static atomic_long counter;

struct thread {
	pthread_t t;
	double *lat;
	long n, cap, errors;
	long calls; /* its socket reads and writes: each runs the requests probe's tracepoints */
	int fd; /* keep-alive: the connection, -1 when none */
	unsigned int seed;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The request's bytes for call n into req (its size), or -1. */
static int request(char *req, size_t size, long n, unsigned int *seed)
{
	const char *conn = keepalive ? "" : "Connection: close\r\n";
	char body[1024];
	int m = n % 2, len;

	if (path) {
		len = snprintf(body, sizeof(body),
			       "{\"jsonrpc\": \"2.0\", \"method\": \"call\", \"id\": %ld, "
			       "\"params\": {}}", n);
		return snprintf(req, size,
				"POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s"
				"Content-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s",
				path, port, headers, len, conn, body);
	}
	len = snprintf(body, sizeof(body),
		       "{\"jsonrpc\": \"2.0\", \"method\": \"call\", \"id\": %ld, \"params\": "
		       "{\"model\": \"%s\", \"method\": \"search_read\", \"args\": [], \"kwargs\": "
		       "{\"domain\": %s, \"fields\": %s, \"offset\": %d, \"limit\": 80, \"context\": "
		       "{\"lang\": \"en_US\", \"tz\": \"Europe/Brussels\", \"uid\": 2, "
		       "\"allowed_company_ids\": [1]}}}}",
		       n, models[m], domains[m], fields[m], 80 * (int)(rand_r(seed) % 40));
	return snprintf(req, size,
			"POST /web/dataset/call_kw/%s/search_read HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s"
			"Content-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s",
			models[m], port, headers, len, conn, body);
}

/*
 * Reads one answer: to the end of the connection, or with keep-alive to the
 * end of its Content-Length body. Keeps its start (status line, headers, the
 * result key) in head; 0 when it is a 200 JSON-RPC result.
 */
static int response(struct thread *t, int fd, char *head, size_t size)
{
	size_t got = 0, total = 0, want = 0;
	char *end, *cl;
	ssize_t r;

	for (;;) {
		char sink[65536];

		if (got < size - 1)
			r = read(fd, head + got, size - 1 - got);
		else
			r = read(fd, sink, sizeof(sink));
		t->calls++;
		if (r <= 0)
			break;
		total += r;
		if (got < size - 1) {
			got += r;
			head[got] = 0;
		}
		if (!keepalive)
			continue;
		if (!want && (end = strstr(head, "\r\n\r\n"))) {
			cl = strcasestr(head, "\r\nContent-Length:");
			if (!cl || cl > end)
				return -1;
			want = end + 4 - head + strtoul(cl + 17, NULL, 10);
		}
		if (want && total >= want)
			break;
	}
	head[got] = 0;
	if (keepalive ? !want || total < want : r != 0)
		return -1;
	if (strncmp(head, "HTTP/1.", 7) || strncmp(head + 8, " 200", 4) ||
	    !strstr(head, "\"result\""))
		return -1;
	return 0;
}

/* One request: 0 when it got a 200 JSON-RPC result. */
static int call(struct thread *t, long n)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char req[2048], head[4096];
	int hl = request(req, sizeof(req), n, &t->seed), ret = -1;

	if (hl < 0 || hl >= (int)sizeof(req))
		return -1;
	if (t->fd < 0) {
		t->fd = socket(AF_INET, SOCK_STREAM, 0);
		if (t->fd < 0)
			return -1;
		if (connect(t->fd, (struct sockaddr *)&sa, sizeof(sa)))
			goto out_close;
	}
	t->calls++;
	if (write(t->fd, req, hl) != hl)
		goto out_close;
	ret = response(t, t->fd, head, sizeof(head));
	/* A server that keeps no connection alive says so in its answer. */
	if (keepalive && !ret && !strcasestr(head, "\r\nConnection: close\r\n"))
		return 0;
out_close:
	close(t->fd);
	t->fd = -1;
	return ret;
}

static void *client(void *arg)
{
	struct thread *t = arg;

	while (now() < deadline) {
		long n = atomic_fetch_add(&counter, 1);
		double t0 = now();

		if (call(t, n)) {
			t->errors++;
			continue;
		}
		if (t->n == t->cap) {
			t->cap = t->cap ? 2 * t->cap : 4096;
			t->lat = realloc(t->lat, t->cap * sizeof(double));
			if (!t->lat) {
				perror("odoo_load: realloc");
				exit(1);
			}
		}
		t->lat[t->n++] = now() - t0;
	}
	if (t->fd >= 0)
		close(t->fd);
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The q quantile of n sorted values, interpolated between ranks. */
static double quantile(const double *v, long n, double q)
{
	double pos = q * (n - 1);
	long i = (long)pos;

	if (n == 0)
		return 0;
	return i + 1 < n ? v[i] + (v[i + 1] - v[i]) * (pos - i) : v[i];
}

int main(int argc, char **argv)
{
	int clients = argc > 3 ? atoi(argv[3]) : 6;
	double seconds = argc > 2 ? atof(argv[2]) : 10, t0;
	struct thread *th;
	long total = 0, errors = 0, calls = 0;
	double *all;

	if (argc < 2 || clients < 1 ||
	    (argc > 5 && strcmp(argv[5], "keepalive") && strcmp(argv[5], "browser"))) {
		fprintf(stderr,
			"usage: odoo_load PORT [SECONDS [CLIENTS [PATH [keepalive|browser]]]]\n");
		return 2;
	}
	port = atoi(argv[1]);
	path = argc > 4 ? argv[4] : NULL;
	keepalive = argc > 5 && !strcmp(argv[5], "keepalive");
	if (argc > 5 && !strcmp(argv[5], "browser"))
		headers = browser_headers;
	th = calloc(clients, sizeof(*th));
	t0 = now();
	deadline = t0 + seconds;
	for (int i = 0; i < clients; i++) {
		th[i].seed = (unsigned int)(t0 * 1e6) + i;
		th[i].fd = -1;
		pthread_create(&th[i].t, NULL, client, &th[i]);
	}
	for (int i = 0; i < clients; i++) {
		pthread_join(th[i].t, NULL);
		total += th[i].n;
		errors += th[i].errors;
		calls += th[i].calls;
	}
	seconds = now() - t0;
	all = malloc((total + 1) * sizeof(double));
	total = 0;
	for (int i = 0; i < clients; i++) {
		memcpy(all + total, th[i].lat, th[i].n * sizeof(double));
		total += th[i].n;
	}
	qsort(all, total, sizeof(double), cmp);
	printf("{\"requests\": %ld, \"errors\": %ld, \"seconds\": %.6f, \"p50_ms\": %.3f, "
	       "\"p95_ms\": %.3f, \"socket_calls\": %ld}\n",
	       total, errors, seconds, quantile(all, total, 0.5) * 1e3,
	       quantile(all, total, 0.95) * 1e3, calls);
	return 0;
}
