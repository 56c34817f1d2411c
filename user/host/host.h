/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The "host" poller's parsers: /proc/stat, /proc/meminfo, /proc/self/mountinfo,
 * /proc/diskstats, /proc/net/dev and /proc/pressure/<resource>. Each takes
 * NUL-terminated text and fills fixed-size structs; none does I/O, so unit
 * tests feed them fixture strings. Tables are bounded: what does not fit is
 * dropped and reported through *full.
 */
#ifndef ERPSCOPE_HOST_H
#define ERPSCOPE_HOST_H

#include <stdbool.h>
#include <stdint.h>

struct statvfs;

#define HOST_MAX_FS 64
#define HOST_MAX_DISKS 64
#define HOST_MAX_IFS 64
#define HOST_MOUNT_MAX 512 /* longer mount points are skipped, never cut */
#define HOST_DEVICE_MAX 256
#define HOST_FSTYPE_MAX 32
#define HOST_DISK_NAME_MAX 32 /* the kernel's DISK_NAME_LEN */
#define HOST_IFNAME_MAX 16 /* IFNAMSIZ */

enum host_cpu_mode {
	HOST_CPU_USER,
	HOST_CPU_NICE,
	HOST_CPU_SYSTEM,
	HOST_CPU_IDLE,
	HOST_CPU_IOWAIT,
	HOST_CPU_IRQ,
	HOST_CPU_SOFTIRQ,
	HOST_CPU_STEAL,
	HOST_CPU_NMODES
};

/* /proc/stat's aggregate "cpu" line, in USER_HZ ticks. */
struct host_cpu {
	uint64_t ticks[HOST_CPU_NMODES];
};

/* Bytes. */
struct host_mem {
	uint64_t total, available, swap_total, swap_free;
};

struct host_fs {
	char mountpoint[HOST_MOUNT_MAX];
	char device[HOST_DEVICE_MAX];
	char fstype[HOST_FSTYPE_MAX];
	unsigned int major, minor;
	/* From statvfs, filled by host_fs_set_stat(). */
	bool statted;
	uint64_t size_bytes, avail_bytes;
	double used_ratio;
};

enum host_dir { HOST_READ, HOST_WRITE }; /* receive, transmit for interfaces */

struct host_disk {
	char name[HOST_DISK_NAME_MAX];
	uint64_t ops[2], bytes[2];
};

struct host_netif {
	char name[HOST_IFNAME_MAX];
	uint64_t bytes[2], packets[2];
};

struct host_psi {
	bool has_some, has_full;
	uint64_t some_us, full_us;
};

/* ---------------------------------------------------------------- for other capabilities */

struct erpscope;

/* What the host poller read last (user/diagnose reads it). */
struct host_view {
	bool cpu_ok, mem_ok;
	uint64_t cpu_busy_ticks, cpu_ticks; /* cumulative: busy is all but idle and iowait */
	uint64_t mem_total, mem_available;
	char fs_mount[96]; /* the fullest filesystem ("" none) */
	double fs_used;    /* its used share, as node_exporter's size - avail */
	uint64_t fs_size;
	bool psi_ok;
	uint64_t psi_some_us[3]; /* cumulative stall: cpu, memory, io */
};

/*
 * Fills v: the CPU and pressure counters read now, the rest as of the
 * poller's last tick. 0, or -ENODEV when the host poller is not running.
 */
int host_view(struct erpscope *es, struct host_view *v);

/* Returns 0, or -EINVAL when there is no well-formed "cpu " line. */
int host_parse_stat(const char *text, struct host_cpu *cpu);

/*
 * Non-idle share of the CPU time between prev and cur (idle = idle + iowait),
 * or since boot when prev is NULL. A mode that went backwards counts as no
 * time. Returns -1 when no time passed.
 */
double host_cpu_busy_ratio(const struct host_cpu *prev, const struct host_cpu *cur);

/* Returns 0, or -EINVAL unless MemTotal and MemAvailable are both there. */
int host_parse_meminfo(const char *text, struct host_mem *mem);

/*
 * Real filesystems of a mountinfo text, one per filesystem (major:minor),
 * named by its shortest mount point; a mount later covered by another at the
 * same place is dropped. Returns how many were stored in fs[0..max).
 */
int host_parse_mountinfo(const char *text, struct host_fs *fs, unsigned int max, bool *full);

/* Whether a mount of this type from this source is a real, local filesystem. */
bool host_fs_wanted(const char *fstype, const char *device);

/* Fills the statvfs-derived fields; false (and statted unset) when st is empty. */
bool host_fs_set_stat(struct host_fs *fs, const struct statvfs *st);

/* Tells a whole disk from a partition (the poller looks in /sys/block). */
typedef bool (*host_is_disk_fn)(const char *name, void *arg);

/* Whole disks of a diskstats text, loop and RAM devices aside. */
int host_parse_diskstats(const char *text, struct host_disk *d, unsigned int max,
			 host_is_disk_fn is_disk, void *arg, bool *full);

/* Every interface of a /proc/net/dev text. */
int host_parse_netdev(const char *text, struct host_netif *n, unsigned int max, bool *full);

/* Returns 0 when at least the "some" line is there, else -EINVAL. */
int host_parse_pressure(const char *text, struct host_psi *psi);

/*
 * Decodes the octal escapes (\040 for a space, \134 for a backslash) that
 * /proc uses in mount points and sources. src has len bytes. Returns the
 * decoded length, or -ENAMETOOLONG when it does not fit with its NUL.
 */
int host_unescape(char *dst, unsigned int size, const char *src, unsigned int len);

/* The poller itself (user/host/host.c), for the daemon's table and tests. */
struct poller_ops;
extern const struct poller_ops host_poller_ops;

#endif
