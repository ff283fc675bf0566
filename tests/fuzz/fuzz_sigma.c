/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the Sigma loader and compiler. Each input is written
 * as a rule file into a private directory and loaded with dk_policy_load(),
 * as the daemon loads rules/: YAML, Sigma schema, field table, modifiers,
 * conditions, correlations, then the compiler (suffix set, Vectorscan,
 * PCRE2). A loaded engine is run on a few names, types, clients and a small
 * answer, including the behavioural counters; a failed load must carry a
 * message. AddressSanitizer's leak check covers both outcomes.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dnsink/name.h"
#include "dnsink/policy.h"
#include "dnsink/sigma.h"

#include "fuzz_files.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static char rule_path[96];

static void cleanup(void)
{
	unlink(rule_path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_make_dir(dir, sizeof(dir), "sigma");
	snprintf(rule_path, sizeof(rule_path), "%s/r.yml", dir);
	atexit(cleanup);
	return 0;
}

/* www.example.test A 10.0.0.1, TXT "hello", as an upstream would answer. */
static const uint8_t answer[] = {
        0x12, 0x34, 0x81, 0x80, 0,   1,   0,   2, 0,   0,   0,   0,   3,   'w', 'w', 'w', 7,
        'e',  'x',  'a',  'm',  'p', 'l', 'e', 4, 't', 'e', 's', 't', 0,   0,   1,   0,   1,
        0xc0, 0x0c, 0,    1,    0,   1,   0,   0, 0,   60,  0,   4,   10,  0,   0,   1,   0xc0,
        0x0c, 0,    16,   0,    1,   0,   0,   0, 60,  0,   6,   5,   'h', 'e', 'l', 'l', 'o',
};

static void probe(const struct dk_policy *p, struct dk_sigma_scratch *sc, const char *name,
                  uint16_t qtype, const char *client, uint64_t now)
{
	uint8_t wire[DK_NAME_MAX];
	size_t len;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct dk_sigma_hits h;

	inet_pton(AF_INET, client, &sa.sin_addr);
	if (dk_name_from_text(name, strlen(name), 0, wire, &len))
		return;
	struct dk_sigma_query q = {wire, len, qtype, (const struct sockaddr *)&sa};
	dk_sigma_match_query(p->sigma, sc, &q, &h);
	dk_sigma_count(p->sigma, sc, &q, now, &h);
	dk_sigma_match_answer(p->sigma, sc, &q, answer, sizeof(answer), &h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {
	        "www.example.test",
	        "aaa.stage.1.example",
	        "x.duckdns.org",
	        "a",
	        ".",
	        "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz.example.co.uk",
	};
	const char *paths[] = {dir};
	struct dk_policy *p = NULL;
	struct dk_diag d = {0};
	struct dk_sigma_scratch *sc = NULL;

	if (fuzz_write_file(rule_path, data, size) < 0)
		abort();
	if (dk_policy_load(paths, 1, 0, &p, &d)) {
		if (!d.msg[0])
			abort();
		return 0;
	}
	if (p->sigma && dk_sigma_scratch_new(p->sigma, &sc) == 0) {
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			probe(p, sc, names[i], 1, "10.0.0.1", i * 1000);
			probe(p, sc, names[i], 16, "192.0.2.7", i * 1000 + 1);
		}
		dk_sigma_scratch_free(sc);
	}
	dk_policy_unref(p);
	return 0;
}
