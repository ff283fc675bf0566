/* SPDX-License-Identifier: MIT */
/*
 * The libyaml helpers shared by the config and rule loaders (see yaml_helpers.h).
 * One set, so both loaders read node types, null values and parser errors
 * the same way and report them in the same words.
 */
#include <errno.h>
#include <string.h>

#include "yaml_helpers.h"

unsigned dk__yaml_line(const yaml_node_t *n)
{
	return n ? (unsigned)n->start_mark.line + 1 : 0;
}

const char *dk__yaml_scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

bool dk__yaml_has_nul(const yaml_node_t *n)
{
	const char *s = dk__yaml_scalar(n);

	return s && strlen(s) != n->data.scalar.length;
}

bool dk__yaml_is_null(const yaml_node_t *n)
{
	const char *s = dk__yaml_scalar(n);

	/* A quoted "null" or "" is a string the author meant to write. */
	if (!s || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	       !strcmp(s, "NULL");
}

const char *dk__yaml_kind(const yaml_node_t *n)
{
	switch (n ? n->type : YAML_NO_NODE) {
	case YAML_SCALAR_NODE: return "a scalar";
	case YAML_SEQUENCE_NODE: return "a list";
	case YAML_MAPPING_NODE: return "a mapping";
	default: return "nothing";
	}
}

size_t dk__yaml_seq_len(const yaml_node_t *n)
{
	if (!n || n->type != YAML_SEQUENCE_NODE)
		return 0;
	return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

yaml_node_t *dk__yaml_seq_item(yaml_document_t *doc, const yaml_node_t *n, size_t i)
{
	return yaml_document_get_node(doc, n->data.sequence.items.start[i]);
}

yaml_node_t *dk__yaml_earlier_key(yaml_document_t *doc, const yaml_node_t *map,
                                  const yaml_node_pair_t *pair)
{
	const char *ks = dk__yaml_scalar(yaml_document_get_node(doc, pair->key));

	if (!ks)
		return NULL;
	for (const yaml_node_pair_t *q = map->data.mapping.pairs.start; q < pair; q++) {
		yaml_node_t *prev = yaml_document_get_node(doc, q->key);
		const char *ps = dk__yaml_scalar(prev);
		if (ps && !strcmp(ps, ks))
			return prev;
	}
	return NULL;
}

int dk__yaml_parser_error(const yaml_parser_t *p, const char *path, struct dk_diag *diag)
{
	if (p->error == YAML_MEMORY_ERROR) {
		dk_diag_set(diag, path, 0, "out of memory");
		return -ENOMEM;
	}
	/* Reader errors (bad encoding) carry an offset, not a line. */
	if (p->error == YAML_READER_ERROR) {
		dk_diag_set(diag, path, 0, "cannot read: %s",
		            p->problem ? p->problem : "unknown error");
		return DK_ESYNTAX;
	}
	unsigned line = (unsigned)p->problem_mark.line + 1;
	if (p->context)
		dk_diag_set(diag, path, line, "YAML syntax error: %s %s",
		            p->problem ? p->problem : "", p->context);
	else
		dk_diag_set(diag, path, line, "YAML syntax error: %s",
		            p->problem ? p->problem : "unknown error");
	return DK_ESYNTAX;
}
