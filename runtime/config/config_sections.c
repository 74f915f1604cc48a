/* config_sections.c - the sections of berth.ini ([daemon], [network NAME],
 * [dns], [remote]) and of containers.d/NAME.ini ([container]), key by key. */
#include "runtime/config/config_int.h"

#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

/* ---- berth.ini ---------------------------------------------------------- */

static const char *const daemon_keys[] = { "state_dir", "run_dir", "log_level", NULL };
static const char *const network_keys[] = { "bridge", "subnet", "gateway", "range", "subnet6",
	"gateway6", "masquerade", "isolate", "mtu", NULL };
static const char *const dns_keys[] = { "domain", "upstream", "ttl", "cache", "host", NULL };
static const char *const remote_keys[] = { "listen", "cert", "key", "client_ca", "read_only",
	"clients", NULL };
static const char *const container_keys[] = { "name", "rootfs", "command", "env", "labels",
	"networks", "ports", "service", "ip", "ip6", "restart", "memory", "cpus",
	"stop_timeout", "log_size", NULL };
static const char *const env_repeat[] = { "env", NULL };
static const char *const berth_sections[] = { "daemon", "network", "dns", "remote", NULL };

const char *const cfg_all_keys[] = { "state_dir", "run_dir", "log_level", "bridge",
	"subnet", "gateway", "range", "subnet6", "gateway6", "masquerade", "isolate", "mtu",
	"domain", "upstream", "ttl", "cache", "host", "listen", "cert", "key", "client_ca",
	"read_only", "clients", "name", "rootfs", "command", "env", "labels", "networks", "ports",
	"service", "ip", "ip6", "restart", "memory", "cpus", "stop_timeout", "log_size", "select",
	"types",
	"from", "to", NULL };

static void do_daemon(struct cfg_ctx *c, const struct ini_sect *s)
{
	static const char *const levels[] = { "error", "warn", "info", "debug", NULL };
	struct ini_ent *e;

	cfg_check_keys(c, s, daemon_keys, NULL);
	cfg_path_key(c, s, "state_dir", &c->cfg->daemon.state_dir);
	cfg_path_key(c, s, "run_dir", &c->cfg->daemon.run_dir);
	e = cfg_get(s, "log_level");
	if (e) {
		size_t i;

		for (i = 0; levels[i] && strcmp(levels[i], e->val); i++)
			;
		if (levels[i])
			c->cfg->daemon.log_level = (enum log_level)i;
		else
			cfg_err_key(c, s, e, -1, "'%s': expected error, warn, info or debug",
				    e->val);
	}
}

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

static void check_gateway(struct cfg_ctx *c, const struct ini_sect *s, struct ini_ent *e,
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

void cfg_network(struct cfg_ctx *c, const struct ini_sect *s, const char *name)
{
	struct cfg_network *n;
	struct ini_ent *e;
	struct err er = { 0 };
	char pb[IP_PREFIX_STRLEN];
	bool have4 = false;

	cfg_check_keys(c, s, network_keys, NULL);
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
	n = CFG_PUSH(c->mem, c->cfg->networks, c->cfg->n_networks);
	n->name = cfg_strdup(c->mem, name);
	n->file = cfg_strdup(c->mem, c->file);
	n->line = s->line;
	n->masquerade = true;
	n->mtu = 1500;

	e = cfg_get(s, "bridge");
	if (e) {
		if (!ifname_valid(e->val))
			cfg_err_key(c, s, e, -1, "'%s': expected an interface name of 1 to 15 "
				    "characters without '/', ':' or spaces", e->val);
		n->bridge = cfg_strdup(c->mem, e->val);
	} else {
		char b[64];

		snprintf(b, sizeof(b), "berth-%s", name);
		if (!ifname_valid(b))
			cfg_err_sect(c, s, "bridge: the default name '%s' is longer than 15 "
				     "characters; set bridge", b);
		n->bridge = cfg_strdup(c->mem, b);
	}

	e = cfg_get(s, "subnet");
	if (!e) {
		cfg_err_sect(c, s, "subnet: missing (e.g. subnet = 10.88.0.0/16)");
	} else if (ip_prefix_parse(e->val, &n->subnet, &er) < 0) {
		cfg_err_key(c, s, e, -1, "%s", er.msg);
	} else if (n->subnet.addr.family != AF_INET) {
		cfg_err_key(c, s, e, -1, "'%s' is IPv6: put it in subnet6", e->val);
	} else if (n->subnet.len > 30) {
		cfg_err_key(c, s, e, -1, "'%s': the prefix must be /30 or shorter "
			    "(room for a gateway and a container)", e->val);
	} else {
		have4 = true;
		ip_prefix_first(&n->subnet, &n->gateway);
		ip_add(&n->gateway, 1);
	}
	e = cfg_get(s, "gateway");
	if (e && have4)
		check_gateway(c, s, e, &n->subnet, &n->gateway);

	e = cfg_get(s, "subnet6");
	if (e) {
		if (ip_prefix_parse(e->val, &n->subnet6, &er) < 0) {
			cfg_err_key(c, s, e, -1, "%s", er.msg);
		} else if (n->subnet6.addr.family != AF_INET6) {
			cfg_err_key(c, s, e, -1, "'%s' is IPv4: put it in subnet", e->val);
		} else if (n->subnet6.len > 126) {
			cfg_err_key(c, s, e, -1, "'%s': the prefix must be /126 or shorter",
				    e->val);
		} else {
			n->has_v6 = true;
			ip_prefix_first(&n->subnet6, &n->gateway6);
			ip_add(&n->gateway6, 1);
		}
	}
	e = cfg_get(s, "gateway6");
	if (e && !cfg_get(s, "subnet6"))
		cfg_err_key(c, s, e, -1, "needs subnet6");
	else if (e && n->has_v6)
		check_gateway(c, s, e, &n->subnet6, &n->gateway6);

	e = cfg_get(s, "range");
	if (e) {
		struct cfg_item *it;
		size_t k = cfg_split_list(c->tmp, e->val, &it);

		for (size_t i = 0; i < k; i++) {
			struct ip_range r;
			const struct ip_prefix *p;
			bool v6;

			if (ip_range_parse(it[i].s, &r, &er) < 0) {
				cfg_err_key(c, s, e, -1, "%s", er.msg);
				continue;
			}
			v6 = r.first.family == AF_INET6;
			if (v6 && !n->has_v6) {
				if (!cfg_get(s, "subnet6"))
					cfg_err_key(c, s, e, -1, "'%s' is IPv6 but the network "
						    "has no subnet6", it[i].s);
				continue;
			}
			if (!v6 && !have4)
				continue;
			p = v6 ? &n->subnet6 : &n->subnet;
			if (!ip_prefix_contains(p, &r.first) || !ip_prefix_contains(p, &r.last)) {
				cfg_err_key(c, s, e, -1, "range '%s' is not inside the subnet %s",
					    it[i].s, ip_prefix_format(p, pb));
				continue;
			}
			struct ip_range *rs = v6 ? n->ranges6 : n->ranges;
			size_t nr = v6 ? n->n_ranges6 : n->n_ranges;
			bool overlap = false;

			for (size_t j = 0; j < nr; j++)
				overlap |= ip_cmp(&r.first, &rs[j].last) <= 0 &&
					   ip_cmp(&rs[j].first, &r.last) <= 0;
			if (overlap) {
				cfg_err_key(c, s, e, -1, "range '%s' overlaps another range",
					    it[i].s);
				continue;
			}
			if (v6)
				*CFG_PUSH(c->mem, n->ranges6, n->n_ranges6) = r;
			else
				*CFG_PUSH(c->mem, n->ranges, n->n_ranges) = r;
		}
	}
	if (have4 && !n->n_ranges)
		cfg_prefix_hosts(&n->subnet, CFG_PUSH(c->mem, n->ranges, n->n_ranges));
	if (n->has_v6 && !n->n_ranges6)
		cfg_prefix_hosts(&n->subnet6, CFG_PUSH(c->mem, n->ranges6, n->n_ranges6));

	cfg_bool_key(c, s, "masquerade", &n->masquerade);
	cfg_bool_key(c, s, "isolate", &n->isolate);
	cfg_uint_key(c, s, "mtu", 576, 9000, "bytes", &n->mtu);
}

void cfg_read_resolv_conf(struct cfg_ctx *c, const char *path)
{
	struct cfg_dns *d = &c->cfg->dns;
	char line[256];
	FILE *f = fopen(path, "re");

	if (!f)
		return;             /* no upstreams: berth answers its own names only */
	while (fgets(line, sizeof(line), f)) {
		char word[32], addr[IP_STRLEN + 1];
		struct ip_addr a;

		if (sscanf(line, "%31s %46s", word, addr) != 2 || strcmp(word, "nameserver"))
			continue;
		if (ip_parse(addr, &a, NULL) < 0)
			continue;   /* e.g. fe80::1%eth0: a scope berth cannot use */
		if (d->host && a.family == AF_INET && a.b[0] == 127 && a.b[1] == 0 &&
		    a.b[2] == 0 && a.b[3] == 53)
			continue;   /* ourselves when [dns] host = yes */
		*CFG_PUSH(c->mem, d->upstreams, d->n_upstreams) = a;
	}
	fclose(f);
}

static void do_dns(struct cfg_ctx *c, const struct ini_sect *s)
{
	struct cfg_dns *d = &c->cfg->dns;
	struct ini_ent *e;

	cfg_check_keys(c, s, dns_keys, NULL);
	e = cfg_get(s, "domain");
	if (e) {
		char *v = cfg_strdup(c->mem, e->val);
		size_t n = strlen(v);

		if (n > 1 && v[n - 1] == '.')
			v[n - 1] = '\0';
		for (char *p = v; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		if (!cfg_domain(v))
			cfg_err_key(c, s, e, -1, "'%s': expected a DNS domain such as "
				    "berth.internal", e->val);
		d->domain = v;
	}
	e = cfg_get(s, "upstream");
	if (e) {
		struct cfg_item *it;
		size_t k = cfg_split_list(c->tmp, e->val, &it);

		c->upstream_given = true;
		for (size_t i = 0; i < k; i++) {
			struct ip_addr a;
			struct err er = { 0 };

			if (ip_parse(it[i].s, &a, &er) < 0)
				cfg_err_key(c, s, e, -1, "%s", *it[i].s ? er.msg : "empty item");
			else
				*CFG_PUSH(c->mem, d->upstreams, d->n_upstreams) = a;
		}
	}
	cfg_uint_key(c, s, "ttl", 0, 86400, "seconds", &d->ttl);
	cfg_uint_key(c, s, "cache", 0, 1000000, "entries", &d->cache);
	cfg_bool_key(c, s, "host", &d->host);
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = (char)tolower((unsigned char)ch);
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* key = sha256:<64 hex>, ... (SPKI hashes of client certificates) */
static void remote_hashes(struct cfg_ctx *c, const struct ini_sect *s, const char *key,
			  uint8_t (**out)[32], size_t *n)
{
	struct ini_ent *e = cfg_get(s, key);

	if (e) {
		struct cfg_item *it;
		size_t k = cfg_split_list(c->tmp, e->val, &it);

		for (size_t i = 0; i < k; i++) {
			const char *v = it[i].s;
			uint8_t h[32];
			bool ok = strlen(v) == 7 + 64 && !strncmp(v, "sha256:", 7);

			for (size_t j = 0; ok && j < 32; j++) {
				int hi = hexval(v[7 + 2 * j]), lo = hexval(v[8 + 2 * j]);

				ok = hi >= 0 && lo >= 0;
				h[j] = (uint8_t)(hi << 4 | lo);
			}
			if (!ok) {
				cfg_err_key(c, s, e, -1, "'%s': expected sha256: and 64 hex digits "
					    "(the client certificate's SPKI hash)", v);
				continue;
			}
			memcpy(*CFG_PUSH(c->mem, *out, *n), h, 32);
		}
	}
}

static void do_remote(struct cfg_ctx *c, const struct ini_sect *s)
{
	struct cfg_remote *r = &c->cfg->remote;
	struct ini_ent *e;

	cfg_check_keys(c, s, remote_keys, NULL);
	r->enabled = true;
	e = cfg_get(s, "listen");
	if (!e) {
		cfg_err_sect(c, s, "listen: missing (e.g. listen = 0.0.0.0:7443)");
	} else {
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
	static const char *const files[] = { "cert", "key", "client_ca" };
	const char **dst[] = { &r->cert, &r->key, &r->client_ca };

	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		if (!cfg_get(s, files[i]))
			cfg_err_sect(c, s, "%s: missing (the remote listener needs cert, key "
				     "and client_ca)", files[i]);
		cfg_path_key(c, s, files[i], dst[i]);
	}
	remote_hashes(c, s, "read_only", &r->read_only, &r->n_read_only);
	remote_hashes(c, s, "clients", &r->clients, &r->n_clients);
}

void cfg_berth_ini(struct cfg_ctx *c, const struct ini_file *f)
{
	const struct ini_sect *seen[4] = { 0 };

	for (size_t i = 0; i < f->n; i++) {
		const struct ini_sect *s = &f->sects[i];
		const char *kind, *name;
		int k;

		k = cfg_sect_lookup(c, s, berth_sections, (const char *const[]){ "network", NULL },
				    "[daemon], [network NAME], [dns] or [remote]", &kind, &name);
		if (k < 0)
			continue;
		if (k != 1 && *name) {
			cfg_err_sect(c, s, "[%s] takes no name", kind);
			continue;
		}
		if (k != 1 && seen[k]) {
			cfg_err_sect(c, s, "section given twice (first on line %d)", seen[k]->line);
			continue;
		}
		seen[k] = s;                /* empty [daemon] or [dns]: the defaults */
		switch (k) {
		case 0: do_daemon(c, s); break;
		case 1: cfg_network(c, s, name); break;
		case 2: do_dns(c, s); break;
		case 3: do_remote(c, s); break;
		}
	}
}

/* ---- containers.d ------------------------------------------------------- */

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

static void do_ports(struct cfg_ctx *c, const struct ini_sect *s, struct ini_ent *e,
		     struct cfg_container *ct)
{
	struct cfg_item *it;
	size_t k = cfg_split_list(c->tmp, e->val, &it);

	for (size_t i = 0; i < k; i++) {
		const char *v = it[i].s, *slash = strrchr(v, '/'), *p = v, *why;
		size_t n = slash ? (size_t)(slash - v) : strlen(v);
		struct cfg_port pt = { .proto = IPPROTO_TCP, .line = e->line };
		const char *colon;
		int proto;

		if (!*v) {
			cfg_err_key(c, s, e, -1, "empty item in the list");
			continue;
		}
		if (slash) {
			proto = cfg_parse_proto(slash + 1);
			if (proto < 0) {
				cfg_err_key(c, s, e, -1, "'%s': protocol must be tcp, udp or sctp", v);
				continue;
			}
			pt.proto = (uint8_t)proto;
		}
		if (*p == '[') {        /* [IPV6]:HOST:PORT */
			const char *rb = memchr(p, ']', n);
			char ab[IP_STRLEN + 1];

			if (!rb || rb[1] != ':' || (size_t)(rb - p - 1) >= sizeof(ab)) {
				cfg_err_key(c, s, e, -1, "'%s': expected [HOST_IP:]HOST_PORT:"
					    "CONTAINER_PORT[/PROTO]", v);
				continue;
			}
			snprintf(ab, sizeof(ab), "%.*s", (int)(rb - p - 1), p + 1);
			if (ip_parse(ab, &pt.host_ip, NULL) < 0 || pt.host_ip.family != AF_INET6) {
				cfg_err_key(c, s, e, -1, "'%s': '%s' is not a valid IPv6 address",
					    v, ab);
				continue;
			}
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
				if (ip_parse(ab, &pt.host_ip, NULL) < 0) {
					cfg_err_key(c, s, e, -1, "'%s': '%s' is not a valid IPv4 "
						    "address", v, ab);
					continue;
				}
				pt.has_host_ip = true;
				n -= al + 1;
				p += al + 1;
			} else if (colons > 2) {
				cfg_err_key(c, s, e, -1, "'%s': write an IPv6 host address in "
					    "brackets, e.g. [::1]:8080:80", v);
				continue;
			}
		}
		colon = memchr(p, ':', n);
		if (!colon) {
			cfg_err_key(c, s, e, -1, "'%s': expected [HOST_IP:]HOST_PORT:"
				    "CONTAINER_PORT[/PROTO]", v);
			continue;
		}
		why = parse_port_span(p, (size_t)(colon - p), &pt.host_first, &pt.host_last);
		if (!why)
			why = parse_port_span(colon + 1, n - (size_t)(colon - p) - 1, &pt.first,
					      &pt.last);
		if (why) {
			cfg_err_key(c, s, e, -1, "'%s': %s", v, why);
			continue;
		}
		if (pt.host_last - pt.host_first != pt.last - pt.first) {
			cfg_err_key(c, s, e, -1, "'%s': the host and container ranges must be "
				    "of equal length", v);
			continue;
		}
		*CFG_PUSH(c->mem, ct->ports, ct->n_ports) = pt;
	}
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

static void do_labels(struct cfg_ctx *c, const struct ini_sect *s, struct ini_ent *e,
		      struct cfg_container *ct)
{
	struct cfg_item *it;
	size_t k = cfg_split_list(c->tmp, e->val, &it);

	for (size_t i = 0; i < k; i++) {
		const char *v = it[i].s, *eq = strchr(v, '='), *why;
		char *key, *val;
		size_t kl;

		if (!eq) {
			cfg_err_key(c, s, e, -1, "'%s': expected KEY=VALUE", v);
			continue;
		}
		kl = (size_t)(eq - v);
		while (kl && isspace((unsigned char)v[kl - 1]))
			kl--;
		key = cfg_strndup(c->mem, v, kl);
		val = cfg_strdup(c->mem, cfg_skip_ws(eq + 1));
		if (!strcmp(key, "all") || !strcmp(key, "host") || !strcmp(key, "world")) {
			cfg_err_key(c, s, e, -1, "'%s': '%s' is a reserved word of the policy "
				    "language, not a label key", v, key);
			continue;
		}
		if (!cfg_label_key_valid(key, &why) || !cfg_label_value_valid(val, &why)) {
			cfg_err_key(c, s, e, -1, "'%s': %s", v, why);
			continue;
		}
		bool dup = false;

		for (size_t j = 0; j < ct->n_labels; j++)
			dup |= !strcmp(ct->labels[j].key, key);
		if (dup) {
			cfg_err_key(c, s, e, -1, "label '%s' is given twice", key);
			continue;
		}
		struct label *l = CFG_PUSH(c->mem, ct->labels, ct->n_labels);

		l->key = key;
		l->value = val;
	}
}

/* BYTES[K|M|G|T] (powers of 1024), at least min; *out gets the bytes. */
static void do_bytes(struct cfg_ctx *c, const struct ini_sect *s, struct ini_ent *e,
		     uint64_t min, const char *min_text, const char *example, uint64_t *out)
{
	const char *v = e->val;
	size_t n = strspn(v, "0123456789");
	unsigned long long x, mul = 1;
	char num[24];

	if (n && n < sizeof(num) && strlen(v + n) <= 1) {
		switch (toupper((unsigned char)v[n])) {
		case '\0': mul = 1; break;
		case 'K': mul = 1ULL << 10; break;
		case 'M': mul = 1ULL << 20; break;
		case 'G': mul = 1ULL << 30; break;
		case 'T': mul = 1ULL << 40; break;
		default: mul = 0; break;
		}
		memcpy(num, v, n);
		num[n] = '\0';
		if (mul && cfg_parse_uint(num, (1ULL << 50) / mul, &x) && x * mul >= min) {
			*out = x * mul;
			return;
		}
	}
	cfg_err_key(c, s, e, -1, "'%s': expected bytes with an optional K, M or G suffix, "
		    "at least %s (e.g. %s)", v, min_text, example);
}

static void do_memory(struct cfg_ctx *c, const struct ini_sect *s, struct ini_ent *e,
		      struct cfg_container *ct)
{
	do_bytes(c, s, e, 1ULL << 20, "1M", "64M", &ct->memory);
}

static void do_cpus(struct cfg_ctx *c, const struct ini_sect *s, struct ini_ent *e,
		    struct cfg_container *ct)
{
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
	if (ok) {
		unsigned long long milli = whole * 1000 + frac;

		if (milli >= 1 && milli <= 1024000) {
			ct->cpus_milli = (unsigned)milli;
			return;
		}
	}
	cfg_err_key(c, s, e, -1, "'%s': expected a number of CPUs from 0.001 to 1024 "
		    "(e.g. 0.5)", v);
}

static void do_static_ip(struct cfg_ctx *c, const struct ini_sect *s, struct ini_ent *e,
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

static void do_container(struct cfg_ctx *c, const struct ini_sect *s, struct cfg_container *ct)
{
	static const char *const restarts[] = { "no", "on-failure", "always", NULL };
	struct ini_ent *e;

	cfg_check_keys(c, s, container_keys, env_repeat);
	for (size_t i = 0; i < s->n; i++) {
		const struct ini_ent *x = &s->ents[i];
		int *l = !strcmp(x->key, "name") ? &ct->lines.name :
			 !strcmp(x->key, "networks") ? &ct->lines.networks :
			 !strcmp(x->key, "ports") ? &ct->lines.ports :
			 !strcmp(x->key, "ip") ? &ct->lines.ip :
			 !strcmp(x->key, "ip6") ? &ct->lines.ip6 : NULL;

		if (l && !*l)
			*l = x->line;
	}
	if ((e = cfg_get(s, "name"))) {
		if (!cfg_dns_label(e->val))
			cfg_err_key(c, s, e, -1, "'%s': a container name is letters, digits and "
				    "'-' (at most %d, starting and ending with a letter or "
				    "digit): it is a DNS name", e->val, CONFIG_NAME_MAX);
		ct->name = cfg_strdup(c->mem, e->val);
	}
	if (!cfg_get(s, "rootfs"))
		cfg_err_sect(c, s, "rootfs: missing (the directory the container runs in)");
	cfg_path_key(c, s, "rootfs", &ct->rootfs);
	if ((e = cfg_get(s, "command"))) {
		long bad = split_command(c->mem, e->val, &ct->argv, &ct->argc);

		if (bad >= 0)
			cfg_err_key(c, s, e, -1, "'%s': unterminated %c quote", e->val,
				    e->val[bad]);
	} else {
		cfg_err_sect(c, s, "command: missing (what to run, e.g. command = httpd -f)");
	}
	for (size_t i = 0; i < s->n; i++) {
		const char *v = s->ents[i].val, *eq = strchr(v, '=');
		size_t kl = eq ? (size_t)(eq - v) : 0;

		e = &s->ents[i];
		if (e->bad || strcmp(e->key, "env"))
			continue;
		if (!eq || !kl || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					 "_0123456789") != kl || isdigit((unsigned char)v[0])) {
			cfg_err_key(c, s, e, -1, "'%s': expected NAME=VALUE with a NAME of "
				    "letters, digits and '_'", v);
			continue;
		}
		bool dup = false;

		for (size_t j = 0; j < ct->n_env; j++)
			dup |= !strncmp(ct->env[j], v, kl + 1);
		if (dup) {
			cfg_err_key(c, s, e, -1, "variable '%.*s' is set twice", (int)kl, v);
			continue;
		}
		*CFG_PUSH(c->mem, ct->env, ct->n_env) = cfg_strdup(c->mem, v);
	}
	if ((e = cfg_get(s, "labels")))
		do_labels(c, s, e, ct);
	if ((e = cfg_get(s, "networks"))) {
		struct cfg_item *it;
		size_t k = cfg_split_list(c->tmp, e->val, &it);

		for (size_t i = 0; i < k; i++) {
			bool dup = false;

			for (size_t j = 0; j < ct->n_networks; j++)
				dup |= !strcmp(ct->networks[j], it[i].s);
			if (!*it[i].s)
				cfg_err_key(c, s, e, -1, "empty item in the list");
			else if (dup)
				cfg_err_key(c, s, e, -1, "network '%s' is listed twice", it[i].s);
			else if (ct->n_networks == CONFIG_NET_PER_CONTAINER)
				cfg_err_key(c, s, e, -1, "at most %d networks",
					    CONFIG_NET_PER_CONTAINER);
			else
				*CFG_PUSH(c->mem, ct->networks, ct->n_networks) =
					cfg_strdup(c->mem, it[i].s);
		}
	} else {
		*CFG_PUSH(c->mem, ct->networks, ct->n_networks) = "default";
	}
	if ((e = cfg_get(s, "ports")))
		do_ports(c, s, e, ct);
	if ((e = cfg_get(s, "service"))) {
		if (!cfg_dns_label(e->val))
			cfg_err_key(c, s, e, -1, "'%s': a service is a DNS name: letters, "
				    "digits and '-', at most %d", e->val, CONFIG_NAME_MAX);
		ct->service = cfg_strdup(c->mem, e->val);
	}
	if ((e = cfg_get(s, "ip")))
		do_static_ip(c, s, e, AF_INET, &ct->has_ip, &ct->ip);
	if ((e = cfg_get(s, "ip6")))
		do_static_ip(c, s, e, AF_INET6, &ct->has_ip6, &ct->ip6);
	if ((e = cfg_get(s, "restart"))) {
		size_t i;

		for (i = 0; restarts[i] && strcmp(restarts[i], e->val); i++)
			;
		if (restarts[i])
			ct->restart = (enum restart_policy)i;
		else
			cfg_err_key(c, s, e, -1, "'%s': expected always, on-failure or no",
				    e->val);
	}
	if ((e = cfg_get(s, "memory")))
		do_memory(c, s, e, ct);
	if ((e = cfg_get(s, "cpus")))
		do_cpus(c, s, e, ct);
	cfg_uint_key(c, s, "stop_timeout", 0, 3600, "seconds", &ct->stop_timeout);
	if ((e = cfg_get(s, "log_size")))
		do_bytes(c, s, e, 16ULL << 10, "16K", "1M", &ct->log_size);
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
		ct = CFG_PUSH(c->mem, c->cfg->containers, c->cfg->n_containers);
		ct->file = cfg_strdup(c->mem, f->path);
		ct->stop_timeout = 10;
		ct->log_size = 1ULL << 20;
		ct->lines.section = s->line;
		do_container(c, s, ct);
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


