/* net_spare.c - attach containers through prepared spare namespaces (net_prepare), for integration tests.
 *
 *   net_spare STATE_DIR BRIDGE GW4 GW6 NAME=V4/LEN,V6/LEN ...
 *
 * Keeps two spares ready, attaches each NAME (its eth0 from a spare), prints
 * "spares N" before each attach, and exits (which lets the kernel destroy the
 * spares left). The bridge must exist. SPARE_BRIDGE=BR makes the spares for
 * another bridge than the one attached to. */
#include "net/net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ifaddr(const char *s, struct net_ifaddr *a, struct err *e)
{
	struct ip_prefix p;

	if (ip_prefix_parse_host(s, &a->addr, &p, e) < 0)
		return -1;
	a->plen = p.len;
	return 0;
}

int main(int argc, char **argv)
{
	struct err e = { 0 };
	struct net *n;
	struct ip_addr gw4, gw6;
	int ret = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 6) {
		fprintf(stderr, "usage: net_spare STATE_DIR BRIDGE GW4 GW6 NAME=V4/LEN,V6/LEN ...\n");
		return 2;
	}
	if (ip_parse(argv[3], &gw4, &e) < 0 || ip_parse(argv[4], &gw6, &e) < 0 ||
	    net_open(&n, argv[1], &e) < 0)
		goto fail;
	for (int i = 5; i < argc && ret == 0; i++) {
		char name[64], v4[64], v6[64];
		struct net_attach a = { .container = name, .bridge = argv[2], .n_addr = 2, .n_gw = 2 };

		if (sscanf(argv[i], "%63[^=]=%63[^,],%63s", name, v4, v6) != 3 ||
		    ifaddr(v4, &a.addr[0], &e) < 0 || ifaddr(v6, &a.addr[1], &e) < 0) {
			fprintf(stderr, "net_spare: bad argument '%s'\n", argv[i]);
			return 2;
		}
		a.gw[0] = gw4;
		a.gw[1] = gw6;
		if ((ret = net_prepare(n, getenv("SPARE_BRIDGE") ? getenv("SPARE_BRIDGE") : argv[2], 2, &e)) < 0)
			break;
		printf("spares %d\n", ret);
		ret = net_attach(n, &a, &e);
	}
	net_close(n);
	if (ret < 0)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "net_spare: %s\n", e.msg);
	return 1;
}
