/* SPDX-License-Identifier: MIT */
/*
 * The control socket (see control.h). Requests are rare and come from the
 * operator, so answers are built in a heap buffer per request: this is not
 * the query path. Nothing here writes what a worker owns: counters are read
 * as the metrics endpoint reads them, and a cache flush is a job each worker
 * takes from its mailbox and does on its own loop, which a timer here polls
 * for completion.
 */
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "dk_build.h"
#include "dnsink/idna.h"
#include "dnsink/name.h"
#include "dnsink/policy.h"
#include "dnsink/request.h"
#include "snapshot.h"
#include "textbuf.h"
#include "worker.h"

/** Group given the socket when it exists: its members may use `dnsink ctl`. */
#define CONTROL_GROUP "dnsink"
/** How often a flush in progress is looked at. */
#define FLUSH_POLL_MS 5
/** Rows of `top` at most. */
#define TOP_MAX 50

struct conn {
	uv_pipe_t h;
	uv_timer_t timer;
	uv_write_t wr;
	struct dk_control *ctl;
	struct conn *prev, *next;
	int handles; /* initialized handles not yet closed */
	bool closing;
	bool answered;
	char *out;
	size_t len;
	char req[DK_CONTROL_REQ_MAX];
};

struct dk_control {
	uv_pipe_t listener;
	bool listener_init;
	uv_timer_t flush_timer;
	bool flush_timer_init;
	struct dk_control_env env;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	bool bound; /* the socket file is ours to remove */
	struct conn *conns;
	unsigned n_conns;
	bool closed;
	/* One flush at a time; the connection that waits for it (NULL: gone). */
	struct dk_flush_job job;
	bool job_busy;
	unsigned job_workers;
	struct conn *job_conn;
};

/* Connections. */

static void conn_closed(uv_handle_t *h)
{
	struct conn *c = h->data;

	if (--c->handles > 0)
		return;
	struct dk_control *ctl = c->ctl;
	if (c->prev)
		c->prev->next = c->next;
	else
		ctl->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	ctl->n_conns--;
	free(c->out);
	free(c);
}

static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (c->ctl->job_conn == c)
		c->ctl->job_conn = NULL;
	uv_close((uv_handle_t *)&c->h, conn_closed);
	uv_close((uv_handle_t *)&c->timer, conn_closed);
}

static void conn_timeout(uv_timer_t *t)
{
	conn_close(t->data);
}

static void conn_written(uv_write_t *wr, int status)
{
	(void)status;
	conn_close(wr->data);
}

/* Sends @p t (taken over) as the answer and closes the connection after it. */
static void conn_send(struct conn *c, struct dk_text *t)
{
	if (t->oom || !t->p) {
		free(t->p);
		conn_close(c);
		return;
	}
	c->out = t->p;
	c->len = t->len;
	uv_buf_t b = uv_buf_init(c->out, (unsigned)c->len);
	c->wr.data = c;
	if (uv_write(&c->wr, (uv_stream_t *)&c->h, &b, 1, conn_written) < 0)
		conn_close(c);
}

static void __attribute__((format(printf, 2, 3))) conn_error(struct conn *c, const char *fmt, ...)
{
	struct dk_text t = {0};
	char msg[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	dk_text_add(&t, "error: %s\n", msg);
	conn_send(c, &t);
}

/* Commands. */

static void fmt_time(double unix_s, char *buf, size_t size)
{
	time_t s = (time_t)unix_s;
	struct tm tm;

	if (unix_s <= 0 || !gmtime_r(&s, &tm)) {
		snprintf(buf, size, "never");
		return;
	}
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void cmd_status(struct conn *c)
{
	const struct dk_control_env *env = &c->ctl->env;
	const struct dk_metrics_src *src = env->src;
	const struct dk_snapshot *snap = src->snap;
	const struct dk_policy *pol = snap ? snap->pol : NULL;
	struct dk_counters sum;
	struct dk_text t = {0};
	char when[32];

	memset(&sum, 0, sizeof(sum));
	for (unsigned i = 0; i < src->n_workers; i++)
		dk_counters_add(&sum, dk_worker_counters(src->workers[i]));
	fmt_time(src->reload_time, when, sizeof(when));
	dk_text_add(&t, "ok\n");
	dk_text_add(&t, "version %s\n", DK_VERSION);
	dk_text_add(&t, "pid %ld\n", (long)getpid());
	if (env->act)
		dk_text_add(&t, "uptime %.0f s\n", dk_activity_uptime(env->act));
	dk_text_add(&t, "config %s\n", env->config_path);
	dk_text_add(&t, "rules %zu, entries %zu, names %zu\n", pol ? pol->n_rules : 0,
	            pol ? pol->n_entries : 0, pol ? pol->n_names : 0);
	dk_text_add(&t, "last load %s %s\n", when,
	            src->reload_ok ? "ok" : "FAILED (old set in force)");
	dk_text_add(&t, "workers %u\n", src->n_workers);
	dk_text_add(&t, "cache entries %" PRIu64 "\n", dk_ctr_get(&sum.cache.entries));
	for (size_t i = 0; snap && i < snap->cfg->n_upstreams; i++) {
		struct dk_up_stats u;
		char addr[64];

		if (dk_metrics_upstream(src, i, &u) < 0)
			continue;
		dk_addr_format(&snap->cfg->upstreams[i], addr, sizeof(addr));
		uint64_t down = dk_ctr_get(&u.down);
		dk_text_add(&t, "upstream %s %s", addr, down ? "down" : "up");
		if (down)
			dk_text_add(&t, " (in %" PRIu64 " of %u workers)", down, src->n_workers);
		if (dk_ctr_get(&u.srtt_us))
			dk_text_add(&t, " srtt %.1f ms", (double)dk_ctr_get(&u.srtt_us) / 1000.0);
		dk_text_add(&t, " queries %" PRIu64 " answers %" PRIu64 " timeouts %" PRIu64 "\n",
		            dk_ctr_get(&u.tries), dk_ctr_get(&u.answers), dk_ctr_get(&u.timeouts));
	}
	conn_send(c, &t);
}

/* The metrics exposition without its comment lines: "name{labels} value". */
static void cmd_stats(struct conn *c)
{
	struct dk_text t = {0};
	size_t len = 0;
	char *m = dk_metrics_render(c->ctl->env.src, &len);

	if (!m) {
		conn_error(c, "out of memory");
		return;
	}
	dk_text_add(&t, "ok\n");
	for (char *p = m, *end = m + len; p < end;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (n && *p != '#')
			dk_text_add(&t, "%.*s\n", (int)n, p);
		p += n + 1;
	}
	free(m);
	conn_send(c, &t);
}

static void cmd_reload(struct conn *c)
{
	const struct dk_control_env *env = &c->ctl->env;
	char msg[1200] = "";
	int rc = env->reload(env->ctx, msg, sizeof(msg));
	struct dk_text t = {0};

	if (rc < 0) {
		conn_error(c, "%s", msg[0] ? msg : dk_strerror(rc));
		return;
	}
	dk_text_add(&t, "ok\n%s\n", msg);
	conn_send(c, &t);
}

static void flush_poll(uv_timer_t *tm)
{
	struct dk_control *ctl = tm->data;

	if (atomic_load_explicit(&ctl->job.left, memory_order_acquire) != 0)
		return;
	uv_timer_stop(tm);
	ctl->job_busy = false;
	if (ctl->job_conn) {
		struct conn *c = ctl->job_conn;
		struct dk_text t = {0};
		ctl->job_conn = NULL;
		dk_text_add(&t, "ok\nremoved %zu cached answers (%u workers)\n",
		            atomic_load(&ctl->job.removed), ctl->job_workers);
		conn_send(c, &t);
	}
}

static void cmd_flush(struct conn *c, const char *name)
{
	struct dk_control *ctl = c->ctl;
	const struct dk_metrics_src *src = ctl->env.src;

	if (ctl->job_busy) {
		conn_error(c, "busy: another flush is under way; try again");
		return;
	}
	ctl->job.name_len = 0;
	if (name) {
		int rc =
		        dk_name_from_text(name, strlen(name), 0, ctl->job.name, &ctl->job.name_len);
		if (rc < 0) {
			conn_error(c, "invalid name '%s': %s", name, dk_strerror(rc));
			return;
		}
	}
	atomic_store(&ctl->job.removed, 0);
	atomic_store(&ctl->job.left, src->n_workers);
	ctl->job_busy = true;
	ctl->job_workers = src->n_workers;
	ctl->job_conn = c;
	for (unsigned i = 0; i < src->n_workers; i++)
		dk_worker_flush(ctl->env.workers[i], &ctl->job);
	uv_timer_start(&ctl->flush_timer, flush_poll, 0, FLUSH_POLL_MS);
}

static void top_section(struct dk_text *t, const struct dk_activity *act, enum dk_top_dim dim,
                        const char *title, size_t n)
{
	struct dk_top_item *items = calloc(n, sizeof(*items));
	int k = items ? dk_activity_top(act, dim, DK_TOP_MINUTES, items, n) : -ENOMEM;

	dk_text_add(t, "%s:\n", title);
	if (k < 0)
		t->oom = true;
	for (int i = 0; i < k; i++)
		dk_text_add(t, "  %8" PRIu64 "  %s\n", items[i].count, items[i].key);
	free(items);
}

static void cmd_top(struct conn *c, const char *arg)
{
	const struct dk_activity *act = c->ctl->env.act;
	struct dk_text t = {0};
	unsigned long n = 10;

	if (arg) {
		char *end;
		n = strtoul(arg, &end, 10);
		if (*end || n < 1 || n > TOP_MAX) {
			conn_error(c, "top takes a count from 1 to %d", TOP_MAX);
			return;
		}
	}
	if (!act) {
		conn_error(c, "no activity table");
		return;
	}
	dk_text_add(&t, "ok\n");
	dk_text_add(&t, "rule matches in the last %d minutes: %" PRIu64 "\n", DK_TOP_MINUTES,
	            dk_activity_events(act, DK_TOP_MINUTES));
	top_section(&t, act, DK_TOP_CLIENT, "clients", n);
	top_section(&t, act, DK_TOP_NAME, "names", n);
	top_section(&t, act, DK_TOP_RULE, "rules", n);
	conn_send(c, &t);
}

/*
 * `ctl match NAME`: the running policy's verdict for a client in no group
 * (the offline `dnsink match` also runs Sigma rules and takes --client). A
 * Unicode name stands for its A-label, as in the rules.
 */
static void cmd_match(struct conn *c, const char *name)
{
	const struct dk_snapshot *snap = c->ctl->env.src->snap;
	uint8_t wire[DK_NAME_MAX];
	char text[DK_NAME_MAX * 4 + 1], entry[DK_NAME_MAX * 4 + 3];
	struct dk_verdict v;
	struct dk_text t = {0};
	size_t len;
	int rc = dk_idna_name_from_text(name, strlen(name), 0, wire, &len);

	if (rc < 0) {
		conn_error(c, "invalid name '%s': %s", name, dk_strerror(rc));
		return;
	}
	dk_name_to_text(wire, len, text, sizeof(text));
	dk_text_add(&t, "ok\n");
	if (!snap || !snap->pol || !dk_policy_match(snap->pol, wire, len, &v)) {
		dk_text_add(&t, "%s: no match\n", text);
	} else {
		if (dk_verdict_entry_text(&v, wire, len, entry, sizeof(entry)) < 0)
			snprintf(entry, sizeof(entry), "?");
		dk_text_add(&t, "%s: rule %s action %s matched %s (severity %s)\n", text,
		            v.rule->id, dk_action_name((enum dk_action)v.action), entry,
		            dk_severity_name(v.rule->severity));
	}
	conn_send(c, &t);
}

/* Parses the request line (NUL-terminated at @p len) and runs it. */
static void conn_request(struct conn *c, char *line, size_t len)
{
	struct dk_ctl_req r;
	const char *why;

	c->answered = true;
	uv_read_stop((uv_stream_t *)&c->h);
	if (dk_ctl_parse(line, len, &r, &why) < 0) {
		conn_error(c, "%s", why);
		return;
	}
	switch (r.cmd) {
	case DK_CTL_STATUS: cmd_status(c); break;
	case DK_CTL_STATS: cmd_stats(c); break;
	case DK_CTL_RELOAD: cmd_reload(c); break;
	case DK_CTL_FLUSH: cmd_flush(c, r.arg); break;
	case DK_CTL_FLUSH_ALL: cmd_flush(c, NULL); break;
	case DK_CTL_TOP: cmd_top(c, r.arg); break;
	case DK_CTL_MATCH: cmd_match(c, r.arg); break;
	}
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;

	(void)suggested;
	*buf = uv_buf_init(c->req + c->len, (unsigned)(DK_CONTROL_REQ_MAX - c->len));
}

static void conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;

	(void)buf;
	if (c->answered || nread == 0)
		return;
	if (nread < 0) {
		conn_close(c);
		return;
	}
	size_t old = c->len;
	c->len += (size_t)nread;
	char *nl = memchr(c->req + old, '\n', c->len - old);
	if (nl) {
		*nl = '\0';
		conn_request(c, c->req, (size_t)(nl - c->req));
	} else if (c->len >= DK_CONTROL_REQ_MAX) {
		c->answered = true;
		uv_read_stop(s);
		conn_error(c, "request longer than %d octets", DK_CONTROL_REQ_MAX);
	}
}

static void on_connection(uv_stream_t *server, int status)
{
	struct dk_control *ctl = server->data;

	if (status < 0 || ctl->closed)
		return;
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->ctl = ctl;
	uv_pipe_init(server->loop, &c->h, 0);
	uv_timer_init(server->loop, &c->timer);
	c->h.data = c->timer.data = c;
	c->handles = 2;
	c->next = ctl->conns;
	if (ctl->conns)
		ctl->conns->prev = c;
	ctl->conns = c;
	ctl->n_conns++;
	if (uv_accept(server, (uv_stream_t *)&c->h) < 0 || ctl->n_conns > DK_CONTROL_CONN_MAX) {
		conn_close(c);
		return;
	}
	uv_timer_start(&c->timer, conn_timeout, DK_CONTROL_TIMEOUT_MS, 0);
	if (uv_read_start((uv_stream_t *)&c->h, conn_alloc, conn_read) < 0)
		conn_close(c);
}

/* True when a daemon answers on the socket file @p path. */
static bool socket_alive(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool alive;

	if (fd < 0)
		return false;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	alive = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	close(fd);
	return alive;
}

int dk_control_new(uv_loop_t *loop, const char *path, const struct dk_control_env *env,
                   struct dk_control **out, const char **why)
{
	struct dk_control *ctl = calloc(1, sizeof(*ctl));
	struct stat st;
	int rc;

	*out = ctl;
	*why = "";
	if (!ctl)
		return -ENOMEM;
	ctl->env = *env;
	atomic_init(&ctl->job.left, 0);
	atomic_init(&ctl->job.removed, 0);
	uv_timer_init(loop, &ctl->flush_timer);
	ctl->flush_timer.data = ctl;
	ctl->flush_timer_init = true;
	if (!*path || strlen(path) >= sizeof(ctl->path)) {
		*why = "path empty or longer than a unix socket address takes";
		return -ENAMETOOLONG;
	}
	snprintf(ctl->path, sizeof(ctl->path), "%s", path);
	/* A socket file whose daemon is gone is replaced; anything else is kept. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			*why = "exists and is not a socket";
			return -EEXIST;
		}
		if (socket_alive(path)) {
			*why = "another daemon answers on it";
			return -EADDRINUSE;
		}
		unlink(path);
	}
	rc = uv_pipe_init(loop, &ctl->listener, 0);
	if (rc < 0)
		return rc;
	ctl->listener_init = true;
	ctl->listener.data = ctl;
	/* Made with no access for others from the start, then opened to the group. */
	mode_t old = umask(0117);
	rc = uv_pipe_bind(&ctl->listener, path);
	umask(old);
	if (rc < 0) {
		*why = uv_strerror(rc);
		return rc;
	}
	ctl->bound = true;
	struct group gr, *res = NULL;
	char buf[4096];
	if (getgrnam_r(CONTROL_GROUP, &gr, buf, sizeof(buf), &res) == 0 && res &&
	    chown(path, (uid_t)-1, res->gr_gid) < 0) {
		*why = "cannot give the socket to group " CONTROL_GROUP;
		return -errno;
	}
	if (chmod(path, 0660) < 0) {
		*why = "cannot set mode 0660";
		return -errno;
	}
	rc = uv_listen((uv_stream_t *)&ctl->listener, 16, on_connection);
	if (rc < 0)
		*why = uv_strerror(rc);
	return rc;
}

void dk_control_close(struct dk_control *c)
{
	if (!c || c->closed)
		return;
	c->closed = true;
	if (c->listener_init)
		uv_close((uv_handle_t *)&c->listener, NULL);
	if (c->flush_timer_init)
		uv_close((uv_handle_t *)&c->flush_timer, NULL);
	if (c->bound)
		unlink(c->path);
	for (struct conn *k = c->conns; k; k = k->next)
		conn_close(k);
}

void dk_control_free(struct dk_control *c)
{
	free(c);
}
