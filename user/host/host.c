// SPDX-License-Identifier: GPL-2.0
/*
 * The "host" poller: CPU, memory, filesystem space, disk and network
 * counters and pressure stall information, for hosts without node_exporter.
 * Every 5 s tick() reads each source once into one fixed buffer and parses
 * it into bounded tables; collect() formats those tables and does no I/O.
 * The parsers are pure (text in, structs out) for the unit tests.
 */
#include "host/host.h"
#include "host/netfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "core/erpscope.h"
#include "core/expo.h"
#include "core/log.h"
#include "core/poller.h"

#define HOST_INTERVAL_MS 5000
/*
 * The read buffer, and so the most of any file a tick looks at. mountinfo
 * is the big one (a container host has thousands of mounts); it lists mounts
 * in the order they were made, so the disks, mounted at boot, come first and
 * a cut costs at most late mounts. A cut is logged once.
 */
#define HOST_BUF_MAX (256 * 1024)

/* ---------------------------------------------------------------- parsers */

/* End of the line at p: its newline, or the terminating NUL. */
static const char *line_end(const char *p)
{
	const char *nl = strchr(p, '\n');

	return nl ? nl : p + strlen(p);
}

/* Skips blanks, then reads a decimal number (saturating); NULL if none. */
static const char *parse_u64(const char *p, uint64_t *v)
{
	uint64_t n = 0;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p < '0' || *p > '9')
		return NULL;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned int d = (unsigned int)(*p - '0');

		n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
	}
	*v = n;
	return p;
}

/* The next space-separated field before e: its start in *f, its length. */
static const char *next_field(const char *p, const char *e, const char **f, unsigned int *len)
{
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	*f = p;
	while (p < e && *p != ' ' && *p != '\t')
		p++;
	*len = (unsigned int)(p - *f);
	return p;
}

static bool field_is(const char *f, unsigned int len, const char *s)
{
	return strlen(s) == len && !memcmp(f, s, len);
}

/* Copies a field as a string; false when it does not fit. */
static bool copy_field(char *dst, size_t size, const char *f, unsigned int len)
{
	if (len >= size)
		return false;
	memcpy(dst, f, len);
	dst[len] = 0;
	return true;
}

int host_parse_stat(const char *text, struct host_cpu *cpu)
{
	for (const char *p = text; *p;) {
		const char *e = line_end(p);

		if (!strncmp(p, "cpu ", 4)) {
			const char *q = p + 4;
			int n = 0;

			memset(cpu, 0, sizeof(*cpu));
			/* guest and guest_nice follow steal: already in user and nice */
			while (n < HOST_CPU_NMODES && (q = parse_u64(q, &cpu->ticks[n])))
				n++;
			return n > HOST_CPU_IDLE ? 0 : -EINVAL;
		}
		p = *e ? e + 1 : e;
	}
	return -EINVAL;
}

double host_cpu_busy_ratio(const struct host_cpu *prev, const struct host_cpu *cur)
{
	uint64_t busy = 0, idle = 0;

	for (int m = 0; m < HOST_CPU_NMODES; m++) {
		uint64_t d = cur->ticks[m];

		if (prev)
			d = d > prev->ticks[m] ? d - prev->ticks[m] : 0;
		if (m == HOST_CPU_IDLE || m == HOST_CPU_IOWAIT)
			idle += d;
		else
			busy += d;
	}
	if (!busy && !idle)
		return -1;
	return (double)busy / ((double)busy + (double)idle);
}

int host_parse_meminfo(const char *text, struct host_mem *mem)
{
	static const struct {
		const char *key;
		size_t off;
	} keys[] = {
		{ "MemTotal:", offsetof(struct host_mem, total) },
		{ "MemAvailable:", offsetof(struct host_mem, available) },
		{ "SwapTotal:", offsetof(struct host_mem, swap_total) },
		{ "SwapFree:", offsetof(struct host_mem, swap_free) },
	};
	unsigned int seen = 0;

	memset(mem, 0, sizeof(*mem));
	for (const char *p = text; *p;) {
		const char *e = line_end(p);

		for (unsigned int k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
			size_t kl = strlen(keys[k].key);
			const char *q;
			uint64_t v;

			if (strncmp(p, keys[k].key, kl) || !(q = parse_u64(p + kl, &v)))
				continue;
			while (*q == ' ')
				q++;
			if (!strncmp(q, "kB", 2))
				v = v > UINT64_MAX / 1024 ? UINT64_MAX : v * 1024;
			*(uint64_t *)((char *)mem + keys[k].off) = v;
			seen |= 1u << k;
		}
		p = *e ? e + 1 : e;
	}
	return (seen & 3) == 3 && mem->total ? 0 : -EINVAL;
}

static bool is_octal(char c)
{
	return c >= '0' && c <= '7';
}

int host_unescape(char *dst, unsigned int size, const char *src, unsigned int len)
{
	unsigned int o = 0;

	for (unsigned int i = 0; i < len; i++) {
		char c = src[i];

		if (c == '\\' && i + 3 < len && src[i + 1] >= '0' && src[i + 1] <= '3' &&
		    is_octal(src[i + 2]) && is_octal(src[i + 3])) {
			int v = (src[i + 1] - '0') * 64 + (src[i + 2] - '0') * 8 +
				(src[i + 3] - '0');

			/* a NUL cannot be in a path: leave such an escape as it is */
			if (v) {
				c = (char)v;
				i += 3;
			}
		}
		if (o + 1 >= size)
			return -ENAMETOOLONG;
		dst[o++] = c;
	}
	if (o >= size)
		return -ENAMETOOLONG;
	dst[o] = 0;
	return (int)o;
}

/*
 * Never statvfs'd: pseudo filesystems, images that are always full
 * (squashfs, iso9660), network filesystems (statvfs blocks the main loop for
 * as long as a dead server does not answer), and FUSE (same, behind a
 * user-space daemon; fuse, fuseblk, fuse.* and fusectl).
 */
static const char *const skip_fstypes[] = {
	"proc",	    "sysfs",	"tmpfs",   "devtmpfs",	  "cgroup",	"cgroup2",   "overlay",
	"bpf",	    "tracefs",	"debugfs", "securityfs",  "pstore",	"mqueue",    "hugetlbfs",
	"autofs",   "configfs", "devpts",  "binfmt_misc", "nsfs",	"ramfs",     "rootfs",
	"squashfs", "iso9660",	"udf",	   "efivarfs",	  "selinuxfs",	"nfsd",
};

/* Local filesystems whose source need not be a /dev path (pools, subvolumes). */
static const char *const local_fstypes[] = {
	"zfs", "btrfs", "xfs", "ext2", "ext3", "ext4", "f2fs", "vfat", "bcachefs",
};

bool host_fs_wanted(const char *fstype, const char *device)
{
	if (netfs_type(fstype))
		return false;
	for (size_t i = 0; i < sizeof(skip_fstypes) / sizeof(skip_fstypes[0]); i++) {
		if (!strcmp(fstype, skip_fstypes[i]))
			return false;
	}
	if (!strncmp(device, "/dev/", 5))
		return true;
	for (size_t i = 0; i < sizeof(local_fstypes) / sizeof(local_fstypes[0]); i++) {
		if (!strcmp(fstype, local_fstypes[i]))
			return true;
	}
	return false;
}

/*
 * One mountinfo line: "36 35 98:0 /root /mnt opts [optional...] - type source
 * superopts". Fills mountpoint, device, fstype and major:minor of out.
 * False for a malformed line, or a mount point too long to keep (it cannot
 * cover one that is kept either).
 */
static bool parse_mount_line(const char *p, const char *e, struct host_fs *out)
{
	const char *f, *mp;
	unsigned int len, mplen;
	char num[32];

	memset(out, 0, sizeof(*out));
	p = next_field(p, e, &f, &len); /* mount id */
	p = next_field(p, e, &f, &len); /* parent id */
	p = next_field(p, e, &f, &len); /* major:minor */
	if (!copy_field(num, sizeof(num), f, len) ||
	    sscanf(num, "%u:%u", &out->major, &out->minor) != 2)
		return false;
	p = next_field(p, e, &f, &len); /* root of the mount in its filesystem */
	p = next_field(p, e, &mp, &mplen);
	p = next_field(p, e, &f, &len); /* mount options */
	do {
		p = next_field(p, e, &f, &len); /* optional fields up to "-" */
	} while (len && !field_is(f, len, "-"));
	if (!len || !mplen ||
	    host_unescape(out->mountpoint, sizeof(out->mountpoint), mp, mplen) < 0)
		return false;
	p = next_field(p, e, &f, &len);
	if (!len || !copy_field(out->fstype, sizeof(out->fstype), f, len))
		out->fstype[0] = 0; /* an unknown, overlong type: not one we keep */
	next_field(p, e, &f, &len);
	if (host_unescape(out->device, sizeof(out->device), f, len) < 0)
		out->device[0] = 0;
	return true;
}

int host_parse_mountinfo(const char *text, struct host_fs *fs, unsigned int max, bool *full)
{
	struct host_fs m;
	unsigned int n = 0;

	*full = false;
	for (const char *p = text; *p;) {
		const char *e = line_end(p);
		bool ok = parse_mount_line(p, e, &m);
		unsigned int i;

		p = *e ? e + 1 : e;
		if (!ok)
			continue;
		/*
		 * A later mount at the same place covers the earlier one:
		 * statvfs would answer for the new one, so the old goes.
		 * (A covered mount that had already replaced a longer path of
		 * its filesystem takes that filesystem with it: rare enough.)
		 */
		for (i = 0; i < n; i++) {
			if (!strcmp(fs[i].mountpoint, m.mountpoint)) {
				memmove(&fs[i], &fs[i + 1], (n - i - 1) * sizeof(*fs));
				n--;
				break;
			}
		}
		if (!m.fstype[0] || !m.device[0] || !host_fs_wanted(m.fstype, m.device))
			continue;
		/*
		 * One series per filesystem: bind mounts (and the private /tmp,
		 * /home and / that systemd's sandboxing adds) show the same
		 * major:minor and the same statvfs; the shortest path names it.
		 */
		for (i = 0; i < n; i++) {
			if (fs[i].major == m.major && fs[i].minor == m.minor)
				break;
		}
		if (i < n) {
			if (strlen(m.mountpoint) < strlen(fs[i].mountpoint))
				fs[i] = m;
		} else if (n < max) {
			fs[n++] = m;
		} else {
			*full = true;
		}
	}
	return (int)n;
}

bool host_fs_set_stat(struct host_fs *fs, const struct statvfs *st)
{
	uint64_t frsize = st->f_frsize ? st->f_frsize : st->f_bsize;
	uint64_t used, denom;

	fs->statted = false;
	if (!st->f_blocks || st->f_bfree > st->f_blocks)
		return false;
	used = st->f_blocks - st->f_bfree;
	/* df's Use%: the root-reserved blocks count neither as used nor as free */
	denom = used + st->f_bavail;
	if (!denom)
		return false;
	fs->size_bytes = (uint64_t)st->f_blocks * frsize;
	fs->avail_bytes = (uint64_t)st->f_bavail * frsize;
	fs->used_ratio = (double)used / (double)denom;
	fs->statted = true;
	return true;
}

/* Loop and RAM disks are not storage: their I/O is someone else's. */
static bool pseudo_disk(const char *name)
{
	return !strncmp(name, "loop", 4) || !strncmp(name, "ram", 3) || !strncmp(name, "zram", 4);
}

int host_parse_diskstats(const char *text, struct host_disk *d, unsigned int max,
			 host_is_disk_fn is_disk, void *arg, bool *full)
{
	unsigned int n = 0;

	*full = false;
	for (const char *p = text; *p;) {
		const char *e = line_end(p), *f, *q;
		/* reads, merged, sectors read, ms, writes, merged, sectors written */
		uint64_t v[7];
		unsigned int len, k = 0;
		char name[HOST_DISK_NAME_MAX];

		q = next_field(p, e, &f, &len); /* major */
		q = next_field(q, e, &f, &len); /* minor */
		q = next_field(q, e, &f, &len);
		p = *e ? e + 1 : e;
		if (!copy_field(name, sizeof(name), f, len) || !len || pseudo_disk(name))
			continue;
		while (k < 7 && (q = parse_u64(q, &v[k])))
			k++;
		if (k < 7 || (is_disk && !is_disk(name, arg)))
			continue;
		if (n >= max) {
			*full = true;
			break;
		}
		memcpy(d[n].name, name, sizeof(name));
		d[n].ops[HOST_READ] = v[0];
		d[n].ops[HOST_WRITE] = v[4];
		/* diskstats counts 512-byte sectors whatever the device's own */
		d[n].bytes[HOST_READ] = v[2] > UINT64_MAX / 512 ? UINT64_MAX : v[2] * 512;
		d[n].bytes[HOST_WRITE] = v[6] > UINT64_MAX / 512 ? UINT64_MAX : v[6] * 512;
		n++;
	}
	return (int)n;
}

int host_parse_netdev(const char *text, struct host_netif *nif, unsigned int max, bool *full)
{
	unsigned int n = 0;

	*full = false;
	for (const char *p = text; *p;) {
		const char *e = line_end(p), *colon = memchr(p, ':', (size_t)(e - p));
		const char *name = p, *q;
		/* receive: bytes packets errs drop fifo frame compressed multicast; transmit: bytes packets */
		uint64_t v[10];
		unsigned int k = 0;

		p = *e ? e + 1 : e;
		if (!colon)
			continue; /* the two header lines */
		while (name < colon && *name == ' ')
			name++;
		q = colon + 1;
		while (k < 10 && (q = parse_u64(q, &v[k])))
			k++;
		if (k < 10 || name == colon || colon - name >= HOST_IFNAME_MAX)
			continue;
		if (n >= max) {
			*full = true;
			break;
		}
		memcpy(nif[n].name, name, (size_t)(colon - name));
		nif[n].name[colon - name] = 0;
		nif[n].bytes[HOST_READ] = v[0];
		nif[n].packets[HOST_READ] = v[1];
		nif[n].bytes[HOST_WRITE] = v[8];
		nif[n].packets[HOST_WRITE] = v[9];
		n++;
	}
	return (int)n;
}

int host_parse_pressure(const char *text, struct host_psi *psi)
{
	memset(psi, 0, sizeof(*psi));
	for (const char *p = text; *p;) {
		const char *e = line_end(p), *t;
		bool some = !strncmp(p, "some ", 5), fullk = !strncmp(p, "full ", 5);
		uint64_t v;

		t = (some || fullk) ? strstr(p, " total=") : NULL;
		if (t && t < e && parse_u64(t + 7, &v)) {
			if (some) {
				psi->has_some = true;
				psi->some_us = v;
			} else {
				psi->has_full = true;
				psi->full_us = v;
			}
		}
		p = *e ? e + 1 : e;
	}
	return psi->has_some ? 0 : -EINVAL;
}

/* ---------------------------------------------------------------- the poller */

enum host_src {
	SRC_STAT,
	SRC_MEMINFO,
	SRC_MOUNTINFO,
	SRC_DISKSTATS,
	SRC_NETDEV,
	SRC_PSI_CPU,
	SRC_PSI_MEMORY,
	SRC_PSI_IO,
	SRC_COUNT
};

#define PSI_COUNT 3

static const struct host_source {
	const char *path;
	size_t cap;
	bool head_only; /* only the first lines are used: a cut is expected */
} sources[SRC_COUNT] = {
	/* the aggregate line is first; "intr" behind it can be tens of KiB */
	[SRC_STAT] = { "/proc/stat", 4096, true },
	[SRC_MEMINFO] = { "/proc/meminfo", 16384, false },
	[SRC_MOUNTINFO] = { "/proc/self/mountinfo", HOST_BUF_MAX, false },
	[SRC_DISKSTATS] = { "/proc/diskstats", 128 * 1024, false },
	[SRC_NETDEV] = { "/proc/net/dev", 64 * 1024, false },
	[SRC_PSI_CPU] = { "/proc/pressure/cpu", 1024, false },
	[SRC_PSI_MEMORY] = { "/proc/pressure/memory", 1024, false },
	[SRC_PSI_IO] = { "/proc/pressure/io", 1024, false },
};

static const char *const psi_names[PSI_COUNT] = { "cpu", "memory", "io" };

static const char *const cpu_modes[HOST_CPU_NMODES] = {
	[HOST_CPU_USER] = "user",	[HOST_CPU_NICE] = "nice",     [HOST_CPU_SYSTEM] = "system",
	[HOST_CPU_IDLE] = "idle",	[HOST_CPU_IOWAIT] = "iowait", [HOST_CPU_IRQ] = "irq",
	[HOST_CPU_SOFTIRQ] = "softirq", [HOST_CPU_STEAL] = "steal",
};

/* What went wrong with a source, each logged once: the poller runs for ever. */
enum { W_READ = 1, W_PARSE = 2, W_CUT = 4, W_FULL = 8 };

struct host_priv {
	char *buf; /* HOST_BUF_MAX bytes, for every read */
	double hz; /* USER_HZ */
	uint8_t warned[SRC_COUNT];
	bool psi_on[PSI_COUNT]; /* the kernel has PSI for this resource */

	bool cpu_ok, cpu_seen;
	struct host_cpu cpu; /* never decreasing: see tick_cpu() */
	struct host_cpu cpu_view; /* host_view()'s last read, as cpu */
	double cpu_ratio;

	bool mem_ok;
	struct host_mem mem;

	unsigned int nfs, ndisks, nifs;
	struct host_fs fs[HOST_MAX_FS];
	struct host_disk disks[HOST_MAX_DISKS];
	struct host_netif ifs[HOST_MAX_IFS];
	struct host_psi psi[PSI_COUNT];
};

static void warn_once(struct host_priv *hp, enum host_src src, uint8_t what, const char *msg,
		      const char *key, long val)
{
	if (hp->warned[src] & what)
		return;
	hp->warned[src] |= what;
	log_warn(msg, "poller=host path=%s %s=%ld", sources[src].path, key, val);
}

/*
 * Reads src into hp->buf, NUL-terminated. A file longer than the source's cap
 * is cut after its last whole line. Returns 0 or -errno.
 */
static int load(struct host_priv *hp, enum host_src src)
{
	size_t cap = sources[src].cap, len = 0;
	char extra;
	int fd, err = 0;

	fd = open(sources[src].path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	while (len < cap - 1) {
		ssize_t n = read(fd, hp->buf + len, cap - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			goto out;
		}
		if (!n)
			break;
		len += (size_t)n;
	}
	if (len == cap - 1 && read(fd, &extra, 1) == 1) {
		char *nl;

		hp->buf[len] = 0;
		nl = strrchr(hp->buf, '\n');
		len = nl ? (size_t)(nl - hp->buf) + 1 : 0;
		if (!sources[src].head_only)
			warn_once(hp, src, W_CUT,
				  "file longer than the poller reads; the rest is ignored",
				  "limit_bytes", (long)cap);
	}
	hp->buf[len] = 0;
out:
	if (fd >= 0)
		close(fd);
	if (err)
		warn_once(hp, src, W_READ, "cannot read", "err", err);
	return err;
}

static void tick_cpu(struct host_priv *hp)
{
	struct host_cpu raw;
	double r;
	int err;

	hp->cpu_ok = false;
	if (load(hp, SRC_STAT))
		return;
	err = host_parse_stat(hp->buf, &raw);
	if (err) {
		warn_once(hp, SRC_STAT, W_PARSE, "cannot parse", "err", err);
		return;
	}
	/*
	 * iowait is known to step backwards on NO_HZ kernels: keep every mode
	 * monotonic so that the counters stay counters and the ratio never
	 * counts the same ticks twice.
	 */
	for (int m = 0; m < HOST_CPU_NMODES; m++) {
		if (!hp->cpu_seen || raw.ticks[m] > hp->cpu.ticks[m])
			continue;
		raw.ticks[m] = hp->cpu.ticks[m];
	}
	r = host_cpu_busy_ratio(hp->cpu_seen ? &hp->cpu : NULL, &raw);
	if (r >= 0)
		hp->cpu_ratio = r; /* else no tick passed: keep the last ratio */
	hp->cpu = raw;
	hp->cpu_seen = true;
	hp->cpu_ok = true;
}

static void tick_mem(struct host_priv *hp)
{
	int err;

	hp->mem_ok = false;
	if (load(hp, SRC_MEMINFO))
		return;
	err = host_parse_meminfo(hp->buf, &hp->mem);
	if (err)
		warn_once(hp, SRC_MEMINFO, W_PARSE, "cannot parse", "err", err);
	hp->mem_ok = !err;
}

static void tick_fs(struct host_priv *hp)
{
	bool full;
	int n;

	hp->nfs = 0;
	if (load(hp, SRC_MOUNTINFO))
		return;
	n = host_parse_mountinfo(hp->buf, hp->fs, HOST_MAX_FS, &full);
	if (full)
		warn_once(hp, SRC_MOUNTINFO, W_FULL, "more filesystems than the poller reports",
			  "limit", HOST_MAX_FS);
	hp->nfs = (unsigned int)n;
	/* Local filesystems only (see skip_fstypes): statvfs reads the superblock's counters. */
	for (unsigned int i = 0; i < hp->nfs; i++) {
		struct statvfs st;

		if (statvfs(hp->fs[i].mountpoint, &st))
			hp->fs[i].statted = false;
		else
			host_fs_set_stat(&hp->fs[i], &st);
	}
}

/* /sys/block lists whole disks only; "cciss/c0d0" appears there as "cciss!c0d0". */
static bool sys_block_has(const char *name, void *arg)
{
	char path[sizeof("/sys/block/") + HOST_DISK_NAME_MAX];
	char *p;

	snprintf(path, sizeof(path), "/sys/block/%s", name);
	for (p = path + strlen("/sys/block/"); *p; p++) {
		if (*p == '/')
			*p = '!';
	}
	return !access(path, F_OK);
}

static void tick_disks(struct host_priv *hp)
{
	bool full;
	int n;

	hp->ndisks = 0;
	if (load(hp, SRC_DISKSTATS))
		return;
	n = host_parse_diskstats(hp->buf, hp->disks, HOST_MAX_DISKS, sys_block_has, NULL, &full);
	if (full)
		warn_once(hp, SRC_DISKSTATS, W_FULL, "more disks than the poller reports", "limit",
			  HOST_MAX_DISKS);
	hp->ndisks = (unsigned int)n;
}

static void tick_net(struct host_priv *hp)
{
	bool full;
	int n;

	hp->nifs = 0;
	if (load(hp, SRC_NETDEV))
		return;
	n = host_parse_netdev(hp->buf, hp->ifs, HOST_MAX_IFS, &full);
	if (full)
		warn_once(hp, SRC_NETDEV, W_FULL, "more interfaces than the poller reports",
			  "limit", HOST_MAX_IFS);
	hp->nifs = (unsigned int)n;
}

static void tick_psi(struct host_priv *hp)
{
	for (int r = 0; r < PSI_COUNT; r++) {
		enum host_src src = (enum host_src)(SRC_PSI_CPU + r);
		int err;

		hp->psi[r].has_some = hp->psi[r].has_full = false;
		if (!hp->psi_on[r] || load(hp, src))
			continue;
		err = host_parse_pressure(hp->buf, &hp->psi[r]);
		if (err)
			warn_once(hp, src, W_PARSE, "cannot parse", "err", err);
	}
}

static void host_tick(struct poller *pl, uint64_t now_ms)
{
	struct host_priv *hp = pl->priv;

	tick_cpu(hp);
	tick_mem(hp);
	tick_fs(hp);
	tick_disks(hp);
	tick_net(hp);
	tick_psi(hp);
}

static int host_init(struct poller *pl)
{
	struct host_priv *hp;
	long hz = sysconf(_SC_CLK_TCK);
	int err = 0;

	hp = calloc(1, sizeof(*hp));
	if (!hp)
		return -ENOMEM;
	hp->buf = malloc(HOST_BUF_MAX);
	if (!hp->buf) {
		err = -ENOMEM;
		goto out;
	}
	hp->hz = hz > 0 ? (double)hz : 100.0;
	/*
	 * PSI: absent before 4.20 or without CONFIG_PSI, and the files answer
	 * EOPNOTSUPP when it is compiled in but off (psi=0). Asked once.
	 */
	for (int r = 0; r < PSI_COUNT; r++) {
		int fd = open(sources[SRC_PSI_CPU + r].path, O_RDONLY | O_CLOEXEC);
		char c;

		hp->psi_on[r] = fd >= 0 && read(fd, &c, 1) == 1;
		if (fd >= 0)
			close(fd);
		if (!hp->psi_on[r])
			log_info("no pressure stall information", "poller=host resource=%s",
				 psi_names[r]);
	}
	pl->priv = hp;
out:
	if (err) {
		free(hp->buf);
		free(hp);
	}
	return err;
}

static void collect_cpu_mem(struct host_priv *hp, struct expo *e)
{
	struct expo_label l[1];

	if (hp->cpu_ok) {
		expo_family(e, "erpscope_host_cpu_utilization_ratio", EXPO_GAUGE,
			    "Share of all CPUs' time spent not idle (iowait counts as idle) between the last two polls, 5 s apart; since boot until there are two.");
		expo_sample(e, NULL, 0, hp->cpu_ratio);
		expo_family(e, "erpscope_host_cpu_seconds_total", EXPO_COUNTER,
			    "CPU time of all CPUs since boot by mode, from /proc/stat (guest time is inside user and nice).");
		for (int m = 0; m < HOST_CPU_NMODES; m++) {
			l[0] = (struct expo_label){ "mode", cpu_modes[m] };
			expo_sample(e, l, 1, (double)hp->cpu.ticks[m] / hp->hz);
		}
	}
	if (hp->mem_ok) {
		const struct host_mem *m = &hp->mem;
		double avail = m->available > m->total ? (double)m->total : (double)m->available;

		expo_family(e, "erpscope_host_memory_utilization_ratio", EXPO_GAUGE,
			    "1 - MemAvailable / MemTotal: the share of memory that new work cannot get without swapping or reclaiming.");
		expo_sample(e, NULL, 0, 1.0 - avail / (double)m->total);
		expo_family(e, "erpscope_host_memory_bytes", EXPO_GAUGE,
			    "Memory and swap from /proc/meminfo: total, available (MemAvailable), swap_total, swap_free.");
		l[0] = (struct expo_label){ "kind", "total" };
		expo_sample_u64(e, l, 1, m->total);
		l[0] = (struct expo_label){ "kind", "available" };
		expo_sample_u64(e, l, 1, m->available);
		l[0] = (struct expo_label){ "kind", "swap_total" };
		expo_sample_u64(e, l, 1, m->swap_total);
		l[0] = (struct expo_label){ "kind", "swap_free" };
		expo_sample_u64(e, l, 1, m->swap_free);
	}
}

static void fs_labels(const struct host_fs *fs, struct expo_label *l)
{
	l[0] = (struct expo_label){ "mountpoint", fs->mountpoint };
	l[1] = (struct expo_label){ "device", fs->device };
	l[2] = (struct expo_label){ "fstype", fs->fstype };
}

static void collect_fs(struct host_priv *hp, struct expo *e)
{
	struct expo_label l[3];
	unsigned int n = 0;

	for (unsigned int i = 0; i < hp->nfs; i++)
		n += hp->fs[i].statted;
	if (!n)
		return;
	expo_family(e, "erpscope_filesystem_used_ratio", EXPO_GAUGE,
		    "Used share of a local filesystem as df's Use% computes it: used / (used + available to unprivileged users).");
	for (unsigned int i = 0; i < hp->nfs; i++) {
		if (!hp->fs[i].statted)
			continue;
		fs_labels(&hp->fs[i], l);
		expo_sample(e, l, 3, hp->fs[i].used_ratio);
	}
	expo_family(e, "erpscope_filesystem_size_bytes", EXPO_GAUGE,
		    "Size of a local filesystem (statvfs f_blocks * f_frsize).");
	for (unsigned int i = 0; i < hp->nfs; i++) {
		if (!hp->fs[i].statted)
			continue;
		fs_labels(&hp->fs[i], l);
		expo_sample_u64(e, l, 3, hp->fs[i].size_bytes);
	}
	expo_family(e, "erpscope_filesystem_avail_bytes", EXPO_GAUGE,
		    "Space of a local filesystem available to unprivileged users (statvfs f_bavail * f_frsize).");
	for (unsigned int i = 0; i < hp->nfs; i++) {
		if (!hp->fs[i].statted)
			continue;
		fs_labels(&hp->fs[i], l);
		expo_sample_u64(e, l, 3, hp->fs[i].avail_bytes);
	}
}

static void collect_io(struct host_priv *hp, struct expo *e)
{
	static const char *const ops[2] = { "read", "write" };
	static const char *const dirs[2] = { "receive", "transmit" };
	struct expo_label l[2];

	if (hp->ndisks) {
		expo_family(e, "erpscope_disk_ops_total", EXPO_COUNTER,
			    "Completed read and write requests per whole disk, from /proc/diskstats.");
		for (unsigned int i = 0; i < hp->ndisks; i++) {
			l[0] = (struct expo_label){ "device", hp->disks[i].name };
			for (int d = 0; d < 2; d++) {
				l[1] = (struct expo_label){ "op", ops[d] };
				expo_sample_u64(e, l, 2, hp->disks[i].ops[d]);
			}
		}
		expo_family(e, "erpscope_disk_bytes_total", EXPO_COUNTER,
			    "Bytes read and written per whole disk, from /proc/diskstats.");
		for (unsigned int i = 0; i < hp->ndisks; i++) {
			l[0] = (struct expo_label){ "device", hp->disks[i].name };
			for (int d = 0; d < 2; d++) {
				l[1] = (struct expo_label){ "op", ops[d] };
				expo_sample_u64(e, l, 2, hp->disks[i].bytes[d]);
			}
		}
	}
	if (hp->nifs) {
		expo_family(e, "erpscope_network_bytes_total", EXPO_COUNTER,
			    "Bytes received and transmitted per network interface, loopback included, from /proc/net/dev.");
		for (unsigned int i = 0; i < hp->nifs; i++) {
			l[0] = (struct expo_label){ "interface", hp->ifs[i].name };
			for (int d = 0; d < 2; d++) {
				l[1] = (struct expo_label){ "direction", dirs[d] };
				expo_sample_u64(e, l, 2, hp->ifs[i].bytes[d]);
			}
		}
		expo_family(e, "erpscope_network_packets_total", EXPO_COUNTER,
			    "Packets received and transmitted per network interface, loopback included, from /proc/net/dev.");
		for (unsigned int i = 0; i < hp->nifs; i++) {
			l[0] = (struct expo_label){ "interface", hp->ifs[i].name };
			for (int d = 0; d < 2; d++) {
				l[1] = (struct expo_label){ "direction", dirs[d] };
				expo_sample_u64(e, l, 2, hp->ifs[i].packets[d]);
			}
		}
	}
}

static void collect_psi(struct host_priv *hp, struct expo *e)
{
	struct expo_label l[2];
	bool any = false;

	for (int r = 0; r < PSI_COUNT; r++)
		any |= hp->psi[r].has_some;
	if (!any)
		return;
	expo_family(e, "erpscope_pressure_seconds_total", EXPO_COUNTER,
		    "Time at least one (some) or every (full) non-idle task was stalled waiting for the resource, from /proc/pressure.");
	for (int r = 0; r < PSI_COUNT; r++) {
		const struct host_psi *ps = &hp->psi[r];

		l[0] = (struct expo_label){ "resource", psi_names[r] };
		if (ps->has_some) {
			l[1] = (struct expo_label){ "kind", "some" };
			expo_sample(e, l, 2, (double)ps->some_us / 1e6);
		}
		if (ps->has_some && ps->has_full) {
			l[1] = (struct expo_label){ "kind", "full" };
			expo_sample(e, l, 2, (double)ps->full_us / 1e6);
		}
	}
}

static void host_collect(struct poller *pl, struct expo *e)
{
	struct host_priv *hp = pl->priv;

	collect_cpu_mem(hp, e);
	collect_fs(hp, e);
	collect_io(hp, e);
	collect_psi(hp, e);
}

static void host_free(struct poller *pl)
{
	struct host_priv *hp = pl->priv;

	if (!hp)
		return;
	free(hp->buf);
	free(hp);
	pl->priv = NULL;
}

/*
 * The CPU counters now, for host_view(): a reader that takes rates between
 * its own reads (the diagnose snapshots) cannot use the poller's last read,
 * up to 5 s old and on a clock of its own: two snapshots 5 s apart could
 * carry the same one, or reads 10 s apart. Never below what the poller or
 * the last call read (tick_cpu()'s rule); the poller's own values and its
 * ratio gauge are left as they are.
 */
static int cpu_now(struct host_priv *hp, struct host_cpu *out)
{
	struct host_cpu raw;
	int err = load(hp, SRC_STAT);

	if (err || (err = host_parse_stat(hp->buf, &raw)))
		return err;
	for (int m = 0; m < HOST_CPU_NMODES; m++) {
		if (hp->cpu_seen && raw.ticks[m] < hp->cpu.ticks[m])
			raw.ticks[m] = hp->cpu.ticks[m];
		if (raw.ticks[m] < hp->cpu_view.ticks[m])
			raw.ticks[m] = hp->cpu_view.ticks[m];
	}
	hp->cpu_view = raw;
	*out = raw;
	return 0;
}

int host_view(struct erpscope *es, struct host_view *v)
{
	struct host_priv *hp = NULL;
	struct host_cpu cpu;

	memset(v, 0, sizeof(*v));
	for (int i = 0; i < es->npollers; i++)
		if (es->pollers[i].ops == &host_poller_ops && es->pollers[i].up)
			hp = es->pollers[i].priv;
	if (!hp)
		return -ENODEV;
	v->cpu_ok = !cpu_now(hp, &cpu);
	for (int m = 0; v->cpu_ok && m < HOST_CPU_NMODES; m++) {
		v->cpu_ticks += cpu.ticks[m];
		if (m != HOST_CPU_IDLE && m != HOST_CPU_IOWAIT)
			v->cpu_busy_ticks += cpu.ticks[m];
	}
	tick_psi(hp); /* counters only: read now for the same reason */
	v->mem_ok = hp->mem_ok;
	v->mem_total = hp->mem.total;
	v->mem_available = hp->mem.available;
	for (unsigned int i = 0; i < hp->nfs; i++) {
		const struct host_fs *f = &hp->fs[i];

		if (f->statted && f->size_bytes && f->used_ratio > v->fs_used) {
			v->fs_used = f->used_ratio;
			v->fs_size = f->size_bytes;
			snprintf(v->fs_mount, sizeof(v->fs_mount), "%.95s", f->mountpoint);
		}
	}
	for (int r = 0; r < PSI_COUNT; r++) {
		if (hp->psi_on[r] && hp->psi[r].has_some) {
			v->psi_ok = true;
			v->psi_some_us[r] = hp->psi[r].some_us;
		}
	}
	return 0;
}

const struct poller_ops host_poller_ops = {
	.name = "host",
	.interval_ms = HOST_INTERVAL_MS,
	.init = host_init,
	.tick = host_tick,
	.collect = host_collect,
	.free = host_free,
};
