// SPDX-License-Identifier: GPL-2.0
/* Request heads (line, route templates, RPC names, password dropped) and the top-k tables. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "requests/req_parse.h"
#include "requests/req_table.h"

static const char *route(const char *target)
{
	static struct req_head h;
	enum req_rpc_kind kind;

	memset(&h, 0, sizeof(h));
	req_route(target, strlen(target), &h, &kind);
	return h.route;
}

static void test_line(void)
{
	enum req_method m;
	const char *t;
	size_t tl;
	const char *l1 = "GET /web/login?redirect=x HTTP/1.1\r\nHost: a\r\n\r\n";

	CHECK_INT(req_parse_line(l1, strlen(l1), &m, &t, &tl), 36);
	CHECK_INT(m, REQ_M_GET);
	CHECK_INT(tl, 21);
	CHECK(!memcmp(t, "/web/login?redirect=x", 21));
	/* every prefix is incomplete, never an error */
	for (size_t n = 0; n < 36; n++)
		CHECK_INT(req_parse_line(l1, n, &m, &t, &tl), 0);
	CHECK_INT(req_parse_line("POST / HTTP/1.0\n", 16, &m, &t, &tl), 16);
	CHECK_INT(m, REQ_M_POST);
	CHECK_INT(req_parse_line("PROPFIND / HTTP/1.1\r\n", 21, &m, &t, &tl), 21);
	CHECK_INT(m, REQ_M_OTHER);
	CHECK_INT(req_parse_line("get / HTTP/1.1\r\n", 16, &m, &t, &tl), -EINVAL);
	CHECK_INT(req_parse_line("GET  / HTTP/1.1\r\n", 17, &m, &t, &tl), -EINVAL);
	CHECK_INT(req_parse_line("GET / HTTX/1.1\r\n", 16, &m, &t, &tl), -EINVAL);
	CHECK_INT(req_parse_line("GET / HTTP/1.1\rX", 16, &m, &t, &tl), -EINVAL);
	CHECK_INT(req_parse_line("GET /\x01 HTTP/1.1\r\n", 17, &m, &t, &tl), -EINVAL);
	CHECK_INT(req_parse_line("\x16\x03\x01\x02", 4, &m, &t, &tl), -EINVAL);
	CHECK_INT(req_parse_line("AAAAAAAAAAAAAAAAAAAAAAAA", 24, &m, &t, &tl), -EINVAL);
}

static void test_routes(void)
{
	CHECK_STR(route("/"), "/");
	CHECK_STR(route("/web/image/res.partner/7/avatar_128"), "/web/image/*");
	CHECK_STR(route("/web/image"), "/web/image");
	CHECK_STR(route("/web/content/42?download=true"), "/web/content/*");
	CHECK_STR(route("/web/assets/1/abc/web.assets_web.min.js"), "/web/assets/*");
	CHECK_STR(route("/web/webclient/load_menus/d1f0aa"), "/web/webclient/load_menus/*");
	CHECK_STR(route("/web/dataset/call_kw/sale.order/search_read"), "/web/dataset/call_kw");
	CHECK_STR(route("/web/dataset/call_kw"), "/web/dataset/call_kw");
	CHECK_STR(route("/websocket"), "/websocket");
	CHECK_STR(route("/websocket?version=17.0-1"), "/websocket");
	CHECK_STR(route("/longpolling/poll"), "/longpolling/poll");
	CHECK_STR(route("/queue_job/runjob?db=x&job_uuid=abc"), "/queue_job/runjob");
	CHECK_STR(route("/xmlrpc/2/object"), "/xmlrpc/2/object");
	CHECK_STR(route("/jsonrpc"), "/jsonrpc");
	CHECK_STR(route("/shop/product/desk-12"), "/shop/product/*");
	CHECK_STR(route("/my/orders/deadbeefcafe"), "/my/orders/*");
	CHECK_STR(route("/my/orders/page"), "/my/orders/page");
	CHECK_STR(route("/a/kjhsdfkjhsdfkjhsdfkjhsdfkjhsdfkjhsdfkjh"), "/a/*");
	CHECK_STR(route("/a/b%20c"), "/a/*");
	CHECK_STR(route("/web_editor/static/src/img/x.png"), "/web_editor/static/*");
	CHECK_STR(route("/a/b/c/d/e/f/g/h/i"), "/a/b/c/d/e/f/*");
	CHECK_STR(route("http://example.com/web/login?x=1"), "/web/login");
	CHECK_STR(route("http://example.com"), "/");
	CHECK_STR(route("*"), "*");
	CHECK_STR(route("garbage"), "unparsed");
	CHECK_STR(route("//web//login"), "/web/login");
	/* bounded whatever comes */
	{
		char big[4096];

		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = 0;
		big[0] = '/';
		for (int i = 20; i < 4000; i += 21)
			big[i] = '/';
		CHECK(strlen(route(big)) < REQ_ROUTE_MAX);
	}
	{
		struct req_head h = { 0 };
		enum req_rpc_kind kind;
		const char *t = "/web/dataset/call_button/res.partner/action_archive";

		req_route(t, strlen(t), &h, &kind);
		CHECK_INT(kind, REQ_RPC_PATH);
		CHECK(h.rpc);
		CHECK_STR(h.model, "res.partner");
		CHECK_STR(h.rpc_method, "action_archive");
		memset(&h, 0, sizeof(h));
		t = "/web/dataset/call_kw/res.partner/bad\"name";
		req_route(t, strlen(t), &h, &kind);
		CHECK(!h.rpc);
		memset(&h, 0, sizeof(h));
		t = "/websocket";
		req_route(t, strlen(t), &h, &kind);
		CHECK(h.session);
	}
}

#define PW "S3cr3t-Pa55w0rd-XYZ"

static const char jbody[] =
	"{\"jsonrpc\": \"2.0\", \"method\": \"call\", \"params\": {\"service\": \"object\", "
	"\"method\": \"execute_kw\", \"args\": [\"db1\", 2, \"" PW "\\\"],[{\", "
	"\"res.partner\", \"search_read\", [[[\"id\", \">\", 0]]], {\"limit\": 5}]}, \"id\": 7}";

static void test_jsonrpc(void)
{
	char model[REQ_NAME_MAX], method[REQ_NAME_MAX];
	size_t n = strlen(jbody);

	CHECK_INT(req_jsonrpc_model_method(jbody, n, model, sizeof(model), method, sizeof(method)),
		  1);
	CHECK_STR(model, "res.partner");
	CHECK_STR(method, "search_read");
	/* a cut body asks for more, never errs or reads past n */
	for (size_t k = 0; k < n; k++) {
		char *cut = malloc(k ? k : 1);
		int r;

		memcpy(cut, jbody, k);
		r = req_jsonrpc_model_method(cut, k, model, sizeof(model), method, sizeof(method));
		if (r != 0 && r != 1)
			fprintf(stderr, "cut at %zu: %d\n", k, r);
		CHECK(r == 0 || r == 1);
		free(cut);
	}
	/* args first, service after */
	{
		const char *b = "{\"params\":{\"args\":[\"d\",1,\"pw\",\"sale.order\",\"read\"],"
				"\"method\":\"execute\",\"service\":\"object\"}}";

		CHECK_INT(req_jsonrpc_model_method(b, strlen(b), model, sizeof(model), method,
						   sizeof(method)),
			  1);
		CHECK_STR(model, "sale.order");
		CHECK_STR(method, "read");
	}
	/* other services hold other secrets in those places: never */
	{
		const char *b = "{\"params\":{\"service\":\"db\",\"method\":\"create_database\","
				"\"args\":[\"master\",\"db\",false,\"en_US\",\"userpw\"]}}";

		CHECK_INT(req_jsonrpc_model_method(b, strlen(b), model, sizeof(model), method,
						   sizeof(method)),
			  -EINVAL);
		b = "{\"params\":{\"service\":\"common\",\"method\":\"login\",\"args\":[\"db\",\"u\",\"pw\"]}}";
		CHECK_INT(req_jsonrpc_model_method(b, strlen(b), model, sizeof(model), method,
						   sizeof(method)),
			  -EINVAL);
		b = "{\"params\":{\"service\":\"object\",\"method\":\"execute_kw\",\"args\":[\"db\",1,\"pw\",\"bad model\",\"x\"]}}";
		CHECK_INT(req_jsonrpc_model_method(b, strlen(b), model, sizeof(model), method,
						   sizeof(method)),
			  -EINVAL);
		b = "not json";
		CHECK_INT(req_jsonrpc_model_method(b, strlen(b), model, sizeof(model), method,
						   sizeof(method)),
			  -EINVAL);
		b = "{\"params\":{\"args\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}";
		CHECK(req_jsonrpc_model_method(b, strlen(b), model, sizeof(model), method,
					       sizeof(method)) < 1);
	}
}

static const char xbody[] =
	"<?xml version='1.0'?>\n<methodCall>\n<methodName>execute_kw</methodName>\n<params>\n"
	"<param>\n<value><string>db1</string></value>\n</param>\n"
	"<param>\n<value><int>2</int></value>\n</param>\n"
	"<param>\n<value><string>" PW "</string></value>\n</param>\n"
	"<param>\n<value><string>sale.order</string></value>\n</param>\n"
	"<param>\n<value><string>write</string></value>\n</param>\n"
	"</params>\n</methodCall>\n";

static void test_xmlrpc(void)
{
	char model[REQ_NAME_MAX], method[REQ_NAME_MAX];
	size_t n = strlen(xbody);

	CHECK_INT(req_xmlrpc_model_method(xbody, n, model, sizeof(model), method, sizeof(method)),
		  1);
	CHECK_STR(model, "sale.order");
	CHECK_STR(method, "write");
	for (size_t k = 0; k < n; k++)
		CHECK(req_xmlrpc_model_method(xbody, k, model, sizeof(model), method,
					      sizeof(method)) >= 0);
	{
		const char *b = "<methodCall><methodName>login</methodName></methodCall>";

		CHECK_INT(req_xmlrpc_model_method(b, strlen(b), model, sizeof(model), method,
						  sizeof(method)),
			  -EINVAL);
	}
}

static int all_zero(const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (b[i])
			return 0;
	}
	return 1;
}

/* Feeds s in pieces of step bytes; returns the head. */
static const struct req_head *feed(struct req_acc *a, const char *s, size_t n, size_t step)
{
	req_acc_init(a);
	for (size_t i = 0; i < n; i += step)
		req_acc_feed(a, s + i, n - i < step ? n - i : step);
	return req_acc_finish(a);
}

static void test_acc(void)
{
	static struct req_acc a;
	char req[4096];
	const struct req_head *h;
	size_t n;

	n = (size_t)snprintf(
		req, sizeof(req),
		"POST /jsonrpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
		"Content-Length: %zu\r\n\r\n%s",
		strlen(jbody), jbody);
	for (size_t step = 1; step <= n; step = step * 3 + 1) {
		h = feed(&a, req, n, step);
		CHECK_STR(h->route, "/jsonrpc");
		CHECK_INT(h->method, REQ_M_POST);
		CHECK(h->rpc);
		CHECK_STR(h->model, "res.partner");
		CHECK_STR(h->rpc_method, "search_read");
		CHECK(!h->pipelined);
		CHECK_INT(h->fail, REQ_PARSE_OK);
		/* the password is nowhere in what is kept */
		CHECK(!memmem(&a, sizeof(a), PW, strlen(PW)));
		CHECK(all_zero(a.buf, sizeof(a.buf)));
	}
	/* parsed as soon as possible: the buffer is wiped before the end */
	req_acc_init(&a);
	req_acc_feed(&a, req, n);
	CHECK(a.head.rpc);
	CHECK(!memmem(&a, sizeof(a), PW, strlen(PW)));

	n = (size_t)snprintf(req, sizeof(req),
			     "POST /xmlrpc/2/object HTTP/1.1\r\nContent-Length: %zu\r\n\r\n%s",
			     strlen(xbody), xbody);
	h = feed(&a, req, n, 7);
	CHECK(h->rpc);
	CHECK_STR(h->model, "sale.order");
	CHECK(!memmem(&a, sizeof(a), PW, strlen(PW)));

	h = feed(&a, "GET /web/image/res.partner/7/avatar_128?u=1 HTTP/1.0\r\n\r\n", 57, 1);
	CHECK_STR(h->route, "/web/image/*");
	CHECK_INT(h->method, REQ_M_GET);
	CHECK(!h->rpc);

	/* pipelined: a second request behind the first */
	n = (size_t)snprintf(req, sizeof(req), "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
	h = feed(&a, req, n, n);
	CHECK_STR(h->route, "/a");
	CHECK(h->pipelined);
	h = feed(&a, req, n, 3);
	CHECK(h->pipelined);
	h = feed(&a, req, n, 1);
	CHECK(h->pipelined);
	/* a chunked body is no second request */
	n = (size_t)snprintf(req, sizeof(req),
			     "POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
			     "\r\n5\r\nhello\r\n0\r\n\r\n");
	h = feed(&a, req, n, n);
	CHECK_STR(h->route, "/up");
	CHECK(!h->pipelined);
	h = feed(&a, req, n, 1);
	CHECK(!h->pipelined);

	/* hostile: random bytes, a 64 KiB line, a line cut short */
	srand(7);
	for (int round = 0; round < 200; round++) {
		char junk[3000];

		for (size_t i = 0; i < sizeof(junk); i++)
			junk[i] = (char)(rand() & 0xff);
		h = feed(&a, junk, sizeof(junk), (size_t)(round % 50) + 1);
		CHECK(strlen(h->route) < REQ_ROUTE_MAX);
		CHECK(!strcmp(h->route, "unparsed") || h->route[0] == '/' || h->route[0] == '*');
	}
	{
		static char line[65536 + 64];

		memcpy(line, "GET /", 5);
		memset(line + 5, 'a', 65536);
		memcpy(line + 5 + 65536, " HTTP/1.1\r\n\r\n", 13);
		h = feed(&a, line, 5 + 65536 + 13, 8192);
		CHECK_STR(h->route, "unparsed");
		CHECK_INT(h->fail, REQ_FAIL_TOO_LONG);
	}
	h = feed(&a, "GET /web/log", 12, 1);
	CHECK_STR(h->route, "unparsed");
	CHECK_INT(h->fail, REQ_FAIL_LINE);
	/*
	 * What the kernel keeps of a request whose body is not read: its first
	 * REQ_HEAD_CAP bytes. A line cut in its query string has its route; one
	 * cut in its path is too long; the same cut short of REQ_HEAD_CAP is no
	 * request line.
	 */
	{
		char cut[REQ_HEAD_CAP];

		n = (size_t)snprintf(cut, sizeof(cut), "GET /shop/chair-42?utm_source=");
		memset(cut + n, 'x', sizeof(cut) - n);
		h = feed(&a, cut, sizeof(cut), 100);
		CHECK_STR(h->route, "/shop/*");
		CHECK_INT(h->method, REQ_M_GET);
		CHECK_INT(h->fail, REQ_PARSE_OK);
		CHECK(all_zero(a.buf, sizeof(a.buf)));
		h = feed(&a, cut, sizeof(cut) - 1, 100);
		CHECK_STR(h->route, "unparsed");
		CHECK_INT(h->fail, REQ_FAIL_LINE);
		memcpy(cut, "POST /web/content/", 18);
		memset(cut + 18, 'y', sizeof(cut) - 18);
		cut[300] = '#';
		h = feed(&a, cut, sizeof(cut), 512);
		CHECK_STR(h->route, "/web/content/*");
		CHECK_INT(h->method, REQ_M_POST);
		memset(cut + 18, 'y', sizeof(cut) - 18);
		h = feed(&a, cut, sizeof(cut), 512);
		CHECK_STR(h->route, "unparsed");
		CHECK_INT(h->fail, REQ_FAIL_TOO_LONG);
		/*
		 * Headers past REQ_HEAD_CAP: the head is known as soon as those
		 * bytes came (the kernel sends no more), not only at the end;
		 * a /jsonrpc request waits for its body.
		 */
		n = (size_t)snprintf(cut, sizeof(cut), "GET /web/image/x HTTP/1.1\r\nCookie: ");
		memset(cut + n, 'c', sizeof(cut) - n);
		req_acc_init(&a);
		req_acc_feed(&a, cut, sizeof(cut) - 1);
		CHECK(!req_acc_head(&a));
		req_acc_feed(&a, cut + sizeof(cut) - 1, 1);
		CHECK(req_acc_head(&a) && !strcmp(req_acc_head(&a)->route, "/web/image/*"));
		CHECK(all_zero(a.buf, sizeof(a.buf)));
		n = (size_t)snprintf(cut, sizeof(cut), "POST /jsonrpc HTTP/1.1\r\nCookie: ");
		memset(cut + n, 'c', sizeof(cut) - n);
		req_acc_init(&a);
		req_acc_feed(&a, cut, sizeof(cut));
		CHECK(!req_acc_head(&a));
		/* a space ends the target: "GET /a b..." with no version is no request line */
		memcpy(cut, "GET /a b?", 9);
		h = feed(&a, cut, sizeof(cut), 512);
		CHECK_STR(h->route, "unparsed");

	/*
	 * A line the client stopped sending between the kernel's two caps is
	 * no request line; one cut at the whole buffer (a request whose body
	 * is read) has its route when its path ended in it.
	 */
	n = (size_t)snprintf(req, sizeof(req), "GET /shop/chair-42?utm_source=");
	memset(req + n, 'x', REQ_ACC_CAP - n);
	h = feed(&a, req, 600, 100);
	CHECK_STR(h->route, "unparsed");
	CHECK_INT(h->fail, REQ_FAIL_LINE);
	h = feed(&a, req, REQ_ACC_CAP, 700);
	CHECK_STR(h->route, "/shop/*");
	CHECK_INT(h->fail, REQ_PARSE_OK);
	memset(req + 5, 'z', REQ_ACC_CAP - 5);
	h = feed(&a, req, REQ_ACC_CAP, 700);
	CHECK_INT(h->fail, REQ_FAIL_TOO_LONG);
	/* Headers past REQ_HEAD_CAP when the kernel kept more: read on to their end. */
	n = (size_t)snprintf(req, sizeof(req), "GET /web/image/x HTTP/1.1\r\nCookie: ");
	memset(req + n, 'c', 700 - n);
	n = 700 + (size_t)snprintf(req + 700, sizeof(req) - 700, "\r\n\r\nGET /next HTTP/1.1\r\n\r\n");
	h = feed(&a, req, n, 100);
	CHECK_STR(h->route, "/web/image/*");
	CHECK(h->pipelined);
	}
	h = feed(&a, "\x16\x03\x01\x00\xa5\x01", 6, 6);
	CHECK_STR(h->route, "unparsed");
}

/* Feeds s in pieces of step bytes into a buffer first filled with fill; returns the head. */
static const struct req_head *feed_over(struct req_acc *a, char fill, const char *s, size_t n,
					size_t step)
{
	req_acc_init(a);
	memset(a->buf, fill, sizeof(a->buf));
	for (size_t i = 0; i < n; i += step)
		req_acc_feed(a, s + i, n - i < step ? n - i : step);
	return req_acc_finish(a);
}

/*
 * req_acc_init() leaves the buffer as it finds it (a record is malloc'd per
 * request): whatever lies past the bytes held must not change what parses.
 */
static void test_acc_reads_held_only(void)
{
	static struct req_acc clean, dirty;
	static const char fills[] = { '\n', '\r', '/', '0', ' ', 'G', (char)0xff };
	static const size_t steps[] = { 1, 3, 7, 64, 4096 };
	char jreq[2048], xreq[2048], big[3000];
	const char *reqs[] = {
		jreq,
		xreq,
		"GET /web/image/res.partner/7/avatar_128?u=1 HTTP/1.0\r\n\r\n",
		"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
		"POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"POST /jsonrpc HTTP/1.1\r\nContent-Length: 900\r\n\r\n{\"params\": {\"args\": [",
		"GET /web/webclient/version_info HTTP/1.1\r\nHost: x\r\n",
		"GET /web/log HTTP/1.",
		"GET /x HTTP/1.1\n\n",
		big,
	};
	int same = 1;

	snprintf(jreq, sizeof(jreq),
		 "POST /jsonrpc HTTP/1.1\r\nContent-Length: %zu\r\n\r\n%s", strlen(jbody), jbody);
	snprintf(xreq, sizeof(xreq),
		 "POST /xmlrpc/2/object HTTP/1.1\r\nContent-Length: %zu\r\n\r\n%s", strlen(xbody),
		 xbody);
	/* a request line that fills the buffer and goes on */
	memcpy(big, "GET /", 5);
	memset(big + 5, 'b', sizeof(big) - 6);
	big[sizeof(big) - 1] = '\0';
	for (size_t r = 0; r < sizeof(reqs) / sizeof(reqs[0]); r++) {
		size_t n = strlen(reqs[r]);

		for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
			feed_over(&clean, 0, reqs[r], n, steps[s]);
			for (size_t f = 0; f < sizeof(fills); f++) {
				feed_over(&dirty, fills[f], reqs[r], n, steps[s]);
				if (memcmp(&clean.head, &dirty.head, sizeof(clean.head))) {
					fprintf(stderr, "request %zu, step %zu, fill 0x%02x: %s vs %s\n", r,
						steps[s], (unsigned char)fills[f], clean.head.route,
						dirty.head.route);
					same = 0;
				}
			}
		}
	}
	CHECK(same);
	/* and the checks of test_acc() hold for a request parsed over garbage */
	CHECK_STR(feed_over(&dirty, '\n', jreq, strlen(jreq), 5)->model, "res.partner");
	CHECK_STR(feed_over(&dirty, '\n', reqs[3], strlen(reqs[3]), 2)->route, "/a");
	CHECK(dirty.head.pipelined);
}

struct sums {
	uint64_t count, sum_ns;
	unsigned int series, other;
	unsigned int keys_seen;
};

static void sum_series(void *arg, const char *key, uint32_t sub, const struct req_hist *h)
{
	struct sums *s = arg;

	s->count += req_hist_count(h);
	s->sum_ns += h->sum_ns;
	s->series++;
	if (!key)
		s->other++;
}

static void test_table(void)
{
	struct req_table *t = req_table_new(3);
	struct sums s, prev = { 0 };
	char key[32];

	CHECK(t != NULL);
	if (!t)
		return;
	CHECK_INT(req_table_pin(t, "unparsed"), 0);
	/* buckets: 5 ms edge inclusive */
	{
		struct req_hist h = { 0 };

		req_hist_add(&h, 5000000);
		req_hist_add(&h, 5000001);
		req_hist_add(&h, 61000000000ull);
		CHECK_INT(h.buckets[0], 1);
		CHECK_INT(h.buckets[1], 1);
		CHECK_INT(h.buckets[REQ_NEDGES], 1);
		CHECK_INT(req_hist_count(&h), 3);
	}
	for (int round = 0; round < 50; round++) {
		for (int i = 0; i < 10000; i += 97) {
			snprintf(key, sizeof(key), "/r%d", (i * 31 + round) % 10000);
			req_table_observe(t, key, 1, 1000000, NULL);
		}
		/* one hot key appears late */
		if (round > 20)
			for (int j = 0; j < 50; j++)
				req_table_observe(t, "/hot", 1, 2000000, NULL);
		req_table_observe(t, "unparsed", 2, 1, NULL);
		req_table_rotate(t);
		memset(&s, 0, sizeof(s));
		req_table_foreach(t, sum_series, &s);
		/* bounded, monotonic */
		CHECK(req_table_labelled(t) <= 3);
		CHECK(s.series <= 3 + 1 + 1 + 1);
		CHECK(s.count >= prev.count);
		CHECK(s.sum_ns >= prev.sum_ns);
		prev = s;
	}
	CHECK(req_table_evictions(t) >= 1);
	{
		/* the hot key has a label now */
		struct sums h = { 0 };
		int found = 0;

		(void)h;
		for (int i = 0; i < 1; i++) {
			struct req_table *tt = t;

			memset(&s, 0, sizeof(s));
			req_table_foreach(tt, sum_series, &s);
		}
		/* exact totals: everything observed is in some series */
		CHECK_INT(s.count, 50 * 104 + 29 * 50 + 50);
		found = 1;
		CHECK(found);
	}
	req_table_free(t);
}

static int saw_hot;

static void find_hot(void *arg, const char *key, uint32_t sub, const struct req_hist *h)
{
	if (key && !strcmp(key, "/hot"))
		saw_hot = 1;
}

static void test_table_promotes(void)
{
	struct req_table *t = req_table_new(2);

	req_table_observe(t, "/a", 0, 1, NULL);
	req_table_observe(t, "/b", 0, 1, NULL);
	for (int i = 0; i < 10; i++)
		req_table_observe(t, "/hot", 0, 1, NULL);
	req_table_foreach(t, find_hot, NULL);
	CHECK(!saw_hot);
	req_table_rotate(t);
	/* its series start from zero: what it counted before stays in other */
	req_table_observe(t, "/hot", 0, 1, NULL);
	req_table_foreach(t, find_hot, NULL);
	CHECK(saw_hot);
	CHECK_INT(req_table_evictions(t), 1);
	req_table_free(t);
}

int main(void)
{
	test_line();
	test_routes();
	test_jsonrpc();
	test_xmlrpc();
	test_acc();
	test_acc_reads_held_only();
	test_table();
	test_table_promotes();
	return check_summary("test_requests");
}
