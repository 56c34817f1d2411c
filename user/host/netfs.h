/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Network and FUSE filesystems: a stat() or statvfs() there blocks for as
 * long as the server (or the FUSE daemon) does not answer, so the daemon's
 * only thread never makes one on them.
 */
#ifndef ERPSCOPE_NETFS_H
#define ERPSCOPE_NETFS_H

#include <stdbool.h>
#include <sys/types.h>

#define NETFS_MAX 8
#define NETFS_PATH_MAX 128

/* A process's network and FUSE mount points, as it sees them. */
struct netfs_mounts {
	unsigned int n;
	bool all; /* more than fit, or unknown: every path may block */
	char dir[NETFS_MAX][NETFS_PATH_MAX];
};

/* Whether fstype is a network filesystem or FUSE (fuse, fuseblk, fuse.*, fusectl). */
bool netfs_type(const char *fstype);
/* The network and FUSE mount points of a mountinfo text. */
void netfs_parse(const char *mountinfo, struct netfs_mounts *m);
/* ... of /proc/<pid>/mountinfo (all set when it cannot be read). */
void netfs_load(pid_t pid, struct netfs_mounts *m);
/* Whether path (absolute, as the process sees it) may be on one of them. */
bool netfs_under(const struct netfs_mounts *m, const char *path);

#endif
