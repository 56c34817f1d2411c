// SPDX-License-Identifier: GPL-2.0
/*
 * The flight recorder's saved traces: files <UTC time>-<trigger>.perfetto-trace
 * in --trace.dir (created 0700), at most --trace.max-files of them and
 * --trace.max-bytes in all, oldest deleted first. Those already there at
 * start count (their time and trigger are in their name). A directory that
 * cannot be created or written is said once in the log; saves then fail
 * quietly (erpscope_trace_save_failures_total). GET /traces lists them,
 * GET /traces/<id> downloads one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/erpscope.h"
#include "core/grow.h"
#include "core/http.h"
#include "core/json.h"
#include "core/log.h"
#include "procs/title.h"
#include "trace/trace.h"

#define SUFFIX ".perfetto-trace"

/* Creates dir and its missing parents; dir itself 0700. */
static int mkdir_p(const char *dir)
{
	char path[256];

	snprintf(path, sizeof(path), "%s", dir);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(path, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(path, 0700) && errno != EEXIST)
		return -errno;
	return access(path, W_OK | X_OK) ? -errno : 0;
}

static int trigger_by_name(const char *s, size_t n)
{
	for (int k = 0; k < TRACE_TRIG_COUNT; k++) {
		if (strlen(trace_trigger_names[k]) == n && !memcmp(trace_trigger_names[k], s, n))
			return k;
	}
	return -1;
}

/* "20261201T211019Z-slow_request[-2].perfetto-trace" -> its time and trigger. */
static bool parse_name(const char *name, struct trace_saved *s)
{
	size_t len = strlen(name), sl = strlen(SUFFIX), idlen;
	struct tm tm = { 0 };
	const char *end, *t;

	if (len <= sl || len - sl >= sizeof(s->id) || strcmp(name + len - sl, SUFFIX))
		return false;
	idlen = len - sl;
	end = strptime(name, "%Y%m%dT%H%M%SZ-", &tm);
	if (!end || end - name != 17)
		return false;
	t = memchr(end, '-', (size_t)(name + idlen - end));
	s->trigger = trigger_by_name(end, t ? (size_t)(t - end) : (size_t)(name + idlen - end));
	if (s->trigger < 0)
		return false;
	memcpy(s->id, name, idlen);
	s->id[idlen] = 0;
	s->time = (int64_t)timegm(&tm);
	s->role = -1;
	return true;
}

static int by_time(const void *a, const void *b)
{
	const struct trace_saved *x = a, *y = b;

	return x->time < y->time ? -1 : x->time > y->time ? 1 : strcmp(x->id, y->id);
}

static int add(struct trace_priv *tp, const struct trace_saved *s)
{
	if (grow_array(&tp->saved, &tp->capsaved, tp->nsaved + 1, sizeof(*tp->saved), 32))
		return -ENOMEM;
	tp->saved[tp->nsaved++] = *s;
	return 0;
}

static void path_of(const struct trace_priv *tp, const char *id, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s%s", tp->es->cfg.trace_dir, id, SUFFIX);
}

/* Oldest first, the newest always kept. */
static void apply_caps(struct trace_priv *tp)
{
	const struct config *c = &tp->es->cfg;
	uint64_t total = 0;
	char path[512];

	for (size_t i = 0; i < tp->nsaved; i++)
		total += tp->saved[i].size;
	while (tp->nsaved > 1 && (tp->nsaved > c->trace_max_files || total > c->trace_max_bytes)) {
		path_of(tp, tp->saved[0].id, path, sizeof(path));
		if (unlink(path) && errno != ENOENT)
			log_warn("cannot delete an old trace", "path=%s errno=%d", path, errno);
		total -= tp->saved[0].size;
		memmove(tp->saved, tp->saved + 1, --tp->nsaved * sizeof(*tp->saved));
	}
}

void trace_files_init(struct trace_priv *tp)
{
	const char *dir = tp->es->cfg.trace_dir;
	struct trace_saved s;
	struct dirent *de;
	char path[512];
	struct stat st;
	DIR *d;
	int err;

	if (tp->window_ns) {
		err = mkdir_p(dir);
		tp->dir_ok = !err;
		if (err)
			log_warn("the flight recorder cannot save traces: --trace.dir is not a writable directory",
				 "dir=%s err=%s", dir, strerror(-err));
	}
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		memset(&s, 0, sizeof(s));
		if (!parse_name(de->d_name, &s))
			continue;
		path_of(tp, s.id, path, sizeof(path));
		if (stat(path, &st) || !S_ISREG(st.st_mode))
			continue;
		s.size = (uint64_t)st.st_size;
		add(tp, &s);
	}
	closedir(d);
	qsort(tp->saved, tp->nsaved, sizeof(*tp->saved), by_time);
	if (tp->dir_ok)
		apply_caps(tp);
}

static bool known(const struct trace_priv *tp, const char *id)
{
	for (size_t i = 0; i < tp->nsaved; i++) {
		if (!strcmp(tp->saved[i].id, id))
			return true;
	}
	return false;
}

static int write_all(const char *path, const uint8_t *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), err = 0;

	if (fd < 0)
		return -errno;
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : -EIO;
			break;
		}
		buf += n;
		len -= (size_t)n;
	}
	if (close(fd) && !err)
		err = -errno;
	return err;
}

int trace_files_save(struct trace_priv *tp, struct trace_saved *meta, const uint8_t *buf,
		     size_t len)
{
	char when[32], path[512], tmp[512];
	time_t t = (time_t)meta->time;
	struct tm tm;
	int err;

	if (!tp->dir_ok)
		return -EACCES;
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(meta->id, sizeof(meta->id), "%s-%s", when, trace_trigger_names[meta->trigger]);
	for (int n = 2; known(tp, meta->id) && n < 100; n++)
		snprintf(meta->id, sizeof(meta->id), "%s-%s-%d", when,
			 trace_trigger_names[meta->trigger], n);
	path_of(tp, meta->id, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", tp->es->cfg.trace_dir, meta->id);
	err = write_all(tmp, buf, len);
	if (!err && rename(tmp, path))
		err = -errno;
	if (err) {
		unlink(tmp);
		log_warn("cannot save a trace", "path=%s err=%s", path, strerror(-err));
		return err;
	}
	meta->size = len;
	err = add(tp, meta);
	apply_caps(tp);
	return err;
}

int trace_files_http(void *arg, struct http_exchange *x)
{
	struct trace_priv *tp = trace_priv(arg);
	char worker[16];
	struct json j;
	int err;

	if (!tp)
		return trace_http_error(x, 503, "traces are not available");
	json_init(&j);
	json_object_begin(&j, NULL);
	json_array_begin(&j, "traces");
	for (size_t i = tp->nsaved; i-- > 0;) {
		const struct trace_saved *s = &tp->saved[i];

		json_object_begin(&j, NULL);
		json_str(&j, "id", s->id);
		json_i64(&j, "time", s->time);
		json_str(&j, "trigger", trace_trigger_names[s->trigger]);
		if (s->role >= 0)
			json_str(&j, "role", role_name((enum es_role)s->role));
		else
			json_null(&j, "role");
		snprintf(worker, sizeof(worker), "%u", s->pid);
		if (s->pid)
			json_str(&j, "worker", worker);
		else
			json_null(&j, "worker");
		if (s->route[0])
			json_str(&j, "route", s->route);
		else
			json_null(&j, "route");
		if (s->rpc[0])
			json_str(&j, "model_method", s->rpc);
		else
			json_null(&j, "model_method");
		if (s->duration > 0)
			json_double(&j, "duration_seconds", s->duration);
		else
			json_null(&j, "duration_seconds");
		json_u64(&j, "size_bytes", s->size);
		json_object_end(&j);
	}
	json_array_end(&j);
	json_object_end(&j);
	err = json_finish(&j);
	if (!err)
		err = http_reply_text(x, 200, "application/json", j.buf);
	json_free(&j);
	return err;
}

/* Reads a saved trace whole. Returns 0, -ENOENT or -errno. */
static int read_all(const char *path, uint8_t **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), err = 0;
	struct stat st;
	size_t got = 0;
	uint8_t *buf;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return -ENOENT;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : -EIO;
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	if (err) {
		free(buf);
		return err;
	}
	*out = buf;
	*len = got;
	return 0;
}

int trace_file_http(void *arg, struct http_exchange *x)
{
	struct trace_priv *tp = trace_priv(arg);
	const char *id = x->path + strlen("/traces/");
	size_t n = strcspn(id, "?");
	char path[512], want[64];
	uint8_t *buf = NULL;
	size_t len = 0;

	if (!tp)
		return trace_http_error(x, 503, "traces are not available");
	if (!n || n >= sizeof(want) || strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") < n)
		return trace_http_error(x, 404, "no such trace");
	memcpy(want, id, n);
	want[n] = 0;
	if (!known(tp, want))
		return trace_http_error(x, 404, "no such trace");
	path_of(tp, want, path, sizeof(path));
	if (read_all(path, &buf, &len))
		return trace_http_error(x, 404, "no such trace");
	free(x->body);
	x->body = (char *)buf;
	x->len = len;
	x->status = 200;
	x->content_type = "application/octet-stream";
	snprintf(tp->file_disposition, sizeof(tp->file_disposition),
		 "attachment; filename=erpscope-%s.perfetto-trace", want);
	x->disposition = tp->file_disposition; /* copied by the server before we return */
	return 0;
}
