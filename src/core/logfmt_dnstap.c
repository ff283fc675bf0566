/* SPDX-License-Identifier: MIT */
/*
 * dnstap messages (see logrec.h): the protobuf read by a walker of its own
 * over the few fields hunt needs (dnstap.proto; unknown fields skipped, as
 * protobuf readers must), pointing into the frame, so decoding costs no copy
 * and no allocation; then the DNS message in it read with the core's own wire
 * functions: the question for name and type, the header for the rcode, the
 * answer section's CNAME and DNAME targets through the one record walker.
 * protobuf-c's generated unpacker took 2,600 instructions a record, more than
 * half of hunt's time on dnstap (callgrind, 100,000 records).
 */
#include <string.h>
#include <sys/socket.h>

#include <ldns/packet.h>
#include <ldns/rr.h>
#include <ldns/wire2host.h>

#include "dnsink/alert.h"
#include "dnsink/logrec.h"
#include "dnsink/msg.h"
#include "dnsink/name.h"

void dk_dnstap_state_init(struct dk_dnstap_state *st)
{
	st->saw_query = false;
}

/* dnstap.proto's numbers: Dnstap.type MESSAGE, Message.type, SocketProtocol. */
enum {
	DT_MESSAGE = 1,
	MT_AUTH_QUERY = 1,
	MT_AUTH_RESPONSE = 2,
	MT_CLIENT_QUERY = 5,
	MT_CLIENT_RESPONSE = 6,
	SP_UDP = 1,
	SP_DNSCRYPT_UDP = 5,
	SP_DOQ = 7,
};

/* A protobuf field as read: its number, and a varint/fixed value or a byte run. */
struct pb_field {
	uint32_t num;
	uint8_t wire; /* 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 */
	uint64_t v;
	const uint8_t *data;
	size_t len;
};

/* A base-128 varint of at most 10 octets; false when cut short or too long. */
static bool pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 70 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return true;
		}
	}
	return false;
}

/* The next field at *@p p; 1 read, 0 at @p end, -1 malformed (groups included). */
static int pb_next(const uint8_t **p, const uint8_t *end, struct pb_field *f)
{
	uint64_t key;

	if (*p == end)
		return 0;
	if (!pb_varint(p, end, &key) || key >> 3 == 0 || key >> 3 > UINT32_MAX)
		return -1;
	f->num = (uint32_t)(key >> 3);
	f->wire = (uint8_t)(key & 7);
	switch (f->wire) {
	case 0: return pb_varint(p, end, &f->v) ? 1 : -1;
	case 1:
	case 5: {
		size_t n = f->wire == 1 ? 8 : 4;
		if ((size_t)(end - *p) < n)
			return -1;
		f->v = 0;
		for (size_t i = 0; i < n; i++)
			f->v |= (uint64_t)(*p)[i] << (8 * i);
		*p += n;
		return 1;
	}
	case 2:
		if (!pb_varint(p, end, &f->v) || f->v > (uint64_t)(end - *p))
			return -1;
		f->data = *p;
		f->len = (size_t)f->v;
		*p += f->len;
		return 1;
	default: return -1;
	}
}

/* What hunt reads of a dnstap Message; the has_ flags as protobuf's optional fields. */
struct tap_msg {
	bool has_type;
	uint64_t type, protocol;
	bool has_protocol;
	const uint8_t *qaddr, *qmsg, *rmsg;
	size_t qaddr_len, qmsg_len, rmsg_len;
	bool has_qmsg, has_rmsg, has_qport, has_qsec, has_qnsec, has_rsec, has_rnsec;
	uint64_t qport, qsec, qnsec, rsec, rnsec;
};

/* Reads Message @p data (@p len octets); false when malformed or a wire type is wrong. */
static bool read_message(const uint8_t *data, size_t len, struct tap_msg *m)
{
	const uint8_t *p = data, *end = data + len;
	struct pb_field f;
	int rc;

	memset(m, 0, sizeof(*m));
	while ((rc = pb_next(&p, end, &f)) > 0) {
		bool varint = f.wire == 0, bytes = f.wire == 2, fixed32 = f.wire == 5;
		switch (f.num) {
		case 1:
			if (!varint)
				return false;
			m->has_type = true;
			m->type = f.v;
			break;
		case 3:
			if (!varint)
				return false;
			m->has_protocol = true;
			m->protocol = f.v;
			break;
		case 4:
			if (!bytes)
				return false;
			m->qaddr = f.data;
			m->qaddr_len = f.len;
			break;
		case 6:
			if (!varint)
				return false;
			m->has_qport = true;
			m->qport = f.v;
			break;
		case 8:
		case 12:
			if (!varint)
				return false;
			*(f.num == 8 ? &m->qsec : &m->rsec) = f.v;
			*(f.num == 8 ? &m->has_qsec : &m->has_rsec) = true;
			break;
		case 9:
		case 13:
			if (!fixed32)
				return false;
			*(f.num == 9 ? &m->qnsec : &m->rnsec) = f.v;
			*(f.num == 9 ? &m->has_qnsec : &m->has_rnsec) = true;
			break;
		case 10:
		case 14:
			if (!bytes)
				return false;
			if (f.num == 10) {
				m->qmsg = f.data;
				m->qmsg_len = f.len;
				m->has_qmsg = true;
			} else {
				m->rmsg = f.data;
				m->rmsg_len = f.len;
				m->has_rmsg = true;
			}
			break;
		default: break; /* a field hunt does not read, or one of a later schema */
		}
	}
	return rc == 0 && m->has_type; /* Message.type is required */
}

static int dns_message(const uint8_t *m, size_t len, bool response, struct dk_logrec *r)
{
	size_t off = DK_HEADER_LEN, n;

	if (len < DK_HEADER_LEN || LDNS_QDCOUNT(m) == 0)
		return DK_LOGERR_DNSMSG;
	if (dk_name_from_wire_compressed(m, len, &off, r->qname, &n) || off + 4 > len)
		return DK_LOGERR_DNSMSG;
	r->qname_len = (uint8_t)n;
	r->qtype = (uint16_t)(m[off] << 8 | m[off + 1]);
	if (!response)
		return 0;
	r->rcode = (int16_t)LDNS_RCODE_WIRE(m);
	struct dk_rr_iter it;
	struct dk_rr rr;
	if (LDNS_ANCOUNT(m) == 0 || dk_msg_rr_iter_init(&it, m, len) < 0)
		return 0;
	for (unsigned i = 0;
	     i < 64 && r->n_targets < DK_LOGREC_TARGETS && dk_msg_rr_next(&it, &rr) > 0; i++) {
		if (rr.type != LDNS_RR_TYPE_CNAME && rr.type != LDNS_RR_TYPE_DNAME)
			continue;
		if (dk_msg_rr_target(&it, &rr, r->target[r->n_targets], &n) == 0)
			r->target_len[r->n_targets++] = (uint8_t)n;
	}
	return 0;
}

int dk_log_parse_dnstap(struct dk_dnstap_state *st, const uint8_t *frame, size_t len,
                        struct dk_logrec *r)
{
	const uint8_t *p = frame, *end = frame + len;
	const uint8_t *extra = NULL, *message = NULL;
	size_t extra_len = 0, message_len = 0;
	bool has_type = false, has_message = false;
	uint64_t type = 0;
	struct pb_field f;
	struct tap_msg m;
	bool response;
	int rc;

	if (len > DK_DNSTAP_FRAME_MAX)
		return DK_LOGERR_DNSTAP;
	while ((rc = pb_next(&p, end, &f)) > 0) {
		if (f.num == 15) {
			if (f.wire != 0)
				return DK_LOGERR_DNSTAP;
			has_type = true;
			type = f.v;
		} else if (f.num == 14 || f.num == 3) {
			if (f.wire != 2)
				return DK_LOGERR_DNSTAP;
			if (f.num == 14) {
				has_message = true;
				message = f.data;
				message_len = f.len;
			} else {
				extra = f.data;
				extra_len = f.len;
			}
		}
	}
	if (rc < 0 || !has_type || type != DT_MESSAGE || !has_message ||
	    !read_message(message, message_len, &m))
		return DK_LOGERR_DNSTAP;
	switch (m.type) {
	case MT_CLIENT_QUERY:
	case MT_AUTH_QUERY:
		response = false;
		st->saw_query = true;
		break;
	case MT_CLIENT_RESPONSE:
	case MT_AUTH_RESPONSE: response = true; break;
	default: return DK_LOG_SKIP;
	}
	dk_logrec_reset(r, DK_LOGFMT_DNSTAP);
	bool from_response = response && m.has_rmsg;
	const uint8_t *msg = from_response ? m.rmsg : m.has_qmsg ? m.qmsg : NULL;
	size_t msg_len = from_response ? m.rmsg_len : m.qmsg_len;
	if (!msg)
		return DK_LOGERR_DNSMSG;
	rc = dns_message(msg, msg_len, from_response, r);
	if (rc)
		return rc;
	r->answer_only = response && st->saw_query;
	/*
	 * dnsink's own answers name the alert's CNAME target in extra
	 * ("dnsink rule=... target=NAME"): its local answer no longer shows it.
	 */
	if (response && extra && extra_len > 7 && memcmp(extra, "dnsink ", 7) == 0) {
		const char *x = (const char *)extra, *xend = x + extra_len;
		for (const char *q = x; xend - q > 8; q++) {
			if (memcmp(q, " target=", 8) != 0)
				continue;
			const char *t = q + 8, *e = memchr(t, ' ', (size_t)(xend - t));
			dk_logrec_add_target(r, t, (size_t)((e ? e : xend) - t));
			break;
		}
	}
	uint64_t sec = m.has_qsec ? m.qsec : 0;
	uint32_t nsec = m.has_qnsec ? (uint32_t)m.qnsec : 0;
	if (response && m.has_rsec) {
		sec = m.rsec;
		nsec = m.has_rnsec ? (uint32_t)m.rnsec : 0;
	}
	r->time_ms = sec * 1000 + nsec / 1000000;
	if (m.qaddr && m.qaddr_len == 4) {
		r->family = AF_INET;
		memcpy(r->addr, m.qaddr, 4);
	} else if (m.qaddr && m.qaddr_len == 16) {
		r->family = AF_INET6;
		memcpy(r->addr, m.qaddr, 16);
	}
	if (m.has_qport && m.qport <= 65535)
		r->port = (uint16_t)m.qport;
	if (m.has_protocol && m.protocol != SP_UDP && m.protocol != SP_DNSCRYPT_UDP &&
	    m.protocol != SP_DOQ)
		r->transport = DK_TRANSPORT_TCP;
	return 0;
}
