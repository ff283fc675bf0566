/* SPDX-License-Identifier: MIT */
/*
 * TLS for DNS over TLS (RFC 7858, RFC 8310), on GnuTLS, for both the
 * upstream connections (upstream_tcp.c) and the client listeners (tcp.c).
 *
 * Credentials (struct dk_tls_creds) are loaded on the main thread, at start
 * and on reload, from the files the config names, and travel to the workers
 * in the snapshot; each session holds a reference, so credentials outlive a
 * reload for the connections made before it. GnuTLS credentials may be used
 * by sessions of several threads once set up.
 *
 * A session (struct dk_tls_sess) is embedded in its connection and never
 * touches a socket: the connection feeds it the ciphertext it read
 * (dk_tls_sess_feed()), and the session hands ciphertext to write back
 * through the connection's push function. So a handshake is driven by the
 * connection's libuv reads and never blocks the loop.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <gnutls/gnutls.h>

#include "dnsink/config.h"
#include "dnsink/upstream_spec.h"

/** Why a handshake failed (metrics label, log). */
enum dk_tls_fail {
	DK_TLS_FAIL_NAME,     /**< the certificate is not for the upstream's NAME */
	DK_TLS_FAIL_CA,       /**< not signed by a trusted CA (unknown, self-signed, bad chain) */
	DK_TLS_FAIL_EXPIRED,  /**< expired or not yet valid */
	DK_TLS_FAIL_PIN,      /**< no SPKI in the certificate matches pin_sha256 */
	DK_TLS_FAIL_PROTOCOL, /**< anything else: alert, version, cipher, garbage */
	DK_TLS_FAIL_MAX,
};

/** The metrics label of @p f ("name", "ca", "expired", "pin", "protocol"). */
const char *dk_tls_fail_name(enum dk_tls_fail f);

/** Credentials for one snapshot; reference counted across threads. */
struct dk_tls_creds {
	atomic_uint refs;
	gnutls_certificate_credentials_t client; /**< trust for upstreams; NULL: no tls:// */
	gnutls_certificate_credentials_t server; /**< listen_tls certificate; NULL: none */
	gnutls_priority_t prio;
	gnutls_datum_t ticket_key; /**< server session tickets (RFC 8446 resumption) */
};

/**
 * Loads what @p cfg needs: the trust store (tls.ca_file, else the system's)
 * when an upstream is tls://, the certificate and key when listen_tls is
 * set. Returns 0 with @p *out (NULL when nothing needs TLS), or a negative
 * code with @p err (@p errlen octets) saying what failed. Main thread.
 */
int dk_tls_creds_load(const struct dk_config *cfg, struct dk_tls_creds **out, char *err,
                      size_t errlen);

/** Takes a reference on @p c (NULL: no-op); returns @p c. */
struct dk_tls_creds *dk_tls_creds_ref(struct dk_tls_creds *c);

/** Drops a reference; the last one frees. NULL is a no-op. */
void dk_tls_creds_unref(struct dk_tls_creds *c);

/**
 * Writes @p len octets of ciphertext for the peer. Returns 0, or a negative
 * errno when the connection cannot take them (the session then fails).
 */
typedef int dk_tls_push_fn(void *ctx, const uint8_t *data, size_t len);

/** One TLS session, embedded in its connection. */
struct dk_tls_sess {
	gnutls_session_t s; /**< NULL while not set up */
	struct dk_tls_creds *creds;
	dk_tls_push_fn *push;
	void *ctx;
	const uint8_t *in; /**< ciphertext fed, not yet taken by GnuTLS */
	size_t in_len;
	bool ready; /**< handshake done (and, for a client, the pin checked) */
	bool has_pin;
	uint8_t pin[DK_PIN_LEN];
	enum dk_tls_fail fail; /**< after a failed handshake */
	int gnutls_err;        /**< the GnuTLS code of the failure, for the log */
};

/**
 * Sets up client session @p t to upstream @p o (its NAME checked, its pin
 * when it has one) on @p creds (referenced), resuming @p ticket when not
 * NULL. Returns 0 or a negative code.
 */
int dk_tls_sess_client(struct dk_tls_sess *t, struct dk_tls_creds *creds,
                       const struct dk_up_opts *o, const gnutls_datum_t *ticket,
                       dk_tls_push_fn *push, void *ctx);

/** Sets up server session @p t on @p creds (referenced). Returns 0 or a negative code. */
int dk_tls_sess_server(struct dk_tls_sess *t, struct dk_tls_creds *creds, dk_tls_push_fn *push,
                       void *ctx);

/**
 * Offers (server) or asks for (client) application protocols @p protos
 * (@p n of them, most preferred first) with ALPN. Returns 0 or a negative code.
 */
int dk_tls_sess_alpn(struct dk_tls_sess *t, const char *const *protos, unsigned n);

/** True when ALPN settled on @p proto. */
bool dk_tls_sess_alpn_is(const struct dk_tls_sess *t, const char *proto);

/** Lends @p len octets of ciphertext read from the peer to the calls that follow. */
void dk_tls_sess_feed(struct dk_tls_sess *t, const uint8_t *in, size_t len);

/**
 * Drives the handshake with what was fed. Returns 0 once done (t->ready),
 * -EAGAIN while it needs more from the peer, or DK_EMISMATCH with t->fail
 * set (the connection must close; nothing was sent in clear).
 */
int dk_tls_sess_handshake(struct dk_tls_sess *t);

/**
 * Decrypts into @p buf (@p cap octets). Returns the octets, 0 when the peer
 * closed, -EAGAIN when what was fed is used up, or another negative code.
 */
ssize_t dk_tls_sess_recv(struct dk_tls_sess *t, uint8_t *buf, size_t cap);

/** Encrypts @p len octets and pushes them. Returns 0 or a negative code. */
int dk_tls_sess_send(struct dk_tls_sess *t, const uint8_t *data, size_t len);

/** True when the handshake resumed an earlier session. */
bool dk_tls_sess_resumed(const struct dk_tls_sess *t);

/**
 * The session's resumption data when the server gave a ticket (or, in TLS
 * 1.2, a session ID), into @p out (free with gnutls_free()). Returns 0, or
 * -EAGAIN while there is none yet.
 */
int dk_tls_sess_ticket(struct dk_tls_sess *t, gnutls_datum_t *out);

/** Ends the session (no close_notify is sent: the socket is closing anyway). */
void dk_tls_sess_deinit(struct dk_tls_sess *t);
