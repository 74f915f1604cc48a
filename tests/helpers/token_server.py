#!/usr/bin/env python3
"""token_server.py - the token service of a registry's Bearer flow, for tests.

    token_server.py LISTEN CERT KEY SIGN_KEY SIGN_CERT HTPASSWD_USER:PASS
                    [--service S] [--issuer I] [--port-file F] [--log F]

HTTPS on LISTEN (HOST:PORT; port 0: any, written to --port-file) with
CERT/KEY. GET /token?service=S&scope=repository:NAME:ACTIONS[&scope=...]
answers {"token", "access_token", "expires_in", "issued_at"}: an RS256 JWT
(signed by `openssl dgst -sha256 -sign SIGN_KEY`, SIGN_CERT in its x5c
header) that docker-registry accepts with `auth: token:` whose
rootcertbundle is SIGN_CERT. With Basic credentials USER:PASS the token
grants the actions asked for; without any, pull only (anonymous, as a
public repository); with wrong ones: 401. --log gets a line per request:
"token user=NAME|- scope=... granted=..." or "token 401".
"""

import argparse
import base64
import json
import os
import secrets
import ssl
import subprocess
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def note(self, line):
        if self.server.opts.log:
            with open(self.server.opts.log, "a") as f:
                f.write(line + "\n")

    def reply(self, code, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        o = self.server.opts
        u = urllib.parse.urlparse(self.path)
        if u.path != "/token":
            return self.reply(404, {"errors": [{"code": "NOT_FOUND"}]})
        q = urllib.parse.parse_qs(u.query)
        user = None
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                given = base64.b64decode(auth[6:]).decode()
            except ValueError:
                given = ""
            if given != o.userpass:
                self.note("token 401")
                return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]},
                                  [("WWW-Authenticate", 'Basic realm="berth-test-token"')])
            user = given.split(":", 1)[0]
        access = []
        for scope in q.get("scope", []):
            for one in scope.split(" "):
                parts = one.split(":")
                if len(parts) < 3:
                    continue
                typ, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1].split(",")
                if user is None:
                    actions = [a for a in actions if a == "pull"]
                access.append({"type": typ, "name": name, "actions": actions})
        now = int(time.time())
        claims = {"iss": o.issuer, "sub": user or "", "aud": q.get("service", [o.service])[0],
                  "exp": now + 300, "nbf": now - 10, "iat": now, "jti": secrets.token_hex(8),
                  "access": access}
        header = {"typ": "JWT", "alg": "RS256", "x5c": [o.x5c]}
        signing = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", o.sign_key],
                             input=signing.encode(), capture_output=True, check=True).stdout
        token = signing + "." + b64url(sig)
        self.note("token user=%s scope=%s granted=%s" % (
            user or "-", " ".join(q.get("scope", [])),
            ";".join("%s:%s" % (a["name"], ",".join(a["actions"])) for a in access)))
        self.reply(200, {"token": token, "access_token": token, "expires_in": 300,
                         "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("listen")
    ap.add_argument("cert")
    ap.add_argument("key")
    ap.add_argument("sign_key")
    ap.add_argument("sign_cert")
    ap.add_argument("userpass")
    ap.add_argument("--service", default="berth-test")
    ap.add_argument("--issuer", default="berth-test-issuer")
    ap.add_argument("--port-file")
    ap.add_argument("--log")
    o = ap.parse_args()
    der = subprocess.run(["openssl", "x509", "-in", o.sign_cert, "-outform", "DER"],
                         capture_output=True, check=True).stdout
    o.x5c = base64.b64encode(der).decode()
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
