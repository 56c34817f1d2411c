// SPDX-License-Identifier: GPL-2.0
/* title_classify() on real /proc/<pid>/cmdline shapes and on hostile bytes. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "procs/title.h"

/* A literal with its embedded NULs: the length is the array's, minus one. */
#define CL(lit) (lit), sizeof(lit) - 1

static struct title_info ti;

static enum es_role classify(const char *cmd, size_t len, const char *exe, const char *comm)
{
	return title_classify(cmd, len, exe, comm, &ti);
}

static void test_odoo(void)
{
	/* setproctitle: one string, NUL padded, or with leftovers of argv */
	CHECK_INT(classify(CL("odoo: WorkerHTTP 4242 \0\0\0\0\0"), "python3.11", "python3"),
		  ES_ROLE_ODOO_HTTP);
	CHECK_INT(ti.role, ES_ROLE_ODOO_HTTP);
	CHECK_INT(classify(CL("odoo: WorkerHTTP 4242 \0-c\0/etc/odoo/odoo.conf\0"), "python3.11",
			   "odoo: WorkerHTT"),
		  ES_ROLE_ODOO_HTTP);
	/* exec -a "odoo: WorkerHTTP 1 " python3.11 ... */
	CHECK_INT(classify(CL("odoo: WorkerHTTP 1 \0/opt/odoo/odoo-bin\0--workers=2\0"),
			   "python3.11", "python3.11"),
		  ES_ROLE_ODOO_HTTP);
	/* not terminated */
	CHECK_INT(classify(CL("odoo: WorkerHTTP 4242 "), "python3.11", "python3"),
		  ES_ROLE_ODOO_HTTP);
	CHECK_INT(classify(CL("odoo: WorkerHTTPS 4242 "), "python3.11", "python3"), ES_ROLE_PYTHON);

	CHECK_INT(classify(CL("odoo: WorkerCron 77 mydb\0\0\0"), "python3.11", "python3"),
		  ES_ROLE_ODOO_CRON);
	CHECK_STR(ti.db, "mydb");
	CHECK_INT(classify(CL("odoo: WorkerCron 77 \0\0"), "python3.11", "python3"),
		  ES_ROLE_ODOO_CRON);
	CHECK_STR(ti.db, "");
	CHECK_INT(classify(CL("odoo: WorkerCron"), "python3.11", "python3"), ES_ROLE_ODOO_CRON);
	CHECK_STR(ti.db, "");
	CHECK_INT(classify(CL("openerp: WorkerCron 9 legacy\0"), "python2.7", "python"),
		  ES_ROLE_ODOO_CRON);
	CHECK_STR(ti.db, "legacy");

	CHECK_INT(classify(CL("odoo: master\0"), "python3.11", "python3"), ES_ROLE_ODOO_MASTER);
	CHECK_INT(classify(CL("odoo: Master \0"), "python3.11", "python3"), ES_ROLE_ODOO_MASTER);
	CHECK_INT(classify(CL("odoo: master of puppets\0"), "python3.11", "python3"),
		  ES_ROLE_PYTHON);

	/* Odoo titles count on a python, or on an exe that could not be read */
	CHECK_INT(classify(CL("odoo: WorkerHTTP 1 \0"), "", "odoo: WorkerHTT"), ES_ROLE_ODOO_HTTP);
	CHECK_INT(classify(CL("odoo: WorkerHTTP 1 \0"), NULL, NULL), ES_ROLE_ODOO_HTTP);
	CHECK_INT(classify(CL("odoo: WorkerHTTP 1 \0"), "sleep", "sleep"), ES_ROLE_OTHER);
	CHECK_INT(classify(CL("odoo: WorkerHTTP 1 \0"), "python3.11 (deleted)", "python3"),
		  ES_ROLE_ODOO_HTTP);

	/* the master: a python running odoo-bin, odoo or openerp-server */
	CHECK_INT(classify(CL("/usr/bin/python3\0/opt/odoo/odoo-bin\0-c\0/etc/odoo/odoo.conf\0"
			      "--workers=4\0"),
			   "python3.11", "python3"),
		  ES_ROLE_ODOO_MASTER);
	CHECK_INT(classify(CL("/root/.pyenv/versions/3.11.9/bin/python3.11\0"
			      "/srv/odoo/odoo-bin\0--http-port=8069\0"),
			   "python3.11", "python3.11"),
		  ES_ROLE_ODOO_MASTER);
	CHECK_INT(classify(CL("/usr/bin/python3\0/usr/bin/odoo\0--config\0/etc/odoo/odoo.conf\0"
			      "--logfile\0/var/log/odoo/odoo-server.log\0"),
			   "python3.11", "odoo"),
		  ES_ROLE_ODOO_MASTER);
	CHECK_INT(classify(CL("python2.7\0/usr/bin/openerp-server\0"), "python2.7", "python"),
		  ES_ROLE_ODOO_MASTER);
	CHECK_INT(classify(CL("/opt/venv/bin/odoo\0-c\0/etc/odoo.conf\0"), "python3.11", "odoo"),
		  ES_ROLE_ODOO_MASTER);
	CHECK_INT(classify(CL("python3\0-u\0-X\0dev\0-W\0ignore\0odoo-bin\0-d\0shop\0"),
			   "python3.12", "python3"),
		  ES_ROLE_ODOO_MASTER);
	CHECK_INT(classify(CL("python3\0-m\0odoo\0-d\0shop\0"), "python3.12", "python3"),
		  ES_ROLE_ODOO_MASTER);
	CHECK_INT(classify(CL("python3\0--\0/opt/odoo/odoo-bin\0"), "python3.12", "python3"),
		  ES_ROLE_ODOO_MASTER);
	/* odoo-bin not run by a python: an exec'd shell wrapper, say */
	CHECK_INT(classify(CL("/bin/sh\0/opt/odoo/odoo-bin\0"), "dash", "sh"), ES_ROLE_OTHER);
	/* a script merely named like an option value is not the script */
	CHECK_INT(classify(CL("python3\0-X\0odoo-bin\0app.py\0"), "python3.12", "python3"),
		  ES_ROLE_PYTHON);

	/* the gevent (longpolling/websocket) process */
	CHECK_INT(classify(CL("/usr/bin/python3.11\0/opt/odoo/odoo-bin\0gevent\0-c\0"
			      "/etc/odoo/odoo.conf\0--workers=4\0"),
			   "python3.11", "python3.11"),
		  ES_ROLE_ODOO_GEVENT);
	CHECK_INT(classify(CL("/usr/bin/python3\0/usr/bin/odoo\0gevent\0"), "python3.11",
			   "python3"),
		  ES_ROLE_ODOO_GEVENT);
	/* a setproctitle'd argv comes back as one string */
	CHECK_INT(classify(CL("python3 /opt/odoo/odoo-bin gevent --limit-time-real=60\0\0\0"),
			   "python3.11", "python3"),
		  ES_ROLE_ODOO_GEVENT);
	CHECK_INT(classify(CL("python3\0app.py\0--gevent\0"), "python3.11", "python3"),
		  ES_ROLE_PYTHON);
	CHECK_INT(classify(CL("python3\0-m\0gevent\0app.py\0"), "python3.11", "python3"),
		  ES_ROLE_PYTHON);
	CHECK_INT(classify(CL("python3\0-c\0import gevent\0"), "python3.11", "python3"),
		  ES_ROLE_PYTHON);
	CHECK_INT(classify(CL("gevent\0"), "python3.11", "python3"), ES_ROLE_PYTHON);
}

static void test_python(void)
{
	CHECK_INT(classify(CL("/usr/bin/python3.11\0-m\0http.server\0"), "python3.11",
			   "python3.11"),
		  ES_ROLE_PYTHON);
	CHECK_INT(classify(CL("/root/.pyenv/versions/3.12.3/bin/python3\0loop.py\0"), "python3.12",
			   "python3"),
		  ES_ROLE_PYTHON);
	CHECK_INT(classify(CL("python\0"), "python3.11d", "python"), ES_ROLE_PYTHON);
	CHECK_INT(classify(CL("/usr/bin/python3.11\0x.py\0"), "/usr/bin/python3.11 (deleted)",
			   "python3"),
		  ES_ROLE_PYTHON);
	/* exe unreadable: the comm or argv[0] tells */
	CHECK_INT(classify(CL("x.py\0"), "", "python3"), ES_ROLE_PYTHON);
	CHECK_INT(classify(CL("/usr/bin/python3\0x.py\0"), "", "x"), ES_ROLE_PYTHON);
	CHECK_INT(classify(CL("/usr/bin/python3\0/opt/odoo/odoo-bin\0"), "", "x"),
		  ES_ROLE_ODOO_MASTER);
	CHECK_INT(classify(CL("/usr/bin/python3.11\0x.py\0"), "bash", "bash"), ES_ROLE_OTHER);
	CHECK_INT(classify(CL("/bin/bash\0-c\0sleep 1\0"), "bash", "bash"), ES_ROLE_OTHER);
	CHECK_INT(classify(CL("sshd: root@pts/0\0\0"), "sshd", "sshd"), ES_ROLE_OTHER);
	CHECK_INT(classify(CL("\0"), "", ""), ES_ROLE_OTHER); /* a kernel thread */
}

static void check_pg(enum es_role role, const char *cluster, const char *user, const char *db,
		     const char *client, const char *state)
{
	CHECK_INT(ti.role, role);
	CHECK_STR(ti.cluster, cluster);
	CHECK_STR(ti.user, user);
	CHECK_STR(ti.db, db);
	CHECK_STR(ti.client, client);
	CHECK_STR(ti.state, state);
}

static void test_postgres(void)
{
	static const char *const others[] = {
		"postgres: 15/main: logical replication launcher ",
		"postgres: 15/main: logical replication apply worker for subscription 16400 ",
		"postgres: 14/main: stats collector ",
		"postgres: 15/main: archiver last was 000000010000000000000003",
		"postgres: 15/main: walsender rep 10.0.0.2(5432) streaming 0/3000148",
		"postgres: 15/main: walreceiver streaming 0/3000148",
		"postgres: 15/main: startup recovering 000000010000000000000003",
		"postgres: 15/main: logger ",
		"postgres: 15/main: parallel worker for PID 1234 ",
		"postgres: bgworker: pg_cron launcher",
		"postgres: 15/main: background worker \"x\"",
		"postgres: wal sender process rep 10.0.0.2(5432) streaming",
	};

	classify(CL("postgres: 15/main: checkpointer \0\0\0\0"), "postgres", "postgres");
	check_pg(ES_ROLE_PG_CHECKPOINTER, "15/main", "", "", "", "");
	classify(CL("postgres: 15/main: odoo odoo_db [local] idle\0\0"), "postgres", "postgres");
	check_pg(ES_ROLE_PG_BACKEND, "15/main", "odoo", "odoo_db", "[local]", "idle");
	classify(CL("postgres: alice shop 127.0.0.1(51234) SELECT\0"), "postgres", "postgres");
	check_pg(ES_ROLE_PG_BACKEND, "", "alice", "shop", "127.0.0.1(51234)", "SELECT");
	classify(CL("postgres: 15/main: autovacuum worker shop\0"), "postgres", "postgres");
	check_pg(ES_ROLE_PG_AUTOVACUUM, "15/main", "", "shop", "", "");
	classify(CL("postgres: 15/main: autovacuum launcher \0"), "postgres", "postgres");
	check_pg(ES_ROLE_PG_AUTOVACUUM, "15/main", "", "", "", "");
	classify(CL("postgres: 15/main: walwriter \0"), "postgres", "postgres");
	check_pg(ES_ROLE_PG_WALWRITER, "15/main", "", "", "", "");
	classify(CL("postgres: 15/main: background writer \0"), "postgres", "postgres");
	check_pg(ES_ROLE_PG_BGWRITER, "15/main", "", "", "", "");
	classify(CL("postgres: 15/main: odoo shop [local] idle in transaction\0"), "postgres",
		 "postgres");
	check_pg(ES_ROLE_PG_BACKEND, "15/main", "odoo", "shop", "[local]", "idle in transaction");
	classify(CL("postgres: 15/main: odoo shop 10.1.2.3(40000) authentication\0"), "postgres",
		 "postgres");
	check_pg(ES_ROLE_PG_BACKEND, "15/main", "odoo", "shop", "10.1.2.3(40000)",
		 "authentication");
	classify(CL("postgres: bob db ::1(5432) UPDATE waiting\0"), "postgres", "postgres");
	check_pg(ES_ROLE_PG_BACKEND, "", "bob", "db", "::1(5432)", "UPDATE waiting");
	classify(CL("postgres: 15/main: odoo shop [local]\0"), "postgres", "postgres");
	check_pg(ES_ROLE_PG_BACKEND, "15/main", "odoo", "shop", "[local]", "");
	/* a bare host, no port */
	classify(CL("postgres: alice shop db.example.com idle\0"), "postgres", "postgres");
	check_pg(ES_ROLE_PG_BACKEND, "", "alice", "shop", "db.example.com", "idle");

	/* the rest of the helpers, current and 9.x names */
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		CHECK_INT(classify(others[i], strlen(others[i]) + 1, "postgres", "postgres"),
			  ES_ROLE_PG_OTHER);
		CHECK_STR(ti.user, "");
	}
	classify(CL("postgres: 15/main: walsender rep 10.0.0.2(5432) streaming 0/3\0"), "postgres",
		 "postgres");
	CHECK_STR(ti.cluster, "15/main");
	CHECK_INT(classify(CL("postgres: writer process   \0"), "postgres", "postgres"),
		  ES_ROLE_PG_BGWRITER);
	CHECK_INT(classify(CL("postgres: wal writer process   \0"), "postgres", "postgres"),
		  ES_ROLE_PG_WALWRITER);
	CHECK_INT(classify(CL("postgres: checkpointer process   \0"), "postgres", "postgres"),
		  ES_ROLE_PG_CHECKPOINTER);
	classify(CL("postgres: autovacuum worker process   shop\0"), "postgres", "postgres");
	check_pg(ES_ROLE_PG_AUTOVACUUM, "", "", "shop", "", "");

	/* the postmaster keeps its argv */
	classify(CL("/usr/lib/postgresql/15/bin/postgres\0-D\0/var/lib/postgresql/15/main\0-c\0"
		    "config_file=/etc/postgresql/15/main/postgresql.conf\0"),
		 "postgres", "postgres");
	check_pg(ES_ROLE_PG_OTHER, "", "", "", "", "");
	CHECK_INT(classify(CL("/usr/local/pgsql/bin/postmaster\0-D\0/data\0"), "postmaster",
			   "postmaster"),
		  ES_ROLE_PG_OTHER);

	/* how the exe is known */
	CHECK_INT(classify(CL("postgres: 15/main: checkpointer \0"), "", "postgres"),
		  ES_ROLE_PG_CHECKPOINTER);
	CHECK_INT(classify(CL("postgres: 15/main: checkpointer \0"), "", "postgres\n"),
		  ES_ROLE_PG_CHECKPOINTER);
	CHECK_INT(classify(CL("postgres: 15/main: checkpointer \0"), "postgres (deleted)",
			   "postgres"),
		  ES_ROLE_PG_CHECKPOINTER);
	CHECK_INT(classify(CL("postgres: 15/main: checkpointer \0"),
			   "/usr/lib/postgresql/15/bin/postgres", "postgres"),
		  ES_ROLE_PG_CHECKPOINTER);
	CHECK_INT(classify(CL("postgres: 15/main: checkpointer \0"), "python3.11", "python3"),
		  ES_ROLE_PYTHON);
	CHECK_INT(classify(CL("postgres: 15/main: checkpointer \0"), "bash", "bash"),
		  ES_ROLE_OTHER);

	/* cluster names that hold ": ", user names that end in ':' */
	classify(CL("postgres: a: b: checkpointer \0"), "postgres", "postgres");
	check_pg(ES_ROLE_PG_CHECKPOINTER, "a: b", "", "", "", "");
	classify(CL("postgres: 15/main: x: shop [local] idle\0"), "postgres", "postgres");
	check_pg(ES_ROLE_PG_BACKEND, "15/main", "x:", "shop", "[local]", "idle");
	classify(CL("postgres: checkpointer: alice shop [local] idle\0"), "postgres", "postgres");
	check_pg(ES_ROLE_PG_BACKEND, "checkpointer", "alice", "shop", "[local]", "idle");
	classify(CL("postgres: alice my db [local] idle\0"), "postgres", "postgres");
	check_pg(ES_ROLE_PG_BACKEND, "", "alice", "my db", "[local]", "idle");
	classify(CL("postgres: alice [local] [local] idle\0"), "postgres", "postgres");
	check_pg(ES_ROLE_PG_BACKEND, "", "alice", "[local]", "[local]", "idle");

	/* users named like helpers are still backends */
	classify(CL("postgres: 15/main: startup shop [local] idle\0"), "postgres", "postgres");
	check_pg(ES_ROLE_PG_BACKEND, "15/main", "startup", "shop", "[local]", "idle");
	classify(CL("postgres: checkpointer logger 10.0.0.1(5000) SELECT\0"), "postgres",
		 "postgres");
	check_pg(ES_ROLE_PG_BACKEND, "", "checkpointer", "logger", "10.0.0.1(5000)", "SELECT");

	/* nothing matches: pg_other, fields empty */
	classify(CL("postgres: 15/main: pg_cron scheduler\0"), "postgres", "postgres");
	check_pg(ES_ROLE_PG_OTHER, "", "", "", "", "");
	classify(CL("postgres: \0"), "postgres", "postgres");
	check_pg(ES_ROLE_PG_OTHER, "", "", "", "", "");
	classify(CL("postgres: "), "postgres", "postgres");
	check_pg(ES_ROLE_PG_OTHER, "", "", "", "", "");
	classify(CL("postgres:"), "postgres", "postgres");
	check_pg(ES_ROLE_PG_OTHER, "", "", "", "", "");
	classify(CL("postgres: : : :"), "postgres", "postgres");
	check_pg(ES_ROLE_PG_OTHER, "", "", "", "", "");
	classify(CL("postgres: alice shop (5432) idle"), "postgres", "postgres");
	check_pg(ES_ROLE_PG_OTHER, "", "", "", "", "");
	classify(CL("postgres: alice shop host(123456) idle"), "postgres", "postgres");
	check_pg(ES_ROLE_PG_OTHER, "", "", "", "", "");
}

static void test_hostile(void)
{
	static const size_t mib = 1 << 20;
	char *big = malloc(mib);
	char *exact;
	size_t n;

	CHECK(big != NULL);
	if (!big)
		return;

	CHECK_INT(title_classify(NULL, 0, NULL, NULL, NULL), ES_ROLE_OTHER);
	CHECK_INT(title_classify(NULL, 100, "python3", NULL, &ti), ES_ROLE_PYTHON);
	CHECK_INT(classify("", 0, "", ""), ES_ROLE_OTHER);
	/* len 0 means nothing, whatever the pointer holds */
	CHECK_INT(classify("odoo: WorkerHTTP 1 ", 0, "python3", "python3"), ES_ROLE_PYTHON);
	CHECK_INT(classify("postgres: alice shop [local] idle", 0, "postgres", "postgres"),
		  ES_ROLE_PG_OTHER);
	/* the last byte is the end; what follows must not be read */
	CHECK_INT(classify("odoo: WorkerCron 77 mydbXXXX", 24, "python3", "python3"),
		  ES_ROLE_ODOO_CRON);
	CHECK_STR(ti.db, "mydb");
	n = strlen("postgres: alice shop [local] idle");
	exact = malloc(n);
	CHECK(exact != NULL);
	if (exact) {
		memcpy(exact, "postgres: alice shop [local] idle", n);
		classify(exact, n, "postgres", "postgres");
		check_pg(ES_ROLE_PG_BACKEND, "", "alice", "shop", "[local]", "idle");
		classify(exact, n - 5, "postgres", "postgres");
		check_pg(ES_ROLE_PG_BACKEND, "", "alice", "shop", "[local]", "");
		classify(exact, n - 7, "postgres", "postgres");
		check_pg(ES_ROLE_PG_OTHER, "", "", "", "", "");
		free(exact);
	}

	/* 1 MiB of 'A', of spaces, of ": ", of NULs */
	memset(big, 'A', mib);
	CHECK_INT(classify(big, mib, "python3.11", "python3"), ES_ROLE_PYTHON);
	CHECK_INT(classify(big, mib, "postgres", "postgres"), ES_ROLE_PG_OTHER);
	CHECK_INT(classify(big, mib, "", ""), ES_ROLE_OTHER);
	memcpy(big, "postgres: ", 10);
	CHECK_INT(classify(big, mib, "postgres", "postgres"), ES_ROLE_PG_OTHER);
	CHECK_STR(ti.user, "");
	for (n = 10; n + 1 < mib; n += 2)
		memcpy(big + n, ": ", 2);
	CHECK_INT(classify(big, mib, "postgres", "postgres"), ES_ROLE_PG_OTHER);
	memset(big, ' ', mib);
	CHECK_INT(classify(big, mib, "python3", "python3"), ES_ROLE_PYTHON);
	memcpy(big, "odoo: WorkerCron", 16);
	CHECK_INT(classify(big, mib, "python3", "python3"), ES_ROLE_ODOO_CRON);
	CHECK_STR(ti.db, "");
	memset(big, 0, mib);
	CHECK_INT(classify(big, mib, "python3", "python3"), ES_ROLE_PYTHON);
	memset(big, '/', mib);
	CHECK_INT(classify(big, mib, "python3", "python3"), ES_ROLE_PYTHON);
	for (n = 0; n < mib; n++)
		big[n] = n % 2 ? 0 : 'x';
	CHECK_INT(classify(big, mib, "python3", "python3"), ES_ROLE_PYTHON);
	for (n = 0; n + 7 <= mib; n += 7)
		memcpy(big + n, "gevent", 7);
	CHECK_INT(classify(big, mib, "python3", "python3"), ES_ROLE_ODOO_GEVENT);

	/* 1000 spaces between the words of a title */
	memset(big, ' ', 3000);
	memcpy(big, "odoo: WorkerCron", 16);
	memcpy(big + 1100, "77", 2);
	memcpy(big + 2200, "mydb", 4);
	CHECK_INT(classify(big, 3000, "python3", "python3"), ES_ROLE_ODOO_CRON);
	CHECK_STR(ti.db, "mydb");
	memset(big, ' ', 3000);
	memcpy(big, "postgres: 15/main:", 18);
	memcpy(big + 1100, "alice", 5);
	memcpy(big + 2100, "shop", 4);
	memcpy(big + 2500, "[local]", 7);
	memcpy(big + 2990, "idle", 4);
	classify(big, 3000, "postgres", "postgres");
	check_pg(ES_ROLE_PG_BACKEND, "15/main", "alice", "shop", "[local]", "idle");

	/* newlines, quotes and invalid UTF-8 are kept as they are */
	classify(CL("postgres: 15/main: ev\"il\nuser sh\\op [local] idle\n\0"), "postgres",
		 "postgres");
	check_pg(ES_ROLE_PG_BACKEND, "15/main", "ev\"il\nuser", "sh\\op", "[local]", "idle\n");
	classify(CL("postgres: \xff\xfe \xc3( 10.0.0.1(5432) \x80\0"), "postgres", "postgres");
	check_pg(ES_ROLE_PG_BACKEND, "", "\xff\xfe", "\xc3(", "10.0.0.1(5432)", "\x80");
	CHECK_INT(classify(CL("odoo: WorkerCron 1 \"db\"\n\xff\0"), "python3", "python3"),
		  ES_ROLE_ODOO_CRON);
	CHECK_STR(ti.db, "\"db\"\n\xff");

	/* fields longer than TITLE_FIELD_MAX are cut to fit */
	memset(big, 'u', 200);
	memcpy(big, "postgres: ", 10);
	memcpy(big + 200, " shop [local] idle", 18);
	classify(big, 218, "postgres", "postgres");
	CHECK_INT(ti.role, ES_ROLE_PG_BACKEND);
	CHECK_INT(strlen(ti.user), TITLE_FIELD_MAX - 1);
	CHECK_STR(ti.db, "shop");
	/* ... and never in the middle of a UTF-8 sequence */
	memcpy(big, "odoo: WorkerCron 1 ", 19);
	memset(big + 19, 'd', TITLE_FIELD_MAX - 2);
	memcpy(big + 19 + TITLE_FIELD_MAX - 2, "\xc3\xa9", 2);
	classify(big, 19 + TITLE_FIELD_MAX, "python3", "python3");
	CHECK_INT(strlen(ti.db), TITLE_FIELD_MAX - 2);
	memcpy(big + 19 + TITLE_FIELD_MAX - 3, "\xc3\xa9", 2);
	classify(big, 19 + TITLE_FIELD_MAX - 1, "python3", "python3");
	CHECK_INT(strlen(ti.db), TITLE_FIELD_MAX - 1);
	CHECK_STR(ti.db + TITLE_FIELD_MAX - 3, "\xc3\xa9");

	free(big);
}

static void test_role_name(void)
{
	static const char *const want[ES_ROLE_COUNT] = {
		"other",	   "python",	   "odoo_master", "odoo_http",
		"odoo_cron",	   "odoo_gevent",  "pg_backend",  "pg_autovacuum",
		"pg_checkpointer", "pg_walwriter", "pg_bgwriter", "pg_other",
	};
	int r;

	for (r = 0; r < ES_ROLE_COUNT; r++)
		CHECK_STR(role_name((enum es_role)r), want[r]);
	CHECK_STR(role_name(ES_ROLE_COUNT), "other");
	r = -1;
	CHECK_STR(role_name((enum es_role)r), "other");
	CHECK_STR(role_name((enum es_role)1000), "other");
}

int main(void)
{
	test_odoo();
	test_python();
	test_postgres();
	test_hostile();
	test_role_name();
	return check_summary("test_title");
}
