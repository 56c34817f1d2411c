/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The system call the current task is in, from the user registers it
 * entered with (bpf_task_pt_regs(), v5.15): for programs on tracepoints
 * inside a syscall's path that name the socket but not the descriptor or
 * the user buffer (sock_recv_length, sock_send_length), and for the Python
 * probe's off-CPU walk at the task's return to user space (which call it
 * blocked in: reqtag.bpf.h). A syscall number the caller does not know
 * (io_uring, a kernel thread, splice, a return from an interrupt) tells it
 * the registers are not a socket call's: it then reads nothing through them.
 */
#ifndef ERPSCOPE_SYSARGS_BPF_H
#define ERPSCOPE_SYSARGS_BPF_H

/* The socket calls' numbers: asm/unistd_64.h (x86-64), asm-generic/unistd.h (arm64). */
#if defined(__TARGET_ARCH_x86)
#define ES_NR_READ 0
#define ES_NR_WRITE 1
#define ES_NR_POLL 7
#define ES_NR_READV 19
#define ES_NR_WRITEV 20
#define ES_NR_SENDFILE 40
#define ES_NR_SENDTO 44
#define ES_NR_RECVFROM 45
#define ES_NR_SENDMSG 46
#define ES_NR_RECVMSG 47
#define ES_NR_PPOLL 271
#elif defined(__TARGET_ARCH_arm64)
#define ES_NR_POLL 73 /* none: the C library's poll() is ppoll; not -1, a return from no syscall */
#define ES_NR_PPOLL 73
#define ES_NR_READ 63
#define ES_NR_WRITE 64
#define ES_NR_READV 65
#define ES_NR_WRITEV 66
#define ES_NR_SENDFILE 71
#define ES_NR_SENDTO 206
#define ES_NR_RECVFROM 207
#define ES_NR_SENDMSG 211
#define ES_NR_RECVMSG 212
#else
#error "sysargs.bpf.h: no syscall numbers for this architecture"
#endif

struct es_sysargs {
	long nr;
	__u64 arg[3];
};

/* The current task's syscall number and first three arguments. */
static __always_inline void current_sysargs(struct es_sysargs *s)
{
	struct pt_regs *r = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());

#if defined(__TARGET_ARCH_x86)
	s->nr = r->orig_ax;
	s->arg[0] = r->di;
	s->arg[1] = r->si;
	s->arg[2] = r->dx;
#else
	s->nr = r->syscallno;
	s->arg[0] = r->orig_x0; /* x0 is the return value's once the call returns */
	s->arg[1] = r->regs[1];
	s->arg[2] = r->regs[2];
#endif
}

#endif
