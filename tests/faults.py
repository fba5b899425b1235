"""Fault injection for outage tests: a loopback TCP proxy in front of a real PostgreSQL or Redis.

Point the code under test at `proxy.url` instead of the server's own URL, then:
- `proxy.cut()`: every open connection is closed and new ones are refused, as when the server
  process dies or its host goes away;
- `proxy.hang()`: new connections are accepted and open ones stay open, but nothing is
  forwarded either way, as when a network path blackholes packets (clients wait for their
  timeouts);
- `proxy.restore()`: forwarding resumes for new connections (clients reconnect as they would
  after the server came back).

The server itself keeps running for every other test: only this proxy's clients see the fault.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit


class FaultProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port: int = self._listener.getsockname()[1]
        self._state = "up"  # up | cut | hang
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._hung: list[socket.socket] = []
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, name=f"fault-proxy-{self.port}", daemon=True)
        self._thread.start()

    # -- control -----------------------------------------------------------------------------

    @property
    def state(self) -> str:
        return self._state

    def cut(self) -> None:
        with self._lock:
            self._state = "cut"
            pairs, self._pairs = self._pairs, []
            hung, self._hung = self._hung, []
        for a, b in pairs:
            _close(a)
            _close(b)
        for s in hung:
            _close(s)

    def hang(self) -> None:
        with self._lock:
            self._state = "hang"

    def restore(self) -> None:
        with self._lock:
            self._state = "up"
            hung, self._hung = self._hung, []
        for s in hung:  # connections accepted while hanging never reached the server
            _close(s)

    def close(self) -> None:
        self._closed = True
        self.cut()
        _close(self._listener)

    def url_for(self, url: str) -> str:
        """`url` (postgres://…, redis://…) with its host and port replaced by this proxy's."""
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    # -- forwarding --------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                state = self._state
            if state == "cut":
                _close(client)
                continue
            if state == "hang":
                with self._lock:
                    self._hung.append(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while True:
                try:
                    readable, _, _ = select.select([a, b], [], [], 0.1)
                except (OSError, ValueError):
                    return
                if self._state == "hang":
                    continue  # hold the bytes: nothing crosses while hanging
                if self._state == "cut":
                    return
                for sock in readable:
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    try:
                        peers[sock].sendall(data)
                    except OSError:
                        return
        finally:
            _close(a)
            _close(b)
            with self._lock:
                if (a, b) in self._pairs:
                    self._pairs.remove((a, b))


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


@contextlib.contextmanager
def fault_proxy(url: str) -> Iterator[FaultProxy]:
    """A proxy in front of the server that `url` names; closed at exit."""
    parts = urlsplit(url)
    default_port = 6379 if parts.scheme.startswith("redis") else 5432
    proxy = FaultProxy(parts.hostname or "127.0.0.1", parts.port or default_port)
    try:
        yield proxy
    finally:
        proxy.close()
