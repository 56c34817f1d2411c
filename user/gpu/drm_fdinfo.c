// SPDX-License-Identifier: GPL-2.0
/* DRM fdinfo: the parser and the per-worker accumulator (see the header). */
#include "gpu/drm_fdinfo.h"
#include "core/grow.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool name_ok(const char *s, size_t n)
{
	if (!n || n >= DRM_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.' || c == ':'))
			return false;
	}
	return true;
}

static void copy_name(char *dst, const char *s, size_t n)
{
	memcpy(dst, s, n);
	dst[n] = '\0';
}

/* "<uint>[ unit]": ns for engines, bytes (KiB, MiB, GiB) for memory. */
static int parse_value(const char *v, size_t n, bool memory, uint64_t *out)
{
	uint64_t x = 0, mult = 1;
	size_t i = 0;

	while (i < n && (v[i] == ' ' || v[i] == '\t'))
		i++;
	if (i == n || v[i] < '0' || v[i] > '9')
		return -EINVAL;
	for (; i < n && v[i] >= '0' && v[i] <= '9'; i++) {
		if (x > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	while (i < n && (v[i] == ' ' || v[i] == '\t'))
		i++;
	if (i < n) {
		const char *u = v + i;
		size_t un = n - i;

		while (un && (u[un - 1] == ' ' || u[un - 1] == '\t' || u[un - 1] == '\r'))
			un--;
		if (!memory && un == 2 && !memcmp(u, "ns", 2))
			mult = 1;
		else if (memory && un == 3 && !memcmp(u, "KiB", 3))
			mult = 1ull << 10;
		else if (memory && un == 3 && !memcmp(u, "MiB", 3))
			mult = 1ull << 20;
		else if (memory && un == 3 && !memcmp(u, "GiB", 3))
			mult = 1ull << 30;
		else if (un)
			return -EINVAL;
	}
	if (mult > 1 && x > UINT64_MAX / mult)
		return -ERANGE;
	*out = x * mult;
	return 0;
}

static struct drm_engine *engine_of(struct drm_fdinfo *fi, const char *s, size_t n)
{
	for (int i = 0; i < fi->nengines; i++) {
		if (strlen(fi->engines[i].name) == n && !memcmp(fi->engines[i].name, s, n))
			return &fi->engines[i];
	}
	if (fi->nengines == DRM_MAX_ENGINES)
		return NULL;
	memset(&fi->engines[fi->nengines], 0, sizeof(fi->engines[0]));
	copy_name(fi->engines[fi->nengines].name, s, n);
	return &fi->engines[fi->nengines++];
}

static struct drm_region *region_of(struct drm_fdinfo *fi, const char *s, size_t n)
{
	for (int i = 0; i < fi->nregions; i++) {
		if (strlen(fi->regions[i].name) == n && !memcmp(fi->regions[i].name, s, n))
			return &fi->regions[i];
	}
	if (fi->nregions == DRM_MAX_REGIONS)
		return NULL;
	memset(&fi->regions[fi->nregions], 0, sizeof(fi->regions[0]));
	copy_name(fi->regions[fi->nregions].name, s, n);
	return &fi->regions[fi->nregions++];
}

static bool prefixed(const char *k, size_t kn, const char *p, const char **rest, size_t *rn)
{
	size_t pn = strlen(p);

	if (kn <= pn || memcmp(k, p, pn))
		return false;
	*rest = k + pn;
	*rn = kn - pn;
	return true;
}

enum key_kind { K_SKIP, K_ENGINE, K_CYCLES, K_TOTAL_CYCLES, K_TOTAL, K_RESIDENT, K_LEGACY_MEMORY };

/* Longest prefixes first: drm-total-cycles- before drm-total-. */
static const struct {
	const char *prefix;
	enum key_kind kind;
} keys[] = {
	{ "drm-engine-capacity-", K_SKIP },
	{ "drm-engine-", K_ENGINE },
	{ "drm-total-cycles-", K_TOTAL_CYCLES },
	{ "drm-cycles-", K_CYCLES },
	{ "drm-total-", K_TOTAL },
	{ "drm-resident-", K_RESIDENT },
	{ "drm-memory-", K_LEGACY_MEMORY },
};

static void parse_line(struct drm_fdinfo *fi, const char *k, size_t kn, const char *v, size_t vn)
{
	const char *rest;
	size_t rn;
	uint64_t x;

	if (kn == 10 && !memcmp(k, "drm-driver", 10)) {
		while (vn && (*v == ' ' || *v == '\t'))
			v++, vn--;
		while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\r'))
			vn--;
		if (name_ok(v, vn))
			copy_name(fi->driver, v, vn);
		else
			fi->bad_lines++;
		return;
	}
	if (kn == 8 && !memcmp(k, "drm-pdev", 8)) {
		while (vn && (*v == ' ' || *v == '\t'))
			v++, vn--;
		while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\r'))
			vn--;
		if (name_ok(v, vn))
			copy_name(fi->pdev, v, vn);
		else
			fi->bad_lines++;
		return;
	}
	if (kn == 13 && !memcmp(k, "drm-client-id", 13)) {
		if (parse_value(v, vn, false, &fi->client_id))
			fi->bad_lines++;
		else
			fi->has_client_id = true;
		return;
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		struct drm_engine *en;
		struct drm_region *r;
		bool mem;

		if (!prefixed(k, kn, keys[i].prefix, &rest, &rn))
			continue;
		if (keys[i].kind == K_SKIP)
			return;
		mem = keys[i].kind >= K_TOTAL;
		if (!name_ok(rest, rn) || parse_value(v, vn, mem, &x)) {
			fi->bad_lines++;
			return;
		}
		if (!mem) {
			en = engine_of(fi, rest, rn);
			if (!en)
				return;
			if (keys[i].kind == K_ENGINE)
				en->ns = x, en->has_ns = true;
			else if (keys[i].kind == K_CYCLES)
				en->cycles = x, en->has_cycles = true;
			else
				en->total_cycles = x, en->has_total_cycles = true;
			return;
		}
		r = region_of(fi, rest, rn);
		if (!r)
			return;
		if (keys[i].kind == K_TOTAL) {
			r->total = x;
			r->has_total = true;
		} else if (keys[i].kind == K_RESIDENT || !r->has_resident) {
			/* drm-memory-<region>: the older name of resident memory */
			r->resident = x;
			r->has_resident = true;
		}
		return;
	}
}

int drm_fdinfo_parse(const char *text, size_t len, struct drm_fdinfo *out)
{
	const char *p = text, *end = text + len;
	memset(out, 0, sizeof(*out));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end, *colon = memchr(p, ':', (size_t)(le - p));

		if (colon && colon - p >= 4 && !memcmp(p, "drm-", 4))
			parse_line(out, p, (size_t)(colon - p), colon + 1,
				   (size_t)(le - colon - 1));
		p = le + 1;
	}
	return out->driver[0] ? 0 : -ENOENT;
}

/* ------------------------------------------------------------ accumulator */

/* Sums saturate: a driver's nonsense must not wrap a counter back to 0. */
static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static bool same_client(const struct drm_fdinfo *a, const struct drm_fdinfo *b)
{
	return a->client_id == b->client_id && !strcmp(a->driver, b->driver) &&
	       !strcmp(a->pdev, b->pdev);
}

void drm_acc_begin(struct drm_acc *a)
{
	for (unsigned int i = 0; i < a->nclients; i++)
		a->clients[i].seen = false;
}

static struct drm_engine *find_engine(struct drm_fdinfo *fi, const char *name)
{
	for (int i = 0; i < fi->nengines; i++) {
		if (!strcmp(fi->engines[i].name, name))
			return &fi->engines[i];
	}
	return NULL;
}

/* Folds a new reading of an engine into the client's accumulated time. */
static void fold_engine(struct drm_engine *acc, const struct drm_engine *now, uint64_t dt_ns)
{
	if (now->has_ns && now->ns > acc->ns)
		acc->ns = now->ns; /* a counter that went back keeps the larger */
	if (now->has_cycles && now->has_total_cycles && acc->has_cycles && acc->has_total_cycles &&
	    now->cycles >= acc->cycles && now->total_cycles > acc->total_cycles) {
		double busy = (double)(now->cycles - acc->cycles) /
			      (double)(now->total_cycles - acc->total_cycles);

		acc->ns = sat_add(acc->ns, (uint64_t)((busy > 1 ? 1 : busy) * (double)dt_ns));
	}
	/* after a reset (a driver reload) the next reading counts from here */
	if (now->has_cycles && now->has_total_cycles) {
		acc->cycles = now->cycles;
		acc->total_cycles = now->total_cycles;
		acc->has_cycles = acc->has_total_cycles = true;
	}
}

int drm_acc_add(struct drm_acc *a, const struct drm_fdinfo *fi, uint64_t now_ns)
{
	struct drm_client *c = NULL;

	for (unsigned int i = 0; i < a->nclients && !c; i++) {
		if (same_client(&a->clients[i].fi, fi))
			c = &a->clients[i];
	}
	if (!c) {
		if (grow_array(&a->clients, &a->cap_clients, (size_t)a->nclients + 1,
			       sizeof(*a->clients), 4))
			return -ENOMEM;
		c = &a->clients[a->nclients++];
		memset(c, 0, sizeof(*c));
		/* xe's cycle counters give time from the second reading on */
		memcpy(&c->fi, fi, sizeof(*fi));
		c->last_ns = now_ns;
		c->seen = true;
		return 0;
	}
	for (int e = 0; e < fi->nengines; e++) {
		struct drm_engine *acc = find_engine(&c->fi, fi->engines[e].name);

		if (!acc) {
			if (c->fi.nengines == DRM_MAX_ENGINES)
				continue;
			acc = &c->fi.engines[c->fi.nengines++];
			memset(acc, 0, sizeof(*acc));
			strcpy(acc->name, fi->engines[e].name);
		}
		fold_engine(acc, &fi->engines[e], now_ns > c->last_ns ? now_ns - c->last_ns : 0);
	}
	if (!c->seen) {
		/* first fd of this client this round: memory is what it holds now */
		c->fi.nregions = fi->nregions;
		memcpy(c->fi.regions, fi->regions, sizeof(fi->regions));
	}
	c->last_ns = now_ns;
	c->seen = true;
	return 0;
}

static struct drm_series *series_of(struct drm_acc *a, const struct drm_fdinfo *fi,
				    const char *name, bool memory)
{
	struct drm_series *s;

	for (unsigned int i = 0; i < a->nseries; i++) {
		s = &a->series[i];
		if (s->memory == memory && !strcmp(s->name, name) &&
		    !strcmp(s->driver, fi->driver) && !strcmp(s->pdev, fi->pdev))
			return s;
	}
	if (grow_array(&a->series, &a->cap_series, (size_t)a->nseries + 1, sizeof(*a->series), 8))
		return NULL;
	s = &a->series[a->nseries++];
	memset(s, 0, sizeof(*s));
	strcpy(s->driver, fi->driver);
	strcpy(s->pdev, fi->pdev);
	strcpy(s->name, name);
	s->memory = memory;
	return s;
}

int drm_acc_end(struct drm_acc *a)
{
	int err = 0;

	for (unsigned int i = 0; i < a->nseries; i++)
		a->series[i].value = a->series[i].memory ? 0 : a->series[i].retired;
	for (unsigned int i = 0; i < a->nclients;) {
		struct drm_client *c = &a->clients[i];

		for (int e = 0; e < c->fi.nengines; e++) {
			struct drm_series *s = series_of(a, &c->fi, c->fi.engines[e].name, false);

			if (!s) {
				err = -ENOMEM;
				continue;
			}
			if (!c->seen)
				s->retired = sat_add(s->retired, c->fi.engines[e].ns);
			s->value = sat_add(s->value, c->fi.engines[e].ns);
		}
		for (int r = 0; r < c->fi.nregions && c->seen; r++) {
			const struct drm_region *rg = &c->fi.regions[r];
			struct drm_series *s = series_of(a, &c->fi, rg->name, true);

			if (!s) {
				err = -ENOMEM;
				continue;
			}
			s->value = sat_add(s->value, rg->has_resident ? rg->resident : rg->total);
		}
		if (!c->seen) {
			*c = a->clients[--a->nclients]; /* closed: what it counted is retired */
			continue;
		}
		i++;
	}
	return err;
}

void drm_acc_free(struct drm_acc *a)
{
	free(a->clients);
	free(a->series);
	memset(a, 0, sizeof(*a));
}
