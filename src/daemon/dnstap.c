/* SPDX-License-Identifier: MIT */
/*
 * dnstap out (see dnstap.h). Each worker owns a ring of fixed slots that
 * only it fills and only the writer thread empties (single producer, single
 * consumer, ordered by a release store of the index each side owns and an
 * acquire load of the other's). The writer thread polls the rings, writes
 * what they hold with one writev() each through libfstrm's writer (Frame
 * Streams framing, the content type, the unix socket or file), and gives
 * the slots back. A full ring loses the message (counted), never waits.
 *
 * Why not libfstrm's I/O thread (fstrm_iothr): it is woken by a signal sent
 * only when a queue's fill level hits one exact value, without its lock;
 * here that wake-up was missed so often that the thread mostly waited out
 * its one-second timeout, and 87% of the messages were lost at 2,000
 * queries a second. Polling each millisecond misses no wake-up, and a
 * worker makes no system call for dnstap at all.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include <fstrm.h>

#include "dk_build.h"
#include "dnsink/name.h"
#include "dnsink/policy.h"
#include "dnstap.h"
#include "log.h"

#include "dnstap.pb-c.h"

#define CONTENT_TYPE "protobuf:dnstap.Dnstap"
/** Largest encoded message; a larger one (a big TCP answer) is counted lost. */
#define SLOT_SIZE 8192
/** Alerts whose answer is still to come, per worker: enough for forwards in flight. */
#define NOTES     64
#define EXTRA_MAX 700
/** Messages per write (one writev()). */
#define BATCH 256
/** The writer thread's nap when every ring is empty. */
#define IDLE_NS 1000000L

/** One encoded message, waiting for the writer thread. */
struct slot {
	uint32_t len;
	uint8_t buf[SLOT_SIZE];
};

/**
 * A worker's queue: single producer (the worker), single consumer (the
 * writer thread). The worker fills slots[tail % n] and publishes it by
 * advancing tail (release); the writer writes slots head..tail and gives
 * them back by advancing head (release). Full is tail - head == n.
 */
struct ring {
	_Atomic size_t tail;
	char pad1[64 - sizeof(size_t)];
	_Atomic size_t head;
	char pad2[64 - sizeof(size_t)];
	size_t n;
	struct slot *slots;
};

struct dk_dnstap {
	struct fstrm_writer *writer;
	bool opened;           /**< writer thread only, once it runs */
	uint64_t last_open_ns; /**< the last try to open, 0: none yet */
	char *where;           /**< the socket or file, for the log */
	pthread_t thread;
	bool thread_started;
	_Atomic bool stop;
	char *identity;
	size_t identity_len;
	unsigned n_queues, taken;
	struct ring *rings;       /**< one per worker; here, as the writer reads them */
	_Atomic uint64_t written; /**< by the writer thread */
	_Atomic uint64_t dropped; /**< discarded by the writer while no receiver was there */
	uint64_t dropped_logged, last_log_ns;
};

/** A client handle's operations, wrapped so the answer is logged on its way out. */
struct tap_ops {
	struct dk_client_ops ops; /**< first: a handle's ops pointer points here */
	const struct dk_client_ops *orig;
	struct dk_dnstap_worker *tw;
};

/** The verdict of an alert, kept until the answer it belongs to goes out. */
struct note {
	bool used;
	uint8_t family;
	uint16_t port;
	uint8_t addr[16];
	uint8_t qname_len;
	uint8_t qname[DK_NAME_MAX];
	bool has_target; /**< the alert was on an answer target */
	uint16_t extra_len;
	char extra[EXTRA_MAX];
};

struct dk_dnstap_worker {
	struct dk_dnstap *t;
	struct ring *ring;
	dk_query_fn *next;
	void *next_ctx;
	struct tap_ops wrapped[4];
	unsigned n_wrapped;
	struct note notes[NOTES];
	unsigned note_next;
	_Atomic uint64_t sent, lost; /**< single writer: this worker */
	uint64_t lost_logged;
	uint64_t last_log_ns;
};

/* The writer thread. */

/* Opens the writer when it is closed and a second has passed since the last try. */
static void maybe_open(struct dk_dnstap *t)
{
	uint64_t now = dk_mono_ns();

	if (t->opened || (t->last_open_ns && now - t->last_open_ns < 1000000000ULL))
		return;
	t->last_open_ns = now;
	if (fstrm_writer_open(t->writer) == fstrm_res_success) {
		t->opened = true;
		dk_log(DK_LOG_INFO, "dnstap: writing client queries and answers to %s", t->where);
	}
}

/* Writes (or, with no receiver, drops) what ring @p r holds; returns how many. */
static size_t drain(struct dk_dnstap *t, struct ring *r)
{
	struct iovec iov[BATCH];
	size_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
	size_t avail = atomic_load_explicit(&r->tail, memory_order_acquire) - h;
	size_t k = avail < BATCH ? avail : BATCH;

	if (!k)
		return 0;
	for (size_t i = 0; i < k; i++) {
		struct slot *s = &r->slots[(h + i) % r->n];
		iov[i].iov_base = s->buf;
		iov[i].iov_len = s->len;
	}
	if (t->opened && fstrm_writer_writev(t->writer, iov, (int)k) != fstrm_res_success) {
		/* The receiver went away: try it again in a second. */
		fstrm_writer_close(t->writer);
		t->opened = false;
		dk_log(DK_LOG_WARN, "dnstap: %s: write failed; trying again every second",
		       t->where);
	}
	if (t->opened)
		atomic_fetch_add_explicit(&t->written, k, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&t->dropped, k, memory_order_relaxed);
	atomic_store_explicit(&r->head, h + k, memory_order_release);
	return k;
}

static void log_dropped(struct dk_dnstap *t, bool force)
{
	uint64_t now = dk_mono_ns();
	uint64_t d = atomic_load_explicit(&t->dropped, memory_order_relaxed);

	if (d > t->dropped_logged && (force || now - t->last_log_ns >= 1000000000ULL)) {
		dk_log(DK_LOG_WARN, "dnstap: %llu messages dropped: no receiver on %s",
		       (unsigned long long)(d - t->dropped_logged), t->where);
		t->dropped_logged = d;
		t->last_log_ns = now;
	}
}

/*
 * Polls the rings rather than being woken: a worker then never makes a
 * system call for dnstap, and an idle writer costs a wake-up a millisecond.
 */
static void *writer_main(void *arg)
{
	struct dk_dnstap *t = arg;

	for (;;) {
		bool stopping = atomic_load_explicit(&t->stop, memory_order_acquire);
		size_t total = 0;

		maybe_open(t);
		for (unsigned i = 0; i < t->n_queues; i++)
			total += drain(t, &t->rings[i]);
		log_dropped(t, false);
		if (total)
			continue;
		if (stopping)
			break;
		struct timespec ts = {0, IDLE_NS};
		nanosleep(&ts, NULL);
	}
	log_dropped(t, true);
	if (t->opened)
		fstrm_writer_close(t->writer);
	return NULL;
}

static void free_rings(struct dk_dnstap *t)
{
	for (unsigned i = 0; t->rings && i < t->n_queues; i++)
		free(t->rings[i].slots);
	free(t->rings);
}

int dk_dnstap_new(const struct dk_config *cfg, unsigned n_workers, struct dk_dnstap **out)
{
	const char *sock = cfg->dnstap.socket, *file = cfg->dnstap.file;
	struct fstrm_writer_options *wopt = NULL;
	struct fstrm_unix_writer_options *uopt = NULL;
	struct fstrm_file_options *fopt = NULL;
	struct dk_dnstap *t;
	int rc = -ENOMEM;

	*out = NULL;
	if (!sock && !file)
		return 0;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->identity = strdup(cfg->dnstap.identity ? cfg->dnstap.identity : "dnsink");
	t->identity_len = t->identity ? strlen(t->identity) : 0;
	t->where = strdup(sock ? sock : file);
	t->n_queues = n_workers ? n_workers : 1;
	t->rings = calloc(t->n_queues, sizeof(*t->rings));
	for (unsigned i = 0; t->rings && i < t->n_queues; i++) {
		t->rings[i].n = cfg->dnstap.queue;
		t->rings[i].slots = calloc(cfg->dnstap.queue, sizeof(struct slot));
		if (!t->rings[i].slots)
			goto fail;
	}
	wopt = fstrm_writer_options_init();
	if (!t->identity || !t->where || !t->rings || !wopt)
		goto fail;
	fstrm_writer_options_add_content_type(wopt, CONTENT_TYPE, strlen(CONTENT_TYPE));
	if (sock) {
		uopt = fstrm_unix_writer_options_init();
		if (!uopt)
			goto fail;
		fstrm_unix_writer_options_set_socket_path(uopt, sock);
		t->writer = fstrm_unix_writer_init(uopt, wopt);
	} else {
		fopt = fstrm_file_options_init();
		if (!fopt)
			goto fail;
		fstrm_file_options_set_file_path(fopt, file);
		t->writer = fstrm_file_writer_init(fopt, wopt);
	}
	if (!t->writer) {
		rc = -EINVAL;
		goto fail;
	}
	fstrm_writer_options_destroy(&wopt);
	fstrm_unix_writer_options_destroy(&uopt);
	fstrm_file_options_destroy(&fopt);
	/* A file is opened now, so a bad path is an error at start, not a silent loss. */
	maybe_open(t);
	if (file && !t->opened) {
		rc = -EIO;
		goto fail;
	}
	if (pthread_create(&t->thread, NULL, writer_main, t) != 0) {
		rc = -EAGAIN;
		goto fail;
	}
	t->thread_started = true;
	if (!t->opened)
		dk_log(DK_LOG_WARN, "dnstap: no receiver on %s yet; trying every second", t->where);
	if (cfg->dnstap.forwarder)
		dk_log(DK_LOG_WARN, "dnstap: forwarder: true is not supported yet; only CLIENT_* "
		                    "messages are written");
	*out = t;
	return 0;
fail:
	dk_log(DK_LOG_ERR, "dnstap: cannot start a writer to %s: %s", sock ? sock : file,
	       dk_strerror(rc));
	if (t->writer) {
		if (t->opened)
			fstrm_writer_close(t->writer);
		fstrm_writer_destroy(&t->writer);
	}
	fstrm_writer_options_destroy(&wopt);
	fstrm_unix_writer_options_destroy(&uopt);
	fstrm_file_options_destroy(&fopt);
	free_rings(t);
	free(t->where);
	free(t->identity);
	free(t);
	return rc;
}

void dk_dnstap_free(struct dk_dnstap *t)
{
	if (!t)
		return;
	/* The workers are gone: the thread writes out what the rings hold, then ends. */
	atomic_store_explicit(&t->stop, true, memory_order_release);
	if (t->thread_started)
		pthread_join(t->thread, NULL);
	fstrm_writer_destroy(&t->writer);
	free_rings(t);
	free(t->where);
	free(t->identity);
	free(t);
}

struct dk_dnstap_worker *dk_dnstap_worker_new(struct dk_dnstap *t)
{
	struct dk_dnstap_worker *tw;

	/* Workers are made one after another on the main thread: taken needs no lock. */
	if (!t || t->taken == t->n_queues)
		return NULL;
	tw = calloc(1, sizeof(*tw));
	if (!tw)
		return NULL;
	tw->t = t;
	tw->ring = &t->rings[t->taken++];
	return tw;
}

void dk_dnstap_worker_free(struct dk_dnstap_worker *tw)
{
	if (!tw)
		return;
	if (tw->lost > tw->lost_logged)
		dk_log(DK_LOG_WARN, "dnstap: %llu messages lost (queue full or message too large)",
		       (unsigned long long)(tw->lost - tw->lost_logged));
	free(tw);
}

void dk_dnstap_worker_set_next(struct dk_dnstap_worker *tw, dk_query_fn *next, void *next_ctx)
{
	tw->next = next;
	tw->next_ctx = next_ctx;
}

void dk_dnstap_worker_counts(const struct dk_dnstap_worker *tw, uint64_t *sent, uint64_t *lost)
{
	*sent = atomic_load_explicit(&tw->sent, memory_order_relaxed);
	*lost = atomic_load_explicit(&tw->lost, memory_order_relaxed);
}

static void lose(struct dk_dnstap_worker *tw)
{
	uint64_t lost = atomic_load_explicit(&tw->lost, memory_order_relaxed) + 1;
	uint64_t now = dk_mono_ns();

	atomic_store_explicit(&tw->lost, lost, memory_order_relaxed);
	if (now - tw->last_log_ns >= 1000000000ULL) {
		dk_log(DK_LOG_WARN, "dnstap: %llu messages lost (queue full or message too large)",
		       (unsigned long long)(lost - tw->lost_logged));
		tw->lost_logged = lost;
		tw->last_log_ns = now;
	}
}

/* Protobuf wire format (protobuf.dev, "Encoding"): a tag is field << 3 | wire type. */
#define PB_VARINT  0
#define PB_BYTES   2
#define PB_FIXED32 5
#define TAG(f, t)  ((uint8_t)((f) << 3 | (t)))

static size_t varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static uint8_t *put_bytes(uint8_t *p, uint8_t tag, const void *data, size_t len)
{
	*p++ = tag;
	p = put_varint(p, len);
	memcpy(p, data, len);
	return p + len;
}

static uint8_t *put_fixed32(uint8_t *p, uint8_t tag, uint32_t v)
{
	*p++ = tag;
	for (int i = 0; i < 4; i++)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

/*
 * Encodes one message straight into its slot. The shape is fixed (the
 * fields of dnstap.proto a CLIENT_* message carries, in field order), so
 * this is a few stores; protobuf-c's generic packer, walking its
 * descriptors, cost about 1,000 instructions a message, most of a query's
 * budget. hunt decodes what this writes with protobuf-c, and the tests
 * read it with dnstap-ldns, so both sides of the schema are checked.
 */
static void emit(struct dk_dnstap_worker *tw, bool response, const struct dk_client *cl,
                 const uint8_t *msg, size_t len, const char *extra, size_t extra_len)
{
	static const char version[] = "dnsink " DK_VERSION;
	struct ring *r = tw->ring;
	size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	const char *id = tw->t->identity;
	size_t id_len = tw->t->identity_len;
	const uint8_t *addr;
	size_t alen;
	uint16_t port;
	struct timespec ts;

	if (tail - atomic_load_explicit(&r->head, memory_order_acquire) == r->n) {
		lose(tw);
		return;
	}
	if (cl->peer.sa.sa_family == AF_INET6) {
		addr = (const uint8_t *)&cl->peer.in6.sin6_addr;
		alen = 16;
		port = ntohs(cl->peer.in6.sin6_port);
	} else {
		addr = (const uint8_t *)&cl->peer.in4.sin_addr;
		alen = 4;
		port = ntohs(cl->peer.in4.sin_port);
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	/* Message: type, family, protocol, address, port, time (s, ns), the DNS message. */
	size_t mlen = 2 + 2 + 2 + 2 + alen + 1 + varint_len(port) + 1 +
	              varint_len((uint64_t)ts.tv_sec) + 5 + 1 + varint_len(len) + len;
	size_t total = 1 + varint_len(id_len) + id_len + 2 + sizeof(version) - 1 +
	               (extra_len ? 1 + varint_len(extra_len) + extra_len : 0) + 1 +
	               varint_len(mlen) + mlen + 2;
	if (total > SLOT_SIZE) {
		lose(tw);
		return;
	}
	struct slot *s = &r->slots[tail % r->n];
	uint8_t *p = s->buf;

	p = put_bytes(p, TAG(1, PB_BYTES), id, id_len);
	p = put_bytes(p, TAG(2, PB_BYTES), version, sizeof(version) - 1);
	if (extra_len)
		p = put_bytes(p, TAG(3, PB_BYTES), extra, extra_len);
	*p++ = TAG(14, PB_BYTES);
	p = put_varint(p, mlen);
	*p++ = TAG(1, PB_VARINT);
	*p++ = response ? DNSTAP__MESSAGE__TYPE__CLIENT_RESPONSE
	                : DNSTAP__MESSAGE__TYPE__CLIENT_QUERY;
	*p++ = TAG(2, PB_VARINT);
	*p++ = alen == 16 ? DNSTAP__SOCKET_FAMILY__INET6 : DNSTAP__SOCKET_FAMILY__INET;
	*p++ = TAG(3, PB_VARINT);
	*p++ = cl->transport == DK_TRANSPORT_TCP ? DNSTAP__SOCKET_PROTOCOL__TCP
	                                         : DNSTAP__SOCKET_PROTOCOL__UDP;
	p = put_bytes(p, TAG(4, PB_BYTES), addr, alen);
	*p++ = TAG(6, PB_VARINT);
	p = put_varint(p, port);
	/* A query carries query_time and query_message, an answer the response_ ones. */
	*p++ = response ? TAG(12, PB_VARINT) : TAG(8, PB_VARINT);
	p = put_varint(p, (uint64_t)ts.tv_sec);
	p = put_fixed32(p, response ? TAG(13, PB_FIXED32) : TAG(9, PB_FIXED32),
	                (uint32_t)ts.tv_nsec);
	p = put_bytes(p, response ? TAG(14, PB_BYTES) : TAG(10, PB_BYTES), msg, len);
	*p++ = TAG(15, PB_VARINT);
	*p++ = DNSTAP__DNSTAP__TYPE__MESSAGE;
	s->len = (uint32_t)(p - s->buf);
	if (dk_fails_assert(s->len == total)) {
		lose(tw);
		return;
	}
	atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
	atomic_store_explicit(&tw->sent, atomic_load_explicit(&tw->sent, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
}

static bool same_peer(const struct note *n, const struct dk_client *cl)
{
	if (cl->peer.sa.sa_family == AF_INET6)
		return n->family == AF_INET6 && n->port == ntohs(cl->peer.in6.sin6_port) &&
		       memcmp(n->addr, &cl->peer.in6.sin6_addr, 16) == 0;
	return n->family == AF_INET && n->port == ntohs(cl->peer.in4.sin_port) &&
	       memcmp(n->addr, &cl->peer.in4.sin_addr, 4) == 0;
}

/*
 * The note of the alert this answer belongs to (same client, same name),
 * taken off with any other for it; the one on an answer target first, as
 * that is what the answer itself no longer shows. NULL when none.
 */
static struct note *take_note(struct dk_dnstap_worker *tw, const struct dk_client *cl,
                              const uint8_t *ans, size_t len)
{
	uint8_t name[DK_NAME_MAX];
	size_t off = DK_HEADER_LEN, nlen = 0;
	bool named = false;
	struct note *best = NULL;

	for (unsigned i = 0; i < NOTES; i++) {
		struct note *n = &tw->notes[i];
		if (!n->used || !same_peer(n, cl))
			continue;
		if (!named) {
			if (len < DK_HEADER_LEN || dk_name_from_wire(ans, len, &off, name, &nlen))
				return NULL;
			named = true;
		}
		if (!dk_name_equal_nocase(name, nlen, n->qname, n->qname_len))
			continue;
		n->used = false;
		if (!best || n->has_target)
			best = n;
	}
	return best;
}

static void tap_reply(const struct dk_client *cl, const uint8_t *ans, size_t len)
{
	const struct tap_ops *t = (const struct tap_ops *)cl->ops;
	struct dk_client orig = *cl;
	struct note *n = take_note(t->tw, cl, ans, len);

	emit(t->tw, true, cl, ans, len, n ? n->extra : NULL, n ? n->extra_len : 0);
	orig.ops = t->orig;
	t->orig->reply(&orig, ans, len);
}

static void tap_hold(const struct dk_client *cl)
{
	const struct tap_ops *t = (const struct tap_ops *)cl->ops;
	struct dk_client orig = *cl;

	orig.ops = t->orig;
	t->orig->hold(&orig);
}

static void tap_done(const struct dk_client *cl)
{
	const struct tap_ops *t = (const struct tap_ops *)cl->ops;
	struct dk_client orig = *cl;

	orig.ops = t->orig;
	t->orig->done(&orig);
}

/* The wrapped ops of @p orig: one set per transport, made at its first query. */
static const struct dk_client_ops *wrap(struct dk_dnstap_worker *tw,
                                        const struct dk_client_ops *orig)
{
	for (unsigned i = 0; i < tw->n_wrapped; i++)
		if (tw->wrapped[i].orig == orig)
			return &tw->wrapped[i].ops;
	if (tw->n_wrapped == DK_ARRAY_SIZE(tw->wrapped))
		return NULL;
	struct tap_ops *t = &tw->wrapped[tw->n_wrapped++];
	t->orig = orig;
	t->tw = tw;
	t->ops.reply = tap_reply;
	t->ops.hold = orig->hold ? tap_hold : NULL;
	t->ops.done = orig->done ? tap_done : NULL;
	return &t->ops;
}

void dk_dnstap_handle(void *ctx, const struct dk_client *cl, const uint8_t *pkt, size_t len)
{
	struct dk_dnstap_worker *tw = ctx;
	struct dk_client c = *cl;
	const struct dk_client_ops *ops = wrap(tw, cl->ops);

	if (len >= DK_HEADER_LEN)
		emit(tw, false, cl, pkt, len, NULL, 0);
	if (ops)
		c.ops = ops;
	tw->next(tw->next_ctx, &c, pkt, len);
}

void dk_dnstap_note(struct dk_dnstap_worker *tw, const struct dk_alert_event *ev)
{
	struct note *n = &tw->notes[tw->note_next];
	char entry[DK_NAME_MAX * 4 + 3], target[DK_NAME_MAX * 4 + 1];
	const uint8_t *name = ev->target_len ? ev->target : ev->qname;
	size_t nlen = ev->target_len ? ev->target_len : ev->qname_len;
	struct dk_verdict v = {
	        .rule = ev->rule, .matched_off = ev->matched_off, .wildcard = ev->wildcard};

	/* Oldest first out: a note whose answer never came (dropped) is overwritten. */
	tw->note_next = (tw->note_next + 1) % NOTES;
	if (dk_verdict_entry_text(&v, name, nlen, entry, sizeof(entry)) < 0)
		entry[0] = '\0';
	target[0] = '\0';
	if (ev->target_len &&
	    dk_name_to_text(ev->target, ev->target_len, target, sizeof(target)) < 0)
		target[0] = '\0';
	/* Pieces appended by hand: snprintf() costs more than the rest of the note. */
	struct piece {
		const char *s;
		size_t n;
	} pieces[] = {
	        {"dnsink rule=", 12},
	        {ev->rule->id, strlen(ev->rule->id)},
	        {" action=", 8},
	        {dk_action_name((enum dk_action)ev->action), 0},
	        {" matched=", 9},
	        {entry, strlen(entry)},
	        {" target=", target[0] ? 8 : 0},
	        {target, strlen(target)},
	};
	size_t k = 0;
	pieces[3].n = strlen(pieces[3].s);
	for (size_t i = 0; i < DK_ARRAY_SIZE(pieces); i++) {
		if (pieces[i].n > sizeof(n->extra) - k)
			return;
		memcpy(n->extra + k, pieces[i].s, pieces[i].n);
		k += pieces[i].n;
	}
	n->extra_len = (uint16_t)k;
	n->family = ev->family;
	n->port = ev->port;
	memcpy(n->addr, ev->addr, sizeof(n->addr));
	n->qname_len = ev->qname_len;
	memcpy(n->qname, ev->qname, ev->qname_len);
	n->has_target = ev->target_len > 0;
	n->used = true;
}
