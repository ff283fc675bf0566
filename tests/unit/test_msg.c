/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the DNS message module (src/msg.c). Well-formed queries and
 * upstream answers are built with ldns; malformed ones are written by hand as
 * hex so each case shows exactly which octets are wrong. Every local answer
 * dnsink writes is read back with ldns's own parser, which serves as the
 * independent judge of the fields.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ldns/ldns.h>

#include "dnsink/msg.h"

#define BUF_MAX 4096

/* A message under test: octets and length. */
struct wire {
	uint8_t p[BUF_MAX];
	size_t len;
};

/* Decodes @p hex (whitespace ignored) into @p w. */
static void hex(struct wire *w, const char *hex)
{
	w->len = 0;
	for (const char *s = hex; *s;) {
		if (*s == ' ' || *s == '\n') {
			s++;
			continue;
		}
		unsigned v;
		assert_int_equal(sscanf(s, "%2x", &v), 1);
		assert_true(w->len < sizeof(w->p));
		w->p[w->len++] = (uint8_t)v;
		s += 2;
	}
}

static void append(struct wire *w, const void *p, size_t n)
{
	assert_true(w->len + n <= sizeof(w->p));
	memcpy(w->p + w->len, p, n);
	w->len += n;
}

static void append_hex(struct wire *w, const char *h)
{
	struct wire tmp;

	hex(&tmp, h);
	append(w, tmp.p, tmp.len);
}

/* Options of a query built with ldns. */
struct qopt {
	const char *name;
	ldns_rr_type type;
	uint16_t flags; /* LDNS_RD, LDNS_CD */
	bool edns;
	bool edns_do;
	uint16_t udp;
};

static ldns_pkt *make_query_pkt(const struct qopt *o, uint16_t id)
{
	ldns_rdf *dname = ldns_dname_new_frm_str(o->name);
	assert_non_null(dname);
	ldns_pkt *pkt = ldns_pkt_query_new(dname, o->type, LDNS_RR_CLASS_IN, o->flags);
	assert_non_null(pkt);
	ldns_pkt_set_id(pkt, id);
	if (o->edns) {
		ldns_pkt_set_edns_udp_size(pkt, o->udp ? o->udp : 1232);
		ldns_pkt_set_edns_do(pkt, o->edns_do);
	}
	return pkt;
}

static void to_wire(const ldns_pkt *pkt, struct wire *w)
{
	uint8_t *buf = NULL;
	size_t size = 0;

	assert_int_equal(ldns_pkt2wire(&buf, pkt, &size), LDNS_STATUS_OK);
	assert_true(size <= sizeof(w->p));
	memcpy(w->p, buf, size);
	w->len = size;
	free(buf);
}

static void make_query(const struct qopt *o, uint16_t id, struct wire *w)
{
	ldns_pkt *pkt = make_query_pkt(o, id);
	to_wire(pkt, w);
	ldns_pkt_free(pkt);
}

/* ---- dk_msg_parse_query: well-formed queries ---- */

static void test_parse_plain(void **state)
{
	(void)state;
	struct qopt o = {.name = "WwW.ExAmPle.COM", .type = LDNS_RR_TYPE_AAAA, .flags = LDNS_RD};
	struct wire w;
	struct dk_query q;

	make_query(&o, 0xBEEF, &w);
	assert_int_equal(dk_msg_parse_query(w.p, w.len, &q), 0);
	assert_int_equal(q.id, 0xBEEF);
	assert_int_equal(q.opcode, 0);
	assert_int_equal(q.flags, 0x0100);
	assert_int_equal(q.qtype, LDNS_RR_TYPE_AAAA);
	assert_int_equal(q.qclass, LDNS_RR_CLASS_IN);
	static const uint8_t lower[] = "\3www\7example\3com";
	assert_int_equal(q.qname_len, sizeof(lower));
	assert_memory_equal(q.qname, lower, sizeof(lower));
	assert_int_equal(q.question_end, w.len);
	assert_false(q.has_edns);
	assert_int_equal(dk_msg_client_udp_max(&q), 512);
}

static void test_parse_edns(void **state)
{
	(void)state;
	struct qopt o = {.name = "a.example",
	                 .type = LDNS_RR_TYPE_A,
	                 .edns = true,
	                 .edns_do = true,
	                 .udp = 4000};
	struct wire w;
	struct dk_query q;

	make_query(&o, 7, &w);
	assert_int_equal(dk_msg_parse_query(w.p, w.len, &q), 0);
	assert_true(q.has_edns);
	assert_true(q.edns_do);
	assert_int_equal(q.edns_version, 0);
	assert_int_equal(q.edns_udp_size, 4000);
	assert_int_equal(q.question_end, 12 + 11 + 4);
	assert_int_equal(dk_msg_client_udp_max(&q), 4000);

	o.edns_do = false;
	o.udp = 9000;
	make_query(&o, 7, &w);
	assert_int_equal(dk_msg_parse_query(w.p, w.len, &q), 0);
	assert_false(q.edns_do);
	assert_int_equal(q.edns_udp_size, 9000);
	assert_int_equal(dk_msg_client_udp_max(&q), 4096);

	o.udp = 100;
	make_query(&o, 7, &w);
	assert_int_equal(dk_msg_parse_query(w.p, w.len, &q), 0);
	assert_int_equal(q.edns_udp_size, 100);
	assert_int_equal(dk_msg_client_udp_max(&q), 512);
}

/* ---- dk_msg_parse_query: table of hand-written messages ---- */

/* Header of a query for "a." with ID 0x1234, RD set, and the given counts. */
#define HDR(qd, an, ns, ar) "1234 0100 " qd " " an " " ns " " ar " "
#define Q_A                 "01 61 00 0001 0001 "
#define OPT0                "00 0029 1000 00000000 0000 "

struct parse_case {
	const char *what;
	const char *hex;
	int expect;
	bool question; /* question_end expected non-zero */
};

static const struct parse_case parse_cases[] = {
        {"minimal query", HDR("0001", "0000", "0000", "0000") Q_A, 0, true},
        {"root name", HDR("0001", "0000", "0000", "0000") "00 0002 0001", 0, true},
        {"QR set", "1234 8100 0001 0000 0000 0000 " Q_A, DK_EDROP, false},
        {"QR set and bad opcode", "1234 a800 0001 0000 0000 0000 " Q_A, DK_EDROP, false},
        {"QDCOUNT 0", HDR("0000", "0000", "0000", "0000"), DK_EFORMERR, false},
        {"QDCOUNT 0 with data", HDR("0000", "0000", "0000", "0000") Q_A, DK_EFORMERR, false},
        {"QDCOUNT 2", HDR("0002", "0000", "0000", "0000") Q_A Q_A, DK_EFORMERR, false},
        {"no question", HDR("0001", "0000", "0000", "0000"), DK_EFORMERR, false},
        {"name cut in label", HDR("0001", "0000", "0000", "0000") "05 6162", DK_EFORMERR, false},
        {"name without root", HDR("0001", "0000", "0000", "0000") "01 61", DK_EFORMERR, false},
        {"no qtype", HDR("0001", "0000", "0000", "0000") "01 61 00", DK_EFORMERR, false},
        {"half qclass", HDR("0001", "0000", "0000", "0000") "01 61 00 0001 00", DK_EFORMERR, false},
        {"pointer to itself", HDR("0001", "0000", "0000", "0000") "c00c 0001 0001", DK_EFORMERR,
         false},
        {"pointer forward", HDR("0001", "0000", "0000", "0000") "c010 0001 0001 01 61 00",
         DK_EFORMERR, false},
        {"pointer backward", HDR("0001", "0000", "0000", "0000") "01 61 c00c 0001 0001",
         DK_EFORMERR, false},
        {"pointer into header", HDR("0001", "0000", "0000", "0000") "c002 0001 0001", DK_EFORMERR,
         false},
        {"label type 0x40", HDR("0001", "0000", "0000", "0000") "41 61 00 0001 0001", DK_EFORMERR,
         false},
        {"label type 0x80", HDR("0001", "0000", "0000", "0000") "81 61 00 0001 0001", DK_EFORMERR,
         false},
        {"unknown class", HDR("0001", "0000", "0000", "0000") "01 61 00 0001 1234", 0, true},
        {"type 666", HDR("0001", "0000", "0000", "0000") "01 61 00 029a 0001", 0, true},
        {"trailing octet", HDR("0001", "0000", "0000", "0000") Q_A "00", DK_EFORMERR, true},
        {"trailing garbage", HDR("0001", "0000", "0000", "0000") Q_A "deadbeef", DK_EFORMERR, true},
        {"ARCOUNT without record", HDR("0001", "0000", "0000", "0001") Q_A, DK_EFORMERR, true},
        {"ANCOUNT without record", HDR("0001", "0001", "0000", "0000") Q_A, DK_EFORMERR, true},
        {"record cut in fixed part", HDR("0001", "0000", "0000", "0001") Q_A "00 0029 1000 00",
         DK_EFORMERR, true},
        {"rdata past end", HDR("0001", "0000", "0000", "0001") Q_A "00 0029 1000 00000000 0005 00",
         DK_EFORMERR, true},
        {"EDNS", HDR("0001", "0000", "0000", "0001") Q_A OPT0, 0, true},
        {"EDNS version 1", HDR("0001", "0000", "0000", "0001") Q_A "00 0029 1000 00010000 0000",
         DK_EBADVERS, true},
        {"EDNS version 255", HDR("0001", "0000", "0000", "0001") Q_A "00 0029 1000 00ff8000 0000",
         DK_EBADVERS, true},
        {"two OPT records", HDR("0001", "0000", "0000", "0002") Q_A OPT0 OPT0, DK_EFORMERR, true},
        {"OPT not root-owned",
         HDR("0001", "0000", "0000", "0001") Q_A "01 61 00 0029 1000 "
                                                 "00000000 0000",
         DK_EFORMERR, true},
        {"OPT with pointer owner",
         HDR("0001", "0000", "0000", "0001") Q_A "c00c 0029 1000 "
                                                 "00000000 0000",
         DK_EFORMERR, true},
        {"OPT in answer section", HDR("0001", "0001", "0000", "0000") Q_A OPT0, DK_EFORMERR, true},
        {"OPT in authority section", HDR("0001", "0000", "0001", "0000") Q_A OPT0, DK_EFORMERR,
         true},
        {"unknown EDNS option and flags",
         HDR("0001", "0000", "0000", "0001") Q_A "00 0029 0200 00007fff 000b "
                                                 "fde9 0003 010203 000f 0000",
         0, true},
        {"EDNS option past rdata",
         HDR("0001", "0000", "0000", "0001") Q_A "00 0029 0200 00000000 0006 fde9 0003 0102",
         DK_EFORMERR, true},
        {"EDNS option header cut",
         HDR("0001", "0000", "0000", "0001") Q_A "00 0029 0200 00000000 0002 fde9", DK_EFORMERR,
         true},
        {"compressed owner in additional",
         HDR("0001", "0000", "0000", "0002") Q_A "c00c 0001 0001 00000e10 0004 c0000201" OPT0, 0,
         true},
        {"pointer owner cut", HDR("0001", "0000", "0000", "0001") Q_A "c0", DK_EFORMERR, true},
        {"bad label type in record",
         HDR("0001", "0000", "0000", "0001") Q_A "41 00 0001 0001 00000e10 0000", DK_EFORMERR,
         true},
        {"trailing garbage after OPT", HDR("0001", "0000", "0000", "0001") Q_A OPT0 "00",
         DK_EFORMERR, true},
};

static void test_parse_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < DK_ARRAY_SIZE(parse_cases); i++) {
		const struct parse_case *c = &parse_cases[i];
		struct wire w;
		struct dk_query q;

		hex(&w, c->hex);
		memset(&q, 0xAA, sizeof(q));
		int ret = dk_msg_parse_query(w.p, w.len, &q);
		if (ret != c->expect)
			fail_msg("case \"%s\": got %d (%s), want %d (%s)", c->what, ret,
			         dk_strerror(ret), c->expect, dk_strerror(c->expect));
		if ((q.question_end != 0) != c->question)
			fail_msg("case \"%s\": question_end %u", c->what, q.question_end);
		/* The header fields are there for every answerable outcome. */
		if (ret != DK_EDROP) {
			assert_int_equal(q.id, 0x1234);
			assert_int_equal(q.flags, 0x0100);
		}
	}
}

static void test_parse_edns_fields(void **state)
{
	(void)state;
	struct wire w;
	struct dk_query q;

	hex(&w, HDR("0001", "0000", "0000", "0001") Q_A "00 0029 0200 00007fff 000b "
	                                                "fde9 0003 010203 000f 0000");
	assert_int_equal(dk_msg_parse_query(w.p, w.len, &q), 0);
	assert_true(q.has_edns);
	assert_false(q.edns_do);
	assert_int_equal(q.edns_udp_size, 512);

	hex(&w, HDR("0001", "0000", "0000", "0001") Q_A "00 0029 1000 0002ffff 0000");
	assert_int_equal(dk_msg_parse_query(w.p, w.len, &q), DK_EBADVERS);
	assert_true(q.has_edns);
	assert_true(q.edns_do);
	assert_int_equal(q.edns_version, 2);
	assert_int_equal(q.qtype, 1);
}

static void test_parse_short_header(void **state)
{
	(void)state;
	struct wire w;
	struct dk_query q;

	hex(&w, HDR("0001", "0000", "0000", "0000") Q_A);
	for (size_t n = 0; n < DK_HEADER_LEN; n++)
		assert_int_equal(dk_msg_parse_query(w.p, n, &q), DK_EDROP);
	/* Every cut inside the question is a FORMERR, never a read past the end. */
	for (size_t n = DK_HEADER_LEN; n < w.len; n++)
		assert_int_equal(dk_msg_parse_query(w.p, n, &q), DK_EFORMERR);
	assert_int_equal(dk_msg_parse_query(w.p, w.len, &q), 0);
}

static void test_parse_opcodes(void **state)
{
	(void)state;
	struct wire w;
	struct dk_query q;

	hex(&w, HDR("0001", "0000", "0000", "0000") Q_A);
	for (unsigned op = 1; op <= 15; op++) {
		LDNS_OPCODE_SET(w.p, op);
		assert_int_equal(dk_msg_parse_query(w.p, w.len, &q), DK_ENOTIMP);
		assert_int_equal(q.opcode, op);
		assert_int_equal(q.id, 0x1234);
		assert_int_equal(q.flags >> 8, 0x01 | op << 3);
	}
}

/* A question of @p labels labels of @p label_len octets each, plus one of @p last. */
static void long_name_query(struct wire *w, unsigned labels, unsigned label_len, unsigned last)
{
	uint8_t label[64];

	hex(w, HDR("0001", "0000", "0000", "0000"));
	memset(label, 'x', sizeof(label));
	for (unsigned i = 0; i < labels; i++) {
		uint8_t n = (uint8_t)label_len;
		append(w, &n, 1);
		append(w, label, label_len);
	}
	if (last) {
		uint8_t n = (uint8_t)last;
		append(w, &n, 1);
		append(w, label, last);
	}
	append_hex(w, "00 0001 0001");
}

static void test_parse_long_names(void **state)
{
	(void)state;
	struct wire w;
	struct dk_query q;

	long_name_query(&w, 1, 63, 0);
	assert_int_equal(dk_msg_parse_query(w.p, w.len, &q), 0);
	long_name_query(&w, 1, 64, 0);
	assert_int_equal(dk_msg_parse_query(w.p, w.len, &q), DK_EFORMERR);
	/* 3 * 64 + 62 + 1 = 255 octets: the longest legal name. */
	long_name_query(&w, 3, 63, 61);
	assert_int_equal(dk_msg_parse_query(w.p, w.len, &q), 0);
	assert_int_equal(q.qname_len, 255);
	/* 256 octets. */
	long_name_query(&w, 3, 63, 62);
	assert_int_equal(dk_msg_parse_query(w.p, w.len, &q), DK_EFORMERR);
	assert_int_equal(q.question_end, 0);
	/* 127 one-octet labels: 255 octets; 128 of them: 257. */
	long_name_query(&w, 127, 1, 0);
	assert_int_equal(dk_msg_parse_query(w.p, w.len, &q), 0);
	long_name_query(&w, 128, 1, 0);
	assert_int_equal(dk_msg_parse_query(w.p, w.len, &q), DK_EFORMERR);
}

/* ---- local answers ---- */

static const struct dk_sinkhole sink = {
        .ipv4 = {10, 1, 2, 3},
        .ipv6 = {0x20, 0x01, 0x0d, 0xb8, [15] = 0x42},
        .ttl = 60,
};

enum kind { ERROR, SINKHOLE };

struct answer_case {
	const char *what;
	struct qopt q;
	enum kind kind;
	uint8_t rcode; /* for ERROR */
	uint16_t ede;
};

static const struct answer_case answer_cases[] = {
        {"sinkhole A",
         {"Bad.Example.COM", LDNS_RR_TYPE_A, LDNS_RD, false, false, 0},
         SINKHOLE,
         0,
         DK_EDE_BLOCKED},
        {"sinkhole A EDNS",
         {"bad.example", LDNS_RR_TYPE_A, LDNS_RD, true, false, 0},
         SINKHOLE,
         0,
         DK_EDE_BLOCKED},
        {"sinkhole AAAA EDNS DO CD",
         {"MiXeD.example", LDNS_RR_TYPE_AAAA, LDNS_RD | LDNS_CD, true, true, 4096},
         SINKHOLE,
         0,
         DK_EDE_BLOCKED},
        {"sinkhole AAAA no EDE",
         {"x.example", LDNS_RR_TYPE_AAAA, 0, true, false, 0},
         SINKHOLE,
         0,
         0},
        {"sinkhole TXT NODATA",
         {"t.example", LDNS_RR_TYPE_TXT, LDNS_RD, true, false, 0},
         SINKHOLE,
         0,
         DK_EDE_BLOCKED},
        {"sinkhole MX NODATA",
         {"m.example", LDNS_RR_TYPE_MX, LDNS_RD, false, false, 0},
         SINKHOLE,
         0,
         DK_EDE_BLOCKED},
        {"nxdomain EDNS",
         {"NX.example", LDNS_RR_TYPE_A, LDNS_RD, true, true, 0},
         ERROR,
         LDNS_RCODE_NXDOMAIN,
         DK_EDE_BLOCKED},
        {"refused plain",
         {"r.example", LDNS_RR_TYPE_A, 0, false, false, 0},
         ERROR,
         LDNS_RCODE_REFUSED,
         DK_EDE_PROHIBITED},
        {"refused EDNS",
         {"r.example", LDNS_RR_TYPE_A, LDNS_CD, true, false, 0},
         ERROR,
         LDNS_RCODE_REFUSED,
         DK_EDE_PROHIBITED},
        {"servfail EDNS no EDE",
         {"s.example", LDNS_RR_TYPE_SOA, LDNS_RD, true, false, 0},
         ERROR,
         LDNS_RCODE_SERVFAIL,
         0},
        {"formerr",
         {"f.example", LDNS_RR_TYPE_A, LDNS_RD, false, false, 0},
         ERROR,
         LDNS_RCODE_FORMERR,
         0},
        {"badvers",
         {"v.example", LDNS_RR_TYPE_A, LDNS_RD, true, false, 0},
         ERROR,
         DK_RCODE_BADVERS,
         0},
};

static int write_case(const struct answer_case *c, const struct wire *qw, const struct dk_query *q,
                      uint8_t *out, size_t cap)
{
	if (c->kind == SINKHOLE)
		return dk_msg_write_sinkhole(qw->p, q, &sink, c->ede, out, cap);
	return dk_msg_write_error(qw->p, q, c->rcode, c->ede, out, cap);
}

static void check_answer_fields(const struct answer_case *c, const struct wire *qw,
                                const struct dk_query *q, const uint8_t *out, size_t len)
{
	ldns_pkt *a = NULL;

	if (ldns_wire2pkt(&a, out, len) != LDNS_STATUS_OK)
		fail_msg("case \"%s\": ldns cannot parse our answer", c->what);
	assert_int_equal(ldns_pkt_id(a), 0xC0DE);
	assert_true(ldns_pkt_qr(a));
	assert_true(ldns_pkt_ra(a));
	assert_false(ldns_pkt_aa(a));
	assert_false(ldns_pkt_tc(a));
	assert_int_equal(ldns_pkt_rd(a), (c->q.flags & LDNS_RD) != 0);
	assert_int_equal(ldns_pkt_cd(a), (c->q.flags & LDNS_CD) != 0);
	assert_int_equal(ldns_pkt_get_opcode(a), LDNS_PACKET_QUERY);

	/* The question comes back as the client wrote it, letter case included. */
	assert_int_equal(ldns_pkt_qdcount(a), 1);
	assert_memory_equal(out + DK_HEADER_LEN, qw->p + DK_HEADER_LEN,
	                    q->question_end - DK_HEADER_LEN);
	ldns_rr *qrr = ldns_rr_list_rr(ldns_pkt_question(a), 0);
	char *owner = ldns_rdf2str(ldns_rr_owner(qrr));
	char want[300];
	snprintf(want, sizeof(want), "%s.", c->q.name);
	assert_string_equal(owner, want);
	free(owner);
	assert_int_equal(ldns_rr_get_type(qrr), c->q.type);

	uint8_t rcode = c->kind == SINKHOLE ? 0 : c->rcode;
	assert_int_equal(ldns_pkt_get_rcode(a), rcode & 0x0F);

	bool has_addr = c->kind == SINKHOLE &&
	                (c->q.type == LDNS_RR_TYPE_A || c->q.type == LDNS_RR_TYPE_AAAA);
	assert_int_equal(ldns_pkt_ancount(a), has_addr ? 1 : 0);
	assert_int_equal(ldns_pkt_nscount(a), 0);
	if (has_addr) {
		ldns_rr *rr = ldns_rr_list_rr(ldns_pkt_answer(a), 0);
		assert_int_equal(ldns_rr_get_type(rr), c->q.type);
		assert_int_equal(ldns_rr_get_class(rr), LDNS_RR_CLASS_IN);
		assert_int_equal(ldns_rr_ttl(rr), sink.ttl);
		assert_int_equal(ldns_dname_compare(ldns_rr_owner(rr), ldns_rr_owner(qrr)), 0);
		ldns_rdf *rd = ldns_rr_rdf(rr, 0);
		if (c->q.type == LDNS_RR_TYPE_A) {
			assert_int_equal(ldns_rdf_size(rd), 4);
			assert_memory_equal(ldns_rdf_data(rd), sink.ipv4, 4);
		} else {
			assert_int_equal(ldns_rdf_size(rd), 16);
			assert_memory_equal(ldns_rdf_data(rd), sink.ipv6, 16);
		}
		/* The owner is a pointer to the question name. */
		assert_int_equal(out[q->question_end], 0xC0);
		assert_int_equal(out[q->question_end + 1], 0x0C);
	}

	assert_int_equal(ldns_pkt_edns(a), c->q.edns);
	if (c->q.edns) {
		assert_int_equal(ldns_pkt_edns_udp_size(a), 1232);
		assert_int_equal(ldns_pkt_edns_version(a), 0);
		assert_int_equal(ldns_pkt_edns_do(a), c->q.edns_do);
		assert_int_equal(ldns_pkt_edns_extended_rcode(a), rcode >> 4);
		ldns_rdf *data = ldns_pkt_edns_data(a);
		if (c->ede) {
			const uint8_t ede[] = {
			        0, 15, 0, 2, (uint8_t)(c->ede >> 8), (uint8_t)c->ede};
			assert_non_null(data);
			assert_int_equal(ldns_rdf_size(data), sizeof(ede));
			assert_memory_equal(ldns_rdf_data(data), ede, sizeof(ede));
		} else {
			assert_true(data == NULL || ldns_rdf_size(data) == 0);
		}
	} else {
		assert_int_equal(ldns_pkt_arcount(a), 0);
	}
	ldns_pkt_free(a);
}

static void test_answers(void **state)
{
	(void)state;
	for (size_t i = 0; i < DK_ARRAY_SIZE(answer_cases); i++) {
		const struct answer_case *c = &answer_cases[i];
		struct wire qw;
		struct dk_query q;
		uint8_t out[BUF_MAX];

		make_query(&c->q, 0xC0DE, &qw);
		assert_int_equal(dk_msg_parse_query(qw.p, qw.len, &q), 0);
		int n = write_case(c, &qw, &q, out, sizeof(out));
		if (n < 0)
			fail_msg("case \"%s\": %s", c->what, dk_strerror(n));
		check_answer_fields(c, &qw, &q, out, (size_t)n);
	}
}

#define GUARD      64
#define GUARD_BYTE 0xA5

static void test_answers_space(void **state)
{
	(void)state;
	for (size_t i = 0; i < DK_ARRAY_SIZE(answer_cases); i++) {
		const struct answer_case *c = &answer_cases[i];
		struct wire qw;
		struct dk_query q;
		uint8_t out[BUF_MAX];

		make_query(&c->q, 0xC0DE, &qw);
		assert_int_equal(dk_msg_parse_query(qw.p, qw.len, &q), 0);
		int need = write_case(c, &qw, &q, out, sizeof(out));
		assert_true(need > DK_HEADER_LEN);
		for (size_t cap = 0; cap < (size_t)need; cap++) {
			memset(out, GUARD_BYTE, (size_t)need + GUARD);
			assert_int_equal(write_case(c, &qw, &q, out, cap), DK_ESPACE);
			for (size_t k = cap; k < (size_t)need + GUARD; k++)
				if (out[k] != GUARD_BYTE)
					fail_msg("case \"%s\" cap %zu: octet %zu written", c->what,
					         cap, k);
		}
		memset(out, GUARD_BYTE, (size_t)need + GUARD);
		assert_int_equal(write_case(c, &qw, &q, out, (size_t)need), need);
		for (size_t k = (size_t)need; k < (size_t)need + GUARD; k++)
			assert_int_equal(out[k], GUARD_BYTE);
	}
}

/* Answers to queries that did not parse: FORMERR without a question, NOTIMP, BADVERS. */
static void test_answers_to_bad_queries(void **state)
{
	(void)state;
	struct wire w;
	struct dk_query q;
	uint8_t out[512];
	ldns_pkt *a = NULL;
	int n;

	/* QDCOUNT 2: FORMERR with no question. */
	hex(&w, "abcd 0110 0002 0000 0000 0000 " Q_A Q_A);
	assert_int_equal(dk_msg_parse_query(w.p, w.len, &q), DK_EFORMERR);
	n = dk_msg_write_error(w.p, &q, LDNS_RCODE_FORMERR, 0, out, sizeof(out));
	assert_int_equal(n, DK_HEADER_LEN);
	assert_int_equal(ldns_wire2pkt(&a, out, (size_t)n), LDNS_STATUS_OK);
	assert_int_equal(ldns_pkt_id(a), 0xabcd);
	assert_int_equal(ldns_pkt_get_rcode(a), LDNS_RCODE_FORMERR);
	assert_int_equal(ldns_pkt_qdcount(a), 0);
	assert_true(ldns_pkt_qr(a) && ldns_pkt_rd(a) && ldns_pkt_cd(a) && ldns_pkt_ra(a));
	ldns_pkt_free(a);

	/* Opcode NOTIFY (4): NOTIMP, opcode echoed. */
	hex(&w, "abcd 2000 0001 0000 0000 0000 " Q_A);
	assert_int_equal(dk_msg_parse_query(w.p, w.len, &q), DK_ENOTIMP);
	n = dk_msg_write_error(w.p, &q, LDNS_RCODE_NOTIMPL, 0, out, sizeof(out));
	assert_true(n >= DK_HEADER_LEN);
	assert_int_equal(ldns_wire2pkt(&a, out, (size_t)n), LDNS_STATUS_OK);
	assert_int_equal(ldns_pkt_get_opcode(a), LDNS_PACKET_NOTIFY);
	assert_int_equal(ldns_pkt_get_rcode(a), LDNS_RCODE_NOTIMPL);
	assert_false(ldns_pkt_rd(a));
	ldns_pkt_free(a);

	/*
	 * Every opcode but QUERY, asked with RD, AD and CD set: NOTIMP with
	 * the opcode echoed and RD, RA, AD and CD clear, as they are defined
	 * for QUERY only (the answer used to set RA and copy RD and CD).
	 */
	for (unsigned op = 1; op <= 15; op++) {
		hex(&w, "abcd 0130 0001 0000 0000 0000 " Q_A);
		LDNS_OPCODE_SET(w.p, op);
		assert_int_equal(dk_msg_parse_query(w.p, w.len, &q), DK_ENOTIMP);
		n = dk_msg_write_error(w.p, &q, LDNS_RCODE_NOTIMPL, 0, out, sizeof(out));
		assert_int_equal(n, DK_HEADER_LEN);
		assert_int_equal(LDNS_ID_WIRE(out), 0xabcd);
		assert_true(LDNS_QR_WIRE(out));
		assert_int_equal(LDNS_OPCODE_WIRE(out), op);
		assert_int_equal(LDNS_RCODE_WIRE(out), LDNS_RCODE_NOTIMPL);
		assert_false(LDNS_RD_WIRE(out));
		assert_false(LDNS_RA_WIRE(out));
		assert_false(LDNS_AD_WIRE(out));
		assert_false(LDNS_CD_WIRE(out));
	}

	/* Garbage after the question: FORMERR that still echoes the question. */
	hex(&w, "abcd 0100 0001 0000 0000 0000 " Q_A "ff");
	assert_int_equal(dk_msg_parse_query(w.p, w.len, &q), DK_EFORMERR);
	n = dk_msg_write_error(w.p, &q, LDNS_RCODE_FORMERR, 0, out, sizeof(out));
	assert_int_equal(n, (int)w.len - 1);
	assert_memory_equal(out + DK_HEADER_LEN, w.p + DK_HEADER_LEN, n - DK_HEADER_LEN);

	/* EDNS version 1: BADVERS = 16, 0 in the header and 1 in the OPT. */
	hex(&w, "abcd 0100 0001 0000 0000 0001 " Q_A "00 0029 1000 00018000 0000");
	assert_int_equal(dk_msg_parse_query(w.p, w.len, &q), DK_EBADVERS);
	n = dk_msg_write_error(w.p, &q, DK_RCODE_BADVERS, 0, out, sizeof(out));
	assert_true(n > 0);
	assert_int_equal(ldns_wire2pkt(&a, out, (size_t)n), LDNS_STATUS_OK);
	assert_int_equal(ldns_pkt_get_rcode(a), 0);
	assert_true(ldns_pkt_edns(a));
	assert_int_equal(ldns_pkt_edns_extended_rcode(a), 1);
	assert_int_equal(ldns_pkt_edns_version(a), 0);
	assert_true(ldns_pkt_edns_do(a));
	ldns_pkt_free(a);

	/* An extended rcode without EDNS cannot be said; it becomes SERVFAIL. */
	hex(&w, "abcd 0100 0001 0000 0000 0000 " Q_A);
	assert_int_equal(dk_msg_parse_query(w.p, w.len, &q), 0);
	n = dk_msg_write_error(w.p, &q, DK_RCODE_BADVERS, 0, out, sizeof(out));
	assert_int_equal(LDNS_RCODE_WIRE(out), LDNS_RCODE_SERVFAIL);

	/* A sinkhole for class CH gets no IN address. */
	hex(&w, "abcd 0100 0001 0000 0000 0000 01 61 00 0001 0003");
	assert_int_equal(dk_msg_parse_query(w.p, w.len, &q), 0);
	n = dk_msg_write_sinkhole(w.p, &q, &sink, 0, out, sizeof(out));
	assert_int_equal(n, (int)w.len);
	assert_int_equal(LDNS_ANCOUNT(out), 0);
}

/* ---- upstream answers ---- */

/* An upstream answer to @p o with @p n A records, optionally with an OPT record. */
static void make_answer(const struct qopt *o, uint16_t id, unsigned n, bool edns, struct wire *w)
{
	ldns_pkt *pkt = make_query_pkt(o, id);

	ldns_pkt_set_qr(pkt, true);
	ldns_pkt_set_ra(pkt, true);
	for (unsigned i = 0; i < n; i++) {
		char text[320];
		ldns_rr *rr = NULL;
		snprintf(text, sizeof(text), "%s 300 IN A 192.0.2.%u", o->name, i % 250);
		assert_int_equal(ldns_rr_new_frm_str(&rr, text, 0, NULL, NULL), LDNS_STATUS_OK);
		ldns_pkt_push_rr(pkt, LDNS_SECTION_ANSWER, rr);
	}
	if (edns) {
		ldns_pkt_set_edns_udp_size(pkt, 1232);
		ldns_pkt_set_edns_do(pkt, true);
	} else {
		ldns_pkt_set_edns_udp_size(pkt, 0);
	}
	to_wire(pkt, w);
	ldns_pkt_free(pkt);
}

static void test_check_answer(void **state)
{
	(void)state;
	struct qopt o = {.name = "WWW.Example.Com", .type = LDNS_RR_TYPE_A, .flags = LDNS_RD};
	struct qopt up = o;
	struct wire qw, aw;
	struct dk_query q;

	make_query(&o, 0x1111, &qw);
	assert_int_equal(dk_msg_parse_query(qw.p, qw.len, &q), 0);

	up.name = "www.example.com";
	make_answer(&up, 0x2222, 2, true, &aw);
	assert_int_equal(dk_msg_check_answer(aw.p, aw.len, 0x2222, &q), 0);
	assert_int_equal(dk_msg_check_answer(aw.p, aw.len, 0x2223, &q), DK_EMISMATCH);
	for (size_t n = 0; n < DK_HEADER_LEN; n++)
		assert_int_equal(dk_msg_check_answer(aw.p, n, 0x2222, &q), DK_EFORMERR);
	for (size_t n = DK_HEADER_LEN; n < q.question_end; n++)
		assert_int_equal(dk_msg_check_answer(aw.p, n, 0x2222, &q), DK_EFORMERR);

	/* QR clear. */
	LDNS_QR_CLR(aw.p);
	assert_int_equal(dk_msg_check_answer(aw.p, aw.len, 0x2222, &q), DK_EMISMATCH);
	LDNS_QR_SET(aw.p);
	/* Another opcode. */
	LDNS_OPCODE_SET(aw.p, 2);
	assert_int_equal(dk_msg_check_answer(aw.p, aw.len, 0x2222, &q), DK_EMISMATCH);
	LDNS_OPCODE_SET(aw.p, 0);
	/* QDCOUNT 0. */
	aw.p[5] = 0;
	assert_int_equal(dk_msg_check_answer(aw.p, aw.len, 0x2222, &q), DK_EMISMATCH);
	aw.p[5] = 1;
	assert_int_equal(dk_msg_check_answer(aw.p, aw.len, 0x2222, &q), 0);

	/* Same case as the client: accepted as well. */
	make_answer(&o, 0x2222, 1, false, &aw);
	assert_int_equal(dk_msg_check_answer(aw.p, aw.len, 0x2222, &q), 0);

	/* Another name, a parent name, another type, another class. */
	up.name = "www.example.org";
	make_answer(&up, 0x2222, 1, false, &aw);
	assert_int_equal(dk_msg_check_answer(aw.p, aw.len, 0x2222, &q), DK_EMISMATCH);
	up.name = "example.com";
	make_answer(&up, 0x2222, 1, false, &aw);
	assert_int_equal(dk_msg_check_answer(aw.p, aw.len, 0x2222, &q), DK_EMISMATCH);
	up.name = "www.example.com";
	up.type = LDNS_RR_TYPE_AAAA;
	make_answer(&up, 0x2222, 0, false, &aw);
	assert_int_equal(dk_msg_check_answer(aw.p, aw.len, 0x2222, &q), DK_EMISMATCH);
	up.type = LDNS_RR_TYPE_A;
	make_answer(&up, 0x2222, 0, false, &aw);
	assert_int_equal(dk_msg_check_answer(aw.p, aw.len, 0x2222, &q), 0);
	aw.p[q.question_end - 1] = 3; /* class CH */
	assert_int_equal(dk_msg_check_answer(aw.p, aw.len, 0x2222, &q), DK_EMISMATCH);

	/* A pointer loop in the answer's question. */
	hex(&aw, "2222 8180 0001 0000 0000 0000 c00c 0001 0001");
	assert_int_equal(dk_msg_check_answer(aw.p, aw.len, 0x2222, &q), DK_EFORMERR);
}

static void test_check_answer_body(void **state)
{
	(void)state;
	struct qopt up = {.name = "www.example.com", .type = LDNS_RR_TYPE_A, .flags = LDNS_RD};
	struct wire aw;

	/* Whole answers, with and without OPT, and with no records at all. */
	make_answer(&up, 0x2222, 3, true, &aw);
	assert_int_equal(dk_msg_check_answer_body(aw.p, aw.len), 0);
	/* Cut anywhere after the question: FORMERR, unless TC says it is cut. */
	for (size_t n = 0; n < aw.len; n++) {
		assert_int_equal(dk_msg_check_answer_body(aw.p, n), DK_EFORMERR);
		LDNS_TC_SET(aw.p);
		assert_int_equal(dk_msg_check_answer_body(aw.p, n),
		                 n < DK_HEADER_LEN ? DK_EFORMERR : 0);
		LDNS_TC_CLR(aw.p);
	}
	make_answer(&up, 0x2222, 1, false, &aw);
	assert_int_equal(dk_msg_check_answer_body(aw.p, aw.len), 0);
	make_answer(&up, 0x2222, 0, false, &aw);
	assert_int_equal(dk_msg_check_answer_body(aw.p, aw.len), 0);

	/* Counts that promise more records than there are, in each section. */
	make_answer(&up, 0x2222, 1, false, &aw);
	for (size_t off = LDNS_ANCOUNT_OFF; off <= LDNS_ARCOUNT_OFF; off += 2) {
		aw.p[off + 1]++;
		assert_int_equal(dk_msg_check_answer_body(aw.p, aw.len), DK_EFORMERR);
		aw.p[off + 1]--;
	}
	assert_int_equal(dk_msg_check_answer_body(aw.p, aw.len), 0);

	/* Octets after the last record. */
	aw.p[aw.len++] = 0;
	assert_int_equal(dk_msg_check_answer_body(aw.p, aw.len), DK_EFORMERR);

	/* A compressed owner and an rdlength running past the end. */
	hex(&aw, "2222 8180 0001 0001 0000 0000 01 61 00 0001 0001 c00c 0001 0001 0000012c 0004 "
	         "c0000201");
	assert_int_equal(dk_msg_check_answer_body(aw.p, aw.len), 0);
	hex(&aw, "2222 8180 0001 0001 0000 0000 01 61 00 0001 0001 c00c 0001 0001 0000012c 0005 "
	         "c0000201");
	assert_int_equal(dk_msg_check_answer_body(aw.p, aw.len), DK_EFORMERR);
}

/* ---- the record walker ---- */

/* Question "www.example" A IN: "example" starts at offset 16, pointer c010. */
#define Q_WWW "03 777777 07 6578616d706c65 00 0001 0001 "

/* Walks the answer section of @p w expecting @p n records of @p types. */
static void walk_answers(const struct wire *w, const uint16_t *types, unsigned n,
                         struct dk_rr_iter *it, struct dk_rr *rrs)
{
	assert_int_equal(dk_msg_rr_iter_init(it, w->p, w->len), 0);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(dk_msg_rr_next(it, &rrs[i]), 1);
		assert_int_equal(rrs[i].type, types[i]);
		assert_int_equal(rrs[i].section, DK_SECTION_ANSWER);
		assert_true(rrs[i].rdata + rrs[i].rdlen <= w->len);
	}
	assert_int_equal(dk_msg_rr_next(it, &rrs[n]), 0);
}

static void assert_target(const struct dk_rr_iter *it, const struct dk_rr *rr, const char *text)
{
	uint8_t name[DK_NAME_MAX], want[DK_NAME_MAX];
	size_t len = 0;
	ldns_rdf *d = ldns_dname_new_frm_str(text);

	assert_non_null(d);
	assert_true(ldns_rdf_size(d) <= sizeof(want));
	memcpy(want, ldns_rdf_data(d), ldns_rdf_size(d));
	assert_int_equal(dk_msg_rr_target(it, rr, name, &len), 0);
	assert_int_equal(len, ldns_rdf_size(d));
	assert_memory_equal(name, want, len);
	ldns_rdf_deep_free(d);
}

/* A CNAME chain as an upstream sends it (ldns compresses), then every section. */
static void test_rr_walk_cname_chain(void **state)
{
	(void)state;
	struct qopt up = {.name = "www.example.com", .type = LDNS_RR_TYPE_A, .flags = LDNS_RD};
	static const char *const rrs[] = {
	        "www.example.com 300 IN CNAME A.Example.NET.",
	        "a.example.net 300 IN CNAME b.EXAMPLE.org.",
	        "b.example.org 300 IN A 192.0.2.1",
	};
	static const uint16_t types[] = {LDNS_RR_TYPE_CNAME, LDNS_RR_TYPE_CNAME, LDNS_RR_TYPE_A};
	ldns_pkt *pkt = make_query_pkt(&up, 0x2222);
	struct dk_rr_iter it;
	struct dk_rr rr[4];
	struct wire w;

	ldns_pkt_set_qr(pkt, true);
	for (size_t i = 0; i < DK_ARRAY_SIZE(rrs); i++) {
		ldns_rr *r = NULL;
		assert_int_equal(ldns_rr_new_frm_str(&r, rrs[i], 0, NULL, NULL), LDNS_STATUS_OK);
		ldns_pkt_push_rr(pkt, LDNS_SECTION_ANSWER, r);
	}
	ldns_rr *ns = NULL;
	assert_int_equal(
	        ldns_rr_new_frm_str(&ns, "example.org 300 IN NS ns.example.org.", 0, NULL, NULL),
	        LDNS_STATUS_OK);
	ldns_pkt_push_rr(pkt, LDNS_SECTION_AUTHORITY, ns);
	ldns_pkt_set_edns_udp_size(pkt, 1232);
	to_wire(pkt, &w);
	ldns_pkt_free(pkt);

	walk_answers(&w, types, 3, &it, rr);
	assert_target(&it, &rr[0], "a.example.net.");
	assert_target(&it, &rr[1], "b.example.org.");
	assert_int_equal(rr[2].rdlen, 4);
	assert_int_equal(rr[2].ttl, 300);
	assert_int_equal(rr[2].rclass, LDNS_RR_CLASS_IN);
	assert_memory_equal(w.p + rr[2].rdata, "\xc0\x00\x02\x01", 4);
	/* Only CNAME and DNAME records have a target. */
	uint8_t name[DK_NAME_MAX];
	size_t len;
	assert_int_equal(dk_msg_rr_target(&it, &rr[2], name, &len), -EINVAL);
	/* The end of a section stays the end until the walk moves on. */
	assert_int_equal(dk_msg_rr_next(&it, &rr[3]), 0);

	assert_int_equal(dk_msg_rr_next_section(&it), 1);
	assert_int_equal(it.section, DK_SECTION_AUTHORITY);
	assert_int_equal(dk_msg_rr_next(&it, &rr[3]), 1);
	assert_int_equal(rr[3].type, LDNS_RR_TYPE_NS);
	assert_int_equal(rr[3].section, DK_SECTION_AUTHORITY);
	assert_int_equal(dk_msg_rr_next(&it, &rr[3]), 0);
	assert_int_equal(dk_msg_rr_next_section(&it), 1);
	assert_int_equal(dk_msg_rr_next(&it, &rr[3]), 1);
	assert_int_equal(rr[3].type, LDNS_RR_TYPE_OPT);
	assert_true(rr[3].root_owner);
	assert_int_equal(rr[3].section, DK_SECTION_ADDITIONAL);
	assert_int_equal(dk_msg_rr_next_section(&it), 0);
	assert_int_equal(it.off, w.len);

	/* next_section steps over what is left: from the start, straight to the end. */
	assert_int_equal(dk_msg_rr_iter_init(&it, w.p, w.len), 0);
	while (dk_msg_rr_next_section(&it) > 0)
		;
	assert_int_equal(it.off, w.len);
}

/* A DNAME whose target is written in capitals, and a compressed CNAME target. */
static void test_rr_walk_dname_compressed(void **state)
{
	(void)state;
	static const uint16_t types[] = {LDNS_RR_TYPE_DNAME, LDNS_RR_TYPE_CNAME};
	struct dk_rr_iter it;
	struct dk_rr rr[3];
	struct wire w;

	hex(&w, "2222 8180 0001 0002 0000 0000 " Q_WWW
	        /* example DNAME EXAMPLE.NET */
	        "c010 0027 0001 0000012c 000d 07 4558414d504c45 03 4e4554 00 "
	        /* www.example CNAME www.example.net: "www" then a pointer to the DNAME's target */
	        "c00c 0005 0001 0000012c 0006 03 777777 c029");
	walk_answers(&w, types, 2, &it, rr);
	assert_false(rr[0].root_owner);
	assert_int_equal(rr[0].owner, DK_HEADER_LEN + 17);
	assert_target(&it, &rr[0], "example.net.");
	assert_target(&it, &rr[1], "www.example.net.");
	assert_int_equal(dk_msg_rr_next_section(&it), 1);
	assert_int_equal(dk_msg_rr_next_section(&it), 1);
	assert_int_equal(dk_msg_rr_next_section(&it), 0);
	assert_int_equal(it.off, w.len);
	assert_int_equal(dk_msg_check_answer_body(w.p, w.len), 0);
}

/* Records cut short: the walk reports DK_EFORMERR at the cut and ever after. */
static void test_rr_walk_cut(void **state)
{
	(void)state;
	struct dk_rr_iter it;
	struct dk_rr rr;
	struct wire w;

	hex(&w,
	    "2222 8180 0001 0001 0000 0000 " Q_WWW "c00c 0005 0001 0000012c 0006 03 666f6f c010");
	for (size_t n = 0; n < w.len; n++) {
		int ret = dk_msg_rr_iter_init(&it, w.p, n);
		/* Inside the header or question the start fails; later the record does. */
		if (n < DK_HEADER_LEN + 17) {
			assert_int_equal(ret, DK_EFORMERR);
			assert_int_equal(dk_msg_rr_next(&it, &rr), DK_EFORMERR);
			continue;
		}
		assert_int_equal(ret, 0);
		assert_int_equal(dk_msg_rr_next(&it, &rr), DK_EFORMERR);
		assert_int_equal(dk_msg_rr_next(&it, &rr), DK_EFORMERR);
		assert_int_equal(dk_msg_rr_next_section(&it), DK_EFORMERR);
	}
	/* ANCOUNT promises a second record that is not there. */
	w.p[LDNS_ANCOUNT_OFF + 1] = 2;
	assert_int_equal(dk_msg_rr_iter_init(&it, w.p, w.len), 0);
	assert_int_equal(dk_msg_rr_next(&it, &rr), 1);
	assert_int_equal(dk_msg_rr_next(&it, &rr), DK_EFORMERR);
	assert_int_equal(dk_msg_check_answer_body(w.p, w.len), DK_EFORMERR);
	/* A question cut short. */
	hex(&w, "2222 8180 0001 0000 0000 0000 03 777777 07 6578616d70");
	assert_int_equal(dk_msg_rr_iter_init(&it, w.p, w.len), DK_EFORMERR);
}

/* A walk started at a known end of the question sees what the full start sees. */
static void test_rr_walk_init_at(void **state)
{
	(void)state;
	struct dk_rr_iter a, b;
	struct dk_rr ra, rb;
	struct wire w;
	int ret;

	hex(&w,
	    "2222 8180 0001 0002 0000 0000 " Q_WWW "c00c 0005 0001 0000012c 0006 03 666f6f c010 "
	    "c01d 0001 0001 0000012c 0004 c0000201");
	assert_int_equal(dk_msg_rr_iter_init(&a, w.p, w.len), 0);
	assert_int_equal(dk_msg_rr_iter_init_at(&b, w.p, w.len, DK_HEADER_LEN + 17), 0);
	assert_int_equal(a.off, b.off);
	while ((ret = dk_msg_rr_next(&a, &ra)) > 0) {
		assert_int_equal(dk_msg_rr_next(&b, &rb), 1);
		assert_int_equal(ra.type, rb.type);
		assert_int_equal(ra.rdata, rb.rdata);
	}
	assert_int_equal(ret, 0);
	assert_int_equal(dk_msg_rr_next(&b, &rb), 0);
	/* An end outside the message, or inside the header, starts nothing. */
	assert_int_equal(dk_msg_rr_iter_init_at(&b, w.p, w.len, w.len + 1), DK_EFORMERR);
	assert_int_equal(dk_msg_rr_next(&b, &rb), DK_EFORMERR);
	assert_int_equal(dk_msg_rr_iter_init_at(&b, w.p, w.len, 4), DK_EFORMERR);
	assert_int_equal(dk_msg_rr_iter_init_at(&b, w.p, 8, DK_HEADER_LEN), DK_EFORMERR);
}

/* A target must lie within its rdata: no labels past its end, no pointer forward. */
static void test_rr_walk_target_bounds(void **state)
{
	(void)state;
	static const uint16_t types[] = {LDNS_RR_TYPE_CNAME, LDNS_RR_TYPE_A};
	struct dk_rr_iter it;
	struct dk_rr rr[3];
	struct wire w;
	uint8_t name[DK_NAME_MAX];
	size_t len;

	/* rdlength 4 covers "03 666f6f" only; the root label lies in the next record. */
	hex(&w, "2222 8180 0001 0002 0000 0000 " Q_WWW "c00c 0005 0001 0000012c 0004 03 666f6f "
	        "00 0001 0001 0000012c 0004 c0000201");
	walk_answers(&w, types, 2, &it, rr);
	assert_int_equal(dk_msg_rr_target(&it, &rr[0], name, &len), DK_EFORMERR);

	/* A pointer forward, to the A record after the CNAME. */
	hex(&w, "2222 8180 0001 0002 0000 0000 " Q_WWW "c00c 0005 0001 0000012c 0002 c02b "
	        "03 666f6f 00 0001 0001 0000012c 0004 c0000201");
	walk_answers(&w, types, 2, &it, rr);
	assert_int_equal(rr[1].owner, 0x2b);
	assert_int_equal(dk_msg_rr_target(&it, &rr[0], name, &len), DK_EFORMERR);

	/* A pointer to itself. */
	hex(&w, "2222 8180 0001 0001 0000 0000 " Q_WWW "c00c 0005 0001 0000012c 0002 c029");
	walk_answers(&w, types, 1, &it, rr);
	assert_int_equal(rr[0].rdata, 0x29);
	assert_int_equal(dk_msg_rr_target(&it, &rr[0], name, &len), DK_EFORMERR);

	/* The same pointer back to the question is fine. */
	hex(&w, "2222 8180 0001 0001 0000 0000 " Q_WWW "c00c 0005 0001 0000012c 0002 c00c");
	walk_answers(&w, types, 1, &it, rr);
	assert_target(&it, &rr[0], "www.example.");
}

static void test_answer_for_client(void **state)
{
	(void)state;
	struct qopt o = {.name = "WwW.ExAmPlE.cOm", .type = LDNS_RR_TYPE_A, .flags = LDNS_RD};
	struct qopt up = o;
	struct wire qw, aw;
	struct dk_query q;
	ldns_pkt *a = NULL;
	size_t n;

	up.name = "www.example.com";
	make_query(&o, 0x1111, &qw);
	assert_int_equal(dk_msg_parse_query(qw.p, qw.len, &q), 0);
	size_t max = dk_msg_client_udp_max(&q);
	assert_int_equal(max, 512);

	/* Fits: only the ID and the question's letter case change. */
	make_answer(&up, 0x2222, 3, true, &aw);
	assert_int_equal(dk_msg_check_answer(aw.p, aw.len, 0x2222, &q), 0);
	struct wire orig = aw;
	n = dk_msg_answer_for_client(aw.p, aw.len, qw.p, &q, max);
	assert_int_equal(n, orig.len);
	assert_int_equal(LDNS_ID_WIRE(aw.p), 0x1111);
	assert_memory_equal(aw.p + 2, orig.p + 2, DK_HEADER_LEN - 2);
	assert_memory_equal(aw.p + DK_HEADER_LEN, qw.p + DK_HEADER_LEN,
	                    q.question_end - DK_HEADER_LEN);
	assert_memory_equal(aw.p + q.question_end, orig.p + q.question_end,
	                    orig.len - q.question_end);

	/* Too big, with OPT: header + question + OPT, TC. */
	make_answer(&up, 0x2222, 60, true, &aw);
	assert_true(aw.len > max);
	n = dk_msg_answer_for_client(aw.p, aw.len, qw.p, &q, max);
	assert_int_equal(n, q.question_end + 11);
	assert_int_equal(ldns_wire2pkt(&a, aw.p, n), LDNS_STATUS_OK);
	assert_int_equal(ldns_pkt_id(a), 0x1111);
	assert_true(ldns_pkt_tc(a));
	assert_true(ldns_pkt_qr(a));
	assert_int_equal(ldns_pkt_ancount(a), 0);
	assert_int_equal(ldns_pkt_nscount(a), 0);
	assert_true(ldns_pkt_edns(a));
	assert_true(ldns_pkt_edns_do(a));
	assert_int_equal(ldns_pkt_edns_udp_size(a), 1232);
	ldns_pkt_free(a);
	assert_memory_equal(aw.p + DK_HEADER_LEN, qw.p + DK_HEADER_LEN,
	                    q.question_end - DK_HEADER_LEN);
	assert_int_equal(LDNS_ARCOUNT(aw.p), 1);

	/* Too big, without OPT. */
	make_answer(&up, 0x2222, 60, false, &aw);
	n = dk_msg_answer_for_client(aw.p, aw.len, qw.p, &q, max);
	assert_int_equal(n, q.question_end);
	assert_int_equal(ldns_wire2pkt(&a, aw.p, n), LDNS_STATUS_OK);
	assert_true(ldns_pkt_tc(a));
	assert_int_equal(ldns_pkt_ancount(a), 0);
	assert_int_equal(ldns_pkt_arcount(a), 0);
	assert_false(ldns_pkt_edns(a));
	ldns_pkt_free(a);
	assert_memory_equal(aw.p + DK_HEADER_LEN, qw.p + DK_HEADER_LEN,
	                    q.question_end - DK_HEADER_LEN);

	/* The OPT itself does not fit the limit: it is left out. */
	make_answer(&up, 0x2222, 5, true, &aw);
	n = dk_msg_answer_for_client(aw.p, aw.len, qw.p, &q, q.question_end + 5);
	assert_int_equal(n, q.question_end);
	assert_int_equal(LDNS_ARCOUNT(aw.p), 0);
	assert_true(LDNS_TC_WIRE(aw.p));

	/* A limit below header + question leaves the header alone. */
	make_answer(&up, 0x2222, 5, true, &aw);
	n = dk_msg_answer_for_client(aw.p, aw.len, qw.p, &q, 20);
	assert_int_equal(n, DK_HEADER_LEN);
	assert_int_equal(LDNS_QDCOUNT(aw.p), 0);
	assert_true(LDNS_TC_WIRE(aw.p));

	/* A client with a large EDNS buffer takes the whole answer. */
	struct qopt oe = o;
	oe.edns = true;
	oe.udp = 4096;
	make_query(&oe, 0x1111, &qw);
	assert_int_equal(dk_msg_parse_query(qw.p, qw.len, &q), 0);
	make_answer(&up, 0x2222, 60, true, &aw);
	orig = aw;
	n = dk_msg_answer_for_client(aw.p, aw.len, qw.p, &q, dk_msg_client_udp_max(&q));
	assert_int_equal(n, orig.len);
	assert_false(LDNS_TC_WIRE(aw.p));
	assert_int_equal(LDNS_ANCOUNT(aw.p), 60);
}

static void test_rrtype_name(void **state)
{
	(void)state;
	char buf[16];

	assert_string_equal(dk_rrtype_name(LDNS_RR_TYPE_A, buf, sizeof(buf)), "A");
	assert_string_equal(dk_rrtype_name(LDNS_RR_TYPE_AAAA, buf, sizeof(buf)), "AAAA");
	assert_string_equal(dk_rrtype_name(LDNS_RR_TYPE_MX, buf, sizeof(buf)), "MX");
	assert_string_equal(dk_rrtype_name(LDNS_RR_TYPE_HTTPS, buf, sizeof(buf)), "HTTPS");
	assert_string_equal(dk_rrtype_name(LDNS_RR_TYPE_ANY, buf, sizeof(buf)), "ANY");
	assert_string_equal(dk_rrtype_name(666, buf, sizeof(buf)), "TYPE666");
	assert_string_equal(dk_rrtype_name(0, buf, sizeof(buf)), "TYPE0");
	assert_string_equal(dk_rrtype_name(65535, buf, sizeof(buf)), "TYPE65535");
	assert_string_equal(dk_rrtype_name(LDNS_RR_TYPE_AXFR, buf, sizeof(buf)), "AXFR");
	assert_string_equal(dk_rrtype_name(261, buf, sizeof(buf)), "TYPE261");
	assert_string_equal(dk_rrtype_name(666, buf, 4), "TYP");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse_plain),
	        cmocka_unit_test(test_parse_edns),
	        cmocka_unit_test(test_parse_table),
	        cmocka_unit_test(test_parse_edns_fields),
	        cmocka_unit_test(test_parse_short_header),
	        cmocka_unit_test(test_parse_opcodes),
	        cmocka_unit_test(test_parse_long_names),
	        cmocka_unit_test(test_answers),
	        cmocka_unit_test(test_answers_space),
	        cmocka_unit_test(test_answers_to_bad_queries),
	        cmocka_unit_test(test_check_answer),
	        cmocka_unit_test(test_check_answer_body),
	        cmocka_unit_test(test_rr_walk_cname_chain),
	        cmocka_unit_test(test_rr_walk_dname_compressed),
	        cmocka_unit_test(test_rr_walk_cut),
	        cmocka_unit_test(test_rr_walk_init_at),
	        cmocka_unit_test(test_rr_walk_target_bounds),
	        cmocka_unit_test(test_answer_for_client),
	        cmocka_unit_test(test_rrtype_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
