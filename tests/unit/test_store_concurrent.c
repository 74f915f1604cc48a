/* test_store_concurrent.c - store/: several processes open a fresh database
 * at once and allocate concurrently; no address is ever handed out twice. */
#include "store/store.h"
#include "t.h"

#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROCS 4
#define PER_PROC 150

static char top[512];

/* Wait for the start byte, then create-or-open, define the network (every
 * process does, as a daemon and a CLI might) and allocate PER_PROC owners. */
static void child(int id, int start_fd, int out_fd)
{
	struct store_network n = { .name = "default" };
	struct store *s;
	struct err e;
	char c, a4[IP_STRLEN], a6[IP_STRLEN];

	ip_prefix_parse("10.90.0.0/20", &n.v4.subnet, NULL);
	ip_prefix_parse("fd90::/64", &n.v6.subnet, NULL);
	if (read(start_fd, &c, 1) != 1)
		_exit(2);
	if (store_open(&s, top, &e) < 0 || store_network_put(s, &n, &e) < 0) {
		dprintf(out_fd, "! %s\n", e.msg);
		_exit(1);
	}
	for (int i = 0; i < PER_PROC; i++) {
		char owner[32];
		struct ip_addr ip4, ip6;

		snprintf(owner, sizeof(owner), "p%d-%d", id, i);
		if (ipam_allocate(s, "default", AF_INET, owner, NULL, &ip4, &e) < 0 ||
		    ipam_allocate(s, "default", AF_INET6, owner, NULL, &ip6, &e) < 0) {
			dprintf(out_fd, "! %s: %s\n", owner, e.msg);
			_exit(1);
		}
		dprintf(out_fd, "%s %s %s\n", owner, ip_format(&ip4, a4), ip_format(&ip6, a6));
	}
	store_close(s);
	_exit(0);
}

static int cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static char ips[2 * PROCS * PER_PROC][IP_STRLEN];
static int nips;

static int in_db(void *ctx, const struct ipam_alloc *a)
{
	(void)a;
	(*(int *)ctx)++;
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
	static char buf[PROCS][1 << 16];
	int start[2], out[PROCS][2], failed = 0, lines = 0, dups = 0, rows = 0;
	pid_t pids[PROCS];
	struct store *s;
	struct err e;

	snprintf(top, sizeof(top), "%s/test_conc.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(top) || pipe(start) < 0)
		return perror("setup"), 1;
	fflush(stdout);
	for (int i = 0; i < PROCS; i++) {
		if (pipe(out[i]) < 0 || (pids[i] = fork()) < 0)
			return perror("fork"), 1;
		if (pids[i] == 0) {
			close(start[1]);
			close(out[i][0]);
			child(i, start[0], out[i][1]);
		}
		close(out[i][1]);
	}
	close(start[0]);
	/* Release them all at once: the database does not exist yet. */
	(void)!write(start[1], "gggg", PROCS);
	close(start[1]);
	for (int i = 0; i < PROCS; i++) {
		size_t n = 0;
		ssize_t r;
		int status;

		while (n < sizeof(buf[i]) - 1 && (r = read(out[i][0], buf[i] + n, sizeof(buf[i]) - 1 - n)) > 0)
			n += (size_t)r;
		buf[i][n] = '\0';
		close(out[i][0]);
		waitpid(pids[i], &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			printf("# process %d failed: %s", i, buf[i]);
			failed++;
		}
		for (char *save = NULL, *l = strtok_r(buf[i], "\n", &save); l;
		     l = strtok_r(NULL, "\n", &save)) {
			char o[32];
			if (sscanf(l, "%31s %45s %45s", o, ips[nips], ips[nips + 1]) == 3) {
				nips += 2;
				lines++;
			}
		}
	}
	T_EQ(failed, 0, "%d processes created the database and allocated at once without an error",
	     PROCS);
	T_EQ(lines, PROCS * PER_PROC, "every process got all its %d owners' addresses", PER_PROC);
	qsort(ips, (size_t)nips, sizeof(ips[0]), cmp);
	for (int i = 1; i < nips; i++)
		if (!strcmp(ips[i], ips[i - 1])) {
			if (dups++ < 5)
				printf("# %s handed out twice\n", ips[i]);
		}
	T_EQ(dups, 0, "no address (IPv4 or IPv6) was handed out twice among %d", nips);
	T_OK(store_open(&s, top, &e) == 0, "the database opens afterwards: %s", e.msg);
	ipam_list(s, "default", in_db, &rows, &e);
	T_EQ(rows, 2 * PROCS * PER_PROC, "the database holds exactly those allocations");
	store_close(s);
	nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return t_done();
}
