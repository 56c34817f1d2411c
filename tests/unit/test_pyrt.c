// SPDX-License-Identifier: GPL-2.0
/*
 * pyrt.c's layout tables against real CPython children: Debian's python3.11
 * (libpython in the executable, stapsdt notes) and pyenv's 3.10, 3.11, 3.12
 * and 3.13 (libpython3.x.so, no notes). Each runs a script that blocks in a
 * known stack and prints its threads' frame chains as it walks them itself
 * (sys._getframe(), sys._current_frames(): id() of each f_code); the test
 * walks its threads from outside with the version's table and must find
 * the same code objects, then reads their names and arguments.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "core/elfsym.h"
#include "python/pyrt.h"
#include "core/utf8.h"

#define DEBIAN_PY "/usr/bin/python3.11"
#define PYENV_ROOT "/root/.pyenv/versions/"
#define MAX_THREADS 8
#define MAX_DEPTH 32

/* Line numbers below are checked: keep them in step with the text. */
static const char script_py[] =
	"import os, sys, threading\n" /* 1 */
	"from pkg import mod\n" /* 2 */
	"\n" /* 3 */
	"\n" /* 4 */
	"def inner_fn(cron_name, n, data, text, big, neg, nothing, *," /* 5 */
	"             flag, obj, huge, over, longs, latin, wide):\n"
	"    x = 1\n" /* 6 */
	"    print(chains(sys._getframe()), flush=True); print('ready', flush=True)\n" /* 7 */
	"    os.read(0, 1)\n" /* 8 */
	"\n" /* 9 */
	"\n" /* 10 */
	"def outer_fn(cron_name, n):\n" /* 11 */
	"    inner_fn(cron_name, n, b'x\\x00y', \"l'\\u00e9t\\u00e9 \\\\ \\u65e5\\u672c\\n\", 2**63,\n"
	"             -(2**64 - 1), None, flag=True, obj={}, huge=10**30, over=2**64,\n"
	"             longs='a\\x01\\u2028' + '\\u65e5' * 5000, latin='caf\\xe9\\xff',"
	"             wide='\\U0001f600')\n"
	"\n"
	"\n"
	"class Klass:\n"
	"    def method(self, started, ev):\n" /* 18 */
	"        mod.run(started, ev)\n"
	"\n"
	"\n"
	"started, ev = threading.Event(), threading.Event()\n"
	"th = threading.Thread(target=Klass().method, args=(started, ev), daemon=True)\n"
	"th.start()\n"
	"started.wait()\n"
	"\n"
	"\n"
	"def codes(f):\n"
	"    out = []\n"
	"    while f is not None:\n"
	"        out.append('%x' % id(f.f_code))\n"
	"        f = f.f_back\n"
	"    return out\n"
	"\n"
	"\n"
	"def chains(f):\n"
	"    return ' '.join(['chain'] + codes(f) + ['|'] +\n"
	"                    codes(sys._current_frames()[th.ident]))\n"
	"\n"
	"\n"
	"outer_fn('Mail: Fetchmail Service', 42)\n";

static const char mod_py[] = "def run(started, ev):\n"
			     "    started.set()\n"
			     "    ev.wait()\n";

static const char wait_py[] =
	"import os, sys; sys.stdout.write('ready\\n'); sys.stdout.flush(); os.read(0, 1)";

struct child {
	pid_t pid;
	int in; /* its stdin: closing it lets it exit */
	int out;
	char said[4096]; /* what it printed up to "ready" */
};

/* One interpreter under test. */
struct pyver {
	const char *path;
	unsigned int version;
	bool usdt;      /* has the gc__start/gc__done notes */
	bool relative;  /* started as "python script.py" from its directory */
	bool required;  /* must be there under CI=true */
};

static const struct pyver pythons[] = {
	{ "/usr/bin/python3.11", 0x030b, true, false, true },
	{ PYENV_ROOT "3.11.7/bin/python3.11", 0x030b, false, true, true },
	{ PYENV_ROOT "3.10.13/bin/python3.10", 0x030a, false, true, false },
	{ PYENV_ROOT "3.12.1/bin/python3.12", 0x030c, false, false, false },
	{ PYENV_ROOT "3.13.0/bin/python3.13", 0x030d, false, true, false },
};

/* 3.10's code objects have no qualified name: the name stands for it. */
static const char *qual(const struct py_target *t, const char *q)
{
	const char *dot = strrchr(q, '.');

	return t->version == 0x030a && dot ? dot + 1 : q;
}

static bool ci(void)
{
	const char *v = getenv("CI");

	return v && (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes"));
}

static int write_file(const char *dir, const char *name, const char *text)
{
	char p[PATH_MAX];
	FILE *f;
	int err;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	if (!f)
		return -errno;
	fputs(text, f);
	err = fclose(f) ? -errno : 0;
	return err;
}

/* Starts argv in cwd and waits (10 s at most) for it to print "ready". */
static int spawn(char *const argv[], const char *cwd, struct child *c)
{
	char *const envp[] = { "PATH=/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE=1", "LC_ALL=C.UTF-8",
			       NULL };
	int in[2], out[2];
	char *buf = c->said;
	size_t got = 0;

	c->pid = -1;
	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
		return -errno;
	c->pid = fork();
	if (c->pid < 0)
		return -errno;
	if (!c->pid) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		if (cwd && chdir(cwd))
			_exit(126);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	c->in = in[1];
	c->out = out[0];
	buf[0] = 0;
	while (got < sizeof(c->said) - 1) {
		struct pollfd p = { .fd = c->out, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 10000) <= 0)
			return -ETIMEDOUT;
		n = read(c->out, buf + got, sizeof(c->said) - 1 - got);
		if (n <= 0)
			return -EPIPE;
		got += (size_t)n;
		buf[got] = 0;
		if (strstr(buf, "ready\n"))
			return 0;
	}
	return -EPROTO;
}

static void reap(struct child *c)
{
	if (c->pid <= 0)
		return;
	close(c->in);
	close(c->out);
	kill(c->pid, SIGKILL);
	waitpid(c->pid, NULL, 0);
	c->pid = -1;
}

static bool valid_utf8(const char *s)
{
	size_t n = strlen(s), bad;

	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq((const unsigned char *)s + i, n - i, &bad);

		if (!k || (unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
		i += k;
	}
	return true;
}

static const char *arg(const struct py_target *t, uint64_t frame, int i, char *buf, size_t len)
{
	py_frame_arg_repr(t, frame, i, buf, len);
	CHECK(valid_utf8(buf));
	return buf;
}

/* The main thread: inner_fn <- outer_fn <- <module>, and inner_fn's arguments. */
static void check_main(const struct py_target *t, const struct py_thread *th, const char *script)
{
	static const char *const want[] = { "inner_fn", "outer_fn", "<module>" };
	static const int lines[] = { 5, 11, 1 };
	uint64_t frame = th->frames[0].frame, code = th->frames[0].code;
	char buf[256];
	struct py_code pc;

	CHECK_INT(th->depth, 3);
	CHECK(!th->truncated);
	for (int i = 0; i < 3 && i < th->depth; i++) {
		CHECK_INT(py_code_read(t, th->frames[i].code, &pc), 0);
		CHECK_STR(pc.qualname, qual(t, want[i]));
		CHECK_STR(pc.name, want[i]);
		CHECK_STR(pc.filename, script);
		CHECK_STR(pc.module, "__main__");
		CHECK_INT(pc.firstlineno, lines[i]);
	}
	CHECK_INT(py_code_read(t, code, &pc), 0);
	CHECK_INT(pc.nargs, 14);
	CHECK_INT(py_code_arg_index(t, code, "cron_name"), 0);
	CHECK_INT(py_code_arg_index(t, code, "n"), 1);
	CHECK_INT(py_code_arg_index(t, code, "flag"), 7);
	CHECK_INT(py_code_arg_index(t, code, "longs"), 11);
	CHECK_INT(py_code_arg_index(t, code, "x"), -ENOENT); /* a local, not a parameter */
	CHECK_INT(py_code_arg_index(t, code, "nope"), -ENOENT);
	CHECK_INT(py_code_arg_index(t, th->frames[1].code, "n"), 1);
	CHECK_INT(py_code_arg_index(t, th->frames[2].code, "n"), -ENOENT);
	CHECK_INT(py_code_arg_index(t, frame, "n"), -EFAULT); /* not a code object */

	CHECK_STR(arg(t, frame, 0, buf, sizeof(buf)), "'Mail: Fetchmail Service'");
	CHECK_INT(py_frame_arg_repr(t, frame, 0, buf, sizeof(buf)), 25);
	CHECK_STR(arg(t, frame, 1, buf, sizeof(buf)), "42");
	CHECK_STR(arg(t, frame, 2, buf, sizeof(buf)), "b'x\\x00y'");
	CHECK_STR(arg(t, frame, 3, buf, sizeof(buf)),
		  "'l\\'\xc3\xa9t\xc3\xa9 \\\\ \xe6\x97\xa5\xe6\x9c\xac\\n'");
	CHECK_STR(arg(t, frame, 4, buf, sizeof(buf)), "9223372036854775808");
	CHECK_STR(arg(t, frame, 5, buf, sizeof(buf)), "-18446744073709551615");
	CHECK_STR(arg(t, frame, 6, buf, sizeof(buf)), "None");
	CHECK_STR(arg(t, frame, 7, buf, sizeof(buf)), "True");
	CHECK_STR(arg(t, frame, 8, buf, sizeof(buf)), "<dict>");
	CHECK_STR(arg(t, frame, 9, buf, sizeof(buf)), "<int>");
	CHECK_STR(arg(t, frame, 10, buf, sizeof(buf)), "<int>");
	/* 'a\x01\u2028' then 5000 of U+65E5: cut whole characters, then "..." */
	arg(t, frame, 11, buf, sizeof(buf));
	CHECK(!strncmp(buf, "'a\\x01\\u2028\xe6\x97\xa5", 15));
	CHECK(strlen(buf) <= sizeof(buf) - 1 && strlen(buf) > sizeof(buf) - 8);
	CHECK_STR(buf + strlen(buf) - 3, "...");
	CHECK_STR(arg(t, frame, 0, buf, 10), "'Mail:...");
	CHECK_STR(arg(t, frame, 0, buf, 4), "...");
	CHECK_STR(arg(t, frame, 4, buf, 8), "..."); /* numbers are not cut */
	CHECK_INT(py_frame_arg_repr(t, frame, 0, buf, 0), 0);
	/* Latin-1 and UCS-4 strings */
	CHECK_STR(arg(t, frame, 12, buf, sizeof(buf)), "'caf\xc3\xa9\xc3\xbf'");
	CHECK_STR(arg(t, frame, 13, buf, sizeof(buf)), "'\xf0\x9f\x98\x80'");
	/* x is bound but not a parameter: the slot after them */
	CHECK_STR(arg(t, frame, 14, buf, sizeof(buf)), "1");
	CHECK_INT(py_frame_arg_repr(t, frame, -1, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "?");
	CHECK_INT(py_frame_arg_repr(t, 0, 0, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "?");

	CHECK_STR((py_value_repr(t, t->none, buf, sizeof(buf)), buf), "None");
	CHECK_INT(py_value_repr(t, 0, buf, sizeof(buf)), 1);
	CHECK_STR(buf, "?");
	CHECK_STR((py_value_repr(t, code, buf, sizeof(buf)), buf), "<code>");
	CHECK_STR((py_value_repr(t, t->none + 1, buf, sizeof(buf)), buf), "?");
	CHECK_INT(py_code_read(t, 0, &pc), -EFAULT);
	CHECK_INT(py_code_read(t, frame, &pc), -EFAULT);
}

/* The other thread: Klass.method <- pkg.mod.run <- threading's Event.wait. */
static void check_worker(const struct py_target *t, const struct py_thread *th, const char *dir)
{
	char file[PATH_MAX + 16], buf[64];
	bool method = false, wait = false;
	struct py_code pc;

	snprintf(file, sizeof(file), "%s/pkg/mod.py", dir);
	CHECK(th->depth >= 5);
	for (int i = 0; i < th->depth; i++) {
		if (py_code_read(t, th->frames[i].code, &pc))
			continue;
		if (!strcmp(pc.qualname, qual(t, "Event.wait"))) {
			wait = true;
			CHECK_STR(pc.module, "threading");
		}
		if (strcmp(pc.qualname, qual(t, "Klass.method")))
			continue;
		method = true;
		CHECK_STR(pc.name, "method");
		CHECK_STR(pc.module, "__main__");
		CHECK_INT(pc.firstlineno, 18);
		CHECK_INT(pc.nargs, 3);
		CHECK_STR(arg(t, th->frames[i].frame, 0, buf, sizeof(buf)), "<Klass>");
		CHECK_STR(arg(t, th->frames[i].frame, 1, buf, sizeof(buf)), "<Event>");
		CHECK(i > 0);
		if (i == 0 || py_code_read(t, th->frames[i - 1].code, &pc))
			continue;
		CHECK_STR(pc.qualname, "run");
		CHECK_STR(pc.module, "pkg.mod");
		CHECK_STR(pc.filename, file);
		CHECK_INT(pc.firstlineno, 1);
	}
	CHECK(method);
	CHECK(wait);
}

/*
 * The child's own walk ("chain main... | worker..." of hex code addresses,
 * innermost first) against ours, frame by frame.
 */
static void check_chains(const struct py_thread *main, const struct py_thread *other,
			 const char *said)
{
	const struct py_thread *th = main;
	const char *p = strstr(said, "chain ");
	int i = 0, nmain = -1;
	char word[32];
	int k;

	CHECK(p != NULL);
	if (!p)
		return;
	for (p += 6; sscanf(p, "%31s%n", word, &k) == 1 && strcmp(word, "ready"); p += k) {
		if (!strcmp(word, "|")) {
			nmain = i;
			th = other;
			i = 0;
			continue;
		}
		CHECK(i < th->depth);
		if (i < th->depth && th->frames[i].code != strtoull(word, NULL, 16)) {
			fprintf(stderr, "frame %d: walked %#llx, the process says %s\n", i,
				(unsigned long long)th->frames[i].code, word);
			CHECK(!"the same code object");
		}
		i++;
	}
	CHECK_INT(nmain, main->depth);
	CHECK_INT(i, other->depth);
}

/*
 * 3.13: the debug offsets the child publishes agree with the table, and
 * each kind of disagreement is caught.
 */
static void check_debug_offsets(const struct py_target *t)
{
	unsigned char d[1024];
	struct iovec local = { d, sizeof(d) }, remote = { (void *)(uintptr_t)t->runtime, sizeof(d) };
	uint64_t v;

	CHECK_INT(process_vm_readv(t->pid, &local, 1, &remote, 1, 0), (ssize_t)sizeof(d));
	CHECK_INT(py_debug_offsets_check(t->lay, d, sizeof(d)), 0);
	CHECK_INT(py_debug_offsets_check(t->lay, d, 100), -EPROTO);
	CHECK_INT(py_debug_offsets_check(py_layout_for(0x030c), d, sizeof(d)), -EPROTO);
	/* free_threaded (at 16) */
	v = 1;
	memcpy(d + 16, &v, 8);
	CHECK_INT(py_debug_offsets_check(t->lay, d, sizeof(d)), -ENOTSUP);
	v = 0;
	memcpy(d + 16, &v, 8);
	/* interpreter_frame.previous (at 232) moved */
	memcpy(&v, d + 232, 8);
	v += 8;
	memcpy(d + 232, &v, 8);
	CHECK_INT(py_debug_offsets_check(t->lay, d, sizeof(d)), -EPROTO);
	v -= 8;
	memcpy(d + 232, &v, 8);
	CHECK_INT(py_debug_offsets_check(t->lay, d, sizeof(d)), 0);
	d[0] ^= 1; /* the cookie */
	CHECK_INT(py_debug_offsets_check(t->lay, d, sizeof(d)), -EPROTO);
}

static void check_python(const struct pyver *pv, const char *dir)
{
	const char *python = pv->path;
	bool usdt = pv->usdt, relative = pv->relative;
	char abs[PATH_MAX + 16];
	struct py_frame frames[MAX_THREADS][MAX_DEPTH];
	struct py_thread th[MAX_THREADS];
	struct py_target t;
	struct child c;
	int n, err, main_i = -1, other_i = -1;

	snprintf(abs, sizeof(abs), "%s/script.py", dir);
	if (relative) {
		char *const argv[] = { (char *)python, "-Wignore", "-B", "script.py", NULL };

		err = spawn(argv, dir, &c);
	} else {
		char *const argv[] = {
			(char *)python, "-u", "-X", "utf8", "-W", "ignore", abs, NULL
		};

		err = spawn(argv, NULL, &c);
	}
	CHECK_INT(err, 0);
	if (err) {
		fprintf(stderr, "%s did not start: %d\n", python, err);
		reap(&c);
		return;
	}
	err = py_target_open(c.pid, &t);
	CHECK_INT(err, 0);
	CHECK_STR(py_target_why(&t, err), "profiled");
	CHECK_INT(t.version, pv->version);
	CHECK(t.has_gc_usdt == usdt);
	CHECK_STR(t.script, abs);
	CHECK(t.lay == py_layout_for(pv->version));
	CHECK(!t.free_threaded);
	/* 3.10: the tid's place in struct pthread, found in the process */
	CHECK(pv->version == 0x030a ? t.off.pthread_tid != ES_PY_NO_OFF :
				      t.off.pthread_tid == ES_PY_NO_OFF);
	CHECK(t.runtime && t.interp && t.code_type && t.unicode_type && t.bytes_type &&
	      t.long_type && t.bool_type && t.none);
	CHECK(t.ino != 0);
	if (err) {
		reap(&c);
		return;
	}
	if (t.lay->debug_offsets)
		check_debug_offsets(&t);
	for (int i = 0; i < MAX_THREADS; i++)
		th[i].frames = frames[i];
	n = py_walk_threads(&t, th, MAX_THREADS, MAX_DEPTH);
	CHECK_INT(n, 2);
	for (int i = 0; i < n; i++) {
		if (th[i].tid == c.pid)
			main_i = i;
		else
			other_i = i;
	}
	CHECK(main_i >= 0 && other_i >= 0);
	if (main_i >= 0 && other_i >= 0)
		check_chains(&th[main_i], &th[other_i], c.said);
	if (main_i >= 0)
		check_main(&t, &th[main_i], abs);
	if (other_i >= 0)
		check_worker(&t, &th[other_i], dir);
	/* limits: one thread, one frame */
	CHECK_INT(py_walk_threads(&t, th, 1, 1), 1);
	CHECK_INT(th[0].depth, 1);
	CHECK(th[0].truncated);
	CHECK_INT(py_walk_threads(&t, th, 0, MAX_DEPTH), 0);
	reap(&c);
}

/* Killed between open and walk: errors, no crash. */
static void check_killed(const char *python, const char *dir)
{
	char abs[PATH_MAX + 16], buf[32];
	struct py_frame frames[MAX_THREADS][MAX_DEPTH];
	struct py_thread th[MAX_THREADS];
	struct py_target t, gone;
	struct py_code pc;
	struct child c;
	siginfo_t si;
	int err, n;

	snprintf(abs, sizeof(abs), "%s/script.py", dir);
	{
		char *const argv[] = { (char *)python, abs, NULL };

		err = spawn(argv, NULL, &c);
	}
	CHECK_INT(err, 0);
	if (!err)
		err = py_target_open(c.pid, &t);
	CHECK_INT(err, 0);
	if (err) {
		reap(&c);
		return;
	}
	for (int i = 0; i < MAX_THREADS; i++)
		th[i].frames = frames[i];
	n = py_walk_threads(&t, th, MAX_THREADS, MAX_DEPTH);
	CHECK_INT(n, 2);
	kill(c.pid, SIGKILL);
	/* a zombie first: no memory left to read */
	CHECK_INT(waitid(P_PID, (id_t)c.pid, &si, WEXITED | WNOWAIT), 0);
	CHECK(py_walk_threads(&t, th, MAX_THREADS, MAX_DEPTH) < 0);
	CHECK(py_target_open(c.pid, &gone) < 0);
	waitpid(c.pid, NULL, 0);
	CHECK_INT(py_walk_threads(&t, th, MAX_THREADS, MAX_DEPTH), -ESRCH);
	CHECK_INT(py_code_read(&t, th[0].frames[0].code, &pc), -EFAULT);
	CHECK_INT(py_frame_arg_repr(&t, th[0].frames[0].frame, 0, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "?");
	err = py_target_open(c.pid, &gone);
	CHECK(err == -ESRCH || err == -ENOENT);
	close(c.in);
	close(c.out);
}

/* Other versions, when pyenv has them: found, but no layout (or no _PyRuntime). */
static void check_other(const char *version, const char *bin, unsigned int want)
{
	char python[PATH_MAX];
	struct py_target t;
	struct child c;
	int err;

	snprintf(python, sizeof(python), PYENV_ROOT "%s/bin/%s", version, bin);
	if (access(python, X_OK)) {
		printf("test_pyrt: %s missing, not checked\n", python);
		return;
	}
	{
		char *const argv[] = { python, "-c", (char *)wait_py, NULL };

		err = spawn(argv, NULL, &c);
	}
	CHECK_INT(err, 0);
	if (!err) {
		CHECK_INT(py_target_open(c.pid, &t), -ENOTSUP);
		CHECK_INT(t.version, want);
		CHECK(t.binary[0] == '/');
		CHECK(t.lay == NULL);
	}
	reap(&c);
}

static void check_not_python(void)
{
	struct py_target t;
	pid_t pid;
	int err;

	/* sleep never prints ready: start it plainly */
	pid = fork();
	if (!pid) {
		execl("/bin/sleep", "sleep", "30", (char *)NULL);
		_exit(127);
	}
	CHECK(pid > 0);
	usleep(100 * 1000);
	CHECK_INT(py_target_open(pid, &t), -ENOENT);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	err = py_target_open(pid, &t);
	CHECK(err == -ESRCH || err == -ENOENT);
	CHECK_INT(py_target_open(0, &t), -ESRCH);
}

static void check_elf(void)
{
	struct stapsdt_iter it;
	struct stapsdt_note note;
	uint64_t size = 0, off;
	int fd, gc = 0;
	Elf *elf;

	if (elf_open_path(DEBIAN_PY, &fd, &elf))
		return;
	CHECK(elf_symbol(elf, "_PyRuntime", &size) != 0);
	CHECK(size > 1000);
	CHECK(elf_symbol(elf, "Py_Version", &size) != 0);
	CHECK_INT(size, 8);
	CHECK_INT(elf_va_to_off(elf, elf_symbol(elf, "Py_Version", NULL), &off), 0);
	CHECK_INT(elf_symbol(elf, "no_such_symbol", NULL), 0);
	CHECK_INT(stapsdt_begin(elf, &it), 0);
	while (stapsdt_next(&it, &note) > 0) {
		if (!strcmp(note.provider, "python") && !strcmp(note.name, "gc__start")) {
			gc++;
			CHECK(note.sema != 0);
			CHECK_INT(elf_va_to_off(elf, note.pc, &off), 0);
		}
	}
	CHECK_INT(gc, 1);
	CHECK_INT(stapsdt_next(&it, &note), 0);
	elf_close_path(fd, elf);
	CHECK_INT(elf_open_path("/nonexistent", &fd, &elf), -ENOENT);
	CHECK_INT(elf_open_path("/proc/self/cmdline", &fd, &elf), -ENOEXEC);
}

int main(void)
{
	char tmpl[] = "/tmp/erpscope-pyrt-XXXXXX", dir[PATH_MAX], p[PATH_MAX + 32];

	for (unsigned int v = 0x030a; v <= 0x030d; v++) {
		CHECK(py_layout_for(v) != NULL);
		CHECK_INT(py_layout_for(v)->version, v);
	}
	CHECK(py_layout_for(0x0309) == NULL);
	CHECK(py_layout_for(0x030e) == NULL);
	CHECK_INT(py_layout_for(0x030b)->bpf.ts_thread, 160);
	CHECK_INT(py_layout_for(0x030b)->bpf.frame_localsplus, 72);
	CHECK_INT(py_layout_for(0x030a)->bpf.frame_localsplus, 352);
	CHECK_INT(py_layout_for(0x030d)->bpf.cframe_current, ES_PY_NO_OFF);
	CHECK(py_layout_for(0x030d)->debug_offsets && !py_layout_for(0x030c)->debug_offsets);
	{
		struct py_target ft = { .version = 0x030d, .free_threaded = true };

		CHECK(strstr(py_target_why(&ft, -ENOTSUP), "free-threaded") != NULL);
		ft.free_threaded = false;
		CHECK_STR(py_target_why(&ft, -ENOTSUP), "no checked layout for this CPython version");
		CHECK(strstr(py_target_why(&ft, -EPROTO), "layout") != NULL);
	}
	check_not_python();

	if (!mkdtemp(tmpl) || !realpath(tmpl, dir)) {
		CHECK(!"mkdtemp");
		return check_summary("test_pyrt");
	}
	snprintf(p, sizeof(p), "%s/pkg", dir);
	CHECK_INT(mkdir(p, 0755), 0);
	CHECK_INT(write_file(dir, "script.py", script_py), 0);
	CHECK_INT(write_file(dir, "pkg/__init__.py", ""), 0);
	CHECK_INT(write_file(dir, "pkg/mod.py", mod_py), 0);

	for (size_t i = 0; i < sizeof(pythons) / sizeof(pythons[0]); i++) {
		if (access(pythons[i].path, X_OK)) {
			bool fail = ci() && pythons[i].required;

			printf("test_pyrt: %s missing: %s\n", pythons[i].path,
			       fail ? "FAILED (CI=true)" : "skipped");
			CHECK(!fail);
			continue;
		}
		check_python(&pythons[i], dir);
		if (i == 0) {
			check_elf();
			check_killed(pythons[i].path, dir);
		}
	}
	/* Versions without a table: found, named, not read. */
	check_other("3.9.18", "python3.9", 0x0309);
	check_other("2.7.18", "python2.7", 0x0207);

	for (const char *f = "script.py\0pkg/__init__.py\0pkg/mod.py\0pkg\0"; *f;
	     f += strlen(f) + 1) {
		snprintf(p, sizeof(p), "%s/%s", dir, f);
		if (unlink(p))
			rmdir(p);
	}
	rmdir(dir);
	return check_summary("test_pyrt");
}
