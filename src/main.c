/* SPDX-License-Identifier: MIT */
/*
 * dnsink's entry point: reads argv, picks the subcommand and hands over to
 * the resolver (server.c) or to one of the offline commands (cli.c).
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "dk_build.h"
#include "daemon/server.h"

#define SYSTEM_CONFIG "/etc/dnsink/dnsink.yml"
#define LOCAL_CONFIG  "conf/dnsink.yml"

static void usage(FILE *out)
{
	fputs("usage: dnsink [-c FILE] [--workers N] [--listen ADDR] [--upstream ADDR]\n"
	      "              [--blocklist FILE]       run the resolver in the foreground\n"
	      "       dnsink check [-c FILE] [--strict]  load config and rules, print a summary\n"
	      "       dnsink match [-c FILE] [--type TYPE] [--client IP] NAME...\n"
	      "                                       print the verdict for each name (as IP gets "
	      "it)\n"
	      "       dnsink test [-c FILE] [PATH...] run the tests embedded in rule files\n"
	      "       dnsink hunt [-c FILE] [--format FMT] [--output native|ocsf] [--no-dedup]\n"
	      "                   [--fail-on-match] [-j N] PATH...\n"
	      "                                       run the rules over DNS logs (- is stdin)\n"
	      "       dnsink ctl [-c FILE] COMMAND    ask the running daemon: status, stats,\n"
	      "                                       reload, flush NAME, flush-all, top [N],\n"
	      "                                       match NAME\n"
	      "       dnsink --version | --help\n"
	      "\n"
	      "Default config: " SYSTEM_CONFIG " if present, else " LOCAL_CONFIG ".\n"
	      "Signals: SIGHUP reloads config and rules; SIGTERM/SIGINT stop.\n",
	      out);
}

static const char *default_config(void)
{
	return access(SYSTEM_CONFIG, F_OK) == 0 ? SYSTEM_CONFIG : LOCAL_CONFIG;
}

enum {
	OPT_WORKERS = 256,
	OPT_LISTEN,
	OPT_UPSTREAM,
	OPT_BLOCKLIST,
	OPT_STRICT,
	OPT_TYPE,
	OPT_CLIENT
};

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"help", no_argument, NULL, 'h'},
	        {"version", no_argument, NULL, 'V'},
	        {"workers", required_argument, NULL, OPT_WORKERS},
	        {"listen", required_argument, NULL, OPT_LISTEN},
	        {"upstream", required_argument, NULL, OPT_UPSTREAM},
	        {"blocklist", required_argument, NULL, OPT_BLOCKLIST},
	        {"strict", no_argument, NULL, OPT_STRICT},
	        {"type", required_argument, NULL, OPT_TYPE},
	        {"client", required_argument, NULL, OPT_CLIENT},
	        {NULL, 0, NULL, 0},
	};
	const char *cmd = NULL;
	const char *config = NULL;
	struct dk_run_opts run = {0};
	struct dk_cli_match_opts mo = {.type = "A", .client = "127.0.0.1"};
	bool strict = false;

	/* A subcommand, if any, comes first; its options follow it. */
	if (argc > 1 && argv[1][0] != '-') {
		cmd = argv[1];
		argv++;
		argc--;
	}

	/* hunt has options of its own; it reads them itself. */
	if (cmd && strcmp(cmd, "hunt") == 0)
		return dk_cli_hunt(default_config(), argc, argv);

	/* Which command an option belongs to, to refuse it elsewhere rather than ignore it. */
	const char *run_opt = NULL, *check_opt = NULL, *match_opt = NULL;
	int c, li = -1;
	while ((c = getopt_long(argc, argv, "+c:hV", longopts, &li)) != -1) {
		const char *name = li >= 0 ? longopts[li].name : NULL;
		li = -1;
		if (c == OPT_WORKERS || c == OPT_LISTEN || c == OPT_UPSTREAM || c == OPT_BLOCKLIST)
			run_opt = name;
		else if (c == OPT_STRICT)
			check_opt = name;
		else if (c == OPT_TYPE || c == OPT_CLIENT)
			match_opt = name;
		switch (c) {
		case 'c': config = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("dnsink %s\n", DK_VERSION); return 0;
		case OPT_WORKERS: {
			char *end;
			unsigned long n = strtoul(optarg, &end, 10);
			if (*end || n == 0 || n > 256) {
				fprintf(stderr, "dnsink: --workers takes a number from 1 to 256\n");
				return 2;
			}
			run.workers = (unsigned)n;
			break;
		}
		case OPT_LISTEN: run.listen = optarg; break;
		case OPT_UPSTREAM: run.upstream = optarg; break;
		case OPT_BLOCKLIST: run.blocklist = optarg; break;
		case OPT_STRICT: strict = true; break;
		case OPT_TYPE: mo.type = optarg; break;
		case OPT_CLIENT: mo.client = optarg; break;
		default: usage(stderr); return 2;
		}
	}
	const char *wrong = cmd && run_opt                                 ? run_opt
	                    : check_opt && !(cmd && !strcmp(cmd, "check")) ? check_opt
	                    : match_opt && !(cmd && !strcmp(cmd, "match")) ? match_opt
	                                                                   : NULL;
	if (wrong) {
		fprintf(stderr, "dnsink: --%s is not an option of %s\n", wrong,
		        cmd ? cmd : "the resolver");
		return 2;
	}
	/* `test` reads a config only when told to: rule tests run without one. */
	const char *given = config;
	if (!config)
		config = default_config();

	if (!cmd)
		return optind < argc ? (usage(stderr), 2) : dk_server_main(config, &run);
	if (strcmp(cmd, "check") == 0 && optind == argc)
		return dk_cli_check(config, strict);
	if (strcmp(cmd, "match") == 0 && optind < argc)
		return dk_cli_match(config, &mo, argv + optind, argc - optind);
	if (strcmp(cmd, "ctl") == 0 && optind < argc)
		return dk_cli_ctl(config, argv + optind, argc - optind);
	if (strcmp(cmd, "test") == 0)
		return dk_cli_test(given, argv + optind, argc - optind);
	if (strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "dnsink: unknown command or arguments: %s\n", cmd);
	usage(stderr);
	return 2;
}
