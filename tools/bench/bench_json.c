/* SPDX-License-Identifier: MIT */
/*
 * Why `dnsink hunt` reads JSON with its own scanner: the cost of getting the
 * query name, client and time out of Route 53 log lines, per line, with
 * dk_json_scan() (the whole reader, dk_log_parse_json(), name conversion
 * included) and with jansson (Debian's libjansson: json_loadb() builds the
 * tree, then the three members are looked up and the tree freed).
 *
 *   bench_json FILE     (JSON lines; tools/bench/hunt_gen.py writes some)
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsink/common.h"
#include "dnsink/logrec.h"

static double now(void)
{
	return (double)dk_mono_ns() / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: bench_json FILE\n");
		return 2;
	}
	FILE *f = fopen(argv[1], "r");
	if (!f) {
		perror(argv[1]);
		return 2;
	}
	/* Lines in memory first: the parsers' cost alone, not the disk's. */
	size_t cap = 1 << 20, n = 0, used = 0, lcap = 1024;
	char *buf = malloc(cap);
	size_t *off = malloc(lcap * sizeof(*off));
	char line[65536];
	while (buf && off && fgets(line, sizeof(line), f) && n < 2000000) {
		size_t len = strlen(line);
		while (used + len + 1 > cap)
			buf = realloc(buf, cap *= 2);
		if (n + 1 >= lcap)
			off = realloc(off, (lcap *= 2) * sizeof(*off));
		if (!buf || !off)
			return 2;
		off[n++] = used;
		memcpy(buf + used, line, len);
		used += len;
	}
	off[n] = used;
	fclose(f);

	struct dk_logrec r;
	unsigned long ok = 0;
	double t0 = now();
	for (size_t i = 0; i < n; i++)
		ok += dk_log_parse_json(buf + off[i], off[i + 1] - off[i] - 1, DK_LOGFMT_AUTO,
		                        &r) == 0;
	double t1 = now();
	unsigned long ok2 = 0;
	for (size_t i = 0; i < n; i++) {
		json_error_t err;
		json_t *j = json_loadb(buf + off[i], off[i + 1] - off[i] - 1, 0, &err);
		if (!j)
			continue;
		const char *q = json_string_value(json_object_get(j, "query_name"));
		const char *a = json_string_value(json_object_get(j, "srcaddr"));
		const char *t = json_string_value(json_object_get(j, "query_timestamp"));
		ok2 += q && a && t;
		json_decref(j);
	}
	double t2 = now();
	printf("%zu lines, %.1f MB\n", n, (double)used / 1e6);
	printf("dk_log_parse_json  %8.0f ns/line  %9.0f lines/s  (%lu read)\n",
	       (t1 - t0) * 1e9 / (double)n, (double)n / (t1 - t0), ok);
	printf("jansson json_loadb %8.0f ns/line  %9.0f lines/s  (%lu read; members only, no "
	       "name)\n",
	       (t2 - t1) * 1e9 / (double)n, (double)n / (t2 - t1), ok2);
	free(buf);
	free(off);
	return 0;
}
