/* SPDX-License-Identifier: MIT */
/*
 * Error texts, diagnostics and the report of a failed internal assertion,
 * shared by every module.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include "dnsink/common.h"

const char *dk_strerror(int err)
{
	switch (err) {
	case 0: return "success";
	case DK_ESYNTAX: return "syntax error";
	case DK_ENAME: return "invalid domain name";
	case DK_ELABEL: return "label longer than 63 octets";
	case DK_ENAMELEN: return "name longer than 255 octets";
	case DK_EFORMERR: return "malformed DNS message";
	case DK_ENOTIMP: return "opcode not implemented";
	case DK_EDROP: return "message dropped";
	case DK_EBADVERS: return "unsupported EDNS version";
	case DK_ESCHEMA: return "schema violation";
	case DK_EDUP: return "duplicate identifier";
	case DK_ESPACE: return "buffer too small";
	case DK_EMISMATCH: return "answer does not match the query";
	case DK_EFULL: return "table full";
	}
	if (err < 0 && err > -1000)
		return strerror(-err);
	return "unknown error";
}

void dk_diag_set(struct dk_diag *d, const char *file, unsigned line, const char *fmt, ...)
{
	if (!d)
		return;
	snprintf(d->file, sizeof(d->file), "%s", file ? file : "");
	d->line = line;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
	va_end(ap);
}

void dk_diag_format(const struct dk_diag *d, char *buf, size_t size)
{
	if (d->file[0] && d->line)
		snprintf(buf, size, "%s:%u: %s", d->file, d->line, d->msg);
	else if (d->file[0])
		snprintf(buf, size, "%s: %s", d->file, d->msg);
	else
		snprintf(buf, size, "%s", d->msg);
}

#ifdef NDEBUG
bool dk_assert_abort = false;
#else
bool dk_assert_abort = true;
#endif

static void assert_to_stderr(const char *msg)
{
	fprintf(stderr, "dnsink: %s\n", msg);
}

static void (*assert_hook)(const char *msg) = assert_to_stderr;

void dk_set_assert_hook(void (*fn)(const char *msg))
{
	assert_hook = fn ? fn : assert_to_stderr;
}

void dk__assert_fail(const char *cond, const char *file, unsigned line, const char *func)
{
	/* On the stack: an assertion may fail where allocating is not allowed. */
	char msg[512];

	snprintf(msg, sizeof(msg), "%s:%u: %s: assertion '%s' failed", file, line, func, cond);
	assert_hook(msg);
	if (dk_assert_abort)
		abort();
}

uint64_t dk_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

uint64_t dk_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
