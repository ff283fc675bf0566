/* SPDX-License-Identifier: MIT */
/*
 * The RPZ zone reader: turns the text of a Response Policy Zone
 * (draft-vixie-dnsop-dns-rpz, as Spamhaus, URLhaus and SURBL publish them) in
 * master-file format into policy records, one callback per record. Pure: no
 * I/O, the caller hands in the whole text (a file read once, or a zone just
 * transferred and written out).
 *
 * What a record means is decided here, once: its trigger from the owner name
 * (a QNAME, exact or "*." wildcard; "rpz-client-ip" and "rpz-ip" prefixes;
 * "rpz-nsdname" and "rpz-nsip", which a forwarder cannot evaluate) and its
 * action from the record (CNAME . NXDOMAIN, CNAME *. NODATA, CNAME
 * rpz-passthru. allow, CNAME rpz-drop. drop, CNAME rpz-tcp-only. truncate over
 * UDP, anything else local data). A record that cannot be read is counted
 * with its line and skipped, as a bad list line is: a feed with one odd
 * record must not take the resolver down, nor unblock the rest.
 *
 * The reader is line-based and allocates nothing per record, so a zone of a
 * million triggers costs about what a list of a million names does.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnsink/common.h"

/** What a record matches on. */
enum dk_rpz_trigger {
	DK_RPZ_QNAME,     /**< the query name (exact, or below for "*.") */
	DK_RPZ_CLIENT_IP, /**< the client's address ("rpz-client-ip") */
	DK_RPZ_IP,        /**< an address in the answer ("rpz-ip") */
	DK_RPZ_NSDNAME,   /**< a name server's name: not evaluated by a forwarder */
	DK_RPZ_NSIP,      /**< a name server's address: not evaluated by a forwarder */
	DK_RPZ_TRIGGER_MAX,
};

/** What a record does. */
enum dk_rpz_action {
	DK_RPZ_NXDOMAIN, /**< CNAME . */
	DK_RPZ_NODATA,   /**< CNAME *. */
	DK_RPZ_PASSTHRU, /**< CNAME rpz-passthru. (or CNAME to the owner itself) */
	DK_RPZ_DROP,     /**< CNAME rpz-drop. */
	DK_RPZ_TCP_ONLY, /**< CNAME rpz-tcp-only. */
	DK_RPZ_LOCAL,    /**< local data: A, AAAA, TXT or a CNAME elsewhere */
	DK_RPZ_ACTION_MAX,
};

/** Longest rdata of a local-data record the reader keeps (a TXT of a few strings). */
#define DK_RPZ_RDATA_MAX 512

/** One policy record as dk_rpz_parse() hands it out; valid during the callback. */
struct dk_rpz_rec {
	enum dk_rpz_trigger trigger;
	enum dk_rpz_action action;
	unsigned line; /**< line of the record in the text */
	/** The owner with the origin stripped, lowercase wire form (QNAME: the name). */
	uint8_t owner[DK_NAME_MAX];
	size_t owner_len;
	bool wildcard; /**< QNAME: "*.name", matches only below name (owner is name) */
	/* IP triggers: the prefix. */
	uint8_t family; /**< AF_INET or AF_INET6 */
	uint8_t prefix; /**< prefix length */
	uint8_t addr[16];
	/* Local data: the record itself. */
	uint16_t type;
	uint32_t ttl;
	uint16_t rdlen;
	uint8_t rdata[DK_RPZ_RDATA_MAX]; /**< wire rdata, names uncompressed */
};

/** What reading one zone found; filled by dk_rpz_parse(). */
struct dk_rpz_stats {
	size_t lines;   /**< lines read */
	size_t records; /**< resource records read, SOA and NS included */
	size_t triggers[DK_RPZ_TRIGGER_MAX];
	size_t actions[DK_RPZ_ACTION_MAX];
	size_t invalid;              /**< records skipped as unreadable or meaningless */
	unsigned first_invalid_line; /**< 0 when none */
	size_t unsupported;          /**< well-formed but of a type dnsink cannot answer */
	bool has_soa;
	uint32_t serial, refresh, retry, expire, minimum; /**< from the SOA */
};

/**
 * Called once per policy record; returns 0 to go on or a negative code to
 * stop reading (dk_rpz_parse() returns it).
 */
typedef int (*dk_rpz_fn)(void *ctx, const struct dk_rpz_rec *rec);

/**
 * Reads zone text @p text (@p len octets) whose origin is @p origin
 * (lowercase wire form; "$ORIGIN" lines may change it for relative names
 * after them, but every owner must be at or below @p origin). Calls @p fn
 * for each policy record; the apex (SOA, NS) fills @p st only. Returns 0 or
 * what @p fn returned. Bad records never fail the read; they are counted in
 * @p st.
 */
int dk_rpz_parse(const char *text, size_t len, const uint8_t *origin, size_t origin_len,
                 dk_rpz_fn fn, void *ctx, struct dk_rpz_stats *st);

/** "qname", "client-ip", "ip", "nsdname", "nsip". */
const char *dk_rpz_trigger_name(enum dk_rpz_trigger t);
/** "nxdomain", "nodata", "passthru", "drop", "tcp-only", "local". */
const char *dk_rpz_action_name(enum dk_rpz_action a);
