#!/usr/bin/env python3
"""netadd.py - container network ADD and DEL, end to end, at N = 20, 100, 300.

berth: the shipped binary's daemon. ADD = write containers.d/cK.ini (one
published port, the default network: bridge, an address from berth's IPAM,
masquerade, a DNS name) and run `berth reload`; the network is ready when
the reload returns (it returns once networks, DNS and the firewall are
applied), the process runs when its first line ("up") is in its log (read
from the file, so that polling does not load the daemon). DEL = remove the
file and `berth reload`: the reply comes with the stop under way; the
network is gone when the container's netns is (its address is released
with it); every other DEL is timed as `berth reload --wait` instead (until
the process is gone). Daemon CPU: the daemon's own CPU time
(/proc/PID/task/*/schedstat) from the file write until the daemon is idle
again after the process runs (after a DEL: after the converge that follows
the stop).

berth CNI: the same binary as a CNI plugin (CNI_COMMAND set), exec'd the CNI
  way by this script as a runtime does, against a second berth daemon in its
  own host namespace: ADD = plugin exec + `cni add` round trip (IPAM in the
  store, veth into the runtime's netns, one port, masquerade, a DNS name from
  K8S_POD_NAME, firewall); DEL = plugin exec + `cni del` (veth, port, name,
  address gone when it returns). Its netns is made beforehand like the peers'.

Peers, the same features, each in its own host network namespace:
  CNI chain: /usr/lib/cni/bridge (isGateway, ipMasq, host-local IPAM on the
    same /16) then portmap (one port), run the CNI way by a driver (this
    script) as a runtime does: env CNI_*, config on stdin, prevResult passed
    on; DEL runs the chain backwards. No DNS (Debian ships no dnsname plugin).
  netavark + aardvark-dns: `netavark setup NETNS` with the container's network
    options (bridge, one port mapping, dns_enabled: aardvark-dns answers its
    name); DEL: `netavark teardown`. netavark takes the address from its
    caller (podman allocates it in its own database): that IPAM is not timed.
The peers' netns is made beforehand by `ip netns add` and not timed (berth's
figure includes making it); the peers start no process.

Interleaved: each tool adds (then deletes) BATCH containers in turn, the
order rotating, so all see the same load. NETADD_MAX (300), NETADD_ROUNDS
(1), NETADD_BATCH (10). Writes build/bench/netadd.tsv and netadd.svg.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True     # nothing written into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from bench import now, ms, p50, pct, fmt, say  # noqa: E402

bench.sandbox("netadd")

MAX = int(os.environ.get("NETADD_MAX", "300"))
ROUNDS = int(os.environ.get("NETADD_ROUNDS", "1"))
BATCH = int(os.environ.get("NETADD_BATCH", "10"))
MARKS = [n for n in (20, 100, 300) if n <= MAX] or [MAX]
CNI = "/usr/lib/cni"
NETAVARK = "/usr/lib/podman/netavark"
AARDVARK = "/usr/lib/podman/aardvark-dns"


def addr(k):
    """The k-th container's address when the caller picks it (netavark)."""
    return "10.88.%d.%d" % ((k + 1) // 256, (k + 1) % 256)


class BerthTool:
    name = "berth"

    def __init__(self, work, rootfs):
        self.rootfs = rootfs
        self.d = bench.Berth(os.path.join(work, "berth"), bench.netns_add("bh-berth"))
        self.d.start()
        self.note = None

    def add(self, rnd, k):
        d = self.d
        name = "r%dc%d" % (rnd, k)
        log = d.log_path(name)
        bench.setns(d.netns)
        c0 = bench.cpu_ns(d.pid)
        t0 = now()
        d.put(name, "[container]\nrootfs = %s\ncommand = sh -c \"echo up; exec sleep 1000000\"\n"
              "ports = %d:80\nstop_timeout = 0\n" % (self.rootfs, 20000 + k))
        d.cli("reload")
        t1 = now()
        t2 = bench.wait_for(lambda: os.path.exists(log) and os.path.getsize(log) > 0, 30)
        if t2 is None:
            raise RuntimeError("container %s did not start: %s" % (name, d.cli("ps", check=False)))
        return {"net": ms(t1 - t0), "run": ms(t2 - t0), "cpu": (self.settled() - c0) / 1e6}

    def settled(self):
        """The daemon's CPU time once it is idle again (what follows the
        reply, the start report or a converge after a stop, counts too)."""
        c = bench.cpu_ns(self.d.pid)
        while True:
            time.sleep(0.01)
            c1 = bench.cpu_ns(self.d.pid)
            if c1 == c:
                return c
            c = c1

    def delete(self, rnd, k):
        d = self.d
        name = "r%dc%d" % (rnd, k)
        ns = os.path.join(d.state, "netns", name)
        c0 = bench.cpu_ns(d.pid)
        t0 = now()
        d.remove(name)
        if k % 2:
            d.cli("reload", "--wait")
            t1 = now()
            if bench.wait_for(lambda: not os.path.exists(ns), 30) is None:
                raise RuntimeError("the netns of %s stayed" % name)
            return {"wait": ms(t1 - t0), "cpu": (self.settled() - c0) / 1e6}
        d.cli("reload")
        t1 = now()
        t2 = bench.wait_for(lambda: not os.path.exists(ns), 30)
        if t2 is None:
            raise RuntimeError("the netns of %s stayed" % name)
        if k % 50 == 0 and name in d.cli("ip", "ls"):
            self.note = "warning: %s's address was still allocated after its netns went" % name
        return {"net": ms(t1 - t0), "gone": ms(t2 - t0), "cpu": (self.settled() - c0) / 1e6}

    def close(self):
        self.d.stop()


class BerthCniTool:
    name = "berth CNI"

    def __init__(self, work, rootfs):
        self.d = bench.Berth(os.path.join(work, "berth-cni"), bench.netns_add("bh-bcni"))
        self.d.start()
        self.sock = os.path.join(self.d.run, "berth.sock")
        self.conf = {"cniVersion": "1.1.0", "name": "bench", "type": "berth", "network": "default",
                     "socket": self.sock, "capabilities": {"portMappings": True}}
        self.note = None

    def plugin(self, cmd, cid, k):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CNI_COMMAND": cmd,
               "CNI_CONTAINERID": cid, "CNI_NETNS": "/run/netns/bc-" + cid, "CNI_IFNAME": "eth0",
               "CNI_PATH": os.path.dirname(bench.BIN), "CNI_ARGS": "K8S_POD_NAME=" + cid}
        conf = dict(self.conf, runtimeConfig={"portMappings": [
            {"hostPort": 20000 + k, "containerPort": 80, "protocol": "tcp"}]})
        t0 = now()
        r = subprocess.run([bench.BIN], input=bench.json.dumps(conf).encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        t1 = now()
        if r.returncode:
            raise RuntimeError("berth CNI %s %s: %s" % (cmd, cid, r.stdout.decode(errors="replace")))
        return ms(t1 - t0)

    def add(self, rnd, k):
        cid = "r%dc%d" % (rnd, k)
        bench.netns_add("bc-" + cid)
        bench.setns(self.d.netns)
        c0 = bench.cpu_ns(self.d.pid)
        t = self.plugin("ADD", cid, k)
        return {"net": t, "cpu": (bench.cpu_ns(self.d.pid) - c0) / 1e6}

    def delete(self, rnd, k):
        cid = "r%dc%d" % (rnd, k)
        bench.setns(self.d.netns)
        t = self.plugin("DEL", cid, k)
        bench.sh("ip", "netns", "del", "bc-" + cid)
        return {"net": t}

    def close(self):
        self.d.stop()


class CniTool:
    name = "CNI"

    def __init__(self, work, rootfs):
        for p in ("bridge", "host-local", "portmap"):
            if not os.access(os.path.join(CNI, p), os.X_OK):
                raise RuntimeError("%s/%s is not installed (containernetworking-plugins)" % (CNI, p))
        self.netns = bench.netns_add("bh-cni")
        self.bridge = {"cniVersion": "1.0.0", "name": "bench", "type": "bridge", "bridge": "cni0",
                       "isGateway": True, "ipMasq": True,
                       "ipam": {"type": "host-local", "dataDir": os.path.join(work, "host-local"),
                                "ranges": [[{"subnet": "10.88.0.0/16"}]]}}
        self.portmap = {"cniVersion": "1.0.0", "name": "bench", "type": "portmap",
                        "capabilities": {"portMappings": True}, "snat": True}
        self.results = {}
        self.note = None

    def plugin(self, kind, cmd, cid, ns, conf):
        env = dict(os.environ, CNI_COMMAND=cmd, CNI_CONTAINERID=cid, CNI_NETNS=ns,
                   CNI_IFNAME="eth0", CNI_PATH=CNI)
        r = subprocess.run([os.path.join(CNI, kind)], input=bench.json.dumps(conf).encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        if r.returncode:
            raise RuntimeError("CNI %s %s %s: %s" % (kind, cmd, cid, r.stdout.decode(errors="replace")))
        return bench.json.loads(r.stdout) if cmd == "ADD" else None

    def add(self, rnd, k):
        cid = "r%dc%d" % (rnd, k)
        ns = bench.netns_add("cni-" + cid)
        bench.setns(self.netns)
        t0 = now()
        res = self.plugin("bridge", "ADD", cid, ns, self.bridge)
        pm = dict(self.portmap, prevResult=res,
                  runtimeConfig={"portMappings": [{"hostPort": 20000 + k, "containerPort": 80,
                                                   "protocol": "tcp"}]})
        res = self.plugin("portmap", "ADD", cid, ns, pm)
        t1 = now()
        self.results[cid] = res
        return {"net": ms(t1 - t0)}

    def delete(self, rnd, k):
        cid = "r%dc%d" % (rnd, k)
        ns = "/run/netns/cni-" + cid
        res = self.results.pop(cid)
        bench.setns(self.netns)
        t0 = now()
        self.plugin("portmap", "DEL", cid, ns,
                    dict(self.portmap, prevResult=res,
                         runtimeConfig={"portMappings": [{"hostPort": 20000 + k, "containerPort": 80,
                                                          "protocol": "tcp"}]}))
        self.plugin("bridge", "DEL", cid, ns, dict(self.bridge, prevResult=res))
        t1 = now()
        bench.sh("ip", "netns", "del", "cni-" + cid)
        return {"net": ms(t1 - t0)}

    def close(self):
        pass


class NetavarkTool:
    name = "netavark"

    def __init__(self, work, rootfs):
        for p in (NETAVARK, AARDVARK):
            if not os.access(p, os.X_OK):
                raise RuntimeError("%s is not installed (mk/deps.sh bench: netavark aardvark-dns)" % p)
        self.netns = bench.netns_add("bh-nv")
        self.conf = os.path.join(work, "netavark")
        os.makedirs(self.conf)
        self.opts = os.path.join(work, "nv-opts.json")
        self.note = None

    def options(self, rnd, cid, k):
        return {
            "container_id": "%064x" % (0xbe000000 + rnd * 100000 + k),
            "container_name": cid,
            "port_mappings": [{"host_ip": "", "container_port": 80, "host_port": 20000 + k,
                               "range": 1, "protocol": "tcp"}],
            "networks": {"bench": {"static_ips": [addr(k)], "aliases": [cid],
                                   "interface_name": "eth0"}},
            "network_info": {"bench": {
                "name": "bench", "id": "b" * 64, "driver": "bridge", "network_interface": "nv0",
                "subnets": [{"subnet": "10.88.0.0/16", "gateway": "10.88.0.1"}],
                "ipv6_enabled": False, "internal": False, "dns_enabled": True,
                "ipam_options": {"driver": "host-local"}}},
        }

    def run(self, cmd, rnd, cid, k):
        bench.write_json(self.opts, self.options(rnd, cid, k))
        with open(self.opts, "rb") as f:
            t0 = now()
            r = subprocess.run([NETAVARK, "--config", self.conf, "-a", AARDVARK, cmd,
                                "/run/netns/nv-" + cid], stdin=f, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
            t1 = now()
        if r.returncode:
            raise RuntimeError("netavark %s %s: %s" % (cmd, cid, r.stdout.decode(errors="replace")))
        return ms(t1 - t0)

    def add(self, rnd, k):
        cid = "r%dc%d" % (rnd, k)
        bench.netns_add("nv-" + cid)
        bench.setns(self.netns)
        return {"net": self.run("setup", rnd, cid, k)}

    def delete(self, rnd, k):
        cid = "r%dc%d" % (rnd, k)
        bench.setns(self.netns)
        t = self.run("teardown", rnd, cid, k)
        bench.sh("ip", "netns", "del", "nv-" + cid)
        return {"net": t}

    def aardvark_pid(self):
        try:
            with open(os.path.join(self.conf, "aardvark-dns", "aardvark.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def close(self):
        pid = self.aardvark_pid()
        if pid:
            try:
                os.kill(pid, 15)
            except OSError:
                pass


def main():
    work = tempfile.mkdtemp(prefix="berth-bench-netadd.")
    tools = []
    try:
        root = bench.rootfs(work)
        if not root:
            say("   netadd: no busybox rootfs (busybox-static)")
            return
        for cls in (BerthTool, BerthCniTool, CniTool, NetavarkTool):
            try:
                tools.append(cls(work, root))
            except Exception as ex:  # a missing peer is reported, not fatal
                say("   %s: left out: %s" % (cls.name, ex))
        if not tools or tools[0].name != "berth":
            say("   netadd: berth did not start")
            return
        run(work, tools)
    finally:
        for t in tools:
            try:
                t.close()
            except Exception as ex:
                say("   %s: close: %s" % (t.name, ex))
        shutil.rmtree(work, ignore_errors=True)


def timed_ns_add():
    """What `ip netns add` (which the peers' figures leave out) costs, p50 ms."""
    t = []
    for i in range(10):
        t0 = now()
        bench.sh("ip", "netns", "add", "probe%d" % i)
        t.append(ms(now() - t0))
    for i in range(10):
        bench.sh("ip", "netns", "del", "probe%d" % i)
    return p50(t)


def run(work, tools):
    # samples[tool][op] = list of (k, {what: ms})
    samples = {t.name: {"add": [], "del": []} for t in tools}
    load0 = bench.load()
    t_start = time.monotonic()
    for rnd in range(ROUNDS):
        turn = 0
        for op in ("add", "del"):
            k = 1
            while k <= MAX:
                batch = range(k, min(MAX, k + BATCH - 1) + 1)
                order = tools[turn % len(tools):] + tools[:turn % len(tools)]
                turn += 1
                for t in list(order):
                    try:
                        for j in batch:     # DEL: oldest first
                            r = t.add(rnd, j) if op == "add" else t.delete(rnd, j)
                            n = j if op == "add" else MAX - j + 1
                            samples[t.name][op].append((n, r))
                    except Exception as ex:
                        say("   %s: left out after a failure: %s" % (t.name, ex))
                        tools.remove(t)
                        if t.name == "berth":
                            raise
                k += BATCH
            if op == "add" and rnd == 0:
                b = tools[0].d
                c0 = bench.cpu_ns(b.pid)
                time.sleep(1)
                idle = (bench.cpu_ns(b.pid) - c0) / 1e6
    secs = time.monotonic() - t_start
    load1 = bench.load()
    netns_ms = timed_ns_add()
    report(samples, [t.name for t in tools], load0, load1, secs, netns_ms)
    say("   (berth's daemon with %d containers, idle: %.1f ms of CPU per second)" % (MAX, idle))
    for t in tools:
        if t.note:
            say("   " + t.note)


def window(samples, n, key):
    """The values of key among the samples taken at counts n-BATCH+1..n."""
    return [r.get(key) for (k, r) in samples if n - BATCH < k <= n and key in r]


def report_cni(samples, names, load0, load1):
    """berth as a CNI plugin beside the reference chain: what the runtime
    sees (the plugin's exec and the daemon's round trip)."""
    ref = "CNI" if "CNI" in names else None
    say("berth as a CNI plugin (ADD/DEL = plugin exec + daemon round trip, as a runtime sees it)")
    say("   %-6s %-14s %-14s %-10s %-14s %-14s %-9s %-9s" % (
        "N", "berth ADD", "berth DEL", "daemon CPU", "CNI ADD", "CNI DEL", "ADD x", "DEL x"))
    for n in MARKS:
        a = window(samples["berth CNI"]["add"], n, "net")
        dl = window(samples["berth CNI"]["del"], n, "net")
        cpu = window(samples["berth CNI"]["add"], n, "cpu")
        ra = window(samples[ref]["add"], n, "net") if ref else []
        rd = window(samples[ref]["del"], n, "net") if ref else []
        say("   %-6d %-14s %-14s %-10s %-14s %-14s %-9s %-9s" % (
            n, "%s (%s)" % (fmt(p50(a)), fmt(pct(a, 90))), "%s (%s)" % (fmt(p50(dl)), fmt(pct(dl, 90))),
            fmt(p50(cpu), 2), "%s (%s)" % (fmt(p50(ra)), fmt(pct(ra, 90))),
            "%s (%s)" % (fmt(p50(rd)), fmt(pct(rd, 90))),
            bench.ratio(p50(ra), p50(a)), bench.ratio(p50(rd), p50(dl))))
        bench.row("CNI plugin ADD, N=%d (p50 ms, exec + daemon)" % n, fmt(p50(a)),
                  "CNI chain %s" % fmt(p50(ra)), bench.ratio(p50(ra), p50(a)),
                  "<= 3 ms, flat in N, >= 20x", "%s-%s" % (load0, load1))
        bench.row("CNI plugin DEL, N=%d (p50 ms, exec + daemon)" % n, fmt(p50(dl)),
                  "CNI chain %s" % fmt(p50(rd)), bench.ratio(p50(rd), p50(dl)),
                  "<= 3 ms", "%s-%s" % (load0, load1))
    say("   (ratios: reference chain / berth; the chain is bridge + host-local + portmap, ipMasq on,")
    say("    one port; berth also gives a DNS name and firewall labels)")


def report(samples, names, load0, load1, secs, netns_ms):
    peers = [x for x in ("CNI", "netavark") if x in names]
    say("container network ADD and DEL, one container at a time, 0 -> %d -> 0, %d round(s), "
        "batches of %d interleaved (%.0f s, load %s -> %s)" % (MAX, ROUNDS, BATCH, secs, load0, load1))
    say("ms, p50 of the %d operations that end at the given count (p90 in brackets)" % (BATCH * ROUNDS))
    hdr = "   %-6s %-14s %-14s %-10s" % ("N", "berth net", "berth run", "daemon CPU")
    for p in peers:
        hdr += " %-14s" % p
    for p in peers:
        hdr += " %-9s" % (p + "/b")
    say("ADD (berth net = file + reload until the reply: network, DNS and firewall applied;")
    say("     berth run = until the container's process has written its first line)")
    say(hdr)
    b = samples["berth"]["add"]
    for n in MARKS:
        net, run_, cpu = window(b, n, "net"), window(b, n, "run"), window(b, n, "cpu")
        line = "   %-6d %-14s %-14s %-10s" % (n, "%s (%s)" % (fmt(p50(net)), fmt(pct(net, 90))),
                                              "%s (%s)" % (fmt(p50(run_)), fmt(pct(run_, 90))),
                                              fmt(p50(cpu), 2))
        pv = {}
        for p in peers:
            v = window(samples[p]["add"], n, "net")
            pv[p] = p50(v)
            line += " %-14s" % ("%s (%s)" % (fmt(p50(v)), fmt(pct(v, 90))))
        for p in peers:
            line += " %-9s" % bench.ratio(pv[p], p50(net))
        say(line)
        bench.row("network ADD, N=%d (p50 ms, net ready; berth run)" % n,
                  "%s; run %s" % (fmt(p50(net)), fmt(p50(run_))),
                  " / ".join("%s %s" % (p, fmt(pv[p])) for p in peers) or "-",
                  " / ".join(bench.ratio(pv[p], p50(net)) for p in peers) or "-",
                  "<= 3 ms, flat in N", "%s-%s" % (load0, load1))
        if n == MARKS[-1]:
            bench.row("daemon CPU per add, N=%d (p50 ms)" % n, fmt(p50(cpu), 2), "-", "-",
                      "<= 2 ms", "%s-%s" % (load0, load1))
    first = [r["net"] for (k, r) in b if k <= max(1, MAX // 10)]
    last = [r["net"] for (k, r) in b if k > MAX - max(1, MAX // 10)]
    line = "   first -> last tenth of 0..%d, net p50: berth %s -> %s" % (MAX, fmt(p50(first)), fmt(p50(last)))
    for p in peers:
        s = samples[p]["add"]
        line += ", %s %s -> %s" % (p, fmt(p50([r["net"] for (k, r) in s if k <= max(1, MAX // 10)])),
                                   fmt(p50([r["net"] for (k, r) in s if k > MAX - max(1, MAX // 10)])))
    say(line)
    say("   (the peers' netns is made before the clock starts: `ip netns add` costs %s ms p50 here)"
        % fmt(netns_ms))
    say("DEL (berth reply = file removed + reload until the reply, the stop under way;")
    say("     berth gone = until its netns is gone and its address released; --wait = `reload --wait`,")
    say("     every other DEL; N = containers before the DEL)")
    hdr = "   %-6s %-12s %-12s %-12s %-10s" % ("N", "berth reply", "berth gone", "--wait", "daemon CPU")
    for p in peers:
        hdr += " %-14s" % p
    for p in peers:
        hdr += " %-9s" % (p + "/b")
    say(hdr)
    b = samples["berth"]["del"]
    for n in MARKS:
        rep, gone, wt, cpu = window(b, n, "net"), window(b, n, "gone"), window(b, n, "wait"), window(b, n, "cpu")
        line = "   %-6d %-12s %-12s %-12s %-10s" % (n, fmt(p50(rep)), fmt(p50(gone)), fmt(p50(wt)),
                                                    fmt(p50(cpu), 2))
        pv = {}
        for p in peers:
            v = window(samples[p]["del"], n, "net")
            pv[p] = p50(v)
            line += " %-14s" % ("%s (%s)" % (fmt(p50(v)), fmt(pct(v, 90))))
        for p in peers:
            line += " %-9s" % bench.ratio(pv[p], p50(gone))
        say(line)
        bench.row("network DEL, N=%d (p50 ms; berth reply; gone)" % n,
                  "%s; gone %s" % (fmt(p50(rep)), fmt(p50(gone))),
                  " / ".join("%s %s" % (p, fmt(pv[p])) for p in peers) or "-",
                  " / ".join(bench.ratio(pv[p], p50(gone)) for p in peers) or "-",
                  "-", "%s-%s" % (load0, load1))
    say("   (ratios: peer / berth, net ready for ADD, gone for DEL; above 1 berth is faster)")
    say("   (through `berth run`: not measured, it does not exist yet)")
    if "berth CNI" in names:
        report_cni(samples, names, load0, load1)
    # the curve: p50 of each batch, against the count it ends at
    series = {}
    for name in names:
        pts = []
        for n in range(BATCH, MAX + 1, BATCH):
            v = p50(window(samples[name]["add"], n, "net"))
            if v is not None:
                pts.append((n, v))
        series[name + (" (network ready)" if name == "berth" else "")] = pts
    pts = []
    for n in range(BATCH, MAX + 1, BATCH):
        v = p50(window(samples["berth"]["add"], n, "run"))
        if v is not None:
            pts.append((n, v))
    series["berth (process runs)"] = pts
    os.makedirs(bench.OUT, exist_ok=True)
    with open(os.path.join(bench.OUT, "netadd.tsv"), "w") as f:
        f.write("tool\top\tcount\twhat\tms\n")
        for name in names:
            for op in ("add", "del"):
                for (k, r) in samples[name][op]:
                    for what, v in sorted(r.items()):
                        f.write("%s\t%s\t%d\t%s\t%.3f\n" % (name, op, k, what, v))
    svg = os.path.join(bench.OUT, "netadd.svg")
    bench.svg_lines(svg, "container network ADD, p50 of each batch of %d (load %s-%s)"
                    % (BATCH * ROUNDS, load0, load1), "containers (N)", "ms", series)
    say("   curve: %s (data: netadd.tsv)" % os.path.relpath(svg, bench.TOP))


if __name__ == "__main__":
    main()
