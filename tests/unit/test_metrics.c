/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the Prometheus renderer, dk_metrics_render()
 * (src/daemon/metrics.c). It reads real workers, so the test makes two with
 * dk_worker_new() on a snapshot loaded by dk_snapshot_load() from a small
 * config and two rules in a temp dir (listening on a free loopback port,
 * upstreams that are never contacted) and never starts them. Their counters
 * are set by the test, which stands in for the rooms: it is the only thread
 * that writes them, since no worker runs. The rule hits and upstream stats
 * come through dk_worker_stats(); the plain counters through
 * dk_worker_counters(), whose const the test casts away (the counters are
 * the worker's writable memory; only the worker's rooms normally write them).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/metrics.h"
#include "daemon/snapshot.h"
#include "daemon/sock.h"
#include "free_port.h"
#include "daemon/worker.h"
#include "dnsink/alert.h"

struct fx {
	char dir[64];
	char path[3][160]; /* config, two rule files */
	char rules[96];
	struct dk_stats_reg *reg;
	struct dk_snapshot *snap;
	struct dk_worker *w[2];
};

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

static uint16_t free_port(void)
{
	struct dk_addr a;

	free_addr(&a);
	return ntohs(a.in4.sin_port);
}

static void hook(void *ctx)
{
	(void)ctx;
	fail_msg("a worker that never runs calls no hook");
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	char cfg[512];

	assert_non_null(fx);
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/dk-test-metrics-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->rules, sizeof(fx->rules), "%s/rules", fx->dir);
	assert_int_equal(mkdir(fx->rules, 0700), 0);
	snprintf(fx->path[0], sizeof(fx->path[0]), "%s/dnsink.yml", fx->dir);
	snprintf(fx->path[1], sizeof(fx->path[1]), "%s/a.yml", fx->rules);
	snprintf(fx->path[2], sizeof(fx->path[2]), "%s/b.yml", fx->rules);
	write_file(fx->path[1], "id: M.One\nname: one\nseverity: low\naction: nxdomain\n"
	                        "domains: [one.test]\n");
	write_file(fx->path[2], "id: M.Two\nname: two\nseverity: high\naction: alert\n"
	                        "domains: [two.test]\n");
	snprintf(cfg, sizeof(cfg),
	         "listen: [\"127.0.0.1:%u\"]\n"
	         "upstreams: [\"127.0.0.1:9\", \"127.0.0.2:5353\"]\n"
	         "rules: [\"%s\"]\n"
	         "workers: 2\nmax_inflight: 16\n",
	         free_port(), fx->rules);
	write_file(fx->path[0], cfg);

	fx->reg = dk_stats_reg_new();
	assert_non_null(fx->reg);
	assert_int_equal(dk_snapshot_load(fx->path[0], NULL, fx->reg, NULL, 0, &fx->snap, NULL, 0),
	                 0);
	assert_non_null(fx->snap->pol);
	assert_int_equal(fx->snap->pol->n_rules, 2);

	const struct dk_worker_hooks hooks = {.took = hook, .ended = hook};
	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(dk_worker_new(i, 2, fx->snap, dk_wstats_new(fx->reg), NULL, NULL,
		                               &hooks, &fx->w[i]),
		                 0);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	for (int i = 0; i < 2; i++)
		dk_worker_free(fx->w[i]);
	dk_snapshot_free(fx->snap);
	dk_stats_reg_free(fx->reg);
	for (int i = 2; i >= 0; i--)
		unlink(fx->path[i]);
	rmdir(fx->rules);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

/* The test writes the counters of a worker that never runs (see the top). */
static struct dk_counters *ctr(struct fx *fx, int i)
{
	return (struct dk_counters *)dk_worker_counters(fx->w[i]);
}

static char *render(struct fx *fx, size_t *len)
{
	const struct dk_worker *const ws[2] = {fx->w[0], fx->w[1]};
	const struct dk_metrics_src src = {
	        .workers = ws,
	        .n_workers = 2,
	        .snap = fx->snap,
	        .reload_time = 1700000000.25,
	        .reload_ok = true,
	};
	char *t = dk_metrics_render(&src, len);

	assert_non_null(t);
	/* The text is the whole buffer, NUL-terminated, and ends with a newline. */
	assert_int_equal(strlen(t), *len);
	assert_true(*len > 0);
	assert_int_equal(t[*len - 1], '\n');
	return t;
}

/* True when @p text holds @p line as a whole line. */
static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)); p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

static void expect(const char *text, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (!has_line(text, line))
		fail_msg("no line '%s' in:\n%s", line, text);
}

static void test_counters_summed(void **state)
{
	struct fx *fx = *state;
	size_t len;

	dk_ctr_add(&ctr(fx, 0)->query.queries[DK_TRANSPORT_UDP], 10);
	dk_ctr_add(&ctr(fx, 1)->query.queries[DK_TRANSPORT_UDP], 5);
	dk_ctr_add(&ctr(fx, 1)->query.queries[DK_TRANSPORT_TCP], 3);
	dk_ctr_add(&ctr(fx, 0)->query.out[DK_TRANSPORT_UDP][DK_OUT_FORWARDED], 6);
	dk_ctr_add(&ctr(fx, 1)->query.out[DK_TRANSPORT_UDP][DK_OUT_FORWARDED], 2);
	dk_ctr_add(&ctr(fx, 1)->query.out[DK_TRANSPORT_TCP][DK_OUT_NXDOMAIN], 3);
	dk_ctr_add(&ctr(fx, 0)->query.out[DK_TRANSPORT_UDP][DK_OUT_RATELIMITED], 4);
	dk_ctr_add(&ctr(fx, 0)->up.mismatched, 1);
	dk_ctr_add(&ctr(fx, 1)->up.mismatched, 2);
	dk_ctr_add(&ctr(fx, 0)->tcp.rejected, 9);
	dk_ctr_set(&ctr(fx, 0)->up.inflight, 4);
	dk_ctr_set(&ctr(fx, 1)->up.inflight, 1);

	char *t = render(fx, &len);
	expect(t, "dnsink_workers 2");
	expect(t, "# TYPE dnsink_queries_received_total counter");
	expect(t, "dnsink_queries_received_total{transport=\"udp\"} 15");
	expect(t, "dnsink_queries_received_total{transport=\"tcp\"} 3");
	expect(t, "dnsink_queries_total{transport=\"udp\",outcome=\"forwarded\"} 8");
	expect(t, "dnsink_queries_total{transport=\"tcp\",outcome=\"nxdomain\"} 3");
	expect(t, "dnsink_queries_total{transport=\"udp\",outcome=\"ratelimited\"} 4");
	expect(t, "dnsink_queries_total{transport=\"tcp\",outcome=\"forwarded\"} 0");
	expect(t, "dnsink_inflight_queries 5");
	expect(t, "dnsink_upstream_mismatched_total 3");
	expect(t, "dnsink_tcp_connections_total{state=\"rejected\"} 9");
	expect(t, "dnsink_rules_loaded 2");
	expect(t, "dnsink_reload_last_success 1");
	expect(t, "dnsink_reload_last_timestamp_seconds 1700000000.250");
	free(t);
}

static void test_rule_hits(void **state)
{
	struct fx *fx = *state;
	const struct dk_stats_map *m = &fx->snap->stats;
	size_t len;

	dk_ctr_add(&dk_worker_stats(fx->w[0])->rule_hits[m->rule_slot[0]], 2);
	dk_ctr_add(&dk_worker_stats(fx->w[1])->rule_hits[m->rule_slot[0]], 3);
	dk_ctr_add(&dk_worker_stats(fx->w[1])->rule_hits[m->rule_slot[1]], 1);

	char *t = render(fx, &len);
	expect(t, "# TYPE dnsink_rule_hits_total counter");
	expect(t, "dnsink_rule_hits_total{rule_id=\"M.One\"} 5");
	expect(t, "dnsink_rule_hits_total{rule_id=\"M.Two\"} 1");
	free(t);

	/*
	 * Label escaping: rule files allow no quote or backslash in an id, so
	 * the loaded id is replaced in place (the policy frees it as its own).
	 */
	struct dk_rule *r = &fx->snap->pol->rules[1];
	free(r->id);
	r->id = strdup("we\"ird\\id\nx");
	assert_non_null(r->id);
	t = render(fx, &len);
	expect(t, "dnsink_rule_hits_total{rule_id=\"we\\\"ird\\\\id\\nx\"} 1");
	free(t);
}

static void test_upstream_histogram(void **state)
{
	struct fx *fx = *state;
	const struct dk_stats_map *m = &fx->snap->stats;
	struct dk_up_stats *u0 = &dk_worker_stats(fx->w[0])->ups[m->up_slot[0]];
	struct dk_up_stats *u1 = &dk_worker_stats(fx->w[1])->ups[m->up_slot[0]];
	struct dk_up_stats *v1 = &dk_worker_stats(fx->w[1])->ups[m->up_slot[1]];
	size_t len;

	dk_ctr_add(&u0->tries, 7);
	dk_ctr_add(&u1->tries, 2);
	dk_ctr_add(&v1->tries, 1);
	dk_ctr_add(&u0->answers, 3);
	dk_ctr_add(&u1->answers, 5);
	dk_ctr_add(&v1->timeouts, 1);
	/* Buckets 0 (<= 0.5 ms), 3 (<= 5 ms) and the last (+Inf), not cumulative as counted. */
	dk_ctr_add(&u0->lat[0], 1);
	dk_ctr_add(&u0->lat[3], 2);
	dk_ctr_add(&u1->lat[3], 1);
	dk_ctr_add(&u1->lat[DK_LAT_BUCKETS - 1], 4);
	dk_ctr_add(&u0->lat_sum_us, 1500000);
	dk_ctr_add(&u1->lat_sum_us, 250);

	char *t = render(fx, &len);
	const char *a = "upstream=\"127.0.0.1:9\"";
	const char *b = "upstream=\"127.0.0.2:5353\"";
	expect(t, "dnsink_upstream_queries_total{%s} 9", a);
	expect(t, "dnsink_upstream_queries_total{%s} 1", b);
	expect(t, "dnsink_upstream_answers_total{%s} 8", a);
	expect(t, "dnsink_upstream_timeouts_total{%s} 1", b);
	expect(t, "dnsink_upstream_timeouts_total{%s} 0", a);
	expect(t, "# TYPE dnsink_upstream_latency_seconds histogram");
	expect(t, "dnsink_upstream_latency_seconds_bucket{%s,le=\"0.0005\"} 1", a);
	expect(t, "dnsink_upstream_latency_seconds_bucket{%s,le=\"0.001\"} 1", a);
	expect(t, "dnsink_upstream_latency_seconds_bucket{%s,le=\"0.0025\"} 1", a);
	expect(t, "dnsink_upstream_latency_seconds_bucket{%s,le=\"0.005\"} 4", a);
	expect(t, "dnsink_upstream_latency_seconds_bucket{%s,le=\"2.5\"} 4", a);
	expect(t, "dnsink_upstream_latency_seconds_bucket{%s,le=\"+Inf\"} 8", a);
	expect(t, "dnsink_upstream_latency_seconds_count{%s} 8", a);
	expect(t, "dnsink_upstream_latency_seconds_sum{%s} 1.500250", a);
	expect(t, "dnsink_upstream_latency_seconds_bucket{%s,le=\"+Inf\"} 0", b);
	expect(t, "dnsink_upstream_latency_seconds_count{%s} 0", b);

	/* One bucket line per bound and +Inf, for each upstream; buckets never decrease. */
	unsigned n = 0;
	uint64_t prev = 0;
	for (const char *p = t;
	     (p = strstr(p, "dnsink_upstream_latency_seconds_bucket{upstream=\"127.0.0.1:9\""));
	     p++) {
		const char *v = strchr(p, '}');
		assert_non_null(v);
		uint64_t x = strtoull(v + 2, NULL, 10);
		assert_true(x >= prev);
		prev = x;
		n++;
	}
	assert_int_equal(n, DK_LAT_BUCKETS);
	free(t);
}

/* No snapshot and no workers: the fixed metrics only, still well-formed. */
static void test_empty(void **state)
{
	const struct dk_metrics_src src = {0};
	size_t len;

	(void)state;
	char *t = dk_metrics_render(&src, &len);
	assert_non_null(t);
	assert_int_equal(strlen(t), len);
	assert_int_equal(t[len - 1], '\n');
	expect(t, "dnsink_workers 0");
	expect(t, "dnsink_rules_loaded 0");
	expect(t, "dnsink_queries_received_total{transport=\"udp\"} 0");
	assert_null(strstr(t, "rule_id="));
	assert_null(strstr(t, "upstream=\""));
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_counters_summed, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_rule_hits, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_upstream_histogram, setup, teardown),
	        cmocka_unit_test(test_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
