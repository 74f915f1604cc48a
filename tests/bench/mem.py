#!/usr/bin/env python3
"""mem.py - memory: the daemon's RSS and PSS and every berth process's PSS
(daemon, monitors, and the containers' inits: init = yes makes berth's own
init each container's PID 1) at 0, 100 and 1,000 containers, beside what stays
resident on the peers' side for the same containers: one conmon per container
(podman's monitor, which runs crun) and aardvark-dns (netavark itself is not
resident), and the binaries' sizes.

berth: the shipped binary's daemon, containers added by writing their files
and `berth reload`, MEM_STEP (50) per reload (each: busybox sleep, one
published port), measured once all run. (One reload of 1,000 new containers
keeps the daemon's loop busy for over a minute, and the monitors that could
not report within 10 s meanwhile are killed: see the report of issue 19.) PSS (smaps_rollup) shares a page among the processes that map
it, so the monitors' PSS is what each really adds; RSS counts shared pages in
full. Daemon growth per container = (RSS at N - RSS at 0) / N. The berth
footprint of N containers is the PSS of all of them: daemon + N monitors +
N inits; conmon's is N conmons (crun has exited; the container's command is
its PID 1, with no init) + aardvark-dns.
conmon: MEM_CONMON (100) containers, each `conmon ... -r crun` (crun create)
then `crun start`, each in a new network namespace with no interfaces (the
network is not what is measured); cgroups off in crun, as in berth.
aardvark-dns: started by a `netavark setup` of one container, then given
100 and 1,000 names the way netavark gives them (its config file, SIGHUP).
MEM_MAX (1000) caps the largest N; if the containers are not all running
within MEM_TIMEOUT (420) s, the figure is taken at the count reached.
"""
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True     # nothing written into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from bench import fmt, say  # noqa: E402

bench.sandbox("mem")

MAX = int(os.environ.get("MEM_MAX", "1000"))
MARKS = [n for n in (100, 1000) if n <= MAX]
CONMON_N = int(os.environ.get("MEM_CONMON", "100"))
TIMEOUT = float(os.environ.get("MEM_TIMEOUT", "420"))
STEP = int(os.environ.get("MEM_STEP", "50"))
NETAVARK = "/usr/lib/podman/netavark"
AARDVARK = "/usr/lib/podman/aardvark-dns"


def running(d):
    return d.cli("ps", check=False).count(" running ")


def inits(d):
    """The pids of the containers' inits that are berth's own (init = yes),
    from the monitors' files; a container without one has its command as
    PID 1, which is the container's, not berth's."""
    pids = []
    for m in glob.glob(os.path.join(d.state, "ctr", "*", "monitor")):
        try:
            with open(m) as f:
                pid = int([ln for ln in f if ln.startswith("init=")][0].split("=", 1)[1])
            with open("/proc/%d/comm" % pid) as f:
                if f.read().strip() == "berth-init":
                    pids.append(pid)
        except (OSError, ValueError, IndexError):
            pass
    return pids


def psum(mems):
    return sum(m[1] for m in mems if m[1] is not None)


def berth_mem(work, root):
    d = bench.Berth(os.path.join(work, "b"), bench.netns_add("bh-berth"))
    out = {}
    try:
        d.start()
        time.sleep(1)
        out[0] = (bench.mem_kib(d.pid), [], [], 0, None)
        n = 0
        t_all = time.monotonic()
        for mark in MARKS:
            reload_s = 0.0
            got = n
            while n < mark and time.monotonic() - t_all < TIMEOUT:
                step = min(STEP, mark - n)
                for _ in range(step):
                    n += 1
                    d.put("c%d" % n, "[container]\nrootfs = %s\ncommand = sleep 1000000\n"
                          "ports = %d:80\nstop_timeout = 0\n" % (root, 20000 + n))
                t0 = time.monotonic()
                d.cli("reload")
                reload_s += time.monotonic() - t0
                end = time.monotonic() + 60
                while time.monotonic() < end:
                    got = running(d)
                    if got >= n:
                        break
                    time.sleep(0.2)
            up_s = time.monotonic() - t_all
            time.sleep(1)
            mons = [bench.mem_kib(p) for p in d.monitors()]
            ins = [bench.mem_kib(p) for p in inits(d)]
            out[mark] = (bench.mem_kib(d.pid), mons, ins, got, (reload_s, up_s))
            if got < mark:
                say("   berth: %d of %d containers running after %.0f s: measured there" % (got, mark, up_s))
                break
        t0 = time.monotonic()
        d.stop()
        out["stop_s"] = time.monotonic() - t0
    finally:
        d.stop()
    return out


def aardvark_mem(work):
    if not (os.access(NETAVARK, os.X_OK) and os.access(AARDVARK, os.X_OK)):
        return None, "netavark / aardvark-dns not installed (mk/deps.sh bench)"
    ns = bench.netns_add("bh-nv")
    bench.setns(ns)
    conf = os.path.join(work, "netavark")
    os.makedirs(conf)
    cns = bench.netns_add("nv-c1")
    bench.sh("ip", "netns", "exec", "nv-c1", "ip", "link", "set", "lo", "up")
    opts = {"container_id": "%064x" % 1, "container_name": "c1",
            "networks": {"bench": {"static_ips": ["10.88.0.2"], "aliases": ["c1"], "interface_name": "eth0"}},
            "network_info": {"bench": {"name": "bench", "id": "b" * 64, "driver": "bridge",
                                       "network_interface": "nv0",
                                       "subnets": [{"subnet": "10.88.0.0/16", "gateway": "10.88.0.1"}],
                                       "ipv6_enabled": False, "internal": False, "dns_enabled": True,
                                       "ipam_options": {"driver": "host-local"}}}}
    bench.write_json(os.path.join(work, "nv.json"), opts)
    with open(os.path.join(work, "nv.json")) as f:
        r = subprocess.run([NETAVARK, "--config", conf, "-a", AARDVARK, "setup", cns], stdin=f,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode:
        return None, "netavark setup failed: %s" % r.stdout.decode(errors="replace").strip()
    pidf = os.path.join(conf, "aardvark-dns", "aardvark.pid")
    cfg = os.path.join(conf, "aardvark-dns", "bench")
    pid = None
    for _ in range(100):
        try:
            with open(pidf) as f:
                pid = int(f.read())
            break
        except (OSError, ValueError):
            time.sleep(0.05)
    if not pid:
        return None, "aardvark-dns did not start"
    res = {}
    try:
        time.sleep(0.5)
        res[0] = bench.mem_kib(pid)
        for mark in MARKS:
            with open(cfg, "a") as f:
                for k in range(2, mark + 1):
                    f.write("%064x 10.88.%d.%d  c%d,c%d\n" % (k, (k + 1) // 256, (k + 1) % 256, k, k))
            os.kill(pid, signal.SIGHUP)
            time.sleep(1)
            res[mark] = bench.mem_kib(pid)
            # the names must be there: ask for the last one from the container
            ans = bench.sh("ip", "netns", "exec", "nv-c1", "dig", "+short", "+time=2", "+tries=1",
                           "@10.88.0.1", "c%d.dns.podman" % mark, check=False).strip()
            if (ans.split() or [""])[0] != "10.88.%d.%d" % ((mark + 1) // 256, (mark + 1) % 256):
                say("   warning: aardvark-dns answered %r for c%d" % (ans, mark))
            with open(cfg) as f:
                lines = f.read().count("\n")
            # rewrite from scratch next time (the first container stays)
            with open(cfg) as f:
                keep = f.read().splitlines()[:2]
            with open(cfg, "w") as f:
                f.write("\n".join(keep) + "\n")
            res["names%d" % mark] = lines - 1
    finally:
        os.kill(pid, signal.SIGTERM)
    return res, None


def conmon_mem(work, root):
    for tool in ("conmon", "crun"):
        if not shutil.which(tool):
            return None, "%s not installed (mk/deps.sh bench)" % tool
    # crun refuses a hybrid cgroup hierarchy even with cgroups off; in this
    # sandbox's own mount namespace, /sys/fs/cgroup becomes cgroup2
    if os.path.exists("/sys/fs/cgroup/unified"):
        subprocess.run(["mount", "-t", "cgroup2", "none", "/sys/fs/cgroup"], check=True)
    state = os.path.join(work, "crun")
    exits = os.path.join(work, "exits")
    socks = os.path.join(work, "socks")
    for p in (state, exits, socks):
        os.makedirs(p)
    spec = bench.oci_spec(root, ["sleep", "1000000"])
    pids = []
    started = []
    try:
        for k in range(CONMON_N):
            b = os.path.join(work, "bundle%d" % k)
            os.makedirs(b)
            bench.write_json(os.path.join(b, "config.json"), spec)
            cid = "ctr%d" % k
            r = subprocess.run(["conmon", "--api-version", "1", "-c", cid, "-u", cid, "-n", cid,
                                "-r", shutil.which("crun"), "-b", b, "-p", os.path.join(b, "pid"),
                                "-P", os.path.join(b, "conmon.pid"), "-l", "k8s-file:" + os.path.join(b, "log"),
                                "--exit-dir", exits, "--socket-dir-path", socks,
                                "--runtime-arg", "--root=" + state,
                                "--runtime-arg", "--cgroup-manager=disabled", "--log-level", "warning"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if r.returncode:
                return None, "conmon failed: %s" % r.stdout.decode(errors="replace").strip()
            if bench.wait_for(lambda: os.path.exists(os.path.join(b, "pid")), 10, 0.002) is None:
                return None, "crun create (under conmon) did not finish: %s" % r.stdout.decode(errors="replace")
            started.append(cid)
            bench.crun(state, "start", cid)
            with open(os.path.join(b, "conmon.pid")) as f:
                pids.append(int(f.read()))
        time.sleep(1)
        return [bench.mem_kib(p) for p in pids], None
    finally:
        for cid in started:
            bench.crun(state, "kill", cid, "KILL", check=False)
        time.sleep(0.5)
        for cid in started:
            bench.crun(state, "delete", "-f", cid, check=False)
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass


def sizes():
    """KiB on disk (stripped as shipped; the peers' shared libraries not counted)."""
    def kib(*paths):
        t = 0
        for p in paths:
            p = p if os.path.isabs(p) else (shutil.which(p) or "")
            if not p or not os.path.exists(p):
                return None
            t += os.path.getsize(p)
        return t // 1024
    return {"berth": kib(bench.BIN),
            "netavark + aardvark-dns": kib(NETAVARK, AARDVARK),
            "CNI bridge + host-local + portmap": kib("/usr/lib/cni/bridge", "/usr/lib/cni/host-local",
                                                     "/usr/lib/cni/portmap"),
            "conmon + crun": kib("conmon", "crun"),
            "dnsmasq": kib("dnsmasq")}


def main():
    work = tempfile.mkdtemp(prefix="berth-bench-mem.")
    try:
        root = bench.rootfs(work)
        if not root:
            say("   mem: no busybox rootfs (busybox-static)")
            return
        load0 = bench.load()
        b = berth_mem(work, root)
        a, a_why = aardvark_mem(work)
        c, c_why = conmon_mem(work, root)
        load1 = bench.load()
        ld = "%s-%s" % (load0, load1)
        say("memory, KiB (load %s -> %s); PSS shares each page among the processes mapping it" % (load0, load1))
        say("   %-12s %-17s %-9s %-20s %-16s %-14s %s" % (
            "containers", "daemon RSS/PSS/anon", "monitors", "monitor PSS mean/max", "init PSS mean/max",
            "all berth PSS", "reloads / all running (s)"))
        (r0, p0, a0), _, _, _, _ = b[0]
        for n in [0] + MARKS:
            if n not in b:
                continue
            (rss, pss, anon), mons, ins, got, t = b[n]
            mp = [m[1] for m in mons if m[1] is not None]
            ip = [m[1] for m in ins if m[1] is not None]
            total = (pss or 0) + sum(mp) + sum(ip)
            say("   %-12s %-17s %-9d %-20s %-16s %-14s %s" % (
                n if got in (0, n) else "%d (of %d)" % (got, n), "%s/%s/%s" % (rss, pss, anon), len(mp),
                "%s / %s" % (fmt(sum(mp) / len(mp)) if mp else "-", max(mp) if mp else "-"),
                "%s / %s" % (fmt(sum(ip) / len(ip)) if ip else "-", max(ip) if ip else "-"), total,
                "%.1f / %.1f" % t if t else "-"))
        per = []
        for n in MARKS:
            if n in b and b[n][3]:
                (rss, pss, anon), mons, ins, got, _ = b[n]
                per.append((n, got, (rss - r0) / float(got), (anon - a0) / float(got)))
        for n, got, dr, da in per:
            say("   daemon growth per container, 0 -> %d: RSS %.2f KiB, anonymous %.2f KiB" % (got, dr, da))
        say("   (the daemon's PSS is below its RSS because the monitors and inits are the same static"
            " binary: they share its text pages)")
        if "stop_s" in b:
            say("   (stopping the daemon with all of them: %.1f s)" % b["stop_s"])
        bench.row("daemon RSS, KiB at %s containers" % " / ".join(str(n) for n in [0] + MARKS if n in b),
                  " / ".join(str(b[n][0][0]) for n in [0] + MARKS if n in b), "-", "-", "-", ld)
        big = per[-1] if per else None
        if big:
            bench.row("daemon memory per container, 0 -> %d (KiB RSS; anonymous)" % big[1],
                      "%.2f; %.2f" % (big[2], big[3]), "-", "-", "<= 1 KiB", ld)
        m100 = b.get(100)
        mon_mean = mon_max = None
        if m100:
            mp = [m[1] for m in m100[1] if m[1] is not None]
            mon_mean = sum(mp) / len(mp) if mp else None
            mon_max = max(mp) if mp else None
        cm_mean = None
        if c:
            cp = [x[1] for x in c if x[1] is not None]
            cr = [x[0] for x in c if x[0] is not None]
            cm_mean = sum(cp) / len(cp)
            say("conmon (+ crun), %d containers: PSS mean %.1f KiB, sum %d KiB; RSS mean %.0f KiB"
                % (len(cp), cm_mean, sum(cp), sum(cr) / len(cr)))
        else:
            say("conmon: left out: %s" % c_why)
        bench.row("monitor PSS, 100 containers (KiB each: mean; max)",
                  "%s; %s" % (fmt(mon_mean), mon_max if mon_max is not None else "-"),
                  "conmon %s" % fmt(cm_mean), bench.ratio(cm_mean, mon_mean), "<= 86 KiB", ld)
        if a:
            say("aardvark-dns (netavark's resident DNS server): RSS / PSS KiB")
            for n in [0] + MARKS:
                if n in a:
                    label = "1 container" if n == 0 else "%d names" % a.get("names%d" % n, n)
                    say("   %-16s %s / %s" % (label, a[n][0], a[n][1]))
        else:
            say("aardvark-dns: left out: %s" % a_why)
        if m100:
            mons, ins = psum(m100[1]), psum(m100[2])
            whole_b = (m100[0][1] or 0) + mons + ins
            say("100 containers, everything resident (PSS KiB): berth %d (daemon %s + %d monitors %d"
                " + %d inits %d)" % (whole_b, m100[0][1], len(m100[1]), mons, len(m100[2]), ins))
            if c:
                whole_p = psum(c) + ((a or {}).get(100, (0, 0))[1] or 0)
                say("   beside conmon x %d + aardvark-dns (100 names): %d" % (len(c), whole_p))
                bench.row("100 containers' resident footprint (PSS KiB; berth: daemon + monitors + inits)",
                          whole_b, "conmon x%d + aardvark %d" % (len(c), whole_p),
                          bench.ratio(whole_p, whole_b), "beside conmon's", ld)
        s = sizes()
        say("binary size (KiB on disk; berth static, the peers dynamic, shared libraries not counted):")
        for k, v in s.items():
            say("   %-36s %s" % (k, "-" if v is None else v))
        bench.row("binary size (KiB)", s["berth"],
                  "netavark+aardvark %s; CNI 3 plugins %s; conmon+crun %s" % (
                      s["netavark + aardvark-dns"], s["CNI bridge + host-local + portmap"], s["conmon + crun"]),
                  "-", "-", "-")
    finally:
        for m in glob.glob(os.path.join(work, "b", "state", "netns", "*")):
            subprocess.run(["umount", m], stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
