/* SPDX-License-Identifier: MIT */
/*
 * Client groups as the subcommands show them. `dnsink check` lists what a
 * group changes by reading the verdict tables the daemon uses, not the
 * config text, so a tag resolves to the rules it names and what is printed
 * is what runs.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "cli_groups.h"

const struct dk_group *dk__cli_group_of(const struct dk_policy *p, const char *ip, bool *bad)
{
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
	struct sockaddr_in in4 = {.sin_family = AF_INET};
	const struct sockaddr *sa;

	*bad = false;
	if (inet_pton(AF_INET, ip, &in4.sin_addr) == 1) {
		sa = (const struct sockaddr *)&in4;
	} else if (inet_pton(AF_INET6, ip, &in6.sin6_addr) == 1) {
		sa = (const struct sockaddr *)&in6;
	} else {
		*bad = true;
		return NULL;
	}
	return p && p->groups ? dk_groups_lookup(p->groups, sa) : NULL;
}

static const char *const day_names[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static void print_window(const struct dk_sched_window *w)
{
	const char *sep = "";

	for (int d = 0; d < 7; d++) {
		/* Monday first, as people write weeks. */
		int day = (d + 1) % 7;
		if (w->days >> day & 1) {
			printf("%s%s", sep, day_names[day]);
			sep = ",";
		}
	}
	printf(" %02u:%02u-%02u:%02u", w->start / 60, w->start % 60, w->end / 60, w->end % 60);
}

/* The rules whose entry in @p view differs from @p base ("off", or the new action). */
static void print_diff(const struct dk_policy *p, const uint8_t *view, const uint8_t *base)
{
	size_t shown = 0;

	for (size_t r = 0; r < p->n_rules; r++) {
		uint8_t was = base ? base[r] : (uint8_t)p->rules[r].action;
		if (view[r] == was)
			continue;
		printf("%s%s %s", shown++ ? ", " : " ", p->rules[r].id,
		       view[r] == DK_GROUP_OFF ? "off" : dk_action_name((enum dk_action)view[r]));
	}
	if (!shown)
		printf(" (no change)");
}

void dk__cli_print_groups(const struct dk_policy *p)
{
	const struct dk_groups *gs = p ? p->groups : NULL;
	char ip[INET6_ADDRSTRLEN];

	if (!gs)
		return;
	uint64_t open = atomic_load_explicit(&gs->open, memory_order_relaxed);
	printf("\ngroups:\n");
	for (size_t i = 0; i < gs->n; i++) {
		const struct dk_group *g = &gs->g[i];
		const struct dk_group_conf *c = g->conf;
		printf("  %s\n    clients      ", g->name);
		if (i == 0)
			printf(" (every client in no other group)");
		for (size_t j = 0; c && j < c->n_clients; j++)
			printf(" %s", c->clients[j].text);
		printf("\n    rules        ");
		if (g->views)
			print_diff(p, g->views, NULL);
		else
			printf(" as loaded");
		printf("\n");
		if (c && c->n_allow) {
			printf("    allow        ");
			for (size_t j = 0; j < c->n_allow; j++)
				printf(" %s", c->allow[j].text);
			printf("\n");
		}
		if (g->own_acl) {
			printf("    allow_clients");
			if (!g->n_acl)
				printf(" (none: every query of the group is refused)");
			for (size_t j = 0; j < g->n_acl; j++) {
				if (!inet_ntop(g->acl[j].family, g->acl[j].addr, ip, sizeof(ip)))
					snprintf(ip, sizeof(ip), "?");
				printf(" %s/%u", ip, g->acl[j].prefix);
			}
			printf("\n");
		}
		for (unsigned s = 0; s < g->n_sched; s++) {
			const struct dk_groups_sched *sc = &gs->sched[g->sched_first + s];
			printf("    schedule      ");
			print_window(&sc->window);
			printf(" %s%s:", gs->zones[sc->zone].name,
			       open >> (g->sched_first + s) & 1 ? " (open now)" : "");
			print_diff(p, g->views + (size_t)(1 + s) * gs->n_rules, g->views);
			printf("\n");
		}
	}
}
