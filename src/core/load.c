/* SPDX-License-Identifier: MIT */
/* Config, command-line overrides and policy, loaded and checked together (see load.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dnsink/groups.h"
#include "dnsink/load.h"
#include "dnsink/upstream_spec.h"

/* Replaces the address list @p *list/@p *n with the one address @p text. */
static int override_addr(const char *text, struct dk_addr **list, size_t *n, struct dk_diag *d,
                         const char *what)
{
	struct dk_addr a;

	if (dk_addr_parse(text, 53, &a) < 0) {
		dk_diag_set(d, NULL, 0, "--%s: not an address: %s", what, text);
		return DK_ESYNTAX;
	}
	struct dk_addr *one = malloc(sizeof(*one));
	if (!one)
		return -ENOMEM;
	*one = a;
	free(*list);
	*list = one;
	*n = 1;
	return 0;
}

/* Replaces the upstreams with the one @p text, plain or tls://. */
static int override_upstream(const char *text, struct dk_config *cfg, struct dk_diag *d)
{
	struct dk_addr a;
	struct dk_up_opts opts;
	const char *why;

	if (dk_upstream_spec_parse(text, 53, false, &a, &opts, &why) < 0) {
		dk_diag_set(d, NULL, 0, "--upstream: bad upstream '%s': %s", text, why);
		return DK_ESYNTAX;
	}
	struct dk_addr *one = malloc(sizeof(*one));
	struct dk_up_opts *o = opts.proto != DK_UP_DNS ? malloc(sizeof(*o)) : NULL;
	if (!one || (opts.proto != DK_UP_DNS && !o)) {
		free(one);
		free(o);
		return -ENOMEM;
	}
	*one = a;
	if (o)
		*o = opts;
	free(cfg->upstreams);
	free(cfg->upstream_opts);
	cfg->upstreams = one;
	cfg->upstream_opts = o;
	cfg->n_upstreams = 1;
	return 0;
}

static bool listen_has(const struct dk_config *cfg, const struct dk_addr *a)
{
	for (size_t i = 0; i < cfg->n_listen; i++)
		if (dk_sockaddr_equal(&cfg->listen[i].sa, &a->sa))
			return true;
	return false;
}

/* Applies @p o to @p cfg and checks the upstreams that result. */
static int apply(const char *path, const struct dk_run_opts *o, struct dk_config *cfg,
                 struct dk_diag *diag)
{
	int rc;

	if (o && o->listen) {
		rc = override_addr(o->listen, &cfg->listen, &cfg->n_listen, diag, "listen");
		if (rc < 0)
			return rc;
	}
	if (o && o->upstream) {
		rc = override_upstream(o->upstream, cfg, diag);
		if (rc < 0)
			return rc;
		cfg->upstreams_from_resolv = false;
	}
	if (cfg->n_upstreams == 0) {
		dk_diag_set(diag, path, 0, "no upstreams configured or found");
		return DK_ESCHEMA;
	}
	for (size_t i = 0; i < cfg->n_upstreams; i++) {
		if (listen_has(cfg, &cfg->upstreams[i])) {
			char a[64];
			dk_addr_format(&cfg->upstreams[i], a, sizeof(a));
			dk_diag_set(diag, path, 0,
			            "upstream %s is one of our own listeners (a loop)", a);
			return DK_ESCHEMA;
		}
	}
	return 0;
}

int dk_load_groups(const struct dk_config *cfg, struct dk_policy *pol, struct dk_diag *diag)
{
	if (!cfg->n_groups)
		return 0;
	int rc = dk_groups_build(cfg->groups, cfg->n_groups, pol, cfg->file,
	                         (int64_t)(dk_wall_ms() / 1000), &pol->groups, diag);
	if (rc == 0)
		pol->groups_free = dk_groups_free;
	return rc;
}

/*
 * Each key of sigma.actions must be a Sigma level or the id of a loaded
 * Sigma rule: a mistyped id would otherwise do nothing, silently (as an
 * unknown rule id in groups: is an error too).
 */
static int check_sigma_actions(const struct dk_config *cfg, const struct dk_policy *pol,
                               struct dk_diag *diag)
{
	static const char *const levels[] = {"informational", "info", "low",
	                                     "medium",        "high", "critical"};

	for (size_t i = 0; i < cfg->sigma.n_actions; i++) {
		const struct dk_sigma_action *a = &cfg->sigma.actions[i];
		bool known = false;
		for (size_t j = 0; j < DK_ARRAY_SIZE(levels) && !known; j++)
			known = strcmp(a->key, levels[j]) == 0;
		for (size_t j = 0; pol && j < pol->n_rules && !known; j++)
			known = pol->rules[j].sigma && strcmp(a->key, pol->rules[j].id) == 0;
		if (!known) {
			dk_diag_set(
			        diag, cfg->file, a->line,
			        "sigma.actions: '%s' is neither a Sigma level (informational, low, "
			        "medium, high, critical) nor the id of a loaded Sigma rule",
			        a->key);
			return DK_ESCHEMA;
		}
	}
	return 0;
}

int dk_load_apply(const struct dk_config *cfg, struct dk_policy *pol, struct dk_diag *diag)
{
	int rc = check_sigma_actions(cfg, pol, diag);

	if (rc < 0 || !pol)
		return rc;
	/* Sigma rules' actions first: the groups' views copy the actions they find. */
	dk_policy_sigma_actions(pol, &cfg->sigma);
	return dk_load_groups(cfg, pol, diag);
}

int dk_load(const char *path, const struct dk_run_opts *o, struct dk_config **cfg,
            struct dk_policy **pol, struct dk_diag *diag)
{
	const char *list = o ? o->blocklist : NULL;
	int rc;

	*cfg = NULL;
	*pol = NULL;
	rc = dk_config_load(path, NULL, cfg, diag);
	if (rc < 0)
		return rc;
	rc = apply(path, o, *cfg, diag);
	/* Groups hang on the policy (a reload swaps both), so they make one even without rules. */
	if (rc == 0 && ((*cfg)->n_rules || list || (*cfg)->n_groups))
		rc = dk_policy_load_state((const char *const *)(*cfg)->rules, (*cfg)->n_rules, list,
		                          (*cfg)->state_dir, 0, pol, diag);
	if (rc == 0)
		rc = dk_load_apply(*cfg, *pol, diag);
	if (rc < 0) {
		dk_policy_unref(*pol);
		dk_config_free(*cfg);
		*cfg = NULL;
		*pol = NULL;
	}
	return rc;
}
