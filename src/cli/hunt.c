/* SPDX-License-Identifier: MIT */
/*
 * `dnsink hunt`: the loaded rules over DNS logs. Worker threads take one
 * file at a time, read it (hunt_input.c for the bytes, the core's readers
 * for the records), judge every record with dk_hunt_judge() (the daemon's
 * order of checks) and queue the alert events; the main thread folds them
 * with the daemon's dedup on event time and prints them with the daemon's
 * formatter, so a retro-hunt record reads exactly as a live alert.
 *
 * Memory stays flat: each worker holds a fixed line buffer, the event queue
 * is bounded (a full queue makes workers wait: nothing is dropped), and the
 * dedup table is the daemon's, of alerts.dedup_max keys.
 *
 * Each record printed carries one field the daemon's do not: "log", the
 * FILE:LINE it was read at (a frame number for dnstap, a row id for
 * Pi-hole). The file index and line travel in the event's mono_ns, which
 * only the daemon's alert thread reads.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dnsink/alert.h"
#include "dnsink/config.h"
#include "dnsink/hunt.h"
#include "dnsink/load.h"
#include "dnsink/logrec.h"
#include "dnsink/policy.h"

#include "cli.h"
#include "hunt_input.h"
#include "hunt_reader.h"

#define DIR_DEPTH 32 /* folders below a PATH */

static void add_file(struct dk_hunt *h, const char *path)
{
	if (h->n_files == h->cap_files) {
		size_t cap = h->cap_files ? h->cap_files * 2 : 16;
		char **f = realloc(h->files, cap * sizeof(*f));
		if (!f) {
			fprintf(stderr, "dnsink hunt: out of memory\n");
			exit(2);
		}
		h->files = f;
		h->cap_files = cap;
	}
	h->files[h->n_files] = strdup(path);
	if (!h->files[h->n_files]) {
		fprintf(stderr, "dnsink hunt: out of memory\n");
		exit(2);
	}
	h->n_files++;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds @p path, or the files under it in name order when it is a folder. */
static void add_path(struct dk_hunt *h, const char *path, int depth)
{
	struct stat st;

	if (strcmp(path, "-") == 0) {
		add_file(h, path);
		return;
	}
	if (stat(path, &st) != 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		h->status = 2;
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (S_ISREG(st.st_mode))
			h->total_bytes += (uint64_t)st.st_size;
		add_file(h, path);
		return;
	}
	if (depth >= DIR_DEPTH) {
		fprintf(stderr, "%s: folders nested too deep, not read\n", path);
		h->status = 2;
		return;
	}
	DIR *d = opendir(path);
	if (!d) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		h->status = 2;
		return;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			char **nn = realloc(names, cap * sizeof(*nn));
			if (!nn)
				break;
			names = nn;
		}
		size_t len = strlen(path) + strlen(e->d_name) + 2;
		names[n] = malloc(len);
		if (!names[n])
			break;
		snprintf(names[n], len, "%s/%s", path, e->d_name);
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++) {
		add_path(h, names[i], depth + 1);
		free(names[i]);
	}
	free(names);
}

/* Workers' side: the sink functions are in hunt_sink.c. */

static int parse_line(struct dk_hunt_file *f, enum dk_logfmt sniffed, struct dk_zeek_tsv *z,
                      const char *line, size_t len, struct dk_logrec *r)
{
	if (len == 0)
		return DK_LOG_SKIP;
	switch (sniffed) {
	case DK_LOGFMT_ZEEK:
		if (line[0] == '{')
			return dk_log_parse_json(line, len, DK_LOGFMT_ZEEK, r);
		return dk_log_parse_zeek_tsv(z, line, len, r);
	case DK_LOGFMT_BIND: return dk_log_parse_bind(line, len, r);
	default: return dk_log_parse_json(line, len, f->want, r);
	}
}

static void read_lines(struct dk_hunt_file *f, struct dk_hlines *l, enum dk_logfmt sniffed)
{
	struct dk_logrec *r = &f->w->rec;
	struct dk_zeek_tsv z;
	const char *line;
	size_t len;
	int rc;

	dk_zeek_tsv_init(&z);
	while ((rc = dk_hlines_next(l, &line, &len)) != 0) {
		if (rc == DK_LOGERR_LONG) {
			dk__hunt_bad(f, rc, l->line);
			continue;
		}
		if (rc < 0) {
			dk__hunt_bad(f, DK_LOGERR_IO, l->line + 1);
			fprintf(stderr, "%s:%lu: %s\n", f->path, l->line + 1,
			        rc == DK_LOGERR_IO ? dk_hin_error(l->in) : strerror(-rc));
			break;
		}
		rc = parse_line(f, sniffed, &z, line, len, r);
		if (rc == 0)
			dk__hunt_record(f, r, l->line);
		else if (rc == DK_LOG_SKIP && line[0] == '{')
			dk__hunt_skip(f); /* a JSON event that is no DNS lookup */
		else if (rc != DK_LOG_SKIP)
			dk__hunt_bad(f, rc, l->line);
	}
}

static void read_file(struct dk_hunt_file *f)
{
	struct dk_hin *in = NULL;
	struct dk_hlines l;
	const uint8_t *head;
	int rc = dk_hin_open(f->path, &f->w->h->raw_bytes, &in);

	if (rc) {
		dk__hunt_file_error(f, "%s", strerror(-rc));
		return;
	}
	if (dk_hlines_init(&l, in)) {
		dk_hin_close(in);
		dk__hunt_file_error(f, "out of memory");
		return;
	}
	ssize_t n = dk_hlines_peek(&l, 64, &head);
	if (n < 0) {
		dk__hunt_bad(f, DK_LOGERR_IO, 1);
		/* A corrupt or cut stream is counted, as later in a file; a read error is an error.
		 */
		if (n == DK_LOGERR_IO)
			fprintf(stderr, "%s: %s\n", f->path, dk_hin_error(in));
		else
			dk__hunt_file_error(f, "%s", strerror((int)-n));
		goto out;
	}
	enum dk_logfmt sniffed = dk_logfmt_sniff(head, (size_t)n);
	enum dk_logfmt fmt = f->want;
	if (fmt == DK_LOGFMT_AUTO || fmt == DK_LOGFMT_ZEEK || fmt == DK_LOGFMT_BIND)
		fmt = fmt == DK_LOGFMT_AUTO ? sniffed : fmt;
	else if (fmt != DK_LOGFMT_DNSTAP && fmt != DK_LOGFMT_PIHOLE)
		fmt = DK_LOGFMT_AUTO; /* one of the JSON formats: the JSON reader insists */
	switch (fmt) {
	case DK_LOGFMT_PIHOLE:
		if (strcmp(f->path, "-") == 0 || dk_hin_codec(in) != DK_HIN_PLAIN) {
			dk__hunt_bad(f, DK_LOGERR_SQLITE, 0);
			dk__hunt_file_error(f,
			                    "a Pi-hole database is read from an uncompressed file");
			break;
		}
		dk__hunt_read_pihole(f);
		break;
	case DK_LOGFMT_DNSTAP: dk__hunt_read_dnstap(f, &l); break;
	default: read_lines(f, &l, fmt);
	}
out:
	dk_hlines_deinit(&l);
	dk_hin_close(in);
}

static void *worker_main(void *arg)
{
	struct dk_hunt_worker *w = arg;
	struct dk_hunt *h = w->h;
	size_t i;

	while ((i = atomic_fetch_add(&h->next_file, 1)) < h->n_files) {
		struct dk_hunt_file f = {
		        .w = w, .path = h->files[i], .index = (uint32_t)i, .want = h->want};
		read_file(&f);
	}
	atomic_fetch_add_explicit(&h->records, w->since_flush, memory_order_relaxed);
	pthread_mutex_lock(&h->mu);
	struct dk_hunt_stats *t = &h->total, *s = &w->st;
	for (unsigned k = 0; k < DK_LOGFMT_COUNT; k++)
		t->records[k] += s->records[k];
	t->skipped += s->skipped;
	for (unsigned k = 0; k < DK_HUNT_KINDS; k++) {
		if (!s->bad[k])
			continue;
		if (!t->bad[k] || s->bad_file[k] < t->bad_file[k] ||
		    (s->bad_file[k] == t->bad_file[k] && s->bad_line[k] < t->bad_line[k])) {
			t->bad_file[k] = s->bad_file[k];
			t->bad_line[k] = s->bad_line[k];
		}
		t->bad[k] += s->bad[k];
	}
	h->workers_done++;
	pthread_cond_signal(&h->not_empty);
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

/* Main thread's side: dedup, format, print. */

static void json_escaped(FILE *out, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
}

#define OBUF 8192

static void emit(const struct dk_alert_record *rec, void *ctx)
{
	struct dk_hunt *h = ctx;
	int n = dk_alert_format(rec, h->out_fmt, h->obuf, OBUF);

	if (n < 2)
		return;
	/* The record's closing brace(s) make room for "log" (inside OCSF's "unmapped"). */
	int tail = h->out_fmt == DK_ALERT_FORMAT_OCSF ? 2 : 1;
	uint64_t file = rec->ev->mono_ns >> DK_HUNT_LINE_BITS;
	uint64_t line = rec->ev->mono_ns & ((1ULL << DK_HUNT_LINE_BITS) - 1);
	fwrite(h->obuf, 1, (size_t)(n - tail), stdout);
	fputs(",\"log\":\"", stdout);
	json_escaped(stdout, file < h->n_files ? h->files[file] : "?");
	fprintf(stdout, ":%llu\"%s\n", (unsigned long long)line, tail == 2 ? "}}" : "}");
	h->n_records_out++;
}

static void handle(struct dk_hunt *h, struct dk_dedup *d, const struct dk_alert_event *ev)
{
	h->n_events++;
	if (ev->rule->index < h->pol->n_rules)
		h->rule_events[ev->rule->index]++;
	if (!d) {
		struct dk_alert_record rec = {.ev = ev,
		                              .count = 1,
		                              .first_seen_ms = ev->time_ms,
		                              .last_seen_ms = ev->time_ms};
		emit(&rec, h);
		return;
	}
	if (ev->time_ms > h->max_time) {
		h->max_time = ev->time_ms;
		dk_dedup_tick(d, h->max_time, emit, h);
	}
	dk_dedup_event(d, ev, ev->time_ms, emit, h);
}

static void fmt_count(uint64_t v, char *buf, size_t size)
{
	if (v >= 10000000)
		snprintf(buf, size, "%.1fM", (double)v / 1e6);
	else if (v >= 10000)
		snprintf(buf, size, "%.1fk", (double)v / 1e3);
	else
		snprintf(buf, size, "%llu", (unsigned long long)v);
}

static void progress(struct dk_hunt *h, double t0, bool last)
{
	double el = (double)dk_mono_ns() / 1e9 - t0;
	uint64_t recs = atomic_load_explicit(&h->records, memory_order_relaxed);
	uint64_t bytes = atomic_load_explicit(&h->raw_bytes, memory_order_relaxed);
	char r[32], rate[32];

	fmt_count(recs, r, sizeof(r));
	fmt_count(el > 0 ? (uint64_t)((double)recs / el) : 0, rate, sizeof(rate));
	fprintf(stderr, "\rhunt: %s records, %.1f MB, %.0f s, %s records/s", r, (double)bytes / 1e6,
	        el, rate);
	if (!last && h->total_bytes && bytes && bytes < h->total_bytes)
		fprintf(stderr, ", ETA %.0f s  ",
		        el * (double)(h->total_bytes - bytes) / (double)bytes);
	else
		fputs("         ", stderr);
	if (last)
		fputc('\n', stderr);
}

static void collect(struct dk_hunt *h, struct dk_dedup *d)
{
	bool tty = isatty(STDERR_FILENO);
	double t0 = (double)dk_mono_ns() / 1e9, last = t0;
	struct dk_hunt_item batch[256];

	pthread_mutex_lock(&h->mu);
	for (;;) {
		if (h->q_len == 0) {
			if (h->workers_done == h->n_workers)
				break;
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 250 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&h->not_empty, &h->mu, &ts);
		}
		size_t n = 0;
		while (h->q_len && n < DK_ARRAY_SIZE(batch)) {
			batch[n++] = h->q[h->q_head];
			h->q_head = (h->q_head + 1) % DK_HUNT_QUEUE_CAP;
			h->q_len--;
		}
		if (n)
			pthread_cond_broadcast(&h->not_full);
		pthread_mutex_unlock(&h->mu);
		for (size_t i = 0; i < n; i++)
			handle(h, d, &batch[i].ev);
		double now = (double)dk_mono_ns() / 1e9;
		if (tty && now - last >= 0.5) {
			progress(h, t0, false);
			last = now;
		}
		pthread_mutex_lock(&h->mu);
	}
	pthread_mutex_unlock(&h->mu);
	if (d)
		dk_dedup_flush(d, emit, h);
	if (tty)
		progress(h, t0, true);
}

static void summary(struct dk_hunt *h, double secs)
{
	const struct dk_hunt_stats *t = &h->total;
	uint64_t recs = 0, bad = 0;

	for (unsigned k = 0; k < DK_LOGFMT_COUNT; k++)
		recs += t->records[k];
	for (unsigned k = 0; k < DK_HUNT_KINDS; k++)
		bad += t->bad[k];
	fprintf(stderr, "hunt: %zu file%s, %llu records (", h->n_files, h->n_files == 1 ? "" : "s",
	        (unsigned long long)recs);
	bool first = true;
	for (unsigned k = 1; k < DK_LOGFMT_COUNT; k++) {
		if (!t->records[k])
			continue;
		fprintf(stderr, "%s%s %llu", first ? "" : ", ", dk_logfmt_name((enum dk_logfmt)k),
		        (unsigned long long)t->records[k]);
		first = false;
	}
	fprintf(stderr,
	        "%s), %llu matches, %llu alert records, %llu unparsable, %llu skipped, %.2f s\n",
	        first ? "none" : "", (unsigned long long)h->n_events,
	        (unsigned long long)h->n_records_out, (unsigned long long)bad,
	        (unsigned long long)t->skipped, secs);
	for (size_t i = 0; i < h->pol->n_rules; i++)
		if (h->rule_events[i])
			fprintf(stderr, "  matched %s: %llu\n", h->pol->rules[i].id,
			        (unsigned long long)h->rule_events[i]);
	for (unsigned k = 0; k < DK_HUNT_KINDS; k++) {
		if (!t->bad[k])
			continue;
		int kind = (int)k + DK_LOGERR_FIRST;
		fprintf(stderr, "  unparsable: %llu %s (first at %s:%llu)\n",
		        (unsigned long long)t->bad[k], dk_logerr_name(kind),
		        t->bad_file[k] < h->n_files ? h->files[t->bad_file[k]] : "?",
		        (unsigned long long)t->bad_line[k]);
	}
}

static void hunt_usage(void)
{
	fputs("usage: dnsink hunt [-c FILE] [--format FMT] [--output native|ocsf] [--no-dedup]\n"
	      "                   [--fail-on-match] [-j N] PATH...\n"
	      "FMT: auto (default), route53, ocsf, zeek, dnstap, bind, sysmon, pihole, dnsink\n",
	      stderr);
}

static int load(const char *config_path, struct dk_config **cfg, struct dk_policy **pol)
{
	struct dk_diag d = {0};
	char buf[1200];
	/* As the daemon loads: Sigma actions, client groups, RPZ copies in state_dir. */
	int err = dk_load(config_path, NULL, cfg, pol, &d);

	if (!err && !*pol) {
		dk_diag_set(&d, config_path, 0, "no rules to hunt with");
		dk_config_free(*cfg);
		*cfg = NULL;
		err = -ENOENT;
	}
	if (err) {
		if (!d.msg[0])
			dk_diag_set(&d, config_path, 0, "%s", dk_strerror(err));
		dk_diag_format(&d, buf, sizeof(buf));
		fprintf(stderr, "%s\n", buf);
	}
	return err;
}

enum { OPT_FORMAT = 300, OPT_OUTPUT, OPT_NODEDUP, OPT_FAIL };

int dk_cli_hunt(const char *config_path, int argc, char **argv)
{
	static const struct option opts[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"format", required_argument, NULL, OPT_FORMAT},
	        {"output", required_argument, NULL, OPT_OUTPUT},
	        {"no-dedup", no_argument, NULL, OPT_NODEDUP},
	        {"fail-on-match", no_argument, NULL, OPT_FAIL},
	        {"jobs", required_argument, NULL, 'j'},
	        {NULL, 0, NULL, 0},
	};
	struct dk_hunt h = {.want = DK_LOGFMT_AUTO, .dedup = true};
	bool fail_on_match = false;
	const char *output = NULL;
	long jobs = sysconf(_SC_NPROCESSORS_ONLN);
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:j:", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config_path = optarg; break;
		case OPT_FORMAT:
			if (dk_logfmt_parse(optarg, &h.want)) {
				fprintf(stderr, "dnsink hunt: unknown format '%s'\n", optarg);
				hunt_usage();
				return 2;
			}
			break;
		case OPT_OUTPUT:
			if (strcmp(optarg, "native") && strcmp(optarg, "ocsf")) {
				fprintf(stderr, "dnsink hunt: --output takes native or ocsf\n");
				return 2;
			}
			output = optarg;
			break;
		case OPT_NODEDUP: h.dedup = false; break;
		case OPT_FAIL: fail_on_match = true; break;
		case 'j': {
			char *end;
			jobs = strtol(optarg, &end, 10);
			if (*end || jobs < 1 || jobs > 256) {
				fprintf(stderr, "dnsink hunt: -j takes a number from 1 to 256\n");
				return 2;
			}
			break;
		}
		default: hunt_usage(); return 2;
		}
	}
	if (optind >= argc) {
		hunt_usage();
		return 2;
	}

	struct dk_config *cfg = NULL;
	if (load(config_path, &cfg, &h.pol))
		return 2;
	h.out_fmt = output ? (strcmp(output, "ocsf") == 0 ? DK_ALERT_FORMAT_OCSF
	                                                  : DK_ALERT_FORMAT_NATIVE)
	                   : cfg->alerts.format;
	for (int i = optind; i < argc; i++)
		add_path(&h, argv[i], 0);

	int status = 2;
	struct dk_dedup *d = NULL;
	struct dk_hunt_worker *w = NULL;
	h.q = calloc(DK_HUNT_QUEUE_CAP, sizeof(*h.q));
	h.rule_events = calloc(h.pol->n_rules + 1, sizeof(*h.rule_events));
	h.obuf = malloc(OBUF);
	if (h.dedup)
		d = dk_dedup_new(cfg->alerts.dedup_max);
	if (!h.q || !h.rule_events || !h.obuf || (h.dedup && !d)) {
		fprintf(stderr, "dnsink hunt: out of memory\n");
		goto out;
	}
	static char stdout_buf[1 << 20];
	setvbuf(stdout, stdout_buf, _IOFBF, sizeof(stdout_buf));
	pthread_mutex_init(&h.mu, NULL);
	pthread_cond_init(&h.not_empty, NULL);
	pthread_cond_init(&h.not_full, NULL);

	h.n_workers = (unsigned)((size_t)jobs < h.n_files ? (size_t)jobs : h.n_files);
	w = calloc(h.n_workers ? h.n_workers : 1, sizeof(*w));
	if (!w) {
		fprintf(stderr, "dnsink hunt: out of memory\n");
		goto out;
	}
	double t0 = (double)dk_mono_ns() / 1e9;
	unsigned started = 0;
	for (unsigned i = 0; i < h.n_workers; i++) {
		w[i].h = &h;
		if (h.pol->sigma && dk_sigma_scratch_new(h.pol->sigma, &w[i].sigma) < 0) {
			fprintf(stderr, "dnsink hunt: out of memory\n");
			break;
		}
		if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0) {
			dk_sigma_scratch_free(w[i].sigma);
			w[i].sigma = NULL;
			break;
		}
		started++;
	}
	h.n_workers = started;
	collect(&h, d);
	for (unsigned i = 0; i < started; i++) {
		pthread_join(w[i].tid, NULL);
		dk_sigma_scratch_free(w[i].sigma);
	}
	fflush(stdout);
	summary(&h, (double)dk_mono_ns() / 1e9 - t0);
	status = h.status ? 2 : (fail_on_match && h.n_events ? 1 : 0);
	pthread_cond_destroy(&h.not_full);
	pthread_cond_destroy(&h.not_empty);
	pthread_mutex_destroy(&h.mu);
out:
	dk_dedup_free(d);
	free(w);
	free(h.obuf);
	free(h.rule_events);
	free(h.q);
	for (size_t i = 0; i < h.n_files; i++)
		free(h.files[i]);
	free(h.files);
	dk_policy_unref(h.pol);
	dk_config_free(cfg);
	return status;
}
