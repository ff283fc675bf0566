/* SPDX-License-Identifier: MIT */
/*
 * The offline subcommands: `check`, `match` and `test`. Each prints to
 * stdout/stderr and returns the process exit status.
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

/** `dnsink match`: print the verdict for each of @p n @p names. */
int dk_cli_match(const char *config_path, const struct dk_cli_match_opts *o, char *const *names,
                 int n);

/** `dnsink test`: run rule tests in @p n @p paths (0: "rules/"). */
int dk_cli_test(char *const *paths, int n);

struct dk_policy;

/**
 * Runs the sidecar tests ("x.tests.yml") of the Sigma rules of @p p, adding
 * to @p passed and @p failed and printing each failure. Returns 0 or -1 (out
 * of memory). In sigma_test.c.
 */
int dk__cli_sigma_tests(const struct dk_policy *p, size_t *passed, size_t *failed);
