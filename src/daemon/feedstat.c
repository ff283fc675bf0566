/* SPDX-License-Identifier: MIT */
/* The status file of a feed's copy (see feedstat.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "feedstat.h"

int dk_feed_status_write(const char *copy, double last_time, const char *last_result,
                         double last_ok_time, const char *const *names, const uint64_t *counts,
                         size_t n)
{
	char path[4200], tmp[4210];
	FILE *f;

	snprintf(path, sizeof(path), "%s.status", copy);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (!(f = fopen(tmp, "w")))
		return -errno;
	fprintf(f, "last_attempt %.3f %s\nlast_ok %.3f\nresults", last_time, last_result,
	        last_ok_time);
	for (size_t i = 0; i < n; i++)
		fprintf(f, " %s=%" PRIu64, names[i], counts[i]);
	fputc('\n', f);
	int rc = fclose(f) == 0 ? 0 : -errno;
	if (!rc && rename(tmp, path) < 0)
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}
