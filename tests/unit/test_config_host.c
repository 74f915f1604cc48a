/* test_config_host.c - the configuration against the host it runs on: at
 * most 1,023 containers per network (a bridge's ports), the file descriptors
 * the daemon holds for it against RLIMIT_NOFILE, and the resolv.conf its
 * upstreams come from ([dns] resolv_conf, read again as it changes). */
#include "runtime/config/config.h"
#include "runtime/ctl/ctl.h"
#include "runtime/ctl/tls.h"
#include "t.h"

#include <arpa/inet.h>
#include <unistd.h>

#define MAX_FILES 1100

static char paths[MAX_FILES][32];
static struct config_file files[MAX_FILES];

static const char container_text[] = "[container]\nrootfs = /\ncommand = sleep 1\n";

/* berth.ini plus n containers (on the default network unless networks);
 * returns the config or NULL with the errors, one per line, in msgs. */
static struct config *load(const char *ini, size_t n, const char *networks, char *msgs,
			   size_t size)
{
	static char text[MAX_FILES][96];
	struct config_opts o = { .resolv_conf = "/dev/null" };
	struct config_errors errs = { 0 };
	struct config *c = NULL;
	size_t k = 0, used = 0;

	files[k++] = (struct config_file){ "berth.ini", ini, strlen(ini) };
	for (size_t i = 0; i < n && k < MAX_FILES; i++, k++) {
		snprintf(paths[k], sizeof(paths[k]), "containers.d/c%zu.ini", i);
		snprintf(text[k], sizeof(text[k]), "%s%s%s%s", container_text,
			 networks ? "networks = " : "", networks ? networks : "",
			 networks ? "\n" : "");
		files[k] = (struct config_file){ paths[k], text[k], strlen(text[k]) };
	}
	msgs[0] = '\0';
	config_load_files(files, k, "test", &o, &c, &errs);
	for (size_t i = 0; i < errs.n && used < size; i++)
		used += (size_t)snprintf(msgs + used, size - used, "%s%s", i ? "\n" : "",
					 errs.v[i].msg);
	config_errors_free(&errs);
	return c;
}

static const char two_nets[] =
	"[network default]\nbridge = berth0\nsubnet = 10.88.0.0/16\n"
	"[network side]\nsubnet = 10.99.0.0/16\nsubnet6 = fd99::/64\n"
	"[dns]\nupstream = 192.0.2.53, 192.0.2.54\nhost = yes\n";

static void test_bridge_ports(void)
{
	char msgs[2048];
	struct config *c;

	c = load(two_nets, CONFIG_BRIDGE_PORTS_MAX, NULL, msgs, sizeof(msgs));
	T_OK(c != NULL, "1,023 containers on one network load (%s)", msgs);
	config_free(c);
	c = load(two_nets, CONFIG_BRIDGE_PORTS_MAX + 1, NULL, msgs, sizeof(msgs));
	T_OK(c == NULL, "1,024 containers on one network do not load");
	T_STREQ(msgs, "berth.ini:1: [network default] 1024 containers are attached to it, more "
		"than a Linux bridge takes (1023 ports; the kernel refuses the next one with "
		"EXFULL): spread them over more networks",
		"the error names the network, the count and the limit");
	c = load(two_nets, CONFIG_BRIDGE_PORTS_MAX + 1, "default, side", msgs, sizeof(msgs));
	T_OK(c == NULL && strstr(msgs, "[network default] 1024 containers") &&
	     strstr(msgs, "berth.ini:4: [network side] 1024 containers"),
	     "each network over the limit is named on its own line");
	config_free(c);
}

static void test_fds(void)
{
	struct config_errors warns = { 0 };
	struct config_fds f, f0;
	char msgs[2048];
	struct config *c;

	c = load(two_nets, 0, NULL, msgs, sizeof(msgs));
	T_OK(c != NULL, "two networks, no container");
	config_fds(c, &f0);
	config_free(c);
	c = load(two_nets, 300, NULL, msgs, sizeof(msgs));
	config_fds(c, &f);
	T_EQ(f.containers, 600, "300 containers: a pidfd and a start report pipe each");
	T_EQ(f.total - f0.total, 600, "containers add only their own descriptors");
	T_EQ(f.control, CTL_MAX_CONNS, "control: as many clients as the socket admits");
	/* listeners: default's gateway, side's gateway and gateway6, 127.0.0.53 */
	T_EQ(f.dns, 512 + 64 + 2 + 2 * 4, "DNS: forwards in flight, TCP clients, a probe per "
	     "upstream, UDP+TCP on each of 4 addresses");
	T_EQ(f.total, f.base + f.control + f.dns + f.containers, "the total is the parts' sum");

	config_warnings(c, 256, &warns);
	T_EQ(warns.n, 1, "256 descriptors for 300 containers: one warning");
	if (warns.n) {
		char want[128];

		snprintf(want, sizeof(want), "the daemon may need %lu file descriptors (600 for "
			 "300 containers, ", f.total);
		T_OK(!strncmp(warns.v[0].msg, want, strlen(want)) &&
		     strstr(warns.v[0].msg, "more than the limit of 256 (RLIMIT_NOFILE)"),
		     "it says how many are needed, for what, and the limit: %s", warns.v[0].msg);
	}
	config_errors_free(&warns);
	config_warnings(c, f.total, &warns);
	T_EQ(warns.n, 0, "exactly enough: no warning");
	config_warnings(c, 0, &warns);
	T_EQ(warns.n, 0, "an unknown limit: no warning");
	config_free(c);

	c = load("[remote]\nlisten = 127.0.0.1:7443\ncert = /c\nkey = /k\nclient_ca = /ca\n", 0,
		 NULL, msgs, sizeof(msgs));
	T_OK(c != NULL, "a [remote] section loads (%s)", msgs);
	if (c) {
		config_fds(c, &f);
		T_EQ(f.control, CTL_MAX_CONNS + 1 + REMOTE_MAX_CONNS,
		     "[remote]: its listener and its clients too");
	}
	config_free(c);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		exit(2);
	}
}

static const char *upstreams(const struct config *c, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < c->dns.n_upstreams && n < size; i++) {
		char a[IP_STRLEN];

		n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? " " : "",
				      ip_format(&c->dns.upstreams[i], a));
	}
	return buf;
}

static void test_resolv_conf(void)
{
	char path[4200], ini[4400], msgs[2048], buf[256];
	const char *tmp = getenv("TMPDIR");
	struct config *c;
	FILE *f;

	snprintf(path, sizeof(path), "%s/test_config_host.resolv.%d", tmp ? tmp : "/tmp",
		 (int)getpid());
	write_file(path, "nameserver 192.0.2.1\nnameserver 127.0.0.53\n");
	snprintf(ini, sizeof(ini), "[dns]\nresolv_conf = %s\n", path);
	c = load(ini, 0, NULL, msgs, sizeof(msgs));
	T_OK(c != NULL, "[dns] resolv_conf = PATH loads (%s)", msgs);
	if (!c)
		return;
	T_STREQ(c->dns.resolv_conf, path, "the upstreams come from that file, not /etc/resolv.conf");
	T_STREQ(upstreams(c, buf, sizeof(buf)), "192.0.2.1", "its nameservers (127.0.0.53 is "
		"berth itself with host = yes)");
	T_EQ(config_reread_resolv_conf(c), 0, "read again unchanged: no change");
	/* rewritten in place, as DHCP clients do */
	f = fopen(path, "r+");
	T_OK(f && ftruncate(fileno(f), 0) == 0 && fputs("nameserver 192.0.2.2\n"
		"nameserver 2001:db8::2\n", f) >= 0 && fclose(f) == 0, "rewrite in place");
	T_EQ(config_reread_resolv_conf(c), 1, "read again after a rewrite: changed");
	T_STREQ(upstreams(c, buf, sizeof(buf)), "192.0.2.2 2001:db8::2", "the new nameservers");
	unlink(path);
	T_EQ(config_reread_resolv_conf(c), 1, "the file gone: changed");
	T_EQ(c->dns.n_upstreams, 0, "no upstreams without the file, as at load");
	config_free(c);

	c = load("[dns]\nupstream = 192.0.2.9\n", 0, NULL, msgs, sizeof(msgs));
	T_OK(c && !c->dns.resolv_conf, "with upstream, no resolv.conf is read or followed");
	if (c)
		T_EQ(config_reread_resolv_conf(c), 0, "so reading it again changes nothing");
	config_free(c);
	c = load("[dns]\nupstream = 192.0.2.9\nresolv_conf = /etc/resolv.conf\n", 0, NULL, msgs,
		 sizeof(msgs));
	T_STREQ(msgs, "berth.ini:3: [dns] resolv_conf: not read when upstream is given (give one "
		"of the two)", "upstream and resolv_conf together: an error on resolv_conf");
	config_free(c);
	c = load("[dns]\nresolv_conf = etc/resolv.conf\n", 0, NULL, msgs, sizeof(msgs));
	T_STREQ(msgs, "berth.ini:2: [dns] resolv_conf: 'etc/resolv.conf': expected an absolute path",
		"a relative resolv_conf is an error");
	config_free(c);
}

int main(void)
{
	test_bridge_ports();
	test_fds();
	test_resolv_conf();
	return t_done();
}
