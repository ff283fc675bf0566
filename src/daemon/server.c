/* SPDX-License-Identifier: MIT */
/*
 * The resolver's control side: the main loop, its signals (SIGHUP reload,
 * SIGTERM/SIGINT stop, SIGUSR1 reopen the alert file), the alerter, the
 * metrics endpoint and the snapshots of config and policy. It loads a
 * snapshot at start and on reload, offers it to every worker (worker.h), and
 * frees the old one once every worker has switched and the alert rings are
 * drained. Workers share nothing but the read-only snapshot and their alert
 * rings.
 */
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "dnsink/groups.h"
#include "dnsink/upstream_spec.h"
#include "activity.h"
#include "alert_sink.h"
#include "control.h"
#include "dashboard.h"
#include "fetch.h"
#include "log.h"
#include "metrics.h"
#include "dnstap.h"
#include "server.h"
#include "snapshot.h"
#include "sock.h"
#include "worker.h"
#include "xfr.h"

struct dk_server {
	uv_loop_t loop;
	const char *config_path;
	const struct dk_run_opts *opts;
	struct dk_snapshot *cur; /**< the snapshot workers are given */
	struct dk_snapshot *old; /**< replaced, freed when every worker switched */
	struct dk_alerter *alerter;
	struct dk_dnstap *dnstap;   /**< NULL: off; read at start, kept across reloads */
	struct dk_metrics *metrics; /**< NULL: endpoint off */
	struct dk_metrics_src msrc; /**< what the endpoint reads */
	struct dk_activity *act;    /**< recent activity; NULL: neither metrics nor control */
	struct dk_control *control; /**< NULL: control.socket off */
	struct dk_dashboard *dash;  /**< GET / and /api/v1/ of the metrics listener */
	struct dk_worker **workers;
	unsigned n_workers;
	struct dk_stats_reg *stats; /**< counter slots of rules and upstreams */
	struct dk_xfr *xfr;         /**< RPZ zone transfers; NULL when it could not start */
	struct dk_fetch *fetch;     /**< lists on URLs; NULL when it could not start */
	uv_signal_t sigs[4];
	unsigned n_sigs;
	uv_async_t acked; /**< a worker took the new snapshot */
	uv_async_t done;  /**< a worker's loop ended */
	uv_timer_t sched; /**< once a second: which group schedules are open */
	bool asyncs_ready;
	atomic_uint acks;
	atomic_uint n_done;
	bool reloading;
	bool reload_again;
	bool stopping;
	int status;
};

/* Records the time and result of a load for the metrics endpoint. */
static void note_load(struct dk_server *srv, bool ok)
{
	srv->msrc.reload_time = (double)dk_wall_ms() / 1000.0;
	srv->msrc.reload_ok = ok;
	if (ok)
		srv->msrc.snap = srv->cur;
}

static void close_handle(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* Worker hooks, on the worker threads. */

static void worker_took(void *ctx)
{
	struct dk_server *srv = ctx;

	atomic_fetch_add(&srv->acks, 1);
	uv_async_send(&srv->acked);
}

static void worker_notify(void *ctx, const char *origin)
{
	struct dk_server *srv = ctx;

	if (srv->xfr)
		dk_xfr_notify(srv->xfr, origin);
}

static void worker_ended(void *ctx)
{
	struct dk_server *srv = ctx;

	atomic_fetch_add(&srv->n_done, 1);
	uv_async_send(&srv->done);
}

/* Snapshots. */

static bool addrs_equal(const struct dk_addr *a, size_t na, const struct dk_addr *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!dk_sockaddr_equal(&a[i].sa, &b[i].sa))
			return false;
	return true;
}

static bool str_equal(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

/*
 * Says which changed settings a reload does not apply: the sockets and
 * threads made at start, and the user they were made as. Everything else
 * (rules, upstreams, cache, alerts, groups...) comes with the new snapshot.
 */
static void warn_restart_only(const struct dk_config *old, const struct dk_config *cfg)
{
	static const char fmt[] = "reload: \"%s\" changed; restart to apply it (the old value "
	                          "stays in force)";

	if (!addrs_equal(old->listen, old->n_listen, cfg->listen, cfg->n_listen))
		dk_log(DK_LOG_WARN, fmt, "listen");
	if (!addrs_equal(old->listen_tls, old->n_listen_tls, cfg->listen_tls, cfg->n_listen_tls))
		dk_log(DK_LOG_WARN, fmt, "listen_tls");
	if (!addrs_equal(old->listen_https, old->n_listen_https, cfg->listen_https,
	                 cfg->n_listen_https))
		dk_log(DK_LOG_WARN, fmt, "listen_https");
	if (old->metrics_enabled != cfg->metrics_enabled ||
	    (cfg->metrics_enabled && !dk_sockaddr_equal(&old->metrics.sa, &cfg->metrics.sa)))
		dk_log(DK_LOG_WARN, fmt, "metrics.listen");
	if (cfg->workers != old->workers)
		dk_log(DK_LOG_WARN, fmt, "workers");
	if (cfg->max_inflight != old->max_inflight)
		dk_log(DK_LOG_WARN, fmt, "max_inflight");
	if (!str_equal(old->control_socket, cfg->control_socket))
		dk_log(DK_LOG_WARN, fmt, "control.socket");
	if (!str_equal(old->user, cfg->user))
		dk_log(DK_LOG_WARN, fmt, "user");
	if (!str_equal(old->dnstap.socket, cfg->dnstap.socket) ||
	    !str_equal(old->dnstap.file, cfg->dnstap.file) ||
	    !str_equal(old->dnstap.identity, cfg->dnstap.identity) ||
	    old->dnstap.queue != cfg->dnstap.queue)
		dk_log(DK_LOG_WARN, fmt, "dnstap");
}

/* Loads a snapshot sized for the workers that run now (none at start). */
static int snapshot_load(struct dk_server *srv, struct dk_snapshot **out, char *msg,
                         size_t msg_size)
{
	struct dk_wstats **blocks = NULL;
	int rc;

	if (srv->n_workers) {
		blocks = calloc(srv->n_workers, sizeof(*blocks));
		if (!blocks)
			return -ENOMEM;
		for (unsigned i = 0; i < srv->n_workers; i++)
			blocks[i] = dk_worker_stats(srv->workers[i]);
	}
	rc = dk_snapshot_load(srv->config_path, srv->opts, srv->stats, blocks, srv->n_workers, out,
	                      msg, msg_size);
	free(blocks);
	return rc;
}

static void log_addrs(const char *what, const struct dk_addr *a, size_t n)
{
	char line[512];
	size_t off = 0;

	line[0] = 0;
	for (size_t i = 0; i < n && off < sizeof(line); i++) {
		char addr[64];
		dk_addr_format(&a[i], addr, sizeof(addr));
		off += (size_t)snprintf(line + off, sizeof(line) - off, "%s%s", i ? " " : "", addr);
	}
	dk_log(DK_LOG_INFO, "%s: %s", what, line);
}

/* The upstreams of @p cfg as written (tls:// with its name). */
static void log_upstreams(const char *what, const struct dk_config *cfg)
{
	char line[1024];
	size_t off = 0;

	line[0] = 0;
	for (size_t i = 0; i < cfg->n_upstreams && off < sizeof(line); i++) {
		char up[400];
		if (dk_upstream_format(cfg, i, up, sizeof(up)) < 0)
			snprintf(up, sizeof(up), "?");
		off += (size_t)snprintf(line + off, sizeof(line) - off, "%s%s", i ? " " : "", up);
	}
	dk_log(DK_LOG_INFO, "%s: %s", what, line);
}

static int reload(struct dk_server *srv, char *msg, size_t msg_size)
{
	struct dk_snapshot *s;
	int rc;

	rc = snapshot_load(srv, &s, msg, msg_size);
	if (rc < 0) {
		dk_log(DK_LOG_ERR, "reload failed: keeping the configuration and rules in force");
		note_load(srv, false);
		return rc;
	}
	warn_restart_only(srv->cur->cfg, s->cfg);
	rc = dk_alerter_reconfigure(srv->alerter, s->cfg);
	if (rc < 0)
		dk_log(DK_LOG_WARN, "reload: alert sinks: %s", dk_strerror(rc));
	srv->old = srv->cur;
	srv->cur = s;
	note_load(srv, true);
	if (srv->xfr)
		dk_xfr_update(srv->xfr, s->pol);
	if (srv->fetch)
		dk_fetch_update(srv->fetch, s->pol);
	srv->reloading = true;
	atomic_store(&srv->acks, 0);
	for (unsigned i = 0; i < srv->n_workers; i++)
		dk_worker_offer(srv->workers[i], s);
	return 0;
}

/* `dnsink ctl reload`: a reload now, its result for the caller. */
static int ctl_reload(void *ctx, char *msg, size_t size)
{
	struct dk_server *srv = ctx;

	if (srv->stopping) {
		snprintf(msg, size, "stopping");
		return -ECANCELED;
	}
	if (srv->reloading) {
		snprintf(msg, size, "busy: a reload is under way; try again");
		return -EBUSY;
	}
	dk_log(DK_LOG_INFO, "control: reloading %s", srv->config_path);
	return reload(srv, msg, size);
}

static void on_acked(uv_async_t *a)
{
	struct dk_server *srv = a->data;

	if (!srv->reloading || atomic_load(&srv->acks) < srv->n_workers)
		return;
	srv->reloading = false;
	/* Events in the rings may point into the old policy: drain them first. */
	dk_alerter_drain(srv->alerter);
	dk_snapshot_free(srv->old);
	srv->old = NULL;
	/* Every worker switched: the counter blocks they left can go. */
	dk_stats_release(&srv->cur->stats);
	log_upstreams("reloaded; upstreams", srv->cur->cfg);
	if (srv->reload_again && !srv->stopping) {
		srv->reload_again = false;
		reload(srv, NULL, 0);
	}
}

/* The exit line of counters, summed over the workers. */
static void log_counters(struct dk_server *srv)
{
	struct dk_counters t;

	memset(&t, 0, sizeof(t));
	for (unsigned i = 0; i < srv->n_workers; i++)
		dk_counters_add(&t, dk_worker_counters(srv->workers[i]));
#define V(c) dk_ctr_get(&t.c)
	for (int tr = 0; tr < DK_TRANSPORT_MAX; tr++) {
		char line[512];
		size_t off = 0;
		for (int o = 0; o < DK_OUT_MAX; o++)
			off += (size_t)snprintf(line + off, sizeof(line) - off, " %s=%" PRIu64,
			                        dk_outcome_name((enum dk_outcome)o),
			                        V(query.out[tr][o]));
		dk_log(DK_LOG_INFO, "stats: %s queries=%" PRIu64 "%s",
		       dk_transport_name((unsigned)tr), V(query.queries[tr]), line);
	}
	char to[256];
	size_t off = 0;
	for (unsigned i = 0; i < DK_UP_COUNTED; i++)
		off += (size_t)snprintf(to + off, sizeof(to) - off, "%s%" PRIu64, i ? "," : "",
		                        V(up.timeouts[i]));
	dk_log(DK_LOG_INFO,
	       "stats: upstream answers=%" PRIu64 " mismatched=%" PRIu64 " timeouts=[%s]"
	       " malformed=%" PRIu64 " errors=%" PRIu64 " tc_retries=%" PRIu64
	       " pending_full=%" PRIu64 " udp_send_fail=%" PRIu64 " tcp accepted=%" PRIu64
	       " rejected=%" PRIu64 " slow=%" PRIu64 " cname_blocked=%" PRIu64
	       " cname_alerted=%" PRIu64,
	       V(up.answers), V(up.mismatched), to, V(up.malformed), V(up.errors), V(up.tc_retries),
	       V(query.table_full), V(udp.send_fail), V(tcp.accepted), V(tcp.rejected), V(tcp.slow),
	       V(query.cname_blocked), V(query.cname_alerted));
#undef V
	struct dk_alert_stats as;
	dk_alerter_stats(srv->alerter, &as);
	dk_log(DK_LOG_INFO,
	       "stats: alerts events=%" PRIu64 " emitted=%" PRIu64 " deduplicated=%" PRIu64
	       " lost_ring=%" PRIu64 " lost_sink=%" PRIu64,
	       as.events, as.emitted, as.deduplicated, as.lost_ring, as.lost_sink);
}

/*
 * The wall clock, once a second, decides which schedules of the client groups
 * are open; workers read the mask (dk_group_view()). Here and not in the
 * workers: it switches TZ, which only one thread may do (schedule.h).
 */
static void on_sched(uv_timer_t *t)
{
	struct dk_server *srv = t->data;
	struct dk_groups *gs = srv->cur && srv->cur->pol ? srv->cur->pol->groups : NULL;

	if (!gs || !gs->n_sched)
		return;
	uint64_t was = atomic_load_explicit(&gs->open, memory_order_relaxed);
	uint64_t now = dk_groups_tick(gs, (int64_t)(dk_wall_ms() / 1000));
	for (size_t i = 0; i < gs->n && was != now; i++) {
		const struct dk_group *g = &gs->g[i];
		for (unsigned k = 0; k < g->n_sched; k++) {
			unsigned bit = g->sched_first + k;
			if ((was ^ now) >> bit & 1)
				dk_log(DK_LOG_INFO, "group %s: schedule %u %s", g->name, k + 1,
				       now >> bit & 1 ? "opens" : "closes");
		}
	}
}

static void close_main_handles(struct dk_server *srv)
{
	for (unsigned i = 0; i < srv->n_sigs; i++)
		close_handle((uv_handle_t *)&srv->sigs[i]);
	if (srv->asyncs_ready) {
		close_handle((uv_handle_t *)&srv->acked);
		close_handle((uv_handle_t *)&srv->done);
		close_handle((uv_handle_t *)&srv->sched);
	}
	dk_xfr_free(srv->xfr);
	srv->xfr = NULL;
	srv->msrc.xfr = NULL;
	dk_fetch_free(srv->fetch);
	srv->fetch = NULL;
	srv->msrc.fetch = NULL;
}

static void free_workers(struct dk_server *srv)
{
	for (unsigned i = 0; srv->workers && i < srv->n_workers; i++)
		dk_worker_free(srv->workers[i]);
	free(srv->workers);
	srv->workers = NULL;
	srv->n_workers = 0;
}

static void on_done(uv_async_t *a)
{
	struct dk_server *srv = a->data;

	if (atomic_load(&srv->n_done) < srv->n_workers)
		return;
	dk_metrics_close(srv->metrics);
	log_counters(srv);
	free_workers(srv);
	dk_control_close(srv->control);
	dk_activity_close(srv->act);
	dk_alerter_close(srv->alerter);
	close_main_handles(srv);
}

/* A transfer or a download wrote a new copy of a feed: load it as SIGHUP would. */
static void feed_changed(struct dk_server *srv, const char *what)
{
	if (srv->stopping)
		return;
	dk_log(DK_LOG_INFO, "%s, reloading", what);
	if (srv->reloading)
		srv->reload_again = true;
	else
		reload(srv, NULL, 0);
}

static void xfr_changed(void *ctx)
{
	feed_changed(ctx, "rpz: a zone changed by transfer");
}

static void fetch_changed(void *ctx)
{
	feed_changed(ctx, "list: a list on a URL changed");
}

static void server_stop(struct dk_server *srv)
{
	if (srv->stopping)
		return;
	srv->stopping = true;
	dk_xfr_stop(srv->xfr);
	dk_fetch_stop(srv->fetch);
	dk_log(DK_LOG_INFO, "stopping: finishing queries in flight (at most %d ms)", DK_GRACE_MS);
	/* No more requests; the socket file goes now, while we may still remove it. */
	dk_control_close(srv->control);
	for (unsigned i = 0; i < srv->n_workers; i++)
		dk_worker_stop(srv->workers[i]);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct dk_server *srv = h->data;

	switch (signum) {
	case SIGHUP:
		if (srv->stopping)
			break;
		dk_log(DK_LOG_INFO, "SIGHUP: reloading %s", srv->config_path);
		if (srv->reloading)
			srv->reload_again = true;
		else
			reload(srv, NULL, 0);
		break;
	case SIGUSR1: dk_alerter_reopen(srv->alerter); break;
	default: server_stop(srv); break;
	}
}

/* After binding: the listeners may need privileges, nothing afterwards does. */
static int drop_privileges(const char *user)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	int rc = getpwnam_r(user, &pw, buf, sizeof(buf), &res);
	if (rc != 0 || !res) {
		dk_log(DK_LOG_ERR, "user %s: %s", user, rc ? strerror(rc) : "no such user");
		return rc ? -rc : -ENOENT;
	}
	if (initgroups(pw.pw_name, pw.pw_gid) < 0 || setgid(pw.pw_gid) < 0 ||
	    setuid(pw.pw_uid) < 0) {
		rc = -errno;
		dk_log(DK_LOG_ERR, "cannot switch to user %s: %s", user, strerror(errno));
		return rc;
	}
	dk_log(DK_LOG_INFO, "running as user %s (uid %u)", user, (unsigned)pw.pw_uid);
	return 0;
}

static unsigned worker_count(const struct dk_server *srv)
{
	unsigned n = srv->opts->workers ? srv->opts->workers : srv->cur->cfg->workers;
	if (n == 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		n = cpus > 0 ? (unsigned)cpus : 1;
	}
	return n > DK_WORKERS_MAX ? DK_WORKERS_MAX : n;
}

static int metrics_start(struct dk_server *srv)
{
	const struct dk_config *cfg = srv->cur->cfg;
	char addr[64];

	dk_addr_format(&cfg->metrics, addr, sizeof(addr));
	if (dk_dashboard_new(&srv->msrc, srv->act, &srv->dash) < 0)
		return -ENOMEM;
	srv->msrc.http = dk_dashboard_http;
	srv->msrc.http_ctx = srv->dash;
	int rc = dk_metrics_new(&srv->loop, &cfg->metrics, &srv->msrc, &srv->metrics);
	if (rc < 0) {
		dk_log(DK_LOG_ERR, "metrics: cannot listen on %s: %s", addr, dk_strerror(rc));
		return rc;
	}
	dk_log(DK_LOG_INFO, "metrics: http://%s/metrics, dashboard: http://%s/", addr, addr);
	return 0;
}

static int control_start(struct dk_server *srv)
{
	const char *path = srv->cur->cfg->control_socket;
	const struct dk_control_env env = {
	        .src = &srv->msrc,
	        .workers = srv->workers,
	        .act = srv->act,
	        .config_path = srv->config_path,
	        .reload = ctl_reload,
	        .ctx = srv,
	};
	const char *why;
	int rc = dk_control_new(&srv->loop, path, &env, &srv->control, &why);

	if (rc < 0) {
		dk_log(DK_LOG_ERR, "control socket %s: %s%s%s", path, dk_strerror(rc),
		       *why ? ": " : "", why);
		return rc;
	}
	dk_log(DK_LOG_INFO, "control: %s (dnsink ctl)", path);
	return 0;
}

static int server_start(struct dk_server *srv)
{
	const struct dk_config *cfg = srv->cur->cfg;
	const struct dk_worker_hooks hooks = {
	        .took = worker_took, .ended = worker_ended, .notify = worker_notify, .ctx = srv};
	struct dk_diag diag = {0};
	char msg[1100];
	int rc;

	for (size_t i = 0; i < cfg->n_listen; i++) {
		rc = dk_socket_probe_free(&cfg->listen[i]);
		if (rc < 0) {
			char addr[64];
			dk_addr_format(&cfg->listen[i], addr, sizeof(addr));
			dk_log(DK_LOG_ERR, "cannot listen on %s: %s", addr, dk_strerror(rc));
			return rc;
		}
	}
	unsigned n = worker_count(srv);
	rc = dk_alerter_new(&srv->loop, cfg, n, &srv->alerter, &diag);
	if (rc < 0) {
		dk_diag_format(&diag, msg, sizeof(msg));
		dk_log(DK_LOG_ERR, "alerts: %s", msg);
		return rc;
	}
	rc = dk_dnstap_new(cfg, n, &srv->dnstap);
	if (rc < 0)
		return rc;
	srv->workers = calloc(n, sizeof(*srv->workers));
	if (!srv->workers)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		rc = dk_worker_new(i, n, srv->cur, dk_wstats_new(srv->stats), srv->alerter,
		                   srv->dnstap, &hooks, &srv->workers[i]);
		if (srv->workers[i])
			srv->n_workers++;
		if (rc < 0)
			return rc;
	}
	/* What the metrics, the activity and the control socket read. */
	srv->msrc.workers = (const struct dk_worker *const *)srv->workers;
	srv->msrc.n_workers = srv->n_workers;
	srv->msrc.alerter = srv->alerter;
	/* Before the switch of user: the control socket's directory may be root's. */
	if (cfg->metrics_enabled || cfg->control_socket) {
		struct dk_alert_observer obs;
		rc = dk_activity_new(&srv->loop, &srv->msrc, &srv->act);
		if (rc < 0)
			return rc;
		dk_activity_observer(srv->act, &obs);
		dk_alerter_observe(srv->alerter, &obs);
	}
	if (cfg->control_socket) {
		rc = control_start(srv);
		if (rc < 0)
			return rc;
	}
	if (cfg->user) {
		rc = drop_privileges(cfg->user);
		if (rc < 0)
			return rc;
	}
	for (unsigned i = 0; i < srv->n_workers; i++) {
		rc = dk_worker_start(srv->workers[i]);
		if (rc < 0)
			return rc;
	}
	if (cfg->metrics_enabled) {
		rc = metrics_start(srv);
		if (rc < 0)
			return rc;
	}
	size_t cap = dk_worker_capacity(srv->workers[0]);
	log_addrs("listening (udp+tcp)", cfg->listen, cfg->n_listen);
	if (cfg->n_listen_tls)
		log_addrs("listening (tls)", cfg->listen_tls, cfg->n_listen_tls);
	if (cfg->n_listen_https)
		log_addrs("listening (https, /dns-query)", cfg->listen_https, cfg->n_listen_https);
	log_upstreams(cfg->upstreams_from_resolv ? "upstreams (from resolv.conf)" : "upstreams",
	              cfg);
	dk_log(DK_LOG_INFO, "%u workers, %zu queries in flight each, upstream timeout %u ms",
	       srv->n_workers, cap, cfg->upstream_timeout_ms);
	if (cfg->rate_limit.qps)
		dk_log(DK_LOG_INFO,
		       "rate_limit: %u queries/s per client (burst %u, IPv4 /%u, IPv6 /%u), "
		       "then %s; %zu clients per worker",
		       cfg->rate_limit.qps, cfg->rate_limit.burst, cfg->rate_limit.ipv4_prefix,
		       cfg->rate_limit.ipv6_prefix,
		       cfg->rate_limit.action == DK_RATELIMIT_DROP ? "drop" : "REFUSED",
		       dk_worker_ratelimit_size(srv->workers[0]));
	if (cap < cfg->max_inflight)
		dk_log(DK_LOG_WARN,
		       "max_inflight %zu lowered to %zu: upstream IDs must stay sparse",
		       cfg->max_inflight, cap);
	return 0;
}

int dk_server_main(const char *config_path, const struct dk_run_opts *opts)
{
	static const int signums[] = {SIGHUP, SIGTERM, SIGINT, SIGUSR1};
	struct dk_server *srv = calloc(1, sizeof(*srv));
	int rc;

	if (!srv)
		return 1;
	dk_log_open();
	srv->config_path = config_path;
	srv->opts = opts;
	srv->status = 1;
	/* A client that goes away mid-write must not kill the resolver. */
	signal(SIGPIPE, SIG_IGN);
	srv->stats = dk_stats_reg_new();
	if (!srv->stats || snapshot_load(srv, &srv->cur, NULL, 0) < 0) {
		dk_stats_reg_free(srv->stats);
		free(srv);
		dk_log_close();
		return 1;
	}
	note_load(srv, true);
	rc = uv_loop_init(&srv->loop);
	if (rc < 0) {
		dk_snapshot_free(srv->cur);
		dk_stats_reg_free(srv->stats);
		free(srv);
		return 1;
	}
	uv_async_init(&srv->loop, &srv->acked, on_acked);
	uv_async_init(&srv->loop, &srv->done, on_done);
	srv->acked.data = srv->done.data = srv;
	uv_timer_init(&srv->loop, &srv->sched);
	srv->sched.data = srv;
	uv_timer_start(&srv->sched, on_sched, 1000, 1000);
	srv->asyncs_ready = true;
	for (size_t i = 0; i < DK_ARRAY_SIZE(signums); i++) {
		uv_signal_init(&srv->loop, &srv->sigs[i]);
		srv->sigs[i].data = srv;
		srv->n_sigs++;
		uv_signal_start(&srv->sigs[i], on_signal, signums[i]);
	}

	/* Before the workers: they hand NOTIFYs to it. */
	rc = dk_xfr_new(&srv->loop, xfr_changed, srv, &srv->xfr);
	if (rc < 0)
		dk_log(DK_LOG_ERR, "rpz: zone transfers cannot start: %s", dk_strerror(rc));
	if (srv->xfr && rc == 0) {
		srv->msrc.xfr = srv->xfr;
		dk_xfr_update(srv->xfr, srv->cur->pol);
	}
	rc = dk_fetch_new(&srv->loop, fetch_changed, srv, &srv->fetch);
	if (rc < 0)
		dk_log(DK_LOG_ERR, "list: downloads cannot start: %s", dk_strerror(rc));
	if (srv->fetch && rc == 0) {
		srv->msrc.fetch = srv->fetch;
		dk_fetch_update(srv->fetch, srv->cur->pol);
	}
	rc = server_start(srv);
	if (rc == 0) {
		uv_run(&srv->loop, UV_RUN_DEFAULT);
		srv->status = 0;
	} else {
		/* A failed start: the workers go first (stopped or never run), then the rest. */
		free_workers(srv);
		if (srv->alerter)
			dk_alerter_close(srv->alerter);
		dk_metrics_close(srv->metrics);
		dk_control_close(srv->control);
		dk_activity_close(srv->act);
		close_main_handles(srv);
		uv_run(&srv->loop, UV_RUN_DEFAULT);
	}
	dk_alerter_free(srv->alerter);
	/* After the workers: no queue is written to any more; what is queued goes out. */
	dk_dnstap_free(srv->dnstap);
	dk_metrics_free(srv->metrics);
	dk_control_free(srv->control);
	dk_dashboard_free(srv->dash);
	dk_activity_free(srv->act);
	/*
	 * syslog(3) is process-wide and the alerter's openlog() may have left an
	 * ident pointing into the alerter just freed: open ours again.
	 */
	dk_log_close();
	dk_log_open();
	if (uv_loop_close(&srv->loop) != 0) {
		dk_log(DK_LOG_ERR, "main loop closed with handles open");
		srv->status = 1;
	}
	dk_snapshot_free(srv->old);
	dk_snapshot_free(srv->cur);
	dk_stats_reg_free(srv->stats);
	free(srv->workers);
	int status = srv->status;
	if (status == 0)
		dk_log(DK_LOG_INFO, "stopped");
	free(srv);
	dk_log_close();
	return status;
}
