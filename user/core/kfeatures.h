/* SPDX-License-Identifier: GPL-2.0 */
/* Kernel feature probes: decided by trying or by reading BTF, never by version. */
#ifndef ERPSCOPE_KFEATURES_H
#define ERPSCOPE_KFEATURES_H

#include <stdbool.h>

/* Loads a no-op tp_btf program on sched_switch: typed tracepoints usable? */
bool feature_tp_btf(void);
/* Number of arguments of a tracepoint per BTF (btf_trace_<name>), -errno if unknown. */
int feature_tp_nargs(const char *tp_name);

/* Is the kernel function (a kfunc) name in vmlinux BTF? */
bool feature_kfunc(const char *name);
/* Does the kernel's enum enum_name (per vmlinux BTF) have the value named value? */
bool feature_enum_value(const char *enum_name, const char *value);

#endif
