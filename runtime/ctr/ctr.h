/* ctr.h - runtime/ctr: containers (DESIGN §7): start, supervise, stop, logs and exec;
 * the one public header of container.c, monitor.c, init.c, log.c and cmd_ctr.c. */
#ifndef BERTH_CTR_H
#define BERTH_CTR_H

#include "runtime/config/config.h"
#include "runtime/ctl/ctl.h"
#include "lib/lib.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/types.h>

/*
 * Processes. The daemon never is a container's parent: for each start it
 * forks and re-executes itself as `berth monitor STATE_DIR NAME` (see
 * monitor.c), a small conmon-style process that clones the container's
 * init (berth's own, init.c, unless init = no) into its namespaces, owns the pipe of its stdout/stderr, writes the
 * log and records the exit status. So a daemon that is killed (or stops with
 * SIGQUIT to be upgraded) leaves its containers running and logged, and the
 * next daemon adopts their monitors through pidfds.
 *
 * Files, all under STATE_DIR/ctr/NAME/ (the daemon writes the first four
 * before each start; the monitor writes the last two, each atomically):
 *   spec        what to run: NUL-terminated "key=value" records: name, rootfs
 *               or (an image) layers (the overlay's lowerdir, relative to
 *               layers_dir), layers_dir, image (its name, for messages),
 *               read_only (0|1), workdir, user (UID:GID), groups (G,G,...),
 *               stop_signal (a number); netns, hash, arg and env (repeated),
 *               memory, cpus_milli, stop_timeout, init, log_size
 *   hosts, hostname, resolv.conf   bind-mounted read-only into /etc
 *   root/       the mount point the rootfs is bound to before pivot_root (an
 *               image: its overlay, or the tmpfs of its upper directory)
 *   upper/, work/  an image's with read_only = no: the changes the container
 *               made to its root, kept across restarts (deleted by ctr_forget)
 *   monitor     "monitor=PID start=TICKS init=PID started=UNIX boot=ID hash=H"
 *   exit        "status=N finished=UNIX error=MESSAGE" when the monitor ends
 *   lock        flock'ed by the monitor for its whole life (fd CTR_LOCK_FD):
 *               taken means a monitor of this container is alive
 * Logs: STATE_DIR/logs/NAME.log, rotated once to NAME.log.1 at log_size.
 */
#define CTR_LOG_SIZE_DEFAULT (1ULL << 20)
#define CTR_LOG_CHUNK_MAX (256u << 10)  /* bytes per `logs --from` reply */
#define CTR_LOG_READ_MAX (32u << 20)    /* bytes per `logs` reply: the newest */
#define CTR_BACKOFF_FIRST_S 1
#define CTR_BACKOFF_MAX_S 30
#define CTR_BACKOFF_RESET_S 10          /* up this long: the next back-off is 1 s again */
#define CTR_START_TIMEOUT_MS 10000      /* the monitor's start report */
#define CTR_STARTS_MAX 8                /* starts at once; more wait their turn, so
					 * a boot with hundreds of containers does not
					 * make every start miss its report deadline */
#define CTR_CGROUP_ROOT "/sys/fs/cgroup/berth"
#define CTR_LOCK_FD 4                   /* the monitor holds STATE_DIR/ctr/NAME/lock on it */

struct store;
struct cfg_container;
struct image_info;

/* ---- the supervisor (container.c) ----------------------------------------
 *
 * The room's handle, embedded in its owner (the daemon) and the only thing
 * the room sees of it: the loop, the store, the state directory, and three
 * callbacks. Nothing here ever waits: a start is a fork whose report arrives
 * on a pipe the loop watches; a stop is SIGTERM, a timer, SIGKILL and the
 * monitor's pidfd becoming readable.
 *
 * Stops have a reason, recorded in the store before the signal is sent so
 * that a daemon killed in the middle converges after its restart:
 *   CTR_STOP_USER     `berth stop`: stays stopped (row "stopping"/"stopped")
 *   CTR_STOP_RESTART  `berth restart`, or a changed configuration: start
 *                     again once gone (row "restarting")
 *   CTR_STOP_OWNER    the owner takes the network down first (removed or
 *                     re-networked): on_gone, then the owner decides
 *   CTR_STOP_SHUTDOWN the daemon stops: a clean stop adopts nothing later
 */
enum ctr_stop_why { CTR_STOP_USER = 1, CTR_STOP_RESTART, CTR_STOP_OWNER, CTR_STOP_SHUTDOWN };

/* What the room needs of one configured container; the owner's, borrowed
 * for the duration of a call. */
struct ctr_spec {
	const struct cfg_container *cfg;
	const char *netns;              /* its network namespace file */
	const char *domain;             /* resolv.conf search domain */
	struct ip_addr nameservers[2];  /* family 0: none */
	struct ip_addr addrs[2 * CONFIG_NET_PER_CONTAINER];  /* /etc/hosts names it on these */
	size_t n_addrs;
	const struct image_info *image; /* cfg->image as the store has it; NULL: rootfs */
	const char *blocked;            /* non-NULL: may not start now, and why */
	const char *blocked_status;     /* then ps's STATUS; NULL: "network not set up" */
	bool blocked_wait;              /* a wait, not a fault (its image is being
					 * pulled): state "pulling", no error */
};

/* The spec of a configured container, or NULL when name is not configured. */
typedef const struct ctr_spec *ctr_lookup_fn(void *ctx, const char *name);
/* name's process ended after a CTR_STOP_OWNER (or any stop) and the room
 * no longer holds anything of it in the kernel: its network may go. */
typedef void ctr_gone_fn(void *ctx, const char *name);
/* Any run changed state (waiters re-check); may be NULL. */
typedef void ctr_change_fn(void *ctx, const char *name);
typedef void ctr_log_fn(void *ctx, enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A transition of name's process worth an event (the owner records it):
 * "started" or "restarted" (by its restart policy or a restart) once its
 * init runs; "died" when it ended on its own (or could not start: code -1,
 * why in msg), "stopped" when a stop ended it; code is its exit code
 * (128 + N for signal N), -1 when it has none. One call per transition.
 * May be NULL. */
typedef void ctr_event_fn(void *ctx, const char *name, const char *action, int code,
			  const char *msg);

/* A child of the daemon that is not a monitor was reaped (SIGCHLD):
 * status as waitpid gives it. May be NULL. */
typedef void ctr_reap_fn(void *ctx, pid_t pid, int status);

struct ctr_run;

struct ctr_sup {
	struct loop *loop;
	struct store *store;
	const char *state_dir;          /* the owner's; never changes */
	ctr_lookup_fn *lookup;
	ctr_gone_fn *on_gone;
	ctr_change_fn *on_change;
	ctr_log_fn *log;
	ctr_event_fn *on_event;
	ctr_reap_fn *on_reap;
	void *ctx;
	struct ctr_run *runs;           /* one per container the room knows */
	struct name_index by_name;      /* the same runs, by name */
	unsigned starting;              /* monitors whose start report is still due */
	bool shutting_down;
};

/* Fill s (the callbacks and ctx are the caller's to set before). */
void ctr_sup_init(struct ctr_sup *s, struct loop *l, struct store *st, const char *state_dir);
/* At start-up, before the first reconcile: adopt the monitors a previous
 * daemon left running (a pid is taken only when /proc/PID/stat's start time
 * matches the one recorded, so a recycled pid is never adopted), and resume
 * the stops it had begun. */
void ctr_adopt(struct ctr_sup *s);
/* Does name have a process (starting, running or stopping)? While it does,
 * the owner must not take its network down. */
bool ctr_busy(const struct ctr_sup *s, const char *name);
/* Is name's process running (started, not stopping)? Its run state only:
 * no lookup, so safe in the middle of a converge. */
bool ctr_running(const struct ctr_sup *s, const char *name);
/* Is name's process on its way out (a stop under way)? */
bool ctr_stopping(const struct ctr_sup *s, const char *name);
/* Begin stopping name's process (nothing waits). Returns true when a stop
 * is under way (on_gone follows), false when nothing of it runs. */
bool ctr_stop(struct ctr_sup *s, const char *name, enum ctr_stop_why why);
/* Bring name's process in line with its spec (lookup): stop it for a restart
 * when what it runs changed (rootfs, or image digest and read_only, command,
 * env, networks, memory, cpus, init; a container whose image the spec does
 * not have (image NULL for cfg->image) is left running as it is);
 * start it when it should run and does not. Labels, ports, service, restart
 * and stop_timeout apply without a restart. Returns 0, or -1 when the
 * changed configuration cannot start (config_container_preflight): the old
 * process keeps running and e says why. */
int ctr_sync(struct ctr_sup *s, const char *name, struct err *e);
/* name is no longer configured and nothing of it runs: drop its files. */
void ctr_forget(struct ctr_sup *s, const char *name);
/* Forget every container that is not configured and has no process. */
void ctr_prune(struct ctr_sup *s);
/* Send sig to name's process now (`berth kill`, `rm -f`): its init, which
 * is its command with init = no, else berth's init, which forwards it.
 * Returns 0, or -ESRCH when it is not running (e says so). */
int ctr_kill(struct ctr_sup *s, const char *name, int sig, struct err *e);
/* Restart name's running process as its restart policy would (counted
 * in restarts; `restarted` follows): a health check's on_unhealthy =
 * restart. False when it is not running. */
bool ctr_restart(struct ctr_sup *s, const char *name);
/* The exec-info reply of name (pid=, start=, cgroup=, cwd=, env=...) that
 * ctr_join_open and ctr_join_spawn take; -ESRCH when it is not running. */
int ctr_exec_info(struct ctr_sup *s, const char *name, struct buf *out, struct err *e);
/* Does any container have a process? */
bool ctr_any_busy(const struct ctr_sup *s);
/* Call fn for each container whose process is stopping; returns how many. */
typedef void ctr_name_fn(void *ctx, const char *name);
size_t ctr_each_stopping(const struct ctr_sup *s, ctr_name_fn *fn, void *ctx);
/* Daemon exit. stop: begin stopping every container (each gets its
 * stop_timeout, then SIGKILL) and return the number still stopping (0: all
 * gone; else on_gone comes for each); !stop: leave them running for the next
 * daemon and return 0. */
size_t ctr_shutdown(struct ctr_sup *s, bool stop);
/* Free what the room holds (after ctr_shutdown). */
void ctr_sup_free(struct ctr_sup *s);
/* SIGCHLD: reap the daemon's children (monitors) and act on their exits. */
void ctr_on_sigchld(struct ctr_sup *s);

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
void ctr_status(const struct ctr_sup *s, const char *name, struct ctr_status *st);

/* Control requests: start NAME, stop|restart NAME [--time SECONDS] (this
 * stop's timeout before SIGKILL instead of stop_timeout), kill NAME SIGNUM
 * (to the container's init: its command, or berth's init, which forwards
 * it; the restart policy then applies as to any exit), state NAME,
 * logs NAME [--tail N] [--cursor | --from CURSOR], exec-info NAME. start and
 * restart return 0 with the start under way: the caller waits for
 * ctr_status to leave "starting"/"stopping"/"created" (on_change). A start
 * of a running container answers "NAME " CTR_ALREADY_RUNNING " (pid N)", a
 * stop of a stopped one "NAME " CTR_NOT_RUNNING: nothing was done (the CLI
 * exits EXIT_NOOP). */
int ctr_request(struct ctr_sup *s, const struct ctl_request *rq, struct buf *out, struct err *e);
#define CTR_ALREADY_RUNNING "is already running"
#define CTR_NOT_RUNNING "is not running"

/* ---- the monitor (monitor.c) ----------------------------------------- */

/* `berth monitor STATE_DIR NAME`, started by the daemon with the write end
 * of its start-report pipe as fd 3: "ok PID\n" or "error MESSAGE\n". A
 * SIGTERM stops the container: its stop signal, then SIGKILL after the
 * spec's stop_timeout, or after N - 1 seconds when the SIGTERM came by
 * sigqueue() with the value N (the daemon's, for `berth stop -t`; a later
 * one may only bring the SIGKILL nearer). */
int ctr_monitor_main(int argc, char **argv);
/* Docker's default capability set: drop every other capability from the
 * bounding set and set it as effective/permitted/inheritable; also sets
 * no_new_privs. Used for the container's init and for `berth exec`. */
int ctr_caps_apply(struct err *e);
/* Is /sys/fs/cgroup a cgroup v2 (unified) mount? */
bool ctr_cgroup2(void);
/* The start time of pid (field 22 of /proc/PID/stat, clock ticks since
 * boot), or 0 if there is no such process. */
uint64_t ctr_proc_start(pid_t pid);
/* This boot's id (/proc/sys/kernel/random/boot_id), "" if unknown. */
void ctr_boot_id(char *buf, size_t size);

/* ---- the container's init (init.c) -------------------------------------- */

/* Where the monitor bind-mounts its own (static) binary, read-only, to run
 * it as the container's PID 1 (init = yes): /dev is berth's own tmpfs in
 * every container, so nothing is written into the rootfs (which may be
 * read-only, or shared by several containers) and nothing of the image can
 * collide with it or shadow it; the dot keeps it out of `ls /dev`. */
#define CTR_INIT_PATH "/dev/.berth-init"
#define CTR_INIT_NAME "berth-init"      /* its comm: what `ps` shows */

/* `berth init -- CMD [ARG...]` or `berth init --child PID [-- CMD...]` (see
 * init.c). Returns an exit code only for a usage error or a failed fork;
 * otherwise exits with the command's status (128 + N for signal N). */
int ctr_init_main(int argc, char **argv);
/* The signals the init blocks, waits for and forwards (with SIGCHLD, which
 * it does not forward): all but the faults of the init itself. */
void ctr_init_sigset(sigset_t *set);
/* In the command's process, between fork and exec: a process group of its
 * own (the terminal's foreground one if stdin is a tty), default signal
 * dispositions, nothing blocked. */
void ctr_init_child_prepare(void);
/* Be the init of child: forward every signal of ctr_init_sigset to it, reap
 * every child, and exit with child's status when it ends. */
void ctr_init_supervise(pid_t child) __attribute__((noreturn));

/* ---- logs (log.c) ----------------------------------------------------- */

struct ctr_log {
	int fd;                     /* the current file, O_APPEND */
	int dirfd;                  /* STATE_DIR/logs: rotation works in it by name,
				     * so no full path is kept (the monitor stays small) */
	uint64_t size, max;         /* rotate to NAME.log.1 when size would pass max */
	char file[CONFIG_NAME_MAX + 8];     /* NAME.log */
};
/* Open (create) the log; max 0: CTR_LOG_SIZE_DEFAULT. Either way l is
 * ready for ctr_log_write (a no-op when it failed) and ctr_log_close. */
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
/* The line of a reload's reply that names the containers still stopping:
 * RELOAD_STOPPING "a,b (...)\n"; with --wait the reply comes once they are
 * gone (and the restarted ones run), ending "stopped: a,b\n". */
#define RELOAD_STOPPING "stopping: "

/* ---- joining a running container (cmd_ctr.c): `berth exec`, exec health probes ---- */

/* What joining a container's init takes, opened from the host. */
struct ctr_join {
	int pidns;                  /* -1: not open */
	int ns[4];                  /* ipc, uts, net, mnt */
	int root;                   /* its init's root (after pivot_root) */
};
/* Open the namespaces of the init that info (an exec-info reply: pid=,
 * start=) names; a pid that did not start at that tick is refused (ESRCH:
 * "NAME is not running any more"). On an error nothing stays open. */
int ctr_join_open(struct ctr_join *j, const char *name, const char *info, struct err *e);
void ctr_join_close(struct ctr_join *j);
/* How the command runs: interactive keeps stdin (else /dev/null, as
 * docker); tty: a pseudo-terminal of the container's own devpts whose
 * master goes back on tty_sock; out_fd >= 0: stdout and stderr go there;
 * die_with_parent: the command gets SIGKILL when the spawned process ends. */
struct ctr_exec_opts {
	bool interactive, tty;
	int tty_sock;               /* -1: none */
	bool have_ws;
	struct winsize ws;          /* the CLI's terminal's size */
	int out_fd;                 /* -1: the caller's stdout and stderr */
	bool die_with_parent;
};
/* Fork a process that joins j's pid namespace and forks cmd there, inside
 * the container's cgroup, namespaces and root, with its capabilities, user,
 * working directory and environment (info's lines); it exits with cmd's
 * status (128 + N for signal N; 126: could not run it, 127: not found).
 * Returns its pid (the caller's child), or -1 (errno) when fork failed. */
pid_t ctr_join_spawn(const char *name, const char *info, const struct ctr_join *j, char **cmd,
		     const struct ctr_exec_opts *o);

#endif
