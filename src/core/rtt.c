/* SPDX-License-Identifier: MIT */
/* Smoothed round-trip time and retransmission timeout (see rtt.h). */
#include "dnsink/rtt.h"

void dk_rtt_sample(struct dk_rtt *r, uint32_t us)
{
	if (!r->valid) {
		/* RFC 6298 2.2: the first sample sets SRTT, and RTTVAR to half of it. */
		r->srtt_us = us;
		r->rttvar_us = us / 2;
		r->valid = true;
	} else {
		/* RFC 6298 2.3, alpha 1/8, beta 1/4, in integers. */
		uint32_t dev = r->srtt_us > us ? r->srtt_us - us : us - r->srtt_us;
		r->rttvar_us = r->rttvar_us - r->rttvar_us / 4 + dev / 4;
		r->srtt_us = r->srtt_us - r->srtt_us / 8 + us / 8;
	}
	r->backoff = 0;
}

void dk_rtt_timed_out(struct dk_rtt *r)
{
	if (r->backoff < DK_RTT_BACKOFF_MAX)
		r->backoff++;
}

unsigned dk_rtt_timeout_ms(const struct dk_rtt *r, unsigned max_ms)
{
	uint64_t ms = r->valid ? ((uint64_t)r->srtt_us + 4 * (uint64_t)r->rttvar_us + 999) / 1000
	                       : DK_RTT_INITIAL_MS;

	if (ms < DK_RTT_MIN_MS)
		ms = DK_RTT_MIN_MS;
	ms <<= r->backoff;
	if (ms > max_ms)
		ms = max_ms;
	return (unsigned)ms;
}
