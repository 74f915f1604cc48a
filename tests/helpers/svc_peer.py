"""svc_peer.py - servers and clients for tests/integration/svc_kernel.sh.

  svc_peer.py serve NAME          TCP :8080 and UDP :5353 (both families): answer NAME
  svc_peer.py tcp ADDR PORT N     N connections; prints "NAME COUNT" lines, sorted,
                                  failures as "refused", "reset", "timeout"
  svc_peer.py udp ADDR PORT       one datagram; prints the answer or refused/timeout
  svc_peer.py hold ADDR PORT FILE  one connection: its answer, then after FILE
                                  appears, the answer on the same connection
"""
import collections, os, socket, socketserver, sys, threading, time


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def serve(name):
    class TH(socketserver.BaseRequestHandler):
        def handle(self):
            while True:
                d = self.request.recv(100)
                if not d:
                    return
                self.request.sendall((name + "\n").encode())

    class T(socketserver.ThreadingTCPServer):
        address_family = socket.AF_INET6
        allow_reuse_address = True
        daemon_threads = True

    class UH(socketserver.BaseRequestHandler):
        def handle(self):
            self.request[1].sendto((name + "\n").encode(), self.client_address)

    class U(socketserver.UDPServer):
        address_family = socket.AF_INET6

    t = T(("::", 8080), TH)
    u = U(("::", 5353), UH)
    threading.Thread(target=u.serve_forever, daemon=True).start()
    t.serve_forever()


def one(addr, port):
    s = socket.socket(family(addr), socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect((addr, port))
        s.sendall(b"x")
        return s.recv(100).decode().strip() or "empty"
    except ConnectionRefusedError:
        return "refused"
    except ConnectionResetError:
        return "reset"
    except OSError as e:
        return "timeout" if isinstance(e, socket.timeout) else "error"
    finally:
        s.close()


def main():
    cmd = sys.argv[1]
    if cmd == "serve":
        serve(sys.argv[2])
    elif cmd == "tcp":
        c = collections.Counter(one(sys.argv[2], int(sys.argv[3])) for _ in range(int(sys.argv[4])))
        for k in sorted(c):
            print(k, c[k])
    elif cmd == "udp":
        s = socket.socket(family(sys.argv[2]), socket.SOCK_DGRAM)
        s.settimeout(2)
        s.connect((sys.argv[2], int(sys.argv[3])))
        try:
            s.send(b"x")
            print(s.recv(100).decode().strip())
        except ConnectionRefusedError:
            print("refused")
        except socket.timeout:
            print("timeout")
    elif cmd == "hold":
        s = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=5)
        s.sendall(b"x")
        print(s.recv(100).decode().strip(), flush=True)
        while not os.path.exists(sys.argv[4]):
            time.sleep(0.05)
        s.sendall(b"x")
        print(s.recv(100).decode().strip(), flush=True)


main()
