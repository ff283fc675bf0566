/* SPDX-License-Identifier: MIT */
/* EDNS padding of queries (pad.c) and the base64 decoders (base64.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "dnsink/common.h"
#include "dnsink/msg.h"
#include "dnsink/pad.h"
#include "dnsink/upstream_spec.h"

/* example.com. A, with an OPT record (UDP 1232) when @p edns; returns the length. */
static size_t make_query(uint8_t *q, bool edns)
{
	static const uint8_t hdr[] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
	static const uint8_t qn[] = {7,   'e', 'x', 'a', 'm', 'p', 'l', 'e', 3,
	                             'c', 'o', 'm', 0,   0,   1,   0,   1};
	static const uint8_t opt[] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};
	size_t n = 0;

	memcpy(q, hdr, sizeof(hdr));
	n += sizeof(hdr);
	memcpy(q + n, qn, sizeof(qn));
	n += sizeof(qn);
	if (edns) {
		q[11] = 1;
		memcpy(q + n, opt, sizeof(opt));
		n += sizeof(opt);
	}
	return n;
}

static void test_pad_to_block(void **state)
{
	uint8_t q[512], out[512];
	size_t n = make_query(q, true);

	(void)state;
	int got = dk_pad_query(q, n, DK_PAD_QUERY_BLOCK, out, sizeof(out));
	assert_int_equal(got, 128);
	/* The OPT's RDLENGTH covers the padding option, and the message still parses. */
	assert_int_equal(out[n - 2] << 8 | out[n - 1], 128 - n);
	assert_int_equal(out[n] << 8 | out[n + 1], 12);
	assert_int_equal(out[n + 2] << 8 | out[n + 3], 128 - n - 4);
	struct dk_query pq;
	assert_int_equal(dk_msg_parse_query(out, (size_t)got, &pq), 0);
	assert_true(pq.has_edns);
	assert_memory_equal(out, q, n - 2);

	/* Already padded: copied as it is. */
	uint8_t again[512];
	assert_int_equal(dk_pad_query(out, (size_t)got, 128, again, sizeof(again)), got);
	assert_memory_equal(again, out, (size_t)got);
}

static void test_pad_needs_opt(void **state)
{
	uint8_t q[512], out[512];
	size_t n = make_query(q, false);

	(void)state;
	/* No OPT: never added (the answer would carry one the client did not ask for). */
	assert_int_equal(dk_pad_query(q, n, 128, out, sizeof(out)), (int)n);
	assert_memory_equal(out, q, n);
	/* No room for the padding: sent unpadded rather than not at all. */
	n = make_query(q, true);
	assert_int_equal(dk_pad_query(q, n, 128, out, n + 8), (int)n);
	assert_int_equal(dk_pad_query(q, n, 128, out, n - 1), DK_ESPACE);
	/* Records that do not parse. */
	q[11] = 2;
	assert_int_equal(dk_pad_query(q, n, 128, out, sizeof(out)), DK_EFORMERR);
}

static void test_base64(void **state)
{
	uint8_t out[64];

	(void)state;
	assert_int_equal(dk_base64_decode("Zm9vYmFy", 8, true, out, sizeof(out)), 6);
	assert_memory_equal(out, "foobar", 6);
	assert_int_equal(dk_base64_decode("Zm9vYg==", 8, true, out, sizeof(out)), 4);
	assert_int_equal(dk_base64_decode("Zm9vYg", 6, false, out, sizeof(out)), 4);
	assert_int_equal(dk_base64_decode("-_8", 3, false, out, sizeof(out)), 2);
	assert_int_equal(out[0], 0xfb);
	assert_int_equal(out[1], 0xff);
	assert_int_equal(dk_base64_decode("+/8", 3, false, out, sizeof(out)), DK_ESYNTAX);
	assert_int_equal(dk_base64_decode("Zm9vYg", 6, true, out, sizeof(out)), DK_ESYNTAX);
	assert_int_equal(dk_base64_decode("Zm9vY", 5, false, out, sizeof(out)), DK_ESYNTAX);
	/* Non-zero bits past the end are not canonical. */
	assert_int_equal(dk_base64_decode("Zm9vYh", 6, false, out, sizeof(out)), DK_ESYNTAX);
	assert_int_equal(dk_base64_decode("Zm9vYmFy", 8, true, out, 5), DK_ESPACE);
	assert_int_equal(dk_base64_decode("", 0, false, out, sizeof(out)), 0);

	uint8_t pin[DK_PIN_LEN];
	assert_int_equal(dk_pin_parse("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", pin), 0);
	assert_int_equal(pin[0], 0xe3);
	assert_int_equal(dk_pin_parse("Zm9vYmFy", pin), DK_ESYNTAX);
}

static void test_upstream_spec(void **state)
{
	struct dk_addr a;
	struct dk_up_opts o;
	const char *why;

	(void)state;
	assert_int_equal(dk_upstream_spec_parse("192.0.2.1", 53, false, &a, &o, &why), 0);
	assert_int_equal(o.proto, DK_UP_DNS);
	assert_int_equal(ntohs(a.in4.sin_port), 53);
	assert_int_equal(
	        dk_upstream_spec_parse("tls://192.0.2.1:8853#a.b", 53, false, &a, &o, &why), 0);
	assert_int_equal(o.proto, DK_UP_TLS);
	assert_int_equal(ntohs(a.in4.sin_port), 8853);
	assert_string_equal(o.name, "a.b");
	assert_int_equal(dk_upstream_spec_parse("tls://192.0.2.1", 53, true, &a, &o, &why), 0);
	assert_int_equal(ntohs(a.in4.sin_port), 853);
	assert_int_equal(dk_upstream_spec_parse("https://192.0.2.1/dns-query#dns.example", 53,
	                                        false, &a, &o, &why),
	                 0);
	assert_int_equal(o.proto, DK_UP_HTTPS);
	assert_int_equal(ntohs(a.in4.sin_port), 443);
	assert_string_equal(o.path, "/dns-query");
	assert_string_equal(o.name, "dns.example");
	assert_int_equal(
	        dk_upstream_spec_parse("https://[::1]:8443/q/x#a", 53, false, &a, &o, &why), 0);
	assert_int_equal(ntohs(a.in6.sin6_port), 8443);
	assert_string_equal(o.path, "/q/x");
	static const char *const bad[] = {
	        "tls://192.0.2.1",
	        "tls://192.0.2.1#",
	        "tls://192.0.2.1#a..b",
	        "tls://#a.b",
	        "tls://host.example#a.b",
	        "https://192.0.2.1#a",
	        "quic://192.0.2.1#a",
	        "tls://192.0.2.1#a b",
	        "",
	        "https://192.0.2.1/a?b#c",
	        "https://192.0.2.1/dns-query",
	        "https:///x#a",
	        "https://h.example/dns-query#a",
	};
	for (size_t i = 0; i < DK_ARRAY_SIZE(bad); i++)
		assert_int_equal(dk_upstream_spec_parse(bad[i], 53, false, &a, &o, &why),
		                 DK_ESYNTAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_pad_to_block),
	        cmocka_unit_test(test_pad_needs_opt),
	        cmocka_unit_test(test_base64),
	        cmocka_unit_test(test_upstream_spec),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
