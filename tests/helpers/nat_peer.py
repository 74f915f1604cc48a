#!/usr/bin/env python3
"""nat_peer.py - the two ends of the NAT integration test (tests/integration/nat_ports.sh).

  nat_peer.py serve NAME SPEC...     SPEC is tcp:PORT, udp:PORT or echo:PORT; IPv4 and
                                     IPv6 (one dual-stack socket each). tcp answers
                                     "NAME from PEER" and closes; udp answers the same to
                                     each datagram; echo answers "NAME PEER: LINE" to each
                                     line for as long as the connection lasts.
  nat_peer.py tcp|udp HOST PORT      print the server's answer, or "no answer"
  nat_peer.py hold HOST PORT GOFILE  one echo connection: a line now, then another once
                                     GOFILE exists (at most 20 s later); prints both answers
  nat_peer.py syn IFNAME DSTMAC SRC DST PORT
                                     send one TCP SYN SRC -> DST:PORT as a raw Ethernet frame
                                     to DSTMAC (what no routing table would send: 127.0.0.1
                                     through the bridge), with valid checksums
"""
import struct
import os
import socket
import sys
import threading
import time


def peer(addr):
    a = addr[0]
    return a[7:] if a.startswith("::ffff:") else a


def listener(kind, port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM if kind != "udp" else socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    if kind != "udp":
        s.listen(16)
    return s


def serve_tcp(name, s):
    while True:
        c, a = s.accept()
        try:
            c.sendall(("%s from %s\n" % (name, peer(a))).encode())
        finally:
            c.close()


def serve_udp(name, s):
    while True:
        _, a = s.recvfrom(2048)
        s.sendto(("%s from %s\n" % (name, peer(a))).encode(), a)


def echo_conn(name, c, a):
    f = c.makefile("rwb", buffering=0)
    for line in f:
        f.write(("%s %s: %s\n" % (name, peer(a), line.decode().strip())).encode())
    c.close()


def serve_echo(name, s):
    while True:
        c, a = s.accept()
        threading.Thread(target=echo_conn, args=(name, c, a), daemon=True).start()


def serve(name, specs):
    fns = {"tcp": serve_tcp, "udp": serve_udp, "echo": serve_echo}
    threads = []
    for spec in specs:
        kind, port = spec.split(":")
        t = threading.Thread(target=fns[kind], args=(name, listener(kind, int(port))), daemon=True)
        t.start()
        threads.append(t)
    print("ready", flush=True)
    for t in threads:
        t.join()


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def client(kind, host, port):
    try:
        if kind == "tcp":
            s = socket.create_connection((host, port), timeout=2)
            data = s.recv(2048)
        else:
            s = socket.socket(family(host), socket.SOCK_DGRAM)
            s.settimeout(2)
            s.sendto(b"hello\n", (host, port))
            data, _ = s.recvfrom(2048)
        print(data.decode().strip() or "no answer")
    except OSError:
        print("no answer")


def hold(host, port, gofile):
    s = socket.create_connection((host, port), timeout=5)
    f = s.makefile("rwb", buffering=0)
    f.write(b"one\n")
    print(f.readline().decode().strip(), flush=True)
    end = time.time() + 20
    while not os.path.exists(gofile) and time.time() < end:
        time.sleep(0.05)
    try:
        f.write(b"two\n")
        print(f.readline().decode().strip() or "closed", flush=True)
    except OSError as e:
        print("error: %s" % e, flush=True)


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def syn(ifname, dstmac, src, dst, port):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((ifname, 0))
    srcmac = s.getsockname()[4]
    sa, da = socket.inet_aton(src), socket.inet_aton(dst)
    tcp = struct.pack("!HHIIBBHHH", 40000, port, 1, 0, 5 << 4, 0x02, 64240, 0, 0)
    tcp = tcp[:16] + struct.pack("!H", csum(sa + da + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0, sa, da)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    s.send(bytes.fromhex(dstmac.replace(":", "")) + srcmac + b"\x08\x00" + ip + tcp)


def main():
    a = sys.argv[1:]
    if a and a[0] == "serve" and len(a) >= 3:
        serve(a[1], a[2:])
    elif a and a[0] in ("tcp", "udp") and len(a) == 3:
        client(a[0], a[1], int(a[2]))
    elif a and a[0] == "syn" and len(a) == 6:
        syn(a[1], a[2], a[3], a[4], int(a[5]))
    elif a and a[0] == "hold" and len(a) == 4:
        hold(a[1], int(a[2]), a[3])
    else:
        sys.exit(__doc__)


main()
