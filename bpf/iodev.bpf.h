/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The block device each task last sent I/O to: written by blkio.bpf.c when a
 * task inserts or issues a request, read by sched.bpf.c when the task goes
 * to iowait, so iowait time can be split by device. Both objects define the
 * map; user space hands the first one's fd to the second (bpf_map__reuse_fd).
 */
#ifndef ERPSCOPE_IODEV_BPF_H
#define ERPSCOPE_IODEV_BPF_H

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u32); /* dev_t: major << 20 | minor; 0 = none */
} task_iodev SEC(".maps");

#endif
