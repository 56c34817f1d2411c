// SPDX-License-Identifier: GPL-2.0
/*
 * The "oom" probe: OOM kills and why tracked workers die, from
 * bpf/oom.bpf.c. Each OOM kill becomes an event (with the victim's memory
 * history from the memhistory poller) and a warn line; each exit of a
 * tracked worker is counted by reason, and one that is not normal becomes
 * an event and an info line.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <linux/types.h>

#include "../../bpf/oom.h"
#include "oom.skel.h"
#include "core/bpfutil.h"
#include "procs/cgpath.h"
#include "core/clock.h"
#include "core/erpscope.h"
#include "core/events.h"
#include "core/expo.h"
#include "core/json.h"
#include "core/kfeatures.h"
#include "core/log.h"
#include "core/mapstats.h"
#include "procs/memhistory.h"
#include "core/probe.h"
#include "core/worker_note.h"
#include "procs/proctable.h"
#include "procs/title.h"

enum exit_reason {
	EXIT_OOM_KILLED,
	EXIT_KILLED,
	EXIT_SIGNAL,
	EXIT_ERROR,
	EXIT_NORMAL,
	EXIT_NREASONS,
};

static const char *const reason_names[EXIT_NREASONS] = {
	[EXIT_OOM_KILLED] = "oom_killed", [EXIT_KILLED] = "killed", [EXIT_SIGNAL] = "signal",
	[EXIT_ERROR] = "error",		  [EXIT_NORMAL] = "normal",
};

struct oom_priv {
	struct oom_bpf *skel;
	uint64_t page_size;
	uint64_t kills[ES_ROLE_COUNT];
	uint64_t exits[ES_ROLE_COUNT][EXIT_NREASONS];
	uint64_t worker_kills[ES_ROLE_COUNT][ES_ROLE_COUNT]; /* [victim][sender] */
};

static enum es_role role_or_other(__u32 role)
{
	return role < ES_ROLE_COUNT ? (enum es_role)role : ES_ROLE_OTHER;
}

static void signame(unsigned int sig, char *buf, size_t size)
{
	const char *abbrev = sigabbrev_np((int)sig);

	if (abbrev)
		snprintf(buf, size, "SIG%s", abbrev);
	else
		snprintf(buf, size, "SIG%u", sig);
}

/* Monotonic ms (the BPF clock) to Unix seconds. */
static int64_t mono_to_unix_s(uint64_t mono_ms)
{
	struct timespec rt;
	int64_t now_ms;

	clock_gettime(CLOCK_REALTIME, &rt);
	now_ms = (int64_t)rt.tv_sec * 1000 + rt.tv_nsec / 1000000;
	return (now_ms - ((int64_t)clock_ms() - (int64_t)mono_ms)) / 1000;
}

static void add_event(struct erpscope *es, const char *type, struct json *j)
{
	int64_t id;
	int err = json_finish(j);

	id = err ? err : events_add(es->events, type, j->buf, j->len);
	if (id < 0)
		log_warn("cannot log event", "type=%s err=%d", type, (int)id);
}

static void history_json(struct erpscope *es, struct json *j, __u32 pid, uint64_t rss_now,
			 bool rss_known, uint64_t now_ms, char *summary, size_t size)
{
	struct mh_sample s[MH_SAMPLES];
	unsigned int n = memhistory_get(es, pid, s, MH_SAMPLES);

	if (!rss_known && n)
		rss_now = s[n - 1].rss_bytes;
	memhistory_summary(s, n, rss_now, now_ms, summary, size);
	json_object_begin(j, "memory_history");
	json_u64(j, "interval_seconds", MH_INTERVAL_MS / 1000);
	/* [unix time, rss bytes] pairs, oldest first */
	json_array_begin(j, "samples");
	for (unsigned int i = 0; i < n; i++) {
		json_array_begin(j, NULL);
		json_i64(j, NULL, mono_to_unix_s(s[i].mono_ms));
		json_u64(j, NULL, s[i].rss_bytes);
		json_array_end(j);
	}
	json_array_end(j);
	json_str(j, "summary", summary);
	json_object_end(j);
}

/* An exit or OOM kill of a tracked worker, for a trace recording (core/trace_sink.h). */
static void trace_instant(struct erpscope *es, __u32 tgid, __u64 ts_ns, const char *name,
			  const char *detail)
{
	struct trace_ev ev = { .kind = TRACE_EV_INSTANT, .tgid = tgid, .tid = tgid,
			       .ts_ns = ts_ns, .name = name, .detail = detail };

	trace_sink_emit(&es->trace, &ev);
}

static void on_kill(struct probe *p, const struct es_oom_kill *ev)
{
	struct oom_priv *op = p->priv;
	struct erpscope *es = p->es;
	const struct worker *w = procs_lookup(es->procs, ev->tgid);
	enum es_role role = role_or_other(ev->role);
	uint64_t ps = op->page_size;
	uint64_t rss = (ev->anon_pages + ev->file_pages + ev->shmem_pages) * ps;
	char cg[1024], summary[160], wlabel[16], q1[40], q2[40], q3[1100], q4[200];
	bool have_cg;
	struct json j;

	if (role == ES_ROLE_OTHER && w)
		role = w->role;
	op->kills[role]++;
	trace_instant(es, ev->tgid, ev->ts_ns, "OOM kill", NULL);
	/*
	 * The memory cgroup the kernel had for the victim at the kill first: by
	 * the time this runs an exiting task may already show the root in
	 * /proc/<pid>/cgroup (cgroup_exit()), which read first said "/". The
	 * pid's file only when the id is unknown or its directory is gone.
	 */
	have_cg = (ev->memcg_id && !cgpath_of_id(ev->memcg_id, cg, sizeof(cg))) ||
		  !cgpath_of_pid(ev->tgid, cg, sizeof(cg));
	snprintf(wlabel, sizeof(wlabel), "%u", ev->tgid);

	json_init(&j);
	json_object_begin(&j, NULL);
	json_u64(&j, "pid", ev->tgid);
	json_u64(&j, "tid", ev->pid);
	/* A pid-only tracepoint gives no comm: the process table may have it. */
	if (!ev->has_task && w)
		json_str(&j, "comm", w->comm);
	else
		json_strn(&j, "comm", ev->comm, strnlen(ev->comm, sizeof(ev->comm)));
	json_str(&j, "role", role_name(role));
	/* The table's label; once the table let go of it, the pid (every label but overflow's). */
	if (w || role != ES_ROLE_OTHER)
		json_str(&j, "worker", w ? w->label : wlabel);
	else
		json_null(&j, "worker");
	if (ev->has_task) {
		json_u64(&j, "uid", ev->uid);
		json_i64(&j, "oom_score_adj", ev->oom_score_adj);
		json_u64(&j, "rss_bytes", rss);
		json_u64(&j, "rss_anon_bytes", ev->anon_pages * ps);
		json_u64(&j, "rss_file_bytes", ev->file_pages * ps);
		json_u64(&j, "rss_shmem_bytes", ev->shmem_pages * ps);
		json_u64(&j, "total_vm_bytes", ev->total_vm_pages * ps);
	}
	/* The request it was serving, when the requests probe saw one. */
	worker_note_json(es->notes, ev->tgid, &j);
	json_u64(&j, "memcg_id", ev->memcg_id);
	if (have_cg)
		json_str(&j, "cgroup", cg);
	else
		json_null(&j, "cgroup");
	json_object_begin(&j, "trigger");
	json_u64(&j, "pid", ev->trigger_tgid);
	json_u64(&j, "tid", ev->trigger_pid);
	json_strn(&j, "comm", ev->trigger_comm,
		  strnlen(ev->trigger_comm, sizeof(ev->trigger_comm)));
	json_str(&j, "role", role_name(role_or_other(ev->trigger_role)));
	json_object_end(&j);
	history_json(es, &j, ev->tgid, rss, ev->has_task, ev->ts_ns / 1000000, summary,
		     sizeof(summary));
	json_object_end(&j);
	add_event(es, "oom_kill", &j);
	json_free(&j);

	log_warn(
		"OOM kill",
		"pid=%u comm=%s role=%s rss_bytes=%llu cgroup=%s trigger_pid=%u trigger_comm=%s memory=%s",
		ev->tgid, log_quote(q1, sizeof(q1), ev->comm), role_name(role),
		(unsigned long long)rss, log_quote(q3, sizeof(q3), have_cg ? cg : ""),
		ev->trigger_tgid, log_quote(q2, sizeof(q2), ev->trigger_comm),
		log_quote(q4, sizeof(q4), summary));
}

/* The signal that ended it came from another process, not the kernel. */
static bool killed_by_other(const struct es_oom_exit *ev)
{
	return ev->sig == (ev->code & 0x7f) && ev->si_code <= 0 && ev->sender_tgid &&
	       ev->sender_tgid != ev->tgid;
}

static enum exit_reason classify(const struct es_oom_exit *ev)
{
	unsigned int sig = ev->code & 0x7f;

	if (ev->oom)
		return EXIT_OOM_KILLED;
	if (sig == SIGKILL && killed_by_other(ev))
		return EXIT_KILLED;
	if (sig)
		return EXIT_SIGNAL;
	return (ev->code >> 8) & 0xff ? EXIT_ERROR : EXIT_NORMAL;
}

static void on_exit_event(struct probe *p, const struct es_oom_exit *ev)
{
	struct oom_priv *op = p->priv;
	enum es_role role = role_or_other(ev->role);
	enum es_role sender_role = role_or_other(ev->sender_role);
	enum exit_reason reason = classify(ev);
	unsigned int sig = ev->code & 0x7f, status = (ev->code >> 8) & 0xff;
	bool sender = killed_by_other(ev);
	char sname[24] = "", q1[40], q2[40];
	struct json j;

	if (role == ES_ROLE_OTHER)
		return;
	op->exits[role][reason]++;
	if (reason == EXIT_KILLED)
		op->worker_kills[role][sender_role]++;
	if (sig)
		signame(sig, sname, sizeof(sname));
	if (p->es->trace.on) {
		char what[64];

		snprintf(what, sizeof(what), "exit: %s", reason_names[reason]);
		trace_instant(p->es, ev->tgid, ev->ts_ns, what, sig ? sname : NULL);
	}
	log_kv(reason == EXIT_NORMAL ? LOG_DEBUG : LOG_INFO, "worker exit",
	       "pid=%u comm=%s role=%s reason=%s status=%u signal=%s sender_pid=%u sender_comm=%s sender_role=%s",
	       ev->tgid, log_quote(q1, sizeof(q1), ev->comm), role_name(role), reason_names[reason],
	       status, sig ? sname : "none", sender ? ev->sender_tgid : 0,
	       log_quote(q2, sizeof(q2), sender ? ev->sender_comm : ""),
	       sender ? role_name(sender_role) : "none");
	if (reason == EXIT_NORMAL)
		return;

	json_init(&j);
	json_object_begin(&j, NULL);
	json_u64(&j, "pid", ev->tgid);
	json_strn(&j, "comm", ev->comm, strnlen(ev->comm, sizeof(ev->comm)));
	json_str(&j, "role", role_name(role));
	json_str(&j, "reason", reason_names[reason]);
	if (sig) {
		json_null(&j, "exit_status");
		json_str(&j, "signal", sname);
		json_bool(&j, "core_dumped", ev->code & 0x80);
	} else {
		json_u64(&j, "exit_status", status);
		json_null(&j, "signal");
	}
	if (sender) {
		json_object_begin(&j, "sender");
		json_u64(&j, "pid", ev->sender_tgid);
		json_u64(&j, "tid", ev->sender_pid);
		json_strn(&j, "comm", ev->sender_comm,
			  strnlen(ev->sender_comm, sizeof(ev->sender_comm)));
		json_str(&j, "role", role_name(sender_role));
		json_object_end(&j);
	} else {
		json_null(&j, "sender");
	}
	worker_note_json(p->es->notes, ev->tgid, &j);
	json_object_end(&j);
	add_event(p->es, "worker_exit", &j);
	json_free(&j);
}

static int on_event(void *ctx, void *data, size_t len)
{
	struct probe *p = ctx;
	__u32 type;

	if (len < sizeof(type))
		return 0;
	memcpy(&type, data, sizeof(type));
	if (type == ES_OOM_KILL && len >= sizeof(struct es_oom_kill))
		on_kill(p, data);
	else if (type == ES_OOM_EXIT && len >= sizeof(struct es_oom_exit))
		on_exit_event(p, data);
	return 0;
}

static int oom_open(struct probe *p)
{
	struct erpscope *es = p->es;
	struct oom_priv *op;
	long ps;
	int nargs, err;

	op = calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	p->priv = op;
	ps = sysconf(_SC_PAGESIZE);
	op->page_size = ps > 0 ? (uint64_t)ps : 4096;
	op->skel = oom_bpf__open();
	if (!op->skel)
		return -errno;
	/* One argument: the pid-only prototype (see bpf/core_fixes.bpf.h). */
	nargs = feature_tp_nargs("mark_victim");
	op->skel->rodata->mark_victim_has_task = nargs != 1;
	bpf_pick_flavour(op->skel->obj, es->tp_btf);
	err = procs_share_maps(es, op->skel->obj);
	if (err)
		return err;
	err = oom_bpf__load(op->skel);
	if (err)
		return err;
	p->obj = op->skel->obj;
	p->drops_fd = bpf_map__fd(op->skel->maps.oom_drops);
	p->map_errors_fd = bpf_map__fd(op->skel->maps.map_errors);
	mapstats_track(p->es, ES_MAP_OOM_FATES, op->skel->maps.fates);
	p->rb = ring_buffer__new(bpf_map__fd(op->skel->maps.oom_events), on_event, p, NULL);
	if (!p->rb)
		return -errno;
	log_debug("oom probe loaded", "flavour=%s mark_victim_args=%d",
		  es->tp_btf ? "tp_btf" : "raw_tp", nargs);
	return 0;
}

static int oom_attach(struct probe *p)
{
	struct oom_priv *op = p->priv;

	return oom_bpf__attach(op->skel);
}

static int oom_collect(struct probe *p, struct expo *e)
{
	struct oom_priv *op = p->priv;
	struct expo_label l[2];

	expo_family(e, "erpscope_oom_kills_total", EXPO_COUNTER,
		    "Processes picked by the kernel's OOM killer, by the victim's role.");
	for (unsigned int r = 0; r < ES_ROLE_COUNT; r++) {
		l[0] = (struct expo_label){ "role", role_name((enum es_role)r) };
		expo_sample_u64(e, l, 1, op->kills[r]);
	}
	expo_family(
		e, "erpscope_worker_exits_total", EXPO_COUNTER,
		"Exits of tracked workers by reason: oom_killed, killed (SIGKILL from another process), signal (another fatal signal), error (non-zero status), normal.");
	for (unsigned int r = 1; r < ES_ROLE_COUNT; r++) {
		l[0] = (struct expo_label){ "role", role_name((enum es_role)r) };
		for (unsigned int k = 0; k < EXIT_NREASONS; k++) {
			l[1] = (struct expo_label){ "reason", reason_names[k] };
			expo_sample_u64(e, l, 2, op->exits[r][k]);
		}
	}
	expo_family(
		e, "erpscope_worker_kills_total", EXPO_COUNTER,
		"Tracked workers ended by a SIGKILL from another process, by the sender's role (e.g. Odoo's master past limit_time_real).");
	for (unsigned int r = 1; r < ES_ROLE_COUNT; r++) {
		for (unsigned int s = 0; s < ES_ROLE_COUNT; s++) {
			if (!op->worker_kills[r][s])
				continue;
			l[0] = (struct expo_label){ "role", role_name((enum es_role)r) };
			l[1] = (struct expo_label){ "sender_role", role_name((enum es_role)s) };
			expo_sample_u64(e, l, 2, op->worker_kills[r][s]);
		}
	}
	return 0;
}

static void oom_close(struct probe *p)
{
	struct oom_priv *op = p->priv;

	ring_buffer__free(p->rb);
	p->rb = NULL;
	p->obj = NULL;
	if (!op)
		return;
	oom_bpf__destroy(op->skel);
	free(op);
	p->priv = NULL;
}

const struct probe_ops oom_probe_ops = {
	.name = "oom",
	.open = oom_open,
	.attach = oom_attach,
	.collect = oom_collect,
	.close = oom_close,
};
