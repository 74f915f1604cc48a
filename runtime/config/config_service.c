/* config_service.c - services with virtual IPs (issue 23): [service NAME] in
 * berth.ini and the [service] of services.d/NAME.ini, their keys (config.h
 * says what each means), and the checks that need the whole configuration:
 * the network and its service ranges, VIPs given twice, names that are also
 * a container's or a `service =`. */
#include "runtime/config/config_int.h"

#include <ctype.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

_Static_assert(sizeof(enum svc_balance) == sizeof(int), "CFG_ENUM stores an int");

#define AFFINITY_DEFAULT_S 10800    /* client-ip without a timeout: 3h, as Kubernetes */

/* What the section's parsers fill, and what they tell each other. */
struct svc_parse {
	struct cfg_service s;       /* first: the table's offsets are cfg_service's */
	bool ports_bad;             /* a ports item was refused: publish does not judge */
};

/* "/PROTO" at the end of v: *n gets the length before it. false: a bad one. */
static bool proto_suffix(const char *v, size_t *n, uint8_t *proto)
{
	const char *slash = strrchr(v, '/');
	int p;

	*n = strlen(v);
	*proto = IPPROTO_TCP;
	if (!slash)
		return true;
	*n = (size_t)(slash - v);
	if ((p = cfg_parse_proto(slash + 1)) < 0)
		return false;
	*proto = (uint8_t)p;
	return true;
}

static void parse_network(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
			  void *obj)
{
	struct cfg_service *svc = obj;

	/* whether it exists is cfg_service_checks's: berth.ini may change
	 * while a cached services.d file does not */
	(void)s;
	svc->network = cfg_strdup(c->mem, e->val);
}

static void parse_select(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
			 void *obj)
{
	struct cfg_service *svc = obj;
	struct err er = { 0 };

	if (!strcmp(e->val, "host") || !strcmp(e->val, "world"))
		cfg_err_key(c, s, e, -1, "'%s' is a peer, not a selector: select takes label "
			    "terms or all", e->val);
	else if (selector_parse(c->mem, e->val, &svc->select, NULL, &er) < 0)
		cfg_err_key(c, s, e, -1, "'%s': %s", e->val, er.msg);
}

/* PORT[:TARGET][/PROTO] */
static void port_item(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
		      const struct cfg_item *it, void *obj)
{
	struct svc_parse *p = obj;
	struct cfg_service *svc = &p->s;
	struct cfg_service_port pt = { 0 };
	const char *v = it->s, *colon;
	size_t n;

	p->ports_bad = true;
	if (!*v) {
		cfg_err_key(c, s, e, -1, "empty item in the list");
		return;
	}
	if (!proto_suffix(v, &n, &pt.proto)) {
		cfg_err_key(c, s, e, -1, "'%s': protocol must be tcp, udp or sctp", v);
		return;
	}
	colon = memchr(v, ':', n);
	if (!cfg_port_num(v, colon ? (size_t)(colon - v) : n, &pt.port) ||
	    (colon && !cfg_port_num(colon + 1, n - (size_t)(colon - v) - 1, &pt.target))) {
		cfg_err_key(c, s, e, -1, "'%s': expected PORT[:TARGET][/PROTO] with ports from 1 "
			    "to 65535", v);
		return;
	}
	if (!colon)
		pt.target = pt.port;
	for (size_t j = 0; j < svc->n_ports; j++)
		if (svc->ports[j].port == pt.port && svc->ports[j].proto == pt.proto) {
			cfg_err_key(c, s, e, -1, "'%s': port %u/%s is given twice", v, pt.port,
				    ip_proto_name(pt.proto));
			return;
		}
	p->ports_bad = false;
	*CFG_PUSH(c->mem, svc->ports, svc->n_ports) = pt;
}

/* auto, or at most one IPv4 and one IPv6 address; whether they lie in the
 * network's service ranges is cfg_service_checks's */
static void parse_vip(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
		      void *obj)
{
	struct cfg_service *svc = obj;
	struct cfg_item *it;
	size_t n = cfg_split_list(c->tmp, e->val, &it);

	if (n == 1 && !strcmp(it[0].s, "auto")) {
		svc->vip_auto = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct err er = { 0 };
		struct ip_addr a, *slot;

		if (!strcmp(it[i].s, "auto")) {
			cfg_err_key(c, s, e, -1, "'%s': auto stands alone (or give the addresses)",
				    e->val);
			return;
		}
		if (!*it[i].s) {
			cfg_err_key(c, s, e, -1, "empty item in the list");
			continue;
		}
		if (ip_parse(it[i].s, &a, &er) < 0) {
			cfg_err_key(c, s, e, -1, "%s", er.msg);
			continue;
		}
		slot = a.family == AF_INET ? &svc->vip4 : &svc->vip6;
		if (slot->family) {
			cfg_err_key(c, s, e, -1, "'%s': two IPv%d addresses (a service has at most "
				    "one IPv4 and one IPv6 VIP)", e->val, a.family == AF_INET ? 4 : 6);
			continue;
		}
		*slot = a;
	}
}

/* none | client-ip [TIMEOUT] */
static void parse_affinity(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
			   void *obj)
{
	struct cfg_service *svc = obj;
	const char *v = e->val, *d;
	uint32_t ms;

	svc->affinity_s = 0;
	if (!strcmp(v, "none"))
		return;
	if (strncmp(v, "client-ip", 9) || (v[9] && !isspace((unsigned char)v[9]))) {
		cfg_err_key(c, s, e, -1, "'%s': expected none or client-ip [TIMEOUT] (e.g. "
			    "client-ip 30m)", v);
		return;
	}
	d = cfg_skip_ws(v + 9);
	if (!*d)
		svc->affinity_s = AFFINITY_DEFAULT_S;
	else if (cfg_parse_duration(d, 1000, 86400000, &ms) && !(ms % 1000))
		svc->affinity_s = ms / 1000;
	else
		cfg_err_key(c, s, e, -1, "'%s': expected a timeout of whole seconds from 1s to "
			    "24h (e.g. 30m, 3h; a bare number is seconds)", v);
}

/* Do two host addresses (has: given; else every address) meet? */
static bool hosts_meet(bool has_a, const struct ip_addr *a, bool has_b, const struct ip_addr *b)
{
	if (!has_a || !has_b)
		return true;
	if (a->family != b->family)
		return false;
	return ip_is_zero(a) || ip_is_zero(b) || ip_equal(a, b);
}

/* [HOST_IP:]HOST_PORT[:PORT][/PROTO], IPv6 HOST_IP in brackets. After ports
 * (the table's order): PORT is one of them, or the only one of PROTO. */
static void publish_item(struct cfg_ctx *c, const struct ini_sect *s, const struct ini_ent *e,
			 const struct cfg_item *it, void *obj)
{
	struct svc_parse *p = obj;
	struct cfg_service *svc = &p->s;
	struct cfg_service_publish pb = { 0 };
	const char *v = it->s, *q = v, *colon;
	char ab[IP_STRLEN + 1];
	size_t n, colons = 0, found = 0;

	if (!*v) {
		cfg_err_key(c, s, e, -1, "empty item in the list");
		return;
	}
	if (!proto_suffix(v, &n, &pb.proto)) {
		cfg_err_key(c, s, e, -1, "'%s': protocol must be tcp, udp or sctp", v);
		return;
	}
	if (*q == '[') {
		const char *rb = memchr(q, ']', n);

		if (!rb || rb[1] != ':' || (size_t)(rb - q - 1) >= sizeof(ab)) {
			cfg_err_key(c, s, e, -1, "'%s': expected [IPV6]:HOST_PORT[:PORT][/PROTO]", v);
			return;
		}
		snprintf(ab, sizeof(ab), "%.*s", (int)(rb - q - 1), q + 1);
		if (ip_parse(ab, &pb.host_ip, NULL) < 0 || pb.host_ip.family != AF_INET6) {
			cfg_err_key(c, s, e, -1, "'%s': '%s' is not a valid IPv6 address", v, ab);
			return;
		}
		pb.has_host_ip = true;
		n -= (size_t)(rb + 2 - q);
		q = rb + 2;
	} else {
		size_t al = strcspn(q, ":");

		for (size_t j = 0; j < n; j++)
			colons += q[j] == ':';
		if (colons > 2) {
			cfg_err_key(c, s, e, -1, "'%s': write an IPv6 host address in brackets, "
				    "e.g. [::1]:8080", v);
			return;
		}
		/* HOST_IP:HOST_PORT and HOST_PORT:PORT both have one ':'; an
		 * address has dots */
		if (colons == 2 || (colons == 1 && memchr(q, '.', al))) {
			snprintf(ab, sizeof(ab), "%.*s", (int)(al < IP_STRLEN ? al : IP_STRLEN), q);
			if (ip_parse(ab, &pb.host_ip, NULL) < 0 || pb.host_ip.family != AF_INET) {
				cfg_err_key(c, s, e, -1, "'%s': '%s' is not a valid IPv4 address",
					    v, ab);
				return;
			}
			pb.has_host_ip = true;
			n -= al + 1;
			q += al + 1;
		}
	}
	colon = memchr(q, ':', n);
	if (!cfg_port_num(q, colon ? (size_t)(colon - q) : n, &pb.host_port) ||
	    (colon && !cfg_port_num(colon + 1, n - (size_t)(colon - q) - 1, &pb.port))) {
		cfg_err_key(c, s, e, -1, "'%s': expected [HOST_IP:]HOST_PORT[:PORT][/PROTO] with "
			    "ports from 1 to 65535", v);
		return;
	}
	if (p->ports_bad || !svc->n_ports)
		return;     /* reported with ports */
	for (size_t j = 0; j < svc->n_ports; j++) {
		if (svc->ports[j].proto != pb.proto)
			continue;
		if (colon && svc->ports[j].port == pb.port)
			found = 1;
		else if (!colon && !found++)
			pb.port = svc->ports[j].port;
	}
	if (colon && !found) {
		cfg_err_key(c, s, e, -1, "'%s': %u/%s is not one of the service's ports", v,
			    pb.port, ip_proto_name(pb.proto));
		return;
	}
	if (!colon && found != 1) {
		if (!found)
			cfg_err_key(c, s, e, -1, "'%s': the service has no %s port", v,
				    ip_proto_name(pb.proto));
		else
			cfg_err_key(c, s, e, -1, "'%s': the service has %zu %s ports: say which "
				    "(HOST_PORT:PORT)", v, found, ip_proto_name(pb.proto));
		return;
	}
	for (size_t j = 0; j < svc->n_publish; j++) {
		const struct cfg_service_publish *o = &svc->publish[j];

		if (o->host_port == pb.host_port && o->proto == pb.proto &&
		    hosts_meet(o->has_host_ip, &o->host_ip, pb.has_host_ip, &pb.host_ip)) {
			cfg_err_key(c, s, e, -1, "'%s': host port %u/%s is published twice", v,
				    pb.host_port, ip_proto_name(pb.proto));
			return;
		}
	}
	*CFG_PUSH(c->mem, svc->publish, svc->n_publish) = pb;
}

static const struct cfg_word balances[] = { { "random", SVC_BALANCE_RANDOM },
	{ "round-robin", SVC_BALANCE_ROUND_ROBIN }, { NULL, 0 } };

#define SVC_LINE(key) .line = offsetof(struct cfg_service, lines.key)

/* obj: struct svc_parse. publish needs ports above it. */
static const struct cfg_key service_keys[] = {
	{ "network", CFG_TEXT, .syntax = "NETWORK", .parse = parse_network, SVC_LINE(network),
	  .def = "default", .help = "the network of the VIP and of the containers it leads to" },
	{ "select", CFG_TEXT, CFG_BAD_IS_GIVEN, "SELECTOR or all", .parse = parse_select,
	  .missing = "the containers behind the service, e.g. select = app=web",
	  .help = "the containers behind the service, by their labels (the policies' grammar)" },
	{ "ports", CFG_LIST, .syntax = "PORT[:TARGET][/PROTO], ...", .item = port_item,
	  .missing = "what the service answers on, e.g. ports = 80/tcp",
	  .help = "the VIP's ports, each to TARGET on the containers (default: the same port); "
	  "tcp by default" },
	{ "vip", CFG_TEXT, .syntax = "auto | ADDRESS[, ADDRESS]", .parse = parse_vip, SVC_LINE(vip),
	  .def = "auto", .help = "the virtual IPs, at most one IPv4 and one IPv6, inside the "
	  "network's service ranges; auto takes one from each range" },
	{ "balance", CFG_ENUM, .words = balances, .off = offsetof(struct cfg_service, balance),
	  .def = "random", .help = "how a new connection picks one of the ready containers" },
	{ "affinity", CFG_TEXT, .syntax = "none | client-ip [TIMEOUT]", .parse = parse_affinity,
	  .def = "none", .help = "client-ip: a client keeps its container until it has been idle "
	  "for TIMEOUT (default 3h)" },
	{ "publish", CFG_LIST, .syntax = "[HOST_IP:]HOST_PORT[:PORT][/PROTO], ...",
	  .item = publish_item, SVC_LINE(publish),
	  .help = "the service on the host, as a published port; PORT may be left out when the "
	  "service has one port of the protocol" },
};
const struct cfg_section cfg_service_section = { "services.d/NAME.ini", "service", service_keys,
	ARRAY_SIZE(service_keys) };

/* The section's keys into the config's next service. */
static struct cfg_service *service_parse(struct cfg_ctx *c, const struct ini_sect *s,
					 const char *name)
{
	struct svc_parse p = { 0 };
	struct cfg_service *svc = &c->cfg->services[c->cfg->n_services++];

	p.s.name = cfg_strdup(c->mem, name);
	p.s.file = cfg_strdup(c->mem, c->file);
	p.s.line = s->line;
	cfg_check_keys(c, s, &cfg_service_section);
	cfg_parse_keys(c, s, &cfg_service_section, &p);
	*svc = p.s;
	return svc;
}

void cfg_service_sect(struct cfg_ctx *c, const struct ini_sect *s, const char *name)
{
	struct cfg_service *svc;
	uint64_t h;

	if (!*name) {
		cfg_err_sect(c, s, "a service needs a name: [service NAME]");
		return;
	}
	if (!cfg_dns_label(name)) {
		cfg_err_sect(c, s, "service name '%s': expected letters, digits and '-' (at most "
			     "%d, starting and ending with a letter or digit): it is a DNS name",
			     name, CONFIG_NAME_MAX);
		return;
	}
	svc = service_parse(c, s, name);
	/* its definition is the section: the file, its header and its entries
	 * (not their lines: a service moved down the file is the same) */
	h = hash64(HASH64_INIT, c->file, strlen(c->file) + 1);
	h = hash64(h, s->name, strlen(s->name) + 1);
	for (size_t i = 0; i < s->n; i++) {
		h = hash64(h, s->ents[i].key, strlen(s->ents[i].key) + 1);
		h = hash64(h, s->ents[i].val, strlen(s->ents[i].val) + 1);
	}
	svc->hash = h;
}

void cfg_service_file(struct cfg_ctx *c, const struct ini_file *f)
{
	static const char *const kinds[] = { "service", NULL };
	const struct ini_sect *first = NULL;
	const char *name = cfg_file_stem(c->mem, f->path);

	for (size_t i = 0; i < f->n; i++) {
		const struct ini_sect *s = &f->sects[i];

		if (strcmp(s->name, "service")) {
			const char *kind, *sname, *near;

			cfg_sect_kind(c->tmp, s->name, &kind, &sname);
			near = cfg_closest(kind, kinds);
			cfg_error(c, c->file, c->file_idx, s->line, 0, "unknown section [%s] (%s)",
				  s->name, near && *sname ? "[service] takes no name: it is the "
				  "file's" : near ? "did you mean [service]?" :
				  "a service file has one [service] section");
			continue;
		}
		if (first) {
			cfg_err_sect(c, s, "section given twice (first on line %d); one service "
				     "per file", first->line);
			continue;
		}
		first = s;
		if (!cfg_dns_label(name))
			cfg_error(c, c->file, c->file_idx, 0, 0, "the service name '%s' (the file "
				  "name) is not a DNS name (letters, digits and '-'): rename the "
				  "file", name);
		service_parse(c, s, name);
	}
	if (!first)
		cfg_error(c, c->file, c->file_idx, 0, 0, "no [service] section");
}

/* ---- checks across files ------------------------------------------------ */

/* berth.ini's first, in line order, then services.d's by file */
static int cmp_services(const void *a, const void *b)
{
	const struct cfg_service *x = a, *y = b;
	int d = strcasecmp(x->name, y->name);
	bool xi = !strcmp(x->file, "berth.ini"), yi = !strcmp(y->file, "berth.ini");

	if (d)
		return d;
	if (xi != yi)
		return xi ? -1 : 1;
	if ((d = strcmp(x->file, y->file)))
		return d;
	return x->line - y->line;
}

static int cmp_name(const void *a, const void *b)
{
	return strcasecmp(((const struct cfg_service *)a)->name,
			  ((const struct cfg_service *)b)->name);
}

struct file_key {
	int rank;
	const char *path;
};

static int cmp_file_key(const void *k, const void *f)
{
	const struct file_key *key = k;
	const struct config_file *file = f;
	int r = cfg_file_rank(file->path);

	return key->rank != r ? key->rank - r : strcmp(key->path, file->path);
}

/* The load-order index of path among files (sorted by rank and path), for
 * the order of the messages. */
static int file_index(const struct config_file *files, size_t nf, const char *path)
{
	struct file_key k = { cfg_file_rank(path), path };
	const struct config_file *f = bsearch(&k, files, nf, sizeof(*files), cmp_file_key);

	return f ? (int)(f - files) : 0;
}

/* "[service web]" in berth.ini, "[service]" in its own file: as written. */
static const char *sect_of(const struct cfg_service *svc, char *buf, size_t size)
{
	if (!strcmp(svc->file, "berth.ini"))
		snprintf(buf, size, "service %s", svc->name);
	else
		snprintf(buf, size, "service");
	return buf;
}

/* An explicit VIP, to find the ones given twice with one sort. */
struct vip_ref {
	const struct ip_addr *a;
	size_t svc;                 /* index in the sorted services */
};

static int cmp_vip_refs(const void *a, const void *b)
{
	const struct vip_ref *x = a, *y = b;
	int d = ip_cmp(x->a, y->a);

	return d ? d : x->svc < y->svc ? -1 : x->svc > y->svc;
}

/* Not the range's network address, first host or (IPv4) broadcast: the
 * store keeps the first as the pool's gateway and hands none of them out. */
static bool vip_usable(const struct ip_prefix *r, const struct ip_addr *a)
{
	struct ip_addr first, last;

	ip_prefix_first(r, &first);
	ip_prefix_last(r, &last);
	if (ip_equal(a, &first) || (a->family == AF_INET && ip_equal(a, &last)))
		return false;
	(void)ip_add(&first, 1);
	return !ip_equal(a, &first);
}

static void check_vip(struct cfg_ctx *c, const struct cfg_service *svc, int fidx,
		      const char *sect, const struct cfg_network *n, bool v6)
{
	const struct ip_addr *a = v6 ? &svc->vip6 : &svc->vip4;
	const struct ip_prefix *r = v6 ? &n->service_range6 : &n->service_range;
	const char *key = v6 ? "service_range6" : "service_range";
	char ab[IP_STRLEN], pb[IP_PREFIX_STRLEN];

	if (!a->family)
		return;
	if (!r->addr.family)
		cfg_error(c, svc->file, fidx, svc->lines.vip, 0, "[%s] vip: %s: network '%s' has "
			  "no %s (%s:%d)", sect, ip_format(a, ab), n->name, key, n->file, n->line);
	else if (!ip_prefix_contains(r, a))
		cfg_error(c, svc->file, fidx, svc->lines.vip, 0, "[%s] vip: %s is outside the %s "
			  "of network '%s' (%s)", sect, ip_format(a, ab), key, n->name,
			  ip_prefix_format(r, pb));
	else if (!vip_usable(r, a))
		cfg_error(c, svc->file, fidx, svc->lines.vip, 0, "[%s] vip: %s is the network "
			  "address, the first address or (IPv4) the broadcast address of the %s "
			  "%s: the store never hands those out", sect, ip_format(a, ab), key,
			  ip_prefix_format(r, pb));
}

/*
 * A service's published host ports against the containers' and the earlier
 * services': the host would send one port two ways. Services that publish
 * are few: each is compared with every published port, with no sort.
 */
static void check_publish(struct cfg_ctx *c, size_t i, int fidx, const char *sect)
{
	const struct config *cfg = c->cfg;
	const struct cfg_service *svc = &cfg->services[i];

	for (size_t p = 0; p < svc->n_publish; p++) {
		const struct cfg_service_publish *pb = &svc->publish[p];
		const char *proto = ip_proto_name(pb->proto);
		bool clash = false;

		for (size_t k = 0; k < cfg->n_containers && !clash; k++) {
			const struct cfg_container *ct = cfg->containers[k];

			for (size_t j = 0; j < ct->n_ports && !clash; j++) {
				const struct cfg_port *cp = &ct->ports[j];

				if (cp->proto != pb->proto || pb->host_port < cp->host_first ||
				    pb->host_port > cp->host_last ||
				    !hosts_meet(pb->has_host_ip, &pb->host_ip, cp->has_host_ip,
						&cp->host_ip))
					continue;
				clash = true;
				cfg_error(c, svc->file, fidx, svc->lines.publish, 0, "[%s] publish: "
					  "host port %u/%s is also published by container '%s' "
					  "(%s:%d)", sect, pb->host_port, proto, ct->name, ct->file,
					  cp->line);
			}
		}
		for (size_t k = 0; k < i && !clash; k++) {
			const struct cfg_service *o = &cfg->services[k];

			for (size_t j = 0; j < o->n_publish && !clash; j++) {
				const struct cfg_service_publish *op = &o->publish[j];

				if (op->proto != pb->proto || op->host_port != pb->host_port ||
				    !hosts_meet(pb->has_host_ip, &pb->host_ip, op->has_host_ip,
						&op->host_ip))
					continue;
				clash = true;
				cfg_error(c, svc->file, fidx, svc->lines.publish, 0, "[%s] publish: "
					  "host port %u/%s is also published by service '%s' (%s:%d)",
					  sect, pb->host_port, proto, o->name, o->file,
					  o->lines.publish);
			}
		}
	}
}

void cfg_service_checks(struct cfg_ctx *c, const struct config_file *files, size_t nf)
{
	struct config *cfg = c->cfg;
	struct vip_ref *vips;
	size_t n_vips = 0, run = 0;
	bool *named;                /* a service already said to be a container's `service =` */
	int *fidx;
	char sect[CONFIG_NAME_MAX + 16], ab[IP_STRLEN];

	if (!cfg->n_services)
		return;
	qsort(cfg->services, cfg->n_services, sizeof(*cfg->services), cmp_services);
	fidx = cfg_new(c->tmp, cfg->n_services * sizeof(*fidx));
	named = cfg_new(c->tmp, cfg->n_services * sizeof(*named));
	vips = cfg_new(c->tmp, 2 * cfg->n_services * sizeof(*vips));
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct cfg_service *svc = &cfg->services[i], *first = svc;
		const struct cfg_container *ct;
		const struct cfg_network *n;

		fidx[i] = file_index(files, nf, svc->file);
		sect_of(svc, sect, sizeof(sect));
		while (first > cfg->services && !strcasecmp(first[-1].name, svc->name))
			first--;
		if (first != svc)
			cfg_error(c, svc->file, fidx[i], svc->line, 0, "[%s] the name '%s' is also "
				  "used by the service in %s:%d", sect, svc->name, first->file,
				  first->line);
		if ((ct = config_container(cfg, svc->name)))
			cfg_error(c, svc->file, fidx[i], svc->line, 0, "[%s] the name '%s' is also "
				  "the name of container '%s' (%s)", sect, svc->name, ct->name,
				  ct->file);
		n = config_network(cfg, svc->network);
		if (!n) {
			cfg_error(c, svc->file, fidx[i], svc->lines.network ? svc->lines.network :
				  svc->line, 0, "[%s] network: unknown network '%s'%s", sect,
				  svc->network, svc->lines.network ? "" :
				  " (the default when network is not given)");
		} else if (svc->vip_auto) {
			char where[CONFIG_NAME_MAX + 64];

			/* the embedded default has no lines a person wrote */
			if (n->file[0] == '(')
				snprintf(where, sizeof(where), "the embedded default: define it in "
					 "berth.ini with one");
			else
				snprintf(where, sizeof(where), "%s:%d", n->file, n->line);
			if (!n->service_range.addr.family && !n->service_range6.addr.family)
				cfg_error(c, svc->file, fidx[i], svc->lines.vip ? svc->lines.vip :
					  svc->line, 0, "[%s] vip: auto%s needs a service_range or "
					  "service_range6 on network '%s' (%s)", sect,
					  svc->lines.vip ? "" : " (the default)", n->name, where);
		} else {
			check_vip(c, svc, fidx[i], sect, n, false);
			check_vip(c, svc, fidx[i], sect, n, true);
		}
		check_publish(c, i, fidx[i], sect);
		if (svc->vip4.family)
			vips[n_vips++] = (struct vip_ref){ &svc->vip4, i };
		if (svc->vip6.family)
			vips[n_vips++] = (struct vip_ref){ &svc->vip6, i };
	}
	/* a `service =` of a container: its DNS name would be two things */
	for (size_t k = 0; k < cfg->n_containers; k++) {
		const struct cfg_container *ct = cfg->containers[k];
		struct cfg_service key = { .name = ct->service, .file = "" };
		const struct cfg_service *svc;
		size_t i;

		if (!ct->service)
			continue;
		svc = bsearch(&key, cfg->services, cfg->n_services, sizeof(*svc), cmp_name);
		if (!svc)
			continue;
		while (svc > cfg->services && !strcasecmp(svc[-1].name, ct->service))
			svc--;
		i = (size_t)(svc - cfg->services);
		if (named[i])
			continue;   /* once per service, not once per replica */
		named[i] = true;
		sect_of(svc, sect, sizeof(sect));
		cfg_error(c, svc->file, fidx[i], svc->line, 0, "[%s] the name '%s' is also the "
			  "service of container '%s' (%s:%d)", sect, svc->name, ct->name, ct->file,
			  ct->lines.service);
	}
	qsort(vips, n_vips, sizeof(*vips), cmp_vip_refs);
	for (size_t j = 1; j < n_vips; j++) {
		const struct cfg_service *svc = &cfg->services[vips[j].svc];
		const struct cfg_service *o = &cfg->services[vips[run].svc];

		if (!ip_equal(vips[j].a, vips[run].a)) {
			run = j;
			continue;
		}
		cfg_error(c, svc->file, fidx[vips[j].svc], svc->lines.vip, 0, "[%s] vip: %s is also "
			  "the VIP of service '%s' (%s:%d)", sect_of(svc, sect, sizeof(sect)),
			  ip_format(vips[j].a, ab), o->name, o->file, o->lines.vip);
	}
}
