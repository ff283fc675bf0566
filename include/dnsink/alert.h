/* SPDX-License-Identifier: MIT */
/*
 * Alerts, the pure part: the event a worker records for a match, the
 * single-producer single-consumer ring that carries events from a worker to
 * the alert thread without locks or allocation, dedup/threshold folding with
 * an explicit clock, and formatting a record as JSON into a fixed buffer.
 *
 * The sinks (syslog(3), RFC 5424 over UDP/TCP/unix, JSON-lines file) are
 * libuv-bound and live in src/alert_sink.c.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnsink/common.h"
#include "dnsink/config.h"

struct dk_rule;
struct dk_policy;

enum dk_transport {
	DK_TRANSPORT_UDP,
	DK_TRANSPORT_TCP,
	DK_TRANSPORT_TLS,   /**< DNS over TLS (RFC 7858), listen_tls */
	DK_TRANSPORT_HTTPS, /**< DNS over HTTPS (RFC 8484), listen_https */
	DK_TRANSPORT_MAX,
};

/** One match as the worker saw it. Plain data, copied by value. */
struct dk_alert_event {
	uint64_t time_ms;           /**< wall clock, ms since the epoch */
	uint64_t mono_ns;           /**< monotonic clock: orders events of different workers */
	const struct dk_rule *rule; /**< lives as long as its policy snapshot */
	struct dk_policy *policy;   /**< the snapshot @p rule belongs to */
	const char *group;          /**< client group's name, owned by @p policy; NULL: none */
	uint8_t family;             /**< AF_INET or AF_INET6 */
	uint8_t transport;          /**< enum dk_transport */
	uint8_t action;             /**< enum dk_action applied to the query */
	uint8_t rcode;              /**< rcode the client got (when known) */
	uint16_t port;              /**< client source port */
	uint16_t qtype;
	uint8_t addr[16]; /**< client address (4 octets used for IPv4) */
	uint8_t qname_len;
	uint8_t matched_off;         /**< where the matched entry starts in the matched name */
	bool wildcard;               /**< matched entry was "*.name" */
	uint8_t target_len;          /**< >0: a CNAME target matched, not the query */
	uint8_t qname[DK_NAME_MAX];  /**< lowercase wire form */
	uint8_t target[DK_NAME_MAX]; /**< the CNAME/DNAME target that matched */
	/** A behavioural Sigma rule: its group ("src_ip=10.0.0.5") and the count that crossed. */
	uint8_t group_key_len; /**< 0: not behavioural */
	char group_key[80];
	uint64_t group_count;
};

/**
 * Copies @p src into @p dst, the parts in use only: the fixed fields, the
 * @p qname_len octets of the name, the target and the group key when there
 * are any. What lies beyond them in @p dst is left as it was (no reader looks
 * past the lengths); a whole-struct copy moved some 600 octets where a
 * record uses about 100.
 */
void dk_alert_event_copy(struct dk_alert_event *dst, const struct dk_alert_event *src);

/**
 * A bounded SPSC ring of events. One worker pushes, the alert thread pops.
 * Capacity is a power of two fixed at creation.
 */
struct dk_alert_ring {
	_Atomic size_t head; /**< next slot to pop (consumer) */
	char pad1[64 - sizeof(size_t)];
	_Atomic size_t tail; /**< next slot to push (producer) */
	char pad2[64 - sizeof(size_t)];
	_Atomic uint64_t dropped; /**< pushes refused because the ring was full */
	size_t mask;
	struct dk_alert_event *slots;
};

/** Initializes @p r with room for @p capacity (rounded up to a power of two). */
int dk_alert_ring_init(struct dk_alert_ring *r, size_t capacity);
void dk_alert_ring_deinit(struct dk_alert_ring *r);

/** Consumer side: the oldest event, left in the ring; NULL when empty. */
const struct dk_alert_event *dk_alert_ring_peek(struct dk_alert_ring *r);

/** Events in the ring now; either side may ask (the answer may be stale at once). */
size_t dk_alert_ring_used(const struct dk_alert_ring *r);

/**
 * Producer side: copies @p ev in. Never blocks or allocates. Returns false
 * (and counts a drop) when the ring is full. @p was_empty is set when the
 * consumer may be asleep and should be woken (may be NULL).
 */
bool dk_alert_ring_push(struct dk_alert_ring *r, const struct dk_alert_event *ev, bool *was_empty);

/** Consumer side: copies the oldest event into @p out. False when empty. */
bool dk_alert_ring_pop(struct dk_alert_ring *r, struct dk_alert_event *out);

/**
 * A record to emit: an event plus what dedup folded into it. first_seen and
 * last_seen are the event times (ev->time_ms) of the first and the last of
 * the @p count events this record stands for, so the counts of a key's
 * records add up to the events seen.
 */
struct dk_alert_record {
	const struct dk_alert_event *ev; /**< the latest event of the window */
	uint64_t count;                  /**< events this record stands for */
	uint64_t first_seen_ms;
	uint64_t last_seen_ms;
	bool followup; /**< closes a dedup window */
	bool evicted;  /**< closed early: the dedup table was full */
};

typedef void (*dk_alert_emit_fn)(const struct dk_alert_record *rec, void *ctx);

struct dk_dedup;

/**
 * Creates dedup state holding at most @p max_keys keys of (rule, client,
 * matched entry). Returns NULL on allocation failure.
 */
struct dk_dedup *dk_dedup_new(size_t max_keys);

/**
 * Frees @p d; open windows are dropped without records (call dk_dedup_flush()
 * first to emit them). Releases the policy references it holds. NULL is a no-op.
 */
void dk_dedup_free(struct dk_dedup *d);

/**
 * Accounts @p ev at time @p now_ms. Emits through @p emit at once when the
 * rule's threshold is reached in the window (count = events so far), and
 * counts later events of the window silently. With dedup_minutes 0 every event
 * is emitted with count 1. When the key table is full the oldest key is
 * closed to make room and its unreported events go out as one record marked
 * evicted (a follow-up, or a record below the threshold); nothing is dropped
 * silently. Each open key holds a reference on ev->policy. Returns true
 * when a record went out for @p ev itself, false when it was folded into a
 * window (counted, reported later or never: it was deduplicated).
 */
bool dk_dedup_event(struct dk_dedup *d, const struct dk_alert_event *ev, uint64_t now_ms,
                    dk_alert_emit_fn emit, void *ctx);

/**
 * Closes windows that ended by @p now_ms; each with folded events emits one
 * follow-up record (count, first_seen, last_seen).
 */
void dk_dedup_tick(struct dk_dedup *d, uint64_t now_ms, dk_alert_emit_fn emit, void *ctx);

/** Closes every window now (shutdown). */
void dk_dedup_flush(struct dk_dedup *d, dk_alert_emit_fn emit, void *ctx);

/** Keys held now. */
size_t dk_dedup_size(const struct dk_dedup *d);

/** Length of dk_alert_time_text()'s output, without the NUL. */
#define DK_ALERT_TIME_LEN 24

/**
 * Writes @p ms (Unix time in milliseconds) as "YYYY-MM-DDTHH:MM:SS.mmmZ" and
 * a NUL into @p out. Returns DK_ALERT_TIME_LEN, or DK_ESPACE for a time
 * outside years 0-9999. Thread-safe (the calendar part is cached per thread).
 */
int dk_alert_time_text(uint64_t ms, char out[DK_ALERT_TIME_LEN + 1]);

/**
 * Formats @p rec as one JSON object (no newline) into @p buf. Returns the
 * length or DK_ESPACE.
 */
int dk_alert_format(const struct dk_alert_record *rec, enum dk_alert_format fmt, char *buf,
                    size_t size);
