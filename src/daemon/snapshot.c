/* SPDX-License-Identifier: MIT */
/* Snapshots of config and policy for the workers (see snapshot.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "dnsink/suffixset.h"
#include "log.h"
#include "snapshot.h"

static void log_warning(void *ctx, const char *file, unsigned line, const char *msg)
{
	(void)ctx;
	if (line)
		dk_log(DK_LOG_WARN, "%s:%u: warning: %s", file, line, msg);
	else
		dk_log(DK_LOG_WARN, "%s: warning: %s", file, msg);
}

void dk_snapshot_free(struct dk_snapshot *s)
{
	if (!s)
		return;
	dk_stats_map_deinit(&s->stats);
	dk_tls_creds_unref(s->tls);
	dk_policy_unref(s->pol);
	dk_config_free(s->cfg);
	free(s);
}

int dk_snapshot_load(const char *path, const struct dk_run_opts *o, struct dk_stats_reg *reg,
                     struct dk_wstats *const *blocks, unsigned n_workers, struct dk_snapshot **out,
                     char *out_msg, size_t out_size)
{
	struct dk_diag diag = {0};
	char msg[1100];
	uint64_t t0 = dk_mono_ns();
	struct dk_snapshot *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	rc = dk_load(path, o, &s->cfg, &s->pol, &diag);
	/* Certificates and keys are read here, on the main thread, never by a worker. */
	if (rc == 0) {
		char err[512];
		rc = dk_tls_creds_load(s->cfg, &s->tls, err, sizeof(err));
		if (rc < 0)
			dk_diag_set(&diag, path, 0, "tls: %s", err);
	}
	if (rc == 0)
		rc = dk_stats_prepare(reg, s->cfg, s->pol, &s->stats, blocks, n_workers);
	if (rc < 0) {
		if (!diag.msg[0])
			dk_diag_set(&diag, path, 0, "%s", dk_strerror(rc));
		dk_diag_format(&diag, msg, sizeof(msg));
		dk_log(DK_LOG_ERR, "%s", msg);
		if (out_msg)
			snprintf(out_msg, out_size, "%s", msg);
		dk_snapshot_free(s);
		return rc;
	}
	double ms = (double)(dk_mono_ns() - t0) / 1e6;
	if (s->pol)
		snprintf(msg, sizeof(msg),
		         "loaded %s: %zu rules, %zu entries (%zu names, %zu set bytes, %zu invalid "
		         "lines) in %.1f ms",
		         path, dk_policy_rule_count(s->pol), s->pol->n_entries, s->pol->n_names,
		         dk_suffixset_bytes(s->pol->set), s->pol->n_invalid, ms);
	else
		snprintf(msg, sizeof(msg), "loaded %s: no rules in %.1f ms", path, ms);
	dk_log(DK_LOG_INFO, "%s", msg);
	if (out_msg)
		snprintf(out_msg, out_size, "%s", msg);
	dk_policy_warnings(s->pol, log_warning, NULL);
	*out = s;
	return 0;
}
