/* SPDX-License-Identifier: MIT */
/* Control-socket request lines and HTTP request heads (src/core/request.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dnsink/request.h"

/* Parses a copy of @p text; returns the result, fills @p r and @p arg. */
static int parse(const char *text, struct dk_ctl_req *r, char *arg, size_t size)
{
	char line[128];
	const char *why = NULL;
	size_t n = strlen(text);

	assert_true(n < sizeof(line));
	memcpy(line, text, n + 1);
	int rc = dk_ctl_parse(line, n, r, &why);
	if (rc < 0) {
		assert_non_null(why);
		return rc;
	}
	snprintf(arg, size, "%s", r->arg ? r->arg : "(none)");
	return 0;
}

static void test_ctl_commands(void **state)
{
	struct dk_ctl_req r;
	char arg[64];

	(void)state;
	assert_int_equal(parse("status", &r, arg, sizeof(arg)), 0);
	assert_int_equal(r.cmd, DK_CTL_STATUS);
	assert_string_equal(arg, "(none)");
	assert_int_equal(parse("  stats\t", &r, arg, sizeof(arg)), 0);
	assert_int_equal(r.cmd, DK_CTL_STATS);
	assert_int_equal(parse("reload\r", &r, arg, sizeof(arg)), 0);
	assert_int_equal(r.cmd, DK_CTL_RELOAD);
	assert_int_equal(parse("flush  www.example.test", &r, arg, sizeof(arg)), 0);
	assert_int_equal(r.cmd, DK_CTL_FLUSH);
	assert_string_equal(arg, "www.example.test");
	assert_int_equal(parse("flush-all", &r, arg, sizeof(arg)), 0);
	assert_int_equal(r.cmd, DK_CTL_FLUSH_ALL);
	assert_int_equal(parse("top", &r, arg, sizeof(arg)), 0);
	assert_int_equal(r.cmd, DK_CTL_TOP);
	assert_string_equal(arg, "(none)");
	assert_int_equal(parse("top 20", &r, arg, sizeof(arg)), 0);
	assert_string_equal(arg, "20");
	assert_int_equal(parse("match a.b\r", &r, arg, sizeof(arg)), 0);
	assert_int_equal(r.cmd, DK_CTL_MATCH);
	assert_string_equal(arg, "a.b");
}

static void test_ctl_errors(void **state)
{
	struct dk_ctl_req r;
	char arg[64];
	char nul[] = "stat\0us";

	(void)state;
	assert_int_equal(parse("", &r, arg, sizeof(arg)), -EINVAL);
	assert_int_equal(parse(" \t ", &r, arg, sizeof(arg)), -EINVAL);
	assert_int_equal(parse("bogus", &r, arg, sizeof(arg)), -EINVAL);
	assert_int_equal(parse("status now", &r, arg, sizeof(arg)), -EINVAL);
	assert_int_equal(parse("flush", &r, arg, sizeof(arg)), -EINVAL);
	assert_int_equal(parse("match a b", &r, arg, sizeof(arg)), -EINVAL);
	assert_int_equal(parse("top 1 2", &r, arg, sizeof(arg)), -EINVAL);
	assert_int_equal(parse("STATUS", &r, arg, sizeof(arg)), -EINVAL);
	const char *why = NULL;
	assert_int_equal(dk_ctl_parse(nul, sizeof(nul) - 1, &r, &why), -EINVAL);
	assert_string_equal(why, "a NUL in the request");
}

static void test_http_target(void **state)
{
	static const char req[] = "GET /api/v1/top?n=5&minutes=3 HTTP/1.0\r\nHost: x\r\n\r\n";
	const char *path, *query;
	size_t plen, qlen;

	(void)state;
	assert_true(dk_http_target(req, sizeof(req) - 1, &path, &plen, &query, &qlen));
	assert_int_equal(plen, 11);
	assert_memory_equal(path, "/api/v1/top", 11);
	assert_int_equal(qlen, 13);
	assert_memory_equal(query, "n=5&minutes=3", 13);
	assert_int_equal(dk_query_uint(query, qlen, "n", 10, 1, 50), 5);
	assert_int_equal(dk_query_uint(query, qlen, "minutes", 10, 1, 10), 3);
	assert_int_equal(dk_query_uint(query, qlen, "x", 7, 1, 10), 7);
	assert_true(dk_http_target("GET /", 5, &path, &plen, &query, &qlen));
	assert_int_equal(plen, 1);
	assert_int_equal(qlen, 0);
	assert_false(dk_http_target("POST / HTTP/1.0\r\n", 17, &path, &plen, &query, &qlen));
	assert_false(dk_http_target("GE", 2, &path, &plen, &query, &qlen));
}

static void test_query_uint(void **state)
{
	(void)state;
	assert_int_equal(dk_query_uint("n=100000", 8, "n", 10, 1, 50), 50);
	assert_int_equal(dk_query_uint("n=0", 3, "n", 10, 1, 50), 1);
	assert_int_equal(dk_query_uint("n=", 2, "n", 10, 1, 50), 10);
	assert_int_equal(dk_query_uint("n=1x", 4, "n", 10, 1, 50), 10);
	assert_int_equal(dk_query_uint("nn=3&n=4", 8, "n", 10, 1, 50), 4);
	/* No overflow however long the number. */
	assert_int_equal(dk_query_uint("n=99999999999999999999999999", 28, "n", 10, 1, 50), 50);
	assert_int_equal(dk_query_uint("&&&", 3, "n", 10, 1, 50), 10);
}

static void test_token(void **state)
{
	static const char hdr[] = "GET / HTTP/1.0\r\nAUTHORIZATION: bearer s3cret\r\n\r\n";
	static const char wrong[] = "GET / HTTP/1.0\r\nAuthorization: Bearer s3cre\r\n\r\n";
	static const char none[] = "GET / HTTP/1.0\r\n\r\n";

	(void)state;
	assert_true(dk_http_has_token(hdr, sizeof(hdr) - 1, "", 0, "s3cret"));
	assert_false(dk_http_has_token(wrong, sizeof(wrong) - 1, "", 0, "s3cret"));
	assert_false(dk_http_has_token(none, sizeof(none) - 1, "", 0, "s3cret"));
	assert_true(dk_http_has_token(none, sizeof(none) - 1, "a=1&token=s3cret", 16, "s3cret"));
	assert_false(dk_http_has_token(none, sizeof(none) - 1, "token=s3cretX", 13, "s3cret"));
	assert_false(dk_http_has_token(none, sizeof(none) - 1, "xtoken=s3cret", 13, "s3cret"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_ctl_commands), cmocka_unit_test(test_ctl_errors),
	        cmocka_unit_test(test_http_target),  cmocka_unit_test(test_query_uint),
	        cmocka_unit_test(test_token),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
