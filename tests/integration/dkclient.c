/* SPDX-License-Identifier: MIT */
/*
 * dkclient: the DNS client of the integration tests. It sends queries built
 * with ldns over UDP or TCP and prints the answer in a stable, line-oriented
 * text form that the Python harness parses (one "key value..." per line), so
 * that tests compare answers without depending on a dig-style layout. Three
 * modes: one query; N queries pipelined over one TCP connection, checked
 * here; and raw hex bytes for hostile packets.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <ldns/ldns.h>

/* Exit codes the harness relies on. */
#define EX_OK      0
#define EX_USAGE   2
#define EX_TIMEOUT 3
#define EX_IO      4
#define EX_BAD     5

struct opts {
	bool tcp;
	const char *bind_addr;
	int edns; /* EDNS UDP size; 0: no EDNS */
	bool do_bit;
	bool no_rd;
	int id; /* -1: random */
	int timeout_ms;
};

static void usage(void)
{
	fputs("usage: dkclient [-t] [-b SRC] [-e SIZE] [-D] [-R] [-i ID] [-w MS] MODE ...\n"
	      "  query    SERVER PORT NAME TYPE       one query, print the answer\n"
	      "  pipeline SERVER PORT N NAMEFMT TYPE  N queries on one TCP connection;\n"
	      "                                       NAMEFMT may hold %d (query index)\n"
	      "  raw      SERVER PORT HEX             send raw bytes, print the reply\n"
	      "  -t TCP (default UDP), -b bind source address, -e EDNS buffer size,\n"
	      "  -D set DO, -R clear RD, -i query ID, -w timeout in ms (default 2000)\n",
	      stderr);
}

static const char *rcode_name(unsigned rc)
{
	static const char *const names[] = {
	        "NOERROR",  "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP",  "REFUSED",
	        "YXDOMAIN", "YXRRSET", "NXRRSET",  "NOTAUTH",  "NOTZONE",
	};
	return rc < sizeof(names) / sizeof(names[0]) ? names[rc] : "RCODE?";
}

static int open_socket(const struct opts *o, const char *server, const char *port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	int p = atoi(port);
	if (p <= 0 || p > 65535)
		return -EINVAL;
	if (inet_pton(AF_INET, server, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)p);
		len = sizeof(*in4);
	} else if (inet_pton(AF_INET6, server, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)p);
		len = sizeof(*in6);
	} else {
		return -EINVAL;
	}

	int fd = socket(ss.ss_family, o->tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
	if (fd < 0)
		return -errno;
	struct timeval tv = {.tv_sec = o->timeout_ms / 1000,
	                     .tv_usec = (o->timeout_ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

	if (o->bind_addr) {
		struct sockaddr_storage bs;
		memset(&bs, 0, sizeof(bs));
		socklen_t blen;
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *b4 = (struct sockaddr_in *)&bs;
			b4->sin_family = AF_INET;
			blen = sizeof(*b4);
			if (inet_pton(AF_INET, o->bind_addr, &b4->sin_addr) != 1)
				goto fail_inval;
		} else {
			struct sockaddr_in6 *b6 = (struct sockaddr_in6 *)&bs;
			b6->sin6_family = AF_INET6;
			blen = sizeof(*b6);
			if (inet_pton(AF_INET6, o->bind_addr, &b6->sin6_addr) != 1)
				goto fail_inval;
		}
		if (bind(fd, (struct sockaddr *)&bs, blen) < 0)
			goto fail_errno;
	}
	if (connect(fd, (struct sockaddr *)&ss, len) < 0)
		goto fail_errno;
	return fd;

fail_inval:
	close(fd);
	return -EINVAL;
fail_errno : {
	int e = errno;
	close(fd);
	return -e;
}
}

static int write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Returns 0, or EX_TIMEOUT / EX_IO. */
static int read_all(int fd, uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = read(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return EX_TIMEOUT;
		if (n <= 0)
			return EX_IO;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_msg(int fd, bool tcp, const uint8_t *wire, size_t len)
{
	if (!tcp)
		return send(fd, wire, len, 0) == (ssize_t)len ? 0 : -1;
	uint8_t pfx[2] = {(uint8_t)(len >> 8), (uint8_t)len};
	if (write_all(fd, pfx, 2) < 0)
		return -1;
	return write_all(fd, wire, len);
}

/* Receives one message into @p buf; returns its length or -EX_* code. */
static ssize_t recv_msg(int fd, bool tcp, uint8_t *buf, size_t size)
{
	if (!tcp) {
		ssize_t n = recv(fd, buf, size, 0);
		if (n < 0)
			return (errno == EAGAIN || errno == EWOULDBLOCK) ? -EX_TIMEOUT : -EX_IO;
		return n;
	}
	uint8_t pfx[2];
	int rc = read_all(fd, pfx, 2);
	if (rc)
		return -rc;
	size_t len = ((size_t)pfx[0] << 8) | pfx[1];
	if (len > size)
		return -EX_IO;
	rc = read_all(fd, buf, len);
	if (rc)
		return -rc;
	return (ssize_t)len;
}

static void print_spaced(const char *prefix, char *s)
{
	/* ldns separates fields with tabs and ends with a newline: normalize. */
	for (char *p = s; *p; p++)
		if (*p == '\t')
			*p = ' ';
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = '\0';
	printf("%s %s\n", prefix, s);
}

static void print_section(const char *prefix, ldns_rr_list *l)
{
	for (size_t i = 0; l && i < ldns_rr_list_rr_count(l); i++) {
		char *s = ldns_rr2str(ldns_rr_list_rr(l, i));
		if (s) {
			print_spaced(prefix, s);
			free(s);
		}
	}
}

static void print_edns(const ldns_pkt *p)
{
	if (!ldns_pkt_edns(p)) {
		printf("edns none\n");
		return;
	}
	printf("edns udp %u version %u do %d\n", ldns_pkt_edns_udp_size(p),
	       ldns_pkt_edns_version(p), ldns_pkt_edns_do(p) ? 1 : 0);
	ldns_rdf *d = ldns_pkt_edns_data(p);
	if (!d)
		return;
	const uint8_t *b = ldns_rdf_data(d);
	size_t len = ldns_rdf_size(d);
	size_t off = 0;
	/* Walk the options by hand: code, length, data (RFC 6891 6.1.2). */
	while (off + 4 <= len) {
		unsigned code = ((unsigned)b[off] << 8) | b[off + 1];
		size_t olen = ((size_t)b[off + 2] << 8) | b[off + 3];
		off += 4;
		if (off + olen > len) {
			printf("opt malformed\n");
			return;
		}
		if (code == 15 && olen >= 2) {
			unsigned info = ((unsigned)b[off] << 8) | b[off + 1];
			printf("ede %u %.*s\n", info, (int)(olen - 2), (const char *)b + off + 2);
		} else {
			printf("opt %u len %zu\n", code, olen);
		}
		off += olen;
	}
}

static void print_pkt(const ldns_pkt *p, size_t wire_len)
{
	printf("id %u\n", ldns_pkt_id(p));
	printf("rcode %s\n", rcode_name(ldns_pkt_get_rcode(p)));
	printf("opcode %u\n", (unsigned)ldns_pkt_get_opcode(p));
	printf("flags%s%s%s%s%s%s%s\n", ldns_pkt_qr(p) ? " qr" : "", ldns_pkt_aa(p) ? " aa" : "",
	       ldns_pkt_tc(p) ? " tc" : "", ldns_pkt_rd(p) ? " rd" : "",
	       ldns_pkt_ra(p) ? " ra" : "", ldns_pkt_ad(p) ? " ad" : "",
	       ldns_pkt_cd(p) ? " cd" : "");
	printf("counts %u %u %u %u\n", ldns_pkt_qdcount(p), ldns_pkt_ancount(p),
	       ldns_pkt_nscount(p), ldns_pkt_arcount(p));
	printf("size %zu\n", wire_len);
	ldns_rr_list *q = ldns_pkt_question(p);
	for (size_t i = 0; q && i < ldns_rr_list_rr_count(q); i++) {
		ldns_rr *rr = ldns_rr_list_rr(q, i);
		char *owner = ldns_rdf2str(ldns_rr_owner(rr));
		char *type = ldns_rr_type2str(ldns_rr_get_type(rr));
		printf("qd %s %s\n", owner ? owner : "?", type ? type : "?");
		free(owner);
		free(type);
	}
	print_section("an", ldns_pkt_answer(p));
	print_section("ns", ldns_pkt_authority(p));
	print_section("ar", ldns_pkt_additional(p));
	print_edns(p);
}

static ldns_pkt *make_query(const struct opts *o, const char *name, ldns_rr_type type, uint16_t id)
{
	ldns_rdf *qname = ldns_dname_new_frm_str(name);
	if (!qname)
		return NULL;
	ldns_pkt *p = ldns_pkt_query_new(qname, type, LDNS_RR_CLASS_IN, o->no_rd ? 0 : LDNS_RD);
	if (!p)
		return NULL;
	ldns_pkt_set_id(p, id);
	if (o->edns > 0) {
		ldns_pkt_set_edns_udp_size(p, (uint16_t)o->edns);
		ldns_pkt_set_edns_do(p, o->do_bit);
	}
	return p;
}

static uint16_t pick_id(const struct opts *o)
{
	if (o->id >= 0)
		return (uint16_t)o->id;
	return (uint16_t)((unsigned)rand() & 0xffff);
}

/* The source address and port, for the harness to compare with alert records. */
static void print_local(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &in4->sin_addr, ip, sizeof(ip));
		port = ntohs(in4->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		port = ntohs(in6->sin6_port);
	}
	printf("local %s %u\n", ip, port);
}

static int mode_query(const struct opts *o, char **argv)
{
	ldns_rr_type type = ldns_get_rr_type_by_name(argv[3]);
	if (type == 0) {
		fprintf(stderr, "dkclient: unknown type %s\n", argv[3]);
		return EX_USAGE;
	}
	uint16_t id = pick_id(o);
	ldns_pkt *q = make_query(o, argv[2], type, id);
	if (!q) {
		fprintf(stderr, "dkclient: bad name %s\n", argv[2]);
		return EX_USAGE;
	}
	uint8_t *wire = NULL;
	size_t wlen = 0;
	if (ldns_pkt2wire(&wire, q, &wlen) != LDNS_STATUS_OK) {
		ldns_pkt_free(q);
		return EX_USAGE;
	}
	ldns_pkt_free(q);

	int rc = EX_IO;
	int fd = open_socket(o, argv[0], argv[1]);
	if (fd < 0) {
		fprintf(stderr, "dkclient: socket: %s\n", strerror(-fd));
		free(wire);
		return EX_IO;
	}
	print_local(fd);
	if (send_msg(fd, o->tcp, wire, wlen) < 0) {
		fprintf(stderr, "dkclient: send: %s\n", strerror(errno));
		goto out;
	}
	static uint8_t buf[65536];
	ssize_t n;
	/* UDP: skip datagrams that do not answer our ID (none expected). */
	for (int tries = 0; tries < 8; tries++) {
		n = recv_msg(fd, o->tcp, buf, sizeof(buf));
		if (n < 0) {
			rc = (int)-n;
			if (rc == EX_TIMEOUT)
				printf("timeout\n");
			else
				printf("ioerror\n");
			goto out;
		}
		if (n >= 2 && (((unsigned)buf[0] << 8) | buf[1]) == id)
			break;
		printf("stray %zd\n", n);
	}
	ldns_pkt *a = NULL;
	ldns_status st = ldns_wire2pkt(&a, buf, (size_t)n);
	if (st != LDNS_STATUS_OK) {
		printf("unparsable %s\n", ldns_get_errorstr_by_id(st));
		rc = EX_BAD;
		goto out;
	}
	print_pkt(a, (size_t)n);
	ldns_pkt_free(a);
	rc = EX_OK;
out:
	free(wire);
	close(fd);
	return rc;
}

static int mode_pipeline(struct opts *o, char **argv)
{
	int n = atoi(argv[2]);
	const char *fmt = argv[3];
	ldns_rr_type type = ldns_get_rr_type_by_name(argv[4]);
	if (n <= 0 || n > 1000 || type == 0) {
		usage();
		return EX_USAGE;
	}
	o->tcp = true;
	int fd = open_socket(o, argv[0], argv[1]);
	if (fd < 0) {
		fprintf(stderr, "dkclient: socket: %s\n", strerror(-fd));
		return EX_IO;
	}
	/* All queries go out in one write, so the server sees them pipelined. */
	size_t cap = (size_t)n * 300, len = 0;
	uint8_t *out = malloc(cap);
	char(*names)[256] = calloc((size_t)n, sizeof(*names));
	bool *seen = calloc((size_t)n, sizeof(bool));
	int rc = EX_IO;
	if (!out || !names || !seen)
		goto done;
	uint16_t base = pick_id(o);
	for (int i = 0; i < n; i++) {
		if (strstr(fmt, "%d")) {
			/* The format comes from the harness, which we trust. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
			snprintf(names[i], sizeof(names[i]), fmt, i);
#pragma GCC diagnostic pop
		} else {
			snprintf(names[i], sizeof(names[i]), "%s", fmt);
		}
		ldns_pkt *q = make_query(o, names[i], type, (uint16_t)(base + i));
		uint8_t *w = NULL;
		size_t wl = 0;
		if (!q || ldns_pkt2wire(&w, q, &wl) != LDNS_STATUS_OK || len + wl + 2 > cap) {
			ldns_pkt_free(q);
			free(w);
			rc = EX_USAGE;
			goto done;
		}
		ldns_pkt_free(q);
		out[len++] = (uint8_t)(wl >> 8);
		out[len++] = (uint8_t)wl;
		memcpy(out + len, w, wl);
		len += wl;
		free(w);
	}
	if (write_all(fd, out, len) < 0)
		goto done;

	static uint8_t buf[65536];
	int ok = 0, bad = 0;
	for (int got = 0; got < n; got++) {
		ssize_t m = recv_msg(fd, true, buf, sizeof(buf));
		if (m < 0) {
			printf("%s after %d answers\n", m == -EX_TIMEOUT ? "timeout" : "ioerror",
			       got);
			break;
		}
		ldns_pkt *a = NULL;
		if (ldns_wire2pkt(&a, buf, (size_t)m) != LDNS_STATUS_OK) {
			printf("unparsable answer %d\n", got);
			bad++;
			continue;
		}
		int i = (uint16_t)(ldns_pkt_id(a) - base);
		char *qn = NULL;
		ldns_rr_list *ql = ldns_pkt_question(a);
		if (ql && ldns_rr_list_rr_count(ql) == 1)
			qn = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ql, 0)));
		if (i < 0 || i >= n || seen[i] || !qn ||
		    strncasecmp(qn, names[i], strlen(names[i])) != 0) {
			printf("mismatch id %u question %s\n", ldns_pkt_id(a), qn ? qn : "-");
			bad++;
		} else {
			seen[i] = true;
			ok++;
			/* One line per answer: index, rcode, first answer's rdata. */
			ldns_rr_list *an = ldns_pkt_answer(a);
			char *rd = NULL;
			if (an && ldns_rr_list_rr_count(an) > 0)
				rd = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(an, 0), 0));
			printf("answer %d %s %s %s\n", i, names[i],
			       rcode_name(ldns_pkt_get_rcode(a)), rd ? rd : "-");
			free(rd);
		}
		free(qn);
		ldns_pkt_free(a);
	}
	printf("pipeline ok %d bad %d of %d\n", ok, bad, n);
	rc = (ok == n && bad == 0) ? EX_OK : EX_BAD;
done:
	free(out);
	free(names);
	free(seen);
	close(fd);
	return rc;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int mode_raw(const struct opts *o, char **argv)
{
	const char *hex = argv[2];
	static uint8_t msg[65536];
	size_t len = 0;
	for (const char *p = hex; *p;) {
		if (*p == ' ' || *p == ':') {
			p++;
			continue;
		}
		int hi = hexval(p[0]), lo = p[1] ? hexval(p[1]) : -1;
		if (hi < 0 || lo < 0 || len >= sizeof(msg)) {
			fprintf(stderr, "dkclient: bad hex\n");
			return EX_USAGE;
		}
		msg[len++] = (uint8_t)(hi << 4 | lo);
		p += 2;
	}
	int fd = open_socket(o, argv[0], argv[1]);
	if (fd < 0) {
		fprintf(stderr, "dkclient: socket: %s\n", strerror(-fd));
		return EX_IO;
	}
	int rc = EX_IO;
	if (send_msg(fd, o->tcp, msg, len) < 0)
		goto out;
	static uint8_t buf[65536];
	ssize_t n = recv_msg(fd, o->tcp, buf, sizeof(buf));
	if (n < 0) {
		/* No reply is a valid outcome for hostile input: report it. */
		printf(n == -EX_TIMEOUT ? "noreply timeout\n" : "noreply closed\n");
		rc = EX_OK;
		goto out;
	}
	printf("reply %zd ", n);
	for (ssize_t i = 0; i < n; i++)
		printf("%02x", buf[i]);
	printf("\n");
	if (n >= 12) {
		printf("id %u\n", ((unsigned)buf[0] << 8) | buf[1]);
		printf("rcode %s\n", rcode_name(buf[3] & 0x0f));
		printf("opcode %u\n", (buf[2] >> 3) & 0x0f);
		printf("flags%s%s%s%s\n", buf[2] & 0x80 ? " qr" : "", buf[2] & 0x02 ? " tc" : "",
		       buf[2] & 0x01 ? " rd" : "", buf[3] & 0x80 ? " ra" : "");
		printf("counts %u %u %u %u\n", ((unsigned)buf[4] << 8) | buf[5],
		       ((unsigned)buf[6] << 8) | buf[7], ((unsigned)buf[8] << 8) | buf[9],
		       ((unsigned)buf[10] << 8) | buf[11]);
	}
	rc = EX_OK;
out:
	close(fd);
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o = {.id = -1, .timeout_ms = 2000};
	int c;
	while ((c = getopt(argc, argv, "+tb:e:DRi:w:")) != -1) {
		switch (c) {
		case 't': o.tcp = true; break;
		case 'b': o.bind_addr = optarg; break;
		case 'e': o.edns = atoi(optarg); break;
		case 'D': o.do_bit = true; break;
		case 'R': o.no_rd = true; break;
		case 'i': o.id = atoi(optarg); break;
		case 'w': o.timeout_ms = atoi(optarg); break;
		default: usage(); return EX_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	srand((unsigned)(ts.tv_nsec ^ getpid()));
	if (o.timeout_ms <= 0 || o.edns < 0 || o.edns > 65535) {
		usage();
		return EX_USAGE;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (argc == 5 && strcmp(argv[0], "query") == 0)
		return mode_query(&o, argv + 1);
	if (argc == 6 && strcmp(argv[0], "pipeline") == 0)
		return mode_pipeline(&o, argv + 1);
	if (argc == 4 && strcmp(argv[0], "raw") == 0)
		return mode_raw(&o, argv + 1);
	usage();
	return EX_USAGE;
}
