/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the configuration loader (src/config.c): the shipped
 * conf/dnsink.yml, the default of every key, every error path with its exact
 * FILE:LINE: message (fixtures in tests/data/config/), the resolv.conf
 * fallback, address and CIDR parsing, and access-list matching.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <cmocka.h>

#include "dnsink/config.h"
#include "dnsink/upstream_spec.h"

#define DATA         "tests/data/config/"
#define RESOLV_BASIC DATA "resolv/basic.conf"

static struct dk_config *load_ok(const char *path, const char *resolv)
{
	struct dk_config *c = NULL;
	struct dk_diag d = {0};
	char msg[1200];
	int ret = dk_config_load(path, resolv, &c, &d);
	if (ret) {
		dk_diag_format(&d, msg, sizeof(msg));
		print_error("%s\n", msg);
	}
	assert_int_equal(ret, 0);
	assert_non_null(c);
	return c;
}

static void assert_addr(const struct dk_addr *a, const char *expect)
{
	char buf[128];
	assert_true(dk_addr_format(a, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, expect);
}

static void assert_cidr(const struct dk_cidr *c, const char *expect)
{
	char ip[INET6_ADDRSTRLEN], buf[80];
	assert_non_null(inet_ntop(c->family, c->addr, ip, sizeof(ip)));
	snprintf(buf, sizeof(buf), "%s/%u", ip, c->prefix);
	assert_string_equal(buf, expect);
}

static void assert_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_int_equal(p[i], 0);
}

/* Every key but upstreams (which depend on the resolv.conf) at its default. */
static void assert_defaults(const struct dk_config *c)
{
	assert_int_equal(c->n_listen, 2);
	assert_addr(&c->listen[0], "127.0.0.1:5353");
	assert_addr(&c->listen[1], "[::1]:5353");
	assert_int_equal(c->upstream_timeout_ms, 1500);
	assert_int_equal(c->n_allow, 2);
	assert_cidr(&c->allow[0], "127.0.0.0/8");
	assert_cidr(&c->allow[1], "::1/128");
	assert_int_equal(c->n_rules, 1);
	assert_string_equal(c->rules[0], "rules/");
	assert_zero(c->sinkhole.ipv4, 4);
	assert_zero(c->sinkhole.ipv6, 16);
	assert_int_equal(c->sinkhole.ttl, 60);
	assert_int_equal(c->alerts.transport, DK_SYSLOG_LOCAL);
	assert_string_equal(c->alerts.ident, "dnsink");
	assert_int_equal(c->alerts.facility, LOG_DAEMON);
	assert_null(c->alerts.unix_path);
	assert_null(c->alerts.file);
	assert_int_equal(c->alerts.format, DK_ALERT_FORMAT_NATIVE);
	assert_int_equal(c->alerts.queue, 10000);
	assert_int_equal(c->alerts.dedup_max, 65536);
	assert_int_equal(c->workers, 0);
	assert_int_equal(c->max_inflight, 4096);
	assert_int_equal(c->tcp_max_clients, 256);
	assert_int_equal(c->tcp_idle_ms, 10000);
	assert_null(c->user);
	assert_false(c->metrics_enabled);
	assert_int_equal(c->rate_limit.qps, 0);
	assert_int_equal(c->rate_limit.action, DK_RATELIMIT_DROP);
	assert_int_equal(c->rate_limit.table_size, 65536);
	assert_int_equal(c->rate_limit.ipv4_prefix, 32);
	assert_int_equal(c->rate_limit.ipv6_prefix, 64);
	assert_int_equal(c->cache.size_mb, 64);
	assert_int_equal(c->cache.min_ttl, 0);
	assert_int_equal(c->cache.max_ttl, 86400);
	assert_int_equal(c->cache.negative_max_ttl, 3600);
	assert_int_equal(c->cache.failure_ttl, 5);
	assert_true(c->cache.serve_stale);
	assert_int_equal(c->cache.stale_max_s, 86400);
	assert_true(c->cache.prefetch);
}

/* The upstreams basic.conf yields when no listener is on port 53. */
static void assert_basic_resolv(const struct dk_config *c)
{
	static const char *const expect[] = {
	        "127.0.0.1:53", "192.0.2.1:53", "[2001:db8::53]:53",
	        "[::1]:53",     "127.0.0.2:53", "198.51.100.2:53",
	};
	assert_true(c->upstreams_from_resolv);
	assert_int_equal(c->n_upstreams, DK_ARRAY_SIZE(expect));
	for (size_t i = 0; i < DK_ARRAY_SIZE(expect); i++)
		assert_addr(&c->upstreams[i], expect[i]);
}

static void test_shipped_conf(void **state)
{
	(void)state;
	struct dk_config *c = load_ok("conf/dnsink.yml", RESOLV_BASIC);
	assert_string_equal(c->file, "conf/dnsink.yml");
	/* The one key the shipped file sets away from its default: the quick start's alerts. */
	assert_string_equal(c->alerts.file, "alerts.jsonl");
	free(c->alerts.file);
	c->alerts.file = NULL;
	assert_defaults(c);
	assert_basic_resolv(c);
	dk_config_free(c);
}

static void test_empty_file_defaults(void **state)
{
	(void)state;
	struct dk_config *c = load_ok(DATA "good/empty.yml", RESOLV_BASIC);
	assert_defaults(c);
	assert_basic_resolv(c);
	dk_config_free(c);
}

/*
 * dk_config_set_defaults() gives a config built by hand the values the
 * loader gives an empty file, and allocates nothing: every pointer stays NULL.
 */
static void test_set_defaults(void **state)
{
	(void)state;
	struct dk_config hand;
	struct dk_config *c = load_ok(DATA "good/empty.yml", RESOLV_BASIC);

	memset(&hand, 0, sizeof(hand));
	dk_config_set_defaults(&hand);
	assert_int_equal(hand.upstream_timeout_ms, c->upstream_timeout_ms);
	assert_memory_equal(&hand.sinkhole, &c->sinkhole, sizeof(hand.sinkhole));
	assert_int_equal(hand.alerts.transport, c->alerts.transport);
	assert_int_equal(hand.alerts.facility, c->alerts.facility);
	assert_int_equal(hand.alerts.format, c->alerts.format);
	assert_int_equal(hand.alerts.queue, c->alerts.queue);
	assert_int_equal(hand.alerts.dedup_max, c->alerts.dedup_max);
	assert_int_equal(hand.workers, c->workers);
	assert_int_equal(hand.max_inflight, c->max_inflight);
	assert_int_equal(hand.tcp_max_clients, c->tcp_max_clients);
	assert_int_equal(hand.tcp_idle_ms, c->tcp_idle_ms);
	assert_int_equal(hand.rate_limit.qps, c->rate_limit.qps);
	assert_int_equal(hand.rate_limit.action, c->rate_limit.action);
	assert_int_equal(hand.rate_limit.table_size, c->rate_limit.table_size);
	assert_int_equal(hand.rate_limit.ipv4_prefix, c->rate_limit.ipv4_prefix);
	assert_int_equal(hand.rate_limit.ipv6_prefix, c->rate_limit.ipv6_prefix);
	assert_memory_equal(&hand.cache, &c->cache, sizeof(hand.cache));
	assert_string_equal(c->alerts.ident, DK_DEFAULT_ALERT_IDENT);
	assert_string_equal(c->rules[0], DK_DEFAULT_RULES);
	assert_null(hand.listen);
	assert_null(hand.allow);
	assert_null(hand.rules);
	assert_null(hand.upstreams);
	assert_null(hand.alerts.ident);
	dk_config_free(c);
}

static void test_null_values_keep_defaults(void **state)
{
	(void)state;
	struct dk_config *c = load_ok(DATA "good/nulls.yml", RESOLV_BASIC);
	assert_defaults(c);
	assert_false(c->upstreams_from_resolv);
	assert_int_equal(c->n_upstreams, 1);
	assert_addr(&c->upstreams[0], "192.0.2.53:53");
	dk_config_free(c);
}

static void test_every_key(void **state)
{
	(void)state;
	/* The resolv.conf must not be read when upstreams are configured. */
	struct dk_config *c = load_ok(DATA "good/full.yml", DATA "resolv/missing.conf");

	assert_int_equal(c->n_listen, 3);
	assert_addr(&c->listen[0], "192.0.2.10:5300");
	assert_addr(&c->listen[1], "[2001:db8::10]:53");
	assert_addr(&c->listen[2], "198.51.100.7:53");
	assert_false(c->upstreams_from_resolv);
	assert_int_equal(c->n_upstreams, 2);
	assert_addr(&c->upstreams[0], "9.9.9.9:53");
	assert_addr(&c->upstreams[1], "[2620:fe::fe]:5353");
	assert_int_equal(c->upstream_timeout_ms, 250);
	assert_int_equal(c->n_allow, 4);
	assert_cidr(&c->allow[0], "10.0.0.0/8");
	assert_cidr(&c->allow[1], "192.168.1.0/24");
	assert_cidr(&c->allow[2], "fd00::/8");
	assert_cidr(&c->allow[3], "203.0.113.5/32");
	assert_int_equal(c->n_rules, 2);
	assert_string_equal(c->rules[0], "rules/");
	assert_string_equal(c->rules[1], "/nonexistent-is-kept-absolute.yml");
	const uint8_t v4[4] = {192, 0, 2, 99};
	uint8_t v6[16];
	inet_pton(AF_INET6, "2001:db8::99", v6);
	assert_memory_equal(c->sinkhole.ipv4, v4, 4);
	assert_memory_equal(c->sinkhole.ipv6, v6, 16);
	assert_int_equal(c->sinkhole.ttl, 3600);
	assert_string_equal(c->alerts.ident, "dnsink-test");
	assert_int_equal(c->alerts.facility, LOG_LOCAL3);
	assert_int_equal(c->alerts.transport, DK_SYSLOG_TCP);
	assert_addr(&c->alerts.server, "[::1]:6514");
	assert_string_equal(c->alerts.file, "/var/log/dnsink/alerts.jsonl");
	assert_int_equal(c->alerts.format, DK_ALERT_FORMAT_OCSF);
	assert_int_equal(c->alerts.queue, 500);
	assert_int_equal(c->alerts.dedup_max, 1000);
	assert_int_equal(c->workers, 4);
	assert_int_equal(c->max_inflight, 100);
	assert_int_equal(c->tcp_max_clients, 33);
	assert_int_equal(c->tcp_idle_ms, 2500);
	assert_string_equal(c->user, "nobody");
	assert_true(c->metrics_enabled);
	assert_addr(&c->metrics, "127.0.0.1:9153");
	dk_config_free(c);
}

static void test_syslog_servers(void **state)
{
	(void)state;
	struct dk_config *c = load_ok(DATA "good/server_udp.yml", NULL);
	assert_int_equal(c->alerts.transport, DK_SYSLOG_UDP);
	assert_addr(&c->alerts.server, "127.0.0.1:514");
	assert_null(c->alerts.unix_path);
	dk_config_free(c);

	c = load_ok(DATA "good/server_unix.yml", NULL);
	assert_int_equal(c->alerts.transport, DK_SYSLOG_UNIX);
	assert_string_equal(c->alerts.unix_path, "/run/dnsink/log.sock");
	dk_config_free(c);

	c = load_ok(DATA "good/metrics6.yml", NULL);
	assert_true(c->metrics_enabled);
	assert_addr(&c->metrics, "[::1]:9100");
	dk_config_free(c);
}

static void test_rule_paths(void **state)
{
	(void)state;
	struct dk_config *c = load_ok(DATA "good/rules_rel/dnsink.yml", NULL);
	assert_int_equal(c->n_rules, 3);
	/* Not in the current directory (the repo root): taken from the config's folder. */
	assert_string_equal(c->rules[0], DATA "good/rules_rel/myrules/");
	/* Present in the current directory: kept as written. */
	assert_string_equal(c->rules[1], "rules/");
	assert_string_equal(c->rules[2], DATA "good/rules_rel/myrules/../myrules");
	dk_config_free(c);
}

static void test_allow_nobody(void **state)
{
	(void)state;
	struct dk_config *c = load_ok(DATA "good/allow_none.yml", NULL);
	struct sockaddr_in lo = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(c->n_allow, 0);
	assert_false(dk_acl_allows(c->allow, c->n_allow, (struct sockaddr *)&lo));
	dk_config_free(c);
}

/* --- errors --- */

struct err_case {
	const char *file; /* under tests/data/config/bad/ */
	unsigned line;
	const char *msg;
};

static const struct err_case err_cases[] = {
        {"unknown_key.yml", 3, "unknown key 'colour'"},
        {"unknown_nested.yml", 5, "unknown key 'idnet' in alerts.syslog"},
        {"listen_scalar.yml", 3, "listen: expected a list, got a scalar"},
        {"sinkhole_list.yml", 3, "sinkhole: expected a mapping, got a list"},
        {"user_list.yml", 2, "user: expected a string, got a list"},
        {"list_item_map.yml", 3, "upstreams: unknown key 'host' (expected address, pin_sha256)"},
        {"listen_item_map.yml", 3, "listen: expected a string, got a mapping"},
        {"tls_no_name.yml", 2,
         "upstreams: bad address 'tls://192.0.2.1': tls:// needs the server's name after '#' (or a "
         "pin_sha256)"},
        {"tls_hostname.yml", 2,
         "upstreams: bad address 'tls://dns.quad9.net#dns.quad9.net': tls:// takes an IP address "
         "(the name goes after '#')"},
        {"tls_bad_pin.yml", 3, "upstreams: pin_sha256 'abc' is not the base64 of a SHA-256 digest"},
        {"tls_pin_plain.yml", 3, "upstreams: pin_sha256 is for tls:// and https:// upstreams"},
        {"upstream_scheme.yml", 2,
         "upstreams: bad address 'udp://192.0.2.1': unknown scheme (expected tls://, https:// "
         "or a plain address)"},
        {"listen_tls_no_cert.yml", 3,
         "listen_tls and listen_https need tls.cert_file and tls.key_file"},
        {"listen_https_no_key.yml", 4,
         "listen_tls and listen_https need tls.cert_file and tls.key_file"},
        {"tls_ca_missing.yml", 2,
         "tls.ca_file: cannot read '/nonexistent/ca.pem': No such file or directory"},
        {"key_not_scalar.yml", 2, "keys must be plain words, got a list"},
        {"root_list.yml", 1, "expected a mapping of keys, got a list"},
        {"timeout_word.yml", 2, "upstream_timeout_ms: expected a non-negative integer, got 'fast'"},
        {"workers_negative.yml", 2, "workers: expected a non-negative integer, got '-1'"},
        {"workers_quoted.yml", 2, "workers: expected an integer without quotes, got '4'"},
        {"listen_bad_ip.yml", 4, "listen: bad address '127.0.0.300:53': not an IP address"},
        {"listen_hostname.yml", 3, "listen: bad address 'localhost:53': not an IP address"},
        {"upstream_port0.yml", 3, "upstreams: bad address '192.0.2.54:0': bad port (1..65535)"},
        {"upstream_port_big.yml", 2,
         "upstreams: bad address '[2001:db8::1]:65536': bad port (1..65535)"},
        {"metrics_bad.yml", 3,
         "metrics.listen: bad address '127.0.0.1:99999': bad port (1..65535)"},
        {"cidr_long.yml", 4, "allow_clients: bad CIDR '10.0.0.0/33': prefix longer than 32 bits"},
        {"cidr_long6.yml", 2, "allow_clients: bad CIDR '::/129': prefix longer than 128 bits"},
        {"cidr_garbage.yml", 3, "allow_clients: bad CIDR '10.0.0.0/abc': bad prefix length"},
        {"ttl_range.yml", 4, "sinkhole.ttl: 2147483648 is out of range (0..2147483647)"},
        {"timeout_low.yml", 2, "upstream_timeout_ms: 9 is out of range (10..60000)"},
        {"timeout_high.yml", 2, "upstream_timeout_ms: 60001 is out of range (10..60000)"},
        {"workers_range.yml", 2, "workers: 257 is out of range (0..256)"},
        {"inflight_range.yml", 2, "max_inflight: 15 is out of range (16..1000000)"},
        {"huge_number.yml", 2,
         "max_inflight: 99999999999999999999999 is out of range (16..1000000)"},
        {"tcp_range.yml", 3, "tcp.max_clients: 0 is out of range (1..100000)"},
        {"dup_key.yml", 4, "duplicate key 'listen' (first at line 2)"},
        {"dup_nested.yml", 5, "duplicate key 'alerts.queue' (first at line 3)"},
        {"yaml_syntax.yml", 4,
         "YAML syntax error: did not find expected key while parsing a block mapping"},
        {"yaml_unclosed.yml", 2,
         "YAML syntax error: did not find expected ',' or ']' while parsing a flow sequence"},
        {"facility.yml", 4,
         "alerts.syslog.facility: unknown value 'local8' (expected one of: kern, user, mail, "
         "daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, local0, local1, local2, "
         "local3, local4, local5, local6, local7)"},
        {"format.yml", 3, "alerts.format: unknown value 'cef' (expected one of: native, ocsf)"},
        {"server_scheme.yml", 4,
         "alerts.syslog.server: 'http://127.0.0.1:514': expected udp://IP[:PORT], "
         "tcp://IP[:PORT] or unix:///PATH"},
        {"server_host.yml", 4,
         "alerts.syslog.server: bad address 'loghost:514': not an IP address"},
        {"server_unix_rel.yml", 4,
         "alerts.syslog.server: 'unix://dev/log': unix:// needs an absolute path"},
        {"sinkhole_v6_in_v4.yml", 3, "sinkhole.ipv4: bad address '::1' (expected an IPv4 address)"},
        {"sinkhole_v4_in_v6.yml", 3,
         "sinkhole.ipv6: bad address '10.0.0.1' (expected an IPv6 address)"},
        {"ident_empty.yml", 4, "alerts.syslog.ident: empty string"},
        {"upstream_loop.yml", 5,
         "upstreams: 127.0.0.1:5353 is one of our own listeners (a forwarding loop)"},
        {"listen_twice.yml", 5, "listen: 127.0.0.1:5353 is listed twice"},
        {"listen_empty.yml", 2, "listen: empty list (remove the key for the default)"},
        {"rules_missing.yml", 4,
         "rules: 'no-such-rules-dir/' not found (looked in the current directory and in "
         "tests/data/config/bad)"},
        {"two_docs.yml", 2, "only one YAML document is allowed"},
        {"rate_limit_action.yml", 4,
         "rate_limit.action: unknown value 'slip' (expected one of: drop, refused)"},
        {"rate_limit_prefix.yml", 4, "rate_limit.ipv6_prefix: 129 is out of range (1..128)"},
        {"cache_failure_ttl.yml", 4, "cache.failure_ttl: 301 is out of range (1..300)"},
        {"cache_bool.yml", 3, "cache.serve_stale: expected true or false, got 'yes'"},
        {"cache_min_max.yml", 3, "cache: min_ttl 600 is above max_ttl 300"},
};

static void test_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < DK_ARRAY_SIZE(err_cases); i++) {
		const struct err_case *e = &err_cases[i];
		char path[256], got[1200], expect[1200];
		struct dk_config *c = (struct dk_config *)&c; /* must be reset to NULL */
		struct dk_diag d = {0};

		snprintf(path, sizeof(path), DATA "bad/%s", e->file);
		int ret = dk_config_load(path, RESOLV_BASIC, &c, &d);
		dk_diag_format(&d, got, sizeof(got));
		snprintf(expect, sizeof(expect), "%s:%u: %s", path, e->line, e->msg);
		if (strcmp(got, expect) != 0)
			print_error("case %s\n got: %s\nwant: %s\n", e->file, got, expect);
		assert_true(ret < 0);
		assert_null(c);
		assert_string_equal(got, expect);
	}
}

static void test_missing_file(void **state)
{
	(void)state;
	struct dk_config *c;
	struct dk_diag d = {0};
	char got[1200];
	assert_int_equal(dk_config_load(DATA "no-such.yml", NULL, &c, &d), -ENOENT);
	assert_null(c);
	dk_diag_format(&d, got, sizeof(got));
	assert_string_equal(got, DATA "no-such.yml: cannot open: No such file or directory");
}

/* --- resolv.conf --- */

static void test_resolv_skips_own_listeners(void **state)
{
	(void)state;
	/* Listeners on 127.0.0.1:53 and [::1]:53 take those two out; 127.0.0.2
	 * stays because we listen there on 5353 only. Comments, options and
	 * garbage lines are skipped. */
	struct dk_config *c = load_ok(DATA "good/listen53.yml", RESOLV_BASIC);
	static const char *const expect[] = {
	        "192.0.2.1:53",
	        "[2001:db8::53]:53",
	        "127.0.0.2:53",
	        "198.51.100.2:53",
	};
	assert_true(c->upstreams_from_resolv);
	assert_int_equal(c->n_upstreams, DK_ARRAY_SIZE(expect));
	for (size_t i = 0; i < DK_ARRAY_SIZE(expect); i++)
		assert_addr(&c->upstreams[i], expect[i]);
	dk_config_free(c);
}

static void test_resolv_wildcard_listener(void **state)
{
	(void)state;
	/* 0.0.0.0:53 also receives what is sent to 127.0.0.53:53. */
	struct dk_config *c = load_ok(DATA "good/listen_any53.yml", DATA "resolv/stub.conf");
	assert_int_equal(c->n_upstreams, 1);
	assert_addr(&c->upstreams[0], "192.0.2.5:53");
	dk_config_free(c);
}

static void test_resolv_none_left(void **state)
{
	(void)state;
	static const struct {
		const char *resolv, *msg;
	} cases[] = {
	        {DATA "resolv/own_only.conf",
	         "no upstreams configured and none usable in " DATA "resolv/own_only.conf"},
	        {DATA "resolv/empty.conf",
	         "no upstreams configured and none usable in " DATA "resolv/empty.conf"},
	        {DATA "resolv/missing.conf", "no upstreams configured and none usable in " DATA
	                                     "resolv/missing.conf (No such file or directory)"},
	};
	for (size_t i = 0; i < DK_ARRAY_SIZE(cases); i++) {
		struct dk_config *c;
		struct dk_diag d = {0};
		char got[1200], expect[1200];
		assert_true(dk_config_load(DATA "good/listen53.yml", cases[i].resolv, &c, &d) < 0);
		assert_null(c);
		dk_diag_format(&d, got, sizeof(got));
		snprintf(expect, sizeof(expect), DATA "good/listen53.yml: %s", cases[i].msg);
		assert_string_equal(got, expect);
	}
}

/* --- addresses --- */

static void test_addr_parse_good(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		uint16_t def;
		const char *out;
	} cases[] = {
	        {"1.2.3.4", 53, "1.2.3.4:53"},
	        {"1.2.3.4:5353", 53, "1.2.3.4:5353"},
	        {"0.0.0.0:1", 53, "0.0.0.0:1"},
	        {"255.255.255.255:65535", 53, "255.255.255.255:65535"},
	        {"::1", 53, "[::1]:53"},
	        {"::", 9, "[::]:9"},
	        {"[::1]:53", 0, "[::1]:53"},
	        {"[::1]", 853, "[::1]:853"},
	        {"2001:DB8::1", 53, "[2001:db8::1]:53"},
	        {"[::ffff:10.0.0.1]:53", 0, "[::ffff:10.0.0.1]:53"},
	        {"[fe80::1%1]:53", 0, "[fe80::1%lo]:53"},
	        {"[fe80::1%lo]:5353", 0, "[fe80::1%lo]:5353"},
	        {"fe80::2%lo", 53, "[fe80::2%lo]:53"},
	        {"10.0.0.1", 0, "10.0.0.1:0"}, /* a default of 0 is the caller's choice */
	};
	for (size_t i = 0; i < DK_ARRAY_SIZE(cases); i++) {
		struct dk_addr a;
		if (dk_addr_parse(cases[i].in, cases[i].def, &a) != 0)
			print_error("rejected: %s\n", cases[i].in);
		assert_int_equal(dk_addr_parse(cases[i].in, cases[i].def, &a), 0);
		assert_int_equal(a.len, a.sa.sa_family == AF_INET ? sizeof(struct sockaddr_in)
		                                                  : sizeof(struct sockaddr_in6));
		assert_addr(&a, cases[i].out);
	}
}

static void test_addr_parse_bad(void **state)
{
	(void)state;
	static const char *const bad[] = {
	        "",
	        "localhost",
	        "example.com:53",
	        "1.2.3",
	        "1.2.3.4.5",
	        "1.2.3.256",
	        "1.2.3.4:",
	        "1.2.3.4:0",
	        "1.2.3.4:65536",
	        "1.2.3.4:99999999",
	        "1.2.3.4:53x",
	        "1.2.3.4:-1",
	        "1.2.3.4:+53",
	        " 1.2.3.4",
	        "1.2.3.4 ",
	        "[1.2.3.4]:53",
	        "[::1",
	        "[::1]53",
	        "[::1]:",
	        "[::1]:0",
	        "[::1]:65536",
	        "::1:53:",
	        ":::",
	        "[fe80::1%]:53",
	        "[fe80::1%no-such-if0]:53",
	        "1.2.3.4%lo",
	        "[]:53",
	        "12345::1",
	};
	for (size_t i = 0; i < DK_ARRAY_SIZE(bad); i++) {
		struct dk_addr a;
		if (dk_addr_parse(bad[i], 53, &a) != DK_ESYNTAX)
			print_error("accepted: '%s'\n", bad[i]);
		assert_int_equal(dk_addr_parse(bad[i], 53, &a), DK_ESYNTAX);
	}
}

static void test_addr_format_space(void **state)
{
	(void)state;
	struct dk_addr a;
	char buf[32];
	assert_int_equal(dk_addr_parse("[2001:db8::1]:53", 0, &a), 0);
	/* "[2001:db8::1]:53" is 16 characters: it needs 17 octets. */
	assert_int_equal(dk_addr_format(&a, buf, 16), DK_ESPACE);
	assert_int_equal(dk_addr_format(&a, buf, 17), 16);
	assert_string_equal(buf, "[2001:db8::1]:53");
}

static void test_sockaddr_ip(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} cases[] = {
	        {"10.0.0.5:53211", "10.0.0.5"},
	        {"[2001:db8::5]:53", "2001:db8::5"},
	        {"[::ffff:10.0.0.5]:53", "10.0.0.5"}, /* mapped: shown as IPv4 */
	        {"[fe80::1%lo]:53", "fe80::1"},       /* no scope, no port */
	};
	for (size_t i = 0; i < DK_ARRAY_SIZE(cases); i++) {
		struct dk_addr a;
		char buf[64];
		assert_int_equal(dk_addr_parse(cases[i].in, 0, &a), 0);
		assert_int_equal(dk_sockaddr_ip(&a.sa, buf, sizeof(buf)),
		                 (int)strlen(cases[i].out));
		assert_string_equal(buf, cases[i].out);
	}
	struct dk_addr a;
	char small[9];
	assert_int_equal(dk_addr_parse("10.0.0.5", 0, &a), 0);
	/* "10.0.0.5" needs 8 octets plus the NUL: one short fails, exact fits. */
	assert_int_equal(dk_sockaddr_ip(&a.sa, small, sizeof(small) - 1), DK_ESPACE);
	assert_int_equal(dk_sockaddr_ip(&a.sa, small, sizeof(small)), 8);
}

/* --- CIDR and ACL --- */

static void test_cidr_parse_good(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} cases[] = {
	        {"10.0.0.0/8", "10.0.0.0/8"},
	        {"10.1.2.3/8", "10.0.0.0/8"}, /* host bits cleared */
	        {"192.168.1.77/24", "192.168.1.0/24"},
	        {"192.168.1.255/25", "192.168.1.128/25"},
	        {"172.31.255.255/12", "172.16.0.0/12"},
	        {"1.2.3.4", "1.2.3.4/32"},
	        {"1.2.3.4/32", "1.2.3.4/32"},
	        {"255.255.255.255/0", "0.0.0.0/0"},
	        {"::1", "::1/128"},
	        {"::1/128", "::1/128"},
	        {"2001:db8:ffff::1/33", "2001:db8:8000::/33"},
	        {"fd12:3456::/8", "fd00::/8"},
	        {"ffff::/0", "::/0"},
	        {"::ffff:10.0.0.0/104", "::ffff:10.0.0.0/104"},
	};
	for (size_t i = 0; i < DK_ARRAY_SIZE(cases); i++) {
		struct dk_cidr c;
		if (dk_cidr_parse(cases[i].in, &c) != 0)
			print_error("rejected: %s\n", cases[i].in);
		assert_int_equal(dk_cidr_parse(cases[i].in, &c), 0);
		assert_cidr(&c, cases[i].out);
	}
}

static void test_cidr_parse_bad(void **state)
{
	(void)state;
	static const char *const bad[] = {
	        "",
	        "/8",
	        "10.0.0.0/",
	        "10.0.0.0/33",
	        "10.0.0.0/-1",
	        "10.0.0.0/8/8",
	        "10.0.0.0/ 8",
	        "10.0.0.0/8 ",
	        "10.0.0/8",
	        "::/129",
	        "::/1000",
	        "fe80::1%lo/64",
	        "10.0.0.0:53/8",
	        "net/8",
	        "10.0.0.0/0x8",
	};
	for (size_t i = 0; i < DK_ARRAY_SIZE(bad); i++) {
		struct dk_cidr c;
		if (dk_cidr_parse(bad[i], &c) != DK_ESYNTAX)
			print_error("accepted: '%s'\n", bad[i]);
		assert_int_equal(dk_cidr_parse(bad[i], &c), DK_ESYNTAX);
	}
}

static bool acl_check(const char *const *list, size_t n, const char *client)
{
	struct dk_cidr acl[8];
	struct dk_addr a;
	assert_true(n <= DK_ARRAY_SIZE(acl));
	for (size_t i = 0; i < n; i++)
		assert_int_equal(dk_cidr_parse(list[i], &acl[i]), 0);
	assert_int_equal(dk_addr_parse(client, 0, &a), 0);
	return dk_acl_allows(acl, n, &a.sa);
}

static void test_acl(void **state)
{
	(void)state;
	static const char *const lan[] = {"10.0.0.0/8", "192.168.1.5/32", "fd00::/8",
	                                  "2001:db8::1/128"};
	static const char *const any4[] = {"0.0.0.0/0"};
	static const char *const any6[] = {"::/0"};
	static const char *const mapped6[] = {"::ffff:172.16.0.0/108"};
	static const char *const odd[] = {"192.168.0.0/23"};
	static const struct {
		const char *const *acl;
		size_t n;
		const char *client;
		bool allowed;
	} cases[] = {
	        {lan, 4, "10.0.0.1", true},
	        {lan, 4, "10.255.255.255", true},
	        {lan, 4, "11.0.0.0", false},
	        {lan, 4, "9.255.255.255", false},
	        {lan, 4, "192.168.1.5", true}, /* /32 edge */
	        {lan, 4, "192.168.1.4", false},
	        {lan, 4, "192.168.1.6", false},
	        {lan, 4, "fd00::1", true},
	        {lan, 4, "fdff:ffff::1", true},
	        {lan, 4, "fe00::1", false},
	        {lan, 4, "2001:db8::1", true}, /* /128 edge */
	        {lan, 4, "2001:db8::2", false},
	        {lan, 4, "2001:db8::", false},
	        {lan, 4, "::ffff:10.1.2.3", true}, /* mapped matches as IPv4 */
	        {lan, 4, "::ffff:192.168.1.5", true},
	        {lan, 4, "::ffff:11.1.2.3", false},
	        {lan, 4, "::10.1.2.3", false},  /* IPv4-compatible is not mapped */
	        {lan, 0, "10.0.0.1", false},    /* empty list allows nobody */
	        {any4, 1, "203.0.113.9", true}, /* /0 */
	        {any4, 1, "0.0.0.0", true},
	        {any4, 1, "2001:db8::9", false},
	        {any4, 1, "::ffff:203.0.113.9", true},
	        {any6, 1, "2001:db8::9", true},
	        {any6, 1, "203.0.113.9", false},
	        {mapped6, 1, "::ffff:172.16.3.4", true}, /* IPv6 form of the prefix also works */
	        {mapped6, 1, "::ffff:172.32.0.1", false},
	        {mapped6, 1, "172.16.3.4", false},
	        {odd, 1, "192.168.1.200", true}, /* prefix not on an octet boundary */
	        {odd, 1, "192.168.0.1", true},
	        {odd, 1, "192.168.2.1", false},
	};
	for (size_t i = 0; i < DK_ARRAY_SIZE(cases); i++) {
		bool got = acl_check(cases[i].acl, cases[i].n, cases[i].client);
		if (got != cases[i].allowed)
			print_error("case %zu: %s\n", i, cases[i].client);
		assert_int_equal(got, cases[i].allowed);
	}
	struct sockaddr unix_sa = {.sa_family = AF_UNIX};
	struct dk_cidr all;
	assert_int_equal(dk_cidr_parse("0.0.0.0/0", &all), 0);
	assert_false(dk_acl_allows(&all, 1, &unix_sa));
}

static void test_rate_limit(void **state)
{
	(void)state;
	struct dk_config *c = load_ok(DATA "good/rate_limit.yml", NULL);
	assert_int_equal(c->rate_limit.qps, 250);
	assert_int_equal(c->rate_limit.burst, 500);
	assert_int_equal(c->rate_limit.action, DK_RATELIMIT_REFUSED);
	assert_int_equal(c->rate_limit.table_size, 1024);
	assert_int_equal(c->rate_limit.ipv4_prefix, 24);
	assert_int_equal(c->rate_limit.ipv6_prefix, 56);
	dk_config_free(c);
	/* Without a burst, one second's worth. */
	c = load_ok(DATA "good/rate_limit_qps.yml", NULL);
	assert_int_equal(c->rate_limit.qps, 40);
	assert_int_equal(c->rate_limit.burst, 40);
	assert_int_equal(c->rate_limit.action, DK_RATELIMIT_DROP);
	assert_int_equal(c->rate_limit.ipv6_prefix, 64);
	dk_config_free(c);
}

static void test_cache(void **state)
{
	(void)state;
	struct dk_config *c = load_ok(DATA "good/cache.yml", NULL);
	assert_int_equal(c->cache.size_mb, 8);
	assert_int_equal(c->cache.min_ttl, 10);
	assert_int_equal(c->cache.max_ttl, 3600);
	assert_int_equal(c->cache.negative_max_ttl, 60);
	assert_int_equal(c->cache.failure_ttl, 2);
	assert_false(c->cache.serve_stale);
	assert_int_equal(c->cache.stale_max_s, 600);
	assert_false(c->cache.prefetch);
	dk_config_free(c);
}

static void test_tls_upstreams(void **state)
{
	(void)state;
	struct dk_config *c = load_ok(DATA "good/tls.yml", NULL);
	static const uint8_t pin0[3] = {0xe3, 0xb0, 0xc4}; /* SHA-256 of nothing */

	assert_int_equal(c->n_upstreams, 4);
	assert_non_null(c->upstream_opts);
	assert_addr(&c->upstreams[0], "127.0.0.1:5300");
	assert_int_equal(c->upstream_opts[0].proto, DK_UP_DNS);
	assert_addr(&c->upstreams[1], "9.9.9.9:853");
	assert_int_equal(c->upstream_opts[1].proto, DK_UP_TLS);
	assert_string_equal(c->upstream_opts[1].name, "dns.quad9.net");
	assert_false(c->upstream_opts[1].has_pin);
	assert_addr(&c->upstreams[2], "[2620:fe::fe]:8853");
	assert_addr(&c->upstreams[3], "192.0.2.7:853");
	assert_string_equal(c->upstream_opts[3].name, "");
	assert_true(c->upstream_opts[3].has_pin);
	assert_memory_equal(c->upstream_opts[3].pin, pin0, sizeof(pin0));
	/* Relative to the config's folder, as rule paths. */
	assert_string_equal(c->tls.ca_file, DATA "good/tls.yml");
	dk_config_free(c);

	/* Plain upstreams only: no options array at all. */
	c = load_ok(DATA "good/cache.yml", NULL);
	assert_null(c->upstream_opts);
	dk_config_free(c);
}

static void test_free_null(void **state)
{
	(void)state;
	dk_config_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_shipped_conf),
	        cmocka_unit_test(test_empty_file_defaults),
	        cmocka_unit_test(test_set_defaults),
	        cmocka_unit_test(test_null_values_keep_defaults),
	        cmocka_unit_test(test_every_key),
	        cmocka_unit_test(test_syslog_servers),
	        cmocka_unit_test(test_rule_paths),
	        cmocka_unit_test(test_allow_nobody),
	        cmocka_unit_test(test_errors),
	        cmocka_unit_test(test_missing_file),
	        cmocka_unit_test(test_resolv_skips_own_listeners),
	        cmocka_unit_test(test_resolv_wildcard_listener),
	        cmocka_unit_test(test_resolv_none_left),
	        cmocka_unit_test(test_addr_parse_good),
	        cmocka_unit_test(test_addr_parse_bad),
	        cmocka_unit_test(test_addr_format_space),
	        cmocka_unit_test(test_sockaddr_ip),
	        cmocka_unit_test(test_cidr_parse_good),
	        cmocka_unit_test(test_cidr_parse_bad),
	        cmocka_unit_test(test_acl),
	        cmocka_unit_test(test_free_null),
	        cmocka_unit_test(test_rate_limit),
	        cmocka_unit_test(test_cache),
	        cmocka_unit_test(test_tls_upstreams),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
