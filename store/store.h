/* store.h - berth's durable state in SQLite: networks and their IPAM,
 * containers, published ports and a bounded event log (DESIGN §4). */
#ifndef BERTH_STORE_H
#define BERTH_STORE_H

#include "lib/lib.h"

#include <stdbool.h>
#include <stdint.h>

/*
 * One database, state_dir/state.db, in WAL mode. Every function that changes
 * state runs as one BEGIN IMMEDIATE transaction, so several processes may
 * share the file and a kill -9 at any instant leaves either the old or the new
 * state. IPAM commits are fsynced (synchronous=FULL); the rest use NORMAL.
 *
 * All functions return 0 (or a count where said) on success and -errno on
 * failure, with the reason in e (lib.h). Names (networks, owners, containers)
 * are 1..STORE_NAME_MAX-1 bytes.
 */
#define STORE_NAME_MAX 64
#define STORE_MAX_RANGES 16         /* per network and family */
#define STORE_SCHEMA_VERSION 5      /* PRAGMA user_version written by this berth */
#define STORE_EVENTS_MAX 1000       /* the event ring keeps the newest rows */

struct store;

/* Open (or create) state_dir/state.db, creating state_dir (0700) if missing,
 * and migrate its schema forward. A database written by a newer berth, or a
 * file that is not a readable SQLite database, is refused with a message
 * naming the file; it is never recreated. */
int store_open(struct store **out, const char *state_dir, struct err *e);
void store_close(struct store *s);
/* Open an existing state_dir/state.db to read only (what `config check`
 * looks up while a daemon may be running): no directory or file is
 * created, nothing is migrated. -ENOENT when there is no database,
 * -EPROTO when its schema is not this berth's. */
int store_open_ro(struct store **out, const char *state_dir, struct err *e);
/* on (the default): every IPAM commit is fsynced before it returns, so an
 * address survives power loss. off: WAL with synchronous=NORMAL, which still
 * survives kill -9 of the process at any instant (this is the guarantee the
 * CNI host-local plugin gives; it never fsyncs). For flash-wear-conscious
 * boards and for the benchmark's like-for-like comparison. */
void store_ipam_fsync(struct store *s, bool on);

/*
 * Networks: the IPAM configuration of one network. A family is absent when
 * its subnet's family is 0. With nranges == 0 the whole subnet is the range.
 * The network address, the gateway and (IPv4) the broadcast address are
 * never handed out.
 */
struct store_pool {
	struct ip_prefix subnet;    /* subnet.addr.family: AF_INET, AF_INET6 or 0 */
	struct ip_addr gateway;     /* family 0 on put: first host of the subnet */
	size_t nranges;
	struct ip_range ranges[STORE_MAX_RANGES]; /* inside subnet, disjoint */
};

struct store_network {
	char name[STORE_NAME_MAX];
	struct store_pool v4, v6;
};

/* Define or update a network. Ranges are validated (inside the subnet, same
 * family, disjoint, at least one usable address); existing allocations are
 * kept even when they fall outside the new ranges. */
int store_network_put(struct store *s, const struct store_network *n, struct err *e);
/* Delete a network; -EBUSY while it still has allocations, -ENOENT if unknown. */
int store_network_delete(struct store *s, const char *name, struct err *e);
int store_network_get(struct store *s, const char *name, struct store_network *out,
		      struct err *e);
/* Calls fn for each network by name; a non-zero return from fn stops the walk
 * and is returned. */
typedef int store_network_fn(void *ctx, const struct store_network *n);
int store_network_list(struct store *s, store_network_fn *fn, void *ctx, struct err *e);

/*
 * IPAM with CNI host-local semantics. An owner (a container name) holds at
 * most one address per network and family.
 *  - Dynamic allocation continues after the last address dynamically handed
 *    out in that network and family (no immediate reuse), through the ranges
 *    in order, wrapping to the first. Its cost depends on the run of
 *    allocated addresses it steps over (an index walk), never on range size.
 *  - Sticky: an owner gets the address it had last time (even after release)
 *    while that address is free and still in the ranges.
 *  - Static: request != NULL asks for that exact address; an error if it is
 *    outside the ranges, reserved or held by another owner.
 *  - Idempotent: an owner that already holds an address gets it again.
 */
struct ipam_alloc {
	char network[STORE_NAME_MAX];
	char owner[STORE_NAME_MAX];
	struct ip_addr ip;
	int64_t created;            /* unix seconds */
};

int ipam_allocate(struct store *s, const char *network, int family, const char *owner,
		  const struct ip_addr *request, struct ip_addr *out, struct err *e);

/*
 * Reservations. A static address must be free when its owner comes to ask,
 * in whatever order owners allocate: an address another owner requests
 * statically is never handed out dynamically, nor as a sticky address, to
 * anyone else. The caller passes the reserved addresses with each request:
 * the daemon (the only process that allocates) takes them from the
 * configuration it applies, so the set changes with every reload, and no
 * reservation outlives the container file that made it; nothing about them
 * is stored. An owner that already holds a reserved address (it got it
 * before the static request existed) keeps it, since its process may be
 * using it, unless the caller says it may be renumbered: then, in the same
 * transaction, it gets another address and the static owner can have it.
 */
struct ipam_req {
	const char *network;
	int family;                     /* AF_INET or AF_INET6 */
	const char *owner;
	const struct ip_addr *request;  /* a static address, or NULL: dynamic */
	const struct ip_addr *reserved; /* other owners' static addresses, any order */
	size_t n_reserved;              /* (those of other families are ignored) */
	bool renumber;                  /* the owner may be moved off a reserved address */
	struct ip_addr renumbered_from; /* out: the reserved address it no longer holds */
};

/* ipam_allocate with reservations. Returns 0, 1 when the owner was moved
 * off a reserved address (r->renumbered_from says which), or -errno. */
int ipam_request(struct store *s, struct ipam_req *r, struct ip_addr *out, struct err *e);
/* Who holds ip in network: 1 with its name in owner, 0 when it is free. */
int ipam_holder(struct store *s, const char *network, const struct ip_addr *ip,
		char owner[STORE_NAME_MAX], struct err *e);
/* How many addresses of network's family (AF_INET, AF_INET6) its ranges
 * may hand out (network, broadcast and gateway addresses excluded;
 * saturated at UINT64_MAX) and how many of those are allocated. -ENOENT:
 * no such network, -EAFNOSUPPORT: it has no subnet of that family. */
int ipam_usage(struct store *s, const char *network, int family, uint64_t *usable,
	       uint64_t *used, struct err *e);
/* Release every address owner holds in network (both families); returns the
 * number released (0 when it held none). The sticky memory is kept. */
int ipam_release(struct store *s, const char *network, const char *owner, struct err *e);
/* Allocations of one network (NULL: all), ordered by network then address. */
typedef int ipam_alloc_fn(void *ctx, const struct ipam_alloc *a);
int ipam_list(struct store *s, const char *network, ipam_alloc_fn *fn, void *ctx,
	      struct err *e);
/* Start-up reconcile: release every allocation whose owner is not among the
 * n live_owners (configured or running), calling fn (may be NULL) for each
 * release, and forget the sticky addresses of those owners. One transaction.
 * Returns the number released. */
int ipam_reconcile(struct store *s, const char *const *live_owners, size_t n,
		   ipam_alloc_fn *fn, void *ctx, struct err *e);

/* Containers: what the daemon needs to adopt its containers after a restart. */
struct store_container {
	char name[STORE_NAME_MAX];
	char config_hash[72];       /* e.g. "sha256:<hex>" prefix; opaque */
	char state[16];             /* "created", "running", "exited", ... */
	int pid;                    /* 0 when not running */
	char netns[256];            /* bind-mounted netns file, "" if none */
	unsigned restarts;
	int exit_status;            /* last wait status as the daemon records it */
	int64_t started_at;         /* unix seconds, 0 if never started */
};

int store_container_put(struct store *s, const struct store_container *c, struct err *e);
int store_container_get(struct store *s, const char *name, struct store_container *out,
			struct err *e);          /* -ENOENT if unknown */
typedef int store_container_fn(void *ctx, const struct store_container *c);
int store_container_list(struct store *s, store_container_fn *fn, void *ctx, struct err *e);
/* Delete a container and its published ports. -ENOENT if unknown. */
int store_container_delete(struct store *s, const char *name, struct err *e);
/* Record a transition: state and pid; "running" also sets started_at to now;
 * exit_status >= 0 is recorded, < 0 leaves it unchanged. */
int store_container_set_state(struct store *s, const char *name, const char *state,
			      int pid, int exit_status, struct err *e);

/* Published ports. host_ip family 0 means every address of the host, which
 * conflicts with any other mapping of the same port and protocol. */
struct store_port {
	char network[STORE_NAME_MAX]; /* "" if not tied to a network */
	char container[STORE_NAME_MAX];
	struct ip_addr host_ip;
	uint16_t host_port, container_port;
	uint8_t proto;              /* IPPROTO_TCP, IPPROTO_UDP or IPPROTO_SCTP */
};

/* -EADDRINUSE with "8080/tcp is already published by web" when taken. */
int store_port_add(struct store *s, const struct store_port *p, struct err *e);
/* Delete p (matched on host_ip, host_port, proto), or with p == NULL every
 * port of container. Returns the number deleted. */
int store_port_delete(struct store *s, const char *container, const struct store_port *p,
		      struct err *e);
/* Ports of one container (NULL: all), ordered by host port. */
typedef int store_port_fn(void *ctx, const struct store_port *p);
int store_port_list(struct store *s, const char *container, store_port_fn *fn, void *ctx,
		    struct err *e);

/* Events: a ring of the newest STORE_EVENTS_MAX rows; adding one drops the
 * oldest in the same transaction (one row per event: flash wear). */
struct store_event {
	int64_t id;                 /* increasing */
	int64_t time;               /* unix seconds; 0 on add: now */
	char type[16];              /* container network reload port policy image cni daemon */
	char action[24];            /* "started", "died", "applied", ...; "" */
	char object[256];           /* what it happened to (a name, an image's reference); "" */
	char message[512];          /* in words; "" */
	char attrs[256];            /* "KEY=VALUE" lines, '\n' between: "exit_code=1"; "" */
};

/* Add ev (its id is the store's; longer strings are cut). Returns the new
 * event's id (> 0) or -errno. */
int64_t store_event_put(struct store *s, const struct store_event *ev, struct err *e);
/* store_event_put of type kind, no action or attributes. */
int store_event_add(struct store *s, const char *kind, const char *object,
		    const char *message, struct err *e);
/* Events with id > after_id, oldest first; a non-zero return from fn stops
 * the walk and is returned. fn is called while the rows are read: it must
 * not call into the store. */
typedef int store_event_fn(void *ctx, const struct store_event *ev);
int store_event_list(struct store *s, int64_t after_id, store_event_fn *fn, void *ctx,
		     struct err *e);
/* The newest event's id, 0 when there is none. */
int64_t store_event_last(struct store *s, struct err *e);
/* Called after each event committed through this handle (the daemon wakes
 * its followers with it); NULL: nobody. */
typedef void store_event_hook_fn(void *ctx, const struct store_event *ev);
void store_event_hook(struct store *s, store_event_hook_fn *fn, void *ctx);

/* CNI attachments (runtime/cni_attach.c): the request each was made from,
 * so that a restarted daemon sets them up again. A delete of one that is
 * not there is not an error. */
int store_cni_put(struct store *s, const char *name, const char *spec, struct err *e);
int store_cni_delete(struct store *s, const char *name, struct err *e);
typedef int store_cni_fn(void *ctx, const char *name, const char *spec);
int store_cni_list(struct store *s, store_cni_fn *fn, void *ctx, struct err *e);

/* Images (runtime/image/store.c): which name points at which manifest. ref
 * is a canonical name ("docker.io/library/busybox:latest") or, for an image
 * no name points at any more, its manifest digest ("sha256:HEX"). layers:
 * one line per layer, bottom first, "DIGEST DIFF_ID SIZE", '\n' between. */
#define STORE_REF_MAX 512
#define STORE_DIGEST_MAX 72         /* "sha256:" + 64 hex + NUL */
struct store_image {
	char ref[STORE_REF_MAX];
	char digest[STORE_DIGEST_MAX];          /* of the manifest */
	char config_digest[STORE_DIGEST_MAX];
	char *layers;                           /* get: the caller frees it */
	int64_t size;                           /* unpacked bytes */
	int64_t created, stored;                /* unix seconds */
};

/* Point i->ref at i's manifest. When ref pointed at another manifest that
 * no other name holds, that image stays, unnamed (its ref its digest), in
 * the same transaction: a container may still run from it. A name given to
 * an unnamed image's manifest replaces the unnamed row. */
int store_image_put(struct store *s, const struct store_image *i, struct err *e);
/* -ENOENT when ref is unknown. */
int store_image_get(struct store *s, const char *ref, struct store_image *out,
		    struct err *e);
/* -ENOENT when ref is unknown. */
int store_image_delete(struct store *s, const char *ref, struct err *e);
/* Every image, by ref (layers valid during the call only). */
typedef int store_image_fn(void *ctx, const struct store_image *i);
int store_image_list(struct store *s, store_image_fn *fn, void *ctx, struct err *e);

#endif
