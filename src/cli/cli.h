/* SPDX-License-Identifier: MIT */
/*
 * The offline subcommands: `check`, `match` and `test`. Each prints to
 * stdout/stderr and returns the process exit status.
 */
#pragma once

/** `dnsink check`: load @p config_path and its rules, print a summary. */
int dk_cli_check(const char *config_path);

/** `dnsink match`: print the verdict for each of @p n @p names. */
int dk_cli_match(const char *config_path, char *const *names, int n);

/** `dnsink test`: run rule tests in @p n @p paths (0: "rules/"). */
int dk_cli_test(char *const *paths, int n);
