/* SPDX-License-Identifier: GPL-2.0 */
/*
 * DRM client usage from /proc/<pid>/fdinfo/<fd> (the kernel's
 * Documentation/gpu/drm-usage-stats.rst): the parser of one file, and the
 * per-worker accumulator that de-duplicates clients by drm-client-id across
 * descriptors, keeps the larger value when a counter goes backwards, turns
 * xe's cycle counters into time, and keeps what closed clients counted so
 * the worker's counters never go back. No I/O here.
 */
#ifndef ERPSCOPE_GPU_DRM_FDINFO_H
#define ERPSCOPE_GPU_DRM_FDINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DRM_NAME_MAX 32
#define DRM_MAX_ENGINES 16
#define DRM_MAX_REGIONS 8

struct drm_engine {
	char name[DRM_NAME_MAX];
	uint64_t ns; /* drm-engine-<name> */
	uint64_t cycles, total_cycles; /* drm-cycles-<name>, drm-total-cycles-<name> (xe) */
	bool has_ns, has_cycles, has_total_cycles;
};

struct drm_region {
	char name[DRM_NAME_MAX];
	uint64_t total, resident; /* bytes */
	bool has_total, has_resident;
};

struct drm_fdinfo {
	char driver[DRM_NAME_MAX];
	char pdev[DRM_NAME_MAX];
	uint64_t client_id;
	bool has_client_id;
	int nengines, nregions;
	struct drm_engine engines[DRM_MAX_ENGINES];
	struct drm_region regions[DRM_MAX_REGIONS];
	unsigned int bad_lines; /* drm- keys whose value did not parse */
};

/*
 * Parses one fdinfo file. Returns 0, or -ENOENT when it is not a DRM client
 * (no drm-driver line). Unknown keys are skipped; garbage counts in bad_lines.
 */
int drm_fdinfo_parse(const char *text, size_t len, struct drm_fdinfo *out);

/* One client as the accumulator follows it. */
struct drm_client {
	struct drm_fdinfo fi; /* last values; engines[].ns is the accumulated time */
	uint64_t last_ns; /* when it was last read (for cycle counters) */
	bool seen; /* in the current round */
};

/* A series of one worker: engine time (counter) or region memory (gauge). */
struct drm_series {
	char driver[DRM_NAME_MAX], pdev[DRM_NAME_MAX], name[DRM_NAME_MAX];
	bool memory;
	uint64_t retired; /* engine ns of clients that closed */
	uint64_t value; /* engine ns, or resident bytes */
};

struct drm_acc {
	struct drm_client *clients;
	unsigned int nclients;
	size_t cap_clients;
	struct drm_series *series;
	unsigned int nseries;
	size_t cap_series;
};

/* A round: begin, add every DRM fd's fdinfo, end. */
void drm_acc_begin(struct drm_acc *a);
/* now_ns: CLOCK_MONOTONIC. Returns 0 or -ENOMEM. */
int drm_acc_add(struct drm_acc *a, const struct drm_fdinfo *fi, uint64_t now_ns);
/* Retires the clients not added this round and recomputes the series. */
int drm_acc_end(struct drm_acc *a);
void drm_acc_free(struct drm_acc *a);

#endif
