// SPDX-License-Identifier: GPL-2.0
/* The host poller's parsers on /proc text taken from real machines. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "check.h"
#include "core/expo.h"
#include "host/host.h"
#include "core/poller.h"

static int near(double a, double b)
{
	double d = a - b;

	return d < 1e-9 && d > -1e-9;
}

/* A 2-CPU VM, kernel 6.1: the intr line shortened. */
static const char stat_txt[] = "cpu  121575 3 26487 258161 1100 7 182 74 11 2\n"
			       "cpu0 47960 0 14522 140917 120 0 58 33 0 0\n"
			       "cpu1 73614 0 11965 117243 980 0 124 40 0 0\n"
			       "intr 14563782 0 9 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
			       "ctxt 33487216\n"
			       "btime 1718000000\n"
			       "processes 123456\n"
			       "procs_running 2\n"
			       "procs_blocked 0\n"
			       "softirq 9876543 0 123 4 5 6 0 7 8 0 9\n";

static void test_stat(void)
{
	struct host_cpu c, prev, cur;

	CHECK_INT(host_parse_stat(stat_txt, &c), 0);
	CHECK_INT(c.ticks[HOST_CPU_USER], 121575);
	CHECK_INT(c.ticks[HOST_CPU_NICE], 3);
	CHECK_INT(c.ticks[HOST_CPU_SYSTEM], 26487);
	CHECK_INT(c.ticks[HOST_CPU_IDLE], 258161);
	CHECK_INT(c.ticks[HOST_CPU_IOWAIT], 1100);
	CHECK_INT(c.ticks[HOST_CPU_IRQ], 7);
	CHECK_INT(c.ticks[HOST_CPU_SOFTIRQ], 182);
	CHECK_INT(c.ticks[HOST_CPU_STEAL], 74);
	/* since boot: guest (11, 2) is inside user and nice, not added again */
	CHECK(near(host_cpu_busy_ratio(NULL, &c),
		   (121575.0 + 3 + 26487 + 7 + 182 + 74) /
			   (121575.0 + 3 + 26487 + 258161 + 1100 + 7 + 182 + 74)));

	/* 2.6.11-era line: four modes only */
	CHECK_INT(host_parse_stat("cpu  10 20 30 40\ncpu0 10 20 30 40\n", &c), 0);
	CHECK_INT(c.ticks[HOST_CPU_IDLE], 40);
	CHECK_INT(c.ticks[HOST_CPU_STEAL], 0);
	CHECK_INT(host_parse_stat("cpu0 1 2 3 4\n", &c), -EINVAL);
	CHECK_INT(host_parse_stat("cpu  1 2 3\n", &c), -EINVAL);
	CHECK_INT(host_parse_stat("", &c), -EINVAL);

	/* between two readings: 300 busy, 100 idle+iowait */
	memset(&prev, 0, sizeof(prev));
	prev.ticks[HOST_CPU_USER] = 1000;
	prev.ticks[HOST_CPU_IDLE] = 5000;
	prev.ticks[HOST_CPU_IOWAIT] = 50;
	cur = prev;
	cur.ticks[HOST_CPU_USER] += 200;
	cur.ticks[HOST_CPU_SYSTEM] += 60;
	cur.ticks[HOST_CPU_STEAL] += 40;
	cur.ticks[HOST_CPU_IDLE] += 80;
	cur.ticks[HOST_CPU_IOWAIT] += 20;
	CHECK(near(host_cpu_busy_ratio(&prev, &cur), 0.75));
	/* iowait stepping back counts as no time, not as a huge delta */
	cur.ticks[HOST_CPU_IOWAIT] = 10;
	CHECK(near(host_cpu_busy_ratio(&prev, &cur), 300.0 / 380.0));
	/* nothing passed */
	CHECK(host_cpu_busy_ratio(&prev, &prev) < 0);
}

static const char meminfo_txt[] = "MemTotal:       24684092 kB\n"
				  "MemFree:        20123456 kB\n"
				  "MemAvailable:   22000000 kB\n"
				  "Buffers:          123456 kB\n"
				  "Cached:          1234567 kB\n"
				  "SwapCached:            0 kB\n"
				  "SwapTotal:       2097148 kB\n"
				  "SwapFree:        2000000 kB\n"
				  "HugePages_Total:       0\n"
				  "Hugepagesize:       2048 kB\n";

static void test_meminfo(void)
{
	struct host_mem m;

	CHECK_INT(host_parse_meminfo(meminfo_txt, &m), 0);
	CHECK_INT(m.total, 24684092ull * 1024);
	CHECK_INT(m.available, 22000000ull * 1024);
	CHECK_INT(m.swap_total, 2097148ull * 1024);
	CHECK_INT(m.swap_free, 2000000ull * 1024);
	/* no swap lines at all: zero, still valid */
	CHECK_INT(host_parse_meminfo("MemTotal: 100 kB\nMemAvailable: 25 kB\n", &m), 0);
	CHECK_INT(m.swap_total, 0);
	CHECK_INT(m.available, 25 * 1024);
	/* before 3.14 there is no MemAvailable: refused rather than guessed */
	CHECK_INT(host_parse_meminfo("MemTotal: 100 kB\nMemFree: 25 kB\n", &m), -EINVAL);
	CHECK_INT(host_parse_meminfo("MemTotal: 0 kB\nMemAvailable: 0 kB\n", &m), -EINVAL);
	/* "MemTotalX" is not MemTotal */
	CHECK_INT(host_parse_meminfo("MemTotalX: 100 kB\nMemAvailable: 25 kB\n", &m), -EINVAL);
}

static void test_unescape(void)
{
	char b[16];

	CHECK_INT(host_unescape(b, sizeof(b), "/a\\040b", 7), 4);
	CHECK_STR(b, "/a b");
	CHECK_INT(host_unescape(b, sizeof(b), "x\\134y\\011z\\012", 15), 6);
	CHECK_STR(b, "x\\y\tz\n");
	/* cut short, not octal, or NUL: kept as written */
	CHECK_INT(host_unescape(b, sizeof(b), "a\\04", 4), 4);
	CHECK_STR(b, "a\\04");
	CHECK_INT(host_unescape(b, sizeof(b), "\\089\\000", 8), 8);
	CHECK_STR(b, "\\089\\000");
	/* only len bytes count */
	CHECK_INT(host_unescape(b, sizeof(b), "/x/y", 2), 2);
	CHECK_STR(b, "/x");
	/* 15 bytes fit in 16 with the NUL; 16 do not */
	CHECK_INT(host_unescape(b, sizeof(b), "0123456789abcde", 15), 15);
	CHECK_INT(host_unescape(b, sizeof(b), "0123456789abcdef", 16), -ENAMETOOLONG);
	/* a long escaped name that decodes short enough */
	CHECK_INT(host_unescape(b, 4, "\\040\\040\\040", 12), 3);
	CHECK_STR(b, "   ");
}

/*
 * A host's mountinfo as a systemd service with PrivateTmp and ProtectHome
 * sees it, with most of what can go wrong.
 */
static const char mountinfo_txt[] =
	"22 27 0:21 / /proc rw,relatime shared:12 - proc proc rw\n"
	"23 27 0:22 / /sys rw,relatime shared:2 - sysfs sysfs rw\n"
	"24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334492k\n"
	"25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw\n"
	"27 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,discard\n"
	"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
	"32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
	"42 23 0:13 / /sys/kernel/tracing rw,relatime - tracefs tracefs rw\n"
	"43 23 0:39 / /sys/fs/bpf rw,relatime - bpf bpf rw\n"
	/* a second disk whose mount point has a space, optional fields */
	"50 27 8:17 / /srv/odoo\\040files rw,noatime shared:30 master:2 - xfs /dev/sdb1 rw\n"
	/* bind mounts of it, and of / (PrivateTmp: a subtree of / at /tmp) */
	"51 27 8:17 /filestore /var/lib/odoo rw,noatime shared:30 - xfs /dev/sdb1 rw\n"
	"52 27 254:1 /tmp/systemd-private-0f1e-erpscope.service-Ab12/tmp /tmp rw - ext4 /dev/vda1 rw\n"
	"53 27 254:1 /home /home ro,relatime - ext4 /dev/vda1 rw\n"
	/* the shorter bind mount comes later and names the filesystem */
	"54 27 8:17 / /s rw - xfs /dev/sdb1 rw\n"
	/* pseudo, image and remote filesystems, FUSE */
	"60 27 7:0 / /snap/core/1 ro - squashfs /dev/loop0 ro\n"
	"61 27 0:50 / /var/lib/docker/overlay2/abc/merged rw - overlay overlay rw,lowerdir=/x\n"
	"62 27 0:51 / /mnt/nfs rw - nfs4 10.0.0.1:/export rw,vers=4.2\n"
	"63 27 0:52 / /mnt/ssh rw - fuse.sshfs user@host:/ rw\n"
	"64 27 8:33 / /mnt/usb rw - fuseblk /dev/sdc1 rw\n"
	"65 27 0:53 / /proc/sys/fs/binfmt_misc rw - binfmt_misc binfmt_misc rw\n"
	"66 27 11:0 / /media/cdrom ro - iso9660 /dev/sr0 ro\n"
	/* ZFS: a dataset name, not a /dev path */
	"70 27 0:60 / /tank/pg rw - zfs tank/pg rw,xattr\n"
	/* a disk mounted, then covered by a tmpfs at the same place */
	"80 27 8:49 / /var/cache rw - ext4 /dev/sdd1 rw\n"
	"81 80 0:61 / /var/cache rw - tmpfs tmpfs rw\n"
	/* a backslash in a mount point, and a bcachefs without /dev/ */
	"90 27 8:65 / /data\\134x rw - ext4 /dev/disk/by-label/my\\040disk rw\n"
	"91 27 0:70 / /bc rw - bcachefs UUID=1234 rw\n"
	/* malformed: no separator, no major:minor */
	"99 27 8:80 / /broken rw ext4 /dev/sdf1 rw\n"
	"garbage\n"
	"\n"
	"100 27 x:y / /bad rw - ext4 /dev/sdg1 rw";

static void test_mountinfo(void)
{
	struct host_fs fs[HOST_MAX_FS];
	bool full;
	int n;

	n = host_parse_mountinfo(mountinfo_txt, fs, HOST_MAX_FS, &full);
	CHECK_INT(n, 5);
	CHECK(!full);
	if (n != 5)
		return;
	CHECK_STR(fs[0].mountpoint, "/");
	CHECK_STR(fs[0].device, "/dev/vda1");
	CHECK_STR(fs[0].fstype, "ext4");
	CHECK_INT(fs[0].major, 254);
	CHECK_INT(fs[0].minor, 1);
	CHECK(!fs[0].statted);
	CHECK_STR(fs[1].mountpoint, "/s");
	CHECK_STR(fs[1].device, "/dev/sdb1");
	CHECK_STR(fs[1].fstype, "xfs");
	CHECK_INT(fs[1].major, 8);
	CHECK_INT(fs[1].minor, 17);
	CHECK_STR(fs[2].mountpoint, "/tank/pg");
	CHECK_STR(fs[2].device, "tank/pg");
	CHECK_STR(fs[2].fstype, "zfs");
	CHECK_STR(fs[3].mountpoint, "/data\\x");
	CHECK_STR(fs[3].device, "/dev/disk/by-label/my disk");
	CHECK_STR(fs[4].mountpoint, "/bc");
	CHECK_STR(fs[4].device, "UUID=1234");
	CHECK_STR(fs[4].fstype, "bcachefs");

	/* without the shorter bind mount, the escaped path names sdb1 */
	n = host_parse_mountinfo(
		"50 27 8:17 / /srv/odoo\\040files rw,noatime shared:30 master:2 - xfs /dev/sdb1 rw\n"
		"51 27 8:17 /filestore /var/lib/odoo/filestore rw - xfs /dev/sdb1 rw\n",
		fs, HOST_MAX_FS, &full);
	CHECK_INT(n, 1);
	CHECK_STR(fs[0].mountpoint, "/srv/odoo files");

	/* the table is bounded */
	n = host_parse_mountinfo(mountinfo_txt, fs, 2, &full);
	CHECK_INT(n, 2);
	CHECK(full);
	CHECK_STR(fs[1].mountpoint, "/s");

	/* a mount point too long to keep is skipped, not cut */
	{
		static char big[HOST_MOUNT_MAX + 200];
		int o = snprintf(big, sizeof(big), "27 1 254:1 / /");

		memset(big + o, 'a', HOST_MOUNT_MAX);
		strcpy(big + o + HOST_MOUNT_MAX, " rw - ext4 /dev/vda1 rw\n");
		n = host_parse_mountinfo(big, fs, HOST_MAX_FS, &full);
		CHECK_INT(n, 0);
	}
	CHECK_INT(host_parse_mountinfo("", fs, HOST_MAX_FS, &full), 0);

	CHECK(host_fs_wanted("ext4", "/dev/sda1"));
	CHECK(host_fs_wanted("btrfs", "/dev/mapper/root"));
	CHECK(host_fs_wanted("xfs", "rootfs-by-uuid"));
	CHECK(!host_fs_wanted("tmpfs", "/dev/shm"));
	CHECK(!host_fs_wanted("fuse", "/dev/fuse"));
	CHECK(!host_fs_wanted("nfs", "/dev/nfs"));
	CHECK(!host_fs_wanted("ecryptfs", "/home/.private"));
}

static void test_statvfs(void)
{
	struct host_fs fs;
	struct statvfs st;

	memset(&fs, 0, sizeof(fs));
	memset(&st, 0, sizeof(st));
	/* 1000 blocks, 300 free of which 250 for users: df says 700/950 = 74% */
	st.f_bsize = 4096;
	st.f_frsize = 4096;
	st.f_blocks = 1000;
	st.f_bfree = 300;
	st.f_bavail = 250;
	CHECK(host_fs_set_stat(&fs, &st));
	CHECK(fs.statted);
	CHECK(near(fs.used_ratio, 700.0 / 950.0));
	CHECK_INT(fs.size_bytes, 4096000);
	CHECK_INT(fs.avail_bytes, 1024000);
	/* full for users while root still has its reserve */
	st.f_bavail = 0;
	CHECK(host_fs_set_stat(&fs, &st));
	CHECK(near(fs.used_ratio, 1.0));
	/* no f_frsize: f_bsize */
	st.f_frsize = 0;
	st.f_bsize = 1024;
	CHECK(host_fs_set_stat(&fs, &st));
	CHECK_INT(fs.size_bytes, 1024000);
	/* empty: nothing to report */
	st.f_blocks = 0;
	st.f_bfree = 0;
	CHECK(!host_fs_set_stat(&fs, &st));
	CHECK(!fs.statted);
}

/* Kernel 6.1: 20 fields, partitions, loop/ram/zram, device-mapper. */
static const char diskstats_txt[] =
	"   7       0 loop0 57 0 2222 12 0 0 0 0 0 28 12 0 0 0 0 0 0\n"
	"   1       0 ram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	" 254       0 vda 159750 34454 9601938 170504 20949 32715 3224336 14356 0 17044 186365 13474 25 1554096 1402 2217 102\n"
	" 254       1 vda1 159000 34454 9600000 170000 20900 32715 3224000 14300 0 17000 186000 13474 25 1554096 1402 0 0\n"
	" 259       0 nvme0n1 5 0 40 1 6 0 48 2 0 3 3 0 0 0 0 0 0\n"
	" 259       1 nvme0n1p1 5 0 40 1 6 0 48 2 0 3 3 0 0 0 0 0 0\n"
	" 253       0 dm-0 10 0 80 1 20 0 160 2 0 3 3\n"
	" 252       0 zram0 4 0 32 0 4 0 32 0 0 0 0 0 0 0 0 0 0\n"
	" 104       0 cciss/c0d0 1 0 8 0 2 0 16 0 0 0 0\n"
	/* 2.6.25-era partition line: 4 fields */
	"   8       1 sda1 100 200 300 400\n"
	"   8       0 sda 1 2 3\n"
	"garbage\n";

static bool fixture_disk(const char *name, void *arg)
{
	static const char *const whole[] = {
		"vda", "nvme0n1", "dm-0", "zram0", "cciss/c0d0", "sda"
	};

	(*(int *)arg)++;
	for (size_t i = 0; i < sizeof(whole) / sizeof(whole[0]); i++) {
		if (!strcmp(name, whole[i]))
			return true;
	}
	return false;
}

static void test_diskstats(void)
{
	struct host_disk d[HOST_MAX_DISKS];
	bool full;
	int asked = 0, n;

	n = host_parse_diskstats(diskstats_txt, d, HOST_MAX_DISKS, fixture_disk, &asked, &full);
	CHECK_INT(n, 4);
	CHECK(!full);
	/* loop0, ram0, zram0 and the short lines never reach /sys */
	CHECK_INT(asked, 6);
	if (n != 4)
		return;
	CHECK_STR(d[0].name, "vda");
	CHECK_INT(d[0].ops[HOST_READ], 159750);
	CHECK_INT(d[0].ops[HOST_WRITE], 20949);
	CHECK_INT(d[0].bytes[HOST_READ], 9601938ull * 512);
	CHECK_INT(d[0].bytes[HOST_WRITE], 3224336ull * 512);
	CHECK_STR(d[1].name, "nvme0n1");
	CHECK_INT(d[1].bytes[HOST_WRITE], 48 * 512);
	CHECK_STR(d[2].name, "dm-0");
	CHECK_INT(d[2].ops[HOST_WRITE], 20);
	CHECK_STR(d[3].name, "cciss/c0d0");
	CHECK_INT(d[3].bytes[HOST_READ], 8 * 512);

	n = host_parse_diskstats(diskstats_txt, d, 2, fixture_disk, &asked, &full);
	CHECK_INT(n, 2);
	CHECK(full);
	/* no predicate: partitions too */
	n = host_parse_diskstats(diskstats_txt, d, HOST_MAX_DISKS, NULL, NULL, &full);
	CHECK_INT(n, 6);
}

static const char netdev_txt[] =
	"Inter-|   Receive                                                |  Transmit\n"
	" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
	"    lo: 37299948   48249    0    0    0     0          0         0 37299948   48249    0    0    0     0       0          0\n"
	"  eth0: 77774233    1570    0    0    0     0          0         0    77893     960    0    0    0     0       0          0\n"
	/* a 15-character name, and a counter wide enough to touch the colon */
	"veth0123456789a:18446744073709551615 1 0 0 0 0 0 0 2 3 0 0 0 0 0 0\n"
	"short: 1 2 3\n";

static void test_netdev(void)
{
	struct host_netif nif[HOST_MAX_IFS];
	bool full;
	int n;

	n = host_parse_netdev(netdev_txt, nif, HOST_MAX_IFS, &full);
	CHECK_INT(n, 3);
	CHECK(!full);
	if (n != 3)
		return;
	CHECK_STR(nif[0].name, "lo");
	CHECK_INT(nif[0].bytes[HOST_READ], 37299948);
	CHECK_INT(nif[0].packets[HOST_READ], 48249);
	CHECK_INT(nif[0].bytes[HOST_WRITE], 37299948);
	CHECK_INT(nif[0].packets[HOST_WRITE], 48249);
	CHECK_STR(nif[1].name, "eth0");
	CHECK_INT(nif[1].bytes[HOST_READ], 77774233);
	CHECK_INT(nif[1].packets[HOST_READ], 1570);
	CHECK_INT(nif[1].bytes[HOST_WRITE], 77893);
	CHECK_INT(nif[1].packets[HOST_WRITE], 960);
	CHECK_STR(nif[2].name, "veth0123456789a");
	CHECK(nif[2].bytes[HOST_READ] == 18446744073709551615ull);
	CHECK_INT(nif[2].packets[HOST_WRITE], 3);
	n = host_parse_netdev(netdev_txt, nif, 1, &full);
	CHECK_INT(n, 1);
	CHECK(full);
	/* a name past IFNAMSIZ is not a kernel's: skipped */
	n = host_parse_netdev("abcdefghijklmnop: 1 2 3 4 5 6 7 8 9 10\n", nif, HOST_MAX_IFS, &full);
	CHECK_INT(n, 0);
}

static void test_pressure(void)
{
	struct host_psi p;

	CHECK_INT(host_parse_pressure("some avg10=3.65 avg60=3.40 avg300=7.44 total=181301702\n"
				      "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
				      &p),
		  0);
	CHECK(p.has_some && p.has_full);
	CHECK_INT(p.some_us, 181301702);
	CHECK_INT(p.full_us, 0);
	/* cpu before 5.13: no "full" line */
	CHECK_INT(host_parse_pressure("some avg10=0.00 avg60=0.05 avg300=0.08 total=9577582\n", &p),
		  0);
	CHECK(p.has_some && !p.has_full);
	CHECK_INT(p.some_us, 9577582);
	CHECK_INT(host_parse_pressure("full avg10=0.00 total=5\n", &p), -EINVAL);
	CHECK_INT(host_parse_pressure("some avg10=0.00\nfull total=5\n", &p), -EINVAL);
	CHECK_INT(host_parse_pressure("", &p), -EINVAL);
}

/* The poller itself on this machine's /proc: the families are there. */
static void test_poller(void)
{
	struct poller pl;
	struct expo e;
	const char *u;

	memset(&pl, 0, sizeof(pl));
	pl.ops = &host_poller_ops;
	CHECK_STR(host_poller_ops.name, "host");
	CHECK_INT(host_poller_ops.interval_ms, 5000);
	CHECK_INT(host_poller_ops.init(&pl), 0);
	if (!pl.priv)
		return;
	host_poller_ops.tick(&pl, 0);
	host_poller_ops.tick(&pl, 5000);
	expo_init(&e, EXPO_TEXT_004);
	host_poller_ops.collect(&pl, &e);
	CHECK_INT(expo_finish(&e), 0);
	CHECK(e.buf && strstr(e.buf, "# TYPE erpscope_host_cpu_seconds_total counter\n"));
	CHECK(e.buf && strstr(e.buf, "erpscope_host_cpu_seconds_total{mode=\"idle\"} "));
	CHECK(e.buf && strstr(e.buf, "# TYPE erpscope_host_memory_utilization_ratio gauge\n"));
	CHECK(e.buf && strstr(e.buf, "erpscope_host_memory_bytes{kind=\"total\"} "));
	CHECK(e.buf &&
	      strstr(e.buf,
		     "erpscope_network_bytes_total{interface=\"lo\",direction=\"receive\"} "));
	u = e.buf ? strstr(e.buf, "\nerpscope_host_cpu_utilization_ratio ") : NULL;
	CHECK(u);
	if (u) {
		double r = strtod(u + strlen("\nerpscope_host_cpu_utilization_ratio "), NULL);

		CHECK(r >= 0 && r <= 1);
	}
	expo_free(&e);
	host_poller_ops.free(&pl);
	CHECK(!pl.priv);
}

int main(void)
{
	test_stat();
	test_meminfo();
	test_unescape();
	test_mountinfo();
	test_statvfs();
	test_diskstats();
	test_netdev();
	test_pressure();
	test_poller();
	return check_summary("test_host");
}
