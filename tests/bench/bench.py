"""bench.py - what the end-to-end benchmarks (netadd, ports, mem, start) share.

Each of them runs the shipped binary (build/ARCH/berth, static, musl, -Os) as
a user would, through its daemon and CLI, beside a peer doing the same work
in the same run, inside a throwaway `unshare --net --mount` sandbox with its
own /run: the machine's network, its /run/netns and its xtables lock are never
touched. Every tool gets its own "host" network namespace inside the
sandbox (ip netns add), so no tool sees another's interfaces or rules;
this process switches into one (setns) before it runs that tool's commands,
so the tools can take turns (interleaved batches) at the same moment of the
machine's load.

A headline figure is printed in the script's own table and also appended, as
one tab-separated line, to $BENCH_ROWS for the summary at the top of
build/bench/results.md:  what, berth, peer, ratio, goal, load.
"""
import ctypes
import glob
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time

CLONE_NEWNET = 0x40000000
TOP = os.environ.get("BERTH_TOP") or os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
BIN = os.environ.get("BERTH_PROD") or os.path.join(TOP, "build", os.uname().machine, "berth")
OUT = os.environ.get("BENCH_OUT") or os.path.join(TOP, "build", "bench")
_libc = ctypes.CDLL(None, use_errno=True)


def say(*a):
    print(*a, flush=True)


def sandbox(script):
    """Re-run script as root in a new network and mount namespace with a
    private /run; returns in the sandbox (or exits with a note)."""
    if os.environ.get("BERTH_BENCH_SANDBOX") == script:
        return
    if os.getuid() != 0:
        say("   %s: skipped (needs root for network namespaces)" % script)
        sys.exit(0)
    # the namespaces this process leaves: sandboxed() checks they are not
    # the ones the benchmark runs in
    env = dict(os.environ, BERTH_BENCH_SANDBOX=script, PYTHONDONTWRITEBYTECODE="1",
               BERTH_BENCH_OUTSIDE=" ".join(os.readlink("/proc/self/ns/" + n) for n in ("net", "mnt")))
    argv = ["unshare", "--net", "--mount", "--propagation", "private", "--", "sh", "-c",
            'mount -t tmpfs -o mode=755 berth-bench-run /run && ip link set lo up && exec "$0" "$@"',
            sys.executable, os.path.abspath(sys.argv[0])] + sys.argv[1:]
    os.execvpe("unshare", argv, env)


def sandboxed():
    """Raise unless this process runs in the sandbox sandbox() made: a
    network and a mount namespace other than those it was started in (and
    than pid 1's, when they can be read), with its own tmpfs on /run.
    For a peer that changes networking or mounts on its own (podman)."""
    outside = os.environ.get("BERTH_BENCH_OUTSIDE", "").split()
    if not os.environ.get("BERTH_BENCH_SANDBOX") or len(outside) != 2:
        raise RuntimeError("not in the bench sandbox (bench.sandbox)")
    for n, out in zip(("net", "mnt"), outside):
        here = os.readlink("/proc/self/ns/" + n)
        try:
            init = os.readlink("/proc/1/ns/" + n)
        except OSError:
            init = None
        if here in (out, init):
            raise RuntimeError("the %s namespace %s is the machine's, not the sandbox's" % (n, here))
    with open("/proc/self/mountinfo") as f:
        run = [ln.split(" - ")[1].split()[:2] for ln in f if ln.split()[4] == "/run"]
    if not run or run[-1] != ["tmpfs", "berth-bench-run"]:
        raise RuntimeError("/run is not the sandbox's own tmpfs")


def sh(*cmd, check=True, quiet=True, **kw):
    """Run a command (not timed); its output is returned."""
    r = subprocess.run(list(cmd), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT if quiet else None, **kw)
    if check and r.returncode:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), r.returncode,
                                                r.stdout.decode(errors="replace").strip()))
    return r.stdout.decode(errors="replace")


def netns_add(name):
    sh("ip", "netns", "add", name)
    return "/run/netns/" + name


def setns(path):
    """This process (single-threaded) and what it starts from now on live in
    the network namespace at path."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + path)
    finally:
        os.close(fd)


def now():
    return time.monotonic_ns()


def ms(ns):
    return ns / 1e6


def pct(values, p):
    """The p-th percentile (nearest rank) of values; None if empty."""
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    k = max(0, min(len(v) - 1, int(math.ceil(p / 100.0 * len(v))) - 1))
    return v[k]


def p50(values):
    return pct(values, 50)


def fmt(v, digits=1):
    return "-" if v is None else ("%.*f" % (digits, v))


def ratio(peer, berth):
    """peer / berth: above 1, berth does the same work in less."""
    if peer is None or berth is None or berth <= 0:
        return "-"
    r = peer / berth
    return "%.0fx" % r if r >= 10 else "%.1fx" % r if r >= 1 else "%.2fx" % r


def load():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def row(what, berth, peer, ratio_s, goal, load_s):
    """One line of the summary table of results.md."""
    path = os.environ.get("BENCH_ROWS")
    if not path:
        return
    with open(path, "a") as f:
        f.write("\t".join(str(x) for x in (what, berth, peer, ratio_s, goal, load_s)) + "\n")


def cpu_ns(pid):
    """CPU time (user + system) pid's threads have used, ns (schedstat:
    nanosecond precision, unlike /proc/PID/stat's clock ticks)."""
    total = 0
    for t in glob.glob("/proc/%d/task/*/schedstat" % pid):
        try:
            with open(t) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def mem_kib(pid):
    """(RSS, PSS, anonymous) of pid in KiB, from smaps_rollup; the anonymous
    part is the process's own heap and stacks, which no other one shares."""
    got = {}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Rss", "Pss", "Anonymous"):
                    got[k] = int(v.split()[0])
    except OSError:
        pass
    return got.get("Rss"), got.get("Pss"), got.get("Anonymous")


def rootfs(work):
    """A busybox root (mk/busybox-rootfs.sh); None if busybox-static is missing."""
    path = os.path.join(work, "rootfs")
    r = subprocess.run(["sh", os.path.join(TOP, "mk/busybox-rootfs.sh"), os.uname().machine, path],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return path if r.returncode == 0 else None


def wait_for(cond, timeout=10.0, step=0.0005):
    """Poll cond() until true: the time it became true (monotonic ns) or None."""
    end = time.monotonic() + timeout
    while True:
        if cond():
            return now()
        if time.monotonic() > end:
            return None
        time.sleep(step)


class Berth:
    """The product daemon in its own network namespace, configured in
    work/etc, with one network (bridge berth0, 10.88.0.0/16, masquerade on,
    DNS on the gateway) unless ini says otherwise."""

    def __init__(self, work, netns, ini=None):
        self.work, self.netns = work, netns
        self.etc = os.path.join(work, "etc")
        self.state = os.path.join(work, "state")
        self.run = os.path.join(work, "run")
        self.ctrs = os.path.join(self.etc, "containers.d")
        os.makedirs(self.ctrs, exist_ok=True)
        with open(os.path.join(self.etc, "berth.ini"), "w") as f:
            f.write(ini or ("[daemon]\nstate_dir = %s\nrun_dir = %s\n"
                            "[network default]\nbridge = berth0\nsubnet = 10.88.0.0/16\n"
                            "[dns]\nupstream = 127.0.0.1\n" % (self.state, self.run)))
        self.proc = None
        self.pid = None
        self.start_ns = None

    def put(self, name, text):
        path = os.path.join(self.ctrs, name + ".ini")
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.rename(path + ".tmp", path)

    def remove(self, name):
        os.unlink(os.path.join(self.ctrs, name + ".ini"))

    def cli(self, *args, check=True):
        r = subprocess.run([BIN, "-c", self.etc] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        if check and r.returncode:
            raise RuntimeError("berth %s: %s" % (" ".join(args), r.stdout.decode(errors="replace")))
        return r.stdout.decode(errors="replace")

    def start(self, timeout=600):
        """Start the daemon; the time from its exec to READY=1 (sd_notify:
        the initial reconcile is done and the socket answers), ns."""
        setns(self.netns)
        sock_path = os.path.join(self.work, "notify.sock")
        if os.path.exists(sock_path):
            os.unlink(sock_path)
        ready = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        ready.bind(sock_path)
        ready.settimeout(timeout)
        log = open(os.path.join(self.work, "daemon.log"), "ab")
        env = dict(os.environ, NOTIFY_SOCKET=sock_path)
        t0 = now()
        self.proc = subprocess.Popen([BIN, "daemon", "-c", self.etc, "--foreground"],
                                     stdout=log, stderr=log, env=env)
        self.pid = self.proc.pid
        try:
            while b"READY=1" not in ready.recv(256):
                pass
        except socket.timeout:
            raise RuntimeError("the daemon did not get ready in %d s" % timeout)
        finally:
            ready.close()
            log.close()
        self.start_ns = now() - t0
        return self.start_ns

    def monitors(self):
        """The pids of the containers' monitor processes."""
        pids = []
        for m in glob.glob(os.path.join(self.state, "ctr", "*", "monitor")):
            try:
                with open(m) as f:
                    for line in f:
                        if line.startswith("monitor="):
                            pids.append(int(line.split("=", 1)[1]))
            except (OSError, ValueError):
                pass
        return [p for p in pids if os.path.exists("/proc/%d" % p)]

    def log_path(self, name):
        return os.path.join(self.state, "logs", name + ".log")

    def stop(self):
        """SIGTERM (containers stop too); whatever is left is killed."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for p in self.monitors():
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        for f in glob.glob(os.path.join(self.state, "netns", "*")):
            subprocess.run(["umount", f], stderr=subprocess.DEVNULL)
        self.proc = None


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)


def svg_lines(path, title, xlabel, ylabel, series):
    """A small line chart, hand-written SVG: series = {name: [(x, y), ...]}."""
    colours = ["#d62728", "#ff7f0e", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b"]
    w, h, left, right, top, bottom = 720, 420, 60, 200, 40, 50
    pts = [p for s in series.values() for p in s]
    if not pts:
        return
    xmax = max(x for x, _ in pts) or 1
    ymax = max(y for _, y in pts) or 1
    # a round top for the y axis: 1, 2 or 5 times a power of ten
    step = 10 ** len(str(int(ymax))) / 10.0
    while ymax / step > 10:
        step *= 2
    while ymax / step < 4:
        step /= 2
    ytop = step * (int(ymax / step) + 1)
    pw, ph = w - left - right, h - top - bottom

    def X(x):
        return left + pw * x / float(xmax)

    def Y(y):
        return top + ph * (1 - y / float(ytop))

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="12">' % (w, h),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="20" font-size="14">%s</text>' % (left, _esc(title)),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (left, top + ph, left + pw, top + ph),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (left, top, left, top + ph)]
    y = 0.0
    while y <= ytop + 1e-9:
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (left, Y(y), left + pw, Y(y)))
        out.append('<text x="%d" y="%.1f" text-anchor="end">%g</text>' % (left - 5, Y(y) + 4, y))
        y += step
    xstep = 1
    while xmax / xstep > 8:
        xstep = xstep * 5 // 2 if str(xstep).startswith("2") else xstep * 2
    for x in range(0, xmax + 1, xstep):
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>' % (X(x), top + ph + 16, x))
    out.append('<text x="%d" y="%d" text-anchor="middle">%s</text>' % (left + pw / 2, h - 10, _esc(xlabel)))
    out.append('<text x="15" y="%d" transform="rotate(-90 15 %d)" text-anchor="middle">%s</text>'
               % (top + ph / 2, top + ph / 2, _esc(ylabel)))
    for i, (name, s) in enumerate(series.items()):
        c = colours[i % len(colours)]
        if s:
            out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>'
                       % (c, " ".join("%.1f,%.1f" % (X(x), Y(y)) for x, y in s)))
        ly = top + 10 + 20 * i
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>'
                   % (left + pw + 15, ly, left + pw + 40, ly, c))
        out.append('<text x="%d" y="%d">%s</text>' % (left + pw + 45, ly + 4, _esc(name)))
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def _esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def crun(state, *args, check=True):
    r = subprocess.run(["crun", "--root=" + state, "--cgroup-manager=disabled"] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if check and r.returncode:
        raise RuntimeError("crun %s: %s" % (" ".join(args), r.stdout.decode(errors="replace")))


def oci_spec(root, args, netns=None):
    """A minimal OCI runtime spec: root read-only, the namespaces berth gives
    a container (pid, mount, ipc, uts, network), no cgroup limits."""
    ns = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    ns.append({"type": "network", "path": netns} if netns else {"type": "network"})
    return {
        "ociVersion": "1.0.0",
        "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": args,
                    "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "cwd": "/",
                    "capabilities": {k: ["CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_AUDIT_WRITE"]
                                     for k in ("bounding", "effective", "permitted")},
                    "noNewPrivileges": True},
        "root": {"path": root, "readonly": True},
        "hostname": "c",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                    "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                   {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}],
        "linux": {"namespaces": ns,
                  "maskedPaths": ["/proc/kcore", "/proc/keys"],
                  "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"]},
    }
