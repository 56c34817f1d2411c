// SPDX-License-Identifier: GPL-2.0
/*
 * The "sched" probe: per-worker CPU, off-CPU by reason, runqueue latency and
 * context switches from bpf/sched.bpf.c. At scrape time every slot in use is
 * read once (summing its per-CPU copies), then written family by family.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <linux/types.h>

#include "../bpf/sched.h"
#include "sched.skel.h"
#include "bpfutil.h"
#include "erpscope.h"
#include "expo.h"
#include "kfeatures.h"
#include "log.h"
#include "probe.h"
#include "proctable.h"
#include "sched.h"

/* Runqueue latency edges, seconds: 10 us to 1 s. */
static const double runq_edges[] = { 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
				     1e-3,  2.5e-3, 5e-3,  10e-3,  25e-3,  50e-3,
				     0.1,   0.25,   0.5,   1.0 };
#define NEDGES (sizeof(runq_edges) / sizeof(runq_edges[0]))

static const char *const reason_names[ES_OFF_COUNT] = {
	[ES_OFF_RUNQUEUE] = "runqueue",
	[ES_OFF_IOWAIT] = "iowait",
	[ES_OFF_BLOCKED] = "blocked",
	[ES_OFF_SLEEP] = "sleep",
};

struct sched_row {
	struct slot_view sv;
	struct es_sched_slot v;
};

struct sched_priv {
	struct sched_bpf *skel;
	int ncpus;
	unsigned int nslots;
	struct es_sched_slot *percpu; /* ncpus values: lookup buffer */
	struct sched_row *rows;       /* nslots: one scrape's readings */
	unsigned int nrows;
	int slots_fd;
	int iowait_fd;
	/* For the map walk callback, during one collect. */
	struct expo *e;
	struct procs *procs;
	struct blockdev_names *blockdevs;
};

static bool key_has_slot(void *arg, const void *key, const void *value)
{
	return ((const struct es_iowait_key *)key)->slot == *(const __u32 *)arg;
}

static void reset_slot(void *arg, __u32 slot)
{
	struct sched_priv *sp = arg;

	memset(sp->percpu, 0, sizeof(*sp->percpu) * (size_t)sp->ncpus);
	if (bpf_map_update_elem(sp->slots_fd, &slot, sp->percpu, BPF_ANY))
		log_warn("cannot reset slot", "probe=sched slot=%u err=%d", slot, -errno);
	bpf_hash_delete_if(sp->iowait_fd, sizeof(struct es_iowait_key), sizeof(__u64), true,
			   key_has_slot, &slot);
}

static int sched_open(struct probe *p)
{
	struct erpscope *es = p->es;
	struct sched_priv *sp;
	int nargs, err;

	sp = calloc(1, sizeof(*sp));
	if (!sp)
		return -ENOMEM;
	p->priv = sp;
	sp->ncpus = bpf_ncpus();
	sp->nslots = procs_nslots(es->procs);
	if (sp->ncpus <= 0)
		return sp->ncpus ? sp->ncpus : -EINVAL;
	sp->percpu = calloc((size_t)sp->ncpus, sizeof(*sp->percpu));
	sp->rows = calloc(sp->nslots, sizeof(*sp->rows));
	if (!sp->percpu || !sp->rows)
		return -ENOMEM;

	sp->skel = sched_bpf__open();
	if (!sp->skel)
		return -errno;
	for (unsigned int i = 0; i < NEDGES; i++)
		sp->skel->rodata->runq_edges_ns[i] = (__u64)(runq_edges[i] * 1e9 + 0.5);
	sp->skel->rodata->runq_nedges = NEDGES;
	nargs = feature_tp_nargs("sched_switch");
	sp->skel->rodata->sched_switch_has_prev_state = nargs >= 4;
	bpf_pick_flavour(sp->skel->obj, es->tp_btf);
	if (es->tp_btf)
		bpf_map__set_max_entries(sp->skel->maps.task_sched_by_pid, 1);
	bpf_map__set_max_entries(sp->skel->maps.sched_slots, sp->nslots);
	err = procs_share_maps(es, sp->skel->obj);
	if (!err && es->iodev_fd >= 0)
		err = bpf_map__reuse_fd(sp->skel->maps.task_iodev, es->iodev_fd);
	if (err)
		return err;
	err = sched_bpf__load(sp->skel);
	if (err)
		return err;
	p->obj = sp->skel->obj;
	sp->slots_fd = bpf_map__fd(sp->skel->maps.sched_slots);
	sp->iowait_fd = bpf_map__fd(sp->skel->maps.iowait_by_dev);
	es->iodev_fd = bpf_map__fd(sp->skel->maps.task_iodev);
	log_debug("sched probe loaded", "flavour=%s prev_state_arg=%d slots=%u",
		  es->tp_btf ? "tp_btf" : "raw_tp", nargs >= 4, sp->nslots);
	return procs_on_slot_reset(es->procs, reset_slot, sp);
}

static int sched_attach(struct probe *p)
{
	struct sched_priv *sp = p->priv;

	return sched_bpf__attach(sp->skel);
}

static void read_slot(void *arg, const struct slot_view *sv)
{
	struct sched_priv *sp = arg;
	struct sched_row *row;
	__u32 key = sv->slot;

	if (sp->nrows >= sp->nslots)
		return;
	if (bpf_map_lookup_elem(sp->slots_fd, &key, sp->percpu))
		return;
	row = &sp->rows[sp->nrows++];
	row->sv = *sv;
	memset(&row->v, 0, sizeof(row->v));
	for (int c = 0; c < sp->ncpus; c++) {
		const struct es_sched_slot *s = &sp->percpu[c];

		row->v.cpu_ns += s->cpu_ns;
		for (int r = 0; r < ES_OFF_COUNT; r++)
			row->v.off_ns[r] += s->off_ns[r];
		row->v.nvcsw += s->nvcsw;
		row->v.nivcsw += s->nivcsw;
		row->v.runq_sum_ns += s->runq_sum_ns;
		for (unsigned int b = 0; b <= NEDGES; b++)
			row->v.runq_buckets[b] += s->runq_buckets[b];
	}
}

static void iowait_sample(void *arg, const void *key, const void *values, int n, size_t stride)
{
	const struct es_iowait_key *k = key;
	struct sched_priv *sp = arg;
	struct slot_view sv;
	struct expo_label l[3];
	uint64_t ns = 0;

	for (int c = 0; c < n; c++)
		ns += *(const uint64_t *)((const char *)values + (size_t)c * stride);
	if (procs_slot_view(sp->procs, k->slot, &sv))
		return;
	l[0] = (struct expo_label){ "role", role_name(sv.role) };
	l[1] = (struct expo_label){ "worker", sv.worker };
	l[2] = (struct expo_label){ "device", blockdev_name(sp->blockdevs, k->dev) };
	expo_sample(sp->e, l, 3, (double)ns / 1e9);
}

static int sched_collect(struct probe *p, struct expo *e)
{
	struct sched_priv *sp = p->priv;
	struct expo_label l[3];

	sp->nrows = 0;
	procs_for_each_slot(p->es->procs, read_slot, sp);

	expo_family(e, "erpscope_cpu_seconds_total", EXPO_COUNTER,
		    "Time on CPU per worker (all threads of the process).");
	for (unsigned int i = 0; i < sp->nrows; i++) {
		struct sched_row *r = &sp->rows[i];

		l[0] = (struct expo_label){ "role", role_name(r->sv.role) };
		l[1] = (struct expo_label){ "worker", r->sv.worker };
		expo_sample(e, l, 2, (double)r->v.cpu_ns / 1e9);
	}
	expo_family(e, "erpscope_offcpu_seconds_total", EXPO_COUNTER,
		    "Time off CPU per worker by reason: runqueue (runnable, waiting for a CPU), iowait (uninterruptible with in_iowait), blocked (uninterruptible otherwise), sleep (interruptible).");
	for (unsigned int i = 0; i < sp->nrows; i++) {
		struct sched_row *r = &sp->rows[i];

		l[0] = (struct expo_label){ "role", role_name(r->sv.role) };
		l[1] = (struct expo_label){ "worker", r->sv.worker };
		for (int k = 0; k < ES_OFF_COUNT; k++) {
			l[2] = (struct expo_label){ "reason", reason_names[k] };
			expo_sample(e, l, 3, (double)r->v.off_ns[k] / 1e9);
		}
	}
	expo_family(e, "erpscope_runqueue_latency_seconds", EXPO_HISTOGRAM,
		    "Time from wakeup or preemption until the task ran again, per worker.");
	for (unsigned int i = 0; i < sp->nrows; i++) {
		struct sched_row *r = &sp->rows[i];
		uint64_t counts[NEDGES + 1];

		for (unsigned int b = 0; b <= NEDGES; b++)
			counts[b] = r->v.runq_buckets[b];
		l[0] = (struct expo_label){ "role", role_name(r->sv.role) };
		l[1] = (struct expo_label){ "worker", r->sv.worker };
		expo_histogram(e, l, 2, runq_edges, counts, NEDGES, (double)r->v.runq_sum_ns / 1e9);
	}
	expo_family(e, "erpscope_iowait_seconds_total", EXPO_COUNTER,
		    "iowait time per worker split by the block device of its last request before the wait; device=\"unknown\" when none was seen. Sums to erpscope_offcpu_seconds_total{reason=\"iowait\"}.");
	sp->e = e;
	sp->procs = p->es->procs;
	sp->blockdevs = &p->es->blockdevs;
	bpf_hash_foreach(sp->iowait_fd, sizeof(struct es_iowait_key), sizeof(uint64_t), true,
			 iowait_sample, sp);
	sp->e = NULL;
	expo_family(e, "erpscope_context_switches_total", EXPO_COUNTER,
		    "Context switches per worker: voluntary (it blocked) or involuntary (preempted).");
	for (unsigned int i = 0; i < sp->nrows; i++) {
		struct sched_row *r = &sp->rows[i];

		l[0] = (struct expo_label){ "role", role_name(r->sv.role) };
		l[1] = (struct expo_label){ "worker", r->sv.worker };
		l[2] = (struct expo_label){ "kind", "voluntary" };
		expo_sample_u64(e, l, 3, r->v.nvcsw);
		l[2] = (struct expo_label){ "kind", "involuntary" };
		expo_sample_u64(e, l, 3, r->v.nivcsw);
	}
	return 0;
}

static void sched_close(struct probe *p)
{
	struct sched_priv *sp = p->priv;

	if (!sp)
		return;
	procs_off_slot_reset(p->es->procs, reset_slot, sp);
	if (sp->skel && p->es->iodev_fd == bpf_map__fd(sp->skel->maps.task_iodev))
		p->es->iodev_fd = -1;
	sched_bpf__destroy(sp->skel);
	free(sp->percpu);
	free(sp->rows);
	free(sp);
	p->priv = NULL;
	p->obj = NULL;
}

const struct probe_ops sched_probe_ops = {
	.name = "sched",
	.open = sched_open,
	.attach = sched_attach,
	.collect = sched_collect,
	.close = sched_close,
};

int sched_thread_state(struct erpscope *es, __u32 tid, const char **state, uint64_t *since_ns)
{
	static const char *const names[] = {
		[ES_OFF_RUNQUEUE] = "runnable",
		[ES_OFF_IOWAIT] = "iowait",
		[ES_OFF_BLOCKED] = "blocked",
		[ES_OFF_SLEEP] = "sleeping",
	};
	struct probe *p = erpscope_probe(es, "sched");
	struct es_task_sched ts;
	struct sched_priv *sp;
	int err;

	if (!p || !p->up)
		return -ENOENT;
	sp = p->priv;
	if (es->tp_btf) {
		/* Task storage is keyed by a pidfd; a thread's needs PIDFD_THREAD. */
		int fd = (int)syscall(SYS_pidfd_open, tid, O_EXCL);

		if (fd < 0)
			fd = (int)syscall(SYS_pidfd_open, tid, 0);
		if (fd < 0)
			return -errno;
		err = bpf_map_lookup_elem(bpf_map__fd(sp->skel->maps.task_sched), &fd, &ts) ? -errno : 0;
		close(fd);
	} else {
		err = bpf_map_lookup_elem(bpf_map__fd(sp->skel->maps.task_sched_by_pid), &tid, &ts) ?
			      -errno :
			      0;
	}
	if (err)
		return err;
	if (ts.state == ES_ST_ONCPU)
		*state = "running";
	else if (ts.state >= ES_ST_OFF && ts.state - ES_ST_OFF < ES_OFF_COUNT)
		*state = names[ts.state - ES_ST_OFF];
	else
		return -ENOENT;
	*since_ns = ts.ts;
	return 0;
}
