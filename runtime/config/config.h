/* config.h - berth's configuration (DESIGN §3): the INI files loaded with inih,
 * every value validated, and held as one model that the daemon reads. */
#ifndef BERTH_CONFIG_H
#define BERTH_CONFIG_H

#include "lib/lib.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Where the files are. With a directory: DIR/berth.ini (optional: missing
 * means every default), DIR/containers.d/ *.ini (one container each) and
 * DIR/policies.d/ *.ini (one policy each), DIR/services.d/ *.ini (one
 * service each, or [service NAME] in berth.ini); other names (README, x.ini.bak,
 * hidden files) are ignored. Without one: the embedded default below.
 *
 * Decisions where DESIGN §3 is silent (also in README's config reference):
 * - A berth.ini without any [network] gets the embedded network `default`.
 * - A container's name is its file name without ".ini"; a `name` key
 *   overrides it. Names are DNS labels (a-z, 0-9, '-', at most 63, compared
 *   case-insensitively) because NAME resolves in DNS.
 * - restart defaults to `no`, as in Docker; stop_timeout (seconds the
 *   container gets between SIGTERM and SIGKILL) defaults to 10.
 * - init defaults to `yes` (Docker's --init as the default): berth itself is
 *   the container's PID 1, forwards signals to the command and reaps
 *   orphans, so a command without a SIGTERM handler still stops at once.
 * - An indented line continues the previous value, joined with one space;
 *   an indented `KEY = VALUE` line whose KEY is a config key starts a new key
 *   instead (indenting keys is common). Lines are at most CONFIG_LINE_MAX
 *   characters (inih's buffer); longer values go on continuation lines.
 * - Keys are lower case and case-sensitive; yes|no|true|false|on|off|1|0.
 * - memory takes bytes with an optional K, M, G or T suffix (powers of
 *   1024), at least 1M; cpus is a decimal count of CPUs (0.001 to 1024).
 * - log_size (bytes, same suffixes, at least 16K, default 1M): a container's
 *   log is rotated once (NAME.log.1) when it reaches this size.
 * - Nameservers read from resolv.conf are skipped when they are 127.0.0.53
 *   and [dns] host = yes (that is berth itself: forwarding would loop).
 * - default_network names one of the container's networks (default: the
 *   first in networks order): its default routes, its resolver and its
 *   published ports all use that one, so that replies leave by the
 *   interface requests came in on (README, reconcile.c apply_container).
 * - Two containers asking for the same static ip/ip6 is an error. Static
 *   addresses are reserved for their container by the daemon at every
 *   reconcile (store.h, ipam_request); whether a running container holds
 *   one dynamically depends on the store, so the reload says so, not
 *   `config check`.
 * - [dns] resolv_conf names that file (default /etc/resolv.conf; e.g.
 *   /run/systemd/resolve/resolv.conf behind systemd-resolved). The daemon
 *   follows it as it changes. Giving it with upstream is an error: it would
 *   not be read.
 * - A container runs from exactly one of `image = REF` and `rootfs = DIR`.
 *   With an image, command is optional (the image's Entrypoint and Cmd run;
 *   a command replaces Cmd, as in docker), pull says when the image is
 *   fetched (missing: only when the store lacks it), and read_only = no
 *   gives the container a persistent upper directory of its own instead of
 *   a tmpfs under a read-only root. pull and read_only are refused with a
 *   rootfs (always bound read-only; nothing to pull). REF is checked here
 *   lightly (characters, tag, digest); image_ref_parse has the last word.
 * - [images] ca defaults to Debian's bundle /etc/ssl/certs/ca-certificates.crt.
 * - A service's name (compared case-insensitively) is no container's name
 *   and no container's `service =`: a DNS name means one thing. vip = auto
 *   on a network without service_range and service_range6 is an error (the
 *   embedded default network has neither). An affinity timeout is whole
 *   seconds from 1s to 24h (Kubernetes' bounds). A publish HOST_IP:PORT is
 *   told from HOST_PORT:PORT by the dots of the address.
 */
#define CONFIG_DIR_DEFAULT "/etc/berth"
#define CONFIG_LINE_MAX 197         /* inih INI_MAX_LINE 200 minus \r \n \0 */
#define CONFIG_FILE_MAX (1 << 20)   /* bytes per file */
#define CONFIG_FILES_MAX 4096       /* per directory */
#define CONFIG_NAME_MAX 63          /* containers, networks, services, rules */
#define CONFIG_NET_PER_CONTAINER 8  /* eth0 .. eth7 */
/* Containers per network: a network is a Linux bridge, which takes at most
 * BR_MAX_PORTS (1024) ports less port 0, which the kernel never hands out;
 * the next attach fails with EXFULL. */
#define CONFIG_BRIDGE_PORTS_MAX 1023

/* The embedded default (config_default.c): network default on berth0. */
extern const char config_default_ini[];

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

struct cfg_daemon {
	const char *state_dir;      /* /var/lib/berth */
	const char *run_dir;        /* /run/berth */
	enum log_level log_level;   /* info */
};

struct cfg_network {
	const char *name;
	const char *bridge;         /* default: "berth-NAME" */
	struct ip_prefix subnet;    /* IPv4, prefix length at most 30 */
	struct ip_addr gateway;     /* default: first host of subnet */
	/* Where IPAM allocates. Never empty after loading: without `range` keys
	 * it is first host .. last host (IPv4: broadcast excluded). The gateway
	 * may lie inside a range; IPAM skips it (CNI host-local). */
	struct ip_range *ranges;
	size_t n_ranges;
	bool has_v6;
	struct ip_prefix subnet6;   /* prefix length at most 126 */
	struct ip_addr gateway6;    /* default: first host of subnet6 */
	struct ip_range *ranges6;   /* as ranges; only with has_v6 */
	size_t n_ranges6;
	bool masquerade;            /* yes */
	bool isolate;               /* no */
	unsigned mtu;               /* 1500, 576..9000 */
	/* service_range = CIDR, service_range6 = CIDR: where `vip = auto`
	 * takes its services' virtual IPs (family 0: none). Outside every
	 * network's subnet and every other service range: a VIP is reached
	 * through the gateway, never on the bridge (issue 23). */
	struct ip_prefix service_range, service_range6;
	const char *file;           /* where it was defined, for messages */
	int line;
};

struct cfg_dns {
	const char *domain;         /* berth.internal */
	struct ip_addr *upstreams;  /* default: nameservers of resolv.conf */
	size_t n_upstreams;
	/* The file the upstreams are read from (and followed): resolv_conf,
	 * else config_opts.resolv_conf, else /etc/resolv.conf. NULL when
	 * upstream is given. */
	const char *resolv_conf;
	int resolv_conf_line;       /* where resolv_conf was given; 0: not given */
	unsigned ttl;               /* 10, 0..86400 */
	unsigned cache;             /* 4096 entries, 0..1000000 (0: no cache) */
	bool host;                  /* yes: also answer on 127.0.0.53 */
};

struct cfg_images {
	const char *ca;             /* PEM bundle the registries' certificates are checked against */
	const char *credentials;    /* a podman/docker auth.json; NULL: none */
	bool allow_devices;         /* no: a layer's device nodes are refused */
};

struct cfg_remote {
	bool enabled;               /* a [remote] section was given */
	struct ip_addr addr;        /* listen = ADDR:PORT or [ADDR6]:PORT */
	uint16_t port;
	const char *cert, *key, *client_ca;     /* absolute paths, required */
	uint8_t (*read_only)[32];   /* SPKI SHA-256 of read-only clients */
	size_t n_read_only;
	uint8_t (*clients)[32];     /* clients = ...: when given, the only other keys allowed */
	size_t n_clients;
};

struct label {
	const char *key;            /* [prefix/]name, Kubernetes syntax */
	const char *value;          /* may be "" */
};

enum restart_policy { RESTART_NO, RESTART_ON_FAILURE, RESTART_ALWAYS };
/* When a container's image is fetched: missing (not in the store), always
 * (at every start: a tag may have moved), never (it must be imported). */
enum image_pull { PULL_MISSING, PULL_ALWAYS, PULL_NEVER };

/* health = tcp:PORT | http:PORT[/PATH] | exec:CMD... (runtime/health.c runs it). */
enum health_kind { HEALTH_NONE, HEALTH_TCP, HEALTH_HTTP, HEALTH_EXEC };
enum on_unhealthy { ON_UNHEALTHY_NONE, ON_UNHEALTHY_RESTART };
#define HEALTH_PATH_MAX 1024        /* bytes of an http check's path */
struct cfg_health {
	enum health_kind kind;      /* HEALTH_NONE: no check (the other fields unused) */
	uint16_t port;              /* tcp, http: on 127.0.0.1 in the container's netns */
	const char *path;           /* http: "/..." ("/" when not given) */
	char **argv;                /* exec: split like command; argv[argc] == NULL */
	size_t argc;
	uint32_t interval_ms;       /* between the end of a probe and the next, 10 s */
	uint32_t timeout_ms;        /* a probe that takes longer fails, 5 s */
	uint32_t start_period_ms;   /* failures right after a start do not count, 0 */
	unsigned retries;           /* failures in a row that make it unhealthy, 3 */
	enum on_unhealthy on_unhealthy;     /* none */
};

/* ports = [HOST_IP:]HOST_PORT[-END]:PORT[-END][/PROTO]; ranges of equal length. */
struct cfg_port {
	bool has_host_ip;           /* false: every address of the host */
	struct ip_addr host_ip;     /* IPv6 written [ADDR]:PORT:PORT */
	uint16_t host_first, host_last;
	uint16_t first, last;       /* container side */
	uint8_t proto;              /* IPPROTO_TCP (default), _UDP, _SCTP */
	int line;
};

struct cfg_container {
	const char *name;           /* file name without .ini, or `name` */
	const char *file;           /* "containers.d/web.ini" */
	const char *rootfs;         /* absolute path; NULL when image is given */
	const char *image;          /* a reference, as written; NULL when rootfs is given */
	enum image_pull pull;       /* missing */
	bool read_only;             /* yes: the image's root is read-only, /tmp etc. tmpfs */
	char **argv;                /* command split like a shell would (quotes, \); with an
				     * image NULL (argc 0) when not given: the image's Cmd */
	size_t argc;                /* argv[argc] == NULL */
	const char **env;           /* "KEY=VALUE", in file order */
	size_t n_env;
	struct label *labels;
	size_t n_labels;
	const char **networks;      /* names; default: { "default" } */
	size_t n_networks;
	size_t default_net;         /* index in networks of default_network (default 0):
				     * the default routes, resolv.conf, published ports */
	struct cfg_port *ports;
	size_t n_ports;
	const char *service;        /* DNS name shared by a group; NULL: none */
	bool has_ip, has_ip6;
	struct ip_addr ip, ip6;     /* static requests, inside a network's subnet */
	bool init;                  /* berth's init is PID 1 and runs the command (yes) */
	enum restart_policy restart;
	uint64_t memory;            /* bytes; 0: no limit */
	unsigned cpus_milli;        /* 1000 = one CPU; 0: no limit */
	unsigned stop_timeout;      /* seconds, 10 */
	uint64_t log_size;          /* bytes of stdout/stderr kept before one rotation, 1M */
	struct cfg_health health;   /* kind HEALTH_NONE: no check */
	struct {                    /* where keys were (0: not given), for messages */
		int section, name, rootfs, image, command, networks, default_network, ports, ip,
			ip6, health, service;
	} lines;
	/* Of its file's path and text: equal hashes, the same container (a
	 * container is its file alone). Reconcile skips what did not change. */
	uint64_t hash;
	/* Not from a file: a CNI attachment (runtime/cni_attach.c), a
	 * runtime's container on one network, without a process of ours, in
	 * the runtime's netns. NULL for every container the config loads. */
	const struct cni_origin *cni;
};

/* One published port as `ports =` takes it: "[HOST_IP:]HOST_PORT[-END]:
 * PORT[-END][/PROTO]" (IPv6 HOST_IP in brackets); line is left 0. */
int config_port_parse(const char *s, struct cfg_port *out, struct err *e);
/* The value of label key among l[0..n), or NULL. */
const char *config_label_get(const struct label *l, size_t n, const char *key);
/* Is key=value a label a container may carry (the `labels =` rules)? */
int config_label_check(const char *key, const char *value, struct err *e);
/* Is s a name a container may have in DNS (a-z, 0-9, '-', at most 63)? */
bool config_dns_name_valid(const char *s);

/*
 * Policies (DESIGN §3, Kubernetes NetworkPolicy semantics with labels).
 * A selector is terms ANDed; `all` alone selects everything.
 */
enum sel_op {
	SEL_EQ,                     /* k=v, k==v */
	SEL_NE,                     /* k!=v: also true without the key */
	SEL_IN,                     /* k in (a,b) */
	SEL_NOTIN,                  /* k notin (a,b): also true without the key */
	SEL_EXISTS,                 /* k */
	SEL_NOT_EXISTS,             /* !k */
};

struct sel_term {
	enum sel_op op;
	const char *key;
	const char **values;        /* one for EQ/NE, the set for IN/NOTIN */
	size_t n_values;
};

struct selector {
	bool all;
	struct sel_term *terms;
	size_t n_terms;
};

enum peer_kind { PEER_SELECTOR, PEER_CIDR, PEER_HOST, PEER_WORLD, PEER_ALL };

struct peer {
	enum peer_kind kind;
	struct selector sel;        /* PEER_SELECTOR */
	struct ip_prefix cidr;      /* PEER_CIDR */
	struct ip_prefix *except;   /* inside cidr, same family, strictly smaller */
	size_t n_except;
	int line;
};

struct port_match {
	uint8_t proto;              /* IPPROTO_TCP, _UDP, _SCTP */
	bool any_port;              /* a bare protocol: every port of it */
	uint16_t first, last;       /* 1..65535, first <= last */
};

enum { POLICY_INGRESS = 1, POLICY_EGRESS = 2 };

struct rule {
	int dir;                    /* POLICY_INGRESS or POLICY_EGRESS */
	const char *name;           /* unique within its policy */
	struct peer *peers;         /* ORed; none: every peer */
	size_t n_peers;
	struct port_match *ports;   /* ORed; none: every port and protocol */
	size_t n_ports;
	int line;
};

struct policy {
	const char *name;           /* file name without .ini */
	const char *file;
	struct selector select;
	/* Directions it isolates (POLICY_INGRESS|POLICY_EGRESS): `types` as
	 * given, else the directions of its rules (DESIGN §3, Isolation). */
	unsigned types;
	bool types_given;
	struct rule *rules;
	size_t n_rules;
	uint64_t hash;              /* of its file's path and text, as a container's */
};

/*
 * Services with virtual IPs (issue 23): [service NAME] in berth.ini, or a
 * [service] section in services.d/NAME.ini. The service's VIPs lead to the
 * ready containers its selector picks on its network (running, and healthy
 * when they have a health check), through nf_tables (net/svc.h).
 *
 *   network = NAME              default: "default"
 *   select = SELECTOR           required; the policy grammar (`app=web, tier in (a,b)`)
 *   ports = PORT[:TARGET][/PROTO], ...   required; TARGET defaults to PORT, PROTO to tcp
 *   vip = auto | ADDRESS[, ADDRESS]      default auto: one VIP per family the
 *                               network has a service range of; given: at most
 *                               one IPv4 and one IPv6, inside the service ranges
 *   balance = random | round-robin       default random
 *   affinity = none | client-ip [TIMEOUT]  default none; TIMEOUT a duration, 3h
 *   publish = [HOST_IP:]HOST_PORT[:PORT][/PROTO], ...  on the host like a published
 *                               port; PORT (a port of `ports`) may be left out when
 *                               the service has one port of that protocol
 */
enum svc_balance { SVC_BALANCE_RANDOM, SVC_BALANCE_ROUND_ROBIN };
struct cfg_service_port {
	uint16_t port;              /* on the VIP */
	uint16_t target;            /* on the backends */
	uint8_t proto;              /* IPPROTO_TCP, _UDP or _SCTP */
};
struct cfg_service_publish {
	bool has_host_ip;           /* false: every address of the host */
	struct ip_addr host_ip;
	uint16_t host_port;
	uint16_t port;              /* the service port (cfg_service_port.port) it leads to */
	uint8_t proto;
};
struct cfg_service {
	const char *name;           /* a DNS label; no container and no `service =` has it */
	const char *file;           /* "berth.ini" or "services.d/web.ini" */
	int line;                   /* of its section */
	const char *network;
	struct selector select;
	struct cfg_service_port *ports;
	size_t n_ports;
	bool vip_auto;
	struct ip_addr vip4, vip6;  /* given (vip_auto false); family 0: not given */
	enum svc_balance balance;
	uint32_t affinity_s;        /* client-ip affinity timeout in seconds; 0: none */
	struct cfg_service_publish *publish;
	size_t n_publish;
	uint64_t hash;              /* of its definition: equal hashes, the same service */
	struct {                    /* where keys were (0: not given), for messages */
		int network, vip, publish;
	} lines;
};

struct config {
	struct cfg_daemon daemon;
	struct cfg_network *networks;
	size_t n_networks;
	struct cfg_dns dns;
	struct cfg_remote remote;
	struct cfg_images images;
	/* sorted by file name; each one lives with its file's other pieces (a
	 * config_cache shares them between configs) */
	struct cfg_container **containers;
	size_t n_containers;
	struct policy *policies;            /* sorted by file name */
	size_t n_policies;
	struct cfg_service *services;       /* sorted by name */
	size_t n_services;
	const char *source;         /* the directory, or "(embedded default)" */
	struct cfg_alloc *mem;      /* owns every pointer above, but for: */
	/* the arenas of containers and policies a config_cache kept from an
	 * earlier load, shared with it and with other configs (reference-counted) */
	struct cfg_alloc **shared;
	size_t n_shared;
	struct name_index by_name;  /* containers: config_container in O(1) */
};

/*
 * Errors: every problem found, not only the first, each as one line
 *   containers.d/web.ini:7: [container] ports: '8080:80/tpc': protocol must be tcp, udp or sctp
 *   policies.d/db.ini:4:12: [ingress api] from: ...      (policies add the column)
 * sorted by file (berth.ini, containers.d, policies.d; each by name) and line.
 */
struct config_error {
	char *file;                 /* relative to the config dir; may be "" */
	int line, col;              /* 0 when not known */
	char *msg;                  /* the whole line, as printed */
	int file_idx;               /* load order of the file: the sort key */
};

struct config_errors {
	struct config_error *v;
	size_t n, cap;
};

void config_errors_free(struct config_errors *errs);
/* Append msg (taken: freed here on failure) for file:line. */
void config_errors_add(struct config_errors *errs, const char *file, int line, char *msg);

struct config_opts {
	const char *resolv_conf;    /* NULL: /etc/resolv.conf; [dns] resolv_conf wins */
	/* config_load of a directory as it would be after one change (berth
	 * run, rm): without the file skip ("containers.d/web.ini"), and with
	 * extra, a file in memory read as if it were on disk. NULL: none. */
	const char *skip;
	const struct config_file *extra;
};

/* One file's text: what config_load reads from disk, or a test/fuzzer gives. */
struct config_file {
	const char *path;           /* "berth.ini", "containers.d/web.ini", "policies.d/db.ini" */
	const char *text;
	size_t len;
};

/*
 * Load and validate. dir NULL: the embedded default. On success returns 0 and
 * *out owns everything (config_free). On any error returns -EINVAL (or the
 * -errno of a failed read), *out is NULL and errs lists every problem found;
 * errs must start zeroed (or be reused after config_errors_free). opts may be
 * NULL.
 */
int config_load(const char *dir, const struct config_opts *opts, struct config **out,
		struct config_errors *errs);
/* The same from texts in memory; files are taken in the given order and
 * sorted as config_load would. No berth.ini among them means the defaults. */
int config_load_files(const struct config_file *files, size_t n, const char *source,
		      const struct config_opts *opts, struct config **out,
		      struct config_errors *errs);
void config_free(struct config *c);

/*
 * What a daemon keeps between loads so that a reload costs what changed, not
 * what is configured (issue 19): each container and policy file's parsed
 * object, by path. A file whose size, inode, mtime and ctime are those it
 * had when it was read more than a second after its last change is not read
 * again (git's "racily clean" rule: a write within the timestamp's tick
 * could keep them); one that is read again and has the same text is not
 * parsed again. berth.ini is read and parsed at every load: it is one file,
 * and the networks it defines are what every cross-file check reads.
 */
struct config_cache;
struct config_cache *config_cache_new(void);
void config_cache_free(struct config_cache *cache);
/* config_load, with cache (may be NULL: config_load) keeping what it read for
 * the next load. The configs it returns share the cached pieces; each one is
 * still freed with config_free, in any order with the cache. */
int config_load_cached(const char *dir, const struct config_opts *opts,
		       struct config_cache *cache, struct config **out,
		       struct config_errors *errs);
/* How many files the last config_load_cached parsed, read without parsing
 * (same text), and took without reading: for tests and `berth status`. */
struct config_cache_stats {
	size_t parsed, read, reused;
};
void config_cache_stats(const struct config_cache *cache, struct config_cache_stats *out);
/* Can container c start, as far as the filesystem tells (preflight.c)? Its
 * rootfs must be a directory (else *fatal and -errno), and its command an
 * executable inside it, found through its PATH with the rootfs's symlinks
 * followed inside it (else -ENOENT, not fatal). e says why. */
int config_container_preflight(const struct cfg_container *c, bool *fatal, struct err *e);
/* Every container's preflight: file:line messages, the fatal ones into errs
 * (`config check` fails, a reload is refused), the others into warnings.
 * With old (the running config; may be NULL), a container the same as in old
 * is not checked again: a reload checks what it changes, at a cost that does
 * not grow with what is already running. */
void config_preflight(const struct config *cfg, const struct config *old,
		      struct config_errors *errs, struct config_errors *warnings);
/* CONFIG_DIR_DEFAULT if it exists, else NULL (the embedded default): what
 * `berth daemon` and `berth config check` use without -c. */
const char *config_default_dir(void);

/*
 * The file descriptors the daemon may hold at once for c, at its own limits
 * (each part is counted in config_limits.c from the code that opens them).
 */
struct config_fds {
	unsigned long base;         /* its own: stdio, epoll, store, netlink, ... */
	unsigned long control;      /* control clients ([remote]: and TLS ones) */
	unsigned long dns;          /* listeners, forwarded queries, TCP clients */
	unsigned long containers;   /* per container: monitor pidfd, start report */
	unsigned long total;
};
void config_fds(const struct config *c, struct config_fds *out);

/*
 * Warnings: what does not keep c from loading but will hurt when it runs,
 * one line each appended to warns (file "" and line 0 when no file is to
 * blame). `config check` prints them and still exits 0; the daemon logs
 * them. nofile: the descriptor limit the daemon runs with (0: unknown).
 */
void config_warnings(const struct config *c, unsigned long long nofile,
		     struct config_errors *warns);

/* "1 network, 2 containers, 1 policy" into buf; returns buf. */
const char *config_summary(const struct config *c, char *buf, size_t size);

/* Read c->dns.resolv_conf again into c->dns.upstreams, as loading does (a
 * missing file: none). No-op without resolv_conf (upstream given). Returns
 * 1 when the upstreams changed, else 0. */
int config_reread_resolv_conf(struct config *c);

const struct cfg_network *config_network(const struct config *c, const char *name);
const struct cfg_container *config_container(const struct config *c, const char *name);

/* Does s select a container with these labels? An unknown key matches
 * nothing for =, in and exists; != and notin match a container without it. */
bool selector_match(const struct selector *s, const struct label *labels, size_t n);
/* As a person would write it: "app=web,tier in (a,b),!quarantined". */
void selector_format(const struct selector *s, struct buf *b);

/* Parsers the CLI (`policy why`) and tests use. Return 0, or -EINVAL with the
 * message in e; *col (may be NULL) gets the 0-based offset of the fault. */
struct cfg_alloc;
int selector_parse(struct cfg_alloc *mem, const char *s, struct selector *out,
		   size_t *col, struct err *e);
int port_match_parse(const char *s, struct port_match *out, struct err *e);
struct cfg_alloc *cfg_alloc_new(void);
void cfg_alloc_free(struct cfg_alloc *mem);

/*
 * The key tables, for documentation (`berth config keys`, berth.ini(5)):
 * config_doc fills out with key i of every section's table, in the order a
 * reference lists them, and returns false past the last key. value may
 * point into buf.
 */
struct cfg_key_doc {
	const char *file;           /* "berth.ini", "containers.d/NAME.ini", "policies.d/NAME.ini" */
	const char *section;        /* as written between [ and ]: "network NAME" */
	const char *key;
	const char *type;           /* path bool uint size enum address prefix list text */
	const char *value;          /* how a value is written: "576..9000 bytes", "yes|no" */
	const char *def;            /* as written; NULL: none, or computed (the help says) */
	const char *help;           /* one line */
	bool required, repeat;
};
bool config_doc(size_t i, struct cfg_key_doc *out, char *buf, size_t size);

/* `berth config check [-c DIR]` and `berth config keys`: exit code; dir
 * NULL: /etc/berth if it exists, else the embedded default. */
int config_cmd(const char *dir, bool json, int argc, char **argv);

#endif
