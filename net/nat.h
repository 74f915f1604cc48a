/* nat.h - berth's nf_tables table "inet berth": masquerade, published ports
 * (DNAT maps), per-port counters and self-healing, over one long-lived socket. */
#ifndef BERTH_NET_NAT_H
#define BERTH_NET_NAT_H

#include "lib/lib.h"

#include <stdbool.h>
#include <stdint.h>

/*
 * The table (DESIGN §5). Everything berth puts into nf_tables lives in one
 * table, "inet berth", which is created or replaced in one batch (nat_sync):
 * there is never a moment with half a ruleset, and a daemon that restarts
 * replaces the table it finds atomically instead of flushing it first.
 * Afterwards only set and map elements change: publishing a port, adding a
 * network or removing either is one batch of a few elements, O(1) whatever
 * the number of ports, and no rule is rewritten.
 *
 * Chains, by hook and priority (a later module adds its own, see nat_part):
 *
 *   guard_pre   filter prerouting  -300  drop (and count) 127.0.0.0/8
 *                                         destinations not arriving on lo, and
 *                                         127.0.0.0/8 sources arriving on a
 *                                         berth bridge
 *   dnat_pre    nat    prerouting  -100  fib daddr type local: jump published
 *   dnat_out    nat    output      -100  fib daddr type local: jump published
 *   published   (regular)                 dnat through the four port maps
 *   snat_post   nat    postrouting  100  masquerade: hairpin (DNATed traffic
 *                                         from a berth subnet back onto a berth
 *                                         bridge), host loopback sources going
 *                                         to a container, and each network with
 *                                         masquerade = yes leaving through a
 *                                         non-bridge interface
 *   acct_in     filter input        300  ct status dnat: jump acct
 *   acct_post   filter postrouting  300  ct status dnat: jump acct
 *   acct        (regular)                 count the packet against its port
 *   (firewall, next issue: filter forward/input/output at priority 0)
 *
 * Sets and maps:
 *   bridges     ifname                                  berth's bridges
 *   subnets4/6  ipv4/ipv6_addr, interval                every berth subnet
 *   masq4/6     ipv4/ipv6_addr, interval                subnets with masquerade = yes
 *   ports4      inet_proto . inet_service : ipv4_addr . inet_service
 *   ports6      inet_proto . inet_service : ipv6_addr . inet_service
 *   ports4_ip   ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service
 *   ports6_ip   ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service
 *   count       inet_proto . inet_service, counter      per wildcard port (both families)
 *   count4_ip   ipv4_addr . inet_proto . inet_service, counter
 *   count6_ip   ipv6_addr . inet_proto . inet_service, counter
 *
 * A port published on every address ("8080:80/tcp") is an element of ports4
 * (and ports6 when the container has an IPv6 address) and of count; one on
 * one address ("127.0.0.1:9000:9000/tcp") an element of ports4_ip or
 * ports6_ip and count4_ip or count6_ip. DNAT applies to traffic whose
 * destination is a local address of the host, from outside (prerouting),
 * from the host itself (output) and from containers (hairpin, prerouting
 * on the bridge). Counters count every packet of a DNATed connection, both
 * directions, at the element of its original destination; they restart at
 * zero when the table is replaced. They are the per-element counters of
 * sets created with the counter flag (NFTA_SET_EXPR): the kernel gives each
 * element its own counter and a lookup updates it, so no named counter
 * objects are needed (checked on Linux 6.18 with nft --debug=netlink). They
 * sit in acct (input + postrouting, keyed by ct original proto-dst) rather
 * than on the DNAT maps because NAT chains see only a connection's first
 * packet.
 *
 * 127.0.0.1: the host reaching 127.0.0.1:PORT (or a port published on
 * 127.0.0.1 only) is DNATed in output, which re-routes the packet to the
 * bridge; the kernel accepts a 127.0.0.0/8 source leaving (and its replies
 * arriving) on an interface only with route_localnet on that interface. So
 * berth switches route_localnet on for its own bridges only, never for
 * "all" or an outside interface, and masquerades such connections to the
 * gateway address. What route_localnet would otherwise open (a container
 * sending to the host's 127.0.0.1 through the bridge, CVE-2020-8558 in
 * kube-proxy) is closed by guard_pre, which runs before conntrack and NAT:
 * a packet for 127.0.0.0/8 that did not arrive on lo is dropped (so a port
 * published on 127.0.0.1 is never reachable from another machine, even
 * though prerouting DNAT would run before the kernel's martian check), and
 * so is a 127.0.0.0/8 source arriving on a berth bridge. Replies of the
 * masqueraded connections carry the gateway as destination until NAT
 * rewrites them, after guard_pre. IPv6 has no route_localnet: publishing on
 * [::1] is refused (its DNAT would be refused by routing).
 *
 * Self-healing: with a loop, nat_open also opens a socket in the
 * NFNLGRP_NFTABLES group. A change to table inet berth made by anyone but
 * berth's own socket (`nft flush ruleset`, a firewall reload, `nft delete
 * element ...`) schedules a replacement of the whole table from berth's
 * memory 100 ms later (changes in a burst restore once), logged once per
 * incident. A batch of berth's own that fails because the table is gone
 * restores it on the spot.
 */

#define NAT_TABLE "berth"
/* The conntrack mark bit of a connection that came through a published
 * port: the firewall judges its ingress as from `world` (fw.h), whereas a
 * connection DNATed to a service's backend (net/svc.h) keeps its client as
 * the peer. A bit, not the whole mark: the rest is left to others (mwan3
 * and the like use the low bits). */
#define NAT_CT_PUBLISHED 0x10000000u
/* The three expressions that set it (ct mark |= NAT_CT_PUBLISHED, through
 * 32-bit register 8, which no DNAT of berth's uses): for a rule of a NAT
 * chain, before its DNAT. */
struct nft_expr;
void nat_mark_published(struct nft_expr *x);
#define NAT_OWNER_MAX 64

struct nat;
struct loop;
struct nft_batch;
struct nft_elem;

enum nat_log_level { NAT_LOG_ERROR, NAT_LOG_WARN, NAT_LOG_INFO };
typedef void nat_log_fn(void *ctx, enum nat_log_level lvl, const char *msg);

/* One network's part of the table. */
struct nat_network {
	const char *bridge;         /* its bridge, which must exist (route_localnet) */
	struct ip_prefix subnet4;   /* family 0: none */
	struct ip_prefix subnet6;   /* family 0: none */
	bool masquerade;
	bool fresh;                 /* the bridge was just (re)created: its route_localnet
				     * is set again even when nothing else changed */
};

/* One published port. Its identity is (host_ip, host_port, proto): removal
 * and counters match on those alone. */
struct nat_port {
	struct ip_addr host_ip;     /* family 0: every local address, both families */
	uint16_t host_port, container_port;
	uint8_t proto;              /* IPPROTO_TCP, IPPROTO_UDP or IPPROTO_SCTP */
	struct ip_addr addr4, addr6; /* the container's addresses; family 0: none */
	char owner[NAT_OWNER_MAX];  /* the container, for messages */
};

struct nat_stats {
	uint64_t packets, bytes;
};

/*
 * A later module's share of the table (the firewall): build() writes its
 * chains, sets, rules and elements of table NAT_TABLE (family NFPROTO_INET)
 * into the batch with the nft_put_* functions of net/nft.h, every time the
 * table is (re)built, after berth's own objects. Register with nat_add_part
 * before the first nat_sync; the part must outlive the struct nat. Later
 * changes go through nat_batch_send; change the part's own state first, so
 * that a restore (which calls build again) already has them.
 */
struct nat_part {
	void (*build)(struct nft_batch *b, void *ctx);
	void *ctx;
	struct nat_part *next;      /* owned by nat */
};

/* Open the nf_tables socket (and, with l, the event socket in l); log may be
 * NULL. Nothing is sent to the kernel until nat_sync. */
int nat_open(struct nat **out, struct loop *l, nat_log_fn *log, void *log_ctx, struct err *e);
/* Close; unless keep_table, delete the table first (if it was synced). */
void nat_close(struct nat *t, bool keep_table);
void nat_add_part(struct nat *t, struct nat_part *p);

/* Create or replace the whole table from what nat holds, in one batch. Until
 * the first nat_sync the functions below change only nat's memory, so that a
 * starting daemon replaces the previous table with the complete new one. */
int nat_sync(struct nat *t, struct err *e);
/* True once nat_sync created the table: before it, parts change only their
 * memory (build() puts everything at the first nat_sync). */
bool nat_live(const struct nat *t);
/* Send a batch of table NAT_TABLE through nat's socket (for parts changing
 * their elements later); a missing table is restored first. */
int nat_batch_send(struct nat *t, struct nft_batch *b, struct err *e);
/* The same without the restore: -errno as the kernel said it (for a part's
 * best-effort deletions, where -ENOENT means an element already gone). */
int nat_batch_try(struct nat *t, struct nft_batch *b, struct err *e);

/* Add or update a network (matched by bridge); switches route_localnet on
 * for its bridge. Idempotent. */
int nat_network_set(struct nat *t, const struct nat_network *n, struct err *e);
/* Remove a network's elements; an unknown bridge is not an error. */
int nat_network_del(struct nat *t, const char *bridge, struct err *e);

/* Publish p; publishing it again with the same target is a no-op, with a new
 * target (a container's new address) the elements are replaced in one batch.
 * -EADDRINUSE when another owner holds (host_ip, host_port, proto),
 * -EINVAL when the container has no address of the needed family or the
 * address is [::1]. */
int nat_port_add(struct nat *t, const struct nat_port *p, struct err *e);
/* Unpublish the port matched by (host_ip, host_port, proto); an unknown port
 * is not an error. Returns 1 when removed, 0 when unknown. */
int nat_port_del(struct nat *t, const struct nat_port *p, struct err *e);
size_t nat_port_count(const struct nat *t);

/*
 * Checks against the kernel (CNI CHECK), never against nat's memory: someone
 * may have run `nft delete element ...` and the restore not have run yet.
 * nat_table_check: 0 when table inet berth exists, -ENOENT ("table inet
 * berth is missing from the kernel") or -errno. nat_port_check: 0 when
 * every element berth writes for p is in the kernel (its map element or
 * elements, with p's target, and its counter element), else -ENOENT ("published
 * port 8080/tcp: its element in ports4 is missing from table inet berth"),
 * -EIO (the element leads elsewhere) or -errno. One single-element lookup
 * per element, no dump; the table itself is the caller's to check first
 * (nat_table_check: once for all of a container's ports).
 */
int nat_table_check(struct nat *t, struct err *e);
int nat_port_check(struct nat *t, const struct nat_port *p, struct err *e);
/* Look up the element with key->key in set of table NAT_TABLE (family
 * NFPROTO_INET, or NFPROTO_BRIDGE for the firewall's bridge table): 1 with
 * *out filled in (its data or verdict, for a map), 0 when the kernel has no
 * such element (or set, or table), -errno. */
int nat_elem_get(struct nat *t, uint8_t family, const char *set, const struct nft_elem *key,
		 struct nft_elem *out, struct err *e);

/* Dump the elements of set (table NAT_TABLE, family) from the kernel: fn
 * (net/nft.h's nft_elem_fn) for each; a set or table that is missing is
 * an empty set. For parts that keep dynamic sets (svc's affinity maps). */
int nat_elems_dump(struct nat *t, uint8_t family, const char *set,
		   int (*fn)(void *ctx, const struct nft_elem *el), void *ctx, struct err *e);

/* Read every port's counters from the kernel (one dump per counter set). */
int nat_counters_read(struct nat *t, struct err *e);
/* The counters of one port as of the last nat_counters_read; -ENOENT if it
 * is not published. */
int nat_port_stats(const struct nat *t, const struct nat_port *p, struct nat_stats *out);
/* Times the table was restored after a change by another program. */
uint64_t nat_restores(const struct nat *t);

/*
 * Host ports in use: a snapshot of the host's listening TCP and bound UDP
 * and SCTP sockets in the calling thread's netns (sock_diag dumps of TCP
 * listeners and unconnected UDP sockets, /proc/net/{tcp,tcp6,udp,udp6} on a
 * kernel without inet_diag; /proc/net/sctp/eps). nat_busy_check returns -EADDRINUSE with "port 8080/tcp is
 * in use on the host by nginx (pid 412)" when a socket's address overlaps p
 * (a wildcard on either side overlaps everything of its family; a port
 * published on every address overlaps every socket of that port).
 */
struct nat_busy;
int nat_busy_load(struct nat_busy **out, struct err *e);
int nat_busy_check(const struct nat_busy *b, const struct nat_port *p, struct err *e);
void nat_busy_free(struct nat_busy *b);

#endif
