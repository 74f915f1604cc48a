/* test_store.c - store/: open and refuse, migrations, networks, IPAM semantics,
 * reconcile, containers, ports, events, and the errors a user reads. */
#include "store/store.h"
#include "t.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct store *s;
static struct err e;
static char top[512];

/* The address allocated, or the error message. */
static const char *alloc(const char *net, int af, const char *owner, const char *req)
{
	static char buf[ERR_MSG_MAX];
	struct ip_addr want, got;

	err_clear(&e);
	if (req && ip_parse(req, &want, &e) < 0)
		return e.msg;
	if (ipam_allocate(s, net, af, owner, req ? &want : NULL, &got, &e) < 0)
		return e.msg;
	return ip_format(&got, buf);
}

#define A4(owner) alloc("default", AF_INET, owner, NULL)

static void parse_ranges(struct store_pool *p, const char *csv)
{
	char buf[512], *save = NULL;

	p->nranges = 0;
	if (!csv)
		return;
	snprintf(buf, sizeof(buf), "%s", csv);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
		if (ip_range_parse(t, &p->ranges[p->nranges], NULL) == 0)
			p->nranges++;
}

/* Define a network from strings; "" on success, else the error message.
 * Prefixes are taken as written, host bits and all (ip_prefix_parse_host),
 * so that the store's own validation is what answers. */
static const char *net_put(const char *name, const char *subnet, const char *gw,
			   const char *ranges, const char *subnet6, const char *ranges6)
{
	struct store_network n = { 0 };
	struct ip_addr host;

	snprintf(n.name, sizeof(n.name), "%s", name);
	if (subnet) {
		ip_prefix_parse_host(subnet, &host, &n.v4.subnet, NULL);
		n.v4.subnet.addr = host;
	}
	if (gw)
		ip_parse(gw, &n.v4.gateway, NULL);
	parse_ranges(&n.v4, ranges);
	if (subnet6) {
		ip_prefix_parse_host(subnet6, &host, &n.v6.subnet, NULL);
		n.v6.subnet.addr = host;
	}
	parse_ranges(&n.v6, ranges6);
	err_clear(&e);
	if (store_network_put(s, &n, &e) < 0)
		return e.msg;
	return "";
}

static void reopen_in(const char *dir)
{
	store_close(s);
	s = NULL;
	T_OK(store_open(&s, dir, &e) == 0, "reopen: %s", s ? "" : e.msg);
	if (!s)
		exit(1);
}

static void reopen(void)
{
	reopen_in(top);
}

/* Run one SQL statement on the file behind the store's back. */
static int64_t raw_sql(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return v;
}

static const char *open_error(const char *dir)
{
	struct store *t = NULL;

	err_clear(&e);
	if (store_open(&t, dir, &e) == 0) {
		store_close(t);
		return "(opened)";
	}
	return e.msg;
}

static void test_open(void)
{
	char dir[PATH_MAX], db[PATH_MAX + 16];
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/a/b/state", top);
	T_OK(store_open(&s, dir, &e) == 0, "store_open creates a missing state dir: %s", e.msg);
	snprintf(db, sizeof(db), "%s/state.db", dir);
	T_OK(stat(db, &st) == 0 && S_ISREG(st.st_mode), "state.db exists");
	T_OK(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700, "the state dir is 0700");
	store_close(s);
	s = NULL;
	T_EQ(raw_sql(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION,
	     "schema version is in PRAGMA user_version");
	T_EQ(raw_sql(db, "SELECT count(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'"), 1,
	     "the database is in WAL mode");
	T_STREQ(open_error(dir), "(opened)", "an existing database opens again");
}

static void test_refuse(void)
{
	char dir[PATH_MAX], db[PATH_MAX + 16], want[PATH_MAX + 128], buf[64];
	const char *garbage = "this is not a database, it is a text file that got here somehow\n";
	int fd;

	/* A newer schema. */
	snprintf(dir, sizeof(dir), "%s/newer", top);
	T_STREQ(open_error(dir), "(opened)", "fresh database");
	snprintf(db, sizeof(db), "%s/state.db", dir);
	raw_sql(db, "PRAGMA user_version=7");
	snprintf(want, sizeof(want), "%s: schema version 7 is newer than this berth understands "
		 "(%d); upgrade berth", db, STORE_SCHEMA_VERSION);
	T_STREQ(open_error(dir), want, "a database from a newer berth is refused");
	T_EQ(raw_sql(db, "PRAGMA user_version"), 7, "and left as it was");

	/* Garbage. */
	snprintf(dir, sizeof(dir), "%s/garbage", top);
	mkdir(dir, 0700);
	snprintf(db, sizeof(db), "%s/state.db", dir);
	fd = open(db, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	for (int i = 0; i < 100; i++)
		(void)!write(fd, garbage, strlen(garbage));
	close(fd);
	snprintf(want, sizeof(want), "%s: open: file is not a database; the file is left "
		 "untouched: move it away to start with an empty state", db);
	T_STREQ(open_error(dir), want, "a file that is not SQLite is refused, naming the file");
	fd = open(db, O_RDONLY);
	T_OK(read(fd, buf, sizeof(buf)) == sizeof(buf) && !memcmp(buf, garbage, sizeof(buf)),
	     "and is not recreated");
	close(fd);

	/* Damaged pages inside a real database. */
	snprintf(dir, sizeof(dir), "%s/damaged", top);
	T_OK(store_open(&s, dir, &e) == 0, "fresh database");
	T_STREQ(net_put("default", "10.88.0.0/16", NULL, NULL, NULL, NULL), "", "network");
	for (int i = 0; i < 300; i++) {
		char o[48];
		snprintf(o, sizeof(o), "owner-with-a-long-name-%d", i);
		alloc("default", AF_INET, o, NULL);
	}
	store_close(s);
	s = NULL;
	snprintf(db, sizeof(db), "%s/state.db", dir);
	fd = open(db, O_WRONLY);
	/* Over the b-tree page headers of pages 3..6 (page 1 holds the file
	 * header and the schema). */
	for (off_t off = 2 * 4096; off < 6 * 4096; off += 4096)
		(void)!pwrite(fd, garbage, 16, off);
	close(fd);
	{
		const char *m = open_error(dir);
		T_OK(!strncmp(m, db, strlen(db)) && strstr(m, "move it away"),
		     "a damaged database is refused, naming the file: %s", m);
	}

	/* Someone else's SQLite database. */
	snprintf(dir, sizeof(dir), "%s/foreign", top);
	mkdir(dir, 0700);
	snprintf(db, sizeof(db), "%s/state.db", dir);
	raw_sql(db, "CREATE TABLE photos (id INTEGER)");
	snprintf(want, sizeof(want), "%s: not a berth database (it has tables but no schema "
		 "version); refusing to touch it", db);
	T_STREQ(open_error(dir), want, "an unrelated SQLite database is refused");

	/* A state dir that cannot be created. */
	snprintf(dir, sizeof(dir), "%s/garbage/state.db/sub", top);
	snprintf(want, sizeof(want), "create state directory %s/garbage/state.db/sub: Not a "
		 "directory (ENOTDIR)", top);
	T_STREQ(open_error(dir), want, "a state dir that cannot be created");

	/* A directory where the file should be. */
	snprintf(dir, sizeof(dir), "%s/isdir", top);
	snprintf(db, sizeof(db), "%s/state.db", dir);
	mkdir(dir, 0700);
	mkdir(db, 0700);
	snprintf(want, sizeof(want), "%s: not a regular file; refusing to touch it", db);
	T_STREQ(open_error(dir), want, "a directory named state.db is refused");
}

/* A version-1 database (IPAM only) is migrated forward, keeping its rows. */
static void test_migrate(void)
{
	char dir[PATH_MAX], db[PATH_MAX + 16];
	struct store_container c = { .name = "web", .state = "created" };

	snprintf(dir, sizeof(dir), "%s/migrate", top);
	T_OK(store_open(&s, dir, &e) == 0, "fresh database");
	net_put("default", "10.88.0.0/16", NULL, NULL, NULL, NULL);
	T_STREQ(A4("web"), "10.88.0.2", "an allocation before the downgrade");
	store_close(s);
	s = NULL;
	snprintf(db, sizeof(db), "%s/state.db", dir);
	raw_sql(db, "DROP TABLE ports");
	raw_sql(db, "DROP TABLE containers");
	raw_sql(db, "DROP TABLE events");
	raw_sql(db, "DROP TABLE cni");
	raw_sql(db, "DROP TABLE images");
	raw_sql(db, "PRAGMA user_version=1");
	T_EQ(raw_sql(db, "SELECT count(*) FROM sqlite_master WHERE name = 'containers'"), 0,
	     "the file now has the version-1 schema");
	T_OK(store_open(&s, dir, &e) == 0, "a version-1 database opens: %s", e.msg);
	T_EQ(raw_sql(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION, "and is migrated forward");
	T_OK(store_container_put(s, &c, &e) == 0, "the new tables work: %s", e.msg);
	T_STREQ(A4("web"), "10.88.0.2", "the old allocation survived the migration");
	store_close(s);
	s = NULL;
}

static int cni_row(void *ctx, const char *name, const char *spec)
{
	struct buf *b = ctx;

	buf_printf(b, "%s=%s;", name, spec);
	return 0;
}

/* CNI attachments: the request each was made from, by name. */
static void test_cni(void)
{
	char dir[PATH_MAX];
	struct buf b;

	buf_init(&b);
	snprintf(dir, sizeof(dir), "%s/cni", top);
	T_OK(store_open(&s, dir, &e) == 0, "fresh database");
	T_OK(store_cni_put(s, "aaaa", "add default aaaa eth0 /run/netns/a", &e) == 0, "put: %s", e.msg);
	T_OK(store_cni_put(s, "bbbb", "add default bbbb eth0 /run/netns/b", &e) == 0, "put another");
	T_OK(store_cni_put(s, "aaaa", "add default aaaa eth0 /run/netns/x", &e) == 0,
	     "put again replaces");
	T_OK(store_cni_list(s, cni_row, &b, &e) == 0, "list: %s", e.msg);
	T_STREQ(b.data, "aaaa=add default aaaa eth0 /run/netns/x;bbbb=add default bbbb eth0 "
		"/run/netns/b;", "listed by name, the newest request");
	T_OK(store_cni_delete(s, "aaaa", &e) == 0, "delete");
	T_OK(store_cni_delete(s, "aaaa", &e) == 0, "delete of one that is gone is fine");
	buf_reset(&b);
	store_cni_list(s, cni_row, &b, &e);
	T_STREQ(b.data, "bbbb=add default bbbb eth0 /run/netns/b;", "the other stays");
	T_OK(store_cni_put(s, "", "x", &e) < 0, "an empty name is refused");
	store_close(s);
	T_OK(store_open(&s, dir, &e) == 0, "reopen");
	buf_reset(&b);
	store_cni_list(s, cni_row, &b, &e);
	T_STREQ(b.data, "bbbb=add default bbbb eth0 /run/netns/b;", "attachments survive reopening");
	store_close(s);
	s = NULL;
	buf_free(&b);
}

static void test_bad_input(void)
{
	T_STREQ(net_put("bad", "10.88.0.1/16", NULL, NULL, NULL, NULL),
		"network bad: subnet 10.88.0.1/16 has host bits set (did you mean 10.88.0.0/16?)",
		"invalid CIDR: host bits set");
	T_STREQ(net_put("bad", "10.88.0.0/31", NULL, NULL, NULL, NULL),
		"network bad: subnet 10.88.0.0/31 is too small (at most /30)", "a /31 is too small");
	T_STREQ(net_put("bad", "fd88::/64", NULL, NULL, NULL, NULL),
		"network bad: subnet must be an IPv4 prefix", "IPv6 given as the IPv4 subnet");
	T_STREQ(net_put("bad", NULL, NULL, NULL, NULL, NULL),
		"network bad: no subnet (give an IPv4 subnet, an IPv6 one, or both)", "no subnet");
	T_STREQ(net_put("bad", "10.88.0.0/16", NULL, "10.99.0.0-10.99.0.10", NULL, NULL),
		"network bad: range 10.99.0.0-10.99.0.10 is outside subnet 10.88.0.0/16",
		"range outside the subnet");
	T_STREQ(net_put("bad", "10.88.0.0/16", NULL, "10.88.1.0-10.88.1.100,10.88.1.50-10.88.1.200",
			NULL, NULL),
		"network bad: ranges 10.88.1.0-10.88.1.100 and 10.88.1.50-10.88.1.200 overlap",
		"overlapping ranges");
	{
		struct store_network n = { .name = "bad" };
		ip_prefix_parse("10.88.0.0/16", &n.v4.subnet, NULL);
		ip_parse("10.88.1.10", &n.v4.ranges[0].first, NULL);
		ip_parse("10.88.1.0", &n.v4.ranges[0].last, NULL);
		n.v4.nranges = 1;
		err_clear(&e);
		store_network_put(s, &n, &e);
		T_STREQ(e.msg, "network bad: range 10.88.1.10-10.88.1.0: first address is after "
			"the last", "a reversed range");
	}
	T_STREQ(net_put("bad", "10.88.0.0/16", "10.89.0.1", NULL, NULL, NULL),
		"network bad: gateway 10.89.0.1 is outside subnet 10.88.0.0/16", "gateway outside");
	T_STREQ(net_put("bad", "10.88.0.0/16", "10.88.255.255", NULL, NULL, NULL),
		"network bad: gateway 10.88.255.255 is the broadcast address of subnet 10.88.0.0/16",
		"gateway on the broadcast address");
	T_STREQ(net_put("bad", "10.88.0.0/16", NULL, "10.88.0.1-10.88.0.1", NULL, NULL),
		"network bad: range 10.88.0.1-10.88.0.1 has no usable address (network, gateway "
		"and broadcast are never handed out)", "a range of only the gateway");
	T_STREQ(net_put("bad", NULL, NULL, NULL, "::ffff:0:0/96", NULL),
		"network bad: subnet6 ::ffff:0.0.0.0/96 overlaps IPv4-mapped addresses (::ffff:0:0/96)",
		"IPv4-mapped IPv6 subnet");
	T_STREQ(net_put("bad", "10.88.0.0/16", NULL, NULL, NULL, "fd88::1-fd88::9"),
		"network bad: IPv6 ranges given without subnet6", "IPv6 ranges without subnet6");
	T_STREQ(net_put("", "10.88.0.0/16", NULL, NULL, NULL, NULL), "empty network name",
		"empty network name");
	T_OK(store_network_get(s, "bad", &(struct store_network){ 0 }, &e) == -ENOENT,
	     "no failed definition was stored");
	T_STREQ(e.msg, "network bad does not exist", "unknown network message");
	T_STREQ(alloc("nosuch", AF_INET, "web", NULL), "network nosuch does not exist",
		"allocating in an unknown network");
}

static void test_dynamic(void)
{
	T_STREQ(net_put("default", "10.88.0.0/16", NULL, "10.88.1.0-10.88.255.254", "fd88::/64", NULL),
		"", "network default: 10.88.0.0/16 + fd88::/64");
	T_STREQ(A4("a"), "10.88.1.0", "first address of the range (not the subnet's network "
		"address, not the gateway 10.88.0.1)");
	T_STREQ(A4("b"), "10.88.1.1", "next address");
	T_STREQ(A4("a"), "10.88.1.0", "the same owner again: the same address (idempotent)");
	T_EQ(ipam_release(s, "default", "a", &e), 1, "release a");
	T_STREQ(A4("c"), "10.88.1.2", "no immediate reuse: continues after the last one");
	T_STREQ(alloc("default", AF_INET6, "a", NULL), "fd88::2",
		"IPv6 side by side: skips fd88:: (network) and fd88::1 (gateway)");
	T_STREQ(alloc("default", AF_INET6, "b", NULL), "fd88::3", "next IPv6 address");
	T_STREQ(alloc("default", AF_INET, "z", "10.99.0.5"),
		"network default: 10.99.0.5 is outside the network's ranges (10.88.1.0-10.88.255.254)",
		"static request outside the ranges");
	T_STREQ(alloc("default", AF_INET, "web", "10.88.2.50"), "10.88.2.50", "static request");
	T_STREQ(alloc("default", AF_INET, "db", "10.88.2.50"),
		"network default: 10.88.2.50 is already allocated to web",
		"duplicate static request");
	T_STREQ(alloc("default", AF_INET, "web", "10.88.2.51"),
		"network default: web already holds 10.88.2.50 (requested 10.88.2.51); release it first",
		"a different static request while holding one");
	T_STREQ(alloc("default", AF_INET, "web", "10.88.2.50"), "10.88.2.50",
		"the same static request again: idempotent");
	T_STREQ(alloc("default", AF_INET, "web", "fd88::50"),
		"network default: requested address fd88::50 is not IPv4", "family mismatch");
	T_STREQ(A4("d"), "10.88.1.3", "a static allocation does not move the cursor");
	T_STREQ(alloc("default", AF_INET6, "web6", "fd88::ffff:ffff:ffff:ffff"),
		"fd88::ffff:ffff:ffff:ffff", "IPv6 has no broadcast: the last address is usable");
}

static void test_reserved_and_exhaustion(void)
{
	T_STREQ(net_put("small", "10.88.1.0/24", NULL, "10.88.1.0-10.88.1.10", NULL, NULL), "",
		"network small: 10.88.1.0/24, range 10.88.1.0-10.88.1.10");
	T_STREQ(alloc("small", AF_INET, "x", "10.88.1.1"),
		"network small: 10.88.1.1 is the gateway and is never handed out",
		"static request for the gateway");
	T_STREQ(alloc("small", AF_INET, "x", "10.88.1.0"),
		"network small: 10.88.1.0 is the network address and is never handed out",
		"static request for the network address");
	for (int i = 2; i <= 10; i++) {
		char o[16], want[24];
		snprintf(o, sizeof(o), "c%d", i);
		snprintf(want, sizeof(want), "10.88.1.%d", i);
		T_STREQ(alloc("small", AF_INET, o, NULL), want, "allocation %d", i - 1);
	}
	T_STREQ(alloc("small", AF_INET, "c11", NULL),
		"network small: no free IPv4 address in 10.88.1.0-10.88.1.10 (9 of 9 allocated)",
		"exhaustion names the network and range");
	T_EQ(e.code, ENOSPC, "exhaustion is ENOSPC");
	ipam_release(s, "small", "c5", &e);
	T_STREQ(alloc("small", AF_INET, "c11", NULL), "10.88.1.5",
		"after the end of the range it wraps around to the free address");
	ipam_release(s, "small", "c3", &e);
	ipam_release(s, "small", "c7", &e);
	T_STREQ(alloc("small", AF_INET, "c12", NULL), "10.88.1.7",
		"continues after the last allocated (10.88.1.5), not the lowest free");
	T_STREQ(alloc("small", AF_INET, "c13", NULL), "10.88.1.3", "then wraps to 10.88.1.3");
	T_STREQ(alloc("small", AF_INET6, "c13", NULL), "network small has no IPv6 subnet",
		"IPv6 in an IPv4-only network");

	T_STREQ(net_put("tiny", "10.66.0.0/30", NULL, NULL, NULL, NULL), "", "a /30");
	T_STREQ(alloc("tiny", AF_INET, "only", NULL), "10.66.0.2", "the one usable address");
	T_STREQ(alloc("tiny", AF_INET, "more", NULL),
		"network tiny: no free IPv4 address in 10.66.0.0/30 (1 of 1 allocated)",
		"the broadcast address 10.66.0.3 is skipped; the subnet is named");
	T_STREQ(alloc("tiny", AF_INET, "more", "10.66.0.3"),
		"network tiny: 10.66.0.3 is the broadcast address and is never handed out",
		"static request for the broadcast");
}

static void test_multi_range(void)
{
	T_STREQ(net_put("multi", "10.77.0.0/24", "10.77.0.20",
			"10.77.0.10-10.77.0.11,10.77.0.19-10.77.0.21", NULL, NULL), "",
		"two ranges, the gateway inside the second");
	T_STREQ(alloc("multi", AF_INET, "a", NULL), "10.77.0.10", "first range");
	T_STREQ(alloc("multi", AF_INET, "b", NULL), "10.77.0.11", "end of the first range");
	T_STREQ(alloc("multi", AF_INET, "c", NULL), "10.77.0.19", "on to the second range");
	T_STREQ(alloc("multi", AF_INET, "d", NULL), "10.77.0.21", "the gateway 10.77.0.20 skipped");
	T_STREQ(alloc("multi", AF_INET, "e", NULL),
		"network multi: no free IPv4 address in 10.77.0.10-10.77.0.11, 10.77.0.19-10.77.0.21 "
		"(4 of 4 allocated)", "exhaustion names every range");
	ipam_release(s, "multi", "a", &e);
	T_STREQ(alloc("multi", AF_INET, "e", NULL), "10.77.0.10", "wraps to the first range");
}

static void test_sticky(void)
{
	T_STREQ(net_put("st", "10.55.0.0/24", NULL, NULL, "fd55::/64", NULL), "", "network st");
	T_STREQ(alloc("st", AF_INET, "web", NULL), "10.55.0.2", "web");
	T_STREQ(alloc("st", AF_INET6, "web", NULL), "fd55::2", "web, IPv6");
	T_STREQ(alloc("st", AF_INET, "db", NULL), "10.55.0.3", "db");
	T_EQ(ipam_release(s, "st", "web", &e), 2, "releasing web frees both families");
	T_STREQ(alloc("st", AF_INET, "cache", NULL), "10.55.0.4", "another container meanwhile");
	T_STREQ(alloc("st", AF_INET, "web", NULL), "10.55.0.2",
		"web restarts: the same IPv4 address again (sticky)");
	T_STREQ(alloc("st", AF_INET6, "web", NULL), "fd55::2", "and the same IPv6 address");
	T_STREQ(A4("x"), "10.88.1.4", "(other networks are independent)");
	ipam_release(s, "st", "db", &e);
	T_STREQ(alloc("st", AF_INET, "thief", "10.55.0.3"), "10.55.0.3", "db's address taken");
	T_STREQ(alloc("st", AF_INET, "db", NULL), "10.55.0.5",
		"db restarts while its address is taken: a new one");
	T_STREQ(alloc("st", AF_INET, "cache2", NULL), "10.55.0.6",
		"the sticky allocation did not move the cursor backwards");
}

static void test_ipv6_64(void)
{
	char want[IP_STRLEN], o[32];
	int bad = 0;

	T_STREQ(net_put("six", NULL, NULL, NULL, "fd66::/64", NULL), "", "IPv6-only /64");
	for (int i = 0; i < 2000; i++) {
		snprintf(o, sizeof(o), "c%d", i);
		snprintf(want, sizeof(want), "fd66::%x", i + 2);
		if (strcmp(alloc("six", AF_INET6, o, NULL), want))
			bad++;
	}
	T_EQ(bad, 0, "2000 allocations in a /64 are fd66::2 .. fd66::7d1, in order");
	/* A block of static allocations right after the cursor: the next
	 * dynamic allocation steps over them through the index. */
	for (int i = 0; i < 300; i++) {
		snprintf(o, sizeof(o), "s%d", i);
		snprintf(want, sizeof(want), "fd66::%x", 0x7d2 + i);
		alloc("six", AF_INET6, o, want);
	}
	T_STREQ(alloc("six", AF_INET6, "next", NULL), "fd66::8fe",
		"the next dynamic address is after the run of static ones");
	T_STREQ(alloc("six", AF_INET, "next", NULL), "network six has no IPv4 subnet",
		"IPv4 in an IPv6-only network");
}

/* ipam_request with reservations ("a,b,..."): the address, or the error. */
static int areq_ret;
static struct ip_addr areq_from;

static const char *areq(const char *net, int af, const char *owner, const char *req,
			const char *reserved, bool renumber)
{
	static char buf[ERR_MSG_MAX];
	struct ip_addr want, got, res[8];
	struct ipam_req r = { .network = net, .family = af, .owner = owner, .reserved = res,
			      .renumber = renumber };
	char list[256], *save = NULL;

	err_clear(&e);
	if (req && ip_parse(req, &want, &e) < 0)
		return e.msg;
	r.request = req ? &want : NULL;
	snprintf(list, sizeof(list), "%s", reserved ? reserved : "");
	for (char *t = strtok_r(list, ",", &save); t && r.n_reserved < 8;
	     t = strtok_r(NULL, ",", &save))
		if (ip_parse(t, &res[r.n_reserved], NULL) == 0)
			r.n_reserved++;
	areq_ret = ipam_request(s, &r, &got, &e);
	areq_from = r.renumbered_from;
	if (areq_ret < 0)
		return e.msg;
	return ip_format(&got, buf);
}

static const char *holder(const char *net, const char *ip)
{
	static char owner[STORE_NAME_MAX];
	struct ip_addr a;

	ip_parse(ip, &a, NULL);
	err_clear(&e);
	switch (ipam_holder(s, net, &a, owner, &e)) {
	case 1:
		return owner;
	case 0:
		return "(free)";
	default:
		return e.msg;
	}
}

/* Static addresses are kept for their owners whatever the order of the
 * requests, and an owner that got one before it was static gives it up
 * only when the caller says it may be renumbered. */
static void test_reservations(void)
{
	char from[IP_STRLEN];

	T_STREQ(net_put("res", "10.44.0.0/24", NULL, "10.44.0.10-10.44.0.14", "fd44::/64",
			"fd44::10-fd44::12"), "", "network res: five IPv4 and three IPv6 addresses");
	T_STREQ(areq("res", AF_INET, "a", NULL, "10.44.0.10", false), "10.44.0.11",
		"a dynamic request skips the address another container asks for statically");
	T_STREQ(areq("res", AF_INET, "z", "10.44.0.10", "10.44.0.10", false), "10.44.0.10",
		"the static owner, asking later, gets its address");
	T_STREQ(areq("res", AF_INET, "b", NULL, "10.44.0.10,10.44.0.12,fd44::12", false),
		"10.44.0.13", "a reserved address nobody holds yet is skipped too");
	T_STREQ(areq("res", AF_INET, "c", NULL, NULL, false), "10.44.0.14", "the end of the range");
	T_STREQ(areq("res", AF_INET, "d", NULL, "10.44.0.12", false),
		"network res: no free IPv4 address in 10.44.0.10-10.44.0.14 (4 of 5 allocated; "
		"1 more kept for static addresses)",
		"wrapping around, the reserved address is not handed out: exhaustion says why");
	T_STREQ(areq("res", AF_INET, "d", NULL, NULL, false), "10.44.0.12",
		"nothing is stored: without the reservation the address is free");
	T_EQ(ipam_release(s, "res", "d", &e), 1, "release d");

	/* sticky */
	T_EQ(ipam_release(s, "res", "a", &e), 1, "release a (10.44.0.11 stays its sticky address)");
	T_STREQ(areq("res", AF_INET, "a", NULL, "10.44.0.11", false), "10.44.0.12",
		"a's sticky address is now someone's static one: a gets another");

	/* renumbering an owner that holds a reserved address */
	T_STREQ(areq("res", AF_INET, "a", NULL, "10.44.0.12", false), "10.44.0.12",
		"a holds an address that became static elsewhere: it keeps it (its process runs)");
	T_EQ(areq_ret, 0, "and is not renumbered");
	T_STREQ(areq("res", AF_INET, "a", NULL, "10.44.0.12", true), "10.44.0.11",
		"with renumber, a gets a free address instead");
	T_EQ(areq_ret, 1, "ipam_request says it renumbered");
	T_STREQ(ip_format(&areq_from, from), "10.44.0.12", "and which address a gave up");
	T_STREQ(holder("res", "10.44.0.12"), "(free)", "which is free");
	T_STREQ(areq("res", AF_INET, "s", "10.44.0.12", NULL, false), "10.44.0.12",
		"so its static owner gets it");
	T_STREQ(holder("res", "10.44.0.12"), "s", "ipam_holder names the holder");
	T_STREQ(areq("res", AF_INET, "a", NULL, "10.44.0.12", true), "10.44.0.11",
		"an owner that holds no reserved address is not moved");
	T_EQ(areq_ret, 0, "renumber is a no-op then");

	/* a renumber that cannot happen leaves everything as it was */
	T_STREQ(areq("res", AF_INET, "c", NULL, "10.44.0.14", true), "10.44.0.14",
		"in a full range there is nowhere to move to: c keeps its address");
	T_EQ(areq_ret, 0, "and is not renumbered");
	T_STREQ(holder("res", "10.44.0.14"), "c", "c still holds it");
	T_OK(areq_from.family == 0, "no address is reported as given up");

	/* families are separate */
	T_STREQ(areq("res", AF_INET6, "a", NULL, "10.44.0.10,fd44::10", false), "fd44::11",
		"IPv6: the IPv6 reservation counts, the IPv4 one is ignored");
	T_STREQ(areq("res", AF_INET6, "q", "fd44::10", "fd44::10", false), "fd44::10",
		"IPv6 static owner");
	T_STREQ(holder("res", "fd44::10"), "q", "ipam_holder over IPv6");
	T_STREQ(holder("nope", "fd44::10"), "(free)", "an unknown network holds nothing");
}

struct released {
	int n;
	char seen[8][2 * STORE_NAME_MAX + IP_STRLEN + 8];
};

static int on_released(void *ctx, const struct ipam_alloc *a)
{
	struct released *r = ctx;
	char ip[IP_STRLEN];

	if (r->n < 8)
		snprintf(r->seen[r->n], sizeof(r->seen[0]), "%s %s %s", a->network,
			 ip_format(&a->ip, ip), a->owner);
	r->n++;
	return 0;
}

static int count_allocs(void *ctx, const struct ipam_alloc *a)
{
	(void)a;
	(*(int *)ctx)++;
	return 0;
}

/* Reconcile is run against a fresh directory so its counts are exact. */
static void test_reconcile_exact(void)
{
	char dir[PATH_MAX];
	const char *live[] = { "keep2", "keep1" };
	struct released r = { 0 };
	int n = 0;

	store_close(s);
	snprintf(dir, sizeof(dir), "%s/reconcile", top);
	T_OK(store_open(&s, dir, &e) == 0, "fresh database");
	T_STREQ(net_put("rec", "10.44.0.0/24", NULL, NULL, "fd44::/64", NULL), "", "network rec");
	T_STREQ(alloc("rec", AF_INET, "keep1", NULL), "10.44.0.2", "keep1");
	T_STREQ(alloc("rec", AF_INET, "gone", NULL), "10.44.0.3", "gone");
	T_STREQ(alloc("rec", AF_INET6, "gone", NULL), "fd44::2", "gone, IPv6");
	T_STREQ(alloc("rec", AF_INET, "keep2", NULL), "10.44.0.4", "keep2");
	T_EQ(ipam_reconcile(s, live, 2, on_released, &r, &e), 2, "two allocations released");
	T_EQ(r.n, 2, "both reported");
	T_STREQ(r.seen[0], "rec 10.44.0.3 gone", "the IPv4 one");
	T_STREQ(r.seen[1], "rec fd44::2 gone", "the IPv6 one");
	T_OK(ipam_list(s, "rec", count_allocs, &n, &e) == 0 && n == 2, "keep1 and keep2 remain");
	T_STREQ(alloc("rec", AF_INET, "keep1", NULL), "10.44.0.2", "a live owner keeps its address");
	T_STREQ(alloc("rec", AF_INET, "gone", NULL), "10.44.0.5",
		"a reconciled owner's sticky address is forgotten (and no immediate reuse)");
	r.n = 0;
	T_EQ(ipam_reconcile(s, NULL, 0, on_released, &r, &e), 3, "no live owners: all released");
	n = 0;
	T_OK(ipam_list(s, NULL, count_allocs, &n, &e) == 0 && n == 0, "nothing allocated");
	T_OK(store_network_delete(s, "rec", &e) == 0, "an empty network can be deleted: %s", e.msg);
	store_close(s);
	s = NULL;
}

static int collect_net(void *ctx, const struct store_network *n)
{
	char *out = ctx, r[2 * IP_STRLEN + 1], p[IP_PREFIX_STRLEN], g[IP_STRLEN];
	size_t len = strlen(out);

	snprintf(out + len, 512 - len, "%s %s gw %s ranges %zu%s%s;", n->name,
		 ip_prefix_format(&n->v4.subnet, p), ip_format(&n->v4.gateway, g), n->v4.nranges,
		 n->v4.nranges ? " " : "", n->v4.nranges ? ip_range_format(&n->v4.ranges[0], r) : "");
	return 0;
}

static void test_networks(void)
{
	char dir[PATH_MAX], out[512] = "";
	struct store_network n;

	snprintf(dir, sizeof(dir), "%s/networks", top);
	T_OK(store_open(&s, dir, &e) == 0, "fresh database");
	net_put("b", "10.2.0.0/16", "10.2.0.254", "10.2.1.0-10.2.1.255", NULL, NULL);
	net_put("a", "10.1.0.0/16", NULL, NULL, "fd01::/64", NULL);
	T_OK(store_network_get(s, "a", &n, &e) == 0, "get a");
	{
		char p[IP_PREFIX_STRLEN], g[IP_STRLEN];
		T_STREQ(ip_prefix_format(&n.v6.subnet, p), "fd01::/64", "subnet6 round trip");
		T_STREQ(ip_format(&n.v6.gateway, g), "fd01::1", "default IPv6 gateway: first host");
	}
	T_OK(store_network_list(s, collect_net, out, &e) == 0, "list");
	T_STREQ(out, "a 10.1.0.0/16 gw 10.1.0.1 ranges 0;b 10.2.0.0/16 gw 10.2.0.254 ranges 1 "
		"10.2.1.0-10.2.1.255;", "networks by name, with gateways and ranges");
	T_STREQ(alloc("b", AF_INET, "web", NULL), "10.2.1.0", "allocate in b");
	T_EQ(store_network_delete(s, "b", &e), -EBUSY, "b has an allocation");
	T_STREQ(e.msg, "network b still has 1 allocation (web); release them first",
		"deleting a network in use");
	T_STREQ(net_put("b", "10.2.0.0/16", NULL, "10.2.2.0-10.2.2.255", NULL, NULL), "",
		"redefine b with another range");
	T_STREQ(alloc("b", AF_INET, "web", NULL), "10.2.1.0",
		"the allocation outside the new range is kept");
	T_STREQ(alloc("b", AF_INET, "db", NULL), "10.2.2.0", "new allocations use the new range");
	ipam_release(s, "b", "web", &e);
	ipam_release(s, "b", "db", &e);
	T_OK(store_network_delete(s, "b", &e) == 0, "delete b");
	T_EQ(store_network_delete(s, "b", &e), -ENOENT, "delete it again");
	T_EQ(ipam_release(s, "b", "web", &e), -ENOENT, "release in a deleted network");
	store_close(s);
	s = NULL;
}

static int collect_ct(void *ctx, const struct store_container *c)
{
	char *out = ctx;
	size_t len = strlen(out);

	snprintf(out + len, 256 - len, "%s:%s:%d:%u;", c->name, c->state, c->pid, c->restarts);
	return 0;
}

static int collect_port(void *ctx, const struct store_port *p)
{
	char *out = ctx, ip[IP_STRLEN];
	size_t len = strlen(out);

	snprintf(out + len, 256 - len, "%s %s:%u->%u/%u;", p->container,
		 p->host_ip.family ? ip_format(&p->host_ip, ip) : "*", p->host_port,
		 p->container_port, p->proto);
	return 0;
}

static const char *port_add(const char *ct, const char *ip, unsigned hp, unsigned cp, int proto)
{
	struct store_port p = { .host_port = (uint16_t)hp, .container_port = (uint16_t)cp,
				.proto = (uint8_t)proto };

	snprintf(p.container, sizeof(p.container), "%s", ct);
	snprintf(p.network, sizeof(p.network), "default");
	if (ip)
		ip_parse(ip, &p.host_ip, NULL);
	err_clear(&e);
	return store_port_add(s, &p, &e) < 0 ? e.msg : "";
}

static void test_containers_ports(void)
{
	char dir[PATH_MAX], out[256] = "";
	struct store_container c = { .name = "web", .config_hash = "sha256:ab", .state = "created",
				     .netns = "/var/lib/berth/netns/web" }, got;

	snprintf(dir, sizeof(dir), "%s/containers", top);
	T_OK(store_open(&s, dir, &e) == 0, "fresh database");
	T_OK(store_container_put(s, &c, &e) == 0, "put web");
	snprintf(c.name, sizeof(c.name), "db");
	T_OK(store_container_put(s, &c, &e) == 0, "put db");
	T_OK(store_container_set_state(s, "web", "running", 1234, -1, &e) == 0, "web runs");
	T_OK(store_container_get(s, "web", &got, &e) == 0, "get web");
	T_STREQ(got.state, "running", "state");
	T_EQ(got.pid, 1234, "pid");
	T_OK(got.started_at > 0, "started_at set when it runs");
	T_STREQ(got.netns, "/var/lib/berth/netns/web", "netns path");
	T_STREQ(got.config_hash, "sha256:ab", "config hash");
	got.restarts = 3;
	T_OK(store_container_put(s, &got, &e) == 0, "update web");
	T_OK(store_container_set_state(s, "web", "exited", 0, 256, &e) == 0, "web exits");
	T_OK(store_container_get(s, "web", &got, &e) == 0 && got.exit_status == 256 &&
	     got.restarts == 3 && got.pid == 0, "exit status recorded, restarts kept");
	T_OK(store_container_list(s, collect_ct, out, &e) == 0, "list");
	T_STREQ(out, "db:created:0:0;web:exited:0:3;", "containers by name");
	T_EQ(store_container_get(s, "nope", &got, &e), -ENOENT, "unknown container");
	T_STREQ(e.msg, "container nope does not exist", "unknown container message");
	T_EQ(store_container_set_state(s, "nope", "running", 1, -1, &e), -ENOENT,
	     "state of an unknown container");

	T_STREQ(port_add("web", NULL, 8080, 80, IPPROTO_TCP), "", "publish 8080:80/tcp");
	T_STREQ(port_add("db", NULL, 8080, 81, IPPROTO_TCP),
		"8080/tcp is already published by web", "the same port again");
	T_STREQ(port_add("db", "127.0.0.1", 8080, 81, IPPROTO_TCP),
		"127.0.0.1:8080/tcp: 8080/tcp is already published by web",
		"a specific address under a wildcard");
	T_STREQ(port_add("db", NULL, 8080, 53, IPPROTO_UDP), "", "the same port in udp");
	T_STREQ(port_add("db", "127.0.0.1", 9000, 9000, IPPROTO_TCP), "", "127.0.0.1:9000");
	T_STREQ(port_add("web", "::1", 9000, 9000, IPPROTO_TCP), "", "[::1]:9000 is separate");
	T_STREQ(port_add("web", NULL, 9000, 9000, IPPROTO_TCP),
		"9000/tcp: [::1]:9000/tcp is already published by web",
		"a wildcard over a specific address");
	T_STREQ(port_add("ghost", NULL, 7000, 70, IPPROTO_TCP), "container ghost does not exist",
		"ports belong to known containers");
	T_STREQ(port_add("web", NULL, 7000, 70, 99), "container web: port 7000: protocol must "
		"be tcp, udp or sctp", "bad protocol");
	out[0] = '\0';
	T_OK(store_port_list(s, NULL, collect_port, out, &e) == 0, "list ports");
	T_STREQ(out, "web *:8080->80/6;db *:8080->53/17;web ::1:9000->9000/6;"
		"db 127.0.0.1:9000->9000/6;", "ports by host port, protocol and address");
	T_OK(store_container_delete(s, "web", &e) == 0, "delete web");
	out[0] = '\0';
	store_port_list(s, NULL, collect_port, out, &e);
	T_STREQ(out, "db *:8080->53/17;db 127.0.0.1:9000->9000/6;",
		"a deleted container's ports go with it");
	reopen_in(dir);
	out[0] = '\0';
	store_port_list(s, "db", collect_port, out, &e);
	T_STREQ(out, "db *:8080->53/17;db 127.0.0.1:9000->9000/6;",
		"ports survive reopening (integrity checked at open)");
	{
		struct store_port p = { .host_port = 9000, .proto = IPPROTO_TCP };
		ip_parse("127.0.0.1", &p.host_ip, NULL);
		T_EQ(store_port_delete(s, "db", &p, &e), 1, "delete one port");
		T_EQ(store_port_delete(s, "db", NULL, &e), 1, "delete the rest of db's ports");
	}
	store_close(s);
	s = NULL;
}

struct evs {
	int n;
	int64_t first_id, last_id;
	char last[1100];
};

static int collect_ev(void *ctx, const struct store_event *ev)
{
	struct evs *v = ctx;

	if (!v->n++)
		v->first_id = ev->id;
	v->last_id = ev->id;
	snprintf(v->last, sizeof(v->last), "%s %s %s", ev->type, ev->object, ev->message);
	return 0;
}

static void test_events(void)
{
	char dir[PATH_MAX], msg[64];
	struct evs v = { 0 };
	int ok = 1;

	snprintf(dir, sizeof(dir), "%s/events", top);
	T_OK(store_open(&s, dir, &e) == 0, "fresh database");
	for (int i = 1; i <= STORE_EVENTS_MAX + 5; i++) {
		snprintf(msg, sizeof(msg), "started (%d)", i);
		ok &= store_event_add(s, "start", "web", msg, &e) == 0;
	}
	T_OK(ok, "%d events added", STORE_EVENTS_MAX + 5);
	T_OK(store_event_list(s, 0, collect_ev, &v, &e) == 0, "list events");
	T_EQ(v.n, STORE_EVENTS_MAX, "the ring keeps the newest %d", STORE_EVENTS_MAX);
	T_EQ(v.first_id, 6, "the 5 oldest were dropped");
	T_STREQ(v.last, "start web started (1005)", "the newest is last");
	memset(&v, 0, sizeof(v));
	store_event_list(s, 1000, collect_ev, &v, &e);
	T_EQ(v.n, 5, "events after an id (for followers)");
	store_close(s);
	s = NULL;
}

struct ev_all {
	struct buf b;
	int64_t hooked_id;
	int hooks;
};

static int ev_line(void *ctx, const struct store_event *ev)
{
	struct ev_all *a = ctx;

	buf_printf(&a->b, "%s|%s|%s|%s|%s;", ev->type, ev->action, ev->object, ev->message,
		   ev->attrs);
	return 0;
}

static void ev_hook(void *ctx, const struct store_event *ev)
{
	struct ev_all *a = ctx;

	a->hooks++;
	a->hooked_id = ev->id;
}

/* Schema 4 -> 5: events get an action and attributes; the rows written by
 * an older berth move into the new shape. A new event carries them all,
 * and the hook hears of it once committed. */
static void test_events_v5(void)
{
	char dir[PATH_MAX], db[PATH_MAX + 16];
	struct store_event ev = { .type = "container", .action = "died", .object = "web",
				  .attrs = "exit_code=3" };
	struct ev_all a = { 0 };
	int64_t id;

	snprintf(dir, sizeof(dir), "%s/events5", top);
	T_OK(store_open(&s, dir, &e) == 0, "fresh database");
	store_close(s);
	s = NULL;
	snprintf(db, sizeof(db), "%s/state.db", dir);
	raw_sql(db, "DROP TABLE events");
	raw_sql(db, "CREATE TABLE events (id INTEGER PRIMARY KEY, time INTEGER NOT NULL,"
		" kind TEXT NOT NULL, object TEXT NOT NULL, message TEXT NOT NULL)");
	raw_sql(db, "INSERT INTO events (time, kind, object, message) VALUES"
		" (1, 'image', 'pull', 'image pull started: x'), (2, 'reconcile', 'config', 'applied'),"
		" (3, 'cni', 'abc', 'attached')");
	raw_sql(db, "PRAGMA user_version=4");
	T_OK(store_open(&s, dir, &e) == 0, "a version-4 database opens: %s", e.msg);
	T_EQ(raw_sql(db, "PRAGMA user_version"), 5, "and is at version 5");
	buf_init(&a.b);
	store_event_list(s, 0, ev_line, &a, &e);
	T_STREQ(a.b.data, "image|pull||image pull started: x|;reload|applied||applied|;cni|attached|abc||;",
		"its events in the new shape: an image's verb is its action, a reconcile a reload");
	buf_reset(&a.b);
	store_event_hook(s, ev_hook, &a);
	id = store_event_put(s, &ev, &e);
	T_EQ(id, 4, "a new event gets the next id");
	T_EQ(a.hooks, 1, "the hook hears of it once");
	T_EQ(a.hooked_id, 4, "with its id");
	T_EQ(store_event_last(s, &e), 4, "the newest id");
	store_event_list(s, 3, ev_line, &a, &e);
	T_STREQ(a.b.data, "container|died|web||exit_code=3;", "type, action, object and attributes");
	ev.type[0] = '\0';
	T_OK(store_event_put(s, &ev, &e) == -EINVAL, "an event without a type is refused");
	T_EQ(a.hooks, 1, "and nobody hears of it");
	buf_free(&a.b);
	store_close(s);
	s = NULL;
}

/* What `network ls` shows as free: the ranges' addresses less the
 * reserved ones and those allocated. */
static void test_usage(void)
{
	char dir[PATH_MAX];
	uint64_t usable, used;

	snprintf(dir, sizeof(dir), "%s/usage", top);
	T_OK(store_open(&s, dir, &e) == 0, "fresh database");
	T_STREQ(net_put("small", "10.9.0.0/29", NULL, NULL, "fd09::/124", NULL), "", "a /29 network");
	T_OK(ipam_usage(s, "small", AF_INET, &usable, &used, &e) == 0, "usage: %s", e.msg);
	T_OK(usable == 5 && used == 0, "a /29: 5 usable (not the network, gateway, broadcast), "
	     "none used (%llu, %llu)", (unsigned long long)usable, (unsigned long long)used);
	A4("a");
	alloc("small", AF_INET, "a", NULL);
	alloc("small", AF_INET, "b", NULL);
	alloc("small", AF_INET6, "b", NULL);
	ipam_usage(s, "small", AF_INET, &usable, &used, &e);
	T_OK(usable == 5 && used == 2, "two allocated: 3 free (%llu, %llu)",
	     (unsigned long long)usable, (unsigned long long)used);
	ipam_usage(s, "small", AF_INET6, &usable, &used, &e);
	T_OK(usable == 14 && used == 1, "IPv6 /124: 14 usable, one used (%llu, %llu)",
	     (unsigned long long)usable, (unsigned long long)used);
	T_OK(ipam_usage(s, "nope", AF_INET, &usable, &used, &e) == -ENOENT, "an unknown network: %s",
	     e.msg);
	store_close(s);
	s = NULL;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb; (void)flag; (void)f;
	return remove(path);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");

	if ((size_t)snprintf(top, sizeof(top), "%s/test_store.XXXXXX", tmp && *tmp ? tmp : "/tmp") >=
	    sizeof(top))
		return 1;
	if (!mkdtemp(top)) {
		perror("mkdtemp");
		return 1;
	}
	test_open();
	test_refuse();
	test_migrate();
	T_OK(store_open(&s, top, &e) == 0, "main database: %s", e.msg);
	test_bad_input();
	test_dynamic();
	test_reserved_and_exhaustion();
	test_multi_range();
	test_sticky();
	test_ipv6_64();
	test_reservations();
	reopen();
	T_STREQ(A4("y"), "10.88.1.5", "after reopening, allocation continues where it was");
	test_reconcile_exact();
	test_networks();
	test_containers_ports();
	test_cni();
	test_events();
	test_events_v5();
	test_usage();
	nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return t_done();
}
