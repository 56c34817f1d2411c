// SPDX-License-Identifier: GPL-2.0
/*
 * Which paths are on network or FUSE filesystems, from mountinfo: the host
 * poller does not statvfs them, the Python module resolver does not stat
 * under them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/host.h"
#include "host/netfs.h"
#include "core/readfile.h"

static const char *const net_fstypes[] = {
	"nfs",	"nfs4",	     "cifs", "smb3",   "smbfs",	   "ceph",
	"glusterfs", "9p", "afs",  "lustre", "virtiofs", "rpc_pipefs",
};

bool netfs_type(const char *fstype)
{
	if (!strncmp(fstype, "fuse", 4))
		return true;
	for (size_t i = 0; i < sizeof(net_fstypes) / sizeof(net_fstypes[0]); i++) {
		if (!strcmp(fstype, net_fstypes[i]))
			return true;
	}
	return false;
}

/* The n-th space-separated field of [p, e) (0 first); its length in *len. */
static const char *field(const char *p, const char *e, unsigned int n, size_t *len)
{
	for (;;) {
		const char *f = p;

		while (p < e && *p != ' ')
			p++;
		if (!n--) {
			*len = (size_t)(p - f);
			return f;
		}
		if (p >= e)
			return NULL;
		p++;
	}
}

/* "36 35 98:0 /root /mnt opts [optional...] - type source superopts" */
static void parse_line(const char *p, const char *e, struct netfs_mounts *m)
{
	const char *mp, *sep, *type;
	char fstype[64], dir[NETFS_PATH_MAX];
	size_t mplen, tlen;

	mp = field(p, e, 4, &mplen);
	sep = mp ? strstr(mp + mplen, " - ") : NULL;
	if (!mp || !sep || sep >= e)
		return;
	type = field(sep + 3, e, 0, &tlen);
	if (!type || !tlen || tlen >= sizeof(fstype))
		return;
	memcpy(fstype, type, tlen);
	fstype[tlen] = 0;
	if (!netfs_type(fstype))
		return;
	if (m->n == NETFS_MAX || host_unescape(dir, sizeof(dir), mp, mplen) < 0) {
		m->all = true; /* cannot be kept: assume any path may be under it */
		return;
	}
	memcpy(m->dir[m->n++], dir, sizeof(dir));
}

void netfs_parse(const char *mountinfo, struct netfs_mounts *m)
{
	memset(m, 0, sizeof(*m));
	for (const char *p = mountinfo; *p;) {
		const char *e = strchr(p, '\n');

		if (!e)
			e = p + strlen(p);
		parse_line(p, e, m);
		p = *e ? e + 1 : e;
	}
}

void netfs_load(pid_t pid, struct netfs_mounts *m)
{
	size_t size = 256 * 1024;
	char path[64], *buf = malloc(size);

	snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int)pid);
	if (!buf || read_small_file(path, buf, size) < 0) {
		memset(m, 0, sizeof(*m));
		m->all = true;
	} else {
		netfs_parse(buf, m);
	}
	free(buf);
}

bool netfs_under(const struct netfs_mounts *m, const char *path)
{
	if (m->all)
		return true;
	for (unsigned int i = 0; i < m->n; i++) {
		size_t n = strlen(m->dir[i]);

		if (n == 1 && m->dir[i][0] == '/')
			return true;
		if (!strncmp(path, m->dir[i], n) && (path[n] == '/' || !path[n]))
			return true;
	}
	return false;
}
