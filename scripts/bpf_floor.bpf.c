// SPDX-License-Identifier: GPL-2.0
/*
 * The bench's floor (scripts/bench.sh, the requests section): programs that
 * do nothing, on the tracepoints the requests probe runs on. With
 * kernel.bpf_stats_enabled=1 the kernel times every run of a program, and
 * on this kind of VM the timing itself (two clock reads) and the dispatch
 * cost 100-250 ns a run, more than an early-returning program's work.
 * Attached beside the daemon's programs, these see the very same runs: the
 * ns per run they show is what any program on that hook pays there, and
 * the bench reports the probe's figure with and without it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/sock_recv_length")
int floor_recv(void *ctx)
{
	return 0;
}

SEC("tp_btf/sock_send_length")
int floor_send(void *ctx)
{
	return 0;
}
