// SPDX-License-Identifier: GPL-2.0
/*
 * The "sched" probe: per-worker CPU, off-CPU by reason, runqueue latency and
 * context switches from bpf/sched.bpf.c. At scrape time every slot in use is
 * read once (summing its per-CPU copies), then written family by family.
 *
 * Time counters include the intervals still open at scrape (a task asleep
 * for minutes, or running without a switch), read after the closed totals:
 * a close between the two reads would undercount once instead of counting
 * twice, so the read is retried when a worker's closed time moved meanwhile
 * (closed_moved). Each series is exported as the most it ever showed, since open time
 * can move slots (a process becomes tracked) or close under a later scrape.
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

#include "../../bpf/procs.h"
#include "../../bpf/sched.h"
#include "sched.skel.h"
#include "core/bpfutil.h"
#include "core/clock.h"
#include "core/erpscope.h"
#include "core/expo.h"
#include "core/grow.h"
#include "core/kfeatures.h"
#include "core/log.h"
#include "core/mapstats.h"
#include "core/probe.h"
#include "procs/proctable.h"
#include "sched/sched.h"
#include "sched/sched_trace.h"

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

/* Time counters of one slot: open intervals, or the most ever exported. */
struct sched_times {
	uint64_t cpu_ns;
	uint64_t off_ns[ES_OFF_COUNT];
};

/* One erpscope_iowait_seconds_total series, kept while its slot is. */
struct iowait_series {
	__u32 slot, dev;
	uint64_t ns; /* this scrape: closed + open */
	uint64_t hw; /* the most exported */
	bool seen;   /* in this scrape */
};

struct sched_priv {
	struct sched_bpf *skel;
	int ncpus;
	unsigned int nslots;
	struct es_sched_slot *percpu; /* ncpus values: lookup buffer */
	struct sched_row *rows;       /* nslots: one scrape's readings */
	unsigned int nrows;
	struct sched_times *open;     /* nslots: one scrape's open intervals */
	struct sched_times *hw;       /* nslots: the most exported */
	struct iowait_series *iow;
	size_t niow, capiow;
	__u32 gen; /* raw_tp walk: workers_gen + 1, as slot_of() compares */
	int slots_fd;
	int iowait_fd;
	int workers_fd, workers_gen_fd;
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
	if (slot < sp->nslots)
		memset(&sp->hw[slot], 0, sizeof(sp->hw[slot]));
	for (size_t i = 0; i < sp->niow;) {
		if (sp->iow[i].slot == slot)
			sp->iow[i] = sp->iow[--sp->niow];
		else
			i++;
	}
}

/* What a series exports: v, or more when an earlier scrape showed more. */
static uint64_t monotonic(uint64_t *hw, uint64_t v)
{
	if (v > *hw)
		*hw = v;
	return *hw;
}

static struct iowait_series *iowait_series(struct sched_priv *sp, __u32 slot, __u32 dev)
{
	for (size_t i = 0; i < sp->niow; i++) {
		if (sp->iow[i].slot == slot && sp->iow[i].dev == dev)
			return &sp->iow[i];
	}
	if (grow_array(&sp->iow, &sp->capiow, sp->niow + 1, sizeof(*sp->iow), 64))
		return NULL;
	sp->iow[sp->niow] = (struct iowait_series){ .slot = slot, .dev = dev };
	return &sp->iow[sp->niow++];
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
	sp->open = calloc(sp->nslots, sizeof(*sp->open));
	sp->hw = calloc(sp->nslots, sizeof(*sp->hw));
	if (!sp->percpu || !sp->rows || !sp->open || !sp->hw)
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
	/* The raw_tp flavour's kernels may lack iterators: user space walks the hash. */
	bpf_program__set_autoload(sp->skel->progs.es_sched_open_iter, es->tp_btf);
	/* Attached while a trace records (sched_trace.c). */
	bpf_program__set_autoattach(sp->skel->progs.es_waking, false);
	if (es->tp_btf)
		bpf_map__set_max_entries(sp->skel->maps.task_sched_by_pid, 1);
	bpf_map__set_max_entries(sp->skel->maps.sched_slots, sp->nslots);
	/* The Python probe's off-CPU walk rides on this program (tp_btf alone). */
	if (es->tp_btf && config_probe_enabled(&es->cfg, "python"))
		sp->skel->rodata->switch_hook_min_ns = (__u64)es->cfg.py_offcpu_ms * 1000000ull;
	err = procs_share_maps(es, sp->skel->obj);
	if (!err && es->iodev_fd >= 0)
		err = bpf_map__reuse_fd(sp->skel->maps.task_iodev, es->iodev_fd);
	if (err)
		return err;
	err = sched_bpf__load(sp->skel);
	if (err)
		return err;
	p->obj = sp->skel->obj;
	p->map_errors_fd = bpf_map__fd(sp->skel->maps.map_errors);
	mapstats_track(es, ES_MAP_IOWAIT_BY_DEV, sp->skel->maps.iowait_by_dev);
	if (!es->tp_btf)
		mapstats_track(es, ES_MAP_TASK_SCHED_BY_PID, sp->skel->maps.task_sched_by_pid);
	sp->slots_fd = bpf_map__fd(sp->skel->maps.sched_slots);
	sp->iowait_fd = bpf_map__fd(sp->skel->maps.iowait_by_dev);
	es->iodev_fd = bpf_map__fd(sp->skel->maps.task_iodev);
	if (es->tp_btf)
		es->task_sched_fd = bpf_map__fd(sp->skel->maps.task_sched);
	if (sp->skel->rodata->switch_hook_min_ns) {
		es->switch_hook_fd = bpf_map__fd(sp->skel->maps.switch_hook);
		es->switch_arg_fd = bpf_map__fd(sp->skel->maps.switch_hook_arg);
	}
	sp->workers_fd = es->workers_fd;
	sp->workers_gen_fd = es->workers_gen_fd;
	log_debug("sched probe loaded", "flavour=%s prev_state_arg=%d slots=%u",
		  es->tp_btf ? "tp_btf" : "raw_tp", nargs >= 4, sp->nslots);
	return procs_on_slot_reset(es->procs, reset_slot, sp);
}

static int sched_attach(struct probe *p)
{
	struct sched_priv *sp = p->priv;
	int err = sched_bpf__attach(sp->skel);

	return err ? err : sched_trace_start(p, sp->skel);
}

struct sched_bpf *sched_trace_skel(struct probe *p)
{
	return ((struct sched_priv *)p->priv)->skel;
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

static void iowait_closed(void *arg, const void *key, const void *values, int n, size_t stride)
{
	const struct es_iowait_key *k = key;
	struct sched_priv *sp = arg;
	struct iowait_series *is = iowait_series(sp, k->slot, k->dev);

	if (!is)
		return;
	for (int c = 0; c < n; c++)
		is->ns += *(const uint64_t *)((const char *)values + (size_t)c * stride);
	is->seen = true;
}

static void add_open(struct sched_priv *sp, const struct es_sched_open *o)
{
	__u32 reason = o->state - ES_ST_OFF, slot = o->slot < sp->nslots ? o->slot : ES_ROLE_OTHER;
	struct iowait_series *is;

	if (o->state == ES_ST_ONCPU) {
		sp->open[slot].cpu_ns += o->ns;
		return;
	}
	if (o->state < ES_ST_OFF || reason >= ES_OFF_COUNT)
		return;
	sp->open[slot].off_ns[reason] += o->ns;
	if (reason == ES_OFF_IOWAIT && (is = iowait_series(sp, slot, o->iodev))) {
		is->ns += o->ns;
		is->seen = true;
	}
}

/* Records of the iter/task program; read() may split one. */
static int open_from_iter(struct sched_priv *sp)
{
	struct es_sched_open rec[128];
	size_t have = 0, n;
	ssize_t got;
	int fd, err = 0;

	fd = bpf_iter_create(bpf_link__fd(sp->skel->links.es_sched_open_iter));
	if (fd < 0)
		return -errno;
	while ((got = read(fd, (char *)rec + have, sizeof(rec) - have)) > 0) {
		have += (size_t)got;
		n = have / sizeof(rec[0]);
		for (size_t i = 0; i < n; i++)
			add_open(sp, &rec[i]);
		have -= n * sizeof(rec[0]);
		memmove(rec, (char *)rec + n * sizeof(rec[0]), have);
	}
	if (got < 0)
		err = -errno;
	close(fd);
	return err;
}

/* raw_tp flavour: one hash entry per task; its slot as slot_of() would find it. */
static void open_from_hash(void *arg, const void *key, const void *value, int n, size_t stride)
{
	const struct es_task_sched *s = value;
	struct sched_priv *sp = arg;
	struct es_sched_open o = { .state = s->state, .iodev = s->iodev, .slot = ES_ROLE_OTHER };
	uint64_t now = clock_ns();
	struct es_worker w;

	if (!s->ts || now < s->ts)
		return;
	o.ns = now - s->ts;
	if (s->slot_gen == sp->gen)
		o.slot = s->slot;
	else if (!bpf_map_lookup_elem(sp->workers_fd, &s->tgid, &w))
		o.slot = w.slot;
	add_open(sp, &o);
}

static int read_open(struct sched_priv *sp)
{
	__u32 zero = 0;
	__u64 gen = 0;

	memset(sp->open, 0, sizeof(*sp->open) * sp->nslots);
	if (sp->skel->links.es_sched_open_iter)
		return open_from_iter(sp);
	if (sp->workers_gen_fd >= 0)
		bpf_map_lookup_elem(sp->workers_gen_fd, &zero, &gen);
	sp->gen = (__u32)gen + 1;
	return bpf_hash_foreach(bpf_map__fd(sp->skel->maps.task_sched_by_pid), sizeof(__u32),
				sizeof(struct es_task_sched), false, open_from_hash, sp);
}

/* Sum of a slot's closed time counters over its per-CPU copies. */
static uint64_t slot_time_ns(const struct es_sched_slot *v)
{
	uint64_t ns = v->cpu_ns;

	for (int r = 0; r < ES_OFF_COUNT; r++)
		ns += v->off_ns[r];
	return ns;
}

/*
 * Whether a worker's closed time moved since its row was read: an interval
 * that closed between that read and the open one's is in neither
 * (core/bpfutil.h, ES_REREAD_*). The shared slots (role "other", overflow)
 * always move and are not checked.
 */
static bool closed_moved(struct sched_priv *sp)
{
	for (unsigned int i = 0; i < sp->nrows; i++) {
		const struct sched_row *r = &sp->rows[i];
		__u32 key = r->sv.slot;
		uint64_t now = 0;

		if (!r->sv.w || bpf_map_lookup_elem(sp->slots_fd, &key, sp->percpu))
			continue;
		for (int c = 0; c < sp->ncpus; c++)
			now += slot_time_ns(&sp->percpu[c]);
		if (now > slot_time_ns(&r->v) + ES_REREAD_SLACK_NS)
			return true;
	}
	return false;
}

/*
 * Reads every slot's totals and iowait series: closed totals first, then
 * what is open, again while a long interval closed in between.
 */
static void sched_read(struct probe *p)
{
	struct sched_priv *sp = p->priv;
	int err, tries = 0;

	do {
		sp->nrows = 0;
		procs_for_each_slot(p->es->procs, read_slot, sp);
		for (size_t i = 0; i < sp->niow; i++) {
			sp->iow[i].ns = 0;
			sp->iow[i].seen = false;
		}
		err = bpf_hash_foreach(sp->iowait_fd, sizeof(struct es_iowait_key),
				       sizeof(uint64_t), true, iowait_closed, sp);
		mapstats_count(p->es, ES_MAP_IOWAIT_BY_DEV, err);
		err = read_open(sp);
		if (!sp->skel->links.es_sched_open_iter)
			mapstats_count(p->es, ES_MAP_TASK_SCHED_BY_PID, err);
		if (err < 0) {
			log_warn("cannot read open intervals", "probe=sched err=%d", err);
			return;
		}
	} while (++tries < ES_REREAD_TRIES && closed_moved(sp));
}

/* Each iowait series of the last read (sched_read()). */
static void iowait_each(struct erpscope *es, struct sched_priv *sp, sched_iowait_fn fn, void *arg)
{
	for (size_t i = 0; i < sp->niow; i++) {
		struct iowait_series *is = &sp->iow[i];
		struct slot_view sv;

		if (!is->seen || procs_slot_view(es->procs, is->slot, &sv))
			continue;
		fn(arg, sv.role, sv.worker, blockdev_name(&es->blockdevs, is->dev),
		   monotonic(&is->hw, is->ns));
	}
}

/* Each worker's row of the last read. */
static void workers_each(struct sched_priv *sp, sched_worker_fn fn, void *arg)
{
	for (unsigned int i = 0; i < sp->nrows; i++) {
		struct sched_row *r = &sp->rows[i];
		__u32 s = r->sv.slot;

		if (!r->sv.w)
			continue;
		fn(arg, s, r->sv.role, r->sv.w->pid,
		   monotonic(&sp->hw[s].cpu_ns, r->v.cpu_ns + sp->open[s].cpu_ns),
		   monotonic(&sp->hw[s].off_ns[ES_OFF_RUNQUEUE],
			     r->v.off_ns[ES_OFF_RUNQUEUE] + sp->open[s].off_ns[ES_OFF_RUNQUEUE]));
	}
}

int sched_foreach(struct erpscope *es, const struct sched_visitor *v)
{
	struct probe *p = erpscope_probe(es, "sched");
	struct sched_priv *sp = p && p->up ? p->priv : NULL;

	if (!sp)
		return -ENODEV;
	sched_read(p);
	if (v->iowait)
		iowait_each(es, sp, v->iowait, v->iowait_arg);
	if (v->worker)
		workers_each(sp, v->worker, v->worker_arg);
	return 0;
}

static int sched_collect(struct probe *p, struct expo *e)
{
	struct sched_priv *sp = p->priv;
	struct expo_label l[3];

	sched_read(p);
	expo_family(e, "erpscope_cpu_seconds_total", EXPO_COUNTER,
		    "Time on CPU per worker (all threads of the process).");
	for (unsigned int i = 0; i < sp->nrows; i++) {
		struct sched_row *r = &sp->rows[i];

		__u32 s = r->sv.slot;

		l[0] = (struct expo_label){ "role", role_name(r->sv.role) };
		l[1] = (struct expo_label){ "worker", r->sv.worker };
		expo_sample(e, l, 2,
			    (double)monotonic(&sp->hw[s].cpu_ns, r->v.cpu_ns + sp->open[s].cpu_ns) / 1e9);
	}
	expo_family(e, "erpscope_offcpu_seconds_total", EXPO_COUNTER,
		    "Time off CPU per worker by reason: runqueue (runnable, waiting for a CPU), iowait (uninterruptible with in_iowait), blocked (uninterruptible otherwise), sleep (interruptible).");
	for (unsigned int i = 0; i < sp->nrows; i++) {
		struct sched_row *r = &sp->rows[i];

		__u32 s = r->sv.slot;

		l[0] = (struct expo_label){ "role", role_name(r->sv.role) };
		l[1] = (struct expo_label){ "worker", r->sv.worker };
		for (int k = 0; k < ES_OFF_COUNT; k++) {
			uint64_t ns = r->v.off_ns[k] + sp->open[s].off_ns[k];

			l[2] = (struct expo_label){ "reason", reason_names[k] };
			expo_sample(e, l, 3, (double)monotonic(&sp->hw[s].off_ns[k], ns) / 1e9);
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
	for (size_t i = 0; i < sp->niow; i++) {
		struct iowait_series *is = &sp->iow[i];
		struct slot_view sv;

		if (!is->seen || procs_slot_view(p->es->procs, is->slot, &sv))
			continue;
		l[0] = (struct expo_label){ "role", role_name(sv.role) };
		l[1] = (struct expo_label){ "worker", sv.worker };
		l[2] = (struct expo_label){ "device", blockdev_name(&p->es->blockdevs, is->dev) };
		expo_sample(e, l, 3, (double)monotonic(&is->hw, is->ns) / 1e9);
	}
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
	if (sp->skel)
		sched_trace_stop(p, sp->skel);
	if (sp->skel && p->es->iodev_fd == bpf_map__fd(sp->skel->maps.task_iodev))
		p->es->iodev_fd = -1;
	if (sp->skel && p->es->task_sched_fd == bpf_map__fd(sp->skel->maps.task_sched))
		p->es->task_sched_fd = -1;
	if (sp->skel && p->es->switch_hook_fd == bpf_map__fd(sp->skel->maps.switch_hook)) {
		p->es->switch_hook_fd = -1;
		p->es->switch_arg_fd = -1;
	}
	sched_bpf__destroy(sp->skel);
	free(sp->percpu);
	free(sp->rows);
	free(sp->open);
	free(sp->hw);
	free(sp->iow);
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

/* The sched probe's record of thread tid, read now. */
static int thread_record(struct erpscope *es, __u32 tid, struct es_task_sched *ts)
{
	struct probe *p = erpscope_probe(es, "sched");
	struct sched_priv *sp;
	int err, fd;

	if (!p || !p->up)
		return -ENOENT;
	sp = p->priv;
	if (!es->tp_btf)
		return bpf_map_lookup_elem(bpf_map__fd(sp->skel->maps.task_sched_by_pid), &tid, ts) ?
			       -errno :
			       0;
	/* Task storage is keyed by a pidfd; a thread's needs PIDFD_THREAD. */
	fd = (int)syscall(SYS_pidfd_open, tid, O_EXCL);
	if (fd < 0)
		fd = (int)syscall(SYS_pidfd_open, tid, 0);
	if (fd < 0)
		return -errno;
	err = bpf_map_lookup_elem(bpf_map__fd(sp->skel->maps.task_sched), &fd, ts) ? -errno : 0;
	close(fd);
	return err;
}

int sched_thread_totals(struct erpscope *es, __u32 tid, uint64_t acc[ES_ACC_COUNT])
{
	struct es_task_sched ts;
	uint64_t now = clock_ns();
	int err = thread_record(es, tid, &ts);

	if (err)
		return err;
	memcpy(acc, ts.acc_ns, sizeof(ts.acc_ns));
	/* The interval open now counts to the state it is in. */
	if (ts.ts && now > ts.ts) {
		if (ts.state == ES_ST_ONCPU)
			acc[ES_ACC_CPU] += now - ts.ts;
		else if (ts.state >= ES_ST_OFF && ts.state - ES_ST_OFF < ES_OFF_COUNT)
			acc[1 + ts.state - ES_ST_OFF] += now - ts.ts;
	}
	return 0;
}

int sched_thread_state(struct erpscope *es, __u32 tid, const char **state, uint64_t *since_ns)
{
	static const char *const names[] = {
		[ES_OFF_RUNQUEUE] = "runnable",
		[ES_OFF_IOWAIT] = "iowait",
		[ES_OFF_BLOCKED] = "blocked",
		[ES_OFF_SLEEP] = "sleeping",
	};
	struct es_task_sched ts;
	int err = thread_record(es, tid, &ts);

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
