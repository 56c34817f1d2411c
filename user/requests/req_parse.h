/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What is kept of an HTTP request, parsed from the first bytes the kernel
 * captured (bpf/requests.h: up to ES_REQ_CAP): the method, the route (the
 * path templated: ids and random strings become "*", the query string is
 * dropped) and for Odoo's RPC endpoints the model and method called. Pure
 * functions, no I/O: unit-tested (tests/unit/test_requests.c).
 *
 * Nothing else survives: the bytes are held in a req_acc only until what
 * is needed was found, then wiped (headers, cookies, bodies, passwords).
 */
#ifndef ERPSCOPE_REQ_PARSE_H
#define ERPSCOPE_REQ_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REQ_ROUTE_MAX 96
#define REQ_NAME_MAX 64
/* Bytes of a request kept at most while parsing (the kernel's ES_REQ_CAP). */
#define REQ_ACC_CAP 2048
/*
 * Bytes the kernel keeps of a request whose body is not read (its
 * ES_REQ_HEAD_CAP): a request line not complete in them may have been cut
 * there (req_acc_finish()).
 */
#define REQ_HEAD_CAP 512

enum req_method {
	REQ_M_GET,
	REQ_M_POST,
	REQ_M_HEAD,
	REQ_M_PUT,
	REQ_M_DELETE,
	REQ_M_PATCH,
	REQ_M_OPTIONS,
	REQ_M_OTHER,
	REQ_M_COUNT,
};

const char *req_method_name(enum req_method m);

/* Why a request did not parse (route "unparsed"), or PARSE_OK. */
enum req_fail {
	REQ_PARSE_OK = 0,
	REQ_FAIL_LINE, /* the first bytes are not an HTTP request line */
	REQ_FAIL_TOO_LONG, /* no complete request line in the bytes captured, nor a whole path */
	REQ_FAIL_PIPELINED, /* (not a failure of this request) more requests followed it at once */
	REQ_FAIL_COUNT,
};

const char *req_fail_name(enum req_fail f);

/* Odoo's RPC endpoints. */
enum req_rpc_kind {
	REQ_RPC_NONE,
	REQ_RPC_PATH, /* /web/dataset/call_kw|call_button/<model>/<method> */
	REQ_RPC_JSONRPC, /* POST /jsonrpc: execute_kw's model and method in the body */
	REQ_RPC_XMLRPC, /* POST /xmlrpc/2/object: likewise */
};

struct req_head {
	enum req_method method;
	char route[REQ_ROUTE_MAX]; /* templated, "unparsed" when it did not parse */
	bool session; /* /websocket, /longpolling/poll: long-lived, no latency */
	bool rpc; /* model and method known */
	char model[REQ_NAME_MAX];
	char rpc_method[REQ_NAME_MAX];
	enum req_fail fail;
	bool pipelined; /* bytes of another request followed this one's */
};

/*
 * The request line at the start of buf: "METHOD SP target SP HTTP/d.d" then
 * CRLF or LF. Returns the line's length with its end of line (> 0), 0 when
 * more bytes are needed, -EINVAL when it is no request line. *target and
 * *tlen point into buf.
 */
int req_parse_line(const char *buf, size_t len, enum req_method *method, const char **target,
		   size_t *tlen);

/*
 * Route of a request target (origin form, or absolute form whose scheme and
 * host are dropped), query and fragment dropped. Known Odoo shapes keep
 * their fixed part (/web/image/..., /web/dataset/call_kw, ...); elsewhere a
 * segment holding a digit, a long hex or random string, or bytes outside
 * [A-Za-z._~-] becomes "*". Fills rpc kind, model and method for Odoo's RPC
 * paths, and whether it is a session. Always NUL-terminates out.
 */
void req_route(const char *target, size_t tlen, struct req_head *h, enum req_rpc_kind *kind);

/*
 * execute_kw's model and method (args 4 and 5: after db, uid and password)
 * from a JSON-RPC body, or from an XML-RPC one. Returns 1 when found (names
 * checked: [A-Za-z0-9._] only), 0 when the body may hold them past n bytes,
 * -EINVAL when it does not. The password and every other argument are
 * skipped, never copied.
 */
int req_jsonrpc_model_method(const char *body, size_t n, char *model, size_t msize, char *method,
			     size_t mtsize);
int req_xmlrpc_model_method(const char *body, size_t n, char *model, size_t msize, char *method,
			    size_t mtsize);

/* The request's bytes as they come, parsed as soon as they allow. */
struct req_acc {
	char buf[REQ_ACC_CAP];
	size_t len; /* bytes held in buf */
	size_t fed; /* bytes fed in all */
	int stage; /* internal */
	size_t body_at; /* offset of the body once the headers ended */
	size_t body_len; /* Content-Length, when given */
	enum req_rpc_kind kind;
	struct req_head head;
};

/* Readies a for a request; its buffer need not be cleared (nothing past len is read). */
void req_acc_init(struct req_acc *a);
/* Feeds the next bytes; parses what it can and wipes what is no longer needed. */
void req_acc_feed(struct req_acc *a, const void *data, size_t n);
/* The head once it is parsed (route, and the RPC's names), else NULL. */
const struct req_head *req_acc_head(const struct req_acc *a);
/* No more bytes will come: settles head (unparsed if need be) and wipes the buffer. */
const struct req_head *req_acc_finish(struct req_acc *a);

#endif
