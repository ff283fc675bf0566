/* SPDX-License-Identifier: MIT */
/*
 * The byte streams `dnsink hunt` reads: a file or stdin, gzip (zlib) and
 * zstd (libzstd) decompressed on the fly when the first octets say so,
 * whatever the file is called; and lines over them in a fixed buffer, so
 * memory stays flat whatever the file size.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct dk_hin;

enum dk_hin_codec {
	DK_HIN_PLAIN,
	DK_HIN_GZIP,
	DK_HIN_ZSTD,
};

/**
 * Opens @p path ("-": stdin) into @p *out (caller frees with dk_hin_close()).
 * Compressed input octets read are added to @p raw_bytes (may be NULL) as
 * they are read, for the progress line. Returns 0 or -errno.
 */
int dk_hin_open(const char *path, _Atomic uint64_t *raw_bytes, struct dk_hin **out);

/**
 * Reads up to @p n decompressed octets. Returns the count, 0 at the end, or
 * a negative code: -errno, or DK_LOGERR_IO for a compressed stream that is
 * corrupt or cut short (dk_hin_error() says which).
 */
ssize_t dk_hin_read(struct dk_hin *in, void *buf, size_t n);

/** What the last DK_LOGERR_IO was ("gzip stream cut short", ...). */
const char *dk_hin_error(const struct dk_hin *in);

enum dk_hin_codec dk_hin_codec(const struct dk_hin *in);

/** Closes @p in. NULL is a no-op. */
void dk_hin_close(struct dk_hin *in);

/** Longest line the line reader holds; longer ones are skipped and counted. */
#define DK_HLINE_MAX (256 * 1024)

/** Lines over a stream. */
struct dk_hlines {
	struct dk_hin *in; /**< borrowed */
	char *buf;         /**< DK_HLINE_MAX * 2 octets, owned */
	size_t start, end; /**< unread octets are buf[start, end) */
	bool eof;
	int err;            /**< the stream's error, once met */
	unsigned long line; /**< number of the line last returned */
};

/** Sets up @p l over @p in. Returns 0 or -ENOMEM. */
int dk_hlines_init(struct dk_hlines *l, struct dk_hin *in);
void dk_hlines_deinit(struct dk_hlines *l);

/**
 * Fills the buffer with up to @p n octets (fewer at the end) and points
 * @p *p at them without consuming them: for sniffing a format. Returns the
 * count or a negative code.
 */
ssize_t dk_hlines_peek(struct dk_hlines *l, size_t n, const uint8_t **p);

/**
 * The next line, without its newline, in @p *line / @p *len (valid until the
 * next call). Returns 1, 0 at the end, DK_LOGERR_LONG (a line over
 * DK_HLINE_MAX was skipped; l->line is its number), or the stream's error.
 */
int dk_hlines_next(struct dk_hlines *l, const char **line, size_t *len);

/** Reads exactly @p n octets (the buffered ones first). Returns n, less at the end, or an error. */
ssize_t dk_hlines_read(struct dk_hlines *l, void *buf, size_t n);
