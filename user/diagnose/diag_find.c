// SPDX-License-Identifier: GPL-2.0
/*
 * A finding's parts, for every file of rules: a new finding in the result,
 * its texts bounded, one line of evidence with the metric to check it with.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "diagnose/diagnose.h"

struct diag_finding *diag_add(struct diag_result *r, enum diag_rule_id rule, double score,
			      double since)
{
	struct diag_finding *f;

	if (grow_array(&r->f, &r->cap, r->n + 1, sizeof(*r->f), 8))
		return NULL;
	f = &r->f[r->n++];
	memset(f, 0, sizeof(*f));
	f->rule = rule;
	f->severity = diag_rules[rule].severity;
	f->score = score;
	f->since = since;
	return f;
}

void diag_fmt(char *buf, const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	vsnprintf(buf, DIAG_TEXT_MAX, f, ap);
	va_end(ap);
}

void diag_evidence(struct diag_finding *f, const char *check, const char *what, ...)
{
	va_list ap;

	if (f->nev == DIAG_EVIDENCE_MAX)
		return;
	va_start(ap, what);
	vsnprintf(f->ev[f->nev].what, sizeof(f->ev[f->nev].what), what, ap);
	va_end(ap);
	snprintf(f->ev[f->nev].check, sizeof(f->ev[f->nev].check), "%s", check);
	f->nev++;
}

bool diag_host_cpu(const struct diag_input *in, double *busy, double *busy_s)
{
	const struct diag_snap *a = in->start, *b = in->end;
	uint64_t ticks;

	if (!a || !b || !a->host_known || !b->host_known || b->cpu_ticks <= a->cpu_ticks)
		return false;
	ticks = b->cpu_ticks - a->cpu_ticks;
	*busy = (double)diag_delta(b->cpu_busy_ticks, a->cpu_busy_ticks) / (double)ticks;
	/* /proc/stat counts USER_HZ (100) ticks per CPU */
	*busy_s = (double)diag_delta(b->cpu_busy_ticks, a->cpu_busy_ticks) / 100.0;
	return true;
}
