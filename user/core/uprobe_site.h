/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Where to put a uprobe on a function's entry so the kernel does not have
 * to single-step. See user/core/uprobe_site.c.
 */
#ifndef ERPSCOPE_UPROBE_SITE_H
#define ERPSCOPE_UPROBE_SITE_H

#include <stddef.h>

/*
 * code: the first n bytes of a function. Returns how many bytes into it a
 * uprobe may go and still see the function's arguments and return address
 * as at its entry, on an instruction the kernel emulates; 0 when that is
 * the entry itself or when unsure.
 */
size_t uprobe_cheap_site(const unsigned char *code, size_t n);

#endif
