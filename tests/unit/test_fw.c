/* test_fw.c - policies compiled to the firewall model and judged as the
 * kernel would (net/fw.h): the Kubernetes NetworkPolicy cases DESIGN §3
 * settles, without root. The kernel's agreement is tests/integration/fw_matrix. */
#include "runtime/daemon_int.h"
#include "net/fw.h"
#include "net/fw_nft.h"
#include "net/nft.h"
#include "t.h"

#include <netinet/in.h>
#include <string.h>

static const char *berth_ini =
	"[network a]\nbridge = br-a\nsubnet = 10.1.0.0/24\n"
	"[network b]\nbridge = br-b\nsubnet = 10.2.0.0/24\nisolate = yes\n"
	"[dns]\nupstream = 192.0.2.53\n";

/* Containers: name, labels, network, address. */
static const struct {
	const char *name, *labels, *net, *ip;
} ctrs_def[] = {
	{ "api", "app=api, env=prod", "a", "10.1.0.10" },
	{ "api-dev", "app=api, env=dev", "a", "10.1.0.11" },
	{ "db", "app=db", "a", "10.1.0.20" },
	{ "web", "app=web", "a", "10.1.0.30" },
	{ "iso1", "app=iso", "b", "10.2.0.10" },
	{ "iso2", "app=iso2", "b", "10.2.0.11" },
};
#define N_CTRS ARRAY_SIZE(ctrs_def)

struct world {
	struct config *cfg;
	struct ctr ctrs[N_CTRS];
	struct ctr_if ifs[N_CTRS];          /* one each: ctrs[i].ifs */
	struct fw_model m;
};

/* Load berth.ini, the containers above (container relabel, if given, with
 * labels instead) and the policies given as "name", "text", ... NULL;
 * compile. */
static int setup_relabeled(struct world *w, const char *const *policies, const char *relabel,
			   const char *labels)
{
	struct config_file files[32];
	char names[N_CTRS][64], texts[N_CTRS][256], pnames[8][64];
	struct config_errors errs = { 0 };
	size_t n = 0;

	memset(w, 0, sizeof(*w));
	files[n++] = (struct config_file){ "berth.ini", berth_ini, strlen(berth_ini) };
	for (size_t i = 0; i < N_CTRS; i++) {
		snprintf(names[i], sizeof(names[i]), "containers.d/%s.ini", ctrs_def[i].name);
		snprintf(texts[i], sizeof(texts[i]),
			 "[container]\nrootfs = /\ncommand = true\nlabels = %s\nnetworks = %s\n",
			 relabel && !strcmp(relabel, ctrs_def[i].name) ? labels : ctrs_def[i].labels,
			 ctrs_def[i].net);
		files[n++] = (struct config_file){ names[i], texts[i], strlen(texts[i]) };
	}
	for (size_t i = 0; policies && policies[i]; i += 2) {
		snprintf(pnames[i / 2], sizeof(pnames[0]), "policies.d/%s.ini", policies[i]);
		files[n++] = (struct config_file){ pnames[i / 2], policies[i + 1], strlen(policies[i + 1]) };
	}
	if (config_load_files(files, n, "test", NULL, &w->cfg, &errs) < 0) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "# %s\n", errs.v[i].msg);
		config_errors_free(&errs);
		return -1;
	}
	for (size_t i = 0; i < N_CTRS; i++) {
		struct ctr *c = &w->ctrs[i];

		c->cfg = config_container(w->cfg, ctrs_def[i].name);
		c->ifs = &w->ifs[i];
		c->n_ifs = 1;
		c->ifs[0].network = config_network(w->cfg, ctrs_def[i].net)->name;
		snprintf(c->ifs[0].ifname, sizeof(c->ifs[0].ifname), "eth0");
		ip_parse(ctrs_def[i].ip, &c->ifs[0].ip4, NULL);
	}
	return policy_compile(w->cfg, w->ctrs, N_CTRS, &w->m, NULL);
}

static int setup(struct world *w, const char *const *policies)
{
	return setup_relabeled(w, policies, NULL, NULL);
}

static void teardown(struct world *w)
{
	fw_model_free(&w->m);
	config_free(w->cfg);
}

static void end(const struct world *w, const char *s, struct fw_end *e)
{
	struct ip_addr a;

	memset(e, 0, sizeof(*e));
	if (!strcmp(s, "host")) {
		e->kind = FW_END_HOST;
	} else if (!strcmp(s, "world")) {
		e->kind = FW_END_WORLD;
	} else if (ip_parse(s, &a, NULL) == 0) {
		fw_end_from_addr(&w->m, &a, false, e);
	} else {
		e->kind = FW_END_CONTAINER;
		e->ctr = fw_container_find(&w->m, s);
		e->addr = e->ctr->ifs[0].addrs[0];
	}
}

/* "allow" or "deny" for SRC -> DST PORT/PROTO (dnat: through a published port). */
static const char *judge(const struct world *w, const char *src, const char *dst, unsigned port,
			 int proto, bool dnat)
{
	struct fw_packet p = { .proto = (uint8_t)proto, .dport = (uint16_t)port, .dnat = dnat };
	struct buf why;
	bool ok;

	end(w, src, &p.src);
	end(w, dst, &p.dst);
	buf_init(&why);
	ok = fw_eval(&w->m, &p, &why);
	if (getenv("FW_VERBOSE"))
		fprintf(stderr, "# %s -> %s %u: %s", src, dst, port, why.data);
	buf_free(&why);
	return ok ? "allow" : "deny";
}

#define TCP IPPROTO_TCP
#define UDP IPPROTO_UDP

/* What fw_nft_put sends to turn old into new, one line per message:
 * "NEWSETELEM fw_in4", "NEWRULE fw_p_web_i", ... */
static void batch_between(const struct fw_model *old, const struct fw_model *m, struct buf *out)
{
	struct nft_batch b;
	static const char *const names[NFT_MSG_MAX] = {
		[NFT_MSG_NEWCHAIN] = "NEWCHAIN", [NFT_MSG_DELCHAIN] = "DELCHAIN",
		[NFT_MSG_NEWRULE] = "NEWRULE", [NFT_MSG_DELRULE] = "DELRULE",
		[NFT_MSG_NEWSET] = "NEWSET", [NFT_MSG_DELSET] = "DELSET",
		[NFT_MSG_NEWSETELEM] = "NEWSETELEM", [NFT_MSG_DELSETELEM] = "DELSETELEM",
	};

	buf_reset(out);
	if (nft_batch_init(&b, 1 << 20) < 0)
		return;
	fw_nft_put(&b, old, m);
	for (unsigned i = 1; i < b.m.count; i++) {
		struct nft_head h;

		if (nft_parse_head(nl_msg_at(&b.m, i), &h) < 0)
			continue;
		buf_printf(out, "%s %s\n", h.msg < NFT_MSG_MAX && names[h.msg] ? names[h.msg] : "OTHER",
			   h.name);
	}
	nft_batch_free(&b);
}

/* Does every line of the batch start with one of the prefixes? (A flush
 * is a DELRULE without a handle.) */
static bool only(const struct buf *batch, const char *const *prefixes)
{
	const char *line = batch->data;

	while (line && *line) {
		bool ok = false;

		for (size_t i = 0; prefixes[i] && !ok; i++)
			ok = !strncmp(line, prefixes[i], strlen(prefixes[i]));
		if (!ok) {
			printf("# unexpected: %.*s\n", (int)strcspn(line, "\n"), line);
			return false;
		}
		line = strchr(line, '\n');
		line = line ? line + 1 : NULL;
	}
	return true;
}

/* Two containers claiming one identity but selected differently (a hash
 * collision) must not share a dispatch chain; alike ones keep sharing it. */
static void test_identity_collision(void)
{
	struct fw_set sets[1] = { { .what = NULL } };
	struct fw_policy pol = { .name = "p", .file = "p.ini", .select = 0, .isolates = FW_INGRESS };
	struct fw_container c[3] = { { .name = "x" }, { .name = "y" }, { .name = "z" } };
	struct fw_iface ifs[3] = { { .ifname = "eth0" }, { .ifname = "eth0" }, { .ifname = "eth0" } };
	struct fw_model m = { .sets = sets, .n_sets = 1, .policies = &pol, .n_policies = 1,
			      .containers = c, .n_containers = 3 };

	for (int i = 0; i < 3; i++) {
		c[i].ifs = &ifs[i];
		c[i].n_ifs = 1;
		ifs[i].n_addrs = 1;
		ip_parse(i == 0 ? "10.0.0.1" : i == 1 ? "10.0.0.2" : "10.0.0.3", &ifs[i].addrs[0], NULL);
		c[i].identity = i < 2 ? 7 : 9;
	}
	fw_set_add_addr(&sets[0], &ifs[0].addrs[0]);    /* x selected, y not */
	T_EQ(fw_model_finish(&m), 0, "a model with an identity collision finishes");
	T_OK(c[0].identity == 0 && c[1].identity == 0, "colliding containers lose the shared identity");
	T_EQ(c[2].identity, 9, "others keep theirs");
	T_EQ(c[0].n_policies, 1, "x is selected by the policy");
	T_EQ(c[0].isolated, FW_INGRESS, "and isolated by it");
	array_free(&sets[0].addrs);
	free(m.selected_by);
}

/* DESIGN/the issue: a container changing labels changes set elements only;
 * a policy added rewrites only its own chains and those of the identities
 * (label sets) it selects, never a container's map element. */
static void test_kernel_changes(void)
{
	const char *const p[] = {
		"db", "[policy]\nselect = app=db\n[ingress api]\nfrom = app=api\n", NULL };
	const char *const p2[] = {
		"db", "[policy]\nselect = app=db\n[ingress api]\nfrom = app=api\n",
		"web", "[policy]\nselect = app=web\n[ingress db]\nfrom = app=db\nports = 80/tcp\n", NULL };
	struct world a, b;
	struct buf batch;
	const struct fw_container *api, *dev;

	buf_init(&batch);
	T_EQ(setup(&a, p), 0, "kernel changes: the first model compiles");
	api = fw_container_find(&a.m, "api");
	dev = fw_container_find(&a.m, "api-dev");
	T_OK(api->identity && dev->identity && api->identity != dev->identity,
	     "containers with different labels have different identities");

	batch_between(&a.m, &a.m, &batch);
	T_EQ(batch.len, 0, "no change: nothing is sent");

	T_EQ(setup_relabeled(&b, p, "api-dev", "env=prod, app=api"), 0,
	     "kernel changes: api-dev relabeled like api compiles");
	T_EQ(fw_container_find(&b.m, "api-dev")->identity, fw_container_find(&b.m, "api")->identity,
	     "the same labels in another order: the same identity");
	batch_between(&a.m, &b.m, &batch);
	{
		const char *const ok[] = { "NEWSETELEM fw_in4", "DELSETELEM fw_in4", "NEWSETELEM fw_out4",
					   "DELSETELEM fw_out4", "DELRULE fw_k_", "DELCHAIN fw_k_", NULL };

		T_OK(only(&batch, ok), "a label change: map elements, and the chains of an identity"
		     " no container has any more");
	}
	T_OK(strstr(batch.data, "NEWSETELEM fw_in4") != NULL, "a label change re-points the container");
	teardown(&b);

	T_EQ(setup(&b, p2), 0, "kernel changes: a second policy compiles");
	batch_between(&a.m, &b.m, &batch);
	{
		const char *const ok[] = { "NEWSET fw_s_", "NEWSETELEM fw_s_", "NEWCHAIN fw_p_web_i",
					   "NEWRULE fw_p_web_i", "DELRULE fw_p_web_i", "NEWCHAIN fw_k_",
					   "NEWRULE fw_k_", "DELRULE fw_k_", NULL };

		T_OK(only(&batch, ok), "a policy added: its chain, its peers' set and its identities' chains");
	}
	T_OK(strstr(batch.data, "NEWRULE fw_p_web_i") && strstr(batch.data, "NEWRULE fw_k_"),
	     "a policy added: its rules, and a jump to them");
	batch_between(&b.m, &a.m, &batch);
	{
		const char *const ok[] = { "DELSET fw_s_", "DELCHAIN fw_p_web_i", "DELRULE fw_p_web_i",
					   "NEWRULE fw_k_", "DELRULE fw_k_", NULL };

		T_OK(only(&batch, ok), "a policy removed: its chain and set go, its identities' chains"
		     " are rewritten");
	}
	teardown(&b);
	teardown(&a);
	buf_free(&batch);
}

int main(void)
{
	struct world w;

	T_EQ(setup(&w, NULL), 0, "no policies: compiles");
	T_STREQ(judge(&w, "api", "db", 5432, TCP, false), "allow", "no policies: everything is open");
	T_STREQ(judge(&w, "world", "db", 22, TCP, false), "allow", "no policies: world reaches a container");
	T_STREQ(judge(&w, "api", "web", 80, TCP, false), "allow", "no isolation on network a");
	T_STREQ(judge(&w, "iso1", "iso2", 80, TCP, false), "deny", "isolate = yes: two containers of the network");
	T_STREQ(judge(&w, "iso1", "iso2", 80, TCP, true), "allow", "isolate = yes: a published port still works");
	T_STREQ(judge(&w, "host", "iso2", 80, TCP, false), "allow", "isolate = yes does not affect the host");
	T_STREQ(judge(&w, "api", "iso1", 80, TCP, false), "deny", "different networks: never directly");
	T_STREQ(judge(&w, "api", "iso1", 80, TCP, true), "allow", "different networks: through a published port");
	T_STREQ(judge(&w, "db", "db", 1, TCP, false), "allow", "a container reaches itself");
	teardown(&w);

	{
		const char *const p[] = {
			"db", "[policy]\nselect = app=db\ntypes = ingress\n", NULL };

		T_EQ(setup(&w, p), 0, "default-deny ingress compiles");
		T_STREQ(judge(&w, "api", "db", 5432, TCP, false), "deny", "default-deny ingress: api -/-> db");
		T_STREQ(judge(&w, "host", "db", 5432, TCP, false), "deny", "default-deny ingress: host -/-> db");
		T_STREQ(judge(&w, "db", "api", 80, TCP, false), "allow", "default-deny ingress: egress of db stays open");
		T_STREQ(judge(&w, "db", "db", 80, TCP, false), "allow", "default-deny ingress: db still reaches itself");
		T_STREQ(judge(&w, "api", "web", 80, TCP, false), "allow", "unselected containers are open");
		teardown(&w);
	}
	{
		const char *const p[] = {
			"db", "[policy]\nselect = app=db\n[ingress api]\nfrom = app=api, env=prod\nports = 5432/tcp\n",
			NULL };

		T_EQ(setup(&w, p), 0, "allow by labels compiles");
		T_STREQ(judge(&w, "api", "db", 5432, TCP, false), "allow", "AND of terms: api (prod) -> db:5432");
		T_STREQ(judge(&w, "api-dev", "db", 5432, TCP, false), "deny", "AND of terms: api-dev (dev) -/-> db");
		T_STREQ(judge(&w, "api", "db", 5433, TCP, false), "deny", "port-specific: 5433 denied");
		T_STREQ(judge(&w, "api", "db", 5432, UDP, false), "deny", "protocol-specific: udp 5432 denied");
		T_STREQ(judge(&w, "world", "db", 5432, TCP, true), "deny", "a published port is ingress from world, not api");
		teardown(&w);
	}
	{
		const char *const p[] = {
			"db", "[policy]\nselect = app=db\n[ingress api]\nfrom = app=api\nfrom = app=web\nports = udp\n",
			"db2", "[policy]\nselect = app=db\n[ingress world]\nfrom = world\nports = 8000-8010/tcp\n",
			NULL };

		T_EQ(setup(&w, p), 0, "union of policies compiles");
		T_STREQ(judge(&w, "web", "db", 53, UDP, false), "allow", "OR of from lines: web -> db udp");
		T_STREQ(judge(&w, "api-dev", "db", 9, UDP, false), "allow", "bare protocol: every udp port");
		T_STREQ(judge(&w, "api", "db", 9, TCP, false), "deny", "bare protocol: tcp denied");
		T_STREQ(judge(&w, "world", "db", 8005, TCP, true), "allow", "union: the second policy allows world 8005");
		T_STREQ(judge(&w, "api", "db", 8005, TCP, true), "allow", "union: hairpin through a published port is world");
		T_STREQ(judge(&w, "api", "db", 8005, TCP, false), "deny", "union: api directly to 8005 is not world");
		T_STREQ(judge(&w, "203.0.113.9", "db", 8011, TCP, false), "deny", "range end is inclusive, 8011 is out");
		teardown(&w);
	}
	{
		const char *const p[] = {
			"api", "[policy]\nselect = app=api\ntypes = egress\n"
			       "[egress out]\nto = cidr:0.0.0.0/0 except 10.0.0.0/8\nports = 443/tcp\n"
			       "[egress db]\nto = app=db\n",
			NULL };

		T_EQ(setup(&w, p), 0, "egress with cidr except compiles");
		T_STREQ(judge(&w, "api", "198.51.100.7", 443, TCP, false), "allow", "cidr: outside the except");
		T_STREQ(judge(&w, "api", "10.9.9.9", 443, TCP, false), "deny", "cidr: inside the except");
		T_STREQ(judge(&w, "api", "198.51.100.7", 80, TCP, false), "deny", "cidr: other port denied");
		T_STREQ(judge(&w, "api", "db", 1234, TCP, false), "allow", "egress to a selector, any port");
		T_STREQ(judge(&w, "api", "web", 80, TCP, false), "deny", "default-deny egress: api -/-> web");
		T_STREQ(judge(&w, "api", "10.1.0.1", 53, UDP, false), "allow", "DNS to its gateway always passes");
		T_STREQ(judge(&w, "web", "api", 80, TCP, false), "allow", "egress isolation does not isolate ingress");
		teardown(&w);
	}
	{
		const char *const p[] = {
			"iso", "[policy]\nselect = app=iso2\n[ingress from-iso]\nfrom = app=iso\n", NULL };

		T_EQ(setup(&w, p), 0, "isolate with a policy compiles");
		T_STREQ(judge(&w, "iso1", "iso2", 80, TCP, false), "allow", "isolate = yes: a policy of the receiver allows");
		T_STREQ(judge(&w, "iso2", "iso1", 80, TCP, false), "deny", "isolate = yes: the other way stays closed");
		teardown(&w);
	}
	test_kernel_changes();
	test_identity_collision();
	return t_done();
}
