/* SPDX-License-Identifier: MIT */
/*
 * GnuTLS credentials and sessions for DNS over TLS (see tls.h).
 *
 * The transport is GnuTLS's custom one: the pull function hands out what the
 * connection fed from its last read and says EAGAIN when that is used up, the
 * push function passes ciphertext to the connection. Certificates are
 * verified during the handshake (gnutls_session_set_verify_cert: chain,
 * validity, name); the SPKI pin is checked right after it, before the
 * session is ready, so a query is never written to an unverified peer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "tls.h"

/*
 * TLS 1.3 first, TLS 1.2 at least (RFC 8310 section 9, RFC 9325); GnuTLS's
 * NORMAL set otherwise (no RC4, no SSL 3, no export ciphers).
 */
#define DK_TLS_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

static const char *const fail_names[DK_TLS_FAIL_MAX] = {
        [DK_TLS_FAIL_NAME] = "name",         [DK_TLS_FAIL_CA] = "ca",
        [DK_TLS_FAIL_EXPIRED] = "expired",   [DK_TLS_FAIL_PIN] = "pin",
        [DK_TLS_FAIL_PROTOCOL] = "protocol",
};

const char *dk_tls_fail_name(enum dk_tls_fail f)
{
	return f < DK_TLS_FAIL_MAX ? fail_names[f] : "protocol";
}

static bool cfg_wants_client(const struct dk_config *cfg)
{
	for (size_t i = 0; cfg->upstream_opts && i < cfg->n_upstreams; i++)
		if (cfg->upstream_opts[i].proto != DK_UP_DNS)
			return true;
	return false;
}

static void creds_free(struct dk_tls_creds *c)
{
	if (c->client)
		gnutls_certificate_free_credentials(c->client);
	if (c->server)
		gnutls_certificate_free_credentials(c->server);
	if (c->prio)
		gnutls_priority_deinit(c->prio);
	if (c->ticket_key.data)
		gnutls_free(c->ticket_key.data);
	free(c);
}

int dk_tls_creds_load(const struct dk_config *cfg, struct dk_tls_creds **out, char *err,
                      size_t errlen)
{
	bool client = cfg_wants_client(cfg), server = cfg->n_listen_tls + cfg->n_listen_https > 0;
	struct dk_tls_creds *c;
	int rc;

	*out = NULL;
	if (!client && !server)
		return 0;
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	atomic_init(&c->refs, 1);
	rc = gnutls_priority_init(&c->prio, DK_TLS_PRIORITY, NULL);
	if (rc < 0) {
		snprintf(err, errlen, "TLS priorities: %s", gnutls_strerror(rc));
		goto fail;
	}
	if (client) {
		rc = gnutls_certificate_allocate_credentials(&c->client);
		if (rc < 0)
			goto gfail;
		if (cfg->tls.ca_file)
			rc = gnutls_certificate_set_x509_trust_file(c->client, cfg->tls.ca_file,
			                                            GNUTLS_X509_FMT_PEM);
		else
			rc = gnutls_certificate_set_x509_system_trust(c->client);
		if (rc <= 0) {
			snprintf(err, errlen, "%s: no trusted certificate loaded%s%s",
			         cfg->tls.ca_file ? cfg->tls.ca_file : "system trust store",
			         rc < 0 ? ": " : "", rc < 0 ? gnutls_strerror(rc) : "");
			rc = DK_ESCHEMA;
			goto fail;
		}
	}
	if (server) {
		rc = gnutls_certificate_allocate_credentials(&c->server);
		if (rc < 0)
			goto gfail;
		rc = gnutls_certificate_set_x509_key_file(c->server, cfg->tls.cert_file,
		                                          cfg->tls.key_file, GNUTLS_X509_FMT_PEM);
		if (rc < 0) {
			snprintf(err, errlen, "%s, %s: %s", cfg->tls.cert_file, cfg->tls.key_file,
			         gnutls_strerror(rc));
			rc = DK_ESCHEMA;
			goto fail;
		}
		rc = gnutls_session_ticket_key_generate(&c->ticket_key);
		if (rc < 0)
			goto gfail;
	}
	*out = c;
	return 0;
gfail:
	snprintf(err, errlen, "TLS: %s", gnutls_strerror(rc));
	rc = -ENOMEM;
fail:
	creds_free(c);
	return rc;
}

struct dk_tls_creds *dk_tls_creds_ref(struct dk_tls_creds *c)
{
	if (c)
		atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

void dk_tls_creds_unref(struct dk_tls_creds *c)
{
	if (c && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		creds_free(c);
}

static ssize_t sess_pull(gnutls_transport_ptr_t p, void *buf, size_t cap)
{
	struct dk_tls_sess *t = p;

	if (t->in_len == 0) {
		gnutls_transport_set_errno(t->s, EAGAIN);
		return -1;
	}
	size_t n = t->in_len < cap ? t->in_len : cap;
	memcpy(buf, t->in, n);
	t->in += n;
	t->in_len -= n;
	return (ssize_t)n;
}

static ssize_t sess_push(gnutls_transport_ptr_t p, const void *data, size_t len)
{
	struct dk_tls_sess *t = p;
	int rc = t->push(t->ctx, data, len);

	if (rc < 0) {
		gnutls_transport_set_errno(t->s, -rc == EAGAIN ? EIO : -rc);
		return -1;
	}
	return (ssize_t)len;
}

static int sess_init(struct dk_tls_sess *t, struct dk_tls_creds *creds, unsigned flags,
                     gnutls_certificate_credentials_t cred, dk_tls_push_fn *push, void *ctx)
{
	int rc;

	memset(t, 0, sizeof(*t));
	if (!creds || !cred)
		return -EINVAL;
	rc = gnutls_init(&t->s, flags | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
	if (rc < 0) {
		t->s = NULL;
		return -ENOMEM;
	}
	t->creds = dk_tls_creds_ref(creds);
	t->push = push;
	t->ctx = ctx;
	if (gnutls_priority_set(t->s, creds->prio) < 0 ||
	    gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE, cred) < 0) {
		dk_tls_sess_deinit(t);
		return -EINVAL;
	}
	gnutls_transport_set_ptr(t->s, t);
	gnutls_transport_set_pull_function(t->s, sess_pull);
	gnutls_transport_set_push_function(t->s, sess_push);
	return 0;
}

int dk_tls_sess_client(struct dk_tls_sess *t, struct dk_tls_creds *creds,
                       const struct dk_up_opts *o, const gnutls_datum_t *ticket,
                       dk_tls_push_fn *push, void *ctx)
{
	int rc = sess_init(t, creds, GNUTLS_CLIENT, creds ? creds->client : NULL, push, ctx);

	if (rc < 0)
		return rc;
	if (o->name[0]) {
		/* SNI, and the name the certificate must carry (RFC 8310 section 8.1). */
		gnutls_server_name_set(t->s, GNUTLS_NAME_DNS, o->name, strlen(o->name));
		gnutls_session_set_verify_cert(t->s, o->name, 0);
	}
	t->has_pin = o->has_pin;
	memcpy(t->pin, o->pin, DK_PIN_LEN);
	if (ticket && ticket->size)
		gnutls_session_set_data(t->s, ticket->data, ticket->size);
	return 0;
}

int dk_tls_sess_server(struct dk_tls_sess *t, struct dk_tls_creds *creds, dk_tls_push_fn *push,
                       void *ctx)
{
	int rc = sess_init(t, creds, GNUTLS_SERVER, creds ? creds->server : NULL, push, ctx);

	if (rc < 0)
		return rc;
	gnutls_certificate_server_set_request(t->s, GNUTLS_CERT_IGNORE);
	if (creds->ticket_key.data)
		gnutls_session_ticket_enable_server(t->s, &creds->ticket_key);
	return 0;
}

int dk_tls_sess_alpn(struct dk_tls_sess *t, const char *const *protos, unsigned n)
{
	gnutls_datum_t d[4];

	if (n > 4)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		d[i].data = (unsigned char *)protos[i];
		d[i].size = (unsigned)strlen(protos[i]);
	}
	return gnutls_alpn_set_protocols(t->s, d, n, GNUTLS_ALPN_SERVER_PRECEDENCE) < 0 ? -EINVAL
	                                                                                : 0;
}

bool dk_tls_sess_alpn_is(const struct dk_tls_sess *t, const char *proto)
{
	gnutls_datum_t d;

	return gnutls_alpn_get_selected_protocol(t->s, &d) == 0 && d.size == strlen(proto) &&
	       memcmp(d.data, proto, d.size) == 0;
}

void dk_tls_sess_feed(struct dk_tls_sess *t, const uint8_t *in, size_t len)
{
	t->in = in;
	t->in_len = len;
}

/* True when the SHA-256 of the SubjectPublicKeyInfo of the peer's certificate is the pin. */
static bool pin_matches(struct dk_tls_sess *t)
{
	unsigned n = 0;
	const gnutls_datum_t *certs = gnutls_certificate_get_peers(t->s, &n);
	gnutls_pubkey_t key = NULL;
	uint8_t spki[4096], digest[DK_PIN_LEN];
	size_t spki_len = sizeof(spki);
	bool ok = false;

	if (!certs || n == 0 || gnutls_pubkey_init(&key) < 0)
		return false;
	/* The end-entity certificate only (as Stubby and Knot Resolver pin). */
	if (gnutls_pubkey_import_x509_raw(key, &certs[0], GNUTLS_X509_FMT_DER, 0) == 0 &&
	    gnutls_pubkey_export(key, GNUTLS_X509_FMT_DER, spki, &spki_len) == 0 &&
	    gnutls_hash_fast(GNUTLS_DIG_SHA256, spki, spki_len, digest) == 0)
		ok = memcmp(digest, t->pin, DK_PIN_LEN) == 0;
	gnutls_pubkey_deinit(key);
	return ok;
}

static enum dk_tls_fail verify_reason(gnutls_session_t s)
{
	unsigned st = gnutls_session_get_verify_cert_status(s);

	if (st & (GNUTLS_CERT_EXPIRED | GNUTLS_CERT_NOT_ACTIVATED))
		return DK_TLS_FAIL_EXPIRED;
	if (st & (GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_SIGNER_NOT_CA |
	          GNUTLS_CERT_INSECURE_ALGORITHM | GNUTLS_CERT_SIGNATURE_FAILURE))
		return DK_TLS_FAIL_CA;
	if (st & GNUTLS_CERT_UNEXPECTED_OWNER)
		return DK_TLS_FAIL_NAME;
	return DK_TLS_FAIL_CA;
}

int dk_tls_sess_handshake(struct dk_tls_sess *t)
{
	if (t->ready)
		return 0;
	int rc;
	/* As in dk_tls_sess_recv(): AGAIN with input left means "call again". */
	do
		rc = gnutls_handshake(t->s);
	while ((rc == GNUTLS_E_AGAIN && t->in_len > 0) || rc == GNUTLS_E_INTERRUPTED);
	if (rc == GNUTLS_E_AGAIN)
		return -EAGAIN;
	if (rc < 0) {
		t->gnutls_err = rc;
		t->fail = rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR ? verify_reason(t->s)
		                                                        : DK_TLS_FAIL_PROTOCOL;
		return DK_EMISMATCH;
	}
	if (t->has_pin && !pin_matches(t)) {
		t->gnutls_err = GNUTLS_E_CERTIFICATE_ERROR;
		t->fail = DK_TLS_FAIL_PIN;
		return DK_EMISMATCH;
	}
	t->ready = true;
	return 0;
}

ssize_t dk_tls_sess_recv(struct dk_tls_sess *t, uint8_t *buf, size_t cap)
{
	for (;;) {
		ssize_t n = gnutls_record_recv(t->s, buf, cap);
		if (n >= 0)
			return n;
		/*
		 * GnuTLS may say AGAIN after a post-handshake message (a TLS 1.3
		 * ticket) with records still fed: only an empty input is the end.
		 */
		if (n == GNUTLS_E_AGAIN && t->in_len == 0 && gnutls_record_check_pending(t->s) == 0)
			return -EAGAIN;
		if (n == GNUTLS_E_AGAIN)
			continue;
		/* Not fatal: a TLS 1.3 key update or a ticket handled inside GnuTLS. */
		if (n == GNUTLS_E_INTERRUPTED || gnutls_error_is_fatal((int)n) == 0)
			continue;
		t->gnutls_err = (int)n;
		return -EPROTO;
	}
}

int dk_tls_sess_send(struct dk_tls_sess *t, const uint8_t *data, size_t len)
{
	while (len) {
		ssize_t n = gnutls_record_send(t->s, data, len);
		if (n < 0) {
			t->gnutls_err = (int)n;
			return -EIO;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

bool dk_tls_sess_resumed(const struct dk_tls_sess *t)
{
	return t->s && gnutls_session_is_resumed(t->s);
}

int dk_tls_sess_ticket(struct dk_tls_sess *t, gnutls_datum_t *out)
{
	/* TLS 1.3 sends tickets after the handshake; without one, the data cannot resume. */
	if (gnutls_protocol_get_version(t->s) == GNUTLS_TLS1_3 &&
	    !(gnutls_session_get_flags(t->s) & GNUTLS_SFLAGS_SESSION_TICKET))
		return -EAGAIN;
	if (gnutls_session_get_data2(t->s, out) < 0)
		return -EAGAIN;
	return 0;
}

void dk_tls_sess_deinit(struct dk_tls_sess *t)
{
	if (t->s)
		gnutls_deinit(t->s);
	t->s = NULL;
	dk_tls_creds_unref(t->creds);
	t->creds = NULL;
	t->ready = false;
}
