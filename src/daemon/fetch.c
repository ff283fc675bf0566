/* SPDX-License-Identifier: MIT */
/*
 * Downloads of lists on URLs on a thread of their own (see fetch.h). The
 * URL table is shared with the main loop under one mutex, held only to copy
 * fields in or out, never across a download, as in xfr.c.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dk_build.h"
#include "feedstat.h"
#include "fetch.h"
#include "log.h"

#define MAX_URLS 1024
/* After a failure, try again sooner than refresh_s, but not in a loop. */
#define RETRY_S 60

static const char *const result_names[DK_FETCH_RESULT_MAX] = {
        [DK_FETCH_OK] = "ok",
        [DK_FETCH_NOT_MODIFIED] = "not_modified",
        [DK_FETCH_CONNECT] = "connect",
        [DK_FETCH_TIMEOUT] = "timeout",
        [DK_FETCH_HTTP] = "http",
        [DK_FETCH_CUT] = "cut",
        [DK_FETCH_TOO_LARGE] = "too_large",
        [DK_FETCH_EMPTY] = "empty",
        [DK_FETCH_SHRINK] = "shrink",
        [DK_FETCH_WRITE] = "write",
};

const char *dk_fetch_result_name(enum dk_fetch_result r)
{
	return (unsigned)r < DK_FETCH_RESULT_MAX ? result_names[r] : "unknown";
}

struct uent {
	char *url, *state_file;
	unsigned refresh_s, max_shrink, timeout_s;
	size_t max_bytes;
	size_t last_entries; /* of the last good copy; 0: none known */
	bool meta_read;      /* the validators were read from the .meta file */
	char etag[256], last_modified[128];
	uint64_t due_ns;
	double last_ok_time; /* wall clock of the last good attempt; 0: none */
	bool busy, dead;
	struct dk_fetch_url_stats st;
};

struct dk_fetch {
	uv_async_t changed_async;
	dk_fetch_changed_fn changed;
	void *ctx;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct uent **urls;
	size_t n_urls;
	bool stop;
	atomic_bool stopping;
	bool curl_ready;
};

static void uent_free(struct uent *u)
{
	if (!u)
		return;
	free(u->url);
	free(u->state_file);
	free(u);
}

static void on_changed(uv_async_t *a)
{
	struct dk_fetch *f = a->data;

	f->changed(f->ctx);
}

static void *run(void *arg);

int dk_fetch_new(uv_loop_t *loop, dk_fetch_changed_fn changed, void *ctx, struct dk_fetch **out)
{
	struct dk_fetch *f = calloc(1, sizeof(*f));
	int rc;

	if (!f)
		return -ENOMEM;
	f->changed = changed;
	f->ctx = ctx;
	/* Once, on the main thread, before any other thread uses libcurl. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		free(f);
		return -ENOMEM;
	}
	f->curl_ready = true;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	rc = uv_async_init(loop, &f->changed_async, on_changed);
	if (rc < 0) {
		curl_global_cleanup();
		pthread_cond_destroy(&f->cv);
		pthread_mutex_destroy(&f->mu);
		free(f);
		return rc;
	}
	f->changed_async.data = f;
	*out = f;
	rc = -pthread_create(&f->thread, NULL, run, f);
	if (rc < 0)
		return rc;
	f->started = true;
	return 0;
}

static struct uent *find(struct dk_fetch *f, const char *url)
{
	for (size_t i = 0; i < f->n_urls; i++) {
		if (!f->urls[i]->dead && strcmp(f->urls[i]->url, url) == 0)
			return f->urls[i];
	}
	return NULL;
}

void dk_fetch_update(struct dk_fetch *f, const struct dk_policy *pol)
{
	struct uent **keep = calloc(MAX_URLS, sizeof(*keep));
	size_t n_keep = 0;

	if (!keep)
		return;
	pthread_mutex_lock(&f->mu);
	for (size_t i = 0; pol && i < pol->n_urls && n_keep < MAX_URLS; i++) {
		const struct dk_url_list *ul = &pol->urls[i];
		if (!ul->state_file)
			continue;
		struct uent *u = find(f, ul->url);
		bool is_new = !u;
		/* The same URL twice (two rules) is downloaded once. */
		for (size_t j = 0; u && j < n_keep; j++) {
			if (keep[j] == u)
				u = NULL, is_new = false;
		}
		if (!u && !is_new)
			continue;
		if (is_new) {
			u = calloc(1, sizeof(*u));
			if (!u || !(u->url = strdup(ul->url)) ||
			    !(u->state_file = strdup(ul->state_file))) {
				uent_free(u);
				continue;
			}
			snprintf(u->st.url, sizeof(u->st.url), "%s", ul->url);
			u->due_ns = dk_mono_ns();
			struct dk_feed_status fs;
			if (dk_feed_status_read(ul->state_file, &fs) == 0)
				u->last_ok_time = fs.last_ok_time;
		}
		u->refresh_s = ul->refresh_s;
		u->max_shrink = ul->max_shrink;
		u->timeout_s = ul->timeout_s;
		u->max_bytes = ul->max_bytes;
		if (ul->list >= 0 && (size_t)ul->list < pol->n_lists) {
			u->last_entries = pol->lists[ul->list].entries;
			u->st.entries = u->last_entries;
		}
		keep[n_keep++] = u;
	}
	for (size_t i = 0; i < f->n_urls; i++) {
		bool kept = false;
		for (size_t j = 0; j < n_keep && !kept; j++)
			kept = keep[j] == f->urls[i];
		if (kept)
			continue;
		if (f->urls[i]->busy) {
			f->urls[i]->dead = true;
			if (n_keep < MAX_URLS)
				keep[n_keep++] = f->urls[i];
		} else {
			uent_free(f->urls[i]);
		}
	}
	free(f->urls);
	f->urls = keep;
	f->n_urls = n_keep;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

size_t dk_fetch_stats(struct dk_fetch *f, struct dk_fetch_url_stats *out, size_t cap)
{
	size_t n = 0;

	pthread_mutex_lock(&f->mu);
	for (size_t i = 0; i < f->n_urls; i++) {
		if (f->urls[i]->dead)
			continue;
		if (n < cap)
			out[n] = f->urls[i]->st;
		n++;
	}
	pthread_mutex_unlock(&f->mu);
	return n;
}

void dk_fetch_stop(struct dk_fetch *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	f->stop = true;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
	atomic_store(&f->stopping, true);
	if (f->started) {
		pthread_join(f->thread, NULL);
		f->started = false;
	}
}

static void free_closed(uv_handle_t *h)
{
	struct dk_fetch *f = h->data;

	for (size_t i = 0; i < f->n_urls; i++)
		uent_free(f->urls[i]);
	free(f->urls);
	if (f->curl_ready)
		curl_global_cleanup();
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

void dk_fetch_free(struct dk_fetch *f)
{
	if (!f)
		return;
	dk_fetch_stop(f);
	uv_close((uv_handle_t *)&f->changed_async, free_closed);
}

/* ---- one download, on the thread ----------------------------------------------- */

struct job {
	char url[4096], state_file[4096];
	unsigned max_shrink, timeout_s;
	size_t max_bytes, last_entries;
	char etag[256], last_modified[128];
	atomic_bool *stopping;
	/* Out: */
	char *body;
	size_t len, cap;
	bool too_large;
	long status;
	char new_etag[256], new_last_modified[128];
	size_t entries;
	char why[4400]; /* room for a path in the reason */
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct job *j = ctx;
	size_t n = size * nmemb;

	if (j->len + n > j->max_bytes) {
		j->too_large = true;
		return 0; /* aborts the transfer */
	}
	if (j->len + n + 1 > j->cap) {
		size_t cap = j->cap ? j->cap * 2 : 65536;
		while (cap < j->len + n + 1)
			cap *= 2;
		char *b = realloc(j->body, cap);
		if (!b)
			return 0;
		j->body = b;
		j->cap = cap;
	}
	memcpy(j->body + j->len, data, n);
	j->len += n;
	return n;
}

/* Keeps the validator of header line @p h ("ETag: ..." or "Last-Modified: ..."). */
static void keep_header(const char *h, size_t n, const char *name, char *out, size_t size)
{
	size_t nl = strlen(name);

	if (n <= nl + 1 || strncasecmp(h, name, nl) != 0 || h[nl] != ':')
		return;
	h += nl + 1;
	n -= nl + 1;
	while (n && (*h == ' ' || *h == '\t'))
		h++, n--;
	while (n && (h[n - 1] == '\r' || h[n - 1] == '\n' || h[n - 1] == ' '))
		n--;
	if (n < size) {
		memcpy(out, h, n);
		out[n] = '\0';
	}
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct job *j = ctx;
	size_t n = size * nmemb;

	/* A redirect's headers come first; the last response's win. */
	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		j->new_etag[0] = '\0';
		j->new_last_modified[0] = '\0';
	}
	keep_header(data, n, "ETag", j->new_etag, sizeof(j->new_etag));
	keep_header(data, n, "Last-Modified", j->new_last_modified, sizeof(j->new_last_modified));
	return n;
}

static int on_progress(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct job *j = ctx;

	(void)dt, (void)dn, (void)ut, (void)un;
	return atomic_load(j->stopping) ? 1 : 0;
}

static void read_meta(struct uent *u)
{
	char path[4200], line[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s.meta", u->state_file);
	if (!(fp = fopen(path, "r")))
		return;
	while (fgets(line, sizeof(line), fp)) {
		size_t n = strlen(line);
		keep_header(line, n, "ETag", u->etag, sizeof(u->etag));
		keep_header(line, n, "Last-Modified", u->last_modified, sizeof(u->last_modified));
	}
	fclose(fp);
}

static int write_file(const char *path, const char *data, size_t len)
{
	char tmp[4200];

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *fp = fopen(tmp, "w");
	if (!fp)
		return -errno;
	int rc = fwrite(data, 1, len, fp) == len && fflush(fp) == 0 && fsync(fileno(fp)) == 0
	                 ? 0
	                 : -errno;
	if (fclose(fp) != 0 && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path) < 0)
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

static int write_copy(struct job *j)
{
	char meta[1024], path[4200];
	char *slash = strrchr(j->state_file, '/');

	if (slash) {
		char dir[4096];
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - j->state_file), j->state_file);
		if (mkdir(dir, 0750) < 0 && errno != EEXIST)
			return -errno;
	}
	int rc = write_file(j->state_file, j->body ? j->body : "", j->len);
	if (rc)
		return rc;
	int n = snprintf(meta, sizeof(meta), "ETag: %s\nLast-Modified: %s\nEntries: %zu\n",
	                 j->new_etag, j->new_last_modified, j->entries);
	snprintf(path, sizeof(path), "%s.meta", j->state_file);
	return write_file(path, meta, (size_t)n);
}

static enum dk_fetch_result download(struct job *j)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	char h[512];
	enum dk_fetch_result res;

	if (!c) {
		snprintf(j->why, sizeof(j->why), "out of memory");
		return DK_FETCH_CONNECT;
	}
	if (j->etag[0]) {
		snprintf(h, sizeof(h), "If-None-Match: %s", j->etag);
		hdrs = curl_slist_append(hdrs, h);
	}
	if (j->last_modified[0]) {
		snprintf(h, sizeof(h), "If-Modified-Since: %s", j->last_modified);
		hdrs = curl_slist_append(hdrs, h);
	}
	curl_easy_setopt(c, CURLOPT_URL, j->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)j->timeout_s);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "dnsink/" DK_VERSION);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, j);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, j);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, j);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	/* Certificates are verified (libcurl's default), said here so that nobody turns it off. */
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	CURLcode cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &j->status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);

	if (j->too_large) {
		snprintf(j->why, sizeof(j->why), "the body is larger than %zu octets",
		         j->max_bytes);
		return DK_FETCH_TOO_LARGE;
	}
	switch (cc) {
	case CURLE_OK: break;
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(j->why, sizeof(j->why), "no complete answer within %u s", j->timeout_s);
		return DK_FETCH_TIMEOUT;
	case CURLE_PARTIAL_FILE:
		snprintf(j->why, sizeof(j->why),
		         "the body ended before its Content-Length (%zu "
		         "octets read)",
		         j->len);
		return DK_FETCH_CUT;
	default:
		snprintf(j->why, sizeof(j->why), "%s", curl_easy_strerror(cc));
		return DK_FETCH_CONNECT;
	}
	if (j->status == 304) {
		snprintf(j->new_etag, sizeof(j->new_etag), "%s", j->etag);
		return DK_FETCH_NOT_MODIFIED;
	}
	if (j->status != 200) {
		snprintf(j->why, sizeof(j->why), "HTTP status %ld", j->status);
		return DK_FETCH_HTTP;
	}
	struct dk_list_stats st;
	dk_list_scan(j->body ? j->body : "", j->len, &st);
	j->entries = st.entries;
	if (st.entries == 0) {
		snprintf(j->why, sizeof(j->why), "no entry in %zu lines (%zu invalid)", st.lines,
		         st.invalid);
		return DK_FETCH_EMPTY;
	}
	/* max_shrink percent fewer than the last good copy, or more: refused. */
	if (j->last_entries &&
	    (uint64_t)st.entries * 100 < (uint64_t)j->last_entries * (100 - j->max_shrink)) {
		snprintf(j->why, sizeof(j->why),
		         "%zu entries where the last good copy had %zu (max_shrink %u%%)",
		         st.entries, j->last_entries, j->max_shrink);
		return DK_FETCH_SHRINK;
	}
	int wr = write_copy(j);
	res = DK_FETCH_OK;
	if (wr < 0) {
		snprintf(j->why, sizeof(j->why), "cannot write %s: %s", j->state_file,
		         strerror(-wr));
		res = DK_FETCH_WRITE;
	}
	return res;
}

/* ---- the thread ------------------------------------------------------------------- */

static struct uent *next_due(struct dk_fetch *f, struct job *j, uint64_t *wait_ns)
{
	uint64_t now = dk_mono_ns(), best = UINT64_MAX;
	struct uent *u = NULL;

	*wait_ns = 60ull * 1000000000u;
	for (size_t i = 0; i < f->n_urls; i++) {
		struct uent *c = f->urls[i];
		if (!c->busy && !c->dead && c->due_ns < best) {
			best = c->due_ns;
			u = c;
		}
	}
	if (!u)
		return NULL;
	if (best > now) {
		*wait_ns = best - now < *wait_ns ? best - now : *wait_ns;
		return NULL;
	}
	if (!u->meta_read) {
		read_meta(u);
		u->meta_read = true;
	}
	memset(j, 0, sizeof(*j));
	snprintf(j->url, sizeof(j->url), "%s", u->url);
	snprintf(j->state_file, sizeof(j->state_file), "%s", u->state_file);
	j->max_shrink = u->max_shrink;
	j->timeout_s = u->timeout_s;
	j->max_bytes = u->max_bytes;
	j->last_entries = u->last_entries;
	snprintf(j->etag, sizeof(j->etag), "%s", u->etag);
	snprintf(j->last_modified, sizeof(j->last_modified), "%s", u->last_modified);
	j->stopping = &f->stopping;
	u->busy = true;
	return u;
}

static void check_in(struct dk_fetch *f, struct uent *u, struct job *j, enum dk_fetch_result res)
{
	uint64_t now = dk_mono_ns();

	pthread_mutex_lock(&f->mu);
	u->busy = false;
	u->st.last_time = (double)dk_wall_ms() / 1e3;
	u->st.last_result = res;
	u->st.last_status = j->status;
	u->st.results[res]++;
	if (res == DK_FETCH_OK) {
		u->last_entries = j->entries;
		u->st.entries = j->entries;
		snprintf(u->etag, sizeof(u->etag), "%s", j->new_etag);
		snprintf(u->last_modified, sizeof(u->last_modified), "%s", j->new_last_modified);
	}
	bool good = res == DK_FETCH_OK || res == DK_FETCH_NOT_MODIFIED;
	uint64_t next = good || u->refresh_s < RETRY_S ? u->refresh_s : RETRY_S;
	u->due_ns = now + next * 1000000000u;
	if (good)
		u->last_ok_time = u->st.last_time;
	struct dk_fetch_url_stats st = u->st;
	double last_ok = u->last_ok_time;
	if (u->dead) {
		for (size_t i = 0; i < f->n_urls; i++) {
			if (f->urls[i] == u) {
				f->urls[i] = f->urls[--f->n_urls];
				break;
			}
		}
		uent_free(u);
	}
	pthread_mutex_unlock(&f->mu);
	/* For `dnsink check`, which runs without the daemon. */
	dk_feed_status_write(j->state_file, st.last_time, dk_fetch_result_name(st.last_result),
	                     last_ok, result_names, st.results, DK_FETCH_RESULT_MAX);
}

static void *run(void *arg)
{
	struct dk_fetch *f = arg;
	struct job *j = malloc(sizeof(*j));

	if (!j)
		return NULL;
	pthread_mutex_lock(&f->mu);
	while (!f->stop) {
		uint64_t wait_ns;
		struct uent *u = next_due(f, j, &wait_ns);
		if (!u) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			uint64_t t = (uint64_t)ts.tv_nsec + wait_ns;
			ts.tv_sec += (time_t)(t / 1000000000u);
			ts.tv_nsec = (long)(t % 1000000000u);
			pthread_cond_timedwait(&f->cv, &f->mu, &ts);
			continue;
		}
		pthread_mutex_unlock(&f->mu);
		enum dk_fetch_result res = download(j);
		if (res == DK_FETCH_OK)
			dk_log(DK_LOG_INFO, "list %s: %zu entries (%zu octets), written to %s",
			       j->url, j->entries, j->len, j->state_file);
		else if (res != DK_FETCH_NOT_MODIFIED)
			dk_log(DK_LOG_WARN,
			       "list %s: download refused (%s): %s; keeping the last good "
			       "copy (%zu entries)",
			       j->url, dk_fetch_result_name(res), j->why, j->last_entries);
		check_in(f, u, j, res);
		free(j->body);
		if (res == DK_FETCH_OK)
			uv_async_send(&f->changed_async);
		pthread_mutex_lock(&f->mu);
	}
	pthread_mutex_unlock(&f->mu);
	free(j);
	return NULL;
}
