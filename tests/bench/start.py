#!/usr/bin/env python3
"""start.py - container start, end to end: from nothing to its published
port answering.

berth: the shipped binary's daemon; write containers.d/wK.ini (busybox
`httpd -f -p 80`, `ports = PORT:80`) and `berth reload`; done when a TCP
connection to the gateway address (a local address of the host) on PORT
succeeds, through berth's DNAT. Then removed (`berth reload --wait`, not timed).
Peer, the same work without a daemon: `netavark setup` (bridge, address,
masquerade, the port, aardvark-dns) of a fresh netns, then `crun run
--detach` of the same root in it (the same namespaces as berth's: pid, mount,
ipc, uts, network; no cgroup limits), done when the published port answers.
That is podman's path without podman and conmon, so less work than a
`podman run`. Also crun alone: `crun run --detach` into a netns whose
network was set up beforehand (not timed), until the container's own port
answers.

run and rm, the commands a docker or podman user types, end to end:
berth: `berth run rK --rootfs ROOT -p PORT:80 -- httpd -f -p 80` (the
shipped binary's CLI: it writes containers.d/rK.ini through its own daemon,
which reloads; the CLI returns once the container runs), done when PORT on
the gateway address answers through berth's DNAT, as above; then
`berth rm -f rK` (the file removed, a reload, the process killed with
SIGKILL; the CLI returns once the container is gone).
Peer: podman 4.3 with its netavark backend: `podman run -d --name pK -p
PORT:80 --network bench --rootfs ROOT httpd -f -p 80`, done when PORT on its
network's gateway address answers through netavark's DNAT; then `podman rm
-f -t 0 pK` (SIGKILL at once). `bench` is a podman network made beforehand
(podman network create: bridge, 10.88.0.0/16, gateway 10.88.0.1, masquerade,
aardvark-dns, as berth's network), with one container left on it
throughout (netavark removes the bridge and stops aardvark-dns with a
network's last container; berth's bridge and DNS stay). ROOT is the same
busybox root (podman's a copy: it makes mount points for /etc/hosts,
resolv.conf and hostname in it). podman does what it does by default
(conmon per container, its seccomp profile, /etc/hosts, resolv.conf,
a k8s-file log), with cgroups off (as berth's containers here, without
limits, and crun above), the vfs storage driver (--rootfs uses none),
nofile/nproc limits of 4096 (its default 1048576 is above this machine's
hard limit), and everything of its own under the work dir: root, runroot,
tmpdir, network config dir, containers.conf, storage.conf, an empty
registries.conf, a private /etc/containers (a policy only), /dev/shm
(libpod's lock) and /var/lib/containers; netavark's run dir, aardvark-dns,
crun's state and the netns mounts live in the sandbox's /run. podman's
bridge, iptables rules and aardvark-dns are in its own "host" netns of the
sandbox; bench.sandboxed() checks, before podman runs, that this process is
in the `unshare --net --mount` sandbox (not the namespaces it was started
in) with /run a tmpfs of its own.
rm is timed from the command's start until it has returned and a
connection to the published port is refused (nothing answers in 1 s
counts too): the container's port is gone as a user sees it; both
commands return after the container's process is gone.

START_REPS (10) of each, interleaved (all five tools in turn), the order
rotating; median.
"""
import errno
import os
import shutil
import socket
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True     # nothing written into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from bench import now, ms, p50, pct, fmt, say  # noqa: E402

bench.sandbox("start")

REPS = int(os.environ.get("START_REPS", "10"))
NETAVARK = "/usr/lib/podman/netavark"
AARDVARK = "/usr/lib/podman/aardvark-dns"


def answers(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(1)
    try:
        s.connect((addr, port))
        return True
    except OSError as ex:
        if ex.errno not in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, None):
            raise
        return False
    finally:
        s.close()


def until_answers(netns, addr, port, t0, timeout=30):
    bench.setns(netns)
    t1 = bench.wait_for(lambda: answers(addr, port), timeout, 0.0005)
    if t1 is None:
        raise RuntimeError("%s:%d did not answer in %d s" % (addr, port, timeout))
    return ms(t1 - t0)


def cgroup2():
    """crun refuses a hybrid cgroup hierarchy even with cgroups off: in this
    sandbox's mount namespace, /sys/fs/cgroup becomes cgroup2 (no tool here
    makes a cgroup in it: cgroups are off for crun and podman, and berth's
    containers here have no limits)."""
    if os.path.exists("/sys/fs/cgroup/unified") and \
            not os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        subprocess.run(["mount", "-t", "cgroup2", "none", "/sys/fs/cgroup"], check=True)


def until_closed(netns, addr, port, t0, timeout=30):
    """The published port no longer answers (refused, or nothing in 1 s)."""
    bench.setns(netns)
    t1 = bench.wait_for(lambda: not answers(addr, port), timeout, 0.0005)
    if t1 is None:
        raise RuntimeError("%s:%d still answers after %d s" % (addr, port, timeout))
    return ms(t1 - t0)


def run_cmd(argv, what, env=None):
    """A user's command (timed by the caller): its output, or an error."""
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, env=env)
    if r.returncode:
        raise RuntimeError("%s: exit %d: %s" % (what, r.returncode, r.stdout.decode(errors="replace")))
    return r.stdout.decode(errors="replace")


class BerthStart:
    name = "berth"

    def __init__(self, work, root):
        self.root = root
        self.d = bench.Berth(os.path.join(work, "b"), bench.netns_add("bh-berth"))
        self.d.start()

    def once(self, k):
        port = 8000 + k
        t0 = now()
        self.d.put("w%d" % k, "[container]\nrootfs = %s\ncommand = httpd -f -p 80\nports = %d:80\n"
                   "stop_timeout = 0\n" % (self.root, port))
        self.d.cli("reload")
        t = until_answers(self.d.netns, "10.88.0.1", port, t0)
        self.d.remove("w%d" % k)
        self.d.cli("reload", "--wait")
        return t

    def close(self):
        self.d.stop()


class BerthRun:
    """berth run NAME --rootfs ROOT -p PORT:80 -- httpd -f -p 80, then
    berth rm -f NAME, with the shipped binary's CLI and its own daemon."""
    name = "berth run"

    def __init__(self, work, root):
        self.root = root
        self.d = bench.Berth(os.path.join(work, "r"), bench.netns_add("bh-run"))
        # as on a host: a closed port's RST to a local address comes over lo
        # (down, a connection there would hang rather than be refused)
        bench.sh("ip", "-n", "bh-run", "link", "set", "lo", "up")
        self.d.start()

    def once(self, k):
        port = 8000 + k
        name = "r%d" % k
        argv = [bench.BIN, "-c", self.d.etc]
        bench.setns(self.d.netns)
        t0 = now()
        run_cmd(argv + ["run", name, "--rootfs", self.root, "-p", "%d:80" % port, "--",
                        "httpd", "-f", "-p", "80"], "berth run")
        t_run = until_answers(self.d.netns, "10.88.0.1", port, t0)
        bench.setns(self.d.netns)
        t0 = now()
        run_cmd(argv + ["rm", "-f", name], "berth rm -f")
        t_rm = until_closed(self.d.netns, "10.88.0.1", port, t0)
        return {"berth run": t_run, "berth rm -f": t_rm}

    def close(self):
        self.d.stop()


class PodmanRun:
    """podman run -d -p PORT:80 --network bench --rootfs ROOT httpd -f -p 80,
    then podman rm -f -t 0: podman 4.3, its netavark backend, storage (vfs)
    and everything else of its own under work/p (as
    tests/integration/cni_podman.sh, with netavark for CNI)."""
    name = "podman run"

    def __init__(self, work, root):
        for p in ("podman", "conmon", NETAVARK, AARDVARK):
            if not (shutil.which(p) or os.access(p, os.X_OK)):
                raise RuntimeError("%s is not installed (mk/deps.sh bench)" % p)
        # podman sets up networks (netavark: bridge, iptables) and mounts on
        # its own: only inside the sandbox's namespaces
        bench.sandboxed()
        cgroup2()
        self.t = t = os.path.join(work, "p")
        os.makedirs(os.path.join(t, "etc"))
        # its own copy of the root: podman makes mount points in it (etc/hosts,
        # etc/resolv.conf, etc/hostname, etc/mtab)
        self.root = os.path.join(t, "rootfs")
        bench.sh("cp", "-a", root, self.root)
        with open(os.path.join(t, "containers.conf"), "w") as f:
            # the process limits podman asks for by default (nofile and nproc
            # at 1048576) are above this machine's hard limits; 10.88.0.0/16,
            # the default network's, is left for the bench network
            f.write('[containers]\ncgroups = "disabled"\n'
                    'default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]\n'
                    '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
                    'events_logfile_path = "%s/events.log"\ntmp_dir = "%s/libpod"\n'
                    'volume_path = "%s/volumes"\nhelper_binaries_dir = ["%s"]\n'
                    '[network]\nnetwork_backend = "netavark"\nnetwork_config_dir = "%s/networks"\n'
                    'default_subnet = "10.99.0.0/16"\n'
                    % (t, t, t, os.path.dirname(NETAVARK), t))
        with open(os.path.join(t, "storage.conf"), "w") as f:
            f.write('[storage]\ndriver = "vfs"\nrunroot = "%s/runroot"\ngraphroot = "%s/root"\n' % (t, t))
        with open(os.path.join(t, "registries.conf"), "w") as f:
            f.write("")
        self.env = dict(os.environ, CONTAINERS_CONF=os.path.join(t, "containers.conf"),
                        CONTAINERS_STORAGE_CONF=os.path.join(t, "storage.conf"),
                        CONTAINERS_REGISTRIES_CONF=os.path.join(t, "registries.conf"), TMPDIR=t)
        # podman's fixed paths, private to this sandbox: /etc/containers (a
        # policy only: the machine's config is never read), /dev/shm (libpod's
        # lock), the machine's podman storage hidden; /run (netavark's run
        # dir, aardvark-dns, crun, /run/netns) is the sandbox's tmpfs
        with open(os.path.join(t, "etc", "policy.json"), "w") as f:
            f.write('{"default":[{"type":"insecureAcceptAnything"}]}')
        if os.path.isdir("/etc/containers"):
            bench.sh("mount", "--bind", os.path.join(t, "etc"), "/etc/containers")
        bench.sh("mount", "-t", "tmpfs", "-o", "mode=1777", "bench-shm", "/dev/shm")
        if os.path.isdir("/var/lib/containers"):
            bench.sh("mount", "-t", "tmpfs", "-o", "mode=0700", "bench-varlib", "/var/lib/containers")
        self.host = bench.netns_add("bh-podman")
        bench.sh("ip", "-n", "bh-podman", "link", "set", "lo", "up")
        self.argv = ["podman", "--root", os.path.join(t, "root"), "--runroot", os.path.join(t, "runroot"),
                     "--storage-driver", "vfs", "--network-backend", "netavark",
                     "--network-config-dir", os.path.join(t, "networks"),
                     "--tmpdir", os.path.join(t, "libpod")]
        got = self.podman("info", "--format", "{{.Host.NetworkBackend}} {{.Store.GraphDriverName}}").split()
        if got != ["netavark", "vfs"]:
            raise RuntimeError("podman info: backend and storage %s, not netavark vfs" % got)
        # as berth's: a bridge network with DNS (aardvark-dns), masquerade
        self.podman("network", "create", "--subnet", "10.88.0.0/16", "--gateway", "10.88.0.1",
                    "bench")
        # one container stays on the network throughout, as berth's bridge and
        # DNS stay: netavark removes the bridge and stops aardvark-dns with the
        # network's last container (and it is podman's first run: warm)
        self.podman("run", "-d", "--name", "anchor", "--network", "bench", "--rootfs", self.root,
                    "sleep", "1000000")
        pid = int(self.podman("inspect", "anchor", "--format", "{{.State.Pid}}"))
        with open("/proc/%d/cgroup" % pid) as a, open("/proc/self/cgroup") as b:
            if a.read() != b.read():
                raise RuntimeError("podman put its container in a cgroup of its own")

    def podman(self, *args, check=True):
        bench.setns(self.host)
        r = subprocess.run(self.argv + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=self.env)
        if check and r.returncode:
            raise RuntimeError("podman %s: %s" % (" ".join(args), r.stderr.decode(errors="replace")))
        return r.stdout.decode(errors="replace")

    def once(self, k):
        port = 8000 + k
        name = "p%d" % k
        bench.setns(self.host)
        t0 = now()
        run_cmd(self.argv + ["run", "-d", "--name", name, "-p", "%d:80" % port, "--network", "bench",
                             "--rootfs", self.root, "httpd", "-f", "-p", "80"], "podman run -d", self.env)
        t_run = until_answers(self.host, "10.88.0.1", port, t0)
        bench.setns(self.host)
        t0 = now()
        run_cmd(self.argv + ["rm", "-f", "-t", "0", name], "podman rm -f -t 0", self.env)
        t_rm = until_closed(self.host, "10.88.0.1", port, t0)
        return {"podman run": t_run, "podman rm": t_rm}

    def close(self):
        self.podman("rm", "-fa", "-t", "0", check=False)
        # netavark stops aardvark-dns with the network's last container
        try:
            with open("/run/containers/networks/aardvark-dns/aardvark.pid") as f:
                os.kill(int(f.read()), 15)
        except (OSError, ValueError):
            pass


class CrunStart:
    """netavark setup + crun run -d (net=True), or crun run -d alone."""

    def __init__(self, work, root, net):
        for p in (NETAVARK, AARDVARK, shutil.which("crun") or "crun"):
            if not os.access(p, os.X_OK):
                raise RuntimeError("%s is not installed (mk/deps.sh bench)" % p)
        cgroup2()
        self.net = net
        self.name = "netavark + crun" if net else "crun alone"
        tag = "nv" if net else "cr"
        self.tag = tag
        self.work = os.path.join(work, tag)
        self.state = os.path.join(self.work, "crun")
        self.conf = os.path.join(self.work, "netavark")
        os.makedirs(self.state)
        os.makedirs(self.conf)
        self.root = root
        self.host = bench.netns_add("bh-" + tag)
        self.live = set()
        # one container stays on the network throughout, as berth's bridge
        # and DNS stay: netavark removes the bridge and stops aardvark-dns
        # with the network's last container
        self.netavark("setup", bench.netns_add(tag + "-anchor"), 0, 7999)

    def options(self, k, port):
        return {"container_id": "%064x" % (0x5000 + k), "container_name": "%s%d" % (self.tag, k),
                "port_mappings": [{"host_ip": "", "container_port": 80, "host_port": port,
                                   "range": 1, "protocol": "tcp"}],
                "networks": {"bench": {"static_ips": ["10.88.1.%d" % (k % 250 + 2) if k else "10.88.2.2"],
                                       "aliases": ["%s%d" % (self.tag, k)], "interface_name": "eth0"}},
                "network_info": {"bench": {
                    "name": "bench", "id": "b" * 64, "driver": "bridge", "network_interface": "nv0",
                    "subnets": [{"subnet": "10.88.0.0/16", "gateway": "10.88.0.1"}],
                    "ipv6_enabled": False, "internal": False, "dns_enabled": True,
                    "ipam_options": {"driver": "host-local"}}}}

    def netavark(self, cmd, ns, k, port):
        path = os.path.join(self.work, "opts.json")
        bench.write_json(path, self.options(k, port))
        bench.setns(self.host)
        with open(path) as f:
            r = subprocess.run([NETAVARK, "--config", self.conf, "-a", AARDVARK, cmd, ns], stdin=f,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode:
            raise RuntimeError("netavark %s: %s" % (cmd, r.stdout.decode(errors="replace")))

    def once(self, k):
        port = 8000 + k
        cid = "%s%d" % (self.tag, k)
        ns = bench.netns_add("%s-c%d" % (self.tag, k))
        bundle = os.path.join(self.work, "bundle%d" % k)
        os.makedirs(bundle)
        bench.write_json(os.path.join(bundle, "config.json"),
                         bench.oci_spec(self.root, ["httpd", "-f", "-p", "80"], ns))
        if not self.net:
            self.netavark("setup", ns, k, port)         # not timed
        t0 = now()
        if self.net:
            self.netavark("setup", ns, k, port)
        # the container inherits crun's stdio: a file, never a pipe we wait on
        with open(os.path.join(bundle, "stderr"), "w+b") as err:
            r = subprocess.run(["crun", "--root=" + self.state, "--cgroup-manager=disabled", "run",
                                "--detach", "--bundle", bundle, cid],
                               stdin=subprocess.DEVNULL, stdout=err, stderr=err)
            self.live.add(cid)
            if r.returncode:
                err.seek(0)
                raise RuntimeError("crun run: %s" % err.read().decode(errors="replace"))
        if self.net:
            t = until_answers(self.host, "10.88.0.1", port, t0)
        else:
            t = until_answers(self.host, "10.88.1.%d" % (k % 250 + 2), 80, t0)
        bench.crun(self.state, "kill", cid, "KILL", check=False)
        bench.wait_for(lambda: "stopped" in subprocess.run(
            ["crun", "--root=" + self.state, "state", cid], stdout=subprocess.PIPE).stdout.decode(), 5, 0.01)
        bench.crun(self.state, "delete", "-f", cid, check=False)
        self.live.discard(cid)
        self.netavark("teardown", ns, k, port)
        bench.sh("ip", "netns", "del", "%s-c%d" % (self.tag, k))
        return t

    def close(self):
        self.netavark("teardown", "/run/netns/%s-anchor" % self.tag, 0, 7999)
        for cid in self.live:
            bench.crun(self.state, "kill", cid, "KILL", check=False)
            bench.crun(self.state, "delete", "-f", cid, check=False)
        pidf = os.path.join(self.conf, "aardvark-dns", "aardvark.pid")
        try:
            with open(pidf) as f:
                os.kill(int(f.read()), 15)
        except (OSError, ValueError):
            pass


def main():
    work = tempfile.mkdtemp(prefix="berth-bench-start.")
    tools = []
    try:
        root = bench.rootfs(work)
        if not root:
            say("   start: no busybox rootfs (busybox-static)")
            return
        tools.append(BerthStart(work, root))
        tools.append(BerthRun(work, root))
        for net in (True, False):
            try:
                tools.append(CrunStart(work, root, net))
            except Exception as ex:
                say("   %s: left out: %s" % ("netavark + crun" if net else "crun", ex))
        try:
            tools.append(PodmanRun(work, root))
        except Exception as ex:
            say("   podman run: left out: %s" % ex)
        load0 = bench.load()
        times = {}
        for k in range(1, REPS + 1):
            order = tools[k % len(tools):] + tools[:k % len(tools)]
            for t in list(order):
                try:
                    got = t.once(k)
                    for what, v in (got.items() if isinstance(got, dict) else [(t.name, got)]):
                        times.setdefault(what, []).append(v)
                except Exception as ex:
                    say("   %s: left out after a failure: %s" % (t.name, ex))
                    tools.remove(t)
                    if t.name.startswith("berth"):
                        raise
        load1 = bench.load()
        b = p50(times["berth"])
        say("container start until its published port answers, ms, median (p90) of %d, interleaved"
            " (load %s -> %s)" % (REPS, load0, load1))
        for t in tools:
            if t.name not in ("berth", "netavark + crun", "crun alone"):
                continue
            v = times[t.name]
            say("   %-44s %-16s %s" % (
                {"berth": "berth (file + reload)", "netavark + crun": "netavark setup + crun run -d",
                 "crun alone": "crun run -d alone (network made beforehand)"}[t.name],
                "%s (%s)" % (fmt(p50(v)), fmt(pct(v, 90))),
                "" if t.name == "berth" else "peer/berth %s" % bench.ratio(p50(v), b)))
        nv = p50(times.get("netavark + crun", []))
        cr = p50(times.get("crun alone", []))
        bench.row("container start, file to port answering (ms)", fmt(b),
                  "netavark+crun %s; crun alone %s" % (fmt(nv), fmt(cr)),
                  "%s / %s" % (bench.ratio(nv, b), bench.ratio(cr, b)), "-", "%s-%s" % (load0, load1))
        for what, bk, pk, peer, until in (
                ("run", "berth run", "podman run", "podman run -d", "the published port answers"),
                ("rm -f", "berth rm -f", "podman rm", "podman rm -f -t 0",
                 "it has returned and the port no longer answers")):
            say("container %s, from the command until %s, ms, median (p90) of %d, interleaved"
                " (load %s -> %s)"
                % (what, until, REPS, load0, load1))
            bv, pv = times.get(bk, []), times.get(pk, [])
            say("   %-44s %-16s" % ("berth " + what + " (shipped binary, CLI + daemon)",
                                    "%s (%s)" % (fmt(p50(bv)), fmt(pct(bv, 90)))))
            if pv:
                say("   %-44s %-16s %s" % (peer + " (netavark, aardvark-dns)",
                                           "%s (%s)" % (fmt(p50(pv)), fmt(pct(pv, 90))),
                                           "peer/berth %s" % bench.ratio(p50(pv), p50(bv))))
            bench.row("container %s, command to port %s (ms)" % (
                what, "answering" if what == "run" else "closed"), fmt(p50(bv)),
                "%s (netavark) %s" % (peer, fmt(p50(pv))), bench.ratio(p50(pv), p50(bv)), "-",
                "%s-%s" % (load0, load1))
    finally:
        for t in tools:
            try:
                t.close()
            except Exception as ex:
                say("   %s: close: %s" % (t.name, ex))
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
