/* SPDX-License-Identifier: MIT */
/*
 * A one-pass, allocation-free JSON scanner for log lines. It walks one
 * value (an object, usually) and hands every scalar to a callback with the
 * member name it sits under and that member's parent name, so a log reader
 * picks the few fields it wants without building a tree. Log readers call
 * it millions of times a second: a DOM library (jansson, json-c) allocates
 * every node of every line, which BENCHMARKS.md measures at several times the
 * cost of this walk.
 *
 * Grammar: RFC 8259, plus what Panther's rule tests write and a reader
 * meets in the field: a trailing comma before '}' or ']', and member names
 * without quotes (letters, digits, '_', '-', '.', '@', '$'). Nesting is
 * bounded (DK_JSON_DEPTH); deeper input is an error, never a stack overflow.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Deepest nesting accepted. */
#define DK_JSON_DEPTH 32

enum dk_json_type {
	DK_JSON_STRING,
	DK_JSON_NUMBER,
	DK_JSON_TRUE,
	DK_JSON_FALSE,
	DK_JSON_NULL,
};

/** A slice of the input line. */
struct dk_json_str {
	const char *p;
	size_t len;
};

/** One scalar as the scanner met it. Slices point into the input. */
struct dk_json_leaf {
	enum dk_json_type type;
	struct dk_json_str val;    /**< a string without its quotes, escapes as written */
	bool escaped;              /**< @p val holds backslash escapes (dk_json_unescape()) */
	struct dk_json_str key;    /**< member name it is the value of (or the array's) */
	struct dk_json_str parent; /**< member name of the enclosing object ("" at top) */
	unsigned depth;            /**< 1: a member of the top-level object */
	int index;                 /**< position in the innermost enclosing array, or -1 */
};

/** Called per scalar; return false to stop the scan (dk_json_scan() returns 0). */
typedef bool (*dk_json_leaf_fn)(void *ctx, const struct dk_json_leaf *leaf);

/**
 * Scans the JSON value at the start of @p p (@p len octets; trailing white
 * space allowed, nothing else). Returns 0, or DK_ESYNTAX for malformed or
 * too deeply nested input (the callback may have run for a prefix).
 */
int dk_json_scan(const char *p, size_t len, dk_json_leaf_fn fn, void *ctx);

/**
 * Decodes the escapes of string @p s into @p out (@p size octets, NUL
 * added). \uXXXX becomes UTF-8 (surrogate pairs joined). Returns the length
 * or DK_ESPACE / DK_ESYNTAX.
 */
int dk_json_unescape(struct dk_json_str s, char *out, size_t size);

/** True when @p s equals NUL-terminated @p lit. */
static inline bool dk_json_eq(struct dk_json_str s, const char *lit)
{
	size_t i = 0;

	for (; i < s.len; i++)
		if (lit[i] != s.p[i] || !lit[i])
			return false;
	return lit[i] == '\0';
}
