/* SPDX-License-Identifier: GPL-2.0 */
/*
 * CPython read from outside the process: where a process's interpreter is
 * (_PyRuntime in its executable or its libpython), which layout its
 * structures have, and, through process_vm_readv, its threads' frame chains,
 * code objects and simple argument values. Nothing read from the target is
 * trusted: every pointer is checked (type pointers, bounds, loops) and a bad
 * read ends a walk early instead of failing it.
 */
#ifndef ERPSCOPE_PYRT_H
#define ERPSCOPE_PYRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/types.h>

#include "../../bpf/python.h"
#include "host/netfs.h"

/*
 * Everything erpscope reads, for one CPython minor version (user/python/pyrt.c
 * has one per version). Offsets are bytes into the structure named.
 */
struct py_layout {
	unsigned int version;         /* 0x030b for 3.11 */
	__u16 rt_interp_head;         /* _PyRuntimeState.interpreters.head */
	__u16 interp_tstate_head;     /* PyInterpreterState.threads.head (3.10: tstate_head) */
	__u16 ts_interp;              /* PyThreadState.interp */
	__u16 code_argcount, code_posonly, code_kwonly, code_firstlineno;
	__u16 code_localsplusnames;   /* co_localsplusnames (3.10: co_varnames), parameters first */
	__u16 code_filename, code_name;
	__u16 code_qualname;          /* 0: none (3.10), the name stands for it */
	__u16 obj_type;               /* PyObject.ob_type */
	__u16 var_size;               /* PyVarObject.ob_size (3.12+: PyLongObject's lv_tag there) */
	__u16 tuple_items;            /* PyTupleObject.ob_item */
	__u16 unicode_length, unicode_state, ascii_data, compact_data;
	__u16 bytes_data;             /* PyBytesObject.ob_sval */
	__u16 long_digits;            /* PyLongObject.ob_digit */
	bool unicode_ready;           /* state bit 7 is "ready" (3.10, 3.11; later: static) */
	bool long_tag;                /* 3.12+: ints keep ndigits << 3 | sign in lv_tag */
	bool debug_offsets;           /* 3.13+: _PyRuntime starts with _Py_DebugOffsets: checked */
	bool ts_pthread;              /* 3.10: thread_id is a struct pthread, whose tid is found */
	struct es_py_offsets bpf;     /* what the BPF walker needs (pthread_tid: per process) */
};

/* A Python process as erpscope found it. */
struct py_target {
	pid_t pid;
	unsigned int version;    /* 0x030b: major << 8 | minor */
	char binary[256];        /* the file holding _PyRuntime, as /proc/<pid>/maps names it */
	dev_t dev;               /* ... and its identity, for attaching USDT once per file */
	ino_t ino;
	bool has_gc_usdt;        /* binary has python:gc__start and python:gc__done */
	uint64_t runtime;        /* &_PyRuntime in the target */
	uint64_t interp;         /* the main interpreter */
	uint64_t code_type;      /* &PyCode_Type */
	uint64_t unicode_type, bytes_type, long_type, bool_type, none, true_obj;
	const struct py_layout *lay;
	struct es_py_offsets off; /* lay->bpf with what is per process (3.10: pthread_tid) */
	bool free_threaded;      /* a 3.13+ free-threaded build (python3.13t): not read */
	char script[256];        /* realpath of the script argv names ("" if none): module __main__ */
	struct netfs_mounts remote; /* never stat()ed under: module names stop there */
};

/*
 * Finds the interpreter in pid and checks the layout against it (3.13+:
 * the _Py_DebugOffsets the process publishes agree with the table; the
 * main interpreter's first thread state points back to it; its current
 * frame's code object, if any, has type PyCode_Type; 3.10: every thread
 * state's struct pthread holds a tid of the process). Returns 0; -ENOENT:
 * not a CPython process; -ENOTSUP: a CPython whose version we have no
 * checked layout for, or a free-threaded build (t->version, t->binary and
 * t->free_threaded are still filled, for the log); -EPROTO: the layout did
 * not check out; -ESRCH: the process is gone.
 */
int py_target_open(pid_t pid, struct py_target *t);

/* Why py_target_open's err (-ENOTSUP, -EPROTO, ...) left t unread, for logs. */
const char *py_target_why(const struct py_target *t, int err);

/* A code object, resolved. Strings are valid UTF-8, NUL-terminated. */
struct py_code {
	char qualname[128];
	char name[64];
	char filename[256];
	char module[128]; /* from filename: packages up the tree, __main__ for the script */
	int firstlineno;
	int nargs;        /* positional + keyword-only parameters */
};

/* Returns 0, or -EFAULT when code is unreadable or not a code object. */
int py_code_read(const struct py_target *t, uint64_t code, struct py_code *out);

/*
 * The localsplus index of parameter argname of code object code, or
 * -ENOENT when it has none by that name (or -EFAULT).
 */
int py_code_arg_index(const struct py_target *t, uint64_t code, const char *argname);

/*
 * A short, printable, escaped rendering of obj when it is a str ('...'),
 * int (decimal, up to 64 bits), bytes (b'...'), bool or None; other objects
 * are "<typename>"; an unreadable pointer is "?". Truncated with "..." to
 * fit len. Never fails; returns strlen(buf).
 */
size_t py_value_repr(const struct py_target *t, uint64_t obj, char *buf, size_t len);

/* One frame of a thread walked from user space. */
struct py_frame {
	uint64_t code;
	uint64_t frame; /* the _PyInterpreterFrame (3.10: PyFrameObject), for its arguments */
};

struct py_thread {
	uint64_t tstate;    /* its PyThreadState */
	pid_t tid;          /* native thread id */
	int depth;
	bool truncated;     /* stopped at max_depth or a bad read */
	struct py_frame *frames; /* caller-provided, innermost first */
};

/*
 * Walks every thread state of the main interpreter (at most max_threads)
 * into threads[i] (frames arrays of max_depth each, provided by the caller).
 * Returns the number of threads, or -errno (-ESRCH: gone, -EFAULT: the
 * interpreter itself was unreadable).
 */
int py_walk_threads(const struct py_target *t, struct py_thread *threads, int max_threads,
		    int max_depth);

/*
 * Reads the value of localsplus[index] of frame (from py_walk_threads) as
 * py_value_repr renders it. Returns strlen(buf), 0 and "?" when unreadable.
 */
size_t py_frame_arg_repr(const struct py_target *t, uint64_t frame, int index, char *buf,
			 size_t len);

/*
 * 3.13+: checks the _Py_DebugOffsets a process published (the first len
 * bytes of its _PyRuntime) against layout l: 0 when cookie, version and
 * every offset l has agree; -ENOTSUP for a free-threaded build; -EPROTO
 * otherwise. Exposed for tests.
 */
int py_debug_offsets_check(const struct py_layout *l, const unsigned char *d, size_t len);

/* The layout for a version, or NULL. Exposed for tests. */
const struct py_layout *py_layout_for(unsigned int version);

#endif
