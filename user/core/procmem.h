/* SPDX-License-Identifier: GPL-2.0 */
#ifndef ERPSCOPE_PROCMEM_H
#define ERPSCOPE_PROCMEM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Reads len bytes at addr of process pid's memory (process_vm_readv: no
 * ptrace stop, the process runs on). 0 when all were read, else -errno
 * (-EFAULT for a short read).
 */
int proc_mem_read(pid_t pid, uint64_t addr, void *buf, size_t len);

#endif
