// SPDX-License-Identifier: GPL-2.0
/*
 * USDT argument specs ("SIZE@LOCATION", space-separated, as sdt.h writes
 * them into .note.stapsdt) turned into a register and an offset.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <linux/types.h>

#include "core/usdt_arg.h"
#include "../../bpf/pg.h"

static const struct {
	const char *name;
	unsigned int reg;
} x86_regs[] = {
	{ "rax", ES_PG_REG_AX },  { "rbx", ES_PG_REG_BX },  { "rcx", ES_PG_REG_CX },
	{ "rdx", ES_PG_REG_DX },  { "rsi", ES_PG_REG_SI },  { "rdi", ES_PG_REG_DI },
	{ "rbp", ES_PG_REG_BP },  { "rsp", ES_PG_REG_SP },  { "r8", ES_PG_REG_R8 },
	{ "r9", ES_PG_REG_R9 },	  { "r10", ES_PG_REG_R10 }, { "r11", ES_PG_REG_R11 },
	{ "r12", ES_PG_REG_R12 }, { "r13", ES_PG_REG_R13 }, { "r14", ES_PG_REG_R14 },
	{ "r15", ES_PG_REG_R15 },
};

/* "%rbx" of length n -> enum es_pg_reg, 0: not a 64-bit register. */
static unsigned int reg_of(const char *s, size_t n)
{
	if (n < 2 || s[0] != '%')
		return 0;
	for (size_t i = 0; i < sizeof(x86_regs) / sizeof(x86_regs[0]); i++) {
		if (strlen(x86_regs[i].name) == n - 1 && !memcmp(s + 1, x86_regs[i].name, n - 1))
			return x86_regs[i].reg;
	}
	return 0;
}

int usdt_arg_parse(const char *args, unsigned int argi, struct usdt_arg_loc *loc)
{
	const char *p = args, *at, *end, *open;
	long size, off = 0;
	char *e;

	if (!args)
		return -ENOENT;
	/* Skip to argument argi. */
	for (;;) {
		while (*p == ' ')
			p++;
		if (!*p)
			return -ENOENT;
		if (!argi--)
			break;
		while (*p && *p != ' ')
			p++;
	}
	end = strchr(p, ' ');
	if (!end)
		end = p + strlen(p);
	at = memchr(p, '@', (size_t)(end - p));
	if (!at)
		return -EINVAL;
	errno = 0;
	size = strtol(p, &e, 10);
	if (e != at || errno)
		return -EINVAL;
	if (size != 8 && size != -8)
		return -EOPNOTSUPP; /* only pointers are read this way */
	p = at + 1;
	if (p >= end)
		return -EINVAL;
	if (*p == '%') {
		loc->reg = reg_of(p, (size_t)(end - p));
		loc->deref = false;
		loc->off = 0;
		return loc->reg ? 0 : -EOPNOTSUPP;
	}
	open = memchr(p, '(', (size_t)(end - p));
	if (!open || end[-1] != ')' || memchr(open, ',', (size_t)(end - open)))
		return -EOPNOTSUPP; /* a constant, a symbol or SIB addressing */
	if (open > p) {
		errno = 0;
		off = strtol(p, &e, 10);
		if (e != open || errno || off < INT32_MIN || off > INT32_MAX)
			return -EINVAL;
	}
	loc->reg = reg_of(open + 1, (size_t)(end - 1 - (open + 1)));
	loc->deref = true;
	loc->off = (int32_t)off;
	return loc->reg ? 0 : -EOPNOTSUPP;
}
