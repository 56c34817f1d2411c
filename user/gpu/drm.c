// SPDX-License-Identifier: GPL-2.0
/*
 * The DRM collector: GPU use of tracked workers on any driver that
 * implements the kernel's DRM usage stats (i915, xe, amdgpu, msm, panfrost,
 * ...). A worker's descriptors are listed when it is discovered and again
 * after each full rescan of /proc; each poll reads only the fdinfo of those
 * that are DRM devices.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/types.h>

#include "../../bpf/procs.h"
#include "core/erpscope.h"
#include "core/grow.h"
#include "core/log.h"
#include "core/readfile.h"
#include "gpu/gpu.h"
#include "procs/proctable.h"

#define DRM_FDINFO_MAX 8192

const char *const drm_err_names[DRM_NERR] = {
	[DRM_ERR_READ] = "read",
	[DRM_ERR_PARSE] = "parse",
};

int gpu_drm_init(struct gpu_priv *g)
{
	struct drm_state *ds = &g->drm;

	ds->n = procs_nslots(g->es->procs) - ES_SLOT_FIRST_WORKER;
	ds->w = calloc(ds->n, sizeof(*ds->w));
	ds->buf = malloc(DRM_FDINFO_MAX);
	if (!ds->w || !ds->buf)
		return -ENOMEM;
	ds->up = true;
	return 0;
}

static void forget(struct drm_worker *dw)
{
	drm_acc_free(&dw->acc);
	free(dw->fds);
	memset(dw, 0, sizeof(*dw));
}

static int add_fd(struct drm_worker *dw, int fd)
{
	if (grow_array(&dw->fds, &dw->capfds, (size_t)dw->nfds + 1, sizeof(*dw->fds), 4))
		return -ENOMEM;
	dw->fds[dw->nfds++] = fd;
	return 0;
}

/* The descriptors of pid that are DRM devices (/dev/dri/card*, renderD*, accel). */
static int list_fds(struct drm_worker *dw)
{
	char path[64], link[64];
	struct dirent *de;
	DIR *d;
	int err = 0;

	dw->nfds = 0;
	snprintf(path, sizeof(path), "/proc/%u/fd", dw->pid);
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		char *end;
		long fd = strtol(de->d_name, &end, 10);
		ssize_t n;

		if (*end || end == de->d_name)
			continue;
		snprintf(path, sizeof(path), "/proc/%u/fd/%ld", dw->pid, fd);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (strncmp(link, "/dev/dri/", 9) && strncmp(link, "/dev/accel/", 11))
			continue;
		err = add_fd(dw, (int)fd);
		if (err)
			break;
	}
	closedir(d);
	return err;
}

static void read_clients(struct gpu_priv *g, struct drm_worker *dw, uint64_t now_ns)
{
	struct drm_state *ds = &g->drm;
	struct drm_fdinfo fi;
	char path[64];

	drm_acc_begin(&dw->acc);
	for (unsigned int i = 0; i < dw->nfds; i++) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/%u/fdinfo/%d", dw->pid, dw->fds[i]);
		n = read_small_file(path, ds->buf, DRM_FDINFO_MAX);
		if (n < 0) {
			if (n != -ENOENT)
				ds->errors[DRM_ERR_READ]++;
			continue; /* closed since it was listed */
		}
		if (drm_fdinfo_parse(ds->buf, (size_t)n, &fi))
			continue; /* the fd number now holds something else */
		if (fi.bad_lines)
			ds->errors[DRM_ERR_PARSE]++;
		if (!fi.has_client_id)
			fi.client_id = (1ull << 63) | (uint64_t)dw->fds[i]; /* one client per fd */
		if (drm_acc_add(&dw->acc, &fi, now_ns))
			ds->errors[DRM_ERR_READ]++;
	}
	if (drm_acc_end(&dw->acc))
		ds->errors[DRM_ERR_READ]++;
}

struct drm_walk {
	struct gpu_priv *g;
	uint64_t now_ns;
};

static void visit(void *arg, const struct slot_view *sv)
{
	struct drm_walk *wk = arg;
	struct drm_state *ds = &wk->g->drm;
	const struct worker *w = sv->w;
	struct drm_worker *dw;
	int err;

	/* PostgreSQL's processes hold no GPU: their descriptors are not listed */
	if (!w || w->exited || sv->slot < ES_SLOT_FIRST_WORKER ||
	    sv->slot - ES_SLOT_FIRST_WORKER >= ds->n || !strncmp(role_name(w->role), "pg_", 3))
		return;
	dw = &ds->w[sv->slot - ES_SLOT_FIRST_WORKER];
	if (dw->pid != w->pid || dw->starttime != w->starttime) {
		forget(dw);
		dw->pid = w->pid;
		dw->starttime = w->starttime;
	}
	dw->seen = true;
	dw->role = w->role;
	snprintf(dw->worker, sizeof(dw->worker), "%s", w->label);
	if (!dw->listed || dw->seen_scan != w->seen_scan) {
		err = list_fds(dw);
		if (err) {
			ds->errors[DRM_ERR_READ]++;
			log_debug("gpu: cannot list descriptors", "collector=drm pid=%u err=%d",
				  dw->pid, err);
		}
		dw->listed = true;
		dw->seen_scan = w->seen_scan;
	}
	if (dw->nfds || dw->acc.nclients)
		read_clients(wk->g, dw, wk->now_ns);
}

void gpu_drm_tick(struct gpu_priv *g, uint64_t now_ns)
{
	struct drm_state *ds = &g->drm;
	struct drm_walk wk = { .g = g, .now_ns = now_ns };

	for (unsigned int i = 0; i < ds->n; i++)
		ds->w[i].seen = false;
	procs_for_each_slot(g->es->procs, visit, &wk);
	for (unsigned int i = 0; i < ds->n; i++) {
		if (ds->w[i].pid && !ds->w[i].seen)
			forget(&ds->w[i]); /* the worker is gone: its series go with it */
	}
}

void gpu_drm_free(struct gpu_priv *g)
{
	struct drm_state *ds = &g->drm;

	for (unsigned int i = 0; ds->w && i < ds->n; i++)
		forget(&ds->w[i]);
	free(ds->w);
	free(ds->buf);
	memset(ds, 0, sizeof(*ds));
}
