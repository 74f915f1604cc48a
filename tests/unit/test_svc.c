/* test_svc.c - net/svc: the batch that builds the services' part of table inet
 * berth, parsed back (chains, rules, elements); definitions refused; a
 * conflict; the same definition sends nothing. No root: the nat is never
 * synced, so svc_set changes memory only and svc_put_all shows what a sync
 * would send. */
#include "net/nat.h"
#include "net/nft.h"
#include "net/svc.h"
#include "t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <string.h>

struct seen {
	unsigned chains_svc, rules_pre, vmaps_pre, numgen, dynset, reject, dnat_8080;
	uint32_t modulus[8];
	unsigned n_modulus;
	unsigned svc4, svc6, empty4, svcp4, be4, aff4;
	char goto_chain[8][NFT_NAME_MAX];
	unsigned n_goto;
	bool aff_map_dynamic;
};

static int count_elem(void *ctx, const struct nft_elem *el)
{
	unsigned *n = ctx;

	(void)el;
	(*n)++;
	return 0;
}


static int goto_elem(void *ctx, const struct nft_elem *el)
{
	struct seen *s = ctx;

	if (el->has_verdict && el->verdict == NFT_GOTO && s->n_goto < 8)
		snprintf(s->goto_chain[s->n_goto++], NFT_NAME_MAX, "%s", el->chain);
	s->svc4++;
	return 0;
}

static void scan(struct nft_batch *b, struct seen *s)
{
	memset(s, 0, sizeof(*s));
	for (unsigned i = 1; i < b->m.count; i++) {   /* no batch end yet */
		const struct nlmsghdr *nlh = nl_msg_at(&b->m, i);
		struct nft_head h;
		struct nft_expr x[NFT_RULE_MAX];
		struct nft_set set;
		size_t n;

		if (nft_parse_head(nlh, &h) < 0)
			continue;
		if (h.msg == NFT_MSG_NEWCHAIN && !strncmp(h.name, "svc-", 4))
			s->chains_svc++;
		if (h.msg == NFT_MSG_NEWSET && !strncmp(h.name, "svca-", 5) &&
		    nft_parse_set(nlh, &set) == 0)
			s->aff_map_dynamic = (set.flags & NFT_SET_EVAL) && (set.flags & NFT_SET_TIMEOUT);
		if (h.msg == NFT_MSG_NEWRULE && nft_parse_rule(nlh, x, NFT_RULE_MAX, &n) == 0) {
			if (!strcmp(h.name, "svc_pre")) {
				s->rules_pre++;
				for (size_t k = 0; k < n; k++)
					s->vmaps_pre += x[k].kind == NFT_X_VMAP;
			}
			for (size_t k = 0; k < n; k++) {
				if (x[k].kind == NFT_X_NUMGEN && s->n_modulus < 8)
					s->modulus[s->n_modulus++] = x[k].modulus;
				s->numgen += x[k].kind == NFT_X_NUMGEN;
				s->dynset += x[k].kind == NFT_X_DYNSET;
				s->reject += x[k].kind == NFT_X_REJECT;
				if (x[k].kind == NFT_X_IMMEDIATE && x[k].len == 2 &&
				    x[k].data[0] == 0x1f && x[k].data[1] == 0x90)
					s->dnat_8080++;
			}
		}
		if (h.msg == NFT_MSG_NEWSETELEM) {
			if (!strcmp(h.name, "svc4"))
				nft_parse_elems(nlh, goto_elem, s);
			else if (!strcmp(h.name, "svc6"))
				nft_parse_elems(nlh, count_elem, &s->svc6);
			else if (!strcmp(h.name, "svc_empty4"))
				nft_parse_elems(nlh, count_elem, &s->empty4);
			else if (!strcmp(h.name, "svcaff4"))
				nft_parse_elems(nlh, count_elem, &s->aff4);
			else if (!strcmp(h.name, "svcp4"))
				nft_parse_elems(nlh, count_elem, &s->svcp4);
			else if (!strncmp(h.name, "svcb-", 5))
				nft_parse_elems(nlh, count_elem, &s->be4);
		}
	}
}

static struct ip_addr ip(const char *s)
{
	struct ip_addr a;
	struct err e = { 0 };

	ip_parse(s, &a, &e);
	return a;
}

int main(void)
{
	struct err e = { 0 };
	struct nat *t;
	struct svc *sv;
	struct nft_batch b;
	struct seen s;
	const struct svc_port ports[] = { { IPPROTO_TCP, 80, 8080 }, { IPPROTO_UDP, 53, 53 } };
	const struct ip_addr be4[] = { ip("10.88.0.13"), ip("10.88.0.11"), ip("10.88.0.12") };
	const struct ip_addr be6[] = { ip("fd88::11") };
	const struct svc_publish pub[] = { { .host_port = 8080, .proto = IPPROTO_TCP, .port = 80 } };
	struct svc_def d = {
		.name = "web", .vip4 = ip("10.96.0.10"), .vip6 = ip("fd96::10"),
		.ports = ports, .n_ports = 2, .backends4 = be4, .n_backends4 = 3,
		.backends6 = be6, .n_backends6 = 1, .affinity_s = 600,
		.publish = pub, .n_publish = 1,
	};

	T_OK(nat_open(&t, NULL, NULL, NULL, &e) == 0, "nat opens (no root needed before a sync)");
	T_OK(svc_open(&sv, t, &e) == 0, "svc opens");

	/* no service: the fixed part alone */
	nft_batch_init(&b, 65536);
	svc_put_all(sv, &b);
	scan(&b, &s);
	T_EQ(s.rules_pre, 3, "svc_pre: a lookup per family and the jump for local destinations");
	T_EQ(s.vmaps_pre, 2, "... two verdict-map lookups");
	T_EQ(s.reject, 8, "svc_rej_fwd and svc_rej_out: TCP reset and ICMP, per family");
	T_EQ(s.chains_svc, 0, "no service chain yet");
	nft_batch_free(&b);

	T_OK(svc_set(sv, &d, &e) == 0, "a service with two ports, three IPv4 and one IPv6 backends");
	T_EQ(svc_count(sv), 1, "one service");
	nft_batch_init(&b, 65536);
	svc_put_all(sv, &b);
	scan(&b, &s);
	T_EQ(s.chains_svc, 4, "a chain per port and family: svc-1-{0,1}-{4,6}");
	T_EQ(s.rules_pre, 3, "svc_pre is unchanged by a service");
	T_EQ(s.svc4, 2, "svc4: VIP . tcp . 80 and VIP . udp . 53");
	T_OK(s.n_goto == 2 && ((!strcmp(s.goto_chain[0], "svc-1-0-4") && !strcmp(s.goto_chain[1], "svc-1-1-4")) ||
			       (!strcmp(s.goto_chain[1], "svc-1-0-4") && !strcmp(s.goto_chain[0], "svc-1-1-4"))),
	     "... each a goto to its port's IPv4 chain");
	T_EQ(s.svc6, 2, "svc6: the IPv6 VIP's two ports");
	T_EQ(s.empty4, 0, "nothing in svc_empty4");
	T_EQ(s.svcp4, 1, "the published port in svcp4");
	T_EQ(s.be4, 4, "the backend maps: 3 IPv4 + 1 IPv6 elements");
	T_EQ(s.numgen, 4, "a numgen in each chain");
	T_OK(s.n_modulus == 4 && ((s.modulus[0] == 3 && s.modulus[2] == 1) || (s.modulus[0] == 1 && s.modulus[2] == 3)),
	     "numgen mod 3 for IPv4, mod 1 for IPv6");
	T_EQ(s.dynset, 2, "affinity: one update of the map per family, in its record chain (svcr-1-4, svcr-1-6)");
	T_OK(s.aff_map_dynamic, "the affinity map is dynamic, with timeouts");
	T_EQ(s.aff4, 2, "svcaff4: the VIP's two ports lead to the record chain (not the port published "
	     "on every address)");
	T_EQ(s.dnat_8080, 4, "the TCP chains DNAT to the target port 8080 (affinity hit and pick, per family)");
	nft_batch_free(&b);

	/* no ready backend: svc_empty4/6, no chain */
	d.n_backends4 = 0;
	d.n_backends6 = 0;
	T_OK(svc_set(sv, &d, &e) == 0, "the same service without backends");
	nft_batch_init(&b, 65536);
	svc_put_all(sv, &b);
	scan(&b, &s);
	T_EQ(s.chains_svc, 0, "no chain for a service without backends");
	T_EQ(s.empty4, 2, "its IPv4 ports in svc_empty4");
	T_EQ(s.svc4 + s.svc6 + s.svcp4, 0, "nothing in svc4, svc6, svcp4");
	nft_batch_free(&b);

	/* 1000 services: svc_pre does not grow */
	for (unsigned i = 0; i < 1000; i++) {
		struct svc_def x = { .ports = ports, .n_ports = 1, .backends4 = be4, .n_backends4 = 1 };

		snprintf(x.name, sizeof(x.name), "bulk-with-a-rather-long-name-%u-xxxxxxxxxxxxxxxxxxxxxxx", i);
		ip_from_v4(&x.vip4, 0x0afa0000 + i + 1);
		if (svc_set(sv, &x, &e) < 0)
			break;
	}
	T_EQ(svc_count(sv), 1001, "1000 more services (long names)");
	nft_batch_init(&b, 1 << 20);
	svc_put_all(sv, &b);
	scan(&b, &s);
	T_EQ(s.rules_pre, 3, "svc_pre has the same three rules with 1001 services");
	T_EQ(s.chains_svc, 1000, "a chain each, named by number (fits 32 bytes)");
	T_OK(!b.m.overflow, "the batch fits");
	nft_batch_free(&b);

	/* refusals */
	{
		struct svc_def x = d;

		snprintf(x.name, sizeof(x.name), "other");
		T_EQ(svc_set(sv, &x, &e), -EADDRINUSE, "another service on the same VIP and port: -EADDRINUSE");
		x.vip4 = ip("10.96.0.99");
		x.vip6.family = 0;
		T_EQ(svc_set(sv, &x, &e), -EADDRINUSE, "... or publishing the same host port: -EADDRINUSE");
		x.n_publish = 0;
		x.n_ports = SVC_PORTS_MAX + 1;
		T_EQ(svc_set(sv, &x, &e), -EINVAL, "too many ports: -EINVAL");
		x.n_ports = 1;
		x.backends6 = be6;
		x.n_backends6 = 1;
		x.n_backends4 = 0;
		T_EQ(svc_set(sv, &x, &e), -EINVAL, "an IPv4 VIP with IPv6 backends only: -EINVAL");
		x.backends4 = be6;
		x.n_backends4 = 1;
		T_EQ(svc_set(sv, &x, &e), -EINVAL, "an IPv6 address among the IPv4 backends: -EINVAL");
		T_EQ(svc_count(sv), 1001, "refused definitions add nothing");
	}
	T_EQ(svc_del(sv, "nonexistent", &e), 0, "removing an unknown service is not an error");
	T_EQ(svc_del(sv, "web", &e), 0, "a service is removed");
	T_EQ(svc_count(sv), 1000, "1000 left");
	nat_close(t, true);
	svc_close(sv);
	return t_done();
}
