/* SPDX-License-Identifier: GPL-2.0 */
/* HTTP content negotiation and gzip for scrapes. Pure functions, fuzzed. */
#ifndef ERPSCOPE_NEGOTIATE_H
#define ERPSCOPE_NEGOTIATE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/expo.h"

/* OpenMetrics when the Accept header lists application/openmetrics-text with q > 0. */
enum expo_format negotiate_format(const char *accept);
/* True when Accept-Encoding allows gzip (gzip or *, q > 0). */
bool negotiate_gzip(const char *accept_encoding);
/* gzip-compresses in; *out is malloc'd. Returns 0 or negative errno. */
int gzip_compress(const void *in, size_t inlen, void **out, size_t *outlen);

#endif
