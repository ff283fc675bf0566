/* SPDX-License-Identifier: MIT */
/*
 * The subcommands: `check`, `match`, `test` and `hunt` (offline) and `ctl`
 * (the running daemon). Each prints to stdout/stderr and returns the process
 * exit status.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/**
 * `dnsink check`: load @p config_path and its rules, print a summary and
 * every Sigma rule (loaded, skipped, rejected). With @p strict a rejected
 * Sigma rule makes the exit status 1.
 */
int dk_cli_check(const char *config_path, bool strict);

/** What `dnsink match` asks about besides the name. */
struct dk_cli_match_opts {
	const char *type;   /**< query type, name or number (default "A") */
	const char *client; /**< client address (default 127.0.0.1) */
};

/**
 * `dnsink match`: print the verdict for each of @p n @p names, as client
 * o->client gets it (its group's view when groups are configured), for a
 * query of type o->type (Sigma rules on the type).
 */
int dk_cli_match(const char *config_path, const struct dk_cli_match_opts *o, char *const *names,
                 int n);

/**
 * `dnsink test`: run rule tests in @p n @p paths (0: "rules/"), and the
 * sidecar tests of the Sigma rules among them. With @p config_path (-c
 * given), its client groups judge the tests that name a client.
 */
int dk_cli_test(const char *config_path, char *const *paths, int n);

/**
 * `dnsink hunt`: the rules of @p config_path over the logs named in
 * @p argv (its options first, as getopt reads them). Returns 0, 1 (a match
 * with --fail-on-match) or 2 (an error).
 */
int dk_cli_hunt(const char *config_path, int argc, char **argv);

struct dk_policy;

/**
 * Runs the sidecar tests ("x.tests.yml") of the Sigma rules of @p p, adding
 * to @p passed and @p failed and printing each failure. Returns 0 or -1 (out
 * of memory). In sigma_test.c.
 */
int dk__cli_sigma_tests(const struct dk_policy *p, size_t *passed, size_t *failed);

/**
 * `dnsink ctl`: sends @p n @p args as one request to the daemon's control
 * socket (control.socket of @p config_path) and prints the answer. Returns
 * 0 (ok), 1 (the daemon reported an error) or 2 (not reached, or no socket).
 */
int dk_cli_ctl(const char *config_path, char *const *args, int n);
