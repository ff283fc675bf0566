/* SPDX-License-Identifier: MIT */
/*
 * dnstap out (see dnstap.h). Each worker owns a ring of fixed slots; a slot
 * is busy from the moment the worker encodes a message into it until
 * libfstrm's I/O thread has written it and calls slot_done(), which frees it
 * with a release store the worker's acquire load sees. The I/O thread takes
 * a worker's messages in order, so the slots free in ring order and the
 * worker only ever looks at the next one: busy means the queue is full, and
 * the message is lost (counted), never waited for.
 */
#include <errno.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
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
#define SLOT_SIZE 16384
/** Alerts whose answer is still to come, per worker: enough for forwards in flight. */
#define NOTES     64
#define EXTRA_MAX 700

struct slot {
	_Atomic bool busy;
	uint8_t buf[SLOT_SIZE];
};

struct dk_dnstap {
	struct fstrm_iothr *iothr;
	char *identity;
	unsigned n_queues, taken;
	size_t slots;
	/** Each queue's ring; here, not in the worker, as it must outlive the I/O thread. */
	struct slot **rings;
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
	struct fstrm_iothr_queue *q;
	struct slot *ring;
	size_t n_slots, head;
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

static void free_rings(struct dk_dnstap *t)
{
	for (unsigned i = 0; t->rings && i < t->n_queues; i++)
		free(t->rings[i]);
	free(t->rings);
}

int dk_dnstap_new(const struct dk_config *cfg, unsigned n_workers, struct dk_dnstap **out)
{
	const char *sock = cfg->dnstap.socket, *file = cfg->dnstap.file;
	struct fstrm_writer_options *wopt = NULL;
	struct fstrm_unix_writer_options *uopt = NULL;
	struct fstrm_file_options *fopt = NULL;
	struct fstrm_iothr_options *iopt = NULL;
	struct fstrm_writer *wr = NULL;
	struct dk_dnstap *t;
	int rc = -ENOMEM;

	*out = NULL;
	if (!sock && !file)
		return 0;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->identity = strdup(cfg->dnstap.identity ? cfg->dnstap.identity : "dnsink");
	t->n_queues = n_workers ? n_workers : 1;
	t->slots = cfg->dnstap.queue;
	t->rings = calloc(t->n_queues, sizeof(*t->rings));
	for (unsigned i = 0; t->rings && i < t->n_queues; i++)
		if (!(t->rings[i] = calloc(t->slots, sizeof(struct slot))))
			goto fail;
	wopt = fstrm_writer_options_init();
	iopt = fstrm_iothr_options_init();
	if (!t->identity || !t->rings || !wopt || !iopt)
		goto fail;
	fstrm_writer_options_add_content_type(wopt, CONTENT_TYPE, strlen(CONTENT_TYPE));
	if (sock) {
		uopt = fstrm_unix_writer_options_init();
		if (!uopt)
			goto fail;
		fstrm_unix_writer_options_set_socket_path(uopt, sock);
		wr = fstrm_unix_writer_init(uopt, wopt);
	} else {
		fopt = fstrm_file_options_init();
		if (!fopt)
			goto fail;
		fstrm_file_options_set_file_path(fopt, file);
		wr = fstrm_file_writer_init(fopt, wopt);
	}
	if (!wr) {
		rc = -EINVAL;
		goto fail;
	}
	/* The queue holds what the ring does: a slot is busy exactly while queued. */
	size_t qsize = 2;
	while (qsize < t->slots && qsize < 16384)
		qsize <<= 1;
	fstrm_iothr_options_set_num_input_queues(iopt, t->n_queues);
	fstrm_iothr_options_set_input_queue_size(iopt, qsize);
	fstrm_iothr_options_set_queue_model(iopt, FSTRM_IOTHR_QUEUE_MODEL_SPSC);
	fstrm_iothr_options_set_reopen_interval(iopt, 1);
	/* Opens the file (or tries the socket, again every second) on its own thread. */
	t->iothr = fstrm_iothr_init(iopt, &wr);
	if (!t->iothr) {
		rc = -EIO;
		goto fail;
	}
	fstrm_iothr_options_destroy(&iopt);
	fstrm_writer_options_destroy(&wopt);
	fstrm_unix_writer_options_destroy(&uopt);
	fstrm_file_options_destroy(&fopt);
	dk_log(DK_LOG_INFO, "dnstap: writing client queries and answers to %s %s",
	       sock ? "socket" : "file", sock ? sock : file);
	if (cfg->dnstap.forwarder)
		dk_log(DK_LOG_WARN, "dnstap: forwarder: true is not supported yet; only CLIENT_* "
		                    "messages are written");
	*out = t;
	return 0;
fail:
	dk_log(DK_LOG_ERR, "dnstap: cannot start a writer to %s: %s", sock ? sock : file,
	       dk_strerror(rc));
	if (wr)
		fstrm_writer_destroy(&wr);
	fstrm_iothr_options_destroy(&iopt);
	fstrm_writer_options_destroy(&wopt);
	fstrm_unix_writer_options_destroy(&uopt);
	fstrm_file_options_destroy(&fopt);
	free_rings(t);
	free(t->identity);
	free(t);
	return rc;
}

void dk_dnstap_free(struct dk_dnstap *t)
{
	if (!t)
		return;
	/* Writes out what the queues hold, then joins the I/O thread. */
	fstrm_iothr_destroy(&t->iothr);
	free_rings(t);
	free(t->identity);
	free(t);
}

struct dk_dnstap_worker *dk_dnstap_worker_new(struct dk_dnstap *t)
{
	struct dk_dnstap_worker *tw;

	if (!t)
		return NULL;
	tw = calloc(1, sizeof(*tw));
	if (!tw)
		return NULL;
	tw->t = t;
	tw->n_slots = t->slots;
	/* Workers are made one after another on the main thread: taken needs no lock. */
	if (t->taken < t->n_queues) {
		tw->ring = t->rings[t->taken];
		tw->q = fstrm_iothr_get_input_queue_idx(t->iothr, t->taken++);
	}
	if (!tw->q) {
		free(tw);
		return NULL;
	}
	return tw;
}

void dk_dnstap_worker_free(struct dk_dnstap_worker *tw)
{
	if (!tw)
		return;
	if (tw->lost > tw->lost_logged)
		dk_log(DK_LOG_WARN, "dnstap: %llu messages lost",
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

static void slot_done(void *buf, void *free_data)
{
	struct slot *s = free_data;

	(void)buf;
	atomic_store_explicit(&s->busy, false, memory_order_release);
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

static void emit(struct dk_dnstap_worker *tw, bool response, const struct dk_client *cl,
                 const uint8_t *msg, size_t len, const char *extra, size_t extra_len)
{
	struct slot *s = &tw->ring[tw->head];
	Dnstap__Message m = DNSTAP__MESSAGE__INIT;
	Dnstap__Dnstap d = DNSTAP__DNSTAP__INIT;
	struct timespec ts;

	if (atomic_load_explicit(&s->busy, memory_order_acquire)) {
		lose(tw);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	m.type = response ? DNSTAP__MESSAGE__TYPE__CLIENT_RESPONSE
	                  : DNSTAP__MESSAGE__TYPE__CLIENT_QUERY;
	m.has_socket_family = m.has_socket_protocol = m.has_query_address = m.has_query_port = 1;
	m.socket_protocol = cl->transport == DK_TRANSPORT_TCP ? DNSTAP__SOCKET_PROTOCOL__TCP
	                                                      : DNSTAP__SOCKET_PROTOCOL__UDP;
	if (cl->peer.sa.sa_family == AF_INET6) {
		m.socket_family = DNSTAP__SOCKET_FAMILY__INET6;
		m.query_address.data = (uint8_t *)&cl->peer.in6.sin6_addr;
		m.query_address.len = 16;
		m.query_port = ntohs(cl->peer.in6.sin6_port);
	} else {
		m.socket_family = DNSTAP__SOCKET_FAMILY__INET;
		m.query_address.data = (uint8_t *)&cl->peer.in4.sin_addr;
		m.query_address.len = 4;
		m.query_port = ntohs(cl->peer.in4.sin_port);
	}
	if (response) {
		m.has_response_time_sec = m.has_response_time_nsec = m.has_response_message = 1;
		m.response_time_sec = (uint64_t)ts.tv_sec;
		m.response_time_nsec = (uint32_t)ts.tv_nsec;
		m.response_message.data = (uint8_t *)msg;
		m.response_message.len = len;
	} else {
		m.has_query_time_sec = m.has_query_time_nsec = m.has_query_message = 1;
		m.query_time_sec = (uint64_t)ts.tv_sec;
		m.query_time_nsec = (uint32_t)ts.tv_nsec;
		m.query_message.data = (uint8_t *)msg;
		m.query_message.len = len;
	}
	d.type = DNSTAP__DNSTAP__TYPE__MESSAGE;
	d.message = &m;
	d.has_identity = d.has_version = 1;
	d.identity.data = (uint8_t *)tw->t->identity;
	d.identity.len = strlen(tw->t->identity);
	d.version.data = (uint8_t *)"dnsink " DK_VERSION;
	d.version.len = strlen("dnsink " DK_VERSION);
	if (extra_len) {
		d.has_extra = 1;
		d.extra.data = (uint8_t *)extra;
		d.extra.len = extra_len;
	}
	size_t n = dnstap__dnstap__get_packed_size(&d);
	if (n > SLOT_SIZE) {
		lose(tw);
		return;
	}
	dnstap__dnstap__pack(&d, s->buf);
	atomic_store_explicit(&s->busy, true, memory_order_relaxed);
	if (fstrm_iothr_submit(tw->t->iothr, tw->q, s->buf, n, slot_done, s) != fstrm_res_success) {
		atomic_store_explicit(&s->busy, false, memory_order_relaxed);
		lose(tw);
		return;
	}
	atomic_store_explicit(&tw->sent, atomic_load_explicit(&tw->sent, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
	tw->head = (tw->head + 1) % tw->n_slots;
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
	int k = snprintf(n->extra, sizeof(n->extra), "dnsink rule=%s action=%s matched=%s%s%s",
	                 ev->rule->id, dk_action_name((enum dk_action)ev->action), entry,
	                 target[0] ? " target=" : "", target);
	if (k < 0 || (size_t)k >= sizeof(n->extra))
		return;
	n->extra_len = (uint16_t)k;
	n->family = ev->family;
	n->port = ev->port;
	memcpy(n->addr, ev->addr, sizeof(n->addr));
	n->qname_len = ev->qname_len;
	memcpy(n->qname, ev->qname, ev->qname_len);
	n->has_target = ev->target_len > 0;
	n->used = true;
}
