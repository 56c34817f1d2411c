// SPDX-License-Identifier: GPL-2.0
/*
 * The "gpu" poller: NVIDIA devices through NVML (nvml_poll.c), other GPUs
 * through DRM fdinfo (drm.c), every --gpu.poll-interval on the main loop's
 * timer. A scrape formats what the last poll read: one table below
 * describes every family and one loop emits them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/types.h>

#include "../../bpf/procs.h"
#include "core/clock.h"
#include "core/erpscope.h"
#include "core/expo.h"
#include "core/gpu_use.h"
#include "core/poller.h"
#include "gpu/gpu.h"

struct family;
/* Writes the family's samples, or with e NULL only counts them. */
typedef unsigned int (*emit_fn)(const struct gpu_priv *g, const struct family *f, struct expo *e);

struct family {
	const char *name;
	enum expo_type type;
	const char *help;
	emit_fn emit;
	/* per-device families: the first value, and the extra label's values */
	enum gpu_val v;
	const char *label;
	const char *const *values;
	unsigned int nvalues;
	int arg;
};

static const char *const clock_names[] = { "sm", "memory" };
static const char *const ecc_names[] = { "corrected", "uncorrected" };
static const char *const reason_names[GPU_NREASONS] = {
	"gpu_idle",
	"applications_clocks_setting",
	"sw_power_cap",
	"hw_slowdown",
	"sync_boost",
	"sw_thermal_slowdown",
	"hw_thermal_slowdown",
	"hw_power_brake_slowdown",
	"display_clock_setting",
};

static bool dev_shown(const struct gpu_dev *d)
{
	return d->present && !d->lost;
}

static unsigned int emit_info(const struct gpu_priv *g, const struct family *f, struct expo *e)
{
	const struct nvml_state *nv = &g->nv;
	unsigned int n = 0;

	for (unsigned int i = 0; nv->loaded && i < nv->ndev; i++) {
		const struct gpu_dev *d = &nv->dev[i];
		struct expo_label l[5] = {
			{ "gpu", d->index },	  { "uuid", d->uuid },
			{ "name", d->name },	  { "driver_version", nv->driver },
			{ "pci_bus_id", d->pci },
		};

		if (!dev_shown(d))
			continue;
		n++;
		if (e)
			expo_sample(e, l, 5, 1);
	}
	return n;
}

static unsigned int emit_dev(const struct gpu_priv *g, const struct family *f, struct expo *e)
{
	const struct nvml_state *nv = &g->nv;
	unsigned int n = 0, nv_ = f->nvalues ? f->nvalues : 1;

	for (unsigned int i = 0; nv->loaded && i < nv->ndev; i++) {
		const struct gpu_dev *d = &nv->dev[i];
		struct expo_label l[2] = { { "gpu", d->index } };

		if (!dev_shown(d))
			continue;
		for (unsigned int k = 0; k < nv_; k++) {
			if (!d->has[f->v + k])
				continue;
			n++;
			if (!e)
				continue;
			if (f->label)
				l[1] = (struct expo_label){ f->label, f->values[k] };
			expo_sample(e, l, f->label ? 2 : 1, d->val[f->v + k]);
		}
	}
	return n;
}

/* arg 0: memory bytes, 1: SM seconds. Untracked pids sum under other/all. */
static unsigned int emit_proc(const struct gpu_priv *g, const struct family *f, struct expo *e)
{
	const struct nvml_state *nv = &g->nv;
	unsigned int n = 0;

	for (unsigned int i = 0; nv->loaded && i < nv->ndev; i++) {
		const struct gpu_dev *d = &nv->dev[i];
		struct expo_label l[3] = { { "gpu", d->index } };
		double other = f->arg ? d->other_retired : 0;

		if (!dev_shown(d) || !d->per_process)
			continue;
		for (unsigned int k = 0; k < d->nprocs; k++) {
			const struct gpu_proc *p = &d->procs[k];
			double v = f->arg ? p->sm_s : (double)p->mem;

			if (!p->tracked) {
				other += v;
				continue;
			}
			n++;
			if (!e)
				continue;
			l[1] = (struct expo_label){ "role", role_name(p->role) };
			l[2] = (struct expo_label){ "worker", p->worker };
			expo_sample(e, l, 3, v);
		}
		n++;
		if (!e)
			continue;
		l[1] = (struct expo_label){ "role", role_name(ES_ROLE_OTHER) };
		l[2] = (struct expo_label){ "worker", "all" };
		expo_sample(e, l, 3, other);
	}
	return n;
}

/* arg 0: engine seconds, 1: memory bytes by region. */
static unsigned int emit_drm(const struct gpu_priv *g, const struct family *f, struct expo *e)
{
	const struct drm_state *ds = &g->drm;
	unsigned int n = 0;

	for (unsigned int i = 0; i < ds->n; i++) {
		const struct drm_worker *dw = &ds->w[i];

		for (unsigned int k = 0; dw->pid && k < dw->acc.nseries; k++) {
			const struct drm_series *s = &dw->acc.series[k];
			struct expo_label l[5] = {
				{ "driver", s->driver },
				{ "pdev", s->pdev },
				{ f->arg ? "region" : "engine", s->name },
				{ "role", role_name(dw->role) },
				{ "worker", dw->worker },
			};

			if (s->memory != (f->arg == 1))
				continue;
			n++;
			if (e)
				expo_sample(e, l, 5,
					    f->arg ? (double)s->value : (double)s->value / 1e9);
		}
	}
	return n;
}

static unsigned int emit_up(const struct gpu_priv *g, const struct family *f, struct expo *e)
{
	struct expo_label l[1] = { { "collector", "nvml" } };
	bool nvml = g->es->cfg.gpu_nvml_library[0];

	if (e && nvml)
		expo_sample(e, l, 1, g->nv.loaded && g->nv.up);
	l[0].value = "drm";
	if (e)
		expo_sample(e, l, 1, g->drm.up);
	return 1 + nvml;
}

static unsigned int emit_errors(const struct gpu_priv *g, const struct family *f, struct expo *e)
{
	struct expo_label l[2] = { { "collector", "nvml" } };
	unsigned int n = 0;

	for (unsigned int i = 0; i < GPU_NERR; i++) {
		if (!g->nv.errors[i])
			continue;
		n++;
		l[1] = (struct expo_label){ "error", gpu_error_name(i) };
		if (e)
			expo_sample_u64(e, l, 2, g->nv.errors[i]);
	}
	l[0].value = "drm";
	for (unsigned int i = 0; i < DRM_NERR; i++) {
		if (!g->drm.errors[i])
			continue;
		n++;
		l[1] = (struct expo_label){ "error", drm_err_names[i] };
		if (e)
			expo_sample_u64(e, l, 2, g->drm.errors[i]);
	}
	return n;
}

#define DEV(name, type, help, val)                                \
	{                                                         \
		name, type, help, emit_dev, val, NULL, NULL, 0, 0 \
	}
#define DEVL(name, type, help, val, label, values)              \
	{                                                       \
		name, type, help, emit_dev, val, label, values, \
			sizeof(values) / sizeof(values[0]), 0   \
	}

static const struct family families[] = {
	{ .name = "erpscope_gpu_info",
	  .type = EXPO_GAUGE,
	  .help = "1 per NVIDIA GPU NVML reports, with its UUID, name, driver version and PCI bus id.",
	  .emit = emit_info },
	DEV("erpscope_gpu_utilization_ratio", EXPO_GAUGE,
	    "Share of the last sample period (1/6 s to 1 s, by product) in which one or more kernels ran on the GPU.",
	    GV_UTIL),
	DEV("erpscope_gpu_memory_bandwidth_utilization_ratio", EXPO_GAUGE,
	    "Share of the last sample period in which device memory was read or written.",
	    GV_MEMBW),
	DEV("erpscope_gpu_memory_used_bytes", EXPO_GAUGE,
	    "Device memory allocated (NVML's used; reserved memory excluded where the driver has nvmlDeviceGetMemoryInfo_v2).",
	    GV_MEM_USED),
	DEV("erpscope_gpu_memory_total_bytes", EXPO_GAUGE, "Device memory in all.", GV_MEM_TOTAL),
	DEV("erpscope_gpu_temperature_celsius", EXPO_GAUGE, "GPU core temperature.", GV_TEMP),
	DEV("erpscope_gpu_power_watts", EXPO_GAUGE, "Power the board draws.", GV_POWER),
	DEV("erpscope_gpu_energy_joules_total", EXPO_COUNTER,
	    "Energy the GPU used since the driver was loaded.", GV_ENERGY),
	DEVL("erpscope_gpu_clock_hertz", EXPO_GAUGE, "Current SM and memory clocks.", GV_CLOCK_SM,
	     "clock", clock_names),
	DEVL("erpscope_gpu_throttled", EXPO_GAUGE,
	     "1 while this clocks-event (throttle) reason holds the clocks down.", GV_THR_FIRST,
	     "reason", reason_names),
	DEVL("erpscope_gpu_ecc_errors_total", EXPO_COUNTER,
	     "ECC errors in device memory over the GPU's life (aggregate counts), where ECC is supported and on.",
	     GV_ECC_CORR, "type", ecc_names),
	{ "erpscope_gpu_process_memory_bytes", EXPO_GAUGE,
	  "GPU memory each worker's compute contexts hold; untracked processes sum under role=\"other\",worker=\"all\".",
	  emit_proc, .arg = 0 },
	{ "erpscope_gpu_process_sm_seconds_total", EXPO_COUNTER,
	  "SM time of each worker: NVML's per-process utilisation samples integrated over their periods.",
	  emit_proc, .arg = 1 },
	{ "erpscope_gpu_engine_seconds_total", EXPO_COUNTER,
	  "Time each tracked worker's DRM clients kept an engine busy (drm-engine-<engine>, or xe's cycle counters).",
	  emit_drm, .arg = 0 },
	{ "erpscope_gpu_client_memory_bytes", EXPO_GAUGE,
	  "Memory each tracked worker's DRM clients hold resident in a region (drm-resident-<region>, else drm-total-<region>).",
	  emit_drm, .arg = 1 },
	{ .name = "erpscope_gpu_collector_up",
	  .type = EXPO_GAUGE,
	  .help = "1 when the collector read every device it knows at the last poll: nvml (library loaded, a device found, none lost), drm.",
	  .emit = emit_up },
	{ .name = "erpscope_gpu_collector_errors_total",
	  .type = EXPO_COUNTER,
	  .help = "Failed calls by collector and error: NVML's error names (LIBRARY_NOT_FOUND, GPU_IS_LOST, ...), or read/parse for drm.",
	  .emit = emit_errors },
};

static void publish_use(struct gpu_priv *g)
{
	struct gpu_use_table *t = &g->es->gpu_use;
	const struct nvml_state *nv = &g->nv;
	char name[3 * DRM_NAME_MAX];

	gpu_use_clear(t);
	for (unsigned int i = 0; nv->loaded && i < nv->ndev; i++) {
		const struct gpu_dev *d = &nv->dev[i];

		for (unsigned int k = 0; dev_shown(d) && k < d->nprocs; k++) {
			const struct gpu_proc *p = &d->procs[k];

			if (p->tracked && (p->mem || p->sm_poll > 0))
				gpu_use_add(t, p->pid, d->index, p->mem,
					    d->span_s > 0 ? p->sm_poll / d->span_s : -1);
		}
	}
	for (unsigned int i = 0; i < g->drm.n; i++) {
		const struct drm_worker *dw = &g->drm.w[i];

		for (unsigned int k = 0; dw->pid && k < dw->acc.nseries; k++) {
			const struct drm_series *s = &dw->acc.series[k];

			if (!s->memory || !s->value)
				continue;
			snprintf(name, sizeof(name), "%s %s %s", s->driver, s->pdev, s->name);
			gpu_use_add(t, dw->pid, name, s->value, -1);
		}
	}
}

static int gpu_init(struct poller *pl)
{
	struct gpu_priv *g = calloc(1, sizeof(*g));
	int err;

	if (!g)
		return -ENOMEM;
	g->es = pl->es;
	pl->priv = g;
	pl->interval_ms = pl->es->cfg.gpu_poll_ms;
	gpu_nvml_init(g);
	err = gpu_drm_init(g);
	if (err) {
		gpu_drm_free(g);
		free(g);
		pl->priv = NULL;
	}
	return err;
}

static void gpu_tick(struct poller *pl, uint64_t now_ms)
{
	struct gpu_priv *g = pl->priv;

	gpu_nvml_tick(g, now_ms);
	gpu_drm_tick(g, clock_ns());
	publish_use(g);
}

static void gpu_collect(struct poller *pl, struct expo *e)
{
	const struct gpu_priv *g = pl->priv;

	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		const struct family *f = &families[i];

		if (!f->emit(g, f, NULL))
			continue;
		expo_family(e, f->name, f->type, f->help);
		f->emit(g, f, e);
	}
}

static void gpu_free(struct poller *pl)
{
	struct gpu_priv *g = pl->priv;

	if (!g)
		return;
	gpu_nvml_free(g);
	gpu_drm_free(g);
	gpu_use_free(&g->es->gpu_use);
	free(g);
	pl->priv = NULL;
}

const struct poller_ops gpu_poller_ops = {
	.name = "gpu",
	.interval_ms = 5000,
	.init = gpu_init,
	.tick = gpu_tick,
	.collect = gpu_collect,
	.free = gpu_free,
};

const char *gpu_reason_name(unsigned int i)
{
	return i < GPU_NREASONS ? reason_names[i] : "";
}

int gpu_devices(struct erpscope *es, gpu_dev_fn fn, void *arg)
{
	const struct gpu_priv *g = NULL;

	for (int i = 0; i < es->npollers; i++)
		if (es->pollers[i].ops == &gpu_poller_ops && es->pollers[i].up)
			g = es->pollers[i].priv;
	if (!g)
		return -ENODEV;
	for (unsigned int i = 0; i < g->nv.ndev; i++) {
		const struct gpu_dev *d = &g->nv.dev[i];
		struct gpu_dev_view v = { .index = d->index, .name = d->name };

		if (!dev_shown(d))
			continue;
		v.mem_known = d->has[GV_MEM_USED] && d->has[GV_MEM_TOTAL] && d->val[GV_MEM_TOTAL] > 0;
		v.mem_used = d->val[GV_MEM_USED];
		v.mem_total = d->val[GV_MEM_TOTAL];
		v.util_known = d->has[GV_UTIL];
		v.util = d->val[GV_UTIL];
		for (unsigned int r = 0; r < GPU_NREASONS; r++)
			if (d->has[GV_THR_FIRST + r] && d->val[GV_THR_FIRST + r] > 0)
				v.reasons |= 1u << r;
		fn(arg, &v);
	}
	return 0;
}
