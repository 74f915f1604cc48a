/* test_config_service.c - services with virtual IPs in the configuration
 * (issue 23): [service NAME] in berth.ini and services.d/NAME.ini, the
 * networks' service ranges, what each key becomes in struct cfg_service,
 * every error as `config check` prints it, and services.d read, watched and
 * cached as containers.d is. */
#include "runtime/config/config.h"
#include "t.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#define F(...) ((const struct config_file[]){ __VA_ARGS__ })
#define FILE_(p, t) { p, t, sizeof(t) - 1 }

/* Every message joined by '\n', or "ok"; *out gets the config (may be NULL). */
static const char *load(const struct config_file *files, size_t n, struct config **out)
{
	static char buf[16384];
	struct config_opts o = { .resolv_conf = "/dev/null" };
	struct config_errors errs = { 0 };
	struct config *c = NULL;
	size_t used = 0;
	int ret;

	ret = config_load_files(files, n, "test", &o, &c, &errs);
	snprintf(buf, sizeof(buf), "%s", ret == 0 && !errs.n ? "ok" : "");
	for (size_t i = 0; i < errs.n && used < sizeof(buf); i++)
		used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%s", i ? "\n" : "",
					 errs.v[i].msg);
	if (ret == 0 && errs.n)
		snprintf(buf, sizeof(buf), "returned 0 with errors");
	if (ret < 0 && !errs.n)
		snprintf(buf, sizeof(buf), "returned %d without errors", ret);
	config_errors_free(&errs);
	if (out)
		*out = c;
	else
		config_free(c);
	return buf;
}

static const char *fmt_ip(const struct ip_addr *a)
{
	static char b[4][IP_STRLEN];
	static int k;

	return a->family ? ip_format(a, b[k++ & 3]) : "-";
}

static const char *fmt_sel(const struct selector *s)
{
	static char out[256];
	struct buf b;

	buf_init(&b);
	selector_format(s, &b);
	buf_append(&b, "", 1);
	snprintf(out, sizeof(out), "%s", b.data);
	buf_free(&b);
	return out;
}

/* "80:80/tcp 443:8443/tcp 53:53/udp" */
static const char *fmt_ports(const struct cfg_service *s)
{
	static char out[256];
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < s->n_ports; i++)
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%u:%u/%s", i ? " " : "",
				      s->ports[i].port, s->ports[i].target,
				      ip_proto_name(s->ports[i].proto));
	return out;
}

/* "*:8080->80/tcp 127.0.0.1:5354->53/udp" */
static const char *fmt_publish(const struct cfg_service *s)
{
	static char out[512];
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < s->n_publish; i++) {
		const struct cfg_service_publish *p = &s->publish[i];

		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s:%u->%u/%s", i ? " " : "",
				      p->has_host_ip ? fmt_ip(&p->host_ip) : "*", p->host_port,
				      p->port, ip_proto_name(p->proto));
	}
	return out;
}

static const char good_ini[] =
	"[network default]\n"
	"subnet = 10.88.0.0/16\n"
	"subnet6 = fd88::/64\n"
	"service_range = 10.96.0.0/16\n"
	"service_range6 = fd96::/112\n"
	"[network lan]\n"
	"subnet = 10.1.0.0/24\n"
	"service_range = 10.97.0.0/24\n"
	"\n"
	"[service web]\n"
	"select = app=web\n"
	"ports = 80, 443:8443/tcp, 53/udp\n"
	"publish = 8080:80, 127.0.0.1:8443:443, 5353/udp\n";

static const char api_ini[] =
	"[service]\n"
	"network = lan\n"
	"select = tier in (a,b), !canary\n"
	"ports = 8080:80\n"
	"vip = 10.97.0.10\n"
	"balance = round-robin\n"
	"affinity = client-ip\n"
	"publish = 10.0.0.1:9090, [::1]:9091\n";

static const char dns_ini[] =
	"[service]\n"
	"select = app=dns\n"
	"ports = 53/udp, 53/tcp\n"
	"vip = fd96::53, 10.96.0.53\n"
	"affinity = client-ip 30m\n"
	"publish = [::]:5300:53/udp\n";

static void test_good(void)
{
	const struct config_file files[] = { FILE_("services.d/dns.ini", dns_ini),
		FILE_("berth.ini", good_ini), FILE_("services.d/api.ini", api_ini) };
	const struct cfg_service *s;
	struct config *c;
	char sum[128];

	T_STREQ(load(files, 3, &c), "ok", "two networks with service ranges and three services "
		"(berth.ini and services.d) load");
	if (!c)
		return;
	T_EQ(c->n_services, 3, "three services");
	T_STREQ(fmt_ip(&c->networks[0].service_range.addr), "10.96.0.0", "service_range");
	T_EQ(c->networks[0].service_range.len, 16, "service_range /16");
	T_STREQ(fmt_ip(&c->networks[0].service_range6.addr), "fd96::", "service_range6");
	T_EQ(c->networks[0].service_range6.len, 112, "service_range6 /112");
	T_EQ(c->networks[1].service_range6.addr.family, 0, "no service_range6: family 0");
	T_STREQ(config_summary(c, sum, sizeof(sum)), "2 networks, 0 containers, 0 policies, "
		"3 services", "the summary counts services");

	s = &c->services[0];
	T_STREQ(s->name, "api", "sorted by name: api first (from services.d/api.ini)");
	T_STREQ(s->file, "services.d/api.ini", "its file");
	T_EQ(s->line, 1, "its section's line");
	T_STREQ(s->network, "lan", "network = lan");
	T_STREQ(fmt_sel(&s->select), "tier in (a,b),!canary", "select in the policy grammar");
	T_STREQ(fmt_ports(s), "8080:80/tcp", "PORT:TARGET, tcp by default");
	T_OK(!s->vip_auto, "an explicit vip is not auto");
	T_STREQ(fmt_ip(&s->vip4), "10.97.0.10", "the IPv4 VIP");
	T_STREQ(fmt_ip(&s->vip6), "-", "no IPv6 VIP");
	T_EQ(s->balance, SVC_BALANCE_ROUND_ROBIN, "balance = round-robin");
	T_EQ(s->affinity_s, 10800, "affinity = client-ip: 3h by default");
	T_STREQ(fmt_publish(s), "10.0.0.1:9090->8080/tcp ::1:9091->8080/tcp",
		"publish HOST_IP:HOST_PORT (IPv4 and [IPv6]) leads to the one tcp port");

	s = &c->services[1];
	T_STREQ(s->name, "dns", "then dns");
	T_STREQ(s->network, "default", "network defaults to default");
	T_STREQ(fmt_ports(s), "53:53/udp 53:53/tcp", "one port number, two protocols");
	T_STREQ(fmt_ip(&s->vip4), "10.96.0.53", "IPv4 VIP given after the IPv6 one");
	T_STREQ(fmt_ip(&s->vip6), "fd96::53", "IPv6 VIP");
	T_EQ(s->balance, SVC_BALANCE_RANDOM, "balance defaults to random");
	T_EQ(s->affinity_s, 1800, "client-ip 30m: 1800 s");
	T_STREQ(fmt_publish(s), ":::5300->53/udp", "[::]:HOST_PORT:PORT/udp");

	s = &c->services[2];
	T_STREQ(s->name, "web", "then web (from berth.ini)");
	T_STREQ(s->file, "berth.ini", "its file");
	T_EQ(s->line, 10, "its section's line");
	T_OK(s->vip_auto, "vip defaults to auto");
	T_STREQ(fmt_ip(&s->vip4), "-", "auto: no address in the config");
	T_EQ(s->affinity_s, 0, "affinity defaults to none");
	T_STREQ(fmt_ports(s), "80:80/tcp 443:8443/tcp 53:53/udp", "ports as given");
	T_STREQ(fmt_publish(s), "*:8080->80/tcp 127.0.0.1:8443->443/tcp *:5353->53/udp",
		"publish HOST_PORT:PORT, HOST_IP:HOST_PORT:PORT, and HOST_PORT/udp (one udp port)");
	T_OK(c->services[0].hash && c->services[1].hash && c->services[2].hash &&
	     c->services[0].hash != c->services[1].hash &&
	     c->services[1].hash != c->services[2].hash, "every service has its own hash");
	config_free(c);
}

/* Equal hashes: the same service; a change anywhere in its definition, a
 * new hash; a change elsewhere in berth.ini, the same. */
static void test_hash(void)
{
	static const char ini2[] =
		"[network default]\nsubnet = 10.88.0.0/16\nsubnet6 = fd88::/64\n"
		"service_range = 10.96.0.0/16\nservice_range6 = fd96::/112\nmtu = 1400\n"
		"[network lan]\nsubnet = 10.1.0.0/24\nservice_range = 10.97.0.0/24\n\n"
		"[service web]\nselect = app=web\nports = 80, 443:8443/tcp, 53/udp\n"
		"publish = 8080:80, 127.0.0.1:8443:443, 5353/udp\n";
	static const char ini3[] =
		"[network default]\nsubnet = 10.88.0.0/16\nsubnet6 = fd88::/64\n"
		"service_range = 10.96.0.0/16\nservice_range6 = fd96::/112\n"
		"[network lan]\nsubnet = 10.1.0.0/24\nservice_range = 10.97.0.0/24\n\n"
		"[service web]\nselect = app=web\nports = 80, 443:8443/tcp, 53/udp\n"
		"publish = 8080:80, 127.0.0.1:8443:443, 5353/udp\nbalance = round-robin\n";
	static const char api2[] =
		"[service]\nnetwork = lan\nselect = tier in (a,b), !canary\nports = 8080:80\n"
		"vip = 10.97.0.11\nbalance = round-robin\naffinity = client-ip\n"
		"publish = 10.0.0.1:9090, [::1]:9091\n";
	const struct config_file f1[] = { FILE_("berth.ini", good_ini),
		FILE_("services.d/api.ini", api_ini) };
	const struct config_file f2[] = { FILE_("berth.ini", ini2),
		FILE_("services.d/api.ini", api2) };
	const struct config_file f3[] = { FILE_("berth.ini", ini3),
		FILE_("services.d/api.ini", api_ini) };
	struct config *a, *b, *c;

	T_STREQ(load(f1, 2, &a), "ok", "hash: the first config");
	T_STREQ(load(f2, 2, &b), "ok", "hash: another network key and api's vip changed");
	T_STREQ(load(f3, 2, &c), "ok", "hash: web's balance changed");
	if (a && b && c) {
		T_EQ(a->services[1].hash, b->services[1].hash, "web's hash stays when another "
		     "section of berth.ini changes");
		T_OK(a->services[0].hash != b->services[0].hash, "api's hash changes with its vip");
		T_OK(a->services[1].hash != c->services[1].hash, "web's hash changes with its "
		     "balance");
		T_EQ(a->services[0].hash, c->services[0].hash, "api's hash stays with its file");
	}
	config_free(a);
	config_free(b);
	config_free(c);
}

/* The network of these cases: service ranges on default. */
#define NET "[network default]\nsubnet = 10.88.0.0/16\nsubnet6 = fd88::/64\n" \
	"service_range = 10.96.0.0/16\nservice_range6 = fd96::/112\n"   /* lines 1-5 */

static const struct {
	const char *what;
	const char *ini;            /* berth.ini */
	const char *path, *text;    /* a second file, or NULL */
	const char *want;
} broken[] = {
	/* ---- service ranges ---- */
	{ "service_range IPv6, service_range6 IPv4",
	  "[network n]\nsubnet = 10.1.0.0/24\nsubnet6 = fd01::/64\nservice_range = fd02::/112\n"
	  "service_range6 = 10.2.0.0/24\n", NULL, NULL,
	  "berth.ini:4: [network n] service_range: 'fd02::/112' is IPv6: put it in service_range6\n"
	  "berth.ini:5: [network n] service_range6: '10.2.0.0/24' is IPv4: put it in service_range" },
	{ "service ranges too small",
	  "[network n]\nsubnet = 10.1.0.0/24\nservice_range = 10.2.0.0/31\n"
	  "service_range6 = fd02::/127\n", NULL, NULL,
	  "berth.ini:3: [network n] service_range: '10.2.0.0/31': the prefix must be /30 or shorter\n"
	  "berth.ini:4: [network n] service_range6: 'fd02::/127': the prefix must be /126 or shorter" },
	{ "service range not a prefix",
	  "[network n]\nsubnet = 10.1.0.0/24\nservice_range = 10.2.0.1/24\n", NULL, NULL,
	  "berth.ini:3: [network n] service_range: 10.2.0.1/24: host bits set (did you mean 10.2.0.0/24?)" },
	{ "service ranges inside the network's own subnets",
	  "[network n]\nsubnet = 10.1.0.0/16\nsubnet6 = fd01::/64\nservice_range = 10.1.8.0/24\n"
	  "service_range6 = fd00::/8\n", NULL, NULL,
	  "berth.ini:4: [network n] service_range: '10.1.8.0/24' overlaps the network's subnet 10.1.0.0/16 (VIPs are reached through the gateway, not on the bridge)\n"
	  "berth.ini:5: [network n] service_range6: 'fd00::/8' overlaps the network's subnet6 fd01::/64 (VIPs are reached through the gateway, not on the bridge)" },
	{ "service ranges overlapping another network's subnet and service range",
	  "[network a]\nsubnet = 10.1.0.0/24\nsubnet6 = fd01::/64\nservice_range = 10.9.0.0/16\n"
	  "[network b]\nsubnet = 10.2.0.0/24\nservice_range = 10.1.0.0/16\n"
	  "[network c]\nsubnet = 10.3.0.0/24\nservice_range = 10.9.1.0/24\nservice_range6 = fd01::/112\n",
	  NULL, NULL,
	  "berth.ini:5: [network b] service_range: 10.1.0.0/16 overlaps the subnet of network 'a' (line 1)\n"
	  "berth.ini:8: [network c] service_range: 10.9.1.0/24 overlaps the service_range of network 'a' (line 1)\n"
	  "berth.ini:8: [network c] service_range6: fd01::/112 overlaps the subnet6 of network 'a' (line 1)" },
	/* ---- berth.ini sections ---- */
	{ "a service without a name, one with a bad name",
	  NET "[service]\nselect = all\nports = 80\n[service Web_1]\nselect = all\nports = 80\n",
	  NULL, NULL,
	  "berth.ini:6: [service] a service needs a name: [service NAME]\n"
	  "berth.ini:9: [service Web_1] service name 'Web_1': expected letters, digits and '-' (at most 63, starting and ending with a letter or digit): it is a DNS name" },
	{ "select and ports missing, an unknown key",
	  NET "[service web]\nbalanse = random\n", NULL, NULL,
	  "berth.ini:6: [service web] select: missing (the containers behind the service, e.g. select = app=web)\n"
	  "berth.ini:6: [service web] ports: missing (what the service answers on, e.g. ports = 80/tcp)\n"
	  "berth.ini:7: [service web] unknown key 'balanse' (did you mean 'balance'?)" },
	{ "a bad selector, and a peer word",
	  NET "[service web]\nselect = app=web, tier in a\nports = 80\n"
	  "[service db]\nselect = world\nports = 80\n", NULL, NULL,
	  "berth.ini:7: [service web] select: 'app=web, tier in a': expected '(' after 'in'\n"
	  "berth.ini:10: [service db] select: 'world' is a peer, not a selector: select takes label terms or all" },
	{ "bad ports",
	  NET "[service web]\nselect = all\nports = 80, 80/tcp, 0, 70000, 81:x, 82/icmp, , 53/udp\n",
	  NULL, NULL,
	  "berth.ini:8: [service web] ports: '80/tcp': port 80/tcp is given twice\n"
	  "berth.ini:8: [service web] ports: '0': expected PORT[:TARGET][/PROTO] with ports from 1 to 65535\n"
	  "berth.ini:8: [service web] ports: '70000': expected PORT[:TARGET][/PROTO] with ports from 1 to 65535\n"
	  "berth.ini:8: [service web] ports: '81:x': expected PORT[:TARGET][/PROTO] with ports from 1 to 65535\n"
	  "berth.ini:8: [service web] ports: '82/icmp': protocol must be tcp, udp or sctp\n"
	  "berth.ini:8: [service web] ports: empty item in the list" },
	{ "bad vips",
	  NET "[service a]\nselect = all\nports = 80\nvip = auto, 10.96.0.5\n"
	  "[service b]\nselect = all\nports = 80\nvip = 10.96.0.5, 10.96.0.2\n"
	  "[service c]\nselect = all\nports = 80\nvip = 10.96.0.300\n", NULL, NULL,
	  "berth.ini:9: [service a] vip: 'auto, 10.96.0.5': auto stands alone (or give the addresses)\n"
	  "berth.ini:13: [service b] vip: '10.96.0.5, 10.96.0.2': two IPv4 addresses (a service has at most one IPv4 and one IPv6 VIP)\n"
	  "berth.ini:17: [service c] vip: '10.96.0.300' is not a valid IPv4 address" },
	{ "vips outside the service ranges, and on a network without service_range6",
	  NET "[network lan]\nsubnet = 10.1.0.0/24\nservice_range = 10.97.0.0/24\n"
	  "[service a]\nselect = all\nports = 80\nvip = 10.97.0.1, fd97::1\n"
	  "[service b]\nselect = all\nports = 80\nvip = fd96::1:1\nnetwork = lan\n", NULL, NULL,
	  "berth.ini:12: [service a] vip: 10.97.0.1 is outside the service_range of network 'default' (10.96.0.0/16)\n"
	  "berth.ini:12: [service a] vip: fd97::1 is outside the service_range6 of network 'default' (fd96::/112)\n"
	  "berth.ini:16: [service b] vip: fd96::1:1: network 'lan' has no service_range6 (berth.ini:6)" },
	{ "vip = auto without a service range (default and given)",
	  "[network default]\nsubnet = 10.88.0.0/16\n"
	  "[service a]\nselect = all\nports = 80\n"
	  "[service b]\nselect = all\nports = 80\nvip = auto\n", NULL, NULL,
	  "berth.ini:3: [service a] vip: auto (the default) needs a service_range or service_range6 on network 'default' (berth.ini:1)\n"
	  "berth.ini:9: [service b] vip: auto needs a service_range or service_range6 on network 'default' (berth.ini:1)" },
	{ "vip = auto on the embedded default network",
	  "[service a]\nselect = all\nports = 80\n", NULL, NULL,
	  "berth.ini:1: [service a] vip: auto (the default) needs a service_range or service_range6 on network 'default' (the embedded default: define it in berth.ini with one)" },
	{ "the same VIP twice (IPv4 and IPv6)",
	  NET "[service a]\nselect = all\nports = 80\nvip = 10.96.0.5, fd96::5\n", "services.d/b.ini",
	  "[service]\nselect = all\nports = 80\nvip = fd96::5, 10.96.0.5\n",
	  "services.d/b.ini:4: [service] vip: 10.96.0.5 is also the VIP of service 'a' (berth.ini:9)\n"
	  "services.d/b.ini:4: [service] vip: fd96::5 is also the VIP of service 'a' (berth.ini:9)" },
	{ "a VIP on the range's network, first or broadcast address",
	  NET "[service a]\nselect = all\nports = 80\nvip = 10.96.255.255, fd96::1\n"
	  "[service b]\nselect = all\nports = 80\nvip = 10.96.0.0\n", NULL, NULL,
	  "berth.ini:9: [service a] vip: 10.96.255.255 is the network address, the first address or (IPv4) the broadcast address of the service_range 10.96.0.0/16: the store never hands those out\n"
	  "berth.ini:9: [service a] vip: fd96::1 is the network address, the first address or (IPv4) the broadcast address of the service_range6 fd96::/112: the store never hands those out\n"
	  "berth.ini:13: [service b] vip: 10.96.0.0 is the network address, the first address or (IPv4) the broadcast address of the service_range 10.96.0.0/16: the store never hands those out" },
	{ "an unknown network (given, and the default)",
	  "[network lan]\nsubnet = 10.1.0.0/24\nservice_range = 10.97.0.0/24\n"
	  "[service a]\nselect = all\nports = 80\nnetwork = wan\n"
	  "[service b]\nselect = all\nports = 80\n", NULL, NULL,
	  "berth.ini:7: [service a] network: unknown network 'wan'\n"
	  "berth.ini:8: [service b] network: unknown network 'default' (the default when network is not given)" },
	{ "bad balance and affinity",
	  NET "[service a]\nselect = all\nports = 80\nbalance = least-conn\naffinity = cookie\n"
	  "[service b]\nselect = all\nports = 80\naffinity = client-ip 2d\n"
	  "[service c]\nselect = all\nports = 80\naffinity = client-ip 1500ms\n", NULL, NULL,
	  "berth.ini:9: [service a] balance: 'least-conn': expected random or round-robin\n"
	  "berth.ini:10: [service a] affinity: 'cookie': expected none or client-ip [TIMEOUT] (e.g. client-ip 30m)\n"
	  "berth.ini:14: [service b] affinity: 'client-ip 2d': expected a timeout of whole seconds from 1s to 24h (e.g. 30m, 3h; a bare number is seconds)\n"
	  "berth.ini:18: [service c] affinity: 'client-ip 1500ms': expected a timeout of whole seconds from 1s to 24h (e.g. 30m, 3h; a bare number is seconds)" },
	{ "bad publish",
	  NET "[service a]\nselect = all\nports = 80, 443, 53/udp\n"
	  "publish = 8080, 8081:81, 5353/sctp, 9000:53, 8443:443, 8443:80, 1.2.3:80, ::1:80:80, "
	  "[1.2.3.4]:80, x:80, 8082:0, 7/icmp\n", NULL, NULL,
	  "berth.ini:9: [service a] publish: '8080': the service has 2 tcp ports: say which (HOST_PORT:PORT)\n"
	  "berth.ini:9: [service a] publish: '8081:81': 81/tcp is not one of the service's ports\n"
	  "berth.ini:9: [service a] publish: '5353/sctp': the service has no sctp port\n"
	  "berth.ini:9: [service a] publish: '9000:53': 53/tcp is not one of the service's ports\n"
	  "berth.ini:9: [service a] publish: '8443:80': host port 8443/tcp is published twice\n"
	  "berth.ini:9: [service a] publish: '1.2.3:80': '1.2.3' is not a valid IPv4 address\n"
	  "berth.ini:9: [service a] publish: '::1:80:80': write an IPv6 host address in brackets, e.g. [::1]:8080\n"
	  "berth.ini:9: [service a] publish: '[1.2.3.4]:80': '1.2.3.4' is not a valid IPv6 address\n"
	  "berth.ini:9: [service a] publish: 'x:80': expected [HOST_IP:]HOST_PORT[:PORT][/PROTO] with ports from 1 to 65535\n"
	  "berth.ini:9: [service a] publish: '8082:0': expected [HOST_IP:]HOST_PORT[:PORT][/PROTO] with ports from 1 to 65535\n"
	  "berth.ini:9: [service a] publish: '7/icmp': protocol must be tcp, udp or sctp" },
	{ "publish does not judge against ports that were refused",
	  NET "[service a]\nselect = all\nports = 80/icmp\npublish = 8080\n", NULL, NULL,
	  "berth.ini:8: [service a] ports: '80/icmp': protocol must be tcp, udp or sctp" },
	{ "publish: a host port of a container, of another service",
	  NET "[service a]\nselect = all\nports = 80\npublish = 8080, 9000\n"
	  "[service b]\nselect = all\nports = 80, 53/udp\npublish = 0.0.0.0:9000:80, 9001:80, "
	  "[::1]:8050:80, 127.0.0.3:8060:80, 5353/udp\n", "containers.d/web.ini",
	  "[container]\nimage = busybox\nports = 127.0.0.2:8000-8100:8000-8100\n",
	  "berth.ini:9: [service a] publish: host port 8080/tcp is also published by container 'web' (containers.d/web.ini:3)\n"
	  "berth.ini:13: [service b] publish: host port 9000/tcp is also published by service 'a' (berth.ini:9)" },
	/* ---- names ---- */
	{ "one name twice in berth.ini, and in services.d",
	  NET "[service web]\nselect = all\nports = 80\n[service Web]\nselect = all\nports = 81\n",
	  "services.d/web.ini", "[service]\nselect = all\nports = 82\n",
	  "berth.ini:9: [service Web] the name 'Web' is also used by the service in berth.ini:6\n"
	  "services.d/web.ini:1: [service] the name 'web' is also used by the service in berth.ini:6" },
	{ "a service named as a container",
	  NET, "services.d/web.ini", "[service]\nselect = all\nports = 80\n", NULL },
	{ "a service named as a container's service =",
	  NET "[service db]\nselect = all\nports = 5432\n", NULL, NULL, NULL },
	/* ---- services.d files ---- */
	{ "services.d: sections",
	  NET, "services.d/web.ini",
	  "[service x]\nselect = all\n[servise]\n[network n]\n[service]\nselect = all\nports = 80\n"
	  "[service]\n",
	  "services.d/web.ini:1: unknown section [service x] ([service] takes no name: it is the file's)\n"
	  "services.d/web.ini:3: unknown section [servise] (did you mean [service]?)\n"
	  "services.d/web.ini:4: unknown section [network n] (a service file has one [service] section)\n"
	  "services.d/web.ini:8: [service] section given twice (first on line 5); one service per file" },
	{ "services.d: no [service]",
	  NET, "services.d/web.ini", "; nothing\n",
	  "services.d/web.ini: no [service] section" },
	{ "services.d: a file name that is not a DNS name",
	  NET, "services.d/web_1.ini", "[service]\nselect = all\nports = 80\n",
	  "services.d/web_1.ini: the service name 'web_1' (the file name) is not a DNS name (letters, digits and '-'): rename the file" },
	{ "a file elsewhere",
	  NET, "services.d/x/web.ini", "[service]\n",
	  "services.d/x/web.ini: not a berth config file (expected berth.ini, containers.d/NAME.ini, policies.d/NAME.ini or services.d/NAME.ini)" },
};

static void test_broken(void)
{
	static const char ctr_web[] = "[container]\nimage = busybox\ncommand = httpd\n";
	static const char ctr_db[] = "[container]\nimage = postgres\nlabels = app=db\n"
				     "service = db\n";
	char want[512];

	for (size_t i = 0; i < ARRAY_SIZE(broken); i++) {
		struct config_file f[3] = { { "berth.ini", broken[i].ini, strlen(broken[i].ini) } };
		size_t n = 1;
		const char *w = broken[i].want;

		if (broken[i].path)
			f[n++] = (struct config_file){ broken[i].path, broken[i].text,
						       strlen(broken[i].text) };
		/* the two cases about containers: the container files, and
		 * messages naming both places */
		if (!w && broken[i].path) {
			f[n++] = (struct config_file){ "containers.d/web.ini", ctr_web,
						       sizeof(ctr_web) - 1 };
			w = "services.d/web.ini:1: [service] the name 'web' is also the name of "
			    "container 'web' (containers.d/web.ini)";
		} else if (!w) {
			f[n++] = (struct config_file){ "containers.d/db1.ini", ctr_db,
						       sizeof(ctr_db) - 1 };
			f[n++] = (struct config_file){ "containers.d/db2.ini", ctr_db,
						       sizeof(ctr_db) - 1 };
			snprintf(want, sizeof(want), "berth.ini:6: [service db] the name 'db' is also "
				 "the service of container 'db1' (containers.d/db1.ini:4)");
			w = want;
		}
		T_STREQ(load(f, n, NULL), w, "%s", broken[i].what);
	}
}

/* services.d as a daemon reads it: from the directory, cached, watched. */
static void test_dir(void)
{
	char top[] = "/tmp/test_config_service.XXXXXX", p[256];
	struct config_opts o = { .resolv_conf = "/dev/null" };
	struct config_cache *cache = config_cache_new();
	struct config_cache_stats st;
	struct config_errors errs = { 0 };
	struct config *a = NULL, *b = NULL, *c = NULL;
	FILE *f;

	if (!mkdtemp(top) || !cache) {
		T_OK(0, "a temporary directory and a cache");
		return;
	}
	snprintf(p, sizeof(p), "%s/services.d", top);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/berth.ini", top);
	f = fopen(p, "w");
	fputs(good_ini, f);
	fclose(f);
	snprintf(p, sizeof(p), "%s/services.d/api.ini", top);
	f = fopen(p, "w");
	fputs(api_ini, f);
	fclose(f);
	snprintf(p, sizeof(p), "%s/services.d/README", top);
	f = fopen(p, "w");
	fputs("not a service\n", f);
	fclose(f);

	T_EQ(config_load_cached(top, &o, cache, &a, &errs), 0, "a directory with services.d loads");
	config_cache_stats(cache, &st);
	T_EQ(st.parsed, 1, "services.d/api.ini is parsed (README is not read)");
	T_OK(a && a->n_services == 2 && !strcmp(a->services[0].name, "api") &&
	     !strcmp(a->services[1].name, "web"), "api from services.d, web from berth.ini");
	T_EQ(config_load_cached(top, &o, cache, &b, &errs), 0, "again");
	config_cache_stats(cache, &st);
	T_EQ(st.parsed + st.read, 0, "the unchanged services.d file is neither read nor parsed "
	     "(%zu reused)", st.reused);
	T_OK(a && b && a->services[0].hash == b->services[0].hash &&
	     a->services[0].select.terms == b->services[0].select.terms,
	     "the two configs share api's parse");
	snprintf(p, sizeof(p), "%s/services.d/api.ini", top);
	f = fopen(p, "a");
	fputs("; a comment\n", f);
	fclose(f);
	T_EQ(config_load_cached(top, &o, cache, &c, &errs), 0, "a changed services.d file");
	config_cache_stats(cache, &st);
	T_EQ(st.parsed, 1, "is parsed again");
	T_OK(c && b && c->services[0].hash != b->services[0].hash, "with a new hash");
	config_free(a);
	config_free(b);
	config_cache_free(cache);
	T_OK(c && c->n_services == 2 && !strcmp(c->services[0].network, "lan"),
	     "a config outlives the cache and keeps its services");
	config_free(c);
	config_errors_free(&errs);
	snprintf(p, sizeof(p), "rm -rf '%s'", top);
	T_EQ(system(p), 0, "clean up");
}

int main(void)
{
	test_good();
	test_hash();
	test_broken();
	test_dir();
	return t_done();
}
