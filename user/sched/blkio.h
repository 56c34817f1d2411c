/* SPDX-License-Identifier: GPL-2.0 */
/* Inside the sched capability: the blkio probe's maps for its other files. */
#ifndef ERPSCOPE_BLKIO_H
#define ERPSCOPE_BLKIO_H

struct erpscope;

#include <stdbool.h>

/*
 * The fd of io_by_worker (struct es_blk_io_key -> per-CPU es_blk_io), or with
 * untracked io_by_other (struct es_blk_other_key -> es_blk_io); -ENODEV.
 */
int blkio_io_map_fd(struct erpscope *es, bool untracked);

#endif
