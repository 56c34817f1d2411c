// SPDX-License-Identifier: GPL-2.0
/*
 * Python profiles. Once a second the poller takes what the kernel counted
 * per (process, kind, stack) with lookup-and-delete, names each new stack
 * once (code objects resolved in the process that ran them, captured
 * arguments rendered), and appends (time, process, role, stack, value) to
 * a log that keeps --python.profile-window of history. GET /profile sums
 * the last N seconds of that log into folded stacks; CPU samples also feed
 * erpscope_python_function_cpu_seconds_total by the innermost function
 * ("self" time), the top K per role with the rest in function="other",
 * which only ever grows (it takes what a function did while outside the
 * top K, as pg_queries.c does for statements).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>

#include "core/clock.h"
#include "core/erpscope.h"
#include "core/expo.h"
#include "core/grow.h"
#include "core/http.h"
#include "core/intern.h"
#include "core/log.h"
#include "core/reqtag.h"
#include "procs/proctable.h"
#include "python/python.h"

#define STACK_BUCKETS 4096
#define FUNC_MAX 10000
#define FOLDED_MAX 16384
/*
 * The log keeps a record per (process, stack, kind) and second with
 * samples: at most this many per stack the profile may hold (8 MiB of
 * records at the default 32768), the oldest going first past it.
 */
#define LOG_PER_STACK 8

/*
 * A stack's frames, outermost first ("[truncated]" first when cut): each
 * frame's text with " (file:line)", interned in the profile's pool (the
 * same frames recur across stacks and workers), then, after the nframes
 * pointers, each one's length without that part (frame_cuts()).
 */
struct stack_rec {
	struct stack_rec *next; /* hash chain */
	__u64 id;
	const char *leaf;   /* module:qualname of the innermost frame, interned */
	uint64_t last_ms;   /* newest sample that points here */
	uint16_t nframes;
	const char *frames[];
};

struct sample {
	uint64_t t_ms;
	__u32 pid;
	__u8 role;
	__u8 kind;
	uint16_t req; /* label id of the request it was taken in (core/reqtag.h), 0: none */
	struct stack_rec *st;
	uint64_t value; /* CPU: samples; off-CPU: ns */
};

struct func_rec {
	enum es_role role;
	char *name;
	uint64_t samples;
	uint64_t prev;  /* samples at the last top-K pass */
	uint64_t own;   /* samples counted in its own series (while in the top K) */
	bool shown;
};

struct py_profile {
	unsigned int window_s, top_funcs;
	double hz;
	struct stack_rec *buckets[STACK_BUCKETS];
	size_t nstacks;
	struct sample *log; /* ring: head is the oldest */
	size_t head, n, cap;
	struct func_rec *funcs;
	size_t nfuncs, funcs_cap;
	uint64_t other[ES_ROLE_COUNT]; /* samples of functions outside the top K */
	bool other_used[ES_ROLE_COUNT];
	uint64_t drained, dropped_unresolved;
	/*
	 * Distinct stacks held for the window (--python.profile-max-stacks). A
	 * frame takes 10 bytes of a stack (its text is shared): the default
	 * 32768 bounds them to about 21 MiB at the deepest (64 frames), a few
	 * MiB for usual ones, whatever a workload makes. Past it what the
	 * kernel counts for a new stack is dropped, and counted.
	 */
	size_t max_stacks;
	uint64_t over_limit; /* counts of new stacks not kept: max_stacks were held */
	uint64_t log_full;   /* records dropped before the window's end: the log was full */
	struct intern_pool *texts; /* the stacks' frames and leaves */
	char scratch[FOLDED_MAX];  /* a stack rendered for a caller */
};

struct py_profile *py_profile_new(unsigned int window_s, unsigned int top_funcs, double hz,
				  unsigned int max_stacks)
{
	struct py_profile *prof = calloc(1, sizeof(*prof));

	if (!prof)
		return NULL;
	prof->texts = intern_new();
	if (!prof->texts) {
		free(prof);
		return NULL;
	}
	prof->window_s = window_s ? window_s : 300;
	prof->max_stacks = max_stacks ? max_stacks : 32768;
	prof->top_funcs = top_funcs;
	prof->hz = hz > 0 ? hz : 49;
	return prof;
}

static uint16_t *frame_cuts(const struct stack_rec *s, unsigned int room)
{
	return (uint16_t *)&s->frames[room];
}

static void stack_free(struct py_profile *prof, struct stack_rec *s)
{
	for (unsigned int i = 0; i < s->nframes; i++)
		intern_put(prof->texts, s->frames[i]);
	intern_put(prof->texts, s->leaf);
	free(s);
}

void py_profile_free(struct py_profile *prof)
{
	if (!prof)
		return;
	for (size_t b = 0; b < STACK_BUCKETS; b++) {
		for (struct stack_rec *s = prof->buckets[b], *n; s; s = n) {
			n = s->next;
			stack_free(prof, s);
		}
	}
	for (size_t i = 0; i < prof->nfuncs; i++)
		free(prof->funcs[i].name);
	free(prof->funcs);
	free(prof->log);
	intern_free(prof->texts);
	free(prof);
}

void py_profile_forget(struct py_priv *pp, __u32 pid)
{
	(void)pp;
	(void)pid; /* samples keep their role and pid; stacks are named already */
}

/* --- naming a stack --- */

/* Appends s to buf at *len, with ';' (the folded separator) made ','. */
static void append(char *buf, size_t size, size_t *len, const char *s)
{
	for (; *s && *len + 1 < size; s++)
		buf[(*len)++] = *s == ';' ? ',' : *s;
	buf[*len] = '\0';
}

/* Frame d of st into out, with " (file:line)" after *cut bytes. */
static void frame_text(struct py_priv *pp, struct py_proc *pr, const struct es_py_stack *st,
		       __u32 d, char *out, size_t size, size_t *cut)
{
	const struct py_code_entry *ce = pr ? py_code_lookup(pp, pr, st->code[d]) : NULL;
	size_t len = 0;
	char part[320];
	bool open = false;

	out[0] = '\0';
	if (!ce) {
		append(out, size, &len, "[unknown]");
		*cut = len;
		return;
	}
	py_frame_name(ce, part, sizeof(part));
	append(out, size, &len, part);
	for (__u32 a = 0; a < st->nargs && a < ES_PY_MAX_ARGS; a++) {
		const struct es_py_arg *ar = &st->args[a];
		char val[96];

		if (ar->frame != d || ar->arg >= ES_PY_ARGS_PER_FUNC || !ce->arg_names[ar->arg])
			continue;
		py_value_repr(&pr->t, ar->obj, val, sizeof(val));
		snprintf(part, sizeof(part), "%s%s=%s", open ? ", " : "(", ce->arg_names[ar->arg], val);
		append(out, size, &len, part);
		open = true;
	}
	if (open)
		append(out, size, &len, ")");
	*cut = len;
	snprintf(part, sizeof(part), " (%s:%d)", ce->c.filename, ce->c.firstlineno);
	append(out, size, &len, part);
}

/* The next frame of s, made for room frames; a frame whose text failed is counted, NULL. */
static int frame_put(struct py_profile *prof, struct stack_rec *s, unsigned int room,
		     const char *text, size_t cut)
{
	unsigned int i = s->nframes++;

	s->frames[i] = intern_get(prof->texts, text);
	frame_cuts(s, room)[i] = (uint16_t)cut;
	return s->frames[i] ? 0 : -ENOMEM;
}

/*
 * s folded (frames outermost first joined by ';'), with " (file:line)"
 * per frame when lines, into out: cut to size, as FOLDED_MAX always was.
 */
static const char *stack_render(const struct stack_rec *s, bool lines, char *out, size_t size)
{
	const uint16_t *cuts = frame_cuts(s, s->nframes);
	size_t len = 0;

	out[0] = '\0';
	for (unsigned int i = 0; i < s->nframes; i++) {
		size_t n = lines ? strlen(s->frames[i]) : cuts[i];

		if (i && len + 1 < size)
			out[len++] = ';';
		if (n > size - 1 - len)
			n = size - 1 - len;
		memcpy(out + len, s->frames[i], n);
		len += n;
		out[len] = '\0';
	}
	return out;
}

static struct stack_rec *stack_find(struct py_profile *prof, __u64 id)
{
	for (struct stack_rec *s = prof->buckets[id % STACK_BUCKETS]; s; s = s->next) {
		if (s->id == id)
			return s;
	}
	return NULL;
}

static struct stack_rec *stack_get(struct py_priv *pp, __u64 id, __u32 pid)
{
	struct py_profile *prof = pp->prof;
	struct stack_rec **b = &prof->buckets[id % STACK_BUCKETS], *s;
	const struct py_code_entry *ce;
	struct es_py_stack st;
	struct py_proc *pr;
	char text[512];
	unsigned int room;
	size_t cut;
	__u32 depth;

	s = stack_find(prof, id);
	if (s)
		return s;
	if (prof->nstacks >= prof->max_stacks) {
		prof->over_limit++;
		return NULL;
	}
	if (bpf_map_lookup_elem(pp->stacks_fd, &id, &st))
		return NULL;
	depth = st.depth < ES_PY_MAX_DEPTH ? st.depth : ES_PY_MAX_DEPTH;
	room = depth + !!st.truncated;
	s = calloc(1, sizeof(*s) + room * (sizeof(s->frames[0]) + sizeof(uint16_t)));
	if (!s)
		return NULL;
	pr = py_proc_find(pp, pid);
	if (pr && pr->err)
		pr = NULL;
	s->id = id;
	if (st.truncated && frame_put(prof, s, room, "[truncated]", 11))
		goto fail;
	for (__u32 i = depth; i-- > 0;) {
		frame_text(pp, pr, &st, i, text, sizeof(text), &cut);
		if (frame_put(prof, s, room, text, cut))
			goto fail;
	}
	ce = pr && st.depth ? py_code_lookup(pp, pr, st.code[0]) : NULL;
	if (ce)
		py_frame_name(ce, text, sizeof(text));
	else
		snprintf(text, sizeof(text), "[unknown]");
	s->leaf = intern_get(prof->texts, text);
	if (!s->leaf)
		goto fail;
	s->next = *b;
	*b = s;
	prof->nstacks++;
	return s;
fail:
	/* A frame whose text failed is counted but NULL: intern_put() skips it. */
	stack_free(prof, s);
	return NULL;
}

const char *py_profile_stack_text(struct py_priv *pp, __u64 id, __u32 pid)
{
	struct stack_rec *s = stack_get(pp, id, pid);

	return s ? stack_render(s, false, pp->prof->scratch, sizeof(pp->prof->scratch)) : NULL;
}

/* --- per-function CPU --- */

static struct func_rec *func_get(struct py_profile *prof, enum es_role role, const char *name)
{
	for (size_t i = 0; i < prof->nfuncs; i++) {
		if (prof->funcs[i].role == role && !strcmp(prof->funcs[i].name, name))
			return &prof->funcs[i];
	}
	if (prof->nfuncs >= FUNC_MAX)
		return NULL;
	if (grow_array(&prof->funcs, &prof->funcs_cap, prof->nfuncs + 1, sizeof(*prof->funcs), 64))
		return NULL;
	prof->funcs[prof->nfuncs] = (struct func_rec){ .role = role, .name = strdup(name) };
	if (!prof->funcs[prof->nfuncs].name)
		return NULL;
	return &prof->funcs[prof->nfuncs++];
}

/* --- the log --- */

static int log_push(struct py_profile *prof, const struct sample *s)
{
	if (prof->n == prof->max_stacks * LOG_PER_STACK) {
		/* Full: the oldest record goes before its time. */
		prof->head = (prof->head + 1) % prof->cap;
		prof->n--;
		prof->log_full++;
	}
	if (prof->n == prof->cap) {
		size_t cap = prof->cap ? prof->cap * 2 : 1024;
		struct sample *nl = malloc(cap * sizeof(*nl));

		if (!nl)
			return -ENOMEM;
		for (size_t i = 0; i < prof->n; i++)
			nl[i] = prof->log[(prof->head + i) % prof->cap];
		free(prof->log);
		prof->log = nl;
		prof->cap = cap;
		prof->head = 0;
	}
	prof->log[(prof->head + prof->n) % prof->cap] = *s;
	prof->n++;
	return 0;
}

static void expire(struct py_profile *prof, uint64_t now_ms)
{
	uint64_t horizon = now_ms > prof->window_s * 1000ull ? now_ms - prof->window_s * 1000ull : 0;

	while (prof->n && prof->log[prof->head].t_ms < horizon) {
		prof->head = (prof->head + 1) % prof->cap;
		prof->n--;
	}
	/* Stacks no sample in the window points to. */
	for (size_t b = 0; b < STACK_BUCKETS; b++) {
		for (struct stack_rec **sp = &prof->buckets[b]; *sp;) {
			struct stack_rec *s = *sp;

			if (s->last_ms >= horizon) {
				sp = &s->next;
				continue;
			}
			*sp = s->next;
			stack_free(prof, s);
			prof->nstacks--;
		}
	}
}

/*
 * The keys of a hash map, read before any is deleted: get_next_key from a
 * deleted key starts over at the first bucket, which would make a drain
 * that deletes as it goes quadratic. *n is how many; NULL when none or on
 * allocation failure.
 */
static void *map_keys(int fd, size_t key_size, size_t *n)
{
	size_t cap = 0;
	char *keys = NULL;
	bool first = true;

	*n = 0;
	for (;;) {
		if (grow_array(&keys, &cap, *n + 1, key_size, 256))
			break;
		if (bpf_map_get_next_key(fd, first ? NULL : keys + (*n - 1) * key_size,
					 keys + *n * key_size))
			break;
		first = false;
		(*n)++;
	}
	if (!*n) {
		free(keys);
		return NULL;
	}
	return keys;
}

static void drain_counts(struct py_priv *pp, uint64_t now_ms);

void py_profile_drain(struct py_priv *pp, uint64_t now_ms)
{
	/* The requests probe reads its ring first: what it holds names the samples' requests. */
	reqtags_sync(pp->es->reqtags, now_ms);
	drain_counts(pp, now_ms);
}

static void drain_counts(struct py_priv *pp, uint64_t now_ms)
{
	struct py_profile *prof = pp->prof;
	struct es_py_count_key *keys;
	__u64 *ids, v;
	size_t n;

	keys = map_keys(pp->counts_fd, sizeof(*keys), &n);
	for (size_t i = 0; i < n; i++) {
		const struct es_py_count_key *key = &keys[i];
		struct sample s = { .t_ms = now_ms, .pid = key->tgid, .kind = (__u8)key->kind };
		const struct worker *w;

		if (bpf_map_lookup_and_delete_elem(pp->counts_fd, key, &v) || !v)
			continue;
		s.value = v;
		s.req = reqtags_resolve(pp->es->reqtags, key->req, now_ms);
		s.st = stack_get(pp, key->stack_id, key->tgid);
		if (!s.st) {
			if (prof->nstacks < prof->max_stacks)
				prof->dropped_unresolved++;
			continue;
		}
		w = procs_lookup(pp->es->procs, key->tgid);
		s.role = (__u8)(w ? w->role : ES_ROLE_PYTHON);
		s.st->last_ms = now_ms;
		if (log_push(prof, &s))
			continue;
		prof->drained++;
		if (s.kind == ES_PY_CPU) {
			struct func_rec *f = func_get(prof, (enum es_role)s.role, s.st->leaf);

			if (f)
				f->samples += v;
			else
				prof->other[s.role % ES_ROLE_COUNT] += v;
		}
	}
	free(keys);
	/*
	 * Stacks named here need not stay in the kernel's map (which would
	 * fill); one not named yet may have a count we take next time, unless
	 * no new stack can be held now (its sample was dropped).
	 */
	ids = map_keys(pp->stacks_fd, sizeof(*ids), &n);
	for (size_t i = 0; i < n; i++) {
		if (prof->nstacks >= prof->max_stacks || stack_find(prof, ids[i]))
			bpf_map_delete_elem(pp->stacks_fd, &ids[i]);
	}
	free(ids);
	expire(prof, now_ms);
}

/* --- metrics --- */

static int by_samples_desc(const void *a, const void *b)
{
	const struct func_rec *x = *(const struct func_rec *const *)a;
	const struct func_rec *y = *(const struct func_rec *const *)b;

	if (x->role != y->role)
		return x->role < y->role ? -1 : 1;
	if (x->samples != y->samples)
		return x->samples > y->samples ? -1 : 1;
	return strcmp(x->name, y->name);
}

void py_profile_collect(struct py_priv *pp, struct expo *e)
{
	struct py_profile *prof = pp->prof;
	struct func_rec **idx = prof->nfuncs ? calloc(prof->nfuncs, sizeof(*idx)) : NULL;
	unsigned int shown = 0;
	int role = -1;

	expo_family(e, "erpscope_python_function_cpu_seconds_total", EXPO_COUNTER,
		    "CPU time of Python functions as the innermost frame (self time) from the CPU profile's samples, per role; the top functions per role by CPU, the rest under function=\"other\".");
	if (prof->nfuncs && !idx)
		return;
	for (size_t i = 0; i < prof->nfuncs; i++)
		idx[i] = &prof->funcs[i];
	if (prof->nfuncs)
		qsort(idx, prof->nfuncs, sizeof(*idx), by_samples_desc);
	for (size_t i = 0; i < prof->nfuncs; i++) {
		struct func_rec *f = idx[i];

		if ((int)f->role != role) {
			role = (int)f->role;
			shown = 0;
		}
		/*
		 * Samples since the last pass go to the function's own series
		 * while it is in the top K and to "other" while not, so every
		 * series is monotonic and together they add up to the total.
		 */
		f->shown = shown < prof->top_funcs;
		shown += f->shown;
		if (f->shown) {
			f->own += f->samples - f->prev;
		} else {
			prof->other[f->role % ES_ROLE_COUNT] += f->samples - f->prev;
			prof->other_used[f->role % ES_ROLE_COUNT] = true;
		}
		f->prev = f->samples;
	}
	for (size_t i = 0; i < prof->nfuncs; i++) {
		struct func_rec *f = idx[i];
		struct expo_label l[2] = { { "role", role_name(f->role) }, { "function", f->name } };

		if (f->shown)
			expo_sample(e, l, 2, (double)f->own / prof->hz);
	}
	for (int r = 0; r < ES_ROLE_COUNT; r++) {
		struct expo_label l[2] = { { "role", role_name((enum es_role)r) }, { "function", "other" } };

		if (prof->other_used[r] || prof->other[r])
			expo_sample(e, l, 2, (double)prof->other[r] / prof->hz);
	}
	free(idx);

	expo_family(e, "erpscope_python_processes", EXPO_GAUGE,
		    "Python processes being profiled, by CPython version.");
	{
		unsigned int versions[16] = { 0 }, counts[16] = { 0 }, nv = 0;

		for (size_t i = 0; i < pp->nprocs; i++) {
			unsigned int v = pp->procs[i].t.version, k;

			if (pp->procs[i].err)
				continue;
			for (k = 0; k < nv && versions[k] != v; k++)
				;
			if (k == nv && nv < 16)
				versions[nv++] = v;
			if (k < nv)
				counts[k]++;
		}
		for (unsigned int k = 0; k < nv; k++) {
			char ver[16];
			struct expo_label l = { "version", ver };

			snprintf(ver, sizeof(ver), "%u.%u", versions[k] >> 8, versions[k] & 0xff);
			expo_sample(e, &l, 1, counts[k]);
		}
	}
	expo_family(e, "erpscope_python_profile_stacks", EXPO_GAUGE,
		    "Distinct Python stacks held for GET /profile.");
	expo_sample(e, NULL, 0, (double)prof->nstacks);
	expo_family(e, "erpscope_python_profile_counts_dropped_total", EXPO_COUNTER,
		    "What the kernel counted for one Python stack in one process over a second (CPU samples or off-CPU time) that the daemon did not keep: the stack could not be read from the kernel's map (unreadable), the profile already held its most distinct stacks (stack_limit: --python.profile-max-stacks within --python.profile-window), or, kept but dropped before the window's end, the oldest when the profile held 8 per stack it may hold (window_full).");
	{
		struct expo_label l = { "reason", "unreadable" };

		expo_sample_u64(e, &l, 1, prof->dropped_unresolved);
		l.value = "stack_limit";
		expo_sample_u64(e, &l, 1, prof->over_limit);
		l.value = "window_full";
		expo_sample_u64(e, &l, 1, prof->log_full);
	}
	expo_family(e, "erpscope_python_code_objects", EXPO_GAUGE,
		    "Code objects of Python processes held in the daemon's caches, each read once to name stack frames.");
	expo_sample(e, NULL, 0, (double)py_codes_cached(pp));
	expo_family(e, "erpscope_python_names_bytes", EXPO_GAUGE,
		    "Bytes the texts of the cached code objects (file, module, function) and of the held stacks' frames take, each distinct text stored once for all processes.");
	expo_sample(e, NULL, 0, (double)(intern_bytes(pp->names) + intern_bytes(prof->texts)));
}

/* --- GET /profile --- */

struct agg {
	__u32 pid;
	__u8 role;
	struct stack_rec *st;
	uint64_t value;
};

static int agg_cmp(const void *a, const void *b)
{
	const struct agg *x = a, *y = b;

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	if (x->st != y->st)
		return x->st < y->st ? -1 : 1;
	return x->role - y->role;
}

static int agg_value_desc(const void *a, const void *b)
{
	const struct agg *x = a, *y = b;

	if (x->value != y->value)
		return x->value > y->value ? -1 : 1;
	return agg_cmp(a, b);
}

static int bad_request(struct http_exchange *x, const char *why)
{
	char msg[200];

	snprintf(msg, sizeof(msg), "bad request: %s\n", why);
	return http_reply_text(x, 400, "text/plain; charset=utf-8", msg);
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (!s || !*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > max)
			return false;
	}
	*out = v;
	return true;
}

struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (grow_array(&b->p, &b->cap, b->len + n + 1, 1, 4096)) {
		b->oom = true;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/*
 * model=, method=, route=: *want[id] for the request labels that match all
 * those given; *want NULL when none is. 0, or an HTTP status with *why.
 */
static int request_filter(struct erpscope *es, struct http_exchange *x, bool **want,
			  const char **why)
{
	const char *model = http_query(x, "model"), *method = http_query(x, "method");
	const char *route = http_query(x, "route");

	*want = NULL;
	if (!model && !method && !route)
		return 0;
	if (!reqtags_has_writer(es->reqtags)) {
		*why = "model=, method= and route= need the requests probe, which is off (--probes)\n";
		return 409;
	}
	*want = calloc(REQTAG_LABELS, sizeof(**want));
	if (!*want)
		return -ENOMEM;
	for (uint16_t id = 1; id < REQTAG_LABELS; id++) {
		const struct reqtag_label *l = reqtags_label(es->reqtags, id);

		(*want)[id] = l && (!model || !strcmp(model, l->model)) &&
			      (!method || !strcmp(method, l->method)) &&
			      (!route || !strcmp(route, l->route));
	}
	return 0;
}

int py_profile_http(void *arg, struct http_exchange *x)
{
	struct erpscope *es = arg;
	struct py_priv *pp = python_priv(es);
	const char *kind_s = http_query(x, "kind"), *sec_s = http_query(x, "seconds");
	const char *role_s = http_query(x, "role"), *worker_s = http_query(x, "worker");
	const char *lines_s = http_query(x, "lines");
	unsigned long seconds = 30, worker = 0;
	int kind = ES_PY_CPU, role = -1;
	bool lines = false, *want = NULL;
	const char *why = NULL;
	struct agg *aggs = NULL;
	size_t nagg = 0;
	struct buf out = { 0 };
	uint64_t now_ms = clock_ms(), since;
	struct py_profile *prof;
	int err;

	if (!pp)
		return http_reply_text(x, 503, "text/plain; charset=utf-8",
				       "the python probe is not running (see the daemon's log)\n");
	prof = pp->prof;
	/* What the kernel counted since the last drain belongs to "the last N s". */
	py_profile_drain(pp, now_ms);
	if (kind_s && !strcmp(kind_s, "offcpu"))
		kind = ES_PY_OFFCPU;
	else if (kind_s && strcmp(kind_s, "cpu"))
		return bad_request(x, "kind must be cpu or offcpu");
	if (sec_s && (!parse_uint(sec_s, prof->window_s, &seconds) || !seconds)) {
		char why[96];

		snprintf(why, sizeof(why), "seconds must be 1..%u (--python.profile-window)",
			 prof->window_s);
		return bad_request(x, why);
	}
	if (worker_s && !parse_uint(worker_s, 0x7fffffff, &worker))
		return bad_request(x, "worker must be a process id");
	if (role_s) {
		for (int r = 0; r < ES_ROLE_COUNT; r++) {
			if (!strcmp(role_s, role_name((enum es_role)r)))
				role = r;
		}
		if (role < 0)
			return bad_request(x, "unknown role");
	}
	if (lines_s && strcmp(lines_s, "0") && strcmp(lines_s, "1"))
		return bad_request(x, "lines must be 0 or 1");
	lines = lines_s && !strcmp(lines_s, "1");
	if (kind == ES_PY_OFFCPU && !pp->offcpu_profile)
		return http_reply_text(x, 503, "text/plain; charset=utf-8",
				       "no off-CPU profile on this kernel: it needs typed tracepoints and BPF task work (Linux 6.18+)\n");
	if (kind == ES_PY_CPU && !pp->cpu_profile)
		return http_reply_text(x, 503, "text/plain; charset=utf-8",
				       "CPU profiling is off (--python.sample-frequency=0)\n");

	err = request_filter(es, x, &want, &why);
	if (err > 0)
		return http_reply_text(x, err, "text/plain; charset=utf-8", why);
	if (err)
		return err;

	since = now_ms > seconds * 1000 ? now_ms - seconds * 1000 : 0;
	aggs = prof->n ? calloc(prof->n, sizeof(*aggs)) : NULL;
	if (prof->n && !aggs) {
		free(want);
		return -ENOMEM;
	}
	for (size_t i = 0; i < prof->n; i++) {
		const struct sample *s = &prof->log[(prof->head + i) % prof->cap];

		if (s->t_ms < since || s->kind != kind || (role >= 0 && s->role != role) ||
		    (worker && s->pid != worker) || (want && !want[s->req % REQTAG_LABELS]))
			continue;
		aggs[nagg++] = (struct agg){ s->pid, s->role, s->st, s->value };
	}
	if (nagg) {
		size_t m = 0;

		qsort(aggs, nagg, sizeof(*aggs), agg_cmp);
		for (size_t i = 0; i < nagg; i++) {
			if (m && !agg_cmp(&aggs[m - 1], &aggs[i]))
				aggs[m - 1].value += aggs[i].value;
			else
				aggs[m++] = aggs[i];
		}
		nagg = m;
		qsort(aggs, nagg, sizeof(*aggs), agg_value_desc);
	}
	free(want);
	buf_add(&out, "", 0);
	for (size_t i = 0; i < nagg; i++) {
		const struct agg *a = &aggs[i];
		uint64_t v = kind == ES_PY_OFFCPU ? (a->value + 500) / 1000 : a->value;
		const char *folded = stack_render(a->st, lines, prof->scratch, sizeof(prof->scratch));
		char head[64], tail[32];

		if (!v)
			continue;
		snprintf(head, sizeof(head), "%s[%u]", role_name((enum es_role)a->role), a->pid);
		buf_add(&out, head, strlen(head));
		if (*folded) {
			buf_add(&out, ";", 1);
			buf_add(&out, folded, strlen(folded));
		}
		snprintf(tail, sizeof(tail), " %llu\n", (unsigned long long)v);
		buf_add(&out, tail, strlen(tail));
	}
	free(aggs);
	if (out.oom) {
		free(out.p);
		return -ENOMEM;
	}
	x->status = 200;
	x->content_type = "text/plain; charset=utf-8";
	x->body = out.p;
	x->len = out.len;
	return 0;
}

/*
 * For another capability's event (a slow request): the stack of kind seen
 * most in process pid since since_ms while it served a request named
 * (route, model, method), folded outermost first into out. What the kernel
 * holds is drained first, so the request's last moments count (without
 * the requests probe's sync: this runs inside its ring's callback, and the
 * request's names are known already). Returns the
 * samples (CPU) or nanoseconds (off-CPU) behind it; 0 when there is none.
 */
uint64_t py_profile_top_stack(struct erpscope *es, __u32 pid, enum es_py_kind kind,
			      const char *route, const char *model, const char *method,
			      uint64_t since_ms, char *out, size_t size)
{
	struct py_priv *pp = python_priv(es);
	struct py_profile *prof = pp ? pp->prof : NULL;
	struct stack_rec *best = NULL;
	uint64_t best_v = 0, now_ms = clock_ms();
	struct agg *aggs;
	size_t nagg = 0;

	if (!prof || !es->reqtags)
		return 0;
	drain_counts(pp, now_ms);
	if (!prof->n)
		return 0;
	aggs = calloc(prof->n, sizeof(*aggs));
	if (!aggs)
		return 0;
	for (size_t i = 0; i < prof->n; i++) {
		const struct sample *s = &prof->log[(prof->head + i) % prof->cap];
		const struct reqtag_label *l;

		if (s->t_ms < since_ms || s->kind != kind || s->pid != pid || !s->req)
			continue;
		l = reqtags_label(es->reqtags, s->req);
		if (!l || strcmp(l->route, route) || strcmp(l->model, model) ||
		    strcmp(l->method, method))
			continue;
		aggs[nagg++] = (struct agg){ s->pid, s->role, s->st, s->value };
	}
	qsort(aggs, nagg, sizeof(*aggs), agg_cmp);
	for (size_t i = 0, j; i < nagg; i = j) {
		uint64_t v = 0;

		for (j = i; j < nagg && aggs[j].st == aggs[i].st; j++)
			v += aggs[j].value;
		if (v > best_v) {
			best_v = v;
			best = aggs[i].st;
		}
	}
	free(aggs);
	if (best)
		stack_render(best, false, out, size);
	return best ? best_v : 0;
}
