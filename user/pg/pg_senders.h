/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Who sent each statement, for /queries: the kernel's pg_senders entries
 * (fingerprint, backend) -> calls, named by their client (role, worker).
 * Entries naming the same (fingerprint, database, role, worker) are merged
 * as they are added (a hash), then sorted once by (fingerprint, role,
 * worker), so a row finds its senders by binary search and merges the
 * entries of a backend whose database was not known yet (db UINT32_MAX)
 * in one pass: n log n over all senders, not rows x senders or senders^2.
 */
#ifndef ERPSCOPE_PG_SENDERS_H
#define ERPSCOPE_PG_SENDERS_H

#include <stddef.h>
#include <stdint.h>

#define PG_SENDER_ANY_DB UINT32_MAX /* the backend's database was unknown */

struct pg_sender {
	uint64_t fp;
	uint32_t db; /* database id, or PG_SENDER_ANY_DB */
	char role[24];
	char worker[48];
	uint64_t calls;
};

struct pg_senders {
	struct pg_sender *v;
	size_t n, cap;
	uint32_t *ix; /* open addressing over v while adding: index + 1, 0 empty */
	size_t ixcap;
	size_t max; /* entries kept at most (the rest are dropped and counted) */
	size_t dropped;
};

/* Adds x's calls to its (fp, db, role, worker) entry. Returns 0 or -ENOMEM/-ENOSPC. */
int pg_senders_add(struct pg_senders *s, const struct pg_sender *x);
/* Sorts for lookups; call once every entry is in. */
void pg_senders_seal(struct pg_senders *s);
/*
 * The senders of (fp, db), one per (role, worker), most calls first, into
 * out (at most max). Returns how many.
 */
size_t pg_senders_of(const struct pg_senders *s, uint64_t fp, uint32_t db,
		     struct pg_sender *out, size_t max);
void pg_senders_free(struct pg_senders *s);

#endif
