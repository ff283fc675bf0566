/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the Sigma loader (sigma.c), the condition parser
 * (sigma_cond.c), the compiled engine (sigma_db.c) and the behavioural
 * counters (sigma_corr.c). Private to core.
 *
 * A loaded rule is flat data in the builder's arrays: atoms (one value of one
 * field with its modifiers), field conditions (a field and its values: OR, or
 * AND with |all), alternatives (a map: AND of field conditions), selections
 * (a list of maps: OR of alternatives) and the condition as a postfix
 * program over the rule's selections.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libpsl.h>
#include <yaml.h>

#include "dnsink/config.h"
#include "dnsink/sigma.h"

/** Fields whose value only the answer holds. */
#define SG_F_IS_ANSWER(f) ((f) >= DK_SIGMA_F_ANSWER)

enum dk__sg_op {
	SG_OP_GLOB,   /**< Sigma string with * and ? (pattern in glob form) */
	SG_OP_RE,     /**< |re */
	SG_OP_CIDR,   /**< |cidr */
	SG_OP_EXISTS, /**< |exists, or the null value (want = false) */
	SG_OP_NUM,    /**< number compared with cmp: type, rcode, length */
};

enum dk__sg_cmp { SG_CMP_EQ, SG_CMP_LT, SG_CMP_LTE, SG_CMP_GT, SG_CMP_GTE };

/** Where an atom is evaluated. */
enum dk__sg_route {
	SG_R_DIRECT,       /**< compared one by one (numbers, addresses, answers) */
	SG_R_SUFFIX_EXACT, /**< the suffix set, exact-only entry */
	SG_R_SUFFIX_BELOW, /**< the suffix set, strictly-below entry */
	SG_R_HS,           /**< the Vectorscan database */
	SG_R_PCRE,         /**< PCRE2, for each query */
};

/* Where the literal of a plain-literal glob must sit in the name (bits). */
#define SG_LIT_ANY  0u
#define SG_LIT_HEAD 1u /* "x*": starts the name */
#define SG_LIT_TAIL 2u /* "*x": ends the name */

/* The glob form of a Sigma string: lowercase, these two octets are the wildcards. */
#define SG_STAR  '\x01'
#define SG_QMARK '\x02'

#define SG_RE_I 1u
#define SG_RE_M 2u
#define SG_RE_S 4u

struct dk__sg_atom {
	uint8_t field;    /**< enum dk_sigma_field */
	uint8_t op;       /**< enum dk__sg_op */
	uint8_t cmp;      /**< enum dk__sg_cmp, SG_OP_NUM */
	uint8_t route;    /**< enum dk__sg_route, set by the compiler */
	bool want;        /**< SG_OP_EXISTS: true for exists */
	uint8_t lit;      /**< SG_R_HS glob that is a plain literal: SG_LIT_* where it must sit */
	uint16_t lit_len; /**< its length */
	uint16_t rule;    /**< engine rule it belongs to */
	char *pat;        /**< glob form or regex; NUL-terminated */
	size_t pat_len;
	unsigned re_flags; /**< SG_RE_* */
	void *pcre;        /**< pcre2_code, for SG_OP_RE */
	struct dk_cidr cidr;
	int64_t num;
};

struct dk__sg_fc {
	uint8_t field;
	bool all;          /**< |all: every value must hold */
	bool unseen;       /**< a field the resolver never sees: constant @p konst */
	bool konst;        /**< the value of an unseen field's condition (null: true) */
	uint32_t first, n; /**< atoms */
};

struct dk__sg_alt {
	uint32_t first, n; /**< field conditions */
};

struct dk__sg_sel {
	char *name;
	uint32_t first, n; /**< alternatives */
	bool unseen;       /**< holds a field the resolver never sees */
};

enum dk__sg_cop { SG_C_SEL, SG_C_NOT, SG_C_AND, SG_C_OR, SG_C_TRUE, SG_C_FALSE };

struct dk__sg_cinst {
	uint8_t op;
	uint8_t neg;  /**< SG_C_SEL: under an odd number of "not" (a filter) */
	uint32_t arg; /**< SG_C_SEL: global selection index; AND/OR: operand count */
};

enum dk__sg_corr_type { SG_CORR_EVENT_COUNT, SG_CORR_VALUE_COUNT, SG_CORR_TEMPORAL };

#define SG_CORR_RULES_MAX 8
#define SG_GROUP_MAX      3

/** A behavioural rule: a correlation or a legacy "| count() by" aggregation. */
struct dk__sg_corr {
	uint16_t policy_index;
	uint8_t type;
	uint8_t n_group;
	uint8_t group[SG_GROUP_MAX]; /**< fields */
	uint8_t value_field;         /**< value_count */
	uint8_t cmp;                 /**< SG_CMP_GT or GTE or EQ */
	uint64_t threshold;
	uint64_t timespan_ms;
	uint8_t n_base;
	uint16_t base[SG_CORR_RULES_MAX]; /**< engine rule indices */
	/* Unresolved references, by id or name (loader only). */
	char *ref[SG_CORR_RULES_MAX];
	char *file;
	unsigned line;
	bool generate;
};

struct dk__sg_rule {
	uint16_t policy_index;
	bool answer;  /**< needs the answer */
	bool always;  /**< evaluated even when no atom of it hit */
	bool noalert; /**< only feeds correlations */
	unsigned how;
	uint32_t first_sel, n_sel;
	uint32_t first_op, n_op;
	uint32_t first_atom, n_atom;
	char *id, *name; /**< Sigma id and name, for correlation references (loader) */
};

/** Grows @p *arr to hold @p need elements of @p elem octets. 0 or -ENOMEM. */
int dk__sg_grow(void **arr, size_t *cap, size_t need, size_t elem);

/** The flat arrays of loaded rules; the builder and the engine share the layout. */
struct dk__sg_tables {
	struct dk__sg_atom *atoms;
	size_t n_atoms, cap_atoms;
	struct dk__sg_fc *fcs;
	size_t n_fcs, cap_fcs;
	struct dk__sg_alt *alts;
	size_t n_alts, cap_alts;
	struct dk__sg_sel *sels;
	size_t n_sels, cap_sels;
	struct dk__sg_cinst *ops;
	size_t n_ops, cap_ops;
	struct dk__sg_rule *rules;
	size_t n_rules, cap_rules;
	struct dk__sg_corr *corrs;
	size_t n_corrs, cap_corrs;
};

void dk__sg_tables_free(struct dk__sg_tables *t);

/**
 * Parses Sigma condition @p text of the rule whose selections are
 * t->sels[first_sel, first_sel + n_sel) into postfix code appended to t->ops.
 * A trailing legacy aggregation ("| count(F) by G > N") is returned in
 * @p agg (agg->type set, fields mapped) and @p *has_agg set. Returns 0,
 * DK_ESCHEMA with @p err filled (bad syntax, unknown selection), or
 * DK_ENOTSUP-like 1 with @p err filled (valid Sigma dnsink cannot run).
 */
int dk__sg_cond_parse(struct dk__sg_tables *t, uint32_t first_sel, uint32_t n_sel, const char *text,
                      struct dk__sg_corr *agg, bool *has_agg, char *err, size_t err_size);

/** Maps a Sigma field name; returns the field or -1 (and a reason in @p why). */
int dk__sg_field_lookup(const char *name, const char **why);

/** The reference glob matcher: Sigma string semantics on lowercase text. */
bool dk__sg_glob_match(const char *pat, size_t plen, const char *s, size_t n);

/** Parses a DNS type name ("TXT", "TYPE65") or number; -1 when neither. */
int dk__sg_qtype_parse(const char *s);
/** Parses an rcode name ("NXDOMAIN") or number (Windows 9xxx status too); -1 when neither. */
int dk__sg_rcode_parse(const char *s);

/** Compiles the tables into an engine (takes them over). */
int dk__sg_compile(struct dk__sg_tables *t, struct dk_sigma **out, char *err, size_t err_size);

/**
 * The registered domain of NUL-terminated @p text (@p n octets) as an offset
 * into it, by the Public Suffix List @p psl (NULL: the last two labels).
 */
size_t dk__sg_regdom(const psl_ctx_t *psl, const char *text, size_t n);

/* ---- the loader's side, for rules.c ---------------------------------------- */

struct dk__sigma_builder;

/** What rules.c needs to make a policy rule of a loaded Sigma rule. Owned by the builder. */
struct dk__sigma_meta {
	const char *id;
	const char *title;
	const char *description;
	int severity; /**< enum dk_severity */
	char **mitre;
	size_t n_mitre;
	char **references;
	size_t n_references;
	unsigned line;
};

struct dk__sigma_builder *dk__sigma_builder_new(void);
void dk__sigma_builder_free(struct dk__sigma_builder *b);

/** True when mapping @p root of @p doc is a Sigma rule (logsource+detection, or correlation). */
bool dk__sigma_is_rule(yaml_document_t *doc, yaml_node_t *root);

/**
 * Reads Sigma document @p root of @p file. Returns 0 with @p *status set; for
 * DK_SIGMA_LOADED @p meta is filled and the caller must call
 * dk__sigma_commit() with the policy rule index it made. Returns DK_ESCHEMA
 * (with @p diag) for a document that breaks the Sigma schema, or -ENOMEM.
 */
int dk__sigma_read(struct dk__sigma_builder *b, yaml_document_t *doc, yaml_node_t *root,
                   const char *file, enum dk_sigma_status *status, struct dk__sigma_meta *meta,
                   struct dk_diag *diag);

/** Binds the rule read last to policy rule @p index. */
void dk__sigma_commit(struct dk__sigma_builder *b, uint16_t index);

/** Forgets the rule read last (the caller could not add it). */
void dk__sigma_abandon(struct dk__sigma_builder *b);

/**
 * Resolves correlations and compiles the engine into @p *out (NULL when no
 * rule loaded) and the report into @p rep; frees the builder. Correlations
 * whose rules did not load are rejected in the report; @p noalert is called
 * for each policy rule that only feeds correlations. Returns 0 or a negative
 * code with @p diag.
 */
int dk__sigma_finish(struct dk__sigma_builder *b, struct dk_sigma **out,
                     struct dk_sigma_report *rep, struct dk_diag *diag);

/* ---- between the engine (sigma_db.c) and the counters (sigma_corr.c) ------- */

struct dk__sg_ctable;

/** Makes (or clears, after a reload) the counting table @p *ct for @p n_corrs rules. */
int dk__sg_ctable_fit(struct dk__sg_ctable **ct, size_t n_corrs);

void dk__sg_ctable_free(struct dk__sg_ctable *ct);
void dk__sg_ctable_stats(const struct dk__sg_ctable *ct, struct dk_sigma_count_stats *st);

/** Counts query @p q, which matched hits->eng, into @p ct; the alerts due go to hits->corr. */
void dk__sg_count(struct dk__sg_ctable *ct, const struct dk__sg_tables *t, const psl_ctx_t *psl,
                  const struct dk_sigma_query *q, uint64_t now_ms, struct dk_sigma_hits *hits);

/** The tables of a compiled engine. */
const struct dk__sg_tables *dk__sg_tables_of(const struct dk_sigma *s);
