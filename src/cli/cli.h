/* SPDX-License-Identifier: MIT */
/*
 * The offline subcommands: `check`, `match`, `test` and `hunt`. Each prints to
 * stdout/stderr and returns the process exit status.
 */
#pragma once

/** `dnsink check`: load @p config_path and its rules, print a summary. */
int dk_cli_check(const char *config_path);

/**
 * `dnsink match`: print the verdict for each of @p n @p names, as client
 * @p client (NULL: 127.0.0.1) gets it: its group's view when groups are configured.
 */
int dk_cli_match(const char *config_path, const char *client, char *const *names, int n);

/**
 * `dnsink test`: run rule tests in @p n @p paths (0: "rules/"). With
 * @p config_path (-c given), its client groups judge the tests that name a client.
 */
int dk_cli_test(const char *config_path, char *const *paths, int n);

/**
 * `dnsink hunt`: the rules of @p config_path over the logs named in
 * @p argv (its options first, as getopt reads them). Returns 0, 1 (a match
 * with --fail-on-match) or 2 (an error).
 */
int dk_cli_hunt(const char *config_path, int argc, char **argv);
