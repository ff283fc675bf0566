/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the counter slots (src/daemon/stats.c): rule ids and
 * upstream addresses keep their slot across reloads whatever their order, new
 * ones get new slots, a worker's block that the registry outgrew gets a
 * larger one with the snapshot and keeps its counts when adopting it. The
 * snapshots are built by hand: dk_stats_prepare() reads only the rule ids of
 * the policy and the upstreams of the config.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <arpa/inet.h>

#include "daemon/stats.h"

#define RULES_MAX 128

/* A policy of rules with ids only, as many as @p ids holds (NULL-terminated). */
struct fake_pol {
	struct dk_policy pol;
	struct dk_rule rules[RULES_MAX];
	char names[RULES_MAX][16];
};

static void pol_set(struct fake_pol *p, const char *const *ids)
{
	memset(p, 0, sizeof(*p));
	p->pol.rules = p->rules;
	for (size_t i = 0; ids[i]; i++) {
		p->rules[i].id = (char *)ids[i];
		p->pol.n_rules++;
	}
}

/* @p n generated ids "gen.<i>", then @p last. */
static void pol_generated(struct fake_pol *p, size_t n, char *last)
{
	memset(p, 0, sizeof(*p));
	p->pol.rules = p->rules;
	for (size_t i = 0; i < n; i++) {
		snprintf(p->names[i], sizeof(p->names[i]), "gen.%zu", i);
		p->rules[i].id = p->names[i];
	}
	p->rules[n].id = last;
	p->pol.n_rules = n + 1;
}

static struct dk_addr addr4(const char *ip, uint16_t port)
{
	struct dk_addr a;

	memset(&a, 0, sizeof(a));
	a.in4.sin_family = AF_INET;
	a.in4.sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, ip, &a.in4.sin_addr), 1);
	a.len = sizeof(a.in4);
	return a;
}

static struct dk_addr addr6(const char *ip, uint16_t port)
{
	struct dk_addr a;

	memset(&a, 0, sizeof(a));
	a.in6.sin6_family = AF_INET6;
	a.in6.sin6_port = htons(port);
	assert_int_equal(inet_pton(AF_INET6, ip, &a.in6.sin6_addr), 1);
	a.len = sizeof(a.in6);
	return a;
}

static void cfg_set(struct dk_config *cfg, struct dk_addr *ups, size_t n)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->upstreams = ups;
	cfg->n_upstreams = n;
}

static void test_slots_kept_across_reloads(void **state)
{
	struct dk_stats_reg *r = dk_stats_reg_new();
	struct fake_pol *p = malloc(sizeof(*p));
	struct dk_config cfg;
	struct dk_stats_map m1 = {0}, m2 = {0}, m3 = {0};
	struct dk_addr ups1[] = {addr4("192.0.2.1", 53), addr4("192.0.2.2", 53)};
	/* Reordered, one new; the same IP on another port is another upstream. */
	struct dk_addr ups2[] = {addr4("192.0.2.2", 53), addr6("2001:db8::1", 53),
	                         addr4("192.0.2.1", 5353), addr4("192.0.2.1", 53)};

	(void)state;
	assert_non_null(r);
	assert_non_null(p);
	pol_set(p, (const char *const[]){"r.a", "r.b", NULL});
	cfg_set(&cfg, ups1, 2);
	assert_int_equal(dk_stats_prepare(r, &cfg, &p->pol, &m1, NULL, 0), 0);
	assert_int_equal(m1.rule_slot[0], 0);
	assert_int_equal(m1.rule_slot[1], 1);
	assert_int_equal(m1.up_slot[0], 0);
	assert_int_equal(m1.up_slot[1], 1);
	/* No workers yet: nothing to grow. */
	assert_null(m1.grow);

	struct dk_wstats *w = dk_wstats_new(r);
	assert_non_null(w);
	assert_true(w->n_rules >= 2);
	assert_true(w->n_ups >= 2);
	dk_ctr_add(&w->rule_hits[m1.rule_slot[0]], 5);
	dk_ctr_add(&w->rule_hits[m1.rule_slot[1]], 7);

	/* A reload in another order, with a new id. */
	pol_set(p, (const char *const[]){"r.b", "r.c", "r.a", NULL});
	cfg_set(&cfg, ups2, 4);
	assert_int_equal(dk_stats_prepare(r, &cfg, &p->pol, &m2, &w, 1), 0);
	assert_int_equal(m2.rule_slot[0], 1);
	assert_int_equal(m2.rule_slot[1], 2);
	assert_int_equal(m2.rule_slot[2], 0);
	assert_int_equal(m2.up_slot[0], 1);
	assert_int_equal(m2.up_slot[1], 2);
	assert_int_equal(m2.up_slot[2], 3);
	assert_int_equal(m2.up_slot[3], 0);
	/* The block has room for the new slots: no larger one, adopt keeps it. */
	assert_int_equal(m2.n_grow, 1);
	assert_null(m2.grow[0]);
	assert_ptr_equal(dk_wstats_adopt(&m2, 0, w), w);
	assert_int_equal(dk_ctr_get(&w->rule_hits[m2.rule_slot[2]]), 5); /* r.a */
	assert_int_equal(dk_ctr_get(&w->rule_hits[m2.rule_slot[0]]), 7); /* r.b */

	/* A rule dropped and brought back keeps its old slot too. */
	pol_set(p, (const char *const[]){"r.c", NULL});
	assert_int_equal(dk_stats_prepare(r, &cfg, &p->pol, &m3, &w, 1), 0);
	assert_int_equal(m3.rule_slot[0], 2);
	dk_stats_map_deinit(&m3);
	pol_set(p, (const char *const[]){"r.a", "r.c", "r.b", NULL});
	memset(&m3, 0, sizeof(m3));
	assert_int_equal(dk_stats_prepare(r, &cfg, &p->pol, &m3, &w, 1), 0);
	assert_int_equal(m3.rule_slot[0], 0);
	assert_int_equal(m3.rule_slot[1], 2);
	assert_int_equal(m3.rule_slot[2], 1);

	dk_stats_map_deinit(&m1);
	dk_stats_map_deinit(&m2);
	dk_stats_map_deinit(&m3);
	/* deinit leaves the map empty. */
	assert_null(m3.rule_slot);
	assert_null(m3.grow);
	free(w);
	free(p);
	dk_stats_reg_free(r);
}

static void test_grow_and_adopt(void **state)
{
	struct dk_stats_reg *r = dk_stats_reg_new();
	struct fake_pol *p = malloc(sizeof(*p));
	struct dk_config cfg;
	struct dk_stats_map m1 = {0}, m2 = {0}, m3 = {0};
	struct dk_addr ups[20];
	char first[] = "first";

	(void)state;
	assert_non_null(r);
	assert_non_null(p);
	for (int i = 0; i < 20; i++)
		ups[i] = addr4("198.51.100.1", (uint16_t)(1000 + i));
	pol_set(p, (const char *const[]){first, NULL});
	cfg_set(&cfg, ups, 1);
	assert_int_equal(dk_stats_prepare(r, &cfg, &p->pol, &m1, NULL, 0), 0);

	/* Two workers: one block made now (small), one larger made later. */
	struct dk_wstats *w[2] = {dk_wstats_new(r), NULL};
	assert_non_null(w[0]);
	uint32_t small_rules = w[0]->n_rules, small_ups = w[0]->n_ups;
	dk_ctr_add(&w[0]->rule_hits[0], 11);
	dk_ctr_add(&w[0]->ups[0].tries, 3);
	dk_ctr_add(&w[0]->ups[0].lat[2], 2);

	/* More rule ids and upstreams than the small block holds. */
	pol_generated(p, small_rules + 5, first);
	cfg_set(&cfg, ups, small_ups + 4 <= 20 ? small_ups + 4 : 20);
	assert_true(cfg.n_upstreams > small_ups);
	/* The second worker's block is made big enough for it, before the snapshot. */
	assert_int_equal(dk_stats_prepare(r, &cfg, &p->pol, &m2, NULL, 0), 0);
	w[1] = dk_wstats_new(r);
	assert_non_null(w[1]);
	assert_true(w[1]->n_rules >= small_rules + 6);
	dk_stats_map_deinit(&m2);
	memset(&m2, 0, sizeof(m2));

	assert_int_equal(dk_stats_prepare(r, &cfg, &p->pol, &m2, w, 2), 0);
	assert_int_equal(m2.n_grow, 2);
	assert_non_null(m2.grow[0]);
	assert_null(m2.grow[1]);
	assert_true(m2.grow[0]->n_rules >= small_rules + 6);
	assert_true(m2.grow[0]->n_ups >= cfg.n_upstreams);
	/* "first" keeps slot 0; the generated ids come after it. */
	assert_int_equal(m2.rule_slot[small_rules + 5], 0);
	for (uint32_t i = 0; i < small_rules + 5; i++)
		assert_int_equal(m2.rule_slot[i], i + 1);

	struct dk_wstats *bigger = m2.grow[0];
	struct dk_wstats *nb = dk_wstats_adopt(&m2, 0, w[0]);
	assert_ptr_equal(nb, bigger);
	/* The old block is left in the map for the main thread to free. */
	assert_ptr_equal(m2.grow[0], w[0]);
	assert_int_equal(dk_ctr_get(&nb->rule_hits[0]), 11);
	assert_int_equal(dk_ctr_get(&nb->ups[0].tries), 3);
	assert_int_equal(dk_ctr_get(&nb->ups[0].lat[2]), 2);
	/* New slots start at zero and are usable. */
	uint32_t last = m2.rule_slot[small_rules + 4];
	assert_true(last < nb->n_rules);
	assert_int_equal(dk_ctr_get(&nb->rule_hits[last]), 0);
	dk_ctr_inc(&nb->rule_hits[last]);
	/* A worker with a block that fits, or an index the map does not cover, keeps its own. */
	assert_ptr_equal(dk_wstats_adopt(&m2, 1, w[1]), w[1]);
	assert_ptr_equal(dk_wstats_adopt(&m2, 7, w[1]), w[1]);
	assert_ptr_equal(dk_wstats_adopt(&m1, 0, nb), nb);
	w[0] = nb;

	/* A later reload that adds nothing gives no larger blocks. */
	assert_int_equal(dk_stats_prepare(r, &cfg, &p->pol, &m3, w, 2), 0);
	assert_null(m3.grow[0]);
	assert_null(m3.grow[1]);

	/* Frees the old small block. */
	dk_stats_release(&m2);
	assert_null(m2.grow[0]);
	dk_stats_map_deinit(&m1);
	dk_stats_map_deinit(&m2);
	dk_stats_map_deinit(&m3);
	free(w[0]);
	free(w[1]);
	free(p);
	dk_stats_reg_free(r);
}

/* A snapshot without rules (and the registry's NULL cases). */
static void test_no_rules(void **state)
{
	struct dk_stats_reg *r = dk_stats_reg_new();
	struct dk_config cfg;
	struct dk_addr ups[] = {addr4("192.0.2.9", 53)};
	struct dk_stats_map m = {0};

	(void)state;
	assert_non_null(r);
	cfg_set(&cfg, ups, 1);
	assert_int_equal(dk_stats_prepare(r, &cfg, NULL, &m, NULL, 0), 0);
	assert_null(m.rule_slot);
	assert_non_null(m.up_slot);
	assert_int_equal(m.up_slot[0], 0);
	dk_stats_map_deinit(&m);
	dk_stats_reg_free(r);
	dk_stats_reg_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_slots_kept_across_reloads),
	        cmocka_unit_test(test_grow_and_adopt),
	        cmocka_unit_test(test_no_rules),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
