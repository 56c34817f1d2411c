// SPDX-License-Identifier: GPL-2.0
/*
 * Loads libnvidia-ml with dlopen and resolves each symbol on its own: the
 * newest name first, then older ones, so one library serves from old drivers
 * to new without a rebuild. A symbol that no name resolves stays NULL and
 * the poller skips what it measures.
 */
#include "gpu/nvml.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

/* Where a symbol goes and the names it may have, newest first. */
struct nvml_sym {
	size_t off;
	const char *names[3];
	int required;
};

#define SYM(field, ...)                                              \
	{                                                            \
		offsetof(struct nvml_lib, field), { __VA_ARGS__ }, 0 \
	}
#define REQ(field, ...)                                              \
	{                                                            \
		offsetof(struct nvml_lib, field), { __VA_ARGS__ }, 1 \
	}

static const struct nvml_sym syms[] = {
	REQ(init, "nvmlInit_v2", "nvmlInit"),
	SYM(init_flags, "nvmlInitWithFlags"),
	SYM(shutdown, "nvmlShutdown"),
	SYM(error_string, "nvmlErrorString"),
	SYM(driver_version, "nvmlSystemGetDriverVersion"),
	REQ(count, "nvmlDeviceGetCount_v2", "nvmlDeviceGetCount"),
	REQ(handle_by_index, "nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex"),
	SYM(name, "nvmlDeviceGetName"),
	SYM(uuid, "nvmlDeviceGetUUID"),
	SYM(pci_info, "nvmlDeviceGetPciInfo_v3"),
	SYM(utilization, "nvmlDeviceGetUtilizationRates"),
	SYM(memory_v2, "nvmlDeviceGetMemoryInfo_v2"),
	SYM(memory, "nvmlDeviceGetMemoryInfo"),
	SYM(temperature, "nvmlDeviceGetTemperature"),
	SYM(power, "nvmlDeviceGetPowerUsage"),
	SYM(energy, "nvmlDeviceGetTotalEnergyConsumption"),
	SYM(clock, "nvmlDeviceGetClockInfo"),
	SYM(clock_reasons, "nvmlDeviceGetCurrentClocksEventReasons",
	    "nvmlDeviceGetCurrentClocksThrottleReasons"),
	SYM(ecc, "nvmlDeviceGetTotalEccErrors"),
	SYM(compute_procs, "nvmlDeviceGetComputeRunningProcesses_v3",
	    "nvmlDeviceGetComputeRunningProcesses_v2"),
	SYM(procs_util_info, "nvmlDeviceGetProcessesUtilizationInfo"),
	SYM(proc_util, "nvmlDeviceGetProcessUtilization"),
};

static const char *const err_names[] = {
	[0] = "SUCCESS",
	[1] = "UNINITIALIZED",
	[2] = "INVALID_ARGUMENT",
	[3] = "NOT_SUPPORTED",
	[4] = "NO_PERMISSION",
	[5] = "ALREADY_INITIALIZED",
	[6] = "NOT_FOUND",
	[7] = "INSUFFICIENT_SIZE",
	[8] = "INSUFFICIENT_POWER",
	[9] = "DRIVER_NOT_LOADED",
	[10] = "TIMEOUT",
	[11] = "IRQ_ISSUE",
	[12] = "LIBRARY_NOT_FOUND",
	[13] = "FUNCTION_NOT_FOUND",
	[14] = "CORRUPTED_INFOROM",
	[15] = "GPU_IS_LOST",
	[16] = "RESET_REQUIRED",
	[17] = "OPERATING_SYSTEM",
	[18] = "LIB_RM_VERSION_MISMATCH",
	[19] = "IN_USE",
	[20] = "MEMORY",
	[21] = "NO_DATA",
	[22] = "VGPU_ECC_NOT_ENABLED",
	[23] = "INSUFFICIENT_RESOURCES",
	[24] = "FREQ_NOT_SUPPORTED",
	[25] = "ARGUMENT_VERSION_MISMATCH",
	[26] = "DEPRECATED",
	[27] = "NOT_READY",
	[28] = "GPU_NOT_FOUND",
	[29] = "INVALID_STATE",
};

const char *nvml_error_name(nvml_ret rc)
{
	if (rc >= 0 && (size_t)rc < sizeof(err_names) / sizeof(err_names[0]) && err_names[rc])
		return err_names[rc];
	return "UNKNOWN";
}

nvml_ret nvml_open(struct nvml_lib *lib, const char *path, char *why, size_t whylen)
{
	const char *e;

	memset(lib, 0, sizeof(*lib));
	dlerror();
	lib->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!lib->handle) {
		e = dlerror();
		snprintf(why, whylen, "%s", e ? e : "dlopen failed");
		return NVML_ERR_LIBRARY_NOT_FOUND;
	}
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		void *fn = NULL;

		for (int n = 0; n < 3 && syms[i].names[n] && !fn; n++)
			fn = dlsym(lib->handle, syms[i].names[n]);
		memcpy((char *)lib + syms[i].off, &fn, sizeof(fn));
		if (!fn && syms[i].required) {
			snprintf(why, whylen, "no symbol %s", syms[i].names[0]);
			dlclose(lib->handle);
			memset(lib, 0, sizeof(*lib));
			return NVML_ERR_FUNCTION_NOT_FOUND;
		}
	}
	why[0] = '\0';
	return NVML_OK;
}

nvml_ret nvml_start(struct nvml_lib *lib)
{
	if (lib->init_flags)
		return lib->init_flags(NVML_INIT_FLAG_NO_GPUS);
	return lib->init();
}

void nvml_close(struct nvml_lib *lib, int started)
{
	if (!lib->handle)
		return;
	if (started && lib->shutdown)
		lib->shutdown();
	dlclose(lib->handle);
	memset(lib, 0, sizeof(*lib));
}
