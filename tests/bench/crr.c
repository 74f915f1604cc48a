/* crr.c - the services benchmark's client and responder (tests/bench/svc.py):
 * request/response round trips on a fresh connection each ("CRR": TCP
 * connect, a small request, the response, close), or a UDP request and its
 * answer from a fresh socket (a fresh source port) each. A new connection is
 * what pays a NAT table's lookup: conntrack carries the rest of a flow.
 *
 *   crr serve PORT ID     answer on PORT, TCP and UDP, with "ID\n" to every
 *                         request; one process, no fork per connection. The
 *                         responder closes first, so TIME_WAIT stays on its
 *                         side and the client's ports never run out.
 *   crr client [-u] N [NETNS,]ADDR,PORT...
 *                         N round trips to each target (up to 8), one to each
 *                         in turn, each from a socket made in the target's
 *                         network namespace (a path: /run/netns/NAME) when
 *                         one is given; per target, prints "RESULT target=I
 *                         ok=K fail=F p50_us=.. p99_us=.. per_s=..
 *                         ids=C0,C1,...": the latency of each round trip
 *                         (socket to close), round trips per second of its
 *                         own time, how many answers came from each ID.
 *
 * Static (the Makefile's own rule): the responder runs inside busybox
 * containers. Nothing of libberth: the client's own cost stays small and
 * the same for every tool it measures. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IDS_MAX 10

static long long now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void timeouts(int fd, int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int serve(int port, const char *id)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	char answer[16], buf[256];
	int one = 1, t, u;
	size_t alen;

	snprintf(answer, sizeof(answer), "%s\n", id);
	alen = strlen(answer);
	signal(SIGPIPE, SIG_IGN);
	t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (t < 0 || u < 0) {
		perror("crr serve: socket");
		return 1;
	}
	setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(t, (struct sockaddr *)&a, sizeof(a)) || listen(t, 1024) ||
	    bind(u, (struct sockaddr *)&a, sizeof(a))) {
		fprintf(stderr, "crr serve: port %d: %s\n", port, strerror(errno));
		return 1;
	}
	for (;;) {
		struct pollfd p[2] = { { .fd = t, .events = POLLIN }, { .fd = u, .events = POLLIN } };

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("crr serve: poll");
			return 1;
		}
		if (p[1].revents & POLLIN) {
			struct sockaddr_storage from;
			socklen_t fl = sizeof(from);

			if (recvfrom(u, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl) >= 0)
				sendto(u, answer, alen, MSG_DONTWAIT, (struct sockaddr *)&from, fl);
		}
		if (p[0].revents & POLLIN) {
			int c = accept4(t, NULL, NULL, SOCK_CLOEXEC);

			if (c < 0)
				continue;
			/* a client that never sends cannot hold the others up long */
			timeouts(c, 1000);
			/* a failed write: the client went away, nothing to tell */
			if (read(c, buf, sizeof(buf)) > 0 && write(c, answer, alen) < 0)
				errno = 0;
			close(c);
		}
	}
}

/* One round trip; the answering ID (0..IDS_MAX-1), or -1. */
static int round_trip(const struct sockaddr_in *to, int udp)
{
	static const char req[] = "GET / HTTP/1.0\r\n\r\n";
	char buf[64];
	ssize_t n, got = 0;
	int fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	timeouts(fd, 2000);
	if (connect(fd, (const struct sockaddr *)to, sizeof(*to)) ||
	    write(fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1) {
		close(fd);
		return -1;
	}
	/* TCP: until the responder's close; UDP: its one datagram */
	while ((n = read(fd, buf + got, sizeof(buf) - 1 - (size_t)got)) > 0) {
		got += n;
		if (udp || got == (ssize_t)sizeof(buf) - 1)
			break;
	}
	close(fd);
	if (n < 0 || got < 2 || buf[0] < '0' || buf[0] > '9')
		return -1;
	return buf[0] - '0';
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

struct target {
	int netns;                  /* an fd of its network namespace; -1: this one */
	struct sockaddr_in to;
	long long *lat;
	int ok, fail, ids[IDS_MAX];
	long long busy;             /* ns spent in its round trips */
};

/* NETNS,ADDR,PORT or ADDR,PORT */
static int target_parse(struct target *t, char *spec)
{
	char *f[3];
	int n = 0;

	for (char *p = strtok(spec, ","); p && n < 3; p = strtok(NULL, ","))
		f[n++] = p;
	memset(t, 0, sizeof(*t));
	t->netns = -1;
	t->to.sin_family = AF_INET;
	if (n == 3 && (t->netns = open(f[0], O_RDONLY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "crr client: %s: %s\n", f[0], strerror(errno));
		return -1;
	}
	if (n < 2 || inet_pton(AF_INET, f[n - 2], &t->to.sin_addr) != 1)
		return -1;
	t->to.sin_port = htons((uint16_t)atoi(f[n - 1]));
	return 0;
}

static int client(int argc, char **argv)
{
	struct target t[8];
	int udp = 0, n, nt = 0, rc = 0;

	if (argc > 0 && !strcmp(argv[0], "-u")) {
		udp = 1;
		argc--, argv++;
	}
	if (argc < 2 || argc - 1 > 8 || (n = atoi(argv[0])) < 1 || n > 10000000)
		goto usage;
	for (int i = 1; i < argc; i++, nt++)
		if (target_parse(&t[nt], argv[i]) || !(t[nt].lat = calloc((size_t)n, sizeof(long long))))
			goto usage;
	/* one round trip to each target in turn: whatever the machine does
	 * meanwhile (other work on a shared machine) hits all of them alike.
	 * Each turn starts one target further: what a round trip leaves behind
	 * (deferred frees, softirq work) lands on the next one, and a target
	 * always second would pay it for the first. */
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < nt; j++) {
			int k = (i + j) % nt;
			struct target *x = &t[k];
			long long t0;
			int id;

			if (x->netns >= 0 && setns(x->netns, CLONE_NEWNET)) {
				perror("crr client: setns");
				return 1;
			}
			t0 = now_ns();
			id = round_trip(&x->to, udp);
			t0 = now_ns() - t0;
			x->busy += t0;
			if (id < 0) {
				/* a run that mostly fails measures timeouts, not round trips */
				if (++x->fail > n / 10 + 10) {
					fprintf(stderr, "crr client: target %d: %d round trips failed\n", k, x->fail);
					return 1;
				}
				continue;
			}
			x->lat[x->ok++] = t0;
			x->ids[id]++;
		}
	}
	for (int k = 0; k < nt; k++) {
		struct target *x = &t[k];
		int ok = x->ok;

		qsort(x->lat, (size_t)ok, sizeof(*x->lat), cmp_ll);
		printf("RESULT target=%d ok=%d fail=%d p50_us=%.1f p99_us=%.1f per_s=%.0f ids=", k, ok,
		       x->fail, ok ? (double)x->lat[(ok - 1) / 2] / 1e3 : 0.0,
		       ok ? (double)x->lat[(ok * 99 + 99) / 100 - 1] / 1e3 : 0.0,
		       x->busy > 0 ? (double)ok * 1e9 / (double)x->busy : 0.0);
		for (int i = 0; i < IDS_MAX; i++)
			printf("%s%d", i ? "," : "", x->ids[i]);
		printf("\n");
		if (!ok)
			rc = 1;
	}
	return rc;
usage:
	fprintf(stderr, "usage: crr client [-u] N [NETNS,]IPV4,PORT...\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "serve"))
		return serve(atoi(argv[2]), argv[3]);
	if (argc >= 2 && !strcmp(argv[1], "client"))
		return client(argc - 2, argv + 2);
	fprintf(stderr, "usage: crr serve PORT ID | crr client [-u] N [NETNS,]IPV4,PORT...\n");
	return 2;
}
