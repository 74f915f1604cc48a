/* test_store_crash.c - store/: a child allocating and releasing in a loop is
 * SIGKILLed at random moments; after every kill the database opens, passes
 * PRAGMA integrity_check, holds no address twice and still holds every
 * allocation the child saw committed. */
#include "store/store.h"
#include "t.h"

#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KILLS 220
#define OWNERS 24
#define SLOT 48                     /* "10.88.0.255 fd88::ff" fits */

static char top[512];

/* What the child reported as committed, per owner: "" when it holds nothing. */
static char model[OWNERS][SLOT];
static long ops;                    /* operations the children saw committed */

static void child(int fd, unsigned seed)
{
	struct store *s;
	struct err e;
	char line[128], a4[IP_STRLEN], a6[IP_STRLEN];

	srand(seed);
	if (store_open(&s, top, &e) < 0) {
		dprintf(fd, "! open: %s\n", e.msg);
		_exit(1);
	}
	for (;;) {
		int o = rand() % OWNERS;
		char owner[16];
		struct ip_addr ip4, ip6;

		snprintf(owner, sizeof(owner), "c%d", o);
		/* Intent first: the parent then knows which owner was in flight. */
		snprintf(line, sizeof(line), "? %d\n", o);
		(void)!write(fd, line, strlen(line));
		if (rand() % 2) {
			if (ipam_release(s, "default", owner, &e) < 0) {
				dprintf(fd, "! release: %s\n", e.msg);
				_exit(1);
			}
			snprintf(line, sizeof(line), "= %d\n", o);
		} else {
			if (ipam_allocate(s, "default", AF_INET, owner, NULL, &ip4, &e) < 0 ||
			    ipam_allocate(s, "default", AF_INET6, owner, NULL, &ip6, &e) < 0) {
				dprintf(fd, "! allocate: %s\n", e.msg);
				_exit(1);
			}
			snprintf(line, sizeof(line), "= %d %s %s\n", o, ip_format(&ip4, a4),
				 ip_format(&ip6, a6));
		}
		(void)!write(fd, line, strlen(line));
	}
}

/* Apply the child's report to the model; returns the owner in flight
 * (-1: none) or -2 if the child reported an error. */
static int apply(int fd, char *errbuf, size_t errlen)
{
	static char buf[1 << 16];
	size_t n = 0;
	ssize_t r;
	int inflight = -1;

	while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		int o;
		if (l[0] == '!') {
			snprintf(errbuf, errlen, "%s", l);
			return -2;
		}
		if (l[0] == '?' && sscanf(l, "? %d", &o) == 1 && o >= 0 && o < OWNERS) {
			inflight = o;
		} else if (l[0] == '=' && sscanf(l, "= %d", &o) == 1 && o >= 0 && o < OWNERS) {
			const char *rest = strchr(l + 2, ' ');
			snprintf(model[o], SLOT, "%s", rest ? rest + 1 : "");
			inflight = -1;
			ops++;
		}
	}
	return inflight;
}

static int64_t one_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static char integrity[256];

static bool check_integrity(const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	bool ok = false;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		return false;
	if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW) {
			snprintf(integrity, sizeof(integrity), "%s", sqlite3_column_text(st, 0));
			ok = !strcmp(integrity, "ok");
		}
		sqlite3_finalize(st);
	}
	/* No address twice, and no owner with two addresses of one family. */
	if (one_int(db, "SELECT count(*) FROM (SELECT 1 FROM allocations GROUP BY network, ip"
			" HAVING count(*) > 1)") != 0 ||
	    one_int(db, "SELECT count(*) FROM (SELECT 1 FROM allocations GROUP BY network,"
			" owner, family HAVING count(*) > 1)") != 0) {
		snprintf(integrity, sizeof(integrity), "an address or an owner appears twice");
		ok = false;
	}
	sqlite3_close(db);
	return ok;
}

static char dbstate[OWNERS][SLOT];

static int collect(void *ctx, const struct ipam_alloc *a)
{
	char ip[IP_STRLEN];
	int o;

	(void)ctx;
	if (sscanf(a->owner, "c%d", &o) != 1 || o < 0 || o >= OWNERS)
		return 0;
	ip_format(&a->ip, ip);
	/* ipam_list orders by address: v4-mapped IPv4 before fd88::/16. */
	size_t n = strlen(dbstate[o]);
	snprintf(dbstate[o] + n, SLOT - n, "%s%s", n ? " " : "", ip);
	return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb; (void)flag; (void)f;
	return remove(path);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	struct store_network n = { .name = "default" };
	char path[600], errbuf[256] = "";
	struct store *s;
	struct err e;
	int kills = 0, opened = 0, intact = 0, matched = 0, child_errors = 0, midop = 0;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();

	printf("# seed %u\n", seed);
	srand(seed);
	snprintf(top, sizeof(top), "%s/test_crash.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(top))
		return perror("mkdtemp"), 1;
	snprintf(path, sizeof(path), "%s/state.db", top);
	/* A /24 and a /120: 24 owners over 253 and 254 addresses wrap the
	 * cursor round several times and exercise the sticky path. */
	ip_prefix_parse("10.88.0.0/24", &n.v4.subnet, NULL);
	ip_prefix_parse("fd88::/120", &n.v6.subnet, NULL);
	T_OK(store_open(&s, top, &e) == 0 && store_network_put(s, &n, &e) == 0,
	     "database with network default (10.88.0.0/24, fd88::/120)");
	store_close(s);

	for (int k = 0; k < KILLS; k++) {
		int p[2], status, inflight;
		pid_t pid;
		struct timespec d = { 0, (long)(1 + rand() % 20) * 1000000L + rand() % 1000000 };

		if (pipe(p) < 0)
			return perror("pipe"), 1;
		fflush(stdout);
		pid = fork();
		if (pid < 0)
			return perror("fork"), 1;
		if (pid == 0) {
			close(p[0]);
			child(p[1], seed + (unsigned)k);
		}
		close(p[1]);
		nanosleep(&d, NULL);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
			kills++;
		inflight = apply(p[0], errbuf, sizeof(errbuf));
		close(p[0]);
		midop += inflight >= 0;
		if (inflight == -2) {
			child_errors++;
			break;
		}

		if (store_open(&s, top, &e) < 0) {
			printf("# after kill %d: %s\n", k, e.msg);
			break;
		}
		opened++;
		memset(dbstate, 0, sizeof(dbstate));
		ipam_list(s, "default", collect, NULL, &e);
		store_close(s);
		if (check_integrity(path))
			intact++;
		else
			printf("# after kill %d: %s\n", k, integrity);
		/* Everything the child saw committed is there, and nothing else;
		 * the owner in flight may be before or after its operation. */
		bool same = true;
		for (int o = 0; o < OWNERS; o++) {
			if (o == inflight)
				continue;
			if (strcmp(model[o], dbstate[o])) {
				printf("# after kill %d: c%d: child saw '%s', database has '%s'\n", k, o,
				       model[o], dbstate[o]);
				same = false;
			}
		}
		if (inflight >= 0)
			snprintf(model[inflight], SLOT, "%s", dbstate[inflight]);
		matched += same;
	}
	printf("# %ld operations committed; %d kills landed inside an operation\n", ops, midop);
	T_EQ(child_errors, 0, "the child never failed an operation%s%s", errbuf[0] ? ": " : "",
	     errbuf);
	T_OK(kills >= 200, "the child was SIGKILLed %d times (at least 200)", kills);
	T_EQ(opened, kills, "after every kill the database opens");
	T_EQ(intact, kills, "after every kill PRAGMA integrity_check says ok and no address "
	     "or owner appears twice");
	T_EQ(matched, kills, "after every kill every allocation and release the child saw "
	     "committed is in the database, and nothing else");
	nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return t_done();
}
