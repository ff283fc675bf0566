/* SPDX-License-Identifier: MIT */
/* Upstream round trips, health and choice (see infra.h). */
#include <limits.h>

#include "dnsink/infra.h"

struct dk_infra_host *dk_infra_host(struct dk_infra *in, uint32_t slot)
{
	if (slot < DK_INFRA_SLOTS)
		return &in->host[slot];
	in->none = (struct dk_infra_host){0};
	return &in->none;
}

enum dk_infra_change dk_infra_answered(struct dk_infra_host *h, uint32_t rtt_us)
{
	h->fails = 0;
	if (rtt_us)
		dk_rtt_sample(&h->rtt, rtt_us);
	if (!h->down)
		return DK_INFRA_SAME;
	h->down = false;
	h->hold_ms = 0;
	return DK_INFRA_UP;
}

enum dk_infra_change dk_infra_failed(struct dk_infra_host *h, bool timed_out, uint64_t now_ms)
{
	if (timed_out)
		dk_rtt_timed_out(&h->rtt);
	if (h->fails < UINT8_MAX)
		h->fails++;
	if (!h->down && h->fails >= DK_INFRA_DOWN_AFTER) {
		h->down = true;
		h->hold_ms = DK_INFRA_HOLD_MIN_MS;
		h->until_ms = now_ms + h->hold_ms;
		return DK_INFRA_DOWN;
	}
	if (h->down && now_ms >= h->until_ms) {
		/* A probe failed: hold it down twice as long. */
		h->hold_ms = h->hold_ms * 2 > DK_INFRA_HOLD_MAX_MS ? DK_INFRA_HOLD_MAX_MS
		                                                   : h->hold_ms * 2;
		h->until_ms = now_ms + h->hold_ms;
	}
	return DK_INFRA_SAME;
}

bool dk_infra_held_down(const struct dk_infra_host *h, uint64_t now_ms)
{
	return h->down && now_ms < h->until_ms;
}

unsigned dk_infra_timeout_ms(const struct dk_infra_host *h, unsigned cap)
{
	struct dk_rtt r = h->rtt;

	/* A probe of a down upstream: the round trips it had, not the backoff that downed it. */
	if (h->down)
		r.backoff = 0;
	return dk_rtt_timeout_ms(&r, cap);
}

static struct dk_infra_host *host_at(struct dk_infra *in, const struct dk_infra_choice *c, size_t i)
{
	return dk_infra_host(in, c->slot ? c->slot[i] : UINT32_MAX);
}

/* Whether upstream @p i may take the next try: in range, not failed, not held down unless @p
 * down_too. */
static bool usable(struct dk_infra *in, const struct dk_infra_choice *c, size_t i, bool down_too)
{
	if (i >= c->n || (i < DK_INFRA_MARKED && (c->failed >> i & 1)))
		return false;
	return down_too || !dk_infra_held_down(host_at(in, c, i), c->now_ms);
}

/* Of the usable upstreams but @p skip, from @p start on: the first ("ordered"), the fastest
 * ("fastest"). */
static size_t scan(struct dk_infra *in, const struct dk_infra_choice *c, size_t start, size_t skip,
                   bool down_too)
{
	size_t best = c->n;
	unsigned best_ms = 0;

	for (size_t k = 0; k < c->n; k++) {
		size_t i = (start + k) % c->n;
		if (i == skip || !usable(in, c, i, down_too))
			continue;
		if (c->strategy == DK_STRATEGY_ORDERED)
			return i;
		/* Uncapped: two upstreams both past upstream_timeout_ms still compare. */
		unsigned ms = dk_infra_timeout_ms(host_at(in, c, i), UINT_MAX);
		if (best == c->n || ms < best_ms) {
			best = i;
			best_ms = ms;
		}
	}
	return best;
}

size_t dk_infra_pick(struct dk_infra *in, const struct dk_infra_choice *c, size_t cur, unsigned rnd)
{
	if (c->n == 0)
		return 0;
	if (cur >= c->n && c->strategy == DK_STRATEGY_FASTEST && c->n > 1 &&
	    ++in->picks % DK_INFRA_PROBE_EVERY == 0)
		return rnd % c->n;
	size_t start = cur < c->n ? cur + 1 : 0;
	size_t best = scan(in, c, start, cur, false);

	if (best == c->n && usable(in, c, cur, false))
		best = cur;
	if (best == c->n)
		best = scan(in, c, start, cur, true);
	if (best == c->n && usable(in, c, cur, true))
		best = cur;
	return best;
}
