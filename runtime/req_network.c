/* req_network.c - `network ls | inspect NAME` (what each network is: its
 * subnets, gateway, bridge, the containers on it with their addresses, and
 * how many addresses IPAM can still hand out) and `port NAME [PORT[/PROTO]]`
 * (a container's published ports, as `docker port` says them). */
#include "runtime/daemon_int.h"
#include "store/store.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int proto_parse(const char *s)
{
	return !strcasecmp(s, "tcp") ? IPPROTO_TCP : !strcasecmp(s, "udp") ? IPPROTO_UDP :
	       !strcasecmp(s, "sctp") ? IPPROTO_SCTP : 0;
}

/* One family of a network as IPAM has it. */
struct net_family {
	bool present;
	int family;                 /* AF_INET, AF_INET6 */
	const struct ip_prefix *subnet;
	const struct ip_addr *gateway;
	const struct ip_range *ranges;
	size_t n_ranges;
	bool counted;               /* the store answered */
	uint64_t usable, used;
};

static void net_families(struct daemon *d, const struct cfg_network *n, struct net_family f[2])
{
	memset(f, 0, 2 * sizeof(*f));
	f[0] = (struct net_family){ .present = true, .family = AF_INET, .subnet = &n->subnet,
				    .gateway = &n->gateway, .ranges = n->ranges,
				    .n_ranges = n->n_ranges };
	if (n->has_v6)
		f[1] = (struct net_family){ .present = true, .family = AF_INET6,
					    .subnet = &n->subnet6, .gateway = &n->gateway6,
					    .ranges = n->ranges6, .n_ranges = n->n_ranges6 };
	for (int i = 0; i < 2; i++)
		if (f[i].present)
			f[i].counted = ipam_usage(d->store, n->name, f[i].family, &f[i].usable,
						  &f[i].used, NULL) == 0;
}

static uint64_t free_of(const struct net_family *f)
{
	return f->counted ? f->usable - f->used : 0;
}

/* The interface of c on network, or NULL. */
static const struct ctr_if *ctr_on(const struct ctr *c, const char *network)
{
	for (size_t i = 0; i < c->n_ifs; i++)
		if (c->ifs[i].network && !strcmp(c->ifs[i].network, network))
			return &c->ifs[i];
	return NULL;
}

static size_t n_on(const struct daemon *d, const char *network)
{
	size_t n = 0;

	for (size_t i = 0; i < d->n_ctrs; i++)
		n += ctr_on(&d->ctrs[i], network) != NULL;
	return n;
}

static void json_network(struct daemon *d, const struct cfg_network *n, struct buf *out)
{
	struct net_family f[2];
	char s[IP_PREFIX_STRLEN], r[2 * IP_STRLEN + 2];
	bool first = true;

	net_families(d, n, f);
	buf_puts(out, "{\"name\":");
	buf_json_string(out, n->name);
	buf_puts(out, ",\"bridge\":");
	buf_json_string(out, n->bridge);
	buf_puts(out, ",\"subnets\":[");
	for (int i = 0; i < 2; i++) {
		if (!f[i].present)
			continue;
		buf_printf(out, "%s{\"family\":\"%s\",\"subnet\":\"%s\",", i ? "," : "",
			   f[i].family == AF_INET6 ? "ipv6" : "ipv4", ip_prefix_format(f[i].subnet, s));
		buf_printf(out, "\"gateway\":\"%s\",\"ranges\":[", ip_format(f[i].gateway, s));
		for (size_t k = 0; k < f[i].n_ranges; k++)
			buf_printf(out, "%s\"%s\"", k ? "," : "", ip_range_format(&f[i].ranges[k], r));
		buf_puts(out, "],\"allocated_addresses\":");
		if (f[i].counted)
			buf_printf(out, "%llu,\"free_addresses\":%llu}", (unsigned long long)f[i].used,
				   (unsigned long long)free_of(&f[i]));
		else
			buf_puts(out, "null,\"free_addresses\":null}");
	}
	buf_printf(out, "],\"masquerade\":%s,\"isolate\":%s,\"mtu\":%u,\"containers\":[",
		   n->masquerade ? "true" : "false", n->isolate ? "true" : "false", n->mtu);
	for (size_t i = 0; i < d->n_ctrs; i++) {
		const struct ctr *c = &d->ctrs[i];
		const struct ctr_if *ci = ctr_on(c, n->name);
		bool any = false;

		if (!ci)
			continue;
		buf_puts(out, first ? "{\"container\":" : ",{\"container\":");
		first = false;
		buf_json_string(out, c->cfg->name);
		buf_puts(out, ",\"interface\":");
		buf_json_string_or_null(out, ci->ifname);
		buf_puts(out, ",\"addresses\":[");
		if (ci->ip4.family) {
			json_address(out, n->name, ci->ifname, &ci->ip4, n->subnet.len);
			any = true;
		}
		if (ci->ip6.family) {
			buf_puts(out, any ? "," : "");
			json_address(out, n->name, ci->ifname, &ci->ip6, n->subnet6.len);
		}
		buf_puts(out, "]}");
	}
	buf_puts(out, "],\"file\":");
	buf_json_string_or_null(out, n->file);
	buf_puts(out, "}");
}

static void fmt_count(char *buf, size_t size, const struct net_family *f)
{
	if (!f->present || !f->counted)
		snprintf(buf, size, "-");
	else
		snprintf(buf, size, "%llu", (unsigned long long)free_of(f));
}

static int network_ls(struct daemon *d, const struct ctl_request *rq, struct buf *out)
{
	static const char *const cols[] = { "NAME", "BRIDGE", "SUBNET", "GATEWAY", "CONTAINERS#",
					    "FREE#", "FREE6" };
	struct table t;

	if (rq->json) {
		buf_puts(out, "[");
		for (size_t i = 0; i < d->cfg->n_networks; i++) {
			buf_puts(out, i ? ",\n" : "\n");
			json_network(d, &d->cfg->networks[i], out);
		}
		buf_puts(out, d->cfg->n_networks ? "\n]\n" : "]\n");
		return 0;
	}
	table_init(&t, 7, cols);
	for (size_t i = 0; i < d->cfg->n_networks; i++) {
		const struct cfg_network *n = &d->cfg->networks[i];
		char sub[2 * IP_PREFIX_STRLEN + 2], gw[2 * IP_STRLEN + 2], a[IP_PREFIX_STRLEN];
		char cnt[16], fr[24], fr6[24];
		struct net_family f[2];

		net_families(d, n, f);
		snprintf(sub, sizeof(sub), "%s", ip_prefix_format(&n->subnet, a));
		snprintf(gw, sizeof(gw), "%s", ip_format(&n->gateway, a));
		if (n->has_v6) {
			size_t l = strlen(sub), g = strlen(gw);

			snprintf(sub + l, sizeof(sub) - l, ",%s", ip_prefix_format(&n->subnet6, a));
			snprintf(gw + g, sizeof(gw) - g, ",%s", ip_format(&n->gateway6, a));
		}
		snprintf(cnt, sizeof(cnt), "%zu", n_on(d, n->name));
		fmt_count(fr, sizeof(fr), &f[0]);
		fmt_count(fr6, sizeof(fr6), &f[1]);
		table_add(&t, n->name, n->bridge, sub, gw, cnt, fr, fr6);
	}
	table_render(&t, false, out);
	table_free(&t);
	return 0;
}

static void human_family(struct buf *out, const char *key, const struct net_family *f)
{
	char a[IP_PREFIX_STRLEN], r[2 * IP_STRLEN + 2];

	buf_printf(out, "%-12s%s\n", key, ip_prefix_format(f->subnet, a));
	buf_printf(out, "  gateway   %s\n  ranges    ", ip_format(f->gateway, a));
	for (size_t k = 0; k < f->n_ranges; k++)
		buf_printf(out, "%s%s", k ? ", " : "", ip_range_format(&f->ranges[k], r));
	if (f->counted)
		buf_printf(out, "\n  addresses %llu allocated, %llu free\n",
			   (unsigned long long)f->used, (unsigned long long)free_of(f));
	else
		buf_puts(out, "\n  addresses (not in the store yet)\n");
}

static int network_inspect(struct daemon *d, const struct ctl_request *rq, const char *name,
			   struct buf *out, struct err *e)
{
	static const char *const cols[] = { "CONTAINER", "INTERFACE", "IPV4", "IPV6" };
	const struct cfg_network *n = config_network(d->cfg, name);
	struct net_family f[2];
	struct table t;

	if (!n) {
		for (size_t i = 0; i < d->cfg->n_networks && !n; i++)
			if (!strcasecmp(d->cfg->networks[i].name, name))
				n = &d->cfg->networks[i];
		if (!n)
			return err_set(e, ENOENT, "no such network: %s", name);
	}
	if (rq->json) {
		json_network(d, n, out);
		buf_puts(out, "\n");
		return 0;
	}
	net_families(d, n, f);
	buf_printf(out, "%-12s%s\n%-12s%s\n", "name", n->name, "bridge", n->bridge);
	human_family(out, "subnet", &f[0]);
	if (f[1].present)
		human_family(out, "subnet6", &f[1]);
	buf_printf(out, "%-12s%s\n%-12s%s\n%-12s%u\n%-12s%s\n", "masquerade",
		   n->masquerade ? "yes" : "no", "isolate", n->isolate ? "yes" : "no", "mtu", n->mtu,
		   "file", n->file ? n->file : "-");
	buf_printf(out, "containers  %zu\n", n_on(d, n->name));
	table_init(&t, 4, cols);
	for (size_t i = 0; i < d->n_ctrs; i++) {
		const struct ctr_if *ci = ctr_on(&d->ctrs[i], n->name);
		char a4[IP_STRLEN], a6[IP_STRLEN];

		if (ci)
			table_add(&t, d->ctrs[i].cfg->name, ci->ifname,
				  ci->ip4.family ? ip_format(&ci->ip4, a4) : NULL,
				  ci->ip6.family ? ip_format(&ci->ip6, a6) : NULL);
	}
	if (t.nrows) {
		struct buf tb;

		buf_init(&tb);
		table_render(&t, false, &tb);
		/* indented under "containers" */
		for (const char *p = tb.data; p && *p;) {
			size_t len = strcspn(p, "\n");

			buf_printf(out, "  %.*s\n", (int)len, p);
			p += len;
			p += *p == '\n';
		}
		buf_free(&tb);
	}
	table_free(&t);
	return 0;
}

int req_network(struct daemon *d, const struct ctl_request *rq, struct buf *out, struct err *e)
{
	if (rq->argc == 2 && !strcmp(rq->argv[1], "ls"))
		return network_ls(d, rq, out);
	if (rq->argc == 3 && !strcmp(rq->argv[1], "inspect"))
		return network_inspect(d, rq, rq->argv[2], out, e);
	return err_set(e, EINVAL, "usage: berth network ls | berth network inspect NAME");
}

/* ---- port NAME ------------------------------------------------------------ */

struct port_ctx {
	const struct ctl_request *rq;
	struct buf *out;
	unsigned only_port;         /* 0: all */
	int only_proto;             /* 0: any */
	size_t n;
};

void port_host_side(struct buf *b, const struct store_port *p)
{
	char a[IP_STRLEN];

	if (!p->host_ip.family)
		buf_printf(b, "0.0.0.0:%u", p->host_port);
	else if (p->host_ip.family == AF_INET6)
		buf_printf(b, "[%s]:%u", ip_format(&p->host_ip, a), p->host_port);
	else
		buf_printf(b, "%s:%u", ip_format(&p->host_ip, a), p->host_port);
}

static int port_one(void *ctx, const struct store_port *p)
{
	struct port_ctx *pc = ctx;
	char a[IP_STRLEN];

	if ((pc->only_port && p->container_port != pc->only_port) ||
	    (pc->only_proto && p->proto != pc->only_proto))
		return 0;
	if (pc->rq->json) {
		buf_puts(pc->out, pc->n ? ",\n{\"host_ip\":" : "\n{\"host_ip\":");
		if (p->host_ip.family)
			buf_printf(pc->out, "\"%s\"", ip_format(&p->host_ip, a));
		else
			buf_puts(pc->out, "null");
		buf_printf(pc->out, ",\"host_port\":%u,\"container\":", p->host_port);
		buf_json_string(pc->out, p->container);
		buf_printf(pc->out, ",\"container_port\":%u,\"proto\":\"%s\"}", p->container_port,
			   ip_proto_name(p->proto));
	} else if (pc->only_port) {
		port_host_side(pc->out, p);      /* `docker port web 80`: the host side only */
		buf_puts(pc->out, "\n");
	} else {
		buf_printf(pc->out, "%u/%s -> ", p->container_port, ip_proto_name(p->proto));
		port_host_side(pc->out, p);
		buf_puts(pc->out, "\n");
	}
	pc->n++;
	return 0;
}

int req_port(struct daemon *d, const struct ctl_request *rq, struct buf *out, struct err *e)
{
	struct port_ctx pc = { .rq = rq, .out = out };
	const struct ctr *c;
	const char *name;
	size_t start = out->len;
	struct store_container sc;
	int ret;

	if (rq->argc != 2 && rq->argc != 3)
		return err_set(e, EINVAL, "usage: berth port NAME [PORT[/PROTO]]");
	if (rq->argc == 3) {
		char *end;
		unsigned long v = strtoul(rq->argv[2], &end, 10);

		if (end == rq->argv[2] || !v || v > 65535 ||
		    (*end && (*end != '/' || !(pc.only_proto = proto_parse(end + 1)))))
			return err_set(e, EINVAL, "port %s: expected PORT or PORT/PROTO (tcp, udp, sctp)",
				       rq->argv[2]);
		pc.only_port = (unsigned)v;
	}
	c = daemon_ctr(d, rq->argv[1]);
	name = c ? c->cfg->name : rq->argv[1];
	if (!c && store_container_get(d->store, name, &sc, NULL) < 0)
		return err_set(e, ENOENT, "no such container: %s", rq->argv[1]);
	if (rq->json)
		buf_puts(out, "[");
	ret = store_port_list(d->store, name, port_one, &pc, e);
	if (ret < 0) {
		out->len = start;
		return ret;
	}
	if (rq->json)
		buf_puts(out, pc.n ? "\n]\n" : "]\n");
	else if (pc.only_port && !pc.n)
		return err_set(e, ENOENT, "no public port '%s' published for %s", rq->argv[2], name);
	return 0;
}
