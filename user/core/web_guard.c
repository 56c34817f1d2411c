// SPDX-License-Identifier: GPL-2.0
#include "core/web_guard.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/expo.h"

#define CLIENTS_MAX 256 /* client buckets kept; the stalest gives way */
#define CODES_MAX 8	/* distinct status codes counted per handler */
#define TOKEN 1000000000ull /* one request, in token-nanoseconds */
/* A handler past this held the ring buffers back longer than we allow. */
#define BUDGET_NS (50ull * 1000000ull)

struct web_conn {
	struct web_conn *prev, *next; /* oldest first */
	int fd;
	uint64_t accepted_ns;
	bool served;   /* holds a place */
	bool reported; /* handed out as overdue or evicted */
	uint8_t addr[16];
};

struct web_client {
	uint8_t addr[16];
	uint64_t tokens; /* token-nanoseconds */
	uint64_t last_ns;
	bool used;
};

static const double dur_edges[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
				    0.1,   0.25,   0.5,	  1.0,	2.5 };
#define NDUR (sizeof(dur_edges) / sizeof(dur_edges[0]))

struct web_handler {
	const char *name;
	int codes[CODES_MAX];
	uint64_t counts[CODES_MAX];
	uint64_t dur[NDUR + 1];
	double dur_sum;
	uint64_t over; /* runs past BUDGET_NS */
};

struct web_guard {
	struct web_limits l;
	struct web_conn *head, *tail;
	unsigned int nconns, nserved;
	uint64_t timed_out, evicted;
	struct web_client clients[CLIENTS_MAX];
	struct web_handler *h;
	size_t nh; /* handlers, "other" included */
};

struct web_guard *web_guard_new(const struct web_limits *l, const char *const *names,
				size_t nhandlers)
{
	struct web_guard *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->l = *l;
	g->nh = nhandlers + 1;
	g->h = calloc(g->nh, sizeof(*g->h));
	if (!g->h) {
		free(g);
		return NULL;
	}
	for (size_t i = 0; i < nhandlers; i++)
		g->h[i].name = names[i];
	g->h[nhandlers].name = "other";
	return g;
}

void web_guard_free(struct web_guard *g)
{
	if (!g)
		return;
	while (g->head)
		web_conn_close(g, g->head);
	free(g->h);
	free(g);
}

/* IPv4 as ::ffff:a.b.c.d, so a dual-stack socket's clients compare alike. */
static void addr_key(const struct sockaddr *sa, uint8_t out[16])
{
	memset(out, 0, 16);
	if (!sa)
		return;
	if (sa->sa_family == AF_INET6) {
		memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	} else if (sa->sa_family == AF_INET) {
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	}
}

static struct web_conn *oldest_unserved(struct web_guard *g)
{
	for (struct web_conn *c = g->head; c; c = c->next) {
		if (!c->served && !c->reported)
			return c;
	}
	return NULL;
}

struct web_conn *web_conn_open(struct web_guard *g, int fd, const struct sockaddr *sa,
			       uint64_t now_ns, int *evict_fd)
{
	struct web_conn *c;

	*evict_fd = -1;
	/* Keep a free socket or two below MHD's cap for the next client. */
	if (g->l.hard_conns && g->nconns + 2 >= g->l.hard_conns) {
		struct web_conn *old = oldest_unserved(g);

		if (old) {
			old->reported = true;
			*evict_fd = old->fd;
			g->evicted++;
		}
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->fd = fd;
	c->accepted_ns = now_ns;
	addr_key(sa, c->addr);
	c->prev = g->tail;
	if (g->tail)
		g->tail->next = c;
	else
		g->head = c;
	g->tail = c;
	g->nconns++;
	return c;
}

void web_conn_close(struct web_guard *g, struct web_conn *c)
{
	if (!c)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		g->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		g->tail = c->prev;
	g->nconns--;
	g->nserved -= c->served;
	free(c);
}

static struct web_client *client_get(struct web_guard *g, const uint8_t addr[16], uint64_t now_ns)
{
	struct web_client *stalest = &g->clients[0];

	for (size_t i = 0; i < CLIENTS_MAX; i++) {
		struct web_client *cl = &g->clients[i];

		if (cl->used && !memcmp(cl->addr, addr, 16))
			return cl;
		if (!cl->used || (stalest->used && cl->last_ns < stalest->last_ns))
			stalest = cl;
	}
	memcpy(stalest->addr, addr, 16);
	stalest->used = true;
	stalest->tokens = (uint64_t)g->l.client_rate * TOKEN; /* a full burst */
	stalest->last_ns = now_ns;
	return stalest;
}

/* Token bucket: client_rate tokens a second, at most client_rate held. */
static bool client_take(struct web_guard *g, const uint8_t addr[16], uint64_t now_ns)
{
	struct web_client *cl = client_get(g, addr, now_ns);
	uint64_t cap = (uint64_t)g->l.client_rate * TOKEN;

	if (now_ns > cl->last_ns) {
		uint64_t add = (now_ns - cl->last_ns) * g->l.client_rate;

		cl->tokens = add >= cap - cl->tokens ? cap : cl->tokens + add;
	}
	cl->last_ns = now_ns;
	if (cl->tokens < TOKEN)
		return false;
	cl->tokens -= TOKEN;
	return true;
}

enum web_admit web_admit(struct web_guard *g, struct web_conn *c, bool expensive,
			 uint64_t now_ns)
{
	if (!c)
		return WEB_ADMIT_OK;
	if (!c->served) {
		if (g->nserved >= g->l.max_conns)
			return WEB_ADMIT_BUSY;
		c->served = true;
		g->nserved++;
	}
	if (expensive && g->l.client_rate && !client_take(g, c->addr, now_ns))
		return WEB_ADMIT_SLOW_DOWN;
	return WEB_ADMIT_OK;
}

size_t web_overdue(struct web_guard *g, uint64_t now_ns, int *fds, size_t max)
{
	uint64_t limit = (uint64_t)g->l.header_timeout_ms * 1000000ull;
	size_t n = 0;

	/* Oldest first: stop at the first one still within its time. */
	for (struct web_conn *c = g->head; c && n < max; c = c->next) {
		if (now_ns - c->accepted_ns < limit)
			break;
		if (c->served || c->reported)
			continue;
		c->reported = true;
		g->timed_out++;
		fds[n++] = c->fd;
	}
	return n;
}

void web_record(struct web_guard *g, size_t handler, int status, uint64_t ns)
{
	struct web_handler *h = &g->h[handler < g->nh ? handler : g->nh - 1];
	double s = (double)ns / 1e9;
	size_t b = 0;

	for (size_t i = 0; i < CODES_MAX; i++) {
		if (!h->counts[i] || h->codes[i] == status) {
			h->codes[i] = status;
			h->counts[i]++;
			break;
		}
	}
	while (b < NDUR && s > dur_edges[b])
		b++;
	h->dur[b]++;
	h->dur_sum += s;
	h->over += ns > BUDGET_NS;
}

enum web_family { WF_REQUESTS, WF_DURATION, WF_OVER, WF_CONNECTIONS, WF_CLOSED, WF_LIMIT, WF_COUNT };

static const struct {
	const char *name;
	enum expo_type type;
	const char *help;
} families[WF_COUNT] = {
	[WF_REQUESTS] = { "erpscope_web_requests_total", EXPO_COUNTER,
			  "Requests erpscope's own HTTP server answered, by handler and status code." },
	[WF_DURATION] = { "erpscope_web_request_duration_seconds", EXPO_HISTOGRAM,
			  "Time erpscope's own HTTP server spent on a request (handler and compression), by handler." },
	[WF_OVER] = { "erpscope_web_over_budget_total", EXPO_COUNTER,
		      "Requests whose handler ran past its 50 ms budget, holding the ring buffers back that long, by handler." },
	[WF_CONNECTIONS] = { "erpscope_web_connections", EXPO_GAUGE,
			     "Open connections to erpscope's HTTP server: served (hold one of --web.max-connections places) or waiting (no complete request yet)." },
	[WF_CLOSED] = { "erpscope_web_connections_closed_total", EXPO_COUNTER,
			"Connections the server shut down before a complete request: header_timeout (not complete in time) or evicted (made room for a new client)." },
	[WF_LIMIT] = { "erpscope_web_max_connections", EXPO_GAUGE,
		       "Connections served at once (--web.max-connections); the next one is answered 503." },
};

static void emit(const struct web_guard *g, struct expo *e, enum web_family f)
{
	char code[8];

	expo_family(e, families[f].name, families[f].type, families[f].help);
	for (size_t i = 0; f <= WF_OVER && i < g->nh; i++) {
		const struct web_handler *h = &g->h[i];
		struct expo_label l[2] = { { "handler", h->name }, { "code", code } };

		if (f == WF_DURATION) {
			uint64_t n = 0;

			for (size_t b = 0; b <= NDUR; b++)
				n += h->dur[b];
			if (n)
				expo_histogram(e, l, 1, dur_edges, h->dur, NDUR, h->dur_sum);
			continue;
		}
		if (f == WF_OVER) {
			if (h->counts[0])
				expo_sample_u64(e, l, 1, h->over);
			continue;
		}
		for (size_t c = 0; c < CODES_MAX && h->counts[c]; c++) {
			snprintf(code, sizeof(code), "%d", h->codes[c]);
			expo_sample_u64(e, l, 2, h->counts[c]);
		}
	}
	if (f == WF_CONNECTIONS) {
		struct expo_label l = { "state", "served" };

		expo_sample_u64(e, &l, 1, g->nserved);
		l.value = "waiting";
		expo_sample_u64(e, &l, 1, g->nconns - g->nserved);
	} else if (f == WF_CLOSED) {
		struct expo_label l = { "reason", "header_timeout" };

		expo_sample_u64(e, &l, 1, g->timed_out);
		l.value = "evicted";
		expo_sample_u64(e, &l, 1, g->evicted);
	} else if (f == WF_LIMIT) {
		expo_sample_u64(e, NULL, 0, g->l.max_conns);
	}
}

void web_collect(const struct web_guard *g, struct expo *e)
{
	for (int f = 0; f < WF_COUNT; f++)
		emit(g, e, (enum web_family)f);
}
