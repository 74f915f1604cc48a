#!/usr/bin/env python3
"""fw_matrix.py - the firewall's reachability matrix (issue 9), driven by
tests/integration/fw_matrix.sh inside its sandbox.

Nine containers in three groups (a, b, c) x three (1, 2, 3) listen on TCP and
UDP ports 80 and 81 (tests/helpers/fw_probe serve, inside each container's
netns). For each scenario the policies are written, `berth reload` applies
them, every ordered pair of containers (and world and host to every
container) is probed on both ports and protocols at once, and the result is
compared with the expectation this file writes down for the scenario - which
is independent of berth's own model. Then `policy why` is asked about every
probe and must give the same verdict. Prints TAP lines.
"""
import json
import os
import socket
import subprocess
import sys
import time

BERTH = os.environ["BERTH"]
CONF = os.environ["CONF"]
STATE = os.environ["STATE"]
SOCK = os.environ["SOCK"]
PROBE = os.environ["PROBE"]
WORLD_NS = os.environ["WORLD_NS"]       # netns file of the world
WORLD_ADDR = os.environ["WORLD_ADDR"]

GROUPS = "abc"
CTRS = [g + str(i) for g in GROUPS for i in (1, 2, 3)]
ADDR = {c: "10.88.0.%d%d" % ("abc".index(c[0]) + 1, int(c[1])) for c in CTRS}
PORTS = [(80, "tcp"), (81, "tcp"), (80, "udp"), (81, "udp")]
LABELS = {c: {"group": c[0], "idx": c[1]} for c in CTRS}

n_test = 0
failed = 0


def tap(ok, what, details=()):
    global n_test, failed
    n_test += 1
    if not ok:
        failed += 1
    print("%s %d - %s" % ("ok" if ok else "not ok", n_test, what))
    for d in list(details)[:40]:
        print("#   " + d)
    sys.stdout.flush()


def write_container(name, labels):
    with open(os.path.join(CONF, "containers.d", name + ".ini"), "w") as f:
        f.write("[container]\nrootfs = /\ncommand = sleep 100000\nlabels = %s\nip = %s\n"
                % (", ".join("%s=%s" % kv for kv in sorted(labels.items())), ADDR[name]))


def write_policies(policies):
    pdir = os.path.join(CONF, "policies.d")
    for f in os.listdir(pdir):
        os.unlink(os.path.join(pdir, f))
    for name, text in policies.items():
        with open(os.path.join(pdir, name + ".ini"), "w") as f:
            f.write(text)


def request(words):
    """One control request; returns (ok, body)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(SOCK)
    s.sendall((" ".join(words) + "\n").encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    text = data.decode()
    head, _, body = text.partition("\n")
    return head == "ok", body if head == "ok" else head


def pid_of(name):
    r = subprocess.run([BERTH, "-s", SOCK, "-o", "json", "ps"], capture_output=True, text=True)
    try:
        return next((c.get("pid") for c in json.loads(r.stdout) if c.get("name") == name), None)
    except ValueError:
        return None


def reload():
    r = subprocess.run([BERTH, "-s", SOCK, "reload"], capture_output=True, text=True)
    return r.returncode == 0, r.stdout + r.stderr


def probes(ctrs):
    """(src, dst, port, proto) for every ordered pair, and world/host -> each."""
    out = []
    for s in ctrs + ["world", "host"]:
        for d in ctrs:
            if s == d:
                continue
            for port, proto in PORTS:
                out.append((s, d, port, proto))
    return out


# Source ports for the probes, below the kernel's ephemeral range, never one
# twice in a run: a UDP probe from a port an earlier scenario used would ride
# that scenario's conntrack entry (established flows pass, policy or not).
SPORT_FIRST, SPORT_END = 10000, 32000
next_sport = SPORT_FIRST


def run_probes(plist, addr):
    global next_sport
    if next_sport + len(plist) > SPORT_END:
        next_sport = SPORT_FIRST
    sport, next_sport = next_sport, next_sport + len(plist)
    lines = []
    for s, d, port, proto in plist:
        ns = {"world": WORLD_NS, "host": "-"}.get(s, os.path.join(STATE, "netns", s))
        lines.append("%s %s %d %s" % (ns, addr[d], port, proto))
    r = subprocess.run([PROBE, "probe", "700", str(sport)], input="\n".join(lines) + "\n",
                       capture_output=True, text=True, check=True)
    return [x == "open" for x in r.stdout.split()]


def why(s, d, port, proto):
    src = WORLD_ADDR if s == "world" else s
    ok, body = request(["policy", "why", src, d, "%d/%s" % (port, proto)])
    if not ok:
        return None, body
    return body.split("\n")[0] == "allow", body.replace("\n", " | ")


# ---- expectations, written from the semantics, not from berth's model ----

def grp(c):
    return c[0] if c not in ("world", "host") else c


def allow_all(s, d, port, proto):
    return True


def scenarios():
    sc = []

    def add(name, policies, expect, extra=None):
        sc.append((name, policies, expect, extra))

    add("no policies: every pair open", {}, allow_all)
    add("default-deny ingress for group a",
        {"deny-a": "[policy]\nselect = group=a\ntypes = ingress\n"},
        lambda s, d, p, pr: grp(d) != "a")
    add("default-deny egress for group a",
        {"deny-a-out": "[policy]\nselect = group=a\ntypes = egress\n"},
        lambda s, d, p, pr: grp(s) != "a")
    add("allow by labels: a accepts only group b",
        {"a-from-b": "[policy]\nselect = group=a\n[ingress from-b]\nfrom = group=b\n"},
        lambda s, d, p, pr: grp(d) != "a" or grp(s) == "b")
    add("AND of terms: a accepts only group=b,idx=1",
        {"a-from-b1": "[policy]\nselect = group=a\n[ingress b1]\nfrom = group=b, idx=1\n"},
        lambda s, d, p, pr: grp(d) != "a" or s == "b1")
    add("OR of peer lines: a accepts group=b or idx=1",
        {"a-from-b-or-1": "[policy]\nselect = group=a\n[ingress b-or-1]\nfrom = group=b\nfrom = idx=1\n"},
        lambda s, d, p, pr: grp(d) != "a" or grp(s) == "b" or s[1:] == "1")
    add("port-specific: a accepts everyone on 80/tcp only",
        {"a-80": "[policy]\nselect = group=a\n[ingress web]\nfrom = all\nports = 80/tcp\n"},
        lambda s, d, p, pr: grp(d) != "a" or (p, pr) == (80, "tcp"))
    add("protocol-specific: a accepts every udp port only",
        {"a-udp": "[policy]\nselect = group=a\n[ingress udp]\nports = udp\n"},
        lambda s, d, p, pr: grp(d) != "a" or pr == "udp")
    add("cidr with except: a accepts 10.88.0.0/24 except group b's /30",
        {"a-cidr": "[policy]\nselect = group=a\n[ingress net]\n"
                   "from = cidr:10.88.0.0/24 except 10.88.0.20/30\n"},
        # the host sends from the gateway, 10.88.0.1: inside the CIDR
        lambda s, d, p, pr: grp(d) != "a" or grp(s) in ("a", "c", "host"))
    add("union of policies: b on 80 (one policy), c on 81 (another)",
        {"a-b80": "[policy]\nselect = group=a\n[ingress b]\nfrom = group=b\nports = 80/tcp, 80/udp\n",
         "a-c81": "[policy]\nselect = group=a\n[ingress c]\nfrom = group=c\nports = 81/tcp, 81/udp\n"},
        lambda s, d, p, pr: grp(d) != "a" or (grp(s) == "b" and p == 80) or (grp(s) == "c" and p == 81))
    add("egress by labels: c may reach only group a on 80/tcp",
        {"c-out": "[policy]\nselect = group=c\n[egress to-a]\nto = group=a\nports = 80/tcp\n"},
        lambda s, d, p, pr: grp(s) != "c" or (grp(d) == "a" and (p, pr) == (80, "tcp")))
    add("notin and != : group notin (a,b) accepts group!=b",
        {"c-not-b": "[policy]\nselect = group notin (a,b)\n[ingress not-b]\nfrom = group!=b\n"},
        # a selector matches containers only: not world, not the host
        lambda s, d, p, pr: grp(d) != "c" or grp(s) in ("a", "c"))
    add("world only: a accepts world, not containers, not host",
        {"a-world": "[policy]\nselect = group=a\n[ingress w]\nfrom = world\n"},
        lambda s, d, p, pr: grp(d) != "a" or s == "world")
    add("host only: a accepts the host",
        {"a-host": "[policy]\nselect = group=a\n[ingress h]\nfrom = host\n"},
        lambda s, d, p, pr: grp(d) != "a" or s == "host")
    add("ingress and egress together: b2 isolated both ways, talks to a1 only",
        {"b2": "[policy]\nselect = group=b, idx=2\ntypes = ingress, egress\n"
               "[ingress a1]\nfrom = group=a, idx=1\n[egress to-a1]\nto = group=a, idx=1\n"},
        lambda s, d, p, pr: (s != "b2" or d == "a1") and (d != "b2" or s == "a1"))
    add("policy removed: every pair open again", {}, allow_all)
    return sc


def run_scenario(name, policies, expect, ctrs):
    write_policies(policies)
    ok, out = reload()
    if not ok:
        tap(False, name + ": reload", out.splitlines())
        tap(False, name + ": policy why agrees")
        return
    plist = probes(ctrs)
    got = run_probes(plist, ADDR)
    bad = ["%s -> %s %d/%s: kernel %s, expected %s" % (s, d, p, pr, "open" if g else "closed",
                                                       "open" if expect(s, d, p, pr) else "closed")
           for (s, d, p, pr), g in zip(plist, got) if g != expect(s, d, p, pr)]
    tap(not bad, "%s (%d probes)" % (name, len(plist)), bad)
    disagree = []
    for (s, d, p, pr), g in zip(plist, got):
        v, text = why(s, d, p, pr)
        if v != g:
            disagree.append("%s -> %s %d/%s: kernel %s, policy why: %s" % (
                s, d, p, pr, "open" if g else "closed", text))
    tap(not disagree, "%s: policy why agrees with all %d probes" % (name, len(plist)), disagree)


def main():
    ctrs = list(CTRS)
    for name, policies, expect, _ in scenarios():
        run_scenario(name, policies, expect, ctrs)

    # A container started after the policy is covered from its first packet.
    write_policies({"deny-a": "[policy]\nselect = group=a\ntypes = ingress\n"})
    ADDR["a4"] = "10.88.0.14"
    write_container("a4", {"group": "a", "idx": "4"})
    ok, out = reload()
    tap(ok, "a new container a4 (group a) is added by reload", out.splitlines())
    server = subprocess.Popen([PROBE, "serve", os.path.join(STATE, "netns", "a4"), "-p", "80", "81"],
                              stdout=subprocess.PIPE, text=True)
    server.stdout.readline()
    plist = [(s, "a4", p, pr) for s in ("b1", "c1", "world") for p, pr in PORTS]
    got = run_probes(plist, ADDR)
    tap(not any(got), "a4 is isolated by the existing policy from its first packet",
        ["%s -> a4 %d/%s open" % (s, p, pr) for (s, _, p, pr), g in zip(plist, got) if g])
    plist = [("a4", d, p, pr) for d in ("b1", "c1") for p, pr in PORTS]
    got = run_probes(plist, ADDR)
    tap(all(got), "a4's own egress is open", [])

    # Labels change in place: a4 takes b1's labels (a label set that already
    # has its chains), then its own again (one that must be made anew).
    inbound = [(s, "a4", p, pr) for s in ("b1", "c1") for p, pr in PORTS]
    pid = pid_of("a4")
    for labels, isolated, what in (({"group": "b", "idx": "1"}, False, "relabeled like b1"),
                                   ({"group": "a", "idx": "4"}, True, "relabeled back to group a")):
        write_container("a4", labels)
        ok, out = reload()
        tap(ok, "a4 %s: reload" % what, out.splitlines())
        got = run_probes(inbound, ADDR)
        tap(not any(got) if isolated else all(got),
            "a4 %s: %s" % (what, "isolated again" if isolated else "open to b1 and c1"),
            ["%s -> a4 %d/%s %s" % (s, p, pr, "open" if g else "closed")
             for (s, _, p, pr), g in zip(inbound, got) if g == isolated])
    tap(pid and pid_of("a4") == pid, "a4 kept its process through its label changes",
        ["pid %s, now %s" % (pid, pid_of("a4"))])
    server.kill()
    server.wait()
    print("1..%d" % n_test)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
