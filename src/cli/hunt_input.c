/* SPDX-License-Identifier: MIT */
/*
 * Streams and lines for `dnsink hunt` (see hunt_input.h). The codec is chosen
 * by magic number, not by name: logs get renamed, and a ".log" that is gzip
 * inside is common after rotation. A gzip file of several members (cat a.gz
 * b.gz, or logrotate's appends) reads as one stream.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>
#include <zstd.h>

#include "dnsink/logrec.h"

#include "hunt_input.h"

#define RAW_BUF (128 * 1024)

struct dk_hin {
	int fd;
	bool own_fd;
	enum dk_hin_codec codec;
	_Atomic uint64_t *raw_bytes;
	uint8_t *raw; /**< compressed input */
	size_t raw_pos, raw_end;
	bool raw_eof;
	bool done; /**< compressed stream ended cleanly at the end of input */
	z_stream z;
	bool z_init;
	bool member_open; /**< inside a gzip member / zstd frame */
	ZSTD_DCtx *zd;
	const char *error;
};

static ssize_t raw_fill(struct dk_hin *in)
{
	if (in->raw_pos < in->raw_end || in->raw_eof)
		return (ssize_t)(in->raw_end - in->raw_pos);
	for (;;) {
		ssize_t n = read(in->fd, in->raw, RAW_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			in->raw_eof = true;
		if (in->raw_bytes)
			atomic_fetch_add_explicit(in->raw_bytes, (uint64_t)n, memory_order_relaxed);
		in->raw_pos = 0;
		in->raw_end = (size_t)n;
		return n;
	}
}

int dk_hin_open(const char *path, _Atomic uint64_t *raw_bytes, struct dk_hin **out)
{
	struct dk_hin *in = calloc(1, sizeof(*in));

	if (!in)
		return -ENOMEM;
	in->raw_bytes = raw_bytes;
	in->raw = malloc(RAW_BUF);
	if (!in->raw) {
		free(in);
		return -ENOMEM;
	}
	if (strcmp(path, "-") == 0) {
		in->fd = STDIN_FILENO;
	} else {
		in->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (in->fd < 0) {
			int err = -errno;
			free(in->raw);
			free(in);
			return err;
		}
		in->own_fd = true;
		posix_fadvise(in->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	}
	/* Enough octets for the magic numbers; a short read is fine at the end. */
	while (!in->raw_eof && in->raw_end < 4) {
		ssize_t n = read(in->fd, in->raw + in->raw_end, RAW_BUF - in->raw_end);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = -errno;
			dk_hin_close(in);
			return err;
		}
		if (n == 0)
			in->raw_eof = true;
		in->raw_end += (size_t)n;
		if (raw_bytes)
			atomic_fetch_add_explicit(raw_bytes, (uint64_t)n, memory_order_relaxed);
	}
	const uint8_t *m = in->raw;
	if (in->raw_end >= 2 && m[0] == 0x1f && m[1] == 0x8b) {
		in->codec = DK_HIN_GZIP;
		if (inflateInit2(&in->z, 16 + MAX_WBITS) != Z_OK) {
			dk_hin_close(in);
			return -ENOMEM;
		}
		in->z_init = true;
	} else if (in->raw_end >= 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f &&
	           m[3] == 0xfd) {
		in->codec = DK_HIN_ZSTD;
		in->zd = ZSTD_createDCtx();
		if (!in->zd) {
			dk_hin_close(in);
			return -ENOMEM;
		}
	}
	*out = in;
	return 0;
}

static ssize_t read_plain(struct dk_hin *in, void *buf, size_t n)
{
	if (in->raw_pos < in->raw_end) {
		size_t k = in->raw_end - in->raw_pos < n ? in->raw_end - in->raw_pos : n;
		memcpy(buf, in->raw + in->raw_pos, k);
		in->raw_pos += k;
		return (ssize_t)k;
	}
	if (in->raw_eof)
		return 0;
	for (;;) {
		ssize_t k = read(in->fd, buf, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			in->raw_eof = true;
		if (in->raw_bytes)
			atomic_fetch_add_explicit(in->raw_bytes, (uint64_t)k, memory_order_relaxed);
		return k;
	}
}

static ssize_t io_error(struct dk_hin *in, const char *what)
{
	in->error = what;
	return DK_LOGERR_IO;
}

static ssize_t read_gzip(struct dk_hin *in, void *buf, size_t n)
{
	in->z.next_out = buf;
	in->z.avail_out = (uInt)(n > UINT32_MAX ? UINT32_MAX : n);
	while (in->z.avail_out == n) {
		ssize_t got = raw_fill(in);
		if (got < 0)
			return got;
		if (got == 0) {
			if (in->member_open)
				return io_error(in, "gzip stream cut short");
			return 0;
		}
		in->z.next_in = in->raw + in->raw_pos;
		in->z.avail_in = (uInt)(in->raw_end - in->raw_pos);
		in->member_open = true;
		int rc = inflate(&in->z, Z_NO_FLUSH);
		in->raw_pos = in->raw_end - in->z.avail_in;
		if (rc == Z_STREAM_END) {
			/* Another member may follow: concatenated gzip files are one stream. */
			in->member_open = false;
			inflateReset(&in->z);
			continue;
		}
		if (rc != Z_OK && rc != Z_BUF_ERROR)
			return io_error(in, "corrupt gzip stream");
	}
	return (ssize_t)(n - in->z.avail_out);
}

static ssize_t read_zstd(struct dk_hin *in, void *buf, size_t n)
{
	ZSTD_outBuffer out = {buf, n, 0};

	while (out.pos == 0) {
		ssize_t got = raw_fill(in);
		if (got < 0)
			return got;
		if (got == 0) {
			if (in->member_open)
				return io_error(in, "zstd stream cut short");
			return 0;
		}
		ZSTD_inBuffer zi = {in->raw + in->raw_pos, in->raw_end - in->raw_pos, 0};
		size_t rc = ZSTD_decompressStream(in->zd, &out, &zi);
		in->raw_pos += zi.pos;
		if (ZSTD_isError(rc))
			return io_error(in, "corrupt zstd stream");
		/* 0: a frame ended; anything else: more of this frame is due. */
		in->member_open = rc != 0;
	}
	return (ssize_t)out.pos;
}

ssize_t dk_hin_read(struct dk_hin *in, void *buf, size_t n)
{
	if (n == 0)
		return 0;
	switch (in->codec) {
	case DK_HIN_GZIP: return read_gzip(in, buf, n);
	case DK_HIN_ZSTD: return read_zstd(in, buf, n);
	default: return read_plain(in, buf, n);
	}
}

const char *dk_hin_error(const struct dk_hin *in)
{
	return in->error ? in->error : "read error";
}

enum dk_hin_codec dk_hin_codec(const struct dk_hin *in)
{
	return in->codec;
}

void dk_hin_close(struct dk_hin *in)
{
	if (!in)
		return;
	if (in->z_init)
		inflateEnd(&in->z);
	ZSTD_freeDCtx(in->zd);
	if (in->own_fd)
		close(in->fd);
	free(in->raw);
	free(in);
}

#define LBUF (DK_HLINE_MAX * 2)

int dk_hlines_init(struct dk_hlines *l, struct dk_hin *in)
{
	memset(l, 0, sizeof(*l));
	l->in = in;
	l->buf = malloc(LBUF);
	return l->buf ? 0 : -ENOMEM;
}

void dk_hlines_deinit(struct dk_hlines *l)
{
	free(l->buf);
	l->buf = NULL;
}

/* Moves the unread octets to the front and reads more after them. */
static int fill(struct dk_hlines *l)
{
	if (l->eof)
		return 0;
	if (l->start > 0) {
		memmove(l->buf, l->buf + l->start, l->end - l->start);
		l->end -= l->start;
		l->start = 0;
	}
	if (l->end == LBUF)
		return 1;
	ssize_t n = dk_hin_read(l->in, l->buf + l->end, LBUF - l->end);
	if (n < 0) {
		l->err = (int)n;
		l->eof = true;
		return (int)n;
	}
	if (n == 0)
		l->eof = true;
	l->end += (size_t)n;
	return n > 0;
}

ssize_t dk_hlines_peek(struct dk_hlines *l, size_t n, const uint8_t **p)
{
	if (n > LBUF)
		n = LBUF;
	while (l->end - l->start < n && !l->eof) {
		int rc = fill(l);
		if (rc < 0)
			return rc;
	}
	*p = (const uint8_t *)l->buf + l->start;
	return (ssize_t)(l->end - l->start < n ? l->end - l->start : n);
}

int dk_hlines_next(struct dk_hlines *l, const char **line, size_t *len)
{
	size_t scanned = 0;
	bool skipping = false;

	for (;;) {
		char *b = l->buf + l->start;
		size_t avail = l->end - l->start;
		char *nl = avail > scanned ? memchr(b + scanned, '\n', avail - scanned) : NULL;

		if (nl) {
			size_t n = (size_t)(nl - b);
			l->start += n + 1;
			l->line++;
			if (skipping || n > DK_HLINE_MAX)
				return DK_LOGERR_LONG;
			if (n && b[n - 1] == '\r')
				n--;
			*line = b;
			*len = n;
			return 1;
		}
		if (avail >= DK_HLINE_MAX) {
			/* Too long to hold: drop what is here and go on to its end. */
			skipping = true;
			l->start = l->end;
			scanned = 0;
		} else {
			scanned = avail;
		}
		if (l->eof) {
			if (l->err) {
				int err = l->err;
				l->err = 0;
				return err;
			}
			if (l->end == l->start)
				return 0;
			/* The last line without its newline. */
			l->line++;
			*line = l->buf + l->start;
			*len = l->end - l->start;
			l->start = l->end;
			return skipping ? DK_LOGERR_LONG : 1;
		}
		int rc = fill(l);
		if (rc < 0 && l->end == l->start)
			continue;
	}
}

ssize_t dk_hlines_read(struct dk_hlines *l, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		if (l->start == l->end) {
			if (l->eof)
				return l->err && got == 0 ? l->err : (ssize_t)got;
			l->start = l->end = 0;
			ssize_t k = dk_hin_read(l->in, (char *)buf + got, n - got);
			if (k < 0) {
				l->eof = true;
				l->err = (int)k;
				return got ? (ssize_t)got : k;
			}
			if (k == 0) {
				l->eof = true;
				return (ssize_t)got;
			}
			got += (size_t)k;
			continue;
		}
		size_t k = l->end - l->start < n - got ? l->end - l->start : n - got;
		memcpy((char *)buf + got, l->buf + l->start, k);
		l->start += k;
		got += k;
	}
	return (ssize_t)got;
}
