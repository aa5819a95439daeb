"""A TCP proxy on loopback that cuts long answers part-way: a connection lost mid-download.

It passes every byte both ways between a client and ``upstream_port``. While ``armed``, an
answer (the bytes the server sends after the client last spoke) that grows past
``after_bytes`` is cut there: the proxy sends that much, then closes both connections, as
a network dropping the connection would. ``cuts`` counts the answers so cut.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class CuttingProxy:
    upstream_port: int
    after_bytes: int = 4096
    armed: bool = False
    cuts: int = 0
    port: int = 0
    _listener: socket.socket | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> CuttingProxy:
        listener = socket.create_server(("127.0.0.1", 0))
        self._listener = listener
        self.port = listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream_port))
            Connection(self, client, server).start()


@dataclass
class Connection:
    proxy: CuttingProxy
    client: socket.socket
    server: socket.socket
    answered: int = 0  # bytes of the answer to the client's last request

    def start(self) -> None:
        threading.Thread(target=self._requests, daemon=True).start()
        threading.Thread(target=self._answers, daemon=True).start()

    def _requests(self) -> None:
        while chunk := self._recv(self.client):
            self.answered = 0
            if not self._send(self.server, chunk):
                break
        self._close()

    def _answers(self) -> None:
        while chunk := self._recv(self.server):
            room = self.proxy.after_bytes - self.answered
            if self.proxy.armed and len(chunk) > room:
                self._send(self.client, chunk[: max(room, 0)])
                with self.proxy._lock:
                    self.proxy.cuts += 1
                break
            self.answered += len(chunk)
            if not self._send(self.client, chunk):
                break
        self._close()

    def _recv(self, side: socket.socket) -> bytes:
        try:
            return side.recv(65536)
        except OSError:
            return b""

    def _send(self, side: socket.socket, data: bytes) -> bool:
        try:
            side.sendall(data)
        except OSError:
            return False
        return True

    def _close(self) -> None:
        for side in (self.client, self.server):
            with contextlib.suppress(OSError):
                side.shutdown(socket.SHUT_RDWR)
            side.close()
