/* svc_drive.c - drive net/svc (services' VIPs in table inet berth) for integration tests.
 *
 *   svc_drive          then one command a line on stdin, "ok" or "error: MSG" for each:
 *
 *   net BRIDGE SUBNET4 [SUBNET6]   nat_network_set (hairpin masquerade)
 *   sync                           nat_sync (the table, with every service)
 *   set NAME [vip=ADDR]... [port=PORT:TARGET/PROTO]... [be=ADDR]...
 *       [pick=random|rr] [aff=SECONDS] [pub=[HOSTIP@]HOSTPORT:PORT/PROTO]...
 *   del NAME
 *   bulk N                         services bulk0..bulkN-1: 10.250.X.Y:80/tcp -> 10.249.0.1
 *   count                          prints the number of services
 *
 * Stays alive until stdin closes; the table stays behind (the test's netns
 * goes with it). */
#include "net/nat.h"
#include "net/svc.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int proto_of(const char *s)
{
	return !strcmp(s, "tcp") ? IPPROTO_TCP : !strcmp(s, "udp") ? IPPROTO_UDP :
	       !strcmp(s, "sctp") ? IPPROTO_SCTP : 0;
}

static int cmd_set(struct svc *s, char *args, struct err *e)
{
	struct svc_port ports[SVC_PORTS_MAX];
	struct ip_addr be4[64], be6[64];
	struct svc_publish pub[8];
	struct svc_def d = { .ports = ports, .backends4 = be4, .backends6 = be6, .publish = pub };
	char *tok, *save = NULL;

	tok = strtok_r(args, " \t", &save);
	if (!tok)
		return err_set(e, EINVAL, "set: a name is needed");
	snprintf(d.name, sizeof(d.name), "%s", tok);
	while ((tok = strtok_r(NULL, " \t", &save))) {
		char *v = strchr(tok, '='), proto[8], host[64];
		unsigned a, b;
		struct ip_addr ip;

		if (!v)
			return err_set(e, EINVAL, "bad argument %s", tok);
		*v++ = '\0';
		if (!strcmp(tok, "vip")) {
			if (ip_parse(v, &ip, e) < 0)
				return -1;
			if (ip.family == AF_INET)
				d.vip4 = ip;
			else
				d.vip6 = ip;
		} else if (!strcmp(tok, "be")) {
			if (ip_parse(v, &ip, e) < 0)
				return -1;
			if (ip.family == AF_INET && d.n_backends4 < 64)
				be4[d.n_backends4++] = ip;
			else if (ip.family == AF_INET6 && d.n_backends6 < 64)
				be6[d.n_backends6++] = ip;
		} else if (!strcmp(tok, "port") && d.n_ports < SVC_PORTS_MAX &&
			   sscanf(v, "%u:%u/%7s", &a, &b, proto) == 3) {
			ports[d.n_ports++] = (struct svc_port){ (uint8_t)proto_of(proto), (uint16_t)a,
								(uint16_t)b };
		} else if (!strcmp(tok, "pick")) {
			d.pick = !strcmp(v, "rr") ? SVC_PICK_ROUND_ROBIN : SVC_PICK_RANDOM;
		} else if (!strcmp(tok, "aff")) {
			d.affinity_s = (uint32_t)atoi(v);
		} else if (!strcmp(tok, "pub") && d.n_publish < 8) {
			struct svc_publish *p = &pub[d.n_publish++];
			char *at = strchr(v, '@');

			memset(p, 0, sizeof(*p));
			if (at) {
				snprintf(host, sizeof(host), "%.*s", (int)(at - v), v);
				if (ip_parse(host, &p->host_ip, e) < 0)
					return -1;
				v = at + 1;
			}
			if (sscanf(v, "%u:%u/%7s", &a, &b, proto) != 3)
				return err_set(e, EINVAL, "bad pub %s", v);
			p->host_port = (uint16_t)a;
			p->port = (uint16_t)b;
			p->proto = (uint8_t)proto_of(proto);
		} else {
			return err_set(e, EINVAL, "bad argument %s", tok);
		}
	}
	return svc_set(s, &d, e);
}

static int cmd_bulk(struct svc *s, unsigned n, struct err *e)
{
	struct svc_port port = { IPPROTO_TCP, 80, 80 };
	struct ip_addr be;

	ip_from_v4(&be, 0x0af90001);        /* 10.249.0.1 */
	for (unsigned i = 0; i < n; i++) {
		struct svc_def d = { .ports = &port, .n_ports = 1, .backends4 = &be, .n_backends4 = 1 };

		snprintf(d.name, sizeof(d.name), "bulk%u", i);
		ip_from_v4(&d.vip4, 0x0afa0000 + i + 1);   /* 10.250.0.0 + i + 1 */
		if (svc_set(s, &d, e) < 0)
			return -1;
	}
	return 0;
}

int main(void)
{
	struct err e = { 0 };
	struct nat *t;
	struct svc *s;
	char line[2048];

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (nat_open(&t, NULL, NULL, NULL, &e) < 0 || svc_open(&s, t, &e) < 0) {
		fprintf(stderr, "svc_drive: %s\n", e.msg);
		return 1;
	}
	while (fgets(line, sizeof(line), stdin)) {
		char *arg, *nl = strchr(line, '\n');
		int ret = 0;

		if (nl)
			*nl = '\0';
		arg = strchr(line, ' ');
		if (arg)
			*arg++ = '\0';
		else
			arg = line + strlen(line);
		memset(&e, 0, sizeof(e));
		if (!strcmp(line, "sync")) {
			ret = nat_sync(t, &e);
		} else if (!strcmp(line, "net")) {
			char br[32], s4[64], s6[64] = "";
			struct nat_network n = { .bridge = br };

			if (sscanf(arg, "%31s %63s %63s", br, s4, s6) < 2 ||
			    ip_prefix_parse(s4, &n.subnet4, &e) < 0 ||
			    (s6[0] && ip_prefix_parse(s6, &n.subnet6, &e) < 0))
				ret = e.code ? -1 : err_set(&e, EINVAL, "net BRIDGE SUBNET4 [SUBNET6]");
			else
				ret = nat_network_set(t, &n, &e);
		} else if (!strcmp(line, "set")) {
			ret = cmd_set(s, arg, &e);
		} else if (!strcmp(line, "del")) {
			ret = svc_del(s, arg, &e);
		} else if (!strcmp(line, "bulk")) {
			ret = cmd_bulk(s, (unsigned)atoi(arg), &e);
		} else if (!strcmp(line, "count")) {
			printf("%zu\n", svc_count(s));
		} else if (line[0]) {
			ret = err_set(&e, EINVAL, "unknown command %s", line);
		}
		if (ret < 0)
			printf("error: %s\n", e.msg);
		else
			printf("ok\n");
	}
	nat_close(t, true);
	svc_close(s);
	return 0;
}
