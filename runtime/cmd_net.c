/* cmd_net.c - `berth net`: attach and detach a container network by hand (tests, debugging). */
#include "runtime/runtime.h"
#include "net/net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char net_usage[] =
	"usage: berth net attach NAME --state-dir DIR --bridge BR --gateway A/LEN [--gateway A/LEN]\n"
	"                 --ip A/LEN [--ip A/LEN] [--ifname eth0] [--mtu 1500]\n"
	"                 [--netns PATH] [--mac MAC] [--show]\n"
	"       berth net check NAME --bridge BR --ip A/LEN [--ip A/LEN] [--gateway A [--gateway A]]\n"
	"                 [--state-dir DIR | --netns PATH] [--ifname eth0] [--mac MAC]\n"
	"       berth net unplug NAME [--ifname eth0]\n"
	"       berth net detach NAME --state-dir DIR\n"
	"       berth net bridge-delete BR\n"
	"--netns: a namespace someone else owns (not created, not removed; --state-dir is then\n"
	"not needed); --show prints 'mac MAC host HOSTIF HOSTMAC bridge BRMAC'. check prints\n"
	"nothing and exits 0 when all is well, else the first problem. unplug removes the host\n"
	"end of an attachment made with --netns.\n";

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "berth net: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%s", net_usage);
	return EXIT_USAGE;
}

static int fail(const struct err *e)
{
	fprintf(stderr, "berth: %s\n", e->msg);
	return EXIT_FAIL;
}

/* "10.88.0.5/16" into an interface address. */
static int parse_ifaddr(const char *opt, const char *s, struct net_ifaddr *a, struct err *e)
{
	struct ip_prefix p;

	if (!strchr(s, '/'))
		return err_set(e, EINVAL, "%s '%s': expected ADDRESS/PREFIX-LENGTH, e.g. 10.88.0.5/16",
			       opt, s);
	if (ip_prefix_parse_host(s, &a->addr, &p, e) < 0)
		return err_wrap(e, "%s", opt);
	a->plen = p.len;
	return 0;
}

/* The options attach and check share; 1: o was one of them (v taken),
 * 0: not one of them, EXIT_USAGE as a negative number: bad, said. */
static int common_opt(const char *o, const char *v, struct net_attach *a, uint8_t mac[6],
		      const char **state_dir)
{
	struct err e = { 0 };

	if (!strcmp(o, "--netns")) {
		a->netns = v;
	} else if (!strcmp(o, "--state-dir")) {
		*state_dir = v;
	} else if (!strcmp(o, "--bridge")) {
		a->bridge = v;
	} else if (!strcmp(o, "--ifname")) {
		a->ifname = v;
	} else if (!strcmp(o, "--mac")) {
		if (mac_parse(v, mac) < 0)
			return -usage_error("--mac '%s': expected six hex pairs, e.g. 02:42:0a:58:00:05",
					    v);
		a->mac = mac;
	} else if (!strcmp(o, "--ip")) {
		if (a->n_addr >= NET_ADDRS_MAX)
			return -usage_error("%s: at most 2 (one IPv4, one IPv6)", o);
		if (parse_ifaddr(o, v, &a->addr[a->n_addr], &e) < 0) {
			fprintf(stderr, "berth: %s\n", e.msg);
			return -EXIT_USAGE;
		}
		a->n_addr++;
	} else {
		return 0;
	}
	return 1;
}

static void print_mac(const char *what, const uint8_t *m)
{
	char b[MAC_STRLEN];

	printf("%s %s", what, mac_format(m, b));
}

static int net_attach_cmd(int argc, char **argv)
{
	struct net_bridge b = { 0 };
	struct net_attach a = { 0 };
	struct net_attach_out out;
	const char *state_dir = NULL;
	uint8_t mac[6];
	bool show = false;
	struct net *n;
	struct err e = { 0 };
	int ret;

	if (argc < 3 || argv[2][0] == '-')
		return usage_error("attach needs a container NAME%s", "");
	a.container = argv[2];
	for (int i = 3; i < argc; i++) {
		const char *o = argv[i];
		char *end;

		if (!strcmp(o, "--show")) {
			show = true;
			continue;
		}
		if (i + 1 >= argc)
			return usage_error("option %s needs a value", o);
		const char *v = argv[++i];

		if ((ret = common_opt(o, v, &a, mac, &state_dir)) < 0)
			return -ret;
		if (ret)
			continue;
		if (!strcmp(o, "--mtu")) {
			unsigned long m = strtoul(v, &end, 10);

			if (!*v || *end || m < 68 || m > 65535)
				return usage_error("--mtu '%s': expected a number from 68 to 65535", v);
			a.mtu = b.mtu = (unsigned)m;
		} else if (!strcmp(o, "--gateway")) {
			if (b.n_gw >= NET_ADDRS_MAX)
				return usage_error("%s: at most 2 (one IPv4, one IPv6)", o);
			if (parse_ifaddr(o, v, &b.gw[b.n_gw], &e) < 0) {
				fprintf(stderr, "berth: %s\n", e.msg);
				return EXIT_USAGE;
			}
			b.n_gw++;
		} else {
			return usage_error("unknown option '%s'", o);
		}
	}
	b.name = a.bridge;
	if (!state_dir && !a.netns)
		return usage_error("attach needs --state-dir DIR (or --netns PATH)%s", "");
	if (!a.bridge)
		return usage_error("attach needs --bridge BR%s", "");
	if (!a.n_addr)
		return usage_error("attach needs --ip A/LEN%s", "");
	/* A default route per family the container has an address of. */
	for (unsigned i = 0; i < b.n_gw; i++)
		for (unsigned j = 0; j < a.n_addr; j++)
			if (a.addr[j].addr.family == b.gw[i].addr.family) {
				a.gw[a.n_gw++] = b.gw[i].addr;
				break;
			}
	/* Validate the name before touching anything. */
	if (net_name_check(a.container, &e) < 0)
		return fail(&e);
	if ((ret = net_open(&n, state_dir, &e)) < 0)
		return fail(&e);
	if (show)
		a.out = &out;
	ret = net_bridge_ensure(n, &b, &e);
	if (ret >= 0)
		ret = net_attach(n, &a, &e);
	net_close(n);
	if (ret < 0)
		return fail(&e);
	if (show) {
		print_mac("mac", out.mac);
		printf(" host %s", out.host);
		print_mac("", out.host_mac);
		print_mac(" bridge", out.bridge_mac);
		printf("\n");
	}
	return EXIT_OK;
}

static int net_check_cmd(int argc, char **argv)
{
	struct net_attach a = { 0 };
	const char *state_dir = NULL;
	uint8_t mac[6];
	struct net *n;
	struct err e = { 0 };
	int ret;

	if (argc < 3 || argv[2][0] == '-')
		return usage_error("check needs a container NAME%s", "");
	a.container = argv[2];
	for (int i = 3; i < argc; i++) {
		const char *o = argv[i];

		if (i + 1 >= argc)
			return usage_error("option %s needs a value", o);
		const char *v = argv[++i];

		if ((ret = common_opt(o, v, &a, mac, &state_dir)) < 0)
			return -ret;
		if (ret)
			continue;
		if (!strcmp(o, "--gateway")) {
			if (a.n_gw >= NET_ADDRS_MAX)
				return usage_error("%s: at most 2 (one IPv4, one IPv6)", o);
			if (ip_parse(v, &a.gw[a.n_gw], &e) < 0) {
				fprintf(stderr, "berth: --gateway: %s\n", e.msg);
				return EXIT_USAGE;
			}
			a.n_gw++;
		} else {
			return usage_error("unknown option '%s'", o);
		}
	}
	if (!state_dir && !a.netns)
		return usage_error("check needs --state-dir DIR or --netns PATH%s", "");
	if (!a.bridge)
		return usage_error("check needs --bridge BR%s", "");
	if (net_name_check(a.container, &e) < 0)
		return fail(&e);
	if ((ret = net_open(&n, state_dir, &e)) < 0)
		return fail(&e);
	ret = net_check(n, &a, &e);
	net_close(n);
	return ret < 0 ? fail(&e) : EXIT_OK;
}

static int net_unplug_cmd(int argc, char **argv)
{
	const char *ifname = NULL;
	struct err e = { 0 };
	struct net *n;
	int ret;

	if (argc < 3 || argv[2][0] == '-')
		return usage_error("unplug needs a container NAME%s", "");
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--ifname") && i + 1 < argc)
			ifname = argv[++i];
		else
			return usage_error("unknown option '%s'", argv[i]);
	}
	if ((ret = net_open(&n, NULL, &e)) < 0)
		return fail(&e);
	ret = net_unplug(n, argv[2], ifname, &e);
	net_close(n);
	return ret < 0 ? fail(&e) : EXIT_OK;
}

static int net_detach_cmd(int argc, char **argv)
{
	const char *state_dir = NULL;
	struct err e = { 0 };
	struct net *n;
	int ret;

	if (argc < 3 || argv[2][0] == '-')
		return usage_error("detach needs a container NAME%s", "");
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--state-dir") && i + 1 < argc)
			state_dir = argv[++i];
		else
			return usage_error("unknown option '%s'", argv[i]);
	}
	if (!state_dir)
		return usage_error("detach needs --state-dir DIR%s", "");
	if (net_name_check(argv[2], &e) < 0)
		return fail(&e);
	if ((ret = net_open(&n, state_dir, &e)) < 0)
		return fail(&e);
	ret = net_detach(n, argv[2], &e);
	net_close(n);
	return ret < 0 ? fail(&e) : EXIT_OK;
}

static int net_bridge_delete_cmd(int argc, char **argv)
{
	struct err e = { 0 };
	struct net *n;
	int ret;

	if (argc != 3)
		return usage_error("bridge-delete needs exactly one bridge name%s", "");
	if ((ret = net_open(&n, NULL, &e)) < 0)
		return fail(&e);
	ret = net_bridge_delete(n, argv[2], &e);
	net_close(n);
	return ret < 0 ? fail(&e) : EXIT_OK;
}

int cmd_net(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "%s", net_usage);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "attach"))
		return net_attach_cmd(argc, argv);
	if (!strcmp(argv[1], "detach"))
		return net_detach_cmd(argc, argv);
	if (!strcmp(argv[1], "check"))
		return net_check_cmd(argc, argv);
	if (!strcmp(argv[1], "unplug"))
		return net_unplug_cmd(argc, argv);
	if (!strcmp(argv[1], "bridge-delete"))
		return net_bridge_delete_cmd(argc, argv);
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		printf("%s", net_usage);
		return EXIT_OK;
	}
	return usage_error("unknown subcommand '%s'", argv[1]);
}
