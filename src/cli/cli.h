/* SPDX-License-Identifier: MIT */
/*
 * The subcommands: `check`, `match` and `test` (offline) and `ctl` (the running daemon). Each
 * prints to stdout/stderr and returns the process exit status.
 */
#pragma once

/** `dnsink check`: load @p config_path and its rules, print a summary. */
int dk_cli_check(const char *config_path);

/** `dnsink match`: print the verdict for each of @p n @p names. */
int dk_cli_match(const char *config_path, char *const *names, int n);

/** `dnsink test`: run rule tests in @p n @p paths (0: "rules/"). */
int dk_cli_test(char *const *paths, int n);

/**
 * `dnsink ctl`: sends @p n @p args as one request to the daemon's control
 * socket (control.socket of @p config_path) and prints the answer. Returns
 * 0 (ok), 1 (the daemon reported an error) or 2 (not reached, or no socket).
 */
int dk_cli_ctl(const char *config_path, char *const *args, int n);
