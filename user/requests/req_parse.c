// SPDX-License-Identifier: GPL-2.0
/*
 * HTTP request heads: request line, route templates, Odoo RPC model and
 * method (see requests/req_parse.h). Every read is bounded by the length
 * given; nothing here allocates.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "requests/req_parse.h"

static const char *const method_names[REQ_M_COUNT] = {
	[REQ_M_GET] = "GET",	     [REQ_M_POST] = "POST",	[REQ_M_HEAD] = "HEAD",
	[REQ_M_PUT] = "PUT",	     [REQ_M_DELETE] = "DELETE", [REQ_M_PATCH] = "PATCH",
	[REQ_M_OPTIONS] = "OPTIONS", [REQ_M_OTHER] = "other",
};

static const char *const fail_names[REQ_FAIL_COUNT] = {
	[REQ_PARSE_OK] = "ok",
	[REQ_FAIL_LINE] = "request_line",
	[REQ_FAIL_TOO_LONG] = "too_long",
	[REQ_FAIL_PIPELINED] = "pipelined",
};

const char *req_method_name(enum req_method m)
{
	return (unsigned int)m < REQ_M_COUNT ? method_names[m] : "other";
}

const char *req_fail_name(enum req_fail f)
{
	return (unsigned int)f < REQ_FAIL_COUNT ? fail_names[f] : "other";
}

/* Longest method token accepted ("PROPPATCH", "MKCALENDAR" fit). */
#define METHOD_MAX 16
/* Segments of a templated path; past them the rest is "*". */
#define SEGS_MAX 6
/* A segment this long (or a hex run this long) is an id or a token. */
#define SEG_LONG 32
#define HEX_LONG 8

/* ---------------------------------------------------------------- request line */

static bool is_upper(char c)
{
	return c >= 'A' && c <= 'Z';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static enum req_method method_of(const char *s, size_t n)
{
	for (int m = 0; m < REQ_M_OTHER; m++) {
		if (strlen(method_names[m]) == n && !memcmp(method_names[m], s, n))
			return (enum req_method)m;
	}
	return REQ_M_OTHER;
}

/* Where the method's token at the start of buf ends (at most METHOD_MAX). */
static size_t method_end(const char *buf, size_t len)
{
	size_t i = 0;

	while (i < len && i < METHOD_MAX && (is_upper(buf[i]) || buf[i] == '-' || buf[i] == '_'))
		i++;
	return i;
}

int req_parse_line(const char *buf, size_t len, enum req_method *method, const char **target,
		   size_t *tlen)
{
	size_t i = method_end(buf, len), m, t0, t1;

	if (i == len)
		return i < METHOD_MAX ? 0 : -EINVAL;
	if (!i || buf[i] != ' ')
		return -EINVAL;
	m = i++;
	t0 = i;
	while (i < len && (unsigned char)buf[i] > 0x20 && (unsigned char)buf[i] < 0x7f)
		i++;
	if (i == len)
		return 0;
	if (i == t0 || buf[i] != ' ')
		return -EINVAL;
	t1 = i++;
	/* "HTTP/d.d" then "\r\n" or "\n" */
	for (size_t k = 0; k < 8; k++, i++) {
		static const char proto[] = "HTTP/d.d";

		if (i == len)
			return 0;
		if (proto[k] == 'd' ? !is_digit(buf[i]) : buf[i] != proto[k])
			return -EINVAL;
	}
	if (i < len && buf[i] == '\r')
		i++;
	if (i == len)
		return 0;
	if (buf[i] != '\n')
		return -EINVAL;
	*method = method_of(buf, m);
	*target = buf + t0;
	*tlen = t1 - t0;
	return (int)(i + 1);
}

/* ---------------------------------------------------------------- routes */

struct seg {
	const char *s;
	size_t n;
};

static bool seg_is(const struct seg *g, const char *lit)
{
	return g->n == strlen(lit) && !memcmp(g->s, lit, g->n);
}

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '.' ||
	       c == '_';
}

/* An Odoo model or method name: [A-Za-z0-9._], 1..REQ_NAME_MAX-1 bytes. */
static bool copy_name(const char *s, size_t n, char *out, size_t size)
{
	if (!n || n >= size || n >= REQ_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!name_char(s[i]))
			return false;
	}
	memcpy(out, s, n);
	out[n] = 0;
	return true;
}

/* Whether a path segment is kept as it is, or is an id (digits, hex, random, escaped). */
static bool seg_plain(const struct seg *g)
{
	size_t hex = 0;

	if (g->n > SEG_LONG)
		return false;
	for (size_t i = 0; i < g->n; i++) {
		char c = g->s[i];

		if (is_digit(c))
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' || c == '_' ||
		      c == '-' || c == '~'))
			return false;
		hex = ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) ? hex + 1 : 0;
		if (hex >= HEX_LONG)
			return false;
	}
	return true;
}

/* Appends "/" and n bytes of s to out (len: its length), within size. */
static void put_seg(char *out, size_t size, size_t *len, const char *s, size_t n)
{
	if (*len + 1 + n >= size)
		return;
	out[(*len)++] = '/';
	memcpy(out + *len, s, n);
	*len += n;
	out[*len] = 0;
}

/* Routes whose first segments name the route; the rest are arguments ("*"). */
static const struct prefix {
	const char *path; /* its segments, "/"-joined, without the leading "/" */
	unsigned int nseg;
	bool session;
} prefixes[] = {
	{ "web/image", 2, false },
	{ "web/content", 2, false },
	{ "web/assets", 2, false },
	{ "web/binary", 2, false },
	{ "web/webclient/load_menus", 3, false },
	{ "web/webclient/translations", 3, false },
	{ "web/webclient/qweb", 3, false },
	{ "web/webclient/locale", 3, false },
	{ "web/dataset/call_kw", 3, false },
	{ "web/dataset/call_button", 3, false },
	{ "web/dataset/call", 3, false },
	{ "web/dataset/resequence", 3, false },
	{ "web/action/load", 3, false },
	{ "web/session", 2, false },
	{ "web/signup", 2, false },
	{ "report/pdf", 2, false },
	{ "report/html", 2, false },
	{ "report/download", 2, false },
	{ "queue_job/runjob", 2, false },
	{ "longpolling/poll", 2, true },
	{ "longpolling/im_status", 2, false },
	{ "websocket", 1, true },
	{ "jsonrpc", 1, false },
	{ "xmlrpc/2/object", 3, false },
	{ "xmlrpc/2/common", 3, false },
	{ "xmlrpc/2/db", 3, false },
	{ "xmlrpc/object", 2, false },
	{ "xmlrpc/common", 2, false },
};

/* Whether segs[0..nseg) spell p->path. */
static bool prefix_match(const struct prefix *p, const struct seg *segs, unsigned int nseg)
{
	const char *s = p->path;

	if (nseg < p->nseg)
		return false;
	for (unsigned int i = 0; i < p->nseg; i++) {
		const char *slash = strchr(s, '/');
		size_t n = slash ? (size_t)(slash - s) : strlen(s);

		if (segs[i].n != n || memcmp(segs[i].s, s, n))
			return false;
		s = slash ? slash + 1 : s + n;
	}
	return true;
}

void req_route(const char *target, size_t tlen, struct req_head *h, enum req_rpc_kind *kind)
{
	struct seg segs[SEGS_MAX + 2];
	unsigned int nseg = 0;
	size_t i = 0, len = 0, end;
	bool more = false;

	*kind = REQ_RPC_NONE;
	h->route[0] = 0;
	h->session = false;
	/* Absolute form: "http://host/path" -> "/path". */
	if (tlen && target[0] != '/') {
		const char *p = memchr(target, ':', tlen);

		if (p && (size_t)(p - target) + 3 <= tlen && p[1] == '/' && p[2] == '/') {
			size_t at = (size_t)(p - target) + 3;
			const char *slash = memchr(target + at, '/', tlen - at);

			if (!slash) {
				strcpy(h->route, "/");
				return;
			}
			tlen -= (size_t)(slash - target);
			target = slash;
		} else {
			strcpy(h->route, tlen == 1 && target[0] == '*' ? "*" : "unparsed");
			return;
		}
	}
	for (end = 0; end < tlen && target[end] != '?' && target[end] != '#'; end++)
		;
	while (i < end) {
		size_t s0;

		while (i < end && target[i] == '/')
			i++;
		if (i == end)
			break;
		s0 = i;
		while (i < end && target[i] != '/')
			i++;
		if (nseg == SEGS_MAX + 1) {
			more = true;
			break;
		}
		segs[nseg++] = (struct seg){ target + s0, i - s0 };
	}
	if (!nseg) {
		strcpy(h->route, "/");
		return;
	}
	for (size_t p = 0; p < sizeof(prefixes) / sizeof(prefixes[0]); p++) {
		const struct prefix *px = &prefixes[p];

		if (!prefix_match(px, segs, nseg))
			continue;
		bool rpc_path = !strcmp(px->path, "web/dataset/call_kw") ||
				!strcmp(px->path, "web/dataset/call_button");

		for (unsigned int k = 0; k < px->nseg; k++)
			put_seg(h->route, sizeof(h->route), &len, segs[k].s, segs[k].n);
		/* The RPC's model and method are in erpscope_odoo_rpc_duration_seconds. */
		if ((nseg > px->nseg || more) && !rpc_path)
			put_seg(h->route, sizeof(h->route), &len, "*", 1);
		h->session = px->session;
		if (rpc_path && nseg >= 5 &&
		    copy_name(segs[3].s, segs[3].n, h->model, sizeof(h->model)) &&
		    copy_name(segs[4].s, segs[4].n, h->rpc_method, sizeof(h->rpc_method))) {
			h->rpc = true;
			*kind = REQ_RPC_PATH;
		} else if (!strcmp(px->path, "jsonrpc") && nseg == 1) {
			*kind = REQ_RPC_JSONRPC;
		} else if ((!strcmp(px->path, "xmlrpc/2/object") && nseg == 3) ||
			   (!strcmp(px->path, "xmlrpc/object") && nseg == 2)) {
			*kind = REQ_RPC_XMLRPC;
		}
		return;
	}
	/* Static files of an addon: /<addon>/static/... */
	if (nseg >= 2 && seg_is(&segs[1], "static")) {
		if (seg_plain(&segs[0]))
			put_seg(h->route, sizeof(h->route), &len, segs[0].s, segs[0].n);
		else
			put_seg(h->route, sizeof(h->route), &len, "*", 1);
		put_seg(h->route, sizeof(h->route), &len, "static/*", 8);
		return;
	}
	for (unsigned int k = 0; k < nseg && k < SEGS_MAX; k++) {
		if (seg_plain(&segs[k]))
			put_seg(h->route, sizeof(h->route), &len, segs[k].s, segs[k].n);
		else
			put_seg(h->route, sizeof(h->route), &len, "*", 1);
	}
	if (nseg > SEGS_MAX || more)
		put_seg(h->route, sizeof(h->route), &len, "*", 1);
}

/* ---------------------------------------------------------------- JSON-RPC */

/* Nesting skipped at most inside one JSON value. */
#define JSON_DEPTH 16

static size_t json_ws(const char *s, size_t n, size_t i)
{
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
		i++;
	return i;
}

/* Skips the JSON string at s[i] == '"'. Returns the offset after it, 0 when it runs past n. */
static size_t json_skip_string(const char *s, size_t n, size_t i)
{
	for (i++; i < n; i++) {
		if (s[i] == '\\') {
			i++;
			continue;
		}
		if (s[i] == '"')
			return i + 1;
	}
	return 0;
}

/*
 * Skips one JSON value at s[i]. Returns the offset after it, 0 when it runs
 * past n, (size_t)-1 when it is not JSON we follow.
 */
static size_t json_skip_value(const char *s, size_t n, size_t i)
{
	char stack[JSON_DEPTH];
	int depth = 0;

	i = json_ws(s, n, i);
	if (i >= n)
		return 0;
	do {
		if (i >= n)
			return 0;
		switch (s[i]) {
		case '"':
			i = json_skip_string(s, n, i);
			if (!i)
				return 0;
			break;
		case '{':
		case '[':
			if (depth == JSON_DEPTH)
				return (size_t)-1;
			stack[depth++] = s[i] == '{' ? '}' : ']';
			i++;
			break;
		case '}':
		case ']':
			if (!depth || stack[depth - 1] != s[i])
				return (size_t)-1;
			depth--;
			i++;
			break;
		case ',':
		case ':':
		case ' ':
		case '\t':
		case '\r':
		case '\n':
			if (!depth)
				return (size_t)-1;
			i++;
			break;
		default:
			/* numbers, true, false, null */
			if (!(is_digit(s[i]) || s[i] == '-' || s[i] == '+' || s[i] == '.' ||
			      (s[i] >= 'a' && s[i] <= 'z') || s[i] == 'E'))
				return (size_t)-1;
			while (i < n &&
			       (is_digit(s[i]) || s[i] == '-' || s[i] == '+' || s[i] == '.' ||
				(s[i] >= 'a' && s[i] <= 'z') || s[i] == 'E'))
				i++;
			if (i == n)
				return 0;
			break;
		}
	} while (depth);
	return i;
}

/* The JSON string at s[i] as a name (no escapes), into out; offset after it, 0 or -1. */
static size_t json_name(const char *s, size_t n, size_t i, char *out, size_t size, bool *ok)
{
	size_t end = json_skip_string(s, n, i);

	*ok = false;
	if (!end)
		return 0;
	*ok = copy_name(s + i + 1, end - i - 2, out, size);
	return end;
}

/* The string key at s[i] equals lit. */
static bool json_key_is(const char *s, size_t i, size_t end, const char *lit)
{
	size_t l = strlen(lit);

	return end - i == l + 2 && !memcmp(s + i + 1, lit, l);
}

/* args[3] and args[4] of the array at s[i] == '['. 1, 0 (more needed), -EINVAL. */
static int json_args(const char *s, size_t n, size_t i, char *model, size_t msize, char *method,
		     size_t mtsize)
{
	bool ok;

	i++; /* '[' */
	for (int a = 0; a < 3; a++) {
		i = json_skip_value(s, n, i); /* db, uid, password: skipped, never copied */
		if (i == (size_t)-1)
			return -EINVAL;
		if (!i)
			return 0;
		i = json_ws(s, n, i);
		if (i >= n)
			return 0;
		if (s[i] != ',')
			return -EINVAL;
		i++;
	}
	i = json_ws(s, n, i);
	if (i >= n)
		return 0;
	if (s[i] != '"')
		return -EINVAL;
	i = json_name(s, n, i, model, msize, &ok);
	if (!i)
		return 0;
	if (!ok)
		return -EINVAL;
	i = json_ws(s, n, i);
	if (i >= n)
		return 0;
	if (s[i] != ',')
		return -EINVAL;
	i = json_ws(s, n, i + 1);
	if (i >= n)
		return 0;
	if (s[i] != '"')
		return -EINVAL;
	i = json_name(s, n, i, method, mtsize, &ok);
	if (!i)
		return 0;
	return ok ? 1 : -EINVAL;
}

/*
 * Walks the object at s[i] == '{' (depth: 0 the body, 1 params) for the keys
 * service, method and args. Returns 1, 0 or -EINVAL as json_args.
 */
int req_jsonrpc_model_method(const char *s, size_t n, char *model, size_t msize, char *method,
			     size_t mtsize)
{
	char service[16] = "", call[16] = "";
	size_t i = json_ws(s, n, 0), args = 0, key_end, v;
	bool in_params = false, ok, complete = false;

	if (i >= n)
		return 0;
	if (s[i] != '{')
		return -EINVAL;
	i++;
	for (;;) {
		i = json_ws(s, n, i);
		if (i >= n)
			break;
		if (s[i] == '}') {
			if (in_params) {
				complete = true;
				break;
			}
			return -EINVAL; /* the body ended without params */
		}
		if (s[i] == ',') {
			i++;
			continue;
		}
		if (s[i] != '"')
			return -EINVAL;
		key_end = json_skip_string(s, n, i);
		if (!key_end)
			break;
		v = json_ws(s, n, key_end);
		if (v >= n)
			break;
		if (s[v] != ':')
			return -EINVAL;
		v = json_ws(s, n, v + 1);
		if (v >= n)
			break;
		if (!in_params && json_key_is(s, i, key_end, "params") && s[v] == '{') {
			in_params = true;
			i = v + 1;
			continue;
		}
		if (in_params && s[v] == '"' &&
		    (json_key_is(s, i, key_end, "service") ||
		     json_key_is(s, i, key_end, "method"))) {
			char *out = json_key_is(s, i, key_end, "service") ? service : call;
			size_t e = json_name(s, n, v, out, 16, &ok);

			if (!e)
				break;
			if (!ok)
				out[0] = 0;
			i = e;
			continue;
		}
		if (in_params && json_key_is(s, i, key_end, "args") && s[v] == '[')
			args = v;
		i = json_skip_value(s, n, v);
		if (i == (size_t)-1)
			return -EINVAL;
		if (!i)
			break;
	}
	/* Only object.execute_kw/execute: other services' args hold other secrets. */
	if ((service[0] && strcmp(service, "object")) ||
	    (call[0] && strcmp(call, "execute_kw") && strcmp(call, "execute")))
		return -EINVAL;
	if (!service[0] || !call[0] || !args)
		return complete ? -EINVAL : 0;
	return json_args(s, n, args, model, msize, method, mtsize);
}

/* ---------------------------------------------------------------- XML-RPC */

static const char *find(const char *s, size_t n, size_t from, const char *lit)
{
	size_t l = strlen(lit);

	for (size_t i = from; i + l <= n; i++) {
		if (s[i] == lit[0] && !memcmp(s + i, lit, l))
			return s + i;
	}
	return NULL;
}

/* The text of param k's value: <value><string>T</string></value> or <value>T</value>. */
static int xml_param(const char *s, size_t n, size_t *at, char *out, size_t size)
{
	const char *v = find(s, n, *at, "<value>"), *e;
	size_t i;

	if (!v)
		return 0;
	i = (size_t)(v - s) + 7;
	if (i < n && s[i] == '<') {
		if (n - i < 8)
			return memcmp(s + i, "<string>", n - i) ? -EINVAL : 0;
		if (memcmp(s + i, "<string>", 8))
			return -EINVAL;
		i += 8;
	}
	e = i < n ? memchr(s + i, '<', n - i) : NULL;
	if (!e)
		return 0;
	if (!copy_name(s + i, (size_t)(e - s) - i, out, size))
		return -EINVAL;
	*at = (size_t)(e - s);
	return 1;
}

int req_xmlrpc_model_method(const char *s, size_t n, char *model, size_t msize, char *method,
			    size_t mtsize)
{
	const char *m = find(s, n, 0, "<methodName>"), *p;
	size_t at;
	int r;

	if (!m)
		return n < REQ_ACC_CAP ? 0 : -EINVAL;
	at = (size_t)(m - s) + 12;
	if (at + 11 > n)
		return 0;
	if (memcmp(s + at, "execute_kw<", 11) && memcmp(s + at, "execute<", 8))
		return -EINVAL;
	/* Past the first three params: db, uid, password, skipped unread. */
	for (int k = 0; k < 3; k++) {
		p = find(s, n, at, "</param>");
		if (!p)
			return 0;
		at = (size_t)(p - s) + 8;
	}
	r = xml_param(s, n, &at, model, msize);
	if (r <= 0)
		return r;
	p = find(s, n, at, "</param>");
	if (!p)
		return 0;
	at = (size_t)(p - s) + 8;
	return xml_param(s, n, &at, method, mtsize);
}

/* ---------------------------------------------------------------- the accumulator */

enum stage { ST_LINE, ST_HEADERS, ST_BODY, ST_DONE };

_Static_assert(offsetof(struct req_acc, len) == sizeof(((struct req_acc *)0)->buf),
	       "req_acc: the buffer comes first, its length right after it");

void req_acc_init(struct req_acc *a)
{
	/* Only the len bytes held are ever read: 2 KiB not cleared per request. */
	memset(&a->len, 0, sizeof(*a) - offsetof(struct req_acc, len));
	a->head.method = REQ_M_OTHER;
}

static void wipe(struct req_acc *a)
{
	/* Not memset: a dead store the compiler may drop. */
	explicit_bzero(a->buf, a->len);
	a->len = 0;
}

static void fail(struct req_acc *a, enum req_fail f)
{
	a->head.fail = f;
	strcpy(a->head.route, "unparsed");
	a->head.rpc = false;
	a->head.session = false;
	a->stage = ST_DONE;
	wipe(a);
}

/* Content-Length of the header block buf[0..n), or 0. */
static size_t content_length(const char *s, size_t n)
{
	static const char key[] = "\ncontent-length:";
	size_t kl = sizeof(key) - 1, v = 0;

	for (size_t i = 0; i + kl <= n; i++) {
		size_t k = 0, j;

		while (k < kl &&
		       (s[i + k] | (s[i + k] >= 'A' && s[i + k] <= 'Z' ? 0x20 : 0)) == key[k])
			k++;
		if (k < kl)
			continue;
		for (j = i + kl; j < n && s[j] == ' '; j++)
			;
		for (; j < n && is_digit(s[j]) && v < (1ul << 40); j++)
			v = v * 10 + (size_t)(s[j] - '0');
		return v;
	}
	return 0;
}

/* End of the header block ("\r\n\r\n" or "\n\n") from the start, or 0. */
static size_t headers_end(const char *s, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		if (s[i] != '\n')
			continue;
		if (s[i + 1] == '\n')
			return i + 2;
		if (i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/*
 * Whether a's bytes stop where the kernel stops keeping them: REQ_HEAD_CAP
 * (a request whose body is not read) or the whole buffer. Fewer or between:
 * the client sent no more.
 */
static bool at_cap(const struct req_acc *a)
{
	return a->len == REQ_HEAD_CAP || a->len == sizeof(a->buf);
}

/* Whether requests of this kind name their RPC in the body, which is then read. */
static bool reads_body(enum req_rpc_kind kind)
{
	return kind == REQ_RPC_JSONRPC || kind == REQ_RPC_XMLRPC;
}

/*
 * A request line with no end in the bytes the kernel keeps (at_cap()): it
 * kept only those. Its route when its path ended in them, before a query
 * string or a fragment, which the route drops anyway: what was kept
 * parsed so far (req_parse_line() asked for more), so the method and the
 * target's bytes are valid.
 */
static bool cut_line(struct req_acc *a)
{
	size_t i = method_end(a->buf, a->len), m, t0;

	if (!i || i == a->len || a->buf[i] != ' ')
		return false;
	m = i++;
	t0 = i;
	while (i < a->len && a->buf[i] != '?' && a->buf[i] != '#' && a->buf[i] != ' ')
		i++;
	if (i == a->len || a->buf[i] == ' ')
		return false;
	a->head.method = method_of(a->buf, m);
	req_route(a->buf + t0, i - t0, &a->head, &a->kind);
	return strcmp(a->head.route, "unparsed") != 0;
}

/* No more bytes will come of a request line with no end: its route, if cut_line(), or why not. */
static void line_ended(struct req_acc *a)
{
	if (!(at_cap(a) && cut_line(a)))
		return fail(a, at_cap(a) ? REQ_FAIL_TOO_LONG : REQ_FAIL_LINE);
	a->stage = ST_DONE;
	wipe(a);
}

static void parse(struct req_acc *a)
{
	const char *target;
	size_t tlen, he;
	int r;

	if (a->stage == ST_LINE) {
		r = req_parse_line(a->buf, a->len, &a->head.method, &target, &tlen);
		if (r < 0)
			return fail(a, REQ_FAIL_LINE);
		if (!r) {
			if (a->len == sizeof(a->buf))
				line_ended(a);
			return;
		}
		req_route(target, tlen, &a->head, &a->kind);
		if (!strcmp(a->head.route, "unparsed"))
			return fail(a, REQ_FAIL_LINE);
		a->stage = ST_HEADERS;
	}
	if (a->stage == ST_HEADERS) {
		he = headers_end(a->buf, a->len);
		if (!he) {
			/*
			 * Full, or all the kernel keeps of a request whose body
			 * is not read (REQ_HEAD_CAP): nothing more will come.
			 */
			if (a->len == sizeof(a->buf) ||
			    (a->len == REQ_HEAD_CAP && !reads_body(a->kind))) {
				a->stage = ST_DONE;
				wipe(a);
			}
			return;
		}
		a->body_at = he;
		a->body_len = content_length(a->buf, he);
		a->stage = reads_body(a->kind) ? ST_BODY : ST_DONE;
	}
	if (a->stage == ST_BODY) {
		size_t n = a->len - a->body_at;

		if (a->body_len && n > a->body_len)
			n = a->body_len;
		if (a->kind == REQ_RPC_JSONRPC)
			r = req_jsonrpc_model_method(a->buf + a->body_at, n, a->head.model,
						     sizeof(a->head.model), a->head.rpc_method,
						     sizeof(a->head.rpc_method));
		else
			r = req_xmlrpc_model_method(a->buf + a->body_at, n, a->head.model,
						    sizeof(a->head.model), a->head.rpc_method,
						    sizeof(a->head.rpc_method));
		if (!r && a->len < sizeof(a->buf) && (!a->body_len || n < a->body_len))
			return; /* more to come */
		a->head.rpc = r == 1;
		if (!a->head.rpc) {
			a->head.model[0] = 0;
			a->head.rpc_method[0] = 0;
		}
		a->stage = ST_DONE;
	}
	if (a->stage == ST_DONE) {
		/* A request line behind this request's end: pipelining (not a chunked body). */
		size_t end = a->body_at + a->body_len;
		enum req_method m;

		if (a->body_at && end < a->len)
			a->head.pipelined =
				req_parse_line(a->buf + end, a->len - end, &m, &target, &tlen) >= 0;
		wipe(a);
	}
}

void req_acc_feed(struct req_acc *a, const void *data, size_t n)
{
	size_t room = sizeof(a->buf) - a->len, before = a->fed, end;

	a->fed += n;
	if (a->stage == ST_DONE) {
		/* Only the first byte past the request's end is looked at: a method's? */
		end = a->body_at + a->body_len;
		if (a->body_at && !a->head.pipelined && end >= before && end < a->fed)
			a->head.pipelined = is_upper(((const char *)data)[end - before]);
		return;
	}
	if (n > room)
		n = room;
	memcpy(a->buf + a->len, data, n);
	a->len += n;
	parse(a);
}

const struct req_head *req_acc_head(const struct req_acc *a)
{
	return a->stage == ST_DONE ? &a->head : NULL;
}

const struct req_head *req_acc_finish(struct req_acc *a)
{
	if (a->stage == ST_LINE)
		line_ended(a);
	else if (a->stage == ST_BODY)
		a->head.rpc = false;
	a->stage = ST_DONE;
	wipe(a);
	return &a->head;
}
