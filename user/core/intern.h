/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Interned strings with reference counts. Forked workers of one server run
 * the same code, so the names the daemon keeps per process (a code
 * object's file, module, function) repeat from process to process: each
 * text is stored once, and freed when its last holder lets it go.
 */
#ifndef ERPSCOPE_INTERN_H
#define ERPSCOPE_INTERN_H

#include <stddef.h>

struct intern_pool;

struct intern_pool *intern_new(void);
/* Every string must have been put back; what was not is freed anyway. */
void intern_free(struct intern_pool *ip);
/* The pool's copy of s, one more holder; NULL when out of memory. */
const char *intern_get(struct intern_pool *ip, const char *s);
/* One holder less of a string intern_get() returned (NULL: nothing). */
void intern_put(struct intern_pool *ip, const char *s);
/* Distinct strings held, and the bytes they take with their headers. */
size_t intern_count(const struct intern_pool *ip);
size_t intern_bytes(const struct intern_pool *ip);

#endif
