/* SPDX-License-Identifier: GPL-2.0 */
/*
 * --python.capture-args: which arguments of which Python functions to show,
 * "FUNC:ARG[:ARG],..." (FUNC matched on the function's plain name).
 */
#ifndef ERPSCOPE_PYCAPTURE_H
#define ERPSCOPE_PYCAPTURE_H

#include <stddef.h>
#include <linux/types.h>

#include "../../bpf/python.h"

#define PY_CAPTURE_MAX_FUNCS 16
#define PY_CAPTURE_NAME_MAX 64

struct py_capture_func {
	char name[PY_CAPTURE_NAME_MAX];
	char args[ES_PY_ARGS_PER_FUNC][PY_CAPTURE_NAME_MAX];
	int nargs;
};

struct py_capture_spec {
	struct py_capture_func funcs[PY_CAPTURE_MAX_FUNCS];
	int n;
};

/*
 * Parses spec into out. Returns 0, or -EINVAL with a reason in err: names
 * must be Python identifiers, at most ES_PY_ARGS_PER_FUNC arguments each and
 * PY_CAPTURE_MAX_FUNCS functions.
 */
int py_capture_parse(const char *spec, struct py_capture_spec *out, char *err, size_t errlen);

/* The entry for a function name, or NULL. */
const struct py_capture_func *py_capture_find(const struct py_capture_spec *s, const char *name);

#endif
