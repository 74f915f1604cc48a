/* init.c - `berth init`: a container's PID 1 (init = yes), as tini and
 * docker-init are.
 *
 * Why: a command that is PID 1 of its PID namespace gets only the signals it
 * has a handler for (the kernel drops the others, SIGKILL aside), so busybox
 * httpd or a shell script ignores `berth stop`'s SIGTERM and every stop ends
 * in SIGKILL after stop_timeout; and the orphans it leaves behind become its
 * zombies, which it never reaps. The init is berth itself: it blocks every
 * signal (a blocked signal is queued for PID 1 even when its action is the
 * default, and sigwaitinfo takes it), forwards each one to the command,
 * reaps every child, and exits with the command's status (128 + N for a
 * death by signal N, as a shell and docker-init report it). When PID 1 exits
 * the kernel kills whatever is left in the namespace.
 *
 * Two ways in:
 *   berth init -- CMD [ARG...]    fork and exec CMD, then supervise it (by hand,
 *                                 and the unit test; outside a PID namespace
 *                                 the init makes itself a child subreaper so
 *                                 that it still inherits and reaps orphans)
 *   berth init --child PID [-- CMD...]
 *                                 the monitor's way (monitor.c): the container's
 *                                 PID 1 forked and exec'd the command itself
 *                                 (so a failed exec is reported as a failed
 *                                 start, as without init), then exec'd this
 *                                 read-only bind of the berth binary; CMD is
 *                                 only there for `ps` inside the container
 */
#include "runtime/ctr/ctr.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* Faults of the init itself: never blocked (the kernel forces a blocked
 * synchronous fault through anyway, with a confusing result) and so never
 * forwarded; a `kill -SEGV 1` from outside is dropped, as for any PID 1. */
static const int fault_signals[] = { SIGABRT, SIGBUS, SIGFPE, SIGILL, SIGSEGV, SIGSYS, SIGTRAP };

void ctr_init_sigset(sigset_t *set)
{
	sigfillset(set);
	for (size_t i = 0; i < ARRAY_SIZE(fault_signals); i++)
		sigdelset(set, fault_signals[i]);
}

void ctr_init_child_prepare(void)
{
	sigset_t none;

	/* a group of its own, as tini does: the command's job control and a
	 * kill(0) of its own stay among its processes */
	(void)setpgid(0, 0);
	/* and the terminal's foreground, if it has one (still with every
	 * signal blocked: SIGTTOU would stop a background tcsetpgrp) */
	if (isatty(STDIN_FILENO))
		(void)tcsetpgrp(STDIN_FILENO, getpgrp());
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static int exit_status(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 255;
}

void ctr_init_supervise(pid_t child)
{
	sigset_t set;
	siginfo_t si;

	ctr_init_sigset(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
	(void)prctl(PR_SET_NAME, CTR_INIT_NAME, 0, 0, 0);
	for (;;) {
		/* reap every child that ended: the command, and the orphans the
		 * kernel gave us; the command's end is ours */
		for (;;) {
			int st;
			pid_t p = waitpid(-1, &st, WNOHANG);

			if (p == child)
				_exit(exit_status(st));
			if (p > 0)
				continue;
			if (p < 0 && errno == EINTR)
				continue;
			if (p < 0) {    /* ECHILD: the command was never ours */
				fprintf(stderr, "berth init: process %d is not a child of this one\n",
					(int)child);
				_exit(EXIT_FAIL);
			}
			break;
		}
		if (sigwaitinfo(&set, &si) < 0)
			continue;       /* EINTR: a stop signal and SIGCONT */
		if (si.si_signo != SIGCHLD)
			(void)kill(child, si.si_signo);
	}
}

static int usage(void)
{
	fprintf(stderr, "usage: berth init -- CMD [ARG...]\n"
		"       berth init --child PID [-- CMD...]   (the container's PID 1, from the monitor)\n");
	return EXIT_USAGE;
}

int ctr_init_main(int argc, char **argv)
{
	sigset_t set;
	pid_t child;
	int i = 1;

	if (argc > 2 && !strcmp(argv[1], "--child")) {
		char *end;
		long pid = strtol(argv[2], &end, 10);

		if (*end || pid <= 0 || (argc > 3 && strcmp(argv[3], "--")))
			return usage();
		ctr_init_supervise((pid_t)pid);
	}
	if (i < argc && !strcmp(argv[i], "--"))
		i++;
	else if (i < argc && argv[i][0] == '-')
		return usage();
	if (i >= argc)
		return usage();
	/* blocked before the fork: nothing sent between now and the loop is lost */
	ctr_init_sigset(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
	/* outside a PID namespace, orphans go to the nearest subreaper: be it */
	if (getpid() != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		fprintf(stderr, "berth init: cannot become a child subreaper (%s): orphans "
			"will not be reaped\n", strerror(errno));
	fflush(NULL);
	child = fork();
	if (child < 0) {
		fprintf(stderr, "berth init: fork: %s\n", strerror(errno));
		return EXIT_FAIL;
	}
	if (child == 0) {
		ctr_init_child_prepare();
		execvp(argv[i], argv + i);
		fprintf(stderr, "berth init: %s: %s\n", argv[i],
			errno == ENOENT ? "command not found" : strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	ctr_init_supervise(child);
}
