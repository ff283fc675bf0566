/* SPDX-License-Identifier: MIT */
/*
 * EDNS(0) padding (RFC 7830) of queries sent over an encrypted transport,
 * with the block length RFC 8467 recommends for queries (128 octets), so
 * that an observer of the ciphertext learns little from its length.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/** RFC 8467 section 4.1: queries are padded to a multiple of this. */
#define DK_PAD_QUERY_BLOCK 128

/**
 * Writes query @p pkt (@p len octets) padded to a multiple of @p block into
 * @p out (@p cap octets; may not overlap @p pkt). Only a query whose OPT
 * record is its last record is padded, and one that already carries a
 * padding option is copied as it is: an OPT is never added, since the
 * upstream would then send one back to a client that did not ask for EDNS.
 * Returns the length written, or DK_ESPACE (does not fit @p cap) or
 * DK_EFORMERR (records do not parse).
 */
int dk_pad_query(const uint8_t *pkt, size_t len, size_t block, uint8_t *out, size_t cap);
