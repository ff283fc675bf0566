/* SPDX-License-Identifier: MIT */
/*
 * Client groups (config "groups:"): who asks decides which rules apply and
 * how. A group names client prefixes (the most specific prefix wins; a
 * client in none is in the group "default") and what differs for it: rules
 * switched off or on by id or tag, actions overridden per rule id, its own
 * allow-list entries, its own allow_clients, and schedules (weekly windows in
 * a time zone) during which another rule set applies on top.
 *
 * Two halves. The config half (struct dk_group_conf) is what config.c
 * parses, names unresolved. dk_groups_build() resolves it against a policy
 * snapshot into struct dk_groups, which the snapshot then owns
 * (dk_policy_set_groups()), so a reload swaps groups with the rules. The
 * built form answers the per-query questions without allocating: the prefix
 * table maps the client to its group, and each group holds one verdict
 * table per rule set (its base, one per schedule): per rule index, the
 * action that rule takes for the group, or "off". Which of a group's tables
 * is in force follows a bit mask of the open schedules, written once per
 * second (dk_groups_tick()) and read with one relaxed atomic load.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dnsink/common.h"
#include "dnsink/config.h"
#include "dnsink/policy.h"
#include "dnsink/schedule.h"

/** The group of clients that no group names. */
#define DK_GROUP_DEFAULT "default"
/** Most groups, "default" included. */
#define DK_GROUPS_MAX 1024
/** Most schedules, all groups together (the open ones are one 64-bit mask). */
#define DK_SCHEDULES_MAX 64

/* ---- config half ----------------------------------------------------- */

/** A name written in the config, with the line it was written on. */
struct dk_group_ref {
	char *text;
	unsigned line;
};

/** An action override: rule id → action. */
struct dk_group_action {
	char *rule;
	enum dk_action action;
	unsigned line;
};

/** What a group or a schedule changes: rules off, rules on, actions. */
struct dk_group_rules {
	struct dk_group_ref *disable; /**< rule ids or tags */
	size_t n_disable;
	struct dk_group_ref *enable; /**< rule ids or tags (undo a disable) */
	size_t n_enable;
	struct dk_group_action *actions;
	size_t n_actions;
};

struct dk_group_sched_conf {
	struct dk_sched_window window;
	char *tz; /**< zone name, "local" when not written */
	struct dk_group_rules rules;
	unsigned line;
};

struct dk_group_conf {
	char *name;
	unsigned line;
	struct dk_group_ref *clients; /**< prefixes as written, parsed by dk_groups_build() */
	size_t n_clients;
	struct dk_group_rules rules;
	struct dk_group_ref *allow; /**< allow-list entries: "name" or "*.name" */
	size_t n_allow;
	bool has_allow_clients; /**< its own allow_clients replaces the global list */
	struct dk_group_ref *allow_clients;
	size_t n_allow_clients;
	struct dk_group_sched_conf *schedules;
	size_t n_schedules;
};

/** Frees the @p n groups @p g and the array. NULL is a no-op. */
void dk_group_confs_free(struct dk_group_conf *g, size_t n);

/* ---- built half ------------------------------------------------------ */

/** A verdict table entry: an action (enum dk_action), or this: the rule is off. */
#define DK_GROUP_OFF 0xff

struct dk_group {
	char *name;
	uint16_t index;       /**< position in dk_groups.g; 0 is "default" */
	uint8_t *views;       /**< [1 + n_sched][n_rules]; NULL: every rule as loaded */
	uint16_t sched_first; /**< first schedule in dk_groups.sched */
	uint16_t n_sched;
	/** Own allow-list entries; NULL: none. Values: 1 for "*.name", 0 for "name". */
	struct dk_suffixset *allow;
	/** What a match on @p allow reports: id "group:NAME:allow", action allow. */
	struct dk_rule allow_rule;
	bool own_acl; /**< @p acl replaces allow_clients for this group */
	struct dk_cidr *acl;
	size_t n_acl;
	/** The config it came from (`dnsink check`); valid only while that config lives. */
	const struct dk_group_conf *conf;
};

struct dk_groups_sched {
	struct dk_sched_window window;
	uint16_t zone; /**< index in dk_groups.zones */
};

struct dk_groups {
	struct dk_group *g; /**< g[0] is "default" */
	size_t n;
	struct dk_prefix_table *clients; /**< prefix → group index */
	struct dk_groups_sched *sched;
	size_t n_sched;
	struct dk_tz *zones; /**< distinct zones of the schedules; names owned here */
	size_t n_zones;
	size_t n_rules; /**< rules of the policy the tables were built for */
	/** Bit s: schedule s is open now. Written by dk_groups_tick(), read by workers. */
	_Atomic uint64_t open;
};

/**
 * Resolves the @p n group configs @p confs against policy @p pol (NULL: no
 * rules) into @p *out, with the schedules evaluated at UTC second @p now.
 * Errors are "FILE:LINE: what" in @p diag with @p file the config's path:
 * a prefix listed twice (in one group or two), a group name used twice, an
 * unknown rule id or tag, an action override for an unknown id. Returns 0 or
 * a negative code. With n = 0 *out is NULL (no groups: nothing to do).
 * The result borrows @p confs for `dnsink check` (dk_group.conf).
 */
int dk_groups_build(const struct dk_group_conf *confs, size_t n, const struct dk_policy *pol,
                    const char *file, int64_t now, struct dk_groups **out, struct dk_diag *diag);

/** Frees @p gs. NULL is a no-op. */
void dk_groups_free(struct dk_groups *gs);

/**
 * Recomputes which schedules are open at UTC second @p now (switches TZ:
 * one thread, off the query path). Returns the new mask.
 */
uint64_t dk_groups_tick(struct dk_groups *gs, int64_t now);

/** The group of client @p sa: the longest prefix's, else "default". @p gs not NULL. */
const struct dk_group *dk_groups_lookup(const struct dk_groups *gs, const struct sockaddr *sa);

/** The verdict table in force for @p g now; NULL: every rule as loaded. */
const uint8_t *dk_group_view(const struct dk_groups *gs, const struct dk_group *g);

/**
 * Matches lowercase wire name @p wire for a client of group @p g (NULL: no
 * groups) under verdict table @p view (dk_group_view()). Like
 * dk_policy_match(), and also: a rule the table turns off is skipped (the
 * next shorter suffix that matches a rule on decides); v->action is the
 * table's; against a match, an entry of the group's own allow-list at least as long as the
 * rule's match wins, with v->rule = &g->allow_rule. Pure, allocation-free.
 *
 * Known limit: when two rules list the same name, only the one that wins
 * by rule precedence (dnsink-rules(5)) is kept in the suffix set; a group that turns it off
 * skips that name, the other rule's entry included.
 */
bool dk_group_match(const struct dk_policy *p, const struct dk_group *g, const uint8_t *view,
                    const uint8_t *wire, size_t len, struct dk_verdict *v);

/** The name of @p g for records and metrics; "default" for NULL. */
const char *dk_group_name(const struct dk_group *g);
