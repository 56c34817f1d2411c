/* SPDX-License-Identifier: GPL-2.0 */
#ifndef ERPSCOPE_GROW_H
#define ERPSCOPE_GROW_H

#include <stddef.h>

/*
 * Makes the array *arrp (a pointer to the array's pointer, any element type)
 * hold at least need elements of elem_size bytes. Nothing to do when *cap is
 * already enough; else the capacity becomes first (when it was 0) or twice
 * *cap, doubling again until it reaches need, and the array is realloc'ed.
 * The new elements are not initialised: callers set each one they append.
 *
 * Returns 0, -ENOMEM when realloc fails or the byte size would overflow
 * size_t, -EINVAL for a zero elem_size or first. On failure *arrp and *cap
 * are untouched (the array still holds what it held).
 *
 * Appending one element: grow_array(&v, &cap, n + 1, sizeof(*v), 64).
 */
int grow_array(void *arrp, size_t *cap, size_t need, size_t elem_size, size_t first);

#endif
