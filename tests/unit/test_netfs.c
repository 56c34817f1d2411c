// SPDX-License-Identifier: GPL-2.0
/*
 * What the daemon may touch of other processes' files: network and FUSE
 * mounts from a mountinfo fixture (never stat()ed under), and which owners'
 * PostgreSQL binaries it reads.
 */
#include <string.h>
#include <linux/types.h>

#include "check.h"
#include "host/netfs.h"
#include "pg/pg.h"

static const char mountinfo_txt[] =
	"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
	"30 22 0:26 / /srv/nfs rw,relatime shared:9 - nfs4 fs:/export rw,vers=4.2\n"
	"31 22 0:27 / /home/odoo/my\\040addons rw,nosuid shared:10 - fuse.sshfs u@h:/a rw\n"
	"32 22 0:28 / /mnt/smb rw - cifs //h/s rw\n"
	"33 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs udev rw\n"
	"34 22 0:29 / /opt/odoo rw shared:11 - xfs /dev/sdb1 rw\n"
	"bad line\n";

static void test_types(void)
{
	CHECK(netfs_type("nfs"));
	CHECK(netfs_type("nfs4"));
	CHECK(netfs_type("cifs"));
	CHECK(netfs_type("fuse"));
	CHECK(netfs_type("fuseblk"));
	CHECK(netfs_type("fuse.sshfs"));
	CHECK(netfs_type("virtiofs"));
	CHECK(!netfs_type("ext4"));
	CHECK(!netfs_type("xfs"));
	CHECK(!netfs_type("tmpfs"));
}

static void test_mountinfo(void)
{
	struct netfs_mounts m;

	netfs_parse(mountinfo_txt, &m);
	CHECK_INT(m.n, 3);
	CHECK(!m.all);
	CHECK_STR(m.dir[0], "/srv/nfs");
	CHECK_STR(m.dir[1], "/home/odoo/my addons");
	CHECK_STR(m.dir[2], "/mnt/smb");
	CHECK(netfs_under(&m, "/srv/nfs"));
	CHECK(netfs_under(&m, "/srv/nfs/addons/sale/models"));
	CHECK(netfs_under(&m, "/home/odoo/my addons/x"));
	CHECK(!netfs_under(&m, "/srv/nfsx/a"));
	CHECK(!netfs_under(&m, "/opt/odoo/addons/sale"));
	CHECK(!netfs_under(&m, "/usr/lib/python3/dist-packages"));

	/* More network mounts than are kept: every path may block. */
	{
		char big[4096] = "";

		for (int i = 0; i < NETFS_MAX + 1; i++) {
			char line[128];

			snprintf(line, sizeof(line), "%d 22 0:%d / /n%d rw - nfs h:/e rw\n", 40 + i,
				 40 + i, i);
			strcat(big, line);
		}
		netfs_parse(big, &m);
		CHECK(m.all);
		CHECK(netfs_under(&m, "/usr/lib"));
	}
	/* A network filesystem at / covers everything. */
	netfs_parse("1 0 0:30 / / rw - nfs h:/root rw\n", &m);
	CHECK(netfs_under(&m, "/usr/lib/python3"));
	netfs_parse("", &m);
	CHECK(!netfs_under(&m, "/usr/lib/python3"));
}

static void test_owner(void)
{
	CHECK(pg_bin_owner_ok(0, 0));     /* root's, run by root */
	CHECK(pg_bin_owner_ok(0, 110));   /* Debian's, run by postgres */
	CHECK(pg_bin_owner_ok(110, 110)); /* the cluster user's own build */
	CHECK(!pg_bin_owner_ok(65534, 110)); /* nobody's, run by postgres */
	CHECK(!pg_bin_owner_ok(65534, 0));   /* nobody's, run by root */
	CHECK(!pg_bin_owner_ok(1000, 110));
}

int main(void)
{
	test_types();
	test_mountinfo();
	test_owner();
	return check_summary("test_netfs");
}
