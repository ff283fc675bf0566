/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the response cache, which stores what upstreams
 * send. Each input is an upstream answer, inserted under the key its own
 * question names (so the checks past the question are reached), the first
 * octet choosing the key bits and whether TTL rules are tight. A stored
 * answer is looked up fresh and stale, and what comes back must be a whole
 * message whose records parse to the end and whose question is the key; it
 * then goes through the client's OPT and the UDP truncation as on a hit.
 * Properties that must hold whatever the input are checked with abort().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "dnsink/cache.h"
#include "dnsink/msg.h"
#include "dnsink/name.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1000000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dk_cache *c;
	uint8_t name[DK_NAME_MAX];
	size_t off = DK_HEADER_LEN, nlen;

	if (size < DK_HEADER_LEN + 5 || size > DK_MSG_MAX)
		return 0;
	if (dk_name_from_wire_compressed(data, size, &off, name, &nlen) < 0 || size - off < 4)
		return 0;
	if (dk_cache_new(DK_CACHE_MIN_BYTES, 1, &c) < 0)
		return 0;
	const struct dk_cache_limits lim = {
	        .min_ttl = data[1] & 1 ? 60 : 0,
	        .max_ttl = data[1] & 2 ? 10 : 86400,
	        .negative_max_ttl = 3600,
	        .failure_ttl = 5,
	        .stale_max_s = 600,
	};
	dk_cache_set_limits(c, &lim);
	const struct dk_cache_key k = {
	        .name = name,
	        .name_len = (uint8_t)nlen,
	        .qtype = (uint16_t)(data[off] << 8 | data[off + 1]),
	        .qclass = (uint16_t)(data[off + 2] << 8 | data[off + 3]),
	        .bits = data[0] & (DK_CACHE_BIT_DO | DK_CACHE_BIT_CD),
	};
	unsigned ev;
	enum dk_cache_result r = dk_cache_insert(c, &k, data, size, NOW, &ev);
	if ((unsigned)r >= DK_CACHE_RESULT_MAX || ev != 0)
		abort();
	uint8_t *out = malloc(DK_MSG_MAX);
	struct dk_cache_hit hit;
	struct dk_cache_stats st;
	dk_cache_stats(c, &st);
	if (!out || st.bytes > st.capacity || st.entries != (r == DK_CACHE_STORED))
		abort();
	for (int stale = 0; stale < 2 && r == DK_CACHE_STORED; stale++) {
		/* Stale: just expired, by the TTL the fresh hit reported. */
		uint64_t now = stale ? NOW + (uint64_t)hit.ttl_s * 1000 : NOW;
		int n = dk_cache_lookup(c, &k, now,
		                        stale ? DK_CACHE_LOOKUP_STALE : DK_CACHE_LOOKUP_PREFETCH,
		                        out, DK_MSG_MAX, &hit);
		if (hit.refresh && stale)
			abort();
		dk_cache_refresh_cancel(c, &k);
		if (stale && hit.kind == DK_CACHE_FAILURE) {
			if (n != 0)
				abort();
			break;
		}
		if (n < DK_HEADER_LEN || dk_msg_check_answer_body(out, (size_t)n) != 0 ||
		    hit.stale != (stale == 1))
			abort();
		struct dk_query q = {.id = 0x4242, .qtype = k.qtype, .qclass = k.qclass};
		memcpy(q.qname, name, nlen);
		q.qname_len = (uint8_t)nlen;
		if (dk_msg_check_answer(out, (size_t)n, LDNS_ID_WIRE(out), &q) != 0)
			abort();
		/* As a hit: the client's OPT, then its question and the UDP bound. */
		q.has_edns = true;
		q.question_end = (uint16_t)(DK_HEADER_LEN + nlen + 4);
		n = dk_msg_add_opt(out, (size_t)n, DK_MSG_MAX, &q, stale ? DK_EDE_STALE : 0);
		if (n < 0)
			continue;
		size_t len = dk_msg_answer_for_client(out, (size_t)n, out, &q, DK_UDP_PLAIN);
		if (len > (size_t)n || (len > DK_UDP_PLAIN && len != (size_t)n))
			abort();
	}
	free(out);
	dk_cache_free(c);
	return 0;
}
