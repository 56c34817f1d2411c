/* SPDX-License-Identifier: GPL-2.0 */
#ifndef ERPSCOPE_PROBES_H
#define ERPSCOPE_PROBES_H

struct probe_ops;

extern const struct probe_ops *const probe_table[];
extern const unsigned int probe_table_len;

#endif
