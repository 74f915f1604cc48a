/* cni_attach.c - the daemon's side of berth as a CNI plugin (issue 20): the
 * `cni add|del|check|ls|status` requests the plugin (runtime/cni) sends,
 * one per CNI call. An attachment is set up by the reconcile code as a
 * configured container is (daemon_int.h, struct cni_att); this file turns
 * requests into attachments, keeps them in the store, and answers with what
 * the plugin needs for its result.
 *
 * Decisions where the CNI spec leaves room:
 * - An attachment's name (store rows, ports, `berth ps`) is the first 12
 *   characters of CNI_CONTAINERID, "-IFNAME" appended for an interface other
 *   than eth0: what `podman ps` and `crictl ps` show, and short enough for
 *   the veth's host end ("bh-" + 12 characters).
 * - Its DNS name is the one the plugin passes (podman's container name, or
 *   the Kubernetes pod name); a name that is not a DNS label gives none. A
 *   name another container has is refused (code 7), but for a pod (label
 *   ns=, from K8S_POD_NAMESPACE), whose name is unique in its namespace
 *   only: it is attached without a name.
 * - A second ADD of the same ID and interface with the same request answers
 *   the first one's result (a runtime retrying); with another request (a new
 *   netns after a reboot, say) it replaces the first, keeping its address
 *   (IPAM's sticky memory).
 * - The result's nameserver is berth's DNS server on the network's gateway,
 *   the search domain [dns] domain.
 */
#include "runtime/daemon_int.h"
#include "runtime/cni/cni.h"
#include "net/net.h"
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* The spec's code for a container the plugin does not know (DEL, CHECK). */
#define CNI_ERR_UNKNOWN_CONTAINER 3

#define CNI_ID_MAX 255

/* Fail with the message in e and, on a details line, the CNI code the
 * plugin answers with (runtime/cni/cni.h). */
static int fail(struct buf *out, int code, int ret)
{
	buf_printf(out, "cni-code %d\n", code);
	return ret < 0 ? ret : -EINVAL;
}

static char *att_keep(struct cni_att *a, const char *s, size_t n)
{
	char *p = strndup(s, n), **slot;

	if (!p || !(slot = array_push(&a->strs)))
		abort();
	*slot = p;
	return p;
}

static char *att_str(struct cni_att *a, const char *s)
{
	return att_keep(a, s, strlen(s));
}

static void att_free(struct cni_att *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->strs.n; i++)
		free(a->strs.v[i]);
	array_free(&a->strs);
	array_free(&a->aliases);
	free(a->c.labels);
	free(a->c.ports);
	free(a);
}

/* An attachment's name (see above): ID[:12][-IFNAME]. */
static void att_name(const char *id, const char *ifname, char name[STORE_NAME_MAX])
{
	bool eth0 = !strcmp(ifname, "eth0");

	snprintf(name, STORE_NAME_MAX, "%.12s%s%s", id, eth0 ? "" : "-", eth0 ? "" : ifname);
}

/*
 * An attachment from an add request's words (argv[0] "add"; the protocol is
 * in runtime/cni/plugin.c): NETWORK ID IFNAME NETNS [KEY=VALUE...].
 * Checks what can be checked without the daemon's state. Returns 0 or
 * -EINVAL with the reason in e.
 */
static int att_parse(struct daemon *d, int argc, char **argv, struct cni_att **out, struct err *e)
{
	struct cni_att *a;
	struct cfg_container *c;
	char name[STORE_NAME_MAX];
	int ret = -EINVAL;

	if (argc < 5)
		return err_set(e, EINVAL, "usage: cni add NETWORK ID IFNAME NETNS [KEY=VALUE...]");
	if (strlen(argv[2]) > CNI_ID_MAX || !cni_name_valid(argv[2]))
		return err_set(e, EINVAL, "CNI_CONTAINERID '%s': letters, digits, '_', '.' and '-', "
			       "starting with a letter or digit, at most %d", argv[2], CNI_ID_MAX);
	if (net_ifname_check("CNI_IFNAME", argv[3], e) < 0)
		return -EINVAL;
	if (argv[4][0] != '/')
		return err_set(e, EINVAL, "CNI_NETNS '%s': expected an absolute path", argv[4]);
	att_name(argv[2], argv[3], name);
	if (net_name_check(name, e) < 0)
		return err_wrap(e, "attachment of %s/%s", argv[2], argv[3]);

	if (!(a = calloc(1, sizeof(*a))))
		abort();
	c = &a->c;
	c->cni = &a->o;
	c->name = att_str(a, name);
	c->file = "(cni)";
	a->network = att_str(a, argv[1]);
	c->networks = (const char **)&a->network;
	c->n_networks = 1;
	a->o.id = att_str(a, argv[2]);
	a->o.ifname = att_str(a, argv[3]);
	a->o.netns = att_str(a, argv[4]);
	for (int i = 5; i < argc; i++) {
		const char *w = argv[i], *eq = strchr(w, '='), *v = eq ? eq + 1 : "";
		size_t kl = eq ? (size_t)(eq - w) : strlen(w);

		if (kl == 4 && !strncmp(w, "name", 4)) {
			if (config_dns_name_valid(v))
				a->o.dns_name = att_str(a, v);
			else
				daemon_log(d, LOG_INFO, "attachment %s: '%s' is not a DNS name "
					   "(letters, digits, '-'): it has none", name, v);
		} else if (kl == 5 && !strncmp(w, "alias", 5)) {
			const char **slot;

			if (!config_dns_name_valid(v)) {
				daemon_log(d, LOG_INFO, "attachment %s: alias '%s' is not a DNS name "
					   "(letters, digits, '-'): left out", name, v);
				continue;
			}
			if (!(slot = array_push(&a->aliases)))
				abort();
			*slot = att_str(a, v);
		} else if (kl == 5 && !strncmp(w, "label", 5)) {
			const char *leq = strchr(v, '=');
			const char *key, *val;

			if (!leq) {
				err_set(e, EINVAL, "label '%s': expected KEY=VALUE", v);
				goto err;
			}
			key = att_keep(a, v, (size_t)(leq - v));
			val = att_str(a, leq + 1);
			if (config_label_check(key, val, e) < 0) {
				err_wrap(e, "label '%s'", v);
				goto err;
			}
			if (config_label_get(c->labels, c->n_labels, key)) {
				err_set(e, EINVAL, "label '%s' is given twice", key);
				goto err;
			}
			c->labels = realloc(c->labels, (c->n_labels + 1) * sizeof(*c->labels));
			if (!c->labels)
				abort();
			c->labels[c->n_labels++] = (struct label){ key, val };
		} else if (kl == 4 && !strncmp(w, "port", 4)) {
			struct cfg_port p;

			if (config_port_parse(v, &p, e) < 0) {
				err_wrap(e, "portMappings");
				goto err;
			}
			c->ports = realloc(c->ports, (c->n_ports + 1) * sizeof(*c->ports));
			if (!c->ports)
				abort();
			c->ports[c->n_ports++] = p;
		} else if (kl == 2 && !strncmp(w, "ip", 2)) {
			struct ip_addr ip;

			if (ip_parse(v, &ip, NULL) < 0) {
				err_set(e, EINVAL, "ips: '%s' is not an IP address", v);
				goto err;
			}
			if (ip.family == AF_INET ? c->has_ip : c->has_ip6) {
				err_set(e, EINVAL, "ips: more than one IPv%c address",
					ip.family == AF_INET ? '4' : '6');
				goto err;
			}
			if (ip.family == AF_INET)
				c->has_ip = true, c->ip = ip;
			else
				c->has_ip6 = true, c->ip6 = ip;
		} else if (kl == 3 && !strncmp(w, "mac", 3)) {
			if (mac_parse(v, a->mac) < 0 || (a->mac[0] & 1)) {
				err_set(e, EINVAL, "mac '%s': expected a unicast MAC address, "
					"e.g. 02:42:ac:11:00:02", v);
				goto err;
			}
			a->o.mac = a->mac;
		} else {
			err_set(e, EINVAL, "unknown option '%.*s'", (int)kl, w);
			goto err;
		}
	}
	a->o.aliases = a->aliases.v;
	a->o.n_aliases = a->aliases.n;
	/* equal requests, equal attachments: what applied_hash starts from */
	for (int i = 1; i < argc; i++)
		c->hash = hash64(i == 1 ? HASH64_INIT : c->hash, argv[i], strlen(argv[i]) + 1);
	*out = a;
	return 0;
err:
	att_free(a);
	return ret;
}

static struct cni_att *att_find(const struct daemon *d, const char *name)
{
	return name_index_get(&d->atts_by_name, name);
}

static const char *att_name_of(const void *o)
{
	return ((const struct cni_att *)o)->c.name;
}

static void att_add(struct daemon *d, struct cni_att *a)
{
	struct cni_att **slot = array_push(&d->atts);

	if (!slot)
		abort();
	*slot = a;
	d->atts_by_name.name_of = att_name_of;
	if (!name_index_put(&d->atts_by_name, a))
		abort();
}

/* Take a down (kernel, store, DNS, firewall) and forget it. */
static void att_remove(struct daemon *d, struct cni_att *a)
{
	struct err e = { 0 };
	size_t k;

	reconcile_remove_one(d, a->c.name);
	if (store_cni_delete(d->store, a->c.name, &e) < 0)
		daemon_log(d, LOG_ERROR, "attachment %s: %s", a->c.name, e.msg);
	name_index_del(&d->atts_by_name, a->c.name);
	for (k = 0; k < d->atts.n && d->atts.v[k] != a; k++)
		;
	if (k < d->atts.n) {
		memmove(&d->atts.v[k], &d->atts.v[k + 1], (d->atts.n - k - 1) * sizeof(a));
		d->atts.n--;
	}
	daemon_event(d, "cni", "detached", a->c.name, NULL, "%s", a->network ? a->network : "");
	att_free(a);
}

/* The lines the plugin turns into the CNI result (cni.h of runtime/cni). */
static void att_result(const struct daemon *d, const struct cni_att *a, const struct ctr *ctr,
		       struct buf *out)
{
	const struct cfg_network *cn = config_network(d->cfg, a->network);
	const struct ctr_if *ci = &ctr->ifs[0];
	char m[MAC_STRLEN], s[IP_STRLEN], g[IP_STRLEN];

	buf_printf(out, "interface %s %s\n", a->o.ifname, mac_format(a->link.mac, m));
	buf_printf(out, "host %s %s\n", a->link.host, mac_format(a->link.host_mac, m));
	buf_printf(out, "bridge %s %s\n", cn->bridge, mac_format(a->link.bridge_mac, m));
	if (ci->ip4.family) {
		buf_printf(out, "address %s/%u %s\n", ip_format(&ci->ip4, s), cn->subnet.len,
			   ip_format(&cn->gateway, g));
		buf_printf(out, "route 0.0.0.0/0 %s\n", g);
	}
	if (ci->ip6.family && cn->has_v6) {
		buf_printf(out, "address %s/%u %s\n", ip_format(&ci->ip6, s), cn->subnet6.len,
			   ip_format(&cn->gateway6, g));
		buf_printf(out, "route ::/0 %s\n", g);
	}
	buf_printf(out, "dns %s\n", ip_format(&cn->gateway, s));
	if (cn->has_v6)
		buf_printf(out, "dns %s\n", ip_format(&cn->gateway6, s));
	buf_printf(out, "domain %s\n", d->cfg->dns.domain);
}

/* The container other than self that has name in DNS (DNS names are one
 * space, compared without case), or NULL. */
static const char *dns_name_holder(const struct daemon *d, const char *name,
				   const struct cfg_container *self)
{
	for (size_t i = 0; i < d->n_ctrs; i++) {
		const struct cfg_container *c = d->ctrs[i].cfg;
		const char *o = ctr_dns_name(c);

		if (c == self)
			continue;
		if (o && !strcasecmp(o, name))
			return c->name;
		for (size_t k = 0; c->cni && k < c->cni->n_aliases; k++)
			if (!strcasecmp(c->cni->aliases[k], name))
				return c->name;
	}
	return NULL;
}

/* Its DNS name must be free (refused otherwise); an alias someone else has,
 * or that repeats its name, is left out (a runtime passes several, some of
 * them incidental, like podman's short ID). */
static int claim_names(struct daemon *d, struct cni_att *a, struct err *e)
{
	const char *holder;
	size_t n = 0;

	if (a->o.dns_name && (holder = dns_name_holder(d, a->o.dns_name, &a->c))) {
		/* a pod: its name is unique in its namespace only, and a pod
		 * without a network is worse than one without a name */
		if (!config_label_get(a->c.labels, a->c.n_labels, "ns"))
			return err_set(e, EEXIST, "DNS name '%s' is taken by container %s",
				       a->o.dns_name, holder);
		daemon_log(d, LOG_WARN, "attachment %s: DNS name '%s' is taken by container %s: "
			   "it has none", a->c.name, a->o.dns_name, holder);
		a->o.dns_name = NULL;
	}
	for (size_t k = 0; k < a->aliases.n; k++) {
		const char *al = a->aliases.v[k];
		bool again = a->o.dns_name && !strcasecmp(al, a->o.dns_name);

		for (size_t j = 0; j < n; j++)
			again |= !strcasecmp(al, a->aliases.v[j]);
		if (again)
			continue;
		if ((holder = dns_name_holder(d, al, &a->c))) {
			daemon_log(d, LOG_INFO, "attachment %s: alias '%s' is taken by container %s: "
				   "left out", a->c.name, al, holder);
			continue;
		}
		a->aliases.v[n++] = al;
	}
	a->aliases.n = a->o.n_aliases = n;
	return 0;
}

static int cni_add(struct daemon *d, const struct ctl_request *rq, struct buf *out, struct err *e)
{
	char spec[CTL_REQ_MAX];
	struct cni_att *a, *old;
	int len;

	if (att_parse(d, rq->argc - 1, rq->argv + 1, &a, e) < 0)
		return fail(out, CNI_ERR_INVALID_NETCONF, -EINVAL);
	if (!config_network(d->cfg, a->network)) {
		err_set(e, EINVAL, "network '%s' is not configured in berth", a->network);
		att_free(a);
		return fail(out, CNI_ERR_INVALID_NETCONF, -EINVAL);
	}
	if ((old = att_find(d, a->c.name))) {
		const struct ctr *oc = daemon_ctr(d, old->c.name);
		bool same = !strcmp(old->o.id, a->o.id) && !strcmp(old->o.ifname, a->o.ifname);

		if (!same) {
			err_set(e, EEXIST, "attachment name %s is taken by container %s on network %s",
				a->c.name, old->o.id, old->network);
			att_free(a);
			return fail(out, CNI_ERR_INVALID_NETCONF, -EEXIST);
		}
		if (old->c.hash == a->c.hash && oc && oc->state == CTR_NET_READY) {
			att_free(a);
			att_result(d, old, oc, out);    /* the runtime asks again */
			return 0;
		}
		/* the same container set up anew: after a reboot its old netns
		 * is gone (the attachment failed to come back), or the runtime
		 * retries with another request. The address is sticky: it
		 * gets the one it had. */
		daemon_log(d, LOG_INFO, "attachment %s: added again: replacing it", old->c.name);
		att_remove(d, old);
	}
	if (daemon_container(d, d->cfg, a->c.name)) {
		err_set(e, EEXIST, "attachment name %s is the name of a configured container",
			a->c.name);
		att_free(a);
		return fail(out, CNI_ERR_INVALID_NETCONF, -EEXIST);
	}
	if (claim_names(d, a, e) < 0) {
		att_free(a);
		return fail(out, CNI_ERR_INVALID_NETCONF, -EEXIST);
	}
	len = ctl_encode_request(spec, sizeof(spec), false, rq->argc - 1, rq->argv + 1);
	if (len <= 0) {
		att_free(a);
		return err_set(e, ENOSPC, "request too long to keep");
	}
	spec[len - 1] = 0;              /* its newline */
	if (store_cni_put(d->store, a->c.name, spec, e) < 0) {
		att_free(a);
		return fail(out, CNI_ERR_IO, -EIO);
	}
	att_add(d, a);
	if (reconcile_add_one(d, &a->c, e) < 0) {
		/* a full network may empty; a port or a static address another
		 * container holds is the request's problem, as is anything else
		 * the kernel refuses */
		int code = e->code == ENOSPC ? CNI_ERR_TRY_AGAIN : CNI_ERR_INVALID_NETCONF;

		err_wrap(e, "attach %s to network %s", a->o.id, a->network);
		att_remove(d, a);
		return fail(out, code, -EIO);
	}
	daemon_event(d, "cni", "attached", a->c.name, NULL, "network %s (container %s)", a->network,
		     a->o.id);
	att_result(d, a, daemon_ctr(d, a->c.name), out);
	return 0;
}

/* The attachment a request names (NETWORK ID IFNAME at argv[2..4]). */
static struct cni_att *att_named(const struct daemon *d, char **argv)
{
	char name[STORE_NAME_MAX];
	struct cni_att *a;

	att_name(argv[3], argv[4], name);
	a = att_find(d, name);
	if (a && (strcmp(a->o.id, argv[3]) || strcmp(a->o.ifname, argv[4]) ||
		  strcmp(a->network, argv[2])))
		return NULL;
	return a;
}

static int cni_del(struct daemon *d, const struct ctl_request *rq, struct err *e)
{
	struct cni_att *a;

	if (rq->argc < 5)
		return err_set(e, EINVAL, "usage: cni del NETWORK ID IFNAME [NETNS]");
	if ((a = att_named(d, rq->argv)))
		att_remove(d, a);
	return 0;                       /* nothing held is what DEL wants */
}

static int cni_check(struct daemon *d, const struct ctl_request *rq, struct buf *out,
		     struct err *e)
{
	struct cni_att *a;
	const struct ctr *c;
	const struct cfg_network *cn;
	struct net_attach na = { 0 };

	if (rq->argc < 6)
		return err_set(e, EINVAL, "usage: cni check NETWORK ID IFNAME NETNS");
	if (!(a = att_named(d, rq->argv))) {
		err_set(e, ENOENT, "container %s is not attached to network %s as %s",
			rq->argv[3], rq->argv[2], rq->argv[4]);
		return fail(out, CNI_ERR_UNKNOWN_CONTAINER, -ENOENT);
	}
	c = daemon_ctr(d, a->c.name);
	cn = config_network(d->cfg, a->network);
	if (!c || c->state != CTR_NET_READY || !cn) {
		err_set(e, EIO, "attachment %s: %s", a->c.name,
			c && c->error ? c->error : "its network is not set up");
		return fail(out, CNI_ERR_TRY_AGAIN, -EIO);
	}
	na.container = a->c.name;
	na.bridge = cn->bridge;
	na.ifname = a->o.ifname;
	na.netns = a->o.netns;
	na.mtu = cn->mtu;
	if (c->ifs[0].ip4.family) {
		na.addr[na.n_addr++] = (struct net_ifaddr){ c->ifs[0].ip4, cn->subnet.len };
		na.gw[na.n_gw++] = cn->gateway;
	}
	if (c->ifs[0].ip6.family && cn->has_v6) {
		na.addr[na.n_addr++] = (struct net_ifaddr){ c->ifs[0].ip6, cn->subnet6.len };
		na.gw[na.n_gw++] = cn->gateway6;
	}
	if (net_check(d->net, &na, e) < 0 || reconcile_check_one(d, a->c.name, e) < 0) {
		err_wrap(e, "attachment %s", a->c.name);
		return fail(out, CNI_ERR_TRY_AGAIN, -EIO);
	}
	att_result(d, a, c, out);
	return 0;
}

static int count_v4(void *ctx, const struct ipam_alloc *a)
{
	*(uint64_t *)ctx += a->ip.family == AF_INET;
	return 0;
}

/* IPv4 addresses IPAM may hand out on cn (its ranges, less the gateway). */
static uint64_t v4_capacity(const struct cfg_network *cn)
{
	uint64_t n = 0;

	for (size_t i = 0; i < cn->n_ranges; i++)
		n += ip_range_size(&cn->ranges[i]) - ip_range_contains(&cn->ranges[i], &cn->gateway);
	return n;
}

/* STATUS: the network exists and has an address left for the next ADD. */
static int cni_status(struct daemon *d, const struct ctl_request *rq, struct buf *out,
		      struct err *e)
{
	const struct cfg_network *cn;
	uint64_t used = 0, cap;

	if (rq->argc < 3)
		return err_set(e, EINVAL, "usage: cni status NETWORK");
	if (!(cn = config_network(d->cfg, rq->argv[2]))) {
		err_set(e, ENOENT, "network '%s' is not configured in berth", rq->argv[2]);
		return fail(out, CNI_ERR_NOT_AVAILABLE, -ENOENT);
	}
	if (ipam_list(d->store, cn->name, count_v4, &used, e) < 0)
		return fail(out, CNI_ERR_NOT_AVAILABLE, -EIO);
	cap = v4_capacity(cn);
	if (used >= cap) {
		err_set(e, ENOSPC, "network '%s' has no free address (%llu of %llu in use)",
			cn->name, (unsigned long long)used, (unsigned long long)cap);
		return fail(out, CNI_ERR_NOT_AVAILABLE, -ENOSPC);
	}
	return 0;
}

int req_cni(struct daemon *d, const struct ctl_request *rq, struct buf *out, struct err *e)
{
	const char *verb = rq->argc > 1 ? rq->argv[1] : "";

	if (!strcmp(verb, "add"))
		return cni_add(d, rq, out, e);
	if (!strcmp(verb, "del"))
		return cni_del(d, rq, e);
	if (!strcmp(verb, "check"))
		return cni_check(d, rq, out, e);
	if (!strcmp(verb, "status"))
		return cni_status(d, rq, out, e);
	if (!strcmp(verb, "ls")) {
		for (size_t i = 0; i < d->atts.n; i++)
			if (rq->argc < 3 || !strcmp(d->atts.v[i]->network, rq->argv[2]))
				buf_printf(out, "%s %s\n", d->atts.v[i]->o.id, d->atts.v[i]->o.ifname);
		return 0;
	}
	return err_set(e, EINVAL, "usage: cni add|del|check|ls|status ...");
}

static int restore_one(void *ctx, const char *name, const char *spec)
{
	struct daemon *d = ctx;
	char line[CTL_REQ_MAX], *argv[CTL_MAX_ARGS + 1];
	struct ctl_request rq = { 0 };
	struct cni_att *a;
	struct err e = { 0 };

	snprintf(line, sizeof(line), "%s", spec);
	if (ctl_parse_request(line, &rq, argv, &e) < 0 ||
	    att_parse(d, rq.argc, rq.argv, &a, &e) < 0) {
		daemon_log(d, LOG_ERROR, "attachment %s: cannot be restored (%s): forgetting it",
			   name, e.msg);
		store_cni_delete(d->store, name, NULL);
		return 0;
	}
	att_add(d, a);
	return 0;
}

void cni_restore(struct daemon *d)
{
	struct err e = { 0 };

	if (store_cni_list(d->store, restore_one, d, &e) < 0)
		daemon_log(d, LOG_ERROR, "list CNI attachments: %s", e.msg);
	else if (d->atts.n)
		daemon_log(d, LOG_INFO, "%zu CNI attachment%s restored", d->atts.n,
			   d->atts.n == 1 ? "" : "s");
}

void cni_free(struct daemon *d)
{
	for (size_t i = 0; i < d->atts.n; i++)
		att_free(d->atts.v[i]);
	array_free(&d->atts);
	name_index_free(&d->atts_by_name);
}
