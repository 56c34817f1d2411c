// SPDX-License-Identifier: GPL-2.0
#include "core/blockdev.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void lookup(__u32 dev, char *name, size_t size)
{
	unsigned int major = dev >> 20, minor = dev & 0xfffff;
	char path[64], buf[512], *p, *end;
	ssize_t n;
	int fd;

	snprintf(name, size, "%u:%u", major, minor);
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/uevent", major, minor);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	p = strstr(buf, "DEVNAME=");
	if (!p)
		return;
	p += 8;
	end = strchr(p, '\n');
	if (end)
		*end = 0;
	if (*p)
		snprintf(name, size, "%s", p);
}

const char *blockdev_name(struct blockdev_names *c, __u32 dev)
{
	unsigned int i;

	if (!dev)
		return "unknown";
	for (i = 0; i < c->n; i++) {
		if (c->e[i].dev == dev)
			return c->e[i].name;
	}
	if (c->n < BLOCKDEV_CACHE) {
		i = c->n++;
	} else {
		i = c->next;
		c->next = (c->next + 1) % BLOCKDEV_CACHE;
	}
	c->e[i].dev = dev;
	lookup(dev, c->e[i].name, sizeof(c->e[i].name));
	return c->e[i].name;
}
