/* SPDX-License-Identifier: GPL-2.0 */
/* The memory cgroup of a process, as a path ("/a/b") in its hierarchy. */
#ifndef ERPSCOPE_CGPATH_H
#define ERPSCOPE_CGPATH_H

#include <stddef.h>
#include <linux/types.h>

/*
 * From /proc/<pid>/cgroup: the line of the v1 hierarchy holding the memory
 * controller, else the v2 line ("0::/path"). Returns 0 or -errno.
 */
int cgpath_of_pid(__u32 pid, char *out, size_t size);

/*
 * The cgroup whose directory has inode id (the kernel's cgroup id) in the
 * hierarchy holding the memory controller, found by walking its mount: for
 * a process already gone from /proc. Returns 0 or -errno (-ENOENT).
 */
int cgpath_of_id(__u64 id, char *out, size_t size);

/* Parses the text of a /proc/<pid>/cgroup file. Exposed for tests. */
int cgpath_parse(const char *text, char *out, size_t size);

#endif
