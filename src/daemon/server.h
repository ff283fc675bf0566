/* SPDX-License-Identifier: MIT */
/*
 * The resolver: config, rules, worker loops, signals, until SIGTERM/SIGINT.
 */
#pragma once

#include "dnsink/load.h"

/**
 * Runs the resolver in the foreground with config @p config_path and the
 * command-line overrides @p opts. Returns the process exit status (0 after a
 * clean SIGTERM/SIGINT).
 */
int dk_server_main(const char *config_path, const struct dk_run_opts *opts);
