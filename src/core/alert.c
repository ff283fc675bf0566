/* SPDX-License-Identifier: MIT */
/*
 * Alerts, the pure part: the lock-free single-producer single-consumer ring
 * that carries match events from a worker to the main loop, dedup/threshold
 * folding keyed by (rule, client address, matched entry) with bounded,
 * preallocated state and an explicit clock, and the formatting of a record
 * as one JSON object, native (dnsink.yml(5), ALERT RECORDS) or OCSF DNS Activity.
 * Nothing here does I/O; the sinks live in alert_sink.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include <ldns/ldns.h>

#include "dk_build.h"
#include "dnsink/alert.h"
#include "dnsink/msg.h"
#include "dnsink/name.h"
#include "dnsink/policy.h"

/*
 * The ring.
 *
 * Slots are published with a release store of tail and consumed with a
 * release store of head; each side reads the other's index with acquire, so
 * a slot's contents are visible before its index moves. Indexes grow without
 * bound and are masked on use, so full is "tail - head > mask".
 */

void dk_alert_event_copy(struct dk_alert_event *dst, const struct dk_alert_event *src)
{
	memcpy(dst, src, offsetof(struct dk_alert_event, qname));
	memcpy(dst->qname, src->qname, src->qname_len);
	if (src->target_len)
		memcpy(dst->target, src->target, src->target_len);
	dst->group_key_len = src->group_key_len;
	if (src->group_key_len) {
		size_t n = (size_t)src->group_key_len + 1;

		memcpy(dst->group_key, src->group_key,
		       n < sizeof(dst->group_key) ? n : sizeof(dst->group_key));
		dst->group_count = src->group_count;
	}
}

int dk_alert_ring_init(struct dk_alert_ring *r, size_t capacity)
{
	size_t cap = 1;

	if (capacity == 0 || capacity > (SIZE_MAX >> 2) / sizeof(*r->slots))
		return -EINVAL;
	while (cap < capacity)
		cap <<= 1;
	r->slots = calloc(cap, sizeof(*r->slots));
	if (!r->slots)
		return -ENOMEM;
	r->mask = cap - 1;
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, 0);
	atomic_init(&r->dropped, 0);
	return 0;
}

void dk_alert_ring_deinit(struct dk_alert_ring *r)
{
	if (!r)
		return;
	free(r->slots);
	r->slots = NULL;
	r->mask = 0;
}

size_t dk_alert_ring_used(const struct dk_alert_ring *r)
{
	/* Either side may call this: both indexes are read atomically. */
	size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	size_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);

	return tail - head;
}

bool dk_alert_ring_push(struct dk_alert_ring *r, const struct dk_alert_event *ev, bool *was_empty)
{
	size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	size_t head = atomic_load_explicit(&r->head, memory_order_acquire);

	if (was_empty)
		*was_empty = false;
	if (tail - head > r->mask) {
		atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
		return false;
	}
	dk_alert_event_copy(&r->slots[tail & r->mask], ev);
	atomic_store_explicit(&r->tail, tail + 1, memory_order_release);

	/*
	 * Whether to wake the consumer is decided after publishing, against a
	 * fresh head: with a full fence on both sides (here and in pop, between
	 * its head store and its tail load) either the consumer sees our slot or
	 * we see that it had caught up with us and may be asleep. Reading head
	 * before the publish instead could miss a consumer that drained the
	 * ring in between and went to sleep.
	 */
	if (was_empty) {
		atomic_thread_fence(memory_order_seq_cst);
		head = atomic_load_explicit(&r->head, memory_order_relaxed);
		*was_empty = head == tail;
	}
	return true;
}

const struct dk_alert_event *dk_alert_ring_peek(struct dk_alert_ring *r)
{
	size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	size_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);

	if (head == tail) {
		/* The other half of the fence pair described in push. */
		atomic_thread_fence(memory_order_seq_cst);
		tail = atomic_load_explicit(&r->tail, memory_order_acquire);
		if (head == tail)
			return NULL;
	}
	return &r->slots[head & r->mask];
}

bool dk_alert_ring_pop(struct dk_alert_ring *r, struct dk_alert_event *out)
{
	const struct dk_alert_event *e = dk_alert_ring_peek(r);

	if (!e)
		return false;
	dk_alert_event_copy(out, e);
	/* Only now may the producer reuse the slot. */
	atomic_store_explicit(&r->head, atomic_load_explicit(&r->head, memory_order_relaxed) + 1,
	                      memory_order_release);
	return true;
}

/*
 * Dedup.
 *
 * Keys live in a pool allocated once and handed out in order as first needed;
 * a closed key sits on a singly linked free list through hnext and is reused
 * before the pool is touched further. Live keys are chained in hash buckets (hnext) and in one
 * doubly linked list in creation order (prev/next), oldest first, which is the
 * eviction order. Each key keeps a copy of the latest event of its window so a
 * follow-up record can be written after the worker's slot is long reused.
 */

struct dedup_key {
	struct dedup_key *hnext;
	struct dedup_key *prev, *next;
	struct dk_policy *policy; /* reference held while the key is open */
	uint64_t hash;
	uint64_t window_end;      /* clock time the window closes */
	uint64_t count;           /* events seen in the window */
	uint64_t reported;        /* of them, already covered by a record */
	uint64_t pend_first_ms;   /* event time of the first unreported event */
	struct dk_alert_event ev; /* the latest event */
};

struct dk_dedup {
	size_t max_keys;
	size_t n;
	size_t mask; /* buckets - 1 */
	struct dedup_key **buckets;
	struct dedup_key *pool;
	size_t pool_used; /* keys of the pool ever handed out */
	struct dedup_key *free;
	struct dedup_key *oldest, *newest;
	uint64_t seed;
	uint64_t next_expiry; /* earliest window_end; UINT64_MAX when none */
};

struct dk_dedup *dk_dedup_new(size_t max_keys)
{
	struct dk_dedup *d = calloc(1, sizeof(*d));
	size_t nb = 16;

	if (!d)
		return NULL;
	if (max_keys == 0)
		max_keys = 1;
	while (nb < max_keys * 2 && nb < (SIZE_MAX >> 2))
		nb <<= 1;
	d->max_keys = max_keys;
	d->mask = nb - 1;
	d->buckets = calloc(nb, sizeof(*d->buckets));
	d->pool = calloc(max_keys, sizeof(*d->pool));
	if (!d->buckets || !d->pool)
		goto fail;
	/*
	 * Clients choose their addresses and query names, so the bucket index
	 * is seeded: chains cannot be lengthened on purpose without the seed.
	 */
	if (getrandom(&d->seed, sizeof(d->seed), GRND_NONBLOCK) != sizeof(d->seed))
		d->seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)d;
	d->next_expiry = UINT64_MAX;
	return d;
fail:
	free(d->buckets);
	free(d->pool);
	free(d);
	return NULL;
}

void dk_dedup_free(struct dk_dedup *d)
{
	if (!d)
		return;
	for (struct dedup_key *k = d->oldest; k; k = k->next)
		dk_policy_unref(k->policy);
	free(d->buckets);
	free(d->pool);
	free(d);
}

size_t dk_dedup_size(const struct dk_dedup *d)
{
	return d->n;
}

static uint64_t hash_bytes(uint64_t h, const uint8_t *p, size_t n)
{
	while (n >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		h = dk_hash_mix64(h ^ w) + 0x9e3779b97f4a7c15ULL;
		p += 8;
		n -= 8;
	}
	uint64_t w = 0;

	for (size_t i = 0; i < n; i++)
		w |= (uint64_t)p[i] << (8 * i);
	/* The last partial word also carries its length, so "a" and "a\0" differ. */
	return dk_hash_mix64(h ^ w ^ ((uint64_t)n << 56));
}

/* The matched entry: the suffix of the matched name where the entry starts. */
static void event_entry(const struct dk_alert_event *ev, const uint8_t **entry, size_t *len)
{
	const uint8_t *name = ev->target_len ? ev->target : ev->qname;
	size_t n = ev->target_len ? ev->target_len : ev->qname_len;
	size_t off = ev->matched_off < n ? ev->matched_off : n;

	*entry = name + off;
	*len = n - off;
}

static size_t addr_len(const struct dk_alert_event *ev)
{
	return ev->family == AF_INET6 ? 16 : 4;
}

static uint64_t event_hash(const struct dk_dedup *d, const struct dk_alert_event *ev)
{
	const uint8_t *entry;
	size_t len;
	uint64_t h = d->seed;
	uintptr_t rule = (uintptr_t)ev->rule;

	event_entry(ev, &entry, &len);
	h = hash_bytes(h, (const uint8_t *)&rule, sizeof(rule));
	uint8_t fw[2] = {ev->family, ev->wildcard};

	h = hash_bytes(h, fw, sizeof(fw));
	h = hash_bytes(h, ev->addr, addr_len(ev));
	return hash_bytes(h, entry, len);
}

static bool key_matches(const struct dedup_key *k, uint64_t h, const struct dk_alert_event *ev)
{
	const uint8_t *e1, *e2;
	size_t l1, l2;

	if (k->hash != h || k->ev.rule != ev->rule || k->ev.family != ev->family ||
	    k->ev.wildcard != ev->wildcard || memcmp(k->ev.addr, ev->addr, addr_len(ev)) != 0)
		return false;
	event_entry(&k->ev, &e1, &l1);
	event_entry(ev, &e2, &l2);
	return l1 == l2 && memcmp(e1, e2, l1) == 0;
}

static void key_unlink(struct dk_dedup *d, struct dedup_key *k)
{
	struct dedup_key **pp = &d->buckets[k->hash & d->mask];

	while (*pp != k)
		pp = &(*pp)->hnext;
	*pp = k->hnext;
	if (k->prev)
		k->prev->next = k->next;
	else
		d->oldest = k->next;
	if (k->next)
		k->next->prev = k->prev;
	else
		d->newest = k->prev;
	d->n--;
}

/*
 * Closes window @k: a record for the events no record covered yet goes out
 * when a first record did (the follow-up), or when the key is evicted for
 * room, which must not hide events even below the threshold. Below the
 * threshold at the natural end of a window nothing is due: that is what a
 * threshold means.
 */
static void key_close(struct dk_dedup *d, struct dedup_key *k, bool evicted, dk_alert_emit_fn emit,
                      void *ctx)
{
	uint64_t unreported = k->count - k->reported;

	key_unlink(d, k);
	if (unreported > 0 && (k->reported > 0 || evicted) && emit) {
		struct dk_alert_record rec = {
		        .ev = &k->ev,
		        .count = unreported,
		        .first_seen_ms = k->pend_first_ms,
		        .last_seen_ms = k->ev.time_ms,
		        .followup = k->reported > 0,
		        .evicted = evicted,
		};
		emit(&rec, ctx);
	}
	dk_policy_unref(k->policy);
	k->policy = NULL;
	k->hnext = d->free;
	d->free = k;
}

bool dk_dedup_event(struct dk_dedup *d, const struct dk_alert_event *ev, uint64_t now_ms,
                    dk_alert_emit_fn emit, void *ctx)
{
	const struct dk_rule *rule = ev->rule;

	/* Workers do not post these; stay safe if one does. */
	if (!rule || !rule->alert || ev->action == DK_ACTION_ALLOW)
		return true;
	if (rule->dedup_minutes == 0) {
		struct dk_alert_record rec = {
		        .ev = ev,
		        .count = 1,
		        .first_seen_ms = ev->time_ms,
		        .last_seen_ms = ev->time_ms,
		};
		emit(&rec, ctx);
		return true;
	}

	uint64_t threshold = rule->threshold ? rule->threshold : 1;
	uint64_t h = event_hash(d, ev);
	struct dedup_key *k = d->buckets[h & d->mask];

	while (k && !key_matches(k, h, ev))
		k = k->hnext;
	if (k && now_ms >= k->window_end) {
		key_close(d, k, false, emit, ctx);
		k = NULL;
	}
	if (k) {
		k->count++;
		if (k->count - k->reported == 1)
			k->pend_first_ms = ev->time_ms;
		dk_alert_event_copy(&k->ev, ev);
	} else {
		if (d->n == d->max_keys)
			key_close(d, d->oldest, true, emit, ctx);
		/*
		 * Closed keys are reused first; the pool is handed out in order
		 * only after, so its pages (max_keys of ~640 octets, 40 MiB at the
		 * default) become resident only as far as keys were ever open.
		 */
		if (d->free) {
			k = d->free;
			d->free = k->hnext;
		} else {
			k = &d->pool[d->pool_used++];
		}
		k->hash = h;
		k->policy = ev->policy ? dk_policy_ref(ev->policy) : NULL;
		k->window_end = now_ms + (uint64_t)rule->dedup_minutes * 60000;
		k->count = 1;
		k->reported = 0;
		k->pend_first_ms = ev->time_ms;
		dk_alert_event_copy(&k->ev, ev);
		k->hnext = d->buckets[h & d->mask];
		d->buckets[h & d->mask] = k;
		k->next = NULL;
		k->prev = d->newest;
		if (d->newest)
			d->newest->next = k;
		else
			d->oldest = k;
		d->newest = k;
		d->n++;
		if (k->window_end < d->next_expiry)
			d->next_expiry = k->window_end;
	}
	if (k->reported == 0 && k->count >= threshold) {
		struct dk_alert_record rec = {
		        .ev = &k->ev,
		        .count = k->count,
		        .first_seen_ms = k->pend_first_ms,
		        .last_seen_ms = ev->time_ms,
		};
		k->reported = k->count;
		emit(&rec, ctx);
		return true;
	}
	return false;
}

void dk_dedup_tick(struct dk_dedup *d, uint64_t now_ms, dk_alert_emit_fn emit, void *ctx)
{
	uint64_t next = UINT64_MAX;

	/*
	 * Windows of different rules have different lengths, so creation order
	 * is not expiry order and the whole list is walked; next_expiry makes
	 * the ticks between expiries free.
	 */
	if (now_ms < d->next_expiry)
		return;
	for (struct dedup_key *k = d->oldest, *nk; k; k = nk) {
		nk = k->next;
		if (now_ms >= k->window_end)
			key_close(d, k, false, emit, ctx);
		else if (k->window_end < next)
			next = k->window_end;
	}
	d->next_expiry = next;
}

void dk_dedup_flush(struct dk_dedup *d, dk_alert_emit_fn emit, void *ctx)
{
	while (d->oldest)
		key_close(d, d->oldest, false, emit, ctx);
	d->next_expiry = UINT64_MAX;
}

/*
 * Formatting. A small writer appends into the caller's buffer and remembers
 * overflow, so the format functions read as the record they write.
 */

struct jw {
	char *p;
	size_t size;
	size_t len;
	bool over;
};

static void jw_raw(struct jw *w, const char *s, size_t n)
{
	if (w->over || n >= w->size - w->len) {
		w->over = true;
		return;
	}
	memcpy(w->p + w->len, s, n);
	w->len += n;
}

static void jw_lit(struct jw *w, const char *s)
{
	jw_raw(w, s, strlen(s));
}

/*
 * Writes @s as a JSON string, quotes included. Octets >= 0x80 pass as UTF-8.
 * Runs of octets that need no escape (nearly all of a record) are copied at
 * once rather than one jw_raw() each.
 */
/* Octets a JSON string cannot carry as they are: controls, DEL, quote, backslash. */
static const bool jw_escaped[256] = {
        [0 ... 0x1f] = true,
        ['"'] = true,
        ['\\'] = true,
        [0x7f] = true,
};

static void jw_str(struct jw *w, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *c = (const unsigned char *)(s ? s : "");

	jw_raw(w, "\"", 1);
	for (;;) {
		const unsigned char *run = c;
		char esc[6];

		while (!jw_escaped[*c])
			c++;
		if (c > run)
			jw_raw(w, (const char *)run, (size_t)(c - run));
		if (!*c)
			break;
		switch (*c) {
		case '"': jw_raw(w, "\\\"", 2); break;
		case '\\': jw_raw(w, "\\\\", 2); break;
		case '\n': jw_raw(w, "\\n", 2); break;
		case '\r': jw_raw(w, "\\r", 2); break;
		case '\t': jw_raw(w, "\\t", 2); break;
		default:
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[*c >> 4];
			esc[5] = hex[*c & 15];
			jw_raw(w, esc, 6);
		}
		c++;
	}
	jw_raw(w, "\"", 1);
}

/* Decimal digits by hand: records are formatted at the alert rate, printf is slow. */
static void jw_u64(struct jw *w, uint64_t v)
{
	char t[20];
	size_t n = sizeof(t);

	do
		t[--n] = (char)('0' + v % 10);
	while ((v /= 10));
	jw_raw(w, t + n, sizeof(t) - n);
}

static void jw_key_str(struct jw *w, const char *key, const char *val)
{
	jw_raw(w, "\"", 1);
	jw_lit(w, key);
	jw_raw(w, "\":", 2);
	jw_str(w, val);
}

static void put_digits(char *p, unsigned v, int n)
{
	while (n-- > 0) {
		p[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

int dk_alert_time_text(uint64_t ms, char out[DK_ALERT_TIME_LEN + 1])
{
	/* The calendar part changes once a second: keep it per thread. */
	static _Thread_local struct {
		uint64_t sec;
		bool valid;
		char txt[19];
	} cache;
	uint64_t sec = ms / 1000;

	if (!cache.valid || cache.sec != sec) {
		time_t t = (time_t)sec;
		struct tm tm;
		if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0)
			return DK_ESPACE;
		put_digits(cache.txt, (unsigned)(tm.tm_year + 1900), 4);
		cache.txt[4] = '-';
		put_digits(cache.txt + 5, (unsigned)tm.tm_mon + 1, 2);
		cache.txt[7] = '-';
		put_digits(cache.txt + 8, (unsigned)tm.tm_mday, 2);
		cache.txt[10] = 'T';
		put_digits(cache.txt + 11, (unsigned)tm.tm_hour, 2);
		cache.txt[13] = ':';
		put_digits(cache.txt + 14, (unsigned)tm.tm_min, 2);
		cache.txt[16] = ':';
		put_digits(cache.txt + 17, (unsigned)tm.tm_sec, 2);
		cache.sec = sec;
		cache.valid = true;
	}
	memcpy(out, cache.txt, sizeof(cache.txt));
	out[19] = '.';
	put_digits(out + 20, (unsigned)(ms % 1000), 3);
	out[23] = 'Z';
	out[24] = '\0';
	return DK_ALERT_TIME_LEN;
}

static void jw_time(struct jw *w, uint64_t ms)
{
	char t[DK_ALERT_TIME_LEN + 1];

	if (dk_alert_time_text(ms, t) < 0) {
		w->over = true;
		return;
	}
	jw_raw(w, "\"", 1);
	jw_raw(w, t, DK_ALERT_TIME_LEN);
	jw_raw(w, "\"", 1);
}

static void jw_mitre(struct jw *w, const struct dk_rule *rule)
{
	jw_raw(w, "[", 1);
	for (size_t i = 0; i < rule->n_mitre; i++) {
		if (i)
			jw_raw(w, ",", 1);
		jw_str(w, rule->mitre[i]);
	}
	jw_raw(w, "]", 1);
}

/* Text forms of the event's names, ready for jw_str(). */
struct event_text {
	char ip[INET6_ADDRSTRLEN];
	char qname[DK_NAME_MAX * 4 + 8];
	char target[DK_NAME_MAX * 4 + 8];
	char matched[DK_NAME_MAX * 4 + 8];
	char qtype[16];
};

static void event_text(const struct dk_alert_event *ev, struct event_text *t)
{
	const uint8_t *name = ev->target_len ? ev->target : ev->qname;
	size_t len = ev->target_len ? ev->target_len : ev->qname_len;
	struct dk_verdict v = {
	        .rule = ev->rule,
	        .matched_off = ev->matched_off,
	        .wildcard = ev->wildcard,
	};

	/* No family: a log that names no client (`dnsink hunt` on Sysmon events). */
	if (ev->family == AF_UNSPEC ||
	    !inet_ntop(ev->family == AF_INET6 ? AF_INET6 : AF_INET, ev->addr, t->ip, sizeof(t->ip)))
		t->ip[0] = '\0';
	/* A name that does not convert is a bug upstream; an empty field shows it. */
	if (dk_name_to_text(ev->qname, ev->qname_len, t->qname, sizeof(t->qname)) < 0)
		t->qname[0] = '\0';
	t->target[0] = '\0';
	if (ev->target_len &&
	    dk_name_to_text(ev->target, ev->target_len, t->target, sizeof(t->target)) < 0)
		t->target[0] = '\0';
	if (dk_verdict_entry_text(&v, name, len, t->matched, sizeof(t->matched)) < 0)
		t->matched[0] = '\0';
	/* Type 0: a log that did not say (`dnsink hunt`); the daemon always knows. */
	if (ev->qtype)
		dk_rrtype_name(ev->qtype, t->qtype, sizeof(t->qtype));
	else
		t->qtype[0] = '\0';
}

static const char *const rcode_names[] = {
        [LDNS_RCODE_NOERROR] = "NOERROR",   [LDNS_RCODE_FORMERR] = "FORMERR",
        [LDNS_RCODE_SERVFAIL] = "SERVFAIL", [LDNS_RCODE_NXDOMAIN] = "NXDOMAIN",
        [LDNS_RCODE_NOTIMPL] = "NOTIMP",    [LDNS_RCODE_REFUSED] = "REFUSED",
        [LDNS_RCODE_YXDOMAIN] = "YXDOMAIN", [LDNS_RCODE_YXRRSET] = "YXRRSET",
        [LDNS_RCODE_NXRRSET] = "NXRRSET",   [LDNS_RCODE_NOTAUTH] = "NOTAUTH",
        [LDNS_RCODE_NOTZONE] = "NOTZONE",
};

static int format_native(const struct dk_alert_record *rec, const struct event_text *t,
                         struct jw *w)
{
	const struct dk_alert_event *ev = rec->ev;
	const struct dk_rule *rule = ev->rule;

	jw_lit(w, "{\"time\":");
	jw_time(w, rec->followup ? rec->last_seen_ms : ev->time_ms);
	jw_raw(w, ",", 1);
	jw_key_str(w, "rule_id", rule->id);
	jw_raw(w, ",", 1);
	jw_key_str(w, "rule_name", rule->name);
	jw_raw(w, ",", 1);
	jw_key_str(w, "severity", dk_severity_name(rule->severity));
	jw_lit(w, ",\"mitre\":");
	jw_mitre(w, rule);
	jw_raw(w, ",", 1);
	jw_key_str(w, "action", dk_action_name((enum dk_action)ev->action));
	jw_raw(w, ",", 1);
	jw_key_str(w, "group", ev->group ? ev->group : "default");
	jw_raw(w, ",", 1);
	jw_key_str(w, "source_ip", t->ip);
	jw_lit(w, ",\"source_port\":");
	jw_u64(w, ev->port);
	jw_lit(w, ev->transport == DK_TRANSPORT_HTTPS ? ",\"transport\":\"https\","
	          : ev->transport == DK_TRANSPORT_TLS ? ",\"transport\":\"tls\","
	          : ev->transport == DK_TRANSPORT_TCP ? ",\"transport\":\"tcp\","
	                                              : ",\"transport\":\"udp\",");
	jw_key_str(w, "dns_query", t->qname);
	jw_raw(w, ",", 1);
	jw_key_str(w, "qtype", t->qtype);
	jw_raw(w, ",", 1);
	jw_key_str(w, "matched", t->matched);
	jw_lit(w, ",\"count\":");
	jw_u64(w, rec->count);
	jw_lit(w, ",\"first_seen\":");
	jw_time(w, rec->first_seen_ms);
	jw_lit(w, ",\"last_seen\":");
	jw_time(w, rec->last_seen_ms);
	if (ev->rcode < DK_ARRAY_SIZE(rcode_names)) {
		jw_lit(w, ",\"rcode\":\"");
		jw_lit(w, rcode_names[ev->rcode]);
		jw_raw(w, "\"", 1);
	} else {
		jw_lit(w, ",\"rcode\":\"RCODE");
		jw_u64(w, ev->rcode);
		jw_raw(w, "\"", 1);
	}
	if (ev->target_len) {
		jw_raw(w, ",", 1);
		jw_key_str(w, "cname_target", t->target);
	}
	if (rule->sigma) {
		/* A Sigma rule's references point the analyst at why it exists. */
		jw_lit(w, ",\"references\":[");
		for (size_t i = 0; i < rule->n_references; i++) {
			if (i)
				jw_raw(w, ",", 1);
			jw_str(w, rule->references[i]);
		}
		jw_raw(w, "]", 1);
	}
	if (ev->group_key_len) {
		jw_raw(w, ",", 1);
		jw_key_str(w, "group_key", ev->group_key);
		jw_lit(w, ",\"group_count\":");
		jw_u64(w, ev->group_count);
	}
	jw_lit(w, rec->followup ? ",\"followup\":true" : ",\"followup\":false");
	if (rec->evicted)
		jw_lit(w, ",\"evicted\":true");
	jw_raw(w, "}", 1);
	return 0;
}

/* OCSF rcode captions (rcode_id 0..10); anything else is 99 Other. */
static const char *const ocsf_rcodes[] = {
        [LDNS_RCODE_NOERROR] = "NoError",    [LDNS_RCODE_FORMERR] = "FormError",
        [LDNS_RCODE_SERVFAIL] = "ServError", [LDNS_RCODE_NXDOMAIN] = "NXDomain",
        [LDNS_RCODE_NOTIMPL] = "NotImp",     [LDNS_RCODE_REFUSED] = "Refused",
        [LDNS_RCODE_YXDOMAIN] = "YXDomain",  [LDNS_RCODE_YXRRSET] = "YXRRSet",
        [LDNS_RCODE_NXRRSET] = "NXRRSet",    [LDNS_RCODE_NOTAUTH] = "NotAuth",
        [LDNS_RCODE_NOTZONE] = "NotZone",
};

static const char *const ocsf_severities[] = {
        "Informational", "Low", "Medium", "High", "Critical",
};

static int format_ocsf(const struct dk_alert_record *rec, const struct event_text *t, struct jw *w)
{
	const struct dk_alert_event *ev = rec->ev;
	const struct dk_rule *rule = ev->rule;
	unsigned sev = rule->severity < DK_ARRAY_SIZE(ocsf_severities) ? rule->severity : 0;
	bool blocked = ev->action == DK_ACTION_SINKHOLE || ev->action == DK_ACTION_NXDOMAIN ||
	               ev->action == DK_ACTION_REFUSED;
	unsigned disp_id;
	const char *disp;
	/* DNS over TLS runs on TCP too. */
	bool tcp = ev->transport != DK_TRANSPORT_UDP;

	if (blocked) {
		disp_id = 2;
		disp = "Blocked";
	} else if (ev->action == DK_ACTION_ALERT) {
		disp_id = 19;
		disp = "Alert";
	} else {
		disp_id = 1;
		disp = "Allowed";
	}
	/*
	 * Key order is fixed: classification first, then time, outcome, the
	 * DNS query, endpoints, metadata, and dnsink's own rule fields.
	 */
	jw_lit(w, "{\"class_uid\":4003,\"class_name\":\"DNS Activity\",\"category_uid\":4,"
	          "\"category_name\":\"Network Activity\",\"activity_id\":1,"
	          "\"activity_name\":\"Query\",\"type_uid\":400301,"
	          "\"type_name\":\"DNS Activity: Query\"");
	jw_lit(w, ",\"time\":");
	jw_u64(w, rec->followup ? rec->last_seen_ms : ev->time_ms);
	jw_lit(w, ",\"severity_id\":");
	jw_u64(w, sev + 1);
	jw_lit(w, ",\"severity\":\"");
	jw_lit(w, ocsf_severities[sev]);
	jw_lit(w, blocked ? "\",\"action_id\":2,\"action\":\"Denied\""
	                  : "\",\"action_id\":1,\"action\":\"Allowed\"");
	jw_lit(w, ",\"disposition_id\":");
	jw_u64(w, disp_id);
	jw_lit(w, ",\"disposition\":\"");
	jw_lit(w, disp);
	jw_lit(w, "\",\"count\":");
	jw_u64(w, rec->count);
	jw_lit(w, ",\"start_time\":");
	jw_u64(w, rec->first_seen_ms);
	jw_lit(w, ",\"end_time\":");
	jw_u64(w, rec->last_seen_ms);
	jw_lit(w, ",\"query\":{\"hostname\":");
	jw_str(w, t->qname);
	jw_lit(w, ",\"type\":");
	jw_str(w, t->qtype);
	jw_lit(w, ",\"class\":\"IN\"}");
	if (ev->rcode < DK_ARRAY_SIZE(ocsf_rcodes)) {
		jw_lit(w, ",\"rcode_id\":");
		jw_u64(w, ev->rcode);
		jw_lit(w, ",\"rcode\":\"");
		jw_lit(w, ocsf_rcodes[ev->rcode]);
		jw_raw(w, "\"", 1);
	} else {
		jw_lit(w, ",\"rcode_id\":99,\"rcode\":\"Other\"");
	}
	jw_lit(w, ",\"src_endpoint\":{\"ip\":");
	jw_str(w, t->ip);
	jw_lit(w, ",\"port\":");
	jw_u64(w, ev->port);
	/* OCSF wants the IANA protocol keyword, which is lowercase. */
	jw_lit(w, tcp ? "},\"connection_info\":{\"protocol_name\":\"tcp\",\"protocol_num\":6,"
	              : "},\"connection_info\":{\"protocol_name\":\"udp\",\"protocol_num\":17,");
	jw_lit(w, "\"direction_id\":1,\"direction\":\"Inbound\"}");
	jw_lit(w, ",\"metadata\":{\"version\":\"1.1.0\",\"profiles\":[\"security_control\"],"
	          "\"product\":{\"name\":\"dnsink\",\"vendor_name\":\"dnsink\",\"version\":"
	          "\"" DK_VERSION "\"}}");
	jw_lit(w, ",\"unmapped\":{");
	jw_key_str(w, "rule_id", rule->id);
	jw_raw(w, ",", 1);
	jw_key_str(w, "rule_name", rule->name);
	jw_lit(w, ",\"mitre\":");
	jw_mitre(w, rule);
	jw_raw(w, ",", 1);
	jw_key_str(w, "dnsink_action", dk_action_name((enum dk_action)ev->action));
	jw_raw(w, ",", 1);
	jw_key_str(w, "group", ev->group ? ev->group : "default");
	jw_raw(w, ",", 1);
	jw_key_str(w, "matched", t->matched);
	if (ev->target_len) {
		jw_raw(w, ",", 1);
		jw_key_str(w, "cname_target", t->target);
	}
	jw_lit(w, ",\"count\":");
	jw_u64(w, rec->count);
	jw_lit(w, rec->followup ? ",\"followup\":true" : ",\"followup\":false");
	if (rec->evicted)
		jw_lit(w, ",\"evicted\":true");
	jw_lit(w, "}}");
	return 0;
}

int dk_alert_format(const struct dk_alert_record *rec, enum dk_alert_format fmt, char *buf,
                    size_t size)
{
	struct event_text t;
	struct jw w = {.p = buf, .size = size};

	if (!rec || !rec->ev || !rec->ev->rule || !buf || size == 0)
		return size == 0 ? DK_ESPACE : -EINVAL;
	event_text(rec->ev, &t);
	if (fmt == DK_ALERT_FORMAT_OCSF)
		format_ocsf(rec, &t, &w);
	else
		format_native(rec, &t, &w);
	if (w.over) {
		buf[0] = '\0';
		return DK_ESPACE;
	}
	buf[w.len] = '\0';
	return (int)w.len;
}
