// SPDX-License-Identifier: GPL-2.0
/* --python.capture-args parsing. */
#include <errno.h>

#include "check.h"
#include "core/pycapture.h"

static void test_defaults(void)
{
	struct py_capture_spec s;
	char err[160] = "";
	const struct py_capture_func *f;

	CHECK_INT(py_capture_parse("_callback:cron_name,call_kw:model:method,_process_job:job", &s,
				   err, sizeof(err)),
		  0);
	CHECK_INT(s.n, 3);
	f = py_capture_find(&s, "call_kw");
	CHECK(f != NULL);
	if (f) {
		CHECK_INT(f->nargs, 2);
		CHECK_STR(f->args[0], "model");
		CHECK_STR(f->args[1], "method");
	}
	f = py_capture_find(&s, "_callback");
	CHECK(f && f->nargs == 1 && !strcmp(f->args[0], "cron_name"));
	CHECK(py_capture_find(&s, "callback") == NULL);
}

static void test_empty(void)
{
	struct py_capture_spec s;
	char err[160];

	CHECK_INT(py_capture_parse("", &s, err, sizeof(err)), 0);
	CHECK_INT(s.n, 0);
}

static void test_errors(void)
{
	static const char *const bad[] = {
		"f",             /* no argument */
		"f:",            /* empty argument */
		":a",            /* empty function */
		"f:a,",          /* trailing comma */
		"f:a:b:c",       /* three arguments */
		"1f:a",          /* not an identifier */
		"f:a b",         /* space */
		"f:a,,g:b",      /* empty entry */
		"f:a;rm -rf /",  /* hostile */
		"f:\xc3\xa9",    /* non-ASCII */
	};
	struct py_capture_spec s = { .n = 42 };
	char err[160];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CHECK_INT(py_capture_parse(bad[i], &s, err, sizeof(err)), -EINVAL);
		CHECK(err[0] != '\0');
	}
	CHECK_INT(s.n, 42); /* untouched on error */
}

static void test_limits(void)
{
	struct py_capture_spec s;
	char spec[2048] = "", err[160];
	size_t len = 0;

	for (int i = 0; i < PY_CAPTURE_MAX_FUNCS + 1; i++)
		len += (size_t)snprintf(spec + len, sizeof(spec) - len, "%sf%d:a", i ? "," : "", i);
	CHECK_INT(py_capture_parse(spec, &s, err, sizeof(err)), -EINVAL);
	spec[0] = '\0';
	len = 0;
	for (int i = 0; i < PY_CAPTURE_MAX_FUNCS; i++)
		len += (size_t)snprintf(spec + len, sizeof(spec) - len, "%sf%d:a", i ? "," : "", i);
	CHECK_INT(py_capture_parse(spec, &s, err, sizeof(err)), 0);
	CHECK_INT(s.n, PY_CAPTURE_MAX_FUNCS);
}

int main(void)
{
	test_defaults();
	test_empty();
	test_errors();
	test_limits();
	return check_summary("test_pycapture");
}
