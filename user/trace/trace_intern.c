// SPDX-License-Identifier: GPL-2.0
/*
 * Interned strings of a trace's one sequence: each name is written once, in
 * the InternedData of the first packet that uses it, and referred to by its
 * iid after (the sequence's first packet cleared the incremental state).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "trace/trace_pb.h"

enum { IS_IID = 1, IS_STR = 2 };                 /* InternedString, EventName, DebugAnnotationName */
enum { FR_IID = 1, FR_FUNCTION = 2, FR_MAPPING = 3, FR_REL_PC = 4 }; /* Frame */
enum { CS_IID = 1, CS_FRAMES = 2 };              /* Callstack */
enum { MP_IID = 1, MP_PATHS = 7 };               /* Mapping */

static uint32_t hash_of(const char *s, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

static void slot_put(struct trace_intern *t, uint32_t iid)
{
	const char *k = t->keys[iid - 1];
	size_t mask = t->nslots - 1, h = hash_of(k, strlen(k)) & mask;

	while (t->slots[h])
		h = (h + 1) & mask;
	t->slots[h] = iid;
}

static int grow(struct trace_intern *t)
{
	size_t cap = t->cap; /* t->cap moves once the slots are rebuilt too */
	uint32_t *slots;

	if (grow_array(&t->keys, &cap, t->cap + 1, sizeof(*t->keys), 64))
		return -ENOMEM;
	slots = calloc(2 * cap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	free(t->slots);
	t->slots = slots;
	t->nslots = 2 * cap;
	t->cap = cap;
	for (size_t i = 0; i < t->n; i++)
		slot_put(t, (uint32_t)i + 1);
	return 0;
}

static uint64_t fail(struct trace_interns *in, int err)
{
	if (!in->err)
		in->err = err;
	return 0;
}

uint64_t trace_intern(struct trace_interns *in, struct trace_intern *t,
		      enum trace_intern_table table, const char *s, size_t len)
{
	size_t h, mask;
	char *key;
	int err;

	if (t->nslots) {
		mask = t->nslots - 1;
		for (h = hash_of(s, len) & mask; t->slots[h]; h = (h + 1) & mask) {
			const char *k = t->keys[t->slots[h] - 1];

			if (!strncmp(k, s, len) && !k[len])
				return t->slots[h];
		}
	}
	if (in->nfresh == TRACE_FRESH_MAX)
		return fail(in, -E2BIG);
	if (t->n == t->cap && (err = grow(t)))
		return fail(in, err);
	key = strndup(s, len);
	if (!key)
		return fail(in, -ENOMEM);
	t->keys[t->n++] = key;
	slot_put(t, (uint32_t)t->n);
	in->fresh[in->nfresh++] = (struct trace_fresh){
		.table = table, .iid = t->n, .s = key, .len = len,
	};
	return t->n;
}

static void intern_free(struct trace_intern *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->keys[i]);
	free(t->keys);
	free(t->slots);
}

void trace_interns_free(struct trace_interns *in)
{
	intern_free(&in->names);
	intern_free(&in->annots);
	intern_free(&in->values);
	intern_free(&in->funcs);
	intern_free(&in->stacks);
}

void trace_packet_begin(struct pb *pb, uint64_t ts, bool interned)
{
	pb_begin(pb, TRACE_PACKET);
	pb_varint(pb, TP_TIMESTAMP, ts);
	pb_varint(pb, TP_CLOCK_ID, CLOCK_MONOTONIC_ID);
	pb_varint(pb, TP_SEQ_ID, SEQ_ID);
	if (interned)
		pb_varint(pb, TP_SEQ_FLAGS, SEQ_NEEDS_INCREMENTAL_STATE);
}

static void interned_string(struct pb *pb, uint32_t field, uint64_t iid, const char *s,
			    size_t len)
{
	pb_begin(pb, field);
	pb_varint(pb, IS_IID, iid);
	pb_bytes(pb, IS_STR, s, len);
	pb_end(pb);
}

static void fresh_write(struct pb *pb, const struct trace_fresh *f)
{
	switch (f->table) {
	case TI_FRAMES:
		/* One frame per function: its rel_pc, the iid, only tells them apart. */
		pb_begin(pb, TI_FRAMES);
		pb_varint(pb, FR_IID, f->iid);
		pb_varint(pb, FR_FUNCTION, f->iid);
		pb_varint(pb, FR_MAPPING, 1);
		pb_varint(pb, FR_REL_PC, f->iid);
		pb_end(pb);
		break;
	case TI_CALLSTACKS:
		pb_begin(pb, TI_CALLSTACKS);
		pb_varint(pb, CS_IID, f->iid);
		for (size_t i = 0; i < f->nframes; i++)
			pb_varint(pb, CS_FRAMES, f->frames[i]);
		pb_end(pb);
		break;
	case TI_MAPPINGS:
		pb_begin(pb, TI_MAPPINGS);
		pb_varint(pb, MP_IID, f->iid);
		pb_varint(pb, MP_PATHS, f->iid);
		pb_end(pb);
		break;
	default:
		interned_string(pb, f->table, f->iid, f->s, f->len);
	}
}

void trace_interned_write(struct pb *pb, struct trace_interns *in)
{
	if (!in->nfresh)
		return;
	pb_begin(pb, TP_INTERNED_DATA);
	for (size_t i = 0; i < in->nfresh; i++)
		fresh_write(pb, &in->fresh[i]);
	pb_end(pb);
	in->nfresh = 0;
}
