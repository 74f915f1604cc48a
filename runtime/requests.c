/* requests.c - the commands the daemon answers on its control socket: state
 * as aligned tables for people and JSON for programs. */
#include "runtime/daemon_int.h"
#include "dns/dns.h"
#include "net/nat.h"
#include "net/net.h"
#include "store/store.h"
#include "version.h"

#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int daemon_request_reload(struct daemon *d, bool dry_run, struct buf *out, struct err *e);

/* start, stop, restart, state, logs, exec-info: the supervisor's. */
/* An attachment's state: its network's (its process is the runtime's). */
static const char *att_state(const struct ctr *c)
{
	return c->state == CTR_NET_READY ? "attached" : "error";
}

static int req_ctr(struct daemon *d, const struct ctl_request *rq, struct buf *out, struct err *e)
{
	const struct ctr *c = rq->argc > 1 ? daemon_ctr(d, rq->argv[1]) : NULL;

	/* start, stop, logs, exec: a process of ours */
	if (c && c->cfg->cni)
		return err_set(e, EINVAL, "%s is a CNI attachment (container %s): its process is its "
			       "runtime's (podman, containerd, ...), berth keeps its network only",
			       c->cfg->name, c->cfg->cni->id);
	return ctr_request(&d->sup, rq, out, e);
}

/* The container's addresses of one family, comma-separated ("": none). */
static void ctr_addrs(const struct ctr *c, int family, char *buf, size_t size)
{
	char a[IP_STRLEN];
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < c->n_ifs; i++) {
		const struct ip_addr *ip = family == AF_INET ? &c->ifs[i].ip4 : &c->ifs[i].ip6;

		if (ip->family)
			n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "%s%s", n ? "," : "",
					      ip_format(ip, a));
	}
}

static int req_status(struct daemon *d, const struct ctl_request *rq, struct buf *out,
		      struct err *e)
{
	static const char *const cols[] = { "KEY", "VALUE" };
	uint64_t up = (loop_now_ms() - d->started_ms) / 1000;
	int64_t started = (int64_t)time(NULL) - (int64_t)up;
	char v[6][128];
	struct table t;

	(void)e;
	snprintf(v[0], sizeof(v[0]), "%d", (int)getpid());
	cli_duration(v[1], sizeof(v[1]), up);
	config_summary(d->cfg, v[2], sizeof(v[2]));
	if (rq->json) {
		buf_printf(out, "{\"version\":\"%s\",\"commit\":\"%s\",\"pid\":%s,\"started_at\":",
			   BERTH_VERSION, BERTH_COMMIT, v[0]);
		buf_json_time(out, started);
		buf_printf(out, ",\"uptime_seconds\":%llu,\"config\":", (unsigned long long)up);
		buf_json_string(out, d->cfg->source);
		buf_printf(out, ",\"networks\":%zu,\"containers\":%zu,\"policies\":%zu,\"socket\":",
			   d->cfg->n_networks, d->n_ctrs, d->cfg->n_policies);
		buf_json_string(out, d->ctl.path);
		buf_puts(out, ",\"state_dir\":");
		buf_json_string(out, d->cfg->daemon.state_dir);
		buf_puts(out, "}\n");
		return 0;
	}
	table_init(&t, 2, cols);
	table_add(&t, "version", BERTH_VERSION);
	table_add(&t, "commit", BERTH_COMMIT);
	table_add(&t, "pid", v[0]);
	table_add(&t, "uptime", v[1]);
	table_add(&t, "config", d->cfg->source);
	table_add(&t, "loaded", v[2]);
	table_add(&t, "socket", d->ctl.path);
	table_add(&t, "state_dir", d->cfg->daemon.state_dir);
	table_render(&t, false, out);
	table_free(&t);
	return 0;
}

void json_address(struct buf *out, const char *network, const char *ifname,
		  const struct ip_addr *ip, int prefix_len)
{
	char a[IP_STRLEN];

	buf_puts(out, "{\"network\":");
	buf_json_string(out, network);
	buf_puts(out, ",\"interface\":");
	buf_json_string_or_null(out, ifname);
	buf_printf(out, ",\"family\":\"%s\",\"address\":\"%s\",\"prefix_length\":",
		   ip->family == AF_INET6 ? "ipv6" : "ipv4", ip_format(ip, a));
	if (prefix_len >= 0)
		buf_printf(out, "%d}", prefix_len);
	else
		buf_puts(out, "null}");
}

/* "addresses":[...]: one object per address, as ps and inspect give them. */
static void json_addresses(const struct daemon *d, const struct ctr *c, struct buf *out)
{
	bool first = true;

	buf_puts(out, "\"addresses\":[");
	for (size_t i = 0; i < c->n_ifs; i++) {
		const struct cfg_network *n = config_network(d->cfg, c->ifs[i].network);

		for (int v6 = 0; v6 < 2; v6++) {
			const struct ip_addr *ip = v6 ? &c->ifs[i].ip6 : &c->ifs[i].ip4;
			const struct ip_prefix *pfx = n ? (v6 ? &n->subnet6 : &n->subnet) : NULL;

			if (!ip->family)
				continue;
			buf_puts(out, first ? "" : ",");
			first = false;
			json_address(out, c->ifs[i].network, c->ifs[i].ifname, ip,
				     pfx && pfx->addr.family == ip->family ? (int)pfx->len : -1);
		}
	}
	buf_puts(out, "]");
}

/* "networks":["a","b"] */
static void json_networks(const struct cfg_container *c, struct buf *out)
{
	buf_puts(out, "\"networks\":[");
	for (size_t k = 0; k < c->n_networks; k++) {
		buf_puts(out, k ? "," : "");
		buf_json_string(out, c->networks[k]);
	}
	buf_puts(out, "]");
}

/* One container of ps as JSON: what the table says, structured. c is NULL
 * for one no longer configured whose process is still stopping. */
/* ps's HEALTH: NULL without a check or while the process does not run. */
static const char *ps_health(const struct daemon *d, const char *name)
{
	enum health_status hs;

	return health_status_of(d, name, &hs) ? health_status_word(hs) : NULL;
}

static void ps_json(const struct daemon *d, const char *name, const struct ctr *c,
		    const struct ctr_status *st, struct buf *out)
{
	bool cni = c && c->cfg->cni;

	buf_puts(out, out->data[out->len - 1] == '[' ? "{\"name\":" : ",{\"name\":");
	buf_json_string(out, name);
	buf_puts(out, ",\"state\":");
	buf_json_string(out, st->state);
	buf_puts(out, ",\"pid\":");
	if (st->pid)
		buf_printf(out, "%d", st->pid);
	else
		buf_puts(out, "null");
	buf_printf(out, ",\"restarts\":%u,\"started_at\":", st->restarts);
	buf_json_time(out, st->started_at);
	buf_puts(out, ",\"exit_code\":");
	if (st->exit_code >= 0)
		buf_printf(out, "%d", st->exit_code);
	else
		buf_puts(out, "null");
	buf_puts(out, ",\"status\":");
	buf_json_string_or_null(out, st->status);
	buf_puts(out, ",\"health\":");
	buf_json_string_or_null(out, ps_health(d, name));
	buf_puts(out, ",");
	if (c)
		json_networks(c->cfg, out);
	else
		buf_puts(out, "\"networks\":[]");
	buf_puts(out, ",");
	if (c)
		json_addresses(d, c, out);
	else
		buf_puts(out, "\"addresses\":[]");
	buf_puts(out, ",\"error\":");
	buf_json_string_or_null(out, st->error);
	buf_printf(out, ",\"origin\":\"%s\",\"runtime_id\":", cni ? "cni" : "file");
	buf_json_string_or_null(out, cni ? c->cfg->cni->id : NULL);
	buf_puts(out, "}");
}

struct ps_ctx {
	struct daemon *d;
	struct table *t;
	struct buf *json;           /* -o json: the array being written */
};

/* A container no longer configured whose process is still stopping. */
static void ps_removed_row(void *ctx, const char *name)
{
	struct ps_ctx *pc = ctx;
	struct ctr_status st;
	char pid[16], restarts[16];

	if (daemon_ctr(pc->d, name))
		return;
	ctr_status(&pc->d->sup, name, &st);
	if (pc->json) {
		ps_json(pc->d, name, NULL, &st, pc->json);
		return;
	}
	snprintf(pid, sizeof(pid), "%d", st.pid);
	snprintf(restarts, sizeof(restarts), "%u", st.restarts);
	table_add(pc->t, name, st.state, st.pid ? pid : NULL, restarts, st.status, NULL, NULL, NULL,
		  NULL, NULL, "file", NULL);
}

/* A CNI attachment's status: its process is the runtime's, berth knows its
 * network only. */
static struct ctr_status att_status(const struct ctr *c)
{
	struct ctr_status st = { .state = att_state(c), .exit_code = -1,
				 .error = c->error ? c->error : "", .warning = "" };

	snprintf(st.status, sizeof(st.status), "%s", c->cfg->cni->netns);
	return st;
}

static int req_ps(struct daemon *d, const struct ctl_request *rq, struct buf *out, struct err *e)
{
	static const char *const cols[] = { "NAME", "STATE", "PID#", "RESTARTS#", "STATUS",
					    "HEALTH", "NETWORKS[]", "IPV4", "IPV6", "ERROR",
					    "ORIGIN", "RUNTIME ID" };
	struct table t;

	(void)e;
	table_init(&t, 12, cols);
	if (rq->json)
		buf_puts(out, "[");
	for (size_t i = 0; i < d->n_ctrs; i++) {
		const struct ctr *c = &d->ctrs[i];
		char nets[256] = "", v4[256], v6[512], pid[16], restarts[16];
		struct ctr_status st;
		size_t n = 0;

		if (c->cfg->cni)
			st = att_status(c);
		else
			ctr_status(&d->sup, c->cfg->name, &st);
		if (rq->json) {
			ps_json(d, c->cfg->name, c, &st, out);
			continue;
		}
		for (size_t k = 0; k < c->cfg->n_networks; k++)
			n += (size_t)snprintf(nets + n, n < sizeof(nets) ? sizeof(nets) - n : 0, "%s%s",
					      k ? "," : "", c->cfg->networks[k]);
		ctr_addrs(c, AF_INET, v4, sizeof(v4));
		ctr_addrs(c, AF_INET6, v6, sizeof(v6));
		snprintf(pid, sizeof(pid), "%d", st.pid);
		snprintf(restarts, sizeof(restarts), "%u", st.restarts);
		table_add(&t, c->cfg->name, st.state, st.pid ? pid : NULL, restarts, st.status,
			  ps_health(d, c->cfg->name), nets, v4, v6, st.error, c->cfg->cni ? "cni" : "file",
			  c->cfg->cni ? c->cfg->cni->id : NULL);
	}
	ctr_each_stopping(&d->sup, ps_removed_row, &(struct ps_ctx){ d, &t, rq->json ? out : NULL });
	if (rq->json)
		buf_puts(out, "]\n");
	else
		table_render(&t, false, out);
	table_free(&t);
	return 0;
}

/* A published port as JSON, the same object in inspect and ports. */
static void json_port(struct buf *out, const struct store_port *p)
{
	char a[IP_STRLEN];

	buf_puts(out, "{\"host_ip\":");
	buf_json_string_or_null(out, p->host_ip.family ? ip_format(&p->host_ip, a) : NULL);
	buf_printf(out, ",\"host_port\":%u,\"container\":", p->host_port);
	buf_json_string(out, p->container);
	buf_printf(out, ",\"container_port\":%u,\"proto\":\"%s\"}", p->container_port,
		   ip_proto_name(p->proto));
}

static int inspect_port(void *ctx, const struct store_port *p)
{
	struct buf *out = ctx;

	buf_puts(out, out->data[out->len - 1] == '[' ? "" : ",");
	json_port(out, p);
	return 0;
}

static int req_inspect(struct daemon *d, const struct ctl_request *rq, struct buf *out,
		       struct err *e)
{
	const struct ctr *c;
	char path[512];
	size_t start = out->len;
	struct ctr_status st;

	if (rq->argc != 2)
		return err_set(e, EINVAL, "usage: berth inspect NAME");
	c = daemon_ctr(d, rq->argv[1]);
	if (!c)
		return err_set(e, ENOENT, "no container named '%s'", rq->argv[1]);
	/* one JSON document; people get it too, it is the whole truth */
	buf_puts(out, "{\"name\":");
	buf_json_string(out, c->cfg->name);
	buf_puts(out, ",\"file\":");
	buf_json_string(out, c->cfg->file);
	if (c->cfg->cni)
		st = att_status(c);
	else
		ctr_status(&d->sup, c->cfg->name, &st);
	buf_puts(out, ",\"origin\":");
	buf_puts(out, c->cfg->cni ? "\"cni\",\"runtime_id\":" : "\"file\",\"runtime_id\":null");
	if (c->cfg->cni)
		buf_json_string(out, c->cfg->cni->id);
	buf_puts(out, ",\"state\":");
	buf_json_string(out, st.state);
	buf_puts(out, ",\"status\":");
	buf_json_string_or_null(out, st.status);
	buf_puts(out, ",\"error\":");
	buf_json_string_or_null(out, st.error);
	buf_puts(out, ",\"warning\":");
	buf_json_string_or_null(out, st.warning);
	buf_puts(out, ",\"health\":");
	health_inspect(d, c->cfg->name, out);
	buf_puts(out, ",\"pid\":");
	if (st.pid)
		buf_printf(out, "%d", st.pid);
	else
		buf_puts(out, "null");
	buf_printf(out, ",\"restarts\":%u,\"started_at\":", st.restarts);
	buf_json_time(out, st.started_at);
	buf_puts(out, ",\"exit_code\":");
	if (st.exit_code >= 0)
		buf_printf(out, "%d", st.exit_code);
	else
		buf_puts(out, "null");
	buf_printf(out, ",\"restart\":\"%s\",\"init\":%s,\"stop_timeout_seconds\":%u,\"memory\":",
		   c->cfg->restart == RESTART_ALWAYS ? "always" :
		   c->cfg->restart == RESTART_ON_FAILURE ? "on-failure" : "no",
		   c->cfg->init ? "true" : "false", c->cfg->stop_timeout);
	if (c->cfg->memory)
		buf_printf(out, "%llu", (unsigned long long)c->cfg->memory);
	else
		buf_puts(out, "null");
	buf_puts(out, ",\"cpus\":");
	if (c->cfg->cpus_milli)
		buf_printf(out, "%u.%03u", c->cfg->cpus_milli / 1000, c->cfg->cpus_milli % 1000);
	else
		buf_puts(out, "null");
	buf_puts(out, ",\"log\":");
	snprintf(path, sizeof(path), "%s/logs/%s.log", d->cfg->daemon.state_dir, c->cfg->name);
	buf_json_string(out, path);
	buf_puts(out, ",\"env\":[");
	for (size_t i = 0; i < c->cfg->n_env; i++) {
		buf_puts(out, i ? "," : "");
		buf_json_string(out, c->cfg->env[i]);
	}
	buf_puts(out, "]");
	buf_puts(out, ",\"rootfs\":");
	buf_json_string_or_null(out, c->cfg->rootfs);
	buf_puts(out, ",\"image\":");
	images_inspect(d, c->cfg, out);
	buf_puts(out, ",\"command\":[");
	for (size_t i = 0; i < c->cfg->argc; i++) {
		buf_puts(out, i ? "," : "");
		buf_json_string(out, c->cfg->argv[i]);
	}
	buf_puts(out, "],\"labels\":{");
	for (size_t i = 0; i < c->cfg->n_labels; i++) {
		buf_puts(out, i ? "," : "");
		buf_json_string(out, c->cfg->labels[i].key);
		buf_puts(out, ":");
		buf_json_string(out, c->cfg->labels[i].value);
	}
	buf_puts(out, "},\"service\":");
	buf_json_string_or_null(out, c->cfg->service);
	daemon_netns_path(d, c->cfg, path, sizeof(path));
	buf_puts(out, ",\"netns\":");
	buf_json_string(out, path);
	buf_puts(out, ",");
	json_networks(c->cfg, out);
	buf_puts(out, ",");
	json_addresses(d, c, out);
	buf_puts(out, ",\"ports\":[");
	if (store_port_list(d->store, c->cfg->name, inspect_port, out, e) < 0) {
		out->len = start;
		return -1;
	}
	buf_puts(out, "]}\n");
	return 0;
}

static int ip_row(void *ctx, const struct ipam_alloc *a)
{
	char ip[IP_STRLEN];

	table_add(ctx, a->network, ip_format(&a->ip, ip), a->owner);
	return 0;
}

static int req_ip(struct daemon *d, const struct ctl_request *rq, struct buf *out, struct err *e)
{
	static const char *const cols[] = { "NETWORK", "ADDRESS", "OWNER=container" };
	struct table t;
	int ret;

	if (rq->argc > 2 || (rq->argc == 2 && strcmp(rq->argv[1], "ls")))
		return err_set(e, EINVAL, "usage: berth ip ls");
	table_init(&t, 3, cols);
	ret = ipam_list(d->store, NULL, ip_row, &t, e);
	if (ret >= 0)
		table_render(&t, rq->json, out);
	table_free(&t);
	return ret < 0 ? ret : 0;
}

/* A recorded port's counters (nat_counters_read first); zero when it is not
 * published (its container is down). */
static struct nat_stats port_stats(const struct daemon *d, const struct store_port *p)
{
	struct nat_port np = { .host_ip = p->host_ip, .host_port = p->host_port, .proto = p->proto };
	struct nat_stats st = { 0 };

	nat_port_stats(d->nat, &np, &st);
	return st;
}

struct port_row_ctx {
	const struct daemon *d;
	struct table *t;
};

static int port_row(void *ctx, const struct store_port *p)
{
	struct port_row_ctx *pc = ctx;
	struct nat_stats st = port_stats(pc->d, p);
	char a[IP_STRLEN], hp[8], cp[8], pk[24], by[24];

	snprintf(hp, sizeof(hp), "%u", p->host_port);
	snprintf(cp, sizeof(cp), "%u", p->container_port);
	snprintf(pk, sizeof(pk), "%llu", (unsigned long long)st.packets);
	snprintf(by, sizeof(by), "%llu", (unsigned long long)st.bytes);
	table_add(pc->t, p->host_ip.family ? ip_format(&p->host_ip, a) : NULL, hp, p->container, cp,
		  ip_proto_name(p->proto), pk, by);
	return 0;
}

static int req_ports(struct daemon *d, const struct ctl_request *rq, struct buf *out,
		     struct err *e)
{
	static const char *const cols[] = { "HOST IP?*", "HOST PORT#", "CONTAINER",
					    "PORT#=container_port", "PROTO", "PACKETS#", "BYTES#" };
	struct table t;
	struct port_row_ctx pc = { d, &t };
	struct err ce = { 0 };
	int ret;

	(void)rq;
	if (nat_counters_read(d->nat, &ce) < 0)
		daemon_log(d, LOG_WARN, "ports: %s", ce.msg);
	table_init(&t, 7, cols);
	ret = store_port_list(d->store, NULL, port_row, &pc, e);
	if (ret >= 0)
		table_render(&t, rq->json, out);
	table_free(&t);
	return ret < 0 ? ret : 0;
}

/* The names berth answers for: NAME.DOMAIN per container, SERVICE.DOMAIN. */
static void dns_rows(const struct daemon *d, struct table *t, const char *only)
{
	const char *dom = d->cfg->dns.domain;
	char name[300], a[IP_STRLEN];

	for (size_t i = 0; i < d->n_ctrs; i++) {
		const struct ctr *c = &d->ctrs[i];
		const struct cni_origin *o = c->cfg->cni;
		const char *own = ctr_dns_name(c->cfg);
		size_t n_names = 2 + (o ? o->n_aliases : 0);

		/* its name, an attachment's aliases, its service */
		for (size_t pass = 0; pass < n_names; pass++) {
			const char *who = !pass ? own : pass == n_names - 1 ? c->cfg->service :
					  o->aliases[pass - 1];

			if (!who || (pass && own && !strcasecmp(who, own)))
				continue;
			snprintf(name, sizeof(name), "%s.%s", who, dom);
			if (only && strcasecmp(only, who) && strcasecmp(only, name))
				continue;
			for (size_t k = 0; k < c->n_ifs; k++) {
				if (c->ifs[k].ip4.family)
					table_add(t, name, "A", ip_format(&c->ifs[k].ip4, a), c->cfg->name,
						  c->ifs[k].network);
				if (c->ifs[k].ip6.family)
					table_add(t, name, "AAAA", ip_format(&c->ifs[k].ip6, a),
						  c->cfg->name, c->ifs[k].network);
			}
		}
	}
}

static int req_dns(struct daemon *d, const struct ctl_request *rq, struct buf *out,
		   struct err *e)
{
	static const char *const cols[] = { "NAME", "TYPE", "ADDRESS", "CONTAINER", "NETWORK" };
	const char *only = NULL;
	struct table t;

	if (rq->argc == 3 && !strcmp(rq->argv[1], "query"))
		only = rq->argv[2];
	else if (!(rq->argc == 2 && !strcmp(rq->argv[1], "ls")))
		return err_set(e, EINVAL, "usage: berth dns ls | berth dns query NAME");
	if (only) {             /* NAME, NAME.DOMAIN or NAME.DOMAIN. */
		static char q[300];
		size_t n = strlen(only);

		snprintf(q, sizeof(q), "%.*s", (int)(n && only[n - 1] == '.' ? n - 1 : n), only);
		only = q;
	}
	table_init(&t, 5, cols);
	dns_rows(d, &t, only);
	if (only && !t.nrows) {
		table_free(&t);
		return err_set(e, ENOENT, "%s: no such name (NXDOMAIN)", only);
	}
	table_render(&t, rq->json, out);
	table_free(&t);
	return 0;
}

static int req_policy(struct daemon *d, const struct ctl_request *rq, struct buf *out,
		      struct err *e)
{
	static const char *const cols[] = { "NAME", "TYPES[]", "RULES#", "SELECTED#", "FILE" };
	struct table t;

	if (rq->argc >= 2 && !strcmp(rq->argv[1], "why"))
		return req_policy_why(d, rq, out, e);
	if (!(rq->argc == 2 && !strcmp(rq->argv[1], "ls")))
		return err_set(e, EINVAL, "usage: berth policy ls | policy why SRC DST PORT[/PROTO]");
	table_init(&t, 5, cols);
	for (size_t i = 0; i < d->cfg->n_policies; i++) {
		const struct policy *p = &d->cfg->policies[i];
		unsigned types = p->types;
		char nrules[16], nsel[16];
		size_t sel = 0;

		for (size_t k = 0; k < d->n_ctrs; k++)
			sel += selector_match(&p->select, d->ctrs[k].cfg->labels, d->ctrs[k].cfg->n_labels);
		snprintf(nrules, sizeof(nrules), "%zu", p->n_rules);
		snprintf(nsel, sizeof(nsel), "%zu", sel);
		table_add(&t, p->name,
			  types == (POLICY_INGRESS | POLICY_EGRESS) ? "ingress,egress"
			  : types == POLICY_INGRESS ? "ingress" : types == POLICY_EGRESS ? "egress" : NULL,
			  nrules, nsel, p->file);
	}
	table_render(&t, rq->json, out);
	table_free(&t);
	return 0;
}

/* A `reload --wait` whose reply waits until the containers the reload
 * stopped are gone, and those it restarts run again. */
struct reload_wait {
	struct reload_wait *next;
	struct daemon *d;
	struct ctl_reply *reply;
	struct buf body;            /* the reload's own reply (text), sent first */
	struct buf names;           /* "a,b": the containers waited for */
	bool json;                  /* -o json: the reply converted (reload_json) */
};

static void reload_wait_free(struct daemon *d, struct reload_wait *w)
{
	for (struct reload_wait **pp = &d->reload_waits; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	buf_free(&w->body);
	buf_free(&w->names);
	free(w);
}

/* Is name still on its way: stopping, or (still configured) not yet
 * running again? */
static bool reload_pending(const struct daemon *d, const char *name)
{
	struct ctr_status st;

	if (ctr_stopping(&d->sup, name))
		return true;
	if (!daemon_ctr(d, name))
		return ctr_busy(&d->sup, name);
	ctr_status(&d->sup, name, &st);
	return !strcmp(st.state, "created") || !strcmp(st.state, "starting");
}

static bool reload_wait_done(const struct reload_wait *w)
{
	char names[4096], *save = NULL;

	snprintf(names, sizeof(names), "%s", w->names.data ? w->names.data : "");
	for (char *n = strtok_r(names, ",", &save); n; n = strtok_r(NULL, ",", &save))
		if (reload_pending(w->d, n))
			return false;
	return true;
}

/* Append line's comma-separated words as JSON strings ("a,b" or "a, b"). */
static void json_words(struct buf *out, const char *p, size_t len)
{
	const char *end = p + len;
	bool first = true;

	while (p < end) {
		const char *c = memchr(p, ',', (size_t)(end - p));
		const char *stop = c ? c : end;
		char w[256];

		while (p < stop && *p == ' ')
			p++;
		if (stop > p) {
			snprintf(w, sizeof(w), "%.*s", (int)(stop - p), p);
			buf_puts(out, first ? "" : ",");
			buf_json_string(out, w);
			first = false;
		}
		p = c ? c + 1 : end;
	}
}

/* A change line of reconcile_diff ("+ container web", "~ container ab: cmd,
 * ports", "~ dns: upstream", "- remote listener") as
 * {"action":"add|remove|change","kind":..,"name":..|null,"keys":[..]}. */
static void json_change(struct buf *out, const char *line, size_t len)
{
	static const char *const actions[] = { ['+'] = "add", ['-'] = "remove", ['~'] = "change" };
	const char *p = line + 2, *end = line + len, *colon, *sp;
	char word[256];

	buf_printf(out, "{\"action\":\"%s\",\"kind\":", actions[(unsigned char)line[0]]);
	if (!strncmp(p, "remote listener", 15)) {
		/* "+ remote listener on ADDR" */
		buf_puts(out, "\"remote listener\",\"name\":");
		p += 15;
		if (end - p > 4 && !strncmp(p, " on ", 4)) {
			snprintf(word, sizeof(word), "%.*s", (int)(end - p - 4), p + 4);
			buf_json_string(out, word);
		} else {
			buf_puts(out, "null");
		}
		buf_puts(out, ",\"keys\":[]}");
		return;
	}
	colon = memchr(p, ':', (size_t)(end - p));
	sp = memchr(p, ' ', (size_t)((colon ? colon : end) - p));
	snprintf(word, sizeof(word), "%.*s", (int)((sp ? sp : colon ? colon : end) - p), p);
	buf_json_string(out, word);
	buf_puts(out, ",\"name\":");
	if (sp) {
		snprintf(word, sizeof(word), "%.*s", (int)((colon ? colon : end) - sp - 1), sp + 1);
		buf_json_string(out, word);
	} else {
		buf_puts(out, "null");
	}
	buf_puts(out, ",\"keys\":[");
	if (colon)
		json_words(out, colon + 1, (size_t)(end - colon - 1));
	buf_puts(out, "]}");
}

/* The text reply of a reload (daemon_request_reload, then reload --wait's
 * "stopped:" line) as one JSON object:
 * {"applied","dry_run","changes":[..],"warnings":[..],"stopping":[..],
 *  "stopped":[..],"errors":[..]} (errors: problems while applying). */
static void reload_json(const char *text, bool dry_run, struct buf *out)
{
	static const char *const lists[] = { "changes", "warnings", "stopping", "stopped", "errors" };
	size_t stop_len = strlen(RELOAD_STOPPING);

	buf_printf(out, "{\"applied\":%s,\"dry_run\":%s", dry_run ? "false" : "true",
		   dry_run ? "true" : "false");
	for (size_t k = 0; k < ARRAY_SIZE(lists); k++) {
		bool problems = false, first = true;

		buf_printf(out, ",\"%s\":[", lists[k]);
		for (const char *p = text ? text : ""; *p;) {
			size_t len = strcspn(p, "\n");
			const char *line = p;
			char msg[1024];

			p += len + (p[len] == '\n');
			if (!strncmp(line, "problems while applying:", 24)) {
				problems = true;
				continue;
			}
			snprintf(msg, sizeof(msg), "%.*s", (int)len, line);
			if (k == 4 && problems) {
				buf_puts(out, first ? "" : ",");
				buf_json_string(out, msg);
			} else if (problems || !len) {
				continue;
			} else if (k == 0 && len > 2 && strchr("+-~", line[0]) && line[1] == ' ') {
				buf_puts(out, first ? "" : ",");
				json_change(out, line, len);
			} else if (k == 1 && !strncmp(line, "warning: ", 9)) {
				buf_puts(out, first ? "" : ",");
				buf_json_string(out, msg + 9);
			} else if ((k == 2 && !strncmp(line, RELOAD_STOPPING, stop_len)) ||
				   (k == 3 && !strncmp(line, "stopped: ", 9))) {
				/* "stopping: a,b (each gets ...)" */
				const char *names = line + (k == 2 ? stop_len : 9);
				size_t n = strcspn(names, " \n");

				json_words(out, names, n);
				first = !n;
				continue;
			} else {
				continue;
			}
			first = false;
		}
		buf_puts(out, "]");
	}
	buf_puts(out, "}\n");
}

void requests_on_ctr_change(struct daemon *d)
{
	struct reload_wait *w = d->reload_waits, *next;

	for (; w; w = next) {
		next = w->next;
		if (!reload_wait_done(w))
			continue;
		buf_printf(&w->body, "stopped: %s\n", w->names.data);
		if (w->json) {
			struct buf j;

			buf_init(&j);
			reload_json(w->body.data, false, &j);
			ctl_reply_finish(w->reply, 0, &j, NULL);
			buf_free(&j);
		} else {
			ctl_reply_finish(w->reply, 0, &w->body, NULL);
		}
		reload_wait_free(d, w);
	}
}

static void reload_wait_cancel(struct ctl_reply *r, void *arg)
{
	struct reload_wait *w = arg;

	ctl_reply_finish(r, 0, NULL, NULL);     /* the client left: only frees */
	reload_wait_free(w->d, w);
}

static void name_list_add(void *ctx, const char *name)
{
	struct buf *b = ctx;

	buf_printf(b, "%s%s", b->len ? "," : "", name);
}

void reload_say_stopping(struct daemon *d, struct buf *out)
{
	struct buf names;

	buf_init(&names);
	if (ctr_each_stopping(&d->sup, name_list_add, &names))
		buf_printf(out, RELOAD_STOPPING "%s (each gets its stop_timeout, then SIGKILL; "
			   "`berth reload --wait` waits)\n", names.data);
	buf_free(&names);
}

void requests_close(struct daemon *d)
{
	struct err e = { 0 };

	err_set(&e, ESHUTDOWN, "the daemon is stopping");
	while (d->reload_waits) {
		ctl_reply_finish(d->reload_waits->reply, -1, NULL, &e);
		reload_wait_free(d, d->reload_waits);
	}
}

static int req_reload(struct daemon *d, const struct ctl_request *rq, struct buf *out,
		      struct err *e)
{
	bool dry = false, wait = false;
	struct reload_wait *w;
	struct buf text;
	int ret;

	for (int i = 1; i < rq->argc; i++) {
		if (!strcmp(rq->argv[i], "--dry-run") && !dry)
			dry = true;
		else if (!strcmp(rq->argv[i], "--wait") && !wait)
			wait = true;
		else
			return err_set(e, EINVAL, "usage: berth reload [--dry-run] [--wait]");
	}
	/* the text reply is the record; JSON is made from it */
	buf_init(&text);
	ret = daemon_request_reload(d, dry, &text, e);
	if (ret < 0 || dry || !wait)
		goto reply;
	w = calloc(1, sizeof(*w));
	if (!w) {
		buf_free(&text);
		return err_set(e, ENOMEM, "reload --wait");
	}
	w->d = d;
	w->json = rq->json;
	buf_init(&w->body);
	buf_init(&w->names);
	ctr_each_stopping(&d->sup, name_list_add, &w->names);
	/* a synchronous caller (no connection to keep) gets the reply now */
	if (!w->names.len || !(w->reply = ctl_defer(rq, reload_wait_cancel, w))) {
		buf_free(&w->names);
		free(w);
		goto reply;
	}
	buf_append(&w->body, text.data ? text.data : "", text.len);
	buf_free(&text);
	w->next = d->reload_waits;
	d->reload_waits = w;
	return CTL_PENDING;
reply:
	/* a rejected reload's details (its errors, one per line) stay lines:
	 * the CLI prints them as the error's details */
	if (rq->json && ret >= 0)
		reload_json(text.data, dry, out);
	else
		buf_append(out, text.data ? text.data : "", text.len);
	buf_free(&text);
	return ret;
}

struct metric_ctx {
	const struct daemon *d;
	struct buf *out;
	bool bytes;
};

static int metric_port(void *ctx, const struct store_port *p)
{
	struct metric_ctx *mc = ctx;
	struct nat_stats st = port_stats(mc->d, p);
	char a[IP_STRLEN];

	buf_printf(mc->out, "berth_nat_%s_total{container=", mc->bytes ? "bytes" : "packets");
	buf_json_string(mc->out, p->container);
	buf_printf(mc->out, ",host_ip=\"%s\",host_port=\"%u\",proto=\"%s\"} %llu\n",
		   p->host_ip.family ? ip_format(&p->host_ip, a) : "", p->host_port,
		   ip_proto_name(p->proto),
		   (unsigned long long)(mc->bytes ? st.bytes : st.packets));
	return 0;
}

/* The NAT counters, one series per published port. */
static void metrics_nat(struct daemon *d, struct buf *out)
{
	struct metric_ctx mc = { d, out, false };
	struct err e = { 0 };

	if (nat_counters_read(d->nat, &e) < 0)
		daemon_log(d, LOG_WARN, "metrics: %s", e.msg);
	buf_puts(out, "# HELP berth_nat_packets_total Packets through a published port (both directions).\n"
		      "# TYPE berth_nat_packets_total counter\n");
	store_port_list(d->store, NULL, metric_port, &mc, &e);
	mc.bytes = true;
	buf_puts(out, "# HELP berth_nat_bytes_total Bytes through a published port (both directions).\n"
		      "# TYPE berth_nat_bytes_total counter\n");
	store_port_list(d->store, NULL, metric_port, &mc, &e);
	buf_puts(out, "# HELP berth_nat_restores_total Times table inet berth was restored after another program changed it.\n"
		      "# TYPE berth_nat_restores_total counter\n");
	buf_printf(out, "berth_nat_restores_total %llu\n", (unsigned long long)nat_restores(d->nat));
}

static int metric_port_json(void *ctx, const struct store_port *p)
{
	struct metric_ctx *mc = ctx;
	struct nat_stats st = port_stats(mc->d, p);
	size_t len = mc->out->len;

	buf_puts(mc->out, mc->out->data[len - 1] == '[' ? "" : ",");
	json_port(mc->out, p);
	/* json_port's object, with the counters inside it */
	mc->out->len--;
	buf_printf(mc->out, ",\"packets_total\":%llu,\"bytes_total\":%llu}",
		   (unsigned long long)st.packets, (unsigned long long)st.bytes);
	return 0;
}

/* `metrics -o json`: the same numbers as the Prometheus text, one object;
 * a series' labels become keys ("containers":{"running":2,...}). */
/* A gauge per container with a check and state: Prometheus lines, or
 * JSON members "NAME":"healthy"|...|null. */
static void metrics_health(const struct daemon *d, bool json, struct buf *out)
{
	bool first = true;

	for (size_t i = 0; i < d->n_ctrs; i++) {
		const struct cfg_container *c = d->ctrs[i].cfg;
		enum health_status hs;
		bool on;

		if (c->cni || c->health.kind == HEALTH_NONE)
			continue;
		on = health_status_of(d, c->name, &hs);
		if (json) {
			buf_puts(out, first ? "" : ",");
			buf_json_string(out, c->name);
			buf_puts(out, ":");
			buf_json_string_or_null(out, on ? health_status_word(hs) : NULL);
			first = false;
			continue;
		}
		for (int k = HS_STARTING; k <= HS_UNHEALTHY; k++)
			buf_printf(out, "berth_container_health{container=\"%s\",state=\"%s\"} %d\n",
				   c->name, health_status_word((enum health_status)k),
				   on && (int)hs == k);
	}
}

static void metrics_json(struct daemon *d, const char *const *states, const size_t *count,
			 size_t n_states, const size_t *atts, unsigned long long restarts,
			 const struct dns_stats *st, struct buf *out)
{
	struct metric_ctx mc = { d, out, false };
	struct err e = { 0 };

	buf_puts(out, "{\"containers\":{");
	for (size_t k = 0; k < n_states; k++)
		buf_printf(out, "%s\"%s\":%zu", k ? "," : "", states[k], count[k]);
	buf_puts(out, "},\"container_health\":{");
	metrics_health(d, true, out);
	buf_printf(out, "},\"cni_attachments\":{\"attached\":%zu,\"error\":%zu},"
		   "\"container_restarts_total\":%llu,", atts[0], atts[1], restarts);
	buf_printf(out, "\"dns_queries_total\":{\"noerror\":%llu,\"nxdomain\":%llu,"
		   "\"servfail\":%llu,\"formerr\":%llu,\"notimp\":%llu},"
		   "\"dns_cache_hits_total\":%llu,\"dns_forwarded_total\":%llu,",
		   (unsigned long long)st->noerror, (unsigned long long)st->nxdomain,
		   (unsigned long long)st->servfail, (unsigned long long)st->formerr,
		   (unsigned long long)st->notimp, (unsigned long long)st->cache_hits,
		   (unsigned long long)st->forwarded);
	buf_printf(out, "\"reconcile_duration_seconds\":%.6f,"
		   "\"reloads_total\":{\"applied\":%llu,\"rejected\":%llu},"
		   "\"nat_restores_total\":%llu,\"nat_ports\":[",
		   (double)d->last_reconcile_us / 1e6, (unsigned long long)d->reloads,
		   (unsigned long long)d->reload_failures, (unsigned long long)nat_restores(d->nat));
	if (nat_counters_read(d->nat, &e) < 0)
		daemon_log(d, LOG_WARN, "metrics: %s", e.msg);
	store_port_list(d->store, NULL, metric_port_json, &mc, &e);
	buf_puts(out, "]}\n");
}

static int req_metrics(struct daemon *d, const struct ctl_request *rq, struct buf *out,
		       struct err *e)
{
	static const char *const states[] = { "created", "starting", "running", "stopping",
					      "backoff", "exited", "stopped", "error", "pulling" };
	size_t count[ARRAY_SIZE(states)] = { 0 }, atts[2] = { 0 };
	unsigned long long restarts = 0;
	struct dns_stats st;

	(void)e;
	for (size_t i = 0; i < d->n_ctrs; i++) {
		struct ctr_status cs;

		if (d->ctrs[i].cfg->cni) {
			atts[d->ctrs[i].state != CTR_NET_READY]++;
			continue;
		}
		ctr_status(&d->sup, d->ctrs[i].cfg->name, &cs);
		restarts += cs.restarts;
		for (size_t k = 0; k < ARRAY_SIZE(states); k++)
			count[k] += !strcmp(cs.state, states[k]);
	}
	dns_server_stats(d->dns, &st);
	if (rq->json) {
		metrics_json(d, states, count, ARRAY_SIZE(states), atts, restarts, &st, out);
		return 0;
	}
	buf_puts(out, "# HELP berth_containers Configured containers by state.\n"
		      "# TYPE berth_containers gauge\n");
	for (size_t k = 0; k < ARRAY_SIZE(states); k++)
		buf_printf(out, "berth_containers{state=\"%s\"} %zu\n", states[k], count[k]);
	buf_puts(out, "# HELP berth_container_health Containers with a health check, by state "
		      "(1: in it; all 0 while not running).\n# TYPE berth_container_health gauge\n");
	metrics_health(d, false, out);
	buf_puts(out, "# HELP berth_cni_attachments Runtimes' containers on berth's networks (CNI).\n"
		      "# TYPE berth_cni_attachments gauge\n");
	buf_printf(out, "berth_cni_attachments{state=\"attached\"} %zu\n"
		   "berth_cni_attachments{state=\"error\"} %zu\n", atts[0], atts[1]);
	buf_puts(out, "# HELP berth_container_restarts_total Restarts by the restart policy.\n"
		      "# TYPE berth_container_restarts_total counter\n");
	buf_printf(out, "berth_container_restarts_total %llu\n", restarts);
	buf_puts(out, "# HELP berth_dns_queries_total DNS queries by result.\n"
		      "# TYPE berth_dns_queries_total counter\n");
	buf_printf(out, "berth_dns_queries_total{result=\"noerror\"} %llu\n"
		   "berth_dns_queries_total{result=\"nxdomain\"} %llu\n"
		   "berth_dns_queries_total{result=\"servfail\"} %llu\n"
		   "berth_dns_queries_total{result=\"formerr\"} %llu\n"
		   "berth_dns_queries_total{result=\"notimp\"} %llu\n",
		   (unsigned long long)st.noerror, (unsigned long long)st.nxdomain,
		   (unsigned long long)st.servfail, (unsigned long long)st.formerr,
		   (unsigned long long)st.notimp);
	buf_puts(out, "# HELP berth_dns_cache_hits_total Forwarded names answered from the cache.\n"
		      "# TYPE berth_dns_cache_hits_total counter\n");
	buf_printf(out, "berth_dns_cache_hits_total %llu\n", (unsigned long long)st.cache_hits);
	buf_puts(out, "# HELP berth_dns_forwarded_total Queries sent upstream.\n"
		      "# TYPE berth_dns_forwarded_total counter\n");
	buf_printf(out, "berth_dns_forwarded_total %llu\n", (unsigned long long)st.forwarded);
	buf_puts(out, "# HELP berth_reconcile_duration_seconds Duration of the last reconcile.\n"
		      "# TYPE berth_reconcile_duration_seconds gauge\n");
	buf_printf(out, "berth_reconcile_duration_seconds %.6f\n", (double)d->last_reconcile_us / 1e6);
	buf_puts(out, "# HELP berth_reloads_total Configuration reloads applied and rejected.\n"
		      "# TYPE berth_reloads_total counter\n");
	buf_printf(out, "berth_reloads_total{result=\"applied\"} %llu\n"
		   "berth_reloads_total{result=\"rejected\"} %llu\n",
		   (unsigned long long)d->reloads, (unsigned long long)d->reload_failures);
	metrics_nat(d, out);
	return 0;
}

/* Every command the daemon answers, and whether it changes something: a
 * [remote] read_only client may run only the rows that do not (and no
 * command missing here). */
static const struct ctl_command daemon_commands[] = {
	/* name          handler             mutates */
	{ "status",      req_status,         false },
	{ "ps",          req_ps,             false },
	{ "inspect",     req_inspect,        false },
	{ "ip",          req_ip,             false },
	{ "ports",       req_ports,          false },
	{ "dns",         req_dns,            false },
	{ "policy",      req_policy,         false },      /* ls, why */
	{ "metrics",     req_metrics,        false },
	{ "events",      req_events,         false },
	{ "network",     req_network,        false },      /* ls, inspect */
	{ "service",     req_service,        false },      /* ls (services.c) */
	{ "port",        req_port,           false },
	{ "stats",       req_stats,          false },
	{ "logs",        req_ctr,            false },
	{ "reload",      req_reload,         true },
	{ "start",       req_ctr,            true },
	{ "stop",        req_ctr,            true },
	{ "restart",     req_ctr,            true },
	{ "kill",        req_ctr,            true },
	{ "run",         req_run,            true },      /* req_run.c */
	{ "rm",          req_remove,         true },
	/* behind `berth start`, `stop` and `restart` (waiting) and `exec`,
	 * which a read-only client may not run either */
	{ "state",       req_ctr,            true },
	{ "exec-info",   req_ctr,            true },
	/* the CNI plugin (runtime/cni): add, del, check, ls, status */
	{ "cni",         req_cni,            true },
	/* images (images.c): reads first, then the rest (pull, import, rm,
	 * prune), which change the store */
	{ "image ls",    req_image,          false },
	{ "image inspect", req_image,        false },
	{ "image status", req_image,         false },
	{ "image",       req_image,          true },
};

int daemon_on_request(void *ctx, const struct ctl_request *rq, struct buf *out, struct err *e)
{
	return ctl_dispatch(daemon_commands, ARRAY_SIZE(daemon_commands), ctx, rq, out, e);
}
