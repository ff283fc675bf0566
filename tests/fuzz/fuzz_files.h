/* SPDX-License-Identifier: MIT */
/*
 * File helpers shared by the fuzz targets that load from disk (fuzz_config,
 * fuzz_rules): a private directory made once, preferably in memory, and
 * writing an input to a file in it.
 */
#pragma once

#include <stddef.h>

/**
 * Makes a private directory named dnsink-fuzz-@p name-XXXXXX under /dev/shm,
 * or /tmp when that fails, into @p dir (@p size octets). Aborts on failure.
 */
void fuzz_make_dir(char *dir, size_t size, const char *name);

/** Writes @p size octets of @p data to @p path (created or truncated). Returns 0 or -1. */
int fuzz_write_file(const char *path, const void *data, size_t size);
