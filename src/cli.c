/* SPDX-License-Identifier: MIT */
/* Stub: being written. */
#include <stdio.h>
#include "cli.h"
int dk_cli_check(const char *config_path) { (void)config_path; fputs("not yet\n", stderr); return 1; }
int dk_cli_match(const char *config_path, char *const *names, int n) { (void)config_path; (void)names; (void)n; return 1; }
int dk_cli_test(char *const *paths, int n) { (void)paths; (void)n; return 1; }
