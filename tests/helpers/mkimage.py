#!/usr/bin/env python3
"""mkimage.py - write the test image of issue 21 from a busybox rootfs.

    mkimage.py --rootfs [ARCH=]DIR [--rootfs ARCH=DIR] [--arch amd64|arm64]
               [--format docker-archive|oci-archive|oci-layout]
               [--gzip | --no-gzip] [--name REF] [--kind full|base|sibling]
               [--multiarch] [--flat-index] [--pad BYTES]
               [--device NAME:c|b:MAJOR:MINOR]... [--history-bytes BYTES]
               [--stop-signal SIG] --out PATH

The rootfs is what mk/busybox-rootfs.sh makes (x86_64 for amd64, aarch64 for
arm64). Written with the standard library only; the same arguments give the
same bytes (fixed mtimes, owners, order, gzip headers), so every digest is
stable from run to run and from machine to machine.

--kind full (the default): three layers, which together exercise what an
unpacker must get right:
  1. the busybox rootfs, owned 0:0, plus /etc/passwd (root, app 1000:1000,
     nobody), /etc/group (root, app 1000, nogroup), /home/app (1000:1000,
     0750), /etc/deleteme, /opt/old/a and /opt/old/b
  2. /srv/www/index.html, /etc/motd (with the xattr user.berth=fixture),
     /srv/link -> www/index.html (symlink), /srv/hard (hard link to
     srv/www/index.html), /opt/old/.wh..wh..opq + /opt/old/c (opaque: a and b
     are gone), /etc/.wh.deleteme (whiteout), /srv/start.sh (the entrypoint)
  3. /srv/v3 (and /srv/pad, BYTES of incompressible data, with --pad)
and a configuration a test can observe from the container's output:
  Entrypoint ["/bin/sh","/srv/start.sh"], Cmd ["arg1"],
  Env PATH=/usr/sbin:/usr/bin:/sbin:/bin IMG_VAR=from-image OVERRIDE=image,
  WorkingDir /srv, User app, StopSignal SIGUSR1 (not the default TERM, so a
  runtime that ignores it is seen), ExposedPorts {"8080/tcp":{}} (app is not
  root: start.sh serve binds 8080).
start.sh prints, one per line: uid=1000 gid=1000 user=app, pwd=/srv,
IMG_VAR=.. OVERRIDE=.. VAR=.. (unset when unset), args=ARGS,
opt_old=c, deleteme=absent, link=layer2 hard=layer2, v3=layer3, then
  serve [PORT]  exec httpd -f -p PORT (8080) -h /srv/www
  exit [N]      exit N (0)
  anything else "ready", then waits; SIGUSR1 prints "signal USR1", SIGTERM
                "signal TERM", and it exits 0.
--kind base: layer 1 alone, Cmd ["/bin/sh"], user root.
--kind sibling: layer 1 (the very same blob as full's) and a layer of its own
  (/srv/sibling.txt "sibling"), Cmd ["/bin/sh","-c","cat /srv/sibling.txt &&
  exec sleep 3600"]: a second image sharing the base layer.

--device NAME:c|b:MAJOR:MINOR (repeatable) puts a character or block device
node NAME (mode 0666, 0:0) in the top layer (layer 3, or sibling's own), for
the runtime's [images] allow_devices. --history-bytes BYTES adds "empty
layer" history entries (1000-byte created_by lines, as a long Dockerfile
leaves) until the configuration is at least BYTES long: a configuration
over 1 MiB, as real images with a long history have.

Formats: docker-archive (as `docker save`/`podman save`: manifest.json,
CONFIG.json, LAYER.tar; layers uncompressed unless --gzip), oci-archive (a tar
of an OCI layout), oci-layout (a directory). OCI layers are gzip unless
--no-gzip. --name REF is the RepoTags entry (":latest" added when REF has no
tag) and, in OCI, the org.opencontainers.image.ref.name annotation (REF as
given) of index.json's entry.

--multiarch: an OCI image index with one manifest per --rootfs ARCH=DIR
(amd64: linux/amd64; arm64: linux/arm64/v8), index.json pointing at that
index (as buildkit and `podman manifest push oci:` write it; skopeo copy
--all takes it); with --flat-index, index.json lists the platform manifests
itself. One --rootfs with --multiarch gives an index for that platform
alone (the "no image for this platform" case). Not for docker-archive.

Prints a JSON summary on stdout: {"format", "out", "ref", "index" (the
nested index's digest, or null), "manifests": [{"arch", "variant",
"digest", "size", "config", "layers": [blob digests], "diff_ids":
[...], "layer_sizes": [...]}]}.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import stat
import sys
import tarfile

MTIME = 1704067200          # 2024-01-01T00:00:00Z: every file, every tar header
CREATED = "2024-01-01T00:00:00Z"

MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"

PLATFORMS = {"amd64": {"architecture": "amd64", "os": "linux"},
             "arm64": {"architecture": "arm64", "os": "linux", "variant": "v8"}}

PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "app:x:1000:1000:app:/home/app:/bin/sh\n"
          "nobody:x:65534:65534:nobody:/:/bin/false\n")
GROUP = "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n"

START_SH = r"""#!/bin/sh
# the fixture's entrypoint (tests/helpers/mkimage.py): what it prints shows
# what the runtime gave it and what the unpacked layers hold
trap 'echo "signal USR1"; exit 0' USR1
trap 'echo "signal TERM"; exit 0' TERM
echo "uid=$(id -u) gid=$(id -g) user=$(id -un)"
echo "pwd=$(pwd)"
echo "IMG_VAR=${IMG_VAR-unset} OVERRIDE=${OVERRIDE-unset} VAR=${VAR-unset}"
echo "args=$*"
echo "opt_old=$(ls /opt/old | tr '\n' ' ' | sed 's/ $//')"
if [ -e /etc/deleteme ]; then echo deleteme=present; else echo deleteme=absent; fi
echo "link=$(cat /srv/link) hard=$(cat /srv/hard)"
if [ -f /srv/v3 ]; then echo "v3=$(cat /srv/v3)"; else echo v3=missing; fi
case "${1-}" in
serve) exec httpd -f -p "${2:-8080}" -h /srv/www ;;
exit) exit "${2:-0}" ;;
esac
echo ready
while :; do
	sleep 3600 &
	wait $!
done
"""


class Layer:
    """One layer's tar, built in memory in the order entries are added."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)

    def _info(self, name, typ, mode, uid=0, gid=0):
        ti = tarfile.TarInfo(name)
        ti.type = typ
        ti.mode = mode
        ti.uid, ti.gid = uid, gid
        ti.uname = ti.gname = ""
        ti.mtime = MTIME
        return ti

    def dir(self, name, mode=0o755, uid=0, gid=0):
        self.tar.addfile(self._info(name.rstrip("/"), tarfile.DIRTYPE, mode, uid, gid))

    def file(self, name, data, mode=0o644, uid=0, gid=0, xattrs=None):
        if isinstance(data, str):
            data = data.encode()
        ti = self._info(name, tarfile.REGTYPE, mode, uid, gid)
        ti.size = len(data)
        if xattrs:
            ti.pax_headers = {"SCHILY.xattr." + k: v for k, v in xattrs.items()}
        self.tar.addfile(ti, io.BytesIO(data))

    def symlink(self, name, target):
        ti = self._info(name, tarfile.SYMTYPE, 0o777)
        ti.linkname = target
        self.tar.addfile(ti)

    def device(self, name, kind, major, minor):
        ti = self._info(name, tarfile.CHRTYPE if kind == "c" else tarfile.BLKTYPE, 0o666)
        ti.devmajor, ti.devminor = major, minor
        self.tar.addfile(ti)

    def hardlink(self, name, target):
        ti = self._info(name, tarfile.LNKTYPE, 0o644)
        ti.linkname = target
        self.tar.addfile(ti)

    def bytes(self):
        self.tar.close()
        return self.buf.getvalue()


def add_rootfs(layer, root, skip):
    """The busybox rootfs, sorted, every entry owned 0:0 (whoever built it)."""
    seen = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        if rel_dir != ".":
            layer.dir(rel_dir, stat.S_IMODE(os.lstat(dirpath).st_mode))
        for fn in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
            path = os.path.join(dirpath, fn)
            rel = os.path.normpath(os.path.join(rel_dir, fn))
            if rel in skip:
                continue
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                layer.symlink(rel, os.readlink(path))
            elif stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in seen:
                    layer.hardlink(rel, seen[key])
                    continue
                seen[key] = rel
                with open(path, "rb") as f:
                    layer.file(rel, f.read(), stat.S_IMODE(st.st_mode))
            else:
                sys.exit("mkimage.py: %s: not a file, directory or symlink" % path)
        # symlinks to directories were listed as files above; don't descend
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]


def layer_base(root):
    l = Layer()
    add_rootfs(l, root, {"etc/passwd", "etc/group"})
    l.file("etc/passwd", PASSWD)
    l.file("etc/group", GROUP)
    l.file("etc/deleteme", "deleted by layer 2\n")
    l.dir("home")
    l.dir("home/app", 0o750, 1000, 1000)
    l.dir("opt")
    l.dir("opt/old")
    l.file("opt/old/a", "a\n")
    l.file("opt/old/b", "b\n")
    return l.bytes()


def layer_two():
    l = Layer()
    l.dir("etc")
    l.file("etc/.wh.deleteme", "")
    l.file("etc/motd", "berth fixture\n", xattrs={"user.berth": "fixture"})
    l.dir("opt")
    l.dir("opt/old")
    l.file("opt/old/.wh..wh..opq", "")
    l.file("opt/old/c", "c\n")
    l.dir("srv")
    l.dir("srv/www")
    l.file("srv/www/index.html", "layer2\n")
    l.hardlink("srv/hard", "srv/www/index.html")
    l.symlink("srv/link", "www/index.html")
    l.file("srv/start.sh", START_SH, 0o755)
    return l.bytes()


def add_devices(l, devices):
    dirs = set()
    for name, kind, major, minor in devices:
        parts = name.split("/")[:-1]
        for i in range(len(parts)):
            d = "/".join(parts[:i + 1])
            if d not in dirs:
                dirs.add(d)
                l.dir(d)
        l.device(name, kind, major, minor)


def layer_three(pad, devices):
    l = Layer()
    l.dir("srv")
    l.file("srv/v3", "layer3\n")
    if pad:
        # incompressible and reproducible: a SHAKE-256 stream
        l.file("srv/pad", hashlib.shake_256(b"berth mkimage pad").digest(pad))
    add_devices(l, devices)
    return l.bytes()


def layer_sibling(devices):
    l = Layer()
    l.dir("srv")
    l.file("srv/sibling.txt", "sibling\n")
    add_devices(l, devices)
    return l.bytes()


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build_image(arch, root, kind, compress, pad, stop_signal, cache, devices=(), history_bytes=0):
    """Returns (config bytes, [(blob bytes, diff_id)], manifest dict pieces)."""
    if ("base", root) not in cache:
        cache[("base", root)] = layer_base(root)
    tars = [cache[("base", root)]]
    cfg = {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]}
    if kind == "full":
        tars += [layer_two(), layer_three(pad, devices)]
        cfg = {
            "User": "app",
            "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "IMG_VAR=from-image", "OVERRIDE=image"],
            "Entrypoint": ["/bin/sh", "/srv/start.sh"],
            "Cmd": ["arg1"],
            "WorkingDir": "/srv",
            "ExposedPorts": {"8080/tcp": {}},
            "StopSignal": stop_signal,
            "Labels": {"org.berth.fixture": "full"},
        }
    elif kind == "base":
        cfg["Cmd"] = ["/bin/sh"]
        cfg["Labels"] = {"org.berth.fixture": "base"}
    else:
        tars.append(layer_sibling(devices))
        cfg["Cmd"] = ["/bin/sh", "-c", "cat /srv/sibling.txt && exec sleep 3600"]
        cfg["Labels"] = {"org.berth.fixture": "sibling"}
    layers = []
    for t in tars:
        blob = gzip.compress(t, compresslevel=6, mtime=0) if compress else t
        layers.append((blob, sha(t)))
    config = dict(PLATFORMS[arch])
    config.update({
        "created": CREATED,
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [d for _, d in layers]},
        "history": [{"created": CREATED, "created_by": "mkimage.py layer %d" % (i + 1)}
                    for i in range(len(layers))],
    })
    n = 0
    while history_bytes and len(json.dumps(config, separators=(",", ":"))) < history_bytes:
        n += 1
        line = "/bin/sh -c #(nop) step %d: " % n
        config["history"].append({"created": CREATED, "empty_layer": True,
                                  "created_by": line + "x" * (1000 - len(line))})
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode(), layers


def desc(mt, data, **extra):
    d = {"mediaType": mt, "digest": sha(data), "size": len(data)}
    d.update(extra)
    return d


def oci_blobs(images, compress, multiarch, flat, name):
    """{digest: bytes} of an OCI layout and its index.json; the summary."""
    blobs = {}
    summary = []
    mdescs = []
    layer_mt = MT_OCI_LAYER + ("+gzip" if compress else "")
    for arch, (config, layers) in images:
        blobs[sha(config)] = config
        for blob, _ in layers:
            blobs[sha(blob)] = blob
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_OCI_MANIFEST,
            "config": desc(MT_OCI_CONFIG, config),
            "layers": [desc(layer_mt, b) for b, _ in layers],
        }
        mbytes = json.dumps(manifest, separators=(",", ":")).encode()
        blobs[sha(mbytes)] = mbytes
        mdescs.append(desc(MT_OCI_MANIFEST, mbytes, platform=PLATFORMS[arch]))
        summary.append(manifest_summary(arch, mbytes, config, layers))
    ann = {"org.opencontainers.image.ref.name": name} if name else None
    index_digest = None
    if multiarch and not flat:
        index = {"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": mdescs}
        ibytes = json.dumps(index, separators=(",", ":")).encode()
        blobs[sha(ibytes)] = ibytes
        index_digest = sha(ibytes)
        top = [desc(MT_OCI_INDEX, ibytes)]
    elif multiarch:
        top = mdescs
    else:
        top = [{k: v for k, v in mdescs[0].items() if k != "platform"}]
    if ann:
        for d in top:
            d["annotations"] = ann
    index_json = json.dumps({"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": top},
                            separators=(",", ":")).encode()
    return blobs, index_json, index_digest, summary


def manifest_summary(arch, mbytes, config, layers):
    return {"arch": arch, "variant": PLATFORMS[arch].get("variant"),
            "digest": sha(mbytes), "size": len(mbytes), "config": sha(config),
            "layers": [sha(b) for b, _ in layers], "diff_ids": [d for _, d in layers],
            "layer_sizes": [len(b) for b, _ in layers]}


def write_tar(out, files):
    """files: [(name, bytes or None for a directory)], in order."""
    with open(out + ".tmp", "wb") as f:
        with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as t:
            for name, data in files:
                ti = tarfile.TarInfo(name)
                ti.mtime = MTIME
                ti.uname = ti.gname = ""
                if data is None:
                    ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                    t.addfile(ti)
                else:
                    ti.mode, ti.size = 0o644, len(data)
                    t.addfile(ti, io.BytesIO(data))
    os.rename(out + ".tmp", out)


def layout_files(blobs, index_json):
    files = [("blobs", None), ("blobs/sha256", None)]
    files += [("blobs/sha256/" + d[len("sha256:"):], blobs[d]) for d in sorted(blobs)]
    files += [("index.json", index_json), ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')]
    return files


def main():
    ap = argparse.ArgumentParser(description="write issue 21's test image (see the source's header)")
    ap.add_argument("--rootfs", action="append", required=True, metavar="[ARCH=]DIR")
    ap.add_argument("--arch", choices=sorted(PLATFORMS), default="amd64",
                    help="the architecture of a --rootfs without ARCH= (default amd64)")
    ap.add_argument("--format", choices=["docker-archive", "oci-archive", "oci-layout"], default="oci-archive")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--gzip", dest="gzip", action="store_true", default=None)
    g.add_argument("--no-gzip", dest="gzip", action="store_false")
    ap.add_argument("--name", help="reference: RepoTags / ref.name annotation")
    ap.add_argument("--kind", choices=["full", "base", "sibling"], default="full")
    ap.add_argument("--multiarch", action="store_true")
    ap.add_argument("--flat-index", action="store_true")
    ap.add_argument("--pad", type=int, default=0, metavar="BYTES", help="incompressible /srv/pad in layer 3")
    ap.add_argument("--stop-signal", default="SIGUSR1")
    ap.add_argument("--device", action="append", default=[], metavar="NAME:c|b:MAJOR:MINOR",
                    help="a device node in the top layer")
    ap.add_argument("--history-bytes", type=int, default=0, metavar="BYTES",
                    help="history entries until the configuration is this long")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    roots = []
    for r in a.rootfs:
        arch, eq, d = r.partition("=")
        if not eq:
            arch, d = a.arch, r
        if arch not in PLATFORMS:
            ap.error("unknown architecture '%s' (amd64, arm64)" % arch)
        if not os.path.isfile(os.path.join(d, "bin/busybox")):
            ap.error("%s: no bin/busybox (make one with mk/busybox-rootfs.sh)" % d)
        if any(arch == x for x, _ in roots):
            ap.error("two rootfs for %s" % arch)
        roots.append((arch, d))
    if len(roots) > 1 and not a.multiarch:
        ap.error("several --rootfs need --multiarch")
    if a.multiarch and a.format == "docker-archive":
        ap.error("a docker-archive holds no index: --multiarch needs an OCI format")
    if a.flat_index and not a.multiarch:
        ap.error("--flat-index goes with --multiarch")
    if a.pad and a.kind != "full":
        ap.error("--pad goes with --kind full (it is in layer 3)")
    compress = a.gzip if a.gzip is not None else a.format != "docker-archive"
    devices = []
    for dv in a.device:
        parts = dv.split(":")
        if len(parts) != 4 or parts[1] not in ("c", "b") or not parts[2].isdigit() \
                or not parts[3].isdigit() or not parts[0] or parts[0].startswith("/"):
            ap.error("--device %s: expected NAME:c|b:MAJOR:MINOR" % dv)
        devices.append((parts[0], parts[1], int(parts[2]), int(parts[3])))
    if devices and a.kind == "base":
        ap.error("--device goes with --kind full or sibling (it is in the top layer)")

    cache = {}
    images = [(arch, build_image(arch, d, a.kind, compress, a.pad, a.stop_signal, cache, devices,
                                 a.history_bytes)) for arch, d in roots]
    out = a.out
    result = {"format": a.format, "out": out, "ref": a.name, "index": None}

    if a.format == "docker-archive":
        arch, (config, layers) = images[0]
        tag = a.name
        if tag and ":" not in tag.rsplit("/", 1)[-1]:
            tag += ":latest"
        chex = sha(config)[7:]
        lnames = [sha(b)[7:] + ".tar" for b, _ in layers]
        manifest = [{"Config": chex + ".json", "RepoTags": [tag] if tag else None, "Layers": lnames}]
        files = [(chex + ".json", config)]
        files += [(n, b) for n, (b, _) in zip(lnames, layers)]
        files.append(("manifest.json", json.dumps(manifest, separators=(",", ":")).encode()))
        if tag:
            repo, _, t = tag.rpartition(":")
            repos = {repo: {t: sha(layers[-1][0])[7:]}}
            files.append(("repositories", json.dumps(repos, separators=(",", ":")).encode()))
        write_tar(out, files)
        # a docker-archive has no manifest: the one a registry would get from
        # it (skopeo copy) is a Docker schema 2 one, not summarized here
        s = manifest_summary(arch, b"", config, layers)
        s["digest"] = s["size"] = None
        result["manifests"] = [s]
    else:
        blobs, index_json, index_digest, summary = oci_blobs(images, compress, a.multiarch, a.flat_index, a.name)
        result["index"] = index_digest
        result["manifests"] = summary
        files = layout_files(blobs, index_json)
        if a.format == "oci-archive":
            write_tar(out, files)
        else:
            os.makedirs(out, exist_ok=True)
            for name, data in files:
                p = os.path.join(out, name)
                if data is None:
                    os.makedirs(p, exist_ok=True)
                    continue
                with open(p + ".tmp", "wb") as f:
                    f.write(data)
                os.rename(p + ".tmp", p)
    json.dump(result, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
