/* SPDX-License-Identifier: MIT */
/*
 * The operational log: one formatted line per call, written to stderr with a
 * single write(2) so lines of different threads never interleave, and mirrored
 * to syslog(3) when stderr is not a terminal (a daemon under a supervisor).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dnsink/common.h"

#include "log.h"

static bool use_syslog;

/* A failed internal assertion in core code is an error line of this log. */
static void log_assert(const char *msg)
{
	dk_log(DK_LOG_ERR, "%s", msg);
}

/*
 * syslog(3) state is process-wide and the alerter opens it too, with the
 * alert ident and facility: every line here names LOG_DAEMON itself.
 */
void dk_log_open(void)
{
	dk_set_assert_hook(log_assert);
	if (!isatty(STDERR_FILENO) && !use_syslog) {
		openlog("dnsink", LOG_PID | LOG_NDELAY, LOG_DAEMON);
		use_syslog = true;
	}
}

void dk_log_close(void)
{
	if (use_syslog) {
		closelog();
		use_syslog = false;
	}
}

static const char *level_name(enum dk_log_level level)
{
	switch (level) {
	case DK_LOG_ERR: return "error";
	case DK_LOG_WARN: return "warning";
	case DK_LOG_INFO: return "info";
	case DK_LOG_DEBUG: return "debug";
	}
	return "log";
}

void dk_log(enum dk_log_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	char line[1200];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ dnsink %s: %s\n",
	                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	                 tm.tm_sec, ts.tv_nsec / 1000000, level_name(level), msg);
	if (n > (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 1;
	/* A failed log write has nowhere better to be reported. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		(void)0;
	if (use_syslog)
		syslog(LOG_DAEMON | (int)level, "%s", msg);
}
