/* SPDX-License-Identifier: MIT */
/*
 * The configuration loader: conf/dnsink.yml read with libyaml's document API
 * into struct dk_config. Every key the file may hold is listed once, in the
 * schema tables below (name, handler, field, range or sub-table), in the
 * spirit of Knot DNS's schema.c; the walker checks types, duplicates and
 * unknown keys and reports each error as FILE:LINE: message. Defaults (the
 * DK_DEFAULT_* of config.h) are set before the walk and replaced by what the
 * file says. Also here: socket
 * address and CIDR parsing, the client access list and the resolv.conf
 * fallback for upstreams.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#include <yaml.h>

#include "dnsink/config.h"
#include "dnsink/upstream_spec.h"
#include "dnsink/policy.h"

#include "group_conf.h"
#include "yaml_helpers.h"

/* More nameservers than any resolver uses (glibc reads 3); bounds the loop. */
#define RESOLV_MAX 16
/* Longest item list accepted for any key; bounds memory for hostile input. */
#define LIST_MAX 4096

/* ------------------------------------------------------------------ */
/* Addresses                                                          */
/* ------------------------------------------------------------------ */

/* Reads an interface name or number after '%'; returns 0 when unknown. */
static uint32_t scope_parse(const char *s)
{
	if (!*s)
		return 0;
	if (strspn(s, "0123456789") == strlen(s)) {
		if (strlen(s) > 10)
			return 0;
		unsigned long v = strtoul(s, NULL, 10);
		return v > UINT32_MAX ? 0 : (uint32_t)v;
	}
	return if_nametoindex(s);
}

/*
 * Parses the IP literal in the first @p n characters of @p s (no port, no
 * brackets) into @p out with port 0. A "%scope" suffix is accepted on IPv6
 * when @p allow_scope. On failure *why says what is wrong.
 */
static int ip_parse(const char *s, size_t n, bool allow_scope, struct dk_addr *out,
                    const char **why)
{
	char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];

	memset(out, 0, sizeof(*out));
	*why = "not an IP address";
	if (n == 0 || n >= sizeof(buf))
		return DK_ESYNTAX;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, &out->in4.sin_addr) == 1) {
		out->in4.sin_family = AF_INET;
		out->len = sizeof(out->in4);
		return 0;
	}
	uint32_t scope = 0;
	char *pct = strchr(buf, '%');
	if (pct) {
		if (!allow_scope) {
			*why = "a scope (%interface) is not allowed here";
			return DK_ESYNTAX;
		}
		*pct = '\0';
		scope = scope_parse(pct + 1);
		if (!scope) {
			*why = "unknown interface after '%'";
			return DK_ESYNTAX;
		}
	}
	if (inet_pton(AF_INET6, buf, &out->in6.sin6_addr) != 1)
		return DK_ESYNTAX;
	out->in6.sin6_family = AF_INET6;
	out->in6.sin6_scope_id = scope;
	out->len = sizeof(out->in6);
	return 0;
}

static int port_parse(const char *s, uint16_t *port, const char **why)
{
	size_t n = strspn(s, "0123456789");

	*why = "bad port (1..65535)";
	if (n == 0 || n != strlen(s) || n > 5)
		return DK_ESYNTAX;
	unsigned long v = strtoul(s, NULL, 10);
	if (v == 0 || v > 65535)
		return DK_ESYNTAX;
	*port = (uint16_t)v;
	return 0;
}

static void addr_set_port(struct dk_addr *a, uint16_t port)
{
	if (a->sa.sa_family == AF_INET)
		a->in4.sin_port = htons(port);
	else
		a->in6.sin6_port = htons(port);
}

static uint16_t addr_port(const struct dk_addr *a)
{
	return ntohs(a->sa.sa_family == AF_INET ? a->in4.sin_port : a->in6.sin6_port);
}

/* dk_addr_parse() with the reason for a refusal, for the config's messages. */
static int addr_parse(const char *s, uint16_t default_port, struct dk_addr *out, const char **why)
{
	const char *ip = s, *port = NULL;
	size_t ip_len;
	int ret;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close) {
			*why = "missing ']'";
			return DK_ESYNTAX;
		}
		ip = s + 1;
		ip_len = (size_t)(close - ip);
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0') {
			*why = "junk after ']'";
			return DK_ESYNTAX;
		}
		ret = ip_parse(ip, ip_len, true, out, why);
		if (ret == 0 && out->sa.sa_family != AF_INET6) {
			*why = "brackets hold an IPv6 address only";
			return DK_ESYNTAX;
		}
	} else {
		const char *colon = strchr(s, ':');
		/* One colon separates an IPv4 address from its port; more make IPv6. */
		if (colon && !strchr(colon + 1, ':')) {
			ip_len = (size_t)(colon - s);
			port = colon + 1;
		} else {
			ip_len = strlen(s);
		}
		ret = ip_parse(ip, ip_len, true, out, why);
		if (ret == 0 && port && out->sa.sa_family != AF_INET) {
			*why = "not an IP address";
			return DK_ESYNTAX;
		}
	}
	if (ret)
		return ret;
	uint16_t p = default_port;
	if (port && port_parse(port, &p, why))
		return DK_ESYNTAX;
	addr_set_port(out, p);
	return 0;
}

int dk_addr_parse(const char *s, uint16_t default_port, struct dk_addr *out)
{
	const char *why;

	if (!s || !out)
		return DK_ESYNTAX;
	return addr_parse(s, default_port, out, &why);
}

/* A host name for certificate checks: letters, digits, '-', '_' and dots, no empty label. */
static bool name_ok(const char *s)
{
	size_t n = strlen(s), label = 0;

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			return false;
		if (++label > 63)
			return false;
	}
	return true;
}

/* A DoH path: '/' then URL path characters (RFC 3986 pchar and '/'), no query, no '#'. */
static bool path_ok(const char *p, size_t n)
{
	if (n == 0 || n >= DK_UP_PATH_MAX || p[0] != '/')
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] <= ' ' || p[i] >= 127 || strchr("?#\\\"<>{}|^`", p[i]))
			return false;
	return true;
}

int dk_upstream_spec_parse(const char *s, uint16_t default_port, bool pin_given,
                           struct dk_addr *addr, struct dk_up_opts *opts, const char **why)
{
	char host[128];
	const char *hash, *scheme = s, *slash = NULL;
	uint16_t port = DK_DEFAULT_DOT_PORT;
	size_t n;

	memset(opts, 0, sizeof(*opts));
	*why = "not an address (IP, IP:PORT, [IPv6]:PORT, tls://IP[:PORT]#NAME or "
	       "https://IP[:PORT]/PATH#NAME)";
	if (strncmp(s, "https://", 8) == 0) {
		opts->proto = DK_UP_HTTPS;
		port = DK_DEFAULT_DOH_PORT;
		s += 8;
	} else if (strncmp(s, "tls://", 6) == 0) {
		opts->proto = DK_UP_TLS;
		s += 6;
	} else if (strstr(s, "://")) {
		*why = "unknown scheme (expected tls://, https:// or a plain address)";
		return DK_ESYNTAX;
	} else {
		return addr_parse(s, default_port, addr, why);
	}
	hash = strchr(s, '#');
	n = hash ? (size_t)(hash - s) : strlen(s);
	if (opts->proto == DK_UP_HTTPS) {
		slash = memchr(s, '/', n);
		if (!slash) {
			*why = "https:// needs a path (https://IP[:PORT]/dns-query#NAME)";
			return DK_ESYNTAX;
		}
		if (!path_ok(slash, n - (size_t)(slash - s))) {
			*why = "bad path after the address";
			return DK_ESYNTAX;
		}
		memcpy(opts->path, slash, n - (size_t)(slash - s));
		n = (size_t)(slash - s);
	}
	if (n == 0 || n >= sizeof(host))
		return DK_ESYNTAX;
	memcpy(host, s, n);
	host[n] = '\0';
	if (addr_parse(host, port, addr, why) != 0) {
		if (!strpbrk(host, ":[]") && !inet_pton(AF_INET, host, &addr->in4.sin_addr))
			*why = opts->proto == DK_UP_HTTPS
			               ? "https:// takes an IP address (the name goes after '#')"
			               : "tls:// takes an IP address (the name goes after '#')";
		return DK_ESYNTAX;
	}
	if (hash) {
		if (!name_ok(hash + 1)) {
			*why = "bad name after '#'";
			return DK_ESYNTAX;
		}
		strcpy(opts->name, hash + 1);
	} else if (!pin_given) {
		*why = scheme[0] == 'h'
		               ? "https:// needs the server's name after '#' (or a pin_sha256)"
		               : "tls:// needs the server's name after '#' (or a pin_sha256)";
		return DK_ESYNTAX;
	}
	return 0;
}

int dk_upstream_format(const struct dk_config *cfg, size_t i, char *buf, size_t size)
{
	const struct dk_up_opts *o = cfg->upstream_opts ? &cfg->upstream_opts[i] : NULL;
	char addr[INET6_ADDRSTRLEN + IF_NAMESIZE + 16];
	int n;

	if (dk_addr_format(&cfg->upstreams[i], addr, sizeof(addr)) < 0)
		return DK_ESPACE;
	if (!o || o->proto == DK_UP_DNS)
		n = snprintf(buf, size, "%s", addr);
	else
		n = snprintf(buf, size, "%s://%s%s%s%s%s",
		             o->proto == DK_UP_HTTPS ? "https" : "tls", addr, o->path,
		             o->name[0] ? "#" : "", o->name, o->has_pin ? " (pinned)" : "");
	return n < 0 || (size_t)n >= size ? DK_ESPACE : n;
}

/* The address bytes of an IPv4-mapped IPv6 address, or NULL. */
static const uint8_t *mapped_v4(const struct sockaddr_in6 *in6)
{
	if (!IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
		return NULL;
	return in6->sin6_addr.s6_addr + 12;
}

int dk_sockaddr_ip(const struct sockaddr *sa, char *buf, size_t size)
{
	char tmp[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, tmp, sizeof(tmp));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		const uint8_t *v4 = mapped_v4(in6);
		/* Dual-stack sockets see IPv4 clients as ::ffff:a.b.c.d; show them as IPv4. */
		if (v4)
			inet_ntop(AF_INET, v4, tmp, sizeof(tmp));
		else
			inet_ntop(AF_INET6, &in6->sin6_addr, tmp, sizeof(tmp));
	} else {
		return -EAFNOSUPPORT;
	}
	size_t n = strlen(tmp);
	if (n >= size)
		return DK_ESPACE;
	memcpy(buf, tmp, n + 1);
	return (int)n;
}

bool dk_sockaddr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->sa_family != AF_INET6)
		return false;
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
	return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
	       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

int dk_addr_format(const struct dk_addr *a, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN];
	char scope[IF_NAMESIZE + 12] = "";
	int n;

	if (a->sa.sa_family == AF_INET) {
		inet_ntop(AF_INET, &a->in4.sin_addr, ip, sizeof(ip));
		n = snprintf(buf, size, "%s:%u", ip, ntohs(a->in4.sin_port));
	} else if (a->sa.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &a->in6.sin6_addr, ip, sizeof(ip));
		if (a->in6.sin6_scope_id) {
			char name[IF_NAMESIZE];
			if (if_indextoname(a->in6.sin6_scope_id, name))
				snprintf(scope, sizeof(scope), "%%%s", name);
			else
				snprintf(scope, sizeof(scope), "%%%u", a->in6.sin6_scope_id);
		}
		n = snprintf(buf, size, "[%s%s]:%u", ip, scope, ntohs(a->in6.sin6_port));
	} else {
		return -EAFNOSUPPORT;
	}
	if (n < 0 || (size_t)n >= size)
		return DK_ESPACE;
	return n;
}

static int cidr_parse(const char *s, struct dk_cidr *out, const char **why)
{
	const char *slash = strchr(s, '/');
	size_t ip_len = slash ? (size_t)(slash - s) : strlen(s);
	struct dk_addr a;

	if (ip_parse(s, ip_len, false, &a, why))
		return DK_ESYNTAX;
	memset(out, 0, sizeof(*out));
	out->family = a.sa.sa_family;
	unsigned bits = out->family == AF_INET ? 32 : 128;
	if (out->family == AF_INET)
		memcpy(out->addr, &a.in4.sin_addr, 4);
	else
		memcpy(out->addr, &a.in6.sin6_addr, 16);
	unsigned prefix = bits;
	if (slash) {
		const char *p = slash + 1;
		size_t n = strspn(p, "0123456789");
		*why = "bad prefix length";
		if (n == 0 || n != strlen(p) || n > 3)
			return DK_ESYNTAX;
		prefix = (unsigned)strtoul(p, NULL, 10);
		if (prefix > bits) {
			*why = out->family == AF_INET ? "prefix longer than 32 bits"
			                              : "prefix longer than 128 bits";
			return DK_ESYNTAX;
		}
	}
	out->prefix = (uint8_t)prefix;
	/* Keep only the network part so matching compares whole octets. */
	for (unsigned i = 0; i < bits / 8; i++) {
		if (i * 8 >= prefix)
			out->addr[i] = 0;
		else if (i * 8 + 8 > prefix)
			out->addr[i] &= (uint8_t)(0xff << (8 - (prefix - i * 8)));
	}
	return 0;
}

int dk_cidr_parse(const char *s, struct dk_cidr *out)
{
	const char *why;

	if (!s || !out)
		return DK_ESYNTAX;
	return cidr_parse(s, out, &why);
}

static bool cidr_match(const struct dk_cidr *c, int family, const uint8_t *a)
{
	if (c->family != family)
		return false;
	unsigned full = c->prefix / 8, rest = c->prefix % 8;
	if (memcmp(c->addr, a, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return (a[full] & (uint8_t)(0xff << (8 - rest))) == c->addr[full];
}

bool dk_acl_allows(const struct dk_cidr *acl, size_t n, const struct sockaddr *sa)
{
	const uint8_t *a, *v4 = NULL;
	int family = sa->sa_family;

	if (family == AF_INET) {
		a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
	} else if (family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		a = in6->sin6_addr.s6_addr;
		v4 = mapped_v4(in6);
	} else {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		/* A mapped client matches IPv4 prefixes and also ::ffff:0:0/96-style ones. */
		if (cidr_match(&acl[i], family, a) || (v4 && cidr_match(&acl[i], AF_INET, v4)))
			return true;
	}
	return false;
}

/* Same family, IP and port. */
static bool addr_equal(const struct dk_addr *a, const struct dk_addr *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return false;
	if (a->sa.sa_family == AF_INET)
		return a->in4.sin_addr.s_addr == b->in4.sin_addr.s_addr &&
		       a->in4.sin_port == b->in4.sin_port;
	return memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, 16) == 0 &&
	       a->in6.sin6_port == b->in6.sin6_port && a->in6.sin6_scope_id == b->in6.sin6_scope_id;
}

static bool addr_is_any(const struct dk_addr *a)
{
	if (a->sa.sa_family == AF_INET)
		return a->in4.sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&a->in6.sin6_addr);
}

static bool addr_is_loopback(const struct dk_addr *a)
{
	if (a->sa.sa_family == AF_INET)
		return (ntohl(a->in4.sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&a->in6.sin6_addr);
}

/*
 * True when a query sent to @p up would reach one of our own listeners: the
 * same address and port, or a wildcard listener of the family on that port
 * and a loopback @p up.
 */
static bool is_own_listener(const struct dk_config *c, const struct dk_addr *up)
{
	for (size_t i = 0; i < c->n_listen; i++) {
		const struct dk_addr *l = &c->listen[i];
		if (addr_equal(l, up))
			return true;
		if (l->sa.sa_family == up->sa.sa_family && addr_port(l) == addr_port(up) &&
		    addr_is_any(l) && addr_is_loopback(up))
			return true;
	}
	return false;
}

/* ------------------------------------------------------------------ */
/* Schema                                                             */
/* ------------------------------------------------------------------ */

struct ctx {
	const char *path; /* as given, for messages */
	char *dir;        /* the config file's directory */
	yaml_document_t *doc;
	struct dk_config *cfg;
	struct dk_diag *diag;
	char key[128];            /* dotted path of the key being read */
	yaml_node_t *listen_node; /* for cross-key checks after the walk */
	yaml_node_t *upstreams_node;
	yaml_node_t *cache_node;
	yaml_node_t *tls_listen_node; /* listen_tls or listen_https, for the certificate check */
};

struct name_value {
	const char *name;
	int value;
};

struct item;
typedef int (*item_fn)(struct ctx *c, const struct item *it, yaml_node_t *n, void *field);

/* One key of the file: its name, how to read it and where the value goes. */
struct item {
	const char *name;
	item_fn parse;
	size_t offset;                  /* field in struct dk_config */
	size_t width;                   /* sizeof that field */
	size_t count_offset;            /* lists: where the item count goes */
	unsigned long long min, max;    /* numbers: the accepted range */
	uint16_t port;                  /* addresses: port when none is written */
	const struct item *sub;         /* sections: their keys */
	const struct name_value *names; /* enumerations: the accepted words */
};

/* Designated initializers, so an entry names only the fields it uses. */
#define KEY(n, fn) .name = n, .parse = fn
#define FIELD(m)                                                                                   \
	.offset = offsetof(struct dk_config, m), .width = sizeof(((struct dk_config *)0)->m)
#define COUNT(m) .count_offset = offsetof(struct dk_config, m)

static int fail(struct ctx *c, const yaml_node_t *n, int code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static int fail(struct ctx *c, const yaml_node_t *n, int code, const char *fmt, ...)
{
	char msg[sizeof(c->diag->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	dk_diag_set(c->diag, c->path, dk__yaml_line(n), "%s", msg);
	return code;
}

static int want(struct ctx *c, yaml_node_t *n, yaml_node_type_t type)
{
	static const char *const names[] = {
	        [YAML_SCALAR_NODE] = "a string",
	        [YAML_SEQUENCE_NODE] = "a list",
	        [YAML_MAPPING_NODE] = "a mapping",
	};
	if (n->type == type)
		return 0;
	return fail(c, n, DK_ESCHEMA, "%s: expected %s, got %s", c->key, names[type],
	            dk__yaml_kind(n));
}

/* A non-empty string, however quoted. */
static int want_string(struct ctx *c, yaml_node_t *n)
{
	int ret = want(c, n, YAML_SCALAR_NODE);
	if (ret)
		return ret;
	if (!*dk__yaml_scalar(n))
		return fail(c, n, DK_ESCHEMA, "%s: empty string", c->key);
	if (dk__yaml_has_nul(n))
		return fail(c, n, DK_ESCHEMA, "%s: NUL character in string", c->key);
	return 0;
}

static void *field_of(struct ctx *c, const struct item *it)
{
	return (char *)c->cfg + it->offset;
}

static int parse_number(struct ctx *c, const struct item *it, yaml_node_t *n, void *field)
{
	int ret = want(c, n, YAML_SCALAR_NODE);
	if (ret)
		return ret;
	const char *s = dk__yaml_scalar(n);
	size_t len = strspn(s, "0123456789");
	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return fail(c, n, DK_ESCHEMA, "%s: expected an integer without quotes, got '%s'",
		            c->key, s);
	if (len == 0 || s[len] != '\0')
		return fail(c, n, DK_ESCHEMA, "%s: expected a non-negative integer, got '%s'",
		            c->key, s);
	errno = 0;
	unsigned long long v = strtoull(s, NULL, 10);
	if (errno == ERANGE || v < it->min || v > it->max)
		return fail(c, n, DK_ESCHEMA, "%s: %s is out of range (%llu..%llu)", c->key, s,
		            it->min, it->max);
	if (it->width == sizeof(uint32_t))
		*(uint32_t *)field = (uint32_t)v;
	else
		*(uint64_t *)field = v;
	return 0;
}

/* true or false, unquoted (YAML 1.2 core schema: no yes/no/on/off). */
static int parse_bool(struct ctx *c, const struct item *it, yaml_node_t *n, void *field)
{
	(void)it;
	int ret = want(c, n, YAML_SCALAR_NODE);
	if (ret)
		return ret;
	const char *s = dk__yaml_scalar(n);
	if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !strcmp(s, "true"))
		*(bool *)field = true;
	else if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !strcmp(s, "false"))
		*(bool *)field = false;
	else
		return fail(c, n, DK_ESCHEMA, "%s: expected true or false, got '%s'", c->key, s);
	return 0;
}

static int parse_string(struct ctx *c, const struct item *it, yaml_node_t *n, void *field)
{
	(void)it;
	int ret = want_string(c, n);
	if (ret)
		return ret;
	char *s = strdup(dk__yaml_scalar(n));
	if (!s)
		return fail(c, n, -ENOMEM, "out of memory");
	free(*(char **)field);
	*(char **)field = s;
	return 0;
}

static int parse_enum(struct ctx *c, const struct item *it, yaml_node_t *n, void *field)
{
	int ret = want_string(c, n);
	if (ret)
		return ret;
	for (const struct name_value *nv = it->names; nv->name; nv++) {
		if (!strcmp(nv->name, dk__yaml_scalar(n))) {
			*(int *)field = nv->value;
			return 0;
		}
	}
	char list[256] = "";
	size_t used = 0;
	for (const struct name_value *nv = it->names; nv->name && used < sizeof(list); nv++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", used ? ", " : "",
		                         nv->name);
	return fail(c, n, DK_ESCHEMA, "%s: unknown value '%s' (expected one of: %s)", c->key,
	            dk__yaml_scalar(n), list);
}

/* A bare IP: 4 octets when the field holds 4, else 16. */
static int parse_ip(struct ctx *c, const struct item *it, yaml_node_t *n, void *field)
{
	struct dk_addr a;
	const char *why;
	int ret = want_string(c, n);
	if (ret)
		return ret;
	int family = it->width == 4 ? AF_INET : AF_INET6;
	if (ip_parse(dk__yaml_scalar(n), strlen(dk__yaml_scalar(n)), false, &a, &why) ||
	    a.sa.sa_family != family)
		return fail(c, n, DK_ESCHEMA, "%s: bad address '%s' (expected an %s address)",
		            c->key, dk__yaml_scalar(n), family == AF_INET ? "IPv4" : "IPv6");
	if (family == AF_INET)
		memcpy(field, &a.in4.sin_addr, 4);
	else
		memcpy(field, &a.in6.sin6_addr, 16);
	return 0;
}

/* Checks that @p n is a list of at most LIST_MAX items. */
static int want_list(struct ctx *c, yaml_node_t *n, size_t *count)
{
	int ret = want(c, n, YAML_SEQUENCE_NODE);
	if (ret)
		return ret;
	*count = dk__yaml_seq_len(n);
	if (*count > LIST_MAX)
		return fail(c, n, DK_ESCHEMA, "%s: more than %d items", c->key, LIST_MAX);
	return 0;
}

/* Parses the text of one list item into @p out; sets @p why on failure. */
typedef int (*item_parse_fn)(const struct item *it, const char *s, void *out, const char **why);

/*
 * A list of @p elem-sized values, each a string @p parse accepts, into the
 * array at @p field and its count at it->count_offset; @p what names one
 * value in messages.
 */
static int parse_list_of(struct ctx *c, const struct item *it, yaml_node_t *n, void *field,
                         size_t elem, item_parse_fn parse, const char *what, bool empty_ok)
{
	size_t count, *count_field = (size_t *)((char *)c->cfg + it->count_offset);
	int ret = want_list(c, n, &count);
	if (ret)
		return ret;
	if (count == 0 && !empty_ok)
		return fail(c, n, DK_ESCHEMA, "%s: empty list (remove the key for the default)",
		            c->key);
	/* calloc(0) may return NULL. */
	char *v = calloc(count ? count : 1, elem);
	if (!v)
		return fail(c, n, -ENOMEM, "out of memory");
	for (size_t i = 0; i < count; i++) {
		yaml_node_t *item = dk__yaml_seq_item(c->doc, n, i);
		const char *why;
		ret = want_string(c, item);
		if (ret)
			goto fail;
		if (parse(it, dk__yaml_scalar(item), v + i * elem, &why)) {
			ret = fail(c, item, DK_ESCHEMA, "%s: bad %s '%s': %s", c->key, what,
			           dk__yaml_scalar(item), why);
			goto fail;
		}
	}
	void *old;
	memcpy(&old, field, sizeof(old));
	free(old);
	memcpy(field, &v, sizeof(v));
	*count_field = count;
	return 0;
fail:
	free(v);
	return ret;
}

static int addr_item(const struct item *it, const char *s, void *out, const char **why)
{
	return addr_parse(s, it->port, out, why);
}

static int cidr_item(const struct item *it, const char *s, void *out, const char **why)
{
	(void)it;
	return cidr_parse(s, out, why);
}

static int parse_addr_list(struct ctx *c, const struct item *it, yaml_node_t *n, void *field)
{
	return parse_list_of(c, it, n, field, sizeof(struct dk_addr), addr_item, "address", false);
}

static int parse_cidr_list(struct ctx *c, const struct item *it, yaml_node_t *n, void *field)
{
	/* An empty list is legal: it allows nobody. */
	return parse_list_of(c, it, n, field, sizeof(struct dk_cidr), cidr_item, "CIDR", true);
}

static void strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static bool path_exists(const char *p)
{
	return access(p, F_OK) == 0;
}

/*
 * Resolves rule path @p p: absolute paths stay; a relative one is taken from
 * the current directory when it exists there, else from the config file's
 * directory. Returns a new string, or NULL with *found false when neither
 * exists (then *out holds the config-relative candidate) or on ENOMEM.
 */
static char *rule_path_resolve(const struct ctx *c, const char *p, bool *found)
{
	*found = true;
	if (p[0] == '/' || path_exists(p))
		return strdup(p);
	size_t n = strlen(c->dir) + 1 + strlen(p) + 1;
	char *r = malloc(n);
	if (!r)
		return NULL;
	snprintf(r, n, "%s/%s", c->dir, p);
	*found = path_exists(r);
	return r;
}

/* A file the daemon reads (a certificate, a key): resolved as rule paths are, and it must exist. */
static int parse_path(struct ctx *c, const struct item *it, yaml_node_t *n, void *field)
{
	(void)it;
	bool found;
	int ret = want_string(c, n);
	if (ret)
		return ret;
	char *p = rule_path_resolve(c, dk__yaml_scalar(n), &found);
	if (!p)
		return fail(c, n, -ENOMEM, "out of memory");
	if (!found || access(p, R_OK) != 0) {
		ret = fail(c, n, DK_ESCHEMA, "%s: cannot read '%s': %s", c->key, p,
		           strerror(found ? errno : ENOENT));
		free(p);
		return ret;
	}
	free(*(char **)field);
	*(char **)field = p;
	return 0;
}

/*
 * One upstream: a string (see dk_upstream_spec_parse()) or a mapping
 * {address: STRING, pin_sha256: BASE64} for a pinned tls:// upstream.
 */
static int upstream_item(struct ctx *c, const struct item *it, yaml_node_t *n, struct dk_addr *a,
                         struct dk_up_opts *o)
{
	yaml_node_t *addr = n, *pin = NULL;
	const char *why;

	if (n->type == YAML_MAPPING_NODE) {
		addr = NULL;
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
		     p < n->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
			yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
			const char *key = k->type == YAML_SCALAR_NODE ? dk__yaml_scalar(k) : "";
			if (!strcmp(key, "address"))
				addr = v;
			else if (!strcmp(key, "pin_sha256"))
				pin = v;
			else
				return fail(c, k, DK_ESCHEMA,
				            "%s: unknown key '%s' (expected address, pin_sha256)",
				            c->key, key);
		}
		if (!addr)
			return fail(c, n, DK_ESCHEMA, "%s: an upstream mapping needs 'address'",
			            c->key);
	}
	int ret = want_string(c, addr);
	if (ret)
		return ret;
	if (pin && (ret = want_string(c, pin)) != 0)
		return ret;
	if (dk_upstream_spec_parse(dk__yaml_scalar(addr), it->port, pin != NULL, a, o, &why))
		return fail(c, addr, DK_ESCHEMA, "%s: bad address '%s': %s", c->key,
		            dk__yaml_scalar(addr), why);
	if (pin) {
		if (o->proto == DK_UP_DNS)
			return fail(c, pin, DK_ESCHEMA,
			            "%s: pin_sha256 is for tls:// and https:// upstreams", c->key);
		if (dk_pin_parse(dk__yaml_scalar(pin), o->pin))
			return fail(c, pin, DK_ESCHEMA,
			            "%s: pin_sha256 '%s' is not the base64 of a SHA-256 digest",
			            c->key, dk__yaml_scalar(pin));
		o->has_pin = true;
	}
	return 0;
}

/* upstreams: addresses, and for encrypted ones their options (cfg->upstream_opts). */
static int parse_upstreams(struct ctx *c, const struct item *it, yaml_node_t *n, void *field)
{
	struct dk_config *cfg = c->cfg;
	size_t count;
	bool any = false;
	int ret = want_list(c, n, &count);

	(void)field;
	if (ret)
		return ret;
	if (count == 0)
		return fail(c, n, DK_ESCHEMA, "%s: empty list (remove the key for the default)",
		            c->key);
	struct dk_addr *a = calloc(count, sizeof(*a));
	struct dk_up_opts *o = calloc(count, sizeof(*o));
	if (!a || !o) {
		ret = fail(c, n, -ENOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < count; i++) {
		ret = upstream_item(c, it, dk__yaml_seq_item(c->doc, n, i), &a[i], &o[i]);
		if (ret)
			goto fail;
		any |= o[i].proto != DK_UP_DNS;
	}
	free(cfg->upstreams);
	free(cfg->upstream_opts);
	cfg->upstreams = a;
	cfg->n_upstreams = count;
	cfg->upstream_opts = any ? o : NULL;
	if (!any)
		free(o);
	return 0;
fail:
	free(a);
	free(o);
	return ret;
}

static int parse_rules(struct ctx *c, const struct item *it, yaml_node_t *n, void *field)
{
	size_t count, *count_field = (size_t *)((char *)c->cfg + it->count_offset);
	int ret = want_list(c, n, &count);
	if (ret)
		return ret;
	char **v = calloc(count ? count : 1, sizeof(*v));
	if (!v)
		return fail(c, n, -ENOMEM, "out of memory");
	size_t done = 0;
	for (; done < count; done++) {
		yaml_node_t *item = dk__yaml_seq_item(c->doc, n, done);
		bool found;
		ret = want_string(c, item);
		if (ret)
			goto fail;
		v[done] = rule_path_resolve(c, dk__yaml_scalar(item), &found);
		if (!v[done]) {
			ret = fail(c, item, -ENOMEM, "out of memory");
			goto fail;
		}
		if (!found) {
			ret = fail(c, item, DK_ESCHEMA,
			           "%s: '%s' not found (looked in the current directory and in %s)",
			           c->key, dk__yaml_scalar(item), c->dir);
			done++;
			goto fail;
		}
	}
	strv_free(*(char ***)field, *count_field);
	*(char ***)field = v;
	*count_field = count;
	return 0;
fail:
	strv_free(v, done);
	return ret;
}

/* udp://HOST[:PORT], tcp://HOST[:PORT] (IP literals) or unix:///path. */
static int parse_syslog_server(struct ctx *c, const struct item *it, yaml_node_t *n, void *field)
{
	(void)it;
	(void)field;
	struct dk_config *cfg = c->cfg;
	const char *s, *why = "";
	int ret = want_string(c, n);
	if (ret)
		return ret;
	s = dk__yaml_scalar(n);
	if (!strncmp(s, "unix://", 7)) {
		if (s[7] != '/')
			return fail(c, n, DK_ESCHEMA, "%s: '%s': unix:// needs an absolute path",
			            c->key, s);
		char *p = strdup(s + 7);
		if (!p)
			return fail(c, n, -ENOMEM, "out of memory");
		free(cfg->alerts.unix_path);
		cfg->alerts.unix_path = p;
		cfg->alerts.transport = DK_SYSLOG_UNIX;
		return 0;
	}
	enum dk_syslog_transport t;
	if (!strncmp(s, "udp://", 6))
		t = DK_SYSLOG_UDP;
	else if (!strncmp(s, "tcp://", 6))
		t = DK_SYSLOG_TCP;
	else
		return fail(c, n, DK_ESCHEMA,
		            "%s: '%s': expected udp://IP[:PORT], tcp://IP[:PORT] or unix:///PATH",
		            c->key, s);
	if (addr_parse(s + 6, DK_DEFAULT_SYSLOG_PORT, &cfg->alerts.server, &why))
		return fail(c, n, DK_ESCHEMA, "%s: bad address '%s': %s", c->key, s + 6, why);
	cfg->alerts.transport = t;
	return 0;
}

static int parse_metrics_listen(struct ctx *c, const struct item *it, yaml_node_t *n, void *field)
{
	(void)field;
	const char *why;
	int ret = want_string(c, n);
	if (ret)
		return ret;
	if (addr_parse(dk__yaml_scalar(n), it->port, &c->cfg->metrics, &why))
		return fail(c, n, DK_ESCHEMA, "%s: bad address '%s': %s", c->key,
		            dk__yaml_scalar(n), why);
	c->cfg->metrics_enabled = true;
	return 0;
}

static int parse_section(struct ctx *c, const struct item *it, yaml_node_t *n, void *field);

static int parse_groups(struct ctx *c, const struct item *it, yaml_node_t *n, void *field)
{
	(void)it;
	(void)field;
	return dk__group_confs_parse(c->doc, n, c->path, &c->cfg->groups, &c->cfg->n_groups,
	                             c->diag);
}

static const struct name_value facilities[] = {
        {"kern", LOG_KERN},     {"user", LOG_USER},         {"mail", LOG_MAIL},
        {"daemon", LOG_DAEMON}, {"auth", LOG_AUTH},         {"syslog", LOG_SYSLOG},
        {"lpr", LOG_LPR},       {"news", LOG_NEWS},         {"uucp", LOG_UUCP},
        {"cron", LOG_CRON},     {"authpriv", LOG_AUTHPRIV}, {"ftp", LOG_FTP},
        {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1},     {"local2", LOG_LOCAL2},
        {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4},     {"local5", LOG_LOCAL5},
        {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},     {NULL, 0},
};

static const struct name_value formats[] = {
        {"native", DK_ALERT_FORMAT_NATIVE},
        {"ocsf", DK_ALERT_FORMAT_OCSF},
        {NULL, 0},
};

static const struct item sinkhole_items[] = {
        {KEY("ipv4", parse_ip), FIELD(sinkhole.ipv4)},
        {KEY("ipv6", parse_ip), FIELD(sinkhole.ipv6)},
        {KEY("ttl", parse_number), FIELD(sinkhole.ttl), .min = 0, .max = INT32_MAX},
        {.name = NULL}, /* the end */
};

static const struct item syslog_items[] = {
        {KEY("ident", parse_string), FIELD(alerts.ident)},
        {KEY("facility", parse_enum), FIELD(alerts.facility), .names = facilities},
        {KEY("server", parse_syslog_server)},
        {.name = NULL}, /* the end */
};

static const struct item alerts_items[] = {
        {KEY("syslog", parse_section), .sub = syslog_items},
        {KEY("file", parse_string), FIELD(alerts.file)},
        {KEY("format", parse_enum), FIELD(alerts.format), .names = formats},
        {KEY("queue", parse_number), FIELD(alerts.queue), .min = 16, .max = 10000000},
        {KEY("dedup_max", parse_number), FIELD(alerts.dedup_max), .min = 16, .max = 100000000},
        {.name = NULL}, /* the end */
};

static const struct item tcp_items[] = {
        {KEY("max_clients", parse_number), FIELD(tcp_max_clients), .min = 1, .max = 100000},
        {KEY("idle_timeout_ms", parse_number), FIELD(tcp_idle_ms), .min = 100, .max = 3600000},
        {.name = NULL}, /* the end */
};

static const struct item tls_items[] = {
        {KEY("ca_file", parse_path), FIELD(tls.ca_file)},
        {KEY("cert_file", parse_path), FIELD(tls.cert_file)},
        {KEY("key_file", parse_path), FIELD(tls.key_file)},
        {KEY("handshake_timeout_ms", parse_number), FIELD(tls.handshake_ms), .min = 100,
         .max = 60000},
        {.name = NULL}, /* the end */
};

static const struct item metrics_items[] = {
        {KEY("listen", parse_metrics_listen), .port = DK_DEFAULT_METRICS_PORT},
        {KEY("token", parse_string), FIELD(metrics_token)},
        {.name = NULL}, /* the end */
};

static const struct item control_items[] = {
        {KEY("socket", parse_string), FIELD(control_socket)}, {.name = NULL}, /* the end */
};

static const struct name_value strategies[] = {
        {"ordered", DK_STRATEGY_ORDERED},
        {"fastest", DK_STRATEGY_FASTEST},
        {NULL, 0},
};

static const struct name_value sigma_actions[] = {
        {"sinkhole", DK_ACTION_SINKHOLE},
        {"nxdomain", DK_ACTION_NXDOMAIN},
        {"refused", DK_ACTION_REFUSED},
        {"alert", DK_ACTION_ALERT},
        {NULL, 0},
};

/* sigma.actions: a mapping of Sigma level or rule id to an action. */
static int parse_sigma_actions(struct ctx *c, const struct item *it, yaml_node_t *n, void *field)
{
	struct dk_sigma_conf *sc = field;
	int ret = want(c, n, YAML_MAPPING_NODE);

	(void)it;
	if (ret)
		return ret;
	size_t count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	struct dk_sigma_action *a = calloc(count ? count : 1, sizeof(*a));
	if (!a)
		return fail(c, n, -ENOMEM, "out of memory");
	size_t i = 0;
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++, i++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		const char *ks = dk__yaml_scalar(k), *vs = dk__yaml_scalar(v);
		const struct name_value *nv = sigma_actions;
		if (!ks || !*ks) {
			ret = fail(c, k, DK_ESCHEMA, "%s: keys are Sigma levels or rule ids",
			           c->key);
			goto fail;
		}
		if (dk__yaml_earlier_key(c->doc, n, p)) {
			ret = fail(c, k, DK_EDUP, "duplicate key '%s.%s'", c->key, ks);
			goto fail;
		}
		while (vs && nv->name && strcmp(nv->name, vs))
			nv++;
		if (!vs || !nv->name) {
			ret = fail(
			        c, v, DK_ESCHEMA,
			        "%s.%s: unknown action '%s' (expected one of: sinkhole, nxdomain, "
			        "refused, alert)",
			        c->key, ks, vs ? vs : "?");
			goto fail;
		}
		a[i].action = nv->value;
		a[i].line = (unsigned)k->start_mark.line + 1;
		if (!(a[i].key = strdup(ks))) {
			ret = fail(c, k, -ENOMEM, "out of memory");
			goto fail;
		}
	}
	for (size_t j = 0; j < sc->n_actions; j++)
		free(sc->actions[j].key);
	free(sc->actions);
	sc->actions = a;
	sc->n_actions = count;
	return 0;
fail:
	for (size_t j = 0; j < count; j++)
		free(a[j].key);
	free(a);
	return ret;
}

static const struct item sigma_items[] = {
        {KEY("default_action", parse_enum), FIELD(sigma.default_action), .names = sigma_actions},
        {KEY("actions", parse_sigma_actions), FIELD(sigma)},
        {.name = NULL},
};

static const struct name_value rl_actions[] = {
        {"drop", DK_RATELIMIT_DROP},
        {"refused", DK_RATELIMIT_REFUSED},
        {NULL, 0},
};

static const struct item rate_limit_items[] = {
        {KEY("qps", parse_number), FIELD(rate_limit.qps), .min = 0, .max = 1000000},
        {KEY("burst", parse_number), FIELD(rate_limit.burst), .min = 1, .max = 1000000},
        {KEY("action", parse_enum), FIELD(rate_limit.action), .names = rl_actions},
        {KEY("table_size", parse_number), FIELD(rate_limit.table_size), .min = 16, .max = 16777216},
        {KEY("ipv4_prefix", parse_number), FIELD(rate_limit.ipv4_prefix), .min = 1, .max = 32},
        {KEY("ipv6_prefix", parse_number), FIELD(rate_limit.ipv6_prefix), .min = 1, .max = 128},
        {.name = NULL}, /* the end */
};

static const struct item cache_items[] = {
        {KEY("size_mb", parse_number), FIELD(cache.size_mb), .min = 0, .max = 1048576},
        {KEY("min_ttl", parse_number), FIELD(cache.min_ttl), .min = 0, .max = 86400},
        {KEY("max_ttl", parse_number), FIELD(cache.max_ttl), .min = 1, .max = INT32_MAX},
        {KEY("negative_max_ttl", parse_number), FIELD(cache.negative_max_ttl), .min = 0,
         .max = INT32_MAX},
        {KEY("failure_ttl", parse_number), FIELD(cache.failure_ttl), .min = 1, .max = 300},
        {KEY("serve_stale", parse_bool), FIELD(cache.serve_stale)},
        {KEY("stale_max_s", parse_number), FIELD(cache.stale_max_s), .min = 0, .max = INT32_MAX},
        {KEY("prefetch", parse_bool), FIELD(cache.prefetch)},
        {.name = NULL}, /* the end */
};

static const struct item dnstap_items[] = {
        {KEY("socket", parse_string), FIELD(dnstap.socket)},
        {KEY("file", parse_string), FIELD(dnstap.file)},
        {KEY("identity", parse_string), FIELD(dnstap.identity)},
        {KEY("forwarder", parse_bool), FIELD(dnstap.forwarder)},
        {KEY("queue", parse_number), FIELD(dnstap.queue), .min = 2, .max = 16384},
        {.name = NULL}, /* the end */
};

static const struct item top_items[] = {
        {KEY("listen", parse_addr_list), FIELD(listen), COUNT(n_listen),
         .port = DK_DEFAULT_DNS_PORT},
        {KEY("upstreams", parse_upstreams), FIELD(upstreams), COUNT(n_upstreams),
         .port = DK_DEFAULT_DNS_PORT},
        {KEY("upstream_timeout_ms", parse_number), FIELD(upstream_timeout_ms), .min = 10,
         .max = 60000},
        {KEY("resolve_timeout_ms", parse_number), FIELD(resolve_timeout_ms), .min = 10,
         .max = 60000},
        {KEY("upstream_strategy", parse_enum), FIELD(upstream_strategy), .names = strategies},
        {KEY("allow_clients", parse_cidr_list), FIELD(allow), COUNT(n_allow)},
        {KEY("rules", parse_rules), FIELD(rules), COUNT(n_rules)},
        {KEY("sinkhole", parse_section), .sub = sinkhole_items},
        {KEY("alerts", parse_section), .sub = alerts_items},
        {KEY("workers", parse_number), FIELD(workers), .min = 0, .max = DK_WORKERS_MAX},
        {KEY("max_inflight", parse_number), FIELD(max_inflight), .min = 16, .max = 1000000},
        {KEY("tcp", parse_section), .sub = tcp_items},
        {KEY("user", parse_string), FIELD(user)},
        {KEY("state_dir", parse_string), FIELD(state_dir)},
        {KEY("metrics", parse_section), .sub = metrics_items},
        {KEY("rate_limit", parse_section), .sub = rate_limit_items},
        {KEY("cache", parse_section), .sub = cache_items},
        {KEY("dnstap", parse_section), .sub = dnstap_items},
        {KEY("groups", parse_groups)},
        {KEY("tls", parse_section), .sub = tls_items},
        {KEY("listen_tls", parse_addr_list), FIELD(listen_tls), COUNT(n_listen_tls),
         .port = DK_DEFAULT_DOT_PORT},
        {KEY("listen_https", parse_addr_list), FIELD(listen_https), COUNT(n_listen_https),
         .port = DK_DEFAULT_DOH_PORT},
        {KEY("sigma", parse_section), .sub = sigma_items},
        {KEY("control", parse_section), .sub = control_items},
        {.name = NULL}, /* the end */
};

/* The root is a section too: a mapping whose keys are looked up in @p it->sub. */
static int parse_section(struct ctx *c, const struct item *it, yaml_node_t *n, void *field)
{
	(void)field;
	int ret = want(c, n, YAML_MAPPING_NODE);
	if (ret)
		return ret;
	size_t key_len = strlen(c->key);
	yaml_node_pair_t *start = n->data.mapping.pairs.start;
	for (yaml_node_pair_t *p = start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		if (k->type != YAML_SCALAR_NODE)
			return fail(c, k, DK_ESCHEMA, "%s%skeys must be plain words, got %s",
			            c->key, key_len ? ": " : "", dk__yaml_kind(k));
		yaml_node_t *prev = dk__yaml_earlier_key(c->doc, n, p);
		if (prev)
			return fail(c, k, DK_EDUP, "duplicate key '%s%s%s' (first at line %u)",
			            c->key, key_len ? "." : "", dk__yaml_scalar(k),
			            dk__yaml_line(prev));
		const struct item *sub = it->sub;
		while (sub->name && strcmp(sub->name, dk__yaml_scalar(k)) != 0)
			sub++;
		if (!sub->name) {
			if (key_len)
				return fail(c, k, DK_ESCHEMA, "unknown key '%s' in %s",
				            dk__yaml_scalar(k), c->key);
			return fail(c, k, DK_ESCHEMA, "unknown key '%s'", dk__yaml_scalar(k));
		}
		if (dk__yaml_is_null(v))
			continue;
		if (!key_len && !strcmp(sub->name, "listen"))
			c->listen_node = v;
		if (!key_len && !strcmp(sub->name, "upstreams"))
			c->upstreams_node = v;
		if (!key_len && !strcmp(sub->name, "cache"))
			c->cache_node = v;
		if (!key_len &&
		    (!strcmp(sub->name, "listen_tls") || !strcmp(sub->name, "listen_https")))
			c->tls_listen_node = v;
		snprintf(c->key + key_len, sizeof(c->key) - key_len, "%s%s", key_len ? "." : "",
		         sub->name);
		ret = sub->parse(c, sub, v, field_of(c, sub));
		c->key[key_len] = '\0';
		if (ret)
			return ret;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Loading                                                            */
/* ------------------------------------------------------------------ */

void dk_config_set_defaults(struct dk_config *cfg)
{
	cfg->upstream_timeout_ms = DK_DEFAULT_UPSTREAM_TIMEOUT_MS;
	cfg->resolve_timeout_ms = DK_DEFAULT_RESOLVE_TIMEOUT_MS;
	cfg->upstream_strategy = DK_DEFAULT_UPSTREAM_STRATEGY;
	memset(cfg->sinkhole.ipv4, 0, sizeof(cfg->sinkhole.ipv4));
	memset(cfg->sinkhole.ipv6, 0, sizeof(cfg->sinkhole.ipv6));
	cfg->sinkhole.ttl = DK_DEFAULT_SINKHOLE_TTL;
	cfg->alerts.transport = DK_DEFAULT_ALERT_TRANSPORT;
	cfg->alerts.facility = DK_DEFAULT_ALERT_FACILITY;
	cfg->alerts.format = DK_DEFAULT_ALERT_FORMAT;
	cfg->alerts.queue = DK_DEFAULT_ALERT_QUEUE;
	cfg->alerts.dedup_max = DK_DEFAULT_DEDUP_MAX;
	cfg->workers = DK_DEFAULT_WORKERS;
	cfg->max_inflight = DK_DEFAULT_MAX_INFLIGHT;
	cfg->tcp_max_clients = DK_DEFAULT_TCP_MAX_CLIENTS;
	cfg->tcp_idle_ms = DK_DEFAULT_TCP_IDLE_MS;
	cfg->sigma.default_action = DK_ACTION_ALERT;
	cfg->rate_limit.qps = DK_DEFAULT_RATE_LIMIT_QPS;
	cfg->rate_limit.burst = 0; /* qps, once qps is known (check_config) */
	cfg->rate_limit.action = DK_DEFAULT_RATE_LIMIT_ACTION;
	cfg->rate_limit.table_size = DK_DEFAULT_RATE_LIMIT_TABLE_SIZE;
	cfg->rate_limit.ipv4_prefix = DK_DEFAULT_RATE_LIMIT_IPV4_PREFIX;
	cfg->rate_limit.ipv6_prefix = DK_DEFAULT_RATE_LIMIT_IPV6_PREFIX;
	cfg->cache.size_mb = DK_DEFAULT_CACHE_SIZE_MB;
	cfg->dnstap.queue = DK_DEFAULT_DNSTAP_QUEUE;
	cfg->cache.min_ttl = DK_DEFAULT_CACHE_MIN_TTL;
	cfg->cache.max_ttl = DK_DEFAULT_CACHE_MAX_TTL;
	cfg->cache.negative_max_ttl = DK_DEFAULT_CACHE_NEGATIVE_MAX_TTL;
	cfg->cache.failure_ttl = DK_DEFAULT_CACHE_FAILURE_TTL;
	cfg->cache.serve_stale = DK_DEFAULT_CACHE_SERVE_STALE;
	cfg->cache.stale_max_s = DK_DEFAULT_CACHE_STALE_MAX_S;
	cfg->cache.prefetch = DK_DEFAULT_CACHE_PREFETCH;
	cfg->tls.handshake_ms = DK_DEFAULT_TLS_HANDSHAKE_MS;
}

/* The plain defaults, then those that take memory: lists and the ident. */
static int set_defaults(struct ctx *c)
{
	struct dk_config *cfg = c->cfg;
	static const char *const listen[] = {DK_DEFAULT_LISTEN_V4, DK_DEFAULT_LISTEN_V6};
	static const char *const allow[] = {DK_DEFAULT_ALLOW_V4, DK_DEFAULT_ALLOW_V6};

	dk_config_set_defaults(cfg);
	cfg->listen = calloc(DK_ARRAY_SIZE(listen), sizeof(*cfg->listen));
	cfg->allow = calloc(DK_ARRAY_SIZE(allow), sizeof(*cfg->allow));
	cfg->rules = calloc(1, sizeof(*cfg->rules));
	cfg->alerts.ident = strdup(DK_DEFAULT_ALERT_IDENT);
	cfg->state_dir = strdup(DK_DEFAULT_STATE_DIR);
	if (!cfg->listen || !cfg->allow || !cfg->rules || !cfg->alerts.ident || !cfg->state_dir)
		return -ENOMEM;
	for (size_t i = 0; i < DK_ARRAY_SIZE(listen); i++)
		dk_addr_parse(listen[i], DK_DEFAULT_DNS_PORT, &cfg->listen[i]);
	cfg->n_listen = DK_ARRAY_SIZE(listen);
	for (size_t i = 0; i < DK_ARRAY_SIZE(allow); i++)
		dk_cidr_parse(allow[i], &cfg->allow[i]);
	cfg->n_allow = DK_ARRAY_SIZE(allow);
	/* A missing default folder is left for the rule loader to report. */
	bool found;
	cfg->rules[0] = rule_path_resolve(c, DK_DEFAULT_RULES, &found);
	if (!cfg->rules[0])
		return -ENOMEM;
	cfg->n_rules = 1;
	return 0;
}

/* Fills the upstreams from the nameserver lines of @p rpath, minus our listeners. */
static int upstreams_from_resolv(struct ctx *c, const char *rpath)
{
	struct dk_config *cfg = c->cfg;
	char line[512];
	FILE *f = fopen(rpath, "re");

	if (!f) {
		dk_diag_set(c->diag, c->path, 0,
		            "no upstreams configured and none usable in %s (%s)", rpath,
		            strerror(errno));
		return DK_ESCHEMA;
	}
	free(cfg->upstreams);
	cfg->upstreams = calloc(RESOLV_MAX, sizeof(*cfg->upstreams));
	cfg->n_upstreams = 0;
	if (!cfg->upstreams) {
		fclose(f);
		return -ENOMEM;
	}
	while (fgets(line, sizeof(line), f) && cfg->n_upstreams < RESOLV_MAX) {
		size_t len = strlen(line);
		/* Drop the rest of an overlong line rather than read it as a new one. */
		if (len && line[len - 1] != '\n') {
			int ch;
			while ((ch = fgetc(f)) != EOF && ch != '\n')
				;
		}
		char *save, *tok = strtok_r(line, " \t\r\n", &save);
		if (!tok || strcmp(tok, "nameserver") != 0)
			continue;
		tok = strtok_r(NULL, " \t\r\n", &save);
		struct dk_addr a;
		const char *why;
		if (!tok || ip_parse(tok, strlen(tok), true, &a, &why))
			continue;
		addr_set_port(&a, DK_DEFAULT_DNS_PORT);
		if (is_own_listener(cfg, &a))
			continue;
		cfg->upstreams[cfg->n_upstreams++] = a;
	}
	fclose(f);
	if (cfg->n_upstreams == 0) {
		dk_diag_set(c->diag, c->path, 0, "no upstreams configured and none usable in %s",
		            rpath);
		return DK_ESCHEMA;
	}
	cfg->upstreams_from_resolv = true;
	return 0;
}

/* Checks that involve several keys, once every key has been read. */
static int check_config(struct ctx *c, const char *resolv_conf)
{
	struct dk_config *cfg = c->cfg;
	char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 16];

	/* One second's worth by default, as dnsdist's MaxQPSIPRule. */
	if (!cfg->rate_limit.burst)
		cfg->rate_limit.burst = cfg->rate_limit.qps ? cfg->rate_limit.qps : 1;
	if (cfg->dnstap.socket && cfg->dnstap.file) {
		strcpy(c->key, "dnstap");
		return fail(c, NULL, DK_ESCHEMA, "dnstap: socket and file exclude each other");
	}
	if (cfg->cache.min_ttl > cfg->cache.max_ttl) {
		strcpy(c->key, "cache");
		return fail(c, c->cache_node, DK_ESCHEMA, "cache: min_ttl %u is above max_ttl %u",
		            cfg->cache.min_ttl, cfg->cache.max_ttl);
	}
	for (size_t i = 0; c->listen_node && i < cfg->n_listen; i++) {
		for (size_t j = 0; j < i; j++) {
			if (addr_equal(&cfg->listen[i], &cfg->listen[j])) {
				dk_addr_format(&cfg->listen[i], buf, sizeof(buf));
				strcpy(c->key, "listen");
				return fail(c, dk__yaml_seq_item(c->doc, c->listen_node, i),
				            DK_ESCHEMA, "listen: %s is listed twice", buf);
			}
		}
	}
	if ((cfg->n_listen_tls || cfg->n_listen_https) &&
	    (!cfg->tls.cert_file || !cfg->tls.key_file))
		return fail(c, c->tls_listen_node, DK_ESCHEMA,
		            "listen_tls and listen_https need tls.cert_file and tls.key_file");
	if (!c->upstreams_node)
		return upstreams_from_resolv(c, resolv_conf ? resolv_conf : DK_DEFAULT_RESOLV_CONF);
	for (size_t i = 0; i < cfg->n_upstreams; i++) {
		if (is_own_listener(cfg, &cfg->upstreams[i])) {
			dk_addr_format(&cfg->upstreams[i], buf, sizeof(buf));
			return fail(c, dk__yaml_seq_item(c->doc, c->upstreams_node, i), DK_ESCHEMA,
			            "upstreams: %s is one of our own listeners (a forwarding loop)",
			            buf);
		}
	}
	return 0;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

int dk_config_load(const char *path, const char *resolv_conf, struct dk_config **out,
                   struct dk_diag *diag)
{
	struct ctx c = {.path = path, .diag = diag};
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	bool have_parser = false, have_doc = false;
	FILE *f = NULL;
	int ret;

	*out = NULL;
	c.cfg = calloc(1, sizeof(*c.cfg));
	c.dir = dir_of(path);
	if (!c.cfg || !c.dir || !(c.cfg->file = strdup(path))) {
		dk_diag_set(diag, path, 0, "out of memory");
		ret = -ENOMEM;
		goto fail;
	}
	ret = set_defaults(&c);
	if (ret) {
		dk_diag_set(diag, path, 0, "out of memory");
		goto fail;
	}
	f = fopen(path, "re");
	if (!f) {
		ret = -errno;
		dk_diag_set(diag, path, 0, "cannot open: %s", strerror(errno));
		goto fail;
	}
	if (!yaml_parser_initialize(&parser)) {
		dk_diag_set(diag, path, 0, "out of memory");
		ret = -ENOMEM;
		goto fail;
	}
	have_parser = true;
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		ret = dk__yaml_parser_error(&parser, path, diag);
		goto fail;
	}
	have_doc = true;
	c.doc = &doc;
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	/* An empty file, or one holding only "~", leaves every default in place. */
	if (root && !dk__yaml_is_null(root)) {
		/* A second document would be silently ignored; say so instead. */
		if (!yaml_parser_load(&parser, &extra)) {
			ret = dk__yaml_parser_error(&parser, path, diag);
			goto fail;
		}
		bool more = yaml_document_get_root_node(&extra) != NULL;
		unsigned line = (unsigned)extra.start_mark.line + 1;
		yaml_document_delete(&extra);
		if (more) {
			dk_diag_set(diag, path, line, "only one YAML document is allowed");
			ret = DK_ESCHEMA;
			goto fail;
		}
		if (root->type != YAML_MAPPING_NODE) {
			ret = fail(&c, root, DK_ESCHEMA, "expected a mapping of keys, got %s",
			           dk__yaml_kind(root));
			goto fail;
		}
		const struct item top = {KEY("", parse_section), .sub = top_items};
		ret = parse_section(&c, &top, root, NULL);
		if (ret)
			goto fail;
	}
	ret = check_config(&c, resolv_conf);
	if (ret)
		goto fail;
	*out = c.cfg;
	c.cfg = NULL;
fail:
	if (have_doc)
		yaml_document_delete(&doc);
	if (have_parser)
		yaml_parser_delete(&parser);
	if (f)
		fclose(f);
	free(c.dir);
	dk_config_free(c.cfg);
	return ret;
}

void dk_config_free(struct dk_config *c)
{
	if (!c)
		return;
	free(c->file);
	free(c->listen);
	free(c->upstreams);
	free(c->upstream_opts);
	free(c->tls.ca_file);
	free(c->tls.cert_file);
	free(c->tls.key_file);
	free(c->listen_tls);
	free(c->listen_https);
	free(c->allow);
	strv_free(c->rules, c->n_rules);
	free(c->alerts.ident);
	free(c->alerts.unix_path);
	free(c->alerts.file);
	free(c->user);
	free(c->dnstap.socket);
	free(c->dnstap.file);
	free(c->dnstap.identity);
	dk_group_confs_free(c->groups, c->n_groups);
	for (size_t i = 0; i < c->sigma.n_actions; i++)
		free(c->sigma.actions[i].key);
	free(c->sigma.actions);
	free(c->control_socket);
	free(c->metrics_token);
	free(c->state_dir);
	free(c);
}
