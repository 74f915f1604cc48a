/* daemon_int.h - the daemon's context, shared by daemon.c (life cycle,
 * signals), reconcile.c (config -> store/net/dns) and requests.c (the
 * control commands). Internal to runtime/. */
#ifndef BERTH_DAEMON_INT_H
#define BERTH_DAEMON_INT_H

#include "runtime/config/config.h"
#include "runtime/ctl/ctl.h"
#include "runtime/ctr/ctr.h"
#include "runtime/image/image.h"
#include "runtime/runtime.h"
#include "lib/lib.h"
#include "net/fw.h"
#include "net/nat.h"
#include "net/net.h"
#include "store/store.h"

struct store;
struct net;
struct nat;
struct dns_server;
struct remote_server;

#define DNS_PORT 53
#define DNS_HOST_ADDR "127.0.0.53"  /* [dns] host = yes */
#define DAEMON_MAX_LISTENERS 64
#define DAEMON_STOP_SLACK_MS 8000   /* after the longest stop_timeout: the monitor's
				     * SIGKILL (5 s grace, container.c) and its end */

/* One interface of a container, as attached. */
struct ctr_if {
	const char *network;        /* borrowed from the running config */
	char ifname[16];            /* eth0, eth1, ...; an attachment's: its runtime's */
	struct ip_addr ip4, ip6;    /* family 0: none */
};

/* Where a configured container's network is. */
enum ctr_net {
	CTR_NET_NONE,               /* not applied yet */
	CTR_NET_READY,              /* its interfaces are up: it may run, it has names */
	CTR_NET_ERROR,              /* applying failed (error says why) */
	CTR_NET_STOPPING,           /* it changes once its old process is gone */
};

/* A configured container as the daemon runs it; kept small, one per
 * container for the daemon's whole life (issue 19). */
struct ctr {
	const struct cfg_container *cfg;    /* borrowed from the running config */
	struct ctr_if *ifs;         /* room for cfg->n_networks; n_ifs attached */
	size_t n_ifs;
	enum ctr_net state;
	char *error;                /* why it is not ready; NULL: nothing */
	uint64_t applied;           /* hash of what its network was set up from */
	uint64_t dns_pub;           /* hash of what DNS has of it (0: nothing; apply_dns) */
	bool unchanged;             /* this converge left it as it was, process included */
	bool dns_seen;              /* apply_dns: still configured */
	uint64_t image_since_ms;    /* its definition came (loop_now_ms): pull = always
				     * wants a pull that ended after this */
};

/* A container whose network is taken down once its process has ended (it
 * was removed, or its networks changed): the stop is under way, nothing
 * waits for it; the supervisor's on_gone runs what is recorded here. */
struct pending_down {
	struct pending_down *next;
	char name[STORE_NAME_MAX];
	char release[CONFIG_NET_PER_CONTAINER][STORE_NAME_MAX];  /* networks whose address goes */
	size_t n_release;
	bool forget;                /* removed: its records go too */
};

/*
 * The resolv.conf the DNS upstreams come from when [dns] upstream is not
 * given (resolv_watch.c): rewritten in place, replaced by rename, deleted
 * and created, or behind a symlink, each change reaches on_change once it
 * has settled (~100 ms), on the loop. Embedded in its owner; zeroed means
 * not following.
 */
struct resolv_watch;
typedef void resolv_watch_fn(struct resolv_watch *w);
struct resolv_watch {
	bool active;
	struct loop *loop;
	struct loop_fd fd;          /* inotify */
	struct loop_timer settle;   /* a burst of events is one change */
	int wd_file;                /* the file itself (-1: absent) */
	int wd_dir[2];              /* its directory; its target's when a symlink */
	char names[2][256];         /* the names that matter in those directories */
	char path[4096];
	resolv_watch_fn *on_change;
};
/* Follow path (a no-op when already following it; another path is left).
 * Returns 0, or -errno when its directory cannot be watched. */
int resolv_watch_start(struct resolv_watch *w, struct loop *l, const char *path,
		       resolv_watch_fn *on_change, struct err *e);
void resolv_watch_stop(struct resolv_watch *w);

/*
 * A CNI attachment (cni_attach.c): a container of podman, containerd or k3s
 * on one of berth's networks. It is set up exactly as a configured
 * container is (the same reconcile code: IPAM, veth, ports, firewall, DNS)
 * but for its process, which the runtime runs, and its netns, which is the
 * runtime's. Kept in the store (table cni, the add request's words) so that
 * it outlives a daemon restart; reloads never remove it.
 */
struct cni_origin {
	const char *id;             /* CNI_CONTAINERID */
	const char *ifname;         /* CNI_IFNAME */
	const char *netns;          /* CNI_NETNS */
	const char *dns_name;       /* its name in DNS; NULL: none */
	const char **aliases;       /* more names in DNS (podman's --network-alias) */
	size_t n_aliases;
	const uint8_t *mac;         /* requested; NULL: the kernel's */
};

struct cni_att {
	struct cfg_container c;     /* c.cni == &o; c.name: ID[:12][-IFNAME] */
	struct cni_origin o;
	struct net_attach_out link; /* the MACs and the host end, as attached */
	char *network;
	uint8_t mac[6];
	ARRAY(const char *) aliases;        /* o.aliases */
	ARRAY(char *) strs;         /* every string above and in c */
};

/* The attachment c is (c->cni != NULL). */
static inline struct cni_att *cni_att_of(const struct cfg_container *c)
{
	return container_of(c, struct cni_att, c);
}

/* The name c has in DNS: a configured container's own; an attachment's,
 * the one its runtime gave it (NULL: none). Its aliases are c->cni's. */
static inline const char *ctr_dns_name(const struct cfg_container *c)
{
	return c->cni ? c->cni->dns_name : c->name;
}

/* A container's health (health.c): starting, healthy, unhealthy. */
enum health_status { HS_STARTING, HS_HEALTHY, HS_UNHEALTHY };
#define HEALTH_OUT_MAX 256          /* bytes of a probe's output kept (docker: 4096) */
struct health;

/* A service as applied (services.c). */
struct svc_run {
	char *name;
	char *network;              /* the pool its VIPs came from */
	struct ip_addr vip4, vip6;  /* family 0: none */
	uint64_t vips_for;          /* the definition (cfg_service.hash) the VIPs were
				     * taken for; 0: none yet */
	size_t n_backends4, n_backends6;
	uint64_t dns;               /* hash of what DNS has of it; 0: nothing */
	bool seen;                  /* still configured (services_apply) */
};
/* A network's service ranges as written to the store ("~NETWORK"). */
struct svc_pool {
	char *name;
	uint64_t hash;
};
struct svc;

/* The daemon's context: every piece of mutable state the process has. */
struct daemon {
	struct loop loop;
	struct loop_fd sig;
	struct ctl_server ctl;
	struct remote_server *remote;   /* [remote]: the control protocol over TLS */
	const char *config_dir;     /* NULL: /etc/berth if present, else embedded */
	struct config *cfg;         /* the running configuration */
	struct config_cache *cfg_cache;     /* its files as parsed, for the next reload */
	struct store *store;
	struct net *net;
	struct nat *nat;            /* table inet berth (net/nat.h) */
	bool nat_synced;            /* the table was replaced at start-up */
	struct dns_server *dns;
	struct ctr *ctrs;           /* one per container: config order, then attachments */
	struct fw_model fw;         /* the policies as compiled for the kernel */
	struct nat_part fw_part;    /* the firewall's share of the table */
	struct svc *svc;            /* services' VIPs in the table (net/svc.h) */
	ARRAY(struct svc_run) svc_runs;     /* the services as applied (services.c) */
	ARRAY(struct svc_pool) svc_pools;   /* service range pools as written to the store */
	size_t n_ctrs;
	struct name_index ctrs_by_name;     /* over ctrs: daemon_ctr in O(1) */
	ARRAY(struct cni_att *) atts;       /* CNI attachments, oldest first */
	struct name_index atts_by_name;
	struct net_worker *net_worker;      /* unplugs and announcements (net_worker.c) */
	/* networks whose store row holds what their description hashes to: a
	 * reload does not write (and fsync) the rows of unchanged networks */
	ARRAY(struct stored_net { char *name; uint64_t hash; }) nets_stored;
	bool store_swept;           /* start-up: what an earlier run left is cleaned up */
	uint64_t dns_base;          /* hash of the DNS domain, TTL and networks the
				       records were built for (apply_dns) */
	struct ip_addr listeners[DAEMON_MAX_LISTENERS];  /* DNS, port 53 */
	size_t n_listeners;
	int lock_fd;
	bool keep_network;
	struct ctr_sup sup;         /* container processes (runtime/ctr) */
	char *state_dir;            /* the sup's: the config's copy goes with each reload */
	struct pending_down *downs;
	struct loop_timer converge; /* reconcile again: a pending down is done */
	struct ctr_spec spec;       /* the supervisor's last lookup */
	char spec_netns[4096];
	bool leave_containers;      /* SIGQUIT: exit, leave containers running */
	bool exiting;               /* SIGTERM: containers are stopping, then exit */
	struct loop_timer exit_deadline;    /* exit even if a container never ends */
	struct reload_wait *reload_waits;   /* `reload --wait` replies owed (requests.c) */
	struct resolv_watch resolv; /* no [dns] upstream: resolv.conf, followed */
	struct image_mgr images;    /* pulls and imports (images.c, runtime/image/mgr.c) */
	struct loop_timer image_retry;      /* a failed pull a container waits for */
	bool image_reload;          /* this converge is a reload's: failed pulls retry now */
	char image_blocked[ERR_MSG_MAX + 64];       /* the spec's blocked, when an image's */
	char image_status[32];
	struct event_wait *event_waits;     /* `events --wait` replies owed (events.c) */
	struct loop_timer events_wake;      /* new events: the followers look */
	char *pid_file;             /* run_dir/berth.pid, ours to remove at exit; NULL */
	struct health *health;      /* one per container with a check (health.c) */
	struct name_index health_by_name;
	uint64_t started_ms;
	uint64_t reloads, reload_failures;
	uint64_t last_reconcile_us;
};

void daemon_log(const struct daemon *d, enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* daemon_log for the rooms' log callbacks (ctx: the daemon). */
void daemon_log_ctx(void *ctx, enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Load the configuration the daemon was started with (-c DIR, /etc/berth, or
 * the embedded default) and check it against the filesystem (preflight).
 * On errors returns -EINVAL and appends every error line to errors_out;
 * strict (a reload): a missing rootfs is an error too, else a warning.
 * Warnings are logged and appended to warnings_out ("warning: ..."; may be
 * NULL). */
int daemon_load_config(const struct daemon *d, bool strict, struct config **out,
		       struct buf *errors_out, struct buf *warnings_out);

/* Make the kernel, the store and DNS match cfg, which the daemon then owns
 * (the previous config is freed). Problems with single objects are logged
 * and appended to report ("container web: ..."); they do not stop the rest.
 * Returns the number of such problems. */
int reconcile_apply(struct daemon *d, struct config *cfg, struct buf *report);
/* What reconcile_apply(new) would change, one line each ("+ container web"),
 * into out; "no changes" when nothing differs. */
void reconcile_diff(const struct config *old, const struct config *cfg, struct buf *out);
/* Let go of everything at shutdown (containers' addresses stay in the store). */
void reconcile_shutdown(struct daemon *d);
/* Wire the supervisor's callbacks to the daemon's view of its containers. */
void reconcile_sup_init(struct daemon *d);
/* The configured container named name (case-insensitive), or NULL. */
struct ctr *daemon_ctr(const struct daemon *d, const char *name);
/* Where c's netns is: berth's own file, or an attachment's runtime's. */
void daemon_netns_path(const struct daemon *d, const struct cfg_container *c, char *buf,
		       size_t size);
/* The container name of cfg, or the attachment of that name, or NULL. */
const struct cfg_container *daemon_container(const struct daemon *d, const struct config *cfg,
					     const char *name);
/* Outside a reload: set up one attachment (already in d->atts), as a
 * converge would, firewall and DNS included. -1 with e: it stays listed as
 * failed until reconcile_remove_one. */
int reconcile_add_one(struct daemon *d, const struct cfg_container *c, struct err *e);
/* Outside a reload: take down the attachment name (interface, addresses,
 * ports, names, records); it must still be in d->atts. */
void reconcile_remove_one(struct daemon *d, const char *name);

/* CNI CHECK: what berth put into the kernel for the container name is
 * still there, asked of the kernel (someone may have run `nft delete
 * element`): table inet berth, each of its published ports' elements
 * (nat_port_check) and its firewall elements (fw_check_container). The
 * first problem comes back in e. */
int reconcile_check_one(struct daemon *d, const char *name, struct err *e);

/* CNI attachments (cni_attach.c): the `cni` request, the attachments kept
 * in the store brought back at start-up (before the first reconcile), and
 * freed at exit (after reconcile_shutdown). */
int req_cni(struct daemon *d, const struct ctl_request *rq, struct buf *out, struct err *e);
void cni_restore(struct daemon *d);
void cni_free(struct daemon *d);

/* Network work off the loop (net_worker.c), in order, in one thread:
 * started with the daemon (without it, unplugs run inline and announcements
 * stay in net_attach), stopped at exit once its queue is done.
 * net_worker_unplug takes the host end down now and removes the pair there;
 * net_worker_announce queues a's announcement (false: it could not, and
 * net_attach must announce); net_worker_wait returns once no job of name is
 * queued or under way. */
int net_worker_start(struct daemon *d, struct err *e);
void net_worker_unplug(struct daemon *d, const char *name, const char *ifname);
bool net_worker_announce(struct daemon *d, const struct net_attach *a);
void net_worker_wait(struct daemon *d, const char *name);
void net_worker_stop(struct daemon *d);

/* Services with virtual IPs (services.c). services_apply: every service of
 * d->cfg into the kernel (VIPs from the store, ready backends) and DNS
 * (dns_fresh: the record set is new, so every service's names are put
 * again), services gone removed; problems go to report (may be NULL) and
 * count in *n. services_refresh: the same, for the services that
 * select container name, after its readiness changed (it started, ended,
 * turned healthy or unhealthy). services_names:
 * the configured services' names (the owners of VIPs in the store).
 * req_service answers `service ls`. */
void services_apply(struct daemon *d, bool dns_fresh, struct buf *report, int *n);
void services_refresh(struct daemon *d, const char *name);
struct svc *services_free(struct daemon *d);  /* the part: svc_close after nat_close */
size_t services_names(const struct config *cfg, const char **out, size_t max);
uint64_t services_pool_hash(const struct daemon *d, const char *pool);
void services_pool_record(struct daemon *d, const char *pool, uint64_t hash);
int req_service(struct daemon *d, const struct ctl_request *rq, struct buf *out, struct err *e);
/* The service named word (case-insensitive) or whose VIP is addr (either
 * may be NULL), with the VIP in vip (a name: its IPv4 one if it has one);
 * NULL when none. services_backends: the names of its ready backends. */
const struct cfg_service *services_find(const struct daemon *d, const char *word,
					 const struct ip_addr *addr, struct ip_addr *vip);
size_t services_backends(const struct daemon *d, const struct cfg_service *s,
			 const char **names, size_t max);

/* The firewall model of cfg for the containers as attached (policy_compile.c).
 * Borrows strings from cfg: rebuild it whenever cfg changes. */
int policy_compile(const struct config *cfg, const struct ctr *ctrs, size_t n_ctrs,
		   struct fw_model *out, struct err *e);

/* Images (images.c): the manager set up once the store is open (and its
 * registry options at each reload), closed at exit (workers cancelled and
 * joined); images_prepare starts the pull c needs (now: even a failed one
 * whose back-off has not passed); images_spec fills sp->image, or blocks it
 * ("pulling 37%", a failed pull's error, "image X is not here (pull =
 * never)"); req_image answers `image pull|import|status|ls|inspect|rm|prune`. */
int images_init(struct daemon *d, struct err *e);
void images_configure(struct daemon *d);
void images_close(struct daemon *d);
void images_prepare(struct daemon *d, struct ctr *c, bool now);
void images_spec(struct daemon *d, const struct ctr *c, struct ctr_spec *sp);
int req_image(struct daemon *d, const struct ctl_request *rq, struct buf *out, struct err *e);
/* A container's "image" in `inspect`: null (a rootfs), or its reference,
 * pull, read_only and, once here, the image's digest, exposed ports and
 * stop signal. */
void images_inspect(struct daemon *d, const struct cfg_container *c, struct buf *out);

/* `berth run` and `berth rm` (req_run.c): containers.d/NAME.ini written,
 * or a container's file removed, then a reload; nothing changes when the
 * configuration would have errors (their file:line lines are the details). */
int req_run(struct daemon *d, const struct ctl_request *rq, struct buf *out, struct err *e);
int req_remove(struct daemon *d, const struct ctl_request *rq, struct buf *out, struct err *e);

/* Events (events.c): daemon_event records one (type: container network
 * reload port policy image cni daemon; attrs "KEY=VALUE" lines or NULL; fmt
 * the message or NULL) and wakes the followers; events_on_ctr is the
 * supervisor's on_event; events_format prints one for people or as a JSON
 * object; req_events answers `events [--since UNIX] [--type T,...] [--after
 * ID|last] [--wait] [--cursor]`; events_init hooks the store (once it is
 * open), events_close answers the followers at exit. */
void daemon_event(struct daemon *d, const char *type, const char *action, const char *object,
		  const char *attrs, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void events_on_ctr(void *ctx, const char *name, const char *action, int code, const char *msg);
void events_format(const struct store_event *ev, bool json, struct buf *out);
int req_events(struct daemon *d, const struct ctl_request *rq, struct buf *out, struct err *e);
size_t events_waiting(const struct daemon *d);
void events_init(struct daemon *d);
void events_close(struct daemon *d);

/*
 * Health checks (health.c). health_on_ctr follows the supervisor's events
 * (probes begin at "started"/"restarted", stop at "died"/"stopped");
 * health_sync, after each converge, brings the checks in line with the
 * config (and picks up containers adopted running); health_on_reap is the
 * supervisor's on_reap (an exec probe's process); health_free at exit.
 * health_in_service: may c be among its service's DNS answers and a
 * service's backends (an attachment: yes; no check: while its process
 * runs; else while running and healthy). health_status_of: false when
 * no check or not running. health_inspect: inspect's "health" value (null
 * or an object). A transition records a container health_status event,
 * changes DNS (reconcile_dns_one) and, with on_unhealthy = restart,
 * restarts the container.
 */
void health_on_ctr(struct daemon *d, const char *name, const char *action);
void health_sync(struct daemon *d);
void health_on_reap(void *ctx, pid_t pid, int status);
void health_free(struct daemon *d);
bool health_in_service(const struct daemon *d, const struct cfg_container *c);
bool health_status_of(const struct daemon *d, const char *name, enum health_status *out);
const char *health_status_word(enum health_status s);
void health_inspect(const struct daemon *d, const char *name, struct buf *out);
/* Outside a converge: container name's DNS records as they should be now
 * (its service membership follows its health). */
void reconcile_dns_one(struct daemon *d, const char *name);

/* `network ls|inspect NAME` and `port NAME` (req_network.c), `stats
 * [NAME...]` (req_stats.c). */
int req_network(struct daemon *d, const struct ctl_request *rq, struct buf *out, struct err *e);
int req_port(struct daemon *d, const struct ctl_request *rq, struct buf *out, struct err *e);
/* One address as JSON: {"network","interface","family","address",
 * "prefix_length"} (prefix_len < 0: null), the same in ps, inspect and
 * network inspect (requests.c). */
void json_address(struct buf *out, const char *network, const char *ifname,
		  const struct ip_addr *ip, int prefix_len);
/* A published port's host side as people read it: "0.0.0.0:8080",
 * "127.0.0.1:9000", "[::1]:8080". */
void port_host_side(struct buf *b, const struct store_port *p);
int req_stats(struct daemon *d, const struct ctl_request *rq, struct buf *out, struct err *e);

/* The control requests (requests.c; `policy why` in policy_why.c). */
int req_policy_why(struct daemon *d, const struct ctl_request *rq, struct buf *out,
		   struct err *e);
int daemon_on_request(void *ctx, const struct ctl_request *rq, struct buf *out,
		      struct err *e);
/* A container's process changed state: the `reload --wait` replies whose
 * containers are all done are sent. */
void requests_on_ctr_change(struct daemon *d);
/* Append the reload reply's RELOAD_STOPPING line when containers are stopping. */
void reload_say_stopping(struct daemon *d, struct buf *out);
/* At exit: answer the replies still owed with an error. */
void requests_close(struct daemon *d);

#endif
