/* SPDX-License-Identifier: MIT */
/*
 * DNS messages on the hot path: bounded parsing of a query's header, question
 * and EDNS OPT record; local answers written in place into a caller's buffer;
 * checks that an upstream answer belongs to the query it claims to answer.
 *
 * Also a one-pass walker over the records of a message (dk_rr_iter), which
 * every record walk here uses and callers may use to inspect an answer.
 *
 * Nothing here allocates. Wire constants and macros come from ldns
 * (ldns/packet.h, ldns/rr.h); the allocating ldns parser stays off this path.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnsink/common.h"

#define DK_HEADER_LEN 12
/** Largest DNS message (TCP). */
#define DK_MSG_MAX 65535
/** UDP payload assumed for a client without EDNS (RFC 1035). */
#define DK_UDP_PLAIN 512
/*
 * Wire values ldns names in headers this one does not pull in (ldns/edns.h
 * is not self-contained); msg.c checks at build time that they agree.
 */
/** Extended DNS Error info-codes (RFC 8914) that dnsink uses: LDNS_EDE_*. */
#define DK_EDE_STALE      3
#define DK_EDE_FORGED     4
#define DK_EDE_BLOCKED    15
#define DK_EDE_PROHIBITED 18
/**
 * BADVERS (RFC 6891), the one extended rcode dnsink sends; ldns's rcode enum
 * stops at NOTZONE, so it has no name there.
 */
#define DK_RCODE_BADVERS 16

/** A query as parsed by dk_msg_parse_query(). */
struct dk_query {
	uint16_t id;
	uint16_t flags; /**< header octets 2-3 as received */
	uint8_t opcode;
	uint16_t qtype;
	uint16_t qclass;
	uint8_t qname[DK_NAME_MAX]; /**< lowercase wire form */
	uint8_t qname_len;
	uint16_t question_end; /**< offset just past the question */
	bool has_edns;
	uint8_t edns_version;
	bool edns_do;           /**< DNSSEC OK bit */
	uint16_t edns_udp_size; /**< as sent, not clamped */
};

/**
 * Parses query @p pkt (@p len octets) into @p q. Returns 0 for a query to
 * answer or forward, or:
 *  - DK_EDROP: shorter than a header, or QR set (never answer: no reflection);
 *  - DK_EFORMERR: QDCOUNT != 1, bad question, bad OPT, garbage after records;
 *  - DK_ENOTIMP: opcode other than QUERY (q->id/flags/opcode are valid);
 *  - DK_EBADVERS: EDNS version > 0.
 * After DK_EFORMERR/DK_ENOTIMP/DK_EBADVERS, q holds the header fields and,
 * when it parsed, the question (q->question_end != 0).
 */
int dk_msg_parse_query(const uint8_t *pkt, size_t len, struct dk_query *q);

/** Local answer data from the config's "sinkhole:" section. */
struct dk_sinkhole {
	uint8_t ipv4[4];
	uint8_t ipv6[16];
	uint32_t ttl;
};

/**
 * Writes into @p out (@p cap octets) an answer to query @p pkt/@p q with
 * @p rcode (LDNS_RCODE_* values, or DK_RCODE_BADVERS, which goes into the OPT).
 * Copies ID, opcode and the question (as the client wrote it) and sets QR.
 * For opcode QUERY it copies RD and CD and sets RA; for any other opcode
 * (the NOTIMP answer) RD, RA, AD and CD stay clear, being defined for QUERY
 * only.
 * Adds an OPT record when the query had one, carrying Extended DNS Error
 * @p ede unless @p ede is 0. Returns the length or DK_ESPACE.
 */
int dk_msg_write_error(const uint8_t *pkt, const struct dk_query *q, uint8_t rcode, uint16_t ede,
                       uint8_t *out, size_t cap);

/**
 * Writes a sinkhole answer: NOERROR, an A (or AAAA) record with @p sh for
 * those types and no answer (NODATA) for other types, TTL sh->ttl; OPT and
 * EDE as dk_msg_write_error(). Returns the length or DK_ESPACE.
 */
int dk_msg_write_sinkhole(const uint8_t *pkt, const struct dk_query *q,
                          const struct dk_sinkhole *sh, uint16_t ede, uint8_t *out, size_t cap);

/**
 * Writes a NOERROR local answer to @p q from records @p recs (@p len octets
 * of [type:2][ttl:4][rdlen:2][rdata], rdata names uncompressed, as RPZ local
 * data is kept), each owned by the query name: the records of the asked
 * type (all for ANY), or the CNAME when there is one; none (NODATA) when no
 * record fits. EDE as dk_msg_write_error(). Returns the length, DK_ESPACE,
 * or DK_EFORMERR when @p recs is cut short.
 */
int dk_msg_write_records(const uint8_t *pkt, const struct dk_query *q, const uint8_t *recs,
                         size_t len, uint16_t ede, uint8_t *out, size_t cap);

/**
 * Appends to message @p ans (@p len octets in a buffer of @p cap) the OPT
 * record dnsink sends to the client of query @p q: our UDP size, the
 * client's DO bit, the extended rcode bits of the header's rcode, and
 * Extended DNS Error @p ede unless 0; @p ans must hold no OPT already. A
 * client without EDNS gets none (returns @p len). Returns the new length,
 * DK_ESPACE, or DK_EFORMERR for a message without a header.
 */
int dk_msg_add_opt(uint8_t *ans, size_t len, size_t cap, const struct dk_query *q, uint16_t ede);

/**
 * Checks that upstream answer @p ans (@p len octets) answers query @p q sent
 * with ID @p id: QR set, same ID, QDCOUNT 1, same question (name compared
 * case-insensitively, same type and class). Returns 0 or DK_EMISMATCH /
 * DK_EFORMERR.
 */
int dk_msg_check_answer(const uint8_t *ans, size_t len, uint16_t id, const struct dk_query *q);

/**
 * Checks the records of upstream answer @p ans (@p len octets), which
 * dk_msg_check_answer() accepted: every record the counts announce must lie
 * within the message, and nothing may follow the last one. A truncated (TC)
 * answer is exempt: it may end anywhere. Returns 0 or DK_EFORMERR, for an
 * answer to our question that cannot be passed on (the try failed).
 */
int dk_msg_check_answer_body(const uint8_t *ans, size_t len);

/** Sections of a message that hold records (the values of ldns_pkt_section). */
enum dk_section {
	DK_SECTION_ANSWER = 1,
	DK_SECTION_AUTHORITY = 2,
	DK_SECTION_ADDITIONAL = 3,
};

/** One resource record found by dk_msg_rr_next(): where it lies and its fixed fields. */
struct dk_rr {
	size_t owner;    /**< offset of the owner name, as written (maybe a pointer) */
	size_t rdata;    /**< offset of the rdata; it ends at rdata + rdlen */
	uint16_t rdlen;  /**< rdata length, within the message */
	uint16_t type;   /**< LDNS_RR_TYPE_* */
	uint16_t rclass; /**< LDNS_RR_CLASS_*; an OPT record's UDP size */
	uint32_t ttl;    /**< as sent; an OPT record's extended rcode and flags */
	enum dk_section section;
	bool root_owner; /**< the owner is the root name, as an OPT record's must be */
};

/**
 * A one-pass walk over the records of a message, section by section, each
 * step bounded by the message length. It reads only the fixed fields and
 * allocates nothing; what a record means is the caller's business. Owner
 * names are stepped over without following their compression pointers.
 * Members are read-only for callers.
 */
struct dk_rr_iter {
	const uint8_t *pkt;      /**< the message, borrowed */
	size_t len;              /**< its length */
	size_t off;              /**< where the next record starts; after the
	                              last, the end of the records */
	unsigned left;           /**< records left in the current section */
	enum dk_section section; /**< the current section */
	bool failed;             /**< a record was malformed; the walk is over */
};

/**
 * Starts a walk over message @p pkt (@p len octets, borrowed for the walk):
 * steps over the header and the QDCOUNT questions and positions @p it on the
 * first record of the answer section. Returns 0, or DK_EFORMERR when the
 * header or a question is cut short or malformed (the walk then yields
 * nothing but DK_EFORMERR).
 */
int dk_msg_rr_iter_init(struct dk_rr_iter *it, const uint8_t *pkt, size_t len);

/**
 * Like dk_msg_rr_iter_init() for a caller that has read the question
 * already and knows it ends at @p qend (the forwarder's check of an answer,
 * the cache's own entries): the walk starts there, without stepping over the
 * question again. Returns DK_EFORMERR when @p qend lies outside the message.
 */
int dk_msg_rr_iter_init_at(struct dk_rr_iter *it, const uint8_t *pkt, size_t len, size_t qend);

/**
 * Reads the next record of the current section into @p rr and steps past
 * it. Returns 1 for a record, 0 at the end of the section (as its count
 * says), DK_EFORMERR when the record runs past the end of the message; after
 * an error every call returns DK_EFORMERR.
 */
int dk_msg_rr_next(struct dk_rr_iter *it, struct dk_rr *rr);

/**
 * Steps over what is left of the current section and moves to the next:
 * answer, then authority, then additional. Returns 1 when it moved, 0 when
 * the additional section was the last (it->off is then the end of the
 * records), or DK_EFORMERR.
 */
int dk_msg_rr_next_section(struct dk_rr_iter *it);

/**
 * Reads the target of CNAME or DNAME record @p rr (from @p it) into @p out
 * in lowercase wire form and sets @p *out_len. The name must lie within the
 * rdata: its labels may not run past the rdata's end, and compression
 * pointers are followed only strictly backwards (so never into the rest of
 * the rdata or past it). Octets after the name inside the rdata are not
 * looked at. Returns 0, DK_EFORMERR for a bad or cut name, or -EINVAL when
 * @p rr is of another type.
 */
int dk_msg_rr_target(const struct dk_rr_iter *it, const struct dk_rr *rr, uint8_t out[DK_NAME_MAX],
                     size_t *out_len);

/**
 * Prepares upstream answer @p ans for the client: restores the client's ID
 * and the client's question octets (its letter case) from @p pkt. If @p len
 * exceeds @p max (the client's UDP size), truncates to header + question +
 * OPT, sets TC and returns the new length. Works in place.
 */
size_t dk_msg_answer_for_client(uint8_t *ans, size_t len, const uint8_t *pkt,
                                const struct dk_query *q, size_t max);

/** The UDP payload size a client can take: 512 without EDNS, else clamped to [512, 4096]. */
size_t dk_msg_client_udp_max(const struct dk_query *q);

/** Writes @p id into the header of @p pkt. */
static inline void dk_msg_set_id(uint8_t *pkt, uint16_t id)
{
	pkt[0] = (uint8_t)(id >> 8);
	pkt[1] = (uint8_t)id;
}

/** Type mnemonic ("A", "AAAA", "TYPE666") into @p buf; returns buf. */
const char *dk_rrtype_name(uint16_t type, char *buf, size_t size);
