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

/* The container's addresses of one family, comma-separated. */
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
	if (!buf[0])
		snprintf(buf, size, "-");
}

static int req_status(struct daemon *d, const struct ctl_request *rq, struct buf *out,
		      struct err *e)
{
	static const char *const cols[] = { "KEY", "VALUE" };
	char v[6][128];
	struct table t;

	(void)e;
	snprintf(v[0], sizeof(v[0]), "%d", (int)getpid());
	snprintf(v[1], sizeof(v[1]), "%llu", (unsigned long long)((loop_now_ms() - d->started_ms) / 1000));
	config_summary(d->cfg, v[2], sizeof(v[2]));
	snprintf(v[3], sizeof(v[3]), "%zu", d->n_ctrs);
	if (rq->json) {
		buf_printf(out, "{\"version\":\"%s\",\"commit\":\"%s\",\"pid\":%s,\"uptime_seconds\":%s,"
			   "\"containers\":%s,\"config\":", BERTH_VERSION, BERTH_COMMIT, v[0], v[1], v[3]);
		buf_json_string(out, d->cfg->source);
		buf_puts(out, ",\"socket\":");
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

struct ps_ctx {
	struct daemon *d;
	struct table *t;
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
	snprintf(pid, sizeof(pid), "%d", st.pid);
	snprintf(restarts, sizeof(restarts), "%u", st.restarts);
	table_add(pc->t, name, st.state, st.pid ? pid : NULL, restarts, st.status, NULL, NULL, NULL,
		  NULL, "file", NULL);
}

static int req_ps(struct daemon *d, const struct ctl_request *rq, struct buf *out, struct err *e)
{
	static const char *const cols[] = { "NAME", "STATE", "PID#", "RESTARTS#", "STATUS",
					    "NETWORKS", "IPV4", "IPV6", "ERROR", "ORIGIN",
					    "RUNTIME ID" };
	struct table t;

	(void)e;
	table_init(&t, 11, cols);
	for (size_t i = 0; i < d->n_ctrs; i++) {
		const struct ctr *c = &d->ctrs[i];
		char nets[256] = "", v4[256], v6[512], pid[16], restarts[16];
		struct ctr_status st;
		size_t n = 0;

		for (size_t k = 0; k < c->cfg->n_networks; k++)
			n += (size_t)snprintf(nets + n, n < sizeof(nets) ? sizeof(nets) - n : 0, "%s%s",
					      k ? "," : "", c->cfg->networks[k]);
		ctr_addrs(c, AF_INET, v4, sizeof(v4));
		ctr_addrs(c, AF_INET6, v6, sizeof(v6));
		if (c->cfg->cni) {
			/* its process is the runtime's: berth knows its network only */
			table_add(&t, c->cfg->name, att_state(c),
				  NULL, "0", c->cfg->cni->netns, nets, v4, v6, c->error, "cni",
				  c->cfg->cni->id);
			continue;
		}
		ctr_status(&d->sup, c->cfg->name, &st);
		snprintf(pid, sizeof(pid), "%d", st.pid);
		snprintf(restarts, sizeof(restarts), "%u", st.restarts);
		table_add(&t, c->cfg->name, st.state, st.pid ? pid : NULL, restarts, st.status, nets,
			  v4, v6, st.error[0] ? st.error : NULL, "file", NULL);
	}
	ctr_each_stopping(&d->sup, ps_removed_row, &(struct ps_ctx){ d, &t });
	table_render(&t, rq->json, out);
	table_free(&t);
	return 0;
}

static int inspect_port(void *ctx, const struct store_port *p)
{
	struct buf *out = ctx;
	char a[IP_STRLEN];

	buf_printf(out, "%s{\"host_ip\":\"%s\",\"host_port\":%u,\"container_port\":%u,\"proto\":\"%s\"}",
		   out->data[out->len - 1] == '[' ? "" : ",",
		   p->host_ip.family ? ip_format(&p->host_ip, a) : "", p->host_port,
		   p->container_port, ip_proto_name(p->proto));
	return 0;
}

static int req_inspect(struct daemon *d, const struct ctl_request *rq, struct buf *out,
		       struct err *e)
{
	const struct ctr *c;
	char a[IP_STRLEN], path[512];
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
	ctr_status(&d->sup, c->cfg->name, &st);
	if (c->cfg->cni) {
		/* its process is the runtime's: the state is its network's */
		st = (struct ctr_status){ .state = att_state(c),
					  .exit_code = -1, .error = c->error ? c->error : "",
					  .warning = "" };
	}
	buf_puts(out, ",\"origin\":");
	buf_puts(out, c->cfg->cni ? "\"cni\",\"runtime_id\":" : "\"file\",\"runtime_id\":null");
	if (c->cfg->cni)
		buf_json_string(out, c->cfg->cni->id);
	buf_puts(out, ",\"state\":");
	buf_json_string(out, st.state);
	buf_puts(out, ",\"status\":");
	buf_json_string(out, st.status);
	buf_puts(out, ",\"error\":");
	buf_json_string(out, st.error);
	buf_puts(out, ",\"warning\":");
	buf_json_string(out, st.warning);
	buf_printf(out, ",\"pid\":%d,\"restarts\":%u,\"started_at\":%lld,\"exit_code\":",
		   st.pid, st.restarts, (long long)st.started_at);
	if (st.exit_code >= 0)
		buf_printf(out, "%d", st.exit_code);
	else
		buf_puts(out, "null");
	buf_printf(out, ",\"restart\":\"%s\",\"init\":%s,\"stop_timeout\":%u,\"memory\":%llu,"
		   "\"cpus\":%u.%03u,\"log\":", c->cfg->restart == RESTART_ALWAYS ? "always" :
		   c->cfg->restart == RESTART_ON_FAILURE ? "on-failure" : "no",
		   c->cfg->init ? "true" : "false", c->cfg->stop_timeout,
		   (unsigned long long)c->cfg->memory, c->cfg->cpus_milli / 1000,
		   c->cfg->cpus_milli % 1000);
	snprintf(path, sizeof(path), "%s/logs/%s.log", d->cfg->daemon.state_dir, c->cfg->name);
	buf_json_string(out, path);
	buf_puts(out, ",\"env\":[");
	for (size_t i = 0; i < c->cfg->n_env; i++) {
		buf_puts(out, i ? "," : "");
		buf_json_string(out, c->cfg->env[i]);
	}
	buf_puts(out, "]");
	buf_puts(out, ",\"rootfs\":");
	if (c->cfg->rootfs)
		buf_json_string(out, c->cfg->rootfs);
	else
		buf_puts(out, "null");
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
	if (c->cfg->service)
		buf_json_string(out, c->cfg->service);
	else
		buf_puts(out, "null");
	daemon_netns_path(d, c->cfg, path, sizeof(path));
	buf_puts(out, ",\"netns\":");
	buf_json_string(out, path);
	buf_puts(out, ",\"interfaces\":[");
	for (size_t i = 0; i < c->n_ifs; i++) {
		buf_printf(out, "%s{\"network\":", i ? "," : "");
		buf_json_string(out, c->ifs[i].network);
		buf_printf(out, ",\"ifname\":\"%s\",\"ipv4\":", c->ifs[i].ifname);
		if (c->ifs[i].ip4.family)
			buf_printf(out, "\"%s\"", ip_format(&c->ifs[i].ip4, a));
		else
			buf_puts(out, "null");
		buf_puts(out, ",\"ipv6\":");
		if (c->ifs[i].ip6.family)
			buf_printf(out, "\"%s\"", ip_format(&c->ifs[i].ip6, a));
		else
			buf_puts(out, "null");
		buf_puts(out, "}");
	}
	buf_puts(out, "],\"ports\":[");
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
	static const char *const cols[] = { "NETWORK", "ADDRESS", "OWNER" };
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
	table_add(pc->t, p->host_ip.family ? ip_format(&p->host_ip, a) : "*", hp, p->container, cp,
		  ip_proto_name(p->proto), pk, by);
	return 0;
}

static int req_ports(struct daemon *d, const struct ctl_request *rq, struct buf *out,
		     struct err *e)
{
	static const char *const cols[] = { "HOST IP", "HOST PORT#", "CONTAINER", "PORT#", "PROTO",
					    "PACKETS#", "BYTES#" };
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
	static const char *const cols[] = { "NAME", "TYPES", "RULES#", "SELECTED#", "FILE" };
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
			  : types == POLICY_INGRESS ? "ingress" : types == POLICY_EGRESS ? "egress" : "-",
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
	struct buf body;            /* the reload's own reply, sent first */
	struct buf names;           /* "a,b": the containers waited for */
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

void requests_on_ctr_change(struct daemon *d)
{
	struct reload_wait *w = d->reload_waits, *next;

	for (; w; w = next) {
		next = w->next;
		if (!reload_wait_done(w))
			continue;
		buf_printf(&w->body, "stopped: %s\n", w->names.data);
		ctl_reply_finish(w->reply, 0, &w->body, NULL);
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
	int ret;

	for (int i = 1; i < rq->argc; i++) {
		if (!strcmp(rq->argv[i], "--dry-run") && !dry)
			dry = true;
		else if (!strcmp(rq->argv[i], "--wait") && !wait)
			wait = true;
		else
			return err_set(e, EINVAL, "usage: berth reload [--dry-run] [--wait]");
	}
	ret = daemon_request_reload(d, dry, out, e);
	if (ret < 0 || dry || !wait)
		return ret;
	w = calloc(1, sizeof(*w));
	if (!w)
		return err_set(e, ENOMEM, "reload --wait");
	w->d = d;
	buf_init(&w->body);
	buf_init(&w->names);
	ctr_each_stopping(&d->sup, name_list_add, &w->names);
	/* a synchronous caller (no connection to keep) gets the reply now */
	if (!w->names.len || !(w->reply = ctl_defer(rq, reload_wait_cancel, w))) {
		buf_free(&w->names);
		free(w);
		return ret;
	}
	buf_append(&w->body, out->data ? out->data : "", out->len);
	w->next = d->reload_waits;
	d->reload_waits = w;
	return CTL_PENDING;
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

static int req_metrics(struct daemon *d, const struct ctl_request *rq, struct buf *out,
		       struct err *e)
{
	static const char *const states[] = { "created", "starting", "running", "stopping",
					      "backoff", "exited", "stopped", "error", "pulling" };
	size_t count[ARRAY_SIZE(states)] = { 0 }, atts[2] = { 0 };
	unsigned long long restarts = 0;
	struct dns_stats st;

	(void)rq, (void)e;
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
	buf_puts(out, "# HELP berth_containers Configured containers by state.\n"
		      "# TYPE berth_containers gauge\n");
	for (size_t k = 0; k < ARRAY_SIZE(states); k++)
		buf_printf(out, "berth_containers{state=\"%s\"} %zu\n", states[k], count[k]);
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
	{ "port",        req_port,           false },
	{ "stats",       req_stats,          false },
	{ "logs",        req_ctr,            false },
	{ "reload",      req_reload,         true },
	{ "start",       req_ctr,            true },
	{ "stop",        req_ctr,            true },
	{ "restart",     req_ctr,            true },
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
