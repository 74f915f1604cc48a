#!/usr/bin/env python3
"""image.py - a container from a registry's image, end to end: pull, unpack
and first start, until the container's published port answers.

The image is the test image of issue 21 (tests/helpers/mkimage.py: three
layers, the busybox rootfs below, IMAGE_PAD bytes of incompressible data
in the top layer so that the transfer is not nothing), pushed once into a
real registry, Debian's docker-registry, on loopback with TLS and basic auth
(tests/helpers/registry.sh). Both tools start from an empty image store on
every repetition.

berth: the shipped binary's daemon ([images] ca and credentials in
berth.ini); write containers.d/iK.ini (image = REGISTRY/bench/app:1,
command = serve, ports = PORT:8080) and `berth reload`: the daemon pulls in
the background and starts the container when the image is there; done when
a TCP connection to PORT of the gateway succeeds. Then the container is
removed and the image with it (`berth image rm`, not timed).
Peer: `podman pull` + `podman run -d -p PORT:8080 IMAGE serve` of the same
image from the same registry (podman 4.3, overlay storage driver, its CNI
bridge network with the portmap plugin, cgroups off), until the port
answers; then `podman rm -f` and `podman rmi` (not timed).
IMAGE_REPS (5) of each, interleaved, the order rotating; median.

Flash: the bytes each tool's pull caused to be written (write_bytes of
/proc/PID/io: the berth daemon's, delta over the pull; podman pull's own,
from its rusage), and what each keeps on disk afterwards (du of its store).
Then a second image sharing the base layer (mkimage --kind sibling): what
pulling it costs when the first is present, for both tools.
"""
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

bench.sandbox("image")

REPS = int(os.environ.get("IMAGE_REPS", "5"))
PAD = int(os.environ.get("IMAGE_PAD", str(8 << 20)))
TOP = bench.TOP


def answers(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(1)
    try:
        s.connect((addr, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def until_answers(netns, addr, port, t0, timeout=120):
    bench.setns(netns)
    t1 = bench.wait_for(lambda: answers(addr, port), timeout, 0.002)
    if t1 is None:
        raise RuntimeError("%s:%d did not answer in %d s" % (addr, port, timeout))
    return ms(t1 - t0)


def write_bytes(pid):
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    return 0


def du(path):
    r = subprocess.run(["du", "-sb", path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        return int(r.stdout.split()[0])
    except (IndexError, ValueError):
        return 0


def mb(n):
    return "%.1f MB" % (n / 1e6)


class Registry:
    """docker-registry through tests/helpers/registry.sh, kept by a shell
    that lives as long as the benchmark (its watchdog ends the registry
    with that shell), on 127.0.0.1 of the tool's own network namespace:
    each tool gets a registry of its own with the same images, as the
    tools cannot share a loopback."""

    def __init__(self, work, netns, images):
        os.makedirs(work)
        self.env_file = os.path.join(work, "registry.env")
        script = ('. "$BERTH_TOP/tests/helpers/registry.sh"\n'
                  'registry_start "$1/registry" >"$1/registry.out" 2>&1 || exit 1\n'
                  'shift\n'
                  'while [ $# -gt 0 ]; do registry_push "$1" "$2" >>"$W/registry.out" 2>&1 || exit 1;'
                  ' shift 2; done\n'
                  'env | grep ^REGISTRY >"$W/registry.env.tmp" && mv "$W/registry.env.tmp" "$W/registry.env"\n'
                  'exec sleep 100000\n')
        args = []
        for src, ref in images:
            args += [src, ref]
        env = dict(os.environ, BERTH_TOP=TOP, W=work)
        self.proc = subprocess.Popen(["ip", "netns", "exec", os.path.basename(netns), "sh", "-c", script,
                                      "registry", work] + args, env=env)
        if bench.wait_for(lambda: os.path.exists(self.env_file) or self.proc.poll() is not None,
                          300, 0.1) is None or self.proc.poll() is not None:
            raise RuntimeError("the registry did not start: %s" % open(os.path.join(work, "registry.out")).read())
        self.env = {}
        with open(self.env_file) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("=")
                self.env[k] = v
        self.addr = self.env["REGISTRY"]

    def close(self):
        self.proc.kill()
        self.proc.wait()


class BerthImage:
    name = "berth"

    def __init__(self, work, images):
        netns = bench.netns_add("bh-berth")
        bench.sh("ip", "-n", "bh-berth", "link", "set", "lo", "up")
        self.reg = reg = Registry(os.path.join(work, "breg"), netns, images)
        self.work = os.path.join(work, "b")
        state = os.path.join(self.work, "state")
        self.ini = ("[daemon]\nstate_dir = %s\nrun_dir = %s\n"
                    "[network default]\nbridge = berth0\nsubnet = 10.88.0.0/16\n"
                    "[dns]\nupstream = 127.0.0.1\n"
                    "[images]\nca = %s\ncredentials = %s\n"
                    % (state, os.path.join(self.work, "run"), reg.env["REGISTRY_CA"], reg.env["REGISTRY_AUTH"]))
        self.d = bench.Berth(self.work, netns, self.ini)
        self.d.start()
        self.store = os.path.join(state, "images")

    def once(self, k, ref="bench/app:1", keep=False):
        port = 8000 + k
        image = "%s/%s" % (self.reg.addr, ref)
        w0 = write_bytes(self.d.pid)
        t0 = now()
        self.d.put("i%d" % k, "[container]\nimage = %s\ncommand = serve\nports = %d:8080\n"
                   "stop_timeout = 0\n" % (image, port))
        self.d.cli("reload")
        t = until_answers(self.d.netns, "10.88.0.1", port, t0)
        written = write_bytes(self.d.pid) - w0
        kept = du(self.store)
        self.d.remove("i%d" % k)
        self.d.cli("reload", "--wait")
        if not keep:
            self.d.cli("image", "rm", image)
        return t, written, kept

    def pull_only(self, ref):
        w0 = write_bytes(self.d.pid)
        before = du(self.store)
        t0 = now()
        self.d.cli("image", "pull", "%s/%s" % (self.reg.addr, ref))
        return ms(now() - t0), write_bytes(self.d.pid) - w0, du(self.store) - before

    def rm(self, ref):
        self.d.cli("image", "rm", "%s/%s" % (self.reg.addr, ref), check=False)

    def close(self):
        self.d.stop()
        self.reg.close()


class PodmanImage:
    name = "podman"

    def __init__(self, work, images):
        if not shutil.which("podman"):
            raise RuntimeError("podman is not installed (mk/deps.sh bench)")
        self.host = bench.netns_add("bh-podman")
        bench.sh("ip", "-n", "bh-podman", "link", "set", "lo", "up")
        self.reg = reg = Registry(os.path.join(work, "preg"), self.host, images)
        self.t = os.path.join(work, "p")
        os.makedirs(os.path.join(self.t, "etc"))
        with open(os.path.join(self.t, "containers.conf"), "w") as f:
            f.write('[containers]\ncgroups = "disabled"\n'
                    'default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]\n'
                    '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
                    'events_logfile_path = "%s/events.log"\ntmp_dir = "%s/libpod"\n'
                    '[network]\nnetwork_backend = "cni"\nnetwork_config_dir = "%s/cni"\n'
                    % (self.t, self.t, self.t))
        with open(os.path.join(self.t, "storage.conf"), "w") as f:
            f.write('[storage]\ndriver = "overlay"\nrunroot = "%s/runroot"\ngraphroot = "%s/root"\n'
                    % (self.t, self.t))
        with open(os.path.join(self.t, "registries.conf"), "w") as f:
            f.write("")
        self.env = dict(os.environ, CONTAINERS_CONF=os.path.join(self.t, "containers.conf"),
                        CONTAINERS_STORAGE_CONF=os.path.join(self.t, "storage.conf"),
                        CONTAINERS_REGISTRIES_CONF=os.path.join(self.t, "registries.conf"),
                        TMPDIR=self.t)
        # podman's own fixed paths: a private /etc/containers (policy), /dev/shm
        # (libpod's lock) and an empty /sys/fs/cgroup, in this sandbox only
        pol = os.path.join(self.t, "etc", "policy.json")
        with open(pol, "w") as f:
            f.write('{"default":[{"type":"insecureAcceptAnything"}]}')
        bench.sh("mount", "--bind", os.path.join(self.t, "etc"), "/etc/containers")
        bench.sh("mount", "-t", "tmpfs", "-o", "mode=1777", "bench-shm", "/dev/shm")
        bench.sh("mount", "-t", "tmpfs", "-o", "mode=0755", "bench-nocg", "/sys/fs/cgroup")
        self.store = os.path.join(self.t, "root")
        self.creds = "%s:%s" % (reg.env["REGISTRY_USER"], reg.env["REGISTRY_PASS"])

    def podman(self, *args, check=True):
        argv = ["podman", "--root", self.store, "--runroot", os.path.join(self.t, "runroot"),
                "--storage-driver", "overlay", "--network-backend", "cni",
                "--network-config-dir", os.path.join(self.t, "cni"), "--tmpdir",
                os.path.join(self.t, "libpod")] + list(args)
        bench.setns(self.host)
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self.env)
        out, _ = p.communicate()
        if check and p.returncode:
            raise RuntimeError("podman %s: %s" % (" ".join(args), out.decode(errors="replace")))
        return out.decode(errors="replace")

    def pull(self, image):
        """podman pull, and the bytes it caused to be written (its rusage)."""
        argv = ["podman", "--root", self.store, "--runroot", os.path.join(self.t, "runroot"),
                "--storage-driver", "overlay", "--tmpdir", os.path.join(self.t, "libpod"),
                "pull", "-q", "--cert-dir", self.reg.env["REGISTRY_CERT_DIR"], "--creds", self.creds, image]
        bench.setns(self.host)
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self.env)
        out = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = status
        if status:
            raise RuntimeError("podman pull: %s" % out.decode(errors="replace"))
        return ru.ru_oublock * 512

    def once(self, k, ref="bench/app:1", keep=False):
        port = 9000 + k
        image = "%s/%s" % (self.reg.addr, ref)
        t0 = now()
        written = self.pull(image)
        self.podman("run", "-d", "--name", "p%d" % k, "-p", "%d:8080" % port, image, "serve")
        t = until_answers(self.host, "127.0.0.1", port, t0)
        kept = du(self.store)
        self.podman("rm", "-f", "-t", "0", "p%d" % k, check=False)
        if not keep:
            self.podman("rmi", "-f", image, check=False)
        return t, written, kept

    def pull_only(self, ref):
        before = du(self.store)
        t0 = now()
        written = self.pull("%s/%s" % (self.reg.addr, ref))
        return ms(now() - t0), written, du(self.store) - before

    def rm(self, ref):
        self.podman("rmi", "-f", "%s/%s" % (self.reg.addr, ref), check=False)

    def close(self):
        self.podman("rm", "-fa", "-t", "0", check=False)
        self.podman("rmi", "-fa", check=False)
        self.reg.close()


def main():
    work = tempfile.mkdtemp(prefix="berth-bench-image.")
    tools = []
    try:
        root = os.path.join(work, "rootfs")
        if subprocess.run(["sh", os.path.join(TOP, "mk/busybox-rootfs.sh"), os.uname().machine, root],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode:
            say("   image: no busybox rootfs (busybox-static)")
            return
        arch = {"x86_64": "amd64", "aarch64": "arm64"}[os.uname().machine]
        imgs = []
        for kind, ref in (("full", "bench/app:1"), ("sibling", "bench/sibling:1")):
            out = os.path.join(work, kind + ".tar")
            bench.sh("python3", os.path.join(TOP, "tests/helpers/mkimage.py"), "--rootfs", root,
                     "--arch", arch, "--format", "oci-archive", "--kind", kind,
                     "--pad", str(PAD if kind == "full" else 0), "--out", out)
            imgs.append(("oci-archive:" + out, ref))
        tools.append(BerthImage(work, imgs))
        try:
            tools.append(PodmanImage(work, imgs))
        except Exception as ex:
            say("   podman: left out: %s" % ex)
        load0 = bench.load()
        res = {t.name: [] for t in tools}
        for k in range(1, REPS + 1):
            order = tools[k % len(tools):] + tools[:k % len(tools)]
            for t in list(order):
                try:
                    res[t.name].append(t.once(k))
                except Exception as ex:
                    say("   %s: left out after a failure: %s" % (t.name, ex))
                    tools.remove(t)
                    if t.name == "berth":
                        raise
        # a second image sharing the base layer, with the first present
        share = {}
        for t in tools:
            t.once(100, keep=True)
            share[t.name] = t.pull_only("bench/sibling:1")
            t.rm("bench/sibling:1")
            t.rm("bench/app:1")
        load1 = bench.load()
        say("pull + unpack + first start of a 3-layer image (%s of padding) from docker-registry"
            " (TLS, basic auth) until its published port answers, ms, median (p90) of %d,"
            " interleaved (load %s -> %s)" % (mb(PAD), REPS, load0, load1))
        b = p50([r[0] for r in res["berth"]])
        for t in tools:
            v = [r[0] for r in res[t.name]]
            say("   %-44s %-16s %s" % (
                {"berth": "berth (file with image = + reload)",
                 "podman": "podman pull + podman run -d -p"}[t.name],
                "%s (%s)" % (fmt(p50(v)), fmt(pct(v, 90))),
                "" if t.name == "berth" else "peer/berth %s" % bench.ratio(p50(v), b)))
        say("flash: bytes written by the pull (median), store size after")
        for t in tools:
            say("   %-44s written %-12s kept %s" % (t.name, mb(p50([r[1] for r in res[t.name]])),
                                                     mb(p50([r[2] for r in res[t.name]]))))
        say("a second image sharing the base layer, pulled with the first present:"
            " ms, bytes written, store growth")
        for t in tools:
            s = share[t.name]
            say("   %-44s %-10s written %-12s grew %s" % (t.name, fmt(s[0]), mb(s[1]), mb(s[2])))
        pm = p50([r[0] for r in res.get("podman", [])])
        bench.row("image pull + unpack + first start (ms)", fmt(b), "podman %s" % fmt(pm),
                  bench.ratio(pm, b), "-", "%s-%s" % (load0, load1))
        bw = p50([r[1] for r in res["berth"]])
        pw = p50([r[1] for r in res.get("podman", [])])
        bench.row("image pull: flash bytes written (MB)", "%.1f" % (bw / 1e6),
                  "podman %.1f" % (pw / 1e6), bench.ratio(pw, bw), "each layer once", "%s-%s" % (load0, load1))
    finally:
        for t in tools:
            try:
                t.close()
            except Exception as ex:
                say("   %s: close: %s" % (t.name, ex))
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
