/* SPDX-License-Identifier: MIT */
/*
 * `dnsink ctl`: one request to the running daemon over its control socket
 * (control.socket of the config), its answer printed. The protocol is one
 * line each way and then the text of the answer (src/daemon/control.h).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dnsink/common.h"
#include "dnsink/config.h"

#include "cli.h"

/** Longest request line the daemon takes (DK_CONTROL_REQ_MAX), the newline included. */
#define REQ_MAX 1024
/** Longest answer read. */
#define ANSWER_MAX (4 << 20)
/** How long the daemon may take to answer (a reload reads every rule file). */
#define ANSWER_TIMEOUT_MS 30000

/* Reads until EOF into a new buffer; NULL on a failure, said on stderr. */
static char *read_answer(int fd, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	int64_t deadline = (int64_t)(dk_mono_ns() / 1000000) + ANSWER_TIMEOUT_MS;

	while (buf) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int64_t left = deadline - (int64_t)(dk_mono_ns() / 1000000);
		if (left <= 0) {
			fprintf(stderr, "dnsink ctl: no answer within %d s\n",
			        ANSWER_TIMEOUT_MS / 1000);
			break;
		}
		int rc = poll(&p, 1, (int)left);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			continue;
		if (n == cap) {
			if (cap >= ANSWER_MAX) {
				fprintf(stderr, "dnsink ctl: answer longer than %d octets\n",
				        ANSWER_MAX);
				break;
			}
			char *nb = realloc(buf, cap * 2 + 1);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "dnsink ctl: read: %s\n", strerror(errno));
			break;
		}
		if (r == 0) {
			buf[n] = '\0';
			*len = n;
			return buf;
		}
		n += (size_t)r;
	}
	free(buf);
	return NULL;
}

int dk_cli_ctl(const char *config_path, char *const *args, int n)
{
	struct dk_config *cfg = NULL;
	struct dk_diag diag = {0};
	char line[REQ_MAX + 1], msg[1100];
	size_t off = 0;
	int status = 2;

	for (int i = 0; i < n; i++) {
		int w = snprintf(line + off, sizeof(line) - off, "%s%s", i ? " " : "", args[i]);
		if (w < 0 || (size_t)w >= sizeof(line) - off - 1) {
			fprintf(stderr, "dnsink ctl: request longer than %d octets\n", REQ_MAX);
			return 2;
		}
		off += (size_t)w;
	}
	line[off++] = '\n';
	if (dk_config_load(config_path, NULL, &cfg, &diag) < 0) {
		dk_diag_format(&diag, msg, sizeof(msg));
		fprintf(stderr, "%s\n", msg);
		return 2;
	}
	if (!cfg->control_socket) {
		fprintf(stderr,
		        "dnsink ctl: %s has no control socket (set \"control: socket: PATH\" and "
		        "restart the daemon)\n",
		        config_path);
		dk_config_free(cfg);
		return 2;
	}
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", cfg->control_socket);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "dnsink ctl: cannot reach the daemon on %s: %s\n",
		        cfg->control_socket, strerror(errno));
		goto out;
	}
	if (write(fd, line, off) != (ssize_t)off) {
		fprintf(stderr, "dnsink ctl: write: %s\n", strerror(errno));
		goto out;
	}
	size_t len = 0;
	char *ans = read_answer(fd, &len);
	if (!ans)
		goto out;
	if (len >= 3 && memcmp(ans, "ok\n", 3) == 0) {
		fwrite(ans + 3, 1, len - 3, stdout);
		status = 0;
	} else if (len >= 7 && memcmp(ans, "error: ", 7) == 0) {
		fprintf(stderr, "dnsink ctl: %s", ans + 7);
		status = 1;
	} else {
		fprintf(stderr, "dnsink ctl: the daemon closed the connection without an answer\n");
	}
	free(ans);
out:
	if (fd >= 0)
		close(fd);
	dk_config_free(cfg);
	return status;
}
