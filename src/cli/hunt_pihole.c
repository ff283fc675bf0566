/* SPDX-License-Identifier: MIT */
/*
 * Pi-hole's long-term query database (pihole-FTL.db, SQLite), read through
 * its "queries" table (FTL v5: a view over query_storage), as Pi-hole's
 * documentation describes it: timestamp (epoch seconds), type (FTL's own
 * numbering, mapped back to DNS types below), status, domain, client (an
 * address), and in newer schemas reply_type and additional_info (the CNAME
 * a "blocked during deep CNAME inspection" row was blocked for). The row id
 * stands in for a line number.
 */
#include <sqlite3.h>
#include <string.h>

#include "hunt_reader.h"

/* FTL's query types (enum query_type), 1-based, to DNS types. */
static const uint16_t ftl_types[] = {0,  1,  28, 255, 33, 6, 12, 16, 35,
                                     15, 43, 46, 48,  2,  0, 64, 65};

/* FTL's reply types to rcodes: NXDOMAIN, SERVFAIL, REFUSED, NOTIMP; the rest NOERROR. */
static int ftl_rcode(int reply)
{
	switch (reply) {
	case 2: return 3;
	case 7: return 2;
	case 8: return 5;
	case 9: return 4;
	case 1:
	case 3:
	case 4:
	case 5: return 0;
	default: return -1;
	}
}

static const char *const selects[] = {
        "SELECT id, timestamp, type, domain, client, reply_type, additional_info FROM queries",
        "SELECT id, timestamp, type, domain, client, NULL, NULL FROM queries",
};

void dk__hunt_read_pihole(struct dk_hunt_file *f)
{
	struct dk_logrec *r = &(struct dk_logrec){0};
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL);

	if (rc != SQLITE_OK) {
		dk__hunt_bad(f, DK_LOGERR_SQLITE, 0);
		dk__hunt_file_error(f, "sqlite: %s", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return;
	}
	/* A database being written by FTL: wait a little for its lock, not forever. */
	sqlite3_busy_timeout(db, 2000);
	for (size_t i = 0; i < sizeof(selects) / sizeof(selects[0]) && !st; i++)
		if (sqlite3_prepare_v2(db, selects[i], -1, &st, NULL) != SQLITE_OK)
			st = NULL;
	if (!st) {
		dk__hunt_bad(f, DK_LOGERR_SQLITE, 0);
		dk__hunt_file_error(f, "not a Pi-hole FTL database (%s)", sqlite3_errmsg(db));
		sqlite3_close(db);
		return;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t id = (uint64_t)sqlite3_column_int64(st, 0);
		const char *domain = (const char *)sqlite3_column_text(st, 3);
		const char *client = (const char *)sqlite3_column_text(st, 4);
		double ts = sqlite3_column_double(st, 1);
		int type = sqlite3_column_int(st, 2);

		dk_logrec_reset(r, DK_LOGFMT_PIHOLE);
		if (!domain || dk_logrec_set_qname(r, domain, strlen(domain))) {
			dk__hunt_bad(f, DK_LOGERR_NAME, id);
			continue;
		}
		if (client && *client && dk_logrec_set_addr(r, client, strlen(client))) {
			dk__hunt_bad(f, DK_LOGERR_ADDR, id);
			continue;
		}
		r->time_ms = ts > 0 && ts < 1e11 ? (uint64_t)(ts * 1000.0) : 0;
		if (type > 0 && (size_t)type < sizeof(ftl_types) / sizeof(ftl_types[0]))
			r->qtype = ftl_types[type];
		if (sqlite3_column_type(st, 5) == SQLITE_INTEGER)
			r->rcode = (int16_t)ftl_rcode(sqlite3_column_int(st, 5));
		const char *extra = (const char *)sqlite3_column_text(st, 6);
		if (extra && *extra)
			dk_logrec_add_target(r, extra, strlen(extra));
		dk__hunt_record(f, r, id);
	}
	if (rc != SQLITE_DONE) {
		dk__hunt_bad(f, DK_LOGERR_SQLITE, 0);
		dk__hunt_file_error(f, "sqlite: %s", sqlite3_errmsg(db));
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
}
