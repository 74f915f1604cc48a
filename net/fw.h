/* fw.h - the firewall: label policies compiled to one model that is both
 * loaded into berth's nf_tables table and evaluated here for `policy why`. */
#ifndef BERTH_FW_H
#define BERTH_FW_H

#include "lib/lib.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Semantics (DESIGN §3, Kubernetes NetworkPolicy with labels). A packet from
 * a container is judged for egress against the policies selecting its
 * sender; a packet to a container for ingress against the policies selecting
 * its receiver; a packet between two containers for both, and it passes only
 * if both allow it. Each direction, in this order:
 *
 *   1. replies of allowed connections pass (conntrack: established, related);
 *   2. a container always reaches itself; DNS (udp and tcp 53) to the gateway
 *      of its own networks always passes (egress);
 *   3. containers on different berth networks never reach each other
 *      directly: only through a published port (DNAT);
 *   4. every policy selecting the container and having rules of the
 *      direction is tried; the first rule whose peer and port match allows;
 *   5. a container isolated for the direction (selected by a policy whose
 *      types include it) is denied;
 *   6. ingress only: between two containers of a network with isolate = yes,
 *      denied (published-port traffic excepted);
 *   7. otherwise allowed.
 *
 * Peers. For ingress the peer is the source, for egress the (translated)
 * destination. Traffic through a published port (DNAT) is ingress from
 * `world` only, whatever its origin. `host` is any local address of the host
 * (the kernel's fib says "local"), `world` anything neither local nor a
 * container's address. Selectors are sets of container addresses.
 *
 * The kernel side (fw_nft.c) emits these steps in the same order, with the
 * same sets, so `policy why` (fw_eval) and the kernel cannot disagree.
 */

#define FW_INGRESS 1
#define FW_EGRESS 2
#define FW_NAME_MAX 63

enum fw_peer_kind { FW_PEER_ALL, FW_PEER_SET, FW_PEER_CIDR, FW_PEER_HOST, FW_PEER_WORLD };

struct fw_peer {
	enum fw_peer_kind kind;
	unsigned set;               /* FW_PEER_SET: index into model->sets */
	struct ip_prefix cidr;      /* FW_PEER_CIDR */
	const struct ip_prefix *except;
	size_t n_except;
	int line;
};

struct fw_port {
	uint8_t proto;              /* IPPROTO_TCP, _UDP, _SCTP */
	bool any_port;
	uint16_t first, last;
};

struct fw_rule {
	int dir;                    /* FW_INGRESS or FW_EGRESS */
	const char *name;
	int line;
	struct fw_peer *peers;      /* ORed; none: every peer */
	size_t n_peers;
	const struct fw_port *ports;        /* ORed; none: every port */
	size_t n_ports;
};

struct fw_policy {
	const char *name;           /* "web" */
	const char *file;           /* "policies.d/web.ini" */
	unsigned select;            /* index into model->sets */
	unsigned isolates;          /* FW_INGRESS | FW_EGRESS */
	unsigned has_rules;         /* directions it has rules for */
	struct fw_rule *rules;
	size_t n_rules;
};

/* The addresses of the containers a selector matches. */
struct fw_set {
	char *what;                 /* "app=web,tier in (a,b)", for people */
	ARRAY(struct ip_addr) addrs;
};

struct fw_network {
	const char *name;
	const char *bridge;
	bool isolate;
	struct ip_addr gw[2];
	size_t n_gw;
};

/* One interface of a container: its address(es), and its name inside the
 * container, from which (with the container's name) net_ifname_host derives
 * the host-side veth when the anti-spoofing elements are put: the model is
 * rebuilt at every converge, so it holds no name it can derive. */
struct fw_iface {
	char ifname[8];             /* "eth0" */
	uint16_t network;           /* index into model->networks */
	uint8_t n_addrs;
	struct ip_addr addrs[2];
};

/* One container: 40 bytes, and its interfaces in model->ifaces (most
 * containers have one), so that a thousand of them cost ~90 KiB. */
struct fw_container {
	const char *name;
	const struct fw_iface *ifs; /* n_ifs, in model->ifaces */
	/* Set by fw_model_finish from the selector sets: the policies selecting
	 * it (any of its addresses in the policy's set), in model order, and
	 * the directions they isolate. */
	const unsigned *policies;   /* indices into model->policies */
	/* Equal for containers with equal labels (0: the container's own):
	 * such containers share their dispatch chains in the kernel, so that a
	 * policy change rewrites one chain per label set, not one map element
	 * per container. fw_model_finish sets it to 0 for containers that
	 * share one but are not selected alike. */
	uint64_t identity;
	uint32_t n_policies;
	uint8_t n_ifs;
	uint8_t isolated;           /* FW_INGRESS | FW_EGRESS */
};

struct fw_model {
	struct fw_set *sets;
	size_t n_sets;
	struct fw_policy *policies;
	size_t n_policies;
	struct fw_network *networks;
	size_t n_networks;
	struct fw_container *containers;
	size_t n_containers;
	struct fw_iface *ifaces;    /* the containers' interfaces, in their order */
	size_t n_ifaces;
	unsigned *selected_by;      /* fw_model_finish: the containers' policies */
};

/* Building (the daemon's compiler fills the arrays it owns through these):
 * add addresses, then fw_model_finish sorts each set and drops duplicates,
 * after which fw_set_contains is a binary search, and tells each container
 * which policies select it. */
int fw_set_add_addr(struct fw_set *s, const struct ip_addr *a);
int fw_model_finish(struct fw_model *m);    /* -ENOMEM */
bool fw_set_contains(const struct fw_set *s, const struct ip_addr *a);
void fw_model_free(struct fw_model *m);     /* frees the arrays, not borrowed strings */

/* What a side of a packet is. */
enum fw_end_kind { FW_END_CONTAINER, FW_END_HOST, FW_END_WORLD };

struct fw_end {
	enum fw_end_kind kind;
	struct ip_addr addr;        /* family 0: unspecified (host, world) */
	const struct fw_container *ctr;     /* FW_END_CONTAINER */
};

struct fw_packet {
	struct fw_end src, dst;
	uint8_t proto;
	uint16_t dport;
	bool dnat;                  /* arrived through a published port */
};

/* Resolve an address to what it is in the model: a container's address, a
 * gateway (host), or world. local tells whether the host owns it. */
void fw_end_from_addr(const struct fw_model *m, const struct ip_addr *a, bool local,
		      struct fw_end *out);
const struct fw_container *fw_container_find(const struct fw_model *m, const char *name);

/*
 * Judge a packet as the kernel would. Returns true when it passes; why gets
 * one line per direction judged, the deciding one last:
 *   egress client: allowed: not isolated for egress
 *   ingress web: allowed by policy web, rule ingress clients (policies.d/web.ini:6)
 */
bool fw_eval(const struct fw_model *m, const struct fw_packet *p, struct buf *why);

/*
 * In the kernel (fw_nft.c). fw_attach makes the firewall part of berth's
 * table (net/nat.h): every full build of the table puts *current, which the
 * caller keeps up to date. fw_apply sends, in one batch, what turns the
 * kernel's state for old into m: set and map elements when containers come,
 * go or change labels; a policy's own chains, and those of the label sets it
 * selects, when it is added, changed or removed.
 * It also switches on bridge-nf-call-ip(6)tables (br_netfilter), without
 * which bridged traffic between containers never reaches these rules.
 */
struct nat;
struct nat_part;
void fw_attach(struct nat *t, struct nat_part *part, const struct fw_model *current);
int fw_apply(struct nat *t, const struct fw_model *old, const struct fw_model *m, struct err *e);
/* CNI CHECK: 0 when every element the kernel should hold for container
 * name (by m, the model as applied) is there, asked of the kernel one
 * element at a time: its addresses in the fixed sets, the verdict map
 * elements leading to its identity's chains, the anti-spoofing elements of
 * its bridge port (table bridge berth) and its addresses in the selector
 * sets some rule names. Else -ENOENT ("firewall: its element 10.88.0.2 in
 * fw_in4 (the dispatch to its ingress policies) is missing from table inet
 * berth"), -EIO (a map element leads to another chain) or -errno. A
 * container the model does not have: 0 (nothing of it is in the kernel). */
int fw_check_container(struct nat *t, const struct fw_model *m, const char *name,
		       struct err *e);
/* Delete what fw_apply keeps outside table inet berth (table bridge berth),
 * when the daemon stops without --keep-network. */
void fw_remove(struct nat *t);

#endif
