/* SPDX-License-Identifier: MIT */
/*
 * DNS messages on the hot path. A query's header, question and EDNS OPT
 * record are parsed with explicit bounds checks on every read; local answers
 * (errors and sinkholes) are written in place into a caller's buffer after
 * their full length has been computed, so a buffer that is too small is left
 * untouched; upstream answers are checked against the query they claim to
 * answer and then adapted for the client (ID, question case, truncation).
 * Every walk over records (the query's, the answer body check's and the
 * search for an answer's OPT) goes through the one record walker,
 * dk_rr_iter, which callers use too. Nothing here allocates. The wire
 * offsets, masks and codes come from ldns; its allocating parser is never
 * called here.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <ldns/ldns.h>

#include "dnsink/msg.h"
#include "dnsink/name.h"

/* Our own UDP payload size in OPT records: the DNS Flag Day 2020 value. */
#define DK_EDNS_UDP_SIZE 1232
/* Largest UDP payload we accept to send to a client that announces more. */
#define DK_UDP_CLIENT_MAX 4096
/* Fixed part of a resource record after its owner: type, class, TTL, rdlength. */
#define RR_FIXED_LEN 10
/* A record with a root owner and no rdata: an OPT without options. */
#define OPT_RR_LEN (1 + RR_FIXED_LEN)
/* EDNS option header (code, length) plus the two-octet info-code of an EDE. */
#define EDE_OPT_LEN (4 + 2)
/* The DO bit in the low 16 bits of an OPT record's TTL (RFC 3225). */
#define EDNS_DO_BIT 0x8000U
/* Compression pointer to the question name, which always starts at offset 12. */
#define QNAME_PTR (0xC000U | DK_HEADER_LEN)

_Static_assert(DK_EDE_BLOCKED == LDNS_EDE_BLOCKED, "EDE info-code Blocked");
_Static_assert(DK_EDE_PROHIBITED == LDNS_EDE_PROHIBITED, "EDE info-code Prohibited");
_Static_assert(DK_EDE_STALE == LDNS_EDE_STALE_ANSWER, "EDE info-code Stale Answer");
_Static_assert(DK_HEADER_LEN == LDNS_HEADER_SIZE, "DNS header length");

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint8_t *wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

static uint8_t *wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return p + 4;
}

/*
 * Steps over the possibly compressed owner name at *off without following
 * pointers: a pointer ends the name where it stands, and what it points to is
 * of no interest to a walk that only needs record boundaries. Sets *is_root
 * when the name is the single root label.
 */
static int skip_name(const uint8_t *pkt, size_t len, size_t *off, bool *is_root)
{
	size_t o = *off;
	size_t total = 0;

	*is_root = o < len && pkt[o] == 0;
	for (;;) {
		if (o >= len)
			return DK_EFORMERR;
		uint8_t c = pkt[o];
		if ((c & 0xC0) == 0xC0) {
			if (len - o < 2)
				return DK_EFORMERR;
			*off = o + 2;
			return 0;
		}
		/* 0x40 and 0x80 are the extended and reserved label types. */
		if (c & 0xC0)
			return DK_EFORMERR;
		total += 1u + c;
		if (total > DK_NAME_MAX)
			return DK_EFORMERR;
		if (c == 0) {
			*off = o + 1;
			return 0;
		}
		if (len - o - 1 < c)
			return DK_EFORMERR;
		o += 1u + c;
	}
}

_Static_assert(DK_SECTION_ANSWER == (int)LDNS_SECTION_ANSWER, "answer section");
_Static_assert(DK_SECTION_AUTHORITY == (int)LDNS_SECTION_AUTHORITY, "authority section");
_Static_assert(DK_SECTION_ADDITIONAL == (int)LDNS_SECTION_ADDITIONAL, "additional section");

/* Reads the record at *off into @p rr and advances *off past it. */
static int next_rr(const uint8_t *pkt, size_t len, size_t *off, struct dk_rr *rr)
{
	size_t o = *off;
	int ret;

	rr->owner = o;
	ret = skip_name(pkt, len, &o, &rr->root_owner);
	if (ret < 0)
		return ret;
	if (len - o < RR_FIXED_LEN)
		return DK_EFORMERR;
	rr->type = rd16(pkt + o);
	rr->rclass = rd16(pkt + o + 2);
	rr->ttl = rd32(pkt + o + 4);
	rr->rdlen = rd16(pkt + o + 8);
	o += RR_FIXED_LEN;
	if (len - o < rr->rdlen)
		return DK_EFORMERR;
	rr->rdata = o;
	*off = o + rr->rdlen;
	return 0;
}

/* Positions @p it on the answer section, which starts at @p off. */
static void iter_start(struct dk_rr_iter *it, const uint8_t *pkt, size_t len, size_t off)
{
	it->pkt = pkt;
	it->len = len;
	it->off = off;
	it->section = DK_SECTION_ANSWER;
	it->left = LDNS_ANCOUNT(pkt);
	it->failed = false;
}

int dk_msg_rr_iter_init(struct dk_rr_iter *it, const uint8_t *pkt, size_t len)
{
	size_t off = DK_HEADER_LEN;
	bool root;

	*it = (struct dk_rr_iter){
	        .pkt = pkt, .len = len, .section = DK_SECTION_ANSWER, .failed = true};
	if (len < DK_HEADER_LEN)
		return DK_EFORMERR;
	/* Each question takes at least five octets, so the count cannot make this spin. */
	for (unsigned i = 0; i < LDNS_QDCOUNT(pkt); i++) {
		if (skip_name(pkt, len, &off, &root) < 0 || len - off < 4)
			return DK_EFORMERR;
		off += 4;
	}
	iter_start(it, pkt, len, off);
	return 0;
}

int dk_msg_rr_iter_init_at(struct dk_rr_iter *it, const uint8_t *pkt, size_t len, size_t qend)
{
	*it = (struct dk_rr_iter){
	        .pkt = pkt, .len = len, .section = DK_SECTION_ANSWER, .failed = true};
	if (len < DK_HEADER_LEN || qend < DK_HEADER_LEN || qend > len)
		return DK_EFORMERR;
	iter_start(it, pkt, len, qend);
	return 0;
}

int dk_msg_rr_next(struct dk_rr_iter *it, struct dk_rr *rr)
{
	if (it->failed)
		return DK_EFORMERR;
	if (!it->left)
		return 0;
	/* Past a malformed record nothing can be located: the walk ends there. */
	if (next_rr(it->pkt, it->len, &it->off, rr) < 0) {
		it->failed = true;
		return DK_EFORMERR;
	}
	rr->section = it->section;
	it->left--;
	return 1;
}

int dk_msg_rr_next_section(struct dk_rr_iter *it)
{
	struct dk_rr rr;
	int ret;

	while ((ret = dk_msg_rr_next(it, &rr)) > 0)
		;
	if (ret < 0)
		return ret;
	if (it->section == DK_SECTION_ADDITIONAL)
		return 0;
	if (it->section == DK_SECTION_ANSWER) {
		it->section = DK_SECTION_AUTHORITY;
		it->left = LDNS_NSCOUNT(it->pkt);
	} else {
		it->section = DK_SECTION_ADDITIONAL;
		it->left = LDNS_ARCOUNT(it->pkt);
	}
	return 1;
}

int dk_msg_rr_target(const struct dk_rr_iter *it, const struct dk_rr *rr, uint8_t out[DK_NAME_MAX],
                     size_t *out_len)
{
	size_t p = rr->rdata;

	if (rr->type != LDNS_RR_TYPE_CNAME && rr->type != LDNS_RR_TYPE_DNAME)
		return -EINVAL;
	/*
	 * The message seen by the name reader ends with the rdata, so the
	 * target's labels cannot spill into the next record; its pointers
	 * only ever go backwards.
	 */
	if (dk_name_from_wire_compressed(it->pkt, rr->rdata + rr->rdlen, &p, out, out_len) < 0)
		return DK_EFORMERR;
	return 0;
}

/* Records what the query's OPT record says; options are checked for framing only. */
static int read_opt(const uint8_t *pkt, const struct dk_rr *rr, struct dk_query *q)
{
	size_t o = rr->rdata;
	size_t end = rr->rdata + rr->rdlen;

	if (!rr->root_owner)
		return DK_EFORMERR;
	while (o < end) {
		if (end - o < 4)
			return DK_EFORMERR;
		uint16_t optlen = rd16(pkt + o + 2);
		o += 4;
		if (end - o < optlen)
			return DK_EFORMERR;
		o += optlen;
	}
	q->has_edns = true;
	q->edns_udp_size = rr->rclass;
	q->edns_version = (uint8_t)(rr->ttl >> 16);
	q->edns_do = (rr->ttl & EDNS_DO_BIT) != 0;
	return 0;
}

int dk_msg_parse_query(const uint8_t *pkt, size_t len, struct dk_query *q)
{
	size_t off = DK_HEADER_LEN;
	size_t name_len = 0;
	struct dk_rr_iter it;
	struct dk_rr rr;
	int ret;

	q->id = 0;
	q->flags = 0;
	q->opcode = 0;
	q->qtype = 0;
	q->qclass = 0;
	q->qname_len = 0;
	q->question_end = 0;
	q->has_edns = false;
	q->edns_version = 0;
	q->edns_do = false;
	q->edns_udp_size = 0;

	if (len < DK_HEADER_LEN)
		return DK_EDROP;
	q->id = LDNS_ID_WIRE(pkt);
	q->flags = rd16(pkt + 2);
	q->opcode = (uint8_t)LDNS_OPCODE_WIRE(pkt);
	if (LDNS_QR_WIRE(pkt))
		return DK_EDROP;
	if (q->opcode != LDNS_PACKET_QUERY)
		return DK_ENOTIMP;
	if (LDNS_QDCOUNT(pkt) != 1)
		return DK_EFORMERR;

	/* Whatever the name module objects to, the client gets FORMERR. */
	if (dk_name_from_wire(pkt, len, &off, q->qname, &name_len) < 0)
		return DK_EFORMERR;
	if (len - off < 4)
		return DK_EFORMERR;
	q->qname_len = (uint8_t)name_len;
	q->qtype = rd16(pkt + off);
	q->qclass = rd16(pkt + off + 2);
	off += 4;
	q->question_end = (uint16_t)off;

	/*
	 * A query rarely carries more than an OPT record, but the counts are
	 * the client's to choose: walk every record they announce, each step
	 * bounded by the message length, so a lie about them is a FORMERR.
	 */
	iter_start(&it, pkt, len, off);
	do {
		while ((ret = dk_msg_rr_next(&it, &rr)) > 0) {
			if (rr.type != LDNS_RR_TYPE_OPT)
				continue;
			if (rr.section != DK_SECTION_ADDITIONAL || q->has_edns)
				return DK_EFORMERR;
			ret = read_opt(pkt, &rr, q);
			if (ret < 0)
				return ret;
		}
		if (ret < 0)
			return ret;
	} while (dk_msg_rr_next_section(&it) > 0);
	if (it.off != len)
		return DK_EFORMERR;
	if (q->has_edns && q->edns_version > 0)
		return DK_EBADVERS;
	return 0;
}

/* Sets the header of a local answer; counts are filled in by the caller. */
static void write_header(uint8_t *out, const struct dk_query *q, uint8_t rcode)
{
	memset(out, 0, DK_HEADER_LEN);
	LDNS_ID_SET(out, q->id);
	LDNS_QR_SET(out);
	LDNS_OPCODE_SET(out, q->opcode & (LDNS_OPCODE_MASK >> LDNS_OPCODE_SHIFT));
	/*
	 * RD, RA, AD and CD are defined for opcode QUERY only (RD and RA by
	 * RFC 1035, AD and CD by RFC 4035), so the NOTIMP answer to any other
	 * opcode leaves them clear, as knotd does; ISC's DNS compliance tester
	 * flags an answer that sets them. AD is never set: we do not validate.
	 */
	if (q->opcode == LDNS_PACKET_QUERY) {
		if ((q->flags >> 8) & LDNS_RD_MASK)
			LDNS_RD_SET(out);
		if (q->flags & LDNS_CD_MASK)
			LDNS_CD_SET(out);
		LDNS_RA_SET(out);
	}
	LDNS_RCODE_SET(out, rcode & LDNS_RCODE_MASK);
}

/*
 * Writes the whole local answer. @p sh is NULL for an error answer. The size
 * is computed before anything is written, so DK_ESPACE leaves @p out as it
 * was.
 */
/* Writes our OPT record for the client of @p q at @p p (room checked by the caller). */
static uint8_t *write_opt(uint8_t *p, const struct dk_query *q, uint16_t rcode, uint16_t ede)
{
	*p++ = 0;
	p = wr16(p, LDNS_RR_TYPE_OPT);
	p = wr16(p, DK_EDNS_UDP_SIZE);
	/* TTL: extended rcode, version 0, flags with only DO echoed. */
	*p++ = (uint8_t)(rcode >> 4);
	*p++ = 0;
	p = wr16(p, q->edns_do ? EDNS_DO_BIT : 0);
	p = wr16(p, ede ? EDE_OPT_LEN : 0);
	if (ede) {
		p = wr16(p, LDNS_EDNS_EDE);
		p = wr16(p, 2);
		p = wr16(p, ede);
	}
	return p;
}

static int write_answer(const uint8_t *pkt, const struct dk_query *q, uint16_t rcode,
                        const struct dk_sinkhole *sh, uint16_t ede, uint8_t *out, size_t cap)
{
	size_t qlen = q->question_end ? q->question_end - DK_HEADER_LEN : 0;
	const uint8_t *rdata = NULL;
	uint16_t rdlen = 0;
	size_t need;

	/*
	 * Extended rcodes (BADVERS and above) only exist with an OPT record
	 * to carry their upper bits; without one, SERVFAIL is the nearest
	 * thing the header can say.
	 */
	if (rcode > LDNS_RCODE_MASK && !q->has_edns)
		rcode = LDNS_RCODE_SERVFAIL;

	/* Only an IN question can be answered with an IN address. */
	if (sh && q->question_end && q->qclass == LDNS_RR_CLASS_IN) {
		if (q->qtype == LDNS_RR_TYPE_A) {
			rdata = sh->ipv4;
			rdlen = sizeof(sh->ipv4);
		} else if (q->qtype == LDNS_RR_TYPE_AAAA) {
			rdata = sh->ipv6;
			rdlen = sizeof(sh->ipv6);
		}
	}

	need = DK_HEADER_LEN + qlen;
	if (rdata)
		need += 2 + RR_FIXED_LEN + rdlen;
	if (q->has_edns)
		need += OPT_RR_LEN + (ede ? EDE_OPT_LEN : 0);
	if (need > cap)
		return DK_ESPACE;

	write_header(out, q, (uint8_t)rcode);
	uint8_t *p = out + DK_HEADER_LEN;
	if (qlen) {
		out[LDNS_QDCOUNT_OFF + 1] = 1;
		memcpy(p, pkt + DK_HEADER_LEN, qlen);
		p += qlen;
	}
	if (rdata) {
		out[LDNS_ANCOUNT_OFF + 1] = 1;
		p = wr16(p, QNAME_PTR);
		p = wr16(p, q->qtype);
		p = wr16(p, LDNS_RR_CLASS_IN);
		p = wr32(p, sh->ttl);
		p = wr16(p, rdlen);
		memcpy(p, rdata, rdlen);
		p += rdlen;
	}
	if (q->has_edns) {
		out[LDNS_ARCOUNT_OFF + 1] = 1;
		p = write_opt(p, q, rcode, ede);
	}
	return (int)(p - out);
}

int dk_msg_add_opt(uint8_t *ans, size_t len, size_t cap, const struct dk_query *q, uint16_t ede)
{
	uint16_t arcount;

	if (len < DK_HEADER_LEN)
		return DK_EFORMERR;
	if (!q->has_edns)
		return (int)len;
	arcount = rd16(ans + LDNS_ARCOUNT_OFF);
	if (arcount == UINT16_MAX)
		return DK_EFORMERR;
	if (len + OPT_RR_LEN + (ede ? EDE_OPT_LEN : 0) > cap)
		return DK_ESPACE;
	uint8_t *p = write_opt(ans + len, q, LDNS_RCODE_WIRE(ans), ede);
	wr16(ans + LDNS_ARCOUNT_OFF, (uint16_t)(arcount + 1));
	return (int)(p - ans);
}

int dk_msg_write_error(const uint8_t *pkt, const struct dk_query *q, uint8_t rcode, uint16_t ede,
                       uint8_t *out, size_t cap)
{
	return write_answer(pkt, q, rcode, NULL, ede, out, cap);
}

int dk_msg_write_sinkhole(const uint8_t *pkt, const struct dk_query *q,
                          const struct dk_sinkhole *sh, uint16_t ede, uint8_t *out, size_t cap)
{
	return write_answer(pkt, q, LDNS_RCODE_NOERROR, sh, ede, out, cap);
}

/* True when stored record @p type answers a question for @p qtype (a CNAME answers any). */
static bool record_fits(uint16_t type, uint16_t qtype, bool have_cname)
{
	if (have_cname)
		return type == LDNS_RR_TYPE_CNAME;
	return qtype == LDNS_RR_TYPE_ANY || type == qtype;
}

int dk_msg_write_records(const uint8_t *pkt, const struct dk_query *q, const uint8_t *recs,
                         size_t len, uint16_t ede, uint8_t *out, size_t cap)
{
	bool have_cname = false;
	size_t need = 0;
	uint16_t count = 0;
	int n;

	/* One pass to check the records and size the answer, so DK_ESPACE writes nothing. */
	for (size_t off = 0; off < len;) {
		if (len - off < 8 || len - off - 8 < rd16(recs + off + 6))
			return DK_EFORMERR;
		have_cname |= rd16(recs + off) == LDNS_RR_TYPE_CNAME;
		off += 8 + rd16(recs + off + 6);
	}
	/* Only an IN question gets IN data, as with the sinkhole. */
	bool in = q->question_end && q->qclass == LDNS_RR_CLASS_IN;
	for (size_t off = 0; in && off < len; off += 8 + rd16(recs + off + 6)) {
		if (record_fits(rd16(recs + off), q->qtype, have_cname)) {
			need += 2 + RR_FIXED_LEN + rd16(recs + off + 6);
			count++;
		}
	}
	n = write_answer(pkt, q, LDNS_RCODE_NOERROR, NULL, ede, out, cap > need ? cap - need : 0);
	if (n < 0 || !count)
		return n;
	/* The answer records go between the question and the OPT record. */
	size_t qend = DK_HEADER_LEN + (q->question_end ? q->question_end - DK_HEADER_LEN : 0);
	uint8_t *p = out + qend;
	memmove(p + need, p, (size_t)n - qend);
	for (size_t off = 0; off < len; off += 8 + rd16(recs + off + 6)) {
		uint16_t rdlen = rd16(recs + off + 6);
		if (!record_fits(rd16(recs + off), q->qtype, have_cname))
			continue;
		p = wr16(p, QNAME_PTR);
		p = wr16(p, rd16(recs + off));
		p = wr16(p, LDNS_RR_CLASS_IN);
		p = wr32(p, rd32(recs + off + 2));
		p = wr16(p, rdlen);
		memcpy(p, recs + off + 8, rdlen);
		p += rdlen;
	}
	wr16(out + LDNS_ANCOUNT_OFF, count);
	return n + (int)need;
}

int dk_msg_check_answer(const uint8_t *ans, size_t len, uint16_t id, const struct dk_query *q)
{
	uint8_t name[DK_NAME_MAX];
	size_t name_len = 0;
	size_t off = DK_HEADER_LEN;

	if (len < DK_HEADER_LEN)
		return DK_EFORMERR;
	if (!LDNS_QR_WIRE(ans) || LDNS_ID_WIRE(ans) != id ||
	    LDNS_OPCODE_WIRE(ans) != LDNS_PACKET_QUERY || LDNS_QDCOUNT(ans) != 1)
		return DK_EMISMATCH;
	/*
	 * The question is read without following pointers: nothing precedes
	 * it that a pointer could usefully name, and an uncompressed question
	 * is what lets dk_msg_answer_for_client() put the client's octets
	 * back in place.
	 */
	if (dk_name_from_wire(ans, len, &off, name, &name_len) < 0)
		return DK_EFORMERR;
	if (len - off < 4)
		return DK_EFORMERR;
	if (!dk_name_equal_nocase(name, name_len, q->qname, q->qname_len) ||
	    rd16(ans + off) != q->qtype || rd16(ans + off + 2) != q->qclass)
		return DK_EMISMATCH;
	return 0;
}

int dk_msg_check_answer_body(const uint8_t *ans, size_t len)
{
	struct dk_rr_iter it;
	int ret;

	if (len < DK_HEADER_LEN)
		return DK_EFORMERR;
	if (LDNS_TC_WIRE(ans))
		return 0;
	/* The question was read by dk_msg_check_answer(); the walk steps over it. */
	if (LDNS_QDCOUNT(ans) != 1 || dk_msg_rr_iter_init(&it, ans, len) < 0)
		return DK_EFORMERR;
	while ((ret = dk_msg_rr_next_section(&it)) > 0)
		;
	if (ret < 0)
		return DK_EFORMERR;
	return it.off == len ? 0 : DK_EFORMERR;
}

/*
 * Returns the end of the answer's question when it has the same length as
 * the client's, which holds whenever dk_msg_check_answer() accepted it; 0
 * otherwise.
 */
static size_t answer_question_end(const uint8_t *ans, size_t len, const struct dk_query *q)
{
	size_t off = DK_HEADER_LEN;
	size_t name_len = 0;

	if (!q->question_end || len < q->question_end || LDNS_QDCOUNT(ans) != 1)
		return 0;
	if (dk_name_from_wire(ans, len, &off, NULL, &name_len) < 0)
		return 0;
	if (off + 4 != q->question_end)
		return 0;
	return off + 4;
}

/* Finds the answer's OPT record (root owner) after @p off; returns false if none. */
static bool find_opt(const uint8_t *ans, size_t len, size_t off, size_t *opt_off, size_t *opt_len)
{
	struct dk_rr_iter it;
	struct dk_rr rr;
	int ret;

	iter_start(&it, ans, len, off);
	do {
		while ((ret = dk_msg_rr_next(&it, &rr)) > 0) {
			if (rr.section == DK_SECTION_ADDITIONAL && rr.type == LDNS_RR_TYPE_OPT &&
			    rr.root_owner) {
				*opt_off = rr.owner;
				*opt_len = rr.rdata + rr.rdlen - rr.owner;
				return true;
			}
		}
		if (ret < 0)
			return false;
	} while (dk_msg_rr_next_section(&it) > 0);
	return false;
}

size_t dk_msg_answer_for_client(uint8_t *ans, size_t len, const uint8_t *pkt,
                                const struct dk_query *q, size_t max)
{
	size_t qend, opt_off = 0, opt_len = 0;
	bool has_opt;

	if (len < DK_HEADER_LEN)
		return len;
	LDNS_ID_SET(ans, q->id);
	qend = answer_question_end(ans, len, q);
	if (qend)
		memcpy(ans + DK_HEADER_LEN, pkt + DK_HEADER_LEN, qend - DK_HEADER_LEN);
	if (len <= max)
		return len;

	/*
	 * Too big for the client: keep header, question and OPT, and let TC
	 * send the client to TCP. Without a question we can vouch for, keep
	 * the header alone.
	 */
	if (!qend || qend > max) {
		qend = DK_HEADER_LEN;
		ans[LDNS_QDCOUNT_OFF] = 0;
		ans[LDNS_QDCOUNT_OFF + 1] = 0;
	}
	has_opt = qend > DK_HEADER_LEN && find_opt(ans, len, qend, &opt_off, &opt_len);
	if (has_opt && qend + opt_len > max)
		has_opt = false;
	if (has_opt)
		memmove(ans + qend, ans + opt_off, opt_len);
	memset(ans + LDNS_ANCOUNT_OFF, 0, 6);
	ans[LDNS_ARCOUNT_OFF + 1] = has_opt ? 1 : 0;
	LDNS_TC_SET(ans);
	return qend + (has_opt ? opt_len : 0);
}

size_t dk_msg_client_udp_max(const struct dk_query *q)
{
	if (!q->has_edns || q->edns_udp_size < DK_UDP_PLAIN)
		return DK_UDP_PLAIN;
	if (q->edns_udp_size > DK_UDP_CLIENT_MAX)
		return DK_UDP_CLIENT_MAX;
	return q->edns_udp_size;
}

const char *dk_rrtype_name(uint16_t type, char *buf, size_t size)
{
	/*
	 * ldns's descriptor table is static; for a type it does not know it
	 * returns another type's entry, hence the check on _type.
	 */
	const ldns_rr_descriptor *d = ldns_rr_descript(type);
	const char *name = NULL;

	if (!size)
		return buf;

	/* ldns has no descriptors for the query-only meta types. */
	switch (type) {
	case LDNS_RR_TYPE_IXFR: name = "IXFR"; break;
	case LDNS_RR_TYPE_AXFR: name = "AXFR"; break;
	case LDNS_RR_TYPE_MAILB: name = "MAILB"; break;
	case LDNS_RR_TYPE_MAILA: name = "MAILA"; break;
	case LDNS_RR_TYPE_ANY: name = "ANY"; break;
	default:
		if (d && d->_type == type && d->_name && strncmp(d->_name, "TYPE", 4) != 0)
			name = d->_name;
	}
	if (name)
		snprintf(buf, size, "%s", name);
	else
		snprintf(buf, size, "TYPE%u", (unsigned)type);
	return buf;
}
