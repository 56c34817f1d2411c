/* SPDX-License-Identifier: GPL-2.0 */
#ifndef ERPSCOPE_CAPS_H
#define ERPSCOPE_CAPS_H

/*
 * After every probe is attached: keep only the capabilities the running
 * daemon still uses (reading maps needs none; /proc/<pid>/exe of other users
 * needs CAP_SYS_PTRACE; attaching USDT probes to binaries that appear later
 * needs CAP_BPF, CAP_PERFMON and, for uprobe perf events on 6.x kernels,
 * CAP_SYS_ADMIN) and drop the rest from every set, including
 * the bounding set, so a compromised daemon cannot get them back.
 * Returns 0 or -errno.
 */
int caps_drop_after_attach(void);

#endif
