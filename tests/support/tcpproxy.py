"""A TCP proxy the tests put between a device and the server or broker, to break the link.

Modes: "forward" (plain relay), "blackhole" (accept, then never answer nor forward),
slow(seconds) (relay, but hold every chunk that long: a slow server or link), and
cut_after(n): relay, but drop both sides of every connection once n bytes went upstream in it
(a message cut half-way). Switching mode affects new connections; cut_all() drops live ones.
"""
import socket
import threading
import time

from tilltap_host.netutil import free_port


class Proxy:
    def __init__(self, target_port):
        self.target = target_port
        self.port = free_port()
        self.mode = "forward"
        self.cut_bytes = None
        self.delay = 0
        self.cuts = 0
        self._conns = []
        self._lock = threading.Lock()
        self._srv = socket.create_server(("127.0.0.1", self.port))
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def cut_after(self, n):
        self.mode, self.cut_bytes = "cut", n

    def forward(self):
        self.mode, self.cut_bytes, self.delay = "forward", None, 0

    def slow(self, seconds):
        self.mode, self.cut_bytes, self.delay = "forward", None, seconds

    def blackhole(self):
        self.mode = "blackhole"

    def cut_all(self):
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            _close(s)

    def close(self):
        self._stop = True
        _close(self._srv)
        self.cut_all()

    def _accept(self):
        while not self._stop:
            try:
                client, _ = self._srv.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(client)
            if self.mode == "blackhole":
                continue  # held open, never read from, never answered
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns.append(upstream)
            budget = [self.cut_bytes]
            threading.Thread(target=self._pipe, args=(client, upstream, budget),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, None),
                             daemon=True).start()

    def _pipe(self, src, dst, budget):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if self.delay:
                    time.sleep(self.delay)
                if budget is not None and budget[0] is not None:
                    if len(data) >= budget[0]:
                        dst.sendall(data[:budget[0]])
                        self.cuts += 1
                        break
                    budget[0] -= len(data)
                dst.sendall(data)
        except OSError:
            pass
        _close(src)
        _close(dst)


def _close(s):
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass
