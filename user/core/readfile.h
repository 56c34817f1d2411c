/* SPDX-License-Identifier: GPL-2.0 */
#ifndef ERPSCOPE_READFILE_H
#define ERPSCOPE_READFILE_H

#include <sys/types.h>

/*
 * Reads at most size - 1 bytes of a small file (/proc, /sys) into buf and
 * NUL-terminates it. Returns the byte count or -errno.
 */
ssize_t read_small_file(const char *path, char *buf, size_t size);

#endif
