/* SPDX-License-Identifier: MIT */
/*
 * DNS log records for `dnsink hunt`: one lookup as a log line, a dnstap
 * message or a database row described it, in the form the policy reads
 * (lowercase wire name, type, client, rcode, the names an answer pointed
 * to). The readers of the text formats are pure functions of one line (and,
 * for Zeek's TSV, of the header the file began with), so they are unit
 * tested and fuzzed alone; the readers that need a library (dnstap,
 * Pi-hole's SQLite) and the file handling live in src/cli/.
 *
 * Nothing here allocates.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnsink/common.h"

/** Log formats; the names are what `--format` takes. */
enum dk_logfmt {
	DK_LOGFMT_AUTO,
	DK_LOGFMT_ROUTE53, /**< AWS Route 53 Resolver query log, JSON lines */
	DK_LOGFMT_OCSF,    /**< OCSF DNS Activity (class 4003), JSON lines */
	DK_LOGFMT_ZEEK,    /**< Zeek dns.log, TSV or JSON */
	DK_LOGFMT_DNSTAP,  /**< Frame Streams of dnstap protobuf messages */
	DK_LOGFMT_BIND,    /**< BIND 9 query log lines */
	DK_LOGFMT_SYSMON,  /**< Sysmon Event ID 22 (DnsQuery), JSON lines */
	DK_LOGFMT_PIHOLE,  /**< Pi-hole FTL database (SQLite) */
	DK_LOGFMT_DNSINK,  /**< dnsink's native alert records */
	DK_LOGFMT_COUNT,
};

/** Why a record could not be read: the kinds the hunt summary counts. */
enum dk_logerr {
	DK_LOGERR_JSON = -2001,   /**< not JSON (or cut short) */
	DK_LOGERR_SHAPE = -2002,  /**< JSON, but no DNS record of a known shape */
	DK_LOGERR_NAME = -2003,   /**< no query name, or not a valid one */
	DK_LOGERR_TIME = -2004,   /**< a time that does not read */
	DK_LOGERR_ADDR = -2005,   /**< a client address that does not read */
	DK_LOGERR_ZEEK = -2006,   /**< a Zeek TSV line without or against its #fields */
	DK_LOGERR_BIND = -2007,   /**< not a BIND query line */
	DK_LOGERR_FRAME = -2008,  /**< a Frame Streams frame cut or malformed */
	DK_LOGERR_DNSTAP = -2009, /**< a frame that is not a dnstap message */
	DK_LOGERR_DNSMSG = -2010, /**< a dnstap message whose DNS message does not parse */
	DK_LOGERR_SQLITE = -2011, /**< a database that is not Pi-hole's, or a bad row */
	DK_LOGERR_IO = -2012,     /**< the file itself: unreadable, truncated compression */
	DK_LOGERR_LONG = -2013,   /**< a line longer than the reader holds */
};
#define DK_LOGERR_FIRST DK_LOGERR_LONG
#define DK_LOGERR_LAST  DK_LOGERR_JSON
#define DK_LOGERR_KINDS (DK_LOGERR_LAST - DK_LOGERR_FIRST + 1)

/** A line that holds no record and is no error (a comment, a header, another event). */
#define DK_LOG_SKIP 1

/** Targets of an answer kept per record (CNAME/DNAME chains are shorter). */
#define DK_LOGREC_TARGETS 8

/** One lookup as a log told it. */
struct dk_logrec {
	enum dk_logfmt fmt; /**< the format it was read as */
	uint64_t time_ms;   /**< event time, ms since the epoch (0: not logged) */
	uint16_t qtype;     /**< 0: not logged */
	int16_t rcode;      /**< -1: not logged */
	uint8_t family;     /**< AF_INET, AF_INET6, or 0: no client logged */
	uint8_t transport;  /**< enum dk_transport */
	uint16_t port;      /**< client port (0: not logged) */
	uint8_t addr[16];
	/** Only the answer's targets are judged, not the name (dnstap responses). */
	bool answer_only;
	uint8_t qname_len;
	uint8_t n_targets;
	uint8_t qname[DK_NAME_MAX]; /**< lowercase wire form */
	uint8_t target_len[DK_LOGREC_TARGETS];
	uint8_t target[DK_LOGREC_TARGETS][DK_NAME_MAX]; /**< CNAME/DNAME targets, wire */
	char host[64]; /**< the logging host when the log names it (Sysmon), "" else */
};

/** `--format` name of @p f ("auto", "route53", ...). */
const char *dk_logfmt_name(enum dk_logfmt f);
/** Parses a `--format` name; returns 0 or DK_ESYNTAX. */
int dk_logfmt_parse(const char *s, enum dk_logfmt *out);
/** A short text for a DK_LOGERR_* kind. */
const char *dk_logerr_name(int kind);

/** Clears @p r for a new record of format @p f. */
void dk_logrec_reset(struct dk_logrec *r, enum dk_logfmt f);

/** Sets the query name from presentation text (escapes decoded); 0 or DK_LOGERR_NAME. */
int dk_logrec_set_qname(struct dk_logrec *r, const char *text, size_t len);

/** Adds an answer target from text when it is a name (not an address); 0 or a code. */
int dk_logrec_add_target(struct dk_logrec *r, const char *text, size_t len);

/** Sets the client from an IPv4/IPv6 text (an IPv4-mapped IPv6 stays IPv6). */
int dk_logrec_set_addr(struct dk_logrec *r, const char *text, size_t len);

/**
 * Reads a UTC time "YYYY-MM-DD[T ]HH:MM:SS[.frac][Z|+hh:mm|-hh:mm]" (a zone
 * offset is applied; none means UTC) into ms since the epoch. Returns 0 or
 * DK_LOGERR_TIME.
 */
int dk_log_parse_iso_time(const char *s, size_t len, uint64_t *ms);

/** Reads epoch seconds with an optional fraction ("1591367999.305988"). */
int dk_log_parse_epoch(const char *s, size_t len, uint64_t *ms);

/** A type mnemonic ("A", "TYPE65") or number; 0 when unknown. */
uint16_t dk_log_qtype(const char *s, size_t len);

/** An rcode name in any case ("NXDOMAIN", "NXDomain") or number; -1 when unknown. */
int dk_log_rcode(const char *s, size_t len);

/**
 * Reads one JSON line as format @p want (DK_LOGFMT_AUTO: whichever of
 * route53, ocsf, zeek, sysmon, dnsink its members say). Returns 0 with
 * @p r filled, DK_LOG_SKIP (an event that is no DNS query, e.g. a Sysmon
 * event other than 22), or a DK_LOGERR_* kind.
 */
int dk_log_parse_json(const char *line, size_t len, enum dk_logfmt want, struct dk_logrec *r);

/**
 * Reads one BIND 9 query log line (the querylog channel, with or without
 * print-time, print-category, print-severity, or through syslog). Times
 * "DD-Mon-YYYY HH:MM:SS.mmm" are read in the local time zone (TZ), as
 * named writes them; ISO 8601 ones ("print-time iso8601[-utc]") as written.
 * A line without a time gets time 0. Returns 0, DK_LOG_SKIP (an empty line) or
 * DK_LOGERR_BIND / DK_LOGERR_NAME / DK_LOGERR_ADDR.
 */
int dk_log_parse_bind(const char *line, size_t len, struct dk_logrec *r);

/** Columns of a Zeek dns.log in TSV, as its "#fields" line names them. */
struct dk_zeek_tsv {
	bool have_fields; /**< a #fields line was read */
	char sep;         /**< #separator, default tab */
	int8_t col_ts, col_orig_h, col_orig_p, col_proto, col_query, col_qtype, col_rcode,
	        col_answers;
	uint8_t n_cols;
};

/** Starts a Zeek TSV file: no #fields yet, tab separator. */
void dk_zeek_tsv_init(struct dk_zeek_tsv *z);

/**
 * Reads one line of a Zeek dns.log in TSV: "#" header lines update @p z and
 * give DK_LOG_SKIP; a data line gives 0 with @p r filled, or DK_LOGERR_ZEEK
 * (no #fields before it, a column missing) or another kind.
 */
int dk_log_parse_zeek_tsv(struct dk_zeek_tsv *z, const char *line, size_t len, struct dk_logrec *r);

/**
 * Guesses the format of a file from its first octets (@p n of them,
 * decompressed): SQLite (pihole), Frame Streams (dnstap), Zeek TSV ("#separator"
 * or "#fields"), JSON ('{': the JSON reader tells route53, ocsf, ... per
 * line), else BIND. Returns the format, DK_LOGFMT_AUTO for JSON lines.
 */
enum dk_logfmt dk_logfmt_sniff(const uint8_t *p, size_t n);

/** Octets of dnstap protobuf dk_log_parse_dnstap() decodes at most per frame. */
#define DK_DNSTAP_FRAME_MAX (2 * 65536 + 4096)

/** What a dnstap reader keeps from frame to frame. */
struct dk_dnstap_state {
	bool saw_query; /**< the stream carries CLIENT_QUERY (or AUTH_QUERY) messages */
};

/** Starts a stream. */
void dk_dnstap_state_init(struct dk_dnstap_state *st);

/**
 * Decodes one Frame Streams data frame (a dnstap protobuf) into @p r:
 * CLIENT_QUERY and CLIENT_RESPONSE messages (and AUTH_QUERY/AUTH_RESPONSE,
 * which are a client's lookups too, as an authoritative server logs them).
 * A query is judged on its name; a response on its answer's CNAME/DNAME
 * targets, and on its name too when the stream has shown no query (a log
 * of responses only), so a lookup logged twice counts once. Returns 0,
 * DK_LOG_SKIP (another message type), DK_LOGERR_DNSTAP (not a dnstap
 * message), DK_LOGERR_DNSMSG (its DNS message does not parse) or
 * DK_LOGERR_NAME.
 */
int dk_log_parse_dnstap(struct dk_dnstap_state *st, const uint8_t *frame, size_t len,
                        struct dk_logrec *r);
