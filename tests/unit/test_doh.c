/* SPDX-License-Identifier: MIT */
/* DNS over HTTPS requests (doh.c): HTTP/2 headers, HTTP/1.1 heads, GET and POST. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "dnsink/common.h"
#include "dnsink/doh.h"

/* RFC 8484 section 4.1.1: www.example.com A, ID 0, base64url. */
#define EX_B64 "AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB"
static const uint8_t ex_wire[] = {0,   0,   1,   0,   0,   1,   0,   0,   0,   0,   0,
                                  0,   3,   'w', 'w', 'w', 7,   'e', 'x', 'a', 'm', 'p',
                                  'l', 'e', 3,   'c', 'o', 'm', 0,   0,   1,   0,   1};

static int h2(const char *method, const char *path, const char *ct, const uint8_t *body,
              size_t blen, uint8_t *buf, size_t *len)
{
	struct dk_doh_req r;

	dk_doh_req_init(&r, buf, 512);
	if (method)
		dk_doh_header(&r, ":method", 7, method, strlen(method));
	dk_doh_header(&r, ":scheme", 7, "https", 5);
	if (path)
		dk_doh_header(&r, ":path", 5, path, strlen(path));
	if (ct)
		dk_doh_header(&r, "content-type", 12, ct, strlen(ct));
	dk_doh_body(&r, body, blen);
	int rc = dk_doh_finish(&r);
	*len = r.len;
	return rc;
}

static void test_get_and_post(void **state)
{
	uint8_t buf[512];
	size_t len;

	(void)state;
	assert_int_equal(h2("GET", "/dns-query?dns=" EX_B64, NULL, NULL, 0, buf, &len), 0);
	assert_int_equal(len, sizeof(ex_wire));
	assert_memory_equal(buf, ex_wire, sizeof(ex_wire));
	/* Other parameters around it are ignored. */
	assert_int_equal(h2("GET", "/dns-query?ct=x&dns=" EX_B64 "&z", NULL, NULL, 0, buf, &len),
	                 0);
	assert_int_equal(h2("POST", "/dns-query", "application/dns-message", ex_wire,
	                    sizeof(ex_wire), buf, &len),
	                 0);
	assert_memory_equal(buf, ex_wire, sizeof(ex_wire));
	assert_int_equal(h2("POST", "/dns-query", "Application/DNS-Message; charset=x", ex_wire,
	                    sizeof(ex_wire), buf, &len),
	                 0);
}

static void test_refused(void **state)
{
	uint8_t buf[512];
	size_t len;

	(void)state;
	assert_int_equal(h2("GET", "/other?dns=" EX_B64, NULL, NULL, 0, buf, &len), 404);
	assert_int_equal(h2("GET", "/dns-queryx", NULL, NULL, 0, buf, &len), 404);
	assert_int_equal(h2("GET", "/dns-query", NULL, NULL, 0, buf, &len), 400);
	assert_int_equal(h2("GET", "/dns-query?dns=", NULL, NULL, 0, buf, &len), 400);
	assert_int_equal(h2("GET", "/dns-query?dns=AAAA=", NULL, NULL, 0, buf, &len), 400);
	assert_int_equal(h2("GET", "/dns-query?dns=AA+/", NULL, NULL, 0, buf, &len), 400);
	assert_int_equal(h2("GET", "/dns-query?dns=AAAA", NULL, NULL, 0, buf, &len), 400);
	assert_int_equal(
	        h2("GET", "/dns-query?dns=" EX_B64 "&dns=" EX_B64, NULL, NULL, 0, buf, &len), 400);
	assert_int_equal(h2("PUT", "/dns-query", NULL, NULL, 0, buf, &len), 405);
	assert_int_equal(h2(NULL, "/dns-query", NULL, NULL, 0, buf, &len), 400);
	assert_int_equal(h2("POST", NULL, DK_DOH_CT, ex_wire, sizeof(ex_wire), buf, &len), 400);
	assert_int_equal(h2("POST", "/dns-query", NULL, ex_wire, sizeof(ex_wire), buf, &len), 415);
	assert_int_equal(
	        h2("POST", "/dns-query", "text/plain", ex_wire, sizeof(ex_wire), buf, &len), 415);
	assert_int_equal(h2("POST", "/dns-query", DK_DOH_CT, ex_wire, 5, buf, &len), 400);
	assert_int_equal(h2("GET", "/dns-query?dns=" EX_B64, NULL, ex_wire, 3, buf, &len), 400);

	/* Bodies and GET parameters larger than the buffer. */
	struct dk_doh_req r;
	uint8_t small[16];
	dk_doh_req_init(&r, small, sizeof(small));
	dk_doh_header(&r, ":method", 7, "POST", 4);
	assert_int_equal(dk_doh_body(&r, ex_wire, sizeof(ex_wire)), 413);
	dk_doh_req_init(&r, small, sizeof(small));
	assert_int_equal(dk_doh_header(&r, "content-length", 14, "99", 2), 413);
	dk_doh_req_init(&r, small, sizeof(small));
	dk_doh_header(&r, ":method", 7, "GET", 3);
	assert_int_equal(dk_doh_header(&r, ":path", 5, "/dns-query?dns=" EX_B64,
	                               strlen("/dns-query?dns=" EX_B64)),
	                 414);
	/* The first error sticks. */
	assert_int_equal(dk_doh_finish(&r), 414);
	/* Content-Length that lies. */
	dk_doh_req_init(&r, buf, sizeof(buf));
	dk_doh_header(&r, ":method", 7, "POST", 4);
	dk_doh_header(&r, ":path", 5, "/dns-query", 10);
	dk_doh_header(&r, "content-type", 12, DK_DOH_CT, strlen(DK_DOH_CT));
	dk_doh_header(&r, "content-length", 14, "40", 2);
	dk_doh_body(&r, ex_wire, sizeof(ex_wire));
	assert_int_equal(dk_doh_finish(&r), 400);
	dk_doh_req_init(&r, buf, sizeof(buf));
	assert_int_equal(dk_doh_header(&r, "content-length", 14, "4x", 2), 400);
}

static long http1(const char *head, struct dk_doh_req *r, uint8_t *buf)
{
	dk_doh_req_init(r, buf, 512);
	return dk_http1_head(head, strlen(head), r);
}

static void test_http1(void **state)
{
	uint8_t buf[512];
	struct dk_doh_req r;
	const char *get = "GET /dns-query?dns=" EX_B64 " HTTP/1.1\r\nHost: x\r\n"
	                  "Accept: application/dns-message\r\n\r\n";

	(void)state;
	assert_int_equal(http1(get, &r, buf), (long)strlen(get));
	assert_int_equal(dk_doh_finish(&r), 0);
	assert_true(r.keep_alive);
	assert_memory_equal(buf, ex_wire, sizeof(ex_wire));

	const char *post = "POST /dns-query HTTP/1.1\r\nContent-Type:  application/dns-message \r\n"
	                   "CONTENT-LENGTH: 33\r\nConnection: close\r\n\r\n";
	assert_int_equal(http1(post, &r, buf), (long)strlen(post));
	assert_int_equal(r.content_length, 33);
	assert_false(r.keep_alive);
	dk_doh_body(&r, ex_wire, sizeof(ex_wire));
	assert_int_equal(dk_doh_finish(&r), 0);

	/* Not yet complete, at every cut. */
	for (size_t n = 0; n < strlen(post); n++) {
		dk_doh_req_init(&r, buf, sizeof(buf));
		assert_int_equal(dk_http1_head(post, n, &r), 0);
	}
	assert_int_equal(http1("GET /dns-query HTTP/2.0\r\n\r\n", &r, buf), -505);
	assert_int_equal(http1("GET /dns-query HTTP/1.0\r\n\r\n", &r, buf) > 0, 1);
	assert_false(r.keep_alive);
	assert_int_equal(http1("GET\r\n\r\n", &r, buf), -400);
	assert_int_equal(http1(" / HTTP/1.1\r\n\r\n", &r, buf), -400);
	assert_int_equal(http1("GET  HTTP/1.1\r\n\r\n", &r, buf), -400);
	assert_int_equal(
	        http1("POST /dns-query HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &r, buf),
	        -501);
	assert_int_equal(http1("GET / HTTP/1.1\r\nno colon\r\n\r\n", &r, buf), -400);
	assert_int_equal(http1("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", &r, buf), -400);
	assert_int_equal(http1("GET / HTTP/1.1\r\n:path: /x\r\n\r\n", &r, buf), -400);

	static char big[DK_HTTP1_HEAD_MAX + 16];
	memset(big, 'a', sizeof(big) - 1);
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	assert_int_equal(http1(big, &r, buf), -431);
}

static void test_max_age(void **state)
{
	/* An answer to ex_wire's question: A 300 s and A 60 s, then an OPT (skipped). */
	static const uint8_t rr[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 192, 0, 2, 1};
	static const uint8_t rr2[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 2};
	static const uint8_t opt[] = {0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0};
	uint8_t a[128];
	size_t n = sizeof(ex_wire);

	(void)state;
	memcpy(a, ex_wire, n);
	a[2] = 0x81;
	a[3] = 0x80;
	a[7] = 2;  /* ANCOUNT */
	a[11] = 1; /* ARCOUNT */
	memcpy(a + n, rr, sizeof(rr));
	n += sizeof(rr);
	memcpy(a + n, rr2, sizeof(rr2));
	n += sizeof(rr2);
	memcpy(a + n, opt, sizeof(opt));
	n += sizeof(opt);
	assert_int_equal(dk_doh_max_age(a, n), 60);
	/* No records: no header. */
	assert_int_equal(dk_doh_max_age(ex_wire, sizeof(ex_wire)), -1);
	/* Cut short. */
	assert_int_equal(dk_doh_max_age(a, n - 12), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_get_and_post),
	        cmocka_unit_test(test_refused),
	        cmocka_unit_test(test_http1),
	        cmocka_unit_test(test_max_age),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
