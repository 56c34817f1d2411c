// SPDX-License-Identifier: GPL-2.0
/* Each route's and RPC's totals, for other capabilities (user/diagnose). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/erpscope.h"
#include "core/grow.h"
#include "requests/requests.h"

struct tot {
	struct req_total *v;
	size_t n, cap;
	int err;
};

static struct req_total *slot_of(struct tot *t, const char *key)
{
	const char *k = key ? key : "other";

	for (size_t i = 0; i < t->n; i++) {
		if (!strcmp(t->v[i].key, k))
			return &t->v[i];
	}
	if (grow_array(&t->v, &t->cap, t->n + 1, sizeof(*t->v), 32)) {
		t->err = -ENOMEM;
		return NULL;
	}
	memset(&t->v[t->n], 0, sizeof(t->v[t->n]));
	strncpy(t->v[t->n].key, k, sizeof(t->v[t->n].key) - 1);
	return &t->v[t->n++];
}

static void on_series(void *arg, const char *key, uint32_t sub, const struct req_hist *h)
{
	struct req_total *r = slot_of(arg, key);

	if (r) {
		r->count += req_hist_count(h);
		r->sum_ns += h->sum_ns;
	}
}

static void on_parts(void *arg, const char *key, const struct req_parts *p)
{
	struct req_total *r = slot_of(arg, key);

	if (r && p->pg) {
		r->pg_stmts += p->pg_stmts;
		r->pg_ns += p->ns[REQ_PART_PG];
	}
}

int requests_totals(struct erpscope *es, req_total_fn fn, void *arg)
{
	struct req_priv *rp = requests_priv(es);

	if (!rp)
		return -ENODEV;
	for (int r = 0; r < ES_ROLE_COUNT; r++) {
		for (int rpc = 0; rpc < 2; rpc++) {
			struct req_table *tab = rpc ? rp->roles[r].rpcs : rp->roles[r].routes;
			struct tot t = { 0 };

			if (!rp->roles[r].seen || !tab)
				continue;
			req_table_foreach(tab, on_series, &t);
			req_table_foreach_parts(tab, on_parts, &t);
			for (size_t i = 0; i < t.n; i++) {
				t.v[i].role = (enum es_role)r;
				t.v[i].rpc = rpc;
				fn(arg, &t.v[i]);
			}
			free(t.v);
			if (t.err)
				return t.err;
		}
	}
	return 0;
}
