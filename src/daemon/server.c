/* SPDX-License-Identifier: MIT */
/*
 * The resolver: a control loop on the main thread and N worker threads.
 *
 * The main loop owns signals (SIGHUP reload, SIGTERM/SIGINT stop, SIGUSR1
 * reopen the alert file), the alerter, and the snapshots of config and
 * policy. It loads them at start and on reload, hands a new snapshot to every
 * worker through its uv_async, and frees the old one once every worker has
 * switched and the alert rings are drained. Each worker runs its own loop with
 * its own SO_REUSEPORT listeners, upstream sockets and pending table, so
 * workers share nothing but the read-only snapshot and their alert rings.
 *
 * dk__worker_query() is the per-query decision: parse, access list, policy,
 * then a local answer or the upstream. It never allocates.
 */
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alert_sink.h"
#include "log.h"
#include "metrics.h"
#include "server.h"
#include "server_internal.h"

struct dk_server {
	uv_loop_t loop;
	const char *config_path;
	const struct dk_run_opts *opts;
	struct dk_snapshot *cur; /**< the snapshot workers are given */
	struct dk_snapshot *old; /**< replaced, freed when every worker switched */
	struct dk_alerter *alerter;
	struct dk_metrics *metrics; /**< NULL: endpoint off */
	struct dk_metrics_src msrc; /**< what the endpoint reads */
	struct dk_worker *workers;
	unsigned n_workers;
	struct dk_stats_reg *stats; /**< counter slots of rules and upstreams */
	uv_signal_t sigs[4];
	unsigned n_sigs;
	uv_async_t acked; /**< a worker took the new snapshot */
	uv_async_t done;  /**< a worker's loop ended */
	bool asyncs_ready;
	atomic_uint acks;
	atomic_uint n_done;
	bool reloading;
	bool reload_again;
	bool stopping;
	int status;
};

/* Query handling, on a worker thread. */

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Records the time and result of a load for the metrics endpoint (main thread). */
static void note_load(struct dk_server *srv, bool ok)
{
	srv->msrc.reload_time = (double)wall_ms() / 1000.0;
	srv->msrc.reload_ok = ok;
	if (ok)
		srv->msrc.snap = srv->cur;
}

void dk__client_reply(struct dk_worker *w, const struct dk_client *cl, const uint8_t *ans,
                      size_t len)
{
	if (cl->transport == DK_TRANSPORT_UDP)
		dk__udp_reply(w, cl->udp, &cl->peer, ans, len);
	else
		dk__tcp_reply(w, cl->conn, ans, len);
}

void dk__client_done(struct dk_worker *w, const struct dk_client *cl)
{
	if (cl->transport == DK_TRANSPORT_TCP)
		dk__tcp_query_done(w, cl->conn);
}

void dk__client_error(struct dk_worker *w, const struct dk_client *cl, const uint8_t *pkt,
                      const struct dk_query *q, uint8_t rcode, uint16_t ede)
{
	int n = dk_msg_write_error(pkt, q, rcode, ede, w->txbuf, DK_LOCAL_MAX);
	if (n < 0) {
		w->ctr.out[cl->transport][DK_OUT_DROPPED]++;
		return;
	}
	dk__client_reply(w, cl, w->txbuf, (size_t)n);
}

void dk__worker_alert(struct dk_worker *w, const struct dk_client *cl, const struct dk_query *q,
                      const struct dk_verdict *v, uint8_t rcode, const uint8_t *target,
                      size_t target_len)
{
	struct dk_alert_event ev;

	ev.time_ms = wall_ms();
	ev.mono_ns = uv_hrtime();
	ev.rule = v->rule;
	ev.policy = w->snap->pol;
	ev.family = (uint8_t)cl->peer.sa.sa_family;
	ev.transport = cl->transport;
	ev.action = (uint8_t)v->rule->action;
	ev.rcode = rcode;
	ev.qtype = q->qtype;
	memset(ev.addr, 0, sizeof(ev.addr));
	if (cl->peer.sa.sa_family == AF_INET) {
		memcpy(ev.addr, &cl->peer.in4.sin_addr, 4);
		ev.port = ntohs(cl->peer.in4.sin_port);
	} else {
		memcpy(ev.addr, &cl->peer.in6.sin6_addr, 16);
		ev.port = ntohs(cl->peer.in6.sin6_port);
	}
	ev.qname_len = q->qname_len;
	memcpy(ev.qname, q->qname, q->qname_len);
	ev.matched_off = v->matched_off;
	ev.wildcard = v->wildcard;
	ev.target_len = (uint8_t)target_len;
	if (target_len)
		memcpy(ev.target, target, target_len);
	dk_alerter_post(w->srv->alerter, w->index, &ev);
}

void dk__worker_query(struct dk_worker *w, const struct dk_client *cl, const uint8_t *pkt,
                      size_t len)
{
	const struct dk_snapshot *snap = w->snap;
	const struct dk_config *cfg = snap->cfg;
	struct dk_query q;

	w->ctr.queries[cl->transport]++;
	/*
	 * Before parsing: a flood costs as little as possible, whatever it holds.
	 * uv_now() is the loop's cached clock, read once per loop iteration.
	 */
	bool limited = false;
	if (w->rl) {
		const struct dk_ratelimit_limits lim = {
		        .qps = cfg->rate_limit.qps,
		        .burst = cfg->rate_limit.burst,
		        .ipv4_prefix = (uint8_t)cfg->rate_limit.ipv4_prefix,
		        .ipv6_prefix = (uint8_t)cfg->rate_limit.ipv6_prefix,
		};
		limited = !dk_ratelimit_allow(w->rl, &cl->peer.sa, uv_now(&w->loop), &lim);
		if (limited) {
			w->ctr.out[cl->transport][DK_OUT_RATELIMITED]++;
			if (cfg->rate_limit.action == DK_RATELIMIT_DROP)
				return;
		}
	}
	int rc = dk_msg_parse_query(pkt, len, &q);
	if (limited) {
		/* REFUSED only to what can be answered; never to a response (reflection). */
		if (rc == 0 || rc == DK_EFORMERR || rc == DK_ENOTIMP || rc == DK_EBADVERS)
			dk__client_error(w, cl, pkt, &q, 5, 0);
		return;
	}
	if (rc != 0) {
		uint8_t rcode;
		switch (rc) {
		case DK_EFORMERR:
			rcode = 1;
			w->ctr.out[cl->transport][DK_OUT_FORMERR]++;
			break;
		case DK_ENOTIMP:
			rcode = 4;
			w->ctr.out[cl->transport][DK_OUT_NOTIMP]++;
			break;
		case DK_EBADVERS:
			rcode = 16;
			w->ctr.out[cl->transport][DK_OUT_BADVERS]++;
			break;
		default:
			/* No header, or a response: never answer (no reflection). */
			w->ctr.out[cl->transport][DK_OUT_DROPPED]++;
			return;
		}
		dk__client_error(w, cl, pkt, &q, rcode, 0);
		return;
	}
	if (!dk_acl_allows(cfg->allow, cfg->n_allow, &cl->peer.sa)) {
		w->ctr.out[cl->transport][DK_OUT_ACL_REFUSED]++;
		dk__client_error(w, cl, pkt, &q, 5, DK_EDE_PROHIBITED);
		return;
	}

	struct dk_verdict v = {0};
	if (snap->pol && dk_policy_match(snap->pol, q.qname, q.qname_len, &v)) {
		const struct dk_rule *r = v.rule;
		int n = 0;
		uint8_t rcode = 0;
		dk__rule_hit(w, r->index);
		switch (r->action) {
		case DK_ACTION_SINKHOLE:
			w->ctr.out[cl->transport][DK_OUT_SINKHOLED]++;
			n = dk_msg_write_sinkhole(pkt, &q, &cfg->sinkhole, DK_EDE_BLOCKED, w->txbuf,
			                          DK_LOCAL_MAX);
			break;
		case DK_ACTION_NXDOMAIN:
		case DK_ACTION_REFUSED: {
			bool nx = r->action == DK_ACTION_NXDOMAIN;
			w->ctr.out[cl->transport][nx ? DK_OUT_NXDOMAIN : DK_OUT_REFUSED]++;
			rcode = nx ? 3 : 5;
			n = dk_msg_write_error(pkt, &q, rcode, DK_EDE_BLOCKED, w->txbuf,
			                       DK_LOCAL_MAX);
			break;
		}
		case DK_ACTION_ALERT:
		case DK_ACTION_ALLOW: n = -1; break;
		}
		if (r->alert && r->action != DK_ACTION_ALLOW)
			dk__worker_alert(w, cl, &q, &v, rcode, NULL, 0);
		if (n > 0) {
			dk__client_reply(w, cl, w->txbuf, (size_t)n);
			return;
		}
		if (n == DK_ESPACE) {
			w->ctr.out[cl->transport][DK_OUT_DROPPED]++;
			return;
		}
	}

	/* Held first: a forward that fails synchronously releases it again. */
	if (cl->transport == DK_TRANSPORT_TCP)
		dk__tcp_query_hold(cl->conn);
	rc = dk__upstream_forward(w, cl, pkt, len, &q);
	if (rc < 0) {
		w->ctr.out[cl->transport][DK_OUT_SERVFAIL]++;
		dk__client_error(w, cl, pkt, &q, 2, 0);
		dk__client_done(w, cl);
	}
}

/* Sockets. */

int dk__socket_bound(const struct dk_addr *a, int type, bool reuseport)
{
	int one = 1;
	int fam = a->sa.sa_family;
	socklen_t len = fam == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	int fd = socket(fam, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	if (fam == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, &a->sa, len) < 0)
		goto fail;
	return fd;
fail:;
	int err = -errno;
	close(fd);
	return err;
}

/*
 * SO_REUSEPORT lets another process of the same user share our port
 * silently; a plain bind first makes "address in use" an error at start.
 */
static int probe_free(const struct dk_addr *a)
{
	int types[2] = {SOCK_DGRAM, SOCK_STREAM};

	for (int i = 0; i < 2; i++) {
		int fd = dk__socket_bound(a, types[i], false);
		if (fd < 0)
			return fd;
		close(fd);
	}
	return 0;
}

/* Worker lifecycle. */

static void close_handle(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/*
 * Stopping keeps the UDP sockets open but deaf, so answers to queries in
 * flight can still leave through them; finishing closes them.
 */
static void close_listeners(struct dk_worker *w, bool udp_too)
{
	for (size_t i = 0; i < w->n_udp; i++) {
		if (!w->udp[i].w)
			continue;
		if (udp_too)
			close_handle((uv_handle_t *)&w->udp[i].h);
		else
			uv_udp_recv_stop(&w->udp[i].h);
	}
	for (size_t i = 0; i < w->n_tcp; i++)
		if (w->tcp[i].w)
			close_handle((uv_handle_t *)&w->tcp[i].h);
}

/* Closes every handle of @p w; its loop then ends. */
static void worker_finish(struct dk_worker *w)
{
	if (w->finished)
		return;
	w->finished = true;
	/* Workers are calloc'ed: a handle that was never initialized has no loop. */
	if (w->wake.loop)
		close_handle((uv_handle_t *)&w->wake);
	if (w->grace_init)
		close_handle((uv_handle_t *)&w->grace);
	if (w->flush_init) {
		dk__upstream_flush(w);
		dk__udp_flush(w);
		close_handle((uv_handle_t *)&w->flush);
		close_handle((uv_handle_t *)&w->flush_pre);
	}
	close_listeners(w, true);
	dk__tcp_close_all(w);
	dk__upstream_close(w);
}

void dk__worker_idle(struct dk_worker *w)
{
	worker_finish(w);
}

static void grace_over(uv_timer_t *t)
{
	struct dk_worker *w = t->data;

	if (dk__upstream_inflight(w))
		dk_log(DK_LOG_WARN, "worker %u: %zu queries still in flight after %d ms, dropped",
		       w->index, dk__upstream_inflight(w), DK_GRACE_MS);
	worker_finish(w);
}

static void worker_stop(struct dk_worker *w)
{
	w->stopping = true;
	close_listeners(w, false);
	dk__tcp_stop(w);
	if (dk__upstream_inflight(w) == 0) {
		worker_finish(w);
		return;
	}
	uv_timer_start(&w->grace, grace_over, DK_GRACE_MS, 0);
}

/*
 * Makes the worker's bucket table fit its snapshot: made when rate_limit is
 * turned on (at start or by a reload), remade when its size changes, freed
 * when it is turned off. Not on the query path: once per snapshot.
 */
static void worker_ratelimit_update(struct dk_worker *w)
{
	const struct dk_config *cfg = w->snap->cfg;

	if (!cfg->rate_limit.qps) {
		dk_ratelimit_free(w->rl);
		w->rl = NULL;
		return;
	}
	if (w->rl && w->rl_table_size == cfg->rate_limit.table_size)
		return;
	struct dk_ratelimit *rl;
	if (dk_ratelimit_new(cfg->rate_limit.table_size, &rl) < 0) {
		dk_log(DK_LOG_ERR, "worker %u: rate_limit: out of memory for %zu buckets%s",
		       w->index, cfg->rate_limit.table_size,
		       w->rl ? ", keeping the old table" : ", not limiting");
		return;
	}
	dk_ratelimit_free(w->rl);
	w->rl = rl;
	w->rl_table_size = cfg->rate_limit.table_size;
}

static void worker_wake(uv_async_t *a)
{
	struct dk_worker *w = a->data;
	struct dk_server *srv = w->srv;
	struct dk_snapshot *s = atomic_exchange(&w->next, NULL);

	if (s) {
		w->snap = s;
		worker_ratelimit_update(w);
		dk__wstats_adopt(w, s);
		atomic_fetch_add(&srv->acks, 1);
		uv_async_send(&srv->acked);
	}
	if (atomic_load(&w->stop) && !w->stopping)
		worker_stop(w);
}

static void worker_run(void *arg)
{
	struct dk_worker *w = arg;
	struct dk_server *srv = w->srv;
	char name[16];

	/* Shown by top -H and ps -L; the allocation-count test also keys on it. */
	snprintf(name, sizeof(name), "dnsink-w%u", w->index);
	pthread_setname_np(pthread_self(), name);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	atomic_fetch_add(&srv->n_done, 1);
	uv_async_send(&srv->done);
}

/* Frees a worker whose loop has ended (or never ran). */
static void worker_deinit(struct dk_worker *w)
{
	if (w->loop_ready) {
		int rc = uv_loop_close(&w->loop);
		if (rc != 0)
			dk_log(DK_LOG_ERR, "worker %u: loop closed with handles open: %s", w->index,
			       uv_strerror(rc));
	}
	dk__tcp_free_all(w);
	dk__upstream_free(w);
	free(w->udp);
	free(w->tcp);
	free(w->rxbuf);
	free(w->outbuf);
	dk_ratelimit_free(w->rl);
	w->rl = NULL;
	free(atomic_load(&w->stats));
	atomic_store(&w->stats, NULL);
}

/* Undoes a partial worker_init(): closes its handles and runs its loop until they are. */
static void worker_abort(struct dk_worker *w)
{
	if (!w->loop_ready)
		return;
	worker_finish(w);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	worker_deinit(w);
}

static int worker_init(struct dk_server *srv, struct dk_worker *w, unsigned index)
{
	const struct dk_config *cfg = srv->cur->cfg;
	char addr[64];
	int rc;

	w->srv = srv;
	w->index = index;
	w->snap = srv->cur;
	atomic_init(&w->next, NULL);
	atomic_init(&w->stop, false);
	rc = uv_loop_init(&w->loop);
	if (rc < 0)
		return rc;
	w->loop_ready = true;
	rc = uv_async_init(&w->loop, &w->wake, worker_wake);
	if (rc < 0)
		return rc;
	w->wake.data = w;
	uv_timer_init(&w->loop, &w->grace);
	w->grace.data = w;
	w->grace_init = true;

	rc = dk__udp_batch_init(w);
	if (rc < 0)
		return rc;
	worker_ratelimit_update(w);
	if (cfg->rate_limit.qps && !w->rl)
		return -ENOMEM;
	w->rxbuf = malloc(DK_RXBUF_SIZE);
	w->udp = calloc(cfg->n_listen, sizeof(*w->udp));
	w->tcp = calloc(cfg->n_listen, sizeof(*w->tcp));
	atomic_init(&w->stats, dk__wstats_new(srv->stats));
	if (!w->rxbuf || (cfg->n_listen && (!w->udp || !w->tcp)) || !atomic_load(&w->stats))
		return -ENOMEM;
	w->n_udp = w->n_tcp = cfg->n_listen;
	for (size_t i = 0; i < cfg->n_listen; i++) {
		rc = dk__udp_listen(w, &w->udp[i], &cfg->listen[i]);
		if (rc == 0)
			rc = dk__tcp_listen(w, &w->tcp[i], &cfg->listen[i]);
		if (rc < 0) {
			dk_addr_format(&cfg->listen[i], addr, sizeof(addr));
			dk_log(DK_LOG_ERR, "cannot listen on %s: %s", addr, dk_strerror(rc));
			return rc;
		}
	}
	rc = dk__upstream_init(w, cfg->max_inflight);
	if (rc < 0)
		dk_log(DK_LOG_ERR, "worker %u: upstream sockets: %s", index, dk_strerror(rc));
	return rc;
}

/* Snapshots, on the main thread. */

static void snapshot_free(struct dk_snapshot *s)
{
	if (!s)
		return;
	dk__stats_release(s);
	free(s->grow);
	free(s->rule_slot);
	free(s->up_slot);
	dk_policy_unref(s->pol);
	dk_config_free(s->cfg);
	free(s);
}

static int override_addr(const char *text, struct dk_addr **list, size_t *n, struct dk_diag *d,
                         const char *what)
{
	struct dk_addr a;

	if (dk_addr_parse(text, 53, &a) < 0) {
		dk_diag_set(d, NULL, 0, "--%s: not an address: %s", what, text);
		return DK_ESYNTAX;
	}
	struct dk_addr *one = malloc(sizeof(*one));
	if (!one)
		return -ENOMEM;
	*one = a;
	free(*list);
	*list = one;
	*n = 1;
	return 0;
}

static bool addrs_equal(const struct dk_addr *a, size_t na, const struct dk_addr *b, size_t nb)
{
	char x[64], y[64];

	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++) {
		dk_addr_format(&a[i], x, sizeof(x));
		dk_addr_format(&b[i], y, sizeof(y));
		if (strcmp(x, y) != 0)
			return false;
	}
	return true;
}

static bool listen_has(const struct dk_config *cfg, const struct dk_addr *a)
{
	for (size_t i = 0; i < cfg->n_listen; i++)
		if (addrs_equal(&cfg->listen[i], 1, a, 1))
			return true;
	return false;
}

static int snapshot_load(struct dk_server *srv, struct dk_snapshot **out)
{
	struct dk_diag diag = {0};
	char msg[1100];
	uint64_t t0 = uv_hrtime();
	const struct dk_run_opts *o = srv->opts;
	struct dk_snapshot *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	rc = dk_config_load(srv->config_path, NULL, &s->cfg, &diag);
	if (rc < 0)
		goto fail;
	if (o->listen) {
		rc = override_addr(o->listen, &s->cfg->listen, &s->cfg->n_listen, &diag, "listen");
		if (rc < 0)
			goto fail;
	}
	if (o->upstream) {
		rc = override_addr(o->upstream, &s->cfg->upstreams, &s->cfg->n_upstreams, &diag,
		                   "upstream");
		if (rc < 0)
			goto fail;
		s->cfg->upstreams_from_resolv = false;
	}
	if (s->cfg->n_upstreams == 0) {
		dk_diag_set(&diag, srv->config_path, 0, "no upstreams configured or found");
		rc = DK_ESCHEMA;
		goto fail;
	}
	for (size_t i = 0; i < s->cfg->n_upstreams; i++) {
		if (listen_has(s->cfg, &s->cfg->upstreams[i])) {
			char a[64];
			dk_addr_format(&s->cfg->upstreams[i], a, sizeof(a));
			dk_diag_set(&diag, srv->config_path, 0,
			            "upstream %s is one of our own listeners (a loop)", a);
			rc = DK_ESCHEMA;
			goto fail;
		}
	}
	if (s->cfg->n_rules || srv->opts->blocklist) {
		rc = dk_policy_load_with_list((const char *const *)s->cfg->rules, s->cfg->n_rules,
		                              srv->opts->blocklist, 0, &s->pol, &diag);
		if (rc < 0)
			goto fail;
	}
	rc = dk__stats_prepare(srv->stats, s, srv->workers, srv->n_workers);
	if (rc < 0)
		goto fail;
	double ms = (double)(uv_hrtime() - t0) / 1e6;
	if (s->pol)
		dk_log(DK_LOG_INFO,
		       "loaded %s: %zu rules, %zu entries (%zu names, %zu invalid lines) in %.1f "
		       "ms",
		       srv->config_path, s->pol->n_rules, s->pol->n_entries, s->pol->n_names,
		       s->pol->n_invalid, ms);
	else
		dk_log(DK_LOG_INFO, "loaded %s: no rules in %.1f ms", srv->config_path, ms);
	*out = s;
	return 0;
fail:
	if (!diag.msg[0])
		dk_diag_set(&diag, srv->config_path, 0, "%s", dk_strerror(rc));
	dk_diag_format(&diag, msg, sizeof(msg));
	dk_log(DK_LOG_ERR, "%s", msg);
	snapshot_free(s);
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

static void reload(struct dk_server *srv)
{
	struct dk_snapshot *s;

	if (snapshot_load(srv, &s) < 0) {
		dk_log(DK_LOG_ERR, "reload failed: keeping the configuration and rules in force");
		note_load(srv, false);
		return;
	}
	const struct dk_config *old = srv->cur->cfg;
	if (!addrs_equal(old->listen, old->n_listen, s->cfg->listen, s->cfg->n_listen))
		dk_log(DK_LOG_WARN, "reload: \"listen\" changed; restart to apply it "
		                    "(still listening on the old addresses)");
	if (s->cfg->workers != old->workers || s->cfg->max_inflight != old->max_inflight)
		dk_log(DK_LOG_WARN,
		       "reload: \"workers\"/\"max_inflight\" changed; restart to apply");
	int rc = dk_alerter_reconfigure(srv->alerter, s->cfg);
	if (rc < 0)
		dk_log(DK_LOG_WARN, "reload: alert sinks: %s", dk_strerror(rc));
	srv->old = srv->cur;
	srv->cur = s;
	note_load(srv, true);
	srv->reloading = true;
	atomic_store(&srv->acks, 0);
	for (unsigned i = 0; i < srv->n_workers; i++) {
		atomic_store(&srv->workers[i].next, s);
		uv_async_send(&srv->workers[i].wake);
	}
}

static void on_acked(uv_async_t *a)
{
	struct dk_server *srv = a->data;

	if (!srv->reloading || atomic_load(&srv->acks) < srv->n_workers)
		return;
	srv->reloading = false;
	/* Events in the rings may point into the old policy: drain them first. */
	dk_alerter_drain(srv->alerter);
	snapshot_free(srv->old);
	srv->old = NULL;
	/* Every worker switched: the counter blocks they left can go. */
	dk__stats_release(srv->cur);
	log_addrs("reloaded; upstreams", srv->cur->cfg->upstreams, srv->cur->cfg->n_upstreams);
	if (srv->reload_again && !srv->stopping) {
		srv->reload_again = false;
		reload(srv);
	}
}

static void log_counters(struct dk_server *srv)
{
	struct dk_counters t = {0};

	for (unsigned i = 0; i < srv->n_workers; i++) {
		const struct dk_counters *c = &srv->workers[i].ctr;
		const uint64_t *src = (const uint64_t *)c;
		uint64_t *dst = (uint64_t *)&t;
		for (size_t k = 0; k < sizeof(t) / sizeof(uint64_t); k++)
			dst[k] += src[k];
	}
	static const char *const out_names[DK_OUT_MAX] = {
	        "forwarded", "sinkholed", "nxdomain", "refused", "acl_refused", "servfail",
	        "formerr",   "notimp",    "badvers",  "dropped", "ratelimited",
	};
	static const char *const tr_names[2] = {"udp", "tcp"};
	for (int tr = 0; tr < 2; tr++) {
		char line[512];
		size_t off = 0;
		for (int o = 0; o < DK_OUT_MAX; o++)
			off += (size_t)snprintf(line + off, sizeof(line) - off, " %s=%" PRIu64,
			                        out_names[o], t.out[tr][o]);
		dk_log(DK_LOG_INFO, "stats: %s queries=%" PRIu64 "%s", tr_names[tr], t.queries[tr],
		       line);
	}
	char to[256];
	size_t off = 0;
	for (unsigned i = 0; i < DK_UP_COUNTED; i++)
		off += (size_t)snprintf(to + off, sizeof(to) - off, "%s%" PRIu64, i ? "," : "",
		                        t.timeouts[i]);
	dk_log(DK_LOG_INFO,
	       "stats: upstream answers=%" PRIu64 " mismatched=%" PRIu64 " timeouts=[%s]"
	       " malformed=%" PRIu64 " errors=%" PRIu64 " tc_retries=%" PRIu64
	       " pending_full=%" PRIu64 " udp_send_fail=%" PRIu64 " tcp accepted=%" PRIu64
	       " rejected=%" PRIu64 " slow=%" PRIu64 " cname_blocked=%" PRIu64
	       " cname_alerted=%" PRIu64,
	       t.answers, t.mismatched, to, t.malformed, t.up_errors, t.tc_retries,
	       t.pending_full, t.udp_send_fail, t.tcp_accepted, t.tcp_rejected, t.tcp_slow,
	       t.cname_blocked, t.cname_alerted);
	struct dk_alert_stats as;
	dk_alerter_stats(srv->alerter, &as);
	dk_log(DK_LOG_INFO,
	       "stats: alerts events=%" PRIu64 " emitted=%" PRIu64 " deduplicated=%" PRIu64
	       " lost_ring=%" PRIu64 " lost_sink=%" PRIu64,
	       as.events, as.emitted, as.deduplicated, as.lost_ring, as.lost_sink);
}

static void close_main_handles(struct dk_server *srv)
{
	for (unsigned i = 0; i < srv->n_sigs; i++)
		close_handle((uv_handle_t *)&srv->sigs[i]);
	if (srv->asyncs_ready) {
		close_handle((uv_handle_t *)&srv->acked);
		close_handle((uv_handle_t *)&srv->done);
	}
}

static void on_done(uv_async_t *a)
{
	struct dk_server *srv = a->data;

	if (atomic_load(&srv->n_done) < srv->n_workers)
		return;
	for (unsigned i = 0; i < srv->n_workers; i++) {
		struct dk_worker *w = &srv->workers[i];
		if (w->thread_started)
			uv_thread_join(&w->thread);
		w->thread_started = false;
	}
	dk_metrics_close(srv->metrics);
	log_counters(srv);
	for (unsigned i = 0; i < srv->n_workers; i++)
		worker_deinit(&srv->workers[i]);
	dk_alerter_close(srv->alerter);
	close_main_handles(srv);
}

static void server_stop(struct dk_server *srv)
{
	if (srv->stopping)
		return;
	srv->stopping = true;
	dk_log(DK_LOG_INFO, "stopping: finishing queries in flight (at most %d ms)", DK_GRACE_MS);
	for (unsigned i = 0; i < srv->n_workers; i++) {
		atomic_store(&srv->workers[i].stop, true);
		uv_async_send(&srv->workers[i].wake);
	}
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
			reload(srv);
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

static int server_start(struct dk_server *srv)
{
	const struct dk_config *cfg = srv->cur->cfg;
	struct dk_diag diag = {0};
	char msg[1100];
	int rc;

	for (size_t i = 0; i < cfg->n_listen; i++) {
		rc = probe_free(&cfg->listen[i]);
		if (rc < 0) {
			char addr[64];
			dk_addr_format(&cfg->listen[i], addr, sizeof(addr));
			dk_log(DK_LOG_ERR, "cannot listen on %s: %s", addr, dk_strerror(rc));
			return rc;
		}
	}
	srv->n_workers = worker_count(srv);
	rc = dk_alerter_new(&srv->loop, cfg, srv->n_workers, &srv->alerter, &diag);
	if (rc < 0) {
		dk_diag_format(&diag, msg, sizeof(msg));
		dk_log(DK_LOG_ERR, "alerts: %s", msg);
		return rc;
	}
	srv->workers = calloc(srv->n_workers, sizeof(*srv->workers));
	if (!srv->workers)
		return -ENOMEM;
	for (unsigned i = 0; i < srv->n_workers; i++) {
		rc = worker_init(srv, &srv->workers[i], i);
		if (rc < 0)
			return rc;
	}
	if (cfg->user) {
		rc = drop_privileges(cfg->user);
		if (rc < 0)
			return rc;
	}
	for (unsigned i = 0; i < srv->n_workers; i++) {
		struct dk_worker *w = &srv->workers[i];
		rc = uv_thread_create(&w->thread, worker_run, w);
		if (rc < 0) {
			dk_log(DK_LOG_ERR, "cannot start worker %u: %s", i, uv_strerror(rc));
			return rc;
		}
		w->thread_started = true;
	}
	if (cfg->metrics_enabled) {
		char addr[64];
		srv->msrc.workers = srv->workers;
		srv->msrc.n_workers = srv->n_workers;
		srv->msrc.alerter = srv->alerter;
		dk_addr_format(&cfg->metrics, addr, sizeof(addr));
		rc = dk_metrics_new(&srv->loop, &cfg->metrics, &srv->msrc, &srv->metrics);
		if (rc < 0) {
			dk_log(DK_LOG_ERR, "metrics: cannot listen on %s: %s", addr,
			       dk_strerror(rc));
			return rc;
		}
		dk_log(DK_LOG_INFO, "metrics: http://%s/metrics", addr);
	}
	log_addrs("listening (udp+tcp)", cfg->listen, cfg->n_listen);
	log_addrs(cfg->upstreams_from_resolv ? "upstreams (from resolv.conf)" : "upstreams",
	          cfg->upstreams, cfg->n_upstreams);
	dk_log(DK_LOG_INFO, "%u workers, %zu queries in flight each, upstream timeout %u ms",
	       srv->n_workers, srv->workers[0].up.n_slots, cfg->upstream_timeout_ms);
	if (cfg->rate_limit.qps)
		dk_log(DK_LOG_INFO,
		       "rate_limit: %u queries/s per client (burst %u, IPv4 /%u, IPv6 /%u), "
		       "then %s; %zu clients per worker",
		       cfg->rate_limit.qps, cfg->rate_limit.burst, cfg->rate_limit.ipv4_prefix,
		       cfg->rate_limit.ipv6_prefix,
		       cfg->rate_limit.action == DK_RATELIMIT_DROP ? "drop" : "REFUSED",
		       dk_ratelimit_size(srv->workers[0].rl));
	if (srv->workers[0].up.n_slots < cfg->max_inflight)
		dk_log(DK_LOG_WARN,
		       "max_inflight %zu lowered to %zu: upstream IDs must stay sparse",
		       cfg->max_inflight, srv->workers[0].up.n_slots);
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
	srv->stats = dk__stats_reg_new();
	if (!srv->stats || snapshot_load(srv, &srv->cur) < 0) {
		dk__stats_reg_free(srv->stats);
		free(srv);
		dk_log_close();
		return 1;
	}
	note_load(srv, true);
	rc = uv_loop_init(&srv->loop);
	if (rc < 0) {
		snapshot_free(srv->cur);
		dk__stats_reg_free(srv->stats);
		free(srv);
		return 1;
	}
	uv_async_init(&srv->loop, &srv->acked, on_acked);
	uv_async_init(&srv->loop, &srv->done, on_done);
	srv->acked.data = srv->done.data = srv;
	srv->asyncs_ready = true;
	for (size_t i = 0; i < DK_ARRAY_SIZE(signums); i++) {
		uv_signal_init(&srv->loop, &srv->sigs[i]);
		srv->sigs[i].data = srv;
		srv->n_sigs++;
		uv_signal_start(&srv->sigs[i], on_signal, signums[i]);
	}

	rc = server_start(srv);
	if (rc == 0) {
		uv_run(&srv->loop, UV_RUN_DEFAULT);
		srv->status = 0;
	} else {
		/* Workers never started: undo them here, then the alerter and the rest. */
		for (unsigned i = 0; srv->workers && i < srv->n_workers; i++) {
			struct dk_worker *w = &srv->workers[i];
			if (w->thread_started) {
				atomic_store(&w->stop, true);
				uv_async_send(&w->wake);
				uv_thread_join(&w->thread);
				w->thread_started = false;
				worker_deinit(w);
			} else {
				worker_abort(w);
			}
		}
		if (srv->alerter)
			dk_alerter_close(srv->alerter);
		dk_metrics_close(srv->metrics);
		close_main_handles(srv);
		uv_run(&srv->loop, UV_RUN_DEFAULT);
	}
	dk_alerter_free(srv->alerter);
	dk_metrics_free(srv->metrics);
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
	snapshot_free(srv->old);
	snapshot_free(srv->cur);
	dk__stats_reg_free(srv->stats);
	free(srv->workers);
	int status = srv->status;
	if (status == 0)
		dk_log(DK_LOG_INFO, "stopped");
	free(srv);
	dk_log_close();
	return status;
}
