/* fw_probe.c - test helper: listeners in many network namespaces, and many
 * TCP/UDP probes between them at once, so a reachability matrix of
 * hundreds of pairs takes one timeout instead of hundreds.
 *
 *   fw_probe serve NETNS_FILE... -p PORT...
 *       in each namespace: a TCP listener and a UDP echo socket on every
 *       PORT (IPv4 and IPv6, any address); prints "ready" and serves until
 *       killed. A TCP peer gets one byte and the close.
 *   fw_probe probe TIMEOUT_MS [SPORT] < lines "NETNS_FILE|- ADDR PORT tcp|udp"
 *       each line from inside NETNS_FILE (- : the current namespace);
 *       prints "open" or "closed" per line, in order. TCP is open when a byte
 *       arrives, UDP when the echo comes back within the timeout. With SPORT,
 *       line k sends from source port SPORT + k: a caller that never repeats
 *       a port never meets the conntrack entry of an earlier probe (an
 *       established flow passes a policy that came in after it).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROBES 8192

static int self_ns;

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static void enter(const char *netns)
{
	int fd;

	if (!strcmp(netns, "-")) {
		if (setns(self_ns, CLONE_NEWNET) < 0)
			die("setns back");
		return;
	}
	fd = open(netns, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
		die(netns);
	close(fd);
}

static int listener(int family, int type, int port)
{
	int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port) };
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };

	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, family == AF_INET6 ? (struct sockaddr *)&a6 : (struct sockaddr *)&a4,
		 family == AF_INET6 ? sizeof(a6) : sizeof(a4)) < 0)
		die("bind");
	if (type == SOCK_STREAM && listen(fd, 128) < 0)
		die("listen");
	return fd;
}

static __attribute__((noreturn)) void serve(int argc, char **argv)
{
	int ep = epoll_create1(EPOLL_CLOEXEC), ports[16], n_ports = 0, i;

	for (i = 2; i < argc && strcmp(argv[i], "-p"); i++)
		;
	for (int k = i + 1; k < argc && n_ports < 16; k++)
		ports[n_ports++] = atoi(argv[k]);
	for (int n = 2; n < i; n++) {
		enter(argv[n]);
		for (int p = 0; p < n_ports; p++)
			for (int f = 0; f < 2; f++)
				for (int t = 0; t < 2; t++) {
					int fd = listener(f ? AF_INET6 : AF_INET, t ? SOCK_DGRAM : SOCK_STREAM,
							  ports[p]);
					struct epoll_event ev = { .events = EPOLLIN, .data.u64 =
						(uint64_t)fd | (uint64_t)t << 32 };

					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
		enter("-");
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {     /* until killed */
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, -1);

		for (int k = 0; k < n; k++) {
			int fd = (int)(evs[k].data.u64 & 0xffffffff);
			bool udp = evs[k].data.u64 >> 32;

			if (udp) {
				char buf[512];
				struct sockaddr_storage from;
				socklen_t fl = sizeof(from);
				ssize_t r = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);

				if (r > 0)
					sendto(fd, buf, (size_t)r, 0, (struct sockaddr *)&from, fl);
			} else {
				int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

				if (c >= 0) {
					(void)!write(c, "!", 1);
					close(c);
				}
			}
		}
	}
}

struct probe {
	int fd;
	bool open, done;
};

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* bind_source FD FAMILY PORT: send from PORT, any address */
static void bind_source(int fd, int family, int port)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;

	if (port <= 0 || port > 65535) {
		fprintf(stderr, "fw_probe: source port %d out of range\n", port);
		exit(2);
	}
	ss.ss_family = (sa_family_t)family;
	if (family == AF_INET)
		a4->sin_port = htons((uint16_t)port);
	else
		a6->sin6_port = htons((uint16_t)port);
	if (bind(fd, (struct sockaddr *)&ss, family == AF_INET ? sizeof(*a4) : sizeof(*a6)) < 0)
		die("bind source port");
}

static int probe(int argc, char **argv)
{
	static struct probe pr[MAX_PROBES];
	int timeout = argc > 2 ? atoi(argv[2]) : 500, ep = epoll_create1(EPOLL_CLOEXEC);
	int sport = argc > 3 ? atoi(argv[3]) : 0;
	char line[512];
	size_t n = 0, pending = 0;
	long deadline;

	while (n < MAX_PROBES && fgets(line, sizeof(line), stdin)) {
		char ns[256], addr[64], proto[8];
		int port;
		struct sockaddr_storage ss = { 0 };
		struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
		socklen_t len;
		bool udp;
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = n };

		if (sscanf(line, "%255s %63s %d %7s", ns, addr, &port, proto) != 4)
			continue;
		udp = !strcmp(proto, "udp");
		if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
			a4->sin_family = AF_INET;
			a4->sin_port = htons((uint16_t)port);
			len = sizeof(*a4);
		} else if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
			a6->sin6_family = AF_INET6;
			a6->sin6_port = htons((uint16_t)port);
			len = sizeof(*a6);
		} else {
			fprintf(stderr, "fw_probe: bad address %s\n", addr);
			return 2;
		}
		enter(ns);
		pr[n].fd = socket(ss.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		enter("-");
		if (pr[n].fd < 0)
			die("socket");
		if (sport)
			bind_source(pr[n].fd, ss.ss_family, sport + (int)n);
		if (connect(pr[n].fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
			pr[n].done = true;          /* refused at once */
		} else {
			if (udp)
				(void)!send(pr[n].fd, "?", 1, 0);
			epoll_ctl(ep, EPOLL_CTL_ADD, pr[n].fd, &ev);
			pending++;
		}
		n++;
	}
	deadline = now_ms() + timeout;
	while (pending && now_ms() < deadline) {
		struct epoll_event evs[64];
		int k = epoll_wait(ep, evs, 64, (int)(deadline - now_ms()));

		for (int i = 0; i < k; i++) {
			struct probe *p = &pr[evs[i].data.u64];
			char c;

			if (p->done)
				continue;
			p->open = recv(p->fd, &c, 1, 0) == 1;
			p->done = true;
			pending--;
			epoll_ctl(ep, EPOLL_CTL_DEL, p->fd, NULL);
		}
	}
	for (size_t i = 0; i < n; i++) {
		printf("%s\n", pr[i].open ? "open" : "closed");
		close(pr[i].fd);
	}
	return 0;
}

int main(int argc, char **argv)
{
	self_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self_ns < 0)
		die("/proc/self/ns/net");
	if (argc >= 3 && !strcmp(argv[1], "serve"))
		serve(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "probe"))
		return probe(argc, argv);
	fprintf(stderr, "usage: fw_probe serve NETNS... -p PORT... | probe TIMEOUT_MS [SPORT] < probes\n");
	return 2;
}
