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
#define ES_TASK_DEAD 0x0080 /* a task's last switch: it will never run again */
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

/*
 * v6.2, commit f1a7941243c1 ("mm: convert mm's rss stats into
 * percpu_counter"): mm->rss_stat became an array of percpu_counter; before
 * it was struct mm_rss_stat { atomic_long_t count[NR_MM_COUNTERS]; }. Both
 * give the total the kernel itself reports (get_mm_counter: the shared
 * count, per-CPU deltas not folded in, negative read as 0). mark_victim
 * with a task argument was backported to stable kernels of both layouts.
 */
struct mm_rss_stat___pre62 {
	atomic_long_t count[4];
} __attribute__((preserve_access_index));

struct mm_struct___pre62 {
	struct mm_rss_stat___pre62 rss_stat;
} __attribute__((preserve_access_index));

/* NR_MM_COUNTERS members, include/linux/mm_types_task.h (stable since v4.5). */
#define ES_MM_FILEPAGES 0
#define ES_MM_ANONPAGES 1
#define ES_MM_SHMEMPAGES 3

/* member must be a constant: CO-RE relocates array accesses by index. */
#define mm_rss_pages(mm, member)                                                            \
	({                                                                                  \
		long __v;                                                                   \
		if (bpf_core_type_exists(struct mm_rss_stat___pre62))                       \
			__v = BPF_CORE_READ((struct mm_struct___pre62 *)(mm),               \
					    rss_stat.count[member].counter);                \
		else                                                                        \
			__v = BPF_CORE_READ(mm, rss_stat[member].count);                    \
		__v < 0 ? 0 : (__u64)__v;                                                   \
	})

/*
 * 2024, "mm: update mark_victim tracepoints fields" (also backported to
 * stable kernels): oom:mark_victim passes (struct task_struct *, uid_t);
 * before it passed only the victim's pid. User space counts the arguments
 * in BTF and sets mark_victim_has_task; with a pid only, the event carries
 * no RSS or cgroup and user space fills in what /proc still shows.
 */

#endif
