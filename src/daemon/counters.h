/* SPDX-License-Identifier: MIT */
/*
 * A worker's counters. Each part is written by one module on the worker's
 * thread (query.c, upstream.c, udp.c, tcp.c) and read at any time by the
 * metrics scrape and the exit log on the main thread. So every counter is a
 * single-writer atomic: the writer adds with a relaxed load and store (on
 * x86 the same two instructions as a plain ++, no locked instruction), the
 * reader loads relaxed. A reader may see one counter a little ahead of
 * another; it never sees a torn value, and there is no data race.
 */
#pragma once

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "dnsink/alert.h"
#include "dnsink/cache.h"

/** One counter: written by one thread only (dk_ctr_add), read by any (dk_ctr_get). */
typedef _Atomic uint64_t dk_ctr;

/** Adds @p n to @p c. Only the counter's one writer may call this. */
static inline void dk_ctr_add(dk_ctr *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
	                      memory_order_relaxed);
}

static inline void dk_ctr_inc(dk_ctr *c)
{
	dk_ctr_add(c, 1);
}

/** Sets gauge @p c to @p v. Only its one writer may call this. */
static inline void dk_ctr_set(dk_ctr *c, uint64_t v)
{
	atomic_store_explicit(c, v, memory_order_relaxed);
}

static inline uint64_t dk_ctr_get(const dk_ctr *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/** What became of a client query. */
enum dk_outcome {
	DK_OUT_FORWARDED, /**< sent upstream (whatever came back) */
	DK_OUT_SINKHOLED,
	DK_OUT_NXDOMAIN,    /**< by a rule */
	DK_OUT_REFUSED,     /**< by a rule */
	DK_OUT_ACL_REFUSED, /**< client not in allow_clients */
	DK_OUT_SERVFAIL,    /**< every upstream failed, or no slot free */
	DK_OUT_FORMERR,
	DK_OUT_NOTIMP,
	DK_OUT_BADVERS,
	DK_OUT_DROPPED,     /**< unparsable, or no way to answer */
	DK_OUT_RATELIMITED, /**< client over rate_limit (dropped or REFUSED) */
	DK_OUT_CACHED,      /**< answered from the cache */
	DK_OUT_NODATA,      /**< by a rule: NOERROR, no records */
	DK_OUT_LOCAL,       /**< by a rule: its local data (RPZ) */
	DK_OUT_TRUNCATED,   /**< by a rule: empty answer with TC over UDP (RPZ tcp-only) */
	DK_OUT_MAX,
};

/** The name of outcome @p o in metrics and logs ("forwarded", ...). */
static inline const char *dk_outcome_name(enum dk_outcome o)
{
	static const char *const names[DK_OUT_MAX] = {
	        [DK_OUT_FORWARDED] = "forwarded",     [DK_OUT_SINKHOLED] = "sinkholed",
	        [DK_OUT_NXDOMAIN] = "nxdomain",       [DK_OUT_REFUSED] = "refused",
	        [DK_OUT_ACL_REFUSED] = "acl_refused", [DK_OUT_SERVFAIL] = "servfail",
	        [DK_OUT_FORMERR] = "formerr",         [DK_OUT_NOTIMP] = "notimp",
	        [DK_OUT_BADVERS] = "badvers",         [DK_OUT_DROPPED] = "dropped",
	        [DK_OUT_RATELIMITED] = "ratelimited", [DK_OUT_CACHED] = "cached",
	        [DK_OUT_NODATA] = "nodata",           [DK_OUT_LOCAL] = "local",
	        [DK_OUT_TRUNCATED] = "truncated",
	};

	return o < DK_OUT_MAX && names[o] ? names[o] : "unknown";
}

/** The name of transport @p tr (enum dk_transport). */
static inline const char *dk_transport_name(unsigned tr)
{
	static const char *const names[DK_TRANSPORT_MAX] = {
	        [DK_TRANSPORT_UDP] = "udp",
	        [DK_TRANSPORT_TCP] = "tcp",
	        [DK_TRANSPORT_TLS] = "tls",
	        [DK_TRANSPORT_HTTPS] = "https",
	};

	return tr < DK_TRANSPORT_MAX ? names[tr] : "unknown";
}

/** Written by query.c. */
struct dk_query_counters {
	dk_ctr queries[DK_TRANSPORT_MAX];         /**< received, by enum dk_transport */
	dk_ctr out[DK_TRANSPORT_MAX][DK_OUT_MAX]; /**< by transport and enum dk_outcome */
	/* Upstream answers whose CNAME/DNAME target a rule matched (cloaking). */
	dk_ctr cname_blocked; /**< replaced by the rule's local answer */
	dk_ctr cname_alerted; /**< passed, with an alert */
	dk_ctr table_full;    /**< not forwarded: every in-flight slot was taken */
};

/** Written by query.c: its response cache. */
struct dk_cache_counters {
	dk_ctr hits;       /**< fresh answers served */
	dk_ctr misses;     /**< looked up and not found fresh: forwarded */
	dk_ctr stale;      /**< expired answers served, every upstream having failed */
	dk_ctr inserts;    /**< answers stored */
	dk_ctr prefetches; /**< refreshes sent for entries in the last tenth of their TTL */
	dk_ctr evictions;  /**< entries pushed out to make room */
	/** Answers not stored, by enum dk_cache_result (index 0, STORED, unused). */
	dk_ctr refused[DK_CACHE_RESULT_MAX];
	dk_ctr entries;  /**< a gauge */
	dk_ctr bytes;    /**< a gauge: arena octets in use */
	dk_ctr capacity; /**< a gauge: arena octets in all */
};

/** Upstreams with their own timeout counter; later ones share the last. */
#define DK_UP_COUNTED 8

/** Written by upstream.c. */
struct dk_up_counters {
	dk_ctr answers;                 /**< upstream answers accepted */
	dk_ctr mismatched;              /**< upstream datagrams refused (spoofed/mismatched) */
	dk_ctr timeouts[DK_UP_COUNTED]; /**< per upstream index */
	dk_ctr errors;                  /**< sends or TCP connections that failed */
	dk_ctr tc_retries;              /**< truncated UDP answers retried over TCP */
	dk_ctr malformed;               /**< answers to our question whose records do not parse */
	dk_ctr inflight;                /**< a gauge: queries in flight now */
};

/** Written by https.c (DNS over HTTPS clients). */
struct dk_https_counters {
	dk_ctr accepted;
	dk_ctr rejected;        /**< over the cap */
	dk_ctr slow;            /**< closed: client does not read its answers */
	dk_ctr tls_handshakes;  /**< handshakes that succeeded */
	dk_ctr tls_failed;      /**< handshakes that failed */
	dk_ctr tls_timeouts;    /**< handshakes cut by the handshake timeout */
	dk_ctr h2;              /**< connections that chose HTTP/2 (ALPN h2) */
	dk_ctr requests;        /**< HTTP requests read */
	dk_ctr refused[7];      /**< answered 400, 404, 405, 413, 414, 415, other errors */
	dk_ctr streams_refused; /**< HTTP/2 streams over the per-connection cap */
};

/** Written by udp.c. */
struct dk_udp_counters {
	dk_ctr send_fail; /**< replies dropped on EAGAIN or error */
};

/** Written by tcp.c. */
struct dk_tcp_counters {
	dk_ctr accepted;
	dk_ctr rejected;       /**< over the per-worker cap */
	dk_ctr slow;           /**< closed: client does not read its answers */
	dk_ctr tls_handshakes; /**< DNS over TLS clients whose handshake succeeded */
	dk_ctr tls_resumed;    /**< of those, resumed sessions */
	dk_ctr tls_failed;     /**< handshakes that failed */
	dk_ctr tls_timeouts;   /**< handshakes cut by the handshake timeout */
};

/** All of one worker's counters, handed out by part to the modules that write them. */
struct dk_counters {
	struct dk_query_counters query;
	struct dk_cache_counters cache;
	struct dk_up_counters up;
	struct dk_udp_counters udp;
	struct dk_tcp_counters tcp;
	struct dk_https_counters https;
};

_Static_assert(sizeof(struct dk_counters) % sizeof(dk_ctr) == 0,
               "struct dk_counters holds counters only");

/**
 * Adds every counter of @p c into @p sum, a struct of the caller's that only
 * the caller writes (a total over the workers).
 */
static inline void dk_counters_add(struct dk_counters *sum, const struct dk_counters *c)
{
	dk_ctr *to = (dk_ctr *)sum;
	const dk_ctr *from = (const dk_ctr *)c;

	for (size_t k = 0; k < sizeof(*c) / sizeof(dk_ctr); k++)
		dk_ctr_add(&to[k], dk_ctr_get(&from[k]));
}

/** Upstream answer latency histogram: upper bounds in microseconds, and +Inf. */
#define DK_LAT_BUCKETS 13
extern const uint32_t dk_lat_bounds_us[DK_LAT_BUCKETS - 1];

/** Reasons a TLS handshake fails (enum dk_tls_fail in tls.h). */
#define DK_TLS_FAILS 5

/** Counters of one upstream (by address) on one worker; written by upstream.c. */
struct dk_up_stats {
	dk_ctr tries;               /**< queries sent to it */
	dk_ctr retransmits;         /**< of those, tries of a query that had been sent before */
	dk_ctr answers;             /**< answers accepted from it */
	dk_ctr timeouts;            /**< tries that timed out */
	dk_ctr errors;              /**< sends or TCP connections that failed */
	dk_ctr lat_sum_us;          /**< sum of the answer latencies */
	dk_ctr lat[DK_LAT_BUCKETS]; /**< answers per latency bucket (not cumulative) */
	dk_ctr srtt_us;             /**< a gauge: the smoothed RTT of UDP answers (0: none yet) */
	dk_ctr down;                /**< a gauge: 1 while this worker holds the upstream down */
	dk_ctr tls_handshakes;      /**< TLS handshakes that succeeded */
	dk_ctr tls_resumed;         /**< of those, resumed sessions */
	dk_ctr tls_failed[DK_TLS_FAILS]; /**< failed handshakes, by enum dk_tls_fail */
	dk_ctr tls_open;                 /**< a gauge: TLS connections open (or connecting) */
	dk_ctr http_errors; /**< DoH: responses that were no DNS answer (status, type) */
};
