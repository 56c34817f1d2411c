// SPDX-License-Identifier: GPL-2.0
#include "core/caps.h"

#include <errno.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include "core/log.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

/*
 * CAP_SYS_ADMIN stays: on the reference kernel (6.18) a uprobe perf event
 * still needs it, and the pg probe attaches to PostgreSQL binaries that
 * appear after startup (an upgrade, a second installation).
 */
static const int keep[] = { CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH,
			    CAP_SYS_RESOURCE, CAP_SYS_ADMIN };

static uint64_t keep_mask(void)
{
	uint64_t m = 0;

	for (unsigned int i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		m |= 1ull << keep[i];
	return m;
}

int caps_drop_after_attach(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];
	uint64_t mask = keep_mask(), eff, dropped = 0;
	int last_cap = 40;

	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	eff = data[0].effective | ((uint64_t)data[1].effective << 32);
	/* The bounding set first: that needs CAP_SETPCAP, which goes next. */
	for (int c = 0; c <= 63; c++) {
		if (mask & (1ull << c))
			continue;
		if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) < 0) {
			last_cap = c - 1;
			break;
		}
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) == 0)
			dropped |= 1ull << c;
	}
	for (int i = 0; i < 2; i++) {
		uint32_t m = (uint32_t)(mask >> (32 * i));

		data[i].effective &= m;
		data[i].permitted &= m;
		data[i].inheritable = 0;
	}
	if (syscall(SYS_capset, &hdr, data))
		return -errno;
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	log_debug("dropped capabilities", "kept=0x%llx had=0x%llx last_cap=%d",
		  (unsigned long long)(eff & mask), (unsigned long long)eff, last_cap);
	(void)dropped;
	return 0;
}
