// SPDX-License-Identifier: GPL-2.0
#include "python/py_scope.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool has_uid(const struct py_scope *s, uid_t uid)
{
	for (size_t i = 0; i < s->nuids; i++) {
		if (s->uids[i] == uid)
			return true;
	}
	return false;
}

static void add_uid(struct py_scope *s, uid_t uid)
{
	if (!has_uid(s, uid) && s->nuids < PY_SCOPE_MAX)
		s->uids[s->nuids++] = uid;
}

/* A name from the password database, or a uid in decimal. */
static int name_uid(const char *name, uid_t *uid)
{
	struct passwd pw, *res = NULL;
	char buf[1024], *end;
	unsigned long v;

	if (!getpwnam_r(name, &pw, buf, sizeof(buf), &res) && res) {
		*uid = res->pw_uid;
		return 0;
	}
	errno = 0;
	v = strtoul(name, &end, 10);
	if (name[0] < '0' || name[0] > '9' || *end || errno || v > (uid_t)-2)
		return -ENOENT;
	*uid = (uid_t)v;
	return 0;
}

int py_scope_init(struct py_scope *s, const char *users, char *why, size_t len)
{
	char list[256], *save = NULL, *name;

	memset(s, 0, sizeof(*s));
	if (!users || !users[0]) {
		add_uid(s, 0); /* root: erpscope's operator already */
		return 0;
	}
	snprintf(list, sizeof(list), "%s", users);
	s->listed = true;
	for (name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
		uid_t uid;

		if (!strcmp(name, "all")) {
			s->all = true;
			continue;
		}
		if (name_uid(name, &uid)) {
			snprintf(why, len, "no such user \"%s\" (--python.users)", name);
			return -ENOENT;
		}
		add_uid(s, uid);
	}
	return 0;
}

void py_scope_saw_odoo(struct py_scope *s, uid_t uid)
{
	if (!s->listed)
		add_uid(s, uid);
}

static bool odoo_role(enum es_role r)
{
	return r == ES_ROLE_ODOO_MASTER || r == ES_ROLE_ODOO_HTTP || r == ES_ROLE_ODOO_CRON ||
	       r == ES_ROLE_ODOO_GEVENT;
}

bool py_scope_allows(const struct py_scope *s, enum es_role role, uid_t uid)
{
	return odoo_role(role) || s->all || has_uid(s, uid);
}

int py_proc_owner(unsigned int pid, uid_t *uid)
{
	char path[32];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%u", pid);
	if (stat(path, &st))
		return -errno;
	*uid = st.st_uid;
	return 0;
}
