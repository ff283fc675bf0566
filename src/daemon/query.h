/* SPDX-License-Identifier: MIT */
/*
 * The decision for every client query of a worker, in one place: rate limit
 * → parse → access list → policy on the query name → a local answer, or the
 * cache, or the forwarder → on an answer from either, the answer-side policy
 * (CNAME/DNAME cloaking; Sigma answer conditions and RPZ response-IP
 * triggers hook in here) → the reply → the alert. The policy always runs
 * before the cache answers: a name the rules in force block is never
 * answered from it, and a cached answer goes through the answer-side policy
 * of the rules in force at each hit, so a reload that blocks a CNAME target
 * applies to answers cached before it. The transports bring queries in through
 * dk_queries_handle() and take replies back through the client handle; the
 * forwarder and the alert sink are reached through the hooks given at
 * creation, so the module can be driven alone (tests/unit/test_query.c).
 *
 * The cache (dnsink/cache.h) belongs to this module: one per worker, made
 * when the config turns it on and remade only when its size changes, so
 * entries survive other reloads.
 *
 * Runs on the worker's loop and never allocates after dk_queries_new(),
 * except that a snapshot that turns the rate limit or the cache on (or
 * resizes them) makes their tables, between two queries.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "counters.h"
#include "dnsink/alert.h"
#include "dnsink/config.h"
#include "dnsink/msg.h"
#include "dnsink/policy.h"
#include "upstream.h"

/** Local answers are small: header, question, one record, OPT with EDE. */
#define DK_LOCAL_MAX 1024

struct dk_queries;

/** Where the module sends what it does not answer itself. */
struct dk_queries_env {
	/** Forwards a query; dk_upstream_forward()'s contract. */
	int (*forward)(void *fwd, const uint8_t *pkt, size_t len, const struct dk_query *q,
	               bool tcp, dk_forward_done_fn *done, void *ctx);
	void *fwd;
	/** Takes a copy of an alert event (the alerter's ring); must not block. */
	void (*alert)(void *alert_ctx, const struct dk_alert_event *ev);
	void *alert_ctx;
	/** Milliseconds of a monotonic clock, for rate limiting (the loop's cached time). */
	uint64_t (*now_ms)(void *clock_ctx);
	void *clock_ctx;
	/** Queries that may wait for the forwarder at once (its capacity). */
	size_t max_pending;
	struct dk_query_counters *ctr;       /**< written by this module only */
	struct dk_cache_counters *cache_ctr; /**< written by this module only */
	/** Workers in all: each takes this share of cache.size_mb (0 counts as 1). */
	unsigned n_workers;
	/** A NOTIFY from RPZ zone @p origin's primary was accepted; NULL: refuse them all. */
	void (*notify)(void *notify_ctx, const char *origin);
	void *notify_ctx;
};

/** The snapshot in force, borrowed until the next dk_queries_configure(). */
struct dk_queries_conf {
	const struct dk_config *cfg;
	struct dk_policy *pol; /**< NULL: no rules */
	const uint32_t
	        *rule_slot; /**< per rule index: index into @p rule_hits; NULL without rules */
	dk_ctr *rule_hits;  /**< counters by rule slot (the worker's block) */
	uint32_t n_rule_hits;
	/** Per client group index: its queries' and hits' slots in @p rule_hits; NULL: none. */
	const uint32_t *group_slot;
};

/** Creates the module from @p env (copied). Returns 0 and sets @p *out, or -ENOMEM. */
int dk_queries_new(const struct dk_queries_env *env, struct dk_queries **out);

/**
 * Switches to @p conf; makes, remakes or frees the rate-limit table and the
 * cache to fit its rate_limit and cache sections (a cache of the same size
 * is kept, with its entries, and takes the new TTL rules). Returns 0, or
 * -ENOMEM when a table was needed and could not be made (an old one stays in
 * use; with none, nothing is limited or cached).
 */
int dk_queries_configure(struct dk_queries *qs, const struct dk_queries_conf *conf);

/** Handles one client query; a dk_query_fn, @p qs is the struct dk_queries. */
void dk_queries_handle(void *qs, const struct dk_client *cl, const uint8_t *pkt, size_t len);

/** Frees @p qs (no query may be in flight). NULL is a no-op. */
void dk_queries_free(struct dk_queries *qs);

/**
 * Removes the cached answers of @p name (lowercase wire form), or all of
 * them when @p name is NULL; on the worker's own thread. Returns how many.
 */
size_t dk_queries_cache_flush(struct dk_queries *qs, const uint8_t *name, size_t name_len);

/** Octets the cache in use was made with (0: off). */
size_t dk_queries_cache_bytes(const struct dk_queries *qs);

/** Client buckets of the rate-limit table in use (0: off). */
size_t dk_queries_ratelimit_size(const struct dk_queries *qs);
