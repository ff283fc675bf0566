/* SPDX-License-Identifier: MIT */
/*
 * The configuration: conf/dnsink.yml read with libyaml into struct dk_config.
 * Parsing is driven by a schema table (key, type, handler), so every key the
 * file may hold is listed in one place and every error carries FILE:LINE.
 *
 * Also here, because config, server and tests all need them: socket address
 * parsing and the client access list.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <syslog.h>

#include "dnsink/common.h"
#include "dnsink/msg.h"

/** Most worker threads (config "workers", --workers). */
#define DK_WORKERS_MAX 256

/*
 * The defaults, every one of them, for a key the file leaves out. They are
 * named here once so that the loader, the daemon and tests that build a
 * config by hand (dk_config_set_defaults()) cannot drift apart; code that
 * reads a config never substitutes a fallback of its own for a zero.
 */
/** Where upstreams come from when none are configured. */
#define DK_DEFAULT_RESOLV_CONF "/etc/resolv.conf"
/** Port of listen and upstreams entries written without one. */
#define DK_DEFAULT_DNS_PORT  53
#define DK_DEFAULT_LISTEN_V4 "127.0.0.1:5353"
#define DK_DEFAULT_LISTEN_V6 "[::1]:5353"
#define DK_DEFAULT_ALLOW_V4  "127.0.0.0/8"
#define DK_DEFAULT_ALLOW_V6  "::1/128"
/** Rule folder: taken from the current directory, else from the config's. */
#define DK_DEFAULT_RULES "rules/"
/** Where transferred RPZ zones and downloaded lists are kept across restarts. */
#define DK_DEFAULT_STATE_DIR           "/var/lib/dnsink"
#define DK_DEFAULT_UPSTREAM_TIMEOUT_MS 1500
/** The most a client query may wait for the upstreams, every try and retransmission. */
#define DK_DEFAULT_RESOLVE_TIMEOUT_MS 3000
#define DK_DEFAULT_UPSTREAM_STRATEGY  DK_STRATEGY_ORDERED
/** Sinkhole TTL; the sinkhole addresses default to 0.0.0.0 and ::. */
#define DK_DEFAULT_SINKHOLE_TTL    60
#define DK_DEFAULT_ALERT_TRANSPORT DK_SYSLOG_LOCAL
#define DK_DEFAULT_ALERT_IDENT     "dnsink"
#define DK_DEFAULT_ALERT_FACILITY  LOG_DAEMON
#define DK_DEFAULT_ALERT_FORMAT    DK_ALERT_FORMAT_NATIVE
/** Port of udp:// and tcp:// alert collectors written without one. */
#define DK_DEFAULT_SYSLOG_PORT 514
#define DK_DEFAULT_ALERT_QUEUE 10000
#define DK_DEFAULT_DEDUP_MAX   65536
/** Worker threads; 0 is one per core. */
#define DK_DEFAULT_WORKERS         0
#define DK_DEFAULT_MAX_INFLIGHT    4096
#define DK_DEFAULT_TCP_MAX_CLIENTS 256
#define DK_DEFAULT_TCP_IDLE_MS     10000
/** Time a DNS-over-TLS client has to finish its handshake (tls.handshake_timeout_ms). */
#define DK_DEFAULT_TLS_HANDSHAKE_MS 5000
/** Port of listen_https entries written without one. */
#define DK_DEFAULT_DOH_PORT 443
/** Port of metrics.listen written without one; metrics are off by default. */
#define DK_DEFAULT_METRICS_PORT 9153
/** Rate limit: off while qps is 0. */
#define DK_DEFAULT_RATE_LIMIT_QPS         0
#define DK_DEFAULT_RATE_LIMIT_ACTION      DK_RATELIMIT_DROP
#define DK_DEFAULT_RATE_LIMIT_TABLE_SIZE  65536
#define DK_DEFAULT_RATE_LIMIT_IPV4_PREFIX 32
#define DK_DEFAULT_RATE_LIMIT_IPV6_PREFIX 64
/* rate_limit.burst defaults to qps (1 while qps is 0), once qps is known. */
/** Response cache (cache:): memory in all workers together; 0 turns it off. */
#define DK_DEFAULT_DNSTAP_QUEUE           256
#define DK_DEFAULT_CACHE_SIZE_MB          64
#define DK_DEFAULT_CACHE_MIN_TTL          0
#define DK_DEFAULT_CACHE_MAX_TTL          86400
#define DK_DEFAULT_CACHE_NEGATIVE_MAX_TTL 3600
#define DK_DEFAULT_CACHE_FAILURE_TTL      5
#define DK_DEFAULT_CACHE_SERVE_STALE      true
#define DK_DEFAULT_CACHE_STALE_MAX_S      86400
#define DK_DEFAULT_CACHE_PREFETCH         true

struct dk_group_conf;

/** An IPv4 or IPv6 socket address. */
struct dk_addr {
	union {
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	};
	socklen_t len; /**< sizeof the family's sockaddr */
};

/** One entry of sigma.actions: a Sigma level or rule id and the action it gets. */
struct dk_sigma_action {
	char *key;     /**< "informational".."critical", or a Sigma rule id */
	int action;    /**< enum dk_action */
	unsigned line; /**< of the key in the config file */
};

/** sigma: default_action and actions (dnsink.yml(5) and dnsink-rules(5), SIGMA RULES). */
struct dk_sigma_conf {
	int default_action; /**< enum dk_action; default alert */
	struct dk_sigma_action *actions;
	size_t n_actions;
};

/** A network prefix of the access list. */
struct dk_cidr {
	int family;       /**< AF_INET or AF_INET6 */
	uint8_t prefix;   /**< prefix length in bits */
	uint8_t addr[16]; /**< network address, host bits zero */
};

/** Where alert records go. */
enum dk_syslog_transport {
	DK_SYSLOG_LOCAL, /**< syslog(3) */
	DK_SYSLOG_UDP,   /**< RFC 5424 over UDP (RFC 5426) */
	DK_SYSLOG_TCP,   /**< RFC 5424 over TCP, octet counting (RFC 6587) */
	DK_SYSLOG_UNIX,  /**< RFC 5424 to a unix datagram socket */
};

/** Which upstream a query tries first. */
enum dk_upstream_strategy {
	DK_STRATEGY_ORDERED, /**< the first in the list that has not failed this query */
	DK_STRATEGY_FASTEST, /**< the lowest smoothed RTT, the others probed now and then */
};

/** What happens to a query over its client's rate limit. */
enum dk_ratelimit_action {
	DK_RATELIMIT_DROP,    /**< no answer (as Unbound's ip-ratelimit, dnsdist's Drop) */
	DK_RATELIMIT_REFUSED, /**< REFUSED */
};

struct dk_up_opts; /* dnsink/upstream_spec.h */

enum dk_alert_format {
	DK_ALERT_FORMAT_NATIVE, /**< the native alert record (dnsink.yml(5)) */
	DK_ALERT_FORMAT_OCSF,   /**< OCSF DNS Activity (class_uid 4003) */
};

struct dk_config {
	char *file; /**< path it was loaded from */

	struct dk_addr *listen; /**< each gets a UDP and a TCP listener */
	size_t n_listen;
	struct dk_addr *upstreams; /**< tried in order */
	size_t n_upstreams;
	/** Per upstream (n_upstreams): transport, TLS name and pin; NULL while all are plain. */
	struct dk_up_opts *upstream_opts;
	bool upstreams_from_resolv;   /**< filled from /etc/resolv.conf */
	unsigned upstream_timeout_ms; /**< the longest one try may wait */
	unsigned resolve_timeout_ms;  /**< the longest a query may wait, all tries */
	enum dk_upstream_strategy upstream_strategy;
	struct dk_cidr *allow; /**< allow_clients */
	size_t n_allow;
	char **rules; /**< rule files and folders, resolved paths */
	size_t n_rules;
	struct dk_sinkhole sinkhole;

	struct {
		enum dk_syslog_transport transport;
		char *ident;           /**< default "dnsink" */
		int facility;          /**< LOG_DAEMON etc. (already shifted, as syslog.h) */
		struct dk_addr server; /**< UDP/TCP collector */
		char *unix_path;       /**< unix:// collector */
		char *file;            /**< JSON-lines file sink; NULL: none */
		enum dk_alert_format format;
		size_t queue;     /**< records held while a sink is away */
		size_t dedup_max; /**< dedup keys held at most */
	} alerts;

	unsigned workers;       /**< 0: one per core */
	size_t max_inflight;    /**< upstream queries in flight per worker */
	size_t tcp_max_clients; /**< concurrent TCP connections per worker */
	unsigned tcp_idle_ms;   /**< idle TCP connection timeout */
	char *user;             /**< drop privileges to this user; NULL: stay */
	char *control_socket;   /**< control.socket: unix socket of `dnsink ctl`; NULL: off */
	char *state_dir;        /**< transferred zones and downloaded lists */
	struct dk_addr metrics; /**< Prometheus endpoint */
	bool metrics_enabled;
	char *metrics_token; /**< metrics.token: bearer token every HTTP request must carry */

	/** Per-client rate limit (rate_limit:), per worker; off while qps is 0. */
	struct {
		unsigned qps;                    /**< queries per second per client; 0: off */
		unsigned burst;                  /**< bucket size; defaults to qps */
		enum dk_ratelimit_action action; /**< default drop */
		size_t table_size;               /**< client buckets per worker */
		unsigned ipv4_prefix;            /**< bits naming an IPv4 client (default 32) */
		unsigned ipv6_prefix;            /**< bits naming an IPv6 client (default 64) */
	} rate_limit;

	/** dnstap out (dnstap:); off while neither socket nor file is set. Read at start. */
	struct {
		char *socket;   /**< a Frame Streams receiver's unix socket */
		char *file;     /**< or a file (not both) */
		char *identity; /**< the messages' identity; NULL: "dnsink" */
		bool forwarder; /**< FORWARDER_* messages too (not written yet) */
		size_t queue;   /**< messages held per worker for the writer */
	} dnstap;
	/** TLS (tls:): trust for tls:// upstreams, certificate for listen_tls. */
	struct {
		char *ca_file;         /**< PEM trust store for upstreams; NULL: the system's */
		char *cert_file;       /**< PEM certificate chain of listen_tls */
		char *key_file;        /**< PEM private key of listen_tls */
		unsigned handshake_ms; /**< a client's handshake must be done by then */
	} tls;
	struct dk_addr *listen_tls; /**< DNS over TLS listeners (RFC 7858) */
	size_t n_listen_tls;
	struct dk_addr *listen_https; /**< DNS over HTTPS listeners (RFC 8484), /dns-query */
	size_t n_listen_https;

	/** Response cache (cache:), split between the workers; off while size_mb is 0. */
	struct {
		size_t size_mb;            /**< memory for all workers' caches together */
		unsigned min_ttl;          /**< positive TTLs raised to this, seconds */
		unsigned max_ttl;          /**< every TTL lowered to this */
		unsigned negative_max_ttl; /**< cap of NXDOMAIN/NODATA TTLs (RFC 2308) */
		unsigned failure_ttl;      /**< SERVFAIL / upstream failure, 1..300 (RFC 9520) */
		bool serve_stale;          /**< RFC 8767 */
		unsigned stale_max_s; /**< how long past expiry an answer may be served stale */
		bool prefetch;        /**< refresh entries asked for in their last tenth */
	} cache;

	/** Client groups (groups:), as written; resolved with the rules (dnsink/groups.h). */
	struct dk_group_conf *groups;
	size_t n_groups;
	/** What a matching Sigma rule does (sigma:). */
	struct dk_sigma_conf sigma;
};

/**
 * Reads @p path into a new config in @p *out (caller frees with
 * dk_config_free()). Missing keys get the documented defaults; when no
 * upstreams are configured they come from @p resolv_conf (NULL:
 * "/etc/resolv.conf"), minus our own listeners. Returns 0 or a negative code
 * with @p diag set to FILE:LINE: message.
 */
int dk_config_load(const char *path, const char *resolv_conf, struct dk_config **out,
                   struct dk_diag *diag);

/** Frees @p c and everything it owns. NULL is a no-op. */
void dk_config_free(struct dk_config *c);

/**
 * Writes every DK_DEFAULT_* value that needs no memory into @p cfg, a zeroed
 * config (calloc'ed or memset): timeouts, sizes, the sinkhole, the alert
 * transport, facility and format, the rate limit. It allocates nothing and
 * leaves the pointer members as they are: listen, allow, rules, upstreams
 * and alerts.ident stay NULL, so a config built by hand sets what it uses
 * and remains the caller's to free. dk_config_load() starts from this and
 * adds the default lists and ident itself.
 */
void dk_config_set_defaults(struct dk_config *cfg);

/**
 * Parses "1.2.3.4", "1.2.3.4:53", "::1", "[::1]:53" into @p out; a missing
 * port becomes @p default_port. Returns 0 or DK_ESYNTAX.
 */
int dk_addr_parse(const char *s, uint16_t default_port, struct dk_addr *out);

/** True when @p a and @p b are the same address and port (and IPv6 scope). */
bool dk_sockaddr_equal(const struct sockaddr *a, const struct sockaddr *b);

/** Formats @p a as "1.2.3.4:53" or "[::1]:53". Returns length or DK_ESPACE. */
int dk_addr_format(const struct dk_addr *a, char *buf, size_t size);

/** Formats only the IP of @p sa (no port, no brackets). Returns length or DK_ESPACE. */
int dk_sockaddr_ip(const struct sockaddr *sa, char *buf, size_t size);

/** Parses "10.0.0.0/8", "::1/128" or a bare address (full length). */
int dk_cidr_parse(const char *s, struct dk_cidr *out);

/**
 * True when @p sa falls in one of @p n prefixes of @p acl. An IPv4-mapped
 * IPv6 source is matched as IPv4. An empty list allows nobody.
 */
bool dk_acl_allows(const struct dk_cidr *acl, size_t n, const struct sockaddr *sa);
