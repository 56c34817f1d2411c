/* SPDX-License-Identifier: GPL-2.0 */
/*
 * NVIDIA's management library, loaded at run time with dlopen: no build-time
 * dependency on NVIDIA's headers or libraries. The few types used are
 * declared here from NVIDIA's published API (nvml.h, as nvidia-ml-py mirrors
 * it); each symbol is resolved on its own, with fallbacks between versioned
 * names, and a symbol the library lacks leaves its pointer NULL.
 */
#ifndef ERPSCOPE_GPU_NVML_H
#define ERPSCOPE_GPU_NVML_H

#include <stddef.h>

typedef int nvml_ret; /* nvmlReturn_t */
typedef struct nvml_device_st *nvml_dev; /* nvmlDevice_t */

enum {
	NVML_OK = 0,
	NVML_ERR_UNINITIALIZED = 1,
	NVML_ERR_NOT_SUPPORTED = 3,
	NVML_ERR_NOT_FOUND = 6,
	NVML_ERR_INSUFFICIENT_SIZE = 7,
	NVML_ERR_DRIVER_NOT_LOADED = 9,
	NVML_ERR_LIBRARY_NOT_FOUND = 12,
	NVML_ERR_FUNCTION_NOT_FOUND = 13,
	NVML_ERR_GPU_IS_LOST = 15,
	NVML_ERR_LIB_RM_VERSION_MISMATCH = 18,
	NVML_ERR_NO_DATA = 21,
	NVML_ERR_GPU_NOT_FOUND = 28,
	NVML_ERR_UNKNOWN = 999,
};

#define NVML_INIT_FLAG_NO_GPUS 1u
#define NVML_TEMPERATURE_GPU 0
#define NVML_CLOCK_SM 1
#define NVML_CLOCK_MEM 2
#define NVML_MEMORY_ERROR_CORRECTED 0
#define NVML_MEMORY_ERROR_UNCORRECTED 1
#define NVML_VOLATILE_ECC 0
#define NVML_AGGREGATE_ECC 1
#define NVML_STRUCT_VERSION(size, ver) ((unsigned int)(size) | ((unsigned int)(ver) << 24))

struct nvml_pci_info { /* nvmlPciInfo_t (v3) */
	char bus_id_legacy[16];
	unsigned int domain, bus, device, pci_device_id, pci_subsystem_id;
	char bus_id[32];
};

struct nvml_utilization { /* nvmlUtilization_t: percent over the last sample period */
	unsigned int gpu, memory;
};

struct nvml_memory { /* nvmlMemory_t */
	unsigned long long total, free, used;
};

struct nvml_memory_v2 { /* nvmlMemory_v2_t */
	unsigned int version;
	unsigned long long total, reserved, free, used;
};

/* nvmlProcessInfo_v2_t: what both _v2 and _v3 of the running-process calls fill. */
struct nvml_process_info {
	unsigned int pid;
	unsigned long long used_gpu_memory;
	unsigned int gpu_instance_id, compute_instance_id;
};

struct nvml_process_sample { /* nvmlProcessUtilizationSample_t */
	unsigned int pid;
	unsigned long long timestamp; /* µs, CLOCK_REALTIME */
	unsigned int sm_util, mem_util, enc_util, dec_util;
};

struct nvml_process_util_info { /* nvmlProcessUtilizationInfo_v1_t */
	unsigned long long timestamp;
	unsigned int pid, sm_util, mem_util, enc_util, dec_util, jpg_util, ofa_util;
};

struct nvml_processes_util_info { /* nvmlProcessesUtilizationInfo_v1_t */
	unsigned int version;
	unsigned int count;
	unsigned long long last_seen;
	struct nvml_process_util_info *samples;
};

_Static_assert(sizeof(struct nvml_pci_info) == 68, "nvmlPciInfo_t is 68 bytes");
_Static_assert(sizeof(struct nvml_memory_v2) == 40, "nvmlMemory_v2_t is 40 bytes");
_Static_assert(sizeof(struct nvml_process_info) == 24, "nvmlProcessInfo_v2_t is 24 bytes");
_Static_assert(sizeof(struct nvml_process_sample) == 32, "nvmlProcessUtilizationSample_t");
_Static_assert(sizeof(struct nvml_process_util_info) == 40, "nvmlProcessUtilizationInfo_v1_t");
_Static_assert(sizeof(struct nvml_processes_util_info) == 24, "nvmlProcessesUtilizationInfo_v1_t");

/* The library and what it offers; NULL for a symbol it does not have. */
struct nvml_lib {
	void *handle;
	nvml_ret (*init)(void); /* nvmlInit_v2 or nvmlInit */
	nvml_ret (*init_flags)(unsigned int); /* nvmlInitWithFlags */
	nvml_ret (*shutdown)(void);
	const char *(*error_string)(nvml_ret);
	nvml_ret (*driver_version)(char *, unsigned int);
	nvml_ret (*count)(unsigned int *);
	nvml_ret (*handle_by_index)(unsigned int, nvml_dev *);
	nvml_ret (*name)(nvml_dev, char *, unsigned int);
	nvml_ret (*uuid)(nvml_dev, char *, unsigned int);
	nvml_ret (*pci_info)(nvml_dev, struct nvml_pci_info *);
	nvml_ret (*utilization)(nvml_dev, struct nvml_utilization *);
	nvml_ret (*memory_v2)(nvml_dev, struct nvml_memory_v2 *);
	nvml_ret (*memory)(nvml_dev, struct nvml_memory *);
	nvml_ret (*temperature)(nvml_dev, int, unsigned int *);
	nvml_ret (*power)(nvml_dev, unsigned int *); /* mW */
	nvml_ret (*energy)(nvml_dev, unsigned long long *); /* mJ */
	nvml_ret (*clock)(nvml_dev, int, unsigned int *); /* MHz */
	nvml_ret (*clock_reasons)(nvml_dev, unsigned long long *); /* event or throttle reasons */
	nvml_ret (*ecc)(nvml_dev, int, int, unsigned long long *);
	nvml_ret (*compute_procs)(nvml_dev, unsigned int *, struct nvml_process_info *);
	nvml_ret (*procs_util_info)(nvml_dev, struct nvml_processes_util_info *);
	nvml_ret (*proc_util)(nvml_dev, struct nvml_process_sample *, unsigned int *,
			      unsigned long long);
};

/*
 * dlopen()s path and resolves what it offers. Returns 0, or an NVML error
 * code: LIBRARY_NOT_FOUND (why holds dlerror()'s text) or
 * FUNCTION_NOT_FOUND when one of init, count or handle_by_index is missing.
 */
nvml_ret nvml_open(struct nvml_lib *lib, const char *path, char *why, size_t whylen);
/* nvmlInitWithFlags(NO_GPUS) when there, else nvmlInit_v2. */
nvml_ret nvml_start(struct nvml_lib *lib);
/* nvmlShutdown() if started, then dlclose(). */
void nvml_close(struct nvml_lib *lib, int started);

/* "GPU_IS_LOST", "NOT_SUPPORTED", ...: NVML's error name without NVML_ERROR_. */
const char *nvml_error_name(nvml_ret rc);

#endif
