/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Exposition: builds one scrape in Prometheus text 0.0.4 or OpenMetrics 1.0.
 * A family is opened with expo_family(); its samples follow until the next
 * expo_family() or expo_finish(). Label values are escaped here (backslash,
 * quote, newline) and invalid UTF-8 or control bytes are replaced, so callers
 * may pass untrusted strings (process titles, comm) as they are.
 */
#ifndef ERPSCOPE_EXPO_H
#define ERPSCOPE_EXPO_H

#include <stddef.h>
#include <stdint.h>

enum expo_format { EXPO_TEXT_004, EXPO_OPENMETRICS_100 };
enum expo_type { EXPO_COUNTER, EXPO_GAUGE, EXPO_HISTOGRAM };

struct expo_label {
	const char *name;
	const char *value;
};

struct expo {
	enum expo_format format;
	enum expo_type type; /* of the open family */
	char family[128];    /* name of the open family as given */
	char *buf;
	size_t len, cap;
	int err; /* first error (-ENOMEM), sticky */
};

void expo_init(struct expo *e, enum expo_format format);
void expo_free(struct expo *e);
/* Forgets the text but keeps the buffer, for the next scrape. */
void expo_reset(struct expo *e, enum expo_format format);

/*
 * name is the sample name as Prometheus text shows it (counters end in
 * _total); in OpenMetrics the metadata lines drop the _total suffix.
 */
void expo_family(struct expo *e, const char *name, enum expo_type type, const char *help);
void expo_sample(struct expo *e, const struct expo_label *labels, size_t nlabels, double value);
void expo_sample_u64(struct expo *e, const struct expo_label *labels, size_t nlabels,
		     uint64_t value);
/*
 * counts[i] is the number of observations in (edges[i-1], edges[i]] and
 * counts[nedges] those above the last edge; written out cumulatively with
 * le="+Inf" last. sum is in the same unit as edges.
 */
void expo_histogram(struct expo *e, const struct expo_label *labels, size_t nlabels,
		    const double *edges, const uint64_t *counts, size_t nedges, double sum);
/* Appends "# EOF" for OpenMetrics. Returns 0 or the sticky error. */
int expo_finish(struct expo *e);

const char *expo_content_type(enum expo_format format);

/* Shortest text that parses back to v ("+Inf", "NaN", "1e-05", "0.25"). */
void expo_format_double(char *buf, size_t size, double v, int openmetrics);

/* Appends the escaped form of a label value. Exposed for tests and /workers. */
void expo_escape_label(struct expo *e, const char *value);

#endif
