/* SPDX-License-Identifier: MIT */
/*
 * The resolver: config, rules, worker loops, signals, until SIGTERM/SIGINT.
 */
#pragma once

#include <stddef.h>

/** Command-line overrides of the config file (for benchmarks and quick runs). */
struct dk_run_opts {
	unsigned workers;           /**< 0: config value */
	const char *listen;         /**< replaces config "listen" when set */
	const char *upstream;       /**< replaces config "upstreams" when set */
	const char *blocklist;      /**< plain list file: adds a silent nxdomain rule */
};

/**
 * Runs the resolver in the foreground with config @p config_path. Returns
 * the process exit status (0 after a clean SIGTERM/SIGINT).
 */
int dk_server_main(const char *config_path, const struct dk_run_opts *opts);
