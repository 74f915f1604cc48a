/* plugin.c - the CNI plugin front end: environment + netconf in, one control
 * request to the daemon, result or error JSON out.
 *
 * Requests (words as ctl_call sends them; the daemon does all the work):
 *   ADD    cni add NETWORK ID IFNAME NETNS [name=N] [alias=A]* [label=K=V]*
 *                  [port=[HOST_IP:]HOST_PORT:CONTAINER_PORT/PROTO]* [ip=ADDR]* [mac=MAC]
 *   DEL    cni del NETWORK ID IFNAME [NETNS]
 *   CHECK  cni check NETWORK ID IFNAME NETNS
 *   GC     cni ls NETWORK, then cni del NETWORK ID IFNAME per stale attachment
 *   STATUS cni status NETWORK
 * A reply to add/check is "ok" and lines: interface IFNAME MAC, host HOSTIF
 * MAC, bridge BRIDGE MAC, address CIDR GATEWAY, route DST GW, dns SERVER,
 * domain DOMAIN; to ls, "ID IFNAME" per attachment. NETWORK is the netconf's
 * "network", else its "name"; the socket its "socket", else $BERTH_SOCKET,
 * else /run/berth/berth.sock.
 *
 * A prevResult given to ADD (berth chained after another plugin) is not
 * passed on: berth makes the interface and its addresses, and its result
 * replaces what came before, as the bridge plugin's does.
 */
#include "runtime/cni/cni.h"
#include "runtime/ctl/ctl.h"
#include "lib/lib.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define CNI_DEFAULT_SOCKET "/run/berth/berth.sock"
#define CNI_LATEST "1.1.0"
#define CNI_FIELD_MAX 256           /* names, addresses, label parts */

static const struct {
	const char *v;
	int rank;                   /* orders versions; legacy results below 100 */
} cni_versions[] = {
	{ "0.3.0", 30 }, { "0.3.1", 31 }, { "0.4.0", 40 }, { "1.0.0", 100 }, { "1.1.0", 110 },
};
#define CNI_LEGACY_BELOW 100

struct cni {
	const char *cmd;
	const char *version;        /* for the output: the netconf's, or the latest */
	int rank;
	const char *id, *ifname, *netns, *args;
	struct json_doc doc;
	const struct json_tok *conf;
	char name[CNI_FIELD_MAX], network[CNI_FIELD_MAX], socket[108];
	ARRAY(char *) words;
	int code;                   /* of the error, when a step returned -1 */
	struct err e;
	struct buf details;
};

static int fail(struct cni *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct cni *c, int code, const char *fmt, ...)
{
	va_list ap;

	c->code = code;
	c->e.code = EINVAL;
	va_start(ap, fmt);
	vsnprintf(c->e.msg, sizeof(c->e.msg), fmt, ap);
	va_end(ap);
	return -1;
}

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* ---- words of the request --------------------------------------------- */

static void word(struct cni *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void word(struct cni *c, const char *fmt, ...)
{
	char **slot = array_push(&c->words);
	va_list ap;
	int n = -1;

	if (slot) {
		va_start(ap, fmt);
		n = vasprintf(slot, fmt, ap);
		va_end(ap);
	}
	if (n < 0) {                /* OOM is fatal, as in buf (lib.h) */
		fputs("berth: out of memory\n", stderr);
		abort();
	}
}

static void words_free(struct cni *c)
{
	for (size_t i = 0; i < c->words.n; i++)
		free(c->words.v[i]);
	c->words.n = 0;
}

/* ---- the daemon ---------------------------------------------------------- */

/*
 * Send words to the daemon. Returns 0 with the reply's body in body, or -1
 * with c->code set: the daemon's "cni-code N" (its other detail lines go to
 * c->details), else daemon_code; unreachable_code when it cannot be reached.
 */
static int call(struct cni *c, struct buf *body, int daemon_code, int unreachable_code)
{
	struct err e = { 0 };
	int ret;

	if (c->words.n > CTL_MAX_ARGS)
		return fail(c, CNI_ERR_INVALID_NETCONF, "the request has %zu words, more than the "
			    "%d the control socket takes: fewer aliases, labels, ports or addresses",
			    c->words.n, CTL_MAX_ARGS);
	buf_reset(body);
	ret = ctl_call(c->socket, false, (int)c->words.n, c->words.v, body, &e);
	if (ret == 0)
		return 0;
	if (ret == -E2BIG)
		return fail(c, CNI_ERR_INVALID_NETCONF, "the request is longer than the %d bytes the "
			    "control socket takes: fewer or shorter aliases, labels or ports",
			    CTL_REQ_MAX);
	if (ret < 0)
		return fail(c, unreachable_code, "%s", e.msg);
	c->code = daemon_code;
	c->e = e;
	for (char *line = body->data, *nl; line && *line; line = nl) {
		int code;
		char end;

		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		if (sscanf(line, "cni-code %d%c", &code, &end) == 1 && code > 0)
			c->code = code;
		else if (*line)
			buf_printf(&c->details, "%s%s", c->details.len ? "\n" : "", line);
	}
	return -1;
}

/* ---- reply lines --------------------------------------------------------- */

struct reply {
	const char *ifname, *ifmac, *host, *hostmac, *bridge, *bridgemac, *domain;
	struct { const char *a, *b; } addr[8], route[16];
	const char *dns[4];
	size_t naddr, nroute, ndns;
};

/* Split body in place into r (lines of up to three words; unknown ones are
 * skipped, so the daemon may add kinds of lines). */
static void reply_parse(struct buf *body, struct reply *r)
{
	memset(r, 0, sizeof(*r));
	for (char *line = body->data, *nl; line && *line; line = nl) {
		char *w[3] = { 0 }, *save = NULL;

		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		w[0] = strtok_r(line, " ", &save);
		w[1] = w[0] ? strtok_r(NULL, " ", &save) : NULL;
		w[2] = w[1] ? strtok_r(NULL, " ", &save) : NULL;
		if (!w[1])
			continue;
		if (!strcmp(w[0], "interface"))
			r->ifname = w[1], r->ifmac = w[2];
		else if (!strcmp(w[0], "host"))
			r->host = w[1], r->hostmac = w[2];
		else if (!strcmp(w[0], "bridge"))
			r->bridge = w[1], r->bridgemac = w[2];
		else if (!strcmp(w[0], "domain"))
			r->domain = w[1];
		else if (!strcmp(w[0], "dns") && r->ndns < ARRAY_SIZE(r->dns))
			r->dns[r->ndns++] = w[1];
		else if (!strcmp(w[0], "address") && r->naddr < ARRAY_SIZE(r->addr))
			r->addr[r->naddr].a = w[1], r->addr[r->naddr++].b = w[2];
		else if (!strcmp(w[0], "route") && r->nroute < ARRAY_SIZE(r->route))
			r->route[r->nroute].a = w[1], r->route[r->nroute++].b = w[2];
	}
}

static void json_iface(struct buf *out, const char *name, const char *mac, const char *sandbox)
{
	buf_puts(out, "{\"name\":");
	buf_json_string(out, name);
	if (mac) {
		buf_puts(out, ",\"mac\":");
		buf_json_string(out, mac);
	}
	if (sandbox) {
		buf_puts(out, ",\"sandbox\":");
		buf_json_string(out, sandbox);
	}
	buf_puts(out, "}");
}

/* The result of ADD in the form of c->version. */
static void result_json(const struct cni *c, const struct reply *r, struct buf *out)
{
	bool legacy = c->rank < CNI_LEGACY_BELOW;
	int n = 0;

	buf_puts(out, "{\"cniVersion\":");
	buf_json_string(out, c->version);
	buf_puts(out, ",\"interfaces\":[");
	if (r->bridge) {
		json_iface(out, r->bridge, r->bridgemac, NULL);
		buf_puts(out, ",");
		n++;
	}
	if (r->host) {
		json_iface(out, r->host, r->hostmac, NULL);
		buf_puts(out, ",");
		n++;
	}
	json_iface(out, r->ifname ? r->ifname : c->ifname, r->ifmac, c->netns);
	buf_puts(out, "],\"ips\":[");
	for (size_t i = 0; i < r->naddr; i++) {
		buf_puts(out, i ? ",{" : "{");
		if (legacy)
			buf_printf(out, "\"version\":\"%c\",", strchr(r->addr[i].a, ':') ? '6' : '4');
		buf_puts(out, "\"address\":");
		buf_json_string(out, r->addr[i].a);
		if (r->addr[i].b) {
			buf_puts(out, ",\"gateway\":");
			buf_json_string(out, r->addr[i].b);
		}
		buf_printf(out, ",\"interface\":%d}", n);
	}
	buf_puts(out, "],\"routes\":[");
	for (size_t i = 0; i < r->nroute; i++) {
		buf_puts(out, i ? ",{\"dst\":" : "{\"dst\":");
		buf_json_string(out, r->route[i].a);
		if (r->route[i].b) {
			buf_puts(out, ",\"gw\":");
			buf_json_string(out, r->route[i].b);
		}
		buf_puts(out, "}");
	}
	buf_puts(out, "],\"dns\":{");
	if (r->ndns) {
		buf_puts(out, "\"nameservers\":[");
		for (size_t i = 0; i < r->ndns; i++) {
			if (i)
				buf_puts(out, ",");
			buf_json_string(out, r->dns[i]);
		}
		buf_puts(out, "]");
	}
	if (r->domain) {
		/* podman writes search into resolv.conf; domain is the spec's */
		buf_puts(out, r->ndns ? ",\"domain\":" : "\"domain\":");
		buf_json_string(out, r->domain);
		buf_puts(out, ",\"search\":[");
		buf_json_string(out, r->domain);
		buf_puts(out, "]");
	}
	buf_puts(out, "}}\n");
}

/* ---- netconf fields -------------------------------------------------------- */

/* The string at t into buf, or -1 with code 7 naming field. */
static int field_string(struct cni *c, const struct json_tok *t, const char *field, char *buf,
			size_t size)
{
	struct err e;

	if (json_string(&c->doc, t, buf, size, &e) < 0)
		return fail(c, CNI_ERR_INVALID_NETCONF, "%s: %s", field, e.msg);
	return 0;
}

/* An optional string member: 0 (absent: buf is ""), or -1. */
static int member_string(struct cni *c, const struct json_tok *obj, const char *key,
			 const char *field, char *buf, size_t size)
{
	const struct json_tok *t = json_get(&c->doc, obj, key);

	buf[0] = '\0';
	return t ? field_string(c, t, field, buf, size) : 0;
}

/* An optional array member: the array, NULL when absent; -1 via *bad. */
static const struct json_tok *member_array(struct cni *c, const struct json_tok *obj,
					   const char *key, const char *field, bool *bad)
{
	const struct json_tok *t = json_get(&c->doc, obj, key);

	if (t && t->type != JSON_ARRAY) {
		fail(c, CNI_ERR_INVALID_NETCONF, "%s: expected an array, found %s", field,
		     json_type_name(t->type));
		*bad = true;
		return NULL;
	}
	return t;
}

bool cni_name_valid(const char *s)
{
	if (!isalnum((unsigned char)*s))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
			return false;
	return true;
}

/* One CNI_ARGS value ("K=V;K=V"), into buf; false when absent. */
static bool cni_arg(const char *args, const char *key, char *buf, size_t size)
{
	size_t klen = strlen(key);

	for (const char *p = args; p && *p; p = strchr(p, ';') ? strchr(p, ';') + 1 : NULL) {
		const char *end = strchr(p, ';');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (n > klen && p[klen] == '=' && !strncmp(p, key, klen)) {
			n -= klen + 1;
			if (n >= size)
				n = size - 1;
			memcpy(buf, p + klen + 1, n);
			buf[n] = '\0';
			return true;
		}
	}
	return false;
}

/* ---- ADD's words ------------------------------------------------------------ */

/* The DNS names: the runtime's name for the container (K8S_POD_NAME, which
 * podman sets to the container's name and Kubernetes to the pod's), then
 * every alias of runtimeConfig.aliases[netconf name] (podman passes its
 * --network-alias values and the short container ID there, never the name
 * itself). Without K8S_POD_NAME the first alias is the name. */
static int add_names(struct cni *c, const struct json_tok *rc)
{
	const struct json_tok *aliases = json_get(&c->doc, rc, "aliases"), *list, *el;
	char s[CNI_FIELD_MAX], pod[CNI_FIELD_MAX] = "", field[64];
	bool named = false;
	int i = 0;

	if (aliases && aliases->type != JSON_OBJECT)
		return fail(c, CNI_ERR_INVALID_NETCONF, "runtimeConfig.aliases: expected an object "
			    "(netconf name: [names]), found %s", json_type_name(aliases->type));
	list = json_get(&c->doc, aliases, c->name);
	if (list && list->type != JSON_ARRAY)
		return fail(c, CNI_ERR_INVALID_NETCONF, "runtimeConfig.aliases.%s: expected an array, "
			    "found %s", c->name, json_type_name(list->type));
	if (c->args && cni_arg(c->args, "K8S_POD_NAME", pod, sizeof(pod)) && *pod) {
		word(c, "name=%s", pod);
		named = true;
	}
	for (el = json_first(&c->doc, list); el; el = json_next(&c->doc, list, el), i++) {
		snprintf(field, sizeof(field), "runtimeConfig.aliases.%.24s[%d]", c->name, i);
		if (field_string(c, el, field, s, sizeof(s)) < 0)
			return -1;
		if (!*s)
			return fail(c, CNI_ERR_INVALID_NETCONF, "%s: an empty name", field);
		if (named && !strcasecmp(s, pod))
			continue;
		word(c, named ? "alias=%s" : "name=%s", s);
		named = true;
	}
	return 0;
}

static int add_labels(struct cni *c, const struct json_tok *acni)
{
	bool bad = false;
	const struct json_tok *labels = member_array(c, acni, "labels", "args.cni.labels", &bad);
	char k[CNI_FIELD_MAX], v[CNI_FIELD_MAX], field[48];
	int i = 0;

	if (bad)
		return -1;
	for (const struct json_tok *el = json_first(&c->doc, labels); el;
	     el = json_next(&c->doc, labels, el), i++) {
		snprintf(field, sizeof(field), "args.cni.labels[%d]", i);
		if (el->type != JSON_OBJECT)
			return fail(c, CNI_ERR_INVALID_NETCONF, "%s: expected an object "
				    "{\"key\", \"value\"}, found %s", field, json_type_name(el->type));
		snprintf(field, sizeof(field), "args.cni.labels[%d].key", i);
		if (field_string(c, json_get(&c->doc, el, "key"), field, k, sizeof(k)) < 0)
			return -1;
		if (!*k)
			return fail(c, CNI_ERR_INVALID_NETCONF, "%s: an empty label key", field);
		snprintf(field, sizeof(field), "args.cni.labels[%d].value", i);
		if (member_string(c, el, "value", field, v, sizeof(v)) < 0)
			return -1;
		word(c, "label=%s=%s", k, v);
	}
	if (c->args && cni_arg(c->args, "K8S_POD_NAMESPACE", v, sizeof(v)) && *v)
		word(c, "label=ns=%s", v);
	if (c->args && cni_arg(c->args, "K8S_POD_NAME", v, sizeof(v)) && *v)
		word(c, "label=pod=%s", v);
	return 0;
}

static int add_ports(struct cni *c, const struct json_tok *rc)
{
	bool bad = false;
	const struct json_tok *pm = member_array(c, rc, "portMappings", "runtimeConfig.portMappings",
						 &bad);
	char proto[16], hostip[CNI_FIELD_MAX], field[64];
	int i = 0;

	if (bad)
		return -1;
	for (const struct json_tok *el = json_first(&c->doc, pm); el;
	     el = json_next(&c->doc, pm, el), i++) {
		long long hp, cp;
		struct err e;

		snprintf(field, sizeof(field), "runtimeConfig.portMappings[%d]", i);
		if (el->type != JSON_OBJECT)
			return fail(c, CNI_ERR_INVALID_NETCONF, "%s: expected an object, found %s",
				    field, json_type_name(el->type));
		if (json_int(&c->doc, json_get(&c->doc, el, "hostPort"), 1, 65535, &hp, &e) < 0)
			return fail(c, CNI_ERR_INVALID_NETCONF, "%s.hostPort: %s", field, e.msg);
		if (json_int(&c->doc, json_get(&c->doc, el, "containerPort"), 1, 65535, &cp, &e) < 0)
			return fail(c, CNI_ERR_INVALID_NETCONF, "%s.containerPort: %s", field, e.msg);
		snprintf(field, sizeof(field), "runtimeConfig.portMappings[%d].protocol", i);
		if (member_string(c, el, "protocol", field, proto, sizeof(proto)) < 0)
			return -1;
		snprintf(field, sizeof(field), "runtimeConfig.portMappings[%d].hostIP", i);
		if (member_string(c, el, "hostIP", field, hostip, sizeof(hostip)) < 0)
			return -1;
		for (char *p = proto; *p; p++)
			*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 'a' - 'A' : *p);
		word(c, "port=%s%s%s%s%lld:%lld/%s", strchr(hostip, ':') ? "[" : "", hostip,
		     strchr(hostip, ':') ? "]" : "", *hostip ? ":" : "", hp, cp,
		     *proto ? proto : "tcp");
	}
	return 0;
}

/* Add ip=ADDR for s ("A" or "A/LEN") unless already asked for. */
static int add_ip(struct cni *c, const char *s, const char *field, int code)
{
	char a[IP_STRLEN + 8];
	struct ip_addr ip;
	struct err e;
	size_t n = strcspn(s, "/");

	if (n >= sizeof(a) || (memcpy(a, s, n), a[n] = '\0', ip_parse(a, &ip, &e) < 0))
		return fail(c, code, "%s: '%s' is not an IP address", field, s);
	for (size_t i = 0; i < c->words.n; i++)
		if (!strncmp(c->words.v[i], "ip=", 3) && !strcmp(c->words.v[i] + 3, a))
			return 0;
	word(c, "ip=%s", a);
	return 0;
}

static int add_ips(struct cni *c, const struct json_tok *rc, const struct json_tok *acni)
{
	static const char *const where[] = { "runtimeConfig.ips", "args.cni.ips" };
	const struct json_tok *from[] = { rc, acni };
	char s[CNI_FIELD_MAX], field[48];
	bool bad = false;

	for (int k = 0; k < 2; k++) {
		const struct json_tok *ips = member_array(c, from[k], "ips", where[k], &bad);
		int i = 0;

		if (bad)
			return -1;
		for (const struct json_tok *el = json_first(&c->doc, ips); el;
		     el = json_next(&c->doc, ips, el), i++) {
			snprintf(field, sizeof(field), "%s[%d]", where[k], i);
			if (field_string(c, el, field, s, sizeof(s)) < 0 ||
			    add_ip(c, s, field, CNI_ERR_INVALID_NETCONF) < 0)
				return -1;
		}
	}
	if (c->args && cni_arg(c->args, "IP", s, sizeof(s))) {
		for (char *save = NULL, *ip = strtok_r(s, ",", &save); ip;
		     ip = strtok_r(NULL, ",", &save))
			if (add_ip(c, ip, "CNI_ARGS IP", CNI_ERR_INVALID_ENV) < 0)
				return -1;
	}
	if (member_string(c, rc, "mac", "runtimeConfig.mac", s, sizeof(s)) < 0)
		return -1;
	if (!*s && member_string(c, acni, "mac", "args.cni.mac", s, sizeof(s)) < 0)
		return -1;
	if (!*s && c->args)
		cni_arg(c->args, "MAC", s, sizeof(s));
	if (*s)
		word(c, "mac=%s", s);
	return 0;
}

/* ---- verbs ----------------------------------------------------------------- */

static void words_head(struct cni *c, const char *verb)
{
	words_free(c);
	word(c, "cni");
	word(c, "%s", verb);
	word(c, "%s", c->network);
}

static int verb_add(struct cni *c)
{
	const struct json_tok *rc = json_get(&c->doc, c->conf, "runtimeConfig");
	const struct json_tok *acni = json_get(&c->doc, json_get(&c->doc, c->conf, "args"), "cni");
	struct buf body;
	struct reply r;
	int ret;

	if (rc && rc->type != JSON_OBJECT)
		return fail(c, CNI_ERR_INVALID_NETCONF, "runtimeConfig: expected an object, found %s",
			    json_type_name(rc->type));
	if (acni && acni->type != JSON_OBJECT)
		return fail(c, CNI_ERR_INVALID_NETCONF, "args.cni: expected an object, found %s",
			    json_type_name(acni->type));
	words_head(c, "add");
	word(c, "%s", c->id);
	word(c, "%s", c->ifname);
	word(c, "%s", c->netns);
	if (add_names(c, rc) < 0 || add_labels(c, acni) < 0 || add_ports(c, rc) < 0 ||
	    add_ips(c, rc, acni) < 0)
		return -1;
	buf_init(&body);
	ret = call(c, &body, CNI_ERR_BERTH, CNI_ERR_TRY_AGAIN);
	if (ret == 0) {
		struct buf out;

		reply_parse(&body, &r);
		buf_init(&out);
		result_json(c, &r, &out);
		fwrite(out.data, 1, out.len, stdout);
		buf_free(&out);
	}
	buf_free(&body);
	return ret;
}

static int verb_del(struct cni *c)
{
	struct buf body;
	int ret;

	words_head(c, "del");
	word(c, "%s", c->id);
	word(c, "%s", c->ifname);
	if (c->netns)
		word(c, "%s", c->netns);
	buf_init(&body);
	ret = call(c, &body, CNI_ERR_BERTH, CNI_ERR_TRY_AGAIN);
	buf_free(&body);
	return ret;
}

/* prevResult's addresses and the container interface's MAC against what
 * the daemon says the attachment has. */
static int check_prev(struct cni *c, const struct json_tok *prev, const struct reply *r)
{
	bool bad = false;
	const struct json_tok *ips = member_array(c, prev, "ips", "prevResult.ips", &bad);
	const struct json_tok *ifs = member_array(c, prev, "interfaces", "prevResult.interfaces", &bad);
	char s[CNI_FIELD_MAX], field[48];
	int i = 0;

	if (bad)
		return -1;
	for (const struct json_tok *el = ifs ? json_first(&c->doc, ifs) : NULL; el;
	     el = json_next(&c->doc, ifs, el)) {
		if (!json_str_eq(&c->doc, json_get(&c->doc, el, "name"), c->ifname) ||
		    !json_get(&c->doc, el, "sandbox"))
			continue;
		if (member_string(c, el, "mac", "prevResult.interfaces[].mac", s, sizeof(s)) < 0)
			return -1;
		if (*s && r->ifmac && strcasecmp(s, r->ifmac) != 0)
			return fail(c, CNI_ERR_CHECK_MISMATCH, "%s has MAC %s, prevResult says %s",
				    c->ifname, r->ifmac, s);
	}
	for (const struct json_tok *el = json_first(&c->doc, ips); el;
	     el = json_next(&c->doc, ips, el), i++) {
		struct ip_addr a, b;
		struct ip_prefix p, q;
		struct err e;
		size_t k;

		snprintf(field, sizeof(field), "prevResult.ips[%d].address", i);
		if (el->type != JSON_OBJECT)
			return fail(c, CNI_ERR_INVALID_NETCONF, "prevResult.ips[%d]: expected an "
				    "object, found %s", i, json_type_name(el->type));
		if (field_string(c, json_get(&c->doc, el, "address"), field, s, sizeof(s)) < 0)
			return -1;
		if (ip_prefix_parse_host(s, &a, &p, &e) < 0)
			return fail(c, CNI_ERR_INVALID_NETCONF, "%s: %s", field, e.msg);
		for (k = 0; k < r->naddr; k++)
			if (ip_prefix_parse_host(r->addr[k].a, &b, &q, &e) == 0 && ip_equal(&a, &b) &&
			    p.len == q.len)
				break;
		if (k == r->naddr)
			return fail(c, CNI_ERR_CHECK_MISMATCH, "%s: %s is not an address of %s in "
				    "berth", field, s, c->ifname);
	}
	if ((size_t)i != r->naddr)
		return fail(c, CNI_ERR_CHECK_MISMATCH, "%s has %zu addresses in berth, prevResult.ips "
			    "lists %d", c->ifname, r->naddr, i);
	return 0;
}

static int verb_check(struct cni *c)
{
	const struct json_tok *prev = json_get(&c->doc, c->conf, "prevResult");
	struct buf body;
	struct reply r;
	int ret;

	if (!prev || prev->type != JSON_OBJECT)
		return fail(c, CNI_ERR_INVALID_NETCONF, "prevResult: %s (CHECK compares the result "
			    "of ADD)", prev ? "expected an object" : "missing");
	words_head(c, "check");
	word(c, "%s", c->id);
	word(c, "%s", c->ifname);
	word(c, "%s", c->netns);
	buf_init(&body);
	ret = call(c, &body, CNI_ERR_BERTH, CNI_ERR_TRY_AGAIN);
	if (ret == 0) {
		reply_parse(&body, &r);
		ret = check_prev(c, prev, &r);
	}
	buf_free(&body);
	return ret;
}

/* Is (id, ifname) in the runtime's list of valid attachments? */
static bool gc_valid(struct cni *c, const struct json_tok *valid, const char *id,
		     const char *ifname)
{
	for (const struct json_tok *el = json_first(&c->doc, valid); el;
	     el = json_next(&c->doc, valid, el))
		if (json_str_eq(&c->doc, json_get(&c->doc, el, "containerID"), id) &&
		    json_str_eq(&c->doc, json_get(&c->doc, el, "ifname"), ifname))
			return true;
	return false;
}

static int verb_gc(struct cni *c)
{
	const char *key = "cni.dev/valid-attachments";
	const struct json_tok *valid = json_get(&c->doc, c->conf, key);
	struct buf list, body;
	int i = 0, ret, first_code = 0;
	struct err first = { 0 };

	/* libcni also sends the spec's earlier misspelling */
	if (!valid) {
		key = "cni.dev/attachments";
		valid = json_get(&c->doc, c->conf, key);
	}
	if (!valid)	/* never read "nothing is valid" into a missing list */
		return fail(c, CNI_ERR_INVALID_NETCONF, "cni.dev/valid-attachments: missing (GC "
			    "would release every attachment of network %s)", c->network);
	if (valid->type != JSON_ARRAY)
		return fail(c, CNI_ERR_INVALID_NETCONF, "%s: expected an array, found %s", key,
			    json_type_name(valid->type));
	for (const struct json_tok *el = json_first(&c->doc, valid); el;
	     el = json_next(&c->doc, valid, el), i++) {
		const struct json_tok *id = json_get(&c->doc, el, "containerID");
		const struct json_tok *ifn = json_get(&c->doc, el, "ifname");

		if (el->type != JSON_OBJECT || !id || id->type != JSON_STRING || !ifn ||
		    ifn->type != JSON_STRING)
			return fail(c, CNI_ERR_INVALID_NETCONF, "%s[%d]: expected an object with "
				    "strings containerID and ifname", key, i);
	}
	words_head(c, "ls");
	buf_init(&list);
	buf_init(&body);
	ret = call(c, &list, CNI_ERR_BERTH, CNI_ERR_TRY_AGAIN);
	/* Release what is stale, every one even when some fail; report the first
	 * failure. */
	for (char *line = ret == 0 ? list.data : NULL, *nl; line && *line; line = nl) {
		char *save = NULL, *id, *ifname;

		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		id = strtok_r(line, " ", &save);
		ifname = id ? strtok_r(NULL, " ", &save) : NULL;
		if (!ifname || gc_valid(c, valid, id, ifname))
			continue;
		words_head(c, "del");
		word(c, "%s", id);
		word(c, "%s", ifname);
		if (call(c, &body, CNI_ERR_BERTH, CNI_ERR_TRY_AGAIN) < 0 && !first_code) {
			first_code = c->code;
			err_set(&first, EIO, "release %s %s: %s", id, ifname, c->e.msg);
		}
	}
	buf_free(&list);
	buf_free(&body);
	if (ret == 0 && first_code) {
		c->code = first_code;
		c->e = first;
		return -1;
	}
	return ret;
}

static int verb_status(struct cni *c)
{
	struct buf body;
	int ret;

	words_head(c, "status");
	buf_init(&body);
	ret = call(c, &body, CNI_ERR_NOT_AVAILABLE, CNI_ERR_NOT_AVAILABLE);
	buf_free(&body);
	return ret;
}

/* ---- the frame --------------------------------------------------------------- */

static const struct verb {
	const char *name;
	bool id, ifname, netns;     /* the CNI_* variables it needs */
	int min_rank;
	int (*run)(struct cni *c);
} verbs[] = {
	{ "ADD", true, true, true, 0, verb_add },
	{ "DEL", true, true, false, 0, verb_del },
	{ "CHECK", true, true, true, 40, verb_check },
	{ "GC", false, false, false, 110, verb_gc },
	{ "STATUS", false, false, false, 110, verb_status },
	{ "VERSION", false, false, false, 0, NULL },
};

static const char *const supported_list = "0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0";

/* The whole of stdin, at most JSON_MAX_SIZE + 1 bytes (one more says "too
 * big"). Returns the length, or -1 with c->code 5. */
static long read_stdin(struct cni *c, struct buf *in)
{
	char chunk[8192];

	for (;;) {
		ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			struct err e;

			err_sys(&e, errno, "read the netconf from stdin");
			return fail(c, CNI_ERR_IO, "%s", e.msg);
		}
		if (n == 0)
			return (long)in->len;
		buf_append(in, chunk, (size_t)n);
		if (in->len > JSON_MAX_SIZE)
			return (long)in->len;
	}
}

static const char *version_of(struct cni *c, const struct json_tok *t, int *rank)
{
	for (size_t i = 0; i < ARRAY_SIZE(cni_versions); i++)
		if (json_str_eq(&c->doc, t, cni_versions[i].v)) {
			*rank = cni_versions[i].rank;
			return cni_versions[i].v;
		}
	return NULL;
}

static int verb_version(struct cni *c, const struct buf *in)
{
	struct err e;
	int rank;
	const char *v = NULL;

	/* Never an error: a runtime asks in order to learn what to send. */
	if (in->len && json_parse(&c->doc, in->data, in->len, &e) == 0)
		v = version_of(c, json_get(&c->doc, json_root(&c->doc), "cniVersion"), &rank);
	printf("{\"cniVersion\":\"%s\",\"supportedVersions\":[\"0.3.0\",\"0.3.1\",\"0.4.0\","
	       "\"1.0.0\",\"1.1.0\"]}\n", v ? v : CNI_LATEST);
	return 0;
}

/* Check the environment the verb needs, then the netconf's frame. */
static int setup(struct cni *c, const struct verb *vb, const struct buf *in)
{
	const struct json_tok *t;
	char v[32];
	struct err e;

	/* The netconf's version, if it has a good one, goes into every error,
	 * those about the environment too. */
	if (in->len <= JSON_MAX_SIZE && json_parse(&c->doc, in->data ? in->data : "", in->len, &e) == 0 &&
	    version_of(c, json_get(&c->doc, json_root(&c->doc), "cniVersion"), &c->rank))
		c->version = version_of(c, json_get(&c->doc, json_root(&c->doc), "cniVersion"),
					&c->rank);
	c->id = env("CNI_CONTAINERID");
	c->ifname = env("CNI_IFNAME");
	c->netns = env("CNI_NETNS");
	c->args = env("CNI_ARGS");
	if (vb->id && !c->id)
		return fail(c, CNI_ERR_INVALID_ENV, "CNI_CONTAINERID is not set (%s needs it)", vb->name);
	if (vb->ifname && !c->ifname)
		return fail(c, CNI_ERR_INVALID_ENV, "CNI_IFNAME is not set (%s needs it)", vb->name);
	if (vb->netns && !c->netns)
		return fail(c, CNI_ERR_INVALID_ENV, "CNI_NETNS is not set (%s needs it)", vb->name);
	if (c->id && vb->id && !cni_name_valid(c->id))
		return fail(c, CNI_ERR_INVALID_ENV, "CNI_CONTAINERID '%s': must start with a letter "
			    "or digit, then letters, digits, '_', '.' or '-'", c->id);
	if (c->ifname && vb->ifname && (strlen(c->ifname) > 15 || !strcmp(c->ifname, ".") ||
					!strcmp(c->ifname, "..") || strpbrk(c->ifname, "/: \t\n\r\v\f")))
		return fail(c, CNI_ERR_INVALID_ENV, "CNI_IFNAME '%s': not an interface name (at most "
			    "15 bytes, no '/', ':' or spaces, not . or ..)", c->ifname);
	if (c->args)
		for (const char *p = c->args; p; p = strchr(p, ';') ? strchr(p, ';') + 1 : NULL) {
			size_t n = strcspn(p, ";");

			if (n && !memchr(p, '=', n))
				return fail(c, CNI_ERR_INVALID_ENV, "CNI_ARGS: '%.*s' is not KEY=VALUE",
					    (int)(n > 64 ? 64 : n), p);
		}

	if (in->len > JSON_MAX_SIZE)
		return fail(c, CNI_ERR_DECODE, "netconf: more than %u bytes on stdin", JSON_MAX_SIZE);
	if (json_parse(&c->doc, in->data ? in->data : "", in->len, &e) < 0)
		return fail(c, CNI_ERR_DECODE, "netconf: %s", e.msg);
	c->conf = json_root(&c->doc);
	if (c->conf->type != JSON_OBJECT)
		return fail(c, CNI_ERR_DECODE, "netconf: expected an object, found %s",
			    json_type_name(c->conf->type));
	t = json_get(&c->doc, c->conf, "cniVersion");
	if (!t)
		return fail(c, CNI_ERR_INCOMPATIBLE_VERSION, "cniVersion: missing (that means 0.2.0; "
			    "berth answers %s)", supported_list);
	if (field_string(c, t, "cniVersion", v, sizeof(v)) < 0)
		return -1;
	if (!version_of(c, t, &c->rank))
		return fail(c, CNI_ERR_INCOMPATIBLE_VERSION, "cniVersion: '%s' is not one berth "
			    "answers (%s)", v, supported_list);
	c->version = version_of(c, t, &c->rank);
	if (c->rank < vb->min_rank)
		return fail(c, CNI_ERR_INCOMPATIBLE_VERSION, "cniVersion: %s has no %s (it came in "
			    "%s)", c->version, vb->name, vb->min_rank == 40 ? "0.4.0" : "1.1.0");
	if (field_string(c, json_get(&c->doc, c->conf, "name"), "name", c->name, sizeof(c->name)) < 0)
		return -1;
	if (!cni_name_valid(c->name))
		return fail(c, CNI_ERR_INVALID_NETCONF, "name: '%s' must start with a letter or digit, "
			    "then letters, digits, '_', '.' or '-'", c->name);
	if (member_string(c, c->conf, "network", "network", c->network, sizeof(c->network)) < 0)
		return -1;
	if (!*c->network)
		strcpy(c->network, c->name);
	if (member_string(c, c->conf, "socket", "socket", c->socket, sizeof(c->socket)) < 0)
		return -1;
	if (!*c->socket)
		snprintf(c->socket, sizeof(c->socket), "%s",
			 env("BERTH_SOCKET") ? env("BERTH_SOCKET") : CNI_DEFAULT_SOCKET);
	return 0;
}

static void print_error(const struct cni *c)
{
	struct buf out;

	buf_init(&out);
	buf_puts(&out, "{\"cniVersion\":");
	buf_json_string(&out, c->version);
	buf_printf(&out, ",\"code\":%d,\"msg\":", c->code);
	buf_json_string(&out, c->e.msg);
	if (c->details.len) {
		buf_puts(&out, ",\"details\":");
		buf_json_string(&out, c->details.data);
	}
	buf_puts(&out, "}\n");
	fwrite(out.data, 1, out.len, stdout);
	buf_free(&out);
}

int cni_plugin_main(void)
{
	struct cni c = { .version = CNI_LATEST };
	const struct verb *vb = NULL;
	struct buf in;
	int ret;

	c.cmd = getenv("CNI_COMMAND");
	buf_init(&in);
	buf_init(&c.details);
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		if (!strcmp(c.cmd, verbs[i].name))
			vb = &verbs[i];
	ret = read_stdin(&c, &in) < 0 ? -1 : 0;
	if (vb && !vb->run)         /* VERSION answers whatever stdin held */
		ret = verb_version(&c, &in);
	else if (ret == 0 && !vb)
		ret = fail(&c, CNI_ERR_INVALID_ENV, "CNI_COMMAND '%s': not one of ADD, DEL, CHECK, GC, "
			   "STATUS, VERSION", c.cmd);
	else if (ret == 0 && (ret = setup(&c, vb, &in)) == 0)
		ret = vb->run(&c);
	if (ret < 0)
		print_error(&c);
	fflush(stdout);
	words_free(&c);
	array_free(&c.words);
	json_free(&c.doc);
	buf_free(&c.details);
	buf_free(&in);
	return ret < 0 ? 1 : 0;
}
