/* SPDX-License-Identifier: MIT */
/*
 * A worker's thread, loop and rooms (see worker.h). This file is the only
 * one that knows all the rooms: it creates them, hands each its part of the
 * counters, connects their hooks, and passes every new snapshot on to them.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "query.h"
#include "sock.h"
#include "https.h"
#include "tcp.h"
#include "udp.h"
#include "upstream.h"
#include "dnstap.h"
#include "worker.h"

struct dk_worker {
	unsigned index;
	struct dk_worker_hooks hooks;
	struct dk_alerter *alerter; /**< borrowed: the alert rings */
	uv_loop_t loop;
	bool loop_ready;
	uv_thread_t thread;
	bool thread_started;
	uv_async_t wake;                          /**< main → worker: new snapshot, stop */
	_Atomic(struct dk_snapshot *) next;       /**< atomic: snapshot to switch to */
	atomic_bool stop;                         /**< atomic: main asks to stop */
	_Atomic(struct dk_flush_job *) flush_job; /**< atomic: cache flush to do */
	const struct dk_snapshot *snap;           /**< in force on this worker */
	/** Counters by slot; swapped by the worker on a reload that grows them. */
	_Atomic(struct dk_wstats *) stats;
	struct dk_counters ctr;

	uint8_t *rxbuf; /**< DK_RXBUF_SIZE: every UDP read of the worker lands here */
	struct dk_udp *udp;
	struct dk_tcp *tcp;
	struct dk_https *https;
	struct dk_upstream *up;
	struct dk_queries *queries;
	struct dk_dnstap_worker *tap; /**< NULL: dnstap off */

	/* The flush of upstream queries and UDP replies, once per loop iteration. */
	uv_check_t flush;       /**< after the I/O callbacks of an iteration */
	uv_prepare_t flush_pre; /**< before polling: replies made by timers */
	bool flush_init;
	uv_timer_t grace;
	bool grace_init;
	bool stopping;
	bool finished;
};

/* Hooks of the query module. */

static int forward(void *up, const uint8_t *pkt, size_t len, const struct dk_query *q, bool tcp,
                   dk_forward_done_fn *done, void *ctx)
{
	return dk_upstream_forward(up, pkt, len, q, tcp, done, ctx);
}

static void post_alert(void *ctx, const struct dk_alert_event *ev)
{
	struct dk_worker *w = ctx;

	dk_alerter_post(w->alerter, w->index, ev);
	if (w->tap)
		dk_dnstap_note(w->tap, ev);
}

static uint64_t loop_now(void *ctx)
{
	struct dk_worker *w = ctx;

	/* The loop's cached clock, read once per loop iteration. */
	return uv_now(&w->loop);
}

/* Queries to the upstreams first: a try that cannot be sent may answer SERVFAIL. */
static void flush_all(struct dk_worker *w)
{
	if (dk_upstream_pending(w->up))
		dk_upstream_flush(w->up);
	if (dk_udp_pending(w->udp))
		dk_udp_flush(w->udp);
}

static void flush_cb(uv_check_t *c)
{
	flush_all(c->data);
}

static void flush_pre_cb(uv_prepare_t *p)
{
	flush_all(p->data);
}

/* Gives every room its view of snapshot @p s, on the worker's thread (or before it runs). */
static int configure(struct dk_worker *w, struct dk_snapshot *s)
{
	const struct dk_config *cfg = s->cfg;
	struct dk_wstats *cur = atomic_load_explicit(&w->stats, memory_order_relaxed);
	struct dk_wstats *st = dk_wstats_adopt(&s->stats, w->index, cur);

	if (st != cur)
		atomic_store_explicit(&w->stats, st, memory_order_release);
	w->snap = s;
	const struct dk_upstream_conf uc = {
	        .addrs = cfg->upstreams,
	        .n_addrs = cfg->n_upstreams,
	        .opts = cfg->upstream_opts,
	        .tls = s->tls,
	        .timeout_ms = cfg->upstream_timeout_ms,
	        .resolve_timeout_ms = cfg->resolve_timeout_ms,
	        .strategy = cfg->upstream_strategy,
	        .stat_slot = s->stats.up_slot,
	        .stats = st->ups,
	        .n_stats = st->n_ups,
	};
	dk_upstream_configure(w->up, &uc);
	dk_tcp_configure(w->tcp, cfg->tcp_max_clients, cfg->tcp_idle_ms);
	dk_tcp_set_tls(w->tcp, s->tls, cfg->tls.handshake_ms);
	dk_https_configure(w->https, cfg->tcp_max_clients, cfg->tcp_idle_ms, cfg->tls.handshake_ms,
	                   s->tls);
	const struct dk_queries_conf qc = {
	        .cfg = cfg,
	        .pol = s->pol,
	        .rule_slot = s->stats.rule_slot,
	        .rule_hits = st->rule_hits,
	        .n_rule_hits = st->n_rules,
	        .group_slot = s->stats.group_slot,
	};
	return dk_queries_configure(w->queries, &qc);
}

static void close_handle(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* Closes every handle of @p w; its loop then ends. */
static void worker_finish(struct dk_worker *w)
{
	if (w->finished)
		return;
	w->finished = true;
	/* A handle that was never initialized has no loop. */
	if (w->wake.loop)
		close_handle((uv_handle_t *)&w->wake);
	if (w->grace_init)
		close_handle((uv_handle_t *)&w->grace);
	if (w->flush_init) {
		flush_all(w);
		close_handle((uv_handle_t *)&w->flush);
		close_handle((uv_handle_t *)&w->flush_pre);
	}
	if (w->udp)
		dk_udp_close(w->udp);
	if (w->tcp)
		dk_tcp_close(w->tcp);
	if (w->https)
		dk_https_close(w->https);
	if (w->up)
		dk_upstream_close(w->up);
}

static void worker_idle(void *ctx)
{
	worker_finish(ctx);
}

static void grace_over(uv_timer_t *t)
{
	struct dk_worker *w = t->data;
	size_t n = dk_upstream_inflight(w->up);

	if (n)
		dk_log(DK_LOG_WARN, "worker %u: %zu queries still in flight after %d ms, dropped",
		       w->index, n, DK_GRACE_MS);
	worker_finish(w);
}

/*
 * Stopping keeps the UDP sockets open but deaf, so answers to queries in
 * flight can still leave through them; finishing closes them.
 */
static void worker_stopping(struct dk_worker *w)
{
	w->stopping = true;
	dk_udp_stop(w->udp);
	dk_tcp_stop(w->tcp);
	dk_https_stop(w->https);
	uv_timer_start(&w->grace, grace_over, DK_GRACE_MS, 0);
	dk_upstream_drain(w->up, worker_idle, w);
}

static void worker_wake(uv_async_t *a)
{
	struct dk_worker *w = a->data;
	struct dk_snapshot *s = atomic_exchange(&w->next, NULL);

	if (s) {
		configure(w, s);
		w->hooks.took(w->hooks.ctx);
	}
	/* The cache is this worker's alone: flushed here, on its own loop. */
	struct dk_flush_job *job = atomic_exchange(&w->flush_job, NULL);
	if (job) {
		size_t n = dk_queries_cache_flush(w->queries, job->name_len ? job->name : NULL,
		                                  job->name_len);
		atomic_fetch_add(&job->removed, n);
		atomic_fetch_sub(&job->left, 1);
	}
	if (atomic_load(&w->stop) && !w->stopping)
		worker_stopping(w);
}

static void worker_run(void *arg)
{
	struct dk_worker *w = arg;
	char name[16];

	/* Shown by top -H and ps -L; the allocation-count test also keys on it. */
	snprintf(name, sizeof(name), "dnsink-w%u", w->index);
	pthread_setname_np(pthread_self(), name);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	w->hooks.ended(w->hooks.ctx);
}

static int worker_init(struct dk_worker *w, unsigned n_workers, struct dk_snapshot *snap)
{
	const struct dk_config *cfg = snap->cfg;
	char addr[64];
	int rc;

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
	/*
	 * Replies made by I/O callbacks leave after the poll phase (check);
	 * those made by timers and deferred callbacks leave before the loop
	 * blocks in the next poll (prepare).
	 */
	uv_check_init(&w->loop, &w->flush);
	uv_prepare_init(&w->loop, &w->flush_pre);
	w->flush.data = w->flush_pre.data = w;
	w->flush_init = true;
	uv_check_start(&w->flush, flush_cb);
	uv_prepare_start(&w->flush_pre, flush_pre_cb);

	w->rxbuf = malloc(DK_RXBUF_SIZE);
	if (!w->rxbuf)
		return -ENOMEM;
	rc = dk_upstream_new(&w->loop, cfg->max_inflight, w->rxbuf, &w->ctr.up, &w->up);
	if (rc < 0) {
		dk_log(DK_LOG_ERR, "worker %u: upstream sockets: %s", w->index, dk_strerror(rc));
		return rc;
	}
	const struct dk_queries_env env = {
	        .notify = w->hooks.notify,
	        .notify_ctx = w->hooks.ctx,
	        .forward = forward,
	        .fwd = w->up,
	        .alert = post_alert,
	        .alert_ctx = w,
	        .now_ms = loop_now,
	        .clock_ctx = w,
	        .max_pending = dk_upstream_capacity(w->up),
	        .ctr = &w->ctr.query,
	        .cache_ctr = &w->ctr.cache,
	        .n_workers = n_workers,
	};
	rc = dk_queries_new(&env, &w->queries);
	if (rc < 0)
		return rc;
	/* With dnstap, its hook sits between the transports and the query module. */
	dk_query_fn *handle = dk_queries_handle;
	void *hctx = w->queries;
	if (w->tap) {
		dk_dnstap_worker_set_next(w->tap, dk_queries_handle, w->queries);
		handle = dk_dnstap_handle;
		hctx = w->tap;
	}
	rc = dk_udp_new(&w->loop, cfg->n_listen, w->rxbuf, handle, hctx, &w->ctr.udp, &w->udp);
	if (rc == 0)
		rc = dk_tcp_new(&w->loop, cfg->n_listen + cfg->n_listen_tls, handle, hctx,
		                &w->ctr.tcp, &w->tcp);
	if (rc == 0)
		rc = dk_https_new(&w->loop, cfg->n_listen_https, handle, hctx, &w->ctr.https,
		                  &w->https);
	if (rc < 0)
		return rc;
	/* Before the thread runs: the first snapshot is configured from here. */
	rc = configure(w, snap);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < cfg->n_listen; i++) {
		rc = dk_udp_listen(w->udp, &cfg->listen[i]);
		if (rc == 0)
			rc = dk_tcp_listen(w->tcp, &cfg->listen[i]);
		if (rc < 0) {
			dk_addr_format(&cfg->listen[i], addr, sizeof(addr));
			dk_log(DK_LOG_ERR, "cannot listen on %s: %s", addr, dk_strerror(rc));
			return rc;
		}
	}
	for (size_t i = 0; i < cfg->n_listen_tls; i++) {
		rc = dk_tcp_listen_tls(w->tcp, &cfg->listen_tls[i]);
		if (rc < 0) {
			dk_addr_format(&cfg->listen_tls[i], addr, sizeof(addr));
			dk_log(DK_LOG_ERR, "cannot listen (tls) on %s: %s", addr, dk_strerror(rc));
			return rc;
		}
	}
	for (size_t i = 0; i < cfg->n_listen_https; i++) {
		rc = dk_https_listen(w->https, &cfg->listen_https[i]);
		if (rc < 0) {
			dk_addr_format(&cfg->listen_https[i], addr, sizeof(addr));
			dk_log(DK_LOG_ERR, "cannot listen (https) on %s: %s", addr,
			       dk_strerror(rc));
			return rc;
		}
	}
	return 0;
}

int dk_worker_new(unsigned index, unsigned n_workers, struct dk_snapshot *snap,
                  struct dk_wstats *stats, struct dk_alerter *alerter, struct dk_dnstap *dnstap,
                  const struct dk_worker_hooks *hooks, struct dk_worker **out)
{
	struct dk_worker *w = calloc(1, sizeof(*w));

	*out = w;
	if (!w) {
		free(stats);
		return -ENOMEM;
	}
	w->index = index;
	w->hooks = *hooks;
	w->alerter = alerter;
	w->tap = dk_dnstap_worker_new(dnstap);
	if (dnstap && !w->tap)
		dk_log(DK_LOG_ERR, "worker %u: no dnstap queue: its queries are not logged", index);
	atomic_init(&w->next, NULL);
	atomic_init(&w->stop, false);
	atomic_init(&w->flush_job, NULL);
	atomic_init(&w->stats, stats);
	if (!stats)
		return -ENOMEM;
	return worker_init(w, n_workers, snap);
}

int dk_worker_start(struct dk_worker *w)
{
	int rc = uv_thread_create(&w->thread, worker_run, w);

	if (rc < 0) {
		dk_log(DK_LOG_ERR, "cannot start worker %u: %s", w->index, uv_strerror(rc));
		return rc;
	}
	w->thread_started = true;
	return 0;
}

void dk_worker_offer(struct dk_worker *w, struct dk_snapshot *s)
{
	atomic_store(&w->next, s);
	uv_async_send(&w->wake);
}

void dk_worker_flush(struct dk_worker *w, struct dk_flush_job *job)
{
	atomic_store(&w->flush_job, job);
	uv_async_send(&w->wake);
}

void dk_worker_stop(struct dk_worker *w)
{
	atomic_store(&w->stop, true);
	uv_async_send(&w->wake);
}

void dk_worker_free(struct dk_worker *w)
{
	if (!w)
		return;
	if (w->thread_started) {
		/* A worker that still runs (a failed start) is asked to stop first. */
		dk_worker_stop(w);
		uv_thread_join(&w->thread);
	} else if (w->loop_ready) {
		/* Never ran: close what worker_init() opened and let the loop see it closed. */
		worker_finish(w);
		uv_run(&w->loop, UV_RUN_DEFAULT);
	}
	if (w->loop_ready) {
		int rc = uv_loop_close(&w->loop);
		if (rc != 0)
			dk_log(DK_LOG_ERR, "worker %u: loop closed with handles open: %s", w->index,
			       uv_strerror(rc));
	}
	dk_tcp_free(w->tcp);
	dk_https_free(w->https);
	dk_udp_free(w->udp);
	dk_upstream_free(w->up);
	dk_queries_free(w->queries);
	dk_dnstap_worker_free(w->tap);
	free(w->rxbuf);
	free(atomic_load(&w->stats));
	free(w);
}

void dk_worker_dnstap_counts(const struct dk_worker *w, uint64_t *sent, uint64_t *lost)
{
	uint64_t s = 0, l = 0;

	if (!w->tap)
		return;
	dk_dnstap_worker_counts(w->tap, &s, &l);
	*sent += s;
	*lost += l;
}

const struct dk_counters *dk_worker_counters(const struct dk_worker *w)
{
	return &w->ctr;
}

struct dk_wstats *dk_worker_stats(const struct dk_worker *w)
{
	return atomic_load_explicit(&w->stats, memory_order_acquire);
}

size_t dk_worker_capacity(const struct dk_worker *w)
{
	return dk_upstream_capacity(w->up);
}

size_t dk_worker_ratelimit_size(const struct dk_worker *w)
{
	return dk_queries_ratelimit_size(w->queries);
}
