/* SPDX-License-Identifier: MIT */
/*
 * The libyaml helpers that the config loader (config.c) and the rule loader
 * (rules.c) share: reading a node's line, text and kind, recognising the
 * null value, walking lists, finding a repeated mapping key and turning a
 * parser failure into a "FILE:LINE: what" diagnostic. They check node types
 * themselves, so a caller that asks a list or a mapping for its text gets
 * NULL instead of reading the wrong member of libyaml's union. Private to
 * core: nothing outside src/core/ includes this header. It is not called
 * yaml.h because meson puts this folder on the include path, where that name
 * would hide libyaml's own <yaml.h>.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "dnsink/common.h"

/** 1-based line where @p n starts; 0 when @p n is NULL. */
unsigned dk__yaml_line(const yaml_node_t *n);

/**
 * The text of scalar @p n, owned by the document; NULL when @p n is NULL or
 * not a scalar. The text may hold a NUL before its end: see
 * dk__yaml_has_nul().
 */
const char *dk__yaml_scalar(const yaml_node_t *n);

/** True when scalar @p n holds a NUL octet (the C string is shorter than it). */
bool dk__yaml_has_nul(const yaml_node_t *n);

/** A plain empty, "~", "null", "Null" or "NULL" scalar: the YAML null value. */
bool dk__yaml_is_null(const yaml_node_t *n);

/** "a scalar", "a list", "a mapping" or "nothing", for messages. */
const char *dk__yaml_kind(const yaml_node_t *n);

/** Items of sequence @p n; 0 when @p n is not a sequence. */
size_t dk__yaml_seq_len(const yaml_node_t *n);

/**
 * Item @p i (below dk__yaml_seq_len()) of sequence @p n in @p doc; the node
 * is owned by the document.
 */
yaml_node_t *dk__yaml_seq_item(yaml_document_t *doc, const yaml_node_t *n, size_t i);

/**
 * The first key of mapping @p map in @p doc, before pair @p pair, that is a
 * scalar with the same text as @p pair's key; NULL when there is none (or
 * @p pair's key is not a scalar). Owned by the document.
 */
yaml_node_t *dk__yaml_earlier_key(yaml_document_t *doc, const yaml_node_t *map,
                                  const yaml_node_pair_t *pair);

/**
 * Records why yaml_parser_load() failed on @p p in @p diag, as
 * "PATH:LINE: YAML syntax error: problem context" (a reader error, such as a
 * bad encoding, has an offset and no line). Returns -ENOMEM when libyaml ran
 * out of memory, else DK_ESYNTAX.
 */
int dk__yaml_parser_error(const yaml_parser_t *p, const char *path, struct dk_diag *diag);
