// SPDX-License-Identifier: GPL-2.0
/*
 * The pool is a chained hash table that doubles when it holds more strings
 * than buckets. A string's header sits right before its text, so a holder
 * needs nothing but the pointer it got to give it back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/intern.h"

#define FIRST_BUCKETS 256

struct istr {
	struct istr *next;
	uint32_t hash;
	uint32_t refs;
	size_t len;
	char s[];
};

struct intern_pool {
	struct istr **buckets;
	size_t nbuckets, n, bytes;
};

/* FNV-1a: short texts, no adversary gains much from collisions here. */
static uint32_t hash_of(const char *s, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static struct istr *istr_of(const char *s)
{
	return (struct istr *)(s - offsetof(struct istr, s));
}

struct intern_pool *intern_new(void)
{
	struct intern_pool *ip = calloc(1, sizeof(*ip));

	if (!ip)
		return NULL;
	ip->buckets = calloc(FIRST_BUCKETS, sizeof(*ip->buckets));
	if (!ip->buckets) {
		free(ip);
		return NULL;
	}
	ip->nbuckets = FIRST_BUCKETS;
	return ip;
}

void intern_free(struct intern_pool *ip)
{
	if (!ip)
		return;
	for (size_t b = 0; b < ip->nbuckets; b++) {
		for (struct istr *e = ip->buckets[b], *next; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(ip->buckets);
	free(ip);
}

/* Twice the buckets; when that fails the chains just get longer. */
static void rehash(struct intern_pool *ip)
{
	size_t nb = ip->nbuckets * 2;
	struct istr **b = calloc(nb, sizeof(*b));

	if (!b)
		return;
	for (size_t i = 0; i < ip->nbuckets; i++) {
		for (struct istr *e = ip->buckets[i], *next; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	}
	free(ip->buckets);
	ip->buckets = b;
	ip->nbuckets = nb;
}

const char *intern_get(struct intern_pool *ip, const char *s)
{
	size_t len = strlen(s);
	uint32_t h = hash_of(s, len);
	struct istr **head = &ip->buckets[h & (ip->nbuckets - 1)], *e;

	for (e = *head; e; e = e->next) {
		if (e->hash == h && e->len == len && !memcmp(e->s, s, len)) {
			e->refs++;
			return e->s;
		}
	}
	e = malloc(sizeof(*e) + len + 1);
	if (!e)
		return NULL;
	e->hash = h;
	e->refs = 1;
	e->len = len;
	memcpy(e->s, s, len + 1);
	e->next = *head;
	*head = e;
	ip->n++;
	ip->bytes += sizeof(*e) + len + 1;
	if (ip->n > ip->nbuckets)
		rehash(ip);
	return e->s;
}

void intern_put(struct intern_pool *ip, const char *s)
{
	struct istr *e, **l;

	if (!s)
		return;
	e = istr_of(s);
	if (--e->refs)
		return;
	for (l = &ip->buckets[e->hash & (ip->nbuckets - 1)]; *l && *l != e; l = &(*l)->next)
		;
	if (*l)
		*l = e->next;
	ip->n--;
	ip->bytes -= sizeof(*e) + e->len + 1;
	free(e);
}

size_t intern_count(const struct intern_pool *ip)
{
	return ip->n;
}

size_t intern_bytes(const struct intern_pool *ip)
{
	return ip->bytes;
}
