#!/usr/bin/env python3
"""ports.py - published ports: the k-th of 5,000 port maps added by a reload,
and 5,000 and 10,000 loaded at start, end to end.

berth (the shipped binary's daemon): container "bulk" publishes k-1 ports (one
range), container "probe" none; the k-th is `ports = 30000:80` written into
probe.ini and applied by `berth reload` (file to reply), then taken out again
by another reload (also timed). Start: a fresh daemon whose bulk publishes
5,000 or 10,000 ports, exec to READY=1 (sd_notify: reconciled, answering).

Peers, the same kernel work (one element in a DNAT map of inet_proto .
inet_service : ipv4_addr . inet_service, one in a counter set, one batch),
in a table built like berth's, each in its own network namespace:
  `nft add element ...`: one process per port map, as a script would;
  `nft -e -i`: one long-lived nft, the command on its stdin, done when it
    prints the new generation;
  start: `nft -f` of the table with its 5,000 or 10,000 elements.
PORTS_REPS (5) repetitions per mark, median; start: 3 each. Interleaved:
each mark runs berth, then the peers, in turn.
"""
import os
import select
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True     # nothing written into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from bench import now, ms, p50, fmt, say  # noqa: E402

bench.sandbox("ports")

REPS = int(os.environ.get("PORTS_REPS", "5"))
MARKS = [1, 1000, 5000]
LOADS = [5000, 10000]
TABLE = """table inet peer {
	map ports4 { type inet_proto . inet_service : ipv4_addr . inet_service; }
	set count { type inet_proto . inet_service; counter; }
	chain published { type nat hook prerouting priority -100; dnat ip to meta l4proto . th dport map @ports4; }
}
"""


def elements(first, n):
    """nft commands that add n port maps from port first (one batch)."""
    if n <= 0:
        return ""
    maps = ", ".join("tcp . %d : 10.88.0.2 . %d" % (p, p) for p in range(first, first + n))
    cnts = ", ".join("tcp . %d" % p for p in range(first, first + n))
    return "add element inet peer ports4 { %s }\nadd element inet peer count { %s }\n" % (maps, cnts)


def one(verb, port):
    return ("%s element inet peer ports4 { tcp . %d : 10.88.0.3 . 80 }; "
            "%s element inet peer count { tcp . %d }" % (verb, port, verb, port))


def nft_f(text):
    subprocess.run(["nft", "-f", "-"], input=text.encode(), check=True)


class NftI:
    """A long-lived `nft -e -i`."""

    def __init__(self):
        self.p = subprocess.Popen(["nft", "-e", "-i"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, bufsize=0)

    def do(self, line):
        """Run line; an add is done when nft prints the new generation. A
        delete prints nothing with -e: a failing `list` after it (its error
        comes once the delete is done) says when; not timed."""
        t0 = now()
        self.p.stdin.write(line.encode() + b"\n")
        if not line.startswith("add"):
            self.p.stdin.write(b"list set inet peer nosuch\n")
        while True:
            if not select.select([self.p.stdout], [], [], 30)[0]:
                raise RuntimeError("nft -i: no answer in 30 s to: %s" % line)
            out = self.p.stdout.readline()
            if not out:
                raise RuntimeError("nft -i ended")
            if out.startswith(b"# new generation") and line.startswith("add"):
                return ms(now() - t0)
            if out.strip().startswith(b"^") and not line.startswith("add"):
                return None
            if b"Error" in out and line.startswith("add"):
                raise RuntimeError("nft -i: %s" % out.decode(errors="replace"))

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def berth_ini(d, root, n_bulk):
    bulk = ("ports = %d-%d:%d-%d\n" % (20000, 20000 + n_bulk - 1, 20000, 20000 + n_bulk - 1)
            if n_bulk > 0 else "")
    d.put("bulk", "[container]\nrootfs = %s\ncommand = sleep 1000000\nstop_timeout = 0\n%s" % (root, bulk))


def probe(d, root, port):
    d.put("probe", "[container]\nrootfs = %s\ncommand = sleep 1000000\nstop_timeout = 0\n%s"
          % (root, "ports = %d:80\n" % port if port else ""))


def main():
    work = tempfile.mkdtemp(prefix="berth-bench-ports.")
    d = None
    nfti = None
    try:
        root = bench.rootfs(work)
        if not root:
            say("   ports: no busybox rootfs (busybox-static)")
            return
        peer_ns = bench.netns_add("bh-nft")
        load0 = bench.load()
        d = bench.Berth(os.path.join(work, "b"), bench.netns_add("bh-berth"))
        berth_ini(d, root, 0)
        probe(d, root, 0)
        d.start()
        bench.setns(peer_ns)
        nft_f(TABLE)
        nfti = NftI()
        res = {}
        for k in MARKS:
            berth_ini(d, root, k - 1)
            d.cli("reload")
            bench.setns(peer_ns)
            nft_f("flush set inet peer count\nflush map inet peer ports4\n" + elements(20000, k - 1))
            b_add, b_del, p_add, p_del, i_add, i_del = [], [], [], [], [], []
            for _ in range(REPS):
                t0 = now()
                probe(d, root, 30000)
                d.cli("reload")
                b_add.append(ms(now() - t0))
                t0 = now()
                probe(d, root, 0)
                d.cli("reload")
                b_del.append(ms(now() - t0))
                t0 = now()
                subprocess.run(["nft", one("add", 30000)], check=True)
                p_add.append(ms(now() - t0))
                t0 = now()
                subprocess.run(["nft", one("delete", 30000)], check=True)
                p_del.append(ms(now() - t0))
                i_add.append(nfti.do(one("add", 30000)))
                i_del.append(nfti.do(one("delete", 30000)))
            res[k] = [p50(x) for x in (b_add, b_del, p_add, p_del, i_add, i_del)]
        n4 = d.cli("ports").count("\n")
        load1 = bench.load()
        say("port maps: the k-th added to k-1 (and taken out again), ms, median of %d (load %s -> %s)"
            % (REPS, load0, load1))
        say("   %-8s %-16s %-16s %-16s %-9s %-9s" % ("k", "berth reload", "nft add element",
                                                     "nft -i (resident)", "nft/b", "nft -i/b"))
        say("   %-8s %-16s %-16s %-16s" % ("", "add / remove", "add / delete", "add"))
        for k in MARKS:
            ba, bd, pa, pd, ia, idl = res[k]
            say("   %-8d %-16s %-16s %-16s %-9s %-9s" % (
                k, "%s / %s" % (fmt(ba), fmt(bd)), "%s / %s" % (fmt(pa), fmt(pd)),
                "%s" % fmt(ia, 2), bench.ratio(pa, ba), bench.ratio(ia, ba)))
            bench.row("port map #%d added by a reload (ms)" % k, fmt(ba),
                      "nft %s / nft -i %s" % (fmt(pa), fmt(ia, 2)),
                      "%s / %s" % (bench.ratio(pa, ba), bench.ratio(ia, ba)),
                      "flat in k", "%s-%s" % (load0, load1))
        say("   (berth: probe.ini edited + `berth reload` until the reply; `berth ports` lists %d rows at the end)"
            % (n4 - 1 if n4 else 0))
        nfti.close()
        nfti = None
        d.stop()
        shutil.rmtree(d.work, ignore_errors=True)
        d = None

        # start-up: a fresh daemon with n ports beside nft -f of the same
        load0 = bench.load()
        say("start-up with n port maps, ms, median of 3 (berth: exec to READY=1, fresh state,"
            " 2 containers; nft -f: table + elements)")
        say("   %-8s %-12s %-12s %-9s" % ("n", "berth", "nft -f", "nft/b"))
        for n in LOADS:
            bt, pt = [], []
            for rep in range(3):
                d = bench.Berth(os.path.join(work, "s%d-%d" % (n, rep)), bench.netns_add("bs%d-%d" % (n, rep)))
                berth_ini(d, root, n)
                probe(d, root, 0)
                bt.append(ms(d.start()))
                got = d.cli("ports").count("\n") - 1
                d.stop()
                d = None
                if got != n:
                    say("   warning: berth listed %d published ports, not %d" % (got, n))
                bench.setns(peer_ns)
                subprocess.run(["nft", "delete", "table", "inet", "peer"], check=True)
                text = TABLE + elements(20000, n)
                t0 = now()
                nft_f(text)
                pt.append(ms(now() - t0))
            load1 = bench.load()
            say("   %-8d %-12s %-12s %-9s" % (n, fmt(p50(bt)), fmt(p50(pt)), bench.ratio(p50(pt), p50(bt))))
            bench.row("start with %d port maps (ms)" % n, fmt(p50(bt)), "nft -f %s" % fmt(p50(pt)),
                      bench.ratio(p50(pt), p50(bt)), "-", "%s-%s" % (load0, load1))
        say("   (berth's start also opens its store, creates the bridge, starts 2 containers' monitors)")
    finally:
        if nfti:
            nfti.close()
        if d:
            d.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
