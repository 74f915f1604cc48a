/* busy.c - micro-benchmark: nat_busy_load, the snapshot of the host's
 * listening sockets that refuses a published port a host process holds (read
 * once per container whose ports are new). Opens L listening TCP and UDP
 * sockets (both families) and C established loopback TCP connections, then
 * times N loads: CPU time (user + system, which is where the kernel walks its
 * socket tables) and wall time per load, the median of 5 rounds. Run it
 * inside a network namespace of its own: unshare --net sh -c 'ip link set lo
 * up && build/test/bench/busy'. Prints "RESULT key value_us" lines too.
 * Usage: busy [N [L [C]]] (default 200 20 200) */
#include "net/nat.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double wall_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static double cpu_us(double *sys)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	*sys = (double)ru.ru_stime.tv_sec * 1e6 + (double)ru.ru_stime.tv_usec;
	return *sys + (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int listener(int family, int type, uint16_t port)
{
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	struct sockaddr_in s4 = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(family, type | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	if (family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, family == AF_INET6 ? (struct sockaddr *)&s6 : (struct sockaddr *)&s4,
		 family == AF_INET6 ? sizeof(s6) : sizeof(s4)) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 128) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 200, l = argc > 2 ? atoi(argv[2]) : 20;
	int c = argc > 3 ? atoi(argv[3]) : 200, conn_ok = 0, srv;
	double cpu[5], sys[5], wall[5];
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(30999),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct err e = { 0 };

	if (n < 1)
		n = 1;
	for (int i = 0; i < l; i++)
		if (listener(AF_INET, SOCK_STREAM, (uint16_t)(20000 + i)) < 0 ||
		    listener(AF_INET6, SOCK_STREAM, (uint16_t)(20000 + i)) < 0 ||
		    listener(AF_INET, SOCK_DGRAM, (uint16_t)(20000 + i)) < 0 ||
		    listener(AF_INET6, SOCK_DGRAM, (uint16_t)(20000 + i)) < 0) {
			perror("busy: listener");
			return 1;
		}
	/* established connections: the table /proc/net/tcp formats line by line */
	if ((srv = listener(AF_INET, SOCK_STREAM, 30999)) < 0) {
		perror("busy: server");
		return 1;
	}
	for (int i = 0; i < c; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			break;
		if (accept4(srv, NULL, NULL, SOCK_CLOEXEC) < 0)
			break;
		conn_ok++;
	}
	for (int r = 0; r < 5; r++) {
		double s0, s1, c0 = cpu_us(&s0), w0 = wall_us();

		for (int i = 0; i < n; i++) {
			struct nat_busy *b;

			if (nat_busy_load(&b, &e) < 0) {
				fprintf(stderr, "busy: %s\n", e.msg);
				return 1;
			}
			nat_busy_free(b);
		}
		wall[r] = (wall_us() - w0) / n;
		cpu[r] = (cpu_us(&s1) - c0) / n;
		sys[r] = (s1 - s0) / n;
	}
	qsort(cpu, 5, sizeof(double), cmp_double);
	qsort(sys, 5, sizeof(double), cmp_double);
	qsort(wall, 5, sizeof(double), cmp_double);
	printf("nat_busy_load with %d listening ports x4 (tcp, tcp6, udp, udp6), %d established"
	       " connections, median of 5 x %d loads:\n", l, conn_ok, n);
	printf("  cpu %.1f us (system %.1f us), wall %.1f us per load\n", cpu[2], sys[2], wall[2]);
	printf("RESULT busy_cpu %.1f\nRESULT busy_sys %.1f\nRESULT busy_wall %.1f\n", cpu[2], sys[2],
	       wall[2]);
	return 0;
}
