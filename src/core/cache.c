/* SPDX-License-Identifier: MIT */
/*
 * The response cache (see cache.h). An entry is a chain of arena chunks
 * holding, as one stream, its header (struct entry), its key's name and the
 * answer as stored; the chunks are linked through link[], free chunks too
 * (the free list). The hash table's heads and the entries' hnext field chain
 * the entries of a bucket. meta[] says which chunks open an entry and holds
 * their CLOCK reference bits, so the hand sweeps a dense octet array.
 *
 * Insert rewrites the upstream's answer into the scratch area first (what
 * belongs to the question; owners equal to the query name as a pointer to
 * the question, every other name uncompressed; TTLs clamped) and only then
 * takes chunks, so a refused answer costs no entry.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <ldns/ldns.h>

#include "dnsink/cache.h"
#include "dnsink/msg.h"
#include "dnsink/name.h"

#define NIL          UINT32_MAX
#define META_HEAD    0x01
#define META_REF     0x02
#define META_REFRESH 0x04 /* a refresh of the entry is in flight */
/* Fixed part of a record after its owner: type, class, TTL, rdlength. */
#define RR_FIXED 10
/* Compression pointer to the question name, which always starts at offset 12. */
#define QNAME_PTR (0xC000U | DK_HEADER_LEN)
/* The largest answer stored: room is left for the client's OPT record with an EDE. */
#define STORE_MAX (DK_MSG_MAX - 64)
/* RFC 2181 section 8: a TTL with the top bit set is read as 0. */
#define TTL_MAX 0x7FFFFFFFU

/* An entry's header; the name and the stored answer follow it in the stream. */
struct entry {
	uint64_t hash;
	uint64_t stored_ms;
	uint32_t hnext;   /* next entry of the bucket (its first chunk), or NIL */
	uint32_t ttl;     /* seconds fresh after stored_ms */
	uint32_t nchunks; /* chunks of the chain */
	uint16_t wire_len;
	uint16_t qtype;
	uint16_t qclass;
	uint8_t name_len;
	uint8_t bits;
	uint8_t kind; /* enum dk_cache_kind */
};

_Static_assert(sizeof(struct entry) == DK_CACHE_ENTRY_HDR, "entry header size");
_Static_assert(sizeof(struct entry) <= DK_CACHE_CHUNK, "the header fits the first chunk");

/* A record of the answer being inserted, its owner read and lowercased. */
struct rec {
	struct dk_rr rr;
	bool keep;
	uint8_t owner_len;
	uint8_t owner[DK_NAME_MAX];
};

struct scratch {
	struct rec rec[DK_CACHE_RRS_MAX];
	uint8_t chain[DK_CACHE_CHAIN_MAX + 1][DK_NAME_MAX];
	uint8_t chain_len[DK_CACHE_CHAIN_MAX + 1];
	uint8_t out[DK_MSG_MAX];
};

struct dk_cache {
	uint8_t *arena;
	uint32_t *link;
	uint8_t *meta;
	uint32_t *bucket;
	uint32_t n_chunks;
	uint32_t n_free;
	uint32_t free_head;
	uint32_t hand;
	uint32_t bucket_mask;
	uint32_t max_chunks; /* the largest entry */
	size_t entries;
	uint64_t evictions;
	uint64_t seed;
	struct dk_cache_limits lim;
	struct scratch *s;
};

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t min32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static uint8_t *chunk(const struct dk_cache *c, uint32_t i)
{
	return c->arena + (size_t)i * DK_CACHE_CHUNK;
}

static struct entry *entry_of(const struct dk_cache *c, uint32_t head)
{
	return (struct entry *)chunk(c, head);
}

/*
 * The name eight octets at a time (the last word zero-padded), each word
 * folded in with a multiply, then the type, class and bits, then a murmur3
 * finalizer. The key (a random seed from the caller) keeps bucket choice
 * unpredictable from outside. A name is at most 255 octets and each word is
 * mixed before the next comes in, so equal-length names that differ in one
 * word still differ after the finalizer.
 */
static uint64_t key_hash(const struct dk_cache *c, const struct dk_cache_key *k)
{
	const uint64_t mul = 0x9e3779b97f4a7c15ULL;
	uint64_t h = c->seed ^ k->name_len;
	size_t i = 0, n = k->name_len;

	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, k->name + i, sizeof(w));
		h = (h ^ w) * mul;
		h ^= h >> 29;
	}
	if (i < n) {
		uint64_t w = 0;
		memcpy(&w, k->name + i, n - i);
		h = (h ^ w) * mul;
		h ^= h >> 29;
	}
	h ^= (uint64_t)k->qtype << 24 | (uint64_t)k->qclass << 8 | k->bits;
	return dk_hash_mix64(h * mul);
}

/* Copies @p n octets from offset @p off of the stream of entry @p head. */
static void stream_read(const struct dk_cache *c, uint32_t ch, size_t off, uint8_t *dst, size_t n)
{
	while (off >= DK_CACHE_CHUNK) {
		ch = c->link[ch];
		off -= DK_CACHE_CHUNK;
	}
	while (n) {
		size_t m = DK_CACHE_CHUNK - off < n ? DK_CACHE_CHUNK - off : n;
		memcpy(dst, chunk(c, ch) + off, m);
		dst += m;
		n -= m;
		off = 0;
		if (n)
			ch = c->link[ch];
	}
}

static void stream_write(struct dk_cache *c, uint32_t ch, size_t off, const uint8_t *src, size_t n)
{
	while (off >= DK_CACHE_CHUNK) {
		ch = c->link[ch];
		off -= DK_CACHE_CHUNK;
	}
	while (n) {
		size_t m = DK_CACHE_CHUNK - off < n ? DK_CACHE_CHUNK - off : n;
		memcpy(chunk(c, ch) + off, src, m);
		src += m;
		n -= m;
		off = 0;
		if (n)
			ch = c->link[ch];
	}
}

static bool key_equal(const struct dk_cache *c, uint32_t head, const struct entry *e,
                      const struct dk_cache_key *k, uint64_t h)
{
	uint8_t name[DK_NAME_MAX];

	if (e->hash != h || e->qtype != k->qtype || e->qclass != k->qclass || e->bits != k->bits ||
	    e->name_len != k->name_len)
		return false;
	/* The key's name is the stored answer's question, lowercase. */
	stream_read(c, head, sizeof(struct entry) + DK_HEADER_LEN, name, e->name_len);
	return memcmp(name, k->name, k->name_len) == 0;
}

/* The entry of @p k, and where the link to it is (for unlinking); NIL if none. */
static uint32_t find(const struct dk_cache *c, const struct dk_cache_key *k, uint64_t h,
                     uint32_t **link_to)
{
	uint32_t *pp = &c->bucket[h & c->bucket_mask];

	while (*pp != NIL) {
		struct entry *e = entry_of(c, *pp);
		if (key_equal(c, *pp, e, k, h)) {
			*link_to = pp;
			return *pp;
		}
		pp = &e->hnext;
	}
	return NIL;
}

/* Unlinks entry @p head (reached through @p pp) and returns its chunks to the free list. */
static void remove_at(struct dk_cache *c, uint32_t *pp, uint32_t head)
{
	struct entry *e = entry_of(c, head);
	uint32_t ch = head;

	*pp = e->hnext;
	c->meta[head] = 0;
	c->n_free += e->nchunks;
	for (uint32_t i = e->nchunks; i > 0; i--) {
		uint32_t next = c->link[ch];
		c->link[ch] = c->free_head;
		c->free_head = ch;
		ch = next;
	}
	c->entries--;
}

static void remove_entry(struct dk_cache *c, uint32_t head)
{
	uint32_t *pp = &c->bucket[entry_of(c, head)->hash & c->bucket_mask];

	while (*pp != head)
		pp = &entry_of(c, *pp)->hnext;
	remove_at(c, pp, head);
}

/* True once @p e may no longer be served, not even stale. */
static bool past_use(const struct dk_cache *c, const struct entry *e, uint64_t now_ms)
{
	uint64_t keep = e->kind == DK_CACHE_FAILURE ? 0 : c->lim.stale_max_s;

	return now_ms >= e->stored_ms + ((uint64_t)e->ttl + keep) * 1000;
}

/* CLOCK: evicts one entry. Two sweeps at most: the first clears every bit. */
static bool evict_one(struct dk_cache *c, uint64_t now_ms)
{
	if (!c->entries)
		return false;
	for (uint64_t step = 0; step <= 2 * (uint64_t)c->n_chunks; step++) {
		uint32_t i = c->hand;
		c->hand = i + 1 == c->n_chunks ? 0 : i + 1;
		if (!(c->meta[i] & META_HEAD))
			continue;
		if ((c->meta[i] & META_REF) && !past_use(c, entry_of(c, i), now_ms)) {
			c->meta[i] &= (uint8_t)~META_REF;
			continue;
		}
		remove_entry(c, i);
		c->evictions++;
		return true;
	}
	return false;
}

/* True when @p name lies at or below @p anc (both lowercase wire form). */
static bool name_under(const uint8_t *name, size_t nlen, const uint8_t *anc, size_t alen)
{
	size_t off = 0;

	while (off < nlen) {
		if (nlen - off == alen && memcmp(name + off, anc, alen) == 0)
			return true;
		if (name[off] == 0)
			break;
		off += (size_t)name[off] + 1;
	}
	return false;
}

static bool in_chain(const struct scratch *s, unsigned n, const uint8_t *name, size_t len)
{
	for (unsigned i = 0; i < n; i++)
		if (s->chain_len[i] == len && memcmp(s->chain[i], name, len) == 0)
			return true;
	return false;
}

static bool under_chain(const struct scratch *s, unsigned n, const uint8_t *anc, size_t alen)
{
	for (unsigned i = 0; i < n; i++)
		if (name_under(s->chain[i], s->chain_len[i], anc, alen))
			return true;
	return false;
}

/* Where the names are in the rdata of types that may compress them (RFC 3597 section 4). */
static bool rdata_names(uint16_t type, size_t *prefix, unsigned *names, size_t *suffix)
{
	*prefix = 0;
	*suffix = 0;
	*names = 1;
	switch (type) {
	case LDNS_RR_TYPE_NS:
	case LDNS_RR_TYPE_CNAME:
	case LDNS_RR_TYPE_PTR:
	case LDNS_RR_TYPE_DNAME: return true;
	case LDNS_RR_TYPE_MX: *prefix = 2; return true;
	case LDNS_RR_TYPE_SRV: *prefix = 6; return true;
	case LDNS_RR_TYPE_SOA:
		*names = 2;
		*suffix = 20;
		return true;
	default: return false;
	}
}

/*
 * Appends record @p r of answer @p ans to the scratch answer at *@p p with
 * TTL @p ttl: an owner that is the query name @p k as a pointer to the
 * question, other owners and rdata names uncompressed. Returns 0, DK_ESPACE
 * or DK_EFORMERR.
 */
static int write_rr(struct scratch *s, size_t *p, const uint8_t *ans, const struct rec *r,
                    const struct dk_cache_key *k, uint32_t ttl)
{
	const struct dk_rr *rr = &r->rr;
	uint8_t *out = s->out;
	size_t o = *p, prefix, suffix;
	unsigned names;
	bool is_qname = r->owner_len == k->name_len && memcmp(r->owner, k->name, k->name_len) == 0;

	if (o + r->owner_len + RR_FIXED > STORE_MAX)
		return DK_ESPACE;
	if (is_qname) {
		wr16(out + o, QNAME_PTR);
		o += 2;
	} else {
		memcpy(out + o, r->owner, r->owner_len);
		o += r->owner_len;
	}
	wr16(out + o, rr->type);
	wr16(out + o + 2, rr->rclass);
	wr32(out + o + 4, ttl);
	size_t rdlen_at = o + 8;
	o += RR_FIXED;
	size_t start = o;
	if (!rdata_names(rr->type, &prefix, &names, &suffix)) {
		if (o + rr->rdlen > STORE_MAX)
			return DK_ESPACE;
		memcpy(out + o, ans + rr->rdata, rr->rdlen);
		o += rr->rdlen;
	} else {
		size_t src = rr->rdata, end = rr->rdata + rr->rdlen;
		if (prefix > rr->rdlen || o + prefix > STORE_MAX)
			return DK_EFORMERR;
		memcpy(out + o, ans + src, prefix);
		o += prefix;
		src += prefix;
		for (unsigned i = 0; i < names; i++) {
			uint8_t name[DK_NAME_MAX];
			size_t nlen;
			/* Bounded by the rdata's end; pointers may reach back into the message. */
			if (dk_name_from_wire_compressed(ans, end, &src, name, &nlen) < 0)
				return DK_EFORMERR;
			if (o + nlen > STORE_MAX)
				return DK_ESPACE;
			memcpy(out + o, name, nlen);
			o += nlen;
		}
		if (end - src != suffix)
			return DK_EFORMERR;
		if (o + suffix > STORE_MAX)
			return DK_ESPACE;
		memcpy(out + o, ans + src, suffix);
		o += suffix;
	}
	if (o - start > UINT16_MAX)
		return DK_ESPACE;
	wr16(out + rdlen_at, (uint16_t)(o - start));
	*p = o;
	return 0;
}

/*
 * True when the answer's OPT record carries extended rcode bits (BADVERS,
 * BADCOOKIE...): the header's rcode alone does not say what it is, and the
 * OPT is not stored.
 */
static bool extended_rcode(struct dk_rr_iter *it)
{
	struct dk_rr rr;
	int ret;

	if (dk_msg_rr_next_section(it) <= 0)
		return false;
	while ((ret = dk_msg_rr_next(it, &rr)) > 0)
		if (rr.type == LDNS_RR_TYPE_OPT && (rr.ttl >> 24) != 0)
			return true;
	return false;
}

/* Reads the records of the answer and authority sections into s->rec. */
static enum dk_cache_result read_records(struct scratch *s, const struct dk_cache_key *k,
                                         const uint8_t *ans, size_t len, unsigned *n_out,
                                         struct dk_rr_iter *it)
{
	unsigned n = 0;
	int ret;

	if (dk_msg_rr_iter_init(it, ans, len) < 0)
		return DK_CACHE_REFUSED_MALFORMED;
	for (;;) {
		struct dk_rr rr;
		ret = dk_msg_rr_next(it, &rr);
		if (ret < 0)
			return DK_CACHE_REFUSED_MALFORMED;
		if (ret == 0) {
			/* The additional section is never kept: only its OPT is read. */
			if (it->section == DK_SECTION_AUTHORITY) {
				if (extended_rcode(it))
					return DK_CACHE_REFUSED_RCODE;
				break;
			}
			ret = dk_msg_rr_next_section(it);
			if (ret < 0)
				return DK_CACHE_REFUSED_MALFORMED;
			if (ret == 0)
				break;
			continue;
		}
		if (n == DK_CACHE_RRS_MAX)
			return DK_CACHE_REFUSED_SIZE;
		struct rec *r = &s->rec[n];
		size_t off = rr.owner, olen;
		/*
		 * Most owners are a pointer to the question, which sanitize() has
		 * matched to the key: the key's name is the owner then, with no
		 * second read of it.
		 */
		if (len - off >= 2 && rd16(ans + off) == QNAME_PTR) {
			memcpy(r->owner, k->name, k->name_len);
			olen = k->name_len;
		} else if (dk_name_from_wire_compressed(ans, len, &off, r->owner, &olen) < 0) {
			return DK_CACHE_REFUSED_MALFORMED;
		}
		r->rr = rr;
		r->owner_len = (uint8_t)olen;
		r->keep = false;
		n++;
	}
	*n_out = n;
	return DK_CACHE_STORED;
}

/* Follows the CNAMEs of the answer section from the query name into s->chain. */
static unsigned follow_chain(struct scratch *s, const struct dk_rr_iter *it, unsigned n,
                             const struct dk_cache_key *k)
{
	unsigned nc = 1;

	memcpy(s->chain[0], k->name, k->name_len);
	s->chain_len[0] = k->name_len;
	if (k->qtype == LDNS_RR_TYPE_CNAME)
		return nc;
	while (nc <= DK_CACHE_CHAIN_MAX) {
		const uint8_t *cur = s->chain[nc - 1];
		size_t cur_len = s->chain_len[nc - 1];
		unsigned i;
		for (i = 0; i < n; i++) {
			const struct rec *r = &s->rec[i];
			if (r->rr.section == DK_SECTION_ANSWER &&
			    r->rr.type == LDNS_RR_TYPE_CNAME && r->rr.rclass == k->qclass &&
			    r->owner_len == cur_len && memcmp(r->owner, cur, cur_len) == 0)
				break;
		}
		if (i == n)
			break;
		size_t tlen;
		if (dk_msg_rr_target(it, &s->rec[i].rr, s->chain[nc], &tlen) < 0 ||
		    in_chain(s, nc, s->chain[nc], tlen))
			break;
		s->chain_len[nc++] = (uint8_t)tlen;
	}
	return nc;
}

/*
 * Rewrites answer @p ans to key @p k into s->out (see dk_cache_insert()).
 * Sets @p *out_len, @p *kind and @p *ttl.
 */
static enum dk_cache_result sanitize(struct dk_cache *c, const struct dk_cache_key *k,
                                     const uint8_t *ans, size_t len, size_t *out_len,
                                     enum dk_cache_kind *kind, uint32_t *ttl)
{
	const struct dk_cache_limits *lim = &c->lim;
	struct scratch *s = c->s;
	uint8_t *out = s->out;
	size_t off = DK_HEADER_LEN, p;
	struct dk_rr_iter it;
	unsigned n, nc;
	enum dk_cache_result r;

	if (len < DK_HEADER_LEN || !LDNS_QR_WIRE(ans) || LDNS_OPCODE_WIRE(ans) != LDNS_PACKET_QUERY)
		return DK_CACHE_REFUSED_MALFORMED;
	if (LDNS_TC_WIRE(ans))
		return DK_CACHE_REFUSED_TC;
	/*
	 * The question must be the key's: its octets equal to the key's name
	 * but for case (a valid name, so its length octets are the key's too)
	 * and uncompressed, as the forwarder's check requires anyway.
	 */
	if (LDNS_QDCOUNT(ans) != 1 || len - off < (size_t)k->name_len + 4 ||
	    !dk_name_equal_nocase(ans + off, k->name_len, k->name, k->name_len))
		return DK_CACHE_REFUSED_MALFORMED;
	off += k->name_len;
	if (rd16(ans + off) != k->qtype || rd16(ans + off + 2) != k->qclass)
		return DK_CACHE_REFUSED_MALFORMED;
	uint8_t rcode = LDNS_RCODE_WIRE(ans);
	if (rcode != LDNS_RCODE_NOERROR && rcode != LDNS_RCODE_NXDOMAIN &&
	    rcode != LDNS_RCODE_SERVFAIL)
		return DK_CACHE_REFUSED_RCODE;

	/* Header (ID and flags as sent; counts set below) and the question. */
	memset(out, 0, DK_HEADER_LEN);
	memcpy(out, ans, 4);
	/* An answer from a cache is not authoritative (RFC 1035 section 6.2). */
	LDNS_AA_CLR(out);
	out[LDNS_QDCOUNT_OFF + 1] = 1;
	p = DK_HEADER_LEN;
	memcpy(out + p, k->name, k->name_len);
	p += k->name_len;
	wr16(out + p, k->qtype);
	wr16(out + p + 2, k->qclass);
	p += 4;
	if (rcode == LDNS_RCODE_SERVFAIL) {
		*kind = DK_CACHE_FAILURE;
		*ttl = lim->failure_ttl;
		*out_len = p;
		return *ttl ? DK_CACHE_STORED : DK_CACHE_REFUSED_TTL0;
	}

	r = read_records(s, k, ans, len, &n, &it);
	if (r != DK_CACHE_STORED)
		return r;
	nc = follow_chain(s, &it, n, k);
	const uint8_t *last = s->chain[nc - 1];
	size_t last_len = s->chain_len[nc - 1];

	/* The answer section: the chain's records, and DNAMEs above the chain. */
	bool positive = false;
	uint32_t min_ttl = TTL_MAX;
	unsigned ancount = 0, nscount = 0;
	for (unsigned i = 0; i < n; i++) {
		struct rec *rc = &s->rec[i];
		const struct dk_rr *rr = &rc->rr;
		if (rr->section != DK_SECTION_ANSWER || rr->rclass != k->qclass ||
		    rr->type == LDNS_RR_TYPE_OPT)
			continue;
		if (in_chain(s, nc, rc->owner, rc->owner_len)) {
			rc->keep = true;
			if (rc->owner_len == last_len && memcmp(rc->owner, last, last_len) == 0 &&
			    (rr->type == k->qtype || k->qtype == LDNS_RR_TYPE_ANY))
				positive = true;
		} else if (rr->type == LDNS_RR_TYPE_DNAME &&
		           under_chain(s, nc, rc->owner, rc->owner_len)) {
			rc->keep = true;
		}
		if (rc->keep) {
			uint32_t t = rr->ttl > TTL_MAX ? 0 : min32(rr->ttl, lim->max_ttl);
			min_ttl = min32(min_ttl, t);
			ancount++;
		}
	}
	if (rcode == LDNS_RCODE_NXDOMAIN)
		positive = false;

	/* A negative answer needs the SOA of a zone its last name is in (RFC 2308 section 5). */
	const struct rec *soa = NULL;
	if (!positive) {
		for (unsigned i = 0; i < n && !soa; i++) {
			const struct rec *rc = &s->rec[i];
			if (rc->rr.section == DK_SECTION_AUTHORITY &&
			    rc->rr.type == LDNS_RR_TYPE_SOA && rc->rr.rclass == k->qclass &&
			    rc->rr.rdlen >= 22 &&
			    name_under(last, last_len, rc->owner, rc->owner_len))
				soa = rc;
		}
		if (!soa)
			return DK_CACHE_REFUSED_NO_SOA;
		uint32_t st = soa->rr.ttl > TTL_MAX ? 0 : soa->rr.ttl;
		uint32_t minimum = rd32(ans + soa->rr.rdata + soa->rr.rdlen - 4);
		min_ttl = min32(min_ttl, min32(st, min32(minimum, lim->negative_max_ttl)));
		for (unsigned i = 0; i < n; i++) {
			struct rec *rc = &s->rec[i];
			uint16_t t = rc->rr.type;
			if (rc->rr.section != DK_SECTION_AUTHORITY || rc->rr.rclass != k->qclass)
				continue;
			if (rc == soa ||
			    ((t == LDNS_RR_TYPE_NSEC || t == LDNS_RR_TYPE_NSEC3 ||
			      t == LDNS_RR_TYPE_RRSIG) &&
			     name_under(rc->owner, rc->owner_len, soa->owner, soa->owner_len))) {
				rc->keep = true;
				nscount++;
			}
		}
		*kind = DK_CACHE_NEGATIVE;
		*ttl = min_ttl;
	} else {
		*kind = DK_CACHE_POSITIVE;
		*ttl = min_ttl < lim->min_ttl ? min32(lim->min_ttl, lim->max_ttl) : min_ttl;
	}
	if (*ttl == 0)
		return DK_CACHE_REFUSED_TTL0;

	for (unsigned i = 0; i < n; i++) {
		const struct rec *rc = &s->rec[i];
		if (!rc->keep)
			continue;
		uint32_t t = rc->rr.ttl > TTL_MAX ? 0 : min32(rc->rr.ttl, lim->max_ttl);
		if (*kind == DK_CACHE_POSITIVE && t < *ttl)
			t = *ttl;
		if (*kind == DK_CACHE_NEGATIVE)
			t = rc == soa ? *ttl : min32(t, *ttl);
		int ret = write_rr(s, &p, ans, rc, k, t);
		if (ret == DK_ESPACE)
			return DK_CACHE_REFUSED_SIZE;
		if (ret < 0)
			return DK_CACHE_REFUSED_MALFORMED;
	}
	wr16(out + LDNS_ANCOUNT_OFF, (uint16_t)ancount);
	wr16(out + LDNS_NSCOUNT_OFF, (uint16_t)nscount);
	*out_len = p;
	return DK_CACHE_STORED;
}

enum dk_cache_result dk_cache_insert(struct dk_cache *c, const struct dk_cache_key *k,
                                     const uint8_t *ans, size_t len, uint64_t now_ms,
                                     unsigned *evicted)
{
	enum dk_cache_kind kind;
	uint32_t ttl, *pp;
	size_t wire_len;
	unsigned ev = 0;

	if (evicted)
		*evicted = 0;
	enum dk_cache_result r = sanitize(c, k, ans, len, &wire_len, &kind, &ttl);
	if (r != DK_CACHE_STORED)
		return r;
	size_t total = sizeof(struct entry) + wire_len;
	uint32_t need = (uint32_t)((total + DK_CACHE_CHUNK - 1) / DK_CACHE_CHUNK);
	if (need > c->max_chunks)
		return DK_CACHE_REFUSED_SIZE;

	uint64_t h = key_hash(c, k);
	uint32_t old = find(c, k, h, &pp);
	if (old != NIL)
		remove_at(c, pp, old);
	while (c->n_free < need && evict_one(c, now_ms))
		ev++;
	if (evicted)
		*evicted = ev;
	if (dk_fails_assert(c->n_free >= need))
		return DK_CACHE_REFUSED_SIZE;

	uint32_t head = c->free_head, ch = head;
	for (uint32_t i = 1; i < need; i++)
		ch = c->link[ch];
	c->free_head = c->link[ch];
	c->link[ch] = NIL;
	c->n_free -= need;

	struct entry e = {
	        .hash = h,
	        .stored_ms = now_ms,
	        .hnext = c->bucket[h & c->bucket_mask],
	        .ttl = ttl,
	        .nchunks = need,
	        .wire_len = (uint16_t)wire_len,
	        .qtype = k->qtype,
	        .qclass = k->qclass,
	        .name_len = k->name_len,
	        .bits = k->bits,
	        .kind = (uint8_t)kind,
	};
	memcpy(chunk(c, head), &e, sizeof(e));
	stream_write(c, head, sizeof(e), c->s->out, wire_len);
	c->bucket[h & c->bucket_mask] = head;
	c->meta[head] = META_HEAD;
	c->entries++;
	return DK_CACHE_STORED;
}

/*
 * Lowers every TTL of stored answer @p msg by @p age, or sets it to the
 * stale TTL. Its question is the key's name (@p name_len octets) and type
 * and class, as sanitize() wrote it.
 */
static void age_ttls(uint8_t *msg, size_t len, size_t name_len, uint32_t age, bool stale)
{
	struct dk_rr_iter it;
	struct dk_rr rr;
	int ret;

	if (dk_msg_rr_iter_init_at(&it, msg, len, DK_HEADER_LEN + name_len + 4) < 0)
		return;
	do {
		while ((ret = dk_msg_rr_next(&it, &rr)) > 0) {
			/* An OPT record's TTL field holds flags; the cache stores none, but still.
			 */
			if (rr.type == LDNS_RR_TYPE_OPT)
				continue;
			uint32_t t = stale ? DK_CACHE_STALE_TTL : rr.ttl > age ? rr.ttl - age : 0;
			wr32(msg + rr.rdata - 6, t);
		}
	} while (ret == 0 && dk_msg_rr_next_section(&it) > 0);
}

int dk_cache_lookup(struct dk_cache *c, const struct dk_cache_key *k, uint64_t now_ms,
                    unsigned flags, uint8_t *out, size_t cap, struct dk_cache_hit *hit)
{
	bool stale = flags & DK_CACHE_LOOKUP_STALE;
	uint32_t *pp;
	uint64_t h = key_hash(c, k);
	uint32_t head = find(c, k, h, &pp);

	if (head == NIL)
		return 0;
	const struct entry *e = entry_of(c, head);
	uint64_t age_ms = now_ms > e->stored_ms ? now_ms - e->stored_ms : 0;
	bool expired = age_ms >= (uint64_t)e->ttl * 1000;
	if (past_use(c, e, now_ms)) {
		remove_at(c, pp, head);
		return 0;
	}
	if (expired && (!stale || e->kind == DK_CACHE_FAILURE))
		return 0;
	if (e->wire_len > cap)
		return DK_ESPACE;
	stream_read(c, head, sizeof(*e), out, e->wire_len);
	c->meta[head] |= META_REF;
	uint32_t age = age_ms / 1000 > UINT32_MAX ? UINT32_MAX : (uint32_t)(age_ms / 1000);
	age_ttls(out, e->wire_len, e->name_len, age, expired);
	hit->kind = (enum dk_cache_kind)e->kind;
	hit->stale = expired;
	/* Due in the last tenth of the TTL, as Unbound's prefetch. */
	uint64_t ttl_ms = (uint64_t)e->ttl * 1000;
	hit->refresh = (flags & DK_CACHE_LOOKUP_PREFETCH) && !expired &&
	               e->kind != DK_CACHE_FAILURE && !(c->meta[head] & META_REFRESH) &&
	               (ttl_ms - age_ms) * 10 <= ttl_ms;
	if (hit->refresh)
		c->meta[head] |= META_REFRESH;
	hit->age_s = age;
	hit->ttl_s = e->ttl;
	return e->wire_len;
}

void dk_cache_refresh_cancel(struct dk_cache *c, const struct dk_cache_key *k)
{
	uint32_t *pp;
	uint32_t head = find(c, k, key_hash(c, k), &pp);

	if (head != NIL)
		c->meta[head] &= (uint8_t)~META_REFRESH;
}

size_t dk_cache_flush(struct dk_cache *c, const uint8_t *name, size_t name_len)
{
	size_t removed = 0;
	uint8_t own[DK_NAME_MAX];

	for (uint32_t i = 0; i < c->n_chunks && c->entries; i++) {
		if (!(c->meta[i] & META_HEAD))
			continue;
		if (name) {
			const struct entry *e = entry_of(c, i);
			if (e->name_len != name_len)
				continue;
			stream_read(c, i, sizeof(struct entry) + DK_HEADER_LEN, own, e->name_len);
			if (memcmp(own, name, name_len) != 0)
				continue;
		}
		remove_entry(c, i);
		removed++;
	}
	return removed;
}

void dk_cache_set_limits(struct dk_cache *c, const struct dk_cache_limits *lim)
{
	c->lim = *lim;
}

void dk_cache_stats(const struct dk_cache *c, struct dk_cache_stats *st)
{
	st->entries = c->entries;
	st->bytes = (size_t)(c->n_chunks - c->n_free) * DK_CACHE_CHUNK;
	st->capacity = (size_t)c->n_chunks * DK_CACHE_CHUNK;
	st->evictions = c->evictions;
}

const char *dk_cache_result_name(enum dk_cache_result r)
{
	static const char *const names[DK_CACHE_RESULT_MAX] = {
	        [DK_CACHE_STORED] = "stored",
	        [DK_CACHE_REFUSED_TC] = "tc",
	        [DK_CACHE_REFUSED_MALFORMED] = "malformed",
	        [DK_CACHE_REFUSED_RCODE] = "rcode",
	        [DK_CACHE_REFUSED_NO_SOA] = "no_soa",
	        [DK_CACHE_REFUSED_TTL0] = "ttl0",
	        [DK_CACHE_REFUSED_SIZE] = "size",
	};
	return (unsigned)r < DK_CACHE_RESULT_MAX ? names[r] : "unknown";
}

/*
 * Allocates @p n octets for an array that is read at random, one line per
 * query: the arena and the bucket heads. At 4 KiB pages every such read of a
 * 64 MiB cache is a TLB miss too; aligned to 2 MiB and marked for huge pages
 * (where the kernel has them: transparent huge pages in "madvise" mode, as
 * Debian ships), most are not. Only the 2 MiB-aligned part is marked, so no
 * octet beyond @p n is ever made resident; the budget holds.
 * tools/bench/bench_cache at 64 MiB, miss + insert: 650 -> 555 ns.
 */
static void *big_alloc(size_t n)
{
	const size_t huge = (size_t)2 << 20;
	void *p;

	if (n < huge)
		return malloc(n);
	if (posix_memalign(&p, huge, n) != 0)
		return NULL;
	(void)madvise(p, n / huge * huge, MADV_HUGEPAGE);
	return p;
}

int dk_cache_new(size_t bytes, uint64_t seed, struct dk_cache **out)
{
	/*
	 * Per chunk: its octets, its link, its state, and up to two bucket
	 * heads. Entries are mostly one chunk, so buckets number between one
	 * and two per entry: a lookup that misses mostly finds an empty bucket,
	 * and a chain rarely holds a second entry to read from memory (with one
	 * bucket per two chunks, bench_cache at 64 MiB paid 1880 ns per miss +
	 * insert against 650).
	 */
	const size_t per_chunk = DK_CACHE_CHUNK + sizeof(uint32_t) + 1 + 2 * sizeof(uint32_t);
	size_t fixed = sizeof(struct dk_cache) + sizeof(struct scratch);
	struct dk_cache *c;

	*out = NULL;
	if (bytes < DK_CACHE_MIN_BYTES || bytes <= fixed)
		return -EINVAL;
	size_t n = (bytes - fixed) / per_chunk;
	/* Chunk indexes and the bucket mask are 32-bit. */
	if (n > (size_t)1 << 30)
		n = (size_t)1 << 30;
	size_t nb = 1;
	while (nb * 2 <= n * 2)
		nb *= 2;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->n_chunks = (uint32_t)n;
	c->bucket_mask = (uint32_t)(nb - 1);
	c->max_chunks = c->n_chunks / 8 ? c->n_chunks / 8 : 1;
	c->seed = seed;
	c->arena = big_alloc(n * DK_CACHE_CHUNK);
	c->link = big_alloc(n * sizeof(*c->link));
	c->meta = calloc(n, 1);
	c->bucket = big_alloc(nb * sizeof(*c->bucket));
	c->s = malloc(sizeof(*c->s));
	if (!c->arena || !c->link || !c->meta || !c->bucket || !c->s) {
		dk_cache_free(c);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nb; i++)
		c->bucket[i] = NIL;
	for (size_t i = 0; i < n; i++)
		c->link[i] = i + 1 < n ? (uint32_t)(i + 1) : NIL;
	c->free_head = 0;
	c->n_free = c->n_chunks;
	c->lim = (struct dk_cache_limits){.max_ttl = TTL_MAX};
	*out = c;
	return 0;
}

void dk_cache_free(struct dk_cache *c)
{
	if (!c)
		return;
	free(c->arena);
	free(c->link);
	free(c->meta);
	free(c->bucket);
	free(c->s);
	free(c);
}
