// SPDX-License-Identifier: GPL-2.0
/*
 * One gpu poll, measured: runs the gpu poller's tick against the library
 * given (the fake tests/fake/fake_nvml.c in `make bench`) POLLS times, one
 * every INTERVAL_MS, with the process table of this host, and prints the
 * CPU time (this thread's, user + system) per poll and per poll per GPU,
 * and this process's RSS before the library was loaded and after.
 * Built by scripts/bench.sh against build/liberpscope.a:
 *   gpu_poll_bench LIBRARY POLLS INTERVAL_MS
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/erpscope.h"
#include "core/poller.h"
#include "gpu/gpu.h"
#include "procs/proctable.h"

extern const struct poller_ops gpu_poller_ops;

static double thread_cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static long rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "VmRSS:", 6))
			kib = atol(line + 6);
	}
	if (f)
		fclose(f);
	return kib;
}

int main(int argc, char **argv)
{
	static struct erpscope es;
	struct poller pl = { .ops = &gpu_poller_ops, .es = &es };
	struct gpu_priv *g;
	unsigned int polls = argc > 2 ? (unsigned int)atoi(argv[2]) : 100;
	unsigned int interval = argc > 3 ? (unsigned int)atoi(argv[3]) : 100;
	double t0, cpu = 0, cpu_max = 0;
	long rss0, rss1;

	if (argc < 2 || !polls) {
		fprintf(stderr, "usage: %s LIBRARY [POLLS [INTERVAL_MS]]\n", argv[0]);
		return 2;
	}
	config_defaults(&es.cfg);
	log_set_level(LOG_WARN);
	snprintf(es.cfg.gpu_nvml_library, sizeof(es.cfg.gpu_nvml_library), "%s", argv[1]);
	es.cfg.gpu_poll_ms = interval;
	es.procs = procs_new(es.cfg.max_workers);
	if (!es.procs || procs_scan(es.procs, clock_ms()) < 0 || gpu_poller_ops.init(&pl)) {
		fprintf(stderr, "gpu_poll_bench: cannot start\n");
		return 1;
	}
	rss0 = rss_kib();
	gpu_poller_ops.tick(&pl, clock_ms()); /* loads the library, primes the samples */
	g = pl.priv;
	if (!g->nv.up) {
		fprintf(stderr, "gpu_poll_bench: NVML did not come up from %s\n", argv[1]);
		return 1;
	}
	rss1 = rss_kib();
	for (unsigned int i = 0; i < polls; i++) {
		double c;

		usleep(interval * 1000);
		t0 = thread_cpu_us();
		gpu_poller_ops.tick(&pl, clock_ms());
		c = thread_cpu_us() - t0;
		cpu += c;
		if (c > cpu_max)
			cpu_max = c;
	}
	printf("{\"gpus\": %u, \"polls\": %u, \"cpu_us_per_poll\": %.1f, "
	       "\"cpu_us_per_poll_per_gpu\": %.1f, \"cpu_us_max\": %.1f, "
	       "\"rss_kib_before\": %ld, \"rss_kib_loaded\": %ld}\n",
	       g->nv.ndev, polls, cpu / polls, cpu / polls / (g->nv.ndev ? g->nv.ndev : 1),
	       cpu_max, rss0, rss1);
	gpu_poller_ops.free(&pl);
	procs_free(es.procs);
	return 0;
}
