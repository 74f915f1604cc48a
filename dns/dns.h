/* dns.h - berth's DNS server: container and service names, PTR, SRV, and a
 * forwarder with a cache, driven by the caller's event loop (DESIGN §6). */
#ifndef BERTH_DNS_H
#define BERTH_DNS_H

#include "lib/lib.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Records. The caller (the daemon, from its state) builds a complete record
 * set and hands it to the server, which swaps it in at once: a query is
 * always answered from one whole set, old or new, never from a half-built
 * one, and no query is dropped by an update. Later changes may be made to
 * the server's set in place, container by container (below).
 *
 * Names (DOMAIN is e.g. "berth.internal"):
 *   NAME, NAME.DOMAIN            A/AAAA of the container's addresses
 *   SERVICE, SERVICE.DOMAIN      A/AAAA of every member, order rotated per query
 *   _PORT._PROTO.X.DOMAIN        SRV 0 0 PORT NAME.DOMAIN for each container of
 *                                service or container X (dns_records_add_srv)
 *   PTR in in-addr.arpa/ip6.arpa for container addresses; the reverse zone of
 *                                each subnet is authoritative (NXDOMAIN + SOA)
 *   VSVC, VSVC.DOMAIN, _PORT._PROTO.VSVC.DOMAIN, the PTR of each VIP: a
 *                                service with virtual IPs (dns_records_set_service)
 *   DOMAIN                       SOA, NS ns.DOMAIN (whose A/AAAA is the
 *                                address the query arrived on)
 * Everything else is forwarded to the upstreams.
 *
 * Scoping (who sees what), decided per query from its source address:
 *   1. the source is an address of a known container: the names of every
 *      network that container is on (all its networks, not only the one
 *      the address belongs to);
 *   2. else the source lies in one or more networks' subnets: those networks;
 *   3. else (the host, e.g. through the loopback listener): all networks.
 * A name that exists only on networks the client cannot see is NXDOMAIN to
 * it; a PTR for an address of such a network is forwarded like any other.
 * At most DNS_MAX_NETWORKS networks and 65535 distinct names (containers
 * and services) per record set; a service lists at most 256 members.
 */
#define DNS_MAX_NETWORKS 64
#define DNS_EDNS_PAYLOAD 1232       /* what we advertise and the UDP cap */

struct dns_records;

/* A new, empty record set for zone domain ("berth.internal"), answers with
 * TTL ttl (seconds). NULL with the reason in e on a bad domain or ENOMEM. */
struct dns_records *dns_records_new(const char *domain, uint32_t ttl, struct err *e);
void dns_records_free(struct dns_records *r);
/* Declare network name with its subnets (the reverse zones it owns, and the
 * source addresses that see it). A network must be declared before its
 * containers. */
int dns_records_add_network(struct dns_records *r, const char *name,
			    const struct ip_prefix *subnets, size_t nsubnets, struct err *e);
/* Container name on network with its addresses there (IPv4 and/or IPv6).
 * Call once per network the container is on; the service (or NULL) of its
 * first call gets its addresses too. Names are single DNS labels (letters,
 * digits, '-', '_'); matching is case-insensitive. (A set built so may be
 * changed later with dns_records_set_container, below.) */
int dns_records_add_container(struct dns_records *r, const char *name, const char *network,
			      const struct ip_addr *addrs, size_t naddrs, const char *service,
			      struct err *e);
/* SRV _PORT._PROTO.NAME.DOMAIN, where NAME is a service or a container and
 * proto is "tcp", "udp" or "sctp". May be called before or after the
 * containers are added; it stays for the set's life (a container's own
 * ports go with it: struct dns_ctr). */
int dns_records_add_srv(struct dns_records *r, const char *name, uint16_t port,
			const char *proto, struct err *e);

/*
 * Changing a set in place, one container at a time (the daemon's reloads).
 * Each call costs what that container has (hash lookups, its service's
 * member list), not what the set holds, and takes effect whole for the
 * next query: a name or address it took away is NXDOMAIN at once (PTR too),
 * a service lists exactly its members. Whatever sequence of calls led to a
 * set, it answers byte for byte what a set built from scratch with the same
 * containers answers (service members and the owner of an address's PTR go
 * by the containers' names, not by the order they came in), but for the
 * SOA serial, which moves on with every change.
 */
struct dns_ctr_net {
	const char *network;        /* declared with dns_records_add_network */
	struct ip_addr addrs[2];    /* its IPv4 and/or IPv6 address there */
	size_t naddrs;
};
struct dns_ctr_ports {              /* SRV _PORT._PROTO for first..last */
	uint16_t first, last;
	const char *proto;          /* "tcp", "udp" or "sctp" */
};
struct dns_ctr {
	const char *name;
	const char *service;        /* NULL: none */
	const struct dns_ctr_net *nets;
	size_t nnets;
	const struct dns_ctr_ports *ports;  /* SRV of the name, and of the service */
	size_t nports;
};
/* Container c->name is c from now on: what it had before (addresses, its
 * place in a service, SRV ports) is replaced. On an error (the reason in e)
 * the container has no names at all; the rest of the set is as it was. */
int dns_records_set_container(struct dns_records *r, const struct dns_ctr *c, struct err *e);
/* The container name no longer has names, addresses or SRV ports of its
 * own (its name may still be a service of others). 0, or -ENOENT. */
int dns_records_remove_container(struct dns_records *r, const char *name);
/*
 * A service with virtual IPs (issue 23): NAME and NAME.DOMAIN answer A/AAAA
 * with its VIPs (not its members), _PORT._PROTO.NAME.DOMAIN answers SRV
 * 0 0 PORT NAME.DOMAIN for each of its ports, and the PTR of each VIP is
 * NAME.DOMAIN. Scoped like a container on network: clients that see the
 * network see it. Setting it again replaces what it had. A name that is a
 * container or a `service =` group is refused (-EEXIST): the config keeps
 * them apart, this is the guard.
 */
struct dns_service {
	const char *name;
	const char *network;        /* declared with dns_records_add_network */
	struct ip_addr vips[2];     /* its IPv4 and/or IPv6 VIP */
	size_t nvips;
	const struct dns_ctr_ports *ports;  /* SRV; first == last for a service's port */
	size_t nports;
};
/* At least one VIP, at most one per family; the order of vips does not
 * matter (IPv4 is listed first). Like a container it is part of the set's
 * in-place rules: any sequence of set/remove answers as a set built from
 * scratch with the same services and containers. Errors: EINVAL (a bad
 * name, VIP or port), ENOENT (an unknown network), EEXIST (the guard; the
 * mirror guard refuses a container, or a container's `service =`, that is
 * a VIP service's name), the set and any earlier definition of the service
 * then as they were; ENOSPC (65535 names) or ENOMEM, the service then has
 * no names at all. The PTR of a VIP outside every subnet: berth answers
 * the VIP's exact reverse name only (to clients that see the service),
 * other names of the service range are forwarded. */
int dns_records_set_service(struct dns_records *r, const struct dns_service *s, struct err *e);
/* The service name no longer has names, VIPs or SRV. 0, or -ENOENT. */
int dns_records_remove_service(struct dns_records *r, const char *name);
/* Bytes held by the set (for metrics and the memory budget). */
size_t dns_records_memory(const struct dns_records *r);

/*
 * Server. It registers its sockets and timers with the caller's loop and
 * never blocks: forwarded queries wait on their own non-blocking sockets.
 *
 * Forwarding: each upstream attempt uses a fresh connected UDP socket (a
 * random source port from the kernel, only the upstream's datagrams
 * accepted) and a random ID (getrandom); an answer counts only if its ID
 * and question match. Timeout, SERVFAIL/REFUSED/NOTIMP/FORMERR, a refused
 * port or garbage from an upstream move on to the next one; after the last,
 * SERVFAIL. A truncated UDP answer is asked again over TCP of the same
 * upstream. NOERROR/NXDOMAIN answers are cached (least TTL of answer and
 * authority, at most a day; negative ones for the SOA minimum, RFC 2308, at
 * most an hour; not without an SOA); cached TTLs count down. Relayed and
 * cached answers never carry AA: berth is not the authority for them.
 *
 * Upstream health: an upstream that timed out (or whose port was refused)
 * is "down": queries go to the upstreams that are up first, in the given
 * order, and to the down ones only when every other one failed. A down
 * upstream is probed in the background with a copy of a real query, 1 s
 * after it failed, then after 2, 4, ... up to 30 s while it stays silent;
 * the first answer from it (to a probe or to a real query) makes it up again.
 * So a dead first upstream costs one timeout, not one per query.
 *
 * UDP clients get at most 512 bytes, or their EDNS size capped at 1232;
 * larger answers come with TC=1 and go whole over TCP.
 *
 * TCP: at tcp_max_conns open connections, a new client is admitted by
 * closing the connection idle the longest (no query of it unanswered;
 * RFC 7766 §6.2.3); only when every connection is busy is the new one
 * refused. When accept() finds no descriptor left (EMFILE, ENFILE) the
 * listener pauses for 200 ms instead of waking up again at once, and says so
 * once in the log until a connection is accepted again.
 */
struct dns_server;

struct dns_upstream {
	struct ip_addr addr;
	uint16_t port;              /* 0: 53 */
};

#define DNS_MAX_UPSTREAMS 64

/* What the server has to say about itself (fd exhaustion, an upstream going
 * down or coming back), one line without the trailing newline. The levels
 * are in the daemon's order (enum log_level). */
enum dns_log_level { DNS_LOG_ERROR, DNS_LOG_WARN, DNS_LOG_INFO, DNS_LOG_DEBUG };
typedef void dns_log_fn(void *ctx, enum dns_log_level lvl, const char *msg);

struct dns_config {                 /* 0 in any field: the default */
	unsigned upstream_timeout_ms;   /* per upstream attempt; 2000 */
	unsigned cache_entries;         /* forwarded answers kept (LRU); 4096 */
	unsigned max_pending;           /* forwarded queries in flight; 512 */
	unsigned tcp_max_conns;         /* open TCP connections; 64 */
	unsigned tcp_idle_ms;           /* idle TCP connection closed after; 10000 */
	dns_log_fn *log;                /* NULL: "berth: LEVEL: MSG" lines on stderr
					   (error, warn and info) */
	void *log_ctx;
};

struct dns_server *dns_server_new(struct loop *l, const struct dns_config *c, struct err *e);
/* Closes every socket, drops queries in flight, frees the records. */
void dns_server_free(struct dns_server *s);
/* Answer from r from now on; the server owns r and frees the previous set.
 * NULL: no local names (everything is forwarded). */
void dns_server_set_records(struct dns_server *s, struct dns_records *r);
/* The set the server answers from (NULL: none), to change in place with
 * dns_records_set_container and dns_records_remove_container between two
 * loop callbacks (dns_records_set_service and _remove_service too). */
struct dns_records *dns_server_records(struct dns_server *s);
/* Replace the upstream list (tried in order; queries in flight keep going).
 * At most DNS_MAX_UPSTREAMS; an upstream that stays in the list keeps its
 * health. */
int dns_server_set_upstreams(struct dns_server *s, const struct dns_upstream *u, size_t n,
			     struct err *e);

struct dns_upstream_health {
	bool down;                  /* asked after the others until it answers again */
	unsigned fails;             /* timeouts and refusals since its last answer */
	uint32_t srtt_ms;           /* smoothed round-trip time of its UDP answers */
	uint64_t answers;           /* answers from it (queries and probes) */
	uint64_t timeouts;          /* attempts and probes that timed out */
};
/* The health of upstream i of the list (0-based). 0, or -ENOENT. */
int dns_server_upstream_health(const struct dns_server *s, size_t i,
			       struct dns_upstream_health *h);
/* Answer on addr:port over UDP and TCP. The address need not exist yet
 * (IP_FREEBIND). A port in use is an error that names the address:
 * "listen on 10.88.0.1:53/udp: Address in use (EADDRINUSE)". */
int dns_server_listen(struct dns_server *s, const struct ip_addr *addr, uint16_t port,
		      struct err *e);
/* Stop answering on addr:port; its TCP connections are closed. -ENOENT if
 * there is no such listener. */
int dns_server_unlisten(struct dns_server *s, const struct ip_addr *addr, uint16_t port);

struct dns_stats {
	uint64_t queries;           /* every query answered or forwarded */
	uint64_t noerror, nxdomain, servfail, formerr, notimp, refused, badvers;
	uint64_t authoritative;     /* answered from the records */
	uint64_t forwarded;         /* sent upstream (cache misses) */
	uint64_t cache_hits;
	uint64_t upstream_timeouts; /* attempts a client waited for that timed out
				       (probes count in dns_upstream_health) */
	uint64_t truncated;         /* UDP answers sent with TC=1 */
	uint64_t dropped;           /* unparseable, a reply that could not be sent,
				       a TCP connection refused at the limit
				       (every open one busy) */
	uint64_t tcp_conns;         /* TCP connections accepted */
	uint64_t tcp_evicted;       /* idle TCP connections closed to admit a new one */
	uint64_t upstream_probes;   /* queries copied to a down upstream */
	uint64_t cache_size;        /* entries in the cache now */
};
void dns_server_stats(const struct dns_server *s, struct dns_stats *st);

#endif
