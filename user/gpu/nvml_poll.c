// SPDX-License-Identifier: GPL-2.0
/*
 * The NVML collector: loads the library (retried every GPU_RETRY_MS while it
 * is missing, fails, finds no device or lost one), reads each device's
 * values, and joins its processes to the worker table. A call a device
 * answers NOT_SUPPORTED is skipped for that device from then on.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/types.h>

#include "../../bpf/procs.h"
#include "core/erpscope.h"
#include "core/grow.h"
#include "core/log.h"
#include "gpu/gpu.h"
#include "procs/proctable.h"

static const char *const call_names[GC_COUNT] = {
	[GC_UTIL] = "utilization",	  [GC_MEM] = "memory",
	[GC_TEMP] = "temperature",	  [GC_POWER] = "power",
	[GC_ENERGY] = "energy",		  [GC_CLOCK_SM] = "clock_sm",
	[GC_CLOCK_MEM] = "clock_memory",  [GC_REASONS] = "clocks_event_reasons",
	[GC_ECC_CORR] = "ecc_corrected",  [GC_ECC_UNCORR] = "ecc_uncorrected",
	[GC_PROCS] = "compute_processes", [GC_PUTIL] = "process_utilization",
};

static unsigned int err_index(nvml_ret rc)
{
	return rc >= 0 && rc < GPU_NERR - 1 ? (unsigned int)rc : GPU_NERR - 1;
}

const char *gpu_error_name(unsigned int i)
{
	return i < GPU_NERR - 1 ? nvml_error_name((nvml_ret)i) : "UNKNOWN";
}

void gpu_nvml_init(struct gpu_priv *g)
{
	g->nv.last_cause = -1;
}

/* One line at info when the cause changes; the retries after it at debug. */
static void fail(struct gpu_priv *g, nvml_ret rc, const char *what, const char *why,
		 uint64_t now_ms)
{
	struct nvml_state *nv = &g->nv;
	char q[256], lq[300];

	nv->errors[err_index(rc)]++;
	nv->up = false;
	nv->next_retry_ms = now_ms + GPU_RETRY_MS;
	log_quote(q, sizeof(q), why ? why : "");
	log_quote(lq, sizeof(lq), g->es->cfg.gpu_nvml_library);
	log_kv(nv->last_cause == rc ? LOG_DEBUG : LOG_INFO, "gpu: NVML not available",
	       "collector=nvml cause=%s step=%s library=%s detail=%s retry_in=%us",
	       nvml_error_name(rc), what, lq, q, GPU_RETRY_MS / 1000);
	nv->last_cause = rc;
}

/*
 * Describes device i into *d. A device an earlier session knew (same UUID)
 * keeps its process counters and energy, so no counter goes back.
 */
static void enumerate(struct nvml_state *nv, struct gpu_dev *old, unsigned int nold, unsigned int i,
		      nvml_dev h, struct gpu_dev *d)
{
	struct nvml_lib *l = &nv->lib;
	struct nvml_pci_info pci;

	memset(d, 0, sizeof(*d));
	d->h = h;
	d->present = true;
	snprintf(d->index, sizeof(d->index), "%u", i);
	if (!l->uuid || l->uuid(h, d->uuid, sizeof(d->uuid)))
		d->uuid[0] = '\0';
	if (!l->name || l->name(h, d->name, sizeof(d->name)))
		snprintf(d->name, sizeof(d->name), "unknown");
	memset(&pci, 0, sizeof(pci));
	if (l->pci_info && !l->pci_info(h, &pci)) {
		pci.bus_id[sizeof(pci.bus_id) - 1] = '\0';
		pci.bus_id_legacy[sizeof(pci.bus_id_legacy) - 1] = '\0';
		snprintf(d->pci, sizeof(d->pci), "%s",
			 pci.bus_id[0] ? pci.bus_id : pci.bus_id_legacy);
	}
	for (unsigned int k = 0; k < nold && d->uuid[0]; k++) {
		struct gpu_dev *o = &old[k];

		if (strcmp(o->uuid, d->uuid))
			continue;
		d->procs = o->procs;
		d->nprocs = o->nprocs;
		d->cap = o->cap;
		d->other_retired = o->other_retired;
		d->val[GV_ENERGY] = o->val[GV_ENERGY];
		for (unsigned int j = 0; j < d->nprocs; j++)
			d->procs[j].last_ts = 0;
		o->procs = NULL;
		o->uuid[0] = '\0';
		break;
	}
}

static void unload(struct nvml_state *nv)
{
	nvml_close(&nv->lib, nv->loaded);
	nv->loaded = false;
	for (unsigned int i = 0; i < nv->ndev; i++)
		nv->dev[i].present = false;
}

static void load(struct gpu_priv *g, uint64_t now_ms)
{
	struct nvml_state *nv = &g->nv;
	struct nvml_lib *l = &nv->lib;
	unsigned int count = 0, n = 0, nold;
	struct gpu_dev *old;
	char why[256];
	nvml_ret rc;

	rc = nvml_open(l, g->es->cfg.gpu_nvml_library, why, sizeof(why));
	if (rc) {
		fail(g, rc, "dlopen", why, now_ms);
		return;
	}
	rc = nvml_start(l);
	if (rc) {
		snprintf(why, sizeof(why), "%s", l->error_string ? l->error_string(rc) : "");
		nvml_close(l, 0);
		fail(g, rc, "init", why, now_ms);
		return;
	}
	nv->loaded = true;
	if (!l->driver_version || l->driver_version(nv->driver, sizeof(nv->driver)))
		snprintf(nv->driver, sizeof(nv->driver), "unknown");
	rc = l->count(&count);
	if (!rc && !count)
		rc = NVML_ERR_GPU_NOT_FOUND;
	if (rc) {
		unload(nv);
		fail(g, rc, "device_count", rc == NVML_ERR_GPU_NOT_FOUND ? "no device" : "",
		     now_ms);
		return;
	}
	old = malloc(sizeof(nv->dev));
	if (!old) {
		unload(nv);
		fail(g, NVML_ERR_UNKNOWN, "enumerate", "out of memory", now_ms);
		return;
	}
	memcpy(old, nv->dev, sizeof(nv->dev));
	nold = nv->ndev;
	for (unsigned int i = 0; i < count && n < GPU_MAX_DEVICES; i++) {
		nvml_dev h;

		rc = l->handle_by_index(i, &h);
		if (rc) {
			nv->errors[err_index(rc)]++;
			log_warn("gpu: device not usable", "collector=nvml gpu=%u cause=%s", i,
				 nvml_error_name(rc));
			continue;
		}
		enumerate(nv, old, nold, i, h, &nv->dev[n++]);
	}
	for (unsigned int i = 0; i < nold; i++)
		free(old[i].procs); /* devices that did not come back */
	free(old);
	for (unsigned int i = n; i < GPU_MAX_DEVICES; i++)
		memset(&nv->dev[i], 0, sizeof(nv->dev[i]));
	nv->ndev = n;
	if (!n) {
		unload(nv);
		fail(g, NVML_ERR_GPU_NOT_FOUND, "device_handle", "no usable device", now_ms);
		return;
	}
	nv->up = true;
	nv->last_cause = -1;
	log_info("gpu: NVML up", "collector=nvml devices=%u driver_version=%s", n, nv->driver);
}

/* Whether the call's answer can be used; counts and logs what went wrong. */
static bool answered(struct gpu_priv *g, struct gpu_dev *d, enum gpu_call c, nvml_ret rc)
{
	if (rc == NVML_OK)
		return true;
	if (rc == NVML_ERR_NOT_SUPPORTED || rc == NVML_ERR_FUNCTION_NOT_FOUND) {
		d->skip |= 1u << c;
		log_debug("gpu: call not supported by the device, skipped from now on",
			  "collector=nvml gpu=%s call=%s", d->index, call_names[c]);
		return false;
	}
	g->nv.errors[err_index(rc)]++;
	if (rc == NVML_ERR_GPU_IS_LOST && !d->lost) {
		d->lost = true;
		log_warn(
			"gpu: device lost, its series stop until the library is reloaded",
			"collector=nvml cause=GPU_IS_LOST gpu=%s uuid=%s pci_bus_id=%s retry_in=%us",
			d->index, d->uuid, d->pci, GPU_RETRY_MS / 1000);
	}
	return false;
}

#define CALL(g, d, c, fn, ...)                       \
	(!((d)->skip & (1u << (c))) && !(d)->lost && \
	 answered(g, d, c, (fn) ? (fn)((d)->h, __VA_ARGS__) : NVML_ERR_FUNCTION_NOT_FOUND))

static void set(struct gpu_dev *d, enum gpu_val v, double x)
{
	d->val[v] = x;
	d->has[v] = true;
}

static const unsigned long long reason_bits[GPU_NREASONS] = {
	0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40, 0x80, 0x100,
};

static void poll_values(struct gpu_priv *g, struct gpu_dev *d)
{
	struct nvml_lib *l = &g->nv.lib;
	struct nvml_utilization u;
	struct nvml_memory_v2 m2 = { .version = NVML_STRUCT_VERSION(sizeof(m2), 2) };
	struct nvml_memory m1;
	unsigned long long ull;
	unsigned int ui;
	bool mem2 = false;

	memset(d->has, 0, sizeof(d->has));
	if (CALL(g, d, GC_UTIL, l->utilization, &u)) {
		set(d, GV_UTIL, u.gpu / 100.0);
		set(d, GV_MEMBW, u.memory / 100.0);
	}
	/* _v2 first (used excludes reserved memory), v1 where it is missing or refused */
	if (l->memory_v2 && !(d->skip & (1u << GC_MEM)) && !d->lost) {
		nvml_ret rc = l->memory_v2(d->h, &m2);

		mem2 = !rc;
		if (rc && rc != NVML_ERR_NOT_SUPPORTED && rc != 25 /* ARGUMENT_VERSION_MISMATCH */)
			answered(g, d, GC_MEM, rc);
	}
	if (mem2) {
		set(d, GV_MEM_USED, (double)m2.used);
		set(d, GV_MEM_TOTAL, (double)m2.total);
	} else if (CALL(g, d, GC_MEM, l->memory, &m1)) {
		set(d, GV_MEM_USED, (double)m1.used);
		set(d, GV_MEM_TOTAL, (double)m1.total);
	}
	if (CALL(g, d, GC_TEMP, l->temperature, NVML_TEMPERATURE_GPU, &ui))
		set(d, GV_TEMP, ui);
	if (CALL(g, d, GC_POWER, l->power, &ui))
		set(d, GV_POWER, ui / 1000.0);
	if (CALL(g, d, GC_ENERGY, l->energy, &ull)) {
		double j = (double)ull / 1000.0;

		/* a driver reload restarts NVML's count: the counter holds until it passes */
		set(d, GV_ENERGY, j > d->val[GV_ENERGY] ? j : d->val[GV_ENERGY]);
	}
	if (CALL(g, d, GC_CLOCK_SM, l->clock, NVML_CLOCK_SM, &ui))
		set(d, GV_CLOCK_SM, ui * 1e6);
	if (CALL(g, d, GC_CLOCK_MEM, l->clock, NVML_CLOCK_MEM, &ui))
		set(d, GV_CLOCK_MEM, ui * 1e6);
	if (CALL(g, d, GC_REASONS, l->clock_reasons, &ull)) {
		for (int r = 0; r < GPU_NREASONS; r++)
			set(d, GV_THR_FIRST + r, (ull & reason_bits[r]) ? 1 : 0);
	}
	if (CALL(g, d, GC_ECC_CORR, l->ecc, NVML_MEMORY_ERROR_CORRECTED, NVML_AGGREGATE_ECC, &ull))
		set(d, GV_ECC_CORR, (double)ull);
	if (CALL(g, d, GC_ECC_UNCORR, l->ecc, NVML_MEMORY_ERROR_UNCORRECTED, NVML_AGGREGATE_ECC,
		 &ull))
		set(d, GV_ECC_UNCORR, (double)ull);
}

static struct gpu_proc *proc_of(struct gpu_dev *d, __u32 pid, uint64_t now_ms)
{
	struct gpu_proc *p;

	for (unsigned int i = 0; i < d->nprocs; i++) {
		if (d->procs[i].pid == pid) {
			d->procs[i].seen_ms = now_ms;
			return &d->procs[i];
		}
	}
	if (grow_array(&d->procs, &d->cap, (size_t)d->nprocs + 1, sizeof(*d->procs), 8))
		return NULL;
	p = &d->procs[d->nprocs++];
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->seen_ms = now_ms;
	return p;
}

/* size-then-fill: a buffer kept between polls, grown when NVML says INSUFFICIENT_SIZE */
static int grow(void **buf, unsigned int *cap, unsigned int want, size_t elem)
{
	void *v;

	if (want <= *cap)
		return 0;
	want += 8; /* room for processes that start between the two calls */
	v = realloc(*buf, want * elem);
	if (!v)
		return -ENOMEM;
	*buf = v;
	*cap = want;
	return 0;
}

static void poll_process_list(struct gpu_priv *g, struct gpu_dev *d, uint64_t now_ms)
{
	struct nvml_state *nv = &g->nv;
	nvml_ret rc = NVML_ERR_INSUFFICIENT_SIZE;
	unsigned int n = 0;

	if ((d->skip & (1u << GC_PROCS)) || d->lost)
		return;
	for (int tries = 0; tries < 3 && rc == NVML_ERR_INSUFFICIENT_SIZE; tries++) {
		n = nv->pcap;
		rc = nv->lib.compute_procs ?
			     nv->lib.compute_procs(d->h, &n, nv->pcap ? nv->pbuf : NULL) :
			     NVML_ERR_FUNCTION_NOT_FOUND;
		if (rc == NVML_ERR_INSUFFICIENT_SIZE &&
		    grow((void **)&nv->pbuf, &nv->pcap, n, sizeof(*nv->pbuf)))
			return;
	}
	if (!answered(g, d, GC_PROCS, rc))
		return;
	d->per_process = true;
	for (unsigned int i = 0; i < n && i < nv->pcap; i++) {
		struct gpu_proc *p = proc_of(d, nv->pbuf[i].pid, now_ms);

		/* NVML_VALUE_NOT_AVAILABLE (all ones) where the driver cannot tell */
		if (p && nv->pbuf[i].used_gpu_memory != ~0ull)
			p->mem += nv->pbuf[i].used_gpu_memory;
	}
}

/* Samples into sbuf (the older call's layout) whichever call answered. Returns the count. */
static int read_samples(struct gpu_priv *g, struct gpu_dev *d)
{
	struct nvml_state *nv = &g->nv;
	struct nvml_lib *l = &nv->lib;
	nvml_ret rc = NVML_ERR_INSUFFICIENT_SIZE;
	unsigned int n = 0;

	for (int tries = 0; tries < 3 && rc == NVML_ERR_INSUFFICIENT_SIZE; tries++) {
		if (l->procs_util_info) {
			struct nvml_processes_util_info info = {
				.version = NVML_STRUCT_VERSION(sizeof(info), 1),
				.count = nv->icap,
				.last_seen = d->last_seen,
				.samples = nv->icap ? nv->ibuf : NULL,
			};

			rc = l->procs_util_info(d->h, &info);
			n = info.count;
			if (rc == NVML_ERR_INSUFFICIENT_SIZE &&
			    grow((void **)&nv->ibuf, &nv->icap, n, sizeof(*nv->ibuf)))
				return -ENOMEM;
		} else if (l->proc_util) {
			n = nv->scap;
			rc = l->proc_util(d->h, nv->scap ? nv->sbuf : NULL, &n, d->last_seen);
			if (rc == NVML_ERR_INSUFFICIENT_SIZE &&
			    grow((void **)&nv->sbuf, &nv->scap, n, sizeof(*nv->sbuf)))
				return -ENOMEM;
		} else {
			rc = NVML_ERR_FUNCTION_NOT_FOUND;
		}
	}
	if (rc == NVML_ERR_NOT_FOUND || rc == NVML_ERR_NO_DATA)
		return 0; /* no sample since last_seen */
	if (!answered(g, d, GC_PUTIL, rc))
		return -EIO;
	if (l->procs_util_info) {
		if (grow((void **)&nv->sbuf, &nv->scap, n, sizeof(*nv->sbuf)))
			return -ENOMEM;
		for (unsigned int i = 0; i < n && i < nv->icap; i++) {
			nv->sbuf[i] = (struct nvml_process_sample){
				.pid = nv->ibuf[i].pid,
				.timestamp = nv->ibuf[i].timestamp,
				.sm_util = nv->ibuf[i].sm_util,
			};
		}
		return (int)(n < nv->icap ? n : nv->icap);
	}
	return (int)(n < nv->scap ? n : nv->scap);
}

static int by_pid_ts(const void *a, const void *b)
{
	const struct nvml_process_sample *x = a, *y = b;

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->timestamp < y->timestamp ? -1 : x->timestamp > y->timestamp;
}

/*
 * Each sample is a process's SM share over the period ending at its stamp:
 * from its previous sample, or from the device's last seen stamp when that is
 * later. The device's newest stamp is handed back as lastSeenTimeStamp, so a
 * sample is counted once; the first poll of a session only primes it.
 */
static void poll_samples(struct gpu_priv *g, struct gpu_dev *d, uint64_t now_ms)
{
	struct nvml_process_sample *s;
	uint64_t prev = d->last_seen, newest = prev;
	int n;

	d->span_s = 0;
	if ((d->skip & (1u << GC_PUTIL)) || d->lost)
		return;
	n = read_samples(g, d);
	if (n <= 0)
		return;
	s = g->nv.sbuf; /* read_samples() may have moved it */
	d->per_process = true;
	qsort(s, (size_t)n, sizeof(*s), by_pid_ts);
	for (int i = 0; i < n; i++) {
		struct gpu_proc *p;
		uint64_t base;

		if (s[i].timestamp <= prev)
			continue; /* counted at an earlier poll */
		if (s[i].timestamp > newest)
			newest = s[i].timestamp;
		p = proc_of(d, s[i].pid, now_ms);
		if (!p)
			continue;
		base = p->last_ts > prev ? p->last_ts : prev;
		if (prev && s[i].timestamp > base) {
			double add = (s[i].sm_util > 100 ? 100 : s[i].sm_util) / 100.0 *
				     (double)(s[i].timestamp - base) / 1e6;

			p->sm_s += add;
			p->sm_poll += add;
		}
		p->last_ts = s[i].timestamp;
	}
	if (prev)
		d->span_s = (double)(newest - prev) / 1e6;
	d->last_seen = newest;
}

/*
 * Names each pid by the worker table. Time an untracked pid counted moves
 * to other_retired when it becomes a worker or is forgotten, so the other
 * series never goes back; a worker's series leave with it.
 */
static void resolve(struct gpu_priv *g, struct gpu_dev *d, uint64_t now_ms)
{
	for (unsigned int i = 0; i < d->nprocs;) {
		struct gpu_proc *p = &d->procs[i];
		const struct worker *w = procs_lookup(g->es->procs, p->pid);
		bool live = w && !w->exited;

		if (live && (!p->tracked || p->starttime != w->starttime)) {
			if (!p->tracked)
				d->other_retired += p->sm_s;
			p->sm_s = p->sm_poll = 0;
			p->tracked = true;
			p->starttime = w->starttime;
			p->role = w->role;
			snprintf(p->worker, sizeof(p->worker), "%s", w->label);
		} else if (!live && p->tracked) {
			p->tracked = false; /* gone: its series go with it */
			p->sm_s = p->sm_poll = 0;
		}
		if (live)
			p->role = w->role;
		if (!p->tracked && now_ms - p->seen_ms > GPU_PROC_KEEP_MS) {
			d->other_retired += p->sm_s;
			d->procs[i] = d->procs[--d->nprocs];
			continue;
		}
		i++;
	}
}

void gpu_nvml_tick(struct gpu_priv *g, uint64_t now_ms)
{
	struct nvml_state *nv = &g->nv;
	bool lost = false;

	if (!g->es->cfg.gpu_nvml_library[0])
		return; /* --gpu.nvml-library="" turns NVML off */
	if (nv->loaded && !nv->up && now_ms >= nv->next_retry_ms)
		unload(nv); /* a device was lost: start a new session */
	if (!nv->loaded) {
		if (now_ms < nv->next_retry_ms)
			return;
		load(g, now_ms);
		if (!nv->loaded)
			return;
	}
	for (unsigned int i = 0; i < nv->ndev; i++) {
		struct gpu_dev *d = &nv->dev[i];

		for (unsigned int k = 0; k < d->nprocs; k++) {
			d->procs[k].mem = 0;
			d->procs[k].sm_poll = 0;
		}
		if (!d->lost)
			poll_values(g, d);
		poll_process_list(g, d, now_ms);
		poll_samples(g, d, now_ms);
		resolve(g, d, now_ms);
		lost |= d->lost;
	}
	if (lost && nv->up) {
		nv->up = false;
		nv->next_retry_ms = now_ms + GPU_RETRY_MS;
	}
}

void gpu_nvml_free(struct gpu_priv *g)
{
	struct nvml_state *nv = &g->nv;

	unload(nv);
	for (unsigned int i = 0; i < GPU_MAX_DEVICES; i++)
		free(nv->dev[i].procs);
	free(nv->pbuf);
	free(nv->sbuf);
	free(nv->ibuf);
	memset(nv, 0, sizeof(*nv));
}
