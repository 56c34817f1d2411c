// SPDX-License-Identifier: GPL-2.0
/* Where a uprobe goes in glibc's syscall wrappers (core/libc_uprobes.h). */
#include <stdint.h>

#include "check.h"
#include "core/libc_uprobes.h"

int main(void)
{
	/* Debian 12's recv, accept, and with endbr64 */
	static const uint8_t recv_[] = { 0x80, 0x3d, 0xc1, 0x0c, 0x0d, 0x00, 0x00, 0x41,
					 0x89, 0xca, 0x74, 0x1c, 0x45, 0x31, 0xc9, 0x45 };
	static const uint8_t accept_[] = { 0x80, 0x3d, 0xf1, 0x0e, 0x0d, 0x00, 0x00, 0x74,
					   0x17, 0xb8, 0x2b, 0x00, 0x00, 0x00, 0x0f, 0x05 };
	static const uint8_t cet[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0x80, 0x3d, 0x01, 0x02,
				       0x03, 0x04, 0x00, 0x74, 0x10, 0x90, 0x90, 0x90 };
	/* select starts with a push: left alone; a cmpb with another immediate too */
	static const uint8_t select_[] = { 0x41, 0x57, 0x49, 0x89, 0xca, 0x49, 0x89, 0xd7 };
	static const uint8_t cmp1[] = { 0x80, 0x3d, 0xc1, 0x0c, 0x0d, 0x00, 0x01, 0x74, 0x17 };
	static const uint8_t jne[] = { 0x80, 0x3d, 0xc1, 0x0c, 0x0d, 0x00, 0x00, 0x75, 0x17 };

#if defined(__x86_64__)
	CHECK_INT(libc_uprobes_skip(recv_, sizeof(recv_)), 10);
	CHECK_INT(libc_uprobes_skip(accept_, sizeof(accept_)), 7);
	CHECK_INT(libc_uprobes_skip(cet, sizeof(cet)), 11);
#endif
	CHECK_INT(libc_uprobes_skip(select_, sizeof(select_)), 0);
	CHECK_INT(libc_uprobes_skip(cmp1, sizeof(cmp1)), 0);
	CHECK_INT(libc_uprobes_skip(jne, sizeof(jne)), 0);
	/* short reads never look past n */
	for (size_t n = 0; n < 12; n++)
		CHECK(libc_uprobes_skip(recv_, n) == 0);
	return check_summary("test_libc_uprobes");
}
