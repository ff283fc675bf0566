/* SPDX-License-Identifier: MIT */
/*
 * Error texts and diagnostics shared by every module.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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
