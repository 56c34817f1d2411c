// SPDX-License-Identifier: GPL-2.0
/*
 * uprobe_cheap_site() on the prologues of the C library functions the tcp
 * probe hooks, as glibc builds them, and on ones it must leave alone.
 */
#include "check.h"
#include "core/uprobe_site.h"

#define SITE(...)                                                                        \
	({                                                                               \
		static const unsigned char c_[] = { __VA_ARGS__ };                       \
		uprobe_cheap_site(c_, sizeof(c_));                                       \
	})

int main(void)
{
	/* glibc 2.36 accept4: cmpb $0,rel(%rip); mov %ecx,%r10d; je: the je. */
	CHECK_INT(SITE(0x80, 0x3d, 0x81, 0x06, 0x0d, 0x00, 0x00, 0x41, 0x89, 0xca, 0x74, 0x14, 0xb8,
		       0x20, 0x01, 0x00, 0x00, 0x0f, 0x05),
		  10);
	/* glibc 2.36 accept: cmpb; je */
	CHECK_INT(SITE(0x80, 0x3d, 0xf1, 0x0e, 0x0d, 0x00, 0x00, 0x74, 0x17, 0xb8, 0x2b, 0x00),
		  7);
	/* glibc 2.36 select: push %r15 first, emulated: the entry. */
	CHECK_INT(SITE(0x41, 0x57, 0x49, 0x89, 0xca, 0x49, 0x89, 0xd7), 0);
	/* Older glibc: endbr64; mov %fs:0x18,%eax; test %eax,%eax; jne */
	CHECK_INT(SITE(0xf3, 0x0f, 0x1e, 0xfa, 0x64, 0x8b, 0x04, 0x25, 0x18, 0x00, 0x00, 0x00, 0x85,
		       0xc0, 0x75, 0x10),
		  14);
	/* mov %fs:0x18,%edi writes an argument register: stay at the entry. */
	CHECK_INT(SITE(0x64, 0x8b, 0x3c, 0x25, 0x18, 0x00, 0x00, 0x00, 0x75, 0x10), 0);
	/* mov %rdi,%rsi (48 89 fe) changes the second argument: stay. */
	CHECK_INT(SITE(0x48, 0x89, 0xfe, 0x74, 0x02), 0);
	/* sub $0x28,%rsp moves the return address: stay. */
	CHECK_INT(SITE(0x48, 0x83, 0xec, 0x28, 0x74, 0x02), 0);
	/* Unknown first instruction: stay. */
	CHECK_INT(SITE(0x0f, 0x05, 0xc3), 0);
	/* Only skippable bytes, then the end of what was read: stay. */
	CHECK_INT(SITE(0x80, 0x3d, 0x00, 0x00, 0x00, 0x00, 0x00), 0);
	/* Truncated instruction: stay, read nothing past the end. */
	CHECK_INT(SITE(0x64, 0x8b, 0x04), 0);
	CHECK_INT(uprobe_cheap_site(NULL, 0), 0);
	/* jcc rel32 after test %r10,%r10 (4d 85 d2) */
	CHECK_INT(SITE(0x4d, 0x85, 0xd2, 0x0f, 0x85, 0x00, 0x00, 0x00, 0x00), 3);
	return check_summary("test_uprobe_site");
}
