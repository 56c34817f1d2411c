// SPDX-License-Identifier: GPL-2.0
/* usdt_arg_parse() on the argument specs sdt.h writes, and on malformed ones. */
#include <errno.h>
#include <linux/types.h>

#include "check.h"
#include "core/usdt_arg.h"
#include "../bpf/pg.h"

static void test_forms(void)
{
	struct usdt_arg_loc l;

	/* PostgreSQL 15 on Debian: query__start and query__done */
	CHECK_INT(usdt_arg_parse("8@%rbx", 0, &l), 0);
	CHECK_INT(l.reg, ES_PG_REG_BX);
	CHECK(!l.deref);
	CHECK_INT(usdt_arg_parse("8@-144(%rbp)", 0, &l), 0);
	CHECK_INT(l.reg, ES_PG_REG_BP);
	CHECK(l.deref);
	CHECK_INT(l.off, -144);
	CHECK_INT(usdt_arg_parse("-8@(%r15)", 0, &l), 0);
	CHECK_INT(l.reg, ES_PG_REG_R15);
	CHECK(l.deref && l.off == 0);
	/* the second argument of several */
	CHECK_INT(usdt_arg_parse("4@%eax 8@24(%rsp) -4@$3", 1, &l), 0);
	CHECK_INT(l.reg, ES_PG_REG_SP);
	CHECK_INT(l.off, 24);
	CHECK_INT(usdt_arg_parse("  8@%r8   8@%r9", 1, &l), 0);
	CHECK_INT(l.reg, ES_PG_REG_R9);
	CHECK_INT(usdt_arg_parse("8@%rax", 1, &l), -ENOENT);
	CHECK_INT(usdt_arg_parse("", 0, &l), -ENOENT);
	CHECK_INT(usdt_arg_parse(NULL, 0, &l), -ENOENT);
}

static void test_refused(void)
{
	struct usdt_arg_loc l;

	/* not pointers, or forms left to libbpf */
	CHECK_INT(usdt_arg_parse("4@%eax", 0, &l), -EOPNOTSUPP);
	CHECK_INT(usdt_arg_parse("8@$5", 0, &l), -EOPNOTSUPP);
	CHECK_INT(usdt_arg_parse("8@foo(%rip)", 0, &l), -EINVAL);
	CHECK_INT(usdt_arg_parse("8@16(%rax,%rbx,8)", 0, &l), -EOPNOTSUPP);
	CHECK_INT(usdt_arg_parse("8@%xmm0", 0, &l), -EOPNOTSUPP);
	CHECK_INT(usdt_arg_parse("8@x0", 0, &l), -EOPNOTSUPP); /* arm64 */
	CHECK_INT(usdt_arg_parse("8@-144(%rbpx)", 0, &l), -EOPNOTSUPP);
	/* malformed */
	CHECK_INT(usdt_arg_parse("8%rax", 0, &l), -EINVAL);
	CHECK_INT(usdt_arg_parse("x@%rax", 0, &l), -EINVAL);
	CHECK_INT(usdt_arg_parse("8@", 0, &l), -EINVAL);
	CHECK_INT(usdt_arg_parse("8@99999999999(%rax)", 0, &l), -EINVAL);
	CHECK_INT(usdt_arg_parse("8@12(%rax", 0, &l), -EOPNOTSUPP);
}

int main(void)
{
	test_forms();
	test_refused();
	return check_summary("test_usdt_arg");
}
