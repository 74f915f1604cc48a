/* req_stats.c - `stats [NAME...]`: per container, the CPU time and memory
 * of its processes and the packets and bytes through its interfaces, as
 * counters at the moment of the request (the CLI turns two samples into
 * rates, cmd_stats.c).
 *
 * Where the numbers come from:
 *  - CPU and memory: the container's cgroup v2 (cpu.stat usage_usec,
 *    memory.current, memory.max) when it has one (the monitor makes
 *    /sys/fs/cgroup/berth/NAME for a container with limits, on cgroup v2).
 *    Otherwise, on cgroup v1 or without limits, the processes of its PID
 *    namespace, found by the inode of /proc/PID/ns/pid of its init: the sum
 *    of their utime + stime (/proc/PID/stat) and of their VmRSS
 *    (/proc/PID/status). RSS counts a page shared by two of its processes
 *    twice, as `ps` does; cgroup memory.current does not.
 *  - Traffic: the kernel's counters of the host end of each of its veth
 *    pairs (RTM_GETLINK, IFLA_STATS64; net_host_stats). Decided over
 *    nf_tables counters per container address: a veth counts every frame
 *    at no per-packet cost of ours, and it counts traffic between two
 *    containers on the same bridge, which never crosses the forward hook
 *    (bridged, not routed) unless br_netfilter is loaded, so nf_tables
 *    rules would not see it. Seen from the container: in = what the host
 *    end sent (its tx), out = what it received (its rx).
 */
#include "runtime/daemon_int.h"
#include "net/net.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

struct ctr_sample {
	const struct ctr *c;
	struct ctr_status st;
	bool have_cpu, have_mem, have_limit;
	double cpu_seconds;
	uint64_t mem, limit;
	unsigned pids;
	ino_t pidns;                /* of its init; 0: no process */
	dev_t pidns_dev;
	struct net_link_stats net;  /* the container's side: rx = in */
	bool have_net;
};

/* The first line of a small file, or false. */
static bool read_line(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	bool ok;

	if (!f)
		return false;
	ok = fgets(buf, (int)size, f) != NULL;
	fclose(f);
	return ok;
}

/* cgroup v2: the container's own group, when there is one. */
static bool sample_cgroup(struct ctr_sample *s)
{
	char path[512], line[128];
	FILE *f;
	bool cpu = false;

	if (!ctr_cgroup2())
		return false;
	snprintf(path, sizeof(path), "%s/%s/cpu.stat", CTR_CGROUP_ROOT, s->c->cfg->name);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long v;

		if (sscanf(line, "usage_usec %llu", &v) == 1) {
			s->cpu_seconds = (double)v / 1e6;
			cpu = true;
		}
	}
	fclose(f);
	if (!cpu)
		return false;
	s->have_cpu = true;
	snprintf(path, sizeof(path), "%s/%s/memory.current", CTR_CGROUP_ROOT, s->c->cfg->name);
	if (read_line(path, line, sizeof(line))) {
		s->mem = strtoull(line, NULL, 10);
		s->have_mem = true;
	}
	snprintf(path, sizeof(path), "%s/%s/memory.max", CTR_CGROUP_ROOT, s->c->cfg->name);
	if (read_line(path, line, sizeof(line)) && strncmp(line, "max", 3)) {
		s->limit = strtoull(line, NULL, 10);
		s->have_limit = true;
	}
	/* its processes: one line each (pids.current needs the pids controller) */
	snprintf(path, sizeof(path), "%s/%s/cgroup.procs", CTR_CGROUP_ROOT, s->c->cfg->name);
	if ((f = fopen(path, "re"))) {
		while (fgets(line, sizeof(line), f))
			s->pids++;
		fclose(f);
	}
	return true;
}

/* utime + stime of pid in clock ticks, and its VmRSS in bytes. */
static bool proc_usage(const char *pid, uint64_t *ticks, uint64_t *rss)
{
	char path[300], buf[1024], *p;
	unsigned long long ut, st;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* the command may hold spaces and parentheses: fields follow the last ')' */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			 &ut, &st) != 2)
		return false;
	*ticks = ut + st;
	*rss = 0;
	snprintf(path, sizeof(path), "/proc/%s/status", pid);
	FILE *f = fopen(path, "re");
	if (f) {
		char line[128];
		unsigned long long kb;

		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "VmRSS: %llu kB", &kb) == 1) {
				*rss = kb * 1024;
				break;
			}
		fclose(f);
	}
	return true;
}

/* One walk of /proc for every container without a cgroup of its own: a
 * process belongs to the container whose init's PID namespace it is in. */
static void sample_procs(struct ctr_sample *v, size_t n)
{
	long hz = sysconf(_SC_CLK_TCK);
	size_t want = 0;
	struct dirent *de;
	DIR *dir;

	for (size_t i = 0; i < n; i++)
		want += v[i].pidns && !v[i].have_cpu;
	if (!want || !(dir = opendir("/proc")))
		return;
	if (hz <= 0)
		hz = 100;
	for (size_t i = 0; i < n; i++)
		if (v[i].pidns && !v[i].have_cpu)
			v[i].have_cpu = v[i].have_mem = true;   /* counted from zero */
	while ((de = readdir(dir))) {
		char path[300];
		struct stat sb;
		uint64_t ticks, rss;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/ns/pid", de->d_name);
		if (stat(path, &sb) < 0)
			continue;
		for (size_t i = 0; i < n; i++) {
			struct ctr_sample *s = &v[i];

			if (!s->pidns || s->pidns != sb.st_ino || s->pidns_dev != sb.st_dev)
				continue;
			/* a cgroup answered for it: nothing to add */
			if (!proc_usage(de->d_name, &ticks, &rss))
				break;
			s->cpu_seconds += (double)ticks / (double)hz;
			s->mem += rss;
			s->pids++;
			break;
		}
	}
	closedir(dir);
}

static void sample_one(struct daemon *d, struct ctr_sample *s)
{
	char path[64];
	struct stat sb;
	struct err e = { 0 };

	if (!s->c->cfg->cni) {
		ctr_status(&d->sup, s->c->cfg->name, &s->st);
		if (s->st.pid > 0) {
			snprintf(path, sizeof(path), "/proc/%d/ns/pid", s->st.pid);
			if (stat(path, &sb) == 0) {
				s->pidns = sb.st_ino;
				s->pidns_dev = sb.st_dev;
			}
			if (sample_cgroup(s))
				s->pidns = 0;           /* the cgroup counted it */
		}
	}
	for (size_t i = 0; i < s->c->n_ifs; i++) {
		struct net_link_stats ls;
		int r = net_host_stats(d->net, s->c->cfg->name, s->c->ifs[i].ifname, &ls, &e);

		if (r < 0) {
			daemon_log(d, LOG_DEBUG, "stats %s: %s", s->c->cfg->name, e.msg);
			err_clear(&e);
			continue;
		}
		if (r == 0)
			continue;
		/* the host end's tx is what the container received */
		s->net.rx_packets += ls.tx_packets;
		s->net.rx_bytes += ls.tx_bytes;
		s->net.tx_packets += ls.rx_packets;
		s->net.tx_bytes += ls.rx_bytes;
		s->have_net = true;
	}
}

static const char *u64(char *buf, size_t size, bool have, uint64_t v)
{
	if (!have)
		return NULL;
	snprintf(buf, size, "%" PRIu64, v);
	return buf;
}

int req_stats(struct daemon *d, const struct ctl_request *rq, struct buf *out, struct err *e)
{
	static const char *const cols[] = { "NAME", "STATE", "PIDS#", "CPU SECONDS#", "MEMORY BYTES#",
					    "MEMORY LIMIT BYTES#", "NET IN PACKETS#", "NET IN BYTES#",
					    "NET OUT PACKETS#", "NET OUT BYTES#" };
	struct ctr_sample *v;
	struct table t;
	size_t n = 0;

	v = calloc(d->n_ctrs ? d->n_ctrs : 1, sizeof(*v));
	if (!v)
		return err_set(e, ENOMEM, "stats");
	if (rq->argc > 1) {
		for (int i = 1; i < rq->argc; i++) {
			const struct ctr *c = daemon_ctr(d, rq->argv[i]);

			if (!c) {
				free(v);
				return err_set(e, ENOENT, "no such container: %s", rq->argv[i]);
			}
			if (n < d->n_ctrs)
				v[n++].c = c;
		}
	} else {
		for (size_t i = 0; i < d->n_ctrs; i++)
			v[n++].c = &d->ctrs[i];
	}
	for (size_t i = 0; i < n; i++)
		sample_one(d, &v[i]);
	sample_procs(v, n);
	table_init(&t, ARRAY_SIZE(cols), cols);
	for (size_t i = 0; i < n; i++) {
		const struct ctr_sample *s = &v[i];
		char pids[16], cpu[32], mem[24], lim[24], ip[24], ib[24], op[24], ob[24];

		snprintf(cpu, sizeof(cpu), "%.6f", s->cpu_seconds);
		table_add(&t, s->c->cfg->name, s->c->cfg->cni ? "attached" : s->st.state,
			  u64(pids, sizeof(pids), s->have_cpu, s->pids), s->have_cpu ? cpu : NULL,
			  u64(mem, sizeof(mem), s->have_mem, s->mem),
			  u64(lim, sizeof(lim), s->have_limit, s->limit),
			  u64(ip, sizeof(ip), s->have_net, s->net.rx_packets),
			  u64(ib, sizeof(ib), s->have_net, s->net.rx_bytes),
			  u64(op, sizeof(op), s->have_net, s->net.tx_packets),
			  u64(ob, sizeof(ob), s->have_net, s->net.tx_bytes));
	}
	table_render(&t, rq->json, out);
	table_free(&t);
	free(v);
	return 0;
}
