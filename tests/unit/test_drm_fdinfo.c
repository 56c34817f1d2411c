// SPDX-License-Identifier: GPL-2.0
/*
 * DRM fdinfo: the parser against files in the formats the kernel documents
 * for i915, xe and amdgpu (tests/unit/fixtures/drm/), garbage and missing
 * keys; the accumulator's de-duplication by drm-client-id across
 * descriptors, counters that go back, xe's cycles turned into time, and
 * closed clients whose time stays counted.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "gpu/drm_fdinfo.h"

static char fixture_dir[512];

static void load(const char *name, struct drm_fdinfo *fi, int want)
{
	char path[600], buf[8192];
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", fixture_dir, name);
	f = fopen(path, "r");
	CHECK(f != NULL);
	if (f) {
		n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
	}
	CHECK_INT(drm_fdinfo_parse(buf, n, fi), want);
}

static const struct drm_engine *engine(const struct drm_fdinfo *fi, const char *name)
{
	for (int i = 0; i < fi->nengines; i++) {
		if (!strcmp(fi->engines[i].name, name))
			return &fi->engines[i];
	}
	return NULL;
}

static const struct drm_region *region(const struct drm_fdinfo *fi, const char *name)
{
	for (int i = 0; i < fi->nregions; i++) {
		if (!strcmp(fi->regions[i].name, name))
			return &fi->regions[i];
	}
	return NULL;
}

static const struct drm_series *series(const struct drm_acc *a, const char *name, bool memory)
{
	for (unsigned int i = 0; i < a->nseries; i++) {
		if (a->series[i].memory == memory && !strcmp(a->series[i].name, name))
			return &a->series[i];
	}
	return NULL;
}

static void test_i915(void)
{
	struct drm_fdinfo fi;
	const struct drm_engine *e;
	const struct drm_region *r;

	load("i915.txt", &fi, 0);
	CHECK_STR(fi.driver, "i915");
	CHECK_STR(fi.pdev, "0000:00:02.0");
	CHECK(fi.has_client_id);
	CHECK_INT(fi.client_id, 7);
	CHECK_INT(fi.nengines, 4); /* render, copy, video, video-enhance; not capacity */
	e = engine(&fi, "render");
	CHECK(e && e->has_ns && e->ns == 25662044495ull);
	CHECK(engine(&fi, "video-enhance") != NULL);
	CHECK(engine(&fi, "capacity-video") == NULL);
	r = region(&fi, "system0");
	CHECK(r && r->total == 5ull << 20 && r->resident == 4ull << 20);
	r = region(&fi, "stolen-system0");
	CHECK(r && r->has_total && r->total == 0);
	CHECK_INT(fi.bad_lines, 0);
}

static void test_xe(void)
{
	struct drm_fdinfo fi;
	const struct drm_engine *e;
	const struct drm_region *r;

	load("xe.txt", &fi, 0);
	CHECK_STR(fi.driver, "xe");
	CHECK_INT(fi.client_id, 52);
	e = engine(&fi, "rcs");
	CHECK(e && !e->has_ns && e->has_cycles && e->cycles == 28257900 &&
	      e->total_cycles == 7655183225ull);
	/* drm-total-cycles-<engine> is not a memory region named cycles-<engine> */
	CHECK(region(&fi, "cycles-rcs") == NULL);
	CHECK_INT(fi.nregions, 3);
	r = region(&fi, "vram0");
	CHECK(r && r->total == 23992ull << 10 && r->resident == 23992ull << 10);
	CHECK_INT(fi.nengines, 5);
	CHECK_INT(fi.bad_lines, 0);
}

static void test_amdgpu(void)
{
	struct drm_fdinfo fi;
	const struct drm_region *r;

	load("amdgpu.txt", &fi, 0);
	CHECK_STR(fi.driver, "amdgpu");
	CHECK_STR(fi.pdev, "0000:0b:00.0");
	CHECK_INT(fi.client_id, 25);
	CHECK(engine(&fi, "gfx") && engine(&fi, "gfx")->ns == 4372478040ull);
	/* the older drm-memory-<region> is resident memory */
	r = region(&fi, "vram");
	CHECK(r && r->has_resident && !r->has_total && r->resident == 137232ull << 10);
	r = region(&fi, "gtt");
	CHECK(r && r->resident == 5820ull << 10);
	CHECK(region(&fi, "visible-vram") == NULL); /* amd- keys are not DRM's */
	CHECK_INT(fi.bad_lines, 0);
}

static void test_garbage(void)
{
	struct drm_fdinfo fi;

	load("garbage.txt", &fi, 0);
	CHECK_STR(fi.driver, "i915");
	CHECK(!fi.has_client_id);
	CHECK(fi.pdev[0] == '\0');
	CHECK_INT(fi.nengines, 1);
	CHECK(engine(&fi, "video") && engine(&fi, "video")->ns == 42);
	CHECK_INT(fi.nregions, 0);
	/* client-id, render, the long name, PiB, the overflow, pdev */
	CHECK_INT(fi.bad_lines, 6);
	load("not_drm.txt", &fi, -ENOENT);
	CHECK_INT(drm_fdinfo_parse("", 0, &fi), -ENOENT);
	CHECK_INT(drm_fdinfo_parse("drm-driver:", 11, &fi), -ENOENT);
	/* cut at every byte: never past the end, never a crash */
	{
		char buf[8192];
		size_t n;
		FILE *f;

		snprintf(buf, sizeof(buf), "%s/i915.txt", fixture_dir);
		f = fopen(buf, "r");
		n = f ? fread(buf, 1, sizeof(buf), f) : 0;
		if (f)
			fclose(f);
		for (size_t i = 0; i <= n; i++)
			drm_fdinfo_parse(buf, i, &fi);
		CHECK_INT(drm_fdinfo_parse(buf, n, &fi), 0);
	}
}

static void round_of(struct drm_acc *a, const char *const *files, int nfiles, uint64_t now_ns)
{
	struct drm_fdinfo fi;

	drm_acc_begin(a);
	for (int i = 0; i < nfiles; i++) {
		load(files[i], &fi, 0);
		CHECK_INT(drm_acc_add(a, &fi, now_ns), 0);
	}
	CHECK_INT(drm_acc_end(a), 0);
}

static void test_acc(void)
{
	static const char *const twice[] = { "i915.txt", "i915.txt" };
	static const char *const back[] = { "i915_backwards.txt" };
	static const char *const later[] = { "i915_later.txt" };
	static const char *const other[] = { "i915_client8.txt" };
	struct drm_acc a = { 0 };
	const struct drm_series *s;

	/* one client seen through two descriptors counts once */
	round_of(&a, twice, 2, 1000);
	s = series(&a, "render", false);
	CHECK(s && s->value == 25662044495ull);
	s = series(&a, "system0", true);
	CHECK(s && s->value == 4ull << 20);
	CHECK_INT(a.nclients, 1);
	/* a counter that goes back keeps the larger value */
	round_of(&a, back, 1, 2000);
	s = series(&a, "render", false);
	CHECK(s && s->value == 25662044495ull);
	round_of(&a, later, 1, 3000);
	s = series(&a, "render", false);
	CHECK(s && s->value == 30000000000ull);
	/* the client closes: its time stays, its memory goes */
	round_of(&a, NULL, 0, 4000);
	CHECK_INT(a.nclients, 0);
	s = series(&a, "render", false);
	CHECK(s && s->value == 30000000000ull);
	s = series(&a, "system0", true);
	CHECK(s && s->value == 0);
	/* another client adds to what the closed one counted */
	round_of(&a, other, 1, 5000);
	s = series(&a, "render", false);
	CHECK(s && s->value == 31000000000ull);
	drm_acc_free(&a);
}

static void test_xe_cycles(void)
{
	static const char *const first[] = { "xe.txt" };
	static const char *const second[] = { "xe_later.txt" };
	struct drm_acc a = { 0 };
	const struct drm_series *s;

	round_of(&a, first, 1, 1000000000ull);
	s = series(&a, "rcs", false);
	CHECK(s && s->value == 0); /* time from the second reading on */
	/* 1e6 of 4e6 cycles busy over 2 s: 0.5 s */
	round_of(&a, second, 1, 3000000000ull);
	s = series(&a, "rcs", false);
	CHECK(s && s->value == 500000000ull);
	s = series(&a, "bcs", false);
	CHECK(s && s->value == 0);
	s = series(&a, "vram0", true);
	CHECK(s && s->value == 23992ull << 10);
	/* counters reset (driver reload): nothing added, then counted from there */
	round_of(&a, first, 1, 4000000000ull);
	s = series(&a, "rcs", false);
	CHECK(s && s->value == 500000000ull);
	round_of(&a, second, 1, 5000000000ull);
	s = series(&a, "rcs", false);
	CHECK(s && s->value == 750000000ull);
	drm_acc_free(&a);
}

int main(void)
{
	const char *slash = strrchr(__FILE__, '/');

	snprintf(fixture_dir, sizeof(fixture_dir), "%.*s/fixtures/drm",
		 slash ? (int)(slash - __FILE__) : 1, slash ? __FILE__ : ".");
	test_i915();
	test_xe();
	test_amdgpu();
	test_garbage();
	test_acc();
	test_xe_cycles();
	return check_summary("test_drm_fdinfo");
}
