// SPDX-License-Identifier: GPL-2.0
/*
 * The "python" probe (see user/python/python.h for its other files). open loads
 * bpf/python.bpf.c; attach opens a CPU-clock perf event per CPU for the CPU
 * profile (--python.sample-frequency), the sched_switch program for the
 * off-CPU profile where the kernel has BPF task work (6.18+, tp_btf; where
 * it refuses one from a tracepoint, the walk runs at rseq_update instead:
 * load()), and the GC probes of the installed Python binaries. The python poller
 * (py_targets.c) finds Python processes, tells the kernel about them and
 * drains the stacks once a second.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/perf_event.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "core/bpfutil.h"
#include "core/erpscope.h"
#include "core/expo.h"
#include "core/grow.h"
#include "core/intern.h"
#include "core/kfeatures.h"
#include "core/log.h"
#include "core/mapstats.h"
#include "core/probe.h"
#include "core/reqtag.h"
#include "core/reqtag_map.h"
#include "procs/proctable.h"
#include "python/python.h"
#include "python.skel.h"

/* GC pause buckets: 50 us .. 2.5 s. */
static const double gc_edges[] = { 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
				   0.01,    0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5 };
#define NGC (sizeof(gc_edges) / sizeof(gc_edges[0]))
_Static_assert(NGC <= ES_PY_MAX_EDGES, "too many GC edges");

struct py_priv *python_priv(struct erpscope *es)
{
	struct probe *p = erpscope_probe(es, "python");

	return p && p->up ? p->priv : NULL;
}

static void reset_slot(void *arg, __u32 slot)
{
	struct py_priv *pp = arg;

	for (__u32 g = 0; g < ES_PY_GC_GENERATIONS; g++) {
		__u32 key = slot << 2 | g;

		bpf_map_delete_elem(pp->gc_fd, &key);
	}
}

/* How the off-CPU walk runs, in the order load() tries them. */
enum offcpu_way {
	OFFCPU_TASK_WORK, /* task work queued at sched_switch */
	OFFCPU_RSEQ,      /* the rseq_update tracepoint (es_py_resume) */
	OFFCPU_NONE,
};

/*
 * Opens and loads the skeleton into pp->skel, its off-CPU walk run the way
 * way. A failed load leaves no skeleton behind, so the caller can try the
 * next way: the maps it shares are set on each new one.
 */
static int load(struct py_priv *pp, enum offcpu_way way)
{
	struct erpscope *es = pp->es;
	struct python_bpf *skel;
	bool offcpu = way != OFFCPU_NONE;
	int err;

	skel = python_bpf__open();
	if (!skel)
		return -errno;
	skel->rodata->stack_depth = es->cfg.py_depth;
	skel->rodata->offcpu_threshold_ns = (__u64)es->cfg.py_offcpu_ms * 1000000ull;
	for (unsigned int i = 0; i < NGC; i++)
		skel->rodata->gc_edges_ns[i] = (__u64)(gc_edges[i] * 1e9 + 0.5);
	skel->rodata->gc_nedges = NGC;
	skel->rodata->sched_switch_has_prev_state = feature_tp_nargs("sched_switch") >= 4;
	skel->rodata->offcpu_rseq = way == OFFCPU_RSEQ;
	/*
	 * With the sched probe, its sched_switch program hands us the long
	 * blocks (bpf/switch_hook.bpf.h); alone, we run our own.
	 */
	pp->offcpu_profile = offcpu;
	pp->offcpu_hooked = offcpu && es->switch_hook_fd >= 0;
	bpf_program__set_autoload(skel->progs.es_py_switch, offcpu && !pp->offcpu_hooked);
	bpf_program__set_autoload(skel->progs.es_py_offcpu, pp->offcpu_hooked);
	bpf_program__set_autoload(skel->progs.es_py_exit, offcpu);
	bpf_program__set_autoload(skel->progs.es_py_resume, way == OFFCPU_RSEQ);
	err = procs_share_maps(es, skel->obj);
	if (!err)
		err = reqtag_map_reuse(es, skel->maps.req_serving);
	if (!err && pp->offcpu_hooked)
		err = bpf_map__reuse_fd(skel->maps.switch_hook, es->switch_hook_fd);
	if (!err && pp->offcpu_hooked)
		err = bpf_map__reuse_fd(skel->maps.switch_hook_arg, es->switch_arg_fd);
	if (err)
		goto out;
	/* Task work may be refused on this kernel: the next way is tried then. */
	log_libbpf_trial(way == OFFCPU_TASK_WORK);
	err = python_bpf__load(skel);
	log_libbpf_trial(false);
	if (err)
		goto out;
	pp->skel = skel;
	skel = NULL;
out:
	python_bpf__destroy(skel);
	return err;
}

static int python_open(struct probe *p)
{
	struct erpscope *es = p->es;
	enum offcpu_way way;
	struct py_priv *pp;
	char why[160];
	int err;

	pp = calloc(1, sizeof(*pp));
	if (!pp)
		return -ENOMEM;
	p->priv = pp;
	pp->es = es;
	pp->ncpus = bpf_ncpus();
	if (pp->ncpus <= 0)
		return pp->ncpus ? pp->ncpus : -EINVAL;
	if (py_capture_parse(es->cfg.py_capture, &pp->capture, why, sizeof(why))) {
		log_error("bad --python.capture-args", "why=\"%s\"", why);
		return -EINVAL;
	}
	if (py_scope_init(&pp->scope, es->cfg.py_users, why, sizeof(why))) {
		log_error("bad --python.users", "why=\"%s\"", why);
		return -EINVAL;
	}
	pp->names = intern_new();
	if (!pp->names)
		return -ENOMEM;
	pp->prof = py_profile_new(es->cfg.py_window_ms / 1000, es->cfg.py_top_funcs,
				  es->cfg.py_sample_hz, es->cfg.py_max_stacks);
	if (!pp->prof)
		return -ENOMEM;
	/*
	 * The off-CPU walk needs a typed tracepoint and the task_work kfunc
	 * (Linux 6.18). Some kernels then refuse to queue the (sleepable)
	 * task work from a tracepoint: the walk moves to rseq_update. Failing
	 * that, the CPU profile and GC still load without it.
	 */
	way = OFFCPU_NONE;
	if (es->tp_btf && feature_kfunc("bpf_task_work_schedule_resume_impl"))
		way = OFFCPU_TASK_WORK;
	for (;;) {
		err = load(pp, way);
		if (!err || way == OFFCPU_NONE)
			break;
		log_info("python probe: this off-CPU walk was refused (the verifier log is at debug), trying the next",
			 "probe=python err=%d offcpu=%s", err,
			 way == OFFCPU_RSEQ ? "rseq_tracepoint" : "task_work");
		if (way == OFFCPU_TASK_WORK && feature_tp_nargs("rseq_update") >= 1)
			way = OFFCPU_RSEQ;
		else
			way = OFFCPU_NONE;
	}
	if (err)
		return err;
	p->obj = pp->skel->obj;
	reqtag_map_loaded(es, pp->skel->maps.req_serving);
	reqtags_set_reader(es->reqtags, true);
	pp->procs_fd = bpf_map__fd(pp->skel->maps.py_procs);
	pp->gen_fd = bpf_map__fd(pp->skel->maps.py_gen);
	pp->counts_fd = bpf_map__fd(pp->skel->maps.py_counts);
	pp->stacks_fd = bpf_map__fd(pp->skel->maps.py_stacks);
	pp->capture_fd = bpf_map__fd(pp->skel->maps.py_capture);
	pp->gc_fd = bpf_map__fd(pp->skel->maps.py_gc);
	p->map_errors_fd = bpf_map__fd(pp->skel->maps.map_errors);
	mapstats_track(es, ES_MAP_PY_WORK, pp->skel->maps.py_work);
	mapstats_track(es, ES_MAP_PY_GC, pp->skel->maps.py_gc);
	pp->stats_fd = bpf_map__fd(pp->skel->maps.py_stats);
	if (pp->offcpu_profile)
		log_info("python off-CPU walk", "probe=python way=%s",
			 way == OFFCPU_RSEQ ? "rseq_tracepoint" : "task_work");
	else
		log_warn("no off-CPU Python profile: it needs typed tracepoints and BPF task work (Linux 6.18+)",
			 "probe=python tp_btf=%d", es->tp_btf);
	return procs_on_slot_reset(es->procs, reset_slot, pp);
}

/* Puts the off-CPU walk into the sched probe's switch hook. */
static int hook_offcpu(struct py_priv *pp)
{
	int fd = bpf_program__fd(pp->skel->progs.es_py_offcpu);
	__u32 zero = 0;

	if (bpf_map_update_elem(pp->es->switch_hook_fd, &zero, &fd, BPF_ANY))
		return -errno;
	return 0;
}

static int perf_open_cpu(int cpu, unsigned int hz)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.size = sizeof(attr),
		.freq = 1,
		.sample_freq = hz,
	};
	int fd = (int)syscall(__NR_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static int attach_perf(struct py_priv *pp, unsigned int hz)
{
	int attached = 0, err = 0;

	pp->perf_links = calloc((size_t)pp->ncpus, sizeof(*pp->perf_links));
	pp->perf_fds = calloc((size_t)pp->ncpus, sizeof(*pp->perf_fds));
	if (!pp->perf_links || !pp->perf_fds)
		return -ENOMEM;
	for (int cpu = 0; cpu < pp->ncpus; cpu++) {
		int fd = perf_open_cpu(cpu, hz);

		pp->perf_fds[cpu] = -1;
		if (fd == -ENODEV)
			continue; /* possible but offline */
		if (fd < 0) {
			err = fd;
			continue;
		}
		pp->perf_fds[cpu] = fd;
		pp->perf_links[cpu] = bpf_program__attach_perf_event(pp->skel->progs.es_py_sample, fd);
		if (!pp->perf_links[cpu]) {
			err = -errno;
			pp->perf_links[cpu] = NULL;
			continue;
		}
		attached++;
	}
	if (!attached)
		return err ? err : -ENODEV;
	return 0;
}

static int python_attach(struct probe *p)
{
	struct py_priv *pp = p->priv;
	struct erpscope *es = p->es;
	int err;

	if (es->cfg.py_sample_hz) {
		err = attach_perf(pp, es->cfg.py_sample_hz);
		if (err) {
			log_error("cannot open CPU-clock perf events for the Python CPU profile",
				  "probe=python err=%d", err);
			return err;
		}
		pp->cpu_profile = true;
	}
	if (pp->offcpu_profile) {
		struct bpf_link *l = NULL;

		if (pp->offcpu_hooked)
			err = hook_offcpu(pp);
		else if (!(l = bpf_program__attach(pp->skel->progs.es_py_switch)))
			err = -errno;
		if (err) {
			log_error("cannot attach the off-CPU program", "probe=python err=%d", err);
			return err;
		}
		pp->skel->links.es_py_switch = l;
		if (pp->skel->rodata->offcpu_rseq) {
			l = bpf_program__attach(pp->skel->progs.es_py_resume);
			if (!l) {
				err = -errno;
				log_error("cannot attach the off-CPU rseq_update program",
					  "probe=python err=%d", err);
				return err;
			}
			pp->skel->links.es_py_resume = l;
		}
		l = bpf_program__attach(pp->skel->progs.es_py_exit);
		if (!l) {
			err = -errno;
			log_error("cannot attach the off-CPU exit program", "probe=python err=%d",
				  err);
			return err;
		}
		pp->skel->links.es_py_exit = l;
	}
	py_bins_scan_installed(pp);
	err = py_trace_start(p, pp->skel);
	if (err)
		return err;
	log_debug("python probe attached",
		  "cpu_profile=%d hz=%u offcpu_profile=%d offcpu_on_sched_switch=%d offcpu_rseq=%d depth=%u",
		  pp->cpu_profile, es->cfg.py_sample_hz, pp->offcpu_profile, pp->offcpu_hooked,
		  pp->skel->rodata->offcpu_rseq, es->cfg.py_depth);
	return 0;
}

struct gc_row {
	__u32 key; /* slot << 2 | generation */
	struct es_py_gc v;
};

struct gc_rows {
	struct gc_row *r;
	size_t n, cap;
};

static void gc_take(void *arg, const void *key, const void *values, int n, size_t stride)
{
	struct gc_rows *rows = arg;
	struct gc_row *row;

	if (grow_array(&rows->r, &rows->cap, rows->n + 1, sizeof(*rows->r), 64))
		return;
	row = &rows->r[rows->n++];
	memset(row, 0, sizeof(*row));
	row->key = *(const __u32 *)key;
	for (int c = 0; c < n; c++) {
		const struct es_py_gc *g = (const void *)((const char *)values + (size_t)c * stride);

		row->v.count += g->count;
		row->v.sum_ns += g->sum_ns;
		row->v.collected += g->collected;
		for (unsigned int b = 0; b <= NGC; b++)
			row->v.buckets[b] += g->buckets[b];
	}
}

static int by_key(const void *a, const void *b)
{
	__u32 x = ((const struct gc_row *)a)->key, y = ((const struct gc_row *)b)->key;

	return x < y ? -1 : x > y;
}

static void gc_collect(struct py_priv *pp, struct expo *e)
{
	struct gc_rows rows = { 0 };
	struct slot_view sv;
	char gen[4];

	mapstats_count(pp->es, ES_MAP_PY_GC,
		       bpf_hash_foreach(pp->gc_fd, sizeof(__u32), sizeof(struct es_py_gc), true,
					gc_take, &rows));
	if (rows.n)
		qsort(rows.r, rows.n, sizeof(*rows.r), by_key);
	expo_family(e, "erpscope_python_gc_pause_seconds", EXPO_HISTOGRAM,
		    "Garbage collector pauses per worker and generation (python:gc__start/gc__done USDT; builds without these probes have none).");
	for (size_t i = 0; i < rows.n; i++) {
		const struct gc_row *r = &rows.r[i];

		if (procs_slot_view(pp->es->procs, r->key >> 2, &sv))
			continue;
		snprintf(gen, sizeof(gen), "%u", r->key & 3);
		struct expo_label l[3] = { { "role", role_name(sv.role) },
					   { "worker", sv.worker },
					   { "generation", gen } };

		expo_histogram(e, l, 3, gc_edges, (const uint64_t *)r->v.buckets, NGC, (double)r->v.sum_ns / 1e9);
	}
	expo_family(e, "erpscope_python_gc_collected_objects_total", EXPO_COUNTER,
		    "Objects the garbage collector freed, per worker.");
	for (size_t i = 0; i < rows.n;) {
		__u32 slot = rows.r[i].key >> 2;
		__u64 sum = 0;

		for (; i < rows.n && rows.r[i].key >> 2 == slot; i++)
			sum += rows.r[i].v.collected;
		if (procs_slot_view(pp->es->procs, slot, &sv))
			continue;
		struct expo_label l[2] = { { "role", role_name(sv.role) }, { "worker", sv.worker } };

		expo_sample_u64(e, l, 2, sum);
	}
	free(rows.r);
}

static const char *const stat_names[ES_PY_STAT_COUNT] = {
	[ES_PY_STAT_SAMPLES] = "samples",
	[ES_PY_STAT_NO_THREAD] = "no_thread_state",
	[ES_PY_STAT_TRUNCATED] = "truncated",
	[ES_PY_STAT_OFFCPU_WALKS] = "offcpu_walks",
	[ES_PY_STAT_OFFCPU_BUSY] = "offcpu_busy",
	[ES_PY_STAT_MAP_FULL] = "map_full",
	[ES_PY_STAT_OFFCPU_LATE] = "offcpu_late",
};

static int python_collect(struct probe *p, struct expo *e)
{
	struct py_priv *pp = p->priv;
	uint64_t v[ES_PY_STAT_COUNT] = { 0 };

	gc_collect(pp, e);

	expo_family(e, "erpscope_python_profile_events_total", EXPO_COUNTER,
		    "Python stack walks in the kernel: CPU samples of Python threads, walks without a thread state, stacks cut short, off-CPU walks, long blocks not walked because one was pending, stacks lost to a full map.");
	for (__u32 i = 0; i < ES_PY_STAT_COUNT; i++) {
		struct expo_label l = { "event", stat_names[i] };

		bpf_percpu_sum_u64(pp->stats_fd, i, &v[i]);
		expo_sample_u64(e, &l, 1, v[i]);
	}
	expo_family(e, "erpscope_python_profile_enabled", EXPO_GAUGE,
		    "1 when this kind of Python profile is being recorded.");
	{
		struct expo_label l = { "kind", "cpu" };

		expo_sample(e, &l, 1, pp->cpu_profile);
		l.value = "offcpu";
		expo_sample(e, &l, 1, pp->offcpu_profile);
	}
	py_profile_collect(pp, e);
	return 0;
}

static void python_close(struct probe *p)
{
	struct py_priv *pp = p->priv;

	if (!pp)
		return;
	procs_off_slot_reset(p->es->procs, reset_slot, pp);
	if (pp->offcpu_hooked && p->es->switch_hook_fd >= 0) {
		__u32 zero = 0;

		bpf_map_delete_elem(p->es->switch_hook_fd, &zero);
	}
	for (int cpu = 0; pp->perf_links && cpu < pp->ncpus; cpu++) {
		bpf_link__destroy(pp->perf_links[cpu]);
		if (pp->perf_fds[cpu] >= 0)
			close(pp->perf_fds[cpu]);
	}
	free(pp->perf_links);
	free(pp->perf_fds);
	if (pp->skel)
		py_trace_stop(p, pp->skel);
	py_targets_free(pp);
	intern_free(pp->names);
	reqtags_set_reader(p->es->reqtags, false);
	reqtag_map_closed(p->es, pp->skel ? pp->skel->maps.req_serving : NULL);
	python_bpf__destroy(pp->skel);
	py_profile_free(pp->prof);
	free(pp);
	p->priv = NULL;
	p->obj = NULL;
}

const struct probe_ops python_probe_ops = {
	.name = "python",
	.open = python_open,
	.attach = python_attach,
	.collect = python_collect,
	.close = python_close,
};
