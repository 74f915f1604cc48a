/* services.c - services with virtual IPs (issue 23): which containers back
 * each [service], the VIPs (held in the store, so that they survive a
 * restart and a power cut), the kernel's maps (net/svc.h) and the names DNS
 * gives them. */
#include "runtime/daemon_int.h"
#include "dns/dns.h"
#include "net/svc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * A service's VIPs come from its network's service ranges, which the store
 * keeps as a pool of their own named "~NETWORK" (a network name never
 * starts with '~'), owned by the service's name (never a container's: the
 * config keeps them apart). An explicit `vip =` is a static request, so
 * that no `vip = auto` service is handed it. Like a container's address, a
 * service's VIP is sticky: the same service gets the same VIP back after a
 * restart, a power cut or a reload that changed something else.
 *
 * Backends are the containers on the service's network whose labels its
 * selector matches and which are ready: their network is up, their process
 * runs (an attachment's always does: its runtime runs it) and, with a
 * health check, they are healthy. Every change of readiness (a start, an
 * exit, a health verdict) and every reload recomputes the services; one
 * whose VIPs, ports and backends did not change sends nothing (svc_set
 * compares), so a reload costs the services it touched.
 */

#define POOL_PREFIX "~"


static void pool_name(const char *network, char out[STORE_NAME_MAX])
{
	snprintf(out, STORE_NAME_MAX, POOL_PREFIX "%s", network);
}

static struct svc_run *run_find(struct daemon *d, const char *name)
{
	for (size_t i = 0; i < d->svc_runs.n; i++)
		if (!strcmp(d->svc_runs.v[i].name, name))
			return &d->svc_runs.v[i];
	return NULL;
}

/* The store's pool for cn's service ranges, written when they changed. */
static int ensure_pool(struct daemon *d, const struct cfg_network *cn, struct err *e)
{
	struct store_network sn = { 0 };
	uint64_t h = hash64(HASH64_INIT, &cn->service_range, sizeof(cn->service_range));

	h = hash64(h, &cn->service_range6, sizeof(cn->service_range6));
	pool_name(cn->name, sn.name);
	if (strlen(cn->name) + strlen(POOL_PREFIX) >= STORE_NAME_MAX)
		return err_set(e, ENAMETOOLONG, "network %s: name too long for its service range "
			       "pool (at most %d characters)", cn->name,
			       STORE_NAME_MAX - 1 - (int)strlen(POOL_PREFIX));
	if (services_pool_hash(d, sn.name) == h)
		return 0;
	sn.v4.subnet = cn->service_range;
	sn.v6.subnet = cn->service_range6;
	if (store_network_put(d->store, &sn, e) < 0)
		return err_wrap(e, "network %s: service range pool", cn->name);
	services_pool_record(d, sn.name, h);
	return 0;
}

/* The explicit VIPs of every service of network but s: reservations. */
static size_t reserved_vips(const struct config *cfg, const struct cfg_service *s,
			    struct ip_addr *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < cfg->n_services && n + 2 <= max; i++) {
		const struct cfg_service *o = &cfg->services[i];

		if (o == s || strcmp(o->network, s->network) || o->vip_auto)
			continue;
		if (o->vip4.family)
			out[n++] = o->vip4;
		if (o->vip6.family)
			out[n++] = o->vip6;
	}
	return n;
}

static int vip_get(struct daemon *d, const struct config *cfg, const struct cfg_service *s,
		   int family, const struct ip_addr *want, struct ip_addr *out, struct err *e)
{
	char pool[STORE_NAME_MAX];
	struct ip_addr reserved[64];
	struct ipam_req rq = { .network = pool, .family = family, .owner = s->name,
			       .request = want && want->family ? want : NULL, .renumber = true };

	pool_name(s->network, pool);
	rq.reserved = reserved;
	rq.n_reserved = reserved_vips(cfg, s, reserved, ARRAY_SIZE(reserved));
	if (ipam_request(d->store, &rq, out, e) < 0)
		return err_wrap(e, "%s VIP", family == AF_INET ? "IPv4" : "IPv6");
	return 0;
}

/* s's VIPs: the given ones, or one per family its network has a range of. */
static int vips(struct daemon *d, const struct config *cfg, const struct cfg_service *s,
		const struct cfg_network *cn, struct ip_addr *v4, struct ip_addr *v6, struct err *e)
{
	int ret;

	memset(v4, 0, sizeof(*v4));
	memset(v6, 0, sizeof(*v6));
	if ((ret = ensure_pool(d, cn, e)) < 0)
		return ret;
	if ((s->vip_auto ? cn->service_range.addr.family : s->vip4.family) &&
	    (ret = vip_get(d, cfg, s, AF_INET, &s->vip4, v4, e)) < 0)
		return ret;
	if ((s->vip_auto ? cn->service_range6.addr.family : s->vip6.family) &&
	    (ret = vip_get(d, cfg, s, AF_INET6, &s->vip6, v6, e)) < 0)
		return ret;
	return 0;
}

/* Is c a ready backend of a service (its network up, its process running,
 * healthy if it has a check)? */
static bool ready(const struct daemon *d, const struct ctr *c)
{
	/* health_in_service: running, and healthy when it has a check */
	return c->state == CTR_NET_READY && health_in_service(d, c->cfg);
}

struct backends {
	ARRAY(struct ip_addr) v4, v6;
};

static void backends_of(const struct daemon *d, const struct cfg_service *s, struct backends *b)
{
	for (size_t k = 0; k < d->n_ctrs; k++) {
		const struct ctr *c = &d->ctrs[k];
		const struct cfg_container *cc = c->cfg;

		if (!selector_match(&s->select, cc->labels, cc->n_labels) || !ready(d, c))
			continue;
		for (size_t i = 0; i < c->n_ifs; i++) {
			const struct ctr_if *f = &c->ifs[i];
			struct ip_addr *slot;

			if (strcmp(f->network, s->network))
				continue;
			if (f->ip4.family && (slot = array_push(&b->v4)))
				*slot = f->ip4;
			if (f->ip6.family && (slot = array_push(&b->v6)))
				*slot = f->ip6;
		}
	}
}

static bool container_on_net(const struct cfg_container *c, const char *network)
{
	for (size_t i = 0; i < c->n_networks; i++)
		if (!strcmp(c->networks[i], network))
			return true;
	return false;
}

static uint64_t dns_hash(const struct cfg_service *s, const struct ip_addr *v4,
			 const struct ip_addr *v6)
{
	uint64_t h = hash64(HASH64_INIT, s->name, strlen(s->name) + 1);

	h = hash64(h, s->network, strlen(s->network) + 1);
	h = hash64(h, v4, sizeof(*v4));
	h = hash64(h, v6, sizeof(*v6));
	for (size_t i = 0; i < s->n_ports; i++) {
		h = hash64(h, &s->ports[i].port, sizeof(s->ports[i].port));
		h = hash64(h, &s->ports[i].proto, sizeof(s->ports[i].proto));
	}
	return h ? h : 1;
}

static int dns_set(struct daemon *d, const struct cfg_service *s, struct svc_run *run,
		   struct err *e)
{
	struct dns_records *r = d->dns ? dns_server_records(d->dns) : NULL;
	struct dns_ctr_ports ports[SVC_PORTS_MAX];
	struct dns_service ds = { .name = s->name, .network = s->network, .ports = ports };
	uint64_t h = dns_hash(s, &run->vip4, &run->vip6);

	if (!r || h == run->dns)
		return 0;
	if (run->vip4.family)
		ds.vips[ds.nvips++] = run->vip4;
	if (run->vip6.family)
		ds.vips[ds.nvips++] = run->vip6;
	for (size_t i = 0; i < s->n_ports && i < ARRAY_SIZE(ports); i++)
		ports[ds.nports++] = (struct dns_ctr_ports){ s->ports[i].port, s->ports[i].port,
							     ip_proto_name(s->ports[i].proto) };
	run->dns = 0;
	if (dns_records_set_service(r, &ds, e) < 0)
		return err_wrap(e, "dns");
	run->dns = h;
	return 0;
}

/* One service into the kernel and DNS: VIPs, ready backends, names. */
static int apply_one(struct daemon *d, const struct config *cfg, const struct cfg_service *s,
		     struct err *e)
{
	const struct cfg_network *cn = config_network(cfg, s->network);
	struct svc_port ports[SVC_PORTS_MAX];
	struct svc_publish pub[SVC_PORTS_MAX];
	struct backends b = { 0 };
	struct svc_run *run = run_find(d, s->name);
	struct svc_def def = { .ports = ports, .publish = pub };
	int ret;

	if (!cn)
		return err_set(e, ENOENT, "network %s is not configured", s->network);
	if (s->n_ports > SVC_PORTS_MAX || s->n_publish > SVC_PORTS_MAX)
		return err_set(e, EINVAL, "at most %d ports and published ports", SVC_PORTS_MAX);
	if (!run) {
		if (!(run = array_push(&d->svc_runs)))
			abort();
		if (!(run->name = strdup(s->name)))
			abort();
	}
	run->seen = true;
	if (!run->network || strcmp(run->network, s->network)) {
		char pool[STORE_NAME_MAX];

		run->vips_for = 0;
		if (run->network) {     /* moved to another network: its old VIPs go */
			pool_name(run->network, pool);
			(void)ipam_release(d->store, pool, s->name, NULL);
			free(run->network);
		}
		if (!(run->network = strdup(s->network)))
			abort();
	}
	/* the store only when the definition changed: a reload or a
	 * readiness change costs no IPAM transaction per service */
	if (run->vips_for != s->hash) {
		run->vips_for = 0;
		if ((ret = vips(d, cfg, s, cn, &run->vip4, &run->vip6, e)) < 0)
			return ret;
		run->vips_for = s->hash;
	}
	snprintf(def.name, sizeof(def.name), "%s", s->name);
	def.vip4 = run->vip4;
	def.vip6 = run->vip6;
	for (size_t i = 0; i < s->n_ports; i++)
		ports[def.n_ports++] = (struct svc_port){ s->ports[i].proto, s->ports[i].port,
							  s->ports[i].target };
	for (size_t i = 0; i < s->n_publish; i++) {
		const struct cfg_service_publish *p = &s->publish[i];

		pub[def.n_publish++] = (struct svc_publish){
			.host_ip = p->has_host_ip ? p->host_ip : (struct ip_addr){ 0 },
			.host_port = p->host_port, .proto = p->proto, .port = p->port };
	}
	backends_of(d, s, &b);
	/* a family without a VIP has no use for its backends */
	def.backends4 = b.v4.v;
	def.n_backends4 = def.vip4.family ? b.v4.n : 0;
	def.backends6 = b.v6.v;
	def.n_backends6 = def.vip6.family ? b.v6.n : 0;
	def.pick = s->balance == SVC_BALANCE_ROUND_ROBIN ? SVC_PICK_ROUND_ROBIN : SVC_PICK_RANDOM;
	def.affinity_s = s->affinity_s;
	ret = svc_set(d->svc, &def, e);
	run->n_backends4 = def.n_backends4;
	run->n_backends6 = def.n_backends6;
	array_free(&b.v4);
	array_free(&b.v6);
	if (ret < 0)
		return ret;
	return dns_set(d, s, run, e);
}

/* A service no longer configured: out of the kernel, DNS and the store. */
static void remove_one(struct daemon *d, struct svc_run *run)
{
	struct dns_records *r = d->dns ? dns_server_records(d->dns) : NULL;
	char pool[STORE_NAME_MAX];
	struct err e = { 0 };

	if (svc_del(d->svc, run->name, &e) < 0)
		daemon_log(d, LOG_WARN, "service %s: %s", run->name, e.msg);
	if (r && run->dns)
		dns_records_remove_service(r, run->name);
	if (run->network) {
		pool_name(run->network, pool);
		if (ipam_release(d->store, pool, run->name, &e) < 0)
			daemon_log(d, LOG_WARN, "service %s: %s", run->name, e.msg);
	}
	free(run->name);
	free(run->network);
}

void services_apply(struct daemon *d, bool dns_fresh, struct buf *report, int *n)
{
	const struct config *cfg = d->cfg;
	struct err e = { 0 };

	if (!d->svc)
		return;
	for (size_t i = 0; i < d->svc_runs.n; i++) {
		d->svc_runs.v[i].seen = false;
		if (dns_fresh)          /* a new record set has none of them */
			d->svc_runs.v[i].dns = 0;
	}
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct cfg_service *s = &cfg->services[i];

		err_clear(&e);
		if (apply_one(d, cfg, s, &e) < 0) {
			daemon_log(d, LOG_ERROR, "service %s: %s", s->name, e.msg);
			if (report) {
				buf_printf(report, "service %s: %s\n", s->name, e.msg);
				(*n)++;
			}
		}
	}
	for (size_t i = 0; i < d->svc_runs.n;) {
		if (d->svc_runs.v[i].seen) {
			i++;
			continue;
		}
		remove_one(d, &d->svc_runs.v[i]);
		d->svc_runs.v[i] = d->svc_runs.v[--d->svc_runs.n];
	}
}

const struct cfg_service *services_find(const struct daemon *d, const char *word,
					 const struct ip_addr *addr, struct ip_addr *vip)
{
	const struct config *cfg = d->cfg;

	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct cfg_service *s = &cfg->services[i];
		const struct svc_run *run = NULL;

		for (size_t k = 0; k < d->svc_runs.n && !run; k++)
			if (!strcmp(d->svc_runs.v[k].name, s->name))
				run = &d->svc_runs.v[k];
		if (!run)
			continue;
		if (word && !strcasecmp(word, s->name)) {
			*vip = run->vip4.family ? run->vip4 : run->vip6;
			return s;
		}
		if (addr && (ip_equal(addr, &run->vip4) || ip_equal(addr, &run->vip6))) {
			*vip = *addr;
			return s;
		}
	}
	return NULL;
}

size_t services_backends(const struct daemon *d, const struct cfg_service *s,
			 const char **names, size_t max)
{
	size_t n = 0;

	for (size_t k = 0; k < d->n_ctrs && n < max; k++) {
		const struct ctr *c = &d->ctrs[k];

		if (!selector_match(&s->select, c->cfg->labels, c->cfg->n_labels) || !ready(d, c))
			continue;
		for (size_t i = 0; i < c->n_ifs; i++)
			if (!strcmp(c->ifs[i].network, s->network)) {
				names[n++] = c->cfg->name;
				break;
			}
	}
	return n;
}

void services_refresh(struct daemon *d, const char *name)
{
	const struct cfg_container *c;
	struct err e = { 0 };

	if (!d->cfg || !d->svc || d->exiting || !(c = daemon_container(d, d->cfg, name)))
		return;
	for (size_t i = 0; i < d->cfg->n_services; i++) {
		const struct cfg_service *s = &d->cfg->services[i];

		if (!selector_match(&s->select, c->labels, c->n_labels) || !container_on_net(c, s->network))
			continue;
		err_clear(&e);
		if (apply_one(d, d->cfg, s, &e) < 0)
			daemon_log(d, LOG_ERROR, "service %s: %s", s->name, e.msg);
	}
}

struct svc *services_free(struct daemon *d)
{
	struct svc *s = d->svc;

	d->svc = NULL;              /* services_apply and _refresh do nothing now */
	for (size_t i = 0; i < d->svc_runs.n; i++) {
		free(d->svc_runs.v[i].name);
		free(d->svc_runs.v[i].network);
	}
	array_free(&d->svc_runs);
	for (size_t i = 0; i < d->svc_pools.n; i++)
		free(d->svc_pools.v[i].name);
	array_free(&d->svc_pools);
	return s;
}

uint64_t services_pool_hash(const struct daemon *d, const char *pool)
{
	for (size_t i = 0; i < d->svc_pools.n; i++)
		if (!strcmp(d->svc_pools.v[i].name, pool))
			return d->svc_pools.v[i].hash;
	return 0;
}

void services_pool_record(struct daemon *d, const char *pool, uint64_t hash)
{
	for (size_t i = 0; i < d->svc_pools.n; i++)
		if (!strcmp(d->svc_pools.v[i].name, pool)) {
			d->svc_pools.v[i].hash = hash;
			return;
		}
	struct svc_pool *p = array_push(&d->svc_pools);

	if (!p || !(p->name = strdup(pool)))
		abort();
	p->hash = hash;
}

/* The VIPs of every configured service: live owners for the store's sweep. */
size_t services_names(const struct config *cfg, const char **out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < cfg->n_services && n < max; i++)
		out[n++] = cfg->services[i].name;
	return n;
}

/* `berth service ls`: each service with its VIPs, ports and how many ready
 * backends it has (per family: the larger count). */
int req_service(struct daemon *d, const struct ctl_request *rq, struct buf *out, struct err *e)
{
	static const char *const cols[] = { "NAME", "NETWORK", "VIPS[]", "PORTS[]", "BACKENDS#",
					    "BALANCE" };
	const struct config *cfg = d->cfg;
	struct table t;

	if (rq->argc != 2 || strcmp(rq->argv[1], "ls"))
		return err_set(e, EINVAL, "usage: berth service ls");
	table_init(&t, ARRAY_SIZE(cols), cols);
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct cfg_service *s = &cfg->services[i];
		const struct svc_run *run = run_find(d, s->name);
		char a[IP_STRLEN], vips[2 * IP_STRLEN + 2] = "", nb[24];
		struct buf ports;
		size_t n4 = run ? run->n_backends4 : 0, n6 = run ? run->n_backends6 : 0;

		if (run && run->vip4.family)
			snprintf(vips, sizeof(vips), "%s", ip_format(&run->vip4, a));
		if (run && run->vip6.family)
			snprintf(vips + strlen(vips), sizeof(vips) - strlen(vips), "%s%s",
				 vips[0] ? "," : "", ip_format(&run->vip6, a));
		buf_init(&ports);
		for (size_t k = 0; k < s->n_ports; k++) {
			const struct cfg_service_port *p = &s->ports[k];

			buf_printf(&ports, "%s%u", k ? "," : "", (unsigned)p->port);
			if (p->target != p->port)
				buf_printf(&ports, ":%u", (unsigned)p->target);
			buf_printf(&ports, "/%s", ip_proto_name(p->proto));
		}
		snprintf(nb, sizeof(nb), "%zu", n4 > n6 ? n4 : n6);
		table_add(&t, s->name, s->network, vips, ports.data ? ports.data : "", nb,
			  s->balance == SVC_BALANCE_ROUND_ROBIN ? "round-robin" : "random");
		buf_free(&ports);
	}
	table_render(&t, rq->json, out);
	table_free(&t);
	return 0;
}
