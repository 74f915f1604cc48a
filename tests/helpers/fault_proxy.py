#!/usr/bin/env python3
"""fault_proxy.py - an HTTPS proxy in front of a registry that answers with
errors, or breaks a response mid-body, for the first requests that match.

    fault_proxy.py LISTEN TARGET --cert C --key K --ca CA [RULE...]
                   [--port-file F] [--log F]

LISTEN and TARGET are HOST:PORT (LISTEN's port 0: any, written to
--port-file). It terminates TLS with C/K (the registry's own certificate
does: same CA, same names) and forwards GET and HEAD requests, every header
but Host and Connection as they came (Authorization, Range, Accept), to
https://TARGET, verified with CA; the answer comes back as it is (status,
headers, body), unless a rule takes the request. A RULE is

    STATUS:PATTERN[:COUNT]   answer STATUS (with a registry-style JSON error
                             body; 429 and 503 with Retry-After: 1) instead
                             of forwarding, to the first COUNT (1) requests
                             whose path contains PATTERN
    cut:PATTERN:BYTES[:COUNT]
                             forward, but after BYTES of the body reset the
                             connection (SO_LINGER 0): the client has exactly
                             BYTES of the body and then an error

Rules are tried in order; each counts its own matches. A PATTERN may hold
':' (a digest): numbers are read from the right, so give COUNT when the
pattern itself ends in ":DIGITS". --log gets a line per
request: "METHOD PATH range=RANGE|- -> STATUS body=BYTES fault|cut|pass".
"""

import argparse
import fcntl
import http.client
import json
import os
import socket
import ssl
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
TIOCOUTQ = 0x5411


def drain(sock):
    """Wait (2 s at most) until the peer has acknowledged all we sent: a
    reset discards what is still queued, and the client must get it all."""
    for _ in range(200):
        if struct.unpack("i", fcntl.ioctl(sock.fileno(), TIOCOUTQ, b"\0\0\0\0"))[0] == 0:
            return
        time.sleep(0.01)


class Rule:
    def __init__(self, text):
        # PATTERN may hold ':' (a digest): the numbers are taken from the right
        kind, _, rest = text.partition(":")
        p = rest.split(":")
        nums = 0
        while nums < 2 and len(p) - nums > 1 and p[-1 - nums].isdigit():
            nums += 1
        if kind == "cut":
            if nums == 0:
                raise SystemExit("fault_proxy.py: cut:PATTERN:BYTES[:COUNT], not %r" % text)
            if nums == 1:
                p.append("1")
            self.kind, self.bytes, self.left = "cut", int(p[-2]), int(p[-1])
            self.pattern = ":".join(p[:-2])
        elif kind.isdigit():
            if nums == 2:       # the pattern's own last part was a number
                nums = 1
            self.kind, self.status = "status", int(kind)
            self.left = int(p[-1]) if nums else 1
            self.pattern = ":".join(p[:-1] if nums else p)
        else:
            raise SystemExit("fault_proxy.py: STATUS:PATTERN[:COUNT] or cut:PATTERN:BYTES[:COUNT], not %r" % text)

    def take(self, path):
        with lock:
            if self.left > 0 and self.pattern in path:
                self.left -= 1
                return True
        return False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def note(self, status, body, how):
        o = self.server.opts
        if o.log:
            with lock:
                with open(o.log, "a") as f:
                    f.write("%s %s range=%s -> %d body=%d %s\n" % (
                        self.command, self.path, self.headers.get("Range", "-"), status, body, how))

    def do_HEAD(self):
        self.forward()

    def do_GET(self):
        self.forward()

    def fault(self, status):
        codes = {401: "UNAUTHORIZED", 404: "NOT_FOUND", 429: "TOOMANYREQUESTS"}
        body = json.dumps({"errors": [{"code": codes.get(status, "UNKNOWN"),
                                       "message": "fault_proxy: injected %d" % status}]}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if status in (429, 503):
            self.send_header("Retry-After", "1")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.note(status, len(body), "fault")

    def forward(self):
        o = self.server.opts
        cut = None
        for r in o.rules:
            if r.take(self.path):
                if r.kind == "status":
                    return self.fault(r.status)
                cut = r.bytes
                break
        up = http.client.HTTPSConnection(o.target_host, o.target_port, context=o.client_ctx, timeout=60)
        try:
            # header by header: Go clients send Accept several times
            up.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            up.putheader("Host", "%s:%d" % (o.target_host, o.target_port))
            for k, v in self.headers.items():
                if k.lower() not in ("host", "connection"):
                    up.putheader(k, v)
            up.endheaders()
            resp = up.getresponse()
            body = resp.read() if self.command != "HEAD" else b""
        except (OSError, http.client.HTTPException) as e:
            up.close()
            self.note(502, 0, "upstream: %s" % e)
            return self.fault(502)
        up.close()
        self.send_response_only(resp.status, resp.reason)
        length = None
        for k, v in resp.getheaders():
            if k.lower() in ("connection", "transfer-encoding", "keep-alive"):
                continue
            if k.lower() == "content-length":
                length = v
            self.send_header(k, v)
        if length is None:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if cut is not None and self.command == "GET" and len(body) > cut:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.note(resp.status, cut, "cut")
            self.close_connection = True
            # a reset under the TLS layer (no close_notify) once the client
            # has every byte written
            sock = self.connection
            drain(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            os.close(sock.detach())
            return
        self.wfile.write(body)
        self.note(resp.status, len(body), "pass")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("listen")
    ap.add_argument("target")
    ap.add_argument("rules", nargs="*")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--port-file")
    ap.add_argument("--log")
    o = ap.parse_args()
    o.rules = [Rule(r) for r in o.rules]
    o.target_host, _, port = o.target.rpartition(":")
    o.target_port = int(port)
    o.client_ctx = ssl.create_default_context(cafile=o.ca)
    host, _, port = o.listen.rpartition(":")
    srv = ThreadingHTTPServer((host, int(port)), Handler)
    srv.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(o.cert, o.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.opts = o
    if o.port_file:
        with open(o.port_file + ".tmp", "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.rename(o.port_file + ".tmp", o.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
