// SPDX-License-Identifier: GPL-2.0
#include "core/selfstats.h"

#include <errno.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "core/bpfutil.h"
#include "core/erpscope.h"
#include "core/expo.h"
#include "core/log.h"
#include "core/readfile.h"

int selfstats_enable(struct erpscope *es)
{
	/*
	 * BPF_ENABLE_STATS rather than the kernel.bpf_stats_enabled sysctl:
	 * the kernel turns stats off again when the fd closes, even after a
	 * SIGKILL, so nothing is left changed behind us.
	 */
	int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);

	if (fd < 0) {
		log_warn("cannot enable BPF run-time stats; program run counts will read 0",
			 "err=%d", fd);
		return fd;
	}
	es->stats_fd = fd;
	return 0;
}

/* The operator may have turned stats on host-wide instead of --bpf.stats. */
static bool sysctl_stats_on(void)
{
	char buf[8];

	return read_small_file("/proc/sys/kernel/bpf_stats_enabled", buf, sizeof(buf)) > 0 &&
	       buf[0] == '1';
}

static void build_info(struct erpscope *es, struct expo *e)
{
	char libbpf[32];
	struct utsname u;
	struct expo_label l[4];

	snprintf(libbpf, sizeof(libbpf), "%u.%u", libbpf_major_version(), libbpf_minor_version());
	if (uname(&u))
		strcpy(u.release, "unknown");
	l[0] = (struct expo_label){ "version", ERPSCOPE_VERSION };
	l[1] = (struct expo_label){ "libbpf", libbpf };
	l[2] = (struct expo_label){ "kernel", u.release };
	l[3] = (struct expo_label){ "attach", es->tp_btf ? "tp_btf" : "raw_tp" };
	expo_family(e, "erpscope_build_info", EXPO_GAUGE,
		    "Build and runtime information; attach is the tracepoint flavour in use.");
	expo_sample(e, l, 4, 1);
}

static void program_stats(struct erpscope *es, struct expo *e, int want_time)
{
	struct expo_label l[2];

	for (int i = 0; i < es->nprobes; i++) {
		struct probe *p = &es->probes[i];
		struct bpf_program *prog;

		if (!p->obj || !p->up)
			continue;
		l[0] = (struct expo_label){ "probe", p->ops->name };
		bpf_object__for_each_program(prog, p->obj) {
			struct bpf_prog_info info;
			__u32 len = sizeof(info);
			int fd = bpf_program__fd(prog);

			if (fd < 0)
				continue;
			memset(&info, 0, sizeof(info));
			if (bpf_obj_get_info_by_fd(fd, &info, &len))
				continue;
			l[1] = (struct expo_label){ "program", bpf_program__name(prog) };
			if (want_time)
				expo_sample(e, l, 2, (double)info.run_time_ns / 1e9);
			else
				expo_sample_u64(e, l, 2, info.run_cnt);
		}
	}
}

void selfstats_collect(struct erpscope *es, struct expo *e)
{
	struct expo_label l[1];

	build_info(es, e);
	expo_family(e, "erpscope_probe_up", EXPO_GAUGE,
		    "1 when the probe is loaded and attached, 0 when it was skipped or failed.");
	for (int i = 0; i < es->nprobes; i++) {
		l[0] = (struct expo_label){ "probe", es->probes[i].ops->name };
		expo_sample_u64(e, l, 1, es->probes[i].up);
	}
	expo_family(e, "erpscope_bpf_stats_enabled", EXPO_GAUGE,
		    "1 when the kernel's BPF run-time stats are on (--bpf.stats or kernel.bpf_stats_enabled); program runs and run time only advance while they are.");
	expo_sample_u64(e, NULL, 0, es->stats_fd >= 0 || sysctl_stats_on());
	expo_family(e, "erpscope_bpf_program_runs_total", EXPO_COUNTER,
		    "Times each BPF program ran (kernel run-time stats).");
	program_stats(es, e, 0);
	expo_family(e, "erpscope_bpf_program_run_seconds_total", EXPO_COUNTER,
		    "CPU time spent in each BPF program (kernel run-time stats).");
	program_stats(es, e, 1);
	expo_family(e, "erpscope_ringbuf_drops_total", EXPO_COUNTER,
		    "Events lost because a probe's ring buffer was full.");
	for (int i = 0; i < es->nprobes; i++) {
		struct probe *p = &es->probes[i];
		uint64_t drops = 0;

		if (p->drops_fd < 0 || !p->up)
			continue;
		if (bpf_percpu_sum_u64(p->drops_fd, 0, &drops))
			continue;
		l[0] = (struct expo_label){ "probe", p->ops->name };
		expo_sample_u64(e, l, 1, drops);
	}
}
