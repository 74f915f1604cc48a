/* config_limits.c - what a valid configuration still asks of the host: the
 * file descriptors the daemon holds for it, against RLIMIT_NOFILE. */
#include "runtime/config/config_int.h"

#include <stdio.h>

/*
 * The descriptors of a running daemon, counted from the code. Each number is
 * the most that part holds at once; keep them in step with the places named
 * (tests/unit/test_config_limits.c checks the ones it can reach).
 *
 * base: stdin, stdout, stderr (3); the loop's epoll and the signalfd
 * (runtime/daemon.c, 2); the state directory's lock (1); SQLite's state.db,
 * -wal and -shm (store/db.c, 3); rtnetlink and the host's netns (net/net.c,
 * 2); nf_tables requests and events (net/nat.c, 2); the control socket
 * (runtime/ctl/control.c, 1); the resolv.conf watcher's inotify
 * (runtime/resolv_watch.c, 1); and one of each short-lived one: a
 * container's lock and a file being written while it starts
 * (runtime/ctr/container.c, 2), a netns and its rtnetlink socket during an
 * attach (net/net.c, 2), a log and its rotated half being read
 * (runtime/ctr/log.c, 2), the systemd notify socket (1).
 */
#define FDS_BASE 25
/* Control clients: CTL_MAX_CONNS (runtime/ctl/ctl.h); at the limit the one
 * idle longest is closed, so there are never more. */
#define FDS_CONTROL 64
/* [remote]: the TLS listener and REMOTE_MAX_CONNS clients (runtime/ctl/tls.h). */
#define FDS_REMOTE (1 + 16)
/* DNS (dns/server.c): a socket per forwarded query in flight (max_pending,
 * 512 by default), TCP clients (tcp_max_conns, 64), and a probe socket per
 * upstream that is down (added per upstream below). */
#define FDS_DNS (512 + 64)
/* A UDP and a TCP listener per DNS address: each network's gateway (and
 * gateway6), and 127.0.0.53 with [dns] host = yes. */
#define FDS_PER_LISTEN_ADDR 2
/* A container: its monitor's pidfd for the monitor's whole life, and the
 * pipe of its start report while it starts (all may start at once). */
#define FDS_PER_CONTAINER 2

void config_fds(const struct config *c, struct config_fds *out)
{
	unsigned long addrs = c->dns.host ? 1 : 0;

	for (size_t i = 0; i < c->n_networks; i++)
		addrs += c->networks[i].has_v6 ? 2 : 1;
	out->base = FDS_BASE;
	out->control = FDS_CONTROL + (c->remote.enabled ? FDS_REMOTE : 0);
	out->dns = FDS_DNS + c->dns.n_upstreams + FDS_PER_LISTEN_ADDR * addrs;
	out->containers = FDS_PER_CONTAINER * (unsigned long)c->n_containers;
	out->total = out->base + out->control + out->dns + out->containers;
}

void config_warnings(const struct config *c, unsigned long long nofile,
		     struct config_errors *warns)
{
	struct cfg_ctx ctx = { .errs = warns };
	struct config_fds f;

	config_fds(c, &f);
	if (nofile && f.total > nofile)
		cfg_error(&ctx, "", 0, 0, 0, "the daemon may need %lu file descriptors (%lu "
			  "for %zu container%s, %lu for DNS, %lu for control clients, %lu of "
			  "its own), more than the limit of %llu (RLIMIT_NOFILE): past it new "
			  "containers fail and DNS over TCP stops; raise the hard limit "
			  "(LimitNOFILE= in systemd, ulimit -Hn): the daemon raises its soft "
			  "limit to it", f.total, f.containers, c->n_containers,
			  c->n_containers == 1 ? "" : "s", f.dns, f.control, f.base, nofile);
}
