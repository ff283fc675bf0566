/* SPDX-License-Identifier: MIT */
/*
 * Sigma rules, run inline. A rule file whose YAML document has "logsource:"
 * and "detection:" (or "correlation:") is a Sigma rule: the loader (sigma.c)
 * reads it with Sigma's own semantics, maps its field names onto what a
 * resolver sees (the query name, the query type, the client, the answers and
 * the rcode), and compiles every loaded rule of a snapshot into one engine
 * (sigma_db.c): exact names and label-aligned "endswith: .x" values go into a
 * suffix set, every other string condition into one Vectorscan database
 * scanned once per name, regular expressions Vectorscan refuses into PCRE2
 * (JIT). Per query the engine sets one bit per condition that holds, then
 * evaluates the conditions of the rules those bits touch.
 *
 * A rule whose logsource is not DNS is skipped; a DNS rule that needs what a
 * resolver cannot see (process fields such as Image, HTTP fields, keyword
 * searches, unsupported modifiers) is rejected. Both are reported, with the
 * reason, in the snapshot's Sigma report, and never stop a load; a file that
 * is not YAML or breaks the Sigma schema is an error with FILE:LINE.
 *
 * Everything here is pure: no I/O but reading rule files, no libuv. The
 * per-query functions take a caller-owned scratch (one per worker thread) and
 * never allocate.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dnsink/common.h"

struct dk_sigma;
struct dk_sigma_scratch;

/** What a Sigma field name means to a resolver (the field table, sigma_tab.c). */
enum dk_sigma_field {
	DK_SIGMA_F_QUERY,  /**< the query name, text without the trailing dot */
	DK_SIGMA_F_QTYPE,  /**< the query type: name or number */
	DK_SIGMA_F_CLIENT, /**< the client address */
	DK_SIGMA_F_QLEN,   /**< dnsink extension: length of the query name text */
	DK_SIGMA_F_REGDOM, /**< dnsink extension: registered domain (Public Suffix List) */
	DK_SIGMA_F_ANSWER, /**< each answer record's data: address, target name, TXT text */
	DK_SIGMA_F_ATYPE,  /**< each answer record's type */
	DK_SIGMA_F_RCODE,  /**< the answer's rcode */
	DK_SIGMA_F_N,
};

/** The field Sigma field name @p name maps to (case-insensitive), or -1. */
int dk_sigma_field_of(const char *name);

/** What became of one Sigma document. */
enum dk_sigma_status {
	DK_SIGMA_LOADED,   /**< compiled and in force */
	DK_SIGMA_SKIPPED,  /**< logsource is not DNS */
	DK_SIGMA_REJECTED, /**< DNS, but needs what dnsink cannot evaluate */
};

/** How a loaded rule is evaluated (bits, for `dnsink check`). */
enum dk_sigma_how {
	DK_SIGMA_HOW_SUFFIX = 1 << 0,  /**< exact / label-aligned names in the suffix set */
	DK_SIGMA_HOW_HS = 1 << 1,      /**< patterns in the Vectorscan database */
	DK_SIGMA_HOW_PCRE = 1 << 2,    /**< regexes only PCRE2 takes */
	DK_SIGMA_HOW_DIRECT = 1 << 3,  /**< type, client, rcode, length: compared directly */
	DK_SIGMA_HOW_ANSWER = 1 << 4,  /**< needs the upstream's answer: answer-side hook */
	DK_SIGMA_HOW_COUNT = 1 << 5,   /**< behavioural: counted per group and window */
	DK_SIGMA_HOW_NOALERT = 1 << 6, /**< referenced by a correlation with generate: false */
};

/** One line of the report `dnsink check` prints. Strings owned by the report. */
struct dk_sigma_entry {
	char *file;
	unsigned line;
	char *id;    /**< Sigma id (or the file name when it has none) */
	char *title; /**< may be NULL for a skipped document */
	enum dk_sigma_status status;
	char *reason; /**< why skipped or rejected; NULL when loaded */
	char *note;   /**< loaded with a caveat (ignored filters, default window); may be NULL */
	unsigned how; /**< enum dk_sigma_how bits, loaded rules only */
	unsigned rule_index; /**< index in the policy's rules, loaded rules only */
};

struct dk_sigma_report {
	struct dk_sigma_entry *entries;
	size_t n;
	size_t loaded, skipped, rejected;
};

/** The query-side facts a Sigma rule can test. */
struct dk_sigma_query {
	const uint8_t *qname; /**< lowercase wire form */
	size_t qname_len;
	uint16_t qtype;
	const struct sockaddr *client; /**< AF_INET or AF_INET6; may be NULL */
};

/** Most rules one evaluation reports. */
#define DK_SIGMA_HITS_MAX 32

/** Rules that matched one evaluation, by policy rule index, in load order. */
struct dk_sigma_hits {
	uint16_t rule[DK_SIGMA_HITS_MAX]; /**< alerting rules, by policy rule index */
	unsigned n;
	uint16_t eng[DK_SIGMA_HITS_MAX]; /**< every rule that matched, engine index (counting) */
	uint16_t all[DK_SIGMA_HITS_MAX]; /**< every rule that matched, policy index (tests) */
	unsigned n_eng;                  /**< entries of @p eng and @p all */
	/** Behavioural alerts: the group key text and the count that crossed. */
	struct {
		uint16_t rule;
		uint64_t count;
		char key[80];
	} corr[4];
	unsigned n_corr;
};

/**
 * Makes a scratch for @p s (NULL: an empty one), owned by the caller, for one
 * thread at a time. Returns 0 or -ENOMEM.
 */
int dk_sigma_scratch_new(const struct dk_sigma *s, struct dk_sigma_scratch **out);

/** Makes @p sc fit @p s too (after a reload). Cold path. Returns 0 or -ENOMEM. */
int dk_sigma_scratch_fit(struct dk_sigma_scratch *sc, const struct dk_sigma *s);

/** Frees @p sc. NULL is a no-op. */
void dk_sigma_scratch_free(struct dk_sigma_scratch *sc);

/**
 * Evaluates the query-side rules of @p s on @p q into @p hits (cleared
 * first). Returns the number of rules that matched. Allocation-free.
 * Rules that need the answer are left for dk_sigma_match_answer().
 */
unsigned dk_sigma_match_query(const struct dk_sigma *s, struct dk_sigma_scratch *sc,
                              const struct dk_sigma_query *q, struct dk_sigma_hits *hits);

/**
 * Evaluates the answer-side rules of @p s on @p q and upstream answer @p ans
 * (@p len octets) into @p hits. Returns the number of rules that matched.
 */
unsigned dk_sigma_match_answer(const struct dk_sigma *s, struct dk_sigma_scratch *sc,
                               const struct dk_sigma_query *q, const uint8_t *ans, size_t len,
                               struct dk_sigma_hits *hits);

/** True when @p s holds rules evaluated on answers. */
bool dk_sigma_has_answer_rules(const struct dk_sigma *s);

/**
 * Feeds the behavioural (correlation and aggregation) rules of @p s with the
 * query @p q and the base rules it matched (@p hits, from
 * dk_sigma_match_query()) at monotonic time @p now_ms; the alerts due are
 * added to hits->corr. The counting state lives in @p sc (bounded; a full
 * table evicts the oldest group and counts it). Allocation-free.
 */
void dk_sigma_count(const struct dk_sigma *s, struct dk_sigma_scratch *sc,
                    const struct dk_sigma_query *q, uint64_t now_ms, struct dk_sigma_hits *hits);

/** Counters of one scratch's behavioural table. */
struct dk_sigma_count_stats {
	uint64_t groups;    /**< groups held now */
	uint64_t evictions; /**< groups evicted from a full table (their counts lost) */
};
void dk_sigma_count_stats(const struct dk_sigma_scratch *sc, struct dk_sigma_count_stats *st);

/** The number of behavioural rules in @p s. */
size_t dk_sigma_n_counting(const struct dk_sigma *s);

/** Frees @p s. NULL is a no-op. */
void dk_sigma_free(struct dk_sigma *s);

/** Frees what @p r owns. */
void dk_sigma_report_deinit(struct dk_sigma_report *r);

/** Sigma level name ("informational", ...) to a dnsink severity; -1 when unknown. */
int dk_sigma_level_severity(const char *level);
