// SPDX-License-Identifier: GPL-2.0
/*
 * Memory cgroup paths for OOM events. The cheap way is /proc/<pid>/cgroup
 * while the victim is still there; the kernel's cgroup id (the inode of the
 * cgroup's directory) finds it again by a bounded walk of the hierarchy.
 */
#include "procs/cgpath.h"
#include "core/readfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CG_FILE_MAX 8192
#define CG_WALK_DEPTH 32
#define CG_WALK_DIRS 100000 /* a bound on the walk, not a real-world limit */

static bool has_word(const char *list, size_t n, const char *word)
{
	size_t wl = strlen(word);

	for (size_t i = 0; i < n;) {
		size_t e = i;

		while (e < n && list[e] != ',')
			e++;
		if (e - i == wl && !memcmp(list + i, word, wl))
			return true;
		i = e + 1;
	}
	return false;
}

static int copy_path(const char *p, size_t n, char *out, size_t size)
{
	if (!n || n >= size)
		return n ? -ENAMETOOLONG : -ENOENT;
	memcpy(out, p, n);
	out[n] = 0;
	return 0;
}

int cgpath_parse(const char *text, char *out, size_t size)
{
	const char *v2 = NULL, *line = text;
	size_t v2len = 0;

	while (*line) {
		const char *end = strchr(line, '\n'), *c1, *c2;
		size_t len = end ? (size_t)(end - line) : strlen(line);

		c1 = memchr(line, ':', len);
		c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;
		if (c2) {
			const char *path = c2 + 1;
			size_t plen = len - (size_t)(path - line);

			if (has_word(c1 + 1, (size_t)(c2 - c1 - 1), "memory"))
				return copy_path(path, plen, out, size);
			if (c1 - line == 1 && line[0] == '0' && c2 == c1 + 1) {
				v2 = path;
				v2len = plen;
			}
		}
		if (!end)
			break;
		line = end + 1;
	}
	return v2 ? copy_path(v2, v2len, out, size) : -ENOENT;
}

int cgpath_of_pid(__u32 pid, char *out, size_t size)
{
	char path[64], *buf;
	ssize_t n;
	int err;

	buf = malloc(CG_FILE_MAX);
	if (!buf)
		return -ENOMEM;
	snprintf(path, sizeof(path), "/proc/%u/cgroup", pid);
	n = read_small_file(path, buf, CG_FILE_MAX);
	err = n < 0 ? (int)n : cgpath_parse(buf, out, size);
	free(buf);
	return err;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = 0;
}

/* Mount point of the v1 memory hierarchy, else of cgroup2. */
static int memcg_mount(char *out, size_t size)
{
	char line[4096], mnt[4096], fstype[64], opts[1024];
	bool found_v2 = false;
	int err = -ENOENT;
	FILE *f;

	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - ");

		/* id parent major:minor root mountpoint ... - fstype source superopts */
		if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
		    sscanf(sep + 3, "%63s %*s %1023s", fstype, opts) != 2)
			continue;
		if (!strcmp(fstype, "cgroup") && has_word(opts, strlen(opts), "memory")) {
			unescape(mnt);
			err = snprintf(out, size, "%s", mnt) < (int)size ? 0 : -ENAMETOOLONG;
			break;
		}
		if (!strcmp(fstype, "cgroup2") && !found_v2) {
			unescape(mnt);
			found_v2 = true;
			err = snprintf(out, size, "%s", mnt) < (int)size ? 0 : -ENAMETOOLONG;
		}
	}
	fclose(f);
	return err;
}

struct walk {
	__u64 id;
	unsigned int dirs;
	char *rel; /* path below the mount, built as the walk descends */
	size_t size;
};

/* Depth-first search below fd_dir (whose path is w->rel[0..len)). */
static int walk(struct walk *w, int fd_dir, size_t len, unsigned int depth)
{
	struct dirent *de;
	int err = -ENOENT;
	DIR *d;

	if (depth > CG_WALK_DEPTH)
		return -ENOENT;
	d = fdopendir(fd_dir);
	if (!d) {
		close(fd_dir);
		return -errno;
	}
	while (err == -ENOENT && (de = readdir(d))) {
		size_t nl = strlen(de->d_name);
		struct stat st;
		int fd;

		if (de->d_type != DT_DIR || de->d_name[0] == '.' || ++w->dirs > CG_WALK_DIRS)
			continue;
		if (len + 1 + nl >= w->size)
			continue;
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		w->rel[len] = '/';
		memcpy(w->rel + len + 1, de->d_name, nl + 1);
		if (!fstat(fd, &st) && (__u64)st.st_ino == w->id) {
			close(fd);
			err = 0;
			break;
		}
		if (!walk(w, fd, len + 1 + nl, depth + 1))
			err = 0; /* an unreadable subtree is just not it */
	}
	closedir(d);
	return err;
}

int cgpath_of_id(__u64 id, char *out, size_t size)
{
	char mnt[4096];
	struct walk w = { .id = id, .rel = out, .size = size };
	struct stat st;
	int fd, err;

	if (!id || size < 2)
		return -ENOENT;
	err = memcg_mount(mnt, sizeof(mnt));
	if (err)
		return err;
	fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (!fstat(fd, &st) && (__u64)st.st_ino == id) {
		close(fd);
		snprintf(out, size, "/");
		return 0;
	}
	err = walk(&w, fd, 0, 0);
	if (err)
		out[0] = 0;
	return err;
}
