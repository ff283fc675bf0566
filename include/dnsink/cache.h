/* SPDX-License-Identifier: MIT */
/*
 * The response cache: upstream answers kept by question, bounded in octets,
 * served again with their TTLs counted down. Pure: no I/O, no clock of its
 * own (every call takes the caller's monotonic milliseconds), no locks.
 *
 * One cache per worker, made by the query module. Queries of one client
 * socket reach one worker (SO_REUSEPORT hashes the 4-tuple), so a client's
 * repeated name hits its own worker's cache; a cache per worker needs no
 * lock and moves no cache line between cores on a hit, where a shared one
 * would take a lock or an atomic on every lookup. The price is that a name
 * is fetched once per worker, not once per host, and that size_mb is split
 * between the workers.
 *
 * Memory. Everything is allocated by dk_cache_new() and nothing after it:
 * an arena of DK_CACHE_CHUNK-octet chunks, one 4-octet link and one octet of
 * state per chunk, a hash table of 4-octet heads (between one and two per
 * chunk; the arena and the heads on huge pages where the kernel offers them)
 * and a scratch area for insert (a record table and a 64 KiB
 * answer buffer, about 140 KiB). The budget given to
 * dk_cache_new() covers all of it. An entry takes
 * ceil((DK_CACHE_ENTRY_HDR + stored wire length) / DK_CACHE_CHUNK) chunks,
 * linked (the key's name is the stored question); dk_cache_stats() reports
 * the chunk octets in use. A short A answer fits one chunk.
 *
 * Eviction is CLOCK over the chunk array: a hit sets an entry's reference
 * bit; the hand clears set bits and evicts the first entry whose bit is
 * clear, or any entry past its stale window. New entries start with the bit
 * clear, so a flood of names asked once pushes out other names asked once
 * before it pushes out names that were asked again.
 *
 * What is stored is not the upstream's message octet for octet but the part
 * of it that answers the question (see dk_cache_insert()): the CNAME chain
 * from the query name and the records of its last name, names written
 * without compression (but for owners equal to the query name: a pointer to
 * the question), TTLs clamped, no OPT record (the client's is added on the
 * way out).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnsink/common.h"

/** Octets of one arena chunk. */
#define DK_CACHE_CHUNK 128
/** Octets of an entry's header, which opens its first chunk. */
#define DK_CACHE_ENTRY_HDR 40
/** The smallest budget dk_cache_new() accepts. */
#define DK_CACHE_MIN_BYTES (512 * 1024)
/** Records an answer may hold to be cached. */
#define DK_CACHE_RRS_MAX 256
/** CNAME records followed from the query name at most. */
#define DK_CACHE_CHAIN_MAX 16

/** Key bits beside name, type and class. */
#define DK_CACHE_BIT_DO 0x01 /**< the query's EDNS DO bit */
#define DK_CACHE_BIT_CD 0x02 /**< the query's CD bit */

/** What an answer is cached under. */
struct dk_cache_key {
	const uint8_t *name; /**< lowercase wire form, borrowed */
	uint8_t name_len;
	uint16_t qtype;
	uint16_t qclass;
	uint8_t bits; /**< DK_CACHE_BIT_* */
};

/** TTL rules, from the config's cache section (seconds). */
struct dk_cache_limits {
	uint32_t min_ttl;          /**< positive answers' TTLs are raised to this */
	uint32_t max_ttl;          /**< and lowered to this */
	uint32_t negative_max_ttl; /**< cap of NXDOMAIN/NODATA (RFC 2308) */
	uint32_t failure_ttl;      /**< SERVFAIL and upstream failure (RFC 9520) */
	uint32_t stale_max_s; /**< how long past expiry an entry may be served stale; 0: never */
};

/** What dk_cache_insert() did: stored, or why not (the refusal reasons). */
enum dk_cache_result {
	DK_CACHE_STORED = 0,
	DK_CACHE_REFUSED_TC,        /**< truncated: never cached */
	DK_CACHE_REFUSED_MALFORMED, /**< does not parse, or not an answer to the key */
	DK_CACHE_REFUSED_RCODE,     /**< not NOERROR, NXDOMAIN, SERVFAIL; or an extended rcode */
	DK_CACHE_REFUSED_NO_SOA,    /**< negative without the SOA of the name's zone */
	DK_CACHE_REFUSED_TTL0,      /**< a TTL of 0 (after the clamp) */
	DK_CACHE_REFUSED_SIZE,      /**< over 1/8 of the arena, 65471 octets or 256 records */
	DK_CACHE_RESULT_MAX,
};

/** What kind of answer an entry holds. */
enum dk_cache_kind {
	DK_CACHE_POSITIVE, /**< records of the type asked (maybe after CNAMEs) */
	DK_CACHE_NEGATIVE, /**< NXDOMAIN or NODATA, with its SOA */
	DK_CACHE_FAILURE,  /**< SERVFAIL */
};

/** Flags of dk_cache_lookup(). */
#define DK_CACHE_LOOKUP_STALE    0x01 /**< an expired entry within stale_max_s will do */
#define DK_CACHE_LOOKUP_PREFETCH 0x02 /**< claim a due refresh (see struct dk_cache_hit) */

/** About a hit. */
struct dk_cache_hit {
	enum dk_cache_kind kind;
	bool stale; /**< past its TTL: TTLs were set to DK_CACHE_STALE_TTL */
	/**
	 * With DK_CACHE_LOOKUP_PREFETCH: the entry (positive or negative) is in
	 * the last tenth of its TTL and no refresh of it is in flight; the caller
	 * now holds its one refresh, which ends when the key is stored again or
	 * with dk_cache_refresh_cancel().
	 */
	bool refresh;
	uint32_t age_s; /**< seconds since it was stored */
	uint32_t ttl_s; /**< the entry's TTL when stored */
};

/** TTL of the records of a stale answer (RFC 8767 section 4). */
#define DK_CACHE_STALE_TTL 30

/** Gauges and counts of one cache. */
struct dk_cache_stats {
	size_t entries;
	size_t bytes;       /**< chunk octets in use */
	size_t capacity;    /**< chunk octets in all */
	uint64_t evictions; /**< since dk_cache_new() */
};

struct dk_cache;

/**
 * Makes a cache that uses at most @p bytes of memory in all (see above),
 * hashing with key @p seed. Returns 0 and sets @p *out (the caller's, freed
 * with dk_cache_free()), -EINVAL when @p bytes < DK_CACHE_MIN_BYTES, or
 * -ENOMEM.
 */
int dk_cache_new(size_t bytes, uint64_t seed, struct dk_cache **out);

/** Frees @p c. NULL is a no-op. */
void dk_cache_free(struct dk_cache *c);

/** Sets the TTL rules (copied) for the inserts and lookups that follow. */
void dk_cache_set_limits(struct dk_cache *c, const struct dk_cache_limits *lim);

/**
 * Stores upstream answer @p ans (@p len octets, borrowed) to question @p k
 * at time @p now_ms, replacing an entry of the same key. Only what answers
 * the question is kept: in the answer section the CNAME chain from the query
 * name (at most DK_CACHE_CHAIN_MAX links), the records owned by a name of
 * the chain, and DNAMEs owned by an ancestor of one; in the authority
 * section of a negative answer only the SOA of a zone the last name lies in
 * and the NSEC/NSEC3/RRSIG records in that zone; nothing else of authority
 * and additional. Names are stored lowercase and uncompressed (names inside
 * the rdata of NS, CNAME, PTR, DNAME, MX, SRV and SOA too), but for owners
 * equal to the query name, which point to the question.
 *
 * TTLs: a positive answer's records are clamped to [min_ttl, max_ttl] and
 * the entry lives as long as the smallest of them; a negative answer lives
 * min(SOA TTL, SOA MINIMUM, negative_max_ttl, the CNAMEs' TTLs), and its
 * SOA's TTL is set to that; SERVFAIL lives failure_ttl. Entries are evicted
 * to make room. Sets @p *evicted (may be NULL) to the entries evicted.
 * Returns an enum dk_cache_result; the cache is unchanged unless STORED (a
 * refused answer leaves an older entry of its key in place, so that it can
 * still be served stale).
 */
enum dk_cache_result dk_cache_insert(struct dk_cache *c, const struct dk_cache_key *k,
                                     const uint8_t *ans, size_t len, uint64_t now_ms,
                                     unsigned *evicted);

/**
 * Looks @p k up at time @p now_ms. A fresh entry is copied into @p out
 * (@p cap octets) with every TTL lowered by its age in whole seconds; with
 * DK_CACHE_LOOKUP_STALE in @p flags, an entry past its TTL by at most
 * stale_max_s is served too (not a SERVFAIL), its TTLs set to
 * DK_CACHE_STALE_TTL. The copy keeps the
 * stored header (the ID is the caller's to set) and the question in
 * lowercase. Returns its length and fills @p hit; 0 for a miss; DK_ESPACE
 * when @p cap is too small. An entry past its stale window is removed. Never
 * allocates.
 */
int dk_cache_lookup(struct dk_cache *c, const struct dk_cache_key *k, uint64_t now_ms,
                    unsigned flags, uint8_t *out, size_t cap, struct dk_cache_hit *hit);

/** Ends the refresh of @p k claimed by a lookup, when it brought no new entry. */
void dk_cache_refresh_cancel(struct dk_cache *c, const struct dk_cache_key *k);

/**
 * Removes every entry of name @p name (lowercase wire form, @p name_len
 * octets; any type, class and bits), or every entry when @p name is NULL.
 * A walk over the arena: for the control socket, not the query path.
 * Returns how many entries went.
 */
size_t dk_cache_flush(struct dk_cache *c, const uint8_t *name, size_t name_len);

/** Fills @p st. */
void dk_cache_stats(const struct dk_cache *c, struct dk_cache_stats *st);

/** Short names of the refusal reasons ("tc", "malformed", ...), for metrics. */
const char *dk_cache_result_name(enum dk_cache_result r);
