/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the configuration loader. Each input is written as a
 * config file into a private directory made once under /dev/shm (or /tmp),
 * and loaded with dk_config_load() against a resolv.conf fixture written
 * there too, so the result never depends on the machine's own resolv.conf.
 * The directory also holds an empty "rules/" folder, so the default rule path
 * resolves wherever the fuzzer runs. A loaded config is checked for the
 * invariants the server relies on and freed; a failed load must carry a
 * message. AddressSanitizer's leak check covers both outcomes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dnsink/config.h"
#include "dnsink/groups.h"

#include "fuzz_files.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static char conf_path[96];
static char resolv_path[96];
static char rules_dir[96];

/* Usable and unusable nameserver lines, one equal to the default listener. */
static const char resolv_text[] = "# fixture\n"
                                  "search example.com\n"
                                  "nameserver 127.0.0.1\n"
                                  "nameserver ::1\n"
                                  "nameserver bogus\n"
                                  "nameserver 192.0.2.1\n"
                                  "nameserver 2001:db8::53\n";

static void cleanup(void)
{
	unlink(conf_path);
	unlink(resolv_path);
	rmdir(rules_dir);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_make_dir(dir, sizeof(dir), "config");
	snprintf(conf_path, sizeof(conf_path), "%s/dnsink.yml", dir);
	snprintf(resolv_path, sizeof(resolv_path), "%s/resolv.conf", dir);
	snprintf(rules_dir, sizeof(rules_dir), "%s/rules", dir);
	if (fuzz_write_file(resolv_path, resolv_text, sizeof(resolv_text) - 1) < 0 ||
	    mkdir(rules_dir, 0700) < 0)
		abort();
	atexit(cleanup);
	return 0;
}

/* What the server takes for granted once a config has loaded. */
static void check(const struct dk_config *c)
{
	char buf[128];

	if (!c->file || c->n_listen == 0 || !c->listen || c->n_upstreams == 0 || !c->upstreams)
		abort();
	if (c->n_allow && !c->allow)
		abort();
	if (c->n_rules && !c->rules)
		abort();
	for (size_t i = 0; i < c->n_rules; i++)
		if (!c->rules[i])
			abort();
	for (size_t i = 0; i < c->n_listen; i++)
		if (dk_addr_format(&c->listen[i], buf, sizeof(buf)) < 0)
			abort();
	for (size_t i = 0; i < c->n_upstreams; i++)
		if (dk_addr_format(&c->upstreams[i], buf, sizeof(buf)) < 0)
			abort();
	for (size_t i = 0; i < c->n_allow; i++)
		if (c->allow[i].family == AF_INET ? c->allow[i].prefix > 32
		                                  : c->allow[i].prefix > 128)
			abort();
	if (c->alerts.transport == DK_SYSLOG_UNIX && !c->alerts.unix_path)
		abort();
	/* An empty access list allows nobody. */
	if (c->n_allow == 0 && dk_acl_allows(c->allow, 0, &c->listen[0].sa))
		abort();
	if (!c->alerts.ident)
		abort();
}

static bool has_default(const struct dk_config *c)
{
	for (size_t i = 0; i < c->n_groups; i++)
		if (strcmp(c->groups[i].name, DK_GROUP_DEFAULT) == 0)
			return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dk_config *c = NULL;
	struct dk_diag diag;

	memset(&diag, 0, sizeof(diag));
	if (fuzz_write_file(conf_path, data, size) < 0)
		abort();
	int err = dk_config_load(conf_path, resolv_path, &c, &diag);
	if (err == 0) {
		if (!c)
			abort();
		check(c);
		/* Groups resolve against the rules; with none, every reference is unknown. */
		struct dk_groups *gs = NULL;
		int gerr = dk_groups_build(c->groups, c->n_groups, NULL, c->file, 1795411800, &gs,
		                           &diag);
		if ((gerr == 0) != (gs != NULL || c->n_groups == 0) || (gerr && !diag.msg[0]))
			abort();
		if (gs && (gs->n != c->n_groups + 1 - (size_t)has_default(c)))
			abort();
		dk_groups_free(gs);
		dk_config_free(c);
	} else if (c || !diag.msg[0]) {
		abort();
	}
	return 0;
}
