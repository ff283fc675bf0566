/* SPDX-License-Identifier: MIT */
/*
 * The alerter on the main loop. Workers push match events into their own
 * SPSC ring and wake the loop through one uv_async_t only when the ring was
 * empty; the loop drains the rings, folds events through dedup, formats each
 * record once and hands it to the sinks: syslog(3), or RFC 5424 sent straight
 * to a collector over UDP, a unix datagram socket or TCP with octet counting
 * (RFC 6587) and reconnects with backoff and a bounded queue, plus an
 * optional JSON-lines file. A one-second timer closes dedup windows, retries
 * the file and reports losses. Losses are counted and logged, never hidden,
 * and nothing here can stall a worker.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <paths.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "alert_sink.h"
#include "log.h"
#include "dnsink/policy.h"

/* Events per worker ring; a slot is one struct dk_alert_event (~560 octets). */
#define RING_CAPACITY 4096
/*
 * Events gather this long before the rings are drained: one wake-up, one
 * file write and one TCP write per batch instead of per event. A ring half
 * full is drained at once.
 */
#define BATCH_MS 5
/* Events taken from one ring per loop iteration, so a flood cannot starve I/O. */
#define DRAIN_BATCH     1024
#define FILE_BUF        (64 * 1024)
#define REC_MAX         8192
#define LINE_MAX_LEN    (REC_MAX + 512)
#define BACKOFF_MIN_MS  500
#define BACKOFF_MAX_MS  30000
#define CLOSE_WAIT_MS   1000
#define TCP_WRITE_BATCH 64
/* Datagrams per sendmmsg(2), and the buffer a drain's datagrams gather in. */
#define DGRAM_BATCH 64
#define DGRAM_BUF   (64 * 1024)
_Static_assert(DGRAM_BUF >= LINE_MAX_LEN, "a whole record fits the datagram batch");
/* How often records the collector has not acknowledged yet are checked again. */
#define CONFIRM_MS 20
/* Unacknowledged data older than this makes the kernel drop the connection. */
#define TCP_USER_TIMEOUT_MS 20000

/* One framed RFC 6587 record waiting for the TCP collector. */
struct qrec {
	size_t len;
	char data[];
};

/*
 * A TCP connection attempt. Each attempt gets a fresh handle because a
 * closed handle can only be reused after its close callback; the alerter
 * starts a new attempt only once the old one is gone (a->tcp == NULL).
 *
 * A record leaves the queue only once the collector's TCP has acknowledged
 * every octet of it, not when the write completes: a completed write only
 * means the octets reached our kernel, and a collector that has just closed,
 * crashed or vanished never gets them. Relative to the queue head the
 * records are: [0, written) written, waiting for the acknowledgement;
 * [written, written + inflight) in the pending uv_write; the rest unsent.
 * When the connection ends, what was not acknowledged stays at the head and
 * goes out again, in order, on the next connection.
 */
struct tcp_conn {
	uv_tcp_t h;
	uv_connect_t creq;
	uv_write_t wreq;
	struct dk_alerter *a;
	bool connected;
	bool closing;
	size_t inflight;    /* queue records in the pending write */
	size_t written;     /* queue records written, not yet acknowledged */
	uint64_t submitted; /* octets handed to uv_write on this connection */
	uint64_t released;  /* octets of the records already taken off the queue */
};

/*
 * Writability watch on the datagram socket. A unix datagram receiver such as
 * /dev/log takes only a few datagrams at a time (net.unix.max_dgram_qlen),
 * so a burst waits in the bounded queue instead of being dropped at once.
 */
struct dgram_poll {
	uv_poll_t h;
	struct dk_alerter *a;
};

struct dk_alerter {
	uv_loop_t *loop;
	unsigned n_workers;
	struct dk_alert_ring *rings;
	uv_async_t async;
	uv_timer_t tick;    /* dedup, retries, loss reports; close deadline at the end */
	uv_timer_t retry;   /* TCP reconnect backoff */
	uv_timer_t confirm; /* TCP: polls for the acknowledgement of written records */
	uv_timer_t batch;   /* drains the rings, BATCH_MS after a batch's first event */
	unsigned open_handles;
	bool closing; /* dk_alerter_close() called */
	bool closed;  /* handles are being closed */
	struct dk_dedup *dedup;
	uint64_t (*now)(void);

	/* Settings copied from the config. */
	enum dk_syslog_transport transport;
	enum dk_alert_format format;
	char ident[64];
	char appname[49]; /* ident as an RFC 5424 APP-NAME */
	char procid[24];  /* our pid, as the PROCID */
	int facility;
	struct dk_addr server;
	char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *file_path;
	char config_file[256]; /* named in the warning about a missing syslog */
	char hostname[256];
	char hdr_tail[384]; /* " HOSTNAME APP-NAME PROCID alert - " of RFC 5424 lines */
	size_t hdr_tail_len;

	int dgram_fd;             /* UDP or unix datagram collector */
	struct dgram_poll *dpoll; /* waits for room while datagrams are queued */
	bool dgram_connected;     /* unix collector: connected, its path looked up once */
	struct mmsghdr dmsg[DGRAM_BATCH];
	struct iovec qiov[DGRAM_BATCH];
	char *dgbuf; /* DGRAM_BUF octets: this drain's datagrams, not sent yet */
	size_t dglen;
	unsigned dgn;
	struct iovec dgiov[DGRAM_BATCH];
	int file_fd;
	bool file_err_logged;
	char *filebuf;
	size_t filebuf_len;
	size_t filebuf_recs;

	struct tcp_conn *tcp;
	uint64_t backoff_ms;
	bool tcp_down_logged;
	struct qrec **queue; /* circular, qcap slots */
	size_t qcap, qhead, qlen;
	uv_buf_t wbufs[TCP_WRITE_BATCH];
	char readbuf[256];

	struct dk_alert_observer obs;
	bool syslog_absent;     /* syslog(3) chosen, but nothing listens on _PATH_LOG */
	uint64_t lost_unlogged; /* queue overflows since the last report */
	uint64_t ring_lost_logged;
	struct dk_alert_stats st;
	char rec[REC_MAX];
	char line[LINE_MAX_LEN];
};

/* The alerter's clock (dk_alerter_set_clock() replaces it in tests). */
static uint64_t mono_ms(void)
{
	return dk_mono_ns() / 1000000;
}

static void server_text(const struct dk_alerter *a, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (a->server.sa.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &a->server.in6.sin6_addr, ip, sizeof(ip));
		snprintf(buf, size, "[%s]:%u", ip, (unsigned)ntohs(a->server.in6.sin6_port));
	} else {
		inet_ntop(AF_INET, &a->server.in4.sin_addr, ip, sizeof(ip));
		snprintf(buf, size, "%s:%u", ip, (unsigned)ntohs(a->server.in4.sin_port));
	}
}

/* File sink. */

static int file_open(struct dk_alerter *a)
{
	int fd = open(a->file_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	if (fd < 0)
		return -errno;
	a->file_fd = fd;
	return 0;
}

static void file_flush(struct dk_alerter *a)
{
	size_t off = 0;

	if (a->filebuf_len == 0)
		return;
	while (a->file_fd >= 0 && off < a->filebuf_len) {
		ssize_t n = write(a->file_fd, a->filebuf + off, a->filebuf_len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!a->file_err_logged)
				dk_log(DK_LOG_ERR, "alert file %s: write failed: %s", a->file_path,
				       n < 0 ? strerror(errno) : "short write");
			a->file_err_logged = true;
			break;
		}
		off += (size_t)n;
	}
	if (off < a->filebuf_len)
		a->st.lost_sink += a->filebuf_recs;
	else
		a->file_err_logged = false;
	a->filebuf_len = 0;
	a->filebuf_recs = 0;
}

static bool file_put(struct dk_alerter *a, const char *rec, size_t len)
{
	if (a->file_fd < 0) {
		a->st.lost_sink++;
		return false;
	}
	if (len + 1 > FILE_BUF - a->filebuf_len)
		file_flush(a);
	memcpy(a->filebuf + a->filebuf_len, rec, len);
	a->filebuf[a->filebuf_len + len] = '\n';
	a->filebuf_len += len + 1;
	a->filebuf_recs++;
	return true;
}

/* RFC 5424 framing shared by the datagram and TCP collectors. */

static int syslog_level(const struct dk_alert_record *rec)
{
	return rec->ev->rule->severity >= DK_SEVERITY_MEDIUM ? LOG_WARNING : LOG_NOTICE;
}

/*
 * "<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID alert - JSON", assembled by hand:
 * this runs once per record, and printf of a whole record cost more than the
 * record's formatting itself. The part after the timestamp is the same for
 * every record (a->hdr_tail, made when the settings change).
 */
static int rfc5424_line(struct dk_alerter *a, const struct dk_alert_record *rec, const char *json,
                        size_t json_len, char *out, size_t size)
{
	unsigned pri = (unsigned)(a->facility | syslog_level(rec));
	struct timespec ts;
	char digits[8];
	size_t n = 0, nd = 0;

	do
		digits[nd++] = (char)('0' + pri % 10);
	while ((pri /= 10) && nd < sizeof(digits));
	if (1 + nd + 3 + DK_ALERT_TIME_LEN + 1 + a->hdr_tail_len + json_len >= size)
		return DK_ESPACE;
	out[n++] = '<';
	while (nd)
		out[n++] = digits[--nd];
	memcpy(out + n, ">1 ", 3);
	n += 3;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (dk_alert_time_text((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000,
	                       out + n) < 0)
		return DK_ESPACE;
	n += DK_ALERT_TIME_LEN;
	memcpy(out + n, a->hdr_tail, a->hdr_tail_len);
	n += a->hdr_tail_len;
	memcpy(out + n, json, json_len);
	n += json_len;
	out[n] = '\0';
	return (int)n;
}

/* TCP collector. */

static void tcp_connect(struct dk_alerter *a);
static void tcp_flush(struct dk_alerter *a);
static void tcp_confirm(struct dk_alerter *a);
static void finish_close(struct dk_alerter *a);
static void retry_cb(uv_timer_t *t);
static bool dgram_put(struct dk_alerter *a, const char *msg, size_t len);
static void dgram_watch(struct dk_alerter *a);

static void queue_drop_head(struct dk_alerter *a, size_t n)
{
	for (size_t i = 0; i < n && a->qlen; i++) {
		free(a->queue[a->qhead]);
		a->queue[a->qhead] = NULL;
		a->qhead = (a->qhead + 1) % a->qcap;
		a->qlen--;
	}
}

static bool queue_put(struct dk_alerter *a, const char *line, size_t len, bool framed)
{
	char hdr[24];
	int hl = framed ? snprintf(hdr, sizeof(hdr), "%zu ", len) : 0;
	struct qrec *r;

	/* Records the collector has acknowledged meanwhile make room. */
	if (a->qlen == a->qcap && framed)
		tcp_confirm(a);
	if (a->qlen == a->qcap) {
		a->st.lost_sink++;
		a->lost_unlogged++;
		return false;
	}
	r = malloc(sizeof(*r) + (size_t)hl + len);
	if (!r) {
		a->st.lost_sink++;
		return false;
	}
	memcpy(r->data, hdr, (size_t)hl);
	memcpy(r->data + hl, line, len);
	r->len = (size_t)hl + len;
	a->queue[(a->qhead + a->qlen) % a->qcap] = r;
	a->qlen++;
	return true;
}

static void tcp_close_cb(uv_handle_t *h)
{
	struct tcp_conn *c = h->data;
	struct dk_alerter *a = c->a;

	if (a->tcp == c)
		a->tcp = NULL;
	free(c);
	a->open_handles--;
}

static void tcp_schedule_retry(struct dk_alerter *a)
{
	if (a->closing || a->transport != DK_SYSLOG_TCP)
		return;
	uv_timer_start(&a->retry, retry_cb, a->backoff_ms, 0);
	a->backoff_ms = a->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : a->backoff_ms * 2;
}

/*
 * Octets of connection @c that the collector's TCP has acknowledged: those
 * that reached our kernel (handed to uv_write, minus what libuv still holds)
 * minus those the kernel keeps for retransmission (SIOCOUTQ). -1 if unknown.
 */
static int64_t tcp_acked(struct tcp_conn *c)
{
	uv_os_fd_t fd;
	uint64_t in_kernel;
	int outq = 0;

	if (uv_fileno((const uv_handle_t *)&c->h, &fd) < 0 || ioctl(fd, TIOCOUTQ, &outq) < 0 ||
	    outq < 0)
		return -1;
	in_kernel = c->submitted - uv_stream_get_write_queue_size((const uv_stream_t *)&c->h);
	if ((uint64_t)outq > in_kernel)
		return -1;
	return (int64_t)(in_kernel - (uint64_t)outq);
}

/*
 * Takes off the queue head at most @upto records of @c that lie wholly
 * within the first @acked octets of the connection. Returns how many.
 */
static size_t tcp_release(struct dk_alerter *a, struct tcp_conn *c, int64_t acked, size_t upto)
{
	size_t n = 0;

	while (n < upto && a->qlen) {
		struct qrec *r = a->queue[a->qhead];

		if (acked < 0 || c->released + r->len > (uint64_t)acked)
			break;
		c->released += r->len;
		queue_drop_head(a, 1);
		n++;
	}
	return n;
}

static void confirm_cb(uv_timer_t *t)
{
	tcp_confirm(t->data);
}

/*
 * Releases the written records the collector has acknowledged and polls
 * again shortly while some are still waiting; finishes a pending close once
 * the queue is empty.
 */
static void tcp_confirm(struct dk_alerter *a)
{
	struct tcp_conn *c = a->tcp;

	if (!c || !c->connected || c->closing || a->closed || c->written == 0)
		return;
	c->written -= tcp_release(a, c, tcp_acked(c), c->written);
	if (a->closing && a->qlen == 0)
		finish_close(a);
	else if (c->written && !uv_is_active((uv_handle_t *)&a->confirm))
		uv_timer_start(&a->confirm, confirm_cb, CONFIRM_MS, 0);
}

/*
 * Gives up on connection @c. What the collector acknowledged leaves the
 * queue; the rest, written or not, stays queued for the next connection.
 */
static void tcp_fail(struct tcp_conn *c, int err)
{
	struct dk_alerter *a = c->a;
	size_t sent = c->written + c->inflight, resend = 0;
	int64_t acked = -1;
	char addr[64];

	if (c->closing)
		return;
	if (c->connected && sent)
		acked = tcp_acked(c);
	c->closing = true;
	c->inflight = 0;
	c->written = 0;
	/* The fd is closed here: libuv touches the pending write's buffers no more. */
	uv_close((uv_handle_t *)&c->h, tcp_close_cb);
	if (sent) {
		resend = sent - tcp_release(a, c, acked, sent);
		a->st.resent += resend;
	}
	if (!a->tcp_down_logged && err) {
		server_text(a, addr, sizeof(addr));
		dk_log(DK_LOG_WARN,
		       "alert collector tcp://%s %s: %s; %zu unacknowledged records to send again, "
		       "queuing up to %zu records",
		       addr, c->connected ? "lost" : "unreachable", uv_strerror(err), resend,
		       a->qcap);
		a->tcp_down_logged = true;
	}
	if (a->closing)
		finish_close(a);
	else
		tcp_schedule_retry(a);
}

static void tcp_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct tcp_conn *c = h->data;

	(void)hint;
	buf->base = c->a->readbuf;
	buf->len = sizeof(c->a->readbuf);
}

static void tcp_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct tcp_conn *c = s->data;

	(void)buf;
	/* A collector has nothing to say; reading only notices it leaving. */
	if (nread < 0)
		tcp_fail(c, (int)nread);
}

static void tcp_write_cb(uv_write_t *req, int status)
{
	struct tcp_conn *c = req->data;
	struct dk_alerter *a = c->a;
	size_t n = c->inflight;

	if (a->closed || c->closing)
		return;
	if (status < 0) {
		tcp_fail(c, status);
		return;
	}
	c->inflight = 0;
	c->written += n;
	tcp_confirm(a);
	tcp_flush(a);
}

static void tcp_flush(struct dk_alerter *a)
{
	struct tcp_conn *c = a->tcp;
	uint64_t octets = 0;
	size_t n = 0;
	int err;

	tcp_confirm(a);
	c = a->tcp;
	if (!c || !c->connected || c->closing || a->closed || c->inflight || c->written >= a->qlen)
		return;
	while (c->written + n < a->qlen && n < TCP_WRITE_BATCH) {
		struct qrec *r = a->queue[(a->qhead + c->written + n) % a->qcap];

		a->wbufs[n] = uv_buf_init(r->data, (unsigned)r->len);
		octets += r->len;
		n++;
	}
	err = uv_write(&c->wreq, (uv_stream_t *)&c->h, a->wbufs, (unsigned)n, tcp_write_cb);
	if (err < 0) {
		tcp_fail(c, err);
		return;
	}
	c->inflight = n;
	c->submitted += octets;
}

/* A collector that vanished without a word must not hold records forever. */
static void tcp_set_user_timeout(struct tcp_conn *c)
{
	unsigned int ms = TCP_USER_TIMEOUT_MS;
	uv_os_fd_t fd;

	if (uv_fileno((const uv_handle_t *)&c->h, &fd) == 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms));
}

static void tcp_connect_cb(uv_connect_t *req, int status)
{
	struct tcp_conn *c = req->data;
	struct dk_alerter *a = c->a;
	char addr[64];
	int err;

	if (c->closing || a->closed)
		return;
	if (status < 0) {
		tcp_fail(c, status);
		return;
	}
	c->connected = true;
	a->backoff_ms = BACKOFF_MIN_MS;
	tcp_set_user_timeout(c);
	if (a->tcp_down_logged) {
		server_text(a, addr, sizeof(addr));
		dk_log(DK_LOG_INFO,
		       "alert collector tcp://%s connected, %zu queued records to send", addr,
		       a->qlen);
		a->tcp_down_logged = false;
	}
	err = uv_read_start((uv_stream_t *)&c->h, tcp_alloc_cb, tcp_read_cb);
	if (err < 0) {
		tcp_fail(c, err);
		return;
	}
	tcp_flush(a);
}

static void tcp_connect(struct dk_alerter *a)
{
	struct tcp_conn *c;
	int err;

	if (a->tcp || a->closed || a->transport != DK_SYSLOG_TCP)
		return;
	c = calloc(1, sizeof(*c));
	if (!c) {
		tcp_schedule_retry(a);
		return;
	}
	c->a = a;
	err = uv_tcp_init(a->loop, &c->h);
	if (err < 0) {
		free(c);
		tcp_schedule_retry(a);
		return;
	}
	a->open_handles++;
	c->h.data = c;
	c->creq.data = c;
	c->wreq.data = c;
	a->tcp = c;
	err = uv_tcp_connect(&c->creq, &c->h, &a->server.sa, tcp_connect_cb);
	if (err < 0)
		tcp_fail(c, err);
}

static void retry_cb(uv_timer_t *t)
{
	struct dk_alerter *a = t->data;

	/* The previous attempt's handle is still closing: come back shortly. */
	if (a->tcp) {
		uv_timer_start(&a->retry, retry_cb, 50, 0);
		return;
	}
	tcp_connect(a);
}

/* Datagram collectors (UDP, unix). */

static void dgram_poll_close_cb(uv_handle_t *h)
{
	struct dgram_poll *dp = h->data;

	dp->a->open_handles--;
	free(dp);
}

/* Closes the watch; must happen before its socket is closed. */
static void dgram_unwatch(struct dk_alerter *a)
{
	if (!a->dpoll)
		return;
	uv_close((uv_handle_t *)&a->dpoll->h, dgram_poll_close_cb);
	a->dpoll = NULL;
}

/*
 * Connects the unix datagram socket to the collector's path: sendto() with
 * an address looks the path up in the filesystem for every datagram, which
 * cost more than the rest of the send. Without a collector yet, datagrams
 * name the path (and fail, counted) until a later try connects.
 */
static void dgram_connect(struct dk_alerter *a)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	a->dgram_connected = false;
	if (a->transport != DK_SYSLOG_UNIX || a->dgram_fd < 0)
		return;
	memcpy(sun.sun_path, a->unix_path, sizeof(sun.sun_path));
	a->dgram_connected = connect(a->dgram_fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
}

static bool dgram_waiting(const struct dk_alerter *a)
{
	return a->dpoll && uv_is_active((const uv_handle_t *)&a->dpoll->h);
}

/*
 * Sends datagrams @p iov[0..n) in order, up to DGRAM_BATCH per sendmmsg(2):
 * one system call for a drain's records instead of one sendto each. Returns
 * how many are done with: sent, or lost and counted (a failure other than a
 * full receiver loses the one datagram it names, and the next are tried).
 * Fewer than @p n: the receiver is full (EAGAIN, ENOBUFS), the rest waits.
 */
static unsigned dgram_sendv(struct dk_alerter *a, struct iovec *iov, unsigned n)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	void *to = &a->server.sa;
	socklen_t tolen = a->server.len;
	bool reconnected = false;
	unsigned done = 0;

	if (a->transport == DK_SYSLOG_UNIX) {
		memcpy(sun.sun_path, a->unix_path, sizeof(sun.sun_path));
		to = &sun;
		tolen = sizeof(sun);
	}
	while (done < n) {
		unsigned k = n - done < DGRAM_BATCH ? n - done : DGRAM_BATCH;
		int sent;

		if (a->dgram_fd < 0) {
			a->st.lost_sink += n - done;
			return n;
		}
		for (unsigned i = 0; i < k; i++)
			a->dmsg[i] = (struct mmsghdr){
			        .msg_hdr = {.msg_name = a->dgram_connected ? NULL : to,
			                    .msg_namelen = a->dgram_connected ? 0 : tolen,
			                    .msg_iov = &iov[done + i],
			                    .msg_iovlen = 1}};
		do
			sent = sendmmsg(a->dgram_fd, a->dmsg, k, MSG_DONTWAIT | MSG_NOSIGNAL);
		while (sent < 0 && errno == EINTR);
		if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS))
			return done;
		if (sent < 0 && a->dgram_connected && !reconnected &&
		    (errno == ECONNREFUSED || errno == ENOTCONN || errno == ECONNRESET)) {
			/* The collector went away (a restart): its new socket, once. */
			dgram_connect(a);
			reconnected = true;
			continue;
		}
		if (sent <= 0) {
			/* The head datagram failed for good (no collector, too big). */
			a->st.lost_sink++;
			done++;
			continue;
		}
		done += (unsigned)sent;
	}
	return done;
}

/*
 * Sends the batch of this drain. What a full receiver did not take stays in
 * the batch, moved to its front, until the socket has room.
 */
static void dgram_batch_flush(struct dk_alerter *a)
{
	unsigned done;
	size_t shift;

	if (!a->dgn)
		return;
	done = dgram_sendv(a, a->dgiov, a->dgn);
	if (done == a->dgn) {
		a->dgn = 0;
		a->dglen = 0;
		return;
	}
	shift = (size_t)((char *)a->dgiov[done].iov_base - a->dgbuf);
	memmove(a->dgbuf, a->dgbuf + shift, a->dglen - shift);
	for (unsigned i = done; i < a->dgn; i++)
		a->dgiov[i - done] =
		        (struct iovec){.iov_base = (char *)a->dgiov[i].iov_base - shift,
		                       .iov_len = a->dgiov[i].iov_len};
	a->dgn -= done;
	a->dglen -= shift;
	dgram_watch(a);
}

/*
 * Sends what waits, in order while the socket takes it: the batch first,
 * then the queue (records that came while the batch was full and waiting).
 */
static void dgram_flush(struct dk_alerter *a)
{
	dgram_batch_flush(a);
	if (a->dgn)
		return;
	while (a->qlen) {
		unsigned n = 0, done;

		while (n < DGRAM_BATCH && n < a->qlen) {
			struct qrec *r = a->queue[(a->qhead + n) % a->qcap];

			a->qiov[n] = (struct iovec){.iov_base = r->data, .iov_len = r->len};
			n++;
		}
		done = dgram_sendv(a, a->qiov, n);
		queue_drop_head(a, done);
		if (done < n) {
			dgram_watch(a);
			return;
		}
	}
	if (a->dpoll)
		uv_poll_stop(&a->dpoll->h);
	if (a->closing)
		finish_close(a);
}

static void dgram_poll_cb(uv_poll_t *h, int status, int events)
{
	struct dgram_poll *dp = h->data;

	(void)events;
	if (status < 0) {
		uv_poll_stop(h);
		return;
	}
	dgram_flush(dp->a);
}

static void dgram_watch(struct dk_alerter *a)
{
	if (a->closed || a->dgram_fd < 0)
		return;
	if (!a->dpoll) {
		struct dgram_poll *dp = calloc(1, sizeof(*dp));

		if (!dp)
			return;
		if (uv_poll_init_socket(a->loop, &dp->h, a->dgram_fd) < 0) {
			free(dp);
			return;
		}
		dp->a = a;
		dp->h.data = dp;
		a->dpoll = dp;
		a->open_handles++;
	}
	uv_poll_start(&a->dpoll->h, UV_WRITABLE, dgram_poll_cb);
}

/*
 * Takes one datagram into the drain's batch (a buffer allocated once), sent
 * with sendmmsg at the end of the drain (sinks_flush) or when the batch is
 * full. While the batch waits for a full receiver, later datagrams queue
 * behind it, in order (the queue allocates; it holds records only while the
 * collector is behind).
 */
static bool dgram_put(struct dk_alerter *a, const char *msg, size_t len)
{
	bool full = a->dgn == DGRAM_BATCH || len > DGRAM_BUF - a->dglen;

	if (full && !a->qlen && !dgram_waiting(a)) {
		dgram_batch_flush(a);
		full = a->dgn == DGRAM_BATCH || len > DGRAM_BUF - a->dglen;
	}
	if (a->qlen || full) {
		if (!queue_put(a, msg, len, false))
			return false;
		dgram_watch(a);
		return true;
	}
	memcpy(a->dgbuf + a->dglen, msg, len);
	a->dgiov[a->dgn++] = (struct iovec){.iov_base = a->dgbuf + a->dglen, .iov_len = len};
	a->dglen += len;
	return true;
}

/* Hands what the sinks buffered during a drain to the kernel. */
static void sinks_flush(struct dk_alerter *a)
{
	file_flush(a);
	if (a->transport == DK_SYSLOG_TCP)
		tcp_flush(a);
	else if ((a->qlen || a->dgn) && !a->closed && !dgram_waiting(a) &&
	         (a->transport == DK_SYSLOG_UDP || a->transport == DK_SYSLOG_UNIX))
		dgram_flush(a);
}

/* Emission: one formatted record to every configured sink. */

static void emit_cb(const struct dk_alert_record *rec, void *ctx)
{
	struct dk_alerter *a = ctx;
	bool taken = false;
	int n, ln;

	n = dk_alert_format(rec, a->format, a->rec, sizeof(a->rec));
	if (n < 0) {
		a->st.lost_sink++;
		dk_log(DK_LOG_WARN, "alert record for rule %s does not fit %d octets",
		       rec->ev->rule->id, REC_MAX);
		return;
	}
	if (a->obs.record)
		a->obs.record(a->obs.ctx, a->rec, (size_t)n);
	switch (a->transport) {
	case DK_SYSLOG_LOCAL:
		/* syslog(3) drops silently when no daemon listens: count it as lost. */
		if (a->syslog_absent) {
			a->st.lost_sink++;
			break;
		}
		syslog(a->facility | syslog_level(rec), "%s", a->rec);
		taken = true;
		break;
	case DK_SYSLOG_UDP:
	case DK_SYSLOG_UNIX:
		ln = rfc5424_line(a, rec, a->rec, (size_t)n, a->line, sizeof(a->line));
		if (ln > 0)
			taken = dgram_put(a, a->line, (size_t)ln);
		else
			a->st.lost_sink++;
		break;
	case DK_SYSLOG_TCP:
		ln = rfc5424_line(a, rec, a->rec, (size_t)n, a->line, sizeof(a->line));
		taken = ln > 0 && queue_put(a, a->line, (size_t)ln, true);
		break;
	}
	if (a->file_path && file_put(a, a->rec, (size_t)n))
		taken = true;
	if (taken)
		a->st.emitted++;
}

/*
 * Takes up to @p max events from the workers' rings, oldest first across
 * rings: a batch holds several workers' events, and dedup must see a key's
 * first event first. Returns true when events were left.
 */
static uint64_t head_time(struct dk_alert_ring *r)
{
	const struct dk_alert_event *e = dk_alert_ring_peek(r);

	return e ? e->mono_ns : UINT64_MAX;
}

static bool drain_rings(struct dk_alerter *a, size_t max)
{
	/*
	 * Each ring's head time is read once and again only after that ring
	 * was popped. The order is best effort: an event stamped just before
	 * its worker was preempted can still come after newer ones.
	 */
	uint64_t head[DK_WORKERS_MAX];
	struct dk_alert_event ev;
	size_t i;

	for (unsigned w = 0; w < a->n_workers; w++)
		head[w] = head_time(&a->rings[w]);
	for (i = 0; i < max; i++) {
		unsigned oldest = 0;
		for (unsigned w = 1; w < a->n_workers; w++)
			if (head[w] < head[oldest])
				oldest = w;
		if (head[oldest] == UINT64_MAX || !dk_alert_ring_pop(&a->rings[oldest], &ev))
			return false;
		head[oldest] = head_time(&a->rings[oldest]);
		a->st.events++;
		if (a->obs.event)
			a->obs.event(a->obs.ctx, &ev);
		/* Counted as it happens, not when a follow-up reports it. */
		if (!dk_dedup_event(a->dedup, &ev, a->now(), emit_cb, a))
			a->st.deduplicated++;
	}
	return true;
}

static void batch_cb(uv_timer_t *t)
{
	struct dk_alerter *a = t->data;
	bool more = drain_rings(a, DRAIN_BATCH * a->n_workers);

	sinks_flush(a);
	/*
	 * Not done: continue from the next poll phase. A 0 ms timer started here
	 * would run again in this same timer phase (libuv < 1.45) and starve
	 * signals, reloads and the sinks' own I/O while workers keep posting.
	 */
	if (more)
		uv_async_send(&a->async);
}

static void async_cb(uv_async_t *h)
{
	struct dk_alerter *a = h->data;

	for (unsigned w = 0; w < a->n_workers; w++) {
		if (dk_alert_ring_used(&a->rings[w]) > RING_CAPACITY / 2) {
			uv_timer_start(&a->batch, batch_cb, 0, 0);
			return;
		}
	}
	if (!uv_is_active((uv_handle_t *)&a->batch))
		uv_timer_start(&a->batch, batch_cb, BATCH_MS, 0);
}

/*
 * Whether a syslog daemon listens on _PATH_LOG (/dev/log), as glibc's
 * syslog(3) would find it: a datagram socket first, a stream one after. A
 * machine without one (a container, a fresh minimal install) would take every
 * record into syslog(3) and lose it without a word, so the alerter asks
 * itself, says so once and counts the records as lost.
 */
static bool syslog_listening(void)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	static const int types[] = {SOCK_DGRAM, SOCK_STREAM};
	bool ok = false;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", _PATH_LOG);
	for (size_t i = 0; i < DK_ARRAY_SIZE(types) && !ok; i++) {
		int fd = socket(AF_UNIX, types[i] | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		if (fd < 0)
			continue;
		ok = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 || errno == EAGAIN;
		close(fd);
	}
	return ok;
}

/* Looks again for the syslog socket; logs only a change. Main loop only. */
static void syslog_check(struct dk_alerter *a, bool first)
{
	bool absent = a->transport == DK_SYSLOG_LOCAL && !syslog_listening();

	if (absent && (first || !a->syslog_absent) && a->file_path)
		dk_log(DK_LOG_WARN,
		       "alerts: no syslog daemon listens on %s: the syslog(3) copies of alert "
		       "records are lost (counted in lost_sink); the file sink %s still gets them",
		       _PATH_LOG, a->file_path);
	else if (absent && (first || !a->syslog_absent))
		dk_log(DK_LOG_WARN,
		       "alerts: the alert sink is syslog(3), but no syslog daemon listens on %s:"
		       " alert records are lost (counted in lost_sink). Start a syslog daemon, or"
		       " set \"alerts: file: PATH\" (JSON lines) or \"alerts: syslog: server:"
		       " udp://IP:PORT\" (a collector) in %s",
		       _PATH_LOG, a->config_file[0] ? a->config_file : "the config");
	else if (!absent && a->syslog_absent && a->transport == DK_SYSLOG_LOCAL)
		dk_log(DK_LOG_INFO, "alerts: syslog daemon found on %s, alert records go there",
		       _PATH_LOG);
	a->syslog_absent = absent;
}

static void tick_cb(uv_timer_t *t)
{
	struct dk_alerter *a = t->data;
	uint64_t ring_lost = 0;

	if (a->transport == DK_SYSLOG_LOCAL)
		syslog_check(a, false);
	if (a->transport == DK_SYSLOG_UNIX && !a->dgram_connected)
		dgram_connect(a);
	dk_dedup_tick(a->dedup, a->now(), emit_cb, a);
	if (a->file_path && a->file_fd < 0 && file_open(a) == 0)
		dk_log(DK_LOG_INFO, "alert file %s reopened", a->file_path);
	sinks_flush(a);
	if (a->lost_unlogged) {
		dk_log(DK_LOG_WARN, "alert queue full, %" PRIu64 " records lost", a->lost_unlogged);
		a->lost_unlogged = 0;
	}
	for (unsigned w = 0; w < a->n_workers; w++)
		ring_lost += atomic_load_explicit(&a->rings[w].dropped, memory_order_relaxed);
	if (ring_lost > a->ring_lost_logged) {
		dk_log(DK_LOG_WARN, "alert rings full, %" PRIu64 " events lost",
		       ring_lost - a->ring_lost_logged);
		a->ring_lost_logged = ring_lost;
	}
}

static void deadline_cb(uv_timer_t *t)
{
	finish_close(t->data);
}

/* Settings. */

static void copy_ident(struct dk_alerter *a, const char *ident)
{
	size_t i;

	snprintf(a->ident, sizeof(a->ident), "%s", ident);
	/* APP-NAME is 1*48 printable US-ASCII without spaces (RFC 5424 6.2.5). */
	for (i = 0; a->ident[i] && i < sizeof(a->appname) - 1; i++) {
		unsigned char ch = (unsigned char)a->ident[i];

		a->appname[i] = ch > 32 && ch < 127 ? (char)ch : '_';
	}
	a->appname[i] = '\0';
	a->hdr_tail_len = (size_t)snprintf(a->hdr_tail, sizeof(a->hdr_tail), " %s %s %s alert - ",
	                                   a->hostname, a->appname, a->procid);
}

static int open_dgram(struct dk_alerter *a, struct dk_diag *diag)
{
	int fam = a->transport == DK_SYSLOG_UNIX ? AF_UNIX : a->server.sa.sa_family;
	int fd;

	dgram_unwatch(a);
	if (a->dgram_fd >= 0)
		close(a->dgram_fd);
	a->dgram_fd = -1;
	fd = socket(fam, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int err = -errno;

		dk_diag_set(diag, NULL, 0, "alert collector socket: %s", strerror(errno));
		return err;
	}
	a->dgram_fd = fd;
	dgram_connect(a);
	return 0;
}

/*
 * Copies what the alerter needs from @cfg and (re)opens the sinks whose
 * settings changed; @first is creation. The TCP connection itself is managed
 * by the caller.
 */
static int apply_config(struct dk_alerter *a, const struct dk_config *cfg, bool first,
                        struct dk_diag *diag)
{
	enum dk_syslog_transport old_tr = a->transport;
	struct dk_addr old_server = a->server;
	char old_ident[sizeof(a->ident)];
	int old_facility = a->facility;
	bool dgram_changed, server_changed;
	int err;

	memcpy(old_ident, a->ident, sizeof(old_ident));
	/* The loader always sets one; a config built by hand must too. */
	if (!cfg->alerts.ident || !*cfg->alerts.ident) {
		dk_diag_set(diag, cfg->file, 0, "alerts: no syslog ident");
		return -EINVAL;
	}
	if (cfg->alerts.transport == DK_SYSLOG_UNIX) {
		if (!cfg->alerts.unix_path || !*cfg->alerts.unix_path ||
		    strlen(cfg->alerts.unix_path) >= sizeof(a->unix_path)) {
			dk_diag_set(diag, cfg->file, 0,
			            "alert collector unix path too long or empty");
			return -EINVAL;
		}
	}
	a->transport = cfg->alerts.transport;
	a->format = cfg->alerts.format;
	a->facility = cfg->alerts.facility;
	copy_ident(a, cfg->alerts.ident);
	if (a->transport == DK_SYSLOG_UDP || a->transport == DK_SYSLOG_TCP)
		a->server = cfg->alerts.server;
	server_changed = memcmp(&old_server, &a->server, sizeof(a->server)) != 0;
	dgram_changed = first || old_tr != a->transport || server_changed;
	if (a->transport == DK_SYSLOG_UNIX) {
		dgram_changed |= strcmp(a->unix_path, cfg->alerts.unix_path) != 0;
		snprintf(a->unix_path, sizeof(a->unix_path), "%s", cfg->alerts.unix_path);
	}

	if (a->transport == DK_SYSLOG_UDP || a->transport == DK_SYSLOG_UNIX) {
		if (dgram_changed) {
			err = open_dgram(a, diag);
			if (err < 0)
				return err;
		}
	} else if (a->dgram_fd >= 0) {
		dgram_unwatch(a);
		close(a->dgram_fd);
		a->dgram_fd = -1;
	}
	/*
	 * openlog() keeps the ident pointer, so it points into static storage
	 * that outlives the alerter (syslog state is process-wide, and the
	 * operational log may use it after the alerter is freed); each record
	 * also names its facility, in case another openlog() changed it.
	 */
	if (a->transport == DK_SYSLOG_LOCAL &&
	    (first || old_tr != DK_SYSLOG_LOCAL || strcmp(old_ident, a->ident) != 0 ||
	     old_facility != a->facility)) {
		static char syslog_ident[sizeof(a->ident)];

		memcpy(syslog_ident, a->ident, sizeof(syslog_ident));
		openlog(syslog_ident, LOG_PID | LOG_NDELAY, a->facility);
	}

	/* The file is reopened on every reconfigure: that is log rotation. */
	file_flush(a);
	if (a->file_fd >= 0)
		close(a->file_fd);
	a->file_fd = -1;
	free(a->file_path);
	a->file_path = NULL;
	if (cfg->alerts.file) {
		a->file_path = strdup(cfg->alerts.file);
		if (!a->file_path)
			return -ENOMEM;
		err = file_open(a);
		if (err < 0) {
			dk_diag_set(diag, cfg->file, 0, "alert file %s: %s", a->file_path,
			            strerror(-err));
			if (first)
				return err;
			dk_log(DK_LOG_ERR, "alert file %s: %s; retrying every second", a->file_path,
			       strerror(-err));
		}
	}
	snprintf(a->config_file, sizeof(a->config_file), "%s", cfg->file ? cfg->file : "");
	syslog_check(a, first);
	return 0;
}

/* Lifecycle. */

static void handle_close_cb(uv_handle_t *h)
{
	struct dk_alerter *a = h->data;

	a->open_handles--;
}

/* Frees the memory of an alerter whose descriptors and handles are closed. */
static void alerter_release(struct dk_alerter *a)
{
	for (unsigned w = 0; a->rings && w < a->n_workers; w++)
		dk_alert_ring_deinit(&a->rings[w]);
	free(a->rings);
	free(a->queue);
	free(a->filebuf);
	free(a->dgbuf);
	free(a->file_path);
	dk_dedup_free(a->dedup);
	free(a);
}

int dk_alerter_new(uv_loop_t *loop, const struct dk_config *cfg, unsigned n_workers,
                   struct dk_alerter **out, struct dk_diag *diag)
{
	struct dk_alerter *a;
	int err = -ENOMEM;

	/*
	 * No fallback here: the defaults live in config.h, and a config built
	 * by hand gets them from dk_config_set_defaults(). A zero is refused
	 * rather than quietly replaced.
	 */
	if (!cfg->alerts.queue || !cfg->alerts.dedup_max) {
		dk_diag_set(diag, cfg->file, 0, "alerts: queue and dedup_max must not be 0");
		return -EINVAL;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		dk_diag_set(diag, NULL, 0, "out of memory");
		return -ENOMEM;
	}
	a->loop = loop;
	a->n_workers = n_workers ? n_workers : 1;
	if (a->n_workers > DK_WORKERS_MAX)
		a->n_workers = DK_WORKERS_MAX;
	a->dgram_fd = -1;
	a->file_fd = -1;
	a->now = mono_ms;
	a->backoff_ms = BACKOFF_MIN_MS;
	a->qcap = cfg->alerts.queue;
	a->rings = calloc(a->n_workers, sizeof(*a->rings));
	a->queue = calloc(a->qcap, sizeof(*a->queue));
	a->filebuf = malloc(FILE_BUF);
	a->dgbuf = malloc(DGRAM_BUF);
	a->dedup = dk_dedup_new(cfg->alerts.dedup_max);
	if (!a->rings || !a->queue || !a->filebuf || !a->dgbuf || !a->dedup) {
		dk_diag_set(diag, NULL, 0, "out of memory");
		goto fail;
	}
	for (unsigned w = 0; w < a->n_workers; w++) {
		err = dk_alert_ring_init(&a->rings[w], RING_CAPACITY);
		if (err < 0) {
			dk_diag_set(diag, NULL, 0, "out of memory");
			goto fail;
		}
	}
	if (gethostname(a->hostname, sizeof(a->hostname) - 1) < 0 || !a->hostname[0])
		snprintf(a->hostname, sizeof(a->hostname), "-");
	snprintf(a->procid, sizeof(a->procid), "%ld", (long)getpid());
	for (char *p = a->hostname; *p; p++)
		if (*p <= 32 || *p >= 127)
			*p = '_';
	a->server.sa.sa_family = AF_UNSPEC;
	err = apply_config(a, cfg, true, diag);
	if (err < 0)
		goto fail;
	err = uv_async_init(loop, &a->async, async_cb);
	if (err < 0) {
		dk_diag_set(diag, NULL, 0, "alerter wake-up handle: %s", uv_strerror(err));
		goto fail;
	}
	a->async.data = a;
	uv_timer_init(loop, &a->tick);
	uv_timer_init(loop, &a->retry);
	uv_timer_init(loop, &a->confirm);
	uv_timer_init(loop, &a->batch);
	a->tick.data = a;
	a->retry.data = a;
	a->confirm.data = a;
	a->batch.data = a;
	a->open_handles = 5;
	uv_timer_start(&a->tick, tick_cb, 1000, 1000);
	tcp_connect(a);
	*out = a;
	return 0;
fail:
	if (a->dgram_fd >= 0)
		close(a->dgram_fd);
	if (a->file_fd >= 0)
		close(a->file_fd);
	alerter_release(a);
	return err;
}

int dk_alerter_reconfigure(struct dk_alerter *a, const struct dk_config *cfg)
{
	enum dk_syslog_transport old_tr = a->transport;
	struct dk_addr old_server = a->server;
	struct dk_diag diag;
	int err;

	if (a->closing)
		return -ECANCELED;
	err = apply_config(a, cfg, false, &diag);
	if (err < 0) {
		char msg[1100];

		dk_diag_format(&diag, msg, sizeof(msg));
		dk_log(DK_LOG_ERR, "alerts: %s", msg);
		return err;
	}
	if (a->dgn && a->transport != DK_SYSLOG_UDP && a->transport != DK_SYSLOG_UNIX) {
		/* Datagrams waiting for a collector that is no longer configured. */
		dk_log(DK_LOG_WARN, "alert collector changed, %u waiting records lost", a->dgn);
		a->st.lost_sink += a->dgn;
		a->dgn = 0;
		a->dglen = 0;
	}
	if (a->qlen && (old_tr == DK_SYSLOG_TCP) != (a->transport == DK_SYSLOG_TCP)) {
		/* Queued records are framed for the old kind of collector. */
		dk_log(DK_LOG_WARN, "alert collector changed, %zu queued records lost", a->qlen);
		a->st.lost_sink += a->qlen;
		if (a->tcp && !a->tcp->closing) {
			a->tcp->closing = true;
			uv_close((uv_handle_t *)&a->tcp->h, tcp_close_cb);
		}
		queue_drop_head(a, a->qlen);
	}
	if (old_tr == DK_SYSLOG_TCP && (a->transport != DK_SYSLOG_TCP ||
	                                memcmp(&old_server, &a->server, sizeof(a->server)) != 0)) {
		uv_timer_stop(&a->retry);
		if (a->tcp && !a->tcp->closing) {
			a->tcp->closing = true;
			uv_close((uv_handle_t *)&a->tcp->h, tcp_close_cb);
		}
		a->tcp_down_logged = false;
	}
	if (a->transport == DK_SYSLOG_TCP && !a->tcp) {
		a->backoff_ms = BACKOFF_MIN_MS;
		tcp_connect(a);
	} else if (a->transport == DK_SYSLOG_TCP && a->tcp->closing) {
		/* The old connection closes first; retry_cb waits for it. */
		uv_timer_start(&a->retry, retry_cb, 50, 0);
	}
	return 0;
}

void dk_alerter_post(struct dk_alerter *a, unsigned worker, const struct dk_alert_event *ev)
{
	bool was_empty;

	if (worker >= a->n_workers)
		return;
	struct dk_alert_ring *r = &a->rings[worker];

	/* The first event of a batch, and a ring half full, wake the alerter. */
	if (dk_alert_ring_push(r, ev, &was_empty) &&
	    (was_empty || dk_alert_ring_used(r) == RING_CAPACITY / 2 + 1))
		uv_async_send(&a->async);
}

void dk_alerter_drain(struct dk_alerter *a)
{
	/*
	 * Everything queued now is taken; the bound keeps a worker that keeps
	 * posting from holding the main loop here.
	 */
	drain_rings(a, 2 * (size_t)RING_CAPACITY * a->n_workers);
	sinks_flush(a);
}

void dk_alerter_reopen(struct dk_alerter *a)
{
	int err;

	if (!a->file_path || a->closed)
		return;
	file_flush(a);
	if (a->file_fd >= 0)
		close(a->file_fd);
	a->file_fd = -1;
	err = file_open(a);
	if (err < 0)
		dk_log(DK_LOG_ERR, "alert file %s: %s; retrying every second", a->file_path,
		       strerror(-err));
}

static void finish_close(struct dk_alerter *a)
{
	if (a->closed)
		return;
	a->closed = true;
	if ((a->qlen || a->dgn) && a->dgram_fd >= 0 && a->transport != DK_SYSLOG_TCP) {
		/* A last try: the receiver may have made room meanwhile. */
		dgram_flush(a);
	}
	if (a->qlen || a->dgn) {
		dk_log(DK_LOG_WARN, "alert queue: %zu records not delivered at exit",
		       a->qlen + a->dgn);
		a->st.lost_sink += a->qlen + a->dgn;
		queue_drop_head(a, a->qlen);
		a->dgn = 0;
		a->dglen = 0;
	}
	if (a->tcp && !a->tcp->closing) {
		a->tcp->closing = true;
		uv_close((uv_handle_t *)&a->tcp->h, tcp_close_cb);
	}
	uv_close((uv_handle_t *)&a->async, handle_close_cb);
	uv_close((uv_handle_t *)&a->tick, handle_close_cb);
	uv_close((uv_handle_t *)&a->retry, handle_close_cb);
	uv_close((uv_handle_t *)&a->confirm, handle_close_cb);
	uv_close((uv_handle_t *)&a->batch, handle_close_cb);
	file_flush(a);
	if (a->file_fd >= 0)
		close(a->file_fd);
	a->file_fd = -1;
	dgram_unwatch(a);
	if (a->dgram_fd >= 0)
		close(a->dgram_fd);
	a->dgram_fd = -1;
}

void dk_alerter_close(struct dk_alerter *a)
{
	if (!a || a->closing)
		return;
	dk_alerter_drain(a);
	dk_dedup_flush(a->dedup, emit_cb, a);
	sinks_flush(a);
	a->closing = true;
	uv_timer_stop(&a->retry);
	if (a->qlen || a->dgn) {
		/* Give the collector a bounded moment to take what is queued. */
		if (a->transport != DK_SYSLOG_TCP)
			dgram_flush(a);
		else if (!a->tcp)
			tcp_connect(a);
		else
			tcp_flush(a);
		if (!a->closed)
			uv_timer_start(&a->tick, deadline_cb, CLOSE_WAIT_MS, 0);
		return;
	}
	finish_close(a);
}

void dk_alerter_free(struct dk_alerter *a)
{
	if (!a)
		return;
	if (!a->closed || a->open_handles) {
		/* Freeing under live handles would corrupt the loop: leak instead. */
		dk_log(DK_LOG_ERR, "alerter freed before its handles closed; leaking it");
		return;
	}
	alerter_release(a);
}

void dk_alerter_stats(const struct dk_alerter *a, struct dk_alert_stats *out)
{
	*out = a->st;
	out->lost_ring = 0;
	for (unsigned w = 0; w < a->n_workers; w++)
		out->lost_ring += atomic_load_explicit(&a->rings[w].dropped, memory_order_relaxed);
	out->queued = a->qlen + a->dgn;
}

void dk_alerter_set_clock(struct dk_alerter *a, uint64_t (*now_ms)(void))
{
	a->now = now_ms ? now_ms : mono_ms;
}

void dk_alerter_observe(struct dk_alerter *a, const struct dk_alert_observer *o)
{
	if (o)
		a->obs = *o;
	else
		memset(&a->obs, 0, sizeof(a->obs));
}
