/* net.h - container networking: bridges, per-container netns + veth, addresses, routes. */
#ifndef BERTH_NET_H
#define BERTH_NET_H

#include "lib/lib.h"

#include <stdbool.h>

/*
 * Topology (DESIGN §5): one bridge per network holding the gateway
 * address(es); per container and network a veth pair whose host end is
 * enslaved to the bridge and whose peer lives in the container's netns,
 * bind-mounted at STATE_DIR/netns/NAME, as eth0 (eth1, ...) with its
 * addresses and default routes via the gateway(s).
 *
 * Every operation is idempotent and adopts what it finds: attaching an
 * attached container converges (fixes what is missing, accepts what is
 * there), a half-done attach (killed between steps) is completed, and a
 * daemon that restarts simply attaches again. Detach removes the netns file;
 * the kernel then destroys the veth pair asynchronously (deleting it
 * explicitly would block ~16 ms in rcu_barrier), so the host end may be
 * visible for a few milliseconds after net_detach returns.
 *
 * Converging means: a netns file that is not mounted is mounted; a host end
 * whose peer is not our interface in the netns (or an interface there that
 * is not its peer) is deleted and the pair made again; missing addresses
 * are added and global addresses that are no longer wanted removed; the
 * default routes given are replaced; MTU, enslavement and link state are set.
 *
 * Choices other parts can see (each explained where it is made, net.c):
 *   - host ends carry the alias "berth:NAME/IFNAME" (ownership, collisions)
 *     and no IPv6 address (they are bridge ports);
 *   - a bridge berth creates has a fixed MAC derived from its name and is
 *     its own multicast querier (snooping instead of flooding every port);
 *   - a netns berth creates has IPv6 router solicitations and DAD of its
 *     link-local address off (berth sends no RAs; IPAM owns uniqueness), and
 *     the container's own addresses are added with IFA_F_NODAD;
 *   - default routes are "via GATEWAY dev IFNAME", proto boot;
 *   - every attach announces the container's addresses (a gratuitous ARP
 *     per IPv4 address, an unsolicited neighbour advertisement with the
 *     Override flag per IPv6 address), so that peers and the host that
 *     still cache another MAC for a reused address switch at once.
 *
 * No external program is ever run: everything goes through netlink, mount(2),
 * setns(2) and /proc/sys. The calling thread's network namespace at
 * net_open() is the host namespace; the functions setns() into container
 * namespaces only briefly, and always come back.
 */

#define NET_NAME_MAX 63             /* container names */
#define NET_IFNAME_MAX 15           /* interface names (IFNAMSIZ - 1) */
#define NET_ADDRS_MAX 2             /* one IPv4 and one IPv6, typically */

struct net;                         /* sockets and the state directory */

/* An interface address: "10.88.0.5/16" is addr 10.88.0.5, plen 16. */
struct net_ifaddr {
	struct ip_addr addr;
	uint8_t plen;
};

struct net_bridge {
	const char *name;           /* "berth0" */
	struct net_ifaddr gw[NET_ADDRS_MAX];    /* gateway address(es) on the bridge */
	unsigned n_gw;
	unsigned mtu;               /* 0: the kernel's default */
	/* Prefixes routed onto the bridge besides its subnets (the services'
	 * VIP ranges): the host's own connections to a VIP need a route
	 * before the NAT output hook can DNAT them, even on a device without
	 * a default route. Marked proto NET_RTPROT_BERTH; one of ours that is
	 * no longer given is removed. */
	struct ip_prefix routes[NET_ADDRS_MAX];
	unsigned n_routes;
};
#define NET_RTPROT_BERTH 200        /* `ip route` shows it as "proto 200" */

/* What a CNI result reports about an attachment. */
struct net_attach_out {
	uint8_t mac[6];             /* the container's interface */
	uint8_t host_mac[6];        /* the host end */
	uint8_t bridge_mac[6];
	char host[16];              /* the host end's name */
};

struct net_attach {
	const char *container;      /* [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 63 */
	const char *bridge;         /* the bridge to enslave the host end to (must exist) */
	const char *ifname;         /* inside the container; NULL: "eth0" */
	struct net_ifaddr addr[NET_ADDRS_MAX];  /* the container's address(es) */
	unsigned n_addr;
	/* The default route(s) this interface carries, via these gateways, one
	 * per family; each replaces the family's default route in the netns.
	 * A container on several networks gives a family's gateway to one of
	 * its interfaces only (its default network's), so that the default
	 * route does not depend on the order of the attaches, and replies leave
	 * by the interface whose address the published ports target. n_gw 0:
	 * this attach leaves the container's default routes alone. */
	struct ip_addr gw[NET_ADDRS_MAX];
	unsigned n_gw;
	unsigned mtu;               /* 0: 1500 */
	/* A network namespace owned by someone else (a CNI runtime's
	 * CNI_NETNS: /run/netns/cni-..., /proc/PID/ns/net). NULL: berth's own
	 * at STATE_DIR/netns/NAME. Given, it must exist and be a netns; berth
	 * opens it and never creates, mounts, unmounts or removes it, uses no
	 * spare for it, and refuses (instead of deleting) an interface a->ifname
	 * there that is not its own veth. The host end is named and labelled as
	 * for berth's own containers; net_unplug removes it again. */
	const char *netns;
	const uint8_t *mac;         /* 6 bytes for the container's interface; NULL: the kernel picks */
	struct net_attach_out *out; /* filled on success; NULL: not wanted */
	/* Leave the announcement (above) to a later net_announce: a caller
	 * that must not wait for it, since the broadcast reaches every port
	 * of the bridge and costs O(ports) in the sender's context. */
	bool announce_later;
};

/* Announce a's addresses on a->ifname in its netns (a->netns, or berth's
 * own), as net_attach does unless a->announce_later: a gratuitous ARP per
 * IPv4 address, an unsolicited neighbour advertisement per IPv6 address.
 * Only container, ifname, netns and addr are read. Best effort once the
 * interface is found; -errno when the netns or the interface is not there. */
int net_announce(struct net *n, const struct net_attach *a, struct err *e);

/* Open the netlink sockets of the calling thread's network namespace (the
 * "host" namespace from now on) and create STATE_DIR/netns. state_dir may be
 * NULL for bridge operations, net_unplug and attachments in other
 * namespaces (a->netns) only. Returns 0 or -errno; *out is NULL on failure. */
int net_open(struct net **out, const char *state_dir, struct err *e);
void net_close(struct net *n);      /* NULL is fine */

/* Create the bridge, or adopt an existing one (an existing non-bridge link of
 * that name is an error); add the gateway addresses (present ones are fine),
 * bring it up and switch on IPv4 (and, with an IPv6 gateway, IPv6)
 * forwarding through /proc/sys. Returns 1 when it created the bridge (its
 * per-link settings are the kernel's defaults again), 0 when it adopted it. */
int net_bridge_ensure(struct net *n, const struct net_bridge *b, struct err *e);
/* Delete the bridge; a missing bridge is not an error. */
int net_bridge_delete(struct net *n, const char *name, struct err *e);

/* Give the container its interface on a->bridge (see above). On failure, what
 * was created stays and the next attach (or a detach) picks it up. */
int net_attach(struct net *n, const struct net_attach *a, struct err *e);
/*
 * Prepare spare namespaces, each with a veth whose peer is already eth0
 * inside and whose host end is already a (down) port of bridge, until count
 * (at most 64) are ready, so that the next attaches of a new container's
 * eth0 skip creating them (most of the kernel's work of an attach): the
 * daemon calls this when idle. A spare serves any bridge (attach moves it if
 * needed), fastest the one it was made for. Spares live as long as this
 * struct net: net_close (or the process dying) lets the kernel destroy
 * them, so they never outlive berth. Their host ends are named "bp..." and
 * labelled "berth:spare". Returns the number ready, or -errno.
 */
int net_prepare(struct net *n, const char *bridge, unsigned count, struct err *e);

/* Remove the container's netns (and with it every interface in it). A
 * container that is not attached is not an error. */
int net_detach(struct net *n, const char *container, struct err *e);

/*
 * Remove the host end of container/ifname (NULL: "eth0"), and with it the
 * pair, for an attachment in someone else's netns, which net_detach cannot
 * remove. The host end must carry the alias "berth:NAME/IFNAME" (a veth
 * without alias is a create of ours that was interrupted before labelling);
 * anything else of that name is an error. A missing one is not. This is the
 * explicit veth deletion: it blocks the caller in the kernel ~15-20 ms.
 */
int net_unplug(struct net *n, const char *container, const char *ifname, struct err *e);
/* Take that host end down, which cuts the container off its bridge at once
 * (well under a millisecond), for a caller that runs net_unplug later. The
 * same ownership rules; a missing one is not an error. */
int net_unplug_down(struct net *n, const char *container, const char *ifname, struct err *e);

/*
 * Check an attachment without changing anything (CNI CHECK): the host end
 * exists, is ours, is a port of a->bridge and up; a->ifname exists in the
 * netns (a->netns, or berth's own) as the host end's peer, is up (and has
 * a->mac when given); each of a->addr is on it; a default route via each of
 * a->gw leaves through it. Returns 0, or -errno with the first problem in
 * words, e.g. "container web: address 10.88.0.5/16 is missing on eth0".
 */
int net_check(struct net *n, const struct net_attach *a, struct err *e);

/*
 * The kernel's counters of the host end of container/ifname (NULL: "eth0"),
 * seen from the host end: rx is what the container sent, tx what it
 * received. A veth counts every frame that crosses it, to the bridge's other
 * ports (containers on the same bridge) as to the host and the world, at no
 * per-packet cost beyond the kernel's own. Returns 1, 0 when there is no
 * such host end (zeroes), or -errno.
 */
struct net_link_stats {
	uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
};
int net_host_stats(struct net *n, const char *container, const char *ifname,
		   struct net_link_stats *out, struct err *e);

/* Validation, with the messages the CLI and config errors show:
 * "container name 'a/b': only letters, digits, '_', '.', '-' are allowed". */
int net_name_check(const char *container, struct err *e);
int net_ifname_check(const char *what, const char *ifname, struct err *e);

/* STATE_DIR/netns/NAME into buf. Returns 0 or -ENAMETOOLONG/-EINVAL. */
int net_netns_path(const struct net *n, const char *container, char *buf, size_t size,
		   struct err *e);

/*
 * Host-side veth name for the container's interface ifname (16 bytes with
 * the NUL), deterministic and collision-safe. K is the number ending ifname
 * (eth0 -> 0, eth1 -> 1, no number -> 0, at most 99):
 *   - "bh-NAME" when K is 0 and it fits in 15 characters ("bh-web");
 *   - otherwise "bh" K "-" + the first 6 (K < 10) or 5 characters of NAME +
 *     5 hex digits of the FNV-1a hash of "NAME/IFNAME":
 *     "bh1-webser3a9f1" for webserver/eth1, "bh0-a-very1c2d3" for a long name.
 * The third character tells the two forms apart ('-' vs a digit), so the
 * short form of one container never equals the hashed form of another. Two
 * hashed names can only meet through a 20-bit hash collision of names with
 * the same first characters; attach detects that case (each host end
 * carries the alias "berth:NAME/IFNAME") and refuses instead of stealing.
 */
int net_ifname_host(const char *container, const char *ifname, char out[16], struct err *e);

#endif
