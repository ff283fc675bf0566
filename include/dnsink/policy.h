/* SPDX-License-Identifier: MIT */
/*
 * The policy snapshot: every rule loaded from the rule files and one suffix
 * set over all their domains. A snapshot is immutable once loaded; workers
 * share it read-only and a reload builds a new one and swaps a pointer.
 *
 * dk_policy_load() lives in rules.c (YAML and list files); matching lives in
 * policy.c and is pure: a name in, a verdict out, no I/O.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnsink/common.h"
#include "dnsink/config.h"
#include "dnsink/rpz.h"
#include "dnsink/sigma.h"

struct dk_suffixset;
struct dk_sigma_conf;
struct dk_ipset;

/** What a matching rule does with the query. */
enum dk_action {
	DK_ACTION_SINKHOLE, /**< answer locally with the sinkhole addresses */
	DK_ACTION_NXDOMAIN, /**< answer locally NXDOMAIN */
	DK_ACTION_REFUSED,  /**< answer locally REFUSED */
	DK_ACTION_ALERT,    /**< forward as usual, alert */
	DK_ACTION_ALLOW,    /**< exception: forward, never alert */
	/* The actions RPZ adds; a rule file may name the first three too. */
	DK_ACTION_NODATA,   /**< answer locally NOERROR without records */
	DK_ACTION_DROP,     /**< no answer at all */
	DK_ACTION_TCP_ONLY, /**< over UDP an empty truncated answer (TC); over TCP forward */
	DK_ACTION_LOCAL,    /**< answer with the trigger's local data (RPZ only) */
};

enum dk_severity {
	DK_SEVERITY_INFO,
	DK_SEVERITY_LOW,
	DK_SEVERITY_MEDIUM,
	DK_SEVERITY_HIGH,
	DK_SEVERITY_CRITICAL,
};

/** Most rules a snapshot can hold (the rule index travels in 15 bits). */
#define DK_RULES_MAX 32767

/** One test case embedded in a rule file ("tests:"). */
struct dk_rule_test {
	char *name;    /**< the test's name */
	bool expect;   /**< true: the rule must match the query */
	char *query;   /**< the query name as written in the log record */
	char *client;  /**< "client:": judged as this client's group sees the rule; NULL: none */
	unsigned line; /**< line of the test in the rule file */
};

/** A rule as loaded from one rule file. All strings are owned by the policy. */
struct dk_rule {
	char *id; /**< unique across the snapshot */
	char *name;
	char *description; /**< may be NULL */
	enum dk_severity severity;
	enum dk_action action;
	char **mitre; /**< "TA0040:T1496" pairs */
	size_t n_mitre;
	char **references;
	size_t n_references;
	char **tags; /**< the rule's "tags:", by which client groups may name it */
	size_t n_tags;
	bool alert;             /**< false: enforce silently */
	unsigned dedup_minutes; /**< 0: no dedup, every event is a record */
	unsigned threshold;     /**< events in a window before the first record (>= 1) */
	struct dk_rule_test *tests;
	size_t n_tests;
	char *file;       /**< rule file it came from */
	unsigned line;    /**< line of "id:" in that file */
	size_t n_entries; /**< domain entries it contributed (valid ones) */
	uint16_t index;   /**< position in load order */
	/** "single_label: true": entries of one label (a whole TLD) are intended. */
	bool single_label_ok;
	size_t n_single_label;       /**< single-label entries in its "domains:" */
	unsigned first_single_label; /**< line of the first one in the rule file, 0: none */
	/** This rule's entries alone; only with DK_POLICY_PER_RULE_SETS. */
	struct dk_suffixset *own;
	bool sigma; /**< a Sigma rule: matched by the policy's Sigma engine, not by names */
	/**
	 * An RPZ rule whose records carry their own actions is one rule per
	 * action in the snapshot: the rule as written (its first action,
	 * nxdomain) and variants for the others, right after it. A variant
	 * shares every string of its base and owns nothing; its hits count as
	 * the base's (same id).
	 */
	bool variant;
	uint16_t base;        /**< index of the rule as written (itself when not a variant) */
	struct dk_zone *zone; /**< the RPZ zone of the rule (and its variants); NULL: none */
};

/** A "tsig:" key of an RPZ rule, as written. All strings owned by the policy. */
struct dk_tsig {
	char *name;
	char *algorithm; /**< "hmac-sha256" and the others ldns knows */
	char *secret;    /**< base64 */
};

/** An RPZ zone of one rule ("rpz:"), and what reading it found. */
struct dk_zone {
	char *file;   /**< zone file read; NULL when there was none yet (primary only) */
	char *origin; /**< the zone's origin as text, with the final dot */
	uint8_t origin_wire[DK_NAME_MAX];
	size_t origin_len;
	char *primary;               /**< "addr[:port]" to transfer from; NULL: the file only */
	struct dk_addr primary_addr; /**< parsed; NOTIFY is taken from its address only */
	/** The copy a transfer keeps in state_dir ("rpz-ORIGIN.zone"); NULL without both. */
	char *state_file;
	bool from_state;            /**< this load read state_file, not file */
	struct dk_tsig tsig;        /**< name NULL: no TSIG */
	const struct dk_rule *rule; /**< the rule as written */
	unsigned line;              /**< line of "rpz:" in the rule file */
	struct dk_rpz_stats st;     /**< what the reader found */
	size_t entries;             /**< triggers that are in force (QNAME, client IP, IP) */
	uint16_t variant[DK_RPZ_ACTION_MAX]; /**< rule index for each record action */
};

/** Defaults of a "domain_urls:" entry. */
#define DK_URL_REFRESH_S  21600
#define DK_URL_MAX_SHRINK 50 /* percent */
#define DK_URL_MAX_BYTES  (64u << 20)
#define DK_URL_TIMEOUT_S  60

/** A list on a URL ("domain_urls:"), downloaded by the daemon into state_dir. */
struct dk_url_list {
	char *url;           /**< http:// or https:// */
	unsigned refresh_s;  /**< seconds between downloads */
	unsigned max_shrink; /**< percent: a download with fewer entries than this below the
	                          last good copy is refused */
	size_t max_bytes;    /**< a larger body is refused */
	unsigned timeout_s;  /**< for one download, all of it */
	char *state_file;    /**< the last good copy (state_dir); NULL without state_dir */
	const struct dk_rule *rule;
	unsigned line; /**< of the entry in the rule file */
	long list;     /**< index in dk_policy.lists of the copy read; -1: none yet */
};

/**
 * The local data of one RPZ trigger: records answered instead of asking
 * upstream. Kept sorted by (rule, wildcard, owner) for dk_policy_local().
 */
struct dk_local_data {
	uint16_t rule;      /**< the LOCAL rule it belongs to */
	bool wildcard;      /**< the trigger was "*.owner" */
	uint8_t owner_len;  /**< wire length of the trigger's name */
	uint32_t owner_off; /**< the name in dk_policy.local_blob */
	uint32_t rr_off;    /**< records in local_blob: [type:2][ttl:4][rdlen:2][rdata]... */
	uint32_t rr_len;
	uint16_t n_rr;
};

/** Per list file ("domain_files:") counts, reported by `dnsink check`. */
struct dk_list_stats {
	char *file; /**< path as resolved */
	const struct dk_rule *rule;
	size_t lines;                /**< lines read */
	size_t entries;              /**< valid entries added */
	size_t invalid;              /**< lines skipped as not a domain name */
	unsigned first_invalid_line; /**< 0 when none */
	size_t single_label;         /**< entries of one label ("com": a whole TLD) */
	unsigned first_single_label; /**< line of the first one, 0 when none */
};

struct dk_policy {
	struct dk_rule *rules; /**< in load order */
	size_t n_rules;
	struct dk_suffixset *set;
	struct dk_list_stats *lists;
	size_t n_lists;
	size_t n_entries; /**< valid entries read (before deduplication) */
	size_t n_names;   /**< distinct names in the set */
	size_t n_invalid; /**< invalid list lines, all files */
	unsigned refs;    /**< owner-thread reference count, starts at 1 */
	/** Client groups built for these rules (dk_groups_build()); NULL: none. Owned. */
	struct dk_groups *groups;
	/**
	 * Frees @p groups (dk_groups_free), set with it: a hook, so that matching
	 * and groups do not link each other in a circle (tests/check_layers.py).
	 */
	void (*groups_free)(struct dk_groups *groups);
	struct dk_sigma *sigma;              /**< compiled Sigma rules; NULL: none loaded */
	struct dk_sigma_report sigma_report; /**< every Sigma document: loaded, skipped, rejected */
	struct dk_zone *zones;               /**< RPZ zones, in load order */
	size_t n_zones;
	struct dk_url_list *urls; /**< lists on URLs, in load order */
	size_t n_urls;
	/** RPZ address triggers; values: rule index | (local index + 1) << 16. */
	struct dk_ipset *client_ips;   /**< rpz-client-ip */
	struct dk_ipset *response_ips; /**< rpz-ip, on answer addresses */
	struct dk_local_data *local;   /**< RPZ local data, sorted */
	size_t n_local;
	uint8_t *local_blob;
};

/** Options for dk_policy_load(). */
enum dk_policy_flags {
	/** Also build each rule's own suffix set (used by `dnsink test`). */
	DK_POLICY_PER_RULE_SETS = 1 << 0,
};

/**
 * Loads rule files and folders @p paths (a folder: its *.yml files in name
 * order) into a new snapshot in @p *out, owned by the caller. On error returns
 * a negative code, fills @p diag with FILE:LINE and message, and leaves
 * @p *out untouched.
 */
int dk_policy_load(const char *const *paths, size_t n_paths, unsigned flags, struct dk_policy **out,
                   struct dk_diag *diag);

/** The id of the rule that dk_policy_load_with_list() makes of a plain list. */
#define DK_BLOCKLIST_RULE_ID "dnsink.blocklist"

/**
 * Like dk_policy_load(), then adds the plain list file @p list (when not
 * NULL) as one more rule, DK_BLOCKLIST_RULE_ID: action nxdomain, severity
 * low, no alert, its lines read as any "domain_files:" entry is. This is
 * what `dnsink --blocklist FILE` loads.
 */
int dk_policy_load_with_list(const char *const *paths, size_t n_paths, const char *list,
                             unsigned flags, struct dk_policy **out, struct dk_diag *diag);

/**
 * Like dk_policy_load_with_list(), with the daemon's @p state_dir (NULL:
 * none): an RPZ zone with a primary is read from its last transferred copy
 * there (dk_zone.state_file) when that exists, else from its "file:".
 */
int dk_policy_load_state(const char *const *paths, size_t n_paths, const char *list,
                         const char *state_dir, unsigned flags, struct dk_policy **out,
                         struct dk_diag *diag);

/** Rules as written in the rule files (RPZ variants not counted); 0 for NULL. */
size_t dk_policy_rule_count(const struct dk_policy *p);

/**
 * Writes the path of the copy of list @p url kept in @p state_dir:
 * "STATE_DIR/list-HASH.txt" (a hash of the URL). Returns the length or
 * DK_ESPACE.
 */
int dk_url_state_path(const char *state_dir, const char *url, char *out, size_t size);

/**
 * Reads list text @p buf (@p len octets) as a "domain_files:" list is read,
 * counting into @p st (lines, entries, invalid, single-label) without
 * keeping anything: how the downloader judges a new copy before taking it.
 */
void dk_list_scan(const char *buf, size_t len, struct dk_list_stats *st);

/**
 * How a feed's last transfers or downloads went, as the daemon leaves it
 * next to the copy ("COPY.status") for `dnsink check` to print.
 */
struct dk_feed_status {
	double last_time;     /**< Unix time of the last attempt; 0: none */
	char last_result[32]; /**< "ok", "tsig", "shrink", ... */
	double last_ok_time;  /**< of the last good one; 0: none */
	char results[512];    /**< "ok=3 up_to_date=10 connect=2 ..." */
};

/** Reads "@p copy.status" into @p out. Returns 0 or a negative errno (no such file). */
int dk_feed_status_read(const char *copy, struct dk_feed_status *out);

/** Drops one reference; frees the snapshot at zero. NULL is a no-op. */
void dk_policy_unref(struct dk_policy *p);

/** Takes a reference (owner thread only). Returns @p p. */
struct dk_policy *dk_policy_ref(struct dk_policy *p);

/** The outcome of matching one name. */
struct dk_verdict {
	const struct dk_rule *rule; /**< NULL: no match */
	uint8_t matched_off;        /**< offset of the matched entry's name in the query */
	bool wildcard;              /**< the matched entry was "*.name" */
	uint8_t action;             /**< enum dk_action applied: the rule's, or its group's */
	/** Behavioural Sigma rules only (read when rule->sigma): group key and count. */
	const char *group_key;
	uint64_t group_count;
	/** An address trigger's local data: index + 1 in dk_policy.local; 0: none. */
	uint32_t local;
};

/**
 * Matches lowercase wire name @p wire against @p p. Returns true and fills
 * @p v on a match; false (v->rule = NULL) otherwise. Pure and allocation-free.
 */
bool dk_policy_match(const struct dk_policy *p, const uint8_t *wire, size_t len,
                     struct dk_verdict *v);

/**
 * Like dk_policy_match() but only against @p rule's own entries (needs
 * DK_POLICY_PER_RULE_SETS). Used for rule tests, which judge a rule alone.
 */
bool dk_rule_match(const struct dk_rule *rule, const uint8_t *wire, size_t len,
                   struct dk_verdict *v);

/**
 * Matches the client address @p sa against the RPZ client-IP triggers of
 * @p p: the longest prefix wins. Returns true and fills @p v (matched_off 0).
 * Pure and allocation-free.
 */
bool dk_policy_match_client(const struct dk_policy *p, const struct sockaddr *sa,
                            struct dk_verdict *v);

/**
 * Matches answer address @p addr (4 or 16 octets by @p family) against the
 * RPZ IP triggers of @p p, as dk_policy_match_client() does.
 */
bool dk_policy_match_ip(const struct dk_policy *p, int family, const uint8_t *addr,
                        struct dk_verdict *v);

/**
 * The zone of @p p whose origin is @p wire and whose primary has the address
 * of @p from (any port: a primary sends NOTIFY from wherever it likes), or
 * NULL: the NOTIFY of anyone else is refused. Pure.
 */
const struct dk_zone *dk_policy_notify_zone(const struct dk_policy *p, const struct sockaddr *from,
                                            const uint8_t *wire, size_t len);

/**
 * The local data that verdict @p v (a DK_ACTION_LOCAL rule) answers with, for
 * query name @p wire: the trigger's entry for an address trigger, else the
 * entry of the matched name. NULL when there is none. Pure.
 */
const struct dk_local_data *dk_policy_local(const struct dk_policy *p, const struct dk_verdict *v,
                                            const uint8_t *wire, size_t len);

/**
 * Writes the matched entry of @p v for query @p wire as text: "name" or
 * "*.name". Returns the length or DK_ESPACE.
 */
int dk_verdict_entry_text(const struct dk_verdict *v, const uint8_t *wire, size_t len, char *out,
                          size_t size);

/**
 * Gives every Sigma rule of @p p its action from @p sc: the entry for its
 * rule id, else the one for its level, else sc->default_action. Call before
 * the snapshot is shared (it writes the rules).
 */
void dk_policy_sigma_actions(struct dk_policy *p, const struct dk_sigma_conf *sc);

/** Precedence between two rules: true when @p a beats @p b at equal length. */
bool dk_rule_precedes(const struct dk_rule *a, const struct dk_rule *b);

/**
 * Called by dk_policy_warnings() once per warning: @p file and @p line (0:
 * the whole file) locate it, @p msg says what is odd, without "warning:".
 */
typedef void (*dk_policy_warn_fn)(void *ctx, const char *file, unsigned line, const char *msg);

/**
 * Reports what loaded but looks like a mistake, so that a broken feed is
 * loud rather than silently blocking nothing: a list that loads 0 entries, a
 * list with more than half of its lines invalid (a CSV or an HTML error page
 * where a list was expected), and single-label entries ("com" blocks a whole
 * TLD) in a rule without "single_label: true". Calls @p fn for each and
 * returns how many there were. Pure.
 */
size_t dk_policy_warnings(const struct dk_policy *p, dk_policy_warn_fn fn, void *ctx);

const char *dk_action_name(enum dk_action a);
const char *dk_severity_name(enum dk_severity s);
/** Parses an action/severity keyword; returns 0 or DK_ESYNTAX. */
int dk_action_parse(const char *s, enum dk_action *out);
int dk_severity_parse(const char *s, enum dk_severity *out);
