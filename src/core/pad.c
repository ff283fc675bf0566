/* SPDX-License-Identifier: MIT */
/* EDNS(0) padding of queries (see pad.h). */
#include <string.h>

#include <ldns/ldns.h>

#include "dnsink/common.h"
#include "dnsink/msg.h"
#include "dnsink/pad.h"

/** EDNS option code of Padding (RFC 7830). */
#define OPT_PADDING 12

/* True when the options of OPT rdata @p rd (@p n octets) hold a padding option. */
static bool has_padding(const uint8_t *rd, size_t n)
{
	size_t off = 0;

	while (off + 4 <= n) {
		unsigned code = (unsigned)rd[off] << 8 | rd[off + 1];
		size_t olen = (size_t)rd[off + 2] << 8 | rd[off + 3];
		if (code == OPT_PADDING)
			return true;
		off += 4 + olen;
	}
	return false;
}

int dk_pad_query(const uint8_t *pkt, size_t len, size_t block, uint8_t *out, size_t cap)
{
	struct dk_rr_iter it;
	struct dk_rr rr, opt = {0};
	bool found = false, last = false;
	int ret;

	if (len > cap)
		return DK_ESPACE;
	if (dk_msg_rr_iter_init(&it, pkt, len) < 0)
		return DK_EFORMERR;
	do {
		while ((ret = dk_msg_rr_next(&it, &rr)) > 0) {
			last = false;
			if (rr.section == DK_SECTION_ADDITIONAL && rr.type == LDNS_RR_TYPE_OPT &&
			    rr.root_owner) {
				opt = rr;
				found = last = true;
			}
		}
		if (ret < 0)
			return DK_EFORMERR;
	} while (dk_msg_rr_next_section(&it) > 0);
	memcpy(out, pkt, len);
	if (!found || !last || opt.rdata + opt.rdlen != len || block < 2 ||
	    has_padding(pkt + opt.rdata, opt.rdlen))
		return (int)len;
	size_t padded = (len + 4 + block - 1) / block * block;
	size_t pad = padded - len - 4;
	if (padded > cap || (size_t)opt.rdlen + 4 + pad > 0xffff)
		return (int)len;
	uint8_t *o = out + len;
	o[0] = 0;
	o[1] = OPT_PADDING;
	o[2] = (uint8_t)(pad >> 8);
	o[3] = (uint8_t)pad;
	memset(o + 4, 0, pad);
	size_t rdlen = opt.rdlen + 4 + pad;
	out[opt.rdata - 2] = (uint8_t)(rdlen >> 8);
	out[opt.rdata - 1] = (uint8_t)rdlen;
	return (int)padded;
}
