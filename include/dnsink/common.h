/* SPDX-License-Identifier: MIT */
/*
 * Shared vocabulary of dnsink: error codes, size limits of DNS names, the
 * diagnostic record that loaders fill so that every error an operator sees
 * reads "FILE:LINE: message", and the assertion for internal invariants.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Octets of a name in wire form, root label included (RFC 1035 2.3.4). */
#define DK_NAME_MAX 255
/** Octets of one label. */
#define DK_LABEL_MAX 63
/** Labels in a name, the root label not counted (127 one-octet labels). */
#define DK_LABELS_MAX 127

/*
 * Functions return 0 or a negative errno; dnsink's own conditions use codes
 * below -1000 so they never collide with errno values.
 */
enum dk_error {
	DK_ESYNTAX = -1001,   /**< malformed text input (YAML, list line, address) */
	DK_ENAME = -1002,     /**< not a valid DNS name (empty label, bad octet) */
	DK_ELABEL = -1003,    /**< a label longer than 63 octets */
	DK_ENAMELEN = -1004,  /**< a name longer than 255 octets in wire form */
	DK_EFORMERR = -1005,  /**< malformed DNS message; answer FORMERR */
	DK_ENOTIMP = -1006,   /**< opcode we do not implement; answer NOTIMP */
	DK_EDROP = -1007,     /**< message to drop silently (e.g. QR=1, no header) */
	DK_EBADVERS = -1008,  /**< EDNS version we do not speak; answer BADVERS */
	DK_ESCHEMA = -1009,   /**< config or rule file breaks the schema */
	DK_EDUP = -1010,      /**< duplicate identifier */
	DK_ESPACE = -1011,    /**< output does not fit the buffer */
	DK_EMISMATCH = -1012, /**< answer does not belong to the query */
	DK_EFULL = -1013,     /**< a bounded table is full */
};

/** Returns a static, human-readable text for a dnsink code or an errno. */
const char *dk_strerror(int err);

/** Where and why loading failed; filled by config and rule loaders. */
struct dk_diag {
	char file[512]; /**< path as given by the operator; "" if none */
	unsigned line;  /**< 1-based line; 0 when the error has no line */
	char msg[512];  /**< what went wrong, one sentence, no trailing newline */
};

/**
 * Records an error in @p d (which may be NULL: then nothing happens).
 * @p file may be NULL. The message is printf-formatted and truncated to fit.
 */
void dk_diag_set(struct dk_diag *d, const char *file, unsigned line, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/** Formats @p d as "FILE:LINE: msg" ("FILE: msg" without a line) into @p buf. */
void dk_diag_format(const struct dk_diag *d, char *buf, size_t size);

#define DK_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/** Nanoseconds of the monotonic clock (CLOCK_MONOTONIC): for intervals and ordering. */
uint64_t dk_mono_ns(void);

/** Milliseconds since the epoch (CLOCK_REALTIME): for timestamps people read. */
uint64_t dk_wall_ms(void);

/** The 64-bit finalizer of MurmurHash3: spreads every input bit over the result. */
static inline uint64_t dk_hash_mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/**
 * Checks an internal invariant, after Knot Resolver's kr_fails_assert():
 *
 *	if (dk_fails_assert(s->busy))
 *		return -EINVAL;
 *
 * When @p cond is false, reports "file:line: func: assertion 'cond' failed"
 * through the assert hook (dk_set_assert_hook()) and evaluates to true, so
 * the caller can recover; then, while dk_assert_abort is true (the default
 * when NDEBUG is not defined: meson's debug and debugoptimized builds, as
 * b_ndebug=if-release), it aborts. A release build fails soft: it reports,
 * and the caller's recovery runs. @p cond is evaluated exactly once.
 *
 * Only for states the code itself must never reach. Never for bad input from
 * the network, a file or an operator: a malformed packet or config is an
 * error to answer or report, not a broken invariant, and in a debug build
 * this would let a remote sender abort the resolver.
 */
#define dk_fails_assert(cond)                                                                      \
	(__builtin_expect(!(cond), 0)                                                              \
	         ? (dk__assert_fail(#cond, __FILE__, __LINE__, __func__), true)                    \
	         : false)

/** Reports a failed dk_fails_assert() and aborts if dk_assert_abort; use the macro. */
void dk__assert_fail(const char *cond, const char *file, unsigned line, const char *func);

/**
 * Whether a failed dk_fails_assert() aborts after reporting: true unless
 * NDEBUG was defined when the core was built. Tests set it false to run the
 * soft path of a debug build; nothing else should need to touch it.
 */
extern bool dk_assert_abort;

/**
 * Sends the report of a failed dk_fails_assert() (one line, no newline, valid
 * only during the call) to @p fn instead of stderr; NULL restores stderr. The
 * core has no log of its own: the daemon's dk_log_open() points this at the
 * operational log. Set it before threads start; @p fn must be safe to call
 * from any thread.
 */
void dk_set_assert_hook(void (*fn)(const char *msg));
