/* net.c - container networking over rtnetlink: bridge, netns, veth, addresses, routes. */
#include "net/net.h"
#include "net/netlink.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>             /* before the linux/ headers: they defer to it */
#include <linux/if.h>
#include <linux/if_bridge.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define ALIAS_PREFIX "berth:"       /* IFLA_IFALIAS of every host end we create */
#define DEFAULT_MTU 1500
#define REQ_BUF 2048                /* one request batch: a few messages of < 200 bytes */

#define SPARE_MAX 64
#define SPARE_ALIAS ALIAS_PREFIX "spare"

/* A prepared namespace: anonymous (held by nsfd only), with a veth whose
 * peer is already "eth0" inside and whose host end is down and unnamed. */
struct spare {
	int nsfd;
	int host;                   /* ifindex of the host end */
	int peer;                   /* ifindex of eth0 inside */
	struct nl_sock sock;        /* rtnetlink opened inside: no setns at attach */
};

struct net {
	struct nl_sock rt;          /* rtnetlink in the host namespace, kept open */
	int host_ns;                /* our own netns, to come back to after setns */
	char netns_dir[PATH_MAX];   /* STATE_DIR/netns */
	struct spare spare[SPARE_MAX];
	unsigned n_spare;
	unsigned spare_seq;         /* names of spare host ends */
};

/* What we need to know about one link. */
struct link {
	int ifindex;
	unsigned flags;             /* IFF_* */
	uint32_t master;            /* 0: none */
	uint32_t peer;              /* IFLA_LINK: a veth's peer ifindex */
	uint32_t mtu;
	char kind[16];              /* "veth", "bridge", "" */
	char alias[128];
	uint8_t mac[6];             /* IFLA_ADDRESS (Ethernet) */
	int port_state;             /* a bridge port's BR_STATE_*; -1: not a bridge port */
};

/* ---- names --------------------------------------------------------------- */

int net_name_check(const char *c, struct err *e)
{
	size_t len = c ? strlen(c) : 0;

	if (!len)
		return err_set(e, EINVAL, "container name is empty");
	if (len > NET_NAME_MAX)
		return err_set(e, EINVAL, "container name '%.20s...': at most %d characters (it has %zu)",
			       c, NET_NAME_MAX, len);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)c[i];
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			     (ch >= '0' && ch <= '9');

		if (!alnum && ch != '_' && ch != '.' && ch != '-')
			return err_set(e, EINVAL, "container name '%s': only letters, digits, "
				       "'_', '.', '-' are allowed", c);
		if (i == 0 && !alnum)
			return err_set(e, EINVAL, "container name '%s': must start with a letter "
				       "or a digit", c);
	}
	return 0;
}

int net_ifname_check(const char *what, const char *s, struct err *e)
{
	size_t len = s ? strlen(s) : 0;

	if (!len)
		return err_set(e, EINVAL, "%s: empty interface name", what);
	if (len > NET_IFNAME_MAX)
		return err_set(e, EINVAL, "%s '%s': at most %d characters (it has %zu)", what, s,
			       NET_IFNAME_MAX, len);
	if (!strcmp(s, ".") || !strcmp(s, ".."))
		return err_set(e, EINVAL, "%s '%s': not a valid interface name", what, s);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		/* The kernel's dev_valid_name() rejects '/', ':' and white space. */
		if (ch <= ' ' || ch >= 0x7f || ch == '/' || ch == ':' || ch == '%')
			return err_set(e, EINVAL, "%s '%s': '/', ':', '%%' and spaces are not "
				       "allowed", what, s);
	}
	return 0;
}

static uint32_t fnv1a(const char *a, const char *b)
{
	uint32_t h = 2166136261u;

	for (; *a; a++)
		h = (h ^ (unsigned char)*a) * 16777619u;
	h = (h ^ '/') * 16777619u;
	for (; *b; b++)
		h = (h ^ (unsigned char)*b) * 16777619u;
	return h;
}

int net_ifname_host(const char *c, const char *ifname, char out[16], struct err *e)
{
	size_t len = strlen(ifname), d = len, keep;
	unsigned k = 0;
	int ret;

	out[0] = '\0';
	if ((ret = net_name_check(c, e)) < 0 || (ret = net_ifname_check("interface", ifname, e)) < 0)
		return ret;
	if (!strcmp(ifname, "lo"))
		return err_set(e, EINVAL, "interface 'lo': that name is the container's loopback");
	while (d > 0 && ifname[d - 1] >= '0' && ifname[d - 1] <= '9')
		d--;
	if (len - d > 2 || (len - d == 2 && ifname[d] == '0'))
		return err_set(e, EINVAL, "interface '%s': the number ending it must be 0 to 99",
			       ifname);
	if (d < len)
		k = (unsigned)atoi(ifname + d);
	if (k == 0 && strlen(c) <= NET_IFNAME_MAX - 3) {
		snprintf(out, 16, "bh-%s", c);
		return 0;
	}
	keep = k < 10 ? 6 : 5;
	snprintf(out, 16, "bh%u-%.*s%05x", k, (int)keep, c, fnv1a(c, ifname) & 0xfffff);
	return 0;
}

int net_netns_path(const struct net *n, const char *c, char *buf, size_t size, struct err *e)
{
	int ret = net_name_check(c, e);

	if (ret < 0)
		return ret;
	if (!n->netns_dir[0])
		return err_set(e, EINVAL, "container %s: no state directory to keep its netns in", c);
	if ((size_t)snprintf(buf, size, "%s/%s", n->netns_dir, c) >= size)
		return err_set(e, ENAMETOOLONG, "netns path %s/%s is too long", n->netns_dir, c);
	return 0;
}

/* ---- open / close -------------------------------------------------------- */

int net_open(struct net **out, const char *state_dir, struct err *e)
{
	struct net *n;
	int ret;

	*out = NULL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return err_sys(e, ENOMEM, "net_open");
	n->rt.fd = -1;
	n->host_ns = -1;
	if (state_dir && *state_dir) {
		if ((size_t)snprintf(n->netns_dir, sizeof(n->netns_dir), "%s/netns", state_dir) >=
		    sizeof(n->netns_dir) - NET_NAME_MAX - 2) {
			ret = err_set(e, ENAMETOOLONG, "state directory %s: path too long", state_dir);
			goto err_free;
		}
		if ((ret = mkdir_p("directory", n->netns_dir, 0755, e)) < 0)
			goto err_free;
	}
	n->host_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (n->host_ns < 0) {
		ret = err_sys(e, errno, "open /proc/thread-self/ns/net");
		goto err_free;
	}
	if ((ret = nl_open(&n->rt, NETLINK_ROUTE, e)) < 0)
		goto err_ns;
	*out = n;
	return 0;
err_ns:
	close(n->host_ns);
err_free:
	free(n);
	return ret;
}

void net_close(struct net *n)
{
	if (!n)
		return;
	/* The last reference to a spare namespace: the kernel destroys it and
	 * its veth pair. */
	while (n->n_spare) {
		n->n_spare--;
		nl_close(&n->spare[n->n_spare].sock);
		close(n->spare[n->n_spare].nsfd);
	}
	nl_close(&n->rt);
	if (n->host_ns >= 0)
		close(n->host_ns);
	free(n);
}

/* ---- rtnetlink helpers --------------------------------------------------- */

static int link_parse(const struct nlmsghdr *nlh, void *ctx)
{
	struct link *l = ctx;
	const struct nlattr *tb[IFLA_MAX + 1], *li[IFLA_INFO_MAX + 1];
	const struct ifinfomsg *ifi = NLMSG_DATA(nlh);
	const char *s;

	if (nlh->nlmsg_type != RTM_NEWLINK || nl_msg_parse(nlh, sizeof(*ifi), tb, IFLA_MAX) < 0)
		return -EBADMSG;
	l->ifindex = ifi->ifi_index;
	l->flags = ifi->ifi_flags;
	l->port_state = -1;
	if (tb[IFLA_ADDRESS] && nl_attr_len(tb[IFLA_ADDRESS]) == sizeof(l->mac))
		memcpy(l->mac, nl_attr_data(tb[IFLA_ADDRESS]), sizeof(l->mac));
	if (tb[IFLA_MASTER])
		nl_attr_u32(tb[IFLA_MASTER], &l->master);
	if (tb[IFLA_LINK])
		nl_attr_u32(tb[IFLA_LINK], &l->peer);
	if (tb[IFLA_MTU])
		nl_attr_u32(tb[IFLA_MTU], &l->mtu);
	if (tb[IFLA_IFALIAS] && nl_attr_str(tb[IFLA_IFALIAS], &s) == 0)
		snprintf(l->alias, sizeof(l->alias), "%s", s);
	if (!tb[IFLA_LINKINFO] || nl_nest_parse(tb[IFLA_LINKINFO], li, IFLA_INFO_MAX) < 0)
		return 0;
	if (li[IFLA_INFO_KIND] && nl_attr_str(li[IFLA_INFO_KIND], &s) == 0)
		snprintf(l->kind, sizeof(l->kind), "%s", s);
	if (li[IFLA_INFO_SLAVE_KIND] && li[IFLA_INFO_SLAVE_DATA] &&
	    nl_attr_str(li[IFLA_INFO_SLAVE_KIND], &s) == 0 && !strcmp(s, "bridge")) {
		const struct nlattr *bp[IFLA_BRPORT_MAX + 1];
		uint8_t st;

		if (nl_nest_parse(li[IFLA_INFO_SLAVE_DATA], bp, IFLA_BRPORT_MAX) == 0 &&
		    nl_attr_u8(bp[IFLA_BRPORT_STATE], &st) == 0)
			l->port_state = st;
	}
	return 0;
}

/* Look a link up by name. Returns 1 when found, 0 when there is none, or -errno. */
static int link_get(struct nl_sock *s, const char *name, struct link *l, struct err *e)
{
	char buf[256] __attribute__((aligned(8)));
	struct nl_handlers h = { .on_data = link_parse, .ctx = l };
	struct nl_msg m;
	int ret;

	memset(l, 0, sizeof(*l));
	nl_msg_init(&m, buf, sizeof(buf));
	nl_msg_start(&m, RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK);
	nl_msg_put_header(&m, sizeof(struct ifinfomsg));
	nl_put_u32(&m, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	nl_put_str(&m, IFLA_IFNAME, name);
	ret = nl_talk(s, &m, &h, e);
	if (ret == -ENODEV) {
		err_clear(e);
		return 0;
	}
	if (ret < 0)
		return err_wrap(e, "look up link %s", name);
	return l->ifindex > 0 ? 1 : 0;
}

static int link_del(struct nl_sock *s, int ifindex, struct err *e)
{
	char buf[128] __attribute__((aligned(8)));
	struct nl_msg m;
	struct ifinfomsg *ifi;
	int ret;

	nl_msg_init(&m, buf, sizeof(buf));
	nl_msg_start(&m, RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK);
	ifi = nl_msg_put_header(&m, sizeof(*ifi));
	if (ifi)
		ifi->ifi_index = ifindex;
	ret = nl_talk(s, &m, NULL, e);
	if (ret == -ENODEV) {
		err_clear(e);
		return 0;
	}
	return ret;
}

/* Append "set link up (and master, alias)" for ifindex, or for name when
 * ifindex is 0. */
static void put_link_set(struct nl_msg *m, int ifindex, const char *name, int master,
			 const char *alias)
{
	struct ifinfomsg *ifi;

	nl_msg_start(m, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
	ifi = nl_msg_put_header(m, sizeof(*ifi));
	if (ifi) {
		ifi->ifi_index = ifindex;
		ifi->ifi_flags = IFF_UP;
		ifi->ifi_change = IFF_UP;
	}
	if (!ifindex)
		nl_put_str(m, IFLA_IFNAME, name);
	if (master > 0)
		nl_put_u32(m, IFLA_MASTER, (uint32_t)master);
	if (alias) {
		/* A host end is a bridge port: it needs no IPv6 address of its
		 * own. Without a link-local address it sends no DAD, MLD or RS
		 * packets, which the bridge would flood to every other port:
		 * O(N) work per container, O(N^2) for N containers. Set before
		 * the link comes up (the kernel applies AF_SPEC first). */
		struct nlattr *af = nl_nest_start(m, IFLA_AF_SPEC), *in6;

		in6 = nl_nest_start(m, AF_INET6);
		nl_put_u8(m, IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE);
		nl_nest_end(m, in6);
		nl_nest_end(m, af);
		nl_put_str(m, IFLA_IFALIAS, alias);
	}
}

static void put_link_up(struct nl_msg *m, int ifindex, const char *name)
{
	put_link_set(m, ifindex, name, 0, NULL);
}

static void put_addr(struct nl_msg *m, int ifindex, const struct net_ifaddr *a)
{
	struct ifaddrmsg *ifa;
	size_t alen = a->addr.family == AF_INET6 ? 16 : 4;

	nl_msg_start(m, RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
	ifa = nl_msg_put_header(m, sizeof(*ifa));
	if (ifa) {
		ifa->ifa_family = a->addr.family;
		ifa->ifa_prefixlen = a->plen;
		ifa->ifa_index = (uint32_t)ifindex;
		/* No duplicate address detection: the address is ours (IPAM) and
		 * must be usable at once, not seconds later. */
		ifa->ifa_flags = a->addr.family == AF_INET6 ? IFA_F_NODAD : 0;
	}
	nl_put(m, IFA_LOCAL, a->addr.b, alen);
	nl_put(m, IFA_ADDRESS, a->addr.b, alen);
}

static void put_default_route(struct nl_msg *m, int ifindex, const struct ip_addr *gw)
{
	struct rtmsg *rt;

	/* REPLACE: an adopted netns whose gateway changed converges too. */
	nl_msg_start(m, RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
	rt = nl_msg_put_header(m, sizeof(*rt));
	if (rt) {
		rt->rtm_family = gw->family;
		rt->rtm_table = RT_TABLE_MAIN;
		rt->rtm_protocol = RTPROT_BOOT;
		rt->rtm_scope = RT_SCOPE_UNIVERSE;
		rt->rtm_type = RTN_UNICAST;
	}
	nl_put(m, RTA_GATEWAY, gw->b, gw->family == AF_INET6 ? 16 : 4);
	nl_put_u32(m, RTA_OIF, (uint32_t)ifindex);
}

/* on_error for idempotent creates: an address that is already there is fine. */
static int accept_eexist(unsigned index, int code, const char *ext, void *ctx)
{
	(void)index, (void)ext, (void)ctx;
	return code == EEXIST ? 0 : -code;
}

static int write_sysctl(const char *path, struct err *e)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return err_sys(e, errno, "open %s", path);
	if (write(fd, "1\n", 2) != 2)
		ret = err_sys(e, errno, "write 1 to %s", path);
	close(fd);
	return ret;
}

/* ---- bridge -------------------------------------------------------------- */

/*
 * The bridge is its own multicast querier, so that snooping takes effect:
 * without a querier the bridge floods every multicast packet (each new
 * container's MLD reports, for one) to every port, and attaching the Nth
 * container costs O(N) in the kernel. Switching it on again is a no-op.
 */
static void put_bridge_querier(struct nl_msg *m, int ifindex)
{
	struct ifinfomsg *ifi;
	struct nlattr *li, *data;

	nl_msg_start(m, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
	ifi = nl_msg_put_header(m, sizeof(*ifi));
	if (ifi)
		ifi->ifi_index = ifindex;
	li = nl_nest_start(m, IFLA_LINKINFO);
	nl_put_str(m, IFLA_INFO_KIND, "bridge");
	data = nl_nest_start(m, IFLA_INFO_DATA);
	nl_put_u8(m, IFLA_BR_MCAST_QUERIER, 1);
	nl_nest_end(m, data);
	nl_nest_end(m, li);
}

/* Routes of ours on one link, from an RTM_GETROUTE dump of the main table. */
struct own_routes {
	uint32_t ifindex;
	unsigned n;
	struct ip_prefix p[16];
};

static int own_route_collect(const struct nlmsghdr *nlh, void *ctx)
{
	struct own_routes *l = ctx;
	const struct rtmsg *rt = NLMSG_DATA(nlh);
	const struct nlattr *tb[RTA_MAX + 1];
	uint32_t oif = 0;

	if (nlh->nlmsg_type != RTM_NEWROUTE || nl_msg_parse(nlh, sizeof(*rt), tb, RTA_MAX) < 0)
		return -EBADMSG;
	if (rt->rtm_protocol != NET_RTPROT_BERTH || !tb[RTA_DST] || !tb[RTA_OIF] ||
	    nl_attr_u32(tb[RTA_OIF], &oif) < 0 || oif != l->ifindex ||
	    nl_attr_len(tb[RTA_DST]) != (rt->rtm_family == AF_INET6 ? 16u : 4u) ||
	    l->n >= ARRAY_SIZE(l->p))
		return 0;
	ip_from_bytes(&l->p[l->n].addr, rt->rtm_family, nl_attr_data(tb[RTA_DST]));
	l->p[l->n++].len = rt->rtm_dst_len;
	return 0;
}

static void put_route(struct nl_msg *m, bool del, int ifindex, const struct ip_prefix *p)
{
	struct rtmsg *rt;

	nl_msg_start(m, del ? RTM_DELROUTE : RTM_NEWROUTE,
		     NLM_F_REQUEST | NLM_F_ACK | (del ? 0 : NLM_F_CREATE | NLM_F_REPLACE));
	rt = nl_msg_put_header(m, sizeof(*rt));
	if (rt) {
		rt->rtm_family = p->addr.family;
		rt->rtm_dst_len = p->len;
		rt->rtm_table = RT_TABLE_MAIN;
		rt->rtm_protocol = NET_RTPROT_BERTH;
		rt->rtm_scope = RT_SCOPE_LINK;
		rt->rtm_type = RTN_UNICAST;
	}
	nl_put(m, RTA_DST, p->addr.b, p->addr.family == AF_INET6 ? 16 : 4);
	nl_put_u32(m, RTA_OIF, (uint32_t)ifindex);
}

/* b->routes on the bridge, and none of ours besides. */
static int bridge_routes(struct net *n, const struct net_bridge *b, int ifindex, struct err *e)
{
	char buf[REQ_BUF] __attribute__((aligned(8)));
	struct own_routes have = { .ifindex = (uint32_t)ifindex };
	struct nl_handlers h = { .on_data = own_route_collect, .ctx = &have };
	struct nl_msg m;
	int ret;

	nl_msg_init(&m, buf, sizeof(buf));
	nl_msg_start(&m, RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP);
	nl_msg_put_header(&m, sizeof(struct rtmsg));
	if ((ret = nl_talk(&n->rt, &m, &h, e)) < 0)
		return err_wrap(e, "list routes of bridge %s", b->name);
	nl_msg_init(&m, buf, sizeof(buf));
	for (unsigned i = 0; i < have.n; i++) {
		bool wanted = false;

		for (unsigned k = 0; k < b->n_routes; k++)
			wanted |= have.p[i].len == b->routes[k].len &&
				  ip_equal(&have.p[i].addr, &b->routes[k].addr);
		if (!wanted)
			put_route(&m, true, ifindex, &have.p[i]);
	}
	for (unsigned k = 0; k < b->n_routes && k < NET_ADDRS_MAX; k++)
		put_route(&m, false, ifindex, &b->routes[k]);
	if (!m.count)
		return 0;
	if ((ret = nl_talk(&n->rt, &m, NULL, e)) < 0)
		return err_wrap(e, "route service ranges onto bridge %s", b->name);
	return 0;
}

int net_bridge_ensure(struct net *n, const struct net_bridge *b, struct err *e)
{
	char buf[REQ_BUF] __attribute__((aligned(8)));
	struct nl_handlers h = { .on_error = accept_eexist };
	struct nl_msg m;
	struct link l;
	bool v6 = false, created = false;
	int ret;

	if ((ret = net_ifname_check("bridge", b->name, e)) < 0)
		return ret;
	if (b->n_gw > NET_ADDRS_MAX)
		return err_set(e, EINVAL, "bridge %s: at most %d gateway addresses", b->name,
			       NET_ADDRS_MAX);
	ret = link_get(&n->rt, b->name, &l, e);
	if (ret < 0)
		return ret;
	if (ret == 0) {
		struct ifinfomsg *ifi;
		struct nlattr *li, *data;
		uint32_t hash = fnv1a("bridge", b->name);
		/* A fixed, locally administered MAC: otherwise the bridge takes
		 * the lowest port's MAC and changes it as containers come and
		 * go, which stales every container's neighbour entry for the
		 * gateway. */
		uint8_t mac[6] = { 0x02, 0x42, hash >> 24, hash >> 16, hash >> 8, hash };

		nl_msg_init(&m, buf, sizeof(buf));
		nl_msg_start(&m, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
		ifi = nl_msg_put_header(&m, sizeof(*ifi));
		if (ifi) {
			ifi->ifi_flags = IFF_UP;
			ifi->ifi_change = IFF_UP;
		}
		nl_put_str(&m, IFLA_IFNAME, b->name);
		nl_put(&m, IFLA_ADDRESS, mac, sizeof(mac));
		if (b->mtu)
			nl_put_u32(&m, IFLA_MTU, b->mtu);
		li = nl_nest_start(&m, IFLA_LINKINFO);
		nl_put_str(&m, IFLA_INFO_KIND, "bridge");
		data = nl_nest_start(&m, IFLA_INFO_DATA);
		/* Snooping is trusted only one query response interval after
		 * the querier (below) starts: 1 s (in USER_HZ ticks), not 10.
		 * Set here, before the querier: the kernel reads the interval
		 * when the querier is switched on. */
		nl_put(&m, IFLA_BR_MCAST_QUERY_RESPONSE_INTVL, &(uint64_t){ 100 }, sizeof(uint64_t));
		nl_nest_end(&m, data);
		nl_nest_end(&m, li);
		ret = nl_talk(&n->rt, &m, &h, e);   /* EEXIST: someone was quicker; adopt */
		if (ret < 0)
			return err_wrap(e, "create bridge %s", b->name);
		created = true;
		if ((ret = link_get(&n->rt, b->name, &l, e)) <= 0)
			return ret < 0 ? ret : err_set(e, ENODEV, "bridge %s vanished after "
						       "its creation", b->name);
	}
	if (strcmp(l.kind, "bridge") != 0)
		return err_set(e, EEXIST, "bridge %s: a link of that name exists and is %s%s, "
			       "not a bridge", b->name, l.kind[0] ? "a " : "a device without kind",
			       l.kind);

	nl_msg_init(&m, buf, sizeof(buf));
	for (unsigned i = 0; i < b->n_gw; i++) {
		put_addr(&m, l.ifindex, &b->gw[i]);
		v6 |= b->gw[i].addr.family == AF_INET6;
	}
	put_link_up(&m, l.ifindex, NULL);
	put_bridge_querier(&m, l.ifindex);
	ret = nl_talk(&n->rt, &m, &h, e);
	if (ret < 0)
		return err_wrap(e, "configure bridge %s", b->name);
	if ((ret = bridge_routes(n, b, l.ifindex, e)) < 0)
		return ret;
	if ((ret = write_sysctl("/proc/sys/net/ipv4/ip_forward", e)) < 0)
		return ret;
	if (v6 && (ret = write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", e)) < 0)
		return ret;
	return created;
}

int net_bridge_delete(struct net *n, const char *name, struct err *e)
{
	struct link l;
	int ret;

	if ((ret = net_ifname_check("bridge", name, e)) < 0)
		return ret;
	ret = link_get(&n->rt, name, &l, e);
	if (ret <= 0)
		return ret;
	if (strcmp(l.kind, "bridge") != 0)
		return err_set(e, EINVAL, "delete bridge %s: that link is not a bridge", name);
	if ((ret = link_del(&n->rt, l.ifindex, e)) < 0)
		return err_wrap(e, "delete bridge %s", name);
	return 0;
}

/* The label of berth's interfaces for c/ifname: "berth:NAME/IFNAME". */
static void host_alias(const char *c, const char *ifname, char alias[128])
{
	snprintf(alias, 128, ALIAS_PREFIX "%s/%s", c, ifname);
}

/* ---- netns --------------------------------------------------------------- */

static bool is_nsfs(int fd)
{
	struct statfs st;

	return fstatfs(fd, &st) == 0 && (unsigned long)st.f_type == (unsigned long)NSFS_MAGIC;
}

/*
 * Inside a namespace we just made (sysctl files under /proc/sys/net belong to
 * the opener's netns): no IPv6 router solicitations and no DAD for the
 * link-local address. berth addresses and routes containers itself (IPAM
 * guarantees unique addresses) and sends no router advertisements, and each
 * RS or DAD probe is multicast that the bridge floods to all N ports: O(N)
 * per container. The link-local address is also usable at once. Best
 * effort: a kernel without IPv6 has no such files.
 */
static void netns_defaults(void)
{
	static const char *const off[] = {
		"/proc/sys/net/ipv6/conf/default/accept_ra",
		"/proc/sys/net/ipv6/conf/default/accept_dad",
	};

	for (size_t i = 0; i < ARRAY_SIZE(off); i++) {
		int fd = open(off[i], O_WRONLY | O_CLOEXEC);

		if (fd >= 0) {
			(void)!write(fd, "0\n", 2);
			close(fd);
		}
	}
}

/*
 * Open the container's netns, creating it the way `ip netns add` does when
 * there is none: an empty file, unshare(CLONE_NEWNET), bind-mount our new
 * /proc/thread-self/ns/net onto the file, setns back. A file that exists but
 * is not a mounted namespace is what a setup killed half-way leaves: reuse it.
 * Returns the namespace fd (*created tells whether it is new, and then ns is
 * an rtnetlink socket inside it, or closed) or -errno.
 */
static int netns_ensure(struct net *n, const char *c, const char *path, bool *created,
			struct nl_sock *ns, struct err *e)
{
	int fd, ret;

	*created = false;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (is_nsfs(fd))
			return fd;
		close(fd);
	} else if (errno != ENOENT) {
		return err_sys(e, errno, "open netns %s of container %s", path, c);
	}
	fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0444);
	if (fd < 0)
		return err_sys(e, errno, "create netns file %s for container %s", path, c);
	close(fd);
	if (unshare(CLONE_NEWNET) < 0)
		return err_sys(e, errno, "create netns for container %s", c);
	netns_defaults();
	/* While inside: the socket for configuring it later, without setns. */
	if (nl_open(ns, NETLINK_ROUTE, NULL) < 0)
		ns->fd = -1;            /* best effort: ns_socket() tries again */
	if (mount("/proc/thread-self/ns/net", path, "none", MS_BIND, NULL) < 0) {
		ret = err_sys(e, errno, "bind-mount netns of container %s on %s", c, path);
		if (setns(n->host_ns, CLONE_NEWNET) < 0)
			abort();        /* cannot happen: we held it; never go on in the wrong ns */
		goto err_sock;
	}
	if (setns(n->host_ns, CLONE_NEWNET) < 0)
		abort();
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = err_sys(e, errno, "open netns %s of container %s", path, c);
		goto err_sock;
	}
	*created = true;
	return fd;
err_sock:
	nl_close(ns);
	return ret;
}

/* Is there a mounted namespace at path? */
static bool netns_exists(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool yes = fd >= 0 && is_nsfs(fd);

	if (fd >= 0)
		close(fd);
	return yes;
}

/* Open a namespace someone else owns (a CNI runtime's): it must be there
 * and be a network namespace; berth does not make one. */
static int netns_open_ext(const char *path, const char *c, struct err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return err_sys(e, errno, "container %s: open netns %s", c, path);
	/* NS_GET_NSTYPE (_IO(0xb7, 0x3)) tells a net namespace from the
	 * others (/proc/PID/ns/mnt is nsfs too); kernels before 4.11 lack it. */
	if (!is_nsfs(fd) || ioctl(fd, _IO(0xb7, 0x3)) != CLONE_NEWNET) {
		close(fd);
		return err_set(e, EINVAL, "container %s: %s is not a network namespace", c, path);
	}
	return fd;
}

/* The namespace a's interface lives in, which must exist: a->netns (a
 * runtime's), else berth's own (mounted at STATE_DIR/netns/NAME). Returns
 * its fd, or -ENOENT/-EINVAL (a->netns is not a netns) with the reason.
 * where (may be NULL) gets a name of it for messages. */
static int netns_open_existing(struct net *n, const struct net_attach *a, const char **where,
			       struct err *e)
{
	char path[PATH_MAX];
	int fd, ret;

	if (where)
		*where = a->netns ? a->netns : "its netns";
	if (a->netns)
		return netns_open_ext(a->netns, a->container, e);
	if ((ret = net_netns_path(n, a->container, path, sizeof(path), e)) < 0)
		return ret;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && is_nsfs(fd))
		return fd;
	if (fd >= 0)
		close(fd);
	return err_set(e, ENOENT, "container %s: its netns %s is missing", a->container, path);
}

/* An rtnetlink socket that lives in the namespace nsfd (sockets keep the
 * namespace they were created in). */
static int ns_socket(struct net *n, int nsfd, struct nl_sock *s, const char *c, struct err *e)
{
	int ret;

	if (setns(nsfd, CLONE_NEWNET) < 0)
		return err_sys(e, errno, "enter netns of container %s", c);
	ret = nl_open(s, NETLINK_ROUTE, e);
	if (setns(n->host_ns, CLONE_NEWNET) < 0)
		abort();
	return ret;
}

/* ---- spares ------------------------------------------------------------- */

static int spare_create(struct net *n, int bridge, struct err *e)
{
	char buf[REQ_BUF] __attribute__((aligned(8)));
	char name[16];
	struct nl_msg m;
	struct nlattr *li, *data, *peer;
	struct nl_sock sock;
	struct link l;
	int nsfd, ret = -EEXIST;

	if (unshare(CLONE_NEWNET) < 0)
		return err_sys(e, errno, "create a spare netns");
	netns_defaults();
	nsfd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	ret = nsfd < 0 ? err_sys(e, errno, "open a spare netns") : nl_open(&sock, NETLINK_ROUTE, e);
	if (setns(n->host_ns, CLONE_NEWNET) < 0)
		abort();        /* we hold it: cannot fail; never go on in the wrong ns */
	if (ret < 0) {
		if (nsfd >= 0)
			close(nsfd);
		return ret;
	}
	/* "bp" + pid + counter: unique among live berth processes. */
	for (int tries = 0; tries < 8; tries++) {
		snprintf(name, sizeof(name), "bp%05x%07x", (unsigned)getpid() & 0xfffff,
			 ++n->spare_seq & 0xfffffff);
		nl_msg_init(&m, buf, sizeof(buf));
		nl_msg_start(&m, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
		nl_msg_put_header(&m, sizeof(struct ifinfomsg));
		nl_put_str(&m, IFLA_IFNAME, name);
		/* Enslaved already (down, so it forwards nothing): joining
		 * the bridge is a good part of an attach's kernel work. */
		nl_put_u32(&m, IFLA_MASTER, (uint32_t)bridge);
		li = nl_nest_start(&m, IFLA_LINKINFO);
		nl_put_str(&m, IFLA_INFO_KIND, "veth");
		data = nl_nest_start(&m, IFLA_INFO_DATA);
		peer = nl_nest_start(&m, VETH_INFO_PEER);
		nl_msg_put_header(&m, sizeof(struct ifinfomsg));
		nl_put_str(&m, IFLA_IFNAME, "eth0");
		nl_put_u32(&m, IFLA_NET_NS_FD, (uint32_t)nsfd);
		nl_nest_end(&m, peer);
		nl_nest_end(&m, data);
		nl_nest_end(&m, li);
		ret = nl_talk(&n->rt, &m, NULL, e);
		if (ret != -EEXIST)
			break;
	}
	if (ret == 0) {
		nl_msg_init(&m, buf, sizeof(buf));
		nl_msg_start(&m, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
		nl_msg_put_header(&m, sizeof(struct ifinfomsg));
		nl_put_str(&m, IFLA_IFNAME, name);
		nl_put_str(&m, IFLA_IFALIAS, SPARE_ALIAS);
		ret = nl_talk(&n->rt, &m, NULL, e);
	}
	if (ret == 0 && (ret = link_get(&n->rt, name, &l, e)) == 0)
		ret = err_set(e, ENODEV, "spare veth %s vanished", name);
	if (ret < 0) {
		nl_close(&sock);
		close(nsfd);    /* destroys the namespace and the pair with it */
		return err_wrap(e, "create spare veth %s", name);
	}
	n->spare[n->n_spare].nsfd = nsfd;
	n->spare[n->n_spare].host = l.ifindex;
	n->spare[n->n_spare].peer = (int)l.peer;   /* IFLA_LINK: eth0's ifindex inside */
	n->spare[n->n_spare].sock = sock;
	n->n_spare++;
	return 0;
}

int net_prepare(struct net *n, const char *bridge, unsigned count, struct err *e)
{
	struct link br;
	int ret;

	if (count > SPARE_MAX)
		count = SPARE_MAX;
	if (n->n_spare >= count)
		return (int)n->n_spare;
	if ((ret = link_get(&n->rt, bridge, &br, e)) <= 0 || strcmp(br.kind, "bridge") != 0)
		return ret < 0 ? ret : err_set(e, ENODEV, "prepare spares: no bridge %s", bridge);
	while (n->n_spare < count)
		if ((ret = spare_create(n, br.ifindex, e)) < 0)
			return ret;
	return (int)n->n_spare;
}

/* ---- attach / detach ----------------------------------------------------- */

struct attach_ctx {
	struct net *n;
	const struct net_attach *a;
	const char *ifname;
	char host[16];
	char alias[128];
	unsigned mtu;
	int nsfd;
	struct nl_sock ns;          /* rtnetlink inside the container's netns */
	int peer;                   /* ifindex of ifname inside, when known (spare) */
	int bridge;                 /* ifindex */
	uint8_t mac[6];             /* ifname's, once known (have_mac) */
	bool have_mac;
};

/* One RTM_NEWLINK: the host end (up, MTU, enslaved, labelled) and its peer,
 * born inside the netns with its final name. */
static int veth_create(struct attach_ctx *x, struct err *e)
{
	char buf[REQ_BUF] __attribute__((aligned(8)));
	struct nl_msg m;
	struct nlattr *li, *data, *peer;
	int ret;

	nl_msg_init(&m, buf, sizeof(buf));
	nl_msg_start(&m, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
	nl_msg_put_header(&m, sizeof(struct ifinfomsg));   /* up later: see below */
	nl_put_str(&m, IFLA_IFNAME, x->host);
	nl_put_u32(&m, IFLA_MTU, x->mtu);
	nl_put_u32(&m, IFLA_MASTER, (uint32_t)x->bridge);
	li = nl_nest_start(&m, IFLA_LINKINFO);
	nl_put_str(&m, IFLA_INFO_KIND, "veth");
	data = nl_nest_start(&m, IFLA_INFO_DATA);
	peer = nl_nest_start(&m, VETH_INFO_PEER);
	/* The peer cannot be brought up here: the kernel configures it before
	 * the pair is linked, and veth_open() then fails with ENOTCONN. */
	nl_msg_put_header(&m, sizeof(struct ifinfomsg));
	nl_put_str(&m, IFLA_IFNAME, x->ifname);
	nl_put_u32(&m, IFLA_MTU, x->mtu);
	if (x->a->mac)
		nl_put(&m, IFLA_ADDRESS, x->a->mac, 6);
	nl_put_u32(&m, IFLA_NET_NS_FD, (uint32_t)x->nsfd);
	nl_nest_end(&m, peer);
	nl_nest_end(&m, data);
	nl_nest_end(&m, li);
	if ((ret = nl_talk(&x->n->rt, &m, NULL, e)) < 0)
		return ret;
	/* The alias cannot ride on the create (the kernel ignores IFLA_IFALIAS
	 * there), and a second message in the same send would touch an
	 * existing link of that name when the create fails: label it, and
	 * bring it up, now that it is ours. A kill in between leaves a veth
	 * without alias, which the repair adopts. */
	nl_msg_init(&m, buf, sizeof(buf));
	put_link_set(&m, 0, x->host, 0, x->alias);
	return nl_talk(&x->n->rt, &m, NULL, e);
}

static int ensure_ns_socket(struct attach_ctx *x, struct err *e)
{
	if (x->ns.fd >= 0)
		return 0;
	return ns_socket(x->n, x->nsfd, &x->ns, x->a->container, e);
}

/*
 * Give a spare namespace to the container: bind-mount it on its netns file
 * and turn the spare host end into the container's (rename, MTU, bridge,
 * alias, up) with one message. Returns 0 with x->nsfd set; -EAGAIN when
 * there is no spare or the mount failed (the spare is gone: go the cold
 * way); another -errno when the netns is mounted but the host end could not
 * be renamed (x->nsfd is set: the repair path takes it from there).
 */
static int spare_take(struct attach_ctx *x, const char *path, struct err *e)
{
	char buf[REQ_BUF] __attribute__((aligned(8)));
	char src[64];
	struct net *n = x->n;
	struct nl_msg m;
	struct spare sp;
	int fd;

	if (!n->n_spare)
		return -EAGAIN;
	sp = n->spare[--n->n_spare];
	fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0444);
	if (fd >= 0) {
		close(fd);
		snprintf(src, sizeof(src), "/proc/self/fd/%d", sp.nsfd);
		if (mount(src, path, "none", MS_BIND, NULL) == 0)
			fd = 0;
		else
			fd = -1;
	}
	if (fd < 0) {
		nl_close(&sp.sock);
		close(sp.nsfd);
		return -EAGAIN;
	}
	x->nsfd = sp.nsfd;
	x->ns = sp.sock;
	x->peer = sp.peer;
	nl_msg_init(&m, buf, sizeof(buf));
	put_link_set(&m, sp.host, NULL, x->bridge, x->alias);
	nl_put_str(&m, IFLA_IFNAME, x->host);
	nl_put_u32(&m, IFLA_MTU, x->mtu);
	return nl_talk(&n->rt, &m, NULL, e);
}

/*
 * The slow path: the netns existed already, or the veth create met a name
 * that is taken. Keep a host end that is ours and whose peer is our
 * interface in this netns; remove anything stale and create the pair again.
 */
static int veth_repair(struct attach_ctx *x, struct err *e)
{
	const char *c = x->a->container;
	struct link host, peer;
	int ret, have_host, have_peer;

	if ((have_host = link_get(&x->n->rt, x->host, &host, e)) < 0)
		return have_host;
	/* No alias: a create whose labelling was interrupted (the name is in
	 * berth's "bh" space); the peer check below decides whether to keep it. */
	if (have_host && (strcmp(host.kind, "veth") != 0 ||
			  (host.alias[0] && strcmp(host.alias, x->alias) != 0))) {
		if (!strncmp(host.alias, ALIAS_PREFIX, strlen(ALIAS_PREFIX)))
			return err_set(e, EEXIST, "host interface %s for %s/%s is taken by %s "
				       "(name hash collision): rename the container", x->host,
				       c, x->ifname, host.alias + strlen(ALIAS_PREFIX));
		return err_set(e, EEXIST, "host interface %s for container %s exists and was "
			       "not created by berth", x->host, c);
	}
	if ((ret = ensure_ns_socket(x, e)) < 0)
		return ret;
	if ((have_peer = link_get(&x->ns, x->ifname, &peer, e)) < 0)
		return err_wrap(e, "container %s", c);
	if (have_host && have_peer && !strcmp(peer.kind, "veth") &&
	    peer.peer == (uint32_t)host.ifindex) {
		/* Ours and whole: make sure it is enslaved and up. */
		if (host.master != (uint32_t)x->bridge || !(host.flags & IFF_UP) ||
		    !host.alias[0] || host.mtu != x->mtu) {
			char buf[256] __attribute__((aligned(8)));
			struct nl_msg m;

			nl_msg_init(&m, buf, sizeof(buf));
			put_link_set(&m, host.ifindex, NULL, x->bridge, x->alias);
			nl_put_u32(&m, IFLA_MTU, x->mtu);
			if ((ret = nl_talk(&x->n->rt, &m, NULL, e)) < 0)
				return err_wrap(e, "enslave %s to bridge %s for container %s",
						x->host, x->a->bridge, c);
		}
		return 0;
	}
	/* Someone else's netns: an interface of that name that is not ours
	 * (a veth with our label) belongs to the runtime or another plugin. */
	if (have_peer && x->a->netns && (strcmp(peer.kind, "veth") || strcmp(peer.alias, x->alias)))
		return err_set(e, EEXIST, "container %s: netns %s already has an interface %s "
			       "that berth did not make", c, x->a->netns, x->ifname);
	/* Stale: a host end whose peer is elsewhere (an older netns), or an
	 * interface in the netns that is not the peer of our host end. Deleting
	 * either end of a veth removes both. */
	if (have_host && (ret = link_del(&x->n->rt, host.ifindex, e)) < 0)
		return err_wrap(e, "remove stale veth %s of container %s", x->host, c);
	if (have_peer && (have_peer = link_get(&x->ns, x->ifname, &peer, e)) > 0 &&
	    (ret = link_del(&x->ns, peer.ifindex, e)) < 0)
		return err_wrap(e, "remove stale %s in netns of container %s", x->ifname, c);
	if (have_peer < 0)
		return have_peer;
	if ((ret = veth_create(x, e)) < 0)
		return err_wrap(e, "create veth %s/%s for container %s", x->host, x->ifname, c);
	return 0;
}

/* Global addresses on one interface, from an RTM_GETADDR dump. */
struct addr_list {
	int ifindex;
	unsigned n;
	struct net_ifaddr a[16];
};

static int addr_collect(const struct nlmsghdr *nlh, void *ctx)
{
	struct addr_list *l = ctx;
	const struct ifaddrmsg *ifa = NLMSG_DATA(nlh);
	const struct nlattr *tb[IFA_MAX + 1];
	const struct nlattr *at;
	size_t alen;

	if (nlh->nlmsg_type != RTM_NEWADDR || nl_msg_parse(nlh, sizeof(*ifa), tb, IFA_MAX) < 0)
		return -EBADMSG;
	if ((int)ifa->ifa_index != l->ifindex || ifa->ifa_scope != RT_SCOPE_UNIVERSE ||
	    l->n >= ARRAY_SIZE(l->a))
		return 0;
	at = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	alen = ifa->ifa_family == AF_INET6 ? 16 : 4;
	if (!at || nl_attr_len(at) != alen)
		return 0;
	ip_from_bytes(&l->a[l->n].addr, ifa->ifa_family, nl_attr_data(at));
	l->a[l->n].plen = ifa->ifa_prefixlen;
	l->n++;
	return 0;
}

/* Append the removal of every global address of an adopted interface that
 * is not among the wanted ones (the container's address changed). */
static int put_stale_addrs(struct attach_ctx *x, struct nl_msg *m, int ifindex, struct err *e)
{
	char buf[128] __attribute__((aligned(8)));
	struct addr_list l = { .ifindex = ifindex };
	struct nl_handlers h = { .on_data = addr_collect, .ctx = &l };
	struct nl_msg q;
	struct ifaddrmsg *ifa;
	int ret;

	nl_msg_init(&q, buf, sizeof(buf));
	nl_msg_start(&q, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP);
	nl_msg_put_header(&q, sizeof(struct ifaddrmsg));
	if ((ret = nl_talk(&x->ns, &q, &h, e)) < 0)
		return err_wrap(e, "list addresses of %s in container %s", x->ifname,
				x->a->container);
	for (unsigned i = 0; i < l.n; i++) {
		bool wanted = false;

		for (unsigned j = 0; j < x->a->n_addr; j++)
			wanted |= ip_equal(&l.a[i].addr, &x->a->addr[j].addr) &&
				  l.a[i].plen == x->a->addr[j].plen;
		if (wanted)
			continue;
		nl_msg_start(m, RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK);
		ifa = nl_msg_put_header(m, sizeof(*ifa));
		if (ifa) {
			ifa->ifa_family = l.a[i].addr.family;
			ifa->ifa_prefixlen = l.a[i].plen;
			ifa->ifa_index = (uint32_t)ifindex;
		}
		nl_put(m, IFA_LOCAL, l.a[i].addr.b, l.a[i].addr.family == AF_INET6 ? 16 : 4);
	}
	return 0;
}

/* on_error inside: an address already there, or already gone, is fine. */
static int accept_inside(unsigned index, int code, const char *ext, void *ctx)
{
	(void)index, (void)ext, (void)ctx;
	return code == EEXIST || code == EADDRNOTAVAIL ? 0 : -code;
}

/* Inside the netns: lo up, stale addresses out (adopted netns only), the
 * addresses, the interface's MTU and up, default routes. One send. */
static int configure_inside(struct attach_ctx *x, bool fresh, struct err *e)
{
	char buf[REQ_BUF] __attribute__((aligned(8)));
	struct nl_handlers h = { .on_error = accept_inside };
	const struct net_attach *a = x->a;
	struct nl_msg m;
	struct link peer;
	bool spare = fresh && x->peer > 0;
	int ret;

	if ((ret = ensure_ns_socket(x, e)) < 0)
		return ret;
	if (spare) {
		peer.ifindex = x->peer;         /* a spare: known since it was made */
	} else if ((ret = link_get(&x->ns, x->ifname, &peer, e)) <= 0) {
		return ret < 0 ? err_wrap(e, "container %s", a->container) :
		       err_set(e, ENODEV, "container %s: %s missing in its netns after creation",
			       a->container, x->ifname);
	}
	x->peer = peer.ifindex;
	if (a->mac || !spare) {
		memcpy(x->mac, a->mac ? a->mac : peer.mac, 6);
		x->have_mac = true;
	}
	nl_msg_init(&m, buf, sizeof(buf));
	put_link_up(&m, 0, "lo");
	if (!fresh && (ret = put_stale_addrs(x, &m, peer.ifindex, e)) < 0)
		return ret;
	for (unsigned i = 0; i < a->n_addr; i++)
		put_addr(&m, peer.ifindex, &a->addr[i]);
	/* labelled like its host end: in a runtime's netns, an interface of
	 * this name and label is a past attach's (veth_repair may replace it),
	 * not the runtime's */
	put_link_up(&m, peer.ifindex, NULL);
	nl_put_str(&m, IFLA_IFALIAS, x->alias);
	nl_put_u32(&m, IFLA_MTU, x->mtu);
	/* A spare's eth0 was made before its MAC was known; an adopted one
	 * may have another (a veth changes it while up). A new pair got it at
	 * birth (veth_create), and link_get told the adopted one's. */
	if (a->mac && (spare || (!fresh && memcmp(peer.mac, a->mac, 6) != 0)))
		nl_put(&m, IFLA_ADDRESS, a->mac, 6);
	for (unsigned i = 0; i < a->n_gw; i++)
		put_default_route(&m, peer.ifindex, &a->gw[i]);
	if ((ret = nl_talk(&x->ns, &m, &h, e)) < 0)
		return err_wrap(e, "configure %s of container %s", x->ifname, a->container);
	return 0;
}

/*
 * Hairpin mode on the host end. Where br_netfilter is loaded (Docker hosts
 * have it, and then every netns gets bridge-nf-call-iptables = 1), a
 * container reaching its own published port through the host's address is
 * DNATed inside the bridge and must leave through the port it came in by,
 * which a bridge does only in hairpin mode (Docker sets it for the same
 * reason). Setting it again is a no-op.
 */
static int port_hairpin(struct attach_ctx *x, struct err *e)
{
	char buf[256] __attribute__((aligned(8)));
	struct nlattr *li, *data;
	struct nl_msg m;

	nl_msg_init(&m, buf, sizeof(buf));
	nl_msg_start(&m, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
	nl_msg_put_header(&m, sizeof(struct ifinfomsg));
	nl_put_str(&m, IFLA_IFNAME, x->host);
	li = nl_nest_start(&m, IFLA_LINKINFO);
	nl_put_str(&m, IFLA_INFO_SLAVE_KIND, "bridge");
	data = nl_nest_start(&m, IFLA_INFO_SLAVE_DATA);
	nl_put_u8(&m, IFLA_BRPORT_MODE, 1);
	nl_nest_end(&m, data);
	nl_nest_end(&m, li);
	if (nl_talk(&x->n->rt, &m, NULL, e) < 0)
		return err_wrap(e, "hairpin mode on %s", x->host);
	return 0;
}

/*
 * Wait, briefly, until the host end forwards. The bridge enables a port on
 * the carrier change that bringing the peer up caused, but it learns of it
 * from the kernel's link watch worker, asynchronously: a frame the container
 * sends before that is dropped at the port. Usually it already forwards;
 * with STP on the bridge it would take seconds, so give up after 100 looks
 * (~10 ms).
 * host gets the host end (its ifindex stays 0 when the look-up failed).
 */
static void port_wait(struct attach_ctx *x, struct link *host)
{
	for (int i = 0; i < 100; i++) {
		if (link_get(&x->n->rt, x->host, host, NULL) <= 0) {
			host->ifindex = 0;
			return;
		}
		if (host->port_state == BR_STATE_FORWARDING || host->port_state < 0)
			return;
		usleep(50);
	}
}

/* on_error of the announcement's messages: none matters. */
static int accept_any(unsigned index, int code, const char *ext, void *ctx)
{
	(void)index, (void)code, (void)ext, (void)ctx;
	return 0;
}

/* on_data of mcast_route_wait's route query: is it the multicast route? */
static int route_is_multicast(const struct nlmsghdr *nlh, void *ctx)
{
	const struct rtmsg *rt = NLMSG_DATA(nlh);

	if (nlh->nlmsg_type == RTM_NEWROUTE && nlh->nlmsg_len >= NLMSG_LENGTH(sizeof(*rt)))
		*(bool *)ctx = rt->rtm_type == RTN_MULTICAST;
	return 0;
}

/*
 * Wait, briefly, until the container's interface routes IPv6 multicast.
 * Its ff00::/8 route comes when IPv6 finds the link ready, which it learns
 * from the same link watch worker as the bridge (port_wait), and the worker
 * may run later than we get here: the interface was brought up just now,
 * its operstate still says down. Until then a packet to ff02::1 follows the
 * default route: the NA went to the gateway as a unicast (after an NS for
 * it) and never reached the other containers, whose caches kept the old
 * MAC (net_announce.sh, about one run in forty on a loaded 2-core VM). The
 * ARP needs no route. Give up after 200 looks (~20 ms): a link that is not
 * ready by then is not one an announcement can help.
 */
static void mcast_route_wait(struct attach_ctx *x)
{
	char buf[128] __attribute__((aligned(8)));
	static const uint8_t all_nodes[16] = { 0xff, 0x02, [15] = 1 };
	bool multicast = false;
	struct nl_handlers h = { .on_data = route_is_multicast, .on_error = accept_any,
				 .ctx = &multicast };
	struct nl_msg m;
	struct rtmsg *rt;

	for (int i = 0; i < 200; i++) {
		nl_msg_init(&m, buf, sizeof(buf));
		nl_msg_start(&m, RTM_GETROUTE, NLM_F_REQUEST | NLM_F_ACK);
		rt = nl_msg_put_header(&m, sizeof(*rt));
		if (rt) {
			rt->rtm_family = AF_INET6;
			rt->rtm_dst_len = 128;
		}
		nl_put(&m, RTA_DST, all_nodes, sizeof(all_nodes));
		nl_put_u32(&m, RTA_OIF, (uint32_t)x->peer);
		if (nl_talk(&x->ns, &m, &h, NULL) < 0 || multicast)
			return;
		usleep(100);
	}
}

/*
 * Tell the link that the container's addresses are at its MAC now (issue 20
 * part 4): a gratuitous ARP (a broadcast request with sender = target = the
 * address) per IPv4 address and an unsolicited neighbour advertisement (to
 * ff02::1, Override set, with the target link-layer address, hop limit 255)
 * per IPv6 address, as the kernel's arp_notify and ndisc_notify do. Without
 * it, a peer or the host that cached another container's MAC for a reused
 * address keeps sending there until its entry times out (seconds to a
 * minute): Linux takes a gratuitous ARP even within locktime (is_garp), and
 * an NA with Override replaces a cached link-layer address. The kernel sends
 * neither by itself for a NODAD address, nor for one added to a link that is
 * up already. Best effort: an announcement that cannot be sent does not
 * fail the attach.
 *
 * The ARP is the kernel's: a neighbour entry for the address itself, put in
 * use (NTF_USE), makes it solicit the address from the address, which is a
 * gratuitous ARP request; the entry is deleted right after, so that it is
 * one ARP, like the one NA. A packet socket would cost its close, which waits for an RCU
 * grace period (synchronize_net: ~16 ms measured here, more than an attach).
 * The NA goes through a raw ICMPv6 socket made inside the netns (one setns
 * there and back); closing one costs nothing.
 *
 * Cost per attach, measured in-process (tests/bench/attach.c, 2-core VM,
 * p50): 75 us (IPv4) to 150 us (dual stack) with 10 containers on the
 * bridge. It grows with their number: a broadcast reaches every port, and
 * the receivers' softirq work runs in the sender's context: ~0.15 ms (IPv4)
 * to 0.5-0.7 ms (dual stack) at 100 containers, 0.5-1.4 ms at 200.
 */
static void announce(struct attach_ctx *x, struct link *host)
{
	char buf[512] __attribute__((aligned(8)));
	struct nl_handlers h = { .on_error = accept_any };
	const struct net_attach *a = x->a;
	struct nl_msg m;
	bool v4 = false, v6 = false;
	int fd;

	for (unsigned i = 0; i < a->n_addr; i++) {
		v4 |= a->addr[i].addr.family == AF_INET;
		v6 |= a->addr[i].addr.family == AF_INET6;
	}
	if (!v4 && !v6)
		return;
	port_wait(x, host);
	nl_msg_init(&m, buf, sizeof(buf));
	for (unsigned i = 0; v4 && i < a->n_addr; i++) {
		struct ndmsg *nd;

		if (a->addr[i].addr.family != AF_INET)
			continue;
		/* A fresh entry (one still probing from an earlier attach
		 * would not solicit again), put in use, which sends the ARP
		 * at once, and deleted again: left to fail, it would solicit
		 * twice more a second apart, and from a container removed
		 * meanwhile whose netns the kernel has not destroyed yet,
		 * such a late ARP would hand its address back to its old MAC
		 * in every cache. */
		for (int step = 0; step < 3; step++) {
			bool use = step == 1;

			nl_msg_start(&m, use ? RTM_NEWNEIGH : RTM_DELNEIGH,
				     NLM_F_REQUEST | NLM_F_ACK | (use ? NLM_F_CREATE : 0));
			nd = nl_msg_put_header(&m, sizeof(*nd));
			if (nd) {
				nd->ndm_family = AF_INET;
				nd->ndm_ifindex = x->peer;
				nd->ndm_flags = use ? NTF_USE : 0;
			}
			nl_put(&m, NDA_DST, a->addr[i].addr.b, 4);
		}
	}
	if (v4)
		(void)nl_talk(&x->ns, &m, &h, NULL);
	if (!v6)
		return;
	mcast_route_wait(x);
	if (setns(x->nsfd, CLONE_NEWNET) < 0)
		return;
	fd = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6);
	if (setns(x->n->host_ns, CLONE_NEWNET) < 0)
		abort();        /* we hold it: cannot fail; never go on in the wrong ns */
	if (fd < 0)
		return;
	if (!x->have_mac) {
		struct ifreq ifr = { 0 };

		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", x->ifname);
		if (ioctl(fd, SIOCGIFHWADDR, &ifr) == 0) {
			memcpy(x->mac, ifr.ifr_hwaddr.sa_data, 6);
			x->have_mac = true;
		}
	}
	(void)setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &(int){ 255 }, sizeof(int));
	for (unsigned i = 0; x->have_mac && i < a->n_addr; i++) {
		/* type 136, code 0, checksum (the kernel's), flags: Override;
		 * target; option 2 (target link-layer address), 1 x 8 bytes */
		uint8_t na[32] = { 136, 0, 0, 0, 0x20 };
		struct sockaddr_in6 dst = { .sin6_family = AF_INET6,
					    .sin6_scope_id = (uint32_t)x->peer };
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		} cm = { 0 };
		struct iovec iov = { na, sizeof(na) };
		struct msghdr msg = { .msg_name = &dst, .msg_namelen = sizeof(dst),
				      .msg_iov = &iov, .msg_iovlen = 1,
				      .msg_control = cm.b, .msg_controllen = sizeof(cm.b) };
		struct in6_pktinfo pi = { .ipi6_ifindex = (unsigned)x->peer };

		if (a->addr[i].addr.family != AF_INET6)
			continue;
		memcpy(na + 8, a->addr[i].addr.b, 16);
		na[24] = 2;
		na[25] = 1;
		memcpy(na + 26, x->mac, 6);
		dst.sin6_addr.s6_addr[0] = 0xff;
		dst.sin6_addr.s6_addr[1] = 0x02;
		dst.sin6_addr.s6_addr[15] = 1;
		/* From the address itself, as the kernel's own NA. */
		memcpy(&pi.ipi6_addr, a->addr[i].addr.b, 16);
		cm.h.cmsg_level = IPPROTO_IPV6;
		cm.h.cmsg_type = IPV6_PKTINFO;
		cm.h.cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(&cm.h), &pi, sizeof(pi));
		(void)sendmsg(fd, &msg, 0); usleep(1000); (void)sendmsg(fd, &msg, 0);
	}
	close(fd);
}

/* What the caller asked to know (a->out): look up what is not known yet. */
static int attach_out(struct attach_ctx *x, const struct link *br, struct link *host,
		      struct err *e)
{
	struct net_attach_out *o = x->a->out;
	struct link peer;
	int ret;

	if (!host->ifindex && (ret = link_get(&x->n->rt, x->host, host, e)) <= 0)
		return ret < 0 ? ret : err_set(e, ENODEV, "container %s: host interface %s vanished",
					       x->a->container, x->host);
	if (!x->have_mac) {
		if ((ret = ensure_ns_socket(x, e)) < 0 ||
		    (ret = link_get(&x->ns, x->ifname, &peer, e)) < 0)
			return ret;
		if (!ret)
			return err_set(e, ENODEV, "container %s: %s vanished from its netns",
				       x->a->container, x->ifname);
		memcpy(x->mac, peer.mac, 6);
	}
	memcpy(o->mac, x->mac, 6);
	memcpy(o->host_mac, host->mac, 6);
	memcpy(o->bridge_mac, br->mac, 6);
	snprintf(o->host, sizeof(o->host), "%s", x->host);
	return 0;
}

int net_attach(struct net *n, const struct net_attach *a, struct err *e)
{
	struct attach_ctx x = { .n = n, .a = a, .nsfd = -1, .ns = { .fd = -1 } };
	char path[PATH_MAX], mac[MAC_STRLEN];
	struct link br, host = { 0 };
	bool created;
	int ret;

	x.ifname = a->ifname ? a->ifname : "eth0";
	x.mtu = a->mtu ? a->mtu : DEFAULT_MTU;
	if ((ret = net_ifname_host(a->container, x.ifname, x.host, e)) < 0 ||
	    (ret = net_ifname_check("bridge", a->bridge, e)) < 0 ||
	    (!a->netns && (ret = net_netns_path(n, a->container, path, sizeof(path), e)) < 0))
		return ret;
	if (a->mac && ((a->mac[0] & 1) || !memcmp(a->mac, "\0\0\0\0\0\0", 6)))
		return err_set(e, EINVAL, "container %s: MAC %s is %s", a->container,
			       mac_format(a->mac, mac), a->mac[0] & 1 ? "multicast" : "zero");
	if (a->n_addr > NET_ADDRS_MAX || a->n_gw > NET_ADDRS_MAX)
		return err_set(e, EINVAL, "container %s: at most %d addresses and gateways",
			       a->container, NET_ADDRS_MAX);
	if (x.mtu < 68 || x.mtu > 65535)
		return err_set(e, EINVAL, "container %s: MTU %u out of range (68-65535)",
			       a->container, x.mtu);
	host_alias(a->container, x.ifname, x.alias);

	if ((ret = link_get(&n->rt, a->bridge, &br, e)) <= 0)
		return ret < 0 ? ret : err_set(e, ENODEV, "container %s: bridge %s does not exist",
					       a->container, a->bridge);
	if (strcmp(br.kind, "bridge") != 0)
		return err_set(e, EINVAL, "container %s: %s is not a bridge", a->container,
			       a->bridge);
	x.bridge = br.ifindex;

	/* Fastest path: a prepared spare (new container, first interface). */
	ret = -EAGAIN;
	if (!a->netns && n->n_spare && !strcmp(x.ifname, "eth0") && !netns_exists(path))
		ret = spare_take(&x, path, e);
	if (ret == 0) {
		created = true;
		goto inside;
	}
	err_clear(e);
	if (a->netns) {
		if ((x.nsfd = ret = netns_open_ext(a->netns, a->container, e)) < 0)
			return ret;
		created = false;        /* never ours: adopt what is there */
	} else if (x.nsfd < 0) {
		x.nsfd = ret = netns_ensure(n, a->container, path, &created, &x.ns, e);
		if (ret < 0)
			return ret;
	} else {
		created = false;        /* a spare whose rename failed: repair */
	}
	/* Fast path: a brand-new netns cannot hold a stale peer, so try the
	 * create straight away; anything in the way sends us to the repair. */
	ret = created ? veth_create(&x, e) : -EEXIST;
	if (ret == -EEXIST) {
		err_clear(e);
		ret = veth_repair(&x, e);
	} else if (ret < 0) {
		err_wrap(e, "create veth %s/%s for container %s", x.host, x.ifname, a->container);
	}
inside:
	if (ret == 0)
		ret = port_hairpin(&x, e);
	if (ret == 0)
		ret = configure_inside(&x, created, e);
	if (ret == 0 && !a->announce_later)
		announce(&x, &host);
	if (ret == 0 && a->out)
		ret = attach_out(&x, &br, &host, e);
	nl_close(&x.ns);
	close(x.nsfd);
	return ret;
}

int net_announce(struct net *n, const struct net_attach *a, struct err *e)
{
	struct attach_ctx x = { .n = n, .a = a, .nsfd = -1, .ns = { .fd = -1 } };
	struct link host = { 0 }, peer;
	int ret;

	x.ifname = a->ifname ? a->ifname : "eth0";
	if ((ret = net_ifname_host(a->container, x.ifname, x.host, e)) < 0 ||
	    (ret = x.nsfd = netns_open_existing(n, a, NULL, e)) < 0)
		return ret;
	if ((ret = ns_socket(n, x.nsfd, &x.ns, a->container, e)) == 0 &&
	    (ret = link_get(&x.ns, x.ifname, &peer, e)) == 0)
		ret = err_set(e, ENODEV, "container %s: no %s in its netns", a->container, x.ifname);
	if (ret > 0) {
		x.peer = peer.ifindex;
		memcpy(x.mac, peer.mac, 6);
		x.have_mac = true;
		announce(&x, &host);
		ret = 0;
	}
	nl_close(&x.ns);
	close(x.nsfd);
	return ret;
}

int net_detach(struct net *n, const char *c, struct err *e)
{
	char path[PATH_MAX];
	int ret;

	if ((ret = net_netns_path(n, c, path, sizeof(path), e)) < 0)
		return ret;
	/* MNT_DETACH: a process inside (exec) keeps the namespace alive on its
	 * own; the file goes now, the namespace when its last user does. Two
	 * attaches racing on one container can stack two mounts: remove all. */
	for (int i = 0; i < 16; i++) {
		if (umount2(path, MNT_DETACH) == 0)
			continue;
		if (errno != EINVAL && errno != ENOENT)
			return err_sys(e, errno, "unmount netns %s of container %s", path, c);
		break;
	}
	if (unlink(path) < 0 && errno != ENOENT)
		return err_sys(e, errno, "remove netns file %s of container %s", path, c);
	return 0;
}

/* The host end of c/ifname if berth made it: 1 with it in l (its name in
 * host), 0 when there is none, -EEXIST when the name is someone else's. */
static int own_host_end(struct net *n, const char *c, const char *ifname, struct link *l,
			char host[16], struct err *e)
{
	char alias[128];
	int ret;

	if ((ret = net_ifname_host(c, ifname, host, e)) < 0)
		return ret;
	if ((ret = link_get(&n->rt, host, l, e)) <= 0)
		return ret;
	host_alias(c, ifname, alias);
	/* No alias: a create interrupted before its labelling (veth_create). */
	if (strcmp(l->kind, "veth") != 0 || (l->alias[0] && strcmp(l->alias, alias) != 0)) {
		if (!strncmp(l->alias, ALIAS_PREFIX, strlen(ALIAS_PREFIX)))
			return err_set(e, EEXIST, "host interface %s is %s's, not %s/%s: left alone",
				       host, l->alias + strlen(ALIAS_PREFIX), c, ifname);
		return err_set(e, EEXIST, "host interface %s for container %s exists and was not "
			       "created by berth: left alone", host, c);
	}
	return 1;
}

/*
 * Explicit deletion of the pair, the one case where there is no netns of
 * berth's to remove: the kernel's unregister path waits for an RCU barrier
 * before RTM_DELLINK is answered, so this blocks the caller where
 * net_detach returns at once. Measured on a 2-core VM (kernel 6.18):
 * RTM_DELLINK 14-22 ms, `berth net unplug` 15-23 ms against 1.4 ms for one
 * with nothing to remove. Moving either end to another netns instead costs
 * the same (~21 ms: the same barrier). The daemon runs it in its network
 * worker (runtime/net_worker.c), after net_unplug_down.
 */
int net_unplug(struct net *n, const char *c, const char *ifname, struct err *e)
{
	char host[16];
	struct link l;
	int ret;

	if ((ret = own_host_end(n, c, ifname ? ifname : "eth0", &l, host, e)) <= 0)
		return ret;
	if ((ret = link_del(&n->rt, l.ifindex, e)) < 0)
		return err_wrap(e, "remove host interface %s of container %s", host, c);
	return 0;
}

int net_unplug_down(struct net *n, const char *c, const char *ifname, struct err *e)
{
	char buf[128] __attribute__((aligned(8)));
	char host[16];
	struct nl_msg m;
	struct ifinfomsg *ifi;
	struct link l;
	int ret;

	if ((ret = own_host_end(n, c, ifname ? ifname : "eth0", &l, host, e)) <= 0)
		return ret;
	nl_msg_init(&m, buf, sizeof(buf));
	nl_msg_start(&m, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
	ifi = nl_msg_put_header(&m, sizeof(*ifi));
	if (ifi) {
		ifi->ifi_index = l.ifindex;
		ifi->ifi_change = IFF_UP;   /* flags 0: down */
	}
	if ((ret = nl_talk(&n->rt, &m, NULL, e)) < 0)
		return err_wrap(e, "take host interface %s of container %s down", host, c);
	return 0;
}

/* Default routes of one family in the main table, from an RTM_GETROUTE dump. */
struct route_list {
	unsigned n;
	struct {
		struct ip_addr gw;
		uint32_t oif;
	} r[16];
};

static int route_collect(const struct nlmsghdr *nlh, void *ctx)
{
	struct route_list *l = ctx;
	const struct rtmsg *rt = NLMSG_DATA(nlh);
	const struct nlattr *tb[RTA_MAX + 1];
	uint32_t table = 0;

	if (nlh->nlmsg_type != RTM_NEWROUTE || nl_msg_parse(nlh, sizeof(*rt), tb, RTA_MAX) < 0)
		return -EBADMSG;
	if (tb[RTA_TABLE])
		nl_attr_u32(tb[RTA_TABLE], &table);
	else
		table = rt->rtm_table;
	if (rt->rtm_dst_len || table != RT_TABLE_MAIN || !tb[RTA_GATEWAY] || !tb[RTA_OIF] ||
	    nl_attr_len(tb[RTA_GATEWAY]) != (rt->rtm_family == AF_INET6 ? 16u : 4u) ||
	    l->n >= ARRAY_SIZE(l->r))
		return 0;
	ip_from_bytes(&l->r[l->n].gw, rt->rtm_family, nl_attr_data(tb[RTA_GATEWAY]));
	nl_attr_u32(tb[RTA_OIF], &l->r[l->n].oif);
	l->n++;
	return 0;
}

/* The container's side: interface, MAC, addresses and default routes. */
static int check_inside(struct net *n, const struct net_attach *a, const char *ifname,
			const char *hname, const struct link *host, int nsfd, const char *where,
			struct err *e)
{
	const char *c = a->container;
	char buf[128] __attribute__((aligned(8))), s[IP_STRLEN];
	struct nl_sock ns;
	struct nl_msg m;
	struct link p;
	int ret;

	if ((ret = ns_socket(n, nsfd, &ns, c, e)) < 0)
		return ret;
	if ((ret = link_get(&ns, ifname, &p, e)) <= 0) {
		if (!ret)
			ret = err_set(e, ENODEV, "container %s: there is no %s in %s", c, ifname, where);
		goto out;
	}
	if (strcmp(p.kind, "veth") != 0 || p.peer != (uint32_t)host->ifindex) {
		ret = err_set(e, EINVAL, "container %s: %s in %s is not the peer of host interface "
			      "%s", c, ifname, where, hname);
		goto out;
	}
	if (!(p.flags & IFF_UP)) {
		ret = err_set(e, ENETDOWN, "container %s: %s is down", c, ifname);
		goto out;
	}
	if (a->mac && memcmp(p.mac, a->mac, 6) != 0) {
		char have[MAC_STRLEN], want[MAC_STRLEN];

		ret = err_set(e, EINVAL, "container %s: %s has MAC %s, not %s", c, ifname,
			      mac_format(p.mac, have), mac_format(a->mac, want));
		goto out;
	}
	if (a->n_addr) {
		struct addr_list l = { .ifindex = p.ifindex };
		struct nl_handlers h = { .on_data = addr_collect, .ctx = &l };

		nl_msg_init(&m, buf, sizeof(buf));
		nl_msg_start(&m, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP);
		nl_msg_put_header(&m, sizeof(struct ifaddrmsg));
		if ((ret = nl_talk(&ns, &m, &h, e)) < 0) {
			err_wrap(e, "container %s: list addresses of %s", c, ifname);
			goto out;
		}
		for (unsigned i = 0; i < a->n_addr; i++) {
			bool found = false;

			for (unsigned j = 0; j < l.n; j++)
				found |= ip_equal(&l.a[j].addr, &a->addr[i].addr) &&
					 l.a[j].plen == a->addr[i].plen;
			if (!found) {
				ret = err_set(e, EADDRNOTAVAIL, "container %s: address %s/%u is "
					      "missing on %s", c, ip_format(&a->addr[i].addr, s),
					      a->addr[i].plen, ifname);
				goto out;
			}
		}
	}
	for (unsigned i = 0; i < a->n_gw; i++) {
		struct route_list l = { 0 };
		struct nl_handlers h = { .on_data = route_collect, .ctx = &l };
		struct rtmsg *rt;
		bool found = false;

		nl_msg_init(&m, buf, sizeof(buf));
		nl_msg_start(&m, RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP);
		rt = nl_msg_put_header(&m, sizeof(*rt));
		if (rt)
			rt->rtm_family = a->gw[i].family;
		if ((ret = nl_talk(&ns, &m, &h, e)) < 0) {
			err_wrap(e, "container %s: list routes", c);
			goto out;
		}
		for (unsigned j = 0; j < l.n; j++)
			found |= ip_equal(&l.r[j].gw, &a->gw[i]) && l.r[j].oif == (uint32_t)p.ifindex;
		if (!found) {
			ret = err_set(e, ENETUNREACH, "container %s: the default route via %s on %s "
				      "is missing", c, ip_format(&a->gw[i], s), ifname);
			goto out;
		}
	}
	ret = 0;
out:
	nl_close(&ns);
	return ret;
}

int net_check(struct net *n, const struct net_attach *a, struct err *e)
{
	const char *c = a->container, *ifname = a->ifname ? a->ifname : "eth0";
	char host[16], alias[128];
	const char *where;
	struct link h, br;
	int fd, ret;

	if ((ret = net_ifname_host(c, ifname, host, e)) < 0 ||
	    (ret = net_ifname_check("bridge", a->bridge, e)) < 0)
		return ret;
	if (a->n_addr > NET_ADDRS_MAX || a->n_gw > NET_ADDRS_MAX)
		return err_set(e, EINVAL, "container %s: at most %d addresses and gateways", c,
			       NET_ADDRS_MAX);
	if ((ret = link_get(&n->rt, host, &h, e)) < 0)
		return ret;
	if (!ret)
		return err_set(e, ENODEV, "container %s: host interface %s (of its %s) is missing",
			       c, host, ifname);
	host_alias(c, ifname, alias);
	if (strcmp(h.kind, "veth") != 0 || strcmp(h.alias, alias) != 0)
		return err_set(e, EEXIST, "container %s: host interface %s is not berth's %s/%s%s%s",
			       c, host, c, ifname, h.alias[0] ? ": its label is " : "", h.alias);
	if ((ret = link_get(&n->rt, a->bridge, &br, e)) < 0)
		return ret;
	if (!ret || h.master != (uint32_t)br.ifindex)
		return err_set(e, EINVAL, "container %s: host interface %s is not a port of bridge %s",
			       c, host, a->bridge);
	if (!(h.flags & IFF_UP))
		return err_set(e, ENETDOWN, "container %s: host interface %s is down", c, host);
	if ((fd = netns_open_existing(n, a, &where, e)) < 0)
		return fd;
	ret = check_inside(n, a, ifname, host, &h, fd, where, e);
	close(fd);
	return ret;
}

/* ---- counters ------------------------------------------------------------- */

struct stats_ctx {
	struct net_link_stats *out;
	bool found;
};

static int stats_parse(const struct nlmsghdr *nlh, void *ctx)
{
	struct stats_ctx *sc = ctx;
	const struct nlattr *tb[IFLA_MAX + 1];
	struct rtnl_link_stats64 st;

	if (nlh->nlmsg_type != RTM_NEWLINK ||
	    nl_msg_parse(nlh, sizeof(struct ifinfomsg), tb, IFLA_MAX) < 0)
		return -EBADMSG;
	if (!tb[IFLA_STATS64] || nl_attr_len(tb[IFLA_STATS64]) < sizeof(st))
		return 0;
	memcpy(&st, nl_attr_data(tb[IFLA_STATS64]), sizeof(st));   /* may be unaligned */
	sc->out->rx_packets = st.rx_packets;
	sc->out->rx_bytes = st.rx_bytes;
	sc->out->tx_packets = st.tx_packets;
	sc->out->tx_bytes = st.tx_bytes;
	sc->found = true;
	return 0;
}

int net_host_stats(struct net *n, const char *container, const char *ifname,
		   struct net_link_stats *out, struct err *e)
{
	char host[16], buf[256] __attribute__((aligned(8)));
	struct stats_ctx sc = { .out = out };
	struct nl_handlers h = { .on_data = stats_parse, .ctx = &sc };
	struct nl_msg m;
	int ret;

	memset(out, 0, sizeof(*out));
	if (net_ifname_host(container, ifname ? ifname : "eth0", host, e) < 0)
		return -e->code;
	nl_msg_init(&m, buf, sizeof(buf));
	nl_msg_start(&m, RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK);
	nl_msg_put_header(&m, sizeof(struct ifinfomsg));
	nl_put_str(&m, IFLA_IFNAME, host);
	ret = nl_talk(&n->rt, &m, &h, e);
	if (ret == -ENODEV) {
		err_clear(e);
		return 0;
	}
	if (ret < 0)
		return err_wrap(e, "counters of %s", host);
	return sc.found ? 1 : 0;
}
