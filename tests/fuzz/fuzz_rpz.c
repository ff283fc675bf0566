/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the RPZ zone reader. Each input is a zone file read
 * under the origin "rpz.test."; every record handed out is checked for the
 * properties the loader relies on (owner a valid wire name below 256 octets,
 * rdata within its buffer, an address trigger's prefix within its family),
 * and the counts must add up. Local-data records are then written as an
 * answer to a fixed query into a buffer of exactly the room they need.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dnsink/msg.h"
#include "dnsink/name.h"
#include "dnsink/rpz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* "x.rpz.test" ANY IN, ID 1, no EDNS. */
static const uint8_t query[] = {0, 1,   1,   0,   0, 1,   0,   0,   0,   0, 0, 0,   1, 'x',
                                3, 'r', 'p', 'z', 4, 't', 'e', 's', 't', 0, 0, 255, 0, 1};

static int check(void *ctx, const struct dk_rpz_rec *rec)
{
	size_t *n = ctx;
	uint8_t offs[DK_LABELS_MAX];
	uint8_t recs[8 + DK_RPZ_RDATA_MAX];
	uint8_t out[600];
	struct dk_query q;

	(*n)++;
	if (rec->owner_len < 1 || rec->owner_len > DK_NAME_MAX ||
	    rec->owner[rec->owner_len - 1] != 0)
		abort();
	dk_name_labels(rec->owner, rec->owner_len, offs);
	if (rec->rdlen > DK_RPZ_RDATA_MAX || rec->action >= DK_RPZ_ACTION_MAX)
		abort();
	if (rec->trigger == DK_RPZ_CLIENT_IP || rec->trigger == DK_RPZ_IP) {
		if ((rec->family == AF_INET && rec->prefix > 32) ||
		    (rec->family == AF_INET6 && rec->prefix > 128) ||
		    (rec->family != AF_INET && rec->family != AF_INET6))
			abort();
	}
	if (rec->action != DK_RPZ_LOCAL)
		return 0;
	recs[0] = (uint8_t)(rec->type >> 8);
	recs[1] = (uint8_t)rec->type;
	memset(recs + 2, 0, 4);
	recs[6] = (uint8_t)(rec->rdlen >> 8);
	recs[7] = (uint8_t)rec->rdlen;
	memcpy(recs + 8, rec->rdata, rec->rdlen);
	if (dk_msg_parse_query(query, sizeof(query), &q) != 0)
		abort();
	int len = dk_msg_write_records(query, &q, recs, 8u + rec->rdlen, 0, out, sizeof(out));
	if (len < 0 && len != DK_ESPACE)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t origin[] = {3, 'r', 'p', 'z', 4, 't', 'e', 's', 't', 0};
	struct dk_rpz_stats st;
	size_t n = 0;

	/* The reader takes a text that need not end in NUL; give it exactly the input. */
	char *text = malloc(size ? size : 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	if (dk_rpz_parse(text, size, origin, sizeof(origin), check, &n, &st) != 0)
		abort();
	size_t triggers = 0;
	for (int t = 0; t < DK_RPZ_TRIGGER_MAX; t++)
		triggers += st.triggers[t];
	if (n > st.records || triggers > st.records || st.invalid > st.lines)
		abort();
	free(text);
	return 0;
}
