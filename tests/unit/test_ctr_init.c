/* test_ctr_init.c - runtime/ctr/init.c, `berth init`, outside any namespace:
 * the command's exit status (128 + N for a signal), signals forwarded to it
 * (SIGTERM ends a command without a handler at once), orphans adopted (as a
 * child subreaper) and reaped, and --child, the monitor's way in. */
#include "runtime/ctr/ctr.h"
#include "runtime/runtime.h"
#include "t.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* `berth init ARGV...` in a child of ours; its pid. */
static pid_t start_init_argv(int argc, char **argv)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0)
		_exit(ctr_init_main(argc, argv));
	return pid;
}

/* `berth init -- sh -c SCRIPT` */
static pid_t start_init(const char *script)
{
	char *argv[] = { "init", "--", "sh", "-c", (char *)script, NULL };

	return start_init_argv(5, argv);
}

/* Its exit code (the shell's $?), or -1 if it did not end within ms. */
static int wait_exit(pid_t pid, long ms)
{
	long long until = now_ms() + ms;
	int st;

	while (now_ms() < until) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
		sleep_ms(5);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

static int run(const char *script)
{
	return wait_exit(start_init(script), 5000);
}

/* The children of parent: how many, how many zombies, how many whose
 * command line is cmdline (NUL-separated words, written with spaces). */
struct kids {
	int n, zombies, named;
};

static struct kids children(pid_t parent, const char *cmdline)
{
	struct kids k = { 0 };
	DIR *d = opendir("/proc");
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char path[300], buf[512], *p;
		int ppid = 0;
		char state = 0;
		FILE *f;
		size_t n;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		p = strrchr(buf, ')');
		if (!p || sscanf(p + 1, " %c %d", &state, &ppid) != 2 || ppid != (int)parent)
			continue;
		k.n++;
		k.zombies += state == 'Z';
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		for (size_t i = 0; i + 1 < n; i++)
			if (!buf[i])
				buf[i] = ' ';
		buf[n] = '\0';
		k.named += n && !strcmp(buf, cmdline);
	}
	if (d)
		closedir(d);
	return k;
}

static void test_status(void)
{
	char *none[] = { "init", NULL }, *opt[] = { "init", "-x", NULL };
	char *bad[] = { "init", "--child", "x", NULL };
	char *missing[] = { "init", "--", "no-such-command-here", NULL };
	char *plain[] = { "init", "sh", "-c", "exit 5", NULL };

	T_EQ(run("exit 3"), 3, "the command's exit status is the init's");
	T_EQ(run("exit 0"), 0, "0 too");
	T_EQ(run("kill -KILL $$"), 137, "a death by SIGKILL is 137 (128 + 9), as docker-init says");
	T_EQ(run("kill -TERM $$"), 143, "and by SIGTERM 143");
	T_EQ(wait_exit(start_init_argv(3, missing), 5000), 127, "a command not found: 127");
	T_EQ(wait_exit(start_init_argv(4, plain), 5000), 5, "the -- is optional");
	T_EQ(ctr_init_main(1, none), EXIT_USAGE, "no command is a usage error");
	T_EQ(ctr_init_main(2, opt), EXIT_USAGE, "an unknown option too");
	T_EQ(ctr_init_main(3, bad), EXIT_USAGE, "and --child without a pid");
}

static void test_forward(void)
{
	long long t0;
	pid_t pid;
	int rc;

	/* sleep has no SIGTERM handler: only a forwarded signal ends it */
	pid = start_init("exec sleep 30");
	sleep_ms(200);
	t0 = now_ms();
	kill(pid, SIGTERM);
	rc = wait_exit(pid, 5000);
	T_EQ(rc, 143, "SIGTERM to the init ends a command without a handler: status 143");
	T_OK(rc == 143 && now_ms() - t0 < 1000, "at once (%lld ms)", now_ms() - t0);

	pid = start_init("trap 'exit 7' USR1; while :; do sleep 0.01; done");
	sleep_ms(200);
	kill(pid, SIGUSR1);
	T_EQ(wait_exit(pid, 5000), 7, "SIGUSR1 reaches the command's handler (it exits 7)");

	pid = start_init("trap 'echo' HUP; trap 'exit 9' INT; while :; do sleep 0.01; done");
	sleep_ms(200);
	kill(pid, SIGHUP);
	sleep_ms(100);
	T_OK(waitpid(pid, &rc, WNOHANG) == 0, "a signal the command handles does not end the init");
	kill(pid, SIGINT);
	T_EQ(wait_exit(pid, 5000), 9, "every signal goes to the command: SIGINT then (exit 9)");
}

static void test_reap(void)
{
	struct kids k = { 0 };
	long long until;
	pid_t pid;

	/* the inner shell leaves `sleep 0.4` behind: an orphan, which the
	 * kernel hands to the nearest subreaper, the init */
	pid = start_init("sh -c 'sleep 0.4 &'; exec sleep 30");
	until = now_ms() + 2000;
	while (now_ms() < until && !(k = children(pid, "sleep 0.4")).named)
		sleep_ms(10);
	T_OK(k.named == 1, "the orphan is the init's child now (%d children)", k.n);
	until = now_ms() + 3000;
	do {
		sleep_ms(50);
		k = children(pid, "sleep 0.4");
	} while (now_ms() < until && (k.zombies || k.n != 1));
	T_OK(k.n == 1 && !k.zombies, "once it ended it was reaped: no zombie, the command is "
	     "the only child left (%d children, %d zombies)", k.n, k.zombies);
	kill(pid, SIGTERM);
	T_EQ(wait_exit(pid, 5000), 143, "and SIGTERM still ends the command");

	/* many at once: one SIGCHLD may stand for several */
	pid = start_init("for i in 1 2 3 4 5 6 7 8; do sh -c 'sleep 0.6 &'; done; exec sleep 30");
	until = now_ms() + 2000;
	while (now_ms() < until && (k = children(pid, "sleep 0.6")).named < 8)
		sleep_ms(10);
	T_EQ(k.named, 8, "eight orphans, all adopted");
	until = now_ms() + 3000;
	do {
		sleep_ms(50);
		k = children(pid, "");
	} while (now_ms() < until && k.n != 1);
	T_OK(k.n == 1 && !k.zombies, "ending together, they are all reaped (%d children, "
	     "%d zombies)", k.n, k.zombies);
	kill(pid, SIGTERM);
	wait_exit(pid, 5000);
}

/* The monitor's way: the command is already our child when the init takes over. */
static void test_child_option(void)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		char arg[16], *argv[] = { "init", "--child", arg, "--", "sleep", "30", NULL };
		sigset_t set;
		pid_t cmd;

		ctr_init_sigset(&set);
		sigprocmask(SIG_BLOCK, &set, NULL);
		cmd = fork();
		if (cmd == 0) {
			ctr_init_child_prepare();
			execlp("sleep", "sleep", "30", (char *)NULL);
			_exit(127);
		}
		snprintf(arg, sizeof(arg), "%d", (int)cmd);
		_exit(ctr_init_main(6, argv));
	}
	sleep_ms(200);
	kill(pid, SIGTERM);
	T_EQ(wait_exit(pid, 5000), 143, "--child PID: the init takes over a running command");
}

int main(void)
{
	test_status();
	test_forward();
	test_reap();
	test_child_option();
	return t_done();
}
