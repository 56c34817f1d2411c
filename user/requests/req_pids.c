// SPDX-License-Identifier: GPL-2.0
/*
 * Which processes the socket tracepoints follow: req_procs (tgid -> index,
 * all of them) and, in front of it, req_pids (bpf/requests.h), an array
 * by the tgid's low bits that every socket call of the host reads first:
 * one cache line where the hash lookup read three, cold in a worker after
 * its Python code ran (~0.2-0.35 us a call on a VM). A process whose low
 * bits are taken stays in req_procs only, with the entry's
 * ES_REQ_PID_MORE set; it moves into the entry when the holder goes.
 * req_pids is mapped into the daemon and each entry written with one
 * atomic 64-bit store, so the kernel side never reads a torn one. Only the
 * requests poller writes both maps.
 *
 * In front of both, req_ports: a bit per TCP port some followed process
 * listens on, looked at from the socket alone. User space writes only its
 * own words of it (bpf/requests.h), from a copy it keeps: no read of the
 * kernel's, no lost bit.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/mman.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "requests.skel.h"
#include "core/bpfutil.h"
#include "requests/requests.h"

int req_pids_open(struct req_priv *rp)
{
	rp->pids = bpf_map_mmap(bpf_map__fd(rp->skel->maps.req_pids), sizeof(__u64) * ES_REQ_PIDS,
				true, &rp->pids_len);
	return rp->pids ? 0 : -errno;
}

void req_pids_close(struct req_priv *rp)
{
	if (rp->pids)
		munmap(rp->pids, rp->pids_len);
	rp->pids = NULL;
}

static __u64 pid_entry(__u32 tgid, __u32 hi)
{
	return (__u64)hi << 32 | tgid;
}

static __u32 low_bits(__u32 pid)
{
	return pid & (ES_REQ_PIDS - 1);
}

static __u64 entry_get(const struct req_priv *rp, __u32 low)
{
	return __atomic_load_n(&rp->pids[low], __ATOMIC_RELAXED);
}

static void entry_set(struct req_priv *rp, __u32 low, __u64 v)
{
	__atomic_store_n(&rp->pids[low], v, __ATOMIC_RELEASE);
}

/*
 * The followed processes in req_procs with low bits low, but for except:
 * how many (two at most are counted), and the first one's pid and index.
 */
static unsigned int others(int procs_fd, __u32 low, __u32 except, __u32 *pid, __u32 *idx)
{
	__u32 key, next, v;
	unsigned int n = 0;
	void *prev = NULL;

	while (n < 2 && !bpf_map_get_next_key(procs_fd, prev, &next)) {
		key = next;
		prev = &key;
		if (next == except || low_bits(next) != low)
			continue;
		if (!n && bpf_map_lookup_elem(procs_fd, &next, &v))
			continue; /* gone in between: not one */
		if (!n++) {
			*pid = next;
			*idx = v;
		}
	}
	return n;
}

int req_pids_follow(struct req_priv *rp, __u32 pid, __u32 idx)
{
	int procs = bpf_map__fd(rp->skel->maps.req_procs);
	__u32 low = low_bits(pid);
	__u64 cur;

	if (bpf_map_update_elem(procs, &pid, &idx, BPF_ANY))
		return -errno;
	cur = entry_get(rp, low);
	if ((__u32)cur == 0 || (__u32)cur == pid)
		entry_set(rp, low, pid_entry(pid, idx | ((__u32)(cur >> 32) & ES_REQ_PID_MORE)));
	else
		entry_set(rp, low, cur | pid_entry(0, ES_REQ_PID_MORE));
	return 0;
}

void req_pids_unfollow(struct req_priv *rp, __u32 pid)
{
	int procs = bpf_map__fd(rp->skel->maps.req_procs);
	__u32 low = low_bits(pid), next = 0, idx = 0;
	__u64 cur = entry_get(rp, low), v = 0;
	unsigned int n;

	if ((__u32)cur == pid) {
		/* The entry goes to another process of these low bits, if any. */
		if ((cur >> 32) & ES_REQ_PID_MORE) {
			n = others(procs, low, pid, &next, &idx);
			if (n)
				v = pid_entry(next, idx | (n > 1 ? ES_REQ_PID_MORE : 0));
		}
		entry_set(rp, low, v);
		bpf_map_delete_elem(procs, &pid);
		return;
	}
	bpf_map_delete_elem(procs, &pid);
	/* The last one of these low bits besides the entry's: no more lookups in req_procs. */
	if (((cur >> 32) & ES_REQ_PID_MORE) && !others(procs, low, (__u32)cur, &next, &idx))
		entry_set(rp, low, cur & ~pid_entry(0, ES_REQ_PID_MORE));
}

int req_ports_add(struct req_priv *rp, __u16 port)
{
	__u32 word = port / 64, key = 2 * word;
	__u64 bit = 1ull << (port % 64);

	if (rp->port_bits[word] & bit)
		return 0;
	rp->port_bits[word] |= bit;
	if (!bpf_map_update_elem(bpf_map__fd(rp->skel->maps.req_ports), &key,
				 &rp->port_bits[word], BPF_ANY))
		return 0;
	rp->port_bits[word] &= ~bit; /* tried again at the port's next noting */
	return -errno;
}
