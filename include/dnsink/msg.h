/* SPDX-License-Identifier: MIT */
/*
 * DNS messages on the hot path: bounded parsing of a query's header, question
 * and EDNS OPT record; local answers written in place into a caller's buffer;
 * checks that an upstream answer belongs to the query it claims to answer.
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
/** Extended DNS Error info-codes (RFC 8914) that dnsink uses. */
#define DK_EDE_BLOCKED    15
#define DK_EDE_PROHIBITED 18

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
 * @p rcode (ldns_pkt_rcode values; BADVERS is 16 and goes into the OPT).
 * Copies ID, RD, CD and the question (as the client wrote it); sets QR, RA.
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
