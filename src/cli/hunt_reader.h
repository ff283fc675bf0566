/* SPDX-License-Identifier: MIT */
/*
 * Between `dnsink hunt`'s driver (hunt.c) and its readers that need a
 * library (hunt_dnstap.c, hunt_pihole.c): a reader turns a file into
 * records and hands each to dk__hunt_record(), or reports what it could
 * not read with dk__hunt_bad(). A worker thread runs one file at a time.
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "dnsink/alert.h"
#include "dnsink/config.h"
#include "dnsink/logrec.h"
#include "dnsink/policy.h"

#include "hunt_input.h"

#define DK_HUNT_QUEUE_CAP   4096
#define DK_HUNT_LINE_BITS   40
#define DK_HUNT_KINDS       DK_LOGERR_KINDS
#define DK_HUNT_KIND_IDX(k) ((k)-DK_LOGERR_FIRST)

struct dk_hunt_item {
	struct dk_alert_event ev;
};

struct dk_hunt_stats {
	uint64_t records[DK_LOGFMT_COUNT];
	uint64_t skipped;
	uint64_t bad[DK_HUNT_KINDS];
	uint32_t bad_file[DK_HUNT_KINDS];
	uint64_t bad_line[DK_HUNT_KINDS];
};

struct dk_hunt {
	struct dk_policy *pol;
	enum dk_logfmt want;
	enum dk_alert_format out_fmt;
	bool dedup;
	char **files;
	size_t n_files, cap_files;
	uint64_t total_bytes; /**< of the regular files, for the ETA */
	_Atomic size_t next_file;
	_Atomic uint64_t raw_bytes;
	_Atomic uint64_t records;
	_Atomic int status; /**< 0 or 2 */

	pthread_mutex_t mu;
	pthread_cond_t not_empty, not_full;
	struct dk_hunt_item *q;
	size_t q_head, q_len;
	unsigned workers_done, n_workers;
	struct dk_hunt_stats total; /**< merged under @p mu as workers end */

	/* Main thread only. */
	uint64_t *rule_events;
	uint64_t n_events, n_records_out;
	uint64_t max_time;
	char *obuf;
};

struct dk_hunt_worker {
	struct dk_hunt *h;
	/** Sigma scan and behavioural counting state of this thread; NULL: no Sigma rules. */
	struct dk_sigma_scratch *sigma;
	pthread_t tid;
	struct dk_hunt_stats st;
	uint64_t since_flush;
	struct dk_logrec rec;
};

/** The file a worker is on. */
struct dk_hunt_file {
	struct dk_hunt_worker *w;
	const char *path;
	uint32_t index;      /**< in the hunt's file list */
	enum dk_logfmt want; /**< --format */
};

/**
 * Judges record @p r, read at @p line (a line, a frame or a row number) of
 * file @p f, and queues its alert events for the output. Counts the record.
 */
void dk__hunt_record(struct dk_hunt_file *f, const struct dk_logrec *r, uint64_t line);

/** Counts a record of @p f at @p line that could not be read, of kind @p kind (DK_LOGERR_*). */
void dk__hunt_bad(struct dk_hunt_file *f, int kind, uint64_t line);

/** Counts a record that is no DNS lookup (skipped, no error). */
void dk__hunt_skip(struct dk_hunt_file *f);

/** Reports a file-level error (the file could not be read as its format): exit status 2. */
void dk__hunt_file_error(struct dk_hunt_file *f, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/** Reads a Frame Streams file of dnstap messages from @p l. */
void dk__hunt_read_dnstap(struct dk_hunt_file *f, struct dk_hlines *l);

/** Reads the queries of a Pi-hole FTL database at f->path. */
void dk__hunt_read_pihole(struct dk_hunt_file *f);
