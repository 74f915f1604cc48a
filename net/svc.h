/* svc.h - services' virtual IPs in table "inet berth": one verdict-map lookup
 * per packet leads a VIP's port to its service's chain, which picks a ready
 * backend with numgen and DNATs to it (issue 23). */
#ifndef BERTH_NET_SVC_H
#define BERTH_NET_SVC_H

#include "lib/lib.h"

#include <stdbool.h>
#include <stdint.h>

/*
 * The kernel path, a part of the NAT table (nat_add_part, net/nat.h):
 *
 *   svc_pre   nat prerouting -100 (after guard_pre):
 *               ip daddr . meta l4proto . th dport vmap @svc4
 *               ip6 daddr . meta l4proto . th dport vmap @svc6
 *               fib daddr type local: the published services (svc_pub*),
 *               whose connections get nat.c's NAT_CT_PUBLISHED mark: the
 *               firewall judges them as from world, like a container's
 *               published port, while a VIP's keep their client as peer
 *   svc_out   nat output -100: the same, for the host's own connections
 *   svc4/6    map VIP . proto . port : verdict "goto" the service port's chain
 *   svc-ID-P-F  one chain per service (ID, a number the module assigns),
 *             port (index P) and family (4 or 6): with affinity, a client
 *             address found in the affinity map keeps its backend; else
 *             numgen (random or inc) mod N into the backend map, DNAT to
 *             the backend's address and the port's target; the choice is
 *             remembered in the affinity map (timeout)
 *             (as built: the chain's first rule DNATs a client found in
 *             svca-ID-F to its backend; the second picks with numgen from
 *             svcb-ID-F, index -> address. The choice is remembered after
 *             DNAT, where the destination is the backend: svc_aff_fwd and
 *             svc_aff_out, filter forward/output -10, look a new DNATed
 *             connection's original VIP . proto . port up in svcaff4/6
 *             (a port published on every address: its proto . port in
 *             svcaffp4/6, for a connection svc_pub marked), which leads
 *             to svcr-ID-F: "update @svca-ID-F { saddr timeout T : daddr }".
 *             A map fed from a map lookup in one rule would work in the
 *             kernel, but nft 1.x aborts listing it.)
 *   svc_empty4/6  set VIP . proto . port of the service ports with no ready
 *             backend: a filter chain at forward and output rejects them at
 *             once (TCP reset, else ICMP port unreachable) instead of letting
 *             the packet wander off through the default route
 *
 * A change (svc_set, svc_del) is one batch: the chains of the service are
 * rewritten (their numgen modulus changes with N), its map elements
 * replaced; nothing else in the table is touched, so the cost of a change
 * does not grow with the number of services, nor does a packet's (one map
 * lookup finds the service whatever their number). Conntrack keeps an
 * established connection's backend whatever happens to the chains.
 * Filtering is not here: the firewall's forward chains run after DNAT and
 * see the client and the backend, so a policy that denies client ->
 * backend denies client -> VIP too (and one that allows it, allows it). Masquerade of container -> VIP -> container on the same
 * bridge is nat.c's hairpin rule (ct status dnat from a berth subnet onto
 * a berth bridge).
 */

#define SVC_NAME_MAX 64
#define SVC_PORTS_MAX 32
#define SVC_BACKENDS_MAX 1024

struct nat;
struct svc;

enum svc_pick { SVC_PICK_RANDOM, SVC_PICK_ROUND_ROBIN };

struct svc_port {
	uint8_t proto;              /* IPPROTO_TCP, _UDP or _SCTP */
	uint16_t port;              /* on the VIP */
	uint16_t target;            /* on the backends */
};

/* A service port reachable on the host's own addresses too. */
struct svc_publish {
	struct ip_addr host_ip;     /* family 0: every local address, both families */
	uint16_t host_port;
	uint8_t proto;
	uint16_t port;              /* the service port it leads to */
};

struct svc_def {
	char name[SVC_NAME_MAX];    /* identity; for messages */
	struct ip_addr vip4, vip6;  /* family 0: none */
	const struct svc_port *ports;
	size_t n_ports;
	/* the ready backends' addresses, per family; any order (the module
	 * sorts them, so that the same set gives the same rules) */
	const struct ip_addr *backends4, *backends6;
	size_t n_backends4, n_backends6;
	enum svc_pick pick;
	uint32_t affinity_s;        /* 0: none */
	const struct svc_publish *publish;
	size_t n_publish;
};

/* Register the part with t (before the first nat_sync). */
int svc_open(struct svc **out, struct nat *t, struct err *e);
void svc_close(struct svc *s);
/* Add or replace the service d->name: one batch. -EADDRINUSE when another
 * service holds one of its VIP . proto . port or a published host port,
 * -EINVAL on a bad definition (a VIP of a family with backends of the
 * other, too many ports). Setting the same definition again sends nothing. */
int svc_set(struct svc *s, const struct svc_def *d, struct err *e);
/* Remove the service name; an unknown one is not an error (0). */
int svc_del(struct svc *s, const char *name, struct err *e);
size_t svc_count(const struct svc *s);

/* Everything of the part into b, as nat_sync has it put (the part's build:
 * the fixed chains, sets and rules, then every service); for tests that
 * read the batch back. (svc_close: the part stays registered with its nat,
 * so close the nat first.) */
struct nft_batch;
void svc_put_all(struct svc *s, struct nft_batch *b);

#endif
