// SPDX-License-Identifier: GPL-2.0
/*
 * CPython read from outside with process_vm_readv. The target runs on while
 * it is read, so any pointer may be stale or garbage: every read is bounded
 * (strings, tuples, chains), checked against the type it should have, and
 * a failed read ends the walk or renders as "?" instead of being trusted.
 */
#include "core/procmem.h"
#include "python/pyrt.h"

#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <gelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/elfsym.h"
#include "core/readfile.h"

#define PY_STR_MAX 4096 /* bytes of a str's characters read at most */
#define PY_TUPLE_MAX 1024 /* a larger co_localsplusnames is garbage */
#define PY_TYPE_NAME_MAX 64 /* bytes of a type's tp_name read at most */
#define PY_PKG_DEPTH 16 /* package directories looked up from a file */
#define PY_ADDR_LIMIT (1ULL << 57) /* above any user address (5-level paging) */
#define PY_SKIP_MAX 64 /* frames skipped (C-stack owned) per walk, at most */
#define PY_TP_NAME 24 /* PyTypeObject.tp_name, the same in every 3.x */
#define PY_PTHREAD_SCAN 2048 /* bytes of a struct pthread searched for its tid (3.10) */
#define PY_DEBUG_COOKIE "xdebugpy" /* _Py_DebugOffsets.cookie (3.13+) */

/* PyASCIIObject.state */
#define PY_STATE_KIND(s) (((s) >> 2) & 7)
#define PY_STATE_COMPACT (1u << 5)
#define PY_STATE_ASCII (1u << 6)
#define PY_STATE_READY (1u << 7)

/*
 * One table per CPython minor version, measured with gdb (ptype/o) on the
 * DWARF of pyenv's 3.10.13, 3.11.7, 3.12.1 and 3.13.0 builds; Debian's
 * 3.11.2 has 3.11's. x86_64 and aarch64 (LP64) lay them out alike. Field
 * offsets do not change within a minor version (CPython's ABI rule for
 * these internals); 3.13+ processes publish theirs and are checked.
 */
static const struct py_layout layouts[] = {
	{
		/* PyFrameObject chain from PyThreadState.frame; no co_qualname */
		.version = 0x030a,
		.rt_interp_head = 32,
		.interp_tstate_head = 8,
		.ts_interp = 16,
		.code_argcount = 16,
		.code_posonly = 20,
		.code_kwonly = 24,
		.code_firstlineno = 40,
		.code_localsplusnames = 72,
		.code_filename = 104,
		.code_name = 112,
		.code_qualname = 0,
		.obj_type = 8,
		.var_size = 16,
		.tuple_items = 24,
		.unicode_length = 16,
		.unicode_state = 32,
		.ascii_data = 48,
		.compact_data = 72,
		.bytes_data = 32,
		.long_digits = 24,
		.unicode_ready = true,
		.ts_pthread = true,
		.bpf = {
			.ts_next = 8,
			.ts_thread = 176,
			.pthread_tid = ES_PY_NO_OFF,
			.ts_frame = 24,
			.cframe_current = ES_PY_NO_OFF,
			.frame_code = 32,
			.frame_previous = 24,
			.frame_localsplus = 352,
			.frame_owner = 0,
			.shim_owner = ES_PY_NO_SHIM,
		},
	},
	{
		/* _PyInterpreterFrame through PyThreadState.cframe */
		.version = 0x030b,
		.rt_interp_head = 40,
		.interp_tstate_head = 16,
		.ts_interp = 16,
		.code_argcount = 56,
		.code_posonly = 60,
		.code_kwonly = 64,
		.code_firstlineno = 72,
		.code_localsplusnames = 96,
		.code_filename = 112,
		.code_name = 120,
		.code_qualname = 128,
		.obj_type = 8,
		.var_size = 16,
		.tuple_items = 24,
		.unicode_length = 16,
		.unicode_state = 32,
		.ascii_data = 48,
		.compact_data = 72,
		.bytes_data = 32,
		.long_digits = 24,
		.unicode_ready = true,
		.bpf = {
			.ts_next = 8,
			.ts_thread = 160,
			.pthread_tid = ES_PY_NO_OFF,
			.ts_frame = 56,
			.cframe_current = 8,
			.frame_code = 32,
			.frame_previous = 48,
			.frame_localsplus = 72,
			.frame_owner = 0, /* no C-stack shims: is_entry instead */
			.shim_owner = ES_PY_NO_SHIM,
		},
	},
	{
		/* f_code first in the frame; shim frames; lv_tag ints; no wstr */
		.version = 0x030c,
		.rt_interp_head = 40,
		.interp_tstate_head = 72,
		.ts_interp = 16,
		.code_argcount = 52,
		.code_posonly = 56,
		.code_kwonly = 60,
		.code_firstlineno = 68,
		.code_localsplusnames = 96,
		.code_filename = 112,
		.code_name = 120,
		.code_qualname = 128,
		.obj_type = 8,
		.var_size = 16,
		.tuple_items = 24,
		.unicode_length = 16,
		.unicode_state = 32,
		.ascii_data = 40,
		.compact_data = 56,
		.bytes_data = 32,
		.long_digits = 24,
		.long_tag = true,
		.bpf = {
			.ts_next = 8,
			.ts_thread = 144,
			.pthread_tid = ES_PY_NO_OFF,
			.ts_frame = 56,
			.cframe_current = 0,
			.frame_code = 0,
			.frame_previous = 8,
			.frame_localsplus = 72,
			.frame_owner = 70,
			.shim_owner = ES_PY_OWNED_BY_CSTACK,
		},
	},
	{
		/* PyThreadState.current_frame, no _PyCFrame; f_executable */
		.version = 0x030d,
		.rt_interp_head = 632,
		.interp_tstate_head = 7344,
		.ts_interp = 16,
		.code_argcount = 52,
		.code_posonly = 56,
		.code_kwonly = 60,
		.code_firstlineno = 68,
		.code_localsplusnames = 96,
		.code_filename = 112,
		.code_name = 120,
		.code_qualname = 128,
		.obj_type = 8,
		.var_size = 16,
		.tuple_items = 24,
		.unicode_length = 16,
		.unicode_state = 32,
		.ascii_data = 40,
		.compact_data = 56,
		.bytes_data = 32,
		.long_digits = 24,
		.long_tag = true,
		.debug_offsets = true,
		.bpf = {
			.ts_next = 8,
			.ts_thread = 160,
			.pthread_tid = ES_PY_NO_OFF,
			.ts_frame = 72,
			.cframe_current = ES_PY_NO_OFF,
			.frame_code = 0,
			.frame_previous = 8,
			.frame_localsplus = 72,
			.frame_owner = 70,
			.shim_owner = ES_PY_OWNED_BY_CSTACK,
		},
	},
};

const struct py_layout *py_layout_for(unsigned int version)
{
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
		if (layouts[i].version == version)
			return &layouts[i];
	}
	return NULL;
}

/* ---- reading the target ---------------------------------------------------- */

/* Reads exactly len bytes at addr: 0, -ESRCH when the process is gone, else -errno. */
static int rd(const struct py_target *t, uint64_t addr, void *buf, size_t len)
{
	if (addr < 4096 || addr >= PY_ADDR_LIMIT || len > PY_ADDR_LIMIT - addr)
		return -EFAULT;
	return proc_mem_read(t->pid, addr, buf, len);
}

static int rd_ptr(const struct py_target *t, uint64_t addr, uint64_t *out)
{
	return rd(t, addr, out, sizeof(*out));
}

/*
 * Reads up to len bytes of a C string: each page its own iovec, so a string
 * ending just before an unmapped page still reads. Returns the bytes read.
 */
static size_t rd_cstr(const struct py_target *t, uint64_t addr, char *buf, size_t len)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), first;
	struct iovec local = { buf, len }, remote[2];
	ssize_t n;

	if (addr < 4096 || addr >= PY_ADDR_LIMIT - len || !len)
		return 0;
	first = page - addr % page;
	if (first > len)
		first = len;
	remote[0] = (struct iovec){ (void *)(uintptr_t)addr, first };
	remote[1] = (struct iovec){ (void *)(uintptr_t)(addr + first), len - first };
	n = process_vm_readv(t->pid, &local, 1, remote, first < len ? 2 : 1, 0);
	return n > 0 ? (size_t)n : 0;
}

static uint64_t get_u64(const unsigned char *h, size_t off)
{
	uint64_t v;

	memcpy(&v, h + off, sizeof(v));
	return v;
}

static int32_t get_i32(const unsigned char *h, size_t off)
{
	int32_t v;

	memcpy(&v, h + off, sizeof(v));
	return v;
}

/* ---- output buffers ---------------------------------------------------------- */

/* Pieces (a character, an escape) are written whole or not at all. */
struct sink {
	char *buf;
	size_t cap; /* buf's size, with the NUL */
	size_t len;
	size_t safe; /* where to cut back to so that "..." fits */
	bool full; /* a piece did not fit */
};

static bool put(struct sink *o, const char *s, size_t n)
{
	if (o->full || o->len + n + 1 > o->cap) {
		o->full = true;
		return false;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	if (o->len + 4 <= o->cap)
		o->safe = o->len;
	return true;
}

static bool puts_(struct sink *o, const char *s)
{
	return put(o, s, strlen(s));
}

/* Terminates buf; with dots, output that was cut (or more) ends in "...". */
static size_t finish(struct sink *o, bool more, bool dots)
{
	if (!o->cap)
		return 0;
	if (dots && (o->full || more)) {
		o->len = o->safe;
		for (int i = 0; i < 3 && o->len + 1 < o->cap; i++)
			o->buf[o->len++] = '.';
	}
	o->buf[o->len] = 0;
	return o->len;
}

static size_t unreadable(char *buf, size_t len)
{
	struct sink o = { .buf = buf, .cap = len };

	puts_(&o, "?");
	return finish(&o, false, false);
}

static size_t utf8_enc(uint32_t cp, char *b)
{
	if (cp < 0x80) {
		b[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6);
		b[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		b[0] = (char)(0xe0 | cp >> 12);
		b[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	b[0] = (char)(0xf0 | cp >> 18);
	b[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	b[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	b[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static bool is_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp < 0xa0);
}

/* No UTF-8 for these: lone surrogates and what is above Unicode. */
static bool is_invalid(uint32_t cp)
{
	return (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff;
}

/*
 * What Python's repr escapes, without its tables: controls, separators
 * other than the space, format characters that hide or reorder text,
 * private use, noncharacters, tags, surrogates.
 */
static bool is_unprintable(uint32_t cp)
{
	return is_control(cp) || is_invalid(cp) || cp == 0xa0 || cp == 0xad || cp == 0x1680 ||
	       cp == 0x180e || (cp >= 0x2000 && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202f) ||
	       (cp >= 0x205f && cp <= 0x206f) || cp == 0x3000 || cp == 0xfeff ||
	       (cp >= 0xfff9 && cp <= 0xfffb) || (cp >= 0xe000 && cp <= 0xf8ff) ||
	       (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe ||
	       (cp >= 0xe0000 && cp <= 0xe007f) || cp >= 0xf0000;
}

/* A character of a name (qualname, path): controls become '?'. */
static bool put_name_cp(struct sink *o, uint32_t cp)
{
	char b[4];

	if (is_control(cp))
		cp = '?';
	else if (is_invalid(cp))
		cp = 0xfffd;
	return put(o, b, utf8_enc(cp, b));
}

/* A character of a repr'd str: escaped as Python would. */
static bool put_repr_cp(struct sink *o, uint32_t cp)
{
	char b[16];

	switch (cp) {
	case '\\':
		return puts_(o, "\\\\");
	case '\'':
		return puts_(o, "\\'");
	case '\n':
		return puts_(o, "\\n");
	case '\t':
		return puts_(o, "\\t");
	case '\r':
		return puts_(o, "\\r");
	}
	if (!is_unprintable(cp))
		return put(o, b, utf8_enc(cp, b));
	if (cp < 0x100)
		snprintf(b, sizeof(b), "\\x%02x", (unsigned int)cp);
	else if (cp < 0x10000)
		snprintf(b, sizeof(b), "\\u%04x", (unsigned int)cp);
	else
		snprintf(b, sizeof(b), "\\U%08x", (unsigned int)cp);
	return puts_(o, b);
}

/* ---- str objects ----------------------------------------------------------- */

struct py_str {
	unsigned int kind; /* bytes per character: 1, 2 or 4 */
	size_t n; /* characters read */
	bool cut; /* the string has more than were read */
	unsigned char data[PY_STR_MAX];
};

static uint32_t str_at(const struct py_str *s, size_t i)
{
	uint16_t u16;
	uint32_t u32;

	switch (s->kind) {
	case 1:
		return s->data[i];
	case 2:
		memcpy(&u16, s->data + 2 * i, 2);
		return u16;
	default:
		memcpy(&u32, s->data + 4 * i, 4);
		return u32;
	}
}

/* Reads an exact str (compact and ready, as every str but 3.10/3.11 legacy ones). */
static int read_str(const struct py_target *t, uint64_t obj, struct py_str *s)
{
	const struct py_layout *l = t->lay;
	unsigned char h[64];
	size_t head = (size_t)l->unicode_state + 4;
	uint32_t state;
	int64_t length;
	int err;

	if (head > sizeof(h) || (size_t)l->unicode_length + 8 > head)
		return -EINVAL;
	err = rd(t, obj, h, head);
	if (err)
		return err;
	if (!t->unicode_type || get_u64(h, l->obj_type) != t->unicode_type)
		return -EINVAL;
	memcpy(&length, h + l->unicode_length, sizeof(length));
	memcpy(&state, h + l->unicode_state, sizeof(state));
	s->kind = PY_STATE_KIND(state);
	if (length < 0 || !(state & PY_STATE_COMPACT) || (l->unicode_ready && !(state & PY_STATE_READY)) ||
	    (s->kind != 1 && s->kind != 2 && s->kind != 4) ||
	    ((state & PY_STATE_ASCII) && s->kind != 1))
		return -EINVAL;
	s->n = (uint64_t)length < PY_STR_MAX / s->kind ? (size_t)length : PY_STR_MAX / s->kind;
	s->cut = s->n < (uint64_t)length;
	if (!s->n)
		return 0;
	return rd(t, obj + ((state & PY_STATE_ASCII) ? l->ascii_data : l->compact_data), s->data,
		  s->n * s->kind);
}

/* A str as a NUL-terminated UTF-8 name, cut at a character boundary. */
static int read_name(const struct py_target *t, uint64_t obj, char *buf, size_t len)
{
	struct py_str s;
	struct sink o = { .buf = buf, .cap = len };
	int err = read_str(t, obj, &s);

	if (err) {
		finish(&o, false, false);
		return err;
	}
	for (size_t i = 0; i < s.n && put_name_cp(&o, str_at(&s, i)); i++)
		;
	finish(&o, false, false);
	return 0;
}

/* ---- values ---------------------------------------------------------------- */

static int repr_str(const struct py_target *t, uint64_t obj, struct sink *o, bool *more)
{
	struct py_str s;
	int err = read_str(t, obj, &s);

	if (err)
		return err;
	if (puts_(o, "'")) {
		for (size_t i = 0; i < s.n && put_repr_cp(o, str_at(&s, i)); i++)
			;
		if (!s.cut)
			puts_(o, "'");
	}
	*more = s.cut;
	return 0;
}

static int repr_bytes(const struct py_target *t, uint64_t obj, struct sink *o, bool *more)
{
	const struct py_layout *l = t->lay;
	unsigned char data[PY_STR_MAX];
	int64_t size;
	size_t n;
	int err;

	err = rd(t, obj + l->var_size, &size, sizeof(size));
	if (err)
		return err;
	if (size < 0)
		return -EINVAL;
	n = (uint64_t)size < sizeof(data) ? (size_t)size : sizeof(data);
	if (n && (err = rd(t, obj + l->bytes_data, data, n)))
		return err;
	if (puts_(o, "b'")) {
		for (size_t i = 0; i < n; i++) {
			unsigned char c = data[i];
			char b[8];

			if (c == '\\' || c == '\'')
				snprintf(b, sizeof(b), "\\%c", c);
			else if (c == '\n')
				snprintf(b, sizeof(b), "\\n");
			else if (c == '\t')
				snprintf(b, sizeof(b), "\\t");
			else if (c == '\r')
				snprintf(b, sizeof(b), "\\r");
			else if (c < 0x20 || c >= 0x7f)
				snprintf(b, sizeof(b), "\\x%02x", c);
			else
				snprintf(b, sizeof(b), "%c", c);
			if (!puts_(o, b))
				break;
		}
		if (n == (uint64_t)size)
			puts_(o, "'");
	}
	*more = n < (uint64_t)size;
	return 0;
}

/*
 * 30-bit digits; the count and sign in ob_size (3.10, 3.11) or in lv_tag
 * (3.12+: ndigits << 3, sign 0 positive, 1 zero, 2 negative). What does
 * not fit 64 bits is "<int>".
 */
static int repr_long(const struct py_target *t, uint64_t obj, struct sink *o)
{
	const struct py_layout *l = t->lay;
	uint32_t digits[3];
	uint64_t v = 0, nd;
	bool neg;
	int64_t size;
	char b[32];
	int err;

	err = rd(t, obj + l->var_size, &size, sizeof(size));
	if (err)
		return err;
	if (l->long_tag) {
		if ((size & 3) == 3 || ((size & 3) == 1 && (uint64_t)size >> 3))
			return -EINVAL;
		nd = (uint64_t)size >> 3;
		neg = (size & 3) == 2;
	} else {
		nd = size < 0 ? 0 - (uint64_t)size : (uint64_t)size;
		neg = size < 0;
	}
	if (nd > 3) {
		puts_(o, "<int>");
		return 0;
	}
	if (nd && (err = rd(t, obj + l->long_digits, digits, nd * sizeof(digits[0]))))
		return err;
	for (size_t i = nd; i-- > 0;) {
		if (digits[i] >> 30)
			return -EINVAL;
		if (v >> 34) {
			puts_(o, "<int>");
			return 0;
		}
		v = v << 30 | digits[i];
	}
	snprintf(b, sizeof(b), "%s%llu", neg ? "-" : "", (unsigned long long)v);
	puts_(o, b);
	return 0;
}

/* "<tp_name>", kept to the characters of dotted identifiers. */
static int repr_type(const struct py_target *t, uint64_t type, struct sink *o)
{
	char name[PY_TYPE_NAME_MAX], b[PY_TYPE_NAME_MAX + 2];
	uint64_t p;
	size_t n, k = 0;
	int err;

	err = rd_ptr(t, type + PY_TP_NAME, &p);
	if (err)
		return err;
	n = rd_cstr(t, p, name, sizeof(name));
	b[k++] = '<';
	for (size_t i = 0; i < n && name[i]; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.'))
			c = '?';
		b[k++] = c;
	}
	if (k == 1)
		return -EINVAL;
	b[k++] = '>';
	put(o, b, k);
	return 0;
}

size_t py_value_repr(const struct py_target *t, uint64_t obj, char *buf, size_t len)
{
	struct sink o = { .buf = buf, .cap = len };
	bool more = false;
	uint64_t type;
	int err;

	if (!len)
		return 0;
	if (!t || !t->lay)
		return unreadable(buf, len);
	if (obj && obj == t->none) {
		puts_(&o, "None");
		return finish(&o, false, true);
	}
	err = rd_ptr(t, obj + t->lay->obj_type, &type);
	if (err || !type)
		return unreadable(buf, len);
	if (type == t->unicode_type) {
		err = repr_str(t, obj, &o, &more);
	} else if (type == t->long_type) {
		err = repr_long(t, obj, &o);
	} else if (type == t->bool_type) {
		puts_(&o, obj == t->true_obj ? "True" : "False");
	} else if (type == t->bytes_type) {
		err = repr_bytes(t, obj, &o, &more);
	} else {
		err = repr_type(t, type, &o);
	}
	if (err)
		return unreadable(buf, len);
	return finish(&o, more, true);
}

/* ---- code objects ------------------------------------------------------------ */

/* Bytes of a code object's head that hold every field read. */
static size_t code_head_size(const struct py_layout *l)
{
	const __u16 offs[] = {
		l->obj_type,	  l->code_argcount,    l->code_posonly,
		l->code_kwonly,	  l->code_firstlineno, l->code_localsplusnames,
		l->code_filename, l->code_name,	       l->code_qualname,
	};
	size_t max = 0;

	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		if (offs[i] > max)
			max = offs[i];
	}
	return max + 8;
}

static int read_code(const struct py_target *t, uint64_t code, unsigned char *h, size_t size)
{
	size_t need;

	if (!t || !t->lay || !t->code_type)
		return -EFAULT;
	need = code_head_size(t->lay);
	if (need > size || rd(t, code, h, need) || get_u64(h, t->lay->obj_type) != t->code_type)
		return -EFAULT;
	return 0;
}

/* Not under a network or FUSE mount: a stat() there can block the daemon's only thread. */
static bool file_exists(const struct py_target *t, const char *dir, const char *name)
{
	char p[PATH_MAX + 64];
	struct stat st;
	int n;

	if (netfs_under(&t->remote, dir))
		return false;
	n = snprintf(p, sizeof(p), "/proc/%d/root%s/%s", (int)t->pid, dir, name);
	return n > 0 && (size_t)n < sizeof(p) && !stat(p, &st) && S_ISREG(st.st_mode);
}

/*
 * The module a file is: __main__ for the script, the name inside
 * "<frozen ...>", and otherwise its name up the directories that are
 * packages (have an __init__.py), joined with dots.
 */
static void module_of(const struct py_target *t, const char *file, char *out, size_t len)
{
	struct sink o = { .buf = out, .cap = len };
	struct span {
		const char *p;
		size_t n;
	} comps[PY_PKG_DEPTH + 1];
	char dir[PATH_MAX];
	const char *base, *slash;
	size_t nc = 0, flen = strlen(file), blen;

	if (t->script[0] && !strcmp(file, t->script)) {
		puts_(&o, "__main__");
		goto out;
	}
	if (file[0] == '<') {
		if (!strncmp(file, "<frozen ", 8) && flen > 9 && file[flen - 1] == '>')
			put(&o, file + 8, flen - 9);
		else
			put(&o, file, flen);
		goto out;
	}
	slash = strrchr(file, '/');
	base = slash ? slash + 1 : file;
	blen = strlen(base);
	if (blen > 3 && !strcmp(base + blen - 3, ".py"))
		blen -= 3;
	/* A package's __init__.py is the package itself. */
	if (!(blen == 8 && !strncmp(base, "__init__", 8)) || file[0] != '/')
		comps[nc++] = (struct span){ base, blen };
	if (file[0] == '/' && flen < sizeof(dir)) {
		memcpy(dir, file, (size_t)(base - file));
		dir[base - file] = 0;
		while (nc < PY_PKG_DEPTH + 1) {
			char *s = strrchr(dir, '/');

			/* dir ends in '/': cut it, then the component before it */
			if (!s || s == dir)
				break;
			*s = 0;
			s = strrchr(dir, '/');
			if (!s || !s[1] || !file_exists(t, dir, "__init__.py"))
				break;
			comps[nc++] = (struct span){ file + (s + 1 - dir), strlen(s + 1) };
			s[1] = 0;
		}
	}
	if (!nc)
		comps[nc++] = (struct span){ base, blen };
	for (size_t i = nc; i-- > 0;) {
		if ((i + 1 < nc && !puts_(&o, ".")) || !put(&o, comps[i].p, comps[i].n))
			break;
	}
out:
	finish(&o, false, false);
}

/* Copies a (UTF-8) string, cut before a character that does not fit. */
static void copy_utf8(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= size) {
		n = size - 1;
		while (n && ((unsigned char)src[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(dst, src, n);
	dst[n] = 0;
}

int py_code_read(const struct py_target *t, uint64_t code, struct py_code *out)
{
	unsigned char h[256];
	char file[PATH_MAX];
	int32_t argc, kwonly;

	memset(out, 0, sizeof(*out));
	if (read_code(t, code, h, sizeof(h)))
		return -EFAULT;
	argc = get_i32(h, t->lay->code_argcount);
	kwonly = get_i32(h, t->lay->code_kwonly);
	if (argc < 0 || kwonly < 0 || argc + kwonly > PY_TUPLE_MAX)
		return -EFAULT;
	/* 3.10 has no co_qualname: the name stands for it */
	if (read_name(t, get_u64(h, t->lay->code_qualname ? t->lay->code_qualname : t->lay->code_name),
		      out->qualname, sizeof(out->qualname)) ||
	    read_name(t, get_u64(h, t->lay->code_name), out->name, sizeof(out->name)) ||
	    read_name(t, get_u64(h, t->lay->code_filename), file, sizeof(file))) {
		memset(out, 0, sizeof(*out));
		return -EFAULT;
	}
	copy_utf8(out->filename, sizeof(out->filename), file);
	module_of(t, file, out->module, sizeof(out->module));
	out->firstlineno = get_i32(h, t->lay->code_firstlineno);
	out->nargs = argc + kwonly;
	return 0;
}

int py_code_arg_index(const struct py_target *t, uint64_t code, const char *argname)
{
	uint64_t items[PY_TUPLE_MAX], names;
	unsigned char h[256];
	int32_t argc, kwonly;
	int64_t size;
	char name[256];

	if (read_code(t, code, h, sizeof(h)))
		return -EFAULT;
	argc = get_i32(h, t->lay->code_argcount);
	kwonly = get_i32(h, t->lay->code_kwonly);
	names = get_u64(h, t->lay->code_localsplusnames);
	if (argc < 0 || kwonly < 0 || argc + kwonly > PY_TUPLE_MAX)
		return -EFAULT;
	if (!argc && !kwonly)
		return -ENOENT;
	/* The parameters come first in co_localsplusnames (co_varnames): a tuple of str. */
	if (rd(t, names + t->lay->var_size, &size, sizeof(size)) || size < argc + kwonly ||
	    size > PY_TUPLE_MAX ||
	    rd(t, names + t->lay->tuple_items, items, (size_t)(argc + kwonly) * sizeof(items[0])))
		return -EFAULT;
	for (int i = 0; i < argc + kwonly; i++) {
		if (!read_name(t, items[i], name, sizeof(name)) && !strcmp(name, argname))
			return i;
	}
	return -ENOENT;
}

size_t py_frame_arg_repr(const struct py_target *t, uint64_t frame, int index, char *buf,
			 size_t len)
{
	uint64_t obj;
	size_t n;

	if (!len)
		return 0;
	if (!t || !t->lay || index < 0 || index >= PY_TUPLE_MAX ||
	    rd_ptr(t, frame + t->off.frame_localsplus + (uint64_t)index * 8, &obj) || !obj) {
		unreadable(buf, len);
		return 0;
	}
	n = py_value_repr(t, obj, buf, len);
	return strcmp(buf, "?") ? n : 0;
}

/* ---- threads ------------------------------------------------------------------- */

static size_t max3(size_t a, size_t b, size_t c)
{
	return a > b ? (a > c ? a : c) : (b > c ? b : c);
}

/*
 * The native tid of a thread state whose head h is: native_thread_id, or
 * (3.10) the tid in the struct pthread that thread_id is. 0: unreadable.
 */
static pid_t tstate_tid(const struct py_target *t, const unsigned char *h)
{
	uint64_t v = get_u64(h, t->off.ts_thread);
	int32_t tid;

	if (t->off.pthread_tid == ES_PY_NO_OFF)
		return (pid_t)v;
	if (rd(t, v + t->off.pthread_tid, &tid, sizeof(tid)) || tid <= 0)
		return 0;
	return tid;
}

/* A thread state's innermost frame (0: none): through _PyCFrame on 3.11 and 3.12. */
static int tstate_frame(const struct py_target *t, uint64_t ts, uint64_t *frame)
{
	int err = rd_ptr(t, ts + t->off.ts_frame, frame);

	if (err || !*frame || t->off.cframe_current == ES_PY_NO_OFF)
		return err;
	return rd_ptr(t, *frame + t->off.cframe_current, frame);
}

static bool is_shim(const struct py_target *t, const unsigned char *h)
{
	return h[t->off.frame_owner] == t->off.shim_owner;
}

/* Bytes of a frame's head that hold code, previous and owner. */
static size_t frame_head_size(const struct py_target *t)
{
	const struct es_py_offsets *o = &t->off;

	return max3(o->frame_code + 8, o->frame_previous + 8, o->frame_owner + 1);
}

/* Follows one thread's frames from its innermost outwards. */
static int walk_frames(const struct py_target *t, uint64_t ts, struct py_thread *th,
		       int max_depth)
{
	size_t fsize = frame_head_size(t);
	unsigned char h[128];
	uint64_t frame;
	int err, skipped = 0;

	if (fsize > sizeof(h))
		return -EINVAL;
	err = tstate_frame(t, ts, &frame);
	if (err) {
		th->truncated = true;
		return err == -ESRCH ? err : 0;
	}
	while (frame) {
		uint64_t prev;

		if (th->depth >= max_depth || !th->frames || skipped > PY_SKIP_MAX) {
			th->truncated = true;
			break;
		}
		err = rd(t, frame, h, fsize);
		if (err) {
			th->truncated = true;
			return err == -ESRCH ? err : 0;
		}
		if (!is_shim(t, h)) {
			th->frames[th->depth].code = get_u64(h, t->off.frame_code);
			th->frames[th->depth].frame = frame;
			th->depth++;
		} else {
			skipped++;
		}
		prev = get_u64(h, t->off.frame_previous);
		if (prev == frame) {
			th->truncated = true;
			break;
		}
		frame = prev;
	}
	return 0;
}

int py_walk_threads(const struct py_target *t, struct py_thread *threads, int max_threads,
		    int max_depth)
{
	const struct py_layout *l;
	unsigned char h[256];
	size_t tsize;
	uint64_t ts;
	int n = 0, err;

	if (!t || !(l = t->lay) || max_threads < 0 || max_depth < 0)
		return -EINVAL;
	tsize = max3(t->off.ts_next, t->off.ts_thread, l->ts_interp) + 8;
	if (tsize > sizeof(h))
		return -EINVAL;
	err = rd_ptr(t, t->interp + l->interp_tstate_head, &ts);
	if (err)
		return err == -ESRCH ? err : -EFAULT;
	while (ts && n < max_threads) {
		struct py_thread *th = &threads[n];
		bool seen = false;

		for (int i = 0; i < n && !seen; i++)
			seen = threads[i].tstate == ts;
		if (seen)
			break;
		/* A thread state that is not the interpreter's is stale or garbage. */
		err = rd(t, ts, h, tsize);
		if (err == -ESRCH)
			return err;
		if (err || get_u64(h, l->ts_interp) != t->interp)
			break;
		th->tstate = ts;
		th->tid = tstate_tid(t, h);
		th->depth = 0;
		th->truncated = false;
		n++;
		err = walk_frames(t, ts, th, max_depth);
		if (err)
			return err;
		ts = get_u64(h, t->off.ts_next);
	}
	return n;
}

/* ---- finding the interpreter --------------------------------------------------- */

/* A file mapped by the target that may hold _PyRuntime. */
struct py_mapped {
	char path[PATH_MAX]; /* as maps names it */
	unsigned long long start, end; /* a mapping of it, for map_files */
	unsigned long long start0; /* the mapping of file offset 0 */
	unsigned long long ino;
	bool seen, have0;
};

static bool is_libpython(const char *path)
{
	const char *base = strrchr(path, '/');

	return !strncmp(base ? base + 1 : path, "libpython3.", 11);
}

/* The executable ([0]) and the first libpython3.* ([1]) in /proc/<pid>/maps. */
static int scan_maps(pid_t pid, const char *exe, struct py_mapped *m)
{
	char p[64], line[PATH_MAX + 256];
	bool skip = false;
	int err;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%d/maps", (int)pid);
	f = fopen(p, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long start, end, off, ino;
		size_t ll = strlen(line);
		bool whole = ll && line[ll - 1] == '\n';
		struct py_mapped *c;
		char *path;
		int pos = 0;

		/* the rest of a line longer than the buffer */
		if (skip) {
			skip = !whole;
			continue;
		}
		skip = !whole;
		if (skip)
			continue;
		line[ll - 1] = 0;
		if (sscanf(line, "%llx-%llx %*s %llx %*x:%*x %llu %n", &start, &end, &off, &ino,
			   &pos) < 4 ||
		    !pos)
			continue;
		path = line + pos;
		if (path[0] != '/')
			continue;
		if (exe[0] && !strcmp(path, exe))
			c = &m[0];
		else if (is_libpython(path))
			c = &m[1];
		else
			continue;
		if (!c->seen) {
			snprintf(c->path, sizeof(c->path), "%s", path);
			c->start = start;
			c->end = end;
			c->ino = ino;
			c->seen = true;
		} else if (strcmp(c->path, path)) {
			continue;
		}
		if (!off && !c->have0) {
			c->start0 = start;
			c->have0 = true;
		}
	}
	err = ferror(f) ? -EACCES : 0;
	fclose(f);
	return err;
}

/* Opens a mapped file through the target's root, or its map_files entry. */
static int open_mapped(pid_t pid, const struct py_mapped *c, int *fd, Elf **elf)
{
	char p[PATH_MAX + 64];
	struct stat st;
	int err;

	snprintf(p, sizeof(p), "/proc/%d/root%s", (int)pid, c->path);
	err = elf_open_path(p, fd, elf);
	/* The path may name another file now (replaced, or " (deleted)"). */
	if (!err && !fstat(*fd, &st) && st.st_ino == c->ino)
		return 0;
	if (!err)
		elf_close_path(*fd, *elf);
	snprintf(p, sizeof(p), "/proc/%d/map_files/%llx-%llx", (int)pid, c->start, c->end);
	if (!elf_open_path(p, fd, elf))
		return 0;
	if (err)
		return err;
	snprintf(p, sizeof(p), "/proc/%d/root%s", (int)pid, c->path);
	return elf_open_path(p, fd, elf);
}

/* Where the file's link-time addresses are in the target. */
static int load_bias(Elf *elf, const struct py_mapped *c, uint64_t *bias)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	GElf_Ehdr eh;
	size_t n;

	if (!gelf_getehdr(elf, &eh))
		return -ENOEXEC;
	if (eh.e_type == ET_EXEC) {
		*bias = 0;
		return 0;
	}
	if (eh.e_type != ET_DYN || !c->have0 || elf_getphdrnum(elf, &n))
		return -ENOEXEC;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		*bias = c->start0 - (ph.p_vaddr & ~(page - 1));
		return 0;
	}
	return -ENOEXEC;
}

/* major << 8 | minor from "python3.11", "libpython3.11.so.1.0"; 0: none. */
static unsigned int version_of_name(const char *path)
{
	const char *s = strrchr(path, '/');
	unsigned long major, minor;
	char *end;

	s = strstr(s ? s : path, "python");
	if (!s || s[6] < '2' || s[6] > '3' || s[7] != '.')
		return 0;
	major = (unsigned long)(s[6] - '0');
	errno = 0;
	minor = strtoul(s + 8, &end, 10);
	if (errno || end == s + 8 || minor > 255)
		return 0;
	return (unsigned int)(major << 8 | minor);
}

/* "python3.13t", "libpython3.13t.so.1.0": a free-threaded build. */
static bool free_threaded_name(const char *path)
{
	const char *s = strrchr(path, '/');

	s = strstr(s ? s : path, "python3.");
	if (!s)
		return false;
	s += 8;
	while (*s >= '0' && *s <= '9')
		s++;
	return *s == 't';
}

/* PY_VERSION_HEX from Py_Version (3.11+), else from the file's name. */
static unsigned int version_of(Elf *elf, int fd, const char *path)
{
	uint64_t size = 0, va = elf_symbol(elf, "Py_Version", &size), off, hex = 0;

	if (va && (size == 4 || size == 8) && !elf_va_to_off(elf, va, &off)) {
		uint32_t v32;

		if (size == 4 && pread(fd, &v32, 4, (off_t)off) == 4)
			hex = v32;
		else if (size == 8 && pread(fd, &hex, 8, (off_t)off) != 8)
			hex = 0;
		if (hex >> 24 == 3)
			return (unsigned int)(hex >> 16 & 0xffff);
	}
	return version_of_name(path);
}

static bool has_gc_probes(Elf *elf)
{
	struct stapsdt_iter it;
	struct stapsdt_note note;
	bool start = false, done = false;

	if (stapsdt_begin(elf, &it))
		return false;
	while (stapsdt_next(&it, &note) > 0) {
		if (strcmp(note.provider, "python"))
			continue;
		start |= !strcmp(note.name, "gc__start");
		done |= !strcmp(note.name, "gc__done");
	}
	return start && done;
}

static uint64_t symbol_at(Elf *elf, const char *name, uint64_t bias)
{
	uint64_t va = elf_symbol(elf, name, NULL);

	return va ? va + bias : 0;
}

/*
 * The script's path as CPython makes __main__'s co_filename from argv:
 * relative to the working directory, not normalised ("//x.py" from "/"),
 * symlinks not resolved. "" for -c, -m, stdin or an unreadable argv.
 */
static void script_of(pid_t pid, char *out, size_t size)
{
	char p[64], cmd[4096], cwd[PATH_MAX];
	const char *a, *end, *script = NULL;
	bool value = false;
	ssize_t n;
	int k;

	out[0] = 0;
	snprintf(p, sizeof(p), "/proc/%d/cmdline", (int)pid);
	n = read_small_file(p, cmd, sizeof(cmd));
	if (n <= 0)
		return;
	end = cmd + n;
	for (a = cmd + strlen(cmd) + 1; a < end && !script; a += strlen(a) + 1) {
		if (value) {
			value = false;
		} else if (!strcmp(a, "--")) {
			a += strlen(a) + 1;
			if (a < end)
				script = a;
			break;
		} else if (a[0] != '-') {
			script = a;
		} else if (!a[1]) {
			return; /* stdin */
		} else if (a[1] == '-') {
			value = !strcmp(a, "--check-hash-based-pycs");
		} else {
			for (const char *o = a + 1; *o; o++) {
				if (*o == 'c' || *o == 'm')
					return;
				if (*o == 'W' || *o == 'X') {
					value = !o[1];
					break;
				}
			}
		}
	}
	if (!script || !script[0])
		return;
	if (script[0] == '/') {
		k = snprintf(out, size, "%s", script);
	} else {
		snprintf(p, sizeof(p), "/proc/%d/cwd", (int)pid);
		n = readlink(p, cwd, sizeof(cwd) - 1);
		if (n <= 0) {
			out[0] = 0;
			return;
		}
		cwd[n] = 0;
		k = snprintf(out, size, "%s/%s", cwd, script);
	}
	if (k < 0 || (size_t)k >= size)
		out[0] = 0;
}

/* The main interpreter, checked: its first thread state points back to it. */
static int verify(struct py_target *t)
{
	const struct py_layout *l = t->lay;
	unsigned char h[128];
	uint64_t interp, ts, back, frame, code, type;
	size_t fsize = frame_head_size(t);
	int err = 0;

	if (fsize > sizeof(h))
		return -EPROTO;
	/* A running thread may move on between the reads: look again. */
	for (int tries = 0; tries < 3; tries++) {
		err = rd_ptr(t, t->runtime + l->rt_interp_head, &interp);
		if (!err && !interp)
			err = -EPROTO;
		if (!err)
			err = rd_ptr(t, interp + l->interp_tstate_head, &ts);
		if (!err && !ts)
			err = -EPROTO;
		if (!err)
			err = rd_ptr(t, ts + l->ts_interp, &back);
		if (!err && back != interp)
			err = -EPROTO;
		frame = 0;
		if (!err)
			err = tstate_frame(t, ts, &frame);
		/* the innermost frame with code of its own */
		for (int i = 0; !err && frame && i < 4; i++) {
			err = rd(t, frame, h, fsize);
			if (!err && !is_shim(t, h))
				break;
			if (!err)
				frame = get_u64(h, t->off.frame_previous);
		}
		if (!err && frame && !is_shim(t, h)) {
			code = get_u64(h, t->off.frame_code);
			err = rd_ptr(t, code + l->obj_type, &type);
			if (!err && type != t->code_type)
				err = -EPROTO;
		}
		if (!err) {
			t->interp = interp;
			return 0;
		}
		if (err == -ESRCH)
			return err;
	}
	return -EPROTO;
}

/* The tids of pid's threads, sorted; returns how many (at most max), or -errno. */
static int task_ids(pid_t pid, pid_t *tids, int max)
{
	char p[64];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(p, sizeof(p), "/proc/%d/task", (int)pid);
	d = opendir(p);
	if (!d)
		return errno == ENOENT ? -ESRCH : -errno;
	while ((e = readdir(d)) && n < max) {
		char *end;
		long v = strtol(e->d_name, &end, 10);

		if (e->d_name[0] != '.' && !*end && v > 0)
			tids[n++] = (pid_t)v;
	}
	closedir(d);
	return n;
}

static bool has_tid(const pid_t *tids, int n, int32_t tid)
{
	for (int i = 0; i < n; i++) {
		if (tids[i] == tid)
			return true;
	}
	return false;
}

/*
 * 3.10 keeps no native thread id, only thread_id: the thread's struct
 * pthread (pthread_self()). Where the C library keeps the tid in it is
 * found here, once per process: the first offset at which every thread
 * state's struct pthread holds a distinct tid of the process. The BPF
 * walker and py_walk_threads then read the tid there.
 */
#define PY_MAX_TSTATES 64
static int find_pthread_tid(struct py_target *t)
{
	static const size_t words = PY_PTHREAD_SCAN / sizeof(int32_t);
	int32_t (*pt)[PY_PTHREAD_SCAN / sizeof(int32_t)] = NULL;
	pid_t tids[PY_MAX_TSTATES * 2];
	uint64_t ts, self;
	int n = 0, ntids, err;

	pt = calloc(PY_MAX_TSTATES, sizeof(*pt));
	if (!pt)
		return -ENOMEM;
	ntids = task_ids(t->pid, tids, PY_MAX_TSTATES * 2);
	err = ntids < 0 ? ntids : 0;
	if (!err)
		err = rd_ptr(t, t->interp + t->lay->interp_tstate_head, &ts);
	while (!err && ts && n < PY_MAX_TSTATES) {
		err = rd_ptr(t, ts + t->off.ts_thread, &self);
		if (!err)
			err = rd(t, self, pt[n++], PY_PTHREAD_SCAN);
		if (!err)
			err = rd_ptr(t, ts + t->off.ts_next, &ts);
	}
	if (err)
		goto out;
	err = -EPROTO;
	for (size_t w = 0; w < words; w++) {
		bool ok = n > 0;

		for (int i = 0; i < n && ok; i++) {
			ok = has_tid(tids, ntids, pt[i][w]);
			for (int j = 0; j < i && ok; j++)
				ok = pt[j][w] != pt[i][w];
		}
		if (ok) {
			t->off.pthread_tid = (__u16)(w * sizeof(int32_t));
			err = 0;
			break;
		}
	}
out:
	free(pt);
	return err == -ESRCH ? err : err ? -EPROTO : 0;
}

/*
 * 3.13+: _PyRuntime starts with _Py_DebugOffsets, the offsets the process
 * itself was built with. Each one the table has must agree (a check of the
 * table, not a source of offsets: a disagreement is -EPROTO); a
 * free-threaded build says so there (-ENOTSUP).
 */
struct py_dbg_field {
	__u16 dbg;    /* offset of the uint64_t in _Py_DebugOffsets (3.13.0) */
	__u16 lay;    /* offsetof the __u16 in struct py_layout */
};

#define PY_LAY(f) ((__u16)offsetof(struct py_layout, f))
static const struct py_dbg_field dbg_fields[] = {
	{ 40, PY_LAY(rt_interp_head) },	       { 72, PY_LAY(interp_tstate_head) },
	{ 168, PY_LAY(bpf.ts_next) },	       { 176, PY_LAY(ts_interp) },
	{ 184, PY_LAY(bpf.ts_frame) },	       { 200, PY_LAY(bpf.ts_thread) },
	{ 232, PY_LAY(bpf.frame_previous) },   { 240, PY_LAY(bpf.frame_code) },
	{ 256, PY_LAY(bpf.frame_localsplus) }, { 264, PY_LAY(bpf.frame_owner) },
	{ 280, PY_LAY(code_filename) },	       { 288, PY_LAY(code_name) },
	{ 296, PY_LAY(code_qualname) },	       { 312, PY_LAY(code_firstlineno) },
	{ 320, PY_LAY(code_argcount) },	       { 328, PY_LAY(code_localsplusnames) },
	{ 360, PY_LAY(obj_type) },	       { 408, PY_LAY(tuple_items) },
	{ 416, PY_LAY(var_size) },	       { 496, PY_LAY(var_size) },
	{ 504, PY_LAY(long_digits) },	       { 520, PY_LAY(var_size) },
	{ 528, PY_LAY(bytes_data) },	       { 544, PY_LAY(unicode_state) },
	{ 552, PY_LAY(unicode_length) },       { 560, PY_LAY(ascii_data) },
};
#define PY_DBG_SIZE 584 /* sizeof(_Py_DebugOffsets) in 3.13.0 */

int py_debug_offsets_check(const struct py_layout *l, const unsigned char *d, size_t len)
{
	uint64_t version;

	if (len < PY_DBG_SIZE || memcmp(d, PY_DEBUG_COOKIE, 8))
		return -EPROTO;
	version = get_u64(d, 8);
	if (version >> 24 != 3 || (version >> 16 & 0xffff) != l->version)
		return -EPROTO;
	if (get_u64(d, 16))
		return -ENOTSUP;
	for (size_t i = 0; i < sizeof(dbg_fields) / sizeof(dbg_fields[0]); i++) {
		__u16 want;

		memcpy(&want, (const char *)l + dbg_fields[i].lay, sizeof(want));
		if (get_u64(d, dbg_fields[i].dbg) != want)
			return -EPROTO;
	}
	return 0;
}

static int check_debug_offsets(struct py_target *t)
{
	unsigned char d[PY_DBG_SIZE];
	int err = rd(t, t->runtime, d, sizeof(d));

	if (err)
		return err == -ESRCH ? err : -EPROTO;
	err = py_debug_offsets_check(t->lay, d, sizeof(d));
	t->free_threaded = err == -ENOTSUP;
	return err;
}

const char *py_target_why(const struct py_target *t, int err)
{
	switch (err) {
	case 0:
		return "profiled";
	case -ENOTSUP:
		return t->free_threaded ? "free-threaded CPython build (python3.13t): out of scope" :
					  "no checked layout for this CPython version";
	case -ENOENT:
		return "not a CPython process";
	case -ESRCH:
		return "exited";
	default:
		return "its interpreter did not match the expected layout";
	}
}

int py_target_open(pid_t pid, struct py_target *t)
{
	struct py_mapped *m = NULL, *c = NULL;
	char p[64], exe[PATH_MAX];
	uint64_t runtime = 0, bias;
	Elf *elf = NULL;
	int fd = -1, err;
	struct stat st;
	ssize_t n;

	memset(t, 0, sizeof(*t));
	t->pid = pid;
	if (pid <= 0)
		return -ESRCH;
	snprintf(p, sizeof(p), "/proc/%d/exe", (int)pid);
	n = readlink(p, exe, sizeof(exe) - 1);
	if (n < 0 && errno == ENOENT) {
		snprintf(p, sizeof(p), "/proc/%d", (int)pid);
		if (stat(p, &st))
			return -ESRCH;
	}
	exe[n > 0 ? n : 0] = 0;
	m = calloc(2, sizeof(*m));
	if (!m)
		return -ENOMEM;
	err = scan_maps(pid, exe, m);
	if (err)
		goto out;
	/* The executable first: a libpython it maps may be another's. */
	for (int i = 0; i < 2 && !runtime; i++) {
		if (!m[i].seen)
			continue;
		if (elf)
			elf_close_path(fd, elf);
		elf = NULL;
		fd = -1;
		if (open_mapped(pid, &m[i], &fd, &elf))
			continue;
		runtime = elf_symbol(elf, "_PyRuntime", NULL);
		c = &m[i];
	}
	err = -ENOENT;
	if (!runtime) {
		/* Named like a Python without _PyRuntime: 2.7 or 3.6 and older. */
		for (int i = 0; i < 2 && !t->version; i++) {
			if (m[i].seen && (i || !strncmp(basename(m[i].path), "python", 6)) &&
			    (t->version = version_of_name(m[i].path))) {
				copy_utf8(t->binary, sizeof(t->binary), m[i].path);
				err = -ENOTSUP;
			}
		}
		goto out;
	}
	if (load_bias(elf, c, &bias))
		goto out;
	copy_utf8(t->binary, sizeof(t->binary), c->path);
	if (!fstat(fd, &st)) {
		t->dev = st.st_dev;
		t->ino = st.st_ino;
	}
	t->version = version_of(elf, fd, c->path);
	t->has_gc_usdt = has_gc_probes(elf);
	t->runtime = runtime + bias;
	t->code_type = symbol_at(elf, "PyCode_Type", bias);
	t->unicode_type = symbol_at(elf, "PyUnicode_Type", bias);
	t->bytes_type = symbol_at(elf, "PyBytes_Type", bias);
	t->long_type = symbol_at(elf, "PyLong_Type", bias);
	t->bool_type = symbol_at(elf, "PyBool_Type", bias);
	t->none = symbol_at(elf, "_Py_NoneStruct", bias);
	t->true_obj = symbol_at(elf, "_Py_TrueStruct", bias);
	t->lay = py_layout_for(t->version);
	/* python3.13t, libpython3.13t.so: its debug offsets would say so too */
	t->free_threaded = free_threaded_name(c->path);
	err = -ENOTSUP;
	if (!t->lay || t->free_threaded)
		goto out;
	t->off = t->lay->bpf;
	err = -EPROTO;
	if (!t->code_type || !t->unicode_type)
		goto out;
	if (t->lay->debug_offsets && (err = check_debug_offsets(t)))
		goto out;
	script_of(pid, t->script, sizeof(t->script));
	netfs_load(pid, &t->remote);
	err = verify(t);
	if (!err && t->lay->ts_pthread)
		err = find_pthread_tid(t);
out:
	if (elf)
		elf_close_path(fd, elf);
	free(m);
	if (err == -EPROTO || err == -ENOENT) {
		/* gone while we looked: say so */
		snprintf(p, sizeof(p), "/proc/%d", (int)pid);
		if (stat(p, &st))
			err = -ESRCH;
	}
	if (err)
		t->lay = NULL;
	return err;
}
