/* SPDX-License-Identifier: MIT */
/* Stub: being written. */
#include <stdio.h>
#include "server.h"
int dk_server_main(const char *config_path, const struct dk_run_opts *opts) { (void)config_path; (void)opts; fputs("not yet\n", stderr); return 1; }
