/* SPDX-License-Identifier: GPL-2.0 */
/* Block device names (vda, nvme0n1) for the kernel's dev_t values. */
#ifndef ERPSCOPE_BLOCKDEV_H
#define ERPSCOPE_BLOCKDEV_H

#include <linux/types.h>

#define BLOCKDEV_CACHE 64

struct blockdev_names {
	struct {
		__u32 dev;
		char name[32];
	} e[BLOCKDEV_CACHE];
	unsigned int n, next; /* next: slot to evict when full */
};

/*
 * dev is major << 20 | minor, as the kernel keeps dev_t. 0 is "unknown".
 * A new device costs one read of /sys/dev/block/M:m/uevent, then it is
 * cached; a device sysfs does not know is named "M:m".
 */
const char *blockdev_name(struct blockdev_names *c, __u32 dev);

#endif
