/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the DNS message module. Each input is read three ways:
 * once as a client's query, whose every answer kind is then written into a
 * heap buffer of exactly the chosen capacity (so AddressSanitizer reports a
 * single octet written past it), and once as an upstream's answer to a fixed
 * query, run through the answer check and the client adaptation in place;
 * then its records are walked with the record walker (dk_rr_iter).
 * Properties that must hold whatever the input are checked with abort().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "dnsink/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The query the answers are checked against: "WwW.ExAmPlE.CoM" A IN, ID 0x4242, EDNS. */
static const uint8_t fixed_query[] = {
        0x42, 0x42, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 3,    'W',  'w',
        'W',  7,    'E',  'x',  'A',  'm',  'P',  'l',  'E',  3,    'C',  'o',  'M',  0,    0x00,
        0x01, 0x00, 0x01, 0,    0x00, 0x29, 0x04, 0xd0, 0,    0,    0,    0,    0x00, 0x00,
};

/* More than any local answer needs: header, 255-octet question, AAAA, OPT with EDE. */
#define FULL_CAP 600

static const struct dk_sinkhole sink = {
        .ipv4 = {0, 0, 0, 0},
        .ipv6 = {0},
        .ttl = 60,
};

/* A small deterministic mix of the input, so caps vary with it. */
static size_t mix(const uint8_t *data, size_t size)
{
	size_t h = size * 2654435761u;

	for (size_t i = 0; i < size && i < 16; i++)
		h = (h ^ data[i]) * 16777619u;
	return h;
}

/* Writes one answer into a buffer of exactly @p cap octets and checks the result. */
static void try_write(const uint8_t *data, const struct dk_query *q, int kind, uint8_t rcode,
                      uint16_t ede, size_t cap)
{
	uint8_t *out = malloc(cap ? cap : 1);
	int n;

	if (!out)
		return;
	if (kind)
		n = dk_msg_write_sinkhole(data, q, &sink, ede, out, cap);
	else
		n = dk_msg_write_error(data, q, rcode, ede, out, cap);
	if (n != DK_ESPACE && (n < DK_HEADER_LEN || (size_t)n > cap))
		abort();
	if (n == DK_ESPACE && cap >= FULL_CAP)
		abort();
	/* RD, RA, AD and CD are defined for opcode QUERY only: clear for any other. */
	if (n > 0 && q->opcode != LDNS_PACKET_QUERY &&
	    (LDNS_RD_WIRE(out) || LDNS_RA_WIRE(out) || LDNS_AD_WIRE(out) || LDNS_CD_WIRE(out)))
		abort();
	/* Whatever we answer must pass our own check as the answer to that query. */
	if (n > 0 && q->question_end && q->opcode == LDNS_PACKET_QUERY &&
	    dk_msg_check_answer(out, (size_t)n, q->id, q) != 0)
		abort();
	free(out);
}

static void as_query(const uint8_t *data, size_t size)
{
	static const uint8_t rcodes[] = {LDNS_RCODE_FORMERR,  LDNS_RCODE_SERVFAIL,
	                                 LDNS_RCODE_NXDOMAIN, LDNS_RCODE_NOTIMPL,
	                                 LDNS_RCODE_REFUSED,  DK_RCODE_BADVERS};
	struct dk_query q;
	int ret = dk_msg_parse_query(data, size, &q);

	if (ret == DK_EDROP)
		return;
	if (ret != 0 && ret != DK_EFORMERR && ret != DK_ENOTIMP && ret != DK_EBADVERS)
		abort();
	if (q.question_end > size || (q.question_end && q.question_end < DK_HEADER_LEN + 5))
		abort();
	size_t udp = dk_msg_client_udp_max(&q);
	if (udp < DK_UDP_PLAIN || udp > 4096)
		abort();

	size_t h = mix(data, size);
	for (size_t i = 0; i < DK_ARRAY_SIZE(rcodes); i++) {
		uint16_t ede = (h >> i) & 1 ? DK_EDE_BLOCKED : 0;
		try_write(data, &q, 0, rcodes[i], ede, FULL_CAP);
		try_write(data, &q, 0, rcodes[i], ede, (h >> (4 * i)) % (q.question_end + 40));
	}
	try_write(data, &q, 1, 0, DK_EDE_BLOCKED, FULL_CAP);
	try_write(data, &q, 1, 0, 0, h % (q.question_end + 60));

	char name[16];
	dk_rrtype_name(q.qtype, name, (h % sizeof(name)) + 1);
}

static void as_answer(const uint8_t *data, size_t size)
{
	static struct dk_query fq;
	static bool ready;

	if (!ready) {
		if (dk_msg_parse_query(fixed_query, sizeof(fixed_query), &fq) != 0)
			abort();
		ready = true;
	}

	/* Use the input's own ID, so the fuzzer need not guess it to get past the check. */
	uint16_t id = size >= 2 ? (uint16_t)(data[0] << 8 | data[1]) : 0;
	int ret = dk_msg_check_answer(data, size, id, &fq);
	if (ret != 0 && ret != DK_EMISMATCH && ret != DK_EFORMERR)
		abort();
	/* The record walk runs on answers the header check let through. */
	if (ret == 0) {
		int body = dk_msg_check_answer_body(data, size);
		if (body != 0 && body != DK_EFORMERR)
			abort();
	}

	uint8_t *ans = malloc(size ? size : 1);
	if (!ans)
		return;
	memcpy(ans, data, size);
	size_t max = mix(data, size) % 700;
	size_t n = dk_msg_answer_for_client(ans, size, fixed_query, &fq, max);
	if (n > size)
		abort();
	if (size > max && n > (max < DK_HEADER_LEN ? DK_HEADER_LEN : max))
		abort();
	if (size >= DK_HEADER_LEN && LDNS_ID_WIRE(ans) != fq.id)
		abort();
	/* A checked answer that fitted keeps everything but ID and question case. */
	if (ret == 0 && size <= max &&
	    memcmp(ans + fq.question_end, data + fq.question_end, size - fq.question_end) != 0)
		abort();
	free(ans);
}

/*
 * Walks every record of the input with the record walker, reading the target
 * of each CNAME and DNAME as the query module does, and checks that the walk
 * stays inside the input, moves forward and agrees with the answer body check.
 */
static void walk_records(const uint8_t *data, size_t size)
{
	struct dk_rr_iter it;
	struct dk_rr rr;
	int ret;

	if (dk_msg_rr_iter_init(&it, data, size) != 0) {
		if (dk_msg_rr_next(&it, &rr) != DK_EFORMERR)
			abort();
		return;
	}
	do {
		size_t last = it.off;
		while ((ret = dk_msg_rr_next(&it, &rr)) > 0) {
			if (rr.owner != last || rr.rdata + rr.rdlen != it.off || it.off > size ||
			    rr.section != it.section)
				abort();
			last = it.off;
			if (rr.type == LDNS_RR_TYPE_CNAME || rr.type == LDNS_RR_TYPE_DNAME) {
				uint8_t name[DK_NAME_MAX];
				size_t len = 0;
				ret = dk_msg_rr_target(&it, &rr, name, &len);
				if (ret != 0 && ret != DK_EFORMERR)
					abort();
				if (ret == 0 &&
				    (len == 0 || len > DK_NAME_MAX || name[len - 1] != 0))
					abort();
			}
		}
		if (ret < 0 && ret != DK_EFORMERR)
			abort();
	} while ((ret = dk_msg_rr_next_section(&it)) > 0);
	if (ret != 0 && ret != DK_EFORMERR)
		abort();
	/* One walker: the body check must say what this walk found. */
	if (size >= DK_HEADER_LEN && LDNS_QDCOUNT(data) == 1 && !LDNS_TC_WIRE(data)) {
		int body = dk_msg_check_answer_body(data, size);
		if (body != (ret == 0 && it.off == size ? 0 : DK_EFORMERR))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	as_query(data, size);
	as_answer(data, size);
	walk_records(data, size);
	return 0;
}
