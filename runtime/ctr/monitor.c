/* monitor.c - `berth monitor`: one per running container; starts its init
 * in new namespaces, logs its output, stops it on SIGTERM, records its exit.
 *
 * Why a separate process (conmon's design, not the daemon itself): the
 * container's stdout/stderr pipe must have a reader for as long as the
 * container lives, and the container must have a parent that reaps it, even
 * while the daemon is down (kill -9, crash, upgrade). The monitor is the
 * container init's parent; it re-executes berth (a fresh, small process
 * image instead of a copy of the daemon's memory), calls setsid() so that a
 * Ctrl-C meant for a foreground daemon does not reach it, and reports to the
 * daemon through files written atomically (container.h) and one start report
 * on fd 3. The container's init gets PR_SET_PDEATHSIG(SIGKILL): a container
 * never runs unmonitored.
 *
 * Start, each step checked; the first failure is written to the error pipe
 * as "STEP: reason" and the child exits, so it never continues past a failed
 * step, and the monitor passes the message on (start report, exit file, log):
 *   monitor: clone(CLONE_NEWPID) like fork: the child is pid 1 of a new pid ns
 *   child:   cgroup v2 limits -> join the netns -> unshare mnt, uts, ipc ->
 *            hostname -> bind the rootfs on root/ -> /proc /sys /dev /tmp /run
 *            /etc files [-> bind berth on /dev/.berth-init] -> read-only ->
 *            pivot_root -> capabilities, no_new_privs -> env -> exec the
 *            command (a close-on-exec pipe: EOF = exec'd)
 * With init = yes (init.c) the child blocks signals from its first step (so a
 * stop during the start is not lost), forks the command (which restores them
 * and execs, reporting a failure on the same pipe) and execs berth as
 * `/dev/.berth-init init --child PID -- CMD...`: the pipe's EOF then means
 * both exec'd. A dynamically linked berth (the sanitized test build) cannot
 * run inside a rootfs without its libraries, nor can a binary that was
 * replaced on disk since the daemon started be bound: then the child itself
 * becomes the init, with the same code, renamed so that it is not taken for
 * a monitor.
 */
#include "runtime/ctr/ctr.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <link.h>
#include <linux/capability.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/auxv.h>
#include <grp.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

#define SPEC_MAX (1 << 20)
#define SPEC_ARGS_MAX 1024
#define SPEC_GROUPS_MAX 32          /* struct image_user's */
#define OVERLAY_OPTS_MAX 4096       /* mount(2) takes one page of options */
#define EXE_PATH_MAX 4096
#define LOG_CHUNK 4096              /* bytes per read of the output pipe (PIPE_BUF,
				     * what a writer sends at once) */

extern char **environ;

/* ---- small helpers shared with the daemon and the CLI ------------------- */

uint64_t ctr_proc_start(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* the command may contain spaces and ')': fields count from the last ')' */
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	p++;
	for (int field = 3; field <= 22 && p; field++) {
		p = strchr(p, ' ');
		if (!p)
			return 0;
		p++;
		if (field == 21) {  /* the next one is 22, starttime */
			p = strchr(p, ' ');
			if (!p)
				return 0;
			start = strtoull(p + 1, NULL, 10);
			break;
		}
	}
	return start;
}

void ctr_boot_id(char *buf, size_t size)
{
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, size - 1) : -1;

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

bool ctr_cgroup2(void)
{
	struct statfs sf;

	return statfs("/sys/fs/cgroup", &sf) == 0 && (unsigned long)sf.f_type == CGROUP2_SUPER_MAGIC;
}

/* Docker's default set (moby oci/caps/defaults.go). */
static const int default_caps[] = {
	CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FSETID, CAP_FOWNER, CAP_MKNOD, CAP_NET_RAW,
	CAP_SETGID, CAP_SETUID, CAP_SETFCAP, CAP_SETPCAP, CAP_NET_BIND_SERVICE,
	CAP_SYS_CHROOT, CAP_KILL, CAP_AUDIT_WRITE,
};

static int last_cap(void)
{
	char buf[16] = "";
	int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return CAP_LAST_CAP;
	buf[n] = '\0';
	return atoi(buf) > 0 && atoi(buf) < 64 ? atoi(buf) : CAP_LAST_CAP;
}

int ctr_caps_apply(struct err *e)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { { 0 } };
	uint64_t keep = 0;
	int last = last_cap();

	for (size_t i = 0; i < ARRAY_SIZE(default_caps); i++)
		keep |= 1ULL << default_caps[i];
	for (int cap = 0; cap <= last; cap++)
		if (!(keep & (1ULL << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 &&
		    errno != EINVAL)
			return err_sys(e, errno, "drop capability %d from the bounding set", cap);
	data[0].effective = data[0].permitted = data[0].inheritable = (uint32_t)keep;
	data[1].effective = data[1].permitted = data[1].inheritable = (uint32_t)(keep >> 32);
	if (syscall(SYS_capset, &h, data) < 0)
		return err_sys(e, errno, "set capabilities");
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return err_sys(e, errno, "set no_new_privs");
	return 0;
}

/* ---- the spec ------------------------------------------------------------ */

/* The monitor keeps no heap: the spec's text and its argv/envp arrays live
 * on ctr_monitor_main's stack, sized to the file, so a monitor costs the
 * pages it really uses (issue 19: each is one resident process per
 * container) and nothing of malloc's (its meta area and groups). */
struct spec {
	const char *name, *rootfs, *netns, *hash;
	/* an image instead of rootfs: the overlay's lowerdir (relative to
	 * layers_dir) and the image's name for messages */
	const char *layers, *layers_dir, *image;
	const char *workdir;        /* the process's cwd; NULL: / */
	char **argv, **envp;        /* NULL-terminated, argc/envc entries */
	size_t argc, envc;
	uint64_t memory, log_size;
	unsigned cpus_milli, stop_timeout;
	int stop_signal;            /* what a stop sends first (SIGTERM) */
	bool init;                  /* berth's init is PID 1 (init.c) */
	bool read_only;             /* the root (an image's: else a writable upper) */
	bool has_user;              /* the command runs as uid:gid with groups */
	uint32_t uid, gid;
	uint32_t groups[SPEC_GROUPS_MAX];
	size_t n_groups;
};

/* Open the spec; its size (at most SPEC_MAX: the rest is not read) in *len. */
static int spec_open(const char *path, size_t *len, struct err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	if (fd < 0)
		return err_sys(e, errno, "open %s", path);
	if (fstat(fd, &st) < 0) {
		err_sys(e, errno, "stat %s", path);
		close(fd);
		return -1;
	}
	*len = st.st_size > SPEC_MAX ? SPEC_MAX : (size_t)st.st_size;
	return fd;
}

/* Read at most max bytes of fd into text and NUL-terminate it (text has
 * max + 1 bytes); returns the length read. */
static size_t spec_read(int fd, char *text, size_t max)
{
	size_t len = 0;

	while (len < max) {
		ssize_t r = read(fd, text + len, max - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	text[len] = '\0';
	return len;
}

/* How many arg and env records text holds (each capped at SPEC_ARGS_MAX). */
static void spec_count(const char *text, size_t len, size_t *argc, size_t *envc)
{
	*argc = *envc = 0;
	for (size_t off = 0; off < len; off += strlen(text + off) + 1) {
		if (!strncmp(text + off, "arg=", 4) && *argc < SPEC_ARGS_MAX)
			(*argc)++;
		else if (!strncmp(text + off, "env=", 4) && *envc < SPEC_ARGS_MAX)
			(*envc)++;
	}
}

/* Parse text (len bytes of NUL-terminated "key=value" records, modified in
 * place) into s, whose argv and envp have room for spec_count's counts + 1. */
static int spec_parse(struct spec *s, char *text, size_t len, const char *path, struct err *e)
{
	char **argv = s->argv, **envp = s->envp;

	memset(s, 0, sizeof(*s));
	s->argv = argv;
	s->envp = envp;
	s->stop_timeout = 10;
	s->stop_signal = SIGTERM;
	s->read_only = true;
	for (size_t off = 0; off < len;) {
		char *rec = text + off, *eq = strchr(rec, '=');
		size_t rl = strlen(rec);

		off += rl + 1;
		if (!eq)
			continue;
		*eq++ = '\0';
		if (!strcmp(rec, "name"))
			s->name = eq;
		else if (!strcmp(rec, "rootfs"))
			s->rootfs = eq;
		else if (!strcmp(rec, "netns"))
			s->netns = eq;
		else if (!strcmp(rec, "hash"))
			s->hash = eq;
		else if (!strcmp(rec, "arg") && s->argc < SPEC_ARGS_MAX)
			s->argv[s->argc++] = eq;
		else if (!strcmp(rec, "env") && s->envc < SPEC_ARGS_MAX)
			s->envp[s->envc++] = eq;
		else if (!strcmp(rec, "memory"))
			s->memory = strtoull(eq, NULL, 10);
		else if (!strcmp(rec, "log_size"))
			s->log_size = strtoull(eq, NULL, 10);
		else if (!strcmp(rec, "cpus_milli"))
			s->cpus_milli = (unsigned)strtoul(eq, NULL, 10);
		else if (!strcmp(rec, "stop_timeout"))
			s->stop_timeout = (unsigned)strtoul(eq, NULL, 10);
		else if (!strcmp(rec, "init"))
			s->init = !strcmp(eq, "1");
		else if (!strcmp(rec, "layers"))
			s->layers = eq;
		else if (!strcmp(rec, "layers_dir"))
			s->layers_dir = eq;
		else if (!strcmp(rec, "image"))
			s->image = eq;
		else if (!strcmp(rec, "workdir"))
			s->workdir = *eq ? eq : NULL;
		else if (!strcmp(rec, "read_only"))
			s->read_only = strcmp(eq, "0") != 0;
		else if (!strcmp(rec, "stop_signal"))
			s->stop_signal = atoi(eq) > 0 && atoi(eq) < _NSIG ? atoi(eq) : SIGTERM;
		else if (!strcmp(rec, "user"))
			s->has_user = sscanf(eq, "%" SCNu32 ":%" SCNu32, &s->uid, &s->gid) == 2;
		else if (!strcmp(rec, "groups"))
			for (char *g = eq; *g && s->n_groups < SPEC_GROUPS_MAX;
			     g += strcspn(g, ","), g += *g == ',')
				s->groups[s->n_groups++] = (uint32_t)strtoul(g, NULL, 10);
	}
	s->argv[s->argc] = NULL;
	s->envp[s->envc] = NULL;
	if (s->layers && (!s->layers_dir || !s->image))
		return err_set(e, EINVAL, "%s: layers without layers_dir or image", path);
	if (!s->name || !(s->rootfs || s->layers) || !s->netns || !s->argc)
		return err_set(e, EINVAL, "%s: incomplete container spec", path);
	return 0;
}

/* ---- the container's init, before exec ------------------------------------ */

struct child {
	const struct spec *s;
	const char *dir;            /* STATE_DIR/ctr/NAME */
	int errfd;                  /* close-on-exec: EOF means exec succeeded */
	bool init_exec;             /* init: exec our binary in the rootfs (it is static) */
	char *exe;                  /* and its path in our mount namespace (the
				     * child's own buffer: the monitor never touches it) */
	char *title;                /* the monitor's argv strings, to rename an in-process init */
	size_t title_len;
};

/* Report the failed step and end: the container never continues past it. */
static void __attribute__((noreturn)) child_fail(const struct child *c, const struct err *e)
{
	(void)!write(c->errfd, e->msg, strlen(e->msg));
	_exit(127);
}

#define STEP(c, call, ...) do {                                     \
		if ((call) < 0) {                                   \
			struct err e_;                              \
			err_sys(&e_, errno, __VA_ARGS__);           \
			child_fail(c, &e_);                         \
		}                                                   \
	} while (0)

static void fail_msg(const struct child *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
static void fail_msg(const struct child *c, const char *fmt, ...)
{
	struct err e = { .code = EINVAL };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e.msg, sizeof(e.msg), fmt, ap);
	va_end(ap);
	child_fail(c, &e);
}

/* snprintf for paths: a path that does not fit is a failed step, not a
 * silently different path. */
static void pathf(const struct child *c, char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void pathf(const struct child *c, char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size)
		fail_msg(c, "path too long: %s...", buf);
}

static int write_str(const char *path, const char *v)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	int en;

	if (fd < 0)
		return -1;
	n = write(fd, v, strlen(v));
	en = errno;
	close(fd);
	errno = en;
	return n == (ssize_t)strlen(v) ? 0 : -1;
}

/* cgroup v2: STATE /sys/fs/cgroup/berth/NAME with memory.max and cpu.max,
 * and the child moves itself in (so everything it starts is limited). */
static void child_cgroup(const struct child *c)
{
	const struct spec *s = c->s;
	char path[512], v[64];

	if (!s->memory && !s->cpus_milli)
		return;
	if (!ctr_cgroup2())
		return;             /* the monitor warned in the log */
	if (mkdir(CTR_CGROUP_ROOT, 0755) < 0 && errno != EEXIST)
		STEP(c, -1, "cgroup: create %s", CTR_CGROUP_ROOT);
	/* controllers must be enabled on every level above the leaf */
	STEP(c, write_str("/sys/fs/cgroup/cgroup.subtree_control", "+memory +cpu"),
	     "cgroup: enable memory and cpu in /sys/fs/cgroup/cgroup.subtree_control");
	STEP(c, write_str(CTR_CGROUP_ROOT "/cgroup.subtree_control", "+memory +cpu"),
	     "cgroup: enable memory and cpu in %s/cgroup.subtree_control", CTR_CGROUP_ROOT);
	pathf(c, path, sizeof(path), "%s/%s", CTR_CGROUP_ROOT, s->name);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		STEP(c, -1, "cgroup: create %s", path);
	if (s->memory) {
		pathf(c, path, sizeof(path), "%s/%s/memory.max", CTR_CGROUP_ROOT, s->name);
		pathf(c, v, sizeof(v), "%" PRIu64, s->memory);
		STEP(c, write_str(path, v), "cgroup: write %s to %s", v, path);
		/* no swap: the limit is the limit (docker --memory-swap = --memory) */
		pathf(c, path, sizeof(path), "%s/%s/memory.swap.max", CTR_CGROUP_ROOT, s->name);
		(void)write_str(path, "0");
	}
	if (s->cpus_milli) {
		pathf(c, path, sizeof(path), "%s/%s/cpu.max", CTR_CGROUP_ROOT, s->name);
		pathf(c, v, sizeof(v), "%u 100000", s->cpus_milli * 100);
		STEP(c, write_str(path, v), "cgroup: write '%s' to %s", v, path);
	}
	pathf(c, path, sizeof(path), "%s/%s/cgroup.procs", CTR_CGROUP_ROOT, s->name);
	STEP(c, write_str(path, "0"), "cgroup: join %s", path);
}

/* What the container's root is, for messages: "rootfs DIR" or "image REF". */
static const char *root_name(const struct child *c, char *buf, size_t size)
{
	snprintf(buf, size, "%s %s", c->s->layers ? "image" : "rootfs",
		 c->s->layers ? c->s->image : c->s->rootfs);
	return buf;
}

/* A directory or an empty file to mount on, created in the rootfs if missing. */
static void child_mountpoint(const struct child *c, const char *root, const char *rel, bool dir)
{
	char path[4096], what[4096 + 8];
	struct stat st;
	int fd;

	pathf(c, path, sizeof(path), "%s/%s", root, rel);
	root_name(c, what, sizeof(what));
	if (lstat(path, &st) == 0) {
		if (dir && !S_ISDIR(st.st_mode))
			fail_msg(c, "%s: /%s is not a directory", what, rel);
		if (!dir && S_ISDIR(st.st_mode))
			fail_msg(c, "%s: /%s is a directory", what, rel);
		if (!dir && S_ISLNK(st.st_mode))
			STEP(c, unlink(path), "%s: replace the symlink /%s", what, rel);
		else
			return;
	}
	if (dir) {
		STEP(c, mkdir(path, 0755), "%s: create /%s", what, rel);
		return;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	STEP(c, fd, "%s: create /%s", what, rel);
	close(fd);
}

static void child_dev(const struct child *c, const char *root)
{
	static const char *const devs[] = { "null", "zero", "full", "random", "urandom", "tty" };
	static const char *const links[][2] = {
		{ "/proc/self/fd", "fd" }, { "/proc/self/fd/0", "stdin" },
		{ "/proc/self/fd/1", "stdout" }, { "/proc/self/fd/2", "stderr" },
		{ "pts/ptmx", "ptmx" },
	};
	char dev[4096], path[4096 + 16], host[32];
	int fd;

	pathf(c, dev, sizeof(dev), "%s/dev", root);
	STEP(c, mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=64k"),
	     "mount tmpfs on /dev");
	/* bind the host's nodes: the same as mknod for root, and it also works
	 * where device cgroups or nodev would refuse a new node */
	for (size_t i = 0; i < ARRAY_SIZE(devs); i++) {
		pathf(c, path, sizeof(path), "%s/%s", dev, devs[i]);
		pathf(c, host, sizeof(host), "/dev/%s", devs[i]);
		fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
		STEP(c, fd, "create /dev/%s", devs[i]);
		close(fd);
		STEP(c, mount(host, path, NULL, MS_BIND, NULL), "bind %s", host);
	}
	pathf(c, path, sizeof(path), "%s/pts", dev);
	STEP(c, mkdir(path, 0755), "create /dev/pts");
	STEP(c, mount("devpts", path, "devpts", MS_NOSUID | MS_NOEXEC,
		      "newinstance,ptmxmode=0666,mode=0620"), "mount devpts on /dev/pts");
	pathf(c, path, sizeof(path), "%s/shm", dev);
	STEP(c, mkdir(path, 01777), "create /dev/shm");
	STEP(c, mount("shm", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k"),
	     "mount tmpfs on /dev/shm");
	for (size_t i = 0; i < ARRAY_SIZE(links); i++) {
		pathf(c, path, sizeof(path), "%s/%s", dev, links[i][1]);
		STEP(c, symlink(links[i][0], path), "create /dev/%s", links[i][1]);
	}
}

/* Where our own binary is in this (the container's new) mount namespace:
 * /proc/self/exe names the file on a mount of the daemon's namespace, which
 * cannot be bound from here, so its path is looked up again, and taken only
 * if it is still the same file (an upgrade may have replaced it since the
 * daemon started). */
static bool child_find_exe(struct child *c)
{
	struct stat self, found;
	ssize_t n = readlink("/proc/self/exe", c->exe, EXE_PATH_MAX - 1);

	if (n <= 0 || (size_t)n >= EXE_PATH_MAX - 1)
		return false;
	c->exe[n] = '\0';
	return c->exe[0] == '/' && stat("/proc/self/exe", &self) == 0 && stat(c->exe, &found) == 0 &&
	       self.st_dev == found.st_dev && self.st_ino == found.st_ino;
}

/* Our own binary, read-only, where PID 1 execs it as the init: a file in
 * /dev, berth's tmpfs (see CTR_INIT_PATH). Read-only, so that nothing in the
 * container can write berth through it (or through /proc/1/exe). */
static void child_init_bind(const struct child *c, const char *root)
{
	char path[4096 + 32];
	int fd;

	pathf(c, path, sizeof(path), "%s%s", root, CTR_INIT_PATH);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
	STEP(c, fd, "create %s", CTR_INIT_PATH);
	close(fd);
	STEP(c, mount(c->exe, path, NULL, MS_BIND, NULL), "bind berth (%s) on %s", c->exe,
	     CTR_INIT_PATH);
	STEP(c, mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
		      NULL), "make %s read-only", CTR_INIT_PATH);
}

/* Docker's masked and read-only /proc paths: a root without CAP_SYS_ADMIN
 * could still write /proc/sysrq-trigger or read /proc/kcore otherwise. */
static void child_proc_mask(const struct child *c, const char *root)
{
	static const char *const masked[] = { "kcore", "keys", "latency_stats", "timer_list",
					      "timer_stats", "sched_debug", "sysrq-trigger" };
	static const char *const ro[] = { "sys", "irq", "bus", "fs" };
	char path[4096];
	struct stat st;

	for (size_t i = 0; i < ARRAY_SIZE(masked); i++) {
		pathf(c, path, sizeof(path), "%s/proc/%s", root, masked[i]);
		if (stat(path, &st) < 0 || S_ISDIR(st.st_mode))
			continue;   /* not in this kernel */
		STEP(c, mount("/dev/null", path, NULL, MS_BIND, NULL), "mask /proc/%s", masked[i]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(ro); i++) {
		pathf(c, path, sizeof(path), "%s/proc/%s", root, ro[i]);
		if (stat(path, &st) < 0)
			continue;
		STEP(c, mount(path, path, NULL, MS_BIND | MS_REC, NULL), "bind /proc/%s", ro[i]);
		STEP(c, mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL),
		     "make /proc/%s read-only", ro[i]);
	}
}

/* An image's root: an overlay of its layers on root (STATE_DIR/ctr/NAME/
 * root) with, read-only, the upper and work directories on a tmpfs of this
 * mount namespace (root/upper, root/work; the overlay on root/merged, which
 * becomes root), else the container's persistent STATE_DIR/ctr/NAME/upper
 * and work. lowerdir is relative to the layers' directory, the mount made
 * from there, so that 48 layers fit one page of options. */
static void child_overlay(const struct child *c, char *root, size_t size)
{
	const struct spec *s = c->s;
	char upper[4096 + 16], work[4096 + 16], opts[OVERLAY_OPTS_MAX];
	size_t n_layers = 1;
	int ret, en;

	for (const char *p = s->layers; *p; p++)
		n_layers += *p == ':';
	if (s->read_only) {
		STEP(c, mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=16m"),
		     "image %s: mount a tmpfs for the overlay's upper directory", s->image);
		pathf(c, upper, sizeof(upper), "%s/upper", root);
		pathf(c, work, sizeof(work), "%s/work", root);
		STEP(c, mkdir(upper, 0755), "image %s: create %s", s->image, upper);
		STEP(c, mkdir(work, 0755), "image %s: create %s", s->image, work);
		pathf(c, root + strlen(root), size - strlen(root), "/merged");
		STEP(c, mkdir(root, 0755), "image %s: create %s", s->image, root);
	} else {
		pathf(c, upper, sizeof(upper), "%s/upper", c->dir);
		pathf(c, work, sizeof(work), "%s/work", c->dir);
		if (mkdir(upper, 0755) < 0 && errno != EEXIST)
			STEP(c, -1, "image %s: create %s", s->image, upper);
		if (mkdir(work, 0700) < 0 && errno != EEXIST)
			STEP(c, -1, "image %s: create %s", s->image, work);
	}
	if (snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s,workdir=%s", s->layers, upper,
		     work) >= (int)sizeof(opts))
		fail_msg(c, "image %s: its %zu layers do not fit one overlay mount's options",
			 s->image, n_layers);
	STEP(c, chdir(s->layers_dir), "image %s: its layers' directory %s", s->image,
	     s->layers_dir);
	ret = mount("overlay", root, "overlay", 0, opts);
	en = errno;
	STEP(c, chdir("/"), "chdir /");
	if (ret == 0)
		return;
	/* which layer is missing says more than the mount's ENOENT */
	for (const char *p = s->layers; *p; p += *p == ':') {
		size_t n = strcspn(p, ":");
		char layer[4096];
		struct stat st;

		pathf(c, layer, sizeof(layer), "%s/%.*s", s->layers_dir, (int)n, p);
		if (stat(layer, &st) < 0 || !S_ISDIR(st.st_mode))
			fail_msg(c, "image %s: layer sha256:%.*s missing (%s)", s->image, (int)n, p,
				 layer);
		p += n;
	}
	errno = en;
	STEP(c, -1, "image %s: mount the overlay of its %zu layers", s->image, n_layers);
}

/* After pivot_root, inside the image's root: its working directory (made
 * if missing, as runc does, with the container's own symlinks followed), and
 * the root read-only once every mount point is there. */
static void child_image_finish(const struct child *c)
{
	const struct spec *s = c->s;
	struct err e = { 0 };

	if (s->workdir && mkdir_p("working directory", s->workdir, 0755, &e) < 0)
		fail_msg(c, "image %s: %s", s->image, e.msg);
	if (s->read_only)
		STEP(c, mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL),
		     "make the root of image %s read-only", s->image);
	if (s->workdir)
		STEP(c, chdir(s->workdir), "image %s: working directory %s", s->image, s->workdir);
}

static void child_rootfs(const struct child *c)
{
	static const char *const etc[] = { "hosts", "hostname", "resolv.conf" };
	const struct spec *s = c->s;
	char root[4096], path[4096 + 32], src[4096 + 32];
	struct stat st;

	if (!s->layers && stat(s->rootfs, &st) < 0)
		STEP(c, -1, "rootfs %s", s->rootfs);
	if (!s->layers && !S_ISDIR(st.st_mode))
		fail_msg(c, "rootfs %s is not a directory", s->rootfs);
	pathf(c, root, sizeof(root), "%s/root", c->dir);
	/* nothing we mount may propagate back to the host */
	STEP(c, mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), "make mounts private");
	if (s->layers)
		child_overlay(c, root, sizeof(root));
	else
		STEP(c, mount(s->rootfs, root, NULL, MS_BIND | MS_REC, NULL), "bind rootfs %s",
		     s->rootfs);
	child_mountpoint(c, root, "proc", true);
	child_mountpoint(c, root, "sys", true);
	child_mountpoint(c, root, "dev", true);
	child_mountpoint(c, root, "tmp", true);
	child_mountpoint(c, root, "run", true);
	child_mountpoint(c, root, "etc", true);
	for (size_t i = 0; i < ARRAY_SIZE(etc); i++) {
		pathf(c, path, sizeof(path), "etc/%s", etc[i]);
		child_mountpoint(c, root, path, false);
	}
	pathf(c, path, sizeof(path), "%s/proc", root);
	STEP(c, mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL), "mount /proc");
	child_proc_mask(c, root);
	pathf(c, path, sizeof(path), "%s/sys", root);
	STEP(c, mount("sysfs", path, "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL),
	     "mount /sys");
	child_dev(c, root);
	if (c->s->init && c->init_exec)
		child_init_bind(c, root);
	pathf(c, path, sizeof(path), "%s/tmp", root);
	STEP(c, mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"), "mount tmpfs on /tmp");
	pathf(c, path, sizeof(path), "%s/run", root);
	STEP(c, mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755"), "mount tmpfs on /run");
	for (size_t i = 0; i < ARRAY_SIZE(etc); i++) {
		pathf(c, src, sizeof(src), "%s/%s", c->dir, etc[i]);
		pathf(c, path, sizeof(path), "%s/etc/%s", root, etc[i]);
		STEP(c, mount(src, path, NULL, MS_BIND, NULL), "bind /etc/%s", etc[i]);
		STEP(c, mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL),
		     "make /etc/%s read-only", etc[i]);
	}
	if (!s->layers)
		STEP(c, mount(NULL, root, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL),
		     "make the rootfs read-only");
	STEP(c, chdir(root), "chdir %s", root);
	/* pivot_root(".", "."): the old root ends up stacked under the new
	 * one, and detaching it leaves nothing of the host visible */
	STEP(c, syscall(SYS_pivot_root, ".", "."), "pivot_root to %s", root_name(c, path,
										  sizeof(path)));
	STEP(c, umount2(".", MNT_DETACH), "detach the old root");
	STEP(c, chdir("/"), "chdir /");
	if (s->layers)
		child_image_finish(c);
}

/* The image's user, right before exec (after ctr_caps_apply: a uid other
 * than 0 leaves the permitted and effective sets empty, as in docker). With
 * init = yes only the command: the init stays root, to signal and reap it. */
static void child_user(const struct child *c)
{
	const struct spec *s = c->s;
	gid_t groups[SPEC_GROUPS_MAX];

	if (!s->has_user)
		return;
	for (size_t i = 0; i < s->n_groups; i++)
		groups[i] = (gid_t)s->groups[i];
	STEP(c, setgroups(s->n_groups, groups), "image %s: set %zu supplementary groups",
	     s->image, s->n_groups);
	STEP(c, setgid((gid_t)s->gid), "image %s: setgid %" PRIu32, s->image, s->gid);
	STEP(c, setuid((uid_t)s->uid), "image %s: setuid %" PRIu32, s->image, s->uid);
}

static void __attribute__((noreturn)) child_exec(const struct child *c)
{
	const struct spec *s = c->s;
	char what[4096 + 8];

	child_user(c);
	execvp(s->argv[0], (char **)s->argv);
	if (errno == ENOENT)
		fail_msg(c, "command '%s' not found in the %s (PATH=%s)", s->argv[0],
			 root_name(c, what, sizeof(what)), getenv("PATH") ? getenv("PATH") : "");
	STEP(c, -1, "exec %s", s->argv[0]);
	_exit(127);
}

/* init = yes: fork the command, then become its init (init.c). */
static void __attribute__((noreturn)) child_init(struct child *c)
{
	static const char title[] = "berth\0init";    /* argv "berth" "init" */
	const struct spec *s = c->s;
	char *argv[SPEC_ARGS_MAX + 6], pid_arg[16];
	size_t n = 0;
	pid_t cmd;

	cmd = fork();
	STEP(c, cmd, "fork the command");
	if (cmd == 0) {
		ctr_init_child_prepare();
		child_exec(c);
	}
	if (c->init_exec) {
		snprintf(pid_arg, sizeof(pid_arg), "%d", (int)cmd);
		argv[n++] = CTR_INIT_PATH;
		argv[n++] = "init";
		argv[n++] = "--child";
		argv[n++] = pid_arg;
		argv[n++] = "--";       /* the command, for `ps` in the container */
		for (size_t i = 0; i < s->argc; i++)
			argv[n++] = s->argv[i];
		argv[n] = NULL;
		execv(CTR_INIT_PATH, argv);
		STEP(c, -1, "exec the init %s", CTR_INIT_PATH);
	}
	/* in-process: nothing of the monitor's may stay open here (the start
	 * report's pipe, the lock, the log), and the error pipe's EOF is ours
	 * to give */
	if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0)
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
	if (c->title_len >= sizeof(title)) {
		memset(c->title, 0, c->title_len);
		memcpy(c->title, title, sizeof(title));
	}
	ctr_init_supervise(cmd);
}

/* noinline: its frames (and child_rootfs's path buffers) are the child's
 * alone, never part of the monitor's own stack frame. */
static void __attribute__((noreturn, noinline)) child_main(struct child *c, int out, int nullfd)
{
	const struct spec *s = c->s;
	char exe[EXE_PATH_MAX];
	sigset_t mask;
	struct err e = { 0 };
	int fd;

	c->exe = exe;
	/* the init's signals wait, queued, from now on: a stop that comes
	 * during the start reaches the command once it runs */
	if (s->init)
		ctr_init_sigset(&mask);
	else
		sigemptyset(&mask);
	sigprocmask(SIG_SETMASK, &mask, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	STEP(c, prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), "set the parent-death signal");
	STEP(c, dup2(nullfd, 0), "stdin");
	STEP(c, dup2(out, 1), "stdout");
	STEP(c, dup2(out, 2), "stderr");
	close(out);
	close(nullfd);
	child_cgroup(c);
	fd = open(s->netns, O_RDONLY | O_CLOEXEC);
	STEP(c, fd, "open network namespace %s", s->netns);
	STEP(c, setns(fd, CLONE_NEWNET), "join network namespace %s", s->netns);
	close(fd);
	STEP(c, unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC),
	     "unshare mount, UTS and IPC namespaces");
	STEP(c, sethostname(s->name, strlen(s->name)), "set hostname %s", s->name);
	/* else (a binary replaced since) the init runs in-process */
	if (s->init && c->init_exec)
		c->init_exec = child_find_exe(c);
	child_rootfs(c);
	if (ctr_caps_apply(&e) < 0)
		child_fail(c, &e);
	environ = (char **)s->envp;             /* NULL-terminated: at most SPEC_ARGS_MAX */
	if (s->init)
		child_init(c);
	child_exec(c);
}

/* ---- the monitor ------------------------------------------------------------ */

struct monitor {
	struct spec spec;
	const char *state_dir;
	const char *dir;            /* STATE_DIR/ctr/NAME */
	struct ctr_log log;
	pid_t child;
	char *title;                /* our argv strings (child_init) */
	size_t title_len;
};

/* Is this berth statically linked (no program interpreter)? Only then can
 * it run inside a rootfs as the container's init. */
static bool exe_is_static(void)
{
	const ElfW(Phdr) *ph = (const ElfW(Phdr) *)getauxval(AT_PHDR);
	unsigned long n = getauxval(AT_PHNUM);

	if (!ph)
		return false;
	for (unsigned long i = 0; i < n; i++)
		if (ph[i].p_type == PT_INTERP)
			return false;
	return true;
}

static void mon_say(struct monitor *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mon_say(struct monitor *m, const char *fmt, ...)
{
	char line[ERR_MSG_MAX + 256];
	va_list ap;
	int n = snprintf(line, sizeof(line), "berth: ");

	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	ctr_log_write(&m->log, line, (size_t)n);
}

static void mon_write_exit(struct monitor *m, int status, const char *error)
{
	char path[strlen(m->dir) + sizeof("/exit")], text[ERR_MSG_MAX + 128];
	int n;

	n = snprintf(text, sizeof(text), "status=%d\nfinished=%lld\nerror=%s\n", status,
		     (long long)time(NULL), error ? error : "");
	snprintf(path, sizeof(path), "%s/exit", m->dir);
	file_write_atomic(path, text, (size_t)n, 0644, false, NULL);
}

static void mon_cgroup_remove(struct monitor *m)
{
	char path[512];

	if (!m->spec.memory && !m->spec.cpus_milli)
		return;
	snprintf(path, sizeof(path), "%s/%s", CTR_CGROUP_ROOT, m->spec.name);
	(void)rmdir(path);
}

/* Start the container; returns its pid or -1 with the failed step in e. */
static pid_t mon_start(struct monitor *m, int *out_rd, struct err *e)
{
	struct child c = { .s = &m->spec, .dir = m->dir, .init_exec = exe_is_static(),
			   .title = m->title, .title_len = m->title_len };
	int out[2], errp[2], nullfd;
	char msg[ERR_MSG_MAX];
	size_t len = 0;
	pid_t pid;

	nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nullfd < 0)
		return err_sys(e, errno, "open /dev/null");
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0)
		return err_sys(e, errno, "pipe");
	/* clone(CLONE_NEWPID) as a fork: only the child is in the new pid ns
	 * (unshare would put every later child of the monitor there too) */
	pid = (pid_t)syscall(SYS_clone, (unsigned long)(CLONE_NEWPID | SIGCHLD), NULL, NULL, NULL, NULL);
	if (pid < 0)
		return err_sys(e, errno, "clone a new pid namespace");
	if (pid == 0) {
		close(out[0]);
		close(errp[0]);
		c.errfd = errp[1];
		child_main(&c, out[1], nullfd);
	}
	close(out[1]);
	close(errp[1]);
	close(nullfd);
	for (;;) {
		ssize_t r = read(errp[0], msg + len, sizeof(msg) - 1 - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || (len += (size_t)r) >= sizeof(msg) - 1)
			break;
	}
	close(errp[0]);
	msg[len] = '\0';
	m->child = pid;
	*out_rd = out[0];
	if (len) {
		int st;

		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		close(out[0]);
		m->child = 0;
		err_set(e, EINVAL, "%s", msg);
		return -1;
	}
	return pid;
}

static int exit_code(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 255;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Log the output, forward a stop (SIGTERM, then SIGKILL after stop_timeout),
 * wait for the end. Returns the exit code. */
static int __attribute__((noinline)) mon_run(struct monitor *m, int out, int sfd)
{
	uint64_t kill_at = 0, drain_until = 0;
	bool exited = false, eof = false;
	int status = 0;

	for (;;) {
		struct pollfd p[2] = { { eof ? -1 : out, POLLIN, 0 }, { sfd, POLLIN, 0 } };
		uint64_t now = now_ms();
		int timeout = -1;

		if (exited && (eof || now >= drain_until))
			break;
		if (exited)     /* a writer that still holds the pipe gets a moment */
			timeout = (int)(drain_until - now);
		else if (kill_at && kill_at != UINT64_MAX)
			timeout = kill_at > now ? (int)(kill_at - now) : 0;
		if (poll(p, 2, timeout) < 0 && errno != EINTR)
			break;
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			/* static: its page is dirtied only by a container that
			 * writes, and the stack below it stays shallow */
			static char buf[LOG_CHUNK];
			ssize_t r = read(out, buf, sizeof(buf));

			if (r > 0)
				ctr_log_write(&m->log, buf, (size_t)r);
			else if (r == 0 || errno != EINTR)
				eof = true;
		}
		if (p[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				unsigned t = m->spec.stop_timeout;
				uint64_t at;

				if (si.ssi_signo == SIGCHLD || kill_at == UINT64_MAX || exited)
					continue;
				/* `berth stop -t S`: the daemon's sigqueue carries
				 * this stop's own timeout, S + 1; a later one may
				 * only bring the SIGKILL nearer */
				if (si.ssi_code == SI_QUEUE && si.ssi_int > 0)
					t = (unsigned)si.ssi_int - 1;
				at = now_ms() + (uint64_t)t * 1000;
				if (kill_at) {
					kill_at = at < kill_at ? at : kill_at;
					continue;
				}
				/* pid 1 of a pid ns gets only the signals it handles:
				 * with init = no, a command without a SIGTERM
				 * handler waits for SIGKILL (berth's init forwards it) */
				kill(m->child, m->spec.stop_signal);
				kill_at = at;
			}
		}
		if (!exited && kill_at && kill_at != UINT64_MAX && now_ms() >= kill_at) {
			kill(m->child, SIGKILL);
			kill_at = UINT64_MAX;
		}
		if (!exited) {
			int st;

			if (waitpid(m->child, &st, WNOHANG) == m->child) {
				exited = true;
				status = exit_code(st);
				drain_until = now_ms() + 1000;
			}
		}
	}
	return status;
}

int ctr_monitor_main(int argc, char **argv)
{
	struct monitor m = { .log.fd = -1, .log.dirfd = -1 };
	struct err e = { 0 };
	char text[512], boot[64];
	size_t spec_len = 0, n_args = 0, n_env = 0;
	sigset_t mask;
	int sfd, spec_fd, out = -1, status, sync = 3, n;
	pid_t pid;

	if (argc != 3) {
		fprintf(stderr, "usage: berth monitor STATE_DIR NAME (started by the daemon)\n");
		return 2;
	}
	m.state_dir = argv[1];
	m.title = argv[0];          /* exec'd: the strings are contiguous */
	m.title_len = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) + 1 - argv[0]);
	/* paths sized to what they hold, not 4 KiB buffers: each of those
	 * would be one more page of the monitor's stack */
	char dir[strlen(argv[1]) + strlen(argv[2]) + sizeof("/ctr/")];
	char path[sizeof(dir) + sizeof("/monitor")];

	snprintf(dir, sizeof(dir), "%s/ctr/%s", argv[1], argv[2]);
	m.dir = dir;
	setsid();
	if (chdir("/") < 0)         /* pin no directory of the daemon's */
		return 1;
	fcntl(sync, F_SETFD, FD_CLOEXEC);   /* not for the container */
	/* fd 4 is the container's lock (container.c), held while we live */
	fcntl(CTR_LOCK_FD, F_SETFD, FD_CLOEXEC);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	snprintf(path, sizeof(path), "%s/spec", m.dir);
	spec_fd = sfd < 0 ? -1 : spec_open(path, &spec_len, &e);
	/* the spec, on this frame for the monitor's whole life (see struct spec) */
	char spec_text[spec_len + 1];

	if (spec_fd >= 0) {
		spec_len = spec_read(spec_fd, spec_text, spec_len);
		close(spec_fd);
		spec_count(spec_text, spec_len, &n_args, &n_env);
	}
	char *spec_argv[n_args + 1], *spec_envp[n_env + 1];

	m.spec.argv = spec_argv;
	m.spec.envp = spec_envp;
	if (sfd < 0 || spec_fd < 0 || spec_parse(&m.spec, spec_text, spec_len, path, &e) < 0 ||
	    ctr_log_open(&m.log, m.state_dir, argv[2], m.spec.log_size, &e) < 0) {
		if (sfd < 0)
			err_sys(&e, errno, "signalfd");
		dprintf(sync, "error %s\n", e.msg);
		mon_write_exit(&m, -1, e.msg);
		ctr_log_close(&m.log);
		return 1;
	}
	/* our own messages (and any sanitizer report) go into the log too */
	dup2(m.log.fd, 2);
	if ((m.spec.memory || m.spec.cpus_milli) && !ctr_cgroup2())
		mon_say(&m, "warning: memory/cpus limits need cgroup v2, and /sys/fs/cgroup is not "
			"cgroup2: running %s without them", m.spec.name);
	pid = mon_start(&m, &out, &e);
	if (pid < 0) {
		mon_say(&m, "cannot start %s: %s", m.spec.name, e.msg);
		mon_write_exit(&m, -1, e.msg);
		mon_cgroup_remove(&m);
		dprintf(sync, "error %s\n", e.msg);
		close(sync);
		ctr_log_close(&m.log);
		return 1;
	}
	ctr_boot_id(boot, sizeof(boot));
	n = snprintf(text, sizeof(text), "monitor=%d\nstart=%" PRIu64 "\ninit=%d\nstarted=%lld\n"
		     "boot=%s\nhash=%s\n", (int)getpid(), ctr_proc_start(getpid()), (int)pid,
		     (long long)time(NULL), boot, m.spec.hash ? m.spec.hash : "");
	snprintf(path, sizeof(path), "%s/exit", m.dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/monitor", m.dir);
	if (file_write_atomic(path, text, (size_t)n, 0644, false, &e) < 0)
		mon_say(&m, "%s", e.msg);
	dprintf(sync, "ok %d\n", (int)pid);
	close(sync);
	status = mon_run(&m, out, sfd);
	close(out);
	close(sfd);
	mon_write_exit(&m, status, NULL);
	mon_cgroup_remove(&m);
	ctr_log_close(&m.log);
	return 0;
}
