"""An HTTPS server on loopback whose every answer is hostile, for the answer-bound tests.

``bomb``: a 200 gzip answer of about a MiB that inflates to ``size`` bytes.
``trickle``: a 200 JSON answer (a token's shape) sent a byte at a time, ``pace`` apart.
Its own throwaway CA (trustme) signs its certificate: ``ca_path`` is what a client trusts.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
import zlib
from pathlib import Path

import orjson
import trustme
from aiohttp import web


def gzip_bomb(size: int) -> bytes:
    squeeze = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    mib = b" " * (1 << 20)
    parts = [squeeze.compress(b'{"padding":"')]
    parts += [squeeze.compress(mib) for _ in range(size >> 20)]
    parts += [squeeze.compress(b'"}'), squeeze.flush()]
    return b"".join(parts)


class Hostile:
    def __init__(self, mode: str, folder: Path, *, size: int = 1 << 28, pace: float = 0.1) -> None:
        self.mode, self.pace = mode, pace
        self.hits: list[str] = []
        self._ca = trustme.CA()
        self.ca_path = folder / "hostile-ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_path))
        self._bomb = gzip_bomb(size) if mode == "bomb" else b""
        self._loop = asyncio.new_event_loop()
        self.url = ""

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(request.path)
        if self.mode == "bomb":
            headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
            return web.Response(body=self._bomb, headers=headers)
        answer = web.StreamResponse(headers={"Content-Type": "application/json"})
        await answer.prepare(request)
        token = {"token_type": "Bearer", "expires_in": 3599, "access_token": "x" * 40}
        for byte in orjson.dumps(token):
            await answer.write(bytes([byte]))
            await asyncio.sleep(self.pace)
        return answer

    def __enter__(self) -> Hostile:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert("127.0.0.1").configure_cert(tls)
        app = web.Application()
        app.router.add_route("*", "/{any:.*}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        threading.Thread(target=self._loop.run_forever, daemon=True).start()

        async def start() -> int:
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=tls)
            await site.start()
            return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

        port = asyncio.run_coroutine_threadsafe(start(), self._loop).result(10)
        self.url = f"https://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
        deadline = time.monotonic() + 10
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._loop.call_soon_threadsafe(self._loop.stop)
