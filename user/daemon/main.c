// SPDX-License-Identifier: GPL-2.0
/*
 * erpscope: loads the probes, keeps the process table current and serves
 * /metrics. One thread, one epoll set: signals, a 100 ms timer for the
 * pollers, each probe's ring buffer and the HTTP server. Scrapes and event
 * consumers never run at the same time, so nothing needs a lock.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <bpf/libbpf.h>

#include "core/caps.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/erpscope.h"
#include "core/events.h"
#include "core/kfeatures.h"
#include "core/http.h"
#include "core/log.h"
#include "core/reqtag.h"
#include "daemon/probes.h"
#include "procs/pools.h"
#include "procs/proctable.h"
#include "daemon/routes.h"
#include "core/selfstats.h"
#include "core/worker_note.h"
#include "core/web.h"

#define TICK_MS 100
enum { EV_SIGNAL = 1, EV_TIMER, EV_HTTP, EV_RING_BASE = 100 };

struct probe *erpscope_probe(struct erpscope *es, const char *name)
{
	for (int i = 0; i < es->nprobes; i++) {
		if (!strcmp(es->probes[i].ops->name, name))
			return &es->probes[i];
	}
	return NULL;
}

static int check_probe_names(const struct config *c, char *err, size_t errlen)
{
	char list[sizeof(c->probes)], *save = NULL, *name;

	snprintf(list, sizeof(list), "%s", c->probes);
	for (name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
		unsigned int i;

		for (i = 0; i < probe_table_len; i++) {
			if (!strcmp(probe_table[i]->name, name))
				break;
		}
		if (i == probe_table_len) {
			snprintf(err, errlen, "invalid value \"%s\" for flag --probes: unknown probe",
				 name);
			return -EINVAL;
		}
	}
	return 0;
}

static int epoll_add(int epfd, int fd, uint32_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = tag };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

/* Opens and attaches one probe; a failure leaves it down with one log line. */
static int start_probe(struct erpscope *es, struct probe *p)
{
	char reason[128];
	int err;

	err = p->ops->open(p);
	if (!err)
		err = p->ops->attach(p);
	if (err) {
		libbpf_strerror(err, reason, sizeof(reason));
		log_warn("probe not available", "probe=%s err=%d reason=\"%s\"", p->ops->name, err,
			 reason);
		p->ops->close(p);
		p->rb = NULL;
		p->drops_fd = -1;
		p->map_errors_fd = -1;
		return err;
	}
	p->up = true;
	log_info("probe attached", "probe=%s", p->ops->name);
	return 0;
}

static int start_probes(struct erpscope *es)
{
	int failed = 0;

	for (unsigned int i = 0; i < probe_table_len; i++) {
		struct probe *p = &es->probes[es->nprobes++];

		p->ops = probe_table[i];
		p->es = es;
		p->drops_fd = -1;
		p->map_errors_fd = -1;
		if (i > 0 && !config_probe_enabled(&es->cfg, p->ops->name)) {
			log_info("probe disabled by --probes", "probe=%s", p->ops->name);
			continue;
		}
		if (start_probe(es, p)) {
			failed++;
			/* Without procs nothing can be attributed: that is fatal. */
			if (i == 0)
				return -ENOENT;
		}
	}
	return failed;
}

static void stop_probes(struct erpscope *es)
{
	for (int i = es->nprobes - 1; i >= 0; i--) {
		struct probe *p = &es->probes[i];

		if (p->up)
			p->ops->close(p);
		p->up = false;
	}
}

/* Returns how many pollers failed to start (those switched off aside). */
static int start_pollers(struct erpscope *es)
{
	int failed = 0;

	for (unsigned int i = 0; i < poller_table_len && es->npollers < ES_MAX_POLLERS; i++) {
		struct poller *pl;
		int err;

		if (!poller_table[i])
			continue;
		pl = &es->pollers[es->npollers++];
		pl->ops = poller_table[i];
		pl->es = es;
		err = pl->ops->init(pl);
		if (err == -ENODEV) {
			log_debug("poller off with its probe", "poller=%s", pl->ops->name);
			continue;
		}
		if (err) {
			log_warn("poller not available", "poller=%s err=%d", pl->ops->name, err);
			failed++;
			continue;
		}
		pl->up = true;
		pl->ops->tick(pl, clock_ms()); /* the first scrape has data */
		if (!pl->interval_ms)
			pl->interval_ms = pl->ops->interval_ms;
		pl->next_ms = clock_ms() + pl->interval_ms;
	}
	return failed;
}

static void tick_pollers(struct erpscope *es, uint64_t now_ms)
{
	for (int i = 0; i < es->npollers; i++) {
		struct poller *pl = &es->pollers[i];

		if (!pl->up || now_ms < pl->next_ms)
			continue;
		pl->ops->tick(pl, now_ms);
		pl->next_ms = now_ms + pl->interval_ms;
	}
}

static void stop_pollers(struct erpscope *es)
{
	for (int i = 0; i < es->npollers; i++) {
		struct poller *pl = &es->pollers[i];

		if (pl->up && pl->ops->free)
			pl->ops->free(pl);
		pl->up = false;
	}
}

static int setup_loop(struct erpscope *es)
{
	struct itimerspec it = {
		.it_interval = { 0, TICK_MS * 1000000L },
		.it_value = { 0, TICK_MS * 1000000L },
	};
	sigset_t mask;
	int err;

	es->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (es->epfd < 0)
		return -errno;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	es->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	es->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (es->sigfd < 0 || es->timerfd < 0)
		return -errno;
	if (timerfd_settime(es->timerfd, 0, &it, NULL))
		return -errno;
	if ((err = epoll_add(es->epfd, es->sigfd, EV_SIGNAL)) ||
	    (err = epoll_add(es->epfd, es->timerfd, EV_TIMER)) ||
	    (err = epoll_add(es->epfd, httpd_fd(es->httpd), EV_HTTP)))
		return err;
	for (int i = 0; i < es->nprobes; i++) {
		struct probe *p = &es->probes[i];

		if (p->up && p->rb &&
		    (err = epoll_add(es->epfd, ring_buffer__epoll_fd(p->rb), EV_RING_BASE + i)))
			return err;
	}
	return 0;
}

/* Rereads the web config if it changed; new TLS settings restart the server. */
static void reload_web(struct erpscope *es, bool force, uint64_t now)
{
	int err;

	if (web_reload(es->web, force, now) <= 0 || httpd_restart(es->httpd))
		return;
	err = epoll_add(es->epfd, httpd_fd(es->httpd), EV_HTTP);
	if (err)
		log_error("cannot watch the restarted web server", "err=%d", err);
}

static void on_signal(struct erpscope *es)
{
	struct signalfd_siginfo si;

	while (read(es->sigfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			log_info("SIGHUP: rescanning processes, rereading the web config");
			procs_scan(es->procs, clock_ms());
			reload_web(es, true, clock_ms());
			continue;
		}
		log_info("shutting down", "signal=%s", strsignal((int)si.ssi_signo));
		es->stop = true;
	}
}

/*
 * Tables that follow short-lived processes grow and shrink all day; glibc
 * keeps what they free. Handing free pages back now and then keeps the
 * daemon's RSS what it uses, so a leak would show and churn does not.
 */
#define TRIM_EVERY_MS 10000

static void give_back_memory(struct erpscope *es, uint64_t now)
{
	if (now < es->last_trim_ms + TRIM_EVERY_MS)
		return;
	es->last_trim_ms = now;
	malloc_trim(0);
}

void daemon_drain_rings(struct erpscope *es)
{
	for (int i = 0; i < es->nprobes; i++) {
		if (es->probes[i].up && es->probes[i].rb)
			ring_buffer__consume(es->probes[i].rb);
	}
}

/*
 * Trace rings are mapped only while a recording runs (core/trace_sink.c):
 * the ones mapped since the last look join the epoll set (an unmapped
 * one left it when its fd closed).
 */
static void poll_new_rings(struct erpscope *es, unsigned int *gen)
{
	if (*gen == es->trace.rings_gen)
		return;
	*gen = es->trace.rings_gen;
	for (int i = 0; i < es->nprobes; i++) {
		struct probe *p = &es->probes[i];
		int err;

		if (!p->up || !p->rb)
			continue;
		err = epoll_add(es->epfd, ring_buffer__epoll_fd(p->rb), EV_RING_BASE + i);
		if (err && err != -EEXIST)
			log_warn("a probe's ring is not polled: drained every 100 ms only",
				 "probe=%s err=%d", p->ops->name, err);
	}
}

static int run_loop(struct erpscope *es)
{
	struct epoll_event evs[16];
	unsigned int rings_gen = es->trace.rings_gen - 1; /* a first look: rings mapped at start */
	uint64_t ticks;

	while (!es->stop) {
		int timeout = httpd_timeout_ms(es->httpd);
		int n;

		if (timeout < 0 || timeout > 1000)
			timeout = 1000;
		n = epoll_wait(es->epfd, evs, 16, timeout);
		if (n < 0 && errno != EINTR)
			return -errno;
		for (int i = 0; i < n; i++) {
			uint32_t tag = evs[i].data.u32;

			if (tag == EV_SIGNAL) {
				on_signal(es);
			} else if (tag == EV_TIMER) {
				if (read(es->timerfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
					return -errno;
				uint64_t now = clock_ms();

				daemon_drain_rings(es); /* events submitted without a wakeup */
				procs_tick(es->procs, now, es->cfg.rescan_ms);
				tick_pollers(es, now);
				give_back_memory(es, now);
				reload_web(es, false, now);
			} else if (tag >= EV_RING_BASE && tag - EV_RING_BASE < (uint32_t)es->nprobes) {
				/* NULL: a trace ring unmapped earlier in this batch. */
				if (es->probes[tag - EV_RING_BASE].rb)
					ring_buffer__consume(es->probes[tag - EV_RING_BASE].rb);
			}
		}
		httpd_run(es->httpd);
		poll_new_rings(es, &rings_gen);
	}
	return 0;
}

static void cleanup(struct erpscope *es)
{
	if (es->httpd)
		httpd_stop(es->httpd);
	stop_pollers(es);
	stop_probes(es);
	pools_free(es->pools);
	procs_free(es->procs);
	events_free(es->events);
	worker_notes_free(es->notes);
	reqtags_free(es->reqtags);
	web_free(es->web);
	if (es->stats_fd >= 0)
		close(es->stats_fd);
	if (es->timerfd >= 0)
		close(es->timerfd);
	if (es->sigfd >= 0)
		close(es->sigfd);
	if (es->epfd >= 0)
		close(es->epfd);
}

static int run(struct erpscope *es)
{
	int failed, err, rc = 1;

	es->procs = procs_new(es->cfg.max_workers);
	es->pools = es->procs ? pools_new(es->procs) : NULL;
	es->events = events_new(EVENTS_MAX, EVENTS_MAX_BYTES);
	es->notes = worker_notes_new(WORKER_NOTES_MAX);
	/* Profile samples point at its labels for the profile window. */
	es->reqtags = reqtags_new(es->cfg.py_window_ms + 60000);
	if (!es->procs || !es->pools || !es->events || !es->notes || !es->reqtags) {
		log_error("out of memory");
		goto out;
	}
	switch (es->cfg.attach) {
	case ATTACH_TP_BTF:
		es->tp_btf = true;
		break;
	case ATTACH_RAW_TP:
		es->tp_btf = false;
		break;
	default:
		es->tp_btf = feature_tp_btf();
	}
	log_info("starting erpscope", "version=%s attach=%s max_workers=%u", ERPSCOPE_VERSION,
		 es->tp_btf ? "tp_btf" : "raw_tp", es->cfg.max_workers);
	if (es->cfg.bpf_stats)
		selfstats_enable(es);

	failed = start_probes(es);
	if (failed < 0) {
		log_error("cannot load the process tracker; erpscope needs root, or CAP_BPF, CAP_PERFMON, CAP_SYS_RESOURCE and CAP_DAC_READ_SEARCH, and a kernel with BTF");
		goto out;
	}
	if (failed && es->cfg.strict) {
		log_error("--strict: a probe failed to load or attach", "failed=%d", failed);
		goto out;
	}
	err = procs_scan(es->procs, clock_ms());
	log_info("process table ready", "tracked=%d", err);
	err = start_pollers(es);
	if (err && es->cfg.strict) {
		log_error("--strict: a poller failed to start (see the warning above)", "failed=%d",
			  err);
		goto out;
	}
	if (es->cfg.check) {
		log_info("--check: every enabled probe loaded and attached", "failed=%d", failed);
		rc = 0;
		goto out;
	}
	err = routes_start(es);
	if (err)
		goto out;
	err = caps_drop_after_attach();
	if (err)
		log_warn("cannot drop capabilities", "err=%d", err);
	err = setup_loop(es);
	if (err) {
		log_error("cannot set up the event loop", "err=%d", err);
		goto out;
	}
	err = run_loop(es);
	rc = err ? 1 : 0;
out:
	cleanup(es);
	return rc;
}

int main(int argc, char **argv)
{
	struct erpscope es = {
		.epfd = -1, .sigfd = -1, .timerfd = -1, .stats_fd = -1, .workers_fd = -1,
		.iodev_fd = -1, .task_sched_fd = -1, .pg_clients_fd = -1, .workers_gen_fd = -1, .switch_hook_fd = -1, .switch_arg_fd = -1,
		.req_serving_fd = -1,
	};
	char err[512] = "";

	signal(SIGPIPE, SIG_IGN);
	config_defaults(&es.cfg);
	if (config_parse_args(&es.cfg, argc, argv, err, sizeof(err)) ||
	    check_probe_names(&es.cfg, err, sizeof(err))) {
		fprintf(stderr, "erpscope: error: %s (see --help)\n", err);
		return 2;
	}
	if (es.cfg.help) {
		config_usage(stdout, "erpscope");
		return 0;
	}
	if (es.cfg.version) {
		printf("erpscope version %s (libbpf %u.%u)\n", ERPSCOPE_VERSION,
		       libbpf_major_version(), libbpf_minor_version());
		return 0;
	}
	log_set_level(es.cfg.log_level);
	if (web_open(&es.web, es.cfg.web_config_file, es.cfg.web_sensitive, err, sizeof(err))) {
		fprintf(stderr, "erpscope: error: --web.config.file: %s\n", err);
		return 2;
	}
	log_hook_libbpf();
	return run(&es);
}
