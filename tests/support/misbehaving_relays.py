"""SMTP relays on loopback that misbehave as real ones do, for the delivery-time tests.

- :class:`Trickling` greets with ``220-`` continuation lines, one a second, for ever: each
  line comes well within a read timeout, so only a bound on the whole exchange ends it.
- :class:`Late` takes the first message whole and answers its ``250`` only after the client
  has given up; it answers later messages at once. It records each message's Message-ID.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any


class _Relay:
    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._guarded, args=(conn,), daemon=True).start()

    def _guarded(self, conn: socket.socket) -> None:
        with conn, suppress(OSError):
            self.serve(conn)

    def serve(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._stop.set()
        self._server.close()


class Trickling(_Relay):
    def serve(self, conn: socket.socket) -> None:
        while not self._stop.is_set():
            conn.sendall(b"220-still here\r\n")
            time.sleep(1.0)


class Late(_Relay):
    def __init__(self, late_by: float) -> None:
        self.message_ids: list[str] = []
        self._late_by = late_by
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        lines = conn.makefile("rb")
        conn.sendall(b"220 relay.test ESMTP\r\n")
        for line in lines:
            command = line.strip().upper()
            if command.startswith((b"EHLO", b"HELO")):
                conn.sendall(b"250-relay.test\r\n250 8BITMIME\r\n")
            elif command == b"DATA":
                conn.sendall(b"354 go on\r\n")
                data = b"".join(iter(lines.readline, b".\r\n"))
                found = re.search(rb"(?im)^Message-ID:\s*(\S+)", data)
                self.message_ids.append(found.group(1).decode() if found else "")
                if len(self.message_ids) == 1:
                    time.sleep(self._late_by)  # taken, but the client has stopped listening
                    return
                conn.sendall(b"250 queued\r\n")
            elif command == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            else:
                conn.sendall(b"250 ok\r\n")


@contextmanager
def running(relay: Any) -> Iterator[Any]:
    try:
        yield relay
    finally:
        relay.close()
