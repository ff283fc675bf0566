/* SPDX-License-Identifier: MIT */
/* Recent activity on the main loop (see activity.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "activity.h"
#include "counters.h"
#include "dnsink/name.h"
#include "dnsink/policy.h"
#include "worker.h"

struct record {
	size_t len;
	char json[DK_ACTIVITY_RECORD_MAX];
};

struct dk_activity {
	const struct dk_metrics_src *src;
	uv_timer_t timer;
	bool closed;
	uint64_t start_mono_ms;
	struct dk_top *top;
	/* The series: a ring of completed steps, plus the totals at the last sample. */
	struct dk_activity_point points[DK_ACTIVITY_POINTS];
	size_t n_points, next_point;
	uint64_t last_queries, last_blocked, last_ms;
	/* The newest records, a ring. */
	struct record *recs;
	size_t n_recs, next_rec;
	uint64_t recs_too_long;
};

static uint64_t mono_ms(void)
{
	return dk_mono_ns() / 1000000;
}

static void totals(const struct dk_activity *act, uint64_t *queries, uint64_t *blocked)
{
	struct dk_counters c;

	memset(&c, 0, sizeof(c));
	for (unsigned i = 0; i < act->src->n_workers; i++)
		dk_counters_add(&c, dk_worker_counters(act->src->workers[i]));
	*queries = *blocked = 0;
	for (int tr = 0; tr < 2; tr++) {
		for (int o = 0; o < DK_OUT_MAX; o++)
			*queries += dk_ctr_get(&c.query.out[tr][o]);
		*blocked += dk_ctr_get(&c.query.out[tr][DK_OUT_SINKHOLED]) +
		            dk_ctr_get(&c.query.out[tr][DK_OUT_NXDOMAIN]) +
		            dk_ctr_get(&c.query.out[tr][DK_OUT_REFUSED]);
	}
}

/* The step from the last sample to now. */
static struct dk_activity_point step_now(const struct dk_activity *act)
{
	uint64_t q, b, now = dk_wall_ms();
	struct dk_activity_point p;

	totals(act, &q, &b);
	p.t_ms = now;
	p.step_ms = (uint32_t)(now > act->last_ms ? now - act->last_ms : 0);
	p.queries = q - act->last_queries;
	p.blocked = b - act->last_blocked;
	return p;
}

static void sample_cb(uv_timer_t *t)
{
	struct dk_activity *act = t->data;
	struct dk_activity_point p = step_now(act);

	act->points[act->next_point] = p;
	act->next_point = (act->next_point + 1) % DK_ACTIVITY_POINTS;
	if (act->n_points < DK_ACTIVITY_POINTS)
		act->n_points++;
	act->last_queries += p.queries;
	act->last_blocked += p.blocked;
	act->last_ms = p.t_ms;
}

static void on_event(void *ctx, const struct dk_alert_event *ev)
{
	struct dk_activity *act = ctx;
	char client[INET6_ADDRSTRLEN] = "";
	char name[DK_TOP_KEY_MAX] = "";
	const char *keys[DK_TOP_DIMS];

	inet_ntop(ev->family == AF_INET6 ? AF_INET6 : AF_INET, ev->addr, client, sizeof(client));
	if (dk_name_to_text(ev->qname, ev->qname_len, name, sizeof(name)) < 0)
		name[0] = '\0';
	keys[DK_TOP_CLIENT] = client;
	keys[DK_TOP_NAME] = name;
	keys[DK_TOP_RULE] = ev->rule ? ev->rule->id : NULL;
	keys[DK_TOP_BLOCKED] = ev->action == DK_ACTION_SINKHOLE ||
	                                       ev->action == DK_ACTION_NXDOMAIN ||
	                                       ev->action == DK_ACTION_REFUSED
	                               ? name
	                               : NULL;
	dk_top_add(act->top, mono_ms(), keys);
}

static void on_record(void *ctx, const char *json, size_t len)
{
	struct dk_activity *act = ctx;
	struct record *r;

	if (len >= DK_ACTIVITY_RECORD_MAX) {
		act->recs_too_long++;
		return;
	}
	r = &act->recs[act->next_rec];
	memcpy(r->json, json, len);
	r->json[len] = '\0';
	r->len = len;
	act->next_rec = (act->next_rec + 1) % DK_ACTIVITY_RECORDS;
	if (act->n_recs < DK_ACTIVITY_RECORDS)
		act->n_recs++;
}

int dk_activity_new(uv_loop_t *loop, const struct dk_metrics_src *src, struct dk_activity **out)
{
	struct dk_activity *act = calloc(1, sizeof(*act));
	int rc;

	*out = NULL;
	if (!act)
		return -ENOMEM;
	act->src = src;
	act->recs = calloc(DK_ACTIVITY_RECORDS, sizeof(*act->recs));
	rc = act->recs ? dk_top_new(&act->top) : -ENOMEM;
	if (rc < 0) {
		free(act->recs);
		free(act);
		return rc;
	}
	act->start_mono_ms = mono_ms();
	act->last_ms = dk_wall_ms();
	totals(act, &act->last_queries, &act->last_blocked);
	uv_timer_init(loop, &act->timer);
	act->timer.data = act;
	uv_timer_start(&act->timer, sample_cb, DK_ACTIVITY_STEP_S * 1000,
	               DK_ACTIVITY_STEP_S * 1000);
	/* Not a reason to keep the loop alive. */
	uv_unref((uv_handle_t *)&act->timer);
	*out = act;
	return 0;
}

void dk_activity_observer(struct dk_activity *act, struct dk_alert_observer *o)
{
	o->event = on_event;
	o->record = on_record;
	o->ctx = act;
}

int dk_activity_top(const struct dk_activity *act, enum dk_top_dim dim, unsigned minutes,
                    struct dk_top_item *out, size_t n)
{
	return dk_top_query(act->top, mono_ms(), minutes, dim, out, n);
}

uint64_t dk_activity_events(const struct dk_activity *act, unsigned minutes)
{
	return dk_top_events(act->top, mono_ms(), minutes);
}

size_t dk_activity_series(const struct dk_activity *act, struct dk_activity_point *out, size_t n)
{
	size_t have = act->n_points, k = 0;

	if (!n)
		return 0;
	/* Room for the step under way at the end. */
	if (have > n - 1)
		have = n - 1;
	for (size_t i = 0; i < have; i++) {
		size_t idx = (act->next_point + DK_ACTIVITY_POINTS - have + i) % DK_ACTIVITY_POINTS;
		out[k++] = act->points[idx];
	}
	out[k++] = step_now(act);
	return k;
}

size_t dk_activity_records(const struct dk_activity *act, size_t n,
                           void (*fn)(void *ctx, const char *json, size_t len), void *ctx)
{
	size_t k = 0;

	for (; k < n && k < act->n_recs; k++) {
		size_t idx = (act->next_rec + DK_ACTIVITY_RECORDS - 1 - k) % DK_ACTIVITY_RECORDS;
		fn(ctx, act->recs[idx].json, act->recs[idx].len);
	}
	return k;
}

double dk_activity_uptime(const struct dk_activity *act)
{
	return (double)(mono_ms() - act->start_mono_ms) / 1000.0;
}

void dk_activity_close(struct dk_activity *act)
{
	if (!act || act->closed)
		return;
	act->closed = true;
	uv_close((uv_handle_t *)&act->timer, NULL);
}

void dk_activity_free(struct dk_activity *act)
{
	if (!act)
		return;
	dk_top_free(act->top);
	free(act->recs);
	free(act);
}
