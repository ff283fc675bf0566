/* SPDX-License-Identifier: MIT */
/*
 * Where `dnsink hunt`'s readers hand their records (see hunt_reader.h): the
 * verdict, the counters, and the bounded queue to the main thread. Apart
 * from hunt.c so that the readers and the driver do not use each other.
 */
#include <stdarg.h>
#include <stdio.h>

#include "dnsink/hunt.h"

#include "hunt_reader.h"

/* Workers' side. */

static void push(struct dk_hunt *h, const struct dk_alert_event *ev)
{
	pthread_mutex_lock(&h->mu);
	while (h->q_len == DK_HUNT_QUEUE_CAP)
		pthread_cond_wait(&h->not_full, &h->mu);
	h->q[(h->q_head + h->q_len) % DK_HUNT_QUEUE_CAP].ev = *ev;
	h->q_len++;
	pthread_cond_signal(&h->not_empty);
	pthread_mutex_unlock(&h->mu);
}

static void count_record(struct dk_hunt_worker *w)
{
	/* The shared counter feeds the progress line; per batch, not per record. */
	if (++w->since_flush == 4096) {
		atomic_fetch_add_explicit(&w->h->records, w->since_flush, memory_order_relaxed);
		w->since_flush = 0;
	}
}

void dk__hunt_record(struct dk_hunt_file *f, const struct dk_logrec *r, uint64_t line)
{
	struct dk_hunt_worker *w = f->w;
	struct dk_alert_event ev[DK_HUNT_EVENTS_MAX];
	unsigned n = dk_hunt_judge(w->h->pol, w->sigma, r, ev);

	w->st.records[r->fmt < DK_LOGFMT_COUNT ? r->fmt : 0]++;
	count_record(w);
	for (unsigned i = 0; i < n; i++) {
		ev[i].mono_ns = (uint64_t)f->index << DK_HUNT_LINE_BITS |
		                (line & ((1ULL << DK_HUNT_LINE_BITS) - 1));
		push(w->h, &ev[i]);
	}
}

void dk__hunt_bad(struct dk_hunt_file *f, int kind, uint64_t line)
{
	struct dk_hunt_stats *st = &f->w->st;

	if (kind < DK_LOGERR_FIRST || kind > DK_LOGERR_LAST)
		kind = DK_LOGERR_SHAPE;
	unsigned k = (unsigned)DK_HUNT_KIND_IDX(kind);
	if (st->bad[k]++ == 0 || f->index < st->bad_file[k] ||
	    (f->index == st->bad_file[k] && line < st->bad_line[k])) {
		st->bad_file[k] = f->index;
		st->bad_line[k] = line;
	}
	count_record(f->w);
}

void dk__hunt_skip(struct dk_hunt_file *f)
{
	f->w->st.skipped++;
}

void dk__hunt_file_error(struct dk_hunt_file *f, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\n", f->path, msg);
	f->w->h->status = 2;
}
