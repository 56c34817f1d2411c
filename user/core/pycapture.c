// SPDX-License-Identifier: GPL-2.0
#include "core/pycapture.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bool ident_char(char c, bool first)
{
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (!first && c >= '0' && c <= '9');
}

/* Copies the identifier at *p into out; stops at ':' ',' or the end. */
static int take_ident(const char **p, char *out, size_t size, const char *what, char *err,
		      size_t errlen)
{
	const char *s = *p;
	size_t n = 0;

	while (s[n] && s[n] != ':' && s[n] != ',') {
		if (!ident_char(s[n], n == 0)) {
			snprintf(err, errlen, "%s is not a Python identifier at \"%.20s\"", what, s);
			return -EINVAL;
		}
		n++;
	}
	if (!n) {
		snprintf(err, errlen, "empty %s", what);
		return -EINVAL;
	}
	if (n >= size) {
		snprintf(err, errlen, "%s longer than %zu characters", what, size - 1);
		return -EINVAL;
	}
	memcpy(out, s, n);
	out[n] = '\0';
	*p = s + n;
	return 0;
}

int py_capture_parse(const char *spec, struct py_capture_spec *out, char *err, size_t errlen)
{
	struct py_capture_spec s = { 0 };
	const char *p = spec;
	int err_ = 0;

	while (*p) {
		struct py_capture_func *f;

		if (s.n >= PY_CAPTURE_MAX_FUNCS) {
			snprintf(err, errlen, "more than %d functions", PY_CAPTURE_MAX_FUNCS);
			return -EINVAL;
		}
		f = &s.funcs[s.n];
		err_ = take_ident(&p, f->name, sizeof(f->name), "function name", err, errlen);
		if (err_)
			return err_;
		if (*p != ':') {
			snprintf(err, errlen, "function %s names no argument (want FUNC:ARG)", f->name);
			return -EINVAL;
		}
		while (*p == ':') {
			p++;
			if (f->nargs >= ES_PY_ARGS_PER_FUNC) {
				snprintf(err, errlen, "more than %d arguments for %s",
					 ES_PY_ARGS_PER_FUNC, f->name);
				return -EINVAL;
			}
			err_ = take_ident(&p, f->args[f->nargs], sizeof(f->args[0]), "argument name",
					  err, errlen);
			if (err_)
				return err_;
			f->nargs++;
		}
		s.n++;
		if (*p == ',' && !p[1]) {
			snprintf(err, errlen, "trailing comma");
			return -EINVAL;
		}
		if (*p == ',')
			p++;
	}
	*out = s;
	return 0;
}

const struct py_capture_func *py_capture_find(const struct py_capture_spec *s, const char *name)
{
	for (int i = 0; i < s->n; i++) {
		if (!strcmp(s->funcs[i].name, name))
			return &s->funcs[i];
	}
	return NULL;
}
