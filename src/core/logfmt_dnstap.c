/* SPDX-License-Identifier: MIT */
/*
 * dnstap messages (see logrec.h): the protobuf decoded with protobuf-c into
 * a per-stream arena (its allocator hands out slices and frees nothing; the
 * arena is reset per frame, so decoding costs no malloc), then the DNS
 * message in it read with the core's own wire functions: the question for
 * name and type, the header for the rcode, the answer section's CNAME and
 * DNAME targets through the one record walker.
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

#include "dnstap.pb-c.h"

void dk_dnstap_state_init(struct dk_dnstap_state *st)
{
	st->saw_query = false;
	st->used = 0;
}

static void *arena_alloc(void *data, size_t size)
{
	struct dk_dnstap_state *st = data;
	size_t at = (st->used + 15) & ~(size_t)15;

	if (at > sizeof(st->arena) || size > sizeof(st->arena) - at)
		return NULL;
	st->used = at + size;
	return st->arena + at;
}

static void arena_free(void *data, void *p)
{
	(void)data;
	(void)p;
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
	ProtobufCAllocator a = {.alloc = arena_alloc, .free = arena_free, .allocator_data = st};
	bool response;

	if (len > DK_DNSTAP_FRAME_MAX)
		return DK_LOGERR_DNSTAP;
	st->used = 0;
	Dnstap__Dnstap *d = dnstap__dnstap__unpack(&a, len, frame);
	if (!d || d->type != DNSTAP__DNSTAP__TYPE__MESSAGE || !d->message)
		return DK_LOGERR_DNSTAP;
	const Dnstap__Message *m = d->message;
	switch (m->type) {
	case DNSTAP__MESSAGE__TYPE__CLIENT_QUERY:
	case DNSTAP__MESSAGE__TYPE__AUTH_QUERY:
		response = false;
		st->saw_query = true;
		break;
	case DNSTAP__MESSAGE__TYPE__CLIENT_RESPONSE:
	case DNSTAP__MESSAGE__TYPE__AUTH_RESPONSE: response = true; break;
	default: return DK_LOG_SKIP;
	}
	dk_logrec_reset(r, DK_LOGFMT_DNSTAP);
	const ProtobufCBinaryData *msg = response && m->has_response_message ? &m->response_message
	                                 : m->has_query_message              ? &m->query_message
	                                                                     : NULL;
	if (!msg)
		return DK_LOGERR_DNSMSG;
	int rc = dns_message(msg->data, msg->len, response && msg == &m->response_message, r);
	if (rc)
		return rc;
	r->answer_only = response && st->saw_query;
	/*
	 * dnsink's own answers name the alert's CNAME target in extra
	 * ("dnsink rule=... target=NAME"): its local answer no longer shows it.
	 */
	if (response && d->has_extra && d->extra.len > 7 &&
	    memcmp(d->extra.data, "dnsink ", 7) == 0) {
		const char *x = (const char *)d->extra.data, *end = x + d->extra.len;
		for (const char *p = x; end - p > 8; p++) {
			if (memcmp(p, " target=", 8) != 0)
				continue;
			const char *t = p + 8, *e = memchr(t, ' ', (size_t)(end - t));
			dk_logrec_add_target(r, t, (size_t)((e ? e : end) - t));
			break;
		}
	}
	uint64_t sec = m->has_query_time_sec ? m->query_time_sec : 0;
	uint32_t nsec = m->has_query_time_nsec ? m->query_time_nsec : 0;
	if (response && m->has_response_time_sec) {
		sec = m->response_time_sec;
		nsec = m->has_response_time_nsec ? m->response_time_nsec : 0;
	}
	r->time_ms = sec * 1000 + nsec / 1000000;
	if (m->has_query_address && m->query_address.len == 4) {
		r->family = AF_INET;
		memcpy(r->addr, m->query_address.data, 4);
	} else if (m->has_query_address && m->query_address.len == 16) {
		r->family = AF_INET6;
		memcpy(r->addr, m->query_address.data, 16);
	}
	if (m->has_query_port && m->query_port <= 65535)
		r->port = (uint16_t)m->query_port;
	if (m->has_socket_protocol && m->socket_protocol != DNSTAP__SOCKET_PROTOCOL__UDP &&
	    m->socket_protocol != DNSTAP__SOCKET_PROTOCOL__DNSCryptUDP &&
	    m->socket_protocol != DNSTAP__SOCKET_PROTOCOL__DOQ)
		r->transport = DK_TRANSPORT_TCP;
	return 0;
}
