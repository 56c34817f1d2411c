// SPDX-License-Identifier: GPL-2.0
/*
 * x86 uprobes emulate a few instructions (jumps, conditional jumps, calls,
 * pushes, nops) and run any other one out of line under a debug trap. On
 * this kind of VM the trap is the expensive part: a uprobe on glibc's
 * accept4, which opens with a RIP-relative cmpb of __libc_single_threaded,
 * made every accept() 12 us slower, one on select (push %r15 first) 2 us.
 *
 * So the probe moves to the first emulated instruction, past instructions
 * that only set flags or scratch registers: the argument registers, the
 * stack pointer and the return address at (%rsp) are still what they were
 * at the entry, which is all an entry probe and a return probe use. Only a
 * handful of encodings are known; anything else keeps the probe at the
 * entry, as before.
 */
#include <stdbool.h>

#include "core/uprobe_site.h"

#define SCAN_MAX 32

/* Writable without changing what an entry probe sees: rax, r10, r11. */
static bool scratch_reg(unsigned int reg)
{
	return reg == 0 || reg == 10 || reg == 11;
}

/* Length of an instruction that may be stepped over, 0 if it may not. */
static size_t skippable(const unsigned char *c, size_t n)
{
	unsigned int rex = 0;
	size_t i = 0;

	/* endbr64 */
	if (n >= 4 && c[0] == 0xf3 && c[1] == 0x0f && c[2] == 0x1e && c[3] == 0xfa)
		return 4;
	/* cmpb/cmpl $imm8, disp32(%rip): flags only */
	if (n >= 7 && (c[0] == 0x80 || c[0] == 0x83) && c[1] == 0x3d)
		return 7;
	/* mov %fs:disp32, %reg (64 [REX] 8b 04 25 disp32) into a scratch register */
	if (c[0] == 0x64) {
		i = 1;
		if (i < n && (c[i] & 0xf0) == 0x40)
			rex = c[i++];
		if (i + 7 <= n && c[i] == 0x8b && (c[i + 1] & 0xc7) == 0x04 && c[i + 2] == 0x25 &&
		    scratch_reg(((c[i + 1] >> 3) & 7) | (rex & 4) << 1))
			return i + 7;
		return 0;
	}
	if ((c[0] & 0xf0) == 0x40)
		rex = c[i++];
	if (i + 2 > n || (c[i + 1] & 0xc0) != 0xc0)
		return 0;
	/* test %reg, %reg: flags only */
	if (c[i] == 0x85)
		return i + 2;
	/* mov %reg, %reg into a scratch register (the r/m field, REX.B) */
	if (c[i] == 0x89 && scratch_reg((c[i + 1] & 7) | (rex & 1) << 3))
		return i + 2;
	return 0;
}

/* Does the kernel emulate the instruction at c (no single-step)? */
static bool emulated(const unsigned char *c, size_t n)
{
	if (n < 1)
		return false;
	if ((c[0] >= 0x70 && c[0] <= 0x7f) || c[0] == 0xeb || c[0] == 0xe9 || c[0] == 0xe8 ||
	    c[0] == 0x90 || (c[0] >= 0x50 && c[0] <= 0x57))
		return true;
	if (n >= 2 && c[0] == 0x0f && c[1] >= 0x80 && c[1] <= 0x8f)
		return true;
	return n >= 2 && c[0] == 0x41 && c[1] >= 0x50 && c[1] <= 0x57; /* push %r8..%r15 */
}

size_t uprobe_cheap_site(const unsigned char *code, size_t n)
{
#if defined(__x86_64__)
	size_t at = 0, len;

	if (n > SCAN_MAX)
		n = SCAN_MAX;
	while (at < n) {
		if (emulated(code + at, n - at))
			return at;
		len = skippable(code + at, n - at);
		if (!len)
			break;
		at += len;
	}
#endif
	return 0;
}
