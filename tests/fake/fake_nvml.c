// SPDX-License-Identifier: GPL-2.0
/*
 * A fake libnvidia-ml.so.1 for the gpu poller's tests and bench: two GPUs
 * with known values, built by tests/integration/test_gpu.py (and make's
 * $(BUILD)/tests/libnvidia-ml.so.1). It exports only some of the versioned
 * names, so the daemon's fallbacks are exercised: no nvmlInitWithFlags, no
 * nvmlDeviceGetComputeRunningProcesses_v3, no nvmlDeviceGetProcessesUtilizationInfo,
 * only the older nvmlDeviceGetCurrentClocksThrottleReasons.
 *
 * Environment:
 *   FAKE_NVML_MODE=initfail   nvmlInit_v2 answers DRIVER_NOT_LOADED
 *   FAKE_NVML_MODE=mismatch   nvmlInit_v2 answers LIB_RM_VERSION_MISMATCH
 *   FAKE_NVML_LOST_AFTER=N    device 1 answers GPU_IS_LOST after N polls
 *   FAKE_NVML_PID=P           P holds 1 GiB on device 0 at 40% SM; pid 999999
 *                             (untracked) holds 256 MiB there at 10%
 *   FAKE_NVML_STATE=path      a file "R U": device 0's throttle reasons are R
 *                             (hex) and device 1 has U MiB used, read at each
 *                             call (test_diagnose changes them under the daemon)
 *
 * Device 0: utilization 37% / memory 12%, 10 of 40 GiB used, 61 C, 250 W,
 * energy 250 W x time since init, SM 1410 MHz, memory 1215 MHz, throttled by
 * sw_power_cap, ECC 7 corrected and 1 uncorrected. Device 1: 5% / 3%, 1 of
 * 16 GiB, 45 C, 70 W, 585 and 5000 MHz, gpu_idle, ECC NOT_SUPPORTED.
 * Process samples: one per process every 100 ms of CLOCK_REALTIME, the last
 * 5 s kept, newer than lastSeenTimeStamp only (NOT_FOUND when none).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GiB (1ull << 30)
#define MiB (1ull << 20)
#define OTHER_PID 999999u
#define SAMPLE_US 100000ull
#define KEEP_SAMPLES 50ull

struct fake_dev {
	const char *name, *uuid, *bus;
	unsigned int util, membw, temp, power_mw, sm_mhz, mem_mhz;
	unsigned long long total, used, reasons;
	int ecc;
};

static struct fake_dev devs[2] = {
	{ "Fake GPU A100", "GPU-11111111-2222-3333-4444-555555555555", "00000000:17:00.0",
	  37, 12, 61, 250000, 1410, 1215, 40 * GiB, 10 * GiB, 0x4, 1 },
	{ "Fake GPU T4", "GPU-66666666-7777-8888-9999-000000000000", "00000000:65:00.0",
	  5, 3, 45, 70000, 585, 5000, 16 * GiB, 1 * GiB, 0x1, 0 },
};

static int started;
static double t0;
static unsigned int polls1;

struct pinfo { /* nvmlProcessInfo_v2_t */
	unsigned int pid;
	unsigned long long mem;
	unsigned int gi, ci;
};

struct psample { /* nvmlProcessUtilizationSample_t */
	unsigned int pid;
	unsigned long long ts;
	unsigned int sm, mem, enc, dec;
};

struct pci { /* nvmlPciInfo_t */
	char legacy[16];
	unsigned int domain, bus, device, pci_device_id, pci_subsystem_id;
	char bus_id[32];
};

struct mem1 {
	unsigned long long total, free, used;
};

struct mem2 {
	unsigned int version;
	unsigned long long total, reserved, free, used;
};

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *env(const char *k)
{
	const char *v = getenv(k);

	return v ? v : "";
}

/* FAKE_NVML_STATE, when set and readable: device 0's reasons, device 1's memory used */
static void load_state(void)
{
	unsigned long long r, used;
	FILE *f;

	if (!env("FAKE_NVML_STATE")[0])
		return;
	f = fopen(env("FAKE_NVML_STATE"), "r");
	if (!f)
		return;
	if (fscanf(f, "%llx %llu", &r, &used) == 2) {
		devs[0].reasons = r;
		devs[1].used = used * MiB;
	}
	fclose(f);
}

/* GPU_IS_LOST for device 1 once it has been polled FAKE_NVML_LOST_AFTER times */
static int check(struct fake_dev *d)
{
	if (!started)
		return 1; /* UNINITIALIZED */
	if (d == &devs[1] && env("FAKE_NVML_LOST_AFTER")[0] &&
	    polls1 >= (unsigned int)atoi(env("FAKE_NVML_LOST_AFTER")))
		return 15;
	return 0;
}

int nvmlInit_v2(void)
{
	if (!strcmp(env("FAKE_NVML_MODE"), "initfail"))
		return 9; /* DRIVER_NOT_LOADED */
	if (!strcmp(env("FAKE_NVML_MODE"), "mismatch"))
		return 18; /* LIB_RM_VERSION_MISMATCH */
	started = 1;
	t0 = mono();
	polls1 = 0;
	return 0;
}

int nvmlShutdown(void)
{
	started = 0;
	return 0;
}

const char *nvmlErrorString(int rc)
{
	return rc == 9 ? "Driver Not Loaded" : rc == 18 ? "RM has detected an NVML/RM version mismatch." : "fake error";
}

int nvmlSystemGetDriverVersion(char *v, unsigned int n)
{
	snprintf(v, n, "550.54.15");
	return started ? 0 : 1;
}

int nvmlDeviceGetCount_v2(unsigned int *n)
{
	*n = 2;
	return started ? 0 : 1;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned int i, struct fake_dev **h)
{
	if (i >= 2)
		return 2;
	*h = &devs[i];
	return started ? 0 : 1;
}

int nvmlDeviceGetName(struct fake_dev *d, char *s, unsigned int n)
{
	snprintf(s, n, "%s", d->name);
	return check(d);
}

int nvmlDeviceGetUUID(struct fake_dev *d, char *s, unsigned int n)
{
	snprintf(s, n, "%s", d->uuid);
	return check(d);
}

int nvmlDeviceGetPciInfo_v3(struct fake_dev *d, struct pci *p)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->bus_id, sizeof(p->bus_id), "%s", d->bus);
	return check(d);
}

int nvmlDeviceGetUtilizationRates(struct fake_dev *d, unsigned int *u)
{
	int rc = check(d);

	if (d == &devs[1])
		polls1++;
	if (rc)
		return rc;
	u[0] = d->util;
	u[1] = d->membw;
	return 0;
}

int nvmlDeviceGetMemoryInfo_v2(struct fake_dev *d, struct mem2 *m)
{
	if (m->version != (sizeof(*m) | 2u << 24))
		return 25; /* ARGUMENT_VERSION_MISMATCH */
	load_state();
	m->total = d->total;
	m->reserved = 512 * MiB;
	m->used = d->used;
	m->free = d->total - d->used - m->reserved;
	return check(d);
}

int nvmlDeviceGetMemoryInfo(struct fake_dev *d, struct mem1 *m)
{
	load_state();
	m->total = d->total;
	m->used = d->used + 512 * MiB; /* v1 counts reserved memory as used */
	m->free = d->total - m->used;
	return check(d);
}

int nvmlDeviceGetTemperature(struct fake_dev *d, int sensor, unsigned int *t)
{
	*t = d->temp;
	return sensor ? 2 : check(d);
}

int nvmlDeviceGetPowerUsage(struct fake_dev *d, unsigned int *mw)
{
	*mw = d->power_mw;
	return check(d);
}

int nvmlDeviceGetTotalEnergyConsumption(struct fake_dev *d, unsigned long long *mj)
{
	*mj = (unsigned long long)((mono() - t0) * d->power_mw); /* mW x s = mJ */
	return check(d);
}

int nvmlDeviceGetClockInfo(struct fake_dev *d, int type, unsigned int *mhz)
{
	*mhz = type == 1 ? d->sm_mhz : type == 2 ? d->mem_mhz : 0;
	return check(d);
}

int nvmlDeviceGetCurrentClocksThrottleReasons(struct fake_dev *d, unsigned long long *r)
{
	load_state();
	*r = d->reasons;
	return check(d);
}

int nvmlDeviceGetTotalEccErrors(struct fake_dev *d, int type, int counter, unsigned long long *n)
{
	int rc = check(d);

	if (rc)
		return rc;
	if (!d->ecc)
		return 3; /* NOT_SUPPORTED */
	*n = type == 0 ? 7 : 1;
	return counter == 1 ? 0 : 2;
}

/* The processes on d: (pid, bytes, SM percent). */
static unsigned int procs_of(struct fake_dev *d, struct pinfo *p, unsigned int *sm)
{
	unsigned int pid = (unsigned int)atoi(env("FAKE_NVML_PID")), n = 0;

	if (d != &devs[0])
		return 0;
	if (pid) {
		p[n] = (struct pinfo){ pid, GiB, ~0u, ~0u };
		sm[n++] = 40;
	}
	p[n] = (struct pinfo){ OTHER_PID, 256 * MiB, ~0u, ~0u };
	sm[n++] = 10;
	return n;
}

int nvmlDeviceGetComputeRunningProcesses_v2(struct fake_dev *d, unsigned int *count,
					    struct pinfo *out)
{
	struct pinfo p[2];
	unsigned int sm[2], n = procs_of(d, p, sm);
	int rc = check(d);

	if (rc)
		return rc;
	if (n && (!out || *count < n)) {
		*count = n;
		return 7; /* INSUFFICIENT_SIZE */
	}
	memcpy(out, p, n * sizeof(*p));
	*count = n;
	return 0;
}

int nvmlDeviceGetProcessUtilization(struct fake_dev *d, struct psample *out, unsigned int *count,
				    unsigned long long last_seen)
{
	struct pinfo p[2];
	unsigned int sm[2], np = procs_of(d, p, sm), n = 0;
	unsigned long long now, newest, first;
	struct timespec ts;
	int rc = check(d);

	if (rc)
		return rc;
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000;
	newest = now / SAMPLE_US * SAMPLE_US;
	first = newest - (KEEP_SAMPLES - 1) * SAMPLE_US;
	if (first <= last_seen)
		first = (last_seen / SAMPLE_US + 1) * SAMPLE_US;
	if (np && first <= newest)
		n = (unsigned int)((newest - first) / SAMPLE_US + 1) * np;
	if (!n)
		return 6; /* NOT_FOUND: no sample since last_seen */
	if (!out || *count < n) {
		*count = n;
		return 7;
	}
	n = 0;
	for (unsigned long long t = first; t <= newest; t += SAMPLE_US) {
		for (unsigned int i = 0; i < np; i++)
			out[n++] = (struct psample){ p[i].pid, t, sm[i], 0, 0, 0 };
	}
	*count = n;
	return 0;
}
