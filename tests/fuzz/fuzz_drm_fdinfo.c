// SPDX-License-Identifier: GPL-2.0
/*
 * DRM fdinfo: written by GPU drivers, read for any tracked worker. The
 * parser must stay within the bytes given and keep names terminated; the
 * accumulator must not grow past its bounds nor let engine time go back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/drm_fdinfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct drm_acc acc;
	struct drm_fdinfo fi;
	uint64_t before[64] = { 0 };
	unsigned int nbefore;

	if (drm_fdinfo_parse((const char *)data, size, &fi))
		return 0;
	if (fi.nengines > DRM_MAX_ENGINES || fi.nregions > DRM_MAX_REGIONS ||
	    !memchr(fi.driver, 0, sizeof(fi.driver)) || !memchr(fi.pdev, 0, sizeof(fi.pdev)))
		abort();
	for (int i = 0; i < fi.nengines; i++) {
		if (!memchr(fi.engines[i].name, 0, DRM_NAME_MAX))
			abort();
	}
	nbefore = acc.nseries < 64 ? acc.nseries : 64;
	for (unsigned int i = 0; i < nbefore; i++)
		before[i] = acc.series[i].value;
	drm_acc_begin(&acc);
	drm_acc_add(&acc, &fi, size);
	drm_acc_end(&acc);
	for (unsigned int i = 0; i < nbefore; i++) {
		if (!acc.series[i].memory && acc.series[i].value < before[i])
			abort();
	}
	if (acc.nseries > 4096)
		drm_acc_free(&acc);
	return 0;
}
