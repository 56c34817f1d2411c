// SPDX-License-Identifier: GPL-2.0
/*
 * Process title / argv -> role. Every input byte is untrusted: ranges carry
 * their length, nothing is assumed to be NUL-terminated, and fields are
 * copied bounded. Work is linear in the input, and PostgreSQL titles are
 * looked at no further than PG_TITLE_MAX bytes.
 */
#include "procs/title.h"

#include <stdbool.h>
#include <string.h>

/*
 * PostgreSQL names are at most 63 bytes (NAMEDATALEN), so the user, db and
 * client of a backend always sit well inside this; the rest is the state,
 * which is truncated on copy anyway.
 */
#define PG_TITLE_MAX 4096
/* How many "cluster: " splits a PostgreSQL title gets tried with. */
#define PG_CLUSTER_TRIES 16

/* A byte range inside the caller's buffers; never NUL-terminated. */
struct span {
	const char *p;
	size_t n;
};

/* Iterates over words separated by sep: argv (NUL) or a title (space). */
struct words {
	struct span s;
	size_t off;
	char sep;
	bool skip_empty; /* runs of spaces in a title are one separator */
};

enum pg_match { PG_NONE, PG_WEAK, PG_STRONG };

static const char *const role_names[ES_ROLE_COUNT] = {
	[ES_ROLE_OTHER] = "other",
	[ES_ROLE_PYTHON] = "python",
	[ES_ROLE_ODOO_MASTER] = "odoo_master",
	[ES_ROLE_ODOO_HTTP] = "odoo_http",
	[ES_ROLE_ODOO_CRON] = "odoo_cron",
	[ES_ROLE_ODOO_GEVENT] = "odoo_gevent",
	[ES_ROLE_PG_BACKEND] = "pg_backend",
	[ES_ROLE_PG_AUTOVACUUM] = "pg_autovacuum",
	[ES_ROLE_PG_CHECKPOINTER] = "pg_checkpointer",
	[ES_ROLE_PG_WALWRITER] = "pg_walwriter",
	[ES_ROLE_PG_BGWRITER] = "pg_bgwriter",
	[ES_ROLE_PG_OTHER] = "pg_other",
};

/*
 * PostgreSQL's auxiliary and background processes by the first words of
 * their title, current names and the "... process" names of 9.x/10.
 */
static const struct {
	const char *name;
	enum es_role role;
} pg_aux[] = {
	{ "checkpointer", ES_ROLE_PG_CHECKPOINTER },
	{ "walwriter", ES_ROLE_PG_WALWRITER },
	{ "wal writer", ES_ROLE_PG_WALWRITER },
	{ "background writer", ES_ROLE_PG_BGWRITER },
	{ "writer process", ES_ROLE_PG_BGWRITER },
	{ "autovacuum", ES_ROLE_PG_AUTOVACUUM },
	{ "logical replication", ES_ROLE_PG_OTHER },
	{ "stats collector", ES_ROLE_PG_OTHER },
	{ "archiver", ES_ROLE_PG_OTHER },
	{ "walsender", ES_ROLE_PG_OTHER },
	{ "wal sender", ES_ROLE_PG_OTHER },
	{ "walreceiver", ES_ROLE_PG_OTHER },
	{ "wal receiver", ES_ROLE_PG_OTHER },
	{ "walsummarizer", ES_ROLE_PG_OTHER },
	{ "slotsync worker", ES_ROLE_PG_OTHER },
	{ "io worker", ES_ROLE_PG_OTHER },
	{ "startup", ES_ROLE_PG_OTHER },
	{ "logger", ES_ROLE_PG_OTHER },
	{ "parallel worker", ES_ROLE_PG_OTHER },
	{ "bgworker", ES_ROLE_PG_OTHER },
	{ "background worker", ES_ROLE_PG_OTHER },
};

/* Scripts whose python is an Odoo server (odoo.py: Odoo 9). */
static const char *const odoo_scripts[] = { "odoo-bin", "odoo", "openerp-server", "odoo.py" };

const char *role_name(enum es_role role)
{
	if ((unsigned int)role >= ES_ROLE_COUNT)
		return role_names[ES_ROLE_OTHER];
	return role_names[role];
}

static struct span span_of(const char *s)
{
	return (struct span){ s, s ? strlen(s) : 0 };
}

static struct span span_from(struct span s, size_t off)
{
	if (off > s.n)
		off = s.n;
	return (struct span){ s.p + off, s.n - off };
}

static bool span_eq(struct span s, const char *lit)
{
	size_t n = strlen(lit);

	return s.n == n && !memcmp(s.p, lit, n);
}

static bool span_starts(struct span s, const char *lit)
{
	size_t n = strlen(lit);

	return s.n >= n && !memcmp(s.p, lit, n);
}

/* lit is s's first word(s): followed by the end, a space or a colon. */
static bool span_starts_word(struct span s, const char *lit)
{
	size_t n = strlen(lit);

	return span_starts(s, lit) && (s.n == n || s.p[n] == ' ' || s.p[n] == ':');
}

static struct span trim_spaces(struct span s)
{
	while (s.n && s.p[0] == ' ') {
		s.p++;
		s.n--;
	}
	while (s.n && s.p[s.n - 1] == ' ')
		s.n--;
	return s;
}

static struct span basename_of(struct span s)
{
	const char *slash = s.n ? memrchr(s.p, '/', s.n) : NULL;

	return slash ? span_from(s, (size_t)(slash - s.p) + 1) : s;
}

/*
 * /proc/<pid>/exe of a binary replaced by a package upgrade reads
 * "/usr/bin/python3.11 (deleted)"; the process is still what it was.
 */
static struct span exe_name(const char *exe_base)
{
	static const char deleted[] = " (deleted)";
	struct span s = basename_of(span_of(exe_base));
	size_t d = sizeof(deleted) - 1;

	if (s.n > d && !memcmp(s.p + s.n - d, deleted, d))
		s.n -= d;
	return s;
}

/* comm may come with the newline /proc/<pid>/comm ends in. */
static struct span comm_name(const char *comm)
{
	struct span s = span_of(comm);

	if (s.n && s.p[s.n - 1] == '\n')
		s.n--;
	return s;
}

static void words_init(struct words *w, struct span s, char sep)
{
	w->s = s;
	w->off = 0;
	w->sep = sep;
	w->skip_empty = sep == ' ';
}

static bool words_next(struct words *w, struct span *out)
{
	for (;;) {
		const char *end;
		size_t start = w->off, n;

		if (start >= w->s.n)
			return false;
		end = memchr(w->s.p + start, w->sep, w->s.n - start);
		n = end ? (size_t)(end - (w->s.p + start)) : w->s.n - start;
		w->off = start + n + 1;
		if (!n && w->skip_empty)
			continue;
		*out = (struct span){ w->s.p + start, n };
		return true;
	}
}

/*
 * Copies raw bytes, NULs dropped, truncated to fit. A cut never splits a
 * UTF-8 sequence, so valid input stays valid after truncation.
 */
static void copy_field(char dst[TITLE_FIELD_MAX], struct span s)
{
	size_t i, o = 0;

	for (i = 0; i < s.n && o < TITLE_FIELD_MAX - 1; i++) {
		if (s.p[i])
			dst[o++] = s.p[i];
	}
	while (i < s.n && !s.p[i])
		i++;
	if (i < s.n && ((unsigned char)s.p[i] & 0xc0) == 0x80) {
		size_t keep = o;

		while (keep && o - keep < 3 && ((unsigned char)dst[keep - 1] & 0xc0) == 0x80)
			keep--;
		if (keep && (unsigned char)dst[keep - 1] >= 0xc0)
			o = keep - 1;
	}
	dst[o] = 0;
}

static bool is_pg_client(struct span t)
{
	size_t i;

	if (span_eq(t, "[local]"))
		return true;
	/* host(port), the host being a name or an address, IPv6 included */
	if (t.n < 4 || t.p[t.n - 1] != ')')
		return false;
	for (i = t.n - 1; i > 0 && t.p[i - 1] >= '0' && t.p[i - 1] <= '9'; i--)
		;
	return i >= 2 && i < t.n - 1 && t.n - 1 - i <= 5 && t.p[i - 1] == '(';
}

/*
 * A host without a port: only plausible when it looks like an address or
 * a domain name (letters or digits, and a dot or a colon).
 */
static bool is_pg_bare_host(struct span t)
{
	bool dot = false, alnum = false;
	size_t i;

	if (span_eq(t, "localhost"))
		return true;
	for (i = 0; i < t.n; i++) {
		char c = t.p[i];

		if (c == '.' || c == ':')
			dot = true;
		else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
			alnum = true;
		else if (c != '-' && c != '_' && c != '%')
			return false;
	}
	return dot && alnum;
}

/* "autovacuum worker [process] <db>": the db it works on. */
static void pg_autovacuum_db(struct span body, struct title_info *out)
{
	static const char worker[] = "autovacuum worker";
	struct span rest;

	if (!span_starts_word(body, worker))
		return;
	rest = trim_spaces(span_from(body, sizeof(worker) - 1));
	if (span_starts_word(rest, "process"))
		rest = trim_spaces(span_from(rest, sizeof("process") - 1));
	copy_field(out->db, rest);
}

/*
 * Client backend: "<user> <db> <client> [state]". The client token is what
 * anchors it ([local] or host(port)); names with spaces end up in db. A
 * bare host is accepted only as the third word, and only weakly.
 */
static enum pg_match pg_backend(struct span body, bool weak_ok, struct title_info *out)
{
	struct span tok = { 0 }, first = { 0 }, second = { 0 }, third = { 0 };
	struct words w;
	unsigned int i = 0;

	words_init(&w, body, ' ');
	while (words_next(&w, &tok)) {
		if (i == 0)
			first = tok;
		else if (i == 1)
			second = tok;
		else if (i == 2)
			third = tok;
		if (i++ >= 2 && is_pg_client(tok))
			break;
		tok.n = 0;
	}
	if (tok.n) {
		struct span db = { second.p, (size_t)(tok.p - second.p) };

		copy_field(out->user, first);
		copy_field(out->db, trim_spaces(db));
		copy_field(out->client, tok);
		copy_field(out->state, trim_spaces(span_from(body, w.off)));
		return PG_STRONG;
	}
	if (!weak_ok || i < 3 || !is_pg_bare_host(third))
		return PG_NONE;
	copy_field(out->user, first);
	copy_field(out->db, second);
	copy_field(out->client, third);
	copy_field(out->state, trim_spaces(span_from(body, (size_t)(third.p - body.p) + third.n)));
	return PG_WEAK;
}

/*
 * body: the title past "postgres: " and a cluster name, if any. A client
 * token makes it a backend even when the user is named like a helper
 * ("startup"); only a walsender's title has a client too.
 */
static enum pg_match pg_body(struct span body, struct title_info *out)
{
	size_t i;

	body = trim_spaces(body);
	out->role = ES_ROLE_PG_BACKEND;
	if (!span_starts_word(body, "walsender") && !span_starts_word(body, "wal sender") &&
	    pg_backend(body, false, out) == PG_STRONG)
		return PG_STRONG;
	for (i = 0; i < sizeof(pg_aux) / sizeof(pg_aux[0]); i++) {
		if (span_starts_word(body, pg_aux[i].name)) {
			out->role = pg_aux[i].role;
			if (out->role == ES_ROLE_PG_AUTOVACUUM)
				pg_autovacuum_db(body, out);
			return PG_STRONG;
		}
	}
	return pg_backend(body, true, out);
}

/*
 * "postgres: [cluster: ]<rest>". The cluster name is free text that may
 * itself hold ": ", so every split is tried, cluster-first (Debian always
 * sets one); the first strong reading wins, else the first weak one.
 */
static enum es_role pg_classify(struct span title, struct title_info *out)
{
	struct title_info cand, weak;
	bool have_weak = false;
	unsigned int tries = 0;
	struct span rest;
	size_t i = 0;

	if (!span_starts(title, "postgres: "))
		return ES_ROLE_PG_OTHER; /* the postmaster keeps its argv */
	rest = span_from(title, sizeof("postgres: ") - 1);
	if (rest.n > PG_TITLE_MAX)
		rest.n = PG_TITLE_MAX;
	for (;;) {
		const char *colon = NULL;
		struct span body = rest;
		enum pg_match m;

		while (tries < PG_CLUSTER_TRIES && i + 1 < rest.n) {
			colon = memchr(rest.p + i, ':', rest.n - 1 - i);
			if (!colon)
				break;
			i = (size_t)(colon - rest.p) + 1;
			if (rest.p[i] == ' ')
				break;
			colon = NULL;
		}
		memset(&cand, 0, sizeof(cand));
		if (colon) {
			tries++;
			copy_field(cand.cluster, (struct span){ rest.p, (size_t)(colon - rest.p) });
			body = span_from(rest, i + 1);
		}
		m = pg_body(body, &cand);
		if (m == PG_STRONG) {
			*out = cand;
			return out->role;
		}
		if (m == PG_WEAK && !have_weak) {
			weak = cand;
			have_weak = true;
		}
		if (!colon)
			break;
	}
	if (!have_weak)
		return ES_ROLE_PG_OTHER;
	*out = weak;
	return out->role;
}

/* "odoo: WorkerHTTP <pid>", "odoo: WorkerCron <pid> [db]", "odoo: master". */
static enum es_role odoo_title(struct span title, struct title_info *out)
{
	struct span word, rest;
	struct words w;

	if (span_starts(title, "odoo: "))
		rest = span_from(title, sizeof("odoo: ") - 1);
	else if (span_starts(title, "openerp: ")) /* Odoo 8 */
		rest = span_from(title, sizeof("openerp: ") - 1);
	else
		return ES_ROLE_OTHER;
	words_init(&w, rest, ' ');
	if (!words_next(&w, &word))
		return ES_ROLE_OTHER;
	if (span_eq(word, "WorkerHTTP"))
		return ES_ROLE_ODOO_HTTP;
	if (span_eq(word, "WorkerCron")) {
		/* The pid, then the database being processed: one word. */
		if (words_next(&w, &word) && words_next(&w, &word))
			copy_field(out->db, word);
		return ES_ROLE_ODOO_CRON;
	}
	if ((span_eq(word, "master") || span_eq(word, "Master")) && !words_next(&w, &word))
		return ES_ROLE_ODOO_MASTER;
	return ES_ROLE_OTHER;
}

static bool is_odoo_script(struct span arg)
{
	struct span base = basename_of(arg);
	size_t i;

	for (i = 0; i < sizeof(odoo_scripts) / sizeof(odoo_scripts[0]); i++) {
		if (span_eq(base, odoo_scripts[i]))
			return true;
	}
	return false;
}

/*
 * Reads a python's argv as the interpreter does: options, then the script
 * (or -m module), then the script's arguments. Odoo's prefork server starts
 * its gevent process as `python odoo-bin gevent <args>`.
 */
static enum es_role python_argv(struct words *w)
{
	bool odoo = false, script = false, no_opts = false, gevent = false;
	enum { NEXT_ANY, NEXT_SKIP, NEXT_MODULE } next = NEXT_ANY;
	struct span a;

	if (words_next(w, &a) && is_odoo_script(a)) /* started as odoo itself */
		odoo = script = true;
	while (words_next(w, &a)) {
		if (next == NEXT_SKIP) {
			next = NEXT_ANY;
		} else if (next == NEXT_MODULE) {
			next = NEXT_ANY;
			odoo = span_eq(a, "odoo");
			script = true;
		} else if (script) {
			gevent = gevent || span_eq(a, "gevent");
		} else if (!no_opts && a.n > 1 && a.p[0] == '-') {
			if (span_eq(a, "--")) {
				no_opts = true;
			} else if (span_eq(a, "-m")) {
				next = NEXT_MODULE;
			} else if (span_eq(a, "-X") || span_eq(a, "-W")) {
				next = NEXT_SKIP;
			} else if (span_eq(a, "-c")) {
				/* no script: the code comes next, then its args */
				next = NEXT_SKIP;
				script = true;
			}
		} else {
			odoo = is_odoo_script(a);
			script = true;
		}
	}
	if (gevent)
		return ES_ROLE_ODOO_GEVENT;
	return odoo ? ES_ROLE_ODOO_MASTER : ES_ROLE_PYTHON;
}

enum es_role title_classify(const char *cmdline, size_t len, const char *exe_base, const char *comm,
			    struct title_info *out)
{
	struct span cmd = { cmdline, cmdline ? len : 0 }, title, exe, com;
	struct title_info scratch;
	enum es_role role = ES_ROLE_OTHER;
	bool single, python;
	const char *nul;
	struct words w;

	if (!out)
		out = &scratch;
	memset(out, 0, sizeof(*out));
	exe = exe_name(exe_base);
	com = comm_name(comm);

	/*
	 * The first string is argv[0] or a setproctitle title. It is the whole
	 * command line (split on spaces) when nothing but NULs follows it.
	 */
	nul = cmd.n ? memchr(cmd.p, 0, cmd.n) : NULL;
	title = (struct span){ cmd.p, nul ? (size_t)(nul - cmd.p) : cmd.n };
	single = title.n && memchr(title.p, ' ', title.n);
	for (size_t i = title.n; single && i < cmd.n; i++)
		single = !cmd.p[i];
	if (single)
		words_init(&w, title, ' ');
	else
		words_init(&w, cmd, 0);

	if (span_eq(exe, "postgres") || span_eq(exe, "postmaster") ||
	    (!exe.n && span_eq(com, "postgres"))) {
		role = pg_classify(title, out);
		goto out;
	}
	/* Odoo roles need a python, or an exe we could not read. */
	python = span_starts(exe, "python");
	if (!python && exe.n)
		goto out;
	role = odoo_title(title, out);
	if (role != ES_ROLE_OTHER)
		goto out;
	if (!python) {
		struct words first = w;
		struct span arg0 = { 0 };

		words_next(&first, &arg0);
		python = span_starts(com, "python") || span_starts(basename_of(arg0), "python") ||
			 is_odoo_script(arg0);
	}
	if (python)
		role = python_argv(&w);
out:
	out->role = role;
	return role;
}
