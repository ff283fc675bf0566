/* SPDX-License-Identifier: MIT */
/*
 * RPZ zone transfers on a thread of their own (see xfr.h).
 *
 * The thread and the main loop share the zone table under one mutex, held
 * only to copy fields in or out, never across network I/O: the thread takes
 * a zone's settings and its in-memory copy (checked out), transfers without
 * the lock, then puts the result back by origin (the zone may have gone in a
 * reload meanwhile). Workers hand NOTIFYs over through a non-blocking pipe.
 *
 * Nothing of a zone is held in memory: an AXFR is written to the new copy
 * record by record as it is read (renamed into place only when the stream
 * was complete and good); an IXFR is applied to the copy on disk, streaming
 * it into the new copy (deletions dropped by a sorted key set, additions
 * appended), so a transfer costs memory only for an IXFR's differences.
 */
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
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ldns/ldns.h>

#include "feedstat.h"
#include "log.h"
#include "xfr.h"

/* Bounds on one transfer, so a slow or endless primary cannot hold the thread. */
#define CONNECT_MS  5000
#define IDLE_MS     10000 /* between two messages */
#define TOTAL_MS    120000
#define MAX_RECORDS 20000000
#define MAX_ZONES   1024
/* Without an SOA to say otherwise (RFC 1912's usual values). */
#define DEFAULT_REFRESH 3600
#define DEFAULT_RETRY   600
#define DEFAULT_EXPIRE  604800
/* A primary that says "retry every second" must not make us hammer it. */
#define MIN_RETRY 1

static const char *const result_names[DK_XFR_RESULT_MAX] = {
        [DK_XFR_OK] = "ok",
        [DK_XFR_UP_TO_DATE] = "up_to_date",
        [DK_XFR_CONNECT] = "connect",
        [DK_XFR_CUT] = "cut",
        [DK_XFR_TSIG] = "tsig",
        [DK_XFR_RCODE] = "rcode",
        [DK_XFR_MALFORMED] = "malformed",
        [DK_XFR_SERIAL] = "serial_backwards",
        [DK_XFR_EMPTY] = "empty",
        [DK_XFR_WRITE] = "write",
};

const char *dk_xfr_result_name(enum dk_xfr_result r)
{
	return (unsigned)r < DK_XFR_RESULT_MAX ? result_names[r] : "unknown";
}

struct xzone {
	char *origin; /* text with the final dot */
	struct dk_addr primary;
	char *tsig_name, *tsig_alg, *tsig_secret; /* NULL: no TSIG */
	char *state_file;
	bool have_serial;
	uint32_t serial;
	uint32_t refresh, retry, expire;
	uint64_t due_ns;
	uint64_t last_ok_ns; /* 0: never since start */
	bool busy;           /* checked out by the thread */
	bool dead;           /* dropped by a reload while busy: freed on check-in */
	struct dk_xfr_zone_stats st;
};

struct dk_xfr {
	uv_async_t changed_async;
	dk_xfr_changed_fn changed;
	void *ctx;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	struct xzone **zones;
	size_t n_zones;
	bool stop;
	atomic_bool stopping; /* read without the lock by a transfer in progress */
	int pipe_rd, pipe_wr;
	atomic_uint_fast64_t notify_dropped;
	char line[DK_NAME_MAX * 4 + 4]; /* a NOTIFY line being read from the pipe (thread) */
	size_t line_len;
};

static void xzone_free(struct xzone *z)
{
	if (!z)
		return;
	free(z->origin);
	free(z->tsig_name);
	free(z->tsig_alg);
	free(z->tsig_secret);
	free(z->state_file);
	free(z);
}

static char *dup_or_null(const char *s, bool *oom)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*oom = true;
	return d;
}

/* ---- the main thread's side ------------------------------------------------------ */

static void on_changed(uv_async_t *a)
{
	struct dk_xfr *x = a->data;

	x->changed(x->ctx);
}

static void *run(void *arg);

int dk_xfr_new(uv_loop_t *loop, dk_xfr_changed_fn changed, void *ctx, struct dk_xfr **out)
{
	struct dk_xfr *x = calloc(1, sizeof(*x));
	int fds[2];
	int rc;

	if (!x)
		return -ENOMEM;
	x->changed = changed;
	x->ctx = ctx;
	x->pipe_rd = x->pipe_wr = -1;
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
		rc = -errno;
		free(x);
		return rc;
	}
	x->pipe_rd = fds[0];
	x->pipe_wr = fds[1];
	pthread_mutex_init(&x->mu, NULL);
	rc = uv_async_init(loop, &x->changed_async, on_changed);
	if (rc < 0) {
		close(fds[0]);
		close(fds[1]);
		pthread_mutex_destroy(&x->mu);
		free(x);
		return rc;
	}
	x->changed_async.data = x;
	rc = -pthread_create(&x->thread, NULL, run, x);
	if (rc < 0) {
		/* The handle is closed by dk_xfr_free(), as after a normal stop. */
		*out = x;
		return rc;
	}
	x->started = true;
	*out = x;
	return 0;
}

static void wake(struct dk_xfr *x)
{
	/* A full pipe already holds a wake-up. */
	ssize_t r = write(x->pipe_wr, "\n", 1);
	(void)r;
}

static struct xzone *find(struct dk_xfr *x, const char *origin)
{
	for (size_t i = 0; i < x->n_zones; i++) {
		if (!x->zones[i]->dead && strcasecmp(x->zones[i]->origin, origin) == 0)
			return x->zones[i];
	}
	return NULL;
}

/* Takes the settings of @p z (a zone of the policy) into @p xz. */
static bool take_settings(struct xzone *xz, const struct dk_zone *z)
{
	bool oom = false;
	char *tn = dup_or_null(z->tsig.name, &oom), *ta = dup_or_null(z->tsig.algorithm, &oom),
	     *ts = dup_or_null(z->tsig.secret, &oom), *sf = dup_or_null(z->state_file, &oom);

	if (oom) {
		free(tn);
		free(ta);
		free(ts);
		free(sf);
		return false;
	}
	free(xz->tsig_name);
	free(xz->tsig_alg);
	free(xz->tsig_secret);
	free(xz->state_file);
	xz->tsig_name = tn;
	xz->tsig_alg = ta;
	xz->tsig_secret = ts;
	xz->state_file = sf;
	dk_addr_parse(z->primary, 53, &xz->primary);
	return true;
}

void dk_xfr_update(struct dk_xfr *x, const struct dk_policy *pol)
{
	struct xzone **keep = calloc(MAX_ZONES, sizeof(*keep));
	size_t n_keep = 0;
	uint64_t now = dk_mono_ns();

	if (!keep) {
		dk_log(DK_LOG_ERR, "rpz: out of memory updating the zones to transfer");
		return;
	}
	pthread_mutex_lock(&x->mu);
	for (size_t i = 0; pol && i < pol->n_zones && n_keep < MAX_ZONES; i++) {
		const struct dk_zone *z = &pol->zones[i];
		if (!z->primary || !z->state_file)
			continue;
		struct xzone *xz = find(x, z->origin);
		bool is_new = !xz;
		if (is_new) {
			xz = calloc(1, sizeof(*xz));
			if (!xz || !(xz->origin = strdup(z->origin))) {
				free(xz);
				continue;
			}
			snprintf(xz->st.origin, sizeof(xz->st.origin), "%s", z->origin);
			xz->due_ns = now;
			/* A good transfer before a restart still counts for what check shows. */
			struct dk_feed_status fs;
			if (z->state_file && dk_feed_status_read(z->state_file, &fs) == 0)
				xz->st.last_ok_time = fs.last_ok_time;
		}
		struct dk_addr before = xz->primary;
		if (!take_settings(xz, z)) {
			if (is_new)
				xzone_free(xz);
			continue;
		}
		/* A primary moved: what the old one said no longer counts. */
		if (!is_new && !dk_sockaddr_equal(&before.sa, &xz->primary.sa))
			xz->due_ns = now;
		/* What was loaded tells the serial and timers until a transfer says more. */
		if (z->st.has_soa && (!xz->have_serial || z->from_state)) {
			xz->have_serial = z->from_state;
			xz->serial = z->st.serial;
			xz->st.have_serial = z->from_state;
			xz->st.serial = z->st.serial;
			xz->refresh = z->st.refresh;
			xz->retry = z->st.retry;
			xz->expire = z->st.expire;
		}
		keep[n_keep++] = xz;
	}
	/* Zones no rule names any more go; one in transfer goes when it comes back. */
	for (size_t i = 0; i < x->n_zones; i++) {
		bool kept = false;
		for (size_t j = 0; j < n_keep && !kept; j++)
			kept = keep[j] == x->zones[i];
		if (kept)
			continue;
		if (x->zones[i]->busy) {
			x->zones[i]->dead = true;
			if (n_keep < MAX_ZONES)
				keep[n_keep++] = x->zones[i];
		} else {
			xzone_free(x->zones[i]);
		}
	}
	free(x->zones);
	x->zones = keep;
	x->n_zones = n_keep;
	pthread_mutex_unlock(&x->mu);
	wake(x);
}

int dk_xfr_notify(struct dk_xfr *x, const char *origin)
{
	char msg[DK_NAME_MAX * 4 + 4];
	int n = snprintf(msg, sizeof(msg), "%s\n", origin);

	/* One write below PIPE_BUF is atomic: lines from several workers never mix. */
	if (n <= 0 || (size_t)n >= sizeof(msg) || write(x->pipe_wr, msg, (size_t)n) != n) {
		atomic_fetch_add(&x->notify_dropped, 1);
		return -EAGAIN;
	}
	return 0;
}

size_t dk_xfr_stats(struct dk_xfr *x, struct dk_xfr_zone_stats *out, size_t cap)
{
	size_t n = 0;

	pthread_mutex_lock(&x->mu);
	for (size_t i = 0; i < x->n_zones; i++) {
		if (x->zones[i]->dead)
			continue;
		if (n < cap)
			out[n] = x->zones[i]->st;
		n++;
	}
	pthread_mutex_unlock(&x->mu);
	return n;
}

void dk_xfr_stop(struct dk_xfr *x)
{
	if (!x)
		return;
	pthread_mutex_lock(&x->mu);
	x->stop = true;
	pthread_mutex_unlock(&x->mu);
	atomic_store(&x->stopping, true);
	wake(x);
	if (x->started) {
		pthread_join(x->thread, NULL);
		x->started = false;
	}
}

static void free_closed(uv_handle_t *h)
{
	struct dk_xfr *x = h->data;

	for (size_t i = 0; i < x->n_zones; i++)
		xzone_free(x->zones[i]);
	free(x->zones);
	close(x->pipe_rd);
	close(x->pipe_wr);
	pthread_mutex_destroy(&x->mu);
	free(x);
}

void dk_xfr_free(struct dk_xfr *x)
{
	if (!x)
		return;
	dk_xfr_stop(x);
	uv_close((uv_handle_t *)&x->changed_async, free_closed);
}

/* ---- one transfer, on the thread ------------------------------------------------- */

/* What a transfer works with: copies, so that no lock is held meanwhile. */
struct job {
	char origin[DK_NAME_MAX * 4 + 2];
	struct dk_addr primary;
	char tsig_name[DK_NAME_MAX * 4 + 2], tsig_alg[64];
	char *tsig_secret; /* NULL: no TSIG */
	char state_file[4096];
	bool have_serial;
	uint32_t serial;
	/* Out: */
	uint32_t new_serial, refresh, retry, expire;
	size_t triggers;
	bool incremental;                 /* the copy came by IXFR differences */
	char why[DK_NAME_MAX * 4 + 4400]; /* room for a key name or a path in the reason */
	atomic_bool *stopping;            /* the daemon stops: give up at once */
};

/* RFC 1982 serial arithmetic: is @p a older than @p b? */
static bool serial_lt(uint32_t a, uint32_t b)
{
	return a != b && (uint32_t)(b - a) < 0x80000000u;
}

static int poll_fd(int fd, short ev, int ms)
{
	struct pollfd p = {.fd = fd, .events = ev};
	int r;

	do {
		r = poll(&p, 1, ms);
	} while (r < 0 && errno == EINTR);
	return r;
}

static int connect_to(const struct dk_addr *a)
{
	int fd = socket(a->sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int err = 0;
	socklen_t el = sizeof(err);

	if (fd < 0)
		return -1;
	if (connect(fd, &a->sa, a->len) < 0 && errno != EINPROGRESS)
		goto fail;
	if (poll_fd(fd, POLLOUT, CONNECT_MS) <= 0)
		goto fail;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err)
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

/*
 * Reads exactly @p n octets by @p deadline, with at most IDLE_MS of silence;
 * 0, or -1 at end, error, timeout or when the daemon stops.
 */
static int read_full(int fd, uint8_t *buf, size_t n, uint64_t deadline, atomic_bool *stopping)
{
	size_t got = 0;
	uint64_t idle_end = dk_mono_ns() + (uint64_t)IDLE_MS * 1000000u;

	while (got < n) {
		uint64_t now = dk_mono_ns();
		if (now >= deadline || now >= idle_end || atomic_load(stopping))
			return -1;
		/* Short slices, so that a stop is seen within a fifth of a second. */
		int ready = poll_fd(fd, POLLIN, 200);
		if (ready < 0)
			return -1;
		if (ready == 0)
			continue;
		idle_end = dk_mono_ns() + (uint64_t)IDLE_MS * 1000000u;
		ssize_t r = recv(fd, buf + got, n - got, 0);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static int send_full(int fd, const uint8_t *buf, size_t n)
{
	size_t sent = 0;

	while (sent < n) {
		if (poll_fd(fd, POLLOUT, IDLE_MS) <= 0)
			return -1;
		ssize_t r = send(fd, buf + sent, n - sent, MSG_NOSIGNAL);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			return -1;
		sent += (size_t)r;
	}
	return 0;
}

/* ldns names HMAC-MD5 by its old long name; the others by the short one with a dot. */
static void ldns_alg(const char *in, char *out, size_t size)
{
	if (strncasecmp(in, "hmac-md5", 8) == 0)
		snprintf(out, size, "hmac-md5.sig-alg.reg.int.");
	else
		snprintf(out, size, "%s%s", in, in[strlen(in) - 1] == '.' ? "" : ".");
}

static uint32_t soa_field(const ldns_rr *soa, size_t i)
{
	ldns_rdf *f = ldns_rr_rdf(soa, i);
	return f ? ldns_rdf2native_int32(f) : 0;
}

static bool is_soa(const ldns_rr *rr)
{
	return ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA;
}

/* Makes the folder of @p path (state_dir) when it is missing. */
static int make_dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];

	if (!slash)
		return 0;
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	return mkdir(dir, 0750) < 0 && errno != EEXIST ? -errno : 0;
}

/* Sends the query: AXFR, or IXFR with our serial in the authority section. */
static int send_query(struct job *j, int fd, bool ixfr, uint16_t id, ldns_rdf **query_mac)
{
	ldns_rdf *name = ldns_dname_new_frm_str(j->origin);
	ldns_pkt *q = name ? ldns_pkt_query_new(name, ixfr ? LDNS_RR_TYPE_IXFR : LDNS_RR_TYPE_AXFR,
	                                        LDNS_RR_CLASS_IN, 0)
	                   : NULL;
	uint8_t *wire = NULL;
	size_t len = 0;
	int rc = -1;

	if (!q) {
		snprintf(j->why, sizeof(j->why), "out of memory");
		return -1;
	}
	ldns_pkt_set_id(q, id);
	if (ixfr) {
		char soa[DK_NAME_MAX * 4 + 64];
		ldns_rr *rr = NULL;
		snprintf(soa, sizeof(soa), "%s 0 IN SOA . . %" PRIu32 " 0 0 0 0", j->origin,
		         j->serial);
		if (ldns_rr_new_frm_str(&rr, soa, 0, NULL, NULL) != LDNS_STATUS_OK)
			goto out;
		ldns_pkt_push_rr(q, LDNS_SECTION_AUTHORITY, rr);
	}
	if (j->tsig_secret) {
		char alg[80];
		ldns_alg(j->tsig_alg, alg, sizeof(alg));
		if (ldns_pkt_tsig_sign(q, j->tsig_name, j->tsig_secret, 300, alg, NULL) !=
		    LDNS_STATUS_OK) {
			snprintf(j->why, sizeof(j->why), "cannot sign with TSIG key %s (%s)",
			         j->tsig_name, j->tsig_alg);
			goto out;
		}
		*query_mac = ldns_rdf_clone(ldns_rr_rdf(ldns_pkt_tsig(q), 3));
	}
	if (ldns_pkt2wire(&wire, q, &len) != LDNS_STATUS_OK || len > 65535)
		goto out;
	uint8_t hdr[2] = {(uint8_t)(len >> 8), (uint8_t)len};
	if (send_full(fd, hdr, 2) == 0 && send_full(fd, wire, len) == 0)
		rc = 0;
	else
		snprintf(j->why, sizeof(j->why), "sending the query failed");
out:
	free(wire);
	ldns_pkt_free(q);
	return rc;
}

/* What a transfer stream holds, as it is read. */
struct stream {
	ldns_rr_list *all; /* IXFR: every answer record, in order; AXFR: the first one */
	size_t count;      /* records read */
	bool done;         /* the closing SOA came */
	bool incremental;  /* an IXFR of differences (the second record an SOA) */
	uint32_t first_serial;
	/* AXFR: the new copy, written as the records come, renamed only once all is well. */
	const char *state_file;
	FILE *out;
	char tmp[4200];
	bool write_failed;
	size_t triggers; /* records written whose owner is below the apex */
};

/* Opens the new copy of an AXFR and writes its head (the SOA, record 0). */
static void stream_open(struct stream *s, const char *origin)
{
	char *soa = ldns_rr2str(ldns_rr_list_rr(s->all, 0));

	snprintf(s->tmp, sizeof(s->tmp), "%s.tmp", s->state_file);
	if (!soa || make_dir_of(s->state_file) < 0 || !(s->out = fopen(s->tmp, "w"))) {
		s->write_failed = true;
		s->tmp[0] = '\0';
		free(soa);
		return;
	}
	fprintf(s->out, "; %s transferred by dnsink, serial %" PRIu32 "\n$ORIGIN %s\n%s", origin,
	        s->first_serial, origin, soa);
	free(soa);
}

/* Writes one AXFR record to the new copy. */
static void stream_write(struct stream *s, const ldns_rr *rr)
{
	if (!s->out)
		return;
	char *t = ldns_rr2str(rr);
	if (!t || fputs(t, s->out) < 0)
		s->write_failed = true;
	free(t);
	s->triggers += ldns_dname_compare(ldns_rr_owner(rr),
	                                  ldns_rr_owner(ldns_rr_list_rr(s->all, 0))) != 0;
}

/*
 * Takes the records of one message: an IXFR's are kept (its differences are
 * small), an AXFR's written to the new copy at once, so a large zone is never
 * held in memory. Tells when the closing SOA has come.
 */
static void stream_take(struct stream *s, ldns_pkt *p, uint32_t ours, bool ixfr, const char *origin)
{
	ldns_rr_list *an = ldns_pkt_answer(p);

	for (size_t i = 0; i < ldns_rr_list_rr_count(an) && !s->done; i++) {
		ldns_rr *src = ldns_rr_list_rr(an, i);
		size_t n = s->count++;
		if (n == 0) {
			ldns_rr_list_push_rr(s->all, ldns_rr_clone(src));
			if (is_soa(src))
				s->first_serial = soa_field(src, 2);
			continue;
		}
		if (n == 1) {
			s->incremental = ixfr && is_soa(src) && soa_field(src, 2) == ours &&
			                 s->first_serial != ours;
			if (!s->incremental)
				stream_open(s, origin);
		}
		bool closing = is_soa(src) && soa_field(src, 2) == s->first_serial;
		if (!s->incremental) {
			/* An SOA with the new serial closes an AXFR. */
			if (closing)
				s->done = true;
			else
				stream_write(s, src);
			continue;
		}
		ldns_rr_list_push_rr(s->all, ldns_rr_clone(src));
		if (!closing)
			continue;
		/*
		 * In an IXFR the SOA with the new serial closes the stream where a
		 * deletion section would start, which counting the SOAs tells: 1
		 * (head) + 2 per difference, then the last one.
		 */
		size_t soas = 0;
		for (size_t k = 0; k <= n; k++)
			soas += is_soa(ldns_rr_list_rr(s->all, k));
		if (soas % 2 == 0)
			s->done = true;
	}
}

/* Ends the new copy of an AXFR: written whole and renamed into place, or why not. */
static enum dk_xfr_result stream_finish(struct job *j, struct stream *s)
{
	j->triggers = s->triggers;
	if (s->triggers == 0) {
		snprintf(j->why, sizeof(j->why), "serial %" PRIu32 " holds no trigger at all",
		         j->new_serial);
		return DK_XFR_EMPTY;
	}
	int rc = s->write_failed || !s->out ? -EIO : 0;
	if (!rc && (fflush(s->out) != 0 || fsync(fileno(s->out)) != 0))
		rc = -errno;
	if (s->out && fclose(s->out) != 0 && !rc)
		rc = -errno;
	s->out = NULL;
	if (!rc && rename(s->tmp, j->state_file) < 0)
		rc = -errno;
	if (rc) {
		snprintf(j->why, sizeof(j->why), "cannot write %s: %s", j->state_file,
		         strerror(-rc));
		return DK_XFR_WRITE;
	}
	s->tmp[0] = '\0';
	return DK_XFR_OK;
}

/*
 * The key of a record line as ldns_rr2str() writes it ("owner TTL class type
 * rdata", tab-separated): the owner lowercased and everything after the TTL,
 * so that a deletion matches the line whatever TTL either carries.
 */
static char *line_key(const char *line)
{
	const char *t1 = strchr(line, '\t');
	const char *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
	if (!t2)
		return NULL;
	size_t on = (size_t)(t1 - line), rn = strcspn(t2, "\n");
	char *k = malloc(on + rn + 1);
	if (!k)
		return NULL;
	for (size_t i = 0; i < on; i++)
		k[i] = (char)((line[i] >= 'A' && line[i] <= 'Z') ? line[i] + 32 : line[i]);
	memcpy(k + on, t2, rn);
	k[on + rn] = '\0';
	return k;
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether a line's owner is the apex (its SOA and NS carry no trigger). */
static bool owner_is_apex(const char *line, const char *origin)
{
	size_t n = strcspn(line, "\t"), on = strlen(origin);
	return n == on && strncasecmp(line, origin, n) == 0;
}

/* An owned array of strings. */
struct strv {
	char **v;
	size_t n, cap;
};

static bool strv_push(struct strv *a, char *s)
{
	if (!s)
		return false;
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		char **v = realloc(a->v, cap * sizeof(*v));
		if (!v) {
			free(s);
			return false;
		}
		a->v = v;
		a->cap = cap;
	}
	a->v[a->n++] = s;
	return true;
}

static void strv_free(struct strv *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
}

/*
 * Applies the differences of an IXFR to the copy on disk, streaming it into
 * the new copy: nothing of the zone is held in memory but the differences.
 * Their net effect comes first (a record added by one difference and deleted
 * by a later one never reaches the file), then the old copy is read line by
 * line, deletions dropped, its SOA replaced, additions appended.
 */
static enum dk_xfr_result apply_ixfr(struct job *j, struct stream *s)
{
	size_t n = ldns_rr_list_rr_count(s->all);
	struct strv dels = {0}, adds = {0};
	bool in_add = true, *used = NULL;
	enum dk_xfr_result res = DK_XFR_WRITE;
	char tmp[4200] = "", *line = NULL;
	size_t cap = 0;
	FILE *in = NULL, *out = NULL;

	for (size_t i = 1; i + 1 < n; i++) {
		ldns_rr *rr = ldns_rr_list_rr(s->all, i);
		if (is_soa(rr)) {
			in_add = !in_add;
			continue;
		}
		char *text = ldns_rr2str(rr), *key = text ? line_key(text) : NULL;
		if (!key) {
			free(text);
			goto oom;
		}
		if (in_add) {
			free(key);
			if (!strv_push(&adds, text))
				goto oom;
			continue;
		}
		free(text);
		bool cancelled = false;
		for (size_t k = 0; k < adds.n && !cancelled; k++) {
			char *ak = line_key(adds.v[k]);
			if (ak && strcmp(ak, key) == 0) {
				free(adds.v[k]);
				adds.v[k] = adds.v[--adds.n];
				cancelled = true;
			}
			free(ak);
		}
		if (cancelled)
			free(key);
		else if (!strv_push(&dels, key))
			goto oom;
	}
	if (dels.n)
		qsort(dels.v, dels.n, sizeof(*dels.v), cmp_key);
	if (dels.n && !(used = calloc(dels.n, sizeof(*used))))
		goto oom;
	if (!(in = fopen(j->state_file, "r"))) {
		snprintf(j->why, sizeof(j->why), "an IXFR came but the copy cannot be read: %s",
		         strerror(errno));
		res = DK_XFR_MALFORMED;
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", j->state_file);
	if (!(out = fopen(tmp, "w")))
		goto io;
	char *soa = ldns_rr2str(ldns_rr_list_rr(s->all, 0));
	if (!soa)
		goto oom;
	fprintf(out, "; %s transferred by dnsink, serial %" PRIu32 "\n$ORIGIN %s\n%s", j->origin,
	        j->new_serial, j->origin, soa);
	free(soa);
	ssize_t got;
	while ((got = getline(&line, &cap, in)) > 0) {
		if (line[0] == ';' || line[0] == '$' || line[0] == '\n')
			continue;
		char *key = line_key(line);
		if (!key)
			continue;
		/* "\tIN\tSOA\t" right after the owner and TTL: the old SOA, replaced above. */
		const char *t2 = strchr(strchr(line, '\t') + 1, '\t');
		bool is_old_soa = strncmp(t2, "\tIN\tSOA\t", 8) == 0;
		char **hit =
		        dels.n ? bsearch(&key, dels.v, dels.n, sizeof(*dels.v), cmp_key) : NULL;
		if (hit) {
			/* Equal keys sit together: take the first one not used yet. */
			size_t h = (size_t)(hit - dels.v);
			while (h > 0 && strcmp(dels.v[h - 1], key) == 0)
				h--;
			while (h < dels.n && strcmp(dels.v[h], key) == 0 && used[h])
				h++;
			hit = h < dels.n && strcmp(dels.v[h], key) == 0 ? &dels.v[h] : NULL;
			if (hit)
				used[h] = true;
		}
		free(key);
		if (hit || is_old_soa)
			continue;
		fputs(line, out);
		j->triggers += !owner_is_apex(line, j->origin);
	}
	for (size_t i = 0; i < adds.n; i++) {
		fputs(adds.v[i], out);
		j->triggers += !owner_is_apex(adds.v[i], j->origin);
	}
	if (j->triggers == 0) {
		snprintf(j->why, sizeof(j->why), "serial %" PRIu32 " holds no trigger at all",
		         j->new_serial);
		res = DK_XFR_EMPTY;
		goto out;
	}
	if (fflush(out) != 0 || fsync(fileno(out)) != 0)
		goto io;
	if (fclose(out) != 0) {
		out = NULL;
		goto io;
	}
	out = NULL;
	if (rename(tmp, j->state_file) < 0)
		goto io;
	res = DK_XFR_OK;
	goto out;
io:
	snprintf(j->why, sizeof(j->why), "cannot write %s: %s", j->state_file, strerror(errno));
	goto out;
oom:
	snprintf(j->why, sizeof(j->why), "out of memory applying the IXFR");
out:
	if (out)
		fclose(out);
	if (res != DK_XFR_OK && tmp[0])
		unlink(tmp);
	if (in)
		fclose(in);
	free(line);
	free(used);
	strv_free(&dels);
	strv_free(&adds);
	return res;
}

/* Reads and checks the answers until the closing SOA. */
static enum dk_xfr_result read_stream(struct job *j, int fd, uint16_t id, bool ixfr, ldns_rdf *mac,
                                      struct stream *s)
{
	uint64_t deadline = dk_mono_ns() + (uint64_t)TOTAL_MS * 1000000u;
	uint8_t *buf = malloc(65535);
	enum dk_xfr_result res = DK_XFR_CUT;
	bool first = true;

	if (!buf)
		return DK_XFR_WRITE;
	while (!s->done) {
		uint8_t hdr[2];
		ldns_pkt *p = NULL;
		if (read_full(fd, hdr, 2, deadline, j->stopping) < 0) {
			snprintf(j->why, sizeof(j->why), "the stream ended before the closing SOA");
			goto out;
		}
		size_t len = (size_t)hdr[0] << 8 | hdr[1];
		if (len < 12 || read_full(fd, buf, len, deadline, j->stopping) < 0) {
			snprintf(j->why, sizeof(j->why), "the stream ended inside a message");
			goto out;
		}
		if (ldns_wire2pkt(&p, buf, len) != LDNS_STATUS_OK || ldns_pkt_id(p) != id ||
		    !ldns_pkt_qr(p)) {
			ldns_pkt_free(p);
			snprintf(j->why, sizeof(j->why), "an answer that does not parse or match");
			res = DK_XFR_MALFORMED;
			goto out;
		}
		ldns_pkt_rcode rc = ldns_pkt_get_rcode(p);
		if (rc != LDNS_RCODE_NOERROR) {
			/* NOTAUTH is what a primary says to a key it does not know (RFC 8945). */
			res = rc == LDNS_RCODE_NOTAUTH ? DK_XFR_TSIG : DK_XFR_RCODE;
			char *r = ldns_pkt_rcode2str(rc);
			snprintf(j->why, sizeof(j->why), "the primary answered %s", r ? r : "?");
			free(r);
			ldns_pkt_free(p);
			goto out;
		}
		if (mac) {
			ldns_rr *t = ldns_pkt_tsig(p);
			if (!t || !ldns_pkt_tsig_verify_next(p, buf, len, j->tsig_name,
			                                     j->tsig_secret, mac, first ? 0 : 1)) {
				snprintf(j->why, sizeof(j->why), "%s",
				         t ? "TSIG does not verify" : "a message without TSIG");
				ldns_pkt_free(p);
				res = DK_XFR_TSIG;
				goto out;
			}
			/* Each answer's MAC is the one the next is checked against. */
			ldns_rdf_deep_free(mac);
			mac = ldns_rdf_clone(ldns_rr_rdf(t, 3));
		}
		first = false;
		stream_take(s, p, j->serial, ixfr, j->origin);
		ldns_pkt_free(p);
		if (s->count == 0 || !is_soa(ldns_rr_list_rr(s->all, 0))) {
			snprintf(j->why, sizeof(j->why), "the transfer does not start with an SOA");
			res = DK_XFR_MALFORMED;
			goto out;
		}
		/*
		 * An IXFR answered with one SOA alone (RFC 1995 section 2): the
		 * primary has nothing newer than what we asked from; its serial
		 * says whether it is ours or older.
		 */
		if (ixfr && s->count == 1) {
			s->done = true;
			break;
		}
		if (s->count > MAX_RECORDS) {
			snprintf(j->why, sizeof(j->why), "more than %d records", MAX_RECORDS);
			res = DK_XFR_MALFORMED;
			goto out;
		}
	}
	res = DK_XFR_OK;
out:
	ldns_rdf_deep_free(mac);
	free(buf);
	return res;
}

static enum dk_xfr_result transfer(struct job *j)
{
	/* An IXFR is applied to the copy on disk: without one, ask for the whole zone. */
	bool ixfr = j->have_serial && access(j->state_file, R_OK) == 0;
	struct stream s = {.all = ldns_rr_list_new(), .state_file = j->state_file};
	ldns_rdf *mac = NULL;
	uint16_t id;
	enum dk_xfr_result res;

	if (getrandom(&id, sizeof(id), 0) != sizeof(id))
		id = (uint16_t)dk_mono_ns();
	int fd = connect_to(&j->primary);
	if (fd < 0) {
		snprintf(j->why, sizeof(j->why), "cannot connect: %s", strerror(errno));
		ldns_rr_list_deep_free(s.all);
		return DK_XFR_CONNECT;
	}
	if (send_query(j, fd, ixfr, id, &mac) < 0) {
		close(fd);
		ldns_rdf_deep_free(mac);
		ldns_rr_list_deep_free(s.all);
		return DK_XFR_CONNECT;
	}
	res = read_stream(j, fd, id, ixfr, mac, &s);
	close(fd);
	if (res != DK_XFR_OK)
		goto out;
	ldns_rr *soa = ldns_rr_list_rr(s.all, 0);
	j->new_serial = soa_field(soa, 2);
	j->refresh = soa_field(soa, 3);
	j->retry = soa_field(soa, 4);
	j->expire = soa_field(soa, 5);
	if (j->have_serial && j->new_serial == j->serial) {
		res = DK_XFR_UP_TO_DATE;
		goto out;
	}
	if (s.count < 2 && !serial_lt(j->new_serial, j->serial)) {
		snprintf(j->why, sizeof(j->why), "a newer serial %" PRIu32 " without its records",
		         j->new_serial);
		res = DK_XFR_MALFORMED;
		goto out;
	}
	if (j->have_serial && serial_lt(j->new_serial, j->serial)) {
		snprintf(j->why, sizeof(j->why), "serial %" PRIu32 " is older than %" PRIu32,
		         j->new_serial, j->serial);
		res = DK_XFR_SERIAL;
		goto out;
	}
	j->incremental = s.incremental;
	if (s.incremental) {
		res = apply_ixfr(j, &s);
		goto out;
	}
	res = stream_finish(j, &s);
out:
	ldns_rr_list_deep_free(s.all);
	if (s.out)
		fclose(s.out);
	/* A refused AXFR leaves nothing behind: the copy in force stays as it was. */
	if (s.tmp[0])
		unlink(s.tmp);
	return res;
}

/* ---- the thread ------------------------------------------------------------------- */

/* Marks zone @p origin due now (a NOTIFY). */
static void notified(struct dk_xfr *x, const char *origin)
{
	pthread_mutex_lock(&x->mu);
	struct xzone *z = find(x, origin);
	if (z) {
		z->due_ns = dk_mono_ns();
		z->st.notifies++;
	}
	pthread_mutex_unlock(&x->mu);
	if (z)
		dk_log(DK_LOG_INFO, "rpz %s: NOTIFY from the primary, transferring", origin);
}

static void drain_pipe(struct dk_xfr *x)
{
	char buf[4096];
	ssize_t r;

	while ((r = read(x->pipe_rd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < r; i++) {
			if (buf[i] != '\n') {
				if (x->line_len + 1 < sizeof(x->line))
					x->line[x->line_len++] = buf[i];
				continue;
			}
			x->line[x->line_len] = '\0';
			if (x->line_len)
				notified(x, x->line);
			x->line_len = 0;
		}
	}
}

/* Checks out the zone most overdue, or returns the ms until one is due. */
static struct xzone *next_due(struct dk_xfr *x, struct job *j, int *wait_ms)
{
	uint64_t now = dk_mono_ns(), best = UINT64_MAX;
	struct xzone *z = NULL;

	*wait_ms = 60000;
	for (size_t i = 0; i < x->n_zones; i++) {
		struct xzone *c = x->zones[i];
		if (c->busy || c->dead)
			continue;
		if (c->due_ns < best) {
			best = c->due_ns;
			z = c;
		}
	}
	if (!z)
		return NULL;
	if (best > now) {
		uint64_t ms = (best - now) / 1000000u + 1;
		*wait_ms = ms < 60000 ? (int)ms : 60000;
		return NULL;
	}
	memset(j, 0, sizeof(*j));
	j->stopping = &x->stopping;
	snprintf(j->origin, sizeof(j->origin), "%s", z->origin);
	j->primary = z->primary;
	if (z->tsig_secret) {
		snprintf(j->tsig_name, sizeof(j->tsig_name), "%s", z->tsig_name);
		snprintf(j->tsig_alg, sizeof(j->tsig_alg), "%s", z->tsig_alg);
		j->tsig_secret = strdup(z->tsig_secret);
	}
	snprintf(j->state_file, sizeof(j->state_file), "%s", z->state_file);
	j->have_serial = z->have_serial;
	j->serial = z->serial;
	z->busy = true;
	return z;
}

static void check_in(struct dk_xfr *x, struct xzone *z, struct job *j, enum dk_xfr_result res,
                     bool *changed)
{
	uint64_t now = dk_mono_ns();

	pthread_mutex_lock(&x->mu);
	z->busy = false;
	z->st.last_time = (double)dk_wall_ms() / 1e3;
	z->st.last_result = res;
	z->st.results[res]++;
	if (res == DK_XFR_OK) {
		z->have_serial = true;
		z->serial = j->new_serial;
		z->refresh = j->refresh;
		z->retry = j->retry;
		z->expire = j->expire;
		z->st.have_serial = true;
		z->st.serial = j->new_serial;
		*changed = true;
	} else {
		if (res == DK_XFR_UP_TO_DATE && j->refresh) {
			z->refresh = j->refresh;
			z->retry = j->retry;
			z->expire = j->expire;
		}
	}
	bool good = res == DK_XFR_OK || res == DK_XFR_UP_TO_DATE;
	if (good) {
		z->last_ok_ns = now;
		z->st.last_ok_time = z->st.last_time;
		z->st.expired = false;
	}
	uint64_t refresh = z->refresh ? z->refresh : DEFAULT_REFRESH;
	uint64_t retry = z->retry ? z->retry : DEFAULT_RETRY;
	if (retry < MIN_RETRY)
		retry = MIN_RETRY;
	z->due_ns = now + (good ? refresh : retry) * 1000000000u;
	uint64_t expire = z->expire ? z->expire : DEFAULT_EXPIRE;
	bool newly_expired = !good && !z->st.expired && z->last_ok_ns &&
	                     now - z->last_ok_ns > expire * 1000000000u;
	if (newly_expired)
		z->st.expired = true;
	struct dk_xfr_zone_stats st = z->st;
	if (z->dead) {
		for (size_t i = 0; i < x->n_zones; i++) {
			if (x->zones[i] == z) {
				x->zones[i] = x->zones[--x->n_zones];
				break;
			}
		}
		xzone_free(z);
	}
	pthread_mutex_unlock(&x->mu);
	/* For `dnsink check`; the copy itself may not exist yet (a first transfer failed). */
	dk_feed_status_write(j->state_file, st.last_time, dk_xfr_result_name(st.last_result),
	                     st.last_ok_time, result_names, st.results, DK_XFR_RESULT_MAX);
	if (newly_expired)
		dk_log(DK_LOG_WARN,
		       "rpz %s: expired (no good transfer for %" PRIu64
		       " s); still serving the last copy",
		       j->origin, expire);
}

static void *run(void *arg)
{
	struct dk_xfr *x = arg;
	struct job j;

	for (;;) {
		int wait_ms;
		bool changed = false;
		pthread_mutex_lock(&x->mu);
		bool stop = x->stop;
		struct xzone *z = stop ? NULL : next_due(x, &j, &wait_ms);
		pthread_mutex_unlock(&x->mu);
		if (stop)
			break;
		if (!z) {
			if (poll_fd(x->pipe_rd, POLLIN, wait_ms) > 0)
				drain_pipe(x);
			continue;
		}
		enum dk_xfr_result res = transfer(&j);
		if (res == DK_XFR_OK)
			dk_log(DK_LOG_INFO,
			       "rpz %s: serial %" PRIu32 " by %s (%zu triggers), written to %s",
			       j.origin, j.new_serial, j.incremental ? "IXFR" : "AXFR", j.triggers,
			       j.state_file);
		else if (res != DK_XFR_UP_TO_DATE)
			dk_log(DK_LOG_WARN,
			       "rpz %s: transfer failed (%s): %s; keeping serial %" PRIu32,
			       j.origin, dk_xfr_result_name(res), j.why, j.serial);
		check_in(x, z, &j, res, &changed);
		free(j.tsig_secret);
		if (changed)
			uv_async_send(&x->changed_async);
		drain_pipe(x);
	}
	return NULL;
}
