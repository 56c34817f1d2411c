/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One USDT argument spec of a .note.stapsdt note ("8@%rbx", "8@-144(%rbp)")
 * as a place the kernel can read without libbpf's USDT runtime: a register
 * of struct pt_regs, or 8 bytes of user memory at a register plus an
 * offset. Only x86-64 pointer-sized arguments in those two forms; anything
 * else (constants, SIB or %rip addressing, other architectures) is refused
 * and left to libbpf.
 */
#ifndef ERPSCOPE_USDT_ARG_H
#define ERPSCOPE_USDT_ARG_H

#include <stdbool.h>
#include <stdint.h>

struct usdt_arg_loc {
	unsigned int reg; /* enum es_pg_reg (bpf/pg.h), never ES_PG_REG_NONE */
	bool deref; /* the value is at reg + off in user memory */
	int32_t off;
};

/*
 * Parses argument argi (from 0) of a note's argument string. Returns 0, or
 * -EINVAL for a malformed spec, -EOPNOTSUPP for a form or size it does not
 * handle, -ENOENT when there are fewer arguments.
 */
int usdt_arg_parse(const char *args, unsigned int argi, struct usdt_arg_loc *loc);

#endif
