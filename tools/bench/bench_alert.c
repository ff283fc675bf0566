/* SPDX-License-Identifier: MIT */
/*
 * The alerter's own work per record, without the sinks' system calls: dedup
 * of an event whose key is new (dedup on, the table full at the default
 * 65,536 keys, so each new key evicts the oldest, as under a flood of new
 * names), then formatting the record as JSON. Thread CPU per record of each
 * step; for A/B of small changes run it under callgrind (instructions per
 * record: Ir / N).
 *
 *   bench_alert [N] [DEDUP_MAX]     (default 1000000 events, 65536 keys)
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "dnsink/alert.h"
#include "dnsink/name.h"
#include "dnsink/policy.h"

static char mitre0[] = "TA0011:T1071.004";
static char *mitre[] = {mitre0};
static struct dk_policy pol = {.refs = 1};
static struct dk_rule rule = {
        .id = "Bench.BlockList",
        .name = "Benchmark block list",
        .severity = DK_SEVERITY_LOW,
        .action = DK_ACTION_NXDOMAIN,
        .mitre = mitre,
        .n_mitre = 1,
        .alert = true,
        .dedup_minutes = 60,
        .threshold = 1,
};

static char out[8192];
static size_t emitted, octets;

static void emit_format(const struct dk_alert_record *rec, void *ctx)
{
	int n = dk_alert_format(rec, DK_ALERT_FORMAT_NATIVE, out, sizeof(out));

	(void)ctx;
	if (n > 0) {
		emitted++;
		octets += (size_t)n;
	}
}

static void emit_count(const struct dk_alert_record *rec, void *ctx)
{
	(void)rec;
	(void)ctx;
	emitted++;
}

static double thread_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Event @i: a name and matched entry of its own, so a new dedup key. */
static void make_event(struct dk_alert_event *ev, size_t i)
{
	char name[96];
	size_t len;

	memset(ev, 0, sizeof(*ev));
	ev->time_ms = 1764590400000ULL + i / 100;
	ev->mono_ns = i;
	ev->rule = &rule;
	ev->policy = &pol;
	ev->family = AF_INET;
	ev->transport = DK_TRANSPORT_UDP;
	ev->action = DK_ACTION_NXDOMAIN;
	ev->rcode = 3;
	ev->port = (uint16_t)(1024 + i % 60000);
	ev->qtype = 1;
	inet_pton(AF_INET, "127.0.0.1", ev->addr);
	snprintf(name, sizeof(name), "q%zu.e%zu-kq3hd81x.example-blocklist.com", i, i);
	if (dk_name_from_text(name, strlen(name), 0, ev->qname, &len) < 0)
		exit(1);
	ev->qname_len = (uint8_t)len;
	ev->matched_off = ev->qname[0] + 1; /* the entry: all but the first label */
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
	size_t max = argc > 2 ? strtoul(argv[2], NULL, 10) : 65536;
	struct dk_alert_event *evs = malloc(4096 * sizeof(*evs));
	struct dk_dedup *d = dk_dedup_new(max);
	double t0, t_dedup = 0, t_fmt = 0;

	if (!evs || !d || n == 0)
		return 1;
	/* Events are made in blocks outside the timed part, as the rings hand them over. */
	for (int pass = 0; pass < 2; pass++) {
		dk_dedup_free(d);
		d = dk_dedup_new(max);
		emitted = 0;
		for (size_t b = 0; b < n; b += 4096) {
			size_t m = n - b < 4096 ? n - b : 4096;

			for (size_t i = 0; i < m; i++)
				make_event(&evs[i], b + i);
			t0 = thread_s();
			for (size_t i = 0; i < m; i++)
				dk_dedup_event(d, &evs[i], 1000 + (b + i) / 1000,
				               pass ? emit_format : emit_count, NULL);
			if (pass)
				t_fmt += thread_s() - t0;
			else
				t_dedup += thread_s() - t0;
		}
	}
	printf("%zu events, dedup_max %zu: dedup (new key, evicting) %.0f ns/record; "
	       "dedup + format %.0f ns/record (format %.0f ns, %.0f octets a record)\n",
	       n, max, t_dedup * 1e9 / (double)n, t_fmt * 1e9 / (double)n,
	       (t_fmt - t_dedup) * 1e9 / (double)n, (double)octets / (double)emitted);
	dk_dedup_free(d);
	free(evs);
	return 0;
}
