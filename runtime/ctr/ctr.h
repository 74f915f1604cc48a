/* ctr.h - runtime/ctr: containers (DESIGN §7): start, supervise, stop, logs and exec;
 * the one public header of container.c, monitor.c, log.c and cmd_ctr.c.
 * Internal to runtime/. */
#ifndef BERTH_CTR_H
#define BERTH_CTR_H

#include "runtime/ctl/ctl.h"
#include "lib/lib.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Processes. The daemon never is a container's parent: for each start it
 * forks and re-executes itself as `berth monitor STATE_DIR NAME` (see
 * monitor.c), a small conmon-style process that clones the container's
 * init into its namespaces, owns the pipe of its stdout/stderr, writes the
 * log and records the exit status. So a daemon that is killed (or stops with
 * SIGQUIT to be upgraded) leaves its containers running and logged, and the
 * next daemon adopts their monitors through pidfds.
 *
 * Files, all under STATE_DIR/ctr/NAME/ (the daemon writes the first four
 * before each start; the monitor writes the last two, each atomically):
 *   spec        what to run: NUL-terminated "key=value" records
 *   hosts, hostname, resolv.conf   bind-mounted read-only into /etc
 *   root/       the mount point the rootfs is bound to before pivot_root
 *   monitor     "monitor=PID start=TICKS init=PID started=UNIX boot=ID hash=H"
 *   exit        "status=N finished=UNIX error=MESSAGE" when the monitor ends
 * Logs: STATE_DIR/logs/NAME.log, rotated once to NAME.log.1 at log_size.
 */
#define CTR_LOG_SIZE_DEFAULT (1ULL << 20)
#define CTR_LOG_CHUNK_MAX (256u << 10)  /* bytes per `logs --from` reply */
#define CTR_LOG_READ_MAX (32u << 20)    /* bytes per `logs` reply: the newest */
#define CTR_BACKOFF_FIRST_S 1
#define CTR_BACKOFF_MAX_S 30
#define CTR_BACKOFF_RESET_S 10          /* up this long: the next back-off is 1 s again */
#define CTR_START_TIMEOUT_MS 10000      /* the monitor's start report */
#define CTR_CGROUP_ROOT "/sys/fs/cgroup/berth"

struct daemon;
struct config;
struct ctr;

/* ---- the daemon's side (container.c) ------------------------------------ */

/* At start-up, before the first reconcile: adopt the monitors a previous
 * daemon left running (a pid is taken only when /proc/PID/stat's start time
 * matches the one recorded, so a recycled pid is never adopted). */
void containers_adopt(struct daemon *d);
/* Reconcile, before anything is detached: stop (and wait for) the processes
 * of containers that cfg no longer has, or whose rootfs, command, env,
 * networks, memory or cpus changed. Labels, ports, service, restart and
 * stop_timeout apply without a restart. */
void containers_stop_changed(struct daemon *d, const struct config *cfg);
/* Stop one container's process and wait for it (at most its stop_timeout
 * plus a few seconds): called before its network is taken down. */
void containers_stop(struct daemon *d, const char *name);
/* After network, DNS (and firewall) state are in place: start every
 * configured container that should run and does not. */
void containers_start_pending(struct daemon *d);
/* SIGCHLD: reap the daemon's children (monitors) and act on their exits. */
void containers_on_sigchld(struct daemon *d);
/* Daemon exit. stop: SIGTERM every container and wait (each gets its
 * stop_timeout, then SIGKILL); !stop: leave them running for the next daemon. */
void containers_shutdown(struct daemon *d, bool stop);

/* What ps, inspect and metrics show of one container. */
struct ctr_status {
	const char *state;          /* created starting running stopping backoff exited stopped error */
	int pid;                    /* the container's init (host pid); 0 */
	unsigned restarts;
	int exit_code;              /* last exit: code, or 128 + signal; -1: none */
	int64_t started_at;         /* unix seconds of the current/last start; 0 */
	char status[96];            /* "up 5s", "backoff (next try in 4s)", "exited (1) 3s ago" */
	const char *error;          /* why it is not running, "" if nothing */
	const char *warning;        /* e.g. limits without cgroup v2, "" */
};
void containers_status(const struct daemon *d, const struct ctr *c, struct ctr_status *st);

/* Control requests: start NAME, stop NAME, state NAME, logs NAME [--tail N]
 * [--cursor | --from CURSOR], exec-info NAME. */
int containers_request(struct daemon *d, const struct ctl_request *rq, struct buf *out,
		       struct err *e);

/* ---- the monitor (monitor.c) ----------------------------------------- */

/* `berth monitor STATE_DIR NAME`, started by the daemon with the write end
 * of its start-report pipe as fd 3: "ok PID\n" or "error MESSAGE\n". */
int ctr_monitor_main(int argc, char **argv);
/* Docker's default capability set: drop every other capability from the
 * bounding set and set it as effective/permitted/inheritable; also sets
 * no_new_privs. Used for the container's init and for `berth exec`. */
int ctr_caps_apply(struct err *e);
/* Is /sys/fs/cgroup a cgroup v2 (unified) mount? */
bool ctr_cgroup2(void);
/* Write path atomically (a temporary file renamed over it), mode 0644. */
int ctr_file_write(const char *path, const void *data, size_t len, struct err *e);
/* The start time of pid (field 22 of /proc/PID/stat, clock ticks since
 * boot), or 0 if there is no such process. */
uint64_t ctr_proc_start(pid_t pid);
/* This boot's id (/proc/sys/kernel/random/boot_id), "" if unknown. */
void ctr_boot_id(char *buf, size_t size);

/* ---- logs (log.c) ----------------------------------------------------- */

struct ctr_log {
	int fd;                     /* the current file, O_APPEND */
	char path[4096];            /* .../logs/NAME.log */
	uint64_t size, max;         /* rotate to NAME.log.1 when size would pass max */
};
/* Open (create) the log; max 0: CTR_LOG_SIZE_DEFAULT. */
int ctr_log_open(struct ctr_log *l, const char *state_dir, const char *name, uint64_t max,
		 struct err *e);
void ctr_log_write(struct ctr_log *l, const void *p, size_t n);
void ctr_log_close(struct ctr_log *l);
/* The daemon's reading side. tail < 0: everything (NAME.log.1 then NAME.log,
 * at most the newest CTR_LOG_READ_MAX bytes); else the last tail lines. */
int ctr_log_read(const char *state_dir, const char *name, long tail, struct buf *out,
		 struct err *e);
/* The cursor of the end of the log now ("INODE:OFFSET"). */
void ctr_log_cursor(const char *state_dir, const char *name, char *buf, size_t size);
/* New bytes after cursor (across one rotation) into out, at most
 * CTR_LOG_CHUNK_MAX; the cursor after them into next. */
int ctr_log_from(const char *state_dir, const char *name, const char *cursor, struct buf *out,
		 char *next, size_t size, struct err *e);

/* ---- the CLI (cmd_ctr.c) --------------------------------------------------- */

/* start|stop|restart NAME, logs NAME [-f] [--tail N], exec NAME -- CMD...
 * against the daemon at socket. Returns an exit code (exec: the command's). */
int cmd_ctr(const char *socket, bool json, int argc, char **argv);

#endif
