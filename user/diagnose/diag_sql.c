// SPDX-License-Identifier: GPL-2.0
/*
 * The tables a normalised statement reads and the columns its WHERE and
 * JOIN ... ON conditions compare, for an index hint. A tokenizer, not a
 * parser: names after FROM/JOIN/UPDATE/INTO are tables (an alias may
 * follow), a name before a comparison inside WHERE/ON is a filtered
 * column, its qualifier naming the table or alias.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "diagnose/diagnose.h"

#define MAXT 8
#define MAXC 8
#define NAME 64

struct tok {
	char s[2 * NAME + 2]; /* a name (qualified, unquoted) or an operator */
	bool name;
};

struct tables {
	char name[MAXT][NAME], alias[MAXT][NAME];
	char cols[MAXT][MAXC][NAME];
	unsigned int ncols[MAXT], n;
};

/* The next token from *p; false at the end. */
static bool next_tok(const char **p, struct tok *t)
{
	const char *s = *p;
	size_t o = 0;

	while (*s && isspace((unsigned char)*s))
		s++;
	if (!*s)
		return false;
	t->name = false;
	if (isalpha((unsigned char)*s) || *s == '_' || *s == '"') {
		t->name = true;
		for (;;) {
			if (*s == '"') {
				for (s++; *s && *s != '"'; s++)
					if (o + 1 < sizeof(t->s))
						t->s[o++] = *s;
				if (*s)
					s++;
			} else {
				while (isalnum((unsigned char)*s) || *s == '_' || *s == '$')
					if (o + 1 < sizeof(t->s))
						t->s[o++] = *s++;
					else
						s++;
			}
			if (*s == '.' && (s[1] == '"' || isalpha((unsigned char)s[1]) || s[1] == '_')) {
				if (o + 1 < sizeof(t->s))
					t->s[o++] = '.';
				s++;
				continue;
			}
			break;
		}
	} else if (strchr("<>=!~", *s)) {
		while (*s && strchr("<>=!~", *s) && o + 1 < sizeof(t->s))
			t->s[o++] = *s++;
	} else {
		t->s[o++] = *s++;
	}
	t->s[o] = 0;
	*p = s;
	return true;
}

static bool kw(const struct tok *t, const char *k)
{
	return t->name && !strcasecmp(t->s, k);
}

static bool is_keyword(const struct tok *t)
{
	static const char *const k[] = { "where", "join", "inner", "left", "right", "full",
					 "cross", "on", "group", "order", "limit", "offset",
					 "set", "values", "union", "having", "for", "as",
					 "returning", "natural", "using", "select", "from",
					 "and", "or", "not", "lateral", "outer", "window" };

	for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++)
		if (kw(t, k[i]))
			return true;
	return false;
}

static bool is_cmp(const struct tok *t)
{
	return (!t->name && strchr("<>=!~", t->s[0])) || kw(t, "in") || kw(t, "like") ||
	       kw(t, "ilike") || kw(t, "is") || kw(t, "between") || kw(t, "any");
}

static void add_table(struct tables *tb, const char *name)
{
	for (unsigned int i = 0; i < tb->n; i++)
		if (!strcmp(tb->name[i], name))
			return;
	if (tb->n < MAXT)
		snprintf(tb->name[tb->n++], NAME, "%.63s", name);
}

static void add_col(struct tables *tb, const char *qname)
{
	const char *dot = strrchr(qname, '.');
	const char *col = dot ? dot + 1 : qname;
	unsigned int t = 0;

	if (!tb->n)
		return;
	if (dot) {
		size_t ql = (size_t)(dot - qname);
		bool found = false;

		for (unsigned int i = 0; i < tb->n && !found; i++) {
			const char *tn = strrchr(tb->name[i], '.');

			tn = tn ? tn + 1 : tb->name[i];
			if ((strlen(tb->alias[i]) == ql && !strncmp(tb->alias[i], qname, ql)) ||
			    (strlen(tn) == ql && !strncmp(tn, qname, ql)) ||
			    (strlen(tb->name[i]) == ql && !strncmp(tb->name[i], qname, ql))) {
				t = i;
				found = true;
			}
		}
		if (!found)
			return;
	}
	for (unsigned int i = 0; i < tb->ncols[t]; i++)
		if (!strcmp(tb->cols[t][i], col))
			return;
	if (tb->ncols[t] < MAXC)
		snprintf(tb->cols[t][tb->ncols[t]++], NAME, "%.63s", col);
}

void diag_sql_filters(const char *sql, char *out, size_t size)
{
	struct tables tb;
	struct tok prev = { .name = false }, t;
	bool want_table = false, in_cond = false, have_prev = false;
	const char *p = sql ? sql : "";
	size_t o = 0;

	memset(&tb, 0, sizeof(tb));
	if (size)
		out[0] = 0;
	while (next_tok(&p, &t)) {
		if (kw(&t, "from") || kw(&t, "join") || kw(&t, "update") || kw(&t, "into")) {
			want_table = true;
			in_cond = false;
		} else if (kw(&t, "where") || kw(&t, "on")) {
			want_table = false;
			in_cond = true;
		} else if (kw(&t, "group") || kw(&t, "order") || kw(&t, "limit") || kw(&t, "set") ||
			   kw(&t, "returning") || kw(&t, "select") || kw(&t, "values")) {
			want_table = in_cond = false;
		} else if (want_table && t.name && !is_keyword(&t)) {
			if (have_prev && prev.name && !is_keyword(&prev) && tb.n &&
			    !strcmp(prev.s, tb.name[tb.n - 1]))
				snprintf(tb.alias[tb.n - 1], NAME, "%.63s", t.s); /* an alias */
			else
				add_table(&tb, t.s);
		} else if (want_table && !strcmp(t.s, "(")) {
			want_table = false; /* a subquery or a function */
		} else if (in_cond && is_cmp(&t) && have_prev && prev.name && !is_keyword(&prev)) {
			add_col(&tb, prev.s);
		} else if (in_cond && t.name && !is_keyword(&t) && have_prev && !prev.name &&
			   is_cmp(&prev) && strchr(t.s, '.')) {
			add_col(&tb, t.s); /* a.id = b.a_id: both sides are columns */
		}
		if (!(want_table && kw(&t, "as")))
			prev = t;
		have_prev = true;
	}
	for (unsigned int i = 0; i < tb.n && o + 1 < size; i++) {
		int w = snprintf(out + o, size - o, "%s%s(", i ? "; " : "", tb.name[i]);

		if (w < 0 || (size_t)w >= size - o)
			break;
		o += (size_t)w;
		for (unsigned int c = 0; c < tb.ncols[i] && o + 1 < size; c++) {
			w = snprintf(out + o, size - o, "%s%s", c ? ", " : "", tb.cols[i][c]);
			if (w < 0 || (size_t)w >= size - o)
				break;
			o += (size_t)w;
		}
		if (o + 1 < size) {
			out[o++] = ')';
			out[o] = 0;
		}
	}
}

void diag_sql_index_hint(const char *filters, char *out, size_t size)
{
	const char *open = strchr(filters, '('), *close = open ? strchr(open, ')') : NULL;

	if (size)
		out[0] = 0;
	if (!open || !close || close == open + 1)
		return;
	snprintf(out, size, "CREATE INDEX ON %.*s (%.*s)", (int)(open - filters), filters,
		 (int)(close - open - 1), open + 1);
}
