/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the rule loader. Each input is written as a rule file
 * into a private directory made once under /dev/shm (or /tmp), beside a small
 * fixed list file "l.txt" that inputs may name in "domain_files:", and loaded
 * with dk_policy_load() and per-rule suffix sets, as `dnsink test` does. A
 * loaded snapshot is matched against a few fixed names and against the queries
 * of the rule's own tests, then freed; a failed load must carry a message.
 * AddressSanitizer's leak check covers both outcomes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dnsink/name.h"
#include "dnsink/policy.h"

#include "fuzz_files.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static char rule_path[96];
static char list_path[96];

/* One line of each list format, a comment and a line that is not a name. */
static const char list_text[] = "# comment\n"
                                "plain.example\n"
                                "*.wild.example\n"
                                "0.0.0.0 hosts.example\n"
                                "||adblock.example^\n"
                                "not a name\n";

static void cleanup(void)
{
	unlink(rule_path);
	unlink(list_path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_make_dir(dir, sizeof(dir), "rules");
	snprintf(rule_path, sizeof(rule_path), "%s/r.yml", dir);
	snprintf(list_path, sizeof(list_path), "%s/l.txt", dir);
	if (fuzz_write_file(list_path, list_text, sizeof(list_text) - 1) < 0)
		abort();
	atexit(cleanup);
	return 0;
}

/* Matches one text name, as `dnsink test` does; the verdict itself is not judged. */
static void probe_name(const struct dk_policy *p, const struct dk_rule *rule, const char *name)
{
	uint8_t wire[DK_NAME_MAX];
	size_t len;
	struct dk_verdict v;
	/* Every octet may come back as a 4-octet \DDD escape, plus "*." and NUL. */
	char text[4 * DK_NAME_MAX + 3];

	if (dk_name_from_text(name, strlen(name), 0, wire, &len) < 0)
		return;
	if (dk_policy_match(p, wire, len, &v) &&
	    dk_verdict_entry_text(&v, wire, len, text, sizeof(text)) < 0)
		abort();
	if (rule && dk_rule_match(rule, wire, len, &v) &&
	    dk_verdict_entry_text(&v, wire, len, text, sizeof(text)) < 0)
		abort();
	if (dk_name_to_text(wire, len, text, sizeof(text)) < 0)
		abort();
}

static void probe(const struct dk_policy *p)
{
	static const char *const names[] = {"plain.example", "a.b.wild.example", "moneropool.ru",
	                                    "x.hopto.org", "example."};

	for (size_t i = 0; i < DK_ARRAY_SIZE(names); i++)
		probe_name(p, p->n_rules ? &p->rules[0] : NULL, names[i]);
	for (size_t r = 0; r < p->n_rules; r++)
		for (size_t t = 0; t < p->rules[r].n_tests; t++)
			if (p->rules[r].tests[t].query)
				probe_name(p, &p->rules[r], p->rules[r].tests[t].query);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *paths[] = {rule_path};
	struct dk_policy *p = NULL;
	struct dk_diag diag;

	if (fuzz_write_file(rule_path, data, size) < 0)
		abort();
	int err = dk_policy_load(paths, 1, DK_POLICY_PER_RULE_SETS, &p, &diag);
	if (err == 0) {
		if (!p)
			abort();
		probe(p);
		dk_policy_unref(p);
	} else if (p || !diag.msg[0]) {
		abort();
	}
	return 0;
}
