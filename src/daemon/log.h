/* SPDX-License-Identifier: MIT */
/*
 * Operational log of the resolver: start-up, reloads, errors and counters.
 * Lines go to stderr, and to syslog(3) as well (ident "dnsink", LOG_DAEMON)
 * when stderr is not a terminal. Alert records never come here: they have
 * their own sinks (alert_sink.h).
 */
#pragma once

#include <syslog.h>

/** Severities, the syslog(3) priorities. */
enum dk_log_level {
	DK_LOG_ERR = LOG_ERR,
	DK_LOG_WARN = LOG_WARNING,
	DK_LOG_INFO = LOG_INFO,
	DK_LOG_DEBUG = LOG_DEBUG,
};

/**
 * Decides once whether syslog(3) is used too, and sends the reports of
 * failed dk_fails_assert() checks here (dk_set_assert_hook()); safe to call
 * again.
 */
void dk_log_open(void);

/** Closes the syslog(3) connection opened by dk_log_open(). */
void dk_log_close(void);

/** Logs one line (no trailing newline in @p fmt). Thread-safe. */
void dk_log(enum dk_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
