/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The gpu poller's state, shared by its files: NVML devices and their
 * processes (nvml_poll.c), DRM clients of tracked workers (drm.c), and the
 * poller ops with the metric tables (gpu.c).
 */
#ifndef ERPSCOPE_GPU_GPU_H
#define ERPSCOPE_GPU_GPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "gpu/drm_fdinfo.h"
#include "gpu/nvml.h"
#include "procs/title.h"

#define GPU_MAX_DEVICES 16
#define GPU_RETRY_MS 60000 /* a missing or failed library is tried again this often */
#define GPU_PROC_KEEP_MS 60000 /* an untracked pid off the GPU this long is forgotten */
#define GPU_NREASONS 9 /* clocks event (throttle) reasons exported */
#define GPU_NERR 31 /* NVML error codes 0..29, then UNKNOWN */

/* Per-device values, one per exported sample (see the table in gpu.c). */
enum gpu_val {
	GV_UTIL,
	GV_MEMBW,
	GV_MEM_USED,
	GV_MEM_TOTAL,
	GV_TEMP,
	GV_POWER,
	GV_ENERGY,
	GV_CLOCK_SM,
	GV_CLOCK_MEM,
	GV_ECC_CORR,
	GV_ECC_UNCORR,
	GV_THR_FIRST,
	GV_COUNT = GV_THR_FIRST + GPU_NREASONS,
};

/* NVML calls a device may not support: skipped for that device once it says so. */
enum gpu_call {
	GC_UTIL,
	GC_MEM,
	GC_TEMP,
	GC_POWER,
	GC_ENERGY,
	GC_CLOCK_SM,
	GC_CLOCK_MEM,
	GC_REASONS,
	GC_ECC_CORR,
	GC_ECC_UNCORR,
	GC_PROCS,
	GC_PUTIL,
	GC_COUNT,
};

/* One process seen on a device: a tracked worker, or an untracked pid summed under other. */
struct gpu_proc {
	__u32 pid;
	bool tracked;
	__u64 starttime;
	enum es_role role;
	char worker[16];
	uint64_t mem; /* bytes, at the last poll (0 when off the list) */
	double sm_s; /* SM seconds integrated from utilisation samples */
	double sm_poll; /* of which the last poll added */
	uint64_t last_ts; /* µs of its last sample counted */
	uint64_t seen_ms; /* last poll it was listed or sampled in */
};

struct gpu_dev {
	nvml_dev h;
	char index[12], uuid[96], name[96], pci[32];
	bool present; /* enumerated by the current library session */
	bool lost; /* GPU_IS_LOST: no series until the library is reloaded */
	bool has[GV_COUNT];
	double val[GV_COUNT];
	uint32_t skip; /* 1 << enum gpu_call: not supported here */
	uint64_t last_seen; /* µs: newest process sample counted (NVML's lastSeenTimeStamp) */
	double span_s; /* what the last poll's samples covered */
	bool per_process; /* the process list or samples answered */
	struct gpu_proc *procs;
	unsigned int nprocs;
	size_t cap;
	double other_retired; /* SM seconds of untracked pids forgotten since */
};

struct nvml_state {
	struct nvml_lib lib;
	bool loaded; /* opened, initialised, devices enumerated */
	bool up;
	int last_cause; /* the failure last logged at info; -1: none */
	char driver[80];
	unsigned int ndev;
	struct gpu_dev dev[GPU_MAX_DEVICES];
	uint64_t next_retry_ms;
	uint64_t errors[GPU_NERR];
	struct nvml_process_info *pbuf;
	unsigned int pcap;
	struct nvml_process_sample *sbuf;
	unsigned int scap;
	struct nvml_process_util_info *ibuf;
	unsigned int icap;
};

enum drm_err { DRM_ERR_READ, DRM_ERR_PARSE, DRM_NERR };

/* A tracked worker's DRM descriptors, found at discovery and on each rescan. */
struct drm_worker {
	__u32 pid;
	__u64 starttime;
	uint64_t seen_scan; /* procs' scan generation when its fds were listed */
	bool listed, seen;
	enum es_role role;
	char worker[16];
	int *fds;
	unsigned int nfds;
	size_t capfds;
	struct drm_acc acc;
};

struct drm_state {
	struct drm_worker *w; /* [n]: index = slot - ES_SLOT_FIRST_WORKER */
	unsigned int n;
	bool up;
	uint64_t errors[DRM_NERR];
	char *buf;
};

struct erpscope;

struct gpu_priv {
	struct erpscope *es;
	struct nvml_state nv;
	struct drm_state drm;
};

/*
 * A device as other capabilities (user/diagnose) read it: the last poll's
 * memory, utilisation and the throttle reasons holding its clocks down now
 * (bit i: reason i of erpscope_gpu_throttled). Valid during the call.
 */
struct gpu_dev_view {
	const char *index, *name;
	bool mem_known, util_known;
	double mem_used, mem_total; /* bytes */
	double util;                /* 0..1 */
	uint32_t reasons;
};
typedef void (*gpu_dev_fn)(void *arg, const struct gpu_dev_view *v);
/* Calls fn for each NVML device shown. 0, or -ENODEV when the gpu poller is down. */
int gpu_devices(struct erpscope *es, gpu_dev_fn fn, void *arg);
/* The name of throttle reason i (< GPU_NREASONS), as erpscope_gpu_throttled's label. */
const char *gpu_reason_name(unsigned int i);

/* nvml_poll.c */
void gpu_nvml_init(struct gpu_priv *g);
void gpu_nvml_tick(struct gpu_priv *g, uint64_t now_ms);
void gpu_nvml_free(struct gpu_priv *g);
const char *gpu_error_name(unsigned int i);

/* drm.c */
int gpu_drm_init(struct gpu_priv *g);
void gpu_drm_tick(struct gpu_priv *g, uint64_t now_ns);
void gpu_drm_free(struct gpu_priv *g);
extern const char *const drm_err_names[DRM_NERR];

#endif
