/* SPDX-License-Identifier: MIT */
/* The dashboard page and its JSON API (see dashboard.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/dashboard_html.h"
#include "dashboard.h"
#include "dk_build.h"
#include "dnsink/policy.h"
#include "dnsink/request.h"
#include "snapshot.h"
#include "textbuf.h"
#include "worker.h"

/** Rows of a top list and alert records at most. */
#define ROWS_MAX 50

struct dk_dashboard {
	const struct dk_metrics_src *src;
	const struct dk_activity *act;
};

int dk_dashboard_new(const struct dk_metrics_src *src, const struct dk_activity *act,
                     struct dk_dashboard **out)
{
	struct dk_dashboard *d = calloc(1, sizeof(*d));

	*out = d;
	if (!d)
		return -ENOMEM;
	d->src = src;
	d->act = act;
	return 0;
}

void dk_dashboard_free(struct dk_dashboard *d)
{
	free(d);
}

static void sum_counters(const struct dk_metrics_src *src, struct dk_counters *c)
{
	memset(c, 0, sizeof(*c));
	for (unsigned i = 0; i < src->n_workers; i++)
		dk_counters_add(c, dk_worker_counters(src->workers[i]));
}

static void api_summary(const struct dk_dashboard *d, struct dk_text *t)
{
	const struct dk_metrics_src *src = d->src;
	const struct dk_policy *pol = src->snap ? src->snap->pol : NULL;
	struct dk_counters c;
	struct dk_alert_stats as;
	uint64_t q = 0, out[DK_OUT_MAX] = {0};

	sum_counters(src, &c);
	memset(&as, 0, sizeof(as));
	if (src->alerter)
		dk_alerter_stats(src->alerter, &as);
	for (int tr = 0; tr < 2; tr++)
		for (int o = 0; o < DK_OUT_MAX; o++) {
			out[o] += dk_ctr_get(&c.query.out[tr][o]);
			q += dk_ctr_get(&c.query.out[tr][o]);
		}
	dk_text_add(t, "{\"version\":\"%s\",\"uptime_s\":%.1f,\"workers\":%u,", DK_VERSION,
	            d->act ? dk_activity_uptime(d->act) : 0.0, src->n_workers);
	dk_text_add(t, "\"queries\":%" PRIu64 ",\"blocked\":%" PRIu64 ",\"outcomes\":{", q,
	            out[DK_OUT_SINKHOLED] + out[DK_OUT_NXDOMAIN] + out[DK_OUT_REFUSED]);
	for (int o = 0; o < DK_OUT_MAX; o++)
		dk_text_add(t, "%s\"%s\":%" PRIu64, o ? "," : "",
		            dk_outcome_name((enum dk_outcome)o), out[o]);
	dk_text_add(t,
	            "},\"alerts_emitted\":%" PRIu64 ",\"alerts_lost\":%" PRIu64
	            ",\"rules\":%zu,\"names\":%zu,\"last_load_time\":%.3f,\"last_load_ok\":%s}\n",
	            as.emitted, as.lost_ring + as.lost_sink, pol ? pol->n_rules : 0,
	            pol ? pol->n_names : 0, src->reload_time, src->reload_ok ? "true" : "false");
}

static void api_series(const struct dk_dashboard *d, struct dk_text *t)
{
	struct dk_activity_point *pts = calloc(DK_ACTIVITY_POINTS + 1, sizeof(*pts));
	size_t n = pts && d->act ? dk_activity_series(d->act, pts, DK_ACTIVITY_POINTS + 1) : 0;

	if (!pts)
		t->oom = true;
	dk_text_add(t, "{\"step_s\":%d,\"points\":[", DK_ACTIVITY_STEP_S);
	for (size_t i = 0; i < n; i++)
		dk_text_add(t,
		            "%s{\"t_ms\":%" PRIu64 ",\"step_ms\":%u,\"queries\":%" PRIu64
		            ",\"blocked\":%" PRIu64 "}",
		            i ? "," : "", pts[i].t_ms, pts[i].step_ms, pts[i].queries,
		            pts[i].blocked);
	dk_text_add(t, "]}\n");
	free(pts);
}

static void top_list(const struct dk_dashboard *d, struct dk_text *t, const char *key,
                     enum dk_top_dim dim, unsigned minutes, unsigned n, bool first)
{
	struct dk_top_item *items = calloc(n, sizeof(*items));
	int k = items && d->act ? dk_activity_top(d->act, dim, minutes, items, n) : 0;

	if (!items || k < 0)
		t->oom = true;
	dk_text_add(t, "%s\"%s\":[", first ? "" : ",", key);
	for (int i = 0; i < k; i++) {
		dk_text_add(t, "%s{\"key\":\"", i ? "," : "");
		dk_text_json(t, items[i].key, strlen(items[i].key));
		dk_text_add(t, "\",\"count\":%" PRIu64 ",\"error\":%" PRIu64 "}", items[i].count,
		            items[i].error);
	}
	dk_text_add(t, "]");
	free(items);
}

static void api_top(const struct dk_dashboard *d, const char *q, size_t qlen, struct dk_text *t)
{
	unsigned n = dk_query_uint(q, qlen, "n", 10, 1, ROWS_MAX);
	unsigned minutes = dk_query_uint(q, qlen, "minutes", DK_TOP_MINUTES, 1, DK_TOP_MINUTES);

	dk_text_add(t, "{\"minutes\":%u,\"events\":%" PRIu64 ",", minutes,
	            d->act ? dk_activity_events(d->act, minutes) : 0);
	top_list(d, t, "blocked", DK_TOP_BLOCKED, minutes, n, true);
	top_list(d, t, "clients", DK_TOP_CLIENT, minutes, n, false);
	top_list(d, t, "names", DK_TOP_NAME, minutes, n, false);
	top_list(d, t, "rules", DK_TOP_RULE, minutes, n, false);
	dk_text_add(t, "}\n");
}

struct rec_ctx {
	struct dk_text *t;
	size_t n;
};

/* A record is already a JSON object: it goes in as it is. */
static void add_record(void *ctx, const char *json, size_t len)
{
	struct rec_ctx *rc = ctx;

	dk_text_add(rc->t, "%s%.*s", rc->n++ ? "," : "", (int)len, json);
}

static void api_alerts(const struct dk_dashboard *d, const char *q, size_t qlen, struct dk_text *t)
{
	struct rec_ctx rc = {.t = t};
	unsigned n = dk_query_uint(q, qlen, "n", 20, 1, DK_ACTIVITY_RECORDS);

	dk_text_add(t, "{\"records\":[");
	if (d->act)
		dk_activity_records(d->act, n, add_record, &rc);
	dk_text_add(t, "]}\n");
}

static void api_upstreams(const struct dk_dashboard *d, struct dk_text *t)
{
	const struct dk_snapshot *snap = d->src->snap;

	dk_text_add(t, "{\"upstreams\":[");
	for (size_t i = 0; snap && i < snap->cfg->n_upstreams; i++) {
		struct dk_up_stats u;
		char addr[64];

		if (dk_metrics_upstream(d->src, i, &u) < 0)
			continue;
		dk_addr_format(&snap->cfg->upstreams[i], addr, sizeof(addr));
		dk_text_add(t, "%s{\"address\":\"", i ? "," : "");
		dk_text_json(t, addr, strlen(addr));
		dk_text_add(t, "\",\"up\":%s,\"down_workers\":%" PRIu64 ",\"srtt_ms\":",
		            dk_ctr_get(&u.down) ? "false" : "true", dk_ctr_get(&u.down));
		if (dk_ctr_get(&u.srtt_us))
			dk_text_add(t, "%.3f", (double)dk_ctr_get(&u.srtt_us) / 1000.0);
		else
			dk_text_add(t, "null");
		dk_text_add(t,
		            ",\"queries\":%" PRIu64 ",\"answers\":%" PRIu64 ",\"timeouts\":%" PRIu64
		            ",\"errors\":%" PRIu64 "}",
		            dk_ctr_get(&u.tries), dk_ctr_get(&u.answers), dk_ctr_get(&u.timeouts),
		            dk_ctr_get(&u.errors));
	}
	dk_text_add(t, "]}\n");
}

static bool path_is(const char *path, size_t len, const char *want)
{
	return len == strlen(want) && memcmp(path, want, len) == 0;
}

int dk_dashboard_http(void *ctx, const char *path, size_t path_len, const char *query,
                      size_t query_len, bool loopback, struct dk_http_answer *out)
{
	static const char forbidden[] = "the dashboard answers loopback clients only; set "
	                                "metrics.token to serve it to others\n";
	const struct dk_dashboard *d = ctx;
	const char *token = d->src->snap ? d->src->snap->cfg->metrics_token : NULL;
	struct dk_text t = {0};

	if (!path_is(path, path_len, "/") && (path_len < 8 || memcmp(path, "/api/v1/", 8) != 0))
		return 0; /* 404, as out came */
	if (!loopback && !token) {
		out->status = 403;
		out->type = "text/plain; charset=utf-8";
		out->static_body = forbidden;
		out->len = sizeof(forbidden) - 1;
		return 0;
	}
	if (path_is(path, path_len, "/")) {
		out->status = 200;
		out->type = "text/html; charset=utf-8";
		out->static_body = dashboard_html;
		out->len = DASHBOARD_HTML_LEN;
		return 0;
	}
	if (path_is(path, path_len, "/api/v1/summary"))
		api_summary(d, &t);
	else if (path_is(path, path_len, "/api/v1/series"))
		api_series(d, &t);
	else if (path_is(path, path_len, "/api/v1/top"))
		api_top(d, query, query_len, &t);
	else if (path_is(path, path_len, "/api/v1/alerts"))
		api_alerts(d, query, query_len, &t);
	else if (path_is(path, path_len, "/api/v1/upstreams"))
		api_upstreams(d, &t);
	else
		return 0;
	if (t.oom) {
		free(t.p);
		return -ENOMEM;
	}
	out->status = 200;
	out->type = "application/json";
	out->body = t.p;
	out->static_body = NULL;
	out->len = t.len;
	return 0;
}
