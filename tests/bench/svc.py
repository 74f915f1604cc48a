#!/usr/bin/env python3
"""svc.py - services (issue 23): new-connection round trips through a
virtual IP with 1 and with 1,000 services defined, berth beside the iptables
design of kube-proxy, in the same run.

What is measured: build/test/bench/crr (C, static, one process) in a client
network namespace behind a veth (192.0.2.2, its host 192.0.2.1) makes
SVC_RT (2,500) round trips one after another to VIP 10.96.0.10 port 80:
TCP connect, an 18-byte request, the backend's 2-byte answer, close (the
backend closes first). Only a connection's first packet walks the NAT
tables (conntrack carries the rest), so each round trip pays the lookup
once: "CRR", as netperf calls it. The backends are three `crr serve 8080 ID`
behind a bridge (10.88.0.0/16, gateway 10.88.0.1); the port is translated
80 -> 8080. p50 and p99 latency (socket to close) and round trips per
second (a mean: a stall of the shared machine weighs on it, not on the
p50). Then the same again over UDP (SVC_PROTO, "tcp udp": each its own
pass, with worlds of its own): an 18-byte datagram and its answer from a
fresh socket (a fresh source port: a new conntrack entry) each.

N = 1: the service "web" alone (select app=web, the three backends).
N = 1,000 (SVC_N): "web" and 999 more services selecting the same three
backends on other VIPs (10.96.1.1 and on, one port each, 80 -> 8080): each
has its three backends, as web does.

berth: the shipped binary's daemon (build/ARCH/berth, static, musl, -Os) in
a network namespace of its own, network default with service_range
10.96.0.0/16, services in services.d/NAME.ini (vip given, balance = random),
the backends three busybox containers (containers.d, labels app=web, crr
copied into their root). One daemon per N, both running throughout.
Until the daemon knows services (`berth config check` refuses the
configuration) only the peer runs and berth's side says so.

Peer: what kube-proxy (mode iptables) writes for the same services,
loaded by iptables-restore (iptables-legacy when the kernel has it, else
iptables-nft) into a namespace of its own with the same topology (bridge,
three backends in network namespaces running the same crr, a client behind
a veth): nat PREROUTING and OUTPUT jump to KUBE-SERVICES, one rule per
service port (-d VIP/32 -p tcp --dport 80 -j KUBE-SVC-X), the nodeports rule
last; KUBE-SVC-X marks off-cluster sources for masquerade (KUBE-MARK-MASQ),
then `-m statistic --mode random --probability 1/n` rules to one KUBE-SEP-Y
per backend, which marks hairpin traffic and DNATs to IP:8080;
KUBE-POSTROUTING masquerades marked packets (--random-fully); filter
FORWARD runs KUBE-FORWARD (invalid dropped, marked and established
accepted) and the firewall chains kube-proxy adds. kube-proxy's order in
KUBE-SERVICES is that of its service map, so the measured service sits in
the middle (rule 500 of 1,000): a new connection walks half the list, as
the average service's does.

Both host namespaces: ip_forward on, bridge-nf-call-iptables as berth
leaves it (kube-proxy needs it on), conntrack's TCP TIME_WAIT and UDP
timeouts cut to 10 s and 5 s there (the conntrack table's limit is the
machine's: the run's 100,000 connections leave few entries behind). The
clients' port range is 1024-65535: connect() takes every other port for one
destination, and with the default range a run reuses ports the backend
still holds in TIME_WAIT; the peer then showed 1 s stalls and failed round
trips (retransmits), a cost of the test's port reuse, not of the NAT.

The client and every responder run on one CPU (the last): a round trip's
work, both ends and the softirqs on the way, is done in series there, so
its latency is its CPU cost; spread over two CPUs it swung with where the
scheduler put each end (UDP p50 40 or 120 µs from one run to the next).

Interleaved round trip by round trip: every tool and N is set up
beforehand, side by side, and one crr process makes one round trip to
berth N=1, berth N=1000, peer N=1, peer N=1000 in turn (the first of the
turn rotating each round), each from a socket it makes in that world's
client namespace (setns before the clock starts): whatever the shared
machine does meanwhile hits the four alike. SVC_REPS (10) rounds of SVC_RT
round trips each; after a warm-up round, each figure is the median of the
rounds'. Flatness: N=1000's p50 over N=1's for each tool, within each round,
the median of the rounds with its quartiles (their spread: the noise left;
the goal: berth within 5 %). Round trips/s are of each world's own time
(1 / the mean round trip), not of the run's. Benchmarks print; they never fail on speed.
"""
import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True     # nothing written into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from bench import now, ms, say  # noqa: E402

bench.sandbox("svc")

REPS = int(os.environ.get("SVC_REPS", "10"))
RT = int(os.environ.get("SVC_RT", "2500"))
BIG = int(os.environ.get("SVC_N", "1000"))
PROTOS = os.environ.get("SVC_PROTO", "tcp udp").split()
PROTO = PROTOS[0]                  # the pass running: tcp or udp
CRR = os.path.join(os.environ.get("BENCH_BIN") or os.path.join(bench.TOP, "build", "test", "bench"), "crr")
VIP, PORT, TARGET = "10.96.0.10", 80, 8080
BACKENDS = ["10.88.0.2", "10.88.0.3", "10.88.0.4"]
# the client and every responder run on one CPU: a round trip's work
# (both ends, the softirqs their packets raise on the way) is then done in
# series there, and its latency is its CPU cost; spread over CPUs, it
# swung with where the scheduler put each end (UDP p50 40 or 120 µs)
CPU = {max(os.sched_getaffinity(0))}


def pin():
    os.sched_setaffinity(0, CPU)


def other_vip(i):
    """The i-th (0-based) of the other services' VIPs: 10.96.1.1 and on."""
    return "10.96.%d.%d" % (1 + i // 250, 1 + i % 250)


def services(n):
    """[(name, vip)] of the n services, the measured one in the middle (its
    position in kube-proxy's KUBE-SERVICES)."""
    others = [("s%d" % (i + 1), other_vip(i)) for i in range(n - 1)]
    mid = len(others) // 2
    return others[:mid] + [("web", VIP)] + others[mid:]


def ip(*args):
    bench.sh("ip", *args)


def sysctl(ns, key, value):
    """Set key in the network namespace ns (named); False if it is not there."""
    r = subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "%s=%s" % (key, value)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return r.returncode == 0


def read_sysctl(ns, key):
    r = subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-n", key],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return r.stdout.decode().strip() if r.returncode == 0 else None


def client_ns(host, tag):
    """A client namespace TAG-cl behind a veth from host (named): the client
    192.0.2.2, its host 192.0.2.1, the default route through it."""
    cl = tag + "-cl"
    bench.netns_add(cl)
    ip("-n", host, "link", "add", tag + "-h", "type", "veth", "peer", "name", tag + "-c", "netns", cl)
    ip("-n", host, "addr", "add", "192.0.2.1/24", "dev", tag + "-h")
    ip("-n", host, "link", "set", tag + "-h", "up")
    ip("-n", cl, "addr", "add", "192.0.2.2/24", "dev", tag + "-c")
    ip("-n", cl, "link", "set", tag + "-c", "up")
    ip("-n", cl, "link", "set", "lo", "up")
    ip("-n", cl, "route", "add", "default", "via", "192.0.2.1")
    # connect() takes every other port of the range for one destination:
    # the widest range keeps a run's connections from reusing a port while
    # the backend still holds the previous one in TIME_WAIT
    sysctl(cl, "net.ipv4.ip_local_port_range", "1024 65535")
    return cl


def host_sysctls(host, bridge_nf):
    sysctl(host, "net.ipv4.ip_forward", 1)
    sysctl(host, "net.netfilter.nf_conntrack_tcp_timeout_time_wait", 10)
    sysctl(host, "net.netfilter.nf_conntrack_udp_timeout", 5)
    if bridge_nf is not None:
        sysctl(host, "net.bridge.bridge-nf-call-iptables", bridge_nf)


def crr_all(cls, n):
    """n round trips from each client namespace of cls, one to each in turn
    (one crr process: it makes each connection's socket in its client's
    namespace): [{ok, fail, p50_us, ...}] in the order of cls."""
    r = subprocess.run([CRR, "client"] + (["-u"] if PROTO == "udp" else []) + [str(n)] +
                       ["/run/netns/%s,%s,%d" % (cl, VIP, PORT) for cl in cls],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=pin)
    out = r.stdout.decode(errors="replace")
    res = []
    for line in out.splitlines():
        if line.startswith("RESULT "):
            got = dict(kv.split("=", 1) for kv in line.split()[1:])
            one = {k: float(got[k]) for k in ("ok", "fail", "p50_us", "p99_us", "per_s")}
            one["ids"] = [int(x) for x in got["ids"].split(",")]
            res.append(one)
    if len(res) != len(cls):
        raise RuntimeError("crr client: %s" % out.strip())
    return res


def crr(cl, n):
    return crr_all([cl], n)[0]


def until_answers(cl, timeout=60):
    end = now() + timeout * 1e9
    while now() < end:
        try:
            if crr(cl, 1)["ok"] == 1:
                return True
        except RuntimeError:
            pass
    return False


# ---- the peer: kube-proxy's iptables rules ----------------------------------

def kube_hash(prefix, *parts):
    """kube-proxy's chain names: the prefix and 16 base32 characters of a
    SHA-256 over what the chain is for (proxy/iptables servicePortChainName)."""
    h = hashlib.sha256("".join(parts).encode()).digest()
    return prefix + base64.b32encode(h).decode()[:16]


def kube_rules(n):
    """iptables-restore input: what kube-proxy writes for n services of one
    port each (80 -> 8080, PROTO), each with the three backends."""
    svcs = services(n)
    filt = ["*filter",
            ":KUBE-FORWARD - [0:0]", ":KUBE-SERVICES - [0:0]", ":KUBE-EXTERNAL-SERVICES - [0:0]",
            ":KUBE-NODEPORTS - [0:0]", ":KUBE-PROXY-FIREWALL - [0:0]", ":KUBE-FIREWALL - [0:0]",
            '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
            '-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
            '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
            "-A INPUT -j KUBE-FIREWALL",
            '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
            '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
            '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
            '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
            '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
            '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
            "-A OUTPUT -j KUBE-FIREWALL",
            '-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" '
            "-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
            "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
            '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
            '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
            "COMMIT"]
    chains = [":KUBE-SERVICES - [0:0]", ":KUBE-NODEPORTS - [0:0]", ":KUBE-POSTROUTING - [0:0]",
              ":KUBE-MARK-MASQ - [0:0]"]
    rules = ['-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
             '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
             '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
             "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000",
             "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
             "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
             '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
             "-j MASQUERADE --random-fully"]
    per_svc = []
    for name, vip in svcs:
        sp = "default/%s:http" % name
        svc = kube_hash("KUBE-SVC-", "default/%s" % name, PROTO, "http")
        chains.append(":%s - [0:0]" % svc)
        rules.append('-A KUBE-SERVICES -m comment --comment "%s cluster IP" -m %s -p %s -d %s/32 '
                     "--dport %d -j %s" % (sp, PROTO, PROTO, vip, PORT, svc))
        per_svc.append('-A %s -m comment --comment "%s cluster IP" -m %s -p %s -d %s/32 --dport %d '
                       "! -s 10.88.0.0/16 -j KUBE-MARK-MASQ" % (svc, sp, PROTO, PROTO, vip, PORT))
        for i, be in enumerate(BACKENDS):
            sep = kube_hash("KUBE-SEP-", "default/%s" % name, PROTO, "http", "%s:%d" % (be, TARGET))
            chains.append(":%s - [0:0]" % sep)
            left = len(BACKENDS) - i
            stat = ("-m statistic --mode random --probability %0.11f " % (1.0 / left)) if left > 1 else ""
            per_svc.append('-A %s -m comment --comment "%s -> %s:%d" %s-j %s' % (svc, sp, be, TARGET, stat, sep))
            per_svc.append('-A %s -m comment --comment %s -s %s/32 -j KUBE-MARK-MASQ' % (sep, sp, be))
            per_svc.append('-A %s -m comment --comment %s -m %s -p %s -j DNAT --to-destination %s:%d'
                           % (sep, sp, PROTO, PROTO, be, TARGET))
    rules.append('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be '
                 'the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS')
    nat = ["*nat"] + chains + rules + per_svc + ["COMMIT"]
    return "\n".join(filt + nat) + "\n"


def iptables_flavour(ns):
    """iptables-legacy when the kernel has ip_tables (tried in the namespace
    ns), else iptables-nft (SVC_IPTABLES=legacy|nft chooses): (command
    prefix, version line)."""
    want = os.environ.get("SVC_IPTABLES")     # legacy or nft: that one only
    for flavour in ["iptables-" + want] if want else ("iptables-legacy", "iptables-nft"):
        r = subprocess.run(["ip", "netns", "exec", ns, flavour, "-t", "nat", "-S"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r.returncode == 0:
            v = subprocess.run([flavour, "--version"], stdout=subprocess.PIPE).stdout.decode().strip()
            return flavour, v
    raise RuntimeError("neither iptables-legacy nor iptables-nft works here")


class Peer:
    """kube-proxy's rules for n services in namespace kp-N, its backends in
    kp-N-b1..3 (plain network namespaces running crr serve), its client
    kp-N-cl."""

    def __init__(self, n, flavour, bridge_nf):
        self.name = "peer"
        self.n = n
        self.tag = "kp%d%s" % (n, PROTO[0])
        self.host = self.tag
        self.procs = []
        bench.netns_add(self.host)
        h = self.host
        ip("-n", h, "link", "set", "lo", "up")
        ip("-n", h, "link", "add", "kp0", "type", "bridge")
        ip("-n", h, "addr", "add", "10.88.0.1/16", "dev", "kp0")
        ip("-n", h, "link", "set", "kp0", "up")
        for i, be in enumerate(BACKENDS, 1):
            ns = "%s-b%d" % (self.tag, i)
            bench.netns_add(ns)
            ip("-n", h, "link", "add", "kpv%d" % i, "type", "veth", "peer", "name", "eth0", "netns", ns)
            ip("-n", h, "link", "set", "kpv%d" % i, "master", "kp0", "up")
            ip("-n", ns, "addr", "add", be + "/16", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "route", "add", "default", "via", "10.88.0.1")
            bench.setns("/run/netns/" + ns)
            self.procs.append(subprocess.Popen([CRR, "serve", str(TARGET), str(i)], preexec_fn=pin))
        self.cl = client_ns(h, self.tag)
        host_sysctls(h, bridge_nf)
        self.rules = kube_rules(n)
        bench.setns("/run/netns/" + h)
        t0 = now()
        subprocess.run([flavour + "-restore"], input=self.rules.encode(), check=True)
        self.load_ms = ms(now() - t0)
        self.n_rules = sum(1 for line in self.rules.splitlines() if line.startswith("-A"))
        if not until_answers(self.cl, 10):
            raise RuntimeError("peer N=%d: the VIP does not answer" % n)

    def close(self):
        for p in self.procs:
            p.kill()
            p.wait()
        for ns in [self.host, self.cl] + ["%s-b%d" % (self.tag, i) for i in range(1, len(BACKENDS) + 1)]:
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)


# ---- berth ------------------------------------------------------------------

class NotBuilt(Exception):
    pass


def berth_config(d, root, n):
    """berth.ini with a service range, the three backends, the n services."""
    with open(os.path.join(d.etc, "berth.ini"), "w") as f:
        f.write("[daemon]\nstate_dir = %s\nrun_dir = %s\n"
                "[network default]\nbridge = berth0\nsubnet = 10.88.0.0/16\n"
                "service_range = 10.96.0.0/16\n"
                "[dns]\nupstream = 127.0.0.1\n" % (d.state, d.run))
    for i in range(1, len(BACKENDS) + 1):
        d.put("b%d" % i, "[container]\nrootfs = %s\ncommand = /bin/crr serve %d %d\n"
              "labels = app=web\nstop_timeout = 0\n" % (root, TARGET, i))
    sd = os.path.join(d.etc, "services.d")
    os.makedirs(sd, exist_ok=True)
    for name, vip in services(n):
        with open(os.path.join(sd, name + ".ini"), "w") as f:
            f.write("[service]\nselect = app=web\nports = %d:%d/%s\nvip = %s\nbalance = random\n"
                    % (PORT, TARGET, PROTO, vip))


class BerthSvc:
    def __init__(self, work, root, n):
        self.name = "berth"
        self.n = n
        self.tag = "bs%d%s" % (n, PROTO[0])
        self.d = bench.Berth(os.path.join(work, self.tag), bench.netns_add(self.tag))
        berth_config(self.d, root, n)
        r = subprocess.run([bench.BIN, "-c", self.d.etc, "config", "check"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        if r.returncode:
            first = (r.stdout.decode(errors="replace").strip().splitlines() or ["?"])[0]
            raise NotBuilt("berth config check: %s" % first)
        self.cl = None
        try:
            self.up()
        except Exception:
            self.close()
            raise

    def up(self):
        n = self.n
        self.start_ms = ms(self.d.start())
        if bench.wait_for(lambda: self.d.cli("ps").count(" running ") >= len(BACKENDS), 60, 0.05) is None:
            raise RuntimeError("berth N=%d: the backends did not start: %s" % (n, self.d.cli("ps")))
        self.pin_backends()
        self.cl = client_ns(self.tag, self.tag)
        host_sysctls(self.tag, None)
        self.bridge_nf = read_sysctl(self.tag, "net.bridge.bridge-nf-call-iptables")
        if not until_answers(self.cl, 30):
            raise RuntimeError("berth N=%d: the VIP does not answer" % n)

    def pin_backends(self):
        """The containers' responders (processes below their monitors) on CPU."""
        mons = set(self.d.monitors())
        found = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    if not f.read().startswith(b"/bin/crr\0serve\0"):
                        continue
                p = int(pid)
                while p > 1 and p not in mons:
                    with open("/proc/%d/status" % p) as f:
                        p = int(next(ln for ln in f if ln.startswith("PPid:")).split()[1])
                if p in mons:
                    os.sched_setaffinity(int(pid), CPU)
                    found += 1
            except (OSError, ValueError, StopIteration):
                pass
        if found != len(BACKENDS):
            raise RuntimeError("berth N=%d: %d responders found, not %d" % (self.n, found, len(BACKENDS)))

    def close(self):
        self.d.stop()
        for ns in (self.tag, self.tag + "-cl"):
            if ns.endswith("-cl") and not self.cl:
                continue
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)


# ---- the run ----------------------------------------------------------------

def med(values):
    return bench.p50(values)


def pct_change(big, small):
    if big is None or small is None or small <= 0:
        return None
    return 100.0 * (big / small - 1)


def signed(v):
    return "-" if v is None else "%+.1f %%" % v


def main():
    global PROTO
    if not os.access(CRR, os.X_OK):
        say("   svc: %s is missing (make bench builds it)" % CRR)
        return
    work = tempfile.mkdtemp(prefix="berth-bench-svc.")
    try:
        bench.netns_add("svc-probe")
        flavour, version = iptables_flavour("svc-probe")
        bench.sh("ip", "netns", "del", "svc-probe")
        root = bench.rootfs(work)
        if root:
            shutil.copy(CRR, os.path.join(root, "bin", "crr"))
        for PROTO in PROTOS:
            one_pass(work, root, flavour, version)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def one_pass(work, root, flavour, version):
    """Both tools at N=1 and N=BIG for PROTO, measured side by side."""
    tools = []
    try:
        berth_note = None
        bridge_nf = None
        if not root:
            berth_note = "no busybox root (busybox-static)"
        else:
            for n in (1, BIG):
                try:
                    t = BerthSvc(work, root, n)
                    tools.append(t)
                    bridge_nf = t.bridge_nf
                except NotBuilt as ex:
                    berth_note = "services not built yet (%s)" % ex
                    break
                except Exception as ex:
                    # the peer's half still runs
                    berth_note = "left out after a failure: %s" % ex
                    break
        # kube-proxy wants br_netfilter on; berth's own setting when it ran
        for n in (1, BIG):
            tools.append(Peer(n, flavour, bridge_nf if bridge_nf is not None else "1"))
        peers = [t for t in tools if t.name == "peer"]
        say("services: new-connection round trips through a VIP (%s), %d rounds of %d to each world,"
            " interleaved one by one (load %s)"
            % ("TCP connect, 18-byte request, 2-byte answer, close" if PROTO == "tcp" else
               "UDP: an 18-byte request and its 2-byte answer from a fresh socket each", REPS, RT, bench.load()))
        say("   client: crr (C, one process) in a network namespace behind a veth; VIP %s:%d -> %d/%s,"
            % (VIP, PORT, TARGET, PROTO))
        say("   3 backends (crr serve) on a bridge, 10.88.0.0/16. N=%d: web and %d more services selecting"
            " the same 3 backends on other VIPs (10.96.1.1 and on)" % (BIG, BIG - 1))
        say("   peer: kube-proxy's iptables design, %s; N=%d: %d rules, the measured service rule %d of %d"
            " in KUBE-SERVICES; loaded by iptables-restore in %.0f ms (N=1: %.0f ms)"
            % (version, BIG, peers[1].n_rules, (BIG - 1) // 2 + 1, BIG,
               peers[1].load_ms, peers[0].load_ms))
        if berth_note:
            say("   berth: " + berth_note)
        else:
            say("   berth: the shipped binary's daemon, services.d; daemon start to READY with N=1 %.0f ms,"
                " N=%d %.0f ms" % (tools[0].start_ms, BIG, tools[1].start_ms))
        say("   bridge-nf-call-iptables: %s; the client and the responders on CPU %d"
            % (bridge_nf if bridge_nf is not None else "1 (peer)", min(CPU)))
        # warm: caches, the neighbours, conntrack's hash
        crr_all([t.cl for t in tools], 200)
        load0 = bench.load()
        res = {}
        for k in range(REPS):
            # one round trip to each in turn; the first of each turn rotates
            order = tools[k % len(tools):] + tools[:k % len(tools)]
            for t, r in zip(order, crr_all([t.cl for t in order], RT)):
                res.setdefault((t.name, t.n), []).append(r)
        load1 = bench.load()

        def fig(key, what):
            runs = res.get(key)
            return med([r[what] for r in runs]) if runs else None

        say("   (load %s -> %s)" % (load0, load1))
        say("   %-14s %-9s %-9s %-14s %-8s %s" % ("", "p50 µs", "p99 µs", "round trips/s", "failed",
                                                 "answers per backend"))
        for name in ("berth", "peer"):
            for n in (1, BIG):
                runs = res.get((name, n))
                if not runs:
                    say("   %-14s %s" % ("%s N=%d" % (name, n), "-"))
                    continue
                ids = [sum(r["ids"][i] for r in runs) for i in range(1, len(BACKENDS) + 1)]
                say("   %-14s %-9.1f %-9.1f %-14.0f %-8d %s" % (
                    "%s N=%d" % (name, n), fig((name, n), "p50_us"), fig((name, n), "p99_us"),
                    fig((name, n), "per_s"), sum(int(r["fail"]) for r in runs),
                    " ".join("%.0f%%" % (100.0 * x / max(1, sum(ids))) for x in ids)))
        flat = {}
        for name in ("berth", "peer"):
            # per round: its N=1 and N=1000 runs were next to each other
            rounds = list(zip(res.get((name, 1), []), res.get((name, BIG), [])))
            f50 = [pct_change(big["p50_us"], small["p50_us"]) for small, big in rounds]
            fps = [pct_change(big["per_s"], small["per_s"]) for small, big in rounds]
            d50 = med([big["p50_us"] - small["p50_us"] for small, big in rounds])
            flat[name] = (med(f50), med(fps))
            say("   %s flatness, N=%d against N=1, median of the rounds (quartiles): p50 %s (%s, %s),"
                " %s µs; round trips/s %s%s" % (
                    name, BIG, signed(flat[name][0]), signed(bench.pct(f50, 25)), signed(bench.pct(f50, 75)),
                    "-" if d50 is None else "%+.1f" % d50,
                    signed(flat[name][1]), "  (goal: within 5 %)" if name == "berth" else ""))
        for n in (1, BIG):
            b, p = fig(("berth", n), "p50_us"), fig(("peer", n), "p50_us")
            say("   N=%d p50, peer / berth: %s" % (n, bench.ratio(p, b)))
        ld = "%s-%s" % (load0, load1)
        b, p = fig(("berth", BIG), "p50_us"), fig(("peer", BIG), "p50_us")
        what = "new TCP connection" if PROTO == "tcp" else "UDP, fresh source port"
        bench.row("VIP round trip (%s) p50 at N=%d services (µs)" % (what, BIG),
                  bench.fmt(b) if b else "- (%s)" % (berth_note or "?").split(" (")[0].split(":")[0],
                  "kube-proxy iptables %s" % bench.fmt(p),
                  bench.ratio(p, b), "-", ld)
        bench.row("VIP round trip (%s) p50, N=%d over N=1" % (what, BIG),
                  signed(flat["berth"][0]), "kube-proxy iptables %s" % signed(flat["peer"][0]), "-",
                  "within 5 %", ld)
    finally:
        for t in tools:
            try:
                t.close()
            except Exception as ex:
                say("   %s N=%d: close: %s" % (t.name, t.n, ex))


if __name__ == "__main__":
    main()
