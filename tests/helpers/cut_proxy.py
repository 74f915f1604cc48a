#!/usr/bin/env python3
"""cut_proxy.py - a TCP proxy that breaks a transfer mid-way, once.

    cut_proxy.py LISTEN TARGET AFTER_BYTES [--times N] [--port-file FILE] [--log FILE]

LISTEN and TARGET are HOST:PORT (LISTEN's port 0: any free one, written to
--port-file once it listens). Every connection is forwarded to TARGET as it
is (TLS passes through untouched). A connection that carries more than
AFTER_BYTES from the server gets exactly AFTER_BYTES, then both of its sides
are reset (SO_LINGER 0): a registry dying in the middle of a blob, as the
client sees it. That happens to the first N such connections (--times,
default 1); every later connection passes whole. --log gets one line per
connection: "conn ID down=BYTES up=BYTES cut|whole".
"""

import argparse
import fcntl
import os
import socket
import struct
import sys
import threading
import time

lock = threading.Lock()
cuts_left = 0
log_file = None
next_id = 0
TIOCOUTQ = 0x5411


def addr(s):
    host, _, port = s.rpartition(":")
    return host, int(port)


def reset(sock):
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # wakes the other thread's recv (close alone would not, and the
        # socket would live on, silent, until that recv returned)
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    sock.close()


def drain(sock):
    """Wait (2 s at most) until the peer has acknowledged all we sent: a
    reset discards what is still queued, and the client must get it all."""
    for _ in range(200):
        if struct.unpack("i", fcntl.ioctl(sock.fileno(), TIOCOUTQ, b"\0\0\0\0"))[0] == 0:
            return
        time.sleep(0.01)


def log(line):
    if log_file:
        with lock:
            with open(log_file, "a") as f:
                f.write(line + "\n")


def serve(client, target, after, cid):
    global cuts_left
    try:
        server = socket.create_connection(target)
    except OSError as e:
        log("conn %d connect failed: %s" % (cid, e))
        reset(client)
        return
    state = {"down": 0, "up": 0, "cut": False, "done": False}

    def up():
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                state["up"] += len(data)
                server.sendall(data)
            server.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    t = threading.Thread(target=up, daemon=True)
    t.start()
    try:
        while True:
            data = server.recv(65536)
            if not data:
                client.shutdown(socket.SHUT_WR)
                break
            if state["down"] + len(data) > after:
                with lock:
                    cut = cuts_left > 0
                    if cut:
                        cuts_left -= 1
                if cut:
                    client.sendall(data[:after - state["down"]])
                    drain(client)
                    state["down"] = after
                    state["cut"] = True
                    break
                after = float("inf")
            state["down"] += len(data)
            client.sendall(data)
    except OSError:
        pass
    if state["cut"]:
        # logged first: a client that sees the reset may look at once
        log("conn %d down=%d up=%d cut" % (cid, state["down"], state["up"]))
        reset(client)
        reset(server)
    else:
        t.join()
        client.close()
        server.close()
        log("conn %d down=%d up=%d whole" % (cid, state["down"], state["up"]))


def main():
    global cuts_left, log_file, next_id
    ap = argparse.ArgumentParser()
    ap.add_argument("listen")
    ap.add_argument("target")
    ap.add_argument("after", type=int)
    ap.add_argument("--times", type=int, default=1)
    ap.add_argument("--port-file")
    ap.add_argument("--log")
    a = ap.parse_args()
    cuts_left, log_file = a.times, a.log
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(addr(a.listen))
    ls.listen(64)
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write("%d\n" % ls.getsockname()[1])
        os.rename(a.port_file + ".tmp", a.port_file)
    target = addr(a.target)
    while True:
        c, _ = ls.accept()
        next_id += 1
        threading.Thread(target=serve, args=(c, target, a.after, next_id), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
