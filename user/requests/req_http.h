/* SPDX-License-Identifier: GPL-2.0 */
/* GET /requests: requests in flight now and the slowest of the window. */
#ifndef ERPSCOPE_REQ_HTTP_H
#define ERPSCOPE_REQ_HTTP_H

#include <stddef.h>

struct http_exchange;

/* arg is the daemon (struct erpscope). */
int requests_http(void *arg, struct http_exchange *x);

#endif
