#!/usr/bin/env python3
"""fake_registry.py - a fault-injecting OCI registry (distribution API v2,
read side) over TLS, for tests of berth's registry client.

It serves ROOT/blobs/sha256/HEX (blobs, and manifests by digest) and
ROOT/manifests/REPO/TAG (manifests by tag; the Content-Type is the JSON's
mediaType). A blob file is served under its name whatever it holds, so a test
makes a digest mismatch by writing other bytes under a name.

Auth modes: none; basic (Authorization: Basic USER:PASSWORD); bearer (a
token from its own /token realm, which checks USER:PASSWORD with basic auth
when --user is given, and anonymous requests otherwise).

Faults: --fail STATUS:COUNT[:SUBSTRING] answers STATUS to the next COUNT
requests whose path holds SUBSTRING (429 and 503 carry --retry-after);
--die-after K cuts the first blob response (every one with --die-always)
after K bytes of its body (no close_notify, as a dying link would), of those
whose path holds --die-match SUBSTRING (any); --ignore-range serves whole blobs to
Range requests; --redirect-blobs BASE answers blob requests with a 307 to
BASE + the same path; --chunked sends bodies chunked; --stall-blobs sends the
first blob response's head and then nothing; --stall-after K sends the head
and K bytes of the body, then nothing (for 120 s), to the first --stall-times
N (1) blob responses whose path holds --stall-match SUBSTRING (any).

--log FILE gets one line per request (peer: the client's port, one per
connection):
  GET /v2/app/blobs/sha256:... range=bytes=100- auth=bearer -> 206 peer=40312
--ready FILE is written once the port listens.
"""
import argparse
import base64
import hashlib
import http.server
import json
import os
import re
import secrets
import socket
import ssl
import sys
import threading
import time
import urllib.parse

args = None
lock = threading.Lock()
tokens = set()
state = {"died": False}
fails = []      # [status, remaining, substring]


def log(line):
    if args.log:
        with lock, open(args.log, "a") as f:
            f.write(line + "\n")


def err_body(code, message):
    return json.dumps({"errors": [{"code": code, "message": message}]}).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-registry/1"

    def log_message(self, fmt, *a):      # quiet: the --log file says what happened
        pass

    def note(self, status):
        auth = self.headers.get("Authorization") or ""
        kind = auth.split(" ", 1)[0].lower() if auth else "none"
        log("%s %s range=%s auth=%s -> %d peer=%d" % (self.command, self.path,
            self.headers.get("Range") or "-", kind, status, self.client_address[1]))

    def send_body(self, status, body, ctype="application/json", extra=None):
        self.note(status)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if args.chunked and body:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 1000):
                part = body[i:i + 1000]
                self.wfile.write(b"%x;ext=1\r\n" % len(part) + part + b"\r\n")
            self.wfile.write(b"0\r\nX-Trailer: yes\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    # ---- auth ----
    def basic_ok(self):
        want = "Basic " + base64.b64encode(
            ("%s:%s" % (args.user, args.password)).encode()).decode()
        return self.headers.get("Authorization") == want

    def challenge(self, repo):
        if args.auth == "basic":
            return 'Basic realm="fake registry"'
        host = self.headers.get("Host") or "127.0.0.1:%d" % args.port
        return ('Bearer realm="https://%s/token",service="fake-registry",'
                'scope="repository:%s:pull"' % (host, repo))

    def authorized(self, repo):
        if args.auth == "none":
            return True
        if args.auth == "basic":
            return self.basic_ok()
        auth = self.headers.get("Authorization") or ""
        return auth.startswith("Bearer ") and auth[7:] in tokens

    def token(self):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        if q.get("service") != ["fake-registry"] or not q.get("scope"):
            return self.send_body(400, err_body("BAD_REQUEST", "service and scope wanted"))
        if args.user and not self.basic_ok():
            return self.send_body(401, json.dumps(
                {"details": "incorrect username or password"}).encode())
        t = secrets.token_hex(16)
        with lock:
            tokens.add(t)
        key = "access_token" if args.access_token else "token"
        self.send_body(200, json.dumps({key: t, "expires_in": 300}).encode())

    # ---- the API ----
    def do_GET(self):
        path = urllib.parse.urlparse(self.path).path
        if path == "/token" and args.auth == "bearer":
            return self.token()
        m = re.match(r"^/v2/(.+)/(manifests|blobs)/([^/]+)$", path)
        repo = m.group(1) if m else ""
        if not path.startswith("/v2/"):
            return self.send_body(404, err_body("NOT_FOUND", "no such path"))
        if not self.authorized(repo):
            return self.send_body(401, err_body("UNAUTHORIZED", "authentication required"),
                                  extra={"WWW-Authenticate": self.challenge(repo)})
        with lock:
            for f in fails:
                if f[1] > 0 and f[2] in path:
                    f[1] -= 1
                    extra = {}
                    if f[0] in (429, 503):
                        extra["Retry-After"] = str(args.retry_after)
                    code = "TOOMANYREQUESTS" if f[0] == 429 else "UNAVAILABLE"
                    fault = (f[0], extra, code)
                    break
            else:
                fault = None
        if fault:
            return self.send_body(fault[0], err_body(fault[2], "injected"), extra=fault[1])
        if path == "/v2/":
            return self.send_body(200, b"{}")
        if not m:
            return self.send_body(404, err_body("NOT_FOUND", "no such path"))
        kind, ref = m.group(2), m.group(3)
        if kind == "manifests":
            return self.manifest(repo, ref)
        return self.blob(ref)

    def manifest(self, repo, ref):
        if ref.startswith("sha256:"):
            p = os.path.join(args.root, "blobs", "sha256", ref[7:])
        else:
            p = os.path.join(args.root, "manifests", repo, ref)
        if not os.path.isfile(p):
            return self.send_body(404, err_body("MANIFEST_UNKNOWN", "manifest unknown"))
        body = open(p, "rb").read()
        try:
            mt = json.loads(body).get("mediaType") or "application/vnd.oci.image.manifest.v1+json"
        except ValueError:
            mt = "application/octet-stream"
        self.send_body(200, body, ctype=mt, extra={
            "Docker-Content-Digest": "sha256:" + hashlib.sha256(body).hexdigest()})

    def blob(self, digest):
        if args.redirect_blobs:
            self.note(307)
            self.send_response(307)
            self.send_header("Location", args.redirect_blobs + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        p = os.path.join(args.root, "blobs", "sha256", digest[7:]) \
            if digest.startswith("sha256:") else ""
        if not p or not os.path.isfile(p):
            return self.send_body(404, err_body("BLOB_UNKNOWN", "blob unknown to registry"))
        data = open(p, "rb").read()
        start = 0
        rng = self.headers.get("Range")
        if rng and not args.ignore_range:
            mr = re.match(r"^bytes=(\d+)-$", rng)
            if not mr:
                return self.send_body(400, err_body("RANGE_INVALID", "bad range"))
            start = int(mr.group(1))
            if start >= len(data):
                return self.send_body(416, err_body("RANGE_INVALID", "range not satisfiable"),
                                      extra={"Content-Range": "bytes */%d" % len(data)})
        status = 206 if start else 200
        body = data[start:]
        extra = {"Docker-Content-Digest": digest}
        if status == 206:
            extra["Content-Range"] = "bytes %d-%d/%d" % (start, len(data) - 1, len(data))
        with lock:
            stall = (args.stall_blobs or args.stall_after is not None) and \
                state.get("stalls", 0) < args.stall_times and args.stall_match in self.path
            if stall:
                state["stalls"] = state.get("stalls", 0) + 1
        if stall:
            self.note(status)
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            for k, v in extra.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:args.stall_after or 0])
            self.wfile.flush()
            time.sleep(120)
            return
        with lock:
            die = args.die_after is not None and (args.die_always or not state["died"]) \
                and args.die_match in self.path
            state["died"] = state["died"] or die
        if die:
            self.note(status)
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            for k, v in extra.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:args.die_after])
            self.wfile.flush()
            # the link dies: no close_notify, no more bytes
            raw = self.connection
            try:
                raw.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.close_connection = True
            return
        self.send_body(status, body, ctype="application/octet-stream", extra=extra)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global args
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--addr", default="127.0.0.1")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--auth", choices=["none", "basic", "bearer"], default="none")
    ap.add_argument("--user")
    ap.add_argument("--password", default="")
    ap.add_argument("--access-token", action="store_true",
                    help='the token answer says "access_token" instead of "token"')
    ap.add_argument("--fail", action="append", default=[], metavar="STATUS:COUNT[:SUBSTRING]")
    ap.add_argument("--retry-after", type=int, default=1)
    ap.add_argument("--die-after", type=int)
    ap.add_argument("--die-always", action="store_true", help="--die-after on every blob response")
    ap.add_argument("--die-match", default="", help="--die-after only where the path holds this")
    ap.add_argument("--ignore-range", action="store_true")
    ap.add_argument("--redirect-blobs", metavar="BASE")
    ap.add_argument("--chunked", action="store_true")
    ap.add_argument("--stall-blobs", action="store_true")
    ap.add_argument("--stall-after", type=int, metavar="BYTES")
    ap.add_argument("--stall-times", type=int, default=1)
    ap.add_argument("--stall-match", default="", metavar="SUBSTRING")
    ap.add_argument("--log")
    ap.add_argument("--ready")
    args = ap.parse_args()
    if args.auth == "basic" and not args.user:
        ap.error("--auth basic needs --user")
    for f in args.fail:
        parts = f.split(":", 2)
        fails.append([int(parts[0]), int(parts[1]), parts[2] if len(parts) > 2 else ""])

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    srv = Server((args.addr, args.port), Handler)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    if args.ready:
        with open(args.ready + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(args.ready + ".tmp", args.ready)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
