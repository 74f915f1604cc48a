/* policy_why.c - `berth policy why SRC DST PORT/PROTO`: which rule allows or
 * denies, judged on the same model the kernel was given (net/fw.h). */
#include "runtime/daemon_int.h"
#include "net/fw.h"

#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Is a an address of one of the host's interfaces? */
static bool host_owns(const struct ip_addr *a)
{
	struct ifaddrs *ifs, *i;
	bool own = false;

	if (getifaddrs(&ifs) < 0)
		return false;
	for (i = ifs; i && !own; i = i->ifa_next) {
		struct ip_addr x = { 0 };

		if (!i->ifa_addr)
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			x.family = AF_INET;
			memcpy(x.b, &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, 4);
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			x.family = AF_INET6;
			memcpy(x.b, &((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr, 16);
		} else {
			continue;
		}
		own = ip_equal(&x, a);
	}
	freeifaddrs(ifs);
	return own;
}

/* The first address of family on the container (0: any family). */
static const struct ip_addr *ctr_addr(const struct fw_container *c, int family)
{
	for (size_t i = 0; i < c->n_ifs; i++)
		for (size_t k = 0; k < c->ifs[i].n_addrs; k++)
			if (!family || c->ifs[i].addrs[k].family == family)
				return &c->ifs[i].addrs[k];
	return NULL;
}

/* SRC or DST: a container name, an address, `host` or `world`. */
static int parse_end(const struct fw_model *m, const char *word, struct fw_end *out, struct err *e)
{
	const struct fw_container *c;
	struct ip_addr a;

	memset(out, 0, sizeof(*out));
	if (!strcmp(word, "host") || !strcmp(word, "world")) {
		out->kind = word[0] == 'h' ? FW_END_HOST : FW_END_WORLD;
		return 0;
	}
	if (ip_parse(word, &a, NULL) == 0) {
		fw_end_from_addr(m, &a, host_owns(&a), out);
		return 0;
	}
	c = fw_container_find(m, word);
	if (!c)
		return err_set(e, ENOENT, "'%s': not a running container, an address, host or world",
			       word);
	out->kind = FW_END_CONTAINER;
	out->ctr = c;
	return 0;
}

/* The address the host sends from to c: the gateway of c's first network
 * of that family, as the kernel's source address selection picks it. */
static void host_source(const struct fw_model *m, const struct fw_container *c, int family,
			struct ip_addr *out)
{
	for (size_t i = 0; i < c->n_ifs; i++) {
		const struct fw_network *n = &m->networks[c->ifs[i].network];

		for (size_t k = 0; k < n->n_gw; k++)
			if (n->gw[k].family == family) {
				*out = n->gw[k];
				return;
			}
	}
}

/* Containers given by name take the address of the family the other end
 * fixes (IPv4 when neither does); `host` sending to a container, the
 * gateway's. */
static int pick_family(const struct fw_model *m, struct fw_end *s, struct fw_end *d,
		       struct err *e)
{
	int family = s->addr.family ? s->addr.family : d->addr.family ? d->addr.family : AF_INET;
	struct fw_end *ends[2] = { s, d };

	for (int i = 0; i < 2; i++) {
		const struct ip_addr *a;

		if (ends[i]->kind != FW_END_CONTAINER || ends[i]->addr.family)
			continue;
		a = ctr_addr(ends[i]->ctr, family);
		if (!a && family == AF_INET && !s->addr.family && !d->addr.family)
			a = ctr_addr(ends[i]->ctr, family = AF_INET6);
		if (!a)
			return err_set(e, EINVAL, "container %s has no IPv%d address", ends[i]->ctr->name,
				       family == AF_INET ? 4 : 6);
		ends[i]->addr = *a;
	}
	if (s->kind == FW_END_HOST && !s->addr.family && d->kind == FW_END_CONTAINER)
		host_source(m, d->ctr, d->addr.family, &s->addr);
	return 0;
}

/* Traffic to the host on a published port is DNAT'ed to its container:
 * judge it as ingress from world to that container and port. */
static void follow_published(const struct daemon *d, const struct fw_model *m,
			     struct fw_packet *p, struct buf *why)
{
	if (p->dst.kind != FW_END_HOST)
		return;
	for (size_t i = 0; i < d->n_ctrs; i++) {
		const struct cfg_container *c = d->ctrs[i].cfg;
		const struct fw_container *fc = fw_container_find(m, c->name);

		for (size_t k = 0; fc && k < c->n_ports; k++) {
			const struct cfg_port *cp = &c->ports[k];

			if (cp->proto != p->proto || p->dport < cp->host_first || p->dport > cp->host_last)
				continue;
			if (cp->has_host_ip && p->dst.addr.family && !ip_equal(&cp->host_ip, &p->dst.addr))
				continue;
			buf_printf(why, "published port %u/%s -> %s:%u\n", p->dport,
				   ip_proto_name(p->proto), c->name,
				   (unsigned)(cp->first + (p->dport - cp->host_first)));
			p->dport = (uint16_t)(cp->first + (p->dport - cp->host_first));
			p->dst = (struct fw_end){ .kind = FW_END_CONTAINER, .ctr = fc };
			p->dnat = true;
			return;
		}
	}
}

/* Each line of text (may be NULL) into out, indented by two spaces. */
static void put_indented(struct buf *out, const char *text)
{
	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);

		buf_printf(out, "  %.*s\n", (int)len, line);
		line = nl ? nl + 1 : NULL;
	}
}

/*
 * Traffic to a service's VIP is DNATed to one of its ready backends before
 * the firewall sees it: judge it against each backend, as the kernel
 * would for whichever it picks. The verdict is allow only when every
 * backend allows (a client cannot choose its backend).
 */
static int why_service(struct daemon *d, const struct cfg_service *s, const struct ip_addr *vip,
		       struct fw_packet *p, bool *allow, struct buf *why, struct err *e)
{
	const struct cfg_service_port *sp = NULL;
	const char *names[256];
	size_t n;
	char a[IP_STRLEN];

	for (size_t i = 0; i < s->n_ports && !sp; i++)
		if (s->ports[i].proto == p->proto && s->ports[i].port == p->dport)
			sp = &s->ports[i];
	*allow = false;
	if (!sp) {
		buf_printf(why, "service %s (%s) has no port %u/%s: nothing leads it to a backend\n",
			   s->name, ip_format(vip, a), p->dport, ip_proto_name(p->proto));
		return 0;
	}
	n = services_backends(d, s, names, ARRAY_SIZE(names));
	if (!n) {
		buf_printf(why, "service %s (%s:%u/%s) has no ready backend: rejected at once\n",
			   s->name, ip_format(vip, a), p->dport, ip_proto_name(p->proto));
		return 0;
	}
	buf_printf(why, "service %s (%s:%u/%s) -> %zu ready backend%s on port %u\n", s->name,
		   ip_format(vip, a), p->dport, ip_proto_name(p->proto), n, n == 1 ? "" : "s",
		   sp->target);
	*allow = true;
	for (size_t i = 0; i < n; i++) {
		const struct fw_container *fc = fw_container_find(&d->fw, names[i]);
		const struct ip_addr *ba = fc ? ctr_addr(fc, vip->family) : NULL;
		struct fw_packet q = *p;
		struct buf sub;
		bool ok;

		if (!ba)
			continue;
		/* the backend's address of the VIP's family, and the port it
		 * listens on: what the firewall sees after DNAT */
		q.dst = (struct fw_end){ .kind = FW_END_CONTAINER, .ctr = fc, .addr = *ba };
		q.dport = sp->target;
		q.dnat = false;     /* not a published port: the client is the peer */
		if (pick_family(&d->fw, &q.src, &q.dst, e) < 0)
			return -e->code;
		buf_init(&sub);
		ok = fw_eval(&d->fw, &q, &sub);
		*allow &= ok;
		buf_printf(why, "backend %s: %s\n", names[i], ok ? "allow" : "deny");
		put_indented(why, sub.data);
		buf_free(&sub);
	}
	return 0;
}

int req_policy_why(struct daemon *d, const struct ctl_request *rq, struct buf *out, struct err *e)
{
	struct fw_packet p = { 0 };
	const struct cfg_service *svc;
	struct ip_addr vip;
	struct port_match pm;
	struct buf why;
	bool allow;

	if (rq->argc != 5)
		return err_set(e, EINVAL, "usage: berth policy why SRC DST PORT[/PROTO]"
			       " (SRC, DST: a container, an address, a service, host or world)");
	if (port_match_parse(rq->argv[4], &pm, e) < 0)
		return -e->code;
	if (pm.any_port || pm.first != pm.last)
		return err_set(e, EINVAL, "'%s': give one port, as in 80/tcp", rq->argv[4]);
	p.proto = pm.proto;
	p.dport = pm.first;
	if (parse_end(&d->fw, rq->argv[2], &p.src, e) < 0)
		return -e->code;
	buf_init(&why);
	/* a service (by name or VIP) before a container of that name: a
	 * service's name is never a container's */
	svc = services_find(d, rq->argv[3], ip_parse(rq->argv[3], &vip, NULL) == 0 ? &vip : NULL,
			    &vip);
	if (svc) {
		if (why_service(d, svc, &vip, &p, &allow, &why, e) < 0) {
			buf_free(&why);
			return -e->code;
		}
	} else {
		if (parse_end(&d->fw, rq->argv[3], &p.dst, e) < 0) {
			buf_free(&why);
			return -e->code;
		}
		follow_published(d, &d->fw, &p, &why);
		if (pick_family(&d->fw, &p.src, &p.dst, e) < 0) {
			buf_free(&why);
			return -e->code;
		}
		allow = fw_eval(&d->fw, &p, &why);
	}
	if (rq->json) {
		const char *line = why.data;

		buf_printf(out, "{\"verdict\":\"%s\",\"allowed\":%s,\"source\":", allow ? "allow" : "deny",
			   allow ? "true" : "false");
		buf_json_string(out, rq->argv[2]);
		buf_puts(out, ",\"destination\":");
		buf_json_string(out, rq->argv[3]);
		buf_printf(out, ",\"port\":%u,\"proto\":\"%s\",\"why\":[", pm.first,
			   ip_proto_name(pm.proto));
		for (int n = 0; line && *line; n++) {
			const char *nl = strchr(line, '\n');
			size_t len = nl ? (size_t)(nl - line) : strlen(line);
			char tmp[1024];

			snprintf(tmp, sizeof(tmp), "%.*s", (int)len, line);
			buf_puts(out, n ? "," : "");
			buf_json_string(out, tmp);
			line = nl ? nl + 1 : NULL;
		}
		buf_puts(out, "]}\n");
	} else {
		buf_printf(out, "%s\n", allow ? "allow" : "deny");
		put_indented(out, why.data);
	}
	buf_free(&why);
	return 0;
}
