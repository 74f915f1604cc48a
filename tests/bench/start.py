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
answers. START_REPS (10) of each, interleaved, the order rotating; median.
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


class CrunStart:
    """netavark setup + crun run -d (net=True), or crun run -d alone."""

    def __init__(self, work, root, net):
        for p in (NETAVARK, AARDVARK, shutil.which("crun") or "crun"):
            if not os.access(p, os.X_OK):
                raise RuntimeError("%s is not installed (mk/deps.sh bench)" % p)
        if os.path.exists("/sys/fs/cgroup/unified"):
            # crun refuses a hybrid cgroup hierarchy even with cgroups off:
            # in this sandbox's mount namespace, /sys/fs/cgroup is cgroup2
            if not os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
                subprocess.run(["mount", "-t", "cgroup2", "none", "/sys/fs/cgroup"], check=True)
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
        for net in (True, False):
            try:
                tools.append(CrunStart(work, root, net))
            except Exception as ex:
                say("   %s: left out: %s" % ("netavark + crun" if net else "crun", ex))
        load0 = bench.load()
        times = {t.name: [] for t in tools}
        for k in range(1, REPS + 1):
            order = tools[k % len(tools):] + tools[:k % len(tools)]
            for t in list(order):
                try:
                    times[t.name].append(t.once(k))
                except Exception as ex:
                    say("   %s: left out after a failure: %s" % (t.name, ex))
                    tools.remove(t)
                    if t.name == "berth":
                        raise
        load1 = bench.load()
        b = p50(times["berth"])
        say("container start until its published port answers, ms, median (p90) of %d, interleaved"
            " (load %s -> %s)" % (REPS, load0, load1))
        for t in tools:
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
    finally:
        for t in tools:
            try:
                t.close()
            except Exception as ex:
                say("   %s: close: %s" % (t.name, ex))
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
