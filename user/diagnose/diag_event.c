// SPDX-License-Identifier: GPL-2.0
/* An event of the log (user/core/events.h) as the rules read it. */
#include <stdio.h>
#include <string.h>

#include "core/json_get.h"
#include "diagnose/diagnose.h"

#define STR(path, field) json_get_str(body, len, path, ev->field, sizeof(ev->field))

/* "route" and "model method" of what a worker was serving. */
static void serving(const char *body, size_t len, struct diag_event *ev)
{
	char model[48], method[40];

	STR("route", route);
	if (json_get_str(body, len, "model", model, sizeof(model)) &&
	    json_get_str(body, len, "method", method, sizeof(method)))
		snprintf(ev->rpc, sizeof(ev->rpc), "%.27s.%.27s", model, method);
}

bool diag_event_parse(const char *type, const char *body, size_t len, double t,
		      struct diag_event *ev)
{
	double v;

	memset(ev, 0, sizeof(*ev));
	ev->t = ev->t_last = t;
	ev->count = 1;
	if (!strcmp(type, "oom_kill")) {
		ev->type = DIAG_EV_OOM;
		STR("role", role);
		STR("worker", worker);
		STR("comm", comm);
		STR("cgroup", cgroup);
		STR("memory_history.summary", summary);
		if (json_get_num(body, len, "rss_bytes", &v))
			ev->rss = (uint64_t)v;
		serving(body, len, ev);
	} else if (!strcmp(type, "worker_exit")) {
		ev->type = DIAG_EV_EXIT;
		STR("role", role);
		STR("comm", comm);
		STR("reason", reason);
		STR("signal", signal);
		STR("sender.role", sender_role);
		STR("sender.comm", sender_comm);
		serving(body, len, ev);
	} else if (!strcmp(type, "tcp_connect_failed")) {
		ev->type = DIAG_EV_CONNECT;
		STR("role", role);
		STR("worker", worker);
		STR("comm", comm);
		STR("remote", remote);
		STR("reason", reason);
		if (json_get_num(body, len, "waited_seconds", &v))
			ev->seconds = v;
	} else if (!strcmp(type, "pg_lock_wait") || !strcmp(type, "pg_deadlock")) {
		bool deadlock = type[3] == 'd';

		ev->type = deadlock ? DIAG_EV_DEADLOCK : DIAG_EV_LOCK;
		STR("fingerprint", fp);
		STR("query", query);
		STR("client.role", role);
		STR("client.worker", worker);
		STR("mode", reason);
		if (json_get_num(body, len, deadlock ? "waited_seconds" : "wait_seconds", &v))
			ev->seconds = v;
		if (json_get_num(body, len, "holder.backend_pid", &v)) {
			ev->holder_pid = (uint32_t)v;
			STR("holder.client.role", holder_role);
			STR("holder.client.worker", holder_worker);
			STR("holder.query", holder_query);
			if (json_get_num(body, len, "holder.transaction_seconds", &v))
				ev->holder_xact_s = v;
			if (json_get_num(body, len, "holder.ended_before_wait_end_seconds", &v))
				ev->holder_gap_s = v;
		}
	} else {
		return false;
	}
	if (json_get_num(body, len, "pid", &v))
		ev->pid = (uint32_t)v;
	return true;
}
