/* SPDX-License-Identifier: MIT */
/*
 * The Prometheus endpoint (see metrics.h): a minimal HTTP/1.0 server on the
 * main loop. A connection reads one request into its own 4 KiB buffer, gets
 * one answer and is closed; one that overflows the buffer, errs or takes
 * more than 2 s is closed without an answer. Scrapes are rare and cheap, so
 * the answer is built in a heap buffer per scrape: this is not the hot path.
 *
 * The worker counters are single-writer atomics (counters.h): each worker
 * adds to its own with a relaxed load and store, no locked instruction on
 * the query path, and a scrape reads them with relaxed loads while the
 * workers run. A value is never torn, but it may be a moment old, and two
 * counters read together need not be from the same instant.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "alert_sink.h"
#include "dnsink/request.h"
#include "dk_build.h"
#include "dnsink/groups.h"
#include "fetch.h"
#include "metrics.h"
#include "textbuf.h"
#include "snapshot.h"
#include "worker.h"
#include "xfr.h"

/** Largest request (request line and headers) read. */
#define REQ_MAX 4096
/** A connection that has not sent a whole request by then is closed. */
#define REQ_TIMEOUT_MS 2000
/** Concurrent connections; more are accepted and closed at once. */
#define CONN_MAX 64

struct conn {
	uv_tcp_t h;
	uv_timer_t timer;
	uv_write_t wr;
	struct dk_metrics *m;
	struct conn *prev, *next;
	int handles; /**< initialized handles not yet closed */
	bool closing;
	bool answered;
	char *out; /**< answer body, freed with the connection */
	char head[512];
	size_t len;
	char req[REQ_MAX];
};

struct dk_metrics {
	uv_tcp_t listener;
	bool listener_init;
	const struct dk_metrics_src *src;
	struct conn *conns;
	unsigned n_conns;
	bool closed;
};

static void text_head(struct dk_text *t, const char *name, const char *type, const char *help)
{
	dk_text_add(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A metric without labels: its HELP and TYPE lines, then its one sample. */
static void text_one(struct dk_text *t, const char *name, const char *type, const char *help,
                     uint64_t v)
{
	text_head(t, name, type, help);
	dk_text_add(t, "%s %" PRIu64 "\n", name, v);
}

static void sum_counters(const struct dk_metrics_src *src, struct dk_counters *t)
{
	memset(t, 0, sizeof(*t));
	for (unsigned i = 0; i < src->n_workers; i++)
		dk_counters_add(t, dk_worker_counters(src->workers[i]));
}

/* A label value: backslash, double quote and newline escaped. */
static void text_label(struct dk_text *t, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			dk_text_add(t, "\\%c", *v);
		else if (*v == '\n')
			dk_text_add(t, "\\n");
		else
			dk_text_add(t, "%c", *v);
	}
}

/*
 * Counter blocks of the workers as a scrape sees them. The pointer is the
 * worker's current block; an older one is freed on this (the main) thread
 * only, after every worker switched, so it cannot go away under a scrape.
 */
static uint64_t rule_hits(const struct dk_metrics_src *src, uint32_t slot)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < src->n_workers; i++) {
		const struct dk_wstats *st = dk_worker_stats(src->workers[i]);
		if (st && slot < st->n_rules)
			sum += dk_ctr_get(&st->rule_hits[slot]);
	}
	return sum;
}

/* Rules of the snapshot in force; a rule keeps its count across reloads (by id). */
static void render_rule_hits(struct dk_text *t, const struct dk_metrics_src *src)
{
	const struct dk_snapshot *snap = src->snap;
	const struct dk_policy *pol = snap ? snap->pol : NULL;

	text_head(t, "dnsink_rule_hits_total", "counter",
	          "Matches per rule: query names, and CNAME/DNAME targets of forwarded answers.");
	if (!pol || !snap->stats.rule_slot)
		return;
	for (size_t i = 0; i < pol->n_rules; i++) {
		/* An RPZ rule's variants share its id and its counter. */
		if (pol->rules[i].variant)
			continue;
		dk_text_add(t, "dnsink_rule_hits_total{rule_id=\"");
		text_label(t, pol->rules[i].id);
		dk_text_add(t, "\"} %" PRIu64 "\n", rule_hits(src, snap->stats.rule_slot[i]));
	}
}

/* Client groups of the snapshot in force, by name: queries asked and queries a rule decided. */
static void render_groups(struct dk_text *t, const struct dk_metrics_src *src)
{
	const struct dk_snapshot *snap = src->snap;
	const struct dk_groups *gs = snap && snap->pol ? snap->pol->groups : NULL;

	for (unsigned which = 0; which < 2; which++) {
		const char *name = which ? "dnsink_group_hits_total" : "dnsink_group_queries_total";
		text_head(t, name, "counter",
		          which ? "Queries of a client group that a rule decided (as rule hits)."
		                : "Queries per client group (after the rate limit and parsing).");
		if (!gs || !snap->stats.group_slot)
			continue;
		for (size_t i = 0; i < gs->n; i++) {
			dk_text_add(t, "%s{group=\"", name);
			text_label(t, gs->g[i].name);
			dk_text_add(t, "\"} %" PRIu64 "\n",
			            rule_hits(src, snap->stats.group_slot[2 * i + which]));
		}
	}
}

/* Per list URL: what the downloads did. */
static void render_urls(struct dk_text *t, const struct dk_metrics_src *src)
{
	struct dk_fetch_url_stats us[64];
	size_t n = src->fetch ? dk_fetch_stats(src->fetch, us, DK_ARRAY_SIZE(us)) : 0;

	if (n > DK_ARRAY_SIZE(us))
		n = DK_ARRAY_SIZE(us);
	text_head(t, "dnsink_list_url_entries", "gauge",
	          "Entries of the copy in force per list URL.");
	for (size_t i = 0; i < n; i++) {
		dk_text_add(t, "dnsink_list_url_entries{url=\"");
		text_label(t, us[i].url);
		dk_text_add(t, "\"} %zu\n", us[i].entries);
	}
	const struct dk_snapshot *snap = src->snap;
	const struct dk_policy *pol = snap ? snap->pol : NULL;
	text_head(t, "dnsink_list_url_hits_total", "counter",
	          "Matches of the rule that holds each list URL (all of that rule's entries).");
	for (size_t i = 0; pol && snap->stats.rule_slot && i < pol->n_urls; i++) {
		dk_text_add(t, "dnsink_list_url_hits_total{url=\"");
		text_label(t, pol->urls[i].url);
		dk_text_add(t, "\"} %" PRIu64 "\n",
		            rule_hits(src, snap->stats.rule_slot[pol->urls[i].rule->index]));
	}
	text_head(t, "dnsink_list_url_downloads_total", "counter",
	          "Downloads per list URL by result (ok, not_modified, or why it was refused).");
	for (size_t i = 0; i < n; i++) {
		for (int r = 0; r < DK_FETCH_RESULT_MAX; r++) {
			dk_text_add(t, "dnsink_list_url_downloads_total{url=\"");
			text_label(t, us[i].url);
			dk_text_add(t, "\",result=\"%s\"} %" PRIu64 "\n",
			            dk_fetch_result_name((enum dk_fetch_result)r),
			            us[i].results[r]);
		}
	}
	text_head(t, "dnsink_list_url_last_download_timestamp_seconds", "gauge",
	          "Unix time of the last download attempt per list URL.");
	for (size_t i = 0; i < n; i++) {
		dk_text_add(t, "dnsink_list_url_last_download_timestamp_seconds{url=\"");
		text_label(t, us[i].url);
		dk_text_add(t, "\"} %.3f\n", us[i].last_time);
	}
	text_head(t, "dnsink_list_url_last_download_success", "gauge",
	          "Whether the last download per list URL succeeded or found it not modified.");
	for (size_t i = 0; i < n; i++) {
		dk_text_add(t, "dnsink_list_url_last_download_success{url=\"");
		text_label(t, us[i].url);
		dk_text_add(t, "\"} %d\n",
		            us[i].last_time > 0 && (us[i].last_result == DK_FETCH_OK ||
		                                    us[i].last_result == DK_FETCH_NOT_MODIFIED));
	}
}

/* Per RPZ zone: what was loaded (from the policy) and how its transfers went. */
static void render_rpz(struct dk_text *t, const struct dk_metrics_src *src)
{
	const struct dk_snapshot *snap = src->snap;
	const struct dk_policy *pol = snap ? snap->pol : NULL;
	struct dk_xfr_zone_stats xs[64];
	size_t n_xs = src->xfr ? dk_xfr_stats(src->xfr, xs, DK_ARRAY_SIZE(xs)) : 0;

	if (n_xs > DK_ARRAY_SIZE(xs))
		n_xs = DK_ARRAY_SIZE(xs);
	text_head(t, "dnsink_rpz_entries", "gauge", "Triggers in force per RPZ zone.");
	for (size_t i = 0; pol && i < pol->n_zones; i++) {
		dk_text_add(t, "dnsink_rpz_entries{zone=\"");
		text_label(t, pol->zones[i].origin);
		dk_text_add(t, "\"} %zu\n", pol->zones[i].entries);
	}
	text_head(t, "dnsink_rpz_serial", "gauge", "SOA serial of the copy in force per RPZ zone.");
	for (size_t i = 0; pol && i < pol->n_zones; i++) {
		if (!pol->zones[i].st.has_soa)
			continue;
		dk_text_add(t, "dnsink_rpz_serial{zone=\"");
		text_label(t, pol->zones[i].origin);
		dk_text_add(t, "\"} %u\n", pol->zones[i].st.serial);
	}
	text_head(t, "dnsink_rpz_records_skipped", "gauge",
	          "Records of the copy in force not used, per zone: invalid, unsupported, and "
	          "NSDNAME/NSIP triggers a forwarder cannot evaluate.");
	for (size_t i = 0; pol && i < pol->n_zones; i++) {
		const struct dk_rpz_stats *st = &pol->zones[i].st;
		const size_t v[] = {st->invalid, st->unsupported, st->triggers[DK_RPZ_NSDNAME],
		                    st->triggers[DK_RPZ_NSIP]};
		static const char *const why[] = {"invalid", "unsupported", "nsdname", "nsip"};
		for (size_t k = 0; k < DK_ARRAY_SIZE(v); k++) {
			dk_text_add(t, "dnsink_rpz_records_skipped{zone=\"");
			text_label(t, pol->zones[i].origin);
			dk_text_add(t, "\",reason=\"%s\"} %zu\n", why[k], v[k]);
		}
	}
	text_head(t, "dnsink_rpz_hits_total", "counter", "Matches of each RPZ zone's rule.");
	for (size_t i = 0; pol && snap->stats.rule_slot && i < pol->n_zones; i++) {
		dk_text_add(t, "dnsink_rpz_hits_total{zone=\"");
		text_label(t, pol->zones[i].origin);
		dk_text_add(t, "\"} %" PRIu64 "\n",
		            rule_hits(src, snap->stats.rule_slot[pol->zones[i].rule->index]));
	}
	text_head(t, "dnsink_rpz_transfers_total", "counter",
	          "Zone transfers per RPZ zone by result (ok, up_to_date, or why it was refused).");
	for (size_t i = 0; i < n_xs; i++) {
		for (int r = 0; r < DK_XFR_RESULT_MAX; r++) {
			dk_text_add(t, "dnsink_rpz_transfers_total{zone=\"");
			text_label(t, xs[i].origin);
			dk_text_add(t, "\",result=\"%s\"} %" PRIu64 "\n",
			            dk_xfr_result_name((enum dk_xfr_result)r), xs[i].results[r]);
		}
	}
	text_head(t, "dnsink_rpz_last_transfer_timestamp_seconds", "gauge",
	          "Unix time of the last transfer attempt per zone.");
	for (size_t i = 0; i < n_xs; i++) {
		dk_text_add(t, "dnsink_rpz_last_transfer_timestamp_seconds{zone=\"");
		text_label(t, xs[i].origin);
		dk_text_add(t, "\"} %.3f\n", xs[i].last_time);
	}
	text_head(t, "dnsink_rpz_last_transfer_success", "gauge",
	          "Whether the last transfer attempt per zone succeeded or found it up to date.");
	for (size_t i = 0; i < n_xs; i++) {
		dk_text_add(t, "dnsink_rpz_last_transfer_success{zone=\"");
		text_label(t, xs[i].origin);
		dk_text_add(t, "\"} %d\n",
		            xs[i].last_time > 0 && (xs[i].last_result == DK_XFR_OK ||
		                                    xs[i].last_result == DK_XFR_UP_TO_DATE));
	}
	text_head(t, "dnsink_rpz_notifies_total", "counter", "NOTIFYs accepted from the primary.");
	for (size_t i = 0; i < n_xs; i++) {
		dk_text_add(t, "dnsink_rpz_notifies_total{zone=\"");
		text_label(t, xs[i].origin);
		dk_text_add(t, "\"} %" PRIu64 "\n", xs[i].notifies);
	}
	text_head(t, "dnsink_rpz_expired", "gauge",
	          "1 when a zone had no good transfer for longer than its SOA expire (the last "
	          "copy still serves).");
	for (size_t i = 0; i < n_xs; i++) {
		dk_text_add(t, "dnsink_rpz_expired{zone=\"");
		text_label(t, xs[i].origin);
		dk_text_add(t, "\"} %d\n", xs[i].expired);
	}
}

/*
 * The counters of upstream slot @p slot summed over the workers into @p out
 * (ours alone), but for the SRTT gauge: the mean over the workers that have
 * a sample (each worker keeps its own estimate).
 */
static void up_sum(const struct dk_metrics_src *src, uint32_t slot, struct dk_up_stats *out)
{
	uint64_t srtt = 0, n_srtt = 0;

	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < src->n_workers; i++) {
		const struct dk_wstats *st = dk_worker_stats(src->workers[i]);
		if (!st || slot >= st->n_ups)
			continue;
		const dk_ctr *from = (const dk_ctr *)&st->ups[slot];
		dk_ctr *to = (dk_ctr *)out;
		for (size_t k = 0; k < sizeof(*out) / sizeof(dk_ctr); k++)
			dk_ctr_add(&to[k], dk_ctr_get(&from[k]));
		uint64_t v = dk_ctr_get(&st->ups[slot].srtt_us);
		if (v) {
			srtt += v;
			n_srtt++;
		}
	}
	dk_ctr_set(&out->srtt_us, n_srtt ? srtt / n_srtt : 0);
}

int dk_metrics_upstream(const struct dk_metrics_src *src, size_t i, struct dk_up_stats *out)
{
	const struct dk_snapshot *snap = src->snap;

	if (!snap || !snap->stats.up_slot || i >= snap->cfg->n_upstreams)
		return -ENOENT;
	up_sum(src, snap->stats.up_slot[i], out);
	return 0;
}

uint64_t dk_metrics_rule_hits(const struct dk_metrics_src *src, size_t i)
{
	const struct dk_snapshot *snap = src->snap;

	if (!snap || !snap->pol || !snap->stats.rule_slot || i >= snap->pol->n_rules)
		return 0;
	return rule_hits(src, snap->stats.rule_slot[i]);
}

_Static_assert(sizeof(struct dk_up_stats) % sizeof(dk_ctr) == 0,
               "struct dk_up_stats holds counters only");

/* The TLS counters of the tls:// upstreams among the @p n of @p cfg. */
static void render_upstreams_tls(struct dk_text *t, const struct dk_config *cfg,
                                 const struct dk_up_stats *sums, char (*addrs)[64], size_t n)
{
	static const struct {
		const char *name, *type, *help;
		size_t off;
	} one[] = {
	        {"dnsink_upstream_tls_handshakes_total", "counter",
	         "TLS handshakes with the upstream that succeeded (full or resumed).",
	         offsetof(struct dk_up_stats, tls_handshakes)},
	        {"dnsink_upstream_tls_resumptions_total", "counter",
	         "Of those, handshakes that resumed an earlier session (a ticket).",
	         offsetof(struct dk_up_stats, tls_resumed)},
	        {"dnsink_upstream_tls_connections", "gauge",
	         "TLS connections to the upstream open now (connecting included).",
	         offsetof(struct dk_up_stats, tls_open)},
	        {"dnsink_upstream_doh_failures_total", "counter",
	         "DoH responses that carried no DNS answer (an HTTP error status, another media "
	         "type, a reset stream): the try failed.",
	         offsetof(struct dk_up_stats, http_errors)},
	};
	bool any = false;

	for (size_t i = 0; cfg->upstream_opts && i < n; i++)
		any |= cfg->upstream_opts[i].proto != DK_UP_DNS;
	if (!any)
		return;
	for (size_t m = 0; m < DK_ARRAY_SIZE(one); m++) {
		text_head(t, one[m].name, one[m].type, one[m].help);
		for (size_t i = 0; i < n; i++)
			if (cfg->upstream_opts[i].proto != DK_UP_DNS)
				dk_text_add(t, "%s{upstream=\"%s\"} %" PRIu64 "\n", one[m].name,
				            addrs[i],
				            dk_ctr_get((const dk_ctr *)((const char *)&sums[i] +
				                                        one[m].off)));
	}
	text_head(t, "dnsink_upstream_tls_handshake_failures_total", "counter",
	          "TLS handshakes with the upstream that failed, by reason (name, ca, expired, "
	          "pin, protocol); the query never goes in clear.");
	for (size_t i = 0; i < n; i++)
		for (unsigned r = 0; cfg->upstream_opts[i].proto != DK_UP_DNS && r < DK_TLS_FAILS;
		     r++)
			dk_text_add(t,
			            "dnsink_upstream_tls_handshake_failures_total{upstream=\"%s\","
			            "reason=\"%s\"} %" PRIu64 "\n",
			            addrs[i], dk_tls_fail_name((enum dk_tls_fail)r),
			            dk_ctr_get(&sums[i].tls_failed[r]));
}

/* Upstreams of the config in force, labelled by address (counts kept across reloads). */
static void render_upstreams(struct dk_text *t, const struct dk_metrics_src *src)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} plain[] = {
	        {"dnsink_upstream_queries_total", "Queries sent to the upstream (each try).",
	         offsetof(struct dk_up_stats, tries)},
	        {"dnsink_upstream_retransmits_total",
	         "Tries of a query already sent once (to this upstream or another): after a "
	         "timeout or an error.",
	         offsetof(struct dk_up_stats, retransmits)},
	        {"dnsink_upstream_answers_total", "Answers accepted from the upstream.",
	         offsetof(struct dk_up_stats, answers)},
	        {"dnsink_upstream_timeouts_total", "Tries on the upstream that timed out.",
	         offsetof(struct dk_up_stats, timeouts)},
	        {"dnsink_upstream_errors_total",
	         "Sends or TCP connections to the upstream that failed.",
	         offsetof(struct dk_up_stats, errors)},
	};
	const struct dk_snapshot *snap = src->snap;
	const struct dk_config *cfg = snap ? snap->cfg : NULL;
	size_t n = cfg && snap->stats.up_slot ? cfg->n_upstreams : 0;
	struct dk_up_stats *sums = n ? calloc(n, sizeof(*sums)) : NULL;
	char(*addrs)[64] = n ? calloc(n, sizeof(*addrs)) : NULL;

	if (n && (!sums || !addrs)) {
		t->oom = true;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		up_sum(src, snap->stats.up_slot[i], &sums[i]);
		if (dk_addr_format(&cfg->upstreams[i], addrs[i], sizeof(addrs[i])) < 0)
			snprintf(addrs[i], sizeof(addrs[i]), "#%zu", i);
	}
	for (size_t m = 0; m < DK_ARRAY_SIZE(plain); m++) {
		text_head(t, plain[m].name, "counter", plain[m].help);
		for (size_t i = 0; i < n; i++)
			dk_text_add(t, "%s{upstream=\"%s\"} %" PRIu64 "\n", plain[m].name, addrs[i],
			            dk_ctr_get((const dk_ctr *)((const char *)&sums[i] +
			                                        plain[m].off)));
	}
	text_head(t, "dnsink_upstream_up", "gauge",
	          "1 while the upstream is in use; 0 while a worker holds it down (tries in a row "
	          "without an answer) and asks it only to probe.");
	for (size_t i = 0; i < n; i++)
		dk_text_add(t, "dnsink_upstream_up{upstream=\"%s\"} %d\n", addrs[i],
		            dk_ctr_get(&sums[i].down) == 0);
	text_head(t, "dnsink_upstream_srtt_seconds", "gauge",
	          "Smoothed round-trip time of UDP answers (mean over the workers), by upstream; "
	          "absent before the first answer.");
	for (size_t i = 0; i < n; i++)
		if (dk_ctr_get(&sums[i].srtt_us))
			dk_text_add(t, "dnsink_upstream_srtt_seconds{upstream=\"%s\"} %.6f\n",
			            addrs[i], (double)dk_ctr_get(&sums[i].srtt_us) / 1e6);
	text_head(t, "dnsink_upstream_latency_seconds", "histogram",
	          "Time from sending a try to accepting its answer, by upstream.");
	for (size_t i = 0; i < n; i++) {
		uint64_t cum = 0;
		for (unsigned b = 0; b < DK_LAT_BUCKETS; b++) {
			cum += dk_ctr_get(&sums[i].lat[b]);
			if (b < DK_LAT_BUCKETS - 1)
				dk_text_add(
				        t,
				        "dnsink_upstream_latency_seconds_bucket{upstream=\"%s\","
				        "le=\"%g\"} %" PRIu64 "\n",
				        addrs[i], dk_lat_bounds_us[b] / 1e6, cum);
			else
				dk_text_add(
				        t,
				        "dnsink_upstream_latency_seconds_bucket{upstream=\"%s\","
				        "le=\"+Inf\"} %" PRIu64 "\n",
				        addrs[i], cum);
		}
		dk_text_add(t, "dnsink_upstream_latency_seconds_sum{upstream=\"%s\"} %.6f\n",
		            addrs[i], (double)dk_ctr_get(&sums[i].lat_sum_us) / 1e6);
		dk_text_add(t,
		            "dnsink_upstream_latency_seconds_count{upstream=\"%s\"} %" PRIu64 "\n",
		            addrs[i], cum);
	}
	if (n)
		render_upstreams_tls(t, cfg, sums, addrs, n);
out:
	free(sums);
	free(addrs);
}

static void render_cache(struct dk_text *t, const struct dk_cache_counters *cc)
{
	text_one(t, "dnsink_cache_hits_total", "counter", "Queries answered from the cache.",
	         dk_ctr_get(&cc->hits));
	text_one(t, "dnsink_cache_misses_total", "counter",
	         "Queries looked up in the cache and not found fresh (forwarded).",
	         dk_ctr_get(&cc->misses));
	text_one(t, "dnsink_cache_stale_served_total", "counter",
	         "Expired answers served because every upstream failed (RFC 8767, EDE 3).",
	         dk_ctr_get(&cc->stale));
	text_one(t, "dnsink_cache_inserts_total", "counter", "Upstream answers stored.",
	         dk_ctr_get(&cc->inserts));
	text_one(t, "dnsink_cache_prefetches_total", "counter",
	         "Refreshes sent upstream for entries asked for in the last tenth of their TTL.",
	         dk_ctr_get(&cc->prefetches));
	text_one(t, "dnsink_cache_evictions_total", "counter",
	         "Entries pushed out to make room for new ones.", dk_ctr_get(&cc->evictions));
	text_head(t, "dnsink_cache_refused_total", "counter",
	          "Upstream answers not stored, by reason (tc: truncated; malformed; rcode: not "
	          "NOERROR, NXDOMAIN or SERVFAIL; no_soa: negative without its zone's SOA; ttl0; "
	          "size: larger than an eighth of the cache).");
	for (int r = DK_CACHE_STORED + 1; r < DK_CACHE_RESULT_MAX; r++)
		dk_text_add(t, "dnsink_cache_refused_total{reason=\"%s\"} %" PRIu64 "\n",
		            dk_cache_result_name((enum dk_cache_result)r),
		            dk_ctr_get(&cc->refused[r]));
	text_one(t, "dnsink_cache_entries", "gauge", "Answers in the cache.",
	         dk_ctr_get(&cc->entries));
	text_one(t, "dnsink_cache_bytes", "gauge",
	         "Cache arena octets in use (128-octet chunks: entry header, name, answer).",
	         dk_ctr_get(&cc->bytes));
	text_one(t, "dnsink_cache_capacity_bytes", "gauge", "Cache arena octets in all.",
	         dk_ctr_get(&cc->capacity));
}

char *dk_metrics_render(const struct dk_metrics_src *src, size_t *len)
{
	const struct dk_policy *pol = src->snap ? src->snap->pol : NULL;
	struct dk_text t = {0};
	struct dk_counters c;
	struct dk_alert_stats as;

	sum_counters(src, &c);
	memset(&as, 0, sizeof(as));
	if (src->alerter)
		dk_alerter_stats(src->alerter, &as);

	text_head(&t, "dnsink_build_info", "gauge", "Version of the running dnsink.");
	dk_text_add(&t, "dnsink_build_info{version=\"%s\"} 1\n", DK_VERSION);
	text_one(&t, "dnsink_workers", "gauge", "Worker threads.", src->n_workers);

	text_head(&t, "dnsink_queries_received_total", "counter",
	          "Client queries received, by transport.");
	for (int tr = 0; tr < DK_TRANSPORT_MAX; tr++)
		dk_text_add(&t, "dnsink_queries_received_total{transport=\"%s\"} %" PRIu64 "\n",
		            dk_transport_name((unsigned)tr), dk_ctr_get(&c.query.queries[tr]));
	text_head(&t, "dnsink_queries_total", "counter",
	          "Client queries by transport and outcome (acl_refused: client not allowed; "
	          "ratelimited: over rate_limit, dropped or REFUSED; cached: answered from the "
	          "cache).");
	for (int tr = 0; tr < DK_TRANSPORT_MAX; tr++)
		for (int o = 0; o < DK_OUT_MAX; o++)
			dk_text_add(&t,
			            "dnsink_queries_total{transport=\"%s\",outcome=\"%s\"} %" PRIu64
			            "\n",
			            dk_transport_name((unsigned)tr),
			            dk_outcome_name((enum dk_outcome)o),
			            dk_ctr_get(&c.query.out[tr][o]));
	text_one(&t, "dnsink_inflight_queries", "gauge", "Queries waiting for an upstream.",
	         dk_ctr_get(&c.up.inflight));

	render_upstreams(&t, src);
	text_one(&t, "dnsink_upstream_mismatched_total", "counter",
	         "Upstream datagrams refused as spoofed or mismatched.",
	         dk_ctr_get(&c.up.mismatched));
	text_one(&t, "dnsink_upstream_malformed_total", "counter",
	         "Upstream answers to our question whose records do not parse.",
	         dk_ctr_get(&c.up.malformed));
	text_one(&t, "dnsink_upstream_tc_retries_total", "counter",
	         "Truncated upstream UDP answers retried over TCP.", dk_ctr_get(&c.up.tc_retries));
	text_one(&t, "dnsink_upstream_table_full_total", "counter",
	         "Queries refused because every in-flight slot was taken.",
	         dk_ctr_get(&c.query.table_full));
	text_one(&t, "dnsink_udp_send_failures_total", "counter", "UDP replies dropped.",
	         dk_ctr_get(&c.udp.send_fail));
	text_head(&t, "dnsink_tcp_connections_total", "counter",
	          "Client TCP connections: accepted, rejected over the cap, closed as slow.");
	dk_text_add(&t, "dnsink_tcp_connections_total{state=\"accepted\"} %" PRIu64 "\n",
	            dk_ctr_get(&c.tcp.accepted));
	dk_text_add(&t, "dnsink_tcp_connections_total{state=\"rejected\"} %" PRIu64 "\n",
	            dk_ctr_get(&c.tcp.rejected));
	dk_text_add(&t, "dnsink_tcp_connections_total{state=\"slow\"} %" PRIu64 "\n",
	            dk_ctr_get(&c.tcp.slow));
	text_head(&t, "dnsink_tls_client_handshakes_total", "counter",
	          "DNS over TLS clients (listen_tls) by handshake result: ok (resumed among them), "
	          "failed, timeout (not done within tls.handshake_timeout_ms).");
	dk_text_add(&t, "dnsink_tls_client_handshakes_total{result=\"ok\"} %" PRIu64 "\n",
	            dk_ctr_get(&c.tcp.tls_handshakes));
	dk_text_add(&t, "dnsink_tls_client_handshakes_total{result=\"resumed\"} %" PRIu64 "\n",
	            dk_ctr_get(&c.tcp.tls_resumed));
	dk_text_add(&t, "dnsink_tls_client_handshakes_total{result=\"failed\"} %" PRIu64 "\n",
	            dk_ctr_get(&c.tcp.tls_failed));
	dk_text_add(&t, "dnsink_tls_client_handshakes_total{result=\"timeout\"} %" PRIu64 "\n",
	            dk_ctr_get(&c.tcp.tls_timeouts));

	text_head(&t, "dnsink_https_connections_total", "counter",
	          "DNS over HTTPS connections (listen_https): accepted, rejected over the cap, "
	          "closed as slow, using HTTP/2, TLS handshakes ok, failed and timed out.");
	{
		static const struct {
			const char *state;
			size_t off;
		} hc[] = {
		        {"accepted", offsetof(struct dk_https_counters, accepted)},
		        {"rejected", offsetof(struct dk_https_counters, rejected)},
		        {"slow", offsetof(struct dk_https_counters, slow)},
		        {"h2", offsetof(struct dk_https_counters, h2)},
		        {"handshake_ok", offsetof(struct dk_https_counters, tls_handshakes)},
		        {"handshake_failed", offsetof(struct dk_https_counters, tls_failed)},
		        {"handshake_timeout", offsetof(struct dk_https_counters, tls_timeouts)},
		};
		for (size_t i = 0; i < DK_ARRAY_SIZE(hc); i++)
			dk_text_add(
			        &t, "dnsink_https_connections_total{state=\"%s\"} %" PRIu64 "\n",
			        hc[i].state,
			        dk_ctr_get((const dk_ctr *)((const char *)&c.https + hc[i].off)));
	}
	text_one(&t, "dnsink_https_requests_total", "counter",
	         "DNS over HTTPS requests read (answered or refused).",
	         dk_ctr_get(&c.https.requests));
	{
		static const char *const codes[7] = {"400", "404", "405",  "413",
		                                     "414", "415", "other"};
		text_head(&t, "dnsink_https_refused_total", "counter",
		          "DNS over HTTPS requests refused, by HTTP status.");
		for (size_t i = 0; i < DK_ARRAY_SIZE(codes); i++)
			dk_text_add(&t, "dnsink_https_refused_total{status=\"%s\"} %" PRIu64 "\n",
			            codes[i], dk_ctr_get(&c.https.refused[i]));
	}
	text_one(&t, "dnsink_https_streams_refused_total", "counter",
	         "HTTP/2 streams refused over the per-connection cap.",
	         dk_ctr_get(&c.https.streams_refused));

	text_one(&t, "dnsink_alert_events_total", "counter", "Match events taken from the rings.",
	         as.events);
	text_head(&t, "dnsink_alerts_total", "counter",
	          "Alert records emitted, events deduplicated, events lost on a full ring, records "
	          "lost by a sink.");
	dk_text_add(&t, "dnsink_alerts_total{state=\"emitted\"} %" PRIu64 "\n", as.emitted);
	dk_text_add(&t, "dnsink_alerts_total{state=\"deduplicated\"} %" PRIu64 "\n",
	            as.deduplicated);
	dk_text_add(&t, "dnsink_alerts_total{state=\"lost_ring\"} %" PRIu64 "\n", as.lost_ring);
	dk_text_add(&t, "dnsink_alerts_total{state=\"lost_sink\"} %" PRIu64 "\n", as.lost_sink);
	text_one(&t, "dnsink_alerts_queued", "gauge",
	         "Records held for a collector: not yet sent, or sent and not yet acknowledged.",
	         as.queued);
	text_one(&t, "dnsink_alerts_resent_total", "counter",
	         "TCP records sent again because a connection ended before the collector "
	         "acknowledged them.",
	         as.resent);

	text_head(&t, "dnsink_cname_cloaked_total", "counter",
	          "Forwarded answers whose CNAME/DNAME target a rule matched: answered by the rule "
	          "instead (blocked), or passed with an alert (alerted).");
	dk_text_add(&t, "dnsink_cname_cloaked_total{outcome=\"blocked\"} %" PRIu64 "\n",
	            dk_ctr_get(&c.query.cname_blocked));
	dk_text_add(&t, "dnsink_cname_cloaked_total{outcome=\"alerted\"} %" PRIu64 "\n",
	            dk_ctr_get(&c.query.cname_alerted));
	render_cache(&t, &c.cache);
	render_rule_hits(&t, src);
	render_groups(&t, src);
	render_rpz(&t, src);
	render_urls(&t, src);

	text_one(&t, "dnsink_rules_loaded", "gauge", "Rules in force.", dk_policy_rule_count(pol));
	text_head(&t, "dnsink_sigma_rules", "gauge",
	          "Sigma rules read: loaded, skipped (logsource not DNS), rejected (see dnsink "
	          "check).");
	dk_text_add(&t, "dnsink_sigma_rules{state=\"loaded\"} %zu\n",
	            pol ? pol->sigma_report.loaded : 0);
	dk_text_add(&t, "dnsink_sigma_rules{state=\"skipped\"} %zu\n",
	            pol ? pol->sigma_report.skipped : 0);
	dk_text_add(&t, "dnsink_sigma_rules{state=\"rejected\"} %zu\n",
	            pol ? pol->sigma_report.rejected : 0);
	text_one(&t, "dnsink_sigma_groups", "gauge",
	         "Groups held by the Sigma behavioural counters, all workers.",
	         dk_ctr_get(&c.query.sigma_groups));
	text_one(&t, "dnsink_sigma_evictions_total", "counter",
	         "Sigma behavioural groups evicted from a full table; each starts again from zero.",
	         dk_ctr_get(&c.query.sigma_evictions));
	uint64_t tap_sent = 0, tap_lost = 0;
	for (unsigned i = 0; i < src->n_workers; i++)
		dk_worker_dnstap_counts(src->workers[i], &tap_sent, &tap_lost);
	text_head(&t, "dnsink_dnstap_messages_total", "counter",
	          "dnstap messages handed to the writer (sent) and lost by the workers (queue full "
	          "or too large); 0 with dnstap off.");
	dk_text_add(&t, "dnsink_dnstap_messages_total{state=\"sent\"} %" PRIu64 "\n", tap_sent);
	dk_text_add(&t, "dnsink_dnstap_messages_total{state=\"lost\"} %" PRIu64 "\n", tap_lost);
	text_one(&t, "dnsink_entries_loaded", "gauge", "Domain entries read (before dedup).",
	         pol ? pol->n_entries : 0);
	text_one(&t, "dnsink_names_loaded", "gauge", "Distinct names in force.",
	         pol ? pol->n_names : 0);
	text_head(&t, "dnsink_reload_last_timestamp_seconds", "gauge",
	          "Unix time of the last load of config and rules (start or reload).");
	dk_text_add(&t, "dnsink_reload_last_timestamp_seconds %.3f\n", src->reload_time);
	text_one(&t, "dnsink_reload_last_success", "gauge",
	         "Whether the last load succeeded (1) or kept the old set (0).", src->reload_ok);

	if (t.oom) {
		free(t.p);
		return NULL;
	}
	*len = t.len;
	return t.p;
}

/* Connections. */

static void conn_closed(uv_handle_t *h)
{
	struct conn *c = h->data;

	if (--c->handles > 0)
		return;
	struct dk_metrics *m = c->m;
	if (c->prev)
		c->prev->next = c->next;
	else
		m->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	m->n_conns--;
	free(c->out);
	free(c);
}

static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_close((uv_handle_t *)&c->h, conn_closed);
	uv_close((uv_handle_t *)&c->timer, conn_closed);
}

static void conn_timeout(uv_timer_t *t)
{
	conn_close(t->data);
}

static void conn_written(uv_write_t *wr, int status)
{
	(void)status;
	conn_close(wr->data);
}

/* True when @p c->req holds a whole request line followed by the end of the headers. */
static bool request_complete(const struct conn *c)
{
	for (size_t i = 0; i + 1 < c->len; i++) {
		if (c->req[i] == '\n' && c->req[i + 1] == '\n')
			return true;
		if (i + 3 < c->len && memcmp(c->req + i, "\r\n\r\n", 4) == 0)
			return true;
	}
	return false;
}

static bool peer_loopback(const struct conn *c)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	if (uv_tcp_getpeername(&c->h, (struct sockaddr *)&ss, &len) < 0)
		return false;
	if (ss.ss_family == AF_INET)
		return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
	if (ss.ss_family == AF_INET6) {
		const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
		if (IN6_IS_ADDR_LOOPBACK(a))
			return true;
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	return false;
}

static const char *status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	default: return "Not Found";
	}
}

static void conn_answer(struct conn *c)
{
	static const char not_found[] = "not found\n";
	static const char unauthorized[] = "a bearer token is needed (metrics.token)\n";
	const struct dk_metrics_src *src = c->m->src;
	const char *token = src->snap ? src->snap->cfg->metrics_token : NULL;
	struct dk_http_answer a = {.status = 404,
	                           .type = "text/plain; charset=utf-8",
	                           .static_body = not_found,
	                           .len = sizeof(not_found) - 1};
	const char *path = NULL, *query = NULL;
	size_t path_len = 0, query_len = 0;
	uv_buf_t b[2];
	int hl;

	c->answered = true;
	uv_read_stop((uv_stream_t *)&c->h);
	uv_timer_stop(&c->timer);
	bool get = dk_http_target(c->req, c->len, &path, &path_len, &query, &query_len);
	if (get && token && !dk_http_has_token(c->req, c->len, query, query_len, token)) {
		a.status = 401;
		a.static_body = unauthorized;
		a.len = sizeof(unauthorized) - 1;
	} else if (get && path_len == 8 && memcmp(path, "/metrics", 8) == 0) {
		a.body = dk_metrics_render(src, &a.len);
		if (!a.body) {
			conn_close(c);
			return;
		}
		a.status = 200;
		a.type = "text/plain; version=0.0.4; charset=utf-8";
	} else if (get && src->http) {
		if (src->http(src->http_ctx, path, path_len, query, query_len, peer_loopback(c),
		              &a) < 0) {
			conn_close(c);
			return;
		}
	}
	c->out = a.body;
	hl = snprintf(c->head, sizeof(c->head),
	              "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	              "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n%s"
	              "Connection: close\r\n\r\n",
	              a.status, status_text(a.status), a.type, a.len,
	              a.status == 401 ? "WWW-Authenticate: Bearer\r\n" : "");
	b[0] = uv_buf_init(c->head, (unsigned)hl);
	b[1] = uv_buf_init(a.body ? a.body : (char *)a.static_body, (unsigned)a.len);
	c->wr.data = c;
	if (uv_write(&c->wr, (uv_stream_t *)&c->h, b, 2, conn_written) < 0)
		conn_close(c);
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;

	(void)suggested;
	/* A full buffer yields UV_ENOBUFS in conn_read: the request is too large. */
	*buf = uv_buf_init(c->req + c->len, (unsigned)(REQ_MAX - c->len));
}

static void conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;

	(void)buf;
	if (c->answered || nread == 0)
		return;
	if (nread < 0) {
		conn_close(c);
		return;
	}
	c->len += (size_t)nread;
	if (request_complete(c))
		conn_answer(c);
	else if (c->len >= REQ_MAX)
		conn_close(c);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct dk_metrics *m = server->data;

	if (status < 0 || m->closed)
		return;
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->m = m;
	uv_tcp_init(server->loop, &c->h);
	uv_timer_init(server->loop, &c->timer);
	c->h.data = c->timer.data = c;
	c->handles = 2;
	c->next = m->conns;
	if (m->conns)
		m->conns->prev = c;
	m->conns = c;
	m->n_conns++;
	if (uv_accept(server, (uv_stream_t *)&c->h) < 0 || m->n_conns > CONN_MAX) {
		conn_close(c);
		return;
	}
	uv_timer_start(&c->timer, conn_timeout, REQ_TIMEOUT_MS, 0);
	if (uv_read_start((uv_stream_t *)&c->h, conn_alloc, conn_read) < 0)
		conn_close(c);
}

/* The endpoint. */

int dk_metrics_new(uv_loop_t *loop, const struct dk_addr *addr, const struct dk_metrics_src *src,
                   struct dk_metrics **out)
{
	struct dk_metrics *m = calloc(1, sizeof(*m));
	int rc;

	*out = NULL;
	if (!m)
		return -ENOMEM;
	m->src = src;
	rc = uv_tcp_init(loop, &m->listener);
	if (rc < 0) {
		free(m);
		return rc;
	}
	m->listener_init = true;
	m->listener.data = m;
	rc = uv_tcp_bind(&m->listener, &addr->sa, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&m->listener, 16, on_connection);
	if (rc < 0) {
		/* The listener is initialized: it goes with the loop's close callbacks. */
		*out = m;
		dk_metrics_close(m);
		return rc;
	}
	*out = m;
	return 0;
}

void dk_metrics_close(struct dk_metrics *m)
{
	if (!m || m->closed)
		return;
	m->closed = true;
	if (m->listener_init)
		uv_close((uv_handle_t *)&m->listener, NULL);
	for (struct conn *c = m->conns; c; c = c->next)
		conn_close(c);
}

void dk_metrics_free(struct dk_metrics *m)
{
	free(m);
}
