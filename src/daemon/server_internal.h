/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the resolver's files: the worker (one thread, one
 * uv_loop, its own listeners, upstream sockets and pending table), the
 * read-only snapshot of config and policy the workers share, and the calls
 * that connect them: server.c decides what to do with a query, udp.c and
 * tcp.c carry client messages, upstream.c forwards.
 *
 * Everything in a worker is touched by its own thread only, except the
 * fields marked "atomic" that the main thread uses to hand over a snapshot or
 * ask the worker to stop.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dnsink/alert.h"
#include "dnsink/config.h"
#include "dnsink/msg.h"
#include "dnsink/policy.h"
#include "dnsink/ratelimit.h"

/** UDP receive buffer: libuv's recvmmsg takes one 64 KiB chunk per datagram. */
#define DK_UDP_CHUNKS 20
#define DK_RXBUF_SIZE (DK_UDP_CHUNKS * 65536)
/** UDP replies sent by one sendmmsg, and the octets they may take together. */
#define DK_UDP_BATCH  32
/** UDP queries to upstreams sent by one sendmmsg (per address family). */
#define DK_UP_BATCH 64
#define DK_UDP_OUTBUF 65536
/** Largest query a pending slot holds; bigger ones get SERVFAIL. */
#define DK_QUERY_MAX 4096
/** Local answers are small: header, question, one record, OPT with EDE. */
#define DK_LOCAL_MAX 1024
/** Unconnected UDP sockets per address family per worker (random source ports). */
#define DK_UP_SOCKS 8
/** Upstreams with their own timeout counter; later ones share the last. */
#define DK_UP_COUNTED 8
/** How long in-flight queries may finish after SIGTERM. */
#define DK_GRACE_MS 2000

struct dk_server;
struct dk_worker;
struct dk_tcp_conn;
struct dk_up_tcp;
struct dk_wstats;

/** What the workers read: config and policy, immutable while in use. */
struct dk_snapshot {
	struct dk_config *cfg;
	struct dk_policy *pol; /**< NULL: no rules configured */
	/* Counter slots (stats.c): stable across reloads, unlike the indexes. */
	uint32_t *rule_slot; /**< per rule index; NULL without rules */
	uint32_t *up_slot;   /**< per upstream index */
	/**
	 * Per worker: a larger counter block to switch to when taking this
	 * snapshot (NULL: the worker's fits); the worker leaves its old block
	 * here in exchange, for the main thread to free.
	 */
	struct dk_wstats **grow;
	unsigned n_grow;
};

/** What became of a query. */
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
	DK_OUT_MAX,
};

/** Per-worker counters, plain integers: only the worker writes them, main reads after join. */
struct dk_counters {
	uint64_t queries[2];              /**< by enum dk_transport */
	uint64_t out[2][DK_OUT_MAX];      /**< by transport and enum dk_outcome */
	uint64_t answers;                 /**< upstream answers accepted */
	uint64_t mismatched;              /**< upstream datagrams refused (spoofed/mismatched) */
	uint64_t timeouts[DK_UP_COUNTED]; /**< per upstream index */
	uint64_t up_errors;               /**< sends or TCP connections that failed */
	uint64_t tc_retries;              /**< truncated UDP answers retried over TCP */
	uint64_t pending_full;
	uint64_t udp_send_fail; /**< replies dropped on EAGAIN or error */
	uint64_t tcp_accepted;
	uint64_t tcp_rejected; /**< over the per-worker cap */
	uint64_t tcp_slow;     /**< closed: client does not read its answers */

	/* Upstream answers whose CNAME/DNAME target a rule matched (cloaking). */
	uint64_t cname_blocked; /**< replaced by the rule's local answer */
	uint64_t cname_alerted; /**< passed, with an alert */

	uint64_t malformed; /**< upstream answers to our question whose records do not parse */
};

/** Upstream answer latency histogram: upper bounds in microseconds, and +Inf. */
#define DK_LAT_BUCKETS 13
extern const uint32_t dk__lat_bounds_us[DK_LAT_BUCKETS - 1];

/** Counters of one upstream (by address) on one worker. */
struct dk_up_stats {
	uint64_t tries;               /**< queries sent to it */
	uint64_t answers;             /**< answers accepted from it */
	uint64_t timeouts;            /**< tries that timed out */
	uint64_t errors;              /**< sends or TCP connections that failed */
	uint64_t lat_sum_us;          /**< sum of the answer latencies */
	uint64_t lat[DK_LAT_BUCKETS]; /**< answers per latency bucket (not cumulative) */
};

/**
 * A worker's counters kept by slot (stats.c): rule hits by rule id, upstream
 * counters by address. Written by its worker only, read by scrapes.
 */
struct dk_wstats {
	uint32_t n_rules;        /**< rule slots this block holds */
	uint32_t n_ups;          /**< upstream slots this block holds */
	uint64_t *rule_hits;     /**< [n_rules] queries a rule decided (also by CNAME target) */
	struct dk_up_stats *ups; /**< [n_ups] */
};

struct dk_udp_listener {
	uv_udp_t h;
	struct dk_worker *w;
};

struct dk_tcp_listener {
	uv_tcp_t h;
	struct dk_worker *w;
};

/** Who asked and where the answer goes. */
struct dk_client {
	uint8_t transport;           /**< enum dk_transport */
	struct dk_udp_listener *udp; /**< UDP: the socket the query came in on */
	struct dk_tcp_conn *conn;    /**< TCP: the connection */
	struct dk_addr peer;
};

/** One upstream query in flight. */
struct dk_slot {
	struct dk_worker *w;
	struct dk_slot *next_free;
	bool busy;
	bool tcp;               /**< the current try goes over TCP */
	uint16_t id;            /**< our ID for the current try */
	uint8_t up_index;       /**< index of the current upstream */
	struct dk_addr up_addr; /**< the current upstream, copied: a reload may drop it */
	uv_timer_t timer;       /**< per-try timeout */
	struct dk_up_tcp *utcp; /**< connection of the current TCP try, or NULL */
	bool tcp_retried;       /**< the current upstream's TCP try already lost a connection */
	struct dk_client cl;
	struct dk_query q;
	uint16_t len;
	uint8_t *pkt;     /**< DK_QUERY_MAX octets: the query as sent upstream (our ID) */
	uint32_t up_stat; /**< counter slot of the current upstream */
	uint64_t sent_ns; /**< uv_hrtime() when the current try went out */
};

/** The worker's upstream side (upstream.c). */
struct dk_upstream {
	struct dk_slot *slots;
	size_t n_slots;
	/*
	 * Query buffers apart from the slots: the slots (and their timers) are
	 * touched at start, the buffers only when used, and the LIFO free list
	 * keeps the pages in use few.
	 */
	uint8_t *pkts;
	size_t busy;
	struct dk_slot *free;
	uint16_t *id2slot; /**< 65536 entries: slot index + 1, 0 when the ID is free */
	uint8_t rnd[4096]; /**< getrandom() bytes, used up front to back */
	size_t rnd_pos;
	uv_udp_t socks[2][DK_UP_SOCKS]; /**< [0] IPv4, [1] IPv6 */
	unsigned n_socks[2];            /**< initialized (to close) */
	bool socks_ok[2];               /**< all bound and reading (to use) */
	bool errq[2][DK_UP_SOCKS];      /**< ICMP errors may wait in the socket's error queue */
	/** UDP tries waiting for dk__upstream_flush(): the slot and the ID it was sent with. */
	struct {
		struct dk_slot *s;
		uint16_t id;
	} out[DK_UP_BATCH];
	unsigned n_out;
	struct dk_up_tcp *tcp_free;     /**< closed TCP connections, reusable */
	struct dk_up_tcp *tcp_all;      /**< every TCP connection object, for teardown */
	struct dk_up_tcp *tcp_open;     /**< open connections (busy or idle) */
	unsigned n_tcp_open;
	unsigned timeout_ms;
};

/** A UDP reply waiting in the worker's batch (udp.c). */
struct dk_udp_out {
	struct dk_udp_listener *l;
	struct dk_addr peer;
	uint32_t off; /**< in outbuf */
	uint32_t len;
};

struct dk_worker {
	struct dk_server *srv;
	unsigned index;
	uv_loop_t loop;
	bool loop_ready;
	uv_thread_t thread;
	bool thread_started;
	uv_async_t wake;                    /**< main → worker: new snapshot, stop */
	_Atomic(struct dk_snapshot *) next; /**< atomic: snapshot to switch to */
	atomic_bool stop;                   /**< atomic: main asks to stop */
	const struct dk_snapshot *snap;     /**< in force on this worker */

	struct dk_udp_listener *udp;
	size_t n_udp;
	struct dk_tcp_listener *tcp;
	size_t n_tcp;
	struct dk_tcp_conn *conns; /**< every live client connection */
	size_t n_conns;            /**< open ones (the cap counts these) */

	struct dk_upstream up;
	uint8_t *rxbuf;                  /**< DK_RXBUF_SIZE, every UDP read lands here */
	uint8_t txbuf[2 + DK_LOCAL_MAX]; /**< local answers (2 octets for TCP framing) */

	/* UDP replies batched for one sendmmsg per loop iteration (udp.c). */
	uv_check_t flush;       /**< after the I/O callbacks of an iteration */
	uv_prepare_t flush_pre; /**< before polling: replies made by timers */
	bool flush_init;
	struct dk_udp_out out[DK_UDP_BATCH];
	unsigned n_out;
	size_t out_used;
	uint8_t *outbuf; /**< DK_UDP_OUTBUF octets */

	bool stopping;
	bool finished;
	uv_timer_t grace;
	bool grace_init;
	struct dk_counters ctr;

	struct dk_ratelimit *rl; /**< client buckets; NULL: rate_limit off */
	size_t rl_table_size;    /**< the rate_limit.table_size @p rl was made for */
	/** Counters by slot; swapped by the worker on a reload that grows them. */
	_Atomic(struct dk_wstats *) stats;
};

/* server.c */

/** Handles one query from @p cl: answers it locally or forwards it. */
void dk__worker_query(struct dk_worker *w, const struct dk_client *cl, const uint8_t *pkt,
                      size_t len);
/** Sends @p len octets of answer to @p cl (UDP datagram or TCP frame). */
void dk__client_reply(struct dk_worker *w, const struct dk_client *cl, const uint8_t *ans,
                      size_t len);
/** An upstream query of @p cl ended (answered or not): releases what it held. */
void dk__client_done(struct dk_worker *w, const struct dk_client *cl);
/** Answers @p cl with @p rcode for query @p pkt/@p q (SERVFAIL after failed tries). */
void dk__client_error(struct dk_worker *w, const struct dk_client *cl, const uint8_t *pkt,
                      const struct dk_query *q, uint8_t rcode, uint16_t ede);
/**
 * Records an alert event for query @p q of @p cl matched by @p v. With
 * @p target_len > 0, @p target (lowercase wire form) is the CNAME/DNAME target
 * the rule matched and v->matched_off is relative to it.
 */
void dk__worker_alert(struct dk_worker *w, const struct dk_client *cl, const struct dk_query *q,
                      const struct dk_verdict *v, uint8_t rcode, const uint8_t *target,
                      size_t target_len);
/** Creates a socket of @p a's family with SO_REUSEPORT, bound to @p a. Returns fd or -errno. */
int dk__socket_bound(const struct dk_addr *a, int type, bool reuseport);

/* udp.c */

int dk__udp_listen(struct dk_worker *w, struct dk_udp_listener *l, const struct dk_addr *a);
void dk__udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
/**
 * Queues @p len octets of answer to @p peer on @p l; they leave with the
 * worker's next dk__udp_flush(), at the latest when the loop iteration ends.
 */
void dk__udp_reply(struct dk_worker *w, struct dk_udp_listener *l, const struct dk_addr *peer,
                   const uint8_t *ans, size_t len);
/** Sends every queued reply, one sendmmsg per listener run. */
void dk__udp_flush(struct dk_worker *w);
/** Starts the per-iteration flush of @p w (allocates its batch buffer). */
int dk__udp_batch_init(struct dk_worker *w);

/* tcp.c */

int dk__tcp_listen(struct dk_worker *w, struct dk_tcp_listener *l, const struct dk_addr *a);
void dk__tcp_reply(struct dk_worker *w, struct dk_tcp_conn *c, const uint8_t *ans, size_t len);
/** One more query of @p c went upstream; the connection stays allocated until it ends. */
void dk__tcp_query_hold(struct dk_tcp_conn *c);
/** One query of @p c ended; frees a closed connection with nothing left in flight. */
void dk__tcp_query_done(struct dk_worker *w, struct dk_tcp_conn *c);
/** Stops reading every connection; closes the idle ones (shutdown). */
void dk__tcp_stop(struct dk_worker *w);
/** Closes every connection (shutdown, after the grace period). */
void dk__tcp_close_all(struct dk_worker *w);
/** Frees connection objects left after the loop ended. */
void dk__tcp_free_all(struct dk_worker *w);

/* upstream.c */

/**
 * Sends the UDP queries queued for the upstreams, one sendmmsg per address
 * family; a try whose datagram could not be sent moves to the next upstream.
 * Called between callbacks only (check/prepare), never from inside a try.
 */
void dk__upstream_flush(struct dk_worker *w);

int dk__upstream_init(struct dk_worker *w, size_t max_inflight);
/**
 * Forwards query @p pkt/@p q of @p cl. Returns 0, or a negative code when it
 * could not (table full: DK_EFULL; query too large: DK_ESPACE); the caller answers.
 */
int dk__upstream_forward(struct dk_worker *w, const struct dk_client *cl, const uint8_t *pkt,
                         size_t len, const struct dk_query *q);
size_t dk__upstream_inflight(const struct dk_worker *w);
/** Closes every upstream handle (timers, sockets, TCP connections). */
void dk__upstream_close(struct dk_worker *w);
/** Frees the upstream side after the loop ended. */
void dk__upstream_free(struct dk_worker *w);

/** Worker hook: the last upstream query ended while stopping. */
void dk__worker_idle(struct dk_worker *w);

/* stats.c */

struct dk_stats_reg;

/** The registry of counter slots (main thread only). NULL when out of memory. */
struct dk_stats_reg *dk__stats_reg_new(void);
void dk__stats_reg_free(struct dk_stats_reg *r);
/**
 * Gives snapshot @p s its slot maps, registering rule ids and upstream
 * addresses seen for the first time, and a larger counter block in s->grow
 * for each of the @p n_workers running @p workers whose block is too small
 * (none at start). Main thread, with no reload in flight. 0 or -ENOMEM.
 */
int dk__stats_prepare(struct dk_stats_reg *r, struct dk_snapshot *s, struct dk_worker *workers,
                      unsigned n_workers);
/** A zeroed counter block with room for every slot registered so far. NULL: no memory. */
struct dk_wstats *dk__wstats_new(const struct dk_stats_reg *r);
/** Worker @p w takes snapshot @p s: switches to the larger block that came with it, if any. */
void dk__wstats_adopt(struct dk_worker *w, struct dk_snapshot *s);
/** Frees the counter blocks s->grow holds (main thread, once no worker can use them). */
void dk__stats_release(struct dk_snapshot *s);

/** Counts a query decided by rule index @p rule_index of @p w's snapshot. */
static inline void dk__rule_hit(struct dk_worker *w, unsigned rule_index)
{
	struct dk_wstats *st = atomic_load_explicit(&w->stats, memory_order_relaxed);
	uint32_t slot = w->snap->rule_slot ? w->snap->rule_slot[rule_index] : UINT32_MAX;

	if (slot < st->n_rules)
		st->rule_hits[slot]++;
}

/** The counters of upstream slot @p slot on @p w, or NULL when it has none. */
static inline struct dk_up_stats *dk__up_stats(struct dk_worker *w, uint32_t slot)
{
	struct dk_wstats *st = atomic_load_explicit(&w->stats, memory_order_relaxed);

	return slot < st->n_ups ? &st->ups[slot] : NULL;
}
