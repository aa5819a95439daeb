"""Real HTTP receivers on loopback for the alert tests: what a webhook's far side sees."""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass, field

from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 (aiohttp, in a thread of its own).

    Each path answers as ``script`` says, in turn (the last answer again after that; 200
    when not scripted), after ``delay`` seconds; a path in ``held`` gives no answer at all
    (its requests are recorded with status 0) until :meth:`release`. With a ``secret`` it
    verifies every request's Standard Webhooks signature with the reference library and
    answers 401 to one that fails. It records
    every request; a *delivery* is one it accepted (2xx).
    """

    secret: str | None = None
    script: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    port: int = 0
    held: set[str] = field(default_factory=set)  # paths that give no answer until release()
    delay: float = 0.0  # seconds before each answer: a slow receiver

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def deliveries(self) -> list[Request]:
        return [r for r in self.requests if 200 <= r.status <= 299]

    def release(self) -> None:
        """Held paths answer from now on (the requests held so far get a 503)."""
        self.held.clear()
        self._loop.call_soon_threadsafe(self._released.set)

    async def _answer(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        if request.path in self.held:
            self.requests.append(Request(request.path, headers, body, 0))
            await self._released.wait()
            return web.Response(status=503)
        await asyncio.sleep(self.delay)
        answers = self.script.get(request.path, [(200, {})])
        seen = sum(1 for r in self.requests if r.path == request.path)
        status, extra = answers[min(seen, len(answers) - 1)]
        if self.secret is not None and 200 <= status <= 299:
            try:
                Webhook(self.secret).verify(body, headers)
            except WebhookVerificationError:
                status = 401
        self.requests.append(Request(request.path, headers, body, status))
        return web.Response(status=status, headers=extra)

    def __enter__(self) -> Receiver:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    async def _serve(self) -> None:
        self._released = asyncio.Event()
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)  # an access log would show paths
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    def __exit__(self, *exc: object) -> None:
        self.release()
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def closed_port() -> int:
    """A loopback port nothing listens on: a receiver that is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
