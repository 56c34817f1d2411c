/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Reading members back out of a JSON object (an event body made by
 * user/core/json.h): a dotted path of object keys ("client.role"). Bounded
 * and safe on any input: malformed text simply finds nothing.
 */
#ifndef ERPSCOPE_JSON_GET_H
#define ERPSCOPE_JSON_GET_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The string at path, unescaped into buf (size bytes, NUL-terminated, cut
 * to fit; \uXXXX outside ASCII becomes '?'). False when absent, null or not
 * a string (buf is then "").
 */
bool json_get_str(const char *doc, size_t len, const char *path, char *buf, size_t size);
/* The number at path. False when absent, null or not a number. */
bool json_get_num(const char *doc, size_t len, const char *path, double *out);

#endif
