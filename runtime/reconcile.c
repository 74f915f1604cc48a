/* reconcile.c - make the kernel, the store and DNS match the configuration:
 * desired (config) against recorded (store) against actual (kernel), applying
 * only the differences. Every step is idempotent, so running it again after a
 * crash, a restart or a failed step converges. */
#include "runtime/daemon_int.h"
#include "net/svc.h"
#include "dns/dns.h"
#include "net/nat.h"
#include "net/net.h"
#include "store/store.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Every container the daemon sets up: the configuration's, then the CNI
 * attachments (cni_attach.c), which no reload removes. */
static size_t n_all(const struct daemon *d, const struct config *cfg)
{
	return cfg->n_containers + d->atts.n;
}

static const struct cfg_container *nth(const struct daemon *d, const struct config *cfg, size_t i)
{
	return i < cfg->n_containers ? cfg->containers[i] : &d->atts.v[i - cfg->n_containers]->c;
}

const struct cfg_container *daemon_container(const struct daemon *d, const struct config *cfg,
					     const char *name)
{
	const struct cfg_container *c = cfg ? config_container(cfg, name) : NULL;
	const struct cni_att *a;

	if (c)
		return c;
	a = name_index_get(&d->atts_by_name, name);
	return a ? &a->c : NULL;
}

/* May its addresses be in use (a process of ours, or the runtime's)? */
static bool in_use(const struct daemon *d, const struct cfg_container *c)
{
	return c->cni || ctr_busy(&d->sup, c->name);
}

/* ---- describing objects: one "key=value" line each, for diffs and hashes -- */

static void describe_network(const struct cfg_network *n, struct buf *b)
{
	char p[IP_PREFIX_STRLEN], a[IP_STRLEN], r[2 * IP_STRLEN + 2];

	buf_printf(b, "bridge=%s\nsubnet=%s\n", n->bridge, ip_prefix_format(&n->subnet, p));
	buf_printf(b, "gateway=%s\n", ip_format(&n->gateway, a));
	for (size_t i = 0; i < n->n_ranges; i++)
		buf_printf(b, "range=%s\n", ip_range_format(&n->ranges[i], r));
	if (n->has_v6) {
		buf_printf(b, "subnet6=%s\n", ip_prefix_format(&n->subnet6, p));
		buf_printf(b, "gateway6=%s\n", ip_format(&n->gateway6, a));
		for (size_t i = 0; i < n->n_ranges6; i++)
			buf_printf(b, "range6=%s\n", ip_range_format(&n->ranges6[i], r));
	}
	buf_printf(b, "masquerade=%d\nisolate=%d\nmtu=%u\n", n->masquerade, n->isolate, n->mtu);
}

static void describe_port(const struct cfg_port *p, struct buf *b)
{
	char a[IP_STRLEN];

	buf_printf(b, "ports=%s%s%u-%u:%u-%u/%s\n", p->has_host_ip ? ip_format(&p->host_ip, a) : "",
		   p->has_host_ip ? ":" : "", p->host_first, p->host_last, p->first, p->last,
		   ip_proto_name(p->proto));
}

static void describe_container(const struct cfg_container *c, struct buf *b)
{
	char a[IP_STRLEN];

	if (c->image)
		buf_printf(b, "image=%s\npull=%d\nread_only=%d\n", c->image, (int)c->pull,
			   c->read_only);
	else
		buf_printf(b, "rootfs=%s\n", c->rootfs);
	buf_puts(b, "command=");
	for (size_t i = 0; i < c->argc; i++)
		buf_printf(b, "%s%s", i ? " " : "", c->argv[i]);
	buf_puts(b, "\n");
	for (size_t i = 0; i < c->n_env; i++)
		buf_printf(b, "env=%s\n", c->env[i]);
	for (size_t i = 0; i < c->n_labels; i++)
		buf_printf(b, "labels=%s=%s\n", c->labels[i].key, c->labels[i].value);
	for (size_t i = 0; i < c->n_networks; i++)
		buf_printf(b, "networks=%s\n", c->networks[i]);
	if (c->default_net)
		buf_printf(b, "default_network=%s\n", c->networks[c->default_net]);
	for (size_t i = 0; i < c->n_ports; i++)
		describe_port(&c->ports[i], b);
	buf_printf(b, "service=%s\n", c->service ? c->service : "");
	if (c->has_ip)
		buf_printf(b, "ip=%s\n", ip_format(&c->ip, a));
	if (c->has_ip6)
		buf_printf(b, "ip6=%s\n", ip_format(&c->ip6, a));
	buf_printf(b, "restart=%d\nmemory=%llu\ncpus=%u\nstop_timeout=%u\n", (int)c->restart,
		   (unsigned long long)c->memory, c->cpus_milli, c->stop_timeout);
	buf_printf(b, "log_size=%llu\ninit=%d\n", (unsigned long long)c->log_size, c->init);
	if (c->health.kind == HEALTH_NONE)
		return;
	buf_printf(b, "health=%d:%u:%s", (int)c->health.kind, (unsigned)c->health.port,
		   c->health.path ? c->health.path : "");
	for (size_t i = 0; i < c->health.argc; i++)
		buf_printf(b, " %s", c->health.argv[i]);
	buf_printf(b, "\nhealth_interval=%u\nhealth_timeout=%u\nhealth_retries=%u\n"
		   "health_start_period=%u\non_unhealthy=%d\n", c->health.interval_ms,
		   c->health.timeout_ms, c->health.retries, c->health.start_period_ms,
		   (int)c->health.on_unhealthy);
}

static void describe_policy(const struct policy *p, struct buf *b)
{
	char a[IP_PREFIX_STRLEN];

	buf_puts(b, "select=");
	selector_format(&p->select, b);
	buf_printf(b, "\ntypes=%u\n", p->types);
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct rule *r = &p->rules[i];

		buf_printf(b, "rule=%s %s", r->dir == POLICY_INGRESS ? "ingress" : "egress", r->name);
		for (size_t k = 0; k < r->n_peers; k++) {
			const struct peer *pe = &r->peers[k];

			buf_printf(b, " peer:%d:", (int)pe->kind);
			if (pe->kind == PEER_SELECTOR)
				selector_format(&pe->sel, b);
			if (pe->kind == PEER_CIDR) {
				buf_puts(b, ip_prefix_format(&pe->cidr, a));
				for (size_t x = 0; x < pe->n_except; x++)
					buf_printf(b, "-%s", ip_prefix_format(&pe->except[x], a));
			}
		}
		for (size_t k = 0; k < r->n_ports; k++)
			buf_printf(b, " port:%s:%d:%u-%u", ip_proto_name(r->ports[k].proto),
				   r->ports[k].any_port, r->ports[k].first, r->ports[k].last);
		buf_puts(b, "\n");
	}
}

static void describe_dns(const struct cfg_dns *d, struct buf *b)
{
	char a[IP_STRLEN];

	buf_printf(b, "domain=%s\nttl=%u\ncache=%u\nhost=%d\n", d->domain, d->ttl, d->cache, d->host);
	for (size_t i = 0; i < d->n_upstreams; i++)
		buf_printf(b, "upstream=%s\n", ip_format(&d->upstreams[i], a));
}

/* The keys whose lines differ between two descriptions, ", "-separated. */
static void changed_keys(const char *a, const char *b, struct buf *out)
{
	const char *sides[2][2] = { { a, b }, { b, a } };
	struct buf seen;

	buf_init(&seen);
	buf_puts(&seen, "\n");
	for (int s = 0; s < 2; s++) {
		const char *p = sides[s][0], *other = sides[s][1];

		while (*p) {
			const char *nl = strchr(p, '\n'), *eq = strchr(p, '=');
			size_t len = nl ? (size_t)(nl - p) : strlen(p);
			char line[1024], key[64];
			bool found = false;

			snprintf(line, sizeof(line), "%.*s", (int)len, p);
			for (const char *q = other; *q;) {
				const char *qn = strchr(q, '\n');
				size_t ql = qn ? (size_t)(qn - q) : strlen(q);

				if (ql == len && !strncmp(q, p, len)) {
					found = true;
					break;
				}
				q += ql + (qn ? 1 : 0);
			}
			if (!found && eq && eq < p + len) {
				snprintf(key, sizeof(key), "\n%.*s\n", (int)(eq - p), p);
				if (!strstr(seen.data, key)) {
					buf_printf(out, "%s%.*s", out->len ? ", " : "", (int)(eq - p), p);
					buf_puts(&seen, key + 1);
				}
			}
			p += len + (nl ? 1 : 0);
		}
	}
	buf_free(&seen);
}

/* Differences of one kind of object ("network", ...), matched by name. */
typedef void describe_fn(const void *obj, struct buf *b);

static void diff_objects(const char *kind, const void *olds, size_t n_old, const void *news,
			 size_t n_new, size_t size, size_t name_off, describe_fn *describe,
			 struct buf *out)
{
#define NAME_OF(base, i) (*(const char *const *)((const char *)(base) + (i) * size + name_off))
#define OBJ(base, i) ((const char *)(base) + (i) * size)
	for (size_t i = 0; i < n_new; i++) {
		size_t j;

		for (j = 0; j < n_old && strcmp(NAME_OF(olds, j), NAME_OF(news, i)); j++)
			;
		if (j == n_old) {
			buf_printf(out, "+ %s %s\n", kind, NAME_OF(news, i));
			continue;
		}
		struct buf a, b, keys;

		buf_init(&a), buf_init(&b), buf_init(&keys);
		describe(OBJ(olds, j), &a);
		describe(OBJ(news, i), &b);
		if (strcmp(a.data, b.data))
			changed_keys(a.data, b.data, &keys);
		if (keys.len)
			buf_printf(out, "~ %s %s: %s\n", kind, NAME_OF(news, i), keys.data);
		buf_free(&a), buf_free(&b), buf_free(&keys);
	}
	for (size_t j = 0; j < n_old; j++) {
		size_t i;

		for (i = 0; i < n_new && strcmp(NAME_OF(olds, j), NAME_OF(news, i)); i++)
			;
		if (i == n_new)
			buf_printf(out, "- %s %s\n", kind, NAME_OF(olds, j));
	}
#undef NAME_OF
#undef OBJ
}

/* A network as `reload --dry-run` compares it: with its service ranges,
 * which its containers' attachments do not depend on (network_hashes). */
static void d_net(const void *o, struct buf *b)
{
	const struct cfg_network *n = o;
	char p[IP_PREFIX_STRLEN];

	describe_network(n, b);
	if (n->service_range.addr.family)
		buf_printf(b, "service_range=%s\n", ip_prefix_format(&n->service_range, p));
	if (n->service_range6.addr.family)
		buf_printf(b, "service_range6=%s\n", ip_prefix_format(&n->service_range6, p));
}

static void d_pol(const void *o, struct buf *b) { describe_policy(o, b); }

static void d_svc(const void *o, struct buf *b)
{
	const struct cfg_service *s = o;
	char a[IP_STRLEN];

	buf_printf(b, "network=%s\nselect=", s->network);
	selector_format(&s->select, b);
	buf_puts(b, "\nports=");
	for (size_t i = 0; i < s->n_ports; i++)
		buf_printf(b, "%s%u:%u/%s", i ? "," : "", s->ports[i].port, s->ports[i].target,
			   ip_proto_name(s->ports[i].proto));
	buf_puts(b, "\nvip=");
	if (s->vip_auto)
		buf_puts(b, "auto");
	if (s->vip4.family)
		buf_printf(b, "%s ", ip_format(&s->vip4, a));
	if (s->vip6.family)
		buf_printf(b, "%s", ip_format(&s->vip6, a));
	buf_printf(b, "\nbalance=%d\naffinity=%u\npublish=", (int)s->balance, s->affinity_s);
	for (size_t i = 0; i < s->n_publish; i++) {
		const struct cfg_service_publish *p = &s->publish[i];

		buf_printf(b, "%s%s:%u:%u/%s", i ? "," : "",
			   p->has_host_ip ? ip_format(&p->host_ip, a) : "*", p->host_port, p->port,
			   ip_proto_name(p->proto));
	}
	buf_puts(b, "\n");
}

/* Containers by key (the configs' name indexes), and only those whose file
 * changed are described: a reload of one new container among hundreds
 * costs one line, not hundreds of descriptions. */
static void diff_containers(const struct config *old, const struct config *cfg,
			    struct buf *out)
{
	for (size_t i = 0; i < cfg->n_containers; i++) {
		const struct cfg_container *c = cfg->containers[i];
		const struct cfg_container *o = config_container(old, c->name);
		struct buf a, b, keys;

		if (!o) {
			buf_printf(out, "+ container %s\n", c->name);
			continue;
		}
		if (o->hash == c->hash)
			continue;
		buf_init(&a), buf_init(&b), buf_init(&keys);
		describe_container(o, &a);
		describe_container(c, &b);
		if (strcmp(a.data, b.data))
			changed_keys(a.data, b.data, &keys);
		if (keys.len)
			buf_printf(out, "~ container %s: %s\n", c->name, keys.data);
		buf_free(&a), buf_free(&b), buf_free(&keys);
	}
	for (size_t j = 0; j < old->n_containers; j++)
		if (!config_container(cfg, old->containers[j]->name))
			buf_printf(out, "- container %s\n", old->containers[j]->name);
}

void reconcile_diff(const struct config *old, const struct config *cfg, struct buf *out)
{
	size_t start = out->len;
	struct buf a, b, keys;

	diff_objects("network", old->networks, old->n_networks, cfg->networks, cfg->n_networks,
		     sizeof(struct cfg_network), offsetof(struct cfg_network, name), d_net, out);
	diff_containers(old, cfg, out);
	diff_objects("policy", old->policies, old->n_policies, cfg->policies, cfg->n_policies,
		     sizeof(struct policy), offsetof(struct policy, name), d_pol, out);
	diff_objects("service", old->services, old->n_services, cfg->services, cfg->n_services,
		     sizeof(struct cfg_service), offsetof(struct cfg_service, name), d_svc, out);
	buf_init(&a), buf_init(&b), buf_init(&keys);
	describe_dns(&old->dns, &a);
	describe_dns(&cfg->dns, &b);
	if (strcmp(a.data, b.data)) {
		changed_keys(a.data, b.data, &keys);
		buf_printf(out, "~ dns: %s\n", keys.data);
	}
	buf_free(&a), buf_free(&b), buf_free(&keys);
	if (out->len == start)
		buf_puts(out, "no changes\n");
}

/* ---- applying ------------------------------------------------------------ */

static void problem(struct daemon *d, struct buf *report, int *n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void problem(struct daemon *d, struct buf *report, int *n, const char *fmt, ...)
{
	char msg[ERR_MSG_MAX + 128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	daemon_log(d, LOG_ERROR, "%s", msg);
	buf_printf(report, "%s\n", msg);
	(*n)++;
}

/* A network must be re-created (its containers restart) when one of these changes. */
static bool network_identity_changed(const struct cfg_network *a, const struct cfg_network *b)
{
	return strcmp(a->bridge, b->bridge) || a->subnet.len != b->subnet.len ||
	       !ip_equal(&a->subnet.addr, &b->subnet.addr) || !ip_equal(&a->gateway, &b->gateway) ||
	       a->has_v6 != b->has_v6 ||
	       (a->has_v6 && (a->subnet6.len != b->subnet6.len ||
			      !ip_equal(&a->subnet6.addr, &b->subnet6.addr) ||
			      !ip_equal(&a->gateway6, &b->gateway6)));
}

static bool container_on(const struct cfg_container *c, const char *network)
{
	for (size_t i = 0; i < c->n_networks; i++)
		if (!strcmp(c->networks[i], network))
			return true;
	return false;
}

static bool same_networks(const struct cfg_container *a, const struct cfg_container *b)
{
	if (a->n_networks != b->n_networks)
		return false;
	for (size_t i = 0; i < a->n_networks; i++)
		if (strcmp(a->networks[i], b->networks[i]))
			return false;
	return true;
}

/* Unpublish one recorded port (its owner is the store row, so exact). */
static int unpublish_one(void *ctx, const struct store_port *sp)
{
	struct daemon *d = ctx;
	struct nat_port np = { .host_ip = sp->host_ip, .host_port = sp->host_port,
			       .proto = sp->proto };
	struct err e = { 0 };

	if (nat_port_del(d->nat, &np, &e) < 0)
		daemon_log(d, LOG_ERROR, "container %s: %s", sp->container, e.msg);
	return 0;
}

/* "80/tcp -> 0.0.0.0:8080", as `docker port` says it, appended to b
 * (", " between). */
static void port_words(struct buf *b, const struct store_port *p)
{
	buf_printf(b, "%s%u/%s -> ", b->len ? ", " : "", p->container_port, ip_proto_name(p->proto));
	port_host_side(b, p);
}

/* One event for the ports of a container published or withdrawn at once
 * (a range of a thousand ports is one row, not a thousand). */
static void port_event(struct daemon *d, const char *name, const char *action, size_t n,
		       const struct buf *words)
{
	char attrs[32];

	if (!n)
		return;
	snprintf(attrs, sizeof(attrs), "ports=%zu", n);
	daemon_event(d, "port", action, name, attrs, "%.400s%s", words->data,
		     words->len > 400 ? "..." : "");
}

static int port_word_one(void *ctx, const struct store_port *p)
{
	struct buf *b = ctx;

	port_words(b, p);
	return 0;
}

static struct pending_down *pending_find(const struct daemon *d, const char *name)
{
	for (struct pending_down *p = d->downs; p; p = p->next)
		if (!strcasecmp(p->name, name))
			return p;
	return NULL;
}

/* Take a container's network down (its process is gone): its published
 * ports are unpublished, its interfaces go, its addresses on the networks in
 * release are released (the others stay sticky for when it comes back);
 * forget: it was removed, its records and files go too. */
static void container_down(struct daemon *d, const struct pending_down *pd, struct buf *report,
			   int *n)
{
	struct ctr *c = daemon_ctr(d, pd->name);
	struct err e = { 0 };

	if (c)
		c->state = CTR_NET_NONE;        /* set up again from scratch, if at all */
	if (store_port_list(d->store, pd->name, unpublish_one, d, &e) < 0)
		problem(d, report, n, "container %s: %s", pd->name, e.msg);
	/* an attachment's netns is the runtime's: only our interface goes,
	 * in the worker (the kernel takes ~20 ms to delete a pair) */
	if (c && c->cfg->cni)
		net_worker_unplug(d, pd->name, c->cfg->cni->ifname);
	else if (net_detach(d->net, pd->name, &e) < 0)
		problem(d, report, n, "container %s: %s", pd->name, e.msg);
	for (size_t i = 0; i < pd->n_release; i++)
		if (ipam_release(d->store, pd->release[i], pd->name, &e) < 0)
			problem(d, report, n, "container %s: %s", pd->name, e.msg);
	if (pd->forget) {
		struct buf words;
		int np;

		buf_init(&words);
		store_port_list(d->store, pd->name, port_word_one, &words, NULL);
		if ((np = store_port_delete(d->store, pd->name, NULL, &e)) < 0)
			problem(d, report, n, "container %s: %s", pd->name, e.msg);
		else
			port_event(d, pd->name, "withdrawn", (size_t)np, &words);
		buf_free(&words);
		if (store_container_delete(d->store, pd->name, &e) < 0) {
			if (e.code != ENOENT)
				problem(d, report, n, "container %s: %s", pd->name, e.msg);
		} else if (!c || !c->cfg->cni) {
			daemon_event(d, "container", "removed", pd->name, NULL, "%s", "");
		}
		ctr_forget(&d->sup, pd->name);
	}
}

/* Take name's network down now, or once its process has ended: a stop is
 * begun and nothing waits for it (the supervisor's on_gone finishes). The
 * networks whose address goes are added to any down already pending. */
static void container_down_when_gone(struct daemon *d, const char *name,
				     const char *const *release, size_t n_release, bool forget,
				     struct buf *report, int *n)
{
	struct pending_down *pd = pending_find(d, name), one = { 0 };
	bool stopping = ctr_stop(&d->sup, name, CTR_STOP_OWNER);

	if (!pd) {
		pd = stopping ? calloc(1, sizeof(*pd)) : &one;
		if (!pd)
			abort();
		snprintf(pd->name, sizeof(pd->name), "%s", name);
		if (stopping) {
			pd->next = d->downs;
			d->downs = pd;
		}
	}
	for (size_t i = 0; i < n_release; i++) {
		size_t k;

		for (k = 0; k < pd->n_release && strcmp(pd->release[k], release[i]); k++)
			;
		if (k == pd->n_release && k < ARRAY_SIZE(pd->release))
			snprintf(pd->release[pd->n_release++], STORE_NAME_MAX, "%s", release[i]);
	}
	pd->forget |= forget;
	if (stopping)
		daemon_log(d, LOG_INFO, "container %s: its network goes once its process has stopped",
			   name);
	else if (pd == &one)
		container_down(d, pd, report, n);
}

/* After name's process ended: is there anything a converge would do? */
static bool converge_wanted(const struct daemon *d, const char *name)
{
	if (daemon_ctr(d, name))
		return true;
	for (size_t i = 0; i < d->n_ctrs; i++)
		if (d->ctrs[i].state != CTR_NET_READY)
			return true;    /* waiting: for an address, a re-attach, a stop */
	return false;
}

/* The supervisor: name's process has ended. A pending down runs now; then
 * the daemon converges again (soon, once for several such ends). */
static void on_ctr_gone(void *ctx, const char *name)
{
	struct daemon *d = ctx;
	bool wanted = converge_wanted(d, name);     /* name goes with a forget */
	struct buf report;
	int n = 0;

	for (struct pending_down **pp = &d->downs; *pp; pp = &(*pp)->next) {
		struct pending_down *pd = *pp;

		if (strcasecmp(pd->name, name))
			continue;
		*pp = pd->next;
		buf_init(&report);
		container_down(d, pd, &report, &n);
		buf_free(&report);
		free(pd);
		break;
	}
	if (d->exiting) {
		if (!ctr_any_busy(&d->sup))
			loop_stop(&d->loop);
		return;
	}
	/* what the network may now do (re-attach, hand an address over) and
	 * the start that follows a restart happen there; the end of a container
	 * no longer configured, with every other one ready, changes nothing
	 * there (a removal costs what it removes) */
	if (wanted)
		loop_timer_set(&d->loop, &d->converge, 0);
}

struct release_ctx {
	struct daemon *d;
	const char *network;
	struct buf *report;
	int *n;
};

static struct stored_net *stored_net(struct daemon *d, const char *name)
{
	for (size_t i = 0; i < d->nets_stored.n; i++)
		if (!strcmp(d->nets_stored.v[i].name, name))
			return &d->nets_stored.v[i];
	return NULL;
}

static void stored_net_forget(struct daemon *d, const char *name)
{
	struct stored_net *sn = stored_net(d, name);

	if (sn) {
		free(sn->name);
		*sn = d->nets_stored.v[--d->nets_stored.n];
	}
}

static void stored_net_record(struct daemon *d, const char *name, uint64_t hash)
{
	struct stored_net *sn = stored_net(d, name);

	if (!sn && (sn = array_push(&d->nets_stored)) && !(sn->name = strdup(name)))
		d->nets_stored.n--, sn = NULL;
	if (sn)
		sn->hash = hash;
}

static int release_one(void *ctx, const struct ipam_alloc *a)
{
	struct release_ctx *rc = ctx;
	struct err e = { 0 };

	if (ipam_release(rc->d->store, rc->network, a->owner, &e) < 0)
		problem(rc->d, rc->report, rc->n, "network %s: %s", rc->network, e.msg);
	return 0;
}

struct stale_ctx {
	struct daemon *d;
	const struct config *cfg;
	ARRAY(char[STORE_NAME_MAX]) names;
};

static int collect_stale(void *ctx, const struct store_container *c)
{
	struct stale_ctx *sc = ctx;
	char (*name)[STORE_NAME_MAX];

	if (daemon_container(sc->d, sc->cfg, c->name))
		return 0;
	if (!(name = array_push(&sc->names)))
		return -ENOMEM;
	snprintf(*name, STORE_NAME_MAX, "%s", c->name);
	return 0;
}

/* Steps 1-2: what the new config no longer has, or has differently, goes
 * (now, or once its process has ended). */
static void remove_stale(struct daemon *d, const struct config *cfg, struct buf *report, int *n)
{
	const struct config *old = d->cfg;
	struct stale_ctx sc = { .d = d, .cfg = cfg };
	struct err e = { 0 };

	for (size_t i = 0; old && i < old->n_networks; i++) {
		const struct cfg_network *o = &old->networks[i];
		const struct cfg_network *nn = config_network(cfg, o->name);
		const char *net = o->name;

		if (nn && !network_identity_changed(o, nn))
			continue;
		for (size_t k = 0; k < d->n_ctrs; k++)
			if (container_on(d->ctrs[k].cfg, o->name))
				container_down_when_gone(d, d->ctrs[k].cfg->name, &net, 1, false,
							 report, n);
		if (nat_network_del(d->nat, o->bridge, &e) < 0)
			problem(d, report, n, "network %s: %s", o->name, e.msg);
		if (!nn || strcmp(nn->bridge, o->bridge))
			if (net_bridge_delete(d->net, o->bridge, &e) < 0)
				problem(d, report, n, "network %s: %s", o->name, e.msg);
		if (!nn) {
			struct release_ctx rc = { d, o->name, report, n };

			ipam_list(d->store, o->name, release_one, &rc, &e);
			stored_net_forget(d, o->name);
			if (store_network_delete(d->store, o->name, &e) < 0 && e.code != ENOENT)
				problem(d, report, n, "network %s: %s", o->name, e.msg);
		}
	}
	for (size_t k = 0; k < d->n_ctrs; k++) {
		const struct cfg_container *oc = d->ctrs[k].cfg;
		const struct cfg_container *nc = daemon_container(d, cfg, oc->name);
		const char *release[CONFIG_NET_PER_CONTAINER];
		size_t n_release = 0;

		if (nc && same_networks(oc, nc))
			continue;
		for (size_t i = 0; i < oc->n_networks; i++)
			if (!nc || !container_on(nc, oc->networks[i]))
				release[n_release++] = oc->networks[i];
		container_down_when_gone(d, oc->name, release, n_release, !nc, report, n);
	}
	/* containers recorded by an earlier run that the config no longer has
	 * (after start-up, the store records no container that the running
	 * config or a pending down does not have: a reload need not look) */
	if (d->store_swept)
		return;
	if (store_container_list(d->store, collect_stale, &sc, &e) < 0)
		problem(d, report, n, "list recorded containers: %s", e.msg);
	for (size_t i = 0; i < sc.names.n; i++) {
		const char *name = sc.names.v[i];

		if (pending_find(d, name))
			continue;
		daemon_log(d, LOG_INFO, "container %s is no longer configured: removing it", name);
		container_down_when_gone(d, name, NULL, 0, true, report, n);
	}
	array_free(&sc.names);
}

static void pool_from(struct store_pool *p, const struct ip_prefix *subnet,
		      const struct ip_addr *gw, const struct ip_range *ranges, size_t n)
{
	p->subnet = *subnet;
	p->gateway = *gw;
	p->nranges = n < STORE_MAX_RANGES ? n : STORE_MAX_RANGES;
	memcpy(p->ranges, ranges, p->nranges * sizeof(*ranges));
}

/* Step 3: each network in the store and as a bridge with its gateways
 * (hash: of its description; an unchanged one's row is not written again,
 * but its bridge is still ensured, which repairs one deleted by hand). */
static void apply_network(struct daemon *d, const struct cfg_network *cn, uint64_t hash,
			  struct buf *report, int *n)
{
	const struct stored_net *was = stored_net(d, cn->name);
	struct store_network sn = { 0 };
	int ret;
	struct net_bridge br = { .name = cn->bridge, .mtu = cn->mtu };
	struct nat_network nn = { 0 };
	struct err e = { 0 };

	snprintf(sn.name, sizeof(sn.name), "%s", cn->name);
	pool_from(&sn.v4, &cn->subnet, &cn->gateway, cn->ranges, cn->n_ranges);
	br.gw[br.n_gw++] = (struct net_ifaddr){ cn->gateway, cn->subnet.len };
	if (cn->has_v6) {
		pool_from(&sn.v6, &cn->subnet6, &cn->gateway6, cn->ranges6, cn->n_ranges6);
		br.gw[br.n_gw++] = (struct net_ifaddr){ cn->gateway6, cn->subnet6.len };
	}
	/* the host's own connections to a VIP go onto the bridge, where the
	 * NAT output hook DNATs them (services.c) */
	if (cn->service_range.addr.family)
		br.routes[br.n_routes++] = cn->service_range;
	if (cn->service_range6.addr.family)
		br.routes[br.n_routes++] = cn->service_range6;
	if (!was || was->hash != hash) {
		if (store_network_put(d->store, &sn, &e) < 0)
			problem(d, report, n, "network %s: %s", cn->name, e.msg);
		else
			stored_net_record(d, cn->name, hash);
	}
	if ((ret = net_bridge_ensure(d->net, &br, &e)) < 0) {
		problem(d, report, n, "network %s: %s", cn->name, e.msg);
		return;
	}
	nn.fresh = ret == 1;
	nn.bridge = cn->bridge;
	nn.subnet4 = cn->subnet;
	if (cn->has_v6)
		nn.subnet6 = cn->subnet6;
	nn.masquerade = cn->masquerade;
	if (nat_network_set(d->nat, &nn, &e) < 0)
		problem(d, report, n, "network %s: %s", cn->name, e.msg);
}

/* Why a static address is not free, for the container that asks for it:
 * who holds it and what frees it. */
static int static_held(struct daemon *d, const struct config *cfg, const char *key,
		       const struct ip_addr *ip, const char *holder, struct err *e)
{
	const struct cfg_container *h = daemon_container(d, cfg, holder);
	char a[IP_STRLEN];

	ip_format(ip, a);
	if (!h || pending_find(d, holder))
		return err_set(e, EADDRINUSE, "%s %s is still held by container '%s', whose process "
			       "is stopping; it is this container's once that has stopped", key, a,
			       holder);
	if (in_use(d, h))
		return err_set(e, EADDRINUSE, "%s %s is held by container '%s' (allocated "
			       "dynamically); restart or remove '%s' to free it, or choose another %s",
			       key, a, holder, holder, key);
	return err_set(e, EADDRINUSE, "%s %s is held by container '%s' (allocated dynamically), "
		       "which is not running: it gets another address and this container its %s "
		       "right after", key, a, holder, key);
}

/*
 * One address of c on network cn. The static addresses that the other
 * configured containers ask for in that network are reserved (store.h): IPAM
 * never hands them out dynamically, whatever order the files are applied in,
 * at start-up and at every reload. A container that got one before it became
 * static (a reload added the static request) keeps it while its process
 * runs, since that process may be using it; once the process is gone
 * (stopped, restarted, never started, or after a reboot) the container is
 * renumbered, and the converge that follows gives the static owner its
 * address.
 */
static int allocate(struct daemon *d, const struct config *cfg, const struct cfg_container *c,
		    const struct cfg_network *cn, int family, struct ip_addr *out, struct err *e)
{
	const struct ip_prefix *subnet = family == AF_INET ? &cn->subnet : &cn->subnet6;
	const char *key = family == AF_INET ? "ip" : "ip6";
	struct ipam_req rq = { .network = cn->name, .family = family, .owner = c->name,
			       .renumber = !in_use(d, c) };
	const char *owner = NULL;
	char a[IP_STRLEN], b[IP_STRLEN], holder[STORE_NAME_MAX];
	struct ip_addr *reserved;
	int ret;

	reserved = calloc(n_all(d, cfg) + 1, sizeof(*reserved));
	if (!reserved)
		abort();
	for (size_t i = 0; i < n_all(d, cfg); i++) {
		const struct cfg_container *o = nth(d, cfg, i);
		const struct ip_addr *ip = family == AF_INET ? (o->has_ip ? &o->ip : NULL) :
				           (o->has_ip6 ? &o->ip6 : NULL);

		if (!ip || !ip_prefix_contains(subnet, ip))
			continue;
		if (o == c)
			rq.request = ip;
		else
			reserved[rq.n_reserved++] = *ip;
	}
	rq.reserved = reserved;
	ret = ipam_request(d->store, &rq, out, e);
	if (ret == -EADDRINUSE && rq.request &&
	    ipam_holder(d->store, cn->name, rq.request, holder, NULL) == 1 &&
	    !daemon_container(d, cfg, holder) && !pending_find(d, holder) &&
	    !ctr_busy(&d->sup, holder)) {
		/* a container of an earlier run, gone for good: its addresses
		 * are released at the end of this converge anyway (ipam_reconcile
		 * after a start-up), now so that the static owner need not wait */
		daemon_log(d, LOG_INFO, "network %s: releasing %s of container %s, which is no "
			   "longer configured, for container %s", cn->name,
			   ip_format(rq.request, a), holder, c->name);
		err_clear(e);
		if ((ret = ipam_release(d->store, cn->name, holder, e)) >= 0)
			ret = ipam_request(d->store, &rq, out, e);
	}
	free(reserved);
	if (ret == 1) {
		for (size_t i = 0; i < n_all(d, cfg) && !owner; i++) {
			const struct cfg_container *o = nth(d, cfg, i);

			if (family == AF_INET ? o->has_ip && ip_equal(&o->ip, &rq.renumbered_from) :
			    o->has_ip6 && ip_equal(&o->ip6, &rq.renumbered_from))
				owner = o->name;
		}
		daemon_log(d, LOG_INFO, "container %s: network %s: %s is the static %s of container "
			   "'%s': it now has %s", c->name, cn->name, ip_format(&rq.renumbered_from, a),
			   key, owner ? owner : "?", ip_format(out, b));
		loop_timer_set(&d->loop, &d->converge, 0);   /* where the static owner gets it */
		return 0;
	}
	if (ret == -EADDRINUSE && rq.request &&
	    ipam_holder(d->store, cn->name, rq.request, holder, NULL) == 1)
		return static_held(d, cfg, key, rq.request, holder, e);
	return ret;
}

struct port_rows {
	struct store_port *v;
	size_t n, cap;
};

static int port_rows_push(struct port_rows *r, const struct store_port *p)
{
	struct store_port *slot = array_push(r);

	if (!slot)
		return -ENOMEM;
	*slot = *p;
	return 0;
}

static int collect_port(void *ctx, const struct store_port *p)
{
	return port_rows_push(ctx, p);
}

/* Same published port (host side), and also the same target when full. */
static bool same_port(const struct store_port *a, const struct store_port *b, bool full)
{
	if (a->proto != b->proto || a->host_port != b->host_port ||
	    a->host_ip.family != b->host_ip.family ||
	    (a->host_ip.family && !ip_equal(&a->host_ip, &b->host_ip)))
		return false;
	return !full || (a->container_port == b->container_port && !strcmp(a->network, b->network));
}

static void nat_port_from(struct nat_port *np, const struct store_port *sp, const struct ctr *ctr)
{
	memset(np, 0, sizeof(*np));
	np->host_ip = sp->host_ip;
	np->host_port = sp->host_port;
	np->container_port = sp->container_port;
	np->proto = sp->proto;
	snprintf(np->owner, sizeof(np->owner), "%s", sp->container);
	for (size_t i = 0; i < ctr->n_ifs; i++)
		if (!strcmp(ctr->ifs[i].network, sp->network)) {
			np->addr4 = ctr->ifs[i].ip4;
			np->addr6 = ctr->ifs[i].ip6;
			break;
		}
	/* a network without IPv6: IPv6 goes where its default route goes,
	 * the first interface that has it (apply_container) */
	for (size_t i = 0; i < ctr->n_ifs && np->addr4.family && !np->addr6.family; i++)
		np->addr6 = ctr->ifs[i].ip6;
}

int reconcile_check_one(struct daemon *d, const char *name, struct err *e)
{
	const struct ctr *ctr = daemon_ctr(d, name);
	struct port_rows rows = { 0 };
	struct nat_port np;
	int ret;

	if (!ctr)
		return err_set(e, ENOENT, "%s is not set up", name);
	if (!d->nat_synced)
		return err_set(e, EAGAIN, "table inet %s is not set up yet", NAT_TABLE);
	if ((ret = nat_table_check(d->nat, e)) < 0)
		return ret;
	ret = store_port_list(d->store, name, collect_port, &rows, e);
	for (size_t i = 0; ret >= 0 && i < rows.n; i++) {
		nat_port_from(&np, &rows.v[i], ctr);
		ret = nat_port_check(d->nat, &np, e);
	}
	array_free(&rows);
	if (ret < 0)
		return ret;
	return fw_check_container(d->nat, &d->fw, name, e);
}

/*
 * The container's published ports: the store records each one with its owner
 * and nat publishes it as map elements. Only differences are applied: a port
 * that stays is not touched (its connections and counters go on), a port no
 * longer configured is unpublished and forgotten, a new one is checked
 * against the host's own sockets first (all of them before any change, so
 * such a conflict leaves the container's ports as they were), then published
 * and recorded. A port another container publishes is refused by nat (the
 * same port) or the store (every address against one address).
 */
static int apply_ports(struct daemon *d, const struct cfg_container *c, const struct ctr *ctr,
		       struct err *e)
{
	struct port_rows old = { 0 }, want = { 0 };
	struct nat_busy *busy = NULL;
	struct nat_port np;
	struct buf added, gone;
	size_t n_added = 0, n_gone = 0;
	int ret;

	buf_init(&added);
	buf_init(&gone);
	ret = store_port_list(d->store, c->name, collect_port, &old, e);
	for (size_t i = 0; ret >= 0 && i < c->n_ports; i++) {
		const struct cfg_port *p = &c->ports[i];

		for (unsigned k = 0; ret >= 0 && p->host_first + k <= p->host_last; k++) {
			struct store_port sp = {
				.host_port = (uint16_t)(p->host_first + k),
				.container_port = (uint16_t)(p->first + k),
				.proto = p->proto,
			};

			snprintf(sp.container, sizeof(sp.container), "%s", c->name);
			/* the default network: the one replies leave by */
			snprintf(sp.network, sizeof(sp.network), "%s", c->networks[c->default_net]);
			if (p->has_host_ip)
				sp.host_ip = p->host_ip;
			ret = port_rows_push(&want, &sp);
		}
	}
	if (ret < 0)
		goto out;
	/* new ports: is a host process already using one? */
	for (size_t i = 0; i < want.n; i++) {
		size_t j;

		for (j = 0; j < old.n && !same_port(&old.v[j], &want.v[i], false); j++)
			;
		if (j < old.n)
			continue;
		if (!busy && (ret = nat_busy_load(&busy, e)) < 0)
			goto out;
		nat_port_from(&np, &want.v[i], ctr);
		if ((ret = nat_busy_check(busy, &np, e)) < 0)
			goto out;
	}
	/* gone or changed: unpublish and forget */
	for (size_t j = 0; j < old.n; j++) {
		size_t i;

		for (i = 0; i < want.n && !same_port(&old.v[j], &want.v[i], true); i++)
			;
		if (i < want.n)
			continue;
		nat_port_from(&np, &old.v[j], ctr);
		if ((ret = nat_port_del(d->nat, &np, e)) < 0 ||
		    (ret = store_port_delete(d->store, c->name, &old.v[j], e)) < 0)
			goto out;
		port_words(&gone, &old.v[j]);
		n_gone++;
	}
	/* new or changed: publish, then record (a port nat refuses is never
	 * listed; one the store refuses, held by another container, is taken
	 * back); kept ones are published again, which is a no-op unless the
	 * container's address changed */
	for (size_t i = 0; i < want.n; i++) {
		size_t j;

		for (j = 0; j < old.n && !same_port(&old.v[j], &want.v[i], true); j++)
			;
		nat_port_from(&np, &want.v[i], ctr);
		if ((ret = nat_port_add(d->nat, &np, e)) < 0)
			goto out;
		if (j == old.n && (ret = store_port_add(d->store, &want.v[i], e)) < 0) {
			nat_port_del(d->nat, &np, NULL);
			goto out;
		}
		if (j == old.n) {
			port_words(&added, &want.v[i]);
			n_added++;
		}
	}
	ret = 0;
out:
	if (!c->cni) {
		port_event(d, c->name, "withdrawn", n_gone, &gone);
		port_event(d, c->name, "published", n_added, &added);
	}
	buf_free(&added);
	buf_free(&gone);
	nat_busy_free(busy);
	free(old.v);
	free(want.v);
	return ret;
}

/* Step 4: one container's addresses, interfaces, ports and record. */
static int apply_container(struct daemon *d, const struct config *cfg,
			   const struct cfg_container *c, struct ctr *ctr, struct err *e)
{
	struct store_container sc = { 0 }, old;
	size_t v6_default = c->n_networks;   /* the interface of the IPv6 default route */
	const struct cni_origin *o = c->cni;    /* the runtime's netns, interface name, MAC */

	ctr->cfg = c;
	/* One default route per family, through one interface: the default
	 * network's (default_network, else the first). Each attach replaces
	 * the family's default route, so giving it to every interface would
	 * let the last network win, and replies to a published port (which
	 * targets the default network's address) would leave through another
	 * interface with the wrong source, dropped by the anti-spoofing. IPv6
	 * goes through the first network that has it when the default one
	 * does not. */
	for (size_t i = 0; i <= c->n_networks && v6_default == c->n_networks; i++) {
		size_t k = i ? i - 1 : c->default_net;
		const struct cfg_network *cn = k < c->n_networks ? config_network(cfg, c->networks[k]) :
					       NULL;

		if (cn && cn->has_v6)
			v6_default = k;
	}
	for (size_t i = 0; i < c->n_networks; i++) {
		const struct cfg_network *cn = config_network(cfg, c->networks[i]);
		struct ctr_if *ci = &ctr->ifs[ctr->n_ifs++];
		struct net_attach a = { .container = c->name, .ifname = ci->ifname, .mtu = cn->mtu };

		ci->network = cn->name;
		/* a DEL's pair is gone first, an earlier attach's announcement
		 * sent (the worker keeps their order) */
		net_worker_wait(d, c->name);
		if (o) {
			snprintf(ci->ifname, sizeof(ci->ifname), "%s", o->ifname);
			a.netns = o->netns;
			a.mac = o->mac;
			a.out = &cni_att_of(c)->link;
		} else {
			snprintf(ci->ifname, sizeof(ci->ifname), "eth%u",
				 (unsigned)i % CONFIG_NET_PER_CONTAINER);
		}
		a.bridge = cn->bridge;
		if (allocate(d, cfg, c, cn, AF_INET, &ci->ip4, e) < 0)
			return err_wrap(e, "network %s", cn->name);
		a.addr[a.n_addr++] = (struct net_ifaddr){ ci->ip4, cn->subnet.len };
		if (i == c->default_net)
			a.gw[a.n_gw++] = cn->gateway;
		if (cn->has_v6) {
			if (allocate(d, cfg, c, cn, AF_INET6, &ci->ip6, e) < 0)
				return err_wrap(e, "network %s", cn->name);
			a.addr[a.n_addr++] = (struct net_ifaddr){ ci->ip6, cn->subnet6.len };
			if (i == v6_default)
				a.gw[a.n_gw++] = cn->gateway6;
		}
		/* the broadcast costs O(bridge ports): the worker sends it */
		a.announce_later = d->net_worker != NULL;
		if (net_attach(d->net, &a, e) < 0)
			return -1;
		if (a.announce_later && !net_worker_announce(d, &a))
			(void)net_announce(d->net, &a, NULL);
	}
	snprintf(sc.name, sizeof(sc.name), "%s", c->name);
	/* the file it was set up from (config.h: equal hashes, the same container) */
	snprintf(sc.config_hash, sizeof(sc.config_hash), "fnv1a64:%016llx",
		 (unsigned long long)c->hash);
	snprintf(sc.state, sizeof(sc.state), "created");
	bool created = true;
	if (store_container_get(d->store, c->name, &old, NULL) == 0) {
		created = false;
		/* the process side of the row belongs to container.c */
		memcpy(sc.state, old.state, sizeof(sc.state));
		sc.pid = old.pid;
		sc.restarts = old.restarts;
		sc.exit_status = old.exit_status;
		sc.started_at = old.started_at;
	}
	daemon_netns_path(d, c, sc.netns, sizeof(sc.netns));
	if (store_container_put(d->store, &sc, e) < 0)
		return -1;
	if (created && !o)
		daemon_event(d, "container", "created", c->name, NULL, "%s %s",
			     c->image ? "image" : "rootfs", c->image ? c->image : c->rootfs);
	return apply_ports(d, c, ctr, e);   /* a port row needs its container row */
}

#define DNS_PUB_FAILED 1            /* its names were refused: tried again each converge */

/* What the DNS names of cfg's containers hang on (a change rebuilds them all). */
static uint64_t dns_base_hash(const struct config *cfg)
{
	uint64_t h = hash64(HASH64_INIT, cfg->dns.domain, strlen(cfg->dns.domain) + 1);

	h = hash64(h, &cfg->dns.ttl, sizeof(cfg->dns.ttl));
	for (size_t i = 0; i < cfg->n_networks; i++) {
		const struct cfg_network *cn = &cfg->networks[i];

		h = hash64(h, cn->name, strlen(cn->name) + 1);
		h = hash64(h, &cn->subnet, sizeof(cn->subnet));
		h = hash64(h, &cn->has_v6, sizeof(cn->has_v6));
		if (cn->has_v6)
			h = hash64(h, &cn->subnet6, sizeof(cn->subnet6));
	}
	return h;
}

/* What DNS has of container c: its name, service, addresses per network and
 * ports, hashed (never 0 or DNS_PUB_FAILED); 0 when it has no names. */
static uint64_t dns_pub_hash(const struct daemon *d, const struct ctr *c)
{
	const struct cfg_container *cc = c->cfg;
	bool member = cc->service && health_in_service(d, cc);
	uint64_t h;

	if (c->state != CTR_NET_READY || !ctr_dns_name(cc))
		return 0;
	h = hash64(HASH64_INIT, ctr_dns_name(cc), strlen(ctr_dns_name(cc)) + 1);
	for (size_t k = 0; cc->cni && k < cc->cni->n_aliases; k++)
		h = hash64(h, cc->cni->aliases[k], strlen(cc->cni->aliases[k]) + 1);
	if (member)
		h = hash64(h, cc->service, strlen(cc->service) + 1);
	for (size_t i = 0; i < c->n_ifs; i++) {
		h = hash64(h, c->ifs[i].network, strlen(c->ifs[i].network) + 1);
		h = hash64(h, &c->ifs[i].ip4, sizeof(c->ifs[i].ip4));
		h = hash64(h, &c->ifs[i].ip6, sizeof(c->ifs[i].ip6));
	}
	for (size_t p = 0; p < cc->n_ports; p++) {
		const struct cfg_port *cp = &cc->ports[p];

		h = hash64(h, &cp->first, sizeof(cp->first));
		h = hash64(h, &cp->last, sizeof(cp->last));
		h = hash64(h, &cp->proto, sizeof(cp->proto));
	}
	return h > DNS_PUB_FAILED ? h : h + 2;
}

/* Container c's names as they are now; returns what dns_pub records. */
static uint64_t dns_publish(struct daemon *d, struct dns_records *r, const struct ctr *c,
			    uint64_t pub, struct buf *report, int *n)
{
	const struct cfg_container *cc = c->cfg;
	struct dns_ctr_net nets[CONFIG_NET_PER_CONTAINER];
	struct dns_ctr_ports few[16], *ports = few;
	/* a container with a health check is in its service while healthy */
	struct dns_ctr dc = { .name = ctr_dns_name(cc), .nets = nets,
			      .service = health_in_service(d, cc) ? cc->service : NULL };
	struct err e = { 0 };
	int ret;

	for (size_t i = 0; i < c->n_ifs && dc.nnets < ARRAY_SIZE(nets); i++) {
		struct dns_ctr_net *cn = &nets[dc.nnets];

		cn->network = c->ifs[i].network;
		cn->naddrs = 0;
		if (c->ifs[i].ip4.family)
			cn->addrs[cn->naddrs++] = c->ifs[i].ip4;
		if (c->ifs[i].ip6.family)
			cn->addrs[cn->naddrs++] = c->ifs[i].ip6;
		dc.nnets += cn->naddrs > 0;
	}
	if (cc->n_ports > ARRAY_SIZE(few)) {
		ports = calloc(cc->n_ports, sizeof(*ports));
		if (!ports)
			abort();
	}
	for (size_t p = 0; p < cc->n_ports; p++)
		ports[p] = (struct dns_ctr_ports){ cc->ports[p].first, cc->ports[p].last,
						   ip_proto_name(cc->ports[p].proto) };
	dc.ports = ports;
	dc.nports = cc->n_ports;
	ret = dns_records_set_container(r, &dc, &e);
	if (ports != few)
		free(ports);
	if (ret < 0) {
		problem(d, report, n, "dns: container %s: %s", cc->name, e.msg);
		return DNS_PUB_FAILED;
	}
	/* an attachment's aliases: more names of the same addresses */
	for (size_t k = 0; cc->cni && k < cc->cni->n_aliases; k++) {
		struct dns_ctr alias = { .name = cc->cni->aliases[k], .nets = nets, .nnets = dc.nnets };

		if (dns_records_set_container(r, &alias, &e) < 0)
			problem(d, report, n, "dns: container %s: alias %s: %s", cc->name,
				alias.name, e.msg);
	}
	return pub;
}

/* Container c's names go from DNS. */
static void dns_unpublish(struct dns_records *r, const struct cfg_container *c)
{
	if (ctr_dns_name(c))
		dns_records_remove_container(r, ctr_dns_name(c));
	for (size_t k = 0; c->cni && k < c->cni->n_aliases; k++)
		dns_records_remove_container(r, c->cni->aliases[k]);
}

void reconcile_dns_one(struct daemon *d, const char *name)
{
	struct dns_records *r = d->dns ? dns_server_records(d->dns) : NULL;
	struct ctr *c = daemon_ctr(d, name);
	struct buf report;
	uint64_t now;
	int n = 0;

	if (!r || !c)
		return;
	now = dns_pub_hash(d, c);
	if (now == c->dns_pub)
		return;
	buf_init(&report);
	if (!now)
		dns_unpublish(r, c->cfg);
	c->dns_pub = now ? dns_publish(d, r, c, now, &report, &n) : 0;
	buf_free(&report);
}

/*
 * Step 7: the names DNS answers, its upstreams and its listeners. The
 * server's records are changed in place for the containers whose names
 * changed (dns_pub against the previous converge's), so that a reload costs
 * what changed; a change of domain, TTL or networks builds them anew.
 */
static bool apply_dns(struct daemon *d, const struct config *cfg, struct ctr *ctrs,
		      size_t n_ctrs, struct buf *report, int *n)
{
	struct ip_addr want[DAEMON_MAX_LISTENERS];
	struct dns_upstream ups[16];
	size_t n_want = 0, n_ups = 0;
	struct dns_records *r = dns_server_records(d->dns);
	uint64_t base = dns_base_hash(cfg);
	bool fresh = !r || base != d->dns_base;
	struct err e = { 0 };

	if (fresh) {
		r = dns_records_new(cfg->dns.domain, cfg->dns.ttl, &e);
		if (!r) {
			problem(d, report, n, "dns: %s", e.msg);
			d->dns_base = 0;
			return false;
		}
		d->dns_base = base;
	}
	for (size_t i = 0; i < cfg->n_networks; i++) {
		const struct cfg_network *cn = &cfg->networks[i];
		struct ip_prefix subnets[2] = { cn->subnet, cn->subnet6 };

		if (fresh && dns_records_add_network(r, cn->name, subnets, cn->has_v6 ? 2 : 1, &e) < 0) {
			problem(d, report, n, "dns: network %s: %s", cn->name, e.msg);
			d->dns_base = 0;    /* so that it is said again */
		}
		if (n_want < DAEMON_MAX_LISTENERS)
			want[n_want++] = cn->gateway;
		if (cn->has_v6 && n_want < DAEMON_MAX_LISTENERS)
			want[n_want++] = cn->gateway6;
	}
	for (size_t k = 0; k < n_ctrs; k++) {
		/* a name only while its interfaces exist: not for a container
		 * whose attach failed half-way, nor one waiting to be re-attached */
		struct ctr *c = &ctrs[k], *prev = daemon_ctr(d, c->cfg->name);
		uint64_t had = prev ? prev->dns_pub : 0, was = fresh ? 0 : had, now;

		if (prev)
			prev->dns_seen = true;
		/* unchanged: the same file, networks and addresses, so the same names */
		now = c->unchanged && had > DNS_PUB_FAILED ? had : dns_pub_hash(d, c);
		if (now == was && was != DNS_PUB_FAILED)
			c->dns_pub = now;
		else if (!now && was)
			dns_unpublish(r, c->cfg);      /* dns_pub stays 0 */
		else if (now)
			c->dns_pub = dns_publish(d, r, c, now, report, n);
	}
	/* containers no longer configured (d->ctrs is the previous converge's) */
	for (size_t k = 0; k < d->n_ctrs && !fresh; k++)
		if (!d->ctrs[k].dns_seen && d->ctrs[k].dns_pub)
			dns_unpublish(r, d->ctrs[k].cfg);
	if (fresh)
		dns_server_set_records(d->dns, r);

	for (size_t i = 0; i < cfg->dns.n_upstreams && n_ups < ARRAY_SIZE(ups); i++)
		ups[n_ups++] = (struct dns_upstream){ .addr = cfg->dns.upstreams[i], .port = 53 };
	if (dns_server_set_upstreams(d->dns, ups, n_ups, &e) < 0)
		problem(d, report, n, "dns: %s", e.msg);

	if (cfg->dns.host && n_want < DAEMON_MAX_LISTENERS)
		ip_parse(DNS_HOST_ADDR, &want[n_want++], NULL);
	/* close listeners no longer wanted, open the new ones */
	for (size_t i = 0; i < d->n_listeners;) {
		bool keep = false;

		for (size_t k = 0; k < n_want; k++)
			keep |= ip_equal(&d->listeners[i], &want[k]);
		if (keep) {
			i++;
			continue;
		}
		dns_server_unlisten(d->dns, &d->listeners[i], DNS_PORT);
		d->listeners[i] = d->listeners[--d->n_listeners];
	}
	for (size_t k = 0; k < n_want; k++) {
		bool have = false;

		for (size_t i = 0; i < d->n_listeners; i++)
			have |= ip_equal(&d->listeners[i], &want[k]);
		if (have)
			continue;
		if (dns_server_listen(d->dns, &want[k], DNS_PORT, &e) < 0)
			problem(d, report, n, "dns: %s", e.msg);
		else
			d->listeners[d->n_listeners++] = want[k];
	}
	return fresh;
}

/* Step 6: the policies, compiled for the containers as attached, into the
 * kernel before any container's process starts (fail closed). At start-up
 * the first nat_sync puts the whole table, firewall included, in one batch;
 * afterwards fw_apply sends only what changed. */
static void apply_policies(struct daemon *d, const struct config *cfg, const struct ctr *ctrs,
			   size_t n_ctrs, struct buf *report, int *n)
{
	struct fw_model m;
	struct err e = { 0 };

	if (policy_compile(cfg, ctrs, n_ctrs, &m, &e) < 0) {
		problem(d, report, n, "policies: %s", e.msg);
		fw_model_free(&d->fw);      /* it borrows from the config being replaced */
		return;
	}
	if (d->nat_synced && fw_apply(d->nat, &d->fw, &m, &e) < 0) {
		problem(d, report, n, "%s; replacing the whole table", e.msg);
		d->nat_synced = false;
	}
	fw_model_free(&d->fw);
	d->fw = m;
	if (!d->nat_synced) {
		/* the complete table replaces what an earlier run left, in one batch */
		if (nat_sync(d->nat, &e) < 0)
			problem(d, report, n, "nat: %s", e.msg);
		else
			d->nat_synced = true;
	}
}

/* What a container's network is set up from: its own file and its networks
 * (net_hash: each network's description, hashed once per converge).
 * Unchanged, a running container's network is left as it is. */
static uint64_t applied_hash(const struct config *cfg, const uint64_t *net_hash,
			     const struct cfg_container *c)
{
	uint64_t h = hash64(HASH64_INIT, &c->hash, sizeof(c->hash));

	for (size_t i = 0; i < c->n_networks; i++) {
		const struct cfg_network *n = config_network(cfg, c->networks[i]);

		if (n)
			h = hash64(h, &net_hash[n - cfg->networks], sizeof(*net_hash));
	}
	return h;
}

static uint64_t *network_hashes(const struct config *cfg)
{
	uint64_t *v = calloc(cfg->n_networks + 1, sizeof(*v));
	struct buf b;

	if (!v)
		abort();
	buf_init(&b);
	for (size_t i = 0; i < cfg->n_networks; i++) {
		buf_reset(&b);
		describe_network(&cfg->networks[i], &b);
		v[i] = hash64(HASH64_INIT, b.data, b.len);
	}
	buf_free(&b);
	return v;
}

static void ctrs_free(struct ctr *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].ifs);
		free(v[i].error);
	}
	free(v);
}

/* Start-up: the addresses of containers an earlier run left (its store
 * holds them) go, but for those whose process may still use them. After
 * that, every removal releases its own (container_down). */
static void sweep_addresses(struct daemon *d, struct buf *report, int *n)
{
	const struct config *cfg = d->cfg;
	size_t n_live = n_all(d, cfg), cap = n_live + cfg->n_services + 1;
	const char **live;
	struct err e = { 0 };

	for (struct pending_down *p = d->downs; p; p = p->next)
		cap++;
	live = calloc(cap, sizeof(*live));
	if (!live)
		abort();
	for (size_t i = 0; i < n_all(d, cfg); i++)
		live[i] = nth(d, cfg, i)->name;
	/* services own their VIPs */
	n_live += services_names(cfg, live + n_live, cfg->n_services);
	/* an address stays with its owner while the owner's process may use it */
	for (struct pending_down *p = d->downs; p; p = p->next)
		live[n_live++] = p->name;
	if (ipam_reconcile(d->store, live, n_live, NULL, NULL, &e) < 0)
		problem(d, report, n, "release stale addresses: %s", e.msg);
	else
		d->store_swept = true;
	free(live);
}

static const char *ctr_name(const void *o)
{
	return ((const struct ctr *)o)->cfg->name;
}

/*
 * Steps 3-7 for the running configuration: networks, containers (those
 * whose old process must end first wait as "stopping"), addresses, the
 * firewall and DNS; then each container's process is brought in line.
 * A container set up from the same file and networks whose process runs is
 * taken over as it is, so that what a reload costs grows with what changed
 * (issue 19); what is rebuilt for all (the firewall model, DNS names) is a
 * pass over memory.
 */
static int converge(struct daemon *d, struct buf *report, int n)
{
	const struct config *cfg = d->cfg;
	size_t n_ctrs = n_all(d, cfg);
	struct ctr *ctrs = calloc(n_ctrs + 1, sizeof(*ctrs)), *prev;
	struct name_index by_name = { .name_of = ctr_name };
	uint64_t *net_hash = network_hashes(cfg);
	struct err e = { 0 };
	bool dns_fresh;

	if (!ctrs)
		abort();
	for (size_t i = 0; i < cfg->n_networks; i++)
		apply_network(d, &cfg->networks[i], net_hash[i], report, &n);
	for (size_t i = 0; i < n_ctrs; i++) {
		const struct cfg_container *c = nth(d, cfg, i);

		ctrs[i].cfg = c;
		prev = daemon_ctr(d, c->name);
		/* pull = always: a pull since its definition came, not since
		 * each reload */
		ctrs[i].image_since_ms = prev && prev->cfg->hash == c->hash ? prev->image_since_ms :
					 loop_now_ms();
		ctrs[i].ifs = calloc(c->n_networks ? c->n_networks : 1, sizeof(*ctrs[i].ifs));
		if (!ctrs[i].ifs || !name_index_put(&by_name, &ctrs[i]))
			abort();
		if (pending_find(d, c->name)) {
			ctrs[i].state = CTR_NET_STOPPING;
			ctrs[i].error = strdup("its old process is stopping; its network changes "
					       "once it has");
			continue;
		}
		if (c->cni && !config_network(cfg, c->networks[0])) {
			ctrs[i].state = CTR_NET_ERROR;
			ctrs[i].error = strdup("its network is no longer configured");
			continue;
		}
		ctrs[i].applied = applied_hash(cfg, net_hash, c);
		prev = daemon_ctr(d, c->name);
		if (prev && prev->state == CTR_NET_READY && prev->applied == ctrs[i].applied &&
		    in_use(d, c)) {
			/* set up from the same keys and in use: nothing to do */
			free(ctrs[i].ifs);
			ctrs[i].ifs = prev->ifs;
			ctrs[i].n_ifs = prev->n_ifs;
			prev->ifs = NULL;
			for (size_t k = 0; k < ctrs[i].n_ifs; k++)     /* the old config goes */
				ctrs[i].ifs[k].network = c->networks[k];
			ctrs[i].state = CTR_NET_READY;
			ctrs[i].unchanged = true;
			continue;
		}
		err_clear(&e);
		if (apply_container(d, cfg, c, &ctrs[i], &e) < 0) {
			ctrs[i].state = CTR_NET_ERROR;
			ctrs[i].error = strdup(e.msg);
			problem(d, report, &n, "container %s: %s", c->name, e.msg);
		} else {
			ctrs[i].state = CTR_NET_READY;
		}
	}
	free(net_hash);
	if (!d->store_swept)
		sweep_addresses(d, report, &n);
	apply_policies(d, cfg, ctrs, n_ctrs, report, &n);
	dns_fresh = apply_dns(d, cfg, ctrs, n_ctrs, report, &n);
	ctrs_free(d->ctrs, d->n_ctrs);
	name_index_free(&d->ctrs_by_name);
	d->ctrs = ctrs;
	d->n_ctrs = n_ctrs;
	d->ctrs_by_name = by_name;
	/* after the firewall (a VIP leads to backends it already filters) */
	services_apply(d, dns_fresh, report, &n);
	/* the images containers need: pulls start (nothing waits for them; a
	 * container waiting for one starts when it ends) */
	for (size_t i = 0; i < d->n_ctrs; i++)
		images_prepare(d, &d->ctrs[i], d->image_reload);
	/* network, firewall and DNS state are in place: processes may start
	 * (a running one whose file and networks did not change is as it was) */
	for (size_t i = 0; i < d->n_ctrs; i++) {
		if (d->ctrs[i].unchanged)
			continue;
		err_clear(&e);
		if (ctr_sync(&d->sup, d->ctrs[i].cfg->name, &e) < 0)
			problem(d, report, &n, "container %s: %s", d->ctrs[i].cfg->name, e.msg);
	}
	ctr_prune(&d->sup);
	health_sync(d);             /* checks added, removed, or of adopted containers */
	return n;
}

/* An event per network and policy a reload added, removed or changed
 * (from the same diff `reload --dry-run` shows). */
static void config_events(struct daemon *d, const struct config *old, const struct config *cfg)
{
	struct buf diff;

	buf_init(&diff);
	diff_objects("network", old->networks, old->n_networks, cfg->networks, cfg->n_networks,
		     sizeof(struct cfg_network), offsetof(struct cfg_network, name), d_net, &diff);
	diff_objects("policy", old->policies, old->n_policies, cfg->policies, cfg->n_policies,
		     sizeof(struct policy), offsetof(struct policy, name), d_pol, &diff);
	diff_objects("service", old->services, old->n_services, cfg->services, cfg->n_services,
		     sizeof(struct cfg_service), offsetof(struct cfg_service, name), d_svc, &diff);
	for (char *line = diff.data, *next; line && *line; line = next) {
		char type[16], name[STORE_NAME_MAX + 1];
		const char *keys;
		bool net;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (sscanf(line + 2, "%15s %64[^:]", type, name) != 2)
			continue;
		net = !strcmp(type, "network");
		keys = strstr(line, ": ");
		daemon_event(d, type, line[0] == '+' ? (net ? "created" : "added") :
			     line[0] == '-' ? "removed" : "changed", name, NULL,
			     "%s", keys ? keys + 2 : "");
	}
	buf_free(&diff);
}

int reconcile_apply(struct daemon *d, struct config *cfg, struct buf *report)
{
	uint64_t t0 = now_us();
	int n = 0;

	struct config *old = d->cfg;

	remove_stale(d, cfg, report, &n);
	d->cfg = cfg;
	images_configure(d);
	/* the old config lives on until the firewall's diff against it is done */
	d->image_reload = true;     /* a failed pull is tried again now */
	n = converge(d, report, n);
	d->image_reload = false;
	if (old)
		config_events(d, old, cfg);
	config_free(old);
	d->last_reconcile_us = now_us() - t0;
	return n;
}

/* d->ctrs moved or changed length: its index again (O(n), memory only). */
static void ctrs_reindex(struct daemon *d)
{
	name_index_free(&d->ctrs_by_name);
	d->ctrs_by_name = (struct name_index){ .name_of = ctr_name };
	for (size_t i = 0; i < d->n_ctrs; i++)
		if (!name_index_put(&d->ctrs_by_name, &d->ctrs[i]))
			abort();
}

/*
 * What a converge does for one container, for an attachment that comes
 * while the configuration stays as it is: its network (apply_container),
 * then the firewall, whose model is compiled for all containers as they
 * are, and its own DNS names. Costs what one container costs, plus a pass
 * over memory for the firewall: not a reload (issue 20: ADD flat in N).
 */
int reconcile_add_one(struct daemon *d, const struct cfg_container *c, struct err *e)
{
	const struct config *cfg = d->cfg;
	struct ctr *v = realloc(d->ctrs, (d->n_ctrs + 1) * sizeof(*v)), *ctr;
	struct dns_records *r;
	struct buf report;
	uint64_t *net_hash;
	int n = 0;

	if (!v)
		abort();
	d->ctrs = v;
	ctr = &d->ctrs[d->n_ctrs++];
	memset(ctr, 0, sizeof(*ctr));
	ctr->cfg = c;
	if (!(ctr->ifs = calloc(c->n_networks ? c->n_networks : 1, sizeof(*ctr->ifs))))
		abort();
	ctrs_reindex(d);
	net_hash = network_hashes(cfg);
	ctr->applied = applied_hash(cfg, net_hash, c);
	free(net_hash);
	if (apply_container(d, cfg, c, ctr, e) < 0) {
		ctr->state = CTR_NET_ERROR;
		ctr->error = strdup(e->msg);
		return -1;
	}
	ctr->state = CTR_NET_READY;
	buf_init(&report);
	apply_policies(d, cfg, d->ctrs, d->n_ctrs, &report, &n);
	if ((r = dns_server_records(d->dns)) && d->dns_base)
		ctr->dns_pub = dns_publish(d, r, ctr, dns_pub_hash(d, ctr), &report, &n);
	buf_free(&report);     /* problem() logged each */
	return 0;
}

void reconcile_remove_one(struct daemon *d, const char *name)
{
	struct ctr *c = daemon_ctr(d, name);
	struct pending_down pd = { .forget = true };
	struct dns_records *r = dns_server_records(d->dns);
	struct buf report;
	int n = 0;

	snprintf(pd.name, sizeof(pd.name), "%s", name);
	buf_init(&report);
	if (c) {
		for (size_t i = 0; i < c->cfg->n_networks && i < ARRAY_SIZE(pd.release); i++)
			snprintf(pd.release[pd.n_release++], STORE_NAME_MAX, "%s",
				 c->cfg->networks[i]);
		if (r && c->dns_pub > DNS_PUB_FAILED)
			dns_unpublish(r, c->cfg);
	}
	container_down(d, &pd, &report, &n);
	if (c) {
		size_t k = (size_t)(c - d->ctrs);

		free(c->ifs);
		free(c->error);
		memmove(c, c + 1, (d->n_ctrs - k - 1) * sizeof(*c));
		d->n_ctrs--;
		ctrs_reindex(d);
		apply_policies(d, d->cfg, d->ctrs, d->n_ctrs, &report, &n);
	}
	buf_free(&report);     /* problem() logged each */
}

/* A pending down finished: the running configuration again (its container
 * gets its new network and starts). */
static void on_converge_timer(struct loop_timer *t)
{
	struct daemon *d = container_of(t, struct daemon, converge);
	struct buf report;

	buf_init(&report);
	if (d->cfg && !d->exiting)
		converge(d, &report, 0);
	buf_free(&report);
}

void daemon_netns_path(const struct daemon *d, const struct cfg_container *c, char *buf,
		       size_t size)
{
	if (c->cni)
		snprintf(buf, size, "%s", c->cni->netns);
	else
		net_netns_path(d->net, c->name, buf, size, NULL);
}

struct ctr *daemon_ctr(const struct daemon *d, const char *name)
{
	return name_index_get(&d->ctrs_by_name, name);
}

/* The supervisor asks what name runs with: the daemon's view of it. */
static const struct ctr_spec *lookup_spec(void *ctx, const char *name)
{
	struct daemon *d = ctx;
	const struct ctr *c = daemon_ctr(d, name);
	struct ctr_spec *sp = &d->spec;

	if (!c || c->cfg->cni)
		return NULL;        /* an attachment's process is the runtime's */
	memset(sp, 0, sizeof(*sp));
	sp->cfg = c->cfg;
	sp->domain = d->cfg->dns.domain;
	if (c->state != CTR_NET_READY)
		sp->blocked = c->error ? c->error : "its network is not set up";
	else if (c->cfg->image)
		images_spec(d, c, sp);     /* the image, or what it waits for */
	net_netns_path(d->net, c->cfg->name, d->spec_netns, sizeof(d->spec_netns), NULL);
	sp->netns = d->spec_netns;
	for (size_t i = 0; i < c->n_ifs; i++) {
		if (c->ifs[i].ip4.family)
			sp->addrs[sp->n_addrs++] = c->ifs[i].ip4;
		if (c->ifs[i].ip6.family)
			sp->addrs[sp->n_addrs++] = c->ifs[i].ip6;
	}
	/* DNS: berth's server on the gateway of the default network, the one
	 * the default route goes through */
	if (c->n_ifs > c->cfg->default_net) {
		const struct cfg_network *n = config_network(d->cfg,
							     c->ifs[c->cfg->default_net].network);

		if (n) {
			sp->nameservers[0] = n->gateway;
			if (n->has_v6)
				sp->nameservers[1] = n->gateway6;
		}
	}
	return sp;
}

static void on_ctr_change(void *ctx, const char *name)
{
	/* started or ended: in or out of its service's names and VIPs */
	reconcile_dns_one(ctx, name);
	services_refresh(ctx, name);
	requests_on_ctr_change(ctx);
}

void reconcile_sup_init(struct daemon *d)
{
	d->state_dir = strdup(d->cfg->daemon.state_dir);
	if (!d->state_dir)
		abort();
	ctr_sup_init(&d->sup, &d->loop, d->store, d->state_dir);
	d->sup.lookup = lookup_spec;
	d->sup.on_gone = on_ctr_gone;
	d->sup.on_change = on_ctr_change;
	d->sup.log = daemon_log_ctx;
	d->sup.on_event = events_on_ctr;
	d->sup.on_reap = health_on_reap;
	d->sup.ctx = d;
	d->converge.cb = on_converge_timer;
}

void reconcile_shutdown(struct daemon *d)
{
	/* services first: the checks health_free ends are no verdicts (with
	 * --keep-network their backends stay as they are); the part itself
	 * goes after the nat it is registered with */
	struct svc *svc = services_free(d);

	health_free(d);             /* probes end before what they look at */
	if (d->dns)
		dns_server_free(d->dns);
	d->dns = NULL;
	if (d->nat && !d->keep_network)
		fw_remove(d->nat);
	nat_close(d->nat, d->keep_network);     /* deletes the table unless --keep-network */
	d->nat = NULL;
	svc_close(svc);
	net_close(d->net);
	d->net = NULL;
	if (d->store)
		store_close(d->store);
	d->store = NULL;
	ctrs_free(d->ctrs, d->n_ctrs);
	name_index_free(&d->ctrs_by_name);
	d->ctrs = NULL;
	d->n_ctrs = 0;
	for (size_t i = 0; i < d->nets_stored.n; i++)
		free(d->nets_stored.v[i].name);
	array_free(&d->nets_stored);
	fw_model_free(&d->fw);
	config_free(d->cfg);
	config_cache_free(d->cfg_cache);
	d->cfg_cache = NULL;
	d->cfg = NULL;
}
