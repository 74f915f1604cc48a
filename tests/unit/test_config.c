/* test_config.c - runtime/config: broken configs and their exact messages, the
 * shipped examples, the embedded default, continuation lines, selector_match,
 * and the key tables as config_doc and `berth config keys` show them. */
#include "runtime/config/config.h"
#include "t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

static char top[4096];          /* $TMPDIR/test_config.XXXXXX */
static char resolv[4200];
static int ndirs;

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		exit(2);
	}
}

/* A fresh config dir with files: "path", "text", ..., NULL. */
static const char *mkconf(const char *const *files)
{
	static char dir[4300];
	char p[4500];

	snprintf(dir, sizeof(dir), "%s/c%d", top, ndirs++);
	mkdir(dir, 0755);
	snprintf(p, sizeof(p), "%s/containers.d", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/policies.d", dir);
	mkdir(p, 0755);
	for (size_t i = 0; files[i]; i += 2) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		write_file(p, files[i + 1]);
	}
	return dir;
}

/* Every message joined by '\n', or "ok". */
static const char *load(const char *dir, struct config **out)
{
	static char buf[16384];
	struct config_opts o = { .resolv_conf = resolv };
	struct config_errors errs = { 0 };
	struct config *c = NULL;
	size_t n = 0;
	int ret;

	ret = config_load(dir, &o, &c, &errs);
	buf[0] = '\0';
	if (ret == 0 && !errs.n)
		snprintf(buf, sizeof(buf), "ok");
	for (size_t i = 0; i < errs.n && n < sizeof(buf); i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? "\n" : "", errs.v[i].msg);
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

#define F(...) ((const char *const[]){ __VA_ARGS__, NULL })

static const char long_line[] =
	"[daemon]\nstate_dir = /var/lib/berth/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nrun_dir = /run/b\n";

static const struct {
	const char *what;
	const char *const *files;
	const char *want;
} broken[] = {
	/* ---- berth.ini ---- */
	{ "unknown key with a suggestion",
	  F("berth.ini", "[daemon]\n; the state\nsate_dir = /x\n"),
	  "berth.ini:3: [daemon] unknown key 'sate_dir' (did you mean 'state_dir'?)" },
	{ "unknown key without a close one",
	  F("berth.ini", "[dns]\ncolour = blue\n"),
	  "berth.ini:2: [dns] unknown key 'colour'" },
	{ "unknown section with a suggestion (swapped letters)",
	  F("berth.ini", "[dsn]\nttl = 5\n"),
	  "berth.ini:1: unknown section [dsn] (did you mean [dns]?)" },
	{ "unknown section without a close one",
	  F("berth.ini", "[firewall]\nx = 1\n"),
	  "berth.ini:1: unknown section [firewall] (expected [daemon], [network NAME], [dns], [remote], [images] or [service NAME])" },
	{ "images: relative paths, allow_devices not a boolean, a name",
	  F("berth.ini", "[images]\nca = certs.pem\ncredentials = auth.json\nallow_devices = sometimes\n"
	    "[images x]\n"),
	  "berth.ini:2: [images] ca: 'certs.pem': expected an absolute path\n"
	  "berth.ini:3: [images] credentials: 'auth.json': expected an absolute path\n"
	  "berth.ini:4: [images] allow_devices: 'sometimes': expected yes or no\n"
	  "berth.ini:5: [images x] [images] takes no name" },
	{ "network without a name",
	  F("berth.ini", "[network]\nsubnet = 10.1.0.0/16\n"),
	  "berth.ini:1: [network] a network needs a name: [network NAME]" },
	{ "subnet without a prefix length",
	  F("berth.ini", "[network lan]\nsubnet = 10.1.0.0\n"),
	  "berth.ini:2: [network lan] subnet: '10.1.0.0' has no prefix length (expected ADDRESS/LENGTH, e.g. 10.88.0.0/16)" },
	{ "subnet with host bits set",
	  F("berth.ini", "[network lan]\nsubnet = 10.1.0.1/16\n"),
	  "berth.ini:2: [network lan] subnet: 10.1.0.1/16: host bits set (did you mean 10.1.0.0/16?)" },
	{ "subnet that is not an address",
	  F("berth.ini", "[network lan]\nsubnet = 10.1.0.300/24\n"),
	  "berth.ini:2: [network lan] subnet: '10.1.0.300' is not a valid IPv4 address" },
	{ "network without subnet",
	  F("berth.ini", "[network lan]\nbridge = br-lan\n"),
	  "berth.ini:1: [network lan] subnet: missing (e.g. subnet = 10.88.0.0/16)" },
	{ "gateway outside the subnet",
	  F("berth.ini", "[network lan]\nsubnet = 10.1.0.0/24\ngateway = 10.2.0.1\n"),
	  "berth.ini:3: [network lan] gateway: '10.2.0.1' is outside the subnet 10.1.0.0/24" },
	{ "gateway on the broadcast address",
	  F("berth.ini", "[network lan]\nsubnet = 10.1.0.0/24\ngateway = 10.1.0.255\n"),
	  "berth.ini:3: [network lan] gateway: '10.1.0.255' is the broadcast address of 10.1.0.0/24, not a host" },
	{ "range outside the subnet",
	  F("berth.ini", "[network lan]\nsubnet = 10.1.0.0/24\nrange = 10.1.0.10-10.1.0.20, 10.1.1.0-10.1.1.9\n"),
	  "berth.ini:3: [network lan] range: range '10.1.1.0-10.1.1.9' is not inside the subnet 10.1.0.0/24" },
	{ "range backwards",
	  F("berth.ini", "[network lan]\nsubnet = 10.1.0.0/24\nrange = 10.1.0.20-10.1.0.10\n"),
	  "berth.ini:3: [network lan] range: range '10.1.0.20-10.1.0.10': first address is after the last" },
	{ "IPv6 subnet in subnet",
	  F("berth.ini", "[network lan]\nsubnet = fd00::/64\n"),
	  "berth.ini:2: [network lan] subnet: 'fd00::/64' is IPv6: put it in subnet6" },
	{ "mtu out of range",
	  F("berth.ini", "[network lan]\nsubnet = 10.1.0.0/24\nmtu = 65536\n"),
	  "berth.ini:3: [network lan] mtu: '65536': expected a number of bytes from 576 to 9000" },
	{ "masquerade not a boolean",
	  F("berth.ini", "[network lan]\nsubnet = 10.1.0.0/24\nmasquerade = maybe\n"),
	  "berth.ini:3: [network lan] masquerade: 'maybe': expected yes or no" },
	{ "two networks on one bridge, overlapping subnets",
	  F("berth.ini", "[network a]\nbridge = br0\nsubnet = 10.1.0.0/16\n"
	    "[network b]\nbridge = br0\nsubnet = 10.1.2.0/24\n"),
	  "berth.ini:4: [network b] bridge: 'br0' is also the bridge of network 'a' (line 1)\n"
	  "berth.ini:4: [network b] subnet: 10.1.2.0/24 overlaps the subnet of network 'a' (line 1)" },
	{ "bridge name too long",
	  F("berth.ini", "[network a]\nbridge = a-very-long-bridge\nsubnet = 10.1.0.0/16\n"),
	  "berth.ini:2: [network a] bridge: 'a-very-long-bridge': expected an interface name of 1 to 15 characters without '/', ':' or spaces" },
	{ "log_level unknown",
	  F("berth.ini", "[daemon]\nlog_level = verbose\n"),
	  "berth.ini:2: [daemon] log_level: 'verbose': expected error, warn, info or debug" },
	{ "relative state_dir",
	  F("berth.ini", "[daemon]\nstate_dir = var/lib/berth\n"),
	  "berth.ini:2: [daemon] state_dir: 'var/lib/berth': expected an absolute path" },
	{ "a key given twice",
	  F("berth.ini", "[dns]\nttl = 10\nttl = 20\n"),
	  "berth.ini:3: [dns] ttl: given twice (first on line 2); only from, to and env may repeat" },
	{ "an empty value",
	  F("berth.ini", "[dns]\ndomain =\n"),
	  "berth.ini:2: [dns] domain: empty value" },
	{ "a bad upstream and ttl",
	  F("berth.ini", "[dns]\nupstream = 192.0.2.1, dns.google\nttl = -1\n"),
	  "berth.ini:2: [dns] upstream: 'dns.google' is not a valid IPv4 address\n"
	  "berth.ini:3: [dns] ttl: '-1': expected a number of seconds from 0 to 86400" },
	{ "line numbers stay right after continuation lines",
	  F("berth.ini", "[dns]\nupstream = 192.0.2.7,\n  192.0.2.8,\n\n  192.0.2.9\nttl = x\n"),
	  "berth.ini:6: [dns] ttl: 'x': expected a number of seconds from 0 to 86400" },
	{ "a line without '='",
	  F("berth.ini", "[daemon]\nstate_dir /var/lib/berth\n"),
	  "berth.ini:2: expected KEY = VALUE, a [section] or a ; comment" },
	{ "a line longer than inih's buffer",
	  F("berth.ini", long_line),
	  "berth.ini:2: the line is longer than 197 characters (continue a long value on an indented next line)" },
	{ "a section header without ']'",
	  F("berth.ini", "[daemon\nstate_dir = /x\n"),
	  "berth.ini:1: expected ']' at the end of the section header\n"
	  "berth.ini:2: 'state_dir' is outside any section (start the file with a [section])" },
	{ "a section given twice",
	  F("berth.ini", "[dns]\nttl = 1\n[dns]\ncache = 2\n"),
	  "berth.ini:3: [dns] section given twice (first on line 1)" },
	{ "remote: bad listen, bad hash, missing files",
	  F("berth.ini", "[remote]\nlisten = ::1:7443\nread_only = sha256:abcd\nclients = md5:00\n"),
	  "berth.ini:1: [remote] cert: missing (the remote listener needs cert, key and client_ca)\n"
	  "berth.ini:1: [remote] key: missing (the remote listener needs cert, key and client_ca)\n"
	  "berth.ini:1: [remote] client_ca: missing (the remote listener needs cert, key and client_ca)\n"
	  "berth.ini:2: [remote] listen: '::1:7443': expected ADDRESS:PORT or [IPV6]:PORT, e.g. 0.0.0.0:7443\n"
	  "berth.ini:3: [remote] read_only: 'sha256:abcd': expected sha256: and 64 hex digits (the client certificate's SPKI hash)\n"
	  "berth.ini:4: [remote] clients: 'md5:00': expected sha256: and 64 hex digits (the client certificate's SPKI hash)" },

	/* ---- containers.d ---- */
	{ "DESIGN's example: protocol tpc on line 7",
	  F("containers.d/web.ini", "; web\n[container]\nrootfs = /r\ncommand = httpd\n"
	    "labels = app=web\nnetworks = default\nports = 8080:80/tpc\n"),
	  "containers.d/web.ini:7: [container] ports: '8080:80/tpc': protocol must be tcp, udp or sctp" },
	{ "port 0, unequal ranges, no container port, IPv6 without brackets",
	  F("containers.d/web.ini", "[container]\nrootfs = /r\ncommand = httpd\n"
	    "ports = 0:80, 8000-8010:8000-8005, 8080, ::1:80:80\n"),
	  "containers.d/web.ini:4: [container] ports: '0:80': port must be a number from 1 to 65535\n"
	  "containers.d/web.ini:4: [container] ports: '8000-8010:8000-8005': the host and container ranges must be of equal length\n"
	  "containers.d/web.ini:4: [container] ports: '8080': expected [HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTO]\n"
	  "containers.d/web.ini:4: [container] ports: '::1:80:80': write an IPv6 host address in brackets, e.g. [::1]:8080:80" },
	{ "a host port published twice (two files, overlapping range)",
	  F("containers.d/a.ini", "[container]\nrootfs = /r\ncommand = x\nports = 8080:80\n",
	    "containers.d/b.ini", "[container]\nrootfs = /r\ncommand = x\n\nports = 53:53/udp, 8075-8085:75-85/tcp\n"),
	  "containers.d/b.ini:5: [container] ports: host port 8075-8085/tcp is already published by container 'a' (containers.d/a.ini:4)" },
	{ "the same port on different host addresses is fine, on 0.0.0.0 it is not",
	  F("containers.d/a.ini", "[container]\nrootfs = /r\ncommand = x\nports = 127.0.0.1:80:80, 127.0.0.2:80:80, [::1]:80:80\n",
	    "containers.d/b.ini", "[container]\nrootfs = /r\ncommand = x\nports = 0.0.0.0:80:80\n"),
	  "containers.d/b.ini:4: [container] ports: host port 80/tcp is already published by container 'a' (containers.d/a.ini:4)" },
	{ "a duplicate container name",
	  F("containers.d/a.ini", "[container]\nrootfs = /r\ncommand = x\n",
	    "containers.d/b.ini", "[container]\nname = A\nrootfs = /r\ncommand = x\n"),
	  "containers.d/b.ini:2: [container] the name 'A' is also used by containers.d/a.ini" },
	{ "a container on an unknown network, explicitly and by default",
	  F("berth.ini", "[network lan]\nsubnet = 10.1.0.0/24\n",
	    "containers.d/a.ini", "[container]\nrootfs = /r\ncommand = x\nnetworks = lan, wan\n",
	    "containers.d/b.ini", "[container]\nrootfs = /r\ncommand = x\n"),
	  "containers.d/a.ini:4: [container] networks: unknown network 'wan'\n"
	  "containers.d/b.ini:1: [container] networks: unknown network 'default' (the default when networks is not given)" },
	{ "static addresses: outside, gateway, taken twice",
	  F("containers.d/a.ini", "[container]\nrootfs = /r\ncommand = x\nip = 10.99.0.5\nip6 = fd88::1\n",
	    "containers.d/b.ini", "[container]\nrootfs = /r\ncommand = x\nip = 10.88.0.5\n",
	    "containers.d/c.ini", "[container]\nrootfs = /r\ncommand = x\nip = 10.88.0.5\n"),
	  "containers.d/a.ini:4: [container] ip: 10.99.0.5 is outside the subnets of the container's networks\n"
	  "containers.d/a.ini:5: [container] ip6: fd88::1 is the gateway of network 'default'\n"
	  "containers.d/c.ini:4: [container] ip: 10.88.0.5 is also requested by container 'b' (containers.d/b.ini:4)" },
	{ "a static address inside the subnet but outside the range IPAM hands out",
	  F("berth.ini", "[network default]\nsubnet = 10.88.0.0/16\nrange = 10.88.1.0-10.88.1.255\n",
	    "containers.d/a.ini", "[container]\nrootfs = /r\ncommand = x\nip = 10.88.0.50\n"),
	  "containers.d/a.ini:4: [container] ip: 10.88.0.50 is outside the range of network 'default' (berth.ini:1)" },
	{ "a default_network that is not one of the container's networks",
	  F("berth.ini", "[network a]\nsubnet = 10.1.0.0/24\n[network b]\nsubnet = 10.2.0.0/24\n",
	    "containers.d/x.ini", "[container]\nrootfs = /r\ncommand = x\nnetworks = a, b\n"
	    "default_network = c\n",
	    "containers.d/y.ini", "[container]\nrootfs = /r\ncommand = x\nnetworks = a\n"
	    "default_network = b\n"),
	  "containers.d/x.ini:5: [container] default_network: 'c' is not one of the container's networks (a, b)\n"
	  "containers.d/y.ini:5: [container] default_network: 'b' is not one of the container's networks (a)" },
	{ "ip of the wrong family",
	  F("containers.d/a.ini", "[container]\nrootfs = /r\ncommand = x\nip = fd88::5\n"),
	  "containers.d/a.ini:4: [container] ip: 'fd88::5': expected an IPv4 address (IPv6 goes in ip6)" },
	{ "bad labels",
	  F("containers.d/a.ini", "[container]\nrootfs = /r\ncommand = x\nlabels = app=web, -x=1, tier, app=db, k=v!\n"),
	  "containers.d/a.ini:4: [container] labels: '-x=1': a label key is [prefix/]name with a name of letters, digits, '-', '_' and '.', starting and ending with a letter or digit\n"
	  "containers.d/a.ini:4: [container] labels: 'tier': expected KEY=VALUE\n"
	  "containers.d/a.ini:4: [container] labels: label 'app' is given twice\n"
	  "containers.d/a.ini:4: [container] labels: 'k=v!': a label value is at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit" },
	{ "a reserved word as a label key",
	  F("containers.d/a.ini", "[container]\nrootfs = /r\ncommand = x\nlabels = world=1\n"),
	  "containers.d/a.ini:4: [container] labels: 'world=1': 'world' is a reserved word of the policy language, not a label key" },
	{ "an empty [policy]",
	  F("policies.d/db.ini", "[policy]\n[ingress a]\nfrom = all\n"),
	  "policies.d/db.ini:1: [policy] select: missing (which containers the policy applies to; select = all for every one)" },
	{ "health checks: bad kinds, ports, paths, durations, retries",
	  F("containers.d/a.ini", "[container]\nrootfs = /r\ncommand = x\nhealth = udp:53\n",
	    "containers.d/b.ini", "[container]\nrootfs = /r\ncommand = x\nhealth = tcp:0\n"
	    "health_interval = 50ms\nhealth_timeout = 2d\nhealth_retries = 0\n"
	    "health_start_period = -1\non_unhealthy = kill\n",
	    "containers.d/c.ini", "[container]\nrootfs = /r\ncommand = x\nhealth = http:80x/\n",
	    "containers.d/d.ini", "[container]\nrootfs = /r\ncommand = x\nhealth = exec: \n",
	    "containers.d/e.ini", "[container]\nrootfs = /r\ncommand = x\nhealth = exec:test 'x\n",
	    "containers.d/f.ini", "[container]\nrootfs = /r\ncommand = x\nhealth_retries = 2\n"
	    "on_unhealthy = restart\n",
	    "containers.d/g.ini", "[container]\nrootfs = /r\ncommand = x\nhealth = http:8080\n"
	    "health_interval = 25h\n"),
	  "containers.d/a.ini:4: [container] health: 'udp:53': expected tcp:PORT, http:PORT/PATH or exec:COMMAND [ARG...]\n"
	  "containers.d/b.ini:4: [container] health: 'tcp:0': expected tcp:PORT with a PORT from 1 to 65535\n"
	  "containers.d/b.ini:5: [container] health_interval: '50ms': expected a duration from 100ms to 24h (e.g. 500ms, 10s, 2m; a bare number is seconds)\n"
	  "containers.d/b.ini:6: [container] health_timeout: '2d': expected a duration from 100ms to 1h (e.g. 500ms, 10s, 2m; a bare number is seconds)\n"
	  "containers.d/b.ini:7: [container] health_retries: '0': expected a number of probes from 1 to 1000\n"
	  "containers.d/b.ini:8: [container] health_start_period: '-1': expected a duration from 0s to 24h (e.g. 500ms, 10s, 2m; a bare number is seconds)\n"
	  "containers.d/b.ini:9: [container] on_unhealthy: 'kill': expected none or restart\n"
	  "containers.d/c.ini:4: [container] health: 'http:80x/': expected http:PORT/PATH with a PORT from 1 to 65535\n"
	  "containers.d/d.ini:4: [container] health: 'exec:': expected exec:COMMAND [ARG...]\n"
	  "containers.d/e.ini:4: [container] health: 'exec:test 'x': unterminated ' quote\n"
	  "containers.d/f.ini:4: [container] health_retries: only with health (what to check: health = tcp:PORT, http:PORT/PATH or exec:COMMAND)\n"
	  "containers.d/f.ini:5: [container] on_unhealthy: only with health (what to check: health = tcp:PORT, http:PORT/PATH or exec:COMMAND)\n"
	  "containers.d/g.ini:5: [container] health_interval: '25h': expected a duration from 100ms to 24h (e.g. 500ms, 10s, 2m; a bare number is seconds)" },
	{ "memory, cpus, restart, stop_timeout",
	  F("containers.d/a.ini", "[container]\nrootfs = /r\ncommand = x\nmemory = 64X\ncpus = 0\n"
	    "restart = sometimes\nstop_timeout = 1h\n"),
	  "containers.d/a.ini:4: [container] memory: '64X': expected bytes with an optional K, M or G suffix, at least 1M (e.g. 64M)\n"
	  "containers.d/a.ini:5: [container] cpus: '0': expected a number of CPUs from 0.001 to 1024 (e.g. 0.5)\n"
	  "containers.d/a.ini:6: [container] restart: 'sometimes': expected always, on-failure or no\n"
	  "containers.d/a.ini:7: [container] stop_timeout: '1h': expected a number of seconds from 0 to 3600" },
	{ "memory below 1M",
	  F("containers.d/a.ini", "[container]\nrootfs = /r\ncommand = x\nmemory = 512K\n"),
	  "containers.d/a.ini:4: [container] memory: '512K': expected bytes with an optional K, M or G suffix, at least 1M (e.g. 64M)" },
	{ "no rootfs, no command",
	  F("containers.d/a.ini", "[container]\nservice = a\n"),
	  "containers.d/a.ini:1: [container] image or rootfs: missing (what the container runs: image = REF, or rootfs = DIR)\n"
	  "containers.d/a.ini:1: [container] command: missing (what to run, e.g. command = httpd -f)" },
	{ "image and rootfs both, either order",
	  F("containers.d/a.ini", "[container]\nimage = busybox\ncommand = x\nrootfs = /r\n",
	    "containers.d/b.ini", "[container]\nrootfs = /r\nimage = busybox\n"),
	  "containers.d/a.ini:4: [container] image and rootfs: give one of the two (image on line 2)\n"
	  "containers.d/b.ini:3: [container] image and rootfs: give one of the two (rootfs on line 2)" },
	{ "a rootfs still needs a command; a bad image counts as given",
	  F("containers.d/a.ini", "[container]\nrootfs = /r\n",
	    "containers.d/b.ini", "[container]\nimage = Busybox\n"),
	  "containers.d/a.ini:1: [container] command: missing (what to run, e.g. command = httpd -f)\n"
	  "containers.d/b.ini:2: [container] image: 'Busybox': a repository name is lower case (expected [REGISTRY[:PORT]/]NAME[:TAG][@sha256:HEX], e.g. 127.0.0.1:5000/app:1)" },
	{ "pull: unknown value; pull and read_only with a rootfs",
	  F("containers.d/a.ini", "[container]\nimage = busybox\npull = sometimes\nread_only = perhaps\n",
	    "containers.d/b.ini", "[container]\nrootfs = /r\ncommand = x\npull = always\nread_only = no\n"),
	  "containers.d/a.ini:3: [container] pull: 'sometimes': expected missing, always or never\n"
	  "containers.d/a.ini:4: [container] read_only: 'perhaps': expected yes or no\n"
	  "containers.d/b.ini:4: [container] pull: only with image (a rootfs is not pulled)\n"
	  "containers.d/b.ini:5: [container] read_only: only with image (a rootfs is always mounted read-only)" },
	{ "image references: spaces, tag, digest, registry port, empty parts",
	  F("containers.d/a.ini", "[container]\nimage = busy box\n",
	    "containers.d/b.ini", "[container]\nimage = busybox:-x\n",
	    "containers.d/c.ini", "[container]\nimage = busybox@sha256:abc\n",
	    "containers.d/d.ini", "[container]\nimage = 127.0.0.1:50x0/app:1\n",
	    "containers.d/e.ini", "[container]\nimage = localhost//app\n",
	    "containers.d/f.ini", "[container]\nimage = app/:1\n"),
	  "containers.d/a.ini:2: [container] image: 'busy box': a reference is letters, digits, '.', '_', '-', '/', ':' and '@' (expected [REGISTRY[:PORT]/]NAME[:TAG][@sha256:HEX], e.g. 127.0.0.1:5000/app:1)\n"
	  "containers.d/b.ini:2: [container] image: 'busybox:-x': a tag is 1 to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-' (expected [REGISTRY[:PORT]/]NAME[:TAG][@sha256:HEX], e.g. 127.0.0.1:5000/app:1)\n"
	  "containers.d/c.ini:2: [container] image: 'busybox@sha256:abc': a digest is @sha256: and 64 lower-case hex digits (expected [REGISTRY[:PORT]/]NAME[:TAG][@sha256:HEX], e.g. 127.0.0.1:5000/app:1)\n"
	  "containers.d/d.ini:2: [container] image: '127.0.0.1:50x0/app:1': a registry is HOST or HOST:PORT (expected [REGISTRY[:PORT]/]NAME[:TAG][@sha256:HEX], e.g. 127.0.0.1:5000/app:1)\n"
	  "containers.d/e.ini:2: [container] image: 'localhost//app': each part of the name starts and ends with a letter or digit (expected [REGISTRY[:PORT]/]NAME[:TAG][@sha256:HEX], e.g. 127.0.0.1:5000/app:1)\n"
	  "containers.d/f.ini:2: [container] image: 'app/:1': each part of the name starts and ends with a letter or digit (expected [REGISTRY[:PORT]/]NAME[:TAG][@sha256:HEX], e.g. 127.0.0.1:5000/app:1)" },
	{ "unterminated quote in command, bad env, env set twice",
	  F("containers.d/a.ini", "[container]\nrootfs = /r\ncommand = sh -c 'echo hi\n"
	    "env = 1X=2\nenv = A=1\nenv = A=2\n"),
	  "containers.d/a.ini:3: [container] command: 'sh -c 'echo hi': unterminated ' quote\n"
	  "containers.d/a.ini:4: [container] env: '1X=2': expected NAME=VALUE with a NAME of letters, digits and '_'\n"
	  "containers.d/a.ini:6: [container] env: variable 'A' is set twice" },
	{ "a container file with a wrong section, a file name that is no DNS name",
	  F("containers.d/Web_1.ini", "[containr]\nrootfs = /r\n"),
	  "containers.d/Web_1.ini: no [container] section\n"
	  "containers.d/Web_1.ini:1: unknown section [containr] (did you mean [container]?)" },

	/* ---- policies.d ---- */
	{ "a policy without select",
	  F("policies.d/db.ini", "[policy]\ntypes = ingress\n[ingress a]\nfrom = all\n"),
	  "policies.d/db.ini:1: [policy] select: missing (which containers the policy applies to; select = all for every one)" },
	{ "a policy file without [policy]",
	  F("policies.d/db.ini", "[ingress a]\nfrom = all\n"),
	  "policies.d/db.ini: no [policy] section (it says which containers the policy selects: [policy] select = ...)" },
	{ "an unclosed 'in ('",
	  F("policies.d/db.ini", "[policy]\nselect = app=db, team in (ops, sre\n"),
	  "policies.d/db.ini:2:26: [policy] select: '(' is not closed" },
	{ "a selector with junk between terms",
	  F("policies.d/db.ini", "[policy]\nselect = app=db tier=x\n"),
	  "policies.d/db.ini:2:17: [policy] select: unexpected 't': terms are separated by ','" },
	{ "'all' mixed with other terms",
	  F("policies.d/db.ini", "[policy]\nselect = app=db, all\n"),
	  "policies.d/db.ini:2:18: [policy] select: 'all' stands alone: it cannot be combined with other terms" },
	{ "select = host",
	  F("policies.d/db.ini", "[policy]\nselect = host\n"),
	  "policies.d/db.ini:2:10: [policy] select: 'host' is a peer, not a selector: select takes label terms or all" },
	{ "a reserved word as a label key in a peer",
	  F("policies.d/db.ini", "[policy]\nselect = all\n[ingress a]\nfrom = app=x, world\n"),
	  "policies.d/db.ini:4:15: [ingress a] from: 'world' is a reserved word, not a label key: write it alone on its line" },
	{ "an invalid label key and an empty set",
	  F("policies.d/db.ini", "[policy]\nselect = -app=x\n[egress a]\nto = team notin ()\n"),
	  "policies.d/db.ini:2:10: [policy] select: '-app': a label key is [prefix/]name with a name of letters, digits, '-', '_' and '.', starting and ending with a letter or digit\n"
	  "policies.d/db.ini:4:17: [egress a] to: the set is empty" },
	{ "a selector that starts with an operator",
	  F("policies.d/db.ini", "[policy]\nselect = =x\n"),
	  "policies.d/db.ini:2:10: [policy] select: unexpected '=': expected a label key" },
	{ "an unknown peer kind",
	  F("policies.d/db.ini", "[policy]\nselect = app=db\n[egress out]\nto = dns:example.com\n"),
	  "policies.d/db.ini:4:6: [egress out] to: unknown peer kind 'dns:' (expected a selector, cidr:A/B, host, world or all)" },
	{ "excepts: outside, other family, the whole CIDR, host bits",
	  F("policies.d/db.ini", "[policy]\nselect = app=db\n[egress out]\n"
	    "to = cidr:10.0.0.0/8 except 11.0.0.0/16\n"
	    "to = cidr:10.0.0.0/8 except fd00::/8\n"
	    "to = cidr:10.0.0.0/8 except 10.0.0.0/8\n"
	    "to = cidr:10.0.0.1/8\n"),
	  "policies.d/db.ini:4:29: [egress out] to: except 11.0.0.0/16 is not inside 10.0.0.0/8\n"
	  "policies.d/db.ini:5:29: [egress out] to: except fd00::/8 is IPv6 but the CIDR is IPv4\n"
	  "policies.d/db.ini:6:29: [egress out] to: except 10.0.0.0/8 is the whole CIDR\n"
	  "policies.d/db.ini:7:11: [egress out] to: 10.0.0.1/8: host bits set (did you mean 10.0.0.0/8?)" },
	{ "ports: 0, tpc, start after end, over 65535",
	  F("policies.d/db.ini", "[policy]\nselect = app=db\n[ingress api]\nports = 0/tcp, 53/tpc, 9-3/udp, 70000\n"),
	  "policies.d/db.ini:4:9: [ingress api] ports: '0/tcp': port 0 is not a port (1 to 65535)\n"
	  "policies.d/db.ini:4:16: [ingress api] ports: '53/tpc': protocol must be tcp, udp or sctp\n"
	  "policies.d/db.ini:4:24: [ingress api] ports: '9-3/udp': the range starts after it ends\n"
	  "policies.d/db.ini:4:33: [ingress api] ports: '70000': expected PORT, PORT/PROTO, START-END/PROTO or tcp, udp, sctp (ports are 1 to 65535)" },
	{ "a rule of a direction not in types",
	  F("policies.d/db.ini", "[policy]\nselect = app=db\ntypes = ingress\n[egress out]\nto = world\n"),
	  "policies.d/db.ini:4: [egress out] an egress rule, but types (line 3) does not include egress" },
	{ "a rule name used twice, unknown types",
	  F("policies.d/db.ini", "[policy]\nselect = app=db\ntypes = ingress, sideways\n"
	    "[ingress api]\nfrom = all\n[ingress api]\nfrom = host\n"),
	  "policies.d/db.ini:3:18: [policy] types: 'sideways': expected ingress and/or egress\n"
	  "policies.d/db.ini:6: [ingress api] rule name 'api' is also used on line 4" },
	{ "from in an egress rule, a repeated ports key, an empty rule",
	  F("policies.d/db.ini", "[policy]\nselect = all\n[egress a]\nfrom = all\nports = 53\nports = 80\n"
	    "[ingress b]\n[ingress c]\nfrom = all\n"),
	  "policies.d/db.ini:4: [egress a] 'from' is for ingress rules: an egress rule takes 'to' (and ports)\n"
	  "policies.d/db.ini:6: [egress a] ports: given twice (first on line 5); only from, to and env may repeat\n"
	  "policies.d/db.ini:7: [ingress b] empty section (a rule for every peer and port needs a key: write from = all or to = all)" },
	{ "unknown rule section, a rule without a name",
	  F("policies.d/db.ini", "[policy]\nselect = all\n[ingres api]\nfrom = all\n[egress]\nto = all\n"),
	  "policies.d/db.ini:3: unknown section [ingres api] (did you mean [ingress api]?)\n"
	  "policies.d/db.ini:5: [egress] a rule needs a name: [egress NAME]" },
	{ "errors from several files, sorted by file and line",
	  F("policies.d/z.ini", "[policy]\nselect = app=\n[ingress a]\nports = 0\n",
	    "containers.d/y.ini", "[container]\nrootfs = x\ncommand = y\n",
	    "berth.ini", "[daemon]\nrun_dir = run\n"),
	  "berth.ini:2: [daemon] run_dir: 'run': expected an absolute path\n"
	  "containers.d/y.ini:2: [container] rootfs: 'x': expected an absolute path\n"
	  "policies.d/z.ini:4:9: [ingress a] ports: '0': port 0 is not a port (1 to 65535)" },
};

static void test_broken(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(broken); i++)
		T_STREQ(load(mkconf(broken[i].files), NULL), broken[i].want, "%s", broken[i].what);
}

static const char *fmt_ip(const struct ip_addr *a)
{
	static char b[4][IP_STRLEN];
	static int k;

	return ip_format(a, b[k++ % 4]);
}

static void test_examples(void)
{
	char path[4200], sum[128];
	struct config *c = NULL;
	const struct cfg_container *web, *client;
	const struct policy *p;

	snprintf(path, sizeof(path), "%s/rootfs/etc/berth", getenv("BERTH_TOP") ? getenv("BERTH_TOP") : ".");
	T_STREQ(load(path, &c), "ok", "the shipped examples in rootfs/etc/berth pass");
	if (!c)
		return;
	T_STREQ(config_summary(c, sum, sizeof(sum)), "1 network, 2 containers, 2 policies, 1 service",
		"summary of the examples");
	T_OK(c->n_services == 1 && !strcmp(c->services[0].name, "frontend") &&
	     c->services[0].n_ports == 1 && c->services[0].ports[0].port == 80 &&
	     c->services[0].ports[0].target == 80 && c->services[0].vip_auto &&
	     c->networks[0].service_range.len == 24,
	     "the example service: frontend, port 80, a VIP from the /24 service range");
	web = config_container(c, "web");
	client = config_container(c, "client");
	T_OK(web && client, "containers are named after their files");
	if (web) {
		T_EQ(web->n_env, 2, "web has two env lines");
		T_STREQ(web->n_env == 2 ? web->env[1] : "", "GREETING=hello, world",
			"an env value keeps its comma");
		T_EQ(web->n_ports, 3, "web publishes three ports");
		T_OK(web->n_ports == 3 && web->ports[1].has_host_ip &&
		     !strcmp(fmt_ip(&web->ports[1].host_ip), "127.0.0.1") &&
		     web->ports[1].host_first == 9000 && web->ports[1].proto == IPPROTO_TCP,
		     "127.0.0.1:9000:9000/tcp parsed");
		T_EQ(web->memory, 64 << 20, "memory 64M");
		T_EQ(web->cpus_milli, 500, "cpus 0.5");
		T_EQ(web->restart, RESTART_ALWAYS, "restart always");
		T_STREQ(fmt_ip(&web->ip6), "fd88::50", "static ip6");
		T_EQ(web->argc, 6, "command split into 6 words");
	}
	if (client) {
		T_EQ(client->argc, 3, "a quoted shell script is one word");
		T_STREQ(client->argc == 3 ? client->argv[2] : "",
			"while true; do wget -q -O /dev/null http://web.berth.internal/; sleep 10; done",
			"single quotes keep ';' and spaces");
		T_STREQ(client->n_networks ? client->networks[0] : "", "default",
			"networks defaults to default");
		T_EQ(client->stop_timeout, 10, "stop_timeout defaults to 10 s");
	}
	p = c->n_policies == 2 ? &c->policies[0] : NULL;
	T_OK(p && !strcmp(p->name, "client") && p->types == POLICY_EGRESS && p->n_rules == 2,
	     "policy client: egress, two rules");
	if (p && p->n_rules == 2) {
		const struct rule *r = &p->rules[1];

		T_EQ(r->n_peers, 2, "two 'to' lines are two peers");
		T_OK(r->n_peers == 2 && r->peers[0].kind == PEER_CIDR && r->peers[0].n_except == 3 &&
		     r->peers[1].kind == PEER_WORLD, "cidr with three excepts, then world");
		T_OK(r->n_ports == 4 && r->ports[3].first == 8000 && r->ports[3].last == 8100 &&
		     r->ports[0].proto == IPPROTO_UDP, "ports 53/udp ... 8000-8100/tcp");
	}
	config_free(c);
}

/* default_network picks one of the networks; without it, the first. */
static void test_default_network(void)
{
	static const char ini[] = "[network a]\nsubnet = 10.1.0.0/24\n[network b]\nsubnet = 10.2.0.0/24\n";
	struct config_opts o = { .resolv_conf = resolv };
	struct config_file f[] = {
		{ "berth.ini", ini, sizeof(ini) - 1 },
		{ "containers.d/x.ini", "[container]\nrootfs = /r\ncommand = x\nnetworks = a, b\n"
		  "default_network = b\n", 0 },
		{ "containers.d/y.ini", "[container]\nrootfs = /r\ncommand = x\nnetworks = b, a\n", 0 },
	};
	struct config_errors errs = { 0 };
	struct config *c = NULL;
	const struct cfg_container *x, *y;

	for (size_t i = 1; i < ARRAY_SIZE(f); i++)
		f[i].len = strlen(f[i].text);
	T_EQ(config_load_files(f, ARRAY_SIZE(f), "test", &o, &c, &errs), 0,
	     "containers on two networks, one with default_network");
	config_errors_free(&errs);
	if (!c)
		return;
	x = config_container(c, "x");
	y = config_container(c, "y");
	T_OK(x && x->default_net == 1 && !strcmp(x->networks[x->default_net], "b"),
	     "default_network = b makes the second network the default");
	T_OK(y && y->default_net == 0 && !strcmp(y->networks[y->default_net], "b"),
	     "without it the first network in networks order is the default");
	config_free(c);
}

static void test_default(void)
{
	struct config_opts o = { .resolv_conf = resolv };
	struct config_errors errs = { 0 };
	struct config *c = NULL;
	const struct cfg_network *n;
	char b[2 * IP_STRLEN + 2];

	T_EQ(config_load(NULL, &o, &c, &errs), 0, "the embedded default loads");
	T_EQ(errs.n, 0, "without errors");
	if (!c)
		return;
	n = config_network(c, "default");
	T_OK(n && !strcmp(n->bridge, "berth0"), "network default on berth0");
	if (n) {
		T_STREQ(fmt_ip(&n->gateway), "10.88.0.1", "gateway 10.88.0.1");
		T_STREQ(fmt_ip(&n->gateway6), "fd88::1", "gateway6 fd88::1");
		T_STREQ(n->n_ranges ? ip_range_format(&n->ranges[0], b) : "", "10.88.0.1-10.88.255.254",
			"range: the subnet without network and broadcast");
		T_OK(n->masquerade && !n->isolate && n->mtu == 1500, "masquerade yes, isolate no, mtu 1500");
	}
	T_STREQ(c->dns.domain, "berth.internal", "domain berth.internal");
	T_OK(c->dns.ttl == 10 && c->dns.cache == 4096 && c->dns.host, "ttl 10, cache 4096, host yes");
	T_EQ(c->dns.n_upstreams, 2, "upstreams from resolv.conf, without 127.0.0.53 nor a scoped address");
	if (c->dns.n_upstreams == 2) {
		T_STREQ(fmt_ip(&c->dns.upstreams[0]), "192.0.2.1", "first nameserver");
		T_STREQ(fmt_ip(&c->dns.upstreams[1]), "2001:db8::53", "second nameserver");
	}
	T_STREQ(c->daemon.state_dir, "/var/lib/berth", "state_dir default");
	T_STREQ(c->daemon.run_dir, "/run/berth", "run_dir default");
	config_free(c);
}

/* Containers from images: the keys, their defaults, command optional;
 * [images] and its defaults. */
static void test_image(void)
{
	static const char digest[] = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef"
				     "0123456789abcdef";
	char ref[160];
	struct config *c = NULL;
	const struct cfg_container *a, *b, *r;
	const char *dir;

	snprintf(ref, sizeof(ref), "127.0.0.1:5000/team/app:1.0@%s", digest);
	{
		char bt[256];

		snprintf(bt, sizeof(bt), "[container]\nimage = %s\npull = never\nread_only = no\n"
			 "command = sh -c 'echo hi'\n", ref);
		dir = mkconf(F("containers.d/a.ini", "[container]\nimage = busybox\n",
			       "containers.d/b.ini", bt,
			       "containers.d/r.ini", "[container]\nrootfs = /r\ncommand = x\n"));
		T_STREQ(load(dir, &c), "ok", "an image without command, one with every key, a rootfs");
	}
	if (!c)
		return;
	a = config_container(c, "a");
	b = config_container(c, "b");
	r = config_container(c, "r");
	T_OK(a && !strcmp(a->image, "busybox") && !a->rootfs && a->lines.image == 2,
	     "image = busybox: image set, rootfs NULL, its line kept");
	T_OK(a && a->pull == PULL_MISSING && a->read_only && !a->argv && !a->argc,
	     "defaults: pull missing, read_only yes, no command (the image's Cmd)");
	T_OK(b && !strcmp(b->image, ref) && b->pull == PULL_NEVER && !b->read_only,
	     "a registry with a port, a tag and a digest; pull never, read_only no");
	T_OK(b && b->argc == 3 && !strcmp(b->argv[2], "echo hi"), "a command replaces Cmd");
	T_OK(r && !r->image && !strcmp(r->rootfs, "/r"), "a rootfs container has no image");
	T_STREQ(c->images.ca, "/etc/ssl/certs/ca-certificates.crt", "[images] ca default");
	T_OK(!c->images.credentials && !c->images.allow_devices,
	     "[images] credentials none, allow_devices no by default");
	config_free(c);
	c = NULL;

	dir = mkconf(F("berth.ini", "[images]\nca = /etc/berth/ca.pem\ncredentials = /etc/berth/auth.json\n"
		       "allow_devices = yes\n"));
	T_STREQ(load(dir, &c), "ok", "[images] with every key");
	if (!c)
		return;
	T_OK(!strcmp(c->images.ca, "/etc/berth/ca.pem") &&
	     !strcmp(c->images.credentials, "/etc/berth/auth.json") && c->images.allow_devices,
	     "[images] ca, credentials, allow_devices as given");
	config_free(c);
}

/* Health checks: each kind, the defaults, durations in every unit. */
static void test_health(void)
{
	struct config *c = NULL;
	const struct cfg_container *a, *b, *x, *n;
	const char *dir;

	dir = mkconf(F("containers.d/a.ini", "[container]\nrootfs = /r\ncommand = x\n"
		       "health = tcp:8080\n",
		       "containers.d/b.ini", "[container]\nrootfs = /r\ncommand = x\n"
		       "health = http:80/healthz?full=1\nhealth_interval = 500ms\n"
		       "health_timeout = 2\nhealth_retries = 5\nhealth_start_period = 1m\n"
		       "on_unhealthy = restart\n",
		       "containers.d/x.ini", "[container]\nrootfs = /r\ncommand = x\n"
		       "health = exec:sh -c 'test -f /tmp/ok'\nhealth_interval = 1h\n",
		       "containers.d/n.ini", "[container]\nrootfs = /r\ncommand = x\n"));
	T_STREQ(load(dir, &c), "ok", "a tcp, an http and an exec check, and none");
	if (!c)
		return;
	a = config_container(c, "a");
	b = config_container(c, "b");
	x = config_container(c, "x");
	n = config_container(c, "n");
	T_OK(a && a->health.kind == HEALTH_TCP && a->health.port == 8080, "tcp:8080");
	T_OK(a && a->health.interval_ms == 10000 && a->health.timeout_ms == 5000 &&
	     a->health.retries == 3 && a->health.start_period_ms == 0 &&
	     a->health.on_unhealthy == ON_UNHEALTHY_NONE,
	     "defaults: interval 10s, timeout 5s, retries 3, start_period 0, on_unhealthy none");
	T_OK(b && b->health.kind == HEALTH_HTTP && b->health.port == 80 &&
	     !strcmp(b->health.path, "/healthz?full=1"), "http:80/healthz?full=1");
	T_OK(b && b->health.interval_ms == 500 && b->health.timeout_ms == 2000 &&
	     b->health.retries == 5 && b->health.start_period_ms == 60000 &&
	     b->health.on_unhealthy == ON_UNHEALTHY_RESTART,
	     "500ms, a bare 2 (seconds), retries 5, 1m, on_unhealthy restart");
	T_OK(x && x->health.kind == HEALTH_EXEC && x->health.argc == 3 &&
	     !strcmp(x->health.argv[0], "sh") && !strcmp(x->health.argv[2], "test -f /tmp/ok") &&
	     !x->health.argv[3] && x->health.interval_ms == 3600000,
	     "exec: split like command (quotes), 1h");
	T_OK(n && n->health.kind == HEALTH_NONE, "no health key: no check");
	config_free(c);
	c = NULL;
	dir = mkconf(F("containers.d/h.ini", "[container]\nrootfs = /r\ncommand = x\n"
		       "health = HTTP:8080\n"));
	T_STREQ(load(dir, &c), "ok", "http:PORT without a path");
	if (!c)
		return;
	a = config_container(c, "h");
	T_OK(a && a->health.kind == HEALTH_HTTP && !strcmp(a->health.path, "/"),
	     "the path defaults to /, the kind is case-insensitive");
	config_free(c);
}

static void test_syntax(void)
{
	struct config *c = NULL;
	const char *dir;

	/* continuation lines, indented keys, CRLF, comments, an empty berth.ini */
	dir = mkconf(F("berth.ini", "[daemon]\r\n  state_dir = /s ; inline\r\n  run_dir = /r\r\n"
		       "[dns]\nupstream = 192.0.2.7,\n    192.0.2.8 ; two\n",
		       "containers.d/a.ini", "[container]\nrootfs = /r\ncommand = sh -c\n"
		       "    \"echo \\\"hi there\\\"\"\nlabels = example.com/app=a,\n  tier=\n"));
	T_STREQ(load(dir, &c), "ok", "continuations, indented keys, CRLF and comments load");
	if (c) {
		const struct cfg_container *a = config_container(c, "a");

		T_STREQ(c->daemon.state_dir, "/s", "an indented key is a key, its comment dropped");
		T_STREQ(c->daemon.run_dir, "/r", "the next indented key too");
		T_EQ(c->dns.n_upstreams, 2, "a continued list has both items");
		T_OK(a && a->argc == 3 && !strcmp(a->argv[2], "echo \"hi there\""),
		     "a command continued on the next line, with \\\" inside double quotes");
		T_OK(a && a->n_labels == 2 && !strcmp(a->labels[0].key, "example.com/app") &&
		     !strcmp(a->labels[1].value, ""), "a prefixed label key and an empty value");
		T_EQ(c->dns.n_upstreams ? c->dns.upstreams[1].b[3] : 0, 8, "continued item parsed");
		config_free(c);
	}
	dir = mkconf(F("containers.d/p.ini", "[container]\nrootfs = /r\ncommand = x\n"
		       "ports = 8000-8010:9000-9010/UDP, [::1]:8080:80, 5353:53/udp, 5353:53/tcp\n"));
	T_STREQ(load(dir, &c), "ok", "port ranges, an IPv6 host address, one port on two protocols");
	if (c) {
		const struct cfg_port *p = c->containers[0]->ports;

		T_EQ(c->containers[0]->n_ports, 4, "four port mappings");
		T_OK(p[0].host_first == 8000 && p[0].host_last == 8010 && p[0].first == 9000 &&
		     p[0].last == 9010 && p[0].proto == IPPROTO_UDP, "8000-8010:9000-9010/UDP");
		T_OK(p[1].has_host_ip && !strcmp(fmt_ip(&p[1].host_ip), "::1") &&
		     p[1].host_first == 8080 && p[1].first == 80 && p[1].proto == IPPROTO_TCP,
		     "[::1]:8080:80 is tcp on ::1");
		config_free(c);
	}
	/* DESIGN §3's policy example, exactly */
	dir = mkconf(F("policies.d/db.ini", "; policies.d/db.ini\n[policy]\nselect = app=db\n"
		       "types  = ingress, egress           ; optional\n"
		       "[ingress api]                      ; one section per rule\n"
		       "from  = app=api                    ; each from/to line is one peer\n"
		       "from  = app=admin, team in (ops,sre)\nports = 5432/tcp\n"
		       "[egress dns-and-updates]\nto    = cidr:0.0.0.0/0 except 10.0.0.0/8 172.16.0.0/12\n"
		       "to    = world\nports = 53/udp, 443/tcp, 8000-8100/tcp\n"));
	T_STREQ(load(dir, &c), "ok", "DESIGN's db.ini loads");
	if (c) {
		const struct policy *p = &c->policies[0];
		static const struct label admin[] = { { "app", "admin" }, { "team", "sre" } };

		T_OK(!strcmp(p->name, "db") && p->types_given &&
		     p->types == (POLICY_INGRESS | POLICY_EGRESS) && p->n_rules == 2,
		     "policy db: both types, two rules");
		T_OK(p->rules[0].n_peers == 2 && p->rules[0].peers[1].sel.n_terms == 2 &&
		     selector_match(&p->rules[0].peers[1].sel, admin, 2),
		     "from = app=admin, team in (ops,sre) matches an sre admin");
		T_OK(p->rules[1].peers[0].n_except == 2 && p->rules[1].peers[0].except[1].len == 12,
		     "two excepts, 172.16.0.0/12 second");
		config_free(c);
	}
	dir = mkconf(F("berth.ini", "[remote]\nlisten = [::]:7443\ncert = /c\nkey = /k\nclient_ca = /ca\n"
		       "read_only = sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef,\n"
		       "  sha256:FEDCBA9876543210FEDCBA9876543210FEDCBA9876543210FEDCBA9876543210\n"
		       "clients = sha256:1111111111111111111111111111111111111111111111111111111111111111\n"));
	T_STREQ(load(dir, &c), "ok", "a [remote] section with two read-only hashes");
	if (c) {
		T_OK(c->remote.enabled && c->remote.port == 7443 && c->remote.addr.family == AF_INET6,
		     "listen [::]:7443");
		T_OK(c->remote.n_read_only == 2 && c->remote.read_only[1][0] == 0xfe &&
		     c->remote.read_only[0][31] == 0xef, "hashes decoded");
		T_OK(c->remote.n_clients == 1 && c->remote.clients[0][0] == 0x11,
		     "clients = pins one key");
		config_free(c);
	}
	T_STREQ(load(mkconf(F("berth.ini", "")), NULL), "ok", "an empty berth.ini means every default");
	T_STREQ(load(mkconf(F("berth.ini", "; only comments\n# and these\n\n")), NULL), "ok",
		"comments only");
	{
		/* once ENOTDIR one run in ten: the loader read the st_mode of a
		 * stat that had failed */
		char missing[4096], want[4096 + 64];

		snprintf(missing, sizeof(missing), "%s/missing/berth",
			 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
		snprintf(want, sizeof(want), "%s: No such file or directory", missing);
		T_STREQ(load(missing, NULL), want, "a missing directory is one error");
	}
	/* several errors in one file all reported, each with its line */
	dir = mkconf(F("berth.ini", "[daemon]\nfoo\nbar\n[dns]\nbaz\n"));
	T_STREQ(load(dir, NULL), "berth.ini:2: expected KEY = VALUE, a [section] or a ; comment\n"
		"berth.ini:3: expected KEY = VALUE, a [section] or a ; comment\n"
		"berth.ini:5: expected KEY = VALUE, a [section] or a ; comment",
		"every line without '=' is reported, not only inih's first");
	/* a value of exactly the maximum length is accepted */
	{
		char text[400];

		snprintf(text, sizeof(text), "[daemon]\nstate_dir = /%0*d\n", CONFIG_LINE_MAX - 13, 0);
		T_STREQ(load(mkconf(F("berth.ini", text)), NULL), "ok", "a 197-character line is fine");
	}
}

static void test_selectors(void)
{
	static const struct label web[] = { { "app", "web" }, { "tier", "frontend" } };
	static const struct label bare[] = { { "other", "x" } };
	static const struct {
		const char *sel;
		bool web, bare;
	} t[] = {
		{ "app=web", true, false },
		{ "app==web", true, false },
		{ "app!=web", false, true },        /* != matches without the key */
		{ "app!=db", true, true },
		{ "app in (web, db)", true, false },
		{ "app notin (web)", false, true }, /* notin matches without the key */
		{ "app notin (db,api)", true, true },
		{ "app", true, false },
		{ "!app", false, true },
		{ "app=web, tier=frontend", true, false },
		{ "app=web,tier=backend", false, false },
		{ "  app = web ,  ! tier ", false, false },
		{ "all", true, true },
		{ "unknown=x", false, false },      /* unknown keys match nothing */
		{ "unknown!=x", true, true },
	};
	struct cfg_alloc *m = cfg_alloc_new();

	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		struct selector s;
		struct err e = { 0 };
		int r = selector_parse(m, t[i].sel, &s, NULL, &e);

		T_EQ(r, 0, "'%s' parses %s", t[i].sel, e.msg);
		if (r)
			continue;
		T_EQ(selector_match(&s, web, ARRAY_SIZE(web)), t[i].web,
		     "'%s' on {app=web, tier=frontend}", t[i].sel);
		T_EQ(selector_match(&s, bare, ARRAY_SIZE(bare)), t[i].bare, "'%s' on {other=x}",
		     t[i].sel);
	}
	cfg_alloc_free(m);
}

static void test_ports(void)
{
	struct port_match p;

	T_OK(port_match_parse("UDP", &p, NULL) == 0 && p.any_port && p.proto == IPPROTO_UDP,
	     "a bare protocol, case-insensitive, is every port of it");
	T_OK(port_match_parse("8000-8100", &p, NULL) == 0 && p.proto == IPPROTO_TCP &&
	     p.first == 8000 && p.last == 8100, "START-END without a protocol is tcp");
	T_OK(port_match_parse("5432/SCTP", &p, NULL) == 0 && p.proto == IPPROTO_SCTP &&
	     p.first == 5432 && p.last == 5432, "PORT/PROTO");
	T_OK(port_match_parse("65536", &p, NULL) < 0, "65536 rejected");
}

/* ---- the key tables: config_doc and `berth config keys` ---------------- */

/* Where a key of each documented section goes, to ask the parser about it. */
static const struct {
	const char *section;        /* as config_doc names it */
	const char *spec;           /* its keys, as DESIGN §3 and config.h describe them */
	const char *path, *head;    /* a file that holds the section, up to the key */
} doc_sections[] = {
	{ "daemon", "state_dir run_dir log_level", "berth.ini", "[daemon]\n" },
	{ "network NAME", "bridge subnet gateway subnet6 gateway6 range service_range service_range6 "
	  "masquerade isolate mtu",
	  "berth.ini", "[network n]\n" },
	{ "dns", "domain upstream resolv_conf ttl cache host", "berth.ini", "[dns]\n" },
	{ "remote", "listen cert key client_ca read_only clients", "berth.ini", "[remote]\n" },
	{ "images", "ca credentials allow_devices", "berth.ini", "[images]\n" },
	{ "container", "name rootfs image pull read_only command env labels networks default_network ports service ip ip6 restart "
	  "memory cpus stop_timeout init log_size health health_interval health_timeout "
	  "health_retries health_start_period on_unhealthy", "containers.d/a.ini", "[container]\n" },
	{ "policy", "select types", "policies.d/p.ini", "[policy]\n" },
	{ "ingress|egress NAME", "from to ports", "policies.d/p.ini",
	  "[policy]\nselect = all\n[ingress r]\n" },
	/* in berth.ini, after a network whose service range vip = auto needs */
	{ "service", "network select ports vip balance affinity publish", "berth.ini",
	  "[network default]\nsubnet = 10.88.0.0/16\nservice_range = 10.96.0.0/16\n[service s]\n" },
};

/* One file in memory through config_load_files: every message, or "ok". */
static const char *load_text(const char *path, const char *text)
{
	static char buf[4096];
	struct config_opts o = { .resolv_conf = resolv };
	struct config_file f = { path, text, strlen(text) };
	struct config_errors errs = { 0 };
	struct config *c = NULL;
	size_t n = 0;

	buf[0] = '\0';
	if (config_load_files(&f, 1, "test", &o, &c, &errs) == 0)
		snprintf(buf, sizeof(buf), "ok");
	for (size_t i = 0; i < errs.n && n < sizeof(buf); i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? "\n" : "", errs.v[i].msg);
	config_errors_free(&errs);
	config_free(c);
	return buf;
}

static void append(char *buf, size_t size, const char *word)
{
	size_t n = strlen(buf);

	snprintf(buf + n, size - n, "%s%s", n ? " " : "", word);
}

static bool has_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; (p = strstr(p, word)); p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || !p[n]))
			return true;
	return false;
}

static void test_doc(void)
{
	char candidates[1024] = "", buf[128];
	struct cfg_key_doc d;
	size_t rows = 0;
	bool complete = true;

	/* every key of every section, and the spec's too: the parser is asked
	 * about each of them in each section */
	for (size_t i = 0; config_doc(i, &d, buf, sizeof(buf)); i++, rows++) {
		complete &= d.file && d.section && d.key && d.type && d.value && d.help &&
			    *d.value && *d.help;
		if (!has_word(candidates, d.key))
			append(candidates, sizeof(candidates), d.key);
	}
	T_OK(rows > 40 && complete, "config_doc lists %zu keys, each with file, section, type, "
	     "value and help", rows);
	for (size_t i = 0; i < ARRAY_SIZE(doc_sections); i++) {
		char spec[256];
		const char *p = doc_sections[i].spec;

		snprintf(spec, sizeof(spec), "%s", p);
		for (char *w = strtok(spec, " "); w; w = strtok(NULL, " "))
			if (!has_word(candidates, w))
				append(candidates, sizeof(candidates), w);
	}
	for (size_t i = 0; i < ARRAY_SIZE(doc_sections); i++) {
		char documented[256] = "", accepted[256] = "", cand[1300], text[512];

		for (size_t k = 0; config_doc(k, &d, buf, sizeof(buf)); k++)
			if (!strcmp(d.section, doc_sections[i].section))
				append(documented, sizeof(documented), d.key);
		T_STREQ(documented, doc_sections[i].spec, "[%s]: config_doc lists its keys",
			doc_sections[i].section);
		/* the documented keys first, so that the lists compare in order */
		snprintf(cand, sizeof(cand), "%s %s", documented, candidates);
		for (char *w = strtok(cand, " "); w; w = strtok(NULL, " ")) {
			char unknown[96];

			snprintf(text, sizeof(text), "%s%s = x\n", doc_sections[i].head, w);
			snprintf(unknown, sizeof(unknown), "] unknown key '%s'", w);
			if (!has_word(accepted, w) &&
			    !strstr(load_text(doc_sections[i].path, text), unknown))
				append(accepted, sizeof(accepted), w);
		}
		T_STREQ(accepted, documented, "[%s]: the keys the parser accepts are the documented "
			"ones", doc_sections[i].section);
	}
	/* every default as written is a valid value (the parser makes the
	 * default of an absent key from it) */
	for (size_t i = 0; i < ARRAY_SIZE(doc_sections); i++) {
		static const char *const required[] = { "subnet = 10.1.0.0/24",
			"listen = 127.0.0.1:7443", "cert = /c", "key = /k", "client_ca = /ca",
			"select = all", "ports = 80" };
		char text[1024], line[128];
		int given = 0;

		snprintf(text, sizeof(text), "%s", doc_sections[i].head);
		for (size_t k = 0; config_doc(k, &d, buf, sizeof(buf)); k++) {
			if (strcmp(d.section, doc_sections[i].section))
				continue;
			line[0] = '\0';
			for (size_t r = 0; d.required && r < ARRAY_SIZE(required); r++)
				if (!strncmp(required[r], d.key, strlen(d.key)) &&
				    required[r][strlen(d.key)] == ' ')
					snprintf(line, sizeof(line), "%s\n", required[r]);
			if (d.def)
				snprintf(line, sizeof(line), "%s = %s\n", d.key, d.def);
			given += !!d.def;
			strncat(text, line, sizeof(text) - strlen(text) - 1);
		}
		if (!strcmp(doc_sections[i].section, "ingress|egress NAME"))
			strncat(text, "from = all\n", sizeof(text) - strlen(text) - 1);
		if (!strcmp(doc_sections[i].section, "container"))   /* one of rootfs and image;
								       * health_* need a check */
			strncat(text, "image = busybox\nhealth = tcp:80\n", sizeof(text) - strlen(text) - 1);
		T_STREQ(load_text(doc_sections[i].path, text), "ok",
			"[%s]: its %d defaults, written out, load", doc_sections[i].section, given);
	}
}

/* The output of config_cmd(argv) on stdout, and its exit code. */
static int run_config_cmd(bool json, const char *const *argv, char *out, size_t size)
{
	char path[4400];
	int argc = 0, saved, fd, ret;
	FILE *f;

	while (argv[argc])
		argc++;
	snprintf(path, sizeof(path), "%s/stdout", top);
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (saved < 0 || fd < 0 || dup2(fd, STDOUT_FILENO) < 0) {
		perror(path);
		exit(2);
	}
	close(fd);
	ret = config_cmd(NULL, json, argc, (char **)argv);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	f = fopen(path, "r");
	out[f ? fread(out, 1, size - 1, f) : 0] = '\0';
	if (f)
		fclose(f);
	return ret;
}

static void test_keys_cmd(void)
{
	static char out[32768];
	const char *net, *mtu, *next;

	T_EQ(run_config_cmd(false, F("config", "keys"), out, sizeof(out)), 0,
	     "berth config keys exits 0");
	net = strstr(out, "\n[network NAME] in berth.ini\n");
	mtu = net ? strstr(net, "\n  mtu ") : NULL;
	next = net ? strstr(net + 1, "\n[") : NULL;
	T_OK(mtu && (!next || mtu < next), "berth config keys lists [network NAME] mtu");
	if (mtu) {
		char line[160];

		snprintf(line, sizeof(line), "%.*s", (int)strcspn(mtu + 1, "\n"), mtu + 1);
		T_STREQ(line, "  mtu           uint     1500            576..9000 bytes",
			"mtu: type uint, default 1500, 576 to 9000 bytes");
		T_OK(strstr(mtu + 1 + strlen(line), "\n      the MTU of the bridge") ==
		     mtu + 1 + strlen(line), "its help on the next line");
	}
	T_OK(strstr(out, "\n  subnet        prefix   required        IPV4/LENGTH\n") &&
	     strstr(out, " NAME=VALUE (may repeat)\n"),
	     "required keys and keys that may repeat say so");
	T_EQ(run_config_cmd(true, F("config", "keys"), out, sizeof(out)), 0,
	     "berth config keys -o json exits 0");
	net = strstr(out, "{\"file\":\"berth.ini\",\"section\":\"network NAME\",\"keys\":[");
	mtu = net ? strstr(net, "{\"key\":\"mtu\",\"type\":\"uint\",\"value\":\"576..9000 bytes\","
			    "\"default\":\"1500\",\"required\":false,\"repeat\":false,\"help\":") : NULL;
	next = net ? strstr(net, "]}") : NULL;
	T_OK(!strncmp(out, "{\"sections\":[{\"file\":\"berth.ini\",\"section\":\"daemon\",", 52) &&
	     strlen(out) > 6 && !strcmp(out + strlen(out) - 6, "}]}]}\n"),
	     "-o json: one object, sections from [daemon] on");
	T_OK(mtu && next && mtu < next, "-o json: [network NAME] mtu with its default \"1500\"");
	T_OK(strstr(out, "{\"key\":\"gateway\",\"type\":\"address\",\"value\":\"IPV4\","
		    "\"default\":null,"), "-o json: a computed default is null");
}

/* config_load_cached: what a reload reads and parses. */
static const char *load_cached(const char *dir, struct config_cache *cache, struct config **out,
			       struct config_cache_stats *st)
{
	static char buf[4096];
	struct config_opts o = { .resolv_conf = resolv };
	struct config_errors errs = { 0 };
	size_t n = 0;

	*out = NULL;
	buf[0] = '\0';
	if (config_load_cached(dir, &o, cache, out, &errs) == 0)
		snprintf(buf, sizeof(buf), "ok");
	for (size_t i = 0; i < errs.n && n < sizeof(buf); i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? "\n" : "", errs.v[i].msg);
	config_errors_free(&errs);
	config_cache_stats(cache, st);
	return buf;
}

/* A file that is a symlink: its target changes where no watch of
 * containers.d sees it, and the next load still takes the change. */
static void test_cache_symlink(void)
{
	char target[4500], link[4500];
	const char *dir = mkconf(F("berth.ini", "[dns]\nupstream = 192.0.2.1\n"));
	struct config_cache *cache = config_cache_new();
	struct config_cache_stats st;
	struct config *c;

	snprintf(target, sizeof(target), "%s/outside.ini", dir);
	snprintf(link, sizeof(link), "%s/containers.d/app.ini", dir);
	write_file(target, "[container]\nrootfs = /srv/a1\ncommand = app\n");
	if (symlink(target, link) < 0) {
		perror(link);
		exit(2);
	}
	load_cached(dir, cache, &c, &st);
	config_free(c);
	T_EQ(st.parsed, 1, "a symlinked file is parsed");
	load_cached(dir, cache, &c, &st);
	config_free(c);
	/* (read again if this load came within a second of the write, as it
	 * does unless the machine stalls: either way, not parsed) */
	T_OK(st.parsed == 0 && st.read + st.reused == 1, "known by its signature, changed "
	     "within the last second, it is read again but not parsed (%zu parsed, %zu read)",
	     st.parsed, st.read);
	sleep(2);
	load_cached(dir, cache, &c, &st);
	config_free(c);
	T_OK(st.parsed == 0 && st.read + st.reused == 1, "read a second after its change, it is "
	     "read once more (%zu read)", st.read);
	load_cached(dir, cache, &c, &st);
	config_free(c);
	T_OK(st.read == 0 && st.reused == 1, "and then taken by its signature alone "
	     "(%zu read, %zu reused)", st.read, st.reused);
	write_file(target, "[container]\nrootfs = /srv/a2\ncommand = app\n");
	T_STREQ(load_cached(dir, cache, &c, &st), "ok", "a symlinked file whose target changed");
	T_STREQ(c && config_container(c, "app") ? config_container(c, "app")->rootfs : "?",
		"/srv/a2", "is loaded with its new text");
	config_free(c);
	config_cache_free(cache);
}

/* Two paths that differ only in case (the cache's index ignores case): the
 * load reports the clash, and nothing is lost (ASan's leak check). */
static void test_cache_case(void)
{
	const char *dir = mkconf(F("containers.d/Web.ini", "[container]\nrootfs = /srv/a\n"
				   "command = a\n", "containers.d/web.ini",
				   "[container]\nrootfs = /srv/b\ncommand = b\n"));
	struct config_cache *cache = config_cache_new();
	struct config_cache_stats st;
	struct config *c;

	for (int i = 0; i < 2; i++) {
		T_STREQ(load_cached(dir, cache, &c, &st), "containers.d/web.ini: [container] the "
			"name 'web' is also used by containers.d/Web.ini",
			"Web.ini and web.ini clash by name (load %d)", i + 1);
		config_free(c);
	}
	config_cache_free(cache);
}

static void test_cache(void)
{
	const char *dir = mkconf(F("containers.d/web.ini", "[container]\nrootfs = /srv/web\n"
				   "command = httpd -f\nports = 8080:80\nlabels = app=web\n",
				   "containers.d/db.ini", "[container]\nrootfs = /srv/db\ncommand = db\n",
				   "policies.d/p.ini", "[policy]\nselect = app=web\n[ingress a]\n"
				   "from = all\n"));
	struct config_cache *cache = config_cache_new();
	struct config *c1, *c2, *c3, *c4;
	struct config_cache_stats st;
	const struct cfg_container *w1, *w2;
	char p[4500];
	uint64_t h;

	T_STREQ(load_cached(dir, cache, &c1, &st), "ok", "a first load with a cache");
	T_OK(st.parsed == 3 && st.read == 0 && st.reused == 0, "parses every container and "
	     "policy file (%zu parsed, %zu read, %zu reused)", st.parsed, st.read, st.reused);
	T_STREQ(load_cached(dir, cache, &c2, &st), "ok", "again at once");
	T_OK(st.parsed == 0 && st.read == 0 && st.reused == 3, "files no event spoke of since "
	     "(inotify) are not even read (%zu parsed, %zu read, %zu reused)", st.parsed, st.read,
	     st.reused);
	w1 = config_container(c1, "web");
	w2 = config_container(c2, "web");
	T_OK(w1 && w2 && w1->hash == w2->hash && w1->rootfs == w2->rootfs,
	     "the two configs share the one parse of web.ini");

	/* the same size and, within a second, maybe the same mtime: still seen */
	snprintf(p, sizeof(p), "%s/containers.d/web.ini", dir);
	write_file(p, "[container]\nrootfs = /srv/weB\ncommand = httpd -f\nports = 8080:80\n"
		   "labels = app=web\n");
	T_STREQ(load_cached(dir, cache, &c3, &st), "ok", "a changed file");
	T_OK(st.parsed == 1 && st.reused == 2, "is parsed again, alone (%zu parsed, %zu reused)",
	     st.parsed, st.reused);
	T_STREQ(config_container(c3, "web")->rootfs, "/srv/weB", "and the config has its new text");
	T_OK(config_container(c3, "web")->hash != w1->hash, "with a new hash");
	T_STREQ(w1->rootfs, "/srv/web", "while an older config still holds its own");
	h = config_container(c3, "db")->hash;

	snprintf(p, sizeof(p), "%s/containers.d/db.ini", dir);
	write_file(p, "[container]\nrootfs = relative\ncommand = db\n");
	T_STREQ(load_cached(dir, cache, &c4, &st), "containers.d/db.ini:2: [container] rootfs: "
		"'relative': expected an absolute path", "a file broken since is reported");
	T_OK(!c4, "and the load fails");
	write_file(p, "[container]\nrootfs = /srv/db\ncommand = db\n");
	T_STREQ(load_cached(dir, cache, &c4, &st), "ok", "mended, it loads");
	T_EQ(config_container(c4, "db")->hash, h, "as the same container as before");
	config_free(c4);
	unlink(p);
	T_STREQ(load_cached(dir, cache, &c4, &st), "ok", "a file removed");
	T_OK(!config_container(c4, "db") && c4->n_containers == 1, "is gone from the config");
	config_cache_free(cache);
	T_STREQ(config_container(c4, "web")->rootfs, "/srv/weB", "configs outlive the cache");
	T_EQ(c2->n_policies, 1, "and keep their policies");
	T_STREQ(c2->policies[0].rules[0].name, "a", "whole");
	config_free(c4);
	test_cache_symlink();
	test_cache_case();
	config_free(c3);
	config_free(c2);
	config_free(c1);
}

int main(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(top, sizeof(top), "%s/test_config.XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(top)) {
		perror(top);
		return 2;
	}
	snprintf(resolv, sizeof(resolv), "%s/resolv.conf", top);
	write_file(resolv, "# test\nsearch example\nnameserver 192.0.2.1\nnameserver 127.0.0.53\n"
		   "nameserver fe80::1%eth0\nnameserver 2001:db8::53\n");
	test_broken();
	test_examples();
	test_default();
	test_default_network();
	test_image();
	test_health();
	test_syntax();
	test_selectors();
	test_ports();
	test_doc();
	test_keys_cmd();
	test_cache();
	{
		char cmd[4200];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", top);
	}
	return t_done();
}
