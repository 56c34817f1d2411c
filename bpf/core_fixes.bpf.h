/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Every CO-RE workaround for kernel differences lives here, each with the
 * kernel change it exists for. Decisions are made from BTF (field and type
 * existence), never from a kernel version.
 */
#ifndef ERPSCOPE_CORE_FIXES_BPF_H
#define ERPSCOPE_CORE_FIXES_BPF_H

#include <bpf/bpf_core_read.h>

/*
 * v5.14, commit 2f064a59a11f ("sched: Change task_struct::state"): the
 * field was renamed to __state and made unsigned int.
 */
struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

static __always_inline unsigned int task_state(const struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state);
	return (unsigned int)BPF_CORE_READ((struct task_struct___pre514 *)t, state);
}

/*
 * in_iowait is a bitfield: direct loads need the CO-RE bitfield relocation,
 * probed reads (raw_tp, untrusted pointers) the _PROBED variant.
 */
#define task_in_iowait(t) BPF_CORE_READ_BITFIELD(t, in_iowait)
#define task_in_iowait_probed(t) BPF_CORE_READ_BITFIELD_PROBED(t, in_iowait)

/*
 * v5.18, commit fa2c3254d7cf ("sched/tracing: Don't re-read p->state when
 * emitting sched_switch event"): sched_switch gained a 4th argument,
 * prev_state. User space reads the tracepoint's prototype from BTF and sets
 * sched_switch_has_prev_state; older kernels fall back to task_state(prev),
 * which can race with a concurrent wakeup but is what those kernels had.
 */

/* Task state bits, from include/linux/sched.h (stable since v2.6). */
#define ES_TASK_RUNNING 0x0000
#define ES_TASK_INTERRUPTIBLE 0x0001
#define ES_TASK_UNINTERRUPTIBLE 0x0002
#define ES_TASK_NOLOAD 0x0400 /* with UNINTERRUPTIBLE = TASK_IDLE: not a D-state wait */

/*
 * v5.17, commit f3fa33acca9f ("block: remove the ->rq_disk field in struct
 * request"): the disk is reached through the queue since.
 */
struct request___pre517 {
	struct gendisk *rq_disk;
} __attribute__((preserve_access_index));

/* Typed (tp_btf) flavour: direct loads through trusted pointers. */
static __always_inline __u32 rq_devt_btf(struct request *rq)
{
	struct gendisk *disk;

	if (bpf_core_field_exists(((struct request___pre517 *)rq)->rq_disk))
		disk = ((struct request___pre517 *)rq)->rq_disk;
	else
		disk = rq->q->disk;
	if (!disk)
		return 0;
	return ((__u32)disk->major << 20) | (__u32)disk->first_minor;
}

/* Probed (raw_tp) flavour. */
static __always_inline __u32 rq_devt(struct request *rq)
{
	struct gendisk *disk;

	if (bpf_core_field_exists(((struct request___pre517 *)rq)->rq_disk))
		disk = BPF_CORE_READ((struct request___pre517 *)rq, rq_disk);
	else
		disk = BPF_CORE_READ(rq, q, disk);
	if (!disk)
		return 0;
	return ((__u32)BPF_CORE_READ(disk, major) << 20) | (__u32)BPF_CORE_READ(disk, first_minor);
}

/*
 * v5.11, commit a54895fa057c ("block: remove the request_queue to argument
 * request based tracepoints"): block_rq_insert/issue lost their first
 * argument. User space counts the arguments in BTF and sets the index of
 * struct request * (rq_arg) before load.
 */

#endif
