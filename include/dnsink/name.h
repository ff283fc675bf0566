/* SPDX-License-Identifier: MIT */
/*
 * Domain names. dnsink compares names in lowercase wire form: a sequence of
 * length-prefixed labels ending in the zero-length root label. Converting to
 * wire form once means a dot inside a label ("a\.b") can never be mistaken for
 * a label separator, and matching becomes a walk over label offsets.
 *
 * Nothing here allocates; outputs go to caller-provided buffers.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnsink/common.h"

/** Flags for dk_name_from_text(). */
enum dk_name_flags {
	/**
	 * Accept only host-name octets in labels: ASCII letters, digits, '-' and
	 * '_' (list files and rule entries). Without it any octet is accepted,
	 * written as itself or as a \DDD or \X escape.
	 */
	DK_NAME_HOSTNAME = 1 << 0,
};

/**
 * Converts presentation form @p text (@p len octets, not NUL-terminated) to
 * lowercase wire form in @p out. A trailing dot is optional; "." alone is the
 * root name. Escapes "\X" and "\DDD" are decoded (so "a\.b" is one label).
 * Returns 0 and sets @p *out_len, or DK_ENAME (empty label, bad escape,
 * octet refused by DK_NAME_HOSTNAME, empty text), DK_ELABEL or DK_ENAMELEN.
 */
int dk_name_from_text(const char *text, size_t len, unsigned flags, uint8_t out[DK_NAME_MAX],
                      size_t *out_len);

/**
 * Reads the uncompressed name at @p *off in message @p msg (@p msg_len octets)
 * and copies it lowercased to @p out (NULL: only validate). On success
 * advances @p *off past the name and sets @p *out_len. A compression pointer
 * is refused (DK_EFORMERR): queries never need one in the question. Returns
 * DK_EFORMERR when the name runs past the end, DK_ELABEL for a label type
 * other than a plain length (0x40/0x80), DK_ENAMELEN when over 255 octets.
 */
int dk_name_from_wire(const uint8_t *msg, size_t msg_len, size_t *off, uint8_t out[DK_NAME_MAX],
                      size_t *out_len);

/**
 * Like dk_name_from_wire() but follows compression pointers (strictly
 * backwards, at most DK_LABELS_MAX jumps), as answers from upstreams use them.
 * @p *off is advanced past the name as it stands at @p *off.
 */
int dk_name_from_wire_compressed(const uint8_t *msg, size_t msg_len, size_t *off,
                                 uint8_t out[DK_NAME_MAX], size_t *out_len);

/**
 * Writes wire name @p wire as lowercase presentation text without the
 * trailing dot ("." for the root), escaping '.', '\\', '"' and non-printable
 * octets as \DDD. Returns the text length (NUL written after it) or
 * DK_ESPACE if @p size is too small.
 */
int dk_name_to_text(const uint8_t *wire, size_t len, char *out, size_t size);

/**
 * Fills @p offs with the offset of each label of @p wire, leftmost first, the
 * root label not included. Returns the number of labels. @p wire must be a
 * valid wire name (as produced by the functions above).
 */
int dk_name_labels(const uint8_t *wire, size_t len, uint8_t offs[DK_LABELS_MAX]);

/** ASCII-lowercases @p len octets of @p p in place (labels and lengths alike). */
void dk_name_lower(uint8_t *p, size_t len);

/** Compares two wire names ASCII-case-insensitively; true when equal. */
bool dk_name_equal_nocase(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
