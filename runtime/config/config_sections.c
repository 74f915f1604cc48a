/* config_sections.c - the sections of berth.ini ([daemon], [network NAME],
 * [dns], [remote], [images]) and of containers.d/NAME.ini ([container]): for each, the
 * parsers of the keys that are not generic, then its key table. */
#include "runtime/config/config_int.h"

#include <ctype.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

_Static_assert(sizeof(enum log_level) == sizeof(int) &&
	       sizeof(enum restart_policy) == sizeof(int) &&
	       sizeof(enum image_pull) == sizeof(int) &&
	       sizeof(enum on_unhealthy) == sizeof(int), "CFG_ENUM stores an int");

/* ---- [daemon] ----------------------------------------------------------- */

static const struct cfg_word log_levels[] = { { "error", LOG_ERROR }, { "warn", LOG_WARN },
	{ "info", LOG_INFO }, { "debug", LOG_DEBUG }, { NULL, 0 } };

/* obj: struct cfg_daemon */
static const struct cfg_key daemon_keys[] = {
	{ "state_dir", CFG_PATH, .off = offsetof(struct cfg_daemon, state_dir),
	  .def = "/var/lib/berth", .help = "the SQLite database and the netns mounts" },
	{ "run_dir", CFG_PATH, .off = offsetof(struct cfg_daemon, run_dir),
	  .def = "/run/berth", .help = "the control socket and the pid file" },
	{ "log_level", CFG_ENUM, .words = log_levels, .off = offsetof(struct cfg_daemon, log_level),
	  .def = "info", .help = "how much the daemon logs" },
};
const struct cfg_section cfg_daemon_section = { "berth.ini", "daemon", daemon_keys,
	ARRAY_SIZE(daemon_keys) };

/* ---- [network NAME] ----------------------------------------------------- */

/* What the network's parsers fill, and what they tell each other. */
struct net_parse {
	struct cfg_network n;       /* first: the table's offsets are cfg_network's */
	bool has_v4;                /* subnet is a usable IPv4 prefix */
	bool subnet6_given;
};

static bool ifname_valid(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 15 || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '/' || s[i] == ':' || isspace((unsigned char)s[i]) ||
		    !isprint((unsigned char)s[i]))
			return false;
	return true;
}

/* The hosts of p: first .. last, without network and (IPv4) broadcast. */
void cfg_prefix_hosts(const struct ip_prefix *p, struct ip_range *r)
{
	ip_prefix_first(p, &r->first);
	ip_prefix_last(p, &r->last);
	ip_add(&r->first, 1);
	if (p->addr.family == AF_INET) {
		/* the broadcast address is not a host: last = first + (last - first) - 1,
		 * as lib/ has no subtraction (the prefix is at most /30, so d >= 2) */
		uint64_t d = ip_distance(&r->first, &r->last);

		r->last = r->first;
		ip_add(&r->last, d - 1);
	}
}

/* Without the key: berth-NAME. */
static void parse_bridge(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
			 void *obj)
{
	struct net_parse *p = obj;
	char b[64];

	if (e) {
		if (!ifname_valid(e->val))
			cfg_err_key(c, s, e, -1, "'%s': expected an interface name of 1 to 15 "
				    "characters without '/', ':' or spaces", e->val);
		p->n.bridge = cfg_strdup(c->mem, e->val);
		return;
	}
	snprintf(b, sizeof(b), "berth-%s", p->n.name);
	if (!ifname_valid(b))
		cfg_err_sect(c, s, "bridge: the default name '%s' is longer than 15 "
			     "characters; set bridge", b);
	p->n.bridge = cfg_strdup(c->mem, b);
}

static void parse_subnet(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
			 void *obj)
{
	struct net_parse *p = obj;
	struct cfg_network *n = &p->n;
	struct err er = { 0 };

	if (ip_prefix_parse(e->val, &n->subnet, &er) < 0) {
		cfg_err_key(c, s, e, -1, "%s", er.msg);
	} else if (n->subnet.addr.family != AF_INET) {
		cfg_err_key(c, s, e, -1, "'%s' is IPv6: put it in subnet6", e->val);
	} else if (n->subnet.len > 30) {
		cfg_err_key(c, s, e, -1, "'%s': the prefix must be /30 or shorter "
			    "(room for a gateway and a container)", e->val);
	} else {
		p->has_v4 = true;
		ip_prefix_first(&n->subnet, &n->gateway);
		ip_add(&n->gateway, 1);
	}
}

static void parse_subnet6(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
			  void *obj)
{
	struct net_parse *p = obj;
	struct cfg_network *n = &p->n;
	struct err er = { 0 };

	p->subnet6_given = true;
	if (ip_prefix_parse(e->val, &n->subnet6, &er) < 0) {
		cfg_err_key(c, s, e, -1, "%s", er.msg);
	} else if (n->subnet6.addr.family != AF_INET6) {
		cfg_err_key(c, s, e, -1, "'%s' is IPv4: put it in subnet", e->val);
	} else if (n->subnet6.len > 126) {
		cfg_err_key(c, s, e, -1, "'%s': the prefix must be /126 or shorter", e->val);
	} else {
		n->has_v6 = true;
		ip_prefix_first(&n->subnet6, &n->gateway6);
		ip_add(&n->gateway6, 1);
	}
}

static void check_gateway(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
			  const struct ip_prefix *p, struct ip_addr *gw)
{
	char pb[IP_PREFIX_STRLEN];
	struct ip_range hosts;
	struct err er = { 0 };
	struct ip_addr a;

	if (ip_parse(e->val, &a, &er) < 0) {
		cfg_err_key(c, s, e, -1, "%s", er.msg);
		return;
	}
	if (a.family != p->addr.family) {
		cfg_err_key(c, s, e, -1, "'%s': expected an IPv%d address", e->val,
			    p->addr.family == AF_INET ? 4 : 6);
		return;
	}
	cfg_prefix_hosts(p, &hosts);
	if (!ip_prefix_contains(p, &a))
		cfg_err_key(c, s, e, -1, "'%s' is outside the subnet %s", e->val,
			    ip_prefix_format(p, pb));
	else if (!ip_range_contains(&hosts, &a))
		cfg_err_key(c, s, e, -1, "'%s' is the %s address of %s, not a host", e->val,
			    ip_cmp(&a, &hosts.first) < 0 ? "network" : "broadcast",
			    ip_prefix_format(p, pb));
	else
		*gw = a;
}

static void parse_gateway(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
			  void *obj)
{
	struct net_parse *p = obj;

	if (p->has_v4)
		check_gateway(c, s, e, &p->n.subnet, &p->n.gateway);
}

static void parse_gateway6(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
			   void *obj)
{
	struct net_parse *p = obj;

	if (!p->subnet6_given)
		cfg_err_key(c, s, e, -1, "needs subnet6");
	else if (p->n.has_v6)
		check_gateway(c, s, e, &p->n.subnet6, &p->n.gateway6);
}

static void range_item(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
		       const struct cfg_item *it, void *obj)
{
	struct net_parse *p = obj;
	struct cfg_network *n = &p->n;
	char pb[IP_PREFIX_STRLEN];
	struct err er = { 0 };
	const struct ip_prefix *in;
	struct ip_range r, *rs;
	size_t nr;
	bool v6;

	if (ip_range_parse(it->s, &r, &er) < 0) {
		cfg_err_key(c, s, e, -1, "%s", er.msg);
		return;
	}
	v6 = r.first.family == AF_INET6;
	if (v6 && !n->has_v6) {
		if (!p->subnet6_given)
			cfg_err_key(c, s, e, -1, "'%s' is IPv6 but the network has no subnet6",
				    it->s);
		return;
	}
	if (!v6 && !p->has_v4)
		return;
	in = v6 ? &n->subnet6 : &n->subnet;
	if (!ip_prefix_contains(in, &r.first) || !ip_prefix_contains(in, &r.last)) {
		cfg_err_key(c, s, e, -1, "range '%s' is not inside the subnet %s", it->s,
			    ip_prefix_format(in, pb));
		return;
	}
	rs = v6 ? n->ranges6 : n->ranges;
	nr = v6 ? n->n_ranges6 : n->n_ranges;
	for (size_t j = 0; j < nr; j++) {
		if (ip_cmp(&r.first, &rs[j].last) <= 0 && ip_cmp(&rs[j].first, &r.last) <= 0) {
			cfg_err_key(c, s, e, -1, "range '%s' overlaps another range", it->s);
			return;
		}
	}
	if (v6)
		*CFG_PUSH(c->mem, n->ranges6, n->n_ranges6) = r;
	else
		*CFG_PUSH(c->mem, n->ranges, n->n_ranges) = r;
}

/* service_range, service_range6: where vip = auto takes VIPs. Off the
 * network's own subnets (a VIP is routed through the gateway, never on the
 * bridge); the other networks are cfg_check_networks's. */
static void service_range(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
			  struct net_parse *p, bool v6)
{
	struct cfg_network *n = &p->n;
	struct ip_prefix r, *sub = v6 ? &n->subnet6 : &n->subnet;
	char pb[IP_PREFIX_STRLEN];
	struct err er = { 0 };

	if (ip_prefix_parse(e->val, &r, &er) < 0) {
		cfg_err_key(c, s, e, -1, "%s", er.msg);
	} else if (r.addr.family != (v6 ? AF_INET6 : AF_INET)) {
		cfg_err_key(c, s, e, -1, "'%s' is IPv%d: put it in service_range%s", e->val,
			    v6 ? 4 : 6, v6 ? "" : "6");
	} else if (r.len > (v6 ? 126 : 30)) {
		cfg_err_key(c, s, e, -1, "'%s': the prefix must be /%d or shorter", e->val,
			    v6 ? 126 : 30);
	} else if ((v6 ? n->has_v6 : p->has_v4) &&
		   (ip_prefix_contains_prefix(sub, &r) || ip_prefix_contains_prefix(&r, sub))) {
		cfg_err_key(c, s, e, -1, "'%s' overlaps the network's %s %s (VIPs are reached "
			    "through the gateway, not on the bridge)", e->val,
			    v6 ? "subnet6" : "subnet", ip_prefix_format(sub, pb));
	} else if (v6) {
		n->service_range6 = r;
	} else {
		n->service_range = r;
	}
}

static void parse_service_range(struct cfg_ctx *c, const struct ini_sect *s,
				const struct ini_ent *e, void *obj)
{
	service_range(c, s, e, obj, false);
}

static void parse_service_range6(struct cfg_ctx *c, const struct ini_sect *s,
				 const struct ini_ent *e, void *obj)
{
	service_range(c, s, e, obj, true);
}

/* obj: struct net_parse. The order is the parsing's: range needs subnet6. */
static const struct cfg_key network_keys[] = {
	{ "bridge", CFG_TEXT, CFG_COMPUTED, "NAME", .parse = parse_bridge,
	  .help = "the bridge's interface name, at most 15 characters (default berth-NAME)" },
	{ "subnet", CFG_PREFIX, .syntax = "IPV4/LENGTH", .parse = parse_subnet,
	  .missing = "e.g. subnet = 10.88.0.0/16",
	  .help = "the containers' IPv4 subnet, /30 or shorter" },
	{ "gateway", CFG_ADDRESS, .syntax = "IPV4", .parse = parse_gateway,
	  .help = "the bridge's address (default: the first host of subnet)" },
	{ "subnet6", CFG_PREFIX, .syntax = "IPV6/LENGTH", .parse = parse_subnet6,
	  .help = "an IPv6 subnet too (dual stack), /126 or shorter" },
	{ "gateway6", CFG_ADDRESS, .syntax = "IPV6", .parse = parse_gateway6,
	  .help = "the bridge's IPv6 address (default: the first host of subnet6)" },
	{ "range", CFG_LIST, .syntax = "FIRST-LAST, ...", .item = range_item,
	  .help = "where IPAM allocates, IPv4 and IPv6 (default: every host of the subnets)" },
	{ "service_range", CFG_PREFIX, .syntax = "IPV4/LENGTH", .parse = parse_service_range,
	  .help = "where vip = auto takes services' IPv4 VIPs, outside every subnet, /30 or "
	  "shorter (default: none)" },
	{ "service_range6", CFG_PREFIX, .syntax = "IPV6/LENGTH", .parse = parse_service_range6,
	  .help = "where vip = auto takes services' IPv6 VIPs, outside every subnet6, /126 or "
	  "shorter (default: none)" },
	{ "masquerade", CFG_BOOL, .off = offsetof(struct cfg_network, masquerade), .def = "yes",
	  .help = "SNAT the traffic that leaves the host" },
	{ "isolate", CFG_BOOL, .off = offsetof(struct cfg_network, isolate), .def = "no",
	  .help = "deny traffic between the network's containers unless a policy allows it" },
	{ "mtu", CFG_UINT, .min = 576, .max = 9000, .unit = "bytes",
	  .off = offsetof(struct cfg_network, mtu), .def = "1500",
	  .help = "the MTU of the bridge and of the containers' interfaces" },
};
const struct cfg_section cfg_network_section = { "berth.ini", "network NAME", network_keys,
	ARRAY_SIZE(network_keys) };

void cfg_network(struct cfg_ctx *c, const struct ini_sect *s, const char *name)
{
	struct net_parse p = { 0 };

	cfg_check_keys(c, s, &cfg_network_section);
	if (!*name) {
		cfg_err_sect(c, s, "a network needs a name: [network NAME]");
		return;
	}
	if (!cfg_dns_label(name)) {
		cfg_err_sect(c, s, "network name '%s': expected letters, digits and '-' "
			     "(at most %d, starting and ending with a letter or digit)",
			     name, CONFIG_NAME_MAX);
		return;
	}
	for (size_t i = 0; i < c->cfg->n_networks; i++)
		if (!strcasecmp(c->cfg->networks[i].name, name)) {
			cfg_err_sect(c, s, "network '%s' is defined twice (first on line %d)",
				     name, c->cfg->networks[i].line);
			return;
		}
	p.n.name = cfg_strdup(c->mem, name);
	p.n.file = cfg_strdup(c->mem, c->file);
	p.n.line = s->line;
	cfg_parse_keys(c, s, &cfg_network_section, &p);
	if (p.has_v4 && !p.n.n_ranges)
		cfg_prefix_hosts(&p.n.subnet, CFG_PUSH(c->mem, p.n.ranges, p.n.n_ranges));
	if (p.n.has_v6 && !p.n.n_ranges6)
		cfg_prefix_hosts(&p.n.subnet6, CFG_PUSH(c->mem, p.n.ranges6, p.n.n_ranges6));
	*CFG_PUSH(c->mem, c->cfg->networks, c->cfg->n_networks) = p.n;
}

/* ---- [dns] -------------------------------------------------------------- */

/* The nameservers of the resolv.conf at path, as upstreams, into *out from
 * m; returns their count (0 without the file: berth then answers its own
 * names only). */
static size_t resolv_nameservers(struct cfg_alloc *m, const char *path, bool host,
				 struct ip_addr **out)
{
	char line[256];
	FILE *f = fopen(path, "re");
	size_t n = 0;

	*out = NULL;
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char word[32], addr[IP_STRLEN + 1];
		struct ip_addr a;

		if (sscanf(line, "%31s %46s", word, addr) != 2 || strcmp(word, "nameserver"))
			continue;
		if (ip_parse(addr, &a, NULL) < 0)
			continue;   /* e.g. fe80::1%eth0: a scope berth cannot use */
		if (host && a.family == AF_INET && a.b[0] == 127 && a.b[1] == 0 &&
		    a.b[2] == 0 && a.b[3] == 53)
			continue;   /* ourselves when [dns] host = yes */
		*CFG_PUSH(m, *out, n) = a;
	}
	fclose(f);
	return n;
}

void cfg_read_resolv_conf(struct cfg_ctx *c, const char *path)
{
	struct cfg_dns *d = &c->cfg->dns;

	d->resolv_conf = cfg_strdup(c->mem, path);
	d->n_upstreams = resolv_nameservers(c->mem, path, d->host, &d->upstreams);
}

int config_reread_resolv_conf(struct config *c)
{
	struct cfg_dns *d = &c->dns;
	struct cfg_alloc *tmp;
	struct ip_addr *ups;
	size_t n;
	int changed = 0;

	if (!d->resolv_conf || !(tmp = cfg_alloc_new()))
		return 0;
	n = resolv_nameservers(tmp, d->resolv_conf, d->host, &ups);
	if (n != d->n_upstreams || (n && memcmp(ups, d->upstreams, n * sizeof(*ups)))) {
		/* the config owns what it points to: the new list is one more
		 * block of it (a change of resolv.conf is rare) */
		d->upstreams = n ? cfg_new(c->mem, n * sizeof(*ups)) : NULL;
		if (n)
			memcpy(d->upstreams, ups, n * sizeof(*ups));
		d->n_upstreams = n;
		changed = 1;
	}
	cfg_alloc_free(tmp);
	return changed;
}

static void parse_domain(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
			 void *obj)
{
	struct cfg_dns *d = obj;
	char *v = cfg_strdup(c->mem, e->val);
	size_t n = strlen(v);

	if (n > 1 && v[n - 1] == '.')
		v[n - 1] = '\0';
	for (char *p = v; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (!cfg_domain(v))
		cfg_err_key(c, s, e, -1, "'%s': expected a DNS domain such as berth.internal",
			    e->val);
	d->domain = v;
}

static void upstream_item(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
			  const struct cfg_item *it, void *obj)
{
	struct cfg_dns *d = obj;
	struct err er = { 0 };
	struct ip_addr a;

	c->upstream_given = true;
	if (ip_parse(it->s, &a, &er) < 0)
		cfg_err_key(c, s, e, -1, "%s", *it->s ? er.msg : "empty item");
	else
		*CFG_PUSH(c->mem, d->upstreams, d->n_upstreams) = a;
}

/* obj: struct cfg_dns */
static const struct cfg_key dns_keys[] = {
	{ "domain", CFG_TEXT, .syntax = "DOMAIN", .parse = parse_domain, .def = "berth.internal",
	  .help = "containers are NAME.DOMAIN, services SERVICE.DOMAIN" },
	{ "upstream", CFG_LIST, .syntax = "ADDRESS, ...", .item = upstream_item,
	  .help = "where other names are forwarded (default: the host's resolv.conf nameservers)" },
	{ "resolv_conf", CFG_PATH, .off = offsetof(struct cfg_dns, resolv_conf),
	  .line = offsetof(struct cfg_dns, resolv_conf_line), .def = "/etc/resolv.conf",
	  .help = "without upstream: the file whose nameservers are the upstreams, followed "
		  "as it changes" },
	{ "ttl", CFG_UINT, .min = 0, .max = 86400, .unit = "seconds",
	  .off = offsetof(struct cfg_dns, ttl), .def = "10",
	  .help = "the TTL of berth's own answers" },
	{ "cache", CFG_UINT, .min = 0, .max = 1000000, .unit = "entries",
	  .off = offsetof(struct cfg_dns, cache), .def = "4096",
	  .help = "forwarded answers kept (0: no cache)" },
	{ "host", CFG_BOOL, .off = offsetof(struct cfg_dns, host), .def = "yes",
	  .help = "also answer on 127.0.0.53, so that the host resolves container names" },
};
const struct cfg_section cfg_dns_section = { "berth.ini", "dns", dns_keys, ARRAY_SIZE(dns_keys) };

/* ---- [remote] ----------------------------------------------------------- */

static void parse_listen(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
			 void *obj)
{
	struct cfg_remote *r = obj;
	char host[IP_STRLEN + 2];
	const char *colon = strrchr(e->val, ':'), *h = e->val;
	size_t hl = colon ? (size_t)(colon - e->val) : 0;
	unsigned long long port;
	bool ok = colon && hl < sizeof(host);

	if (ok && h[0] == '[') {
		ok = hl >= 2 && h[hl - 1] == ']';
		h++;
		hl -= 2;
	} else if (ok && memchr(h, ':', hl)) {
		ok = false;         /* IPv6 without brackets */
	}
	if (ok) {
		memcpy(host, h, hl);
		host[hl] = '\0';
		ok = ip_parse(host, &r->addr, NULL) == 0 &&
		     cfg_parse_uint(colon + 1, 65535, &port) && port > 0 &&
		     (e->val[0] == '[') == (r->addr.family == AF_INET6);
	}
	if (ok)
		r->port = (uint16_t)port;
	else
		cfg_err_key(c, s, e, -1, "'%s': expected ADDRESS:PORT or [IPV6]:PORT, "
			    "e.g. 0.0.0.0:7443", e->val);
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = (char)tolower((unsigned char)ch);
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* sha256:<64 hex> (the SPKI hash of a client certificate) */
static void hash_item(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
		      const char *v, uint8_t (**out)[32], size_t *n)
{
	uint8_t h[32];
	bool ok = strlen(v) == 7 + 64 && !strncmp(v, "sha256:", 7);

	for (size_t j = 0; ok && j < 32; j++) {
		int hi = hexval(v[7 + 2 * j]), lo = hexval(v[8 + 2 * j]);

		ok = hi >= 0 && lo >= 0;
		h[j] = (uint8_t)(hi << 4 | lo);
	}
	if (!ok)
		cfg_err_key(c, s, e, -1, "'%s': expected sha256: and 64 hex digits "
			    "(the client certificate's SPKI hash)", v);
	else
		memcpy(*CFG_PUSH(c->mem, *out, *n), h, 32);
}

static void read_only_item(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
			   const struct cfg_item *it, void *obj)
{
	struct cfg_remote *r = obj;

	hash_item(c, s, e, it->s, &r->read_only, &r->n_read_only);
}

static void clients_item(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
			 const struct cfg_item *it, void *obj)
{
	struct cfg_remote *r = obj;

	hash_item(c, s, e, it->s, &r->clients, &r->n_clients);
}

#define TLS_FILES "the remote listener needs cert, key and client_ca"

/* obj: struct cfg_remote */
static const struct cfg_key remote_keys[] = {
	{ "listen", CFG_ADDRESS, .syntax = "ADDRESS:PORT or [IPV6]:PORT", .parse = parse_listen,
	  .missing = "e.g. listen = 0.0.0.0:7443",
	  .help = "where the control protocol listens, over mutual TLS" },
	{ "cert", CFG_PATH, .off = offsetof(struct cfg_remote, cert), .missing = TLS_FILES,
	  .help = "the server's certificate (PEM)" },
	{ "key", CFG_PATH, .off = offsetof(struct cfg_remote, key), .missing = TLS_FILES,
	  .help = "the server's private key (PEM)" },
	{ "client_ca", CFG_PATH, .off = offsetof(struct cfg_remote, client_ca),
	  .missing = TLS_FILES, .help = "the CA that signs the clients' certificates" },
	{ "read_only", CFG_LIST, .syntax = "sha256:HEX, ...", .item = read_only_item,
	  .help = "clients that may only read (`berth tls spki CERT` gives the hash)" },
	{ "clients", CFG_LIST, .syntax = "sha256:HEX, ...", .item = clients_item,
	  .help = "if given, only these clients (and the read_only ones) may connect" },
};
const struct cfg_section cfg_remote_section = { "berth.ini", "remote", remote_keys,
	ARRAY_SIZE(remote_keys) };

/* ---- [images] ----------------------------------------------------------- */

/* obj: struct cfg_images */
static const struct cfg_key images_keys[] = {
	{ "ca", CFG_PATH, .off = offsetof(struct cfg_images, ca),
	  .def = "/etc/ssl/certs/ca-certificates.crt",
	  .help = "the PEM bundle registries' certificates are checked against" },
	{ "credentials", CFG_PATH, .off = offsetof(struct cfg_images, credentials),
	  .help = "a podman/docker auth.json with the registries' logins (default: none)" },
	{ "allow_devices", CFG_BOOL, .off = offsetof(struct cfg_images, allow_devices),
	  .def = "no", .help = "keep device nodes of image layers (else a layer with one "
	  "is refused)" },
};
const struct cfg_section cfg_images_section = { "berth.ini", "images", images_keys,
	ARRAY_SIZE(images_keys) };

/* ---- berth.ini ---------------------------------------------------------- */

void cfg_berth_ini(struct cfg_ctx *c, const struct ini_file *f)
{
	static const char *const kinds[] = { "daemon", "network", "dns", "remote", "images",
		"service", NULL };
	static const struct cfg_section *const tables[] = { &cfg_daemon_section, NULL,
		&cfg_dns_section, &cfg_remote_section, &cfg_images_section, NULL };
	const struct ini_sect *seen[6] = { 0 };
	struct config *cfg = c->cfg;
	void *objs[] = { &cfg->daemon, NULL, &cfg->dns, &cfg->remote, &cfg->images };

	for (size_t i = 0; i < f->n; i++) {
		const struct ini_sect *s = &f->sects[i];
		const char *kind, *name;
		int k;

		k = cfg_sect_lookup(c, s, kinds, (const char *const[]){ "network", "service", NULL },
				    "[daemon], [network NAME], [dns], [remote], [images] or "
				    "[service NAME]", &kind, &name);
		if (k < 0)
			continue;
		if (k == 1) {
			cfg_network(c, s, name);
			continue;
		}
		if (k == 5) {
			cfg_service_sect(c, s, name);
			continue;
		}
		if (*name) {
			cfg_err_sect(c, s, "[%s] takes no name", kind);
			continue;
		}
		if (seen[k]) {
			cfg_err_sect(c, s, "section given twice (first on line %d)", seen[k]->line);
			continue;
		}
		seen[k] = s;                /* empty [daemon], [dns], [images]: the defaults */
		if (k == 3)
			cfg->remote.enabled = true;
		cfg_check_keys(c, s, tables[k]);
		cfg_parse_keys(c, s, tables[k], objs[k]);
		if (k == 2 && c->upstream_given && cfg_get(s, "resolv_conf"))
			cfg_err_key(c, s, cfg_get(s, "resolv_conf"), -1, "not read when upstream "
				    "is given (give one of the two)");
	}
}

/* ---- containers.d ------------------------------------------------------- */

static void parse_name(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
		       void *obj)
{
	struct cfg_container *ct = obj;

	if (!cfg_dns_label(e->val))
		cfg_err_key(c, s, e, -1, "'%s': a container name is letters, digits and '-' (at "
			    "most %d, starting and ending with a letter or digit): it is a DNS "
			    "name", e->val, CONFIG_NAME_MAX);
	ct->name = cfg_strdup(c->mem, e->val);
}

/* What is wrong with image reference v, or NULL. Light: the characters, the
 * tag and the digest; image_ref_parse (runtime/image/ref.c) checks the rest
 * when the image is pulled. [REGISTRY[:PORT]/]NAME[:TAG][@sha256:HEX], the
 * registry being a first component with '.' or ':', or "localhost". */
static const char *image_ref_why(const char *v)
{
	const char *at = strchr(v, '@'), *end = at ? at : v + strlen(v), *slash, *colon;
	const char *name = v, *p;
	size_t tl;

	if (strlen(v) >= 512)
		return "longer than 511 characters";
	for (p = v; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("._-/:@", *p))
			return "a reference is letters, digits, '.', '_', '-', '/', ':' and '@'";
	if (at) {
		if (strncmp(at + 1, "sha256:", 7) || strlen(at + 8) != 64 ||
		    strspn(at + 8, "0123456789abcdef") != 64)
			return "a digest is @sha256: and 64 lower-case hex digits";
	}
	slash = memchr(v, '/', (size_t)(end - v));
	if (slash && (memchr(v, '.', (size_t)(slash - v)) || memchr(v, ':', (size_t)(slash - v)) ||
		      ((size_t)(slash - v) == 9 && !strncmp(v, "localhost", 9)))) {
		const char *port = memchr(v, ':', (size_t)(slash - v));

		if (port && (port + 1 == slash ||
			     strspn(port + 1, "0123456789") != (size_t)(slash - port - 1)))
			return "a registry is HOST or HOST:PORT";
		name = slash + 1;
	}
	for (slash = NULL, p = name; p < end; p++)
		if (*p == '/')
			slash = p;
	colon = memchr(slash ? slash : name, ':', (size_t)(end - (slash ? slash : name)));
	if (colon) {
		tl = (size_t)(end - colon - 1);
		if (!tl || tl > 128 || colon[1] == '.' || colon[1] == '-' ||
		    memchr(colon + 1, ':', tl))
			return "a tag is 1 to 128 letters, digits, '_', '.' and '-', not starting "
			       "with '.' or '-'";
		end = colon;
	}
	/* the repository: lower-case parts separated by single '/' */
	for (p = name; p < end; p++) {
		if (isupper((unsigned char)*p))
			return "a repository name is lower case";
		if (*p == ':')
			return "':' is for the registry's port or the tag";
	}
	for (p = name;; p = slash + 1) {
		slash = memchr(p, '/', (size_t)(end - p));
		if (!slash)
			slash = end;
		if (slash == p || !isalnum((unsigned char)p[0]) ||
		    !isalnum((unsigned char)slash[-1]))
			return "each part of the name starts and ends with a letter or digit";
		if (slash == end)
			return NULL;
	}
}

static void parse_image(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
			void *obj)
{
	struct cfg_container *ct = obj;
	const char *why = image_ref_why(e->val);

	if (why)
		cfg_err_key(c, s, e, -1, "'%s': %s (expected [REGISTRY[:PORT]/]NAME[:TAG]"
			    "[@sha256:HEX], e.g. 127.0.0.1:5000/app:1)", e->val, why);
	else
		ct->image = cfg_strdup(c->mem, e->val);
}

/* Split like a shell would, without expansion: blanks separate words;
 * '...' is literal; "..." allows \" \\ \$ \`; \ outside quotes escapes.
 * Returns the offset of an unterminated quote, or -1. */
static long split_command(struct cfg_alloc *m, const char *s, char ***argv, size_t *argc)
{
	char *buf = cfg_new(m, strlen(s) + 1), *w;
	char **v = NULL;
	size_t n = 0;
	const char *p = s;

	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		w = buf;
		while (*p && *p != ' ' && *p != '\t') {
			if (*p == '\'') {
				const char *q = strchr(p + 1, '\'');

				if (!q)
					return p - s;
				memcpy(buf, p + 1, (size_t)(q - p - 1));
				buf += q - p - 1;
				p = q + 1;
			} else if (*p == '"') {
				const char *start = p++;

				while (*p && *p != '"') {
					if (*p == '\\' && p[1] && strchr("\"\\$`", p[1]))
						p++;
					*buf++ = *p++;
				}
				if (!*p)
					return start - s;
				p++;
			} else if (*p == '\\' && p[1]) {
				*buf++ = p[1];
				p += 2;
			} else {
				*buf++ = *p++;
			}
		}
		*buf++ = '\0';
		*CFG_PUSH(m, v, n) = w;
	}
	*CFG_PUSH(m, v, n) = NULL;
	*argv = v;
	*argc = n - 1;
	return -1;
}

static void parse_command(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
			  void *obj)
{
	struct cfg_container *ct = obj;
	long bad = split_command(c->mem, e->val, &ct->argv, &ct->argc);

	if (bad >= 0)
		cfg_err_key(c, s, e, -1, "'%s': unterminated %c quote", e->val, e->val[bad]);
}

static void parse_env(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
		      void *obj)
{
	struct cfg_container *ct = obj;
	const char *v = e->val, *eq = strchr(v, '=');
	size_t kl = eq ? (size_t)(eq - v) : 0;

	if (!eq || !kl || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				 "_0123456789") != kl || isdigit((unsigned char)v[0])) {
		cfg_err_key(c, s, e, -1, "'%s': expected NAME=VALUE with a NAME of letters, "
			    "digits and '_'", v);
		return;
	}
	for (size_t j = 0; j < ct->n_env; j++) {
		if (!strncmp(ct->env[j], v, kl + 1)) {
			cfg_err_key(c, s, e, -1, "variable '%.*s' is set twice", (int)kl, v);
			return;
		}
	}
	*CFG_PUSH(c->mem, ct->env, ct->n_env) = cfg_strdup(c->mem, v);
}

bool cfg_label_key_valid(const char *k, const char **why)
{
	const char *slash = strchr(k, '/'), *name = slash ? slash + 1 : k;
	size_t n = strlen(name);

	if (slash) {
		char pre[254];
		size_t pl = (size_t)(slash - k);

		if (!pl || pl > 253) {
			*why = "the prefix before '/' must be a DNS subdomain of at most 253 characters";
			return false;
		}
		memcpy(pre, k, pl);
		pre[pl] = '\0';
		for (char *q = pre; *q; q++)
			*q = (char)tolower((unsigned char)*q);
		if (!cfg_domain(pre)) {
			*why = "the prefix before '/' must be a DNS subdomain";
			return false;
		}
	}
	if (!n || n > 63) {
		*why = "a label key's name must be 1 to 63 characters";
		return false;
	}
	if (!cfg_label_value_valid(name, why)) {
		*why = "a label key is [prefix/]name with a name of letters, digits, '-', '_' "
		       "and '.', starting and ending with a letter or digit";
		return false;
	}
	return true;
}

bool cfg_label_value_valid(const char *v, const char **why)
{
	size_t n = strlen(v);

	*why = "a label value is at most 63 letters, digits, '-', '_' and '.', starting "
	       "and ending with a letter or digit";
	if (n > 63)
		return false;
	if (n && (!isalnum((unsigned char)v[0]) || !isalnum((unsigned char)v[n - 1])))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)v[i]) && !strchr("-_.", v[i]))
			return false;
	return true;
}

int config_label_check(const char *key, const char *value, struct err *e)
{
	const char *why;

	if (!strcmp(key, "all") || !strcmp(key, "host") || !strcmp(key, "world"))
		return err_set(e, EINVAL, "'%s' is a reserved word of the policy language, not a "
			       "label key", key);
	if (!cfg_label_key_valid(key, &why) || !cfg_label_value_valid(value, &why))
		return err_set(e, EINVAL, "%s", why);
	return 0;
}

bool config_dns_name_valid(const char *s)
{
	return cfg_dns_label(s);
}

static void label_item(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
		       const struct cfg_item *it, void *obj)
{
	struct cfg_container *ct = obj;
	const char *v = it->s, *eq = strchr(v, '=');
	struct err er = { 0 };
	struct label *l;
	char *key, *val;
	size_t kl;

	if (!eq) {
		cfg_err_key(c, s, e, -1, "'%s': expected KEY=VALUE", v);
		return;
	}
	kl = (size_t)(eq - v);
	while (kl && isspace((unsigned char)v[kl - 1]))
		kl--;
	key = cfg_strndup(c->mem, v, kl);
	val = cfg_strdup(c->mem, cfg_skip_ws(eq + 1));
	if (config_label_check(key, val, &er) < 0) {
		cfg_err_key(c, s, e, -1, "'%s': %s", v, er.msg);
		return;
	}
	if (config_label_get(ct->labels, ct->n_labels, key)) {
		cfg_err_key(c, s, e, -1, "label '%s' is given twice", key);
		return;
	}
	l = CFG_PUSH(c->mem, ct->labels, ct->n_labels);
	l->key = key;
	l->value = val;
}

static void network_item(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
			 const struct cfg_item *it, void *obj)
{
	struct cfg_container *ct = obj;
	bool dup = false;

	for (size_t j = 0; j < ct->n_networks; j++)
		dup |= !strcmp(ct->networks[j], it->s);
	if (!*it->s)
		cfg_err_key(c, s, e, -1, "empty item in the list");
	else if (dup)
		cfg_err_key(c, s, e, -1, "network '%s' is listed twice", it->s);
	else if (ct->n_networks == CONFIG_NET_PER_CONTAINER)
		cfg_err_key(c, s, e, -1, "at most %d networks", CONFIG_NET_PER_CONTAINER);
	else
		*CFG_PUSH(c->mem, ct->networks, ct->n_networks) = cfg_strdup(c->mem, it->s);
}

/* After networks (the table's order): which of them carries the default
 * routes; stored as an index so that "not given" and "the first" are one
 * configuration. */
static void parse_default_network(struct cfg_ctx *c, const struct ini_sect *s,
				  const struct ini_ent *e, void *obj)
{
	struct cfg_container *ct = obj;
	char list[CONFIG_NET_PER_CONTAINER * (CONFIG_NAME_MAX + 2) + 1] = "";
	size_t off = 0;

	for (size_t j = 0; j < ct->n_networks; j++) {
		if (!strcmp(ct->networks[j], e->val)) {
			ct->default_net = j;
			return;
		}
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", j ? ", " : "",
					ct->networks[j]);
		if (off >= sizeof(list))
			off = sizeof(list) - 1;
	}
	cfg_err_key(c, s, e, -1, "'%s' is not one of the container's networks (%s)", e->val,
		    list);
}

int cfg_parse_proto(const char *s)
{
	if (!strcasecmp(s, "tcp"))
		return IPPROTO_TCP;
	if (!strcasecmp(s, "udp"))
		return IPPROTO_UDP;
	if (!strcasecmp(s, "sctp"))
		return IPPROTO_SCTP;
	return -1;
}

/* "P" or "A-B" -> first, last; returns NULL or what is wrong. */
static const char *parse_port_span(const char *s, size_t n, uint16_t *first, uint16_t *last)
{
	char a[16], b[16];
	const char *dash = memchr(s, '-', n);
	unsigned long long x, y;

	if (!n || n >= sizeof(a))
		return "port must be a number from 1 to 65535";
	if (dash) {
		snprintf(a, sizeof(a), "%.*s", (int)(dash - s), s);
		snprintf(b, sizeof(b), "%.*s", (int)(n - (size_t)(dash - s) - 1), dash + 1);
	} else {
		snprintf(a, sizeof(a), "%.*s", (int)n, s);
		snprintf(b, sizeof(b), "%s", a);
	}
	if (!cfg_parse_uint(a, 65535, &x) || !cfg_parse_uint(b, 65535, &y) || !x || !y)
		return "port must be a number from 1 to 65535";
	if (x > y)
		return "the range starts after it ends";
	*first = (uint16_t)x;
	*last = (uint16_t)y;
	return NULL;
}

/* [HOST_IP:]HOST_PORT[-END]:PORT[-END][/PROTO], IPv6 in brackets */
int config_port_parse(const char *v, struct cfg_port *out, struct err *e)
{
	const char *slash = strrchr(v, '/'), *p = v, *why, *colon;
	size_t n = slash ? (size_t)(slash - v) : strlen(v);
	struct cfg_port pt = { .proto = IPPROTO_TCP };
	int proto;

	if (!*v)
		return err_set(e, EINVAL, "empty item in the list");
	if (slash) {
		proto = cfg_parse_proto(slash + 1);
		if (proto < 0)
			return err_set(e, EINVAL, "'%s': protocol must be tcp, udp or sctp", v);
		pt.proto = (uint8_t)proto;
	}
	if (*p == '[') {        /* [IPV6]:HOST:PORT */
		const char *rb = memchr(p, ']', n);
		char ab[IP_STRLEN + 1];

		if (!rb || rb[1] != ':' || (size_t)(rb - p - 1) >= sizeof(ab))
			return err_set(e, EINVAL, "'%s': expected [HOST_IP:]HOST_PORT:"
				       "CONTAINER_PORT[/PROTO]", v);
		snprintf(ab, sizeof(ab), "%.*s", (int)(rb - p - 1), p + 1);
		if (ip_parse(ab, &pt.host_ip, NULL) < 0 || pt.host_ip.family != AF_INET6)
			return err_set(e, EINVAL, "'%s': '%s' is not a valid IPv6 address", v, ab);
		pt.has_host_ip = true;
		n -= (size_t)(rb + 2 - p);
		p = rb + 2;
	} else {
		size_t colons = 0;

		for (size_t j = 0; j < n; j++)
			colons += p[j] == ':';
		if (colons == 2) {
			char ab[IP_STRLEN + 1];
			size_t al = strcspn(p, ":");

			snprintf(ab, sizeof(ab), "%.*s", (int)(al < IP_STRLEN ? al : IP_STRLEN), p);
			if (ip_parse(ab, &pt.host_ip, NULL) < 0)
				return err_set(e, EINVAL, "'%s': '%s' is not a valid IPv4 address",
					       v, ab);
			pt.has_host_ip = true;
			n -= al + 1;
			p += al + 1;
		} else if (colons > 2) {
			return err_set(e, EINVAL, "'%s': write an IPv6 host address in brackets, "
				       "e.g. [::1]:8080:80", v);
		}
	}
	colon = memchr(p, ':', n);
	if (!colon)
		return err_set(e, EINVAL, "'%s': expected [HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTO]",
			       v);
	why = parse_port_span(p, (size_t)(colon - p), &pt.host_first, &pt.host_last);
	if (!why)
		why = parse_port_span(colon + 1, n - (size_t)(colon - p) - 1, &pt.first, &pt.last);
	if (why)
		return err_set(e, EINVAL, "'%s': %s", v, why);
	if (pt.host_last - pt.host_first != pt.last - pt.first)
		return err_set(e, EINVAL, "'%s': the host and container ranges must be of equal "
			       "length", v);
	*out = pt;
	return 0;
}

static void port_item(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
		      const struct cfg_item *it, void *obj)
{
	struct cfg_container *ct = obj;
	struct cfg_port pt;
	struct err er = { 0 };

	if (config_port_parse(it->s, &pt, &er) < 0) {
		cfg_err_key(c, s, e, -1, "%s", er.msg);
		return;
	}
	pt.line = e->line;
	*CFG_PUSH(c->mem, ct->ports, ct->n_ports) = pt;
}

static void parse_service(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
			  void *obj)
{
	struct cfg_container *ct = obj;

	if (!cfg_dns_label(e->val))
		cfg_err_key(c, s, e, -1, "'%s': a service is a DNS name: letters, digits and '-', "
			    "at most %d", e->val, CONFIG_NAME_MAX);
	ct->service = cfg_strdup(c->mem, e->val);
}

static void static_ip(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
		      int family, bool *has, struct ip_addr *a)
{
	struct err er = { 0 };

	if (ip_parse(e->val, a, &er) < 0)
		cfg_err_key(c, s, e, -1, "%s", er.msg);
	else if (a->family != family)
		cfg_err_key(c, s, e, -1, "'%s': expected an IPv%d address%s", e->val,
			    family == AF_INET ? 4 : 6,
			    family == AF_INET ? " (IPv6 goes in ip6)" : " (IPv4 goes in ip)");
	else
		*has = true;
}

static void parse_ip(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
		     void *obj)
{
	struct cfg_container *ct = obj;

	static_ip(c, s, e, AF_INET, &ct->has_ip, &ct->ip);
}

static void parse_ip6(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
		      void *obj)
{
	struct cfg_container *ct = obj;

	static_ip(c, s, e, AF_INET6, &ct->has_ip6, &ct->ip6);
}

static void parse_cpus(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
		       void *obj)
{
	struct cfg_container *ct = obj;
	const char *v = e->val, *dot = strchr(v, '.');
	unsigned long long whole = 0, frac = 0;
	size_t fl = dot ? strlen(dot + 1) : 0;
	char w[8];
	bool ok;

	ok = (dot ? (size_t)(dot - v) : strlen(v)) < sizeof(w) && fl <= 3 && (!dot || fl);
	if (ok) {
		snprintf(w, sizeof(w), "%.*s", (int)(dot ? dot - v : (long)strlen(v)), v);
		ok = (!*w && dot) || cfg_parse_uint(w, 1024, &whole);
		if (ok && fl) {
			char f[4] = "000";

			memcpy(f, dot + 1, fl);
			ok = cfg_parse_uint(f, 999, &frac);
		}
	}
	if (ok && whole * 1000 + frac >= 1 && whole * 1000 + frac <= 1024000)
		ct->cpus_milli = (unsigned)(whole * 1000 + frac);
	else
		cfg_err_key(c, s, e, -1, "'%s': expected a number of CPUs from 0.001 to 1024 "
			    "(e.g. 0.5)", v);
}

/* ---- health checks ------------------------------------------------------ */

/*
 * A duration: a whole number with a unit, ms, s, m or h; a bare number is
 * seconds (as stop_timeout). Into *ms when it lies in [min, max] ms.
 */
bool cfg_parse_duration(const char *v, uint64_t min, uint64_t max, uint32_t *ms)
{
	static const struct { const char *unit; uint64_t ms; } units[] = {
		{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 } };
	size_t n = strspn(v, "0123456789");
	unsigned long long x;
	char num[16];

	if (!n || n >= sizeof(num))
		return false;
	memcpy(num, v, n);
	num[n] = '\0';
	if (!cfg_parse_uint(num, 1000000000ULL, &x))
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (strcmp(v + n, units[i].unit))
			continue;
		if (x * units[i].ms < min || x * units[i].ms > max)
			return false;
		*ms = (uint32_t)(x * units[i].ms);
		return true;
	}
	return false;
}

static void duration_key(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
			 uint32_t *out, uint64_t min, const char *least, uint64_t max,
			 const char *most)
{
	if (!cfg_parse_duration(e->val, min, max, out))
		cfg_err_key(c, s, e, -1, "'%s': expected a duration from %s to %s (e.g. 500ms, "
			    "10s, 2m; a bare number is seconds)", e->val, least, most);
}

static void parse_health_interval(struct cfg_ctx *c, const struct ini_sect *s,
				  const struct ini_ent *e, void *obj)
{
	struct cfg_container *ct = obj;

	duration_key(c, s, e, &ct->health.interval_ms, 100, "100ms", 86400000, "24h");
}

static void parse_health_timeout(struct cfg_ctx *c, const struct ini_sect *s,
				 const struct ini_ent *e, void *obj)
{
	struct cfg_container *ct = obj;

	duration_key(c, s, e, &ct->health.timeout_ms, 100, "100ms", 3600000, "1h");
}

static void parse_health_start_period(struct cfg_ctx *c, const struct ini_sect *s,
				      const struct ini_ent *e, void *obj)
{
	struct cfg_container *ct = obj;

	duration_key(c, s, e, &ct->health.start_period_ms, 0, "0s", 86400000, "24h");
}

bool cfg_port_num(const char *v, size_t n, uint16_t *port)
{
	unsigned long long x;
	char num[8];

	if (!n || n >= sizeof(num) || strspn(v, "0123456789") < n)
		return false;
	memcpy(num, v, n);
	num[n] = '\0';
	if (!cfg_parse_uint(num, 65535, &x) || !x)
		return false;
	*port = (uint16_t)x;
	return true;
}

static void parse_health(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
			 void *obj)
{
	struct cfg_health *h = &((struct cfg_container *)obj)->health;
	const char *v = e->val;

	if (!strncasecmp(v, "tcp:", 4)) {
		h->kind = HEALTH_TCP;
		if (!cfg_port_num(v + 4, strlen(v + 4), &h->port))
			cfg_err_key(c, s, e, -1, "'%s': expected tcp:PORT with a PORT from 1 to "
				    "65535", v);
	} else if (!strncasecmp(v, "http:", 5)) {
		const char *slash = strchr(v + 5, '/');
		size_t pl = slash ? (size_t)(slash - (v + 5)) : strlen(v + 5);

		h->kind = HEALTH_HTTP;
		h->path = cfg_strdup(c->mem, slash ? slash : "/");
		if (!cfg_port_num(v + 5, pl, &h->port)) {
			cfg_err_key(c, s, e, -1, "'%s': expected http:PORT/PATH with a PORT from 1 "
				    "to 65535", v);
			return;
		}
		for (const char *p = h->path; *p; p++)
			if ((unsigned char)*p <= ' ' || *p == 0x7f) {
				cfg_err_key(c, s, e, -1, "'%s': the path may not hold spaces or "
					    "control characters (write them %%-encoded)", v);
				return;
			}
		if (strlen(h->path) > HEALTH_PATH_MAX)
			cfg_err_key(c, s, e, -1, "the path is longer than %d bytes",
				    HEALTH_PATH_MAX);
	} else if (!strncasecmp(v, "exec:", 5)) {
		long bad = split_command(c->mem, v + 5, &h->argv, &h->argc);

		h->kind = HEALTH_EXEC;
		if (bad >= 0)
			cfg_err_key(c, s, e, -1, "'%s': unterminated %c quote", v, v[5 + bad]);
		else if (!h->argc)
			cfg_err_key(c, s, e, -1, "'%s': expected exec:COMMAND [ARG...]", v);
	} else {
		cfg_err_key(c, s, e, -1, "'%s': expected tcp:PORT, http:PORT/PATH or "
			    "exec:COMMAND [ARG...]", v);
	}
}

static const struct cfg_word on_unhealthy_words[] = { { "none", ON_UNHEALTHY_NONE },
	{ "restart", ON_UNHEALTHY_RESTART }, { NULL, 0 } };

/* The health_* keys and on_unhealthy only mean something with a check. */
static void container_health(struct cfg_ctx *c, const struct ini_sect *s, struct cfg_container *ct)
{
	static const char *const keys[] = { "health_interval", "health_timeout",
		"health_retries", "health_start_period", "on_unhealthy" };
	const struct ini_ent *e;

	if (ct->lines.health)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if ((e = cfg_get(s, keys[i])))
			cfg_err_key(c, s, e, -1, "only with health (what to check: health = "
				    "tcp:PORT, http:PORT/PATH or exec:COMMAND)");
}

static const struct cfg_word pulls[] = { { "missing", PULL_MISSING },
	{ "always", PULL_ALWAYS }, { "never", PULL_NEVER }, { NULL, 0 } };

static const struct cfg_word restarts[] = { { "always", RESTART_ALWAYS },
	{ "on-failure", RESTART_ON_FAILURE }, { "no", RESTART_NO }, { NULL, 0 } };

#define CT_LINE(key) .line = offsetof(struct cfg_container, lines.key)

/* obj: struct cfg_container */
static const struct cfg_key container_keys[] = {
	{ "name", CFG_TEXT, .syntax = "NAME", .parse = parse_name, CT_LINE(name),
	  .help = "the container's DNS name (default: the file name without .ini)" },
	{ "rootfs", CFG_PATH, .off = offsetof(struct cfg_container, rootfs), CT_LINE(rootfs),
	  .help = "the directory the container runs in, read-only (or image)" },
	{ "image", CFG_TEXT, .syntax = "[REGISTRY[:PORT]/]NAME[:TAG][@sha256:HEX]",
	  .parse = parse_image, CT_LINE(image),
	  .help = "the image the container runs from (or rootfs)" },
	{ "pull", CFG_ENUM, .words = pulls, .off = offsetof(struct cfg_container, pull),
	  .def = "missing", .help = "with image: when it is fetched from its registry" },
	{ "read_only", CFG_BOOL, .off = offsetof(struct cfg_container, read_only), .def = "yes",
	  .help = "with image: no keeps the root writable, with changes kept across restarts" },
	{ "command", CFG_TEXT, .syntax = "WORDS", .parse = parse_command, CT_LINE(command),
	  .help = "what to run, split as a shell would (quotes, \\) without expansion "
	  "(with image: default the image's Cmd)" },
	{ "env", CFG_TEXT, CFG_REPEAT, "NAME=VALUE", .parse = parse_env,
	  .help = "an environment variable of the process, one per line" },
	{ "labels", CFG_LIST, .syntax = "KEY=VALUE, ...", .item = label_item,
	  .help = "what policies select the container by" },
	{ "networks", CFG_LIST, .syntax = "NETWORK, ...", .item = network_item, CT_LINE(networks),
	  .def = "default", .help = "one interface on each: eth0, eth1, ... (at most 8)" },
	{ "default_network", CFG_TEXT, .syntax = "NETWORK", .parse = parse_default_network,
	  CT_LINE(default_network), .help = "the network of the default routes, the resolver "
	  "and the published ports (default: the first of networks)" },
	{ "ports", CFG_LIST, .syntax = "[HOST_IP:]HOST_PORT[-END]:PORT[-END][/PROTO], ...",
	  .item = port_item, CT_LINE(ports),
	  .help = "published ports: tcp (the default), udp or sctp; IPv6 HOST_IP in []" },
	{ "service", CFG_TEXT, .syntax = "NAME", .parse = parse_service, CT_LINE(service),
	  .help = "a DNS name shared by every container with this service" },
	{ "ip", CFG_ADDRESS, .syntax = "IPV4", .parse = parse_ip, CT_LINE(ip),
	  .help = "a static address, in the range of one of its networks" },
	{ "ip6", CFG_ADDRESS, .syntax = "IPV6", .parse = parse_ip6, CT_LINE(ip6),
	  .help = "a static IPv6 address, in the range of one of its networks" },
	{ "restart", CFG_ENUM, .words = restarts, .off = offsetof(struct cfg_container, restart),
	  .def = "no", .help = "when the process is started again, with exponential back-off" },
	{ "memory", CFG_SIZE, .min = 1ULL << 20, .off = offsetof(struct cfg_container, memory),
	  .help = "cgroup v2 memory.max (default: no limit)" },
	{ "cpus", CFG_TEXT, .syntax = "0.001..1024", .parse = parse_cpus,
	  .help = "cgroup v2 cpu.max, in CPUs (default: no limit)" },
	{ "stop_timeout", CFG_UINT, .min = 0, .max = 3600, .unit = "seconds",
	  .off = offsetof(struct cfg_container, stop_timeout), .def = "10",
	  .help = "the time between SIGTERM and SIGKILL" },
	{ "init", CFG_BOOL, .off = offsetof(struct cfg_container, init), .def = "yes",
	  .help = "berth's init is PID 1: forwards signals to the command, reaps orphans" },
	{ "log_size", CFG_SIZE, .min = 16ULL << 10, .off = offsetof(struct cfg_container, log_size),
	  .def = "1M", .help = "stdout and stderr kept before one rotation to NAME.log.1" },
	{ "health", CFG_TEXT, .syntax = "tcp:PORT | http:PORT/PATH | exec:COMMAND [ARG...]",
	  .parse = parse_health, CT_LINE(health),
	  .help = "a health check: a connect, an HTTP GET (2xx/3xx) on 127.0.0.1 inside the "
	  "container, or a command run in it (exit 0)" },
	{ "health_interval", CFG_TEXT, .syntax = "DURATION", .parse = parse_health_interval,
	  .def = "10s", .help = "with health: the time from the end of one probe to the next" },
	{ "health_timeout", CFG_TEXT, .syntax = "DURATION", .parse = parse_health_timeout,
	  .def = "5s", .help = "with health: a probe that takes longer fails" },
	{ "health_retries", CFG_UINT, .min = 1, .max = 1000, .unit = "probes",
	  .off = offsetof(struct cfg_container, health.retries), .def = "3",
	  .help = "with health: failures in a row that make the container unhealthy" },
	{ "health_start_period", CFG_TEXT, .syntax = "DURATION",
	  .parse = parse_health_start_period, .def = "0s",
	  .help = "with health: failures this soon after a start do not count" },
	{ "on_unhealthy", CFG_ENUM, .words = on_unhealthy_words,
	  .off = offsetof(struct cfg_container, health.on_unhealthy), .def = "none",
	  .help = "with health: restart restarts the container when it becomes unhealthy" },
};
const struct cfg_section cfg_container_section = { "containers.d/NAME.ini", "container",
	container_keys, ARRAY_SIZE(container_keys) };

/* Exactly one of image and rootfs (a bad value counts as given: it was
 * reported); command, pull and read_only as the one given allows. */
static void container_root(struct cfg_ctx *c, const struct ini_sect *s, struct cfg_container *ct)
{
	const struct ini_ent *e;

	if (ct->lines.image && ct->lines.rootfs) {
		int later = ct->lines.image > ct->lines.rootfs ? ct->lines.image : ct->lines.rootfs;

		cfg_error(c, c->file, c->file_idx, later, 0, "[%s] image and rootfs: give one of "
			  "the two (%s on line %d)", s->name, later == ct->lines.image ?
			  "rootfs" : "image", later == ct->lines.image ? ct->lines.rootfs :
			  ct->lines.image);
	} else if (!ct->lines.image && !ct->lines.rootfs) {
		cfg_err_sect(c, s, "image or rootfs: missing (what the container runs: image = "
			     "REF, or rootfs = DIR)");
	}
	if (!ct->lines.image && !ct->lines.command)
		cfg_err_sect(c, s, "command: missing (what to run, e.g. command = httpd -f)");
	if (ct->lines.image)
		return;
	if ((e = cfg_get(s, "pull")))
		cfg_err_key(c, s, e, -1, "only with image (a rootfs is not pulled)");
	if ((e = cfg_get(s, "read_only")))
		cfg_err_key(c, s, e, -1, "only with image (a rootfs is always mounted read-only)");
}

void cfg_container_file(struct cfg_ctx *c, const struct ini_file *f)
{
	struct cfg_container *ct = NULL;
	const struct ini_sect *first = NULL;

	for (size_t i = 0; i < f->n; i++) {
		const struct ini_sect *s = &f->sects[i];
		static const char *const kinds[] = { "container", NULL };

		if (strcmp(s->name, "container")) {
			const char *kind, *name, *near;

			cfg_sect_kind(c->tmp, s->name, &kind, &name);
			near = cfg_closest(kind, kinds);
			cfg_error(c, c->file, c->file_idx, s->line, 0, "unknown section [%s] (%s)",
				  s->name, near && *name ? "[container] takes no name" :
				  near ? "did you mean [container]?" :
				  "a container file has one [container] section");
			continue;
		}
		if (first) {
			cfg_err_sect(c, s, "section given twice (first on line %d); one "
				     "container per file", first->line);
			continue;
		}
		first = s;
		/* with the file's other pieces; room for one per file was made
		 * in the config's array (config.c load_srcs) */
		ct = cfg_new(c->mem, sizeof(*ct));
		c->cfg->containers[c->cfg->n_containers++] = ct;
		ct->file = cfg_strdup(c->mem, f->path);
		ct->lines.section = s->line;
		cfg_check_keys(c, s, &cfg_container_section);
		cfg_parse_keys(c, s, &cfg_container_section, ct);
		container_root(c, s, ct);
		container_health(c, s, ct);
		if (!ct->name) {
			ct->name = cfg_file_stem(c->mem, f->path);
			if (!cfg_dns_label(ct->name))
				cfg_error(c, c->file, c->file_idx, 0, 0, "the container name '%s' "
					  "(the file name) is not a DNS name (letters, digits and "
					  "'-'): rename the file or set name", ct->name);
		}
	}
	if (!first)
		cfg_error(c, c->file, c->file_idx, 0, 0, "no [container] section");
}
