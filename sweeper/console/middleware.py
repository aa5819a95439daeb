"""What wraps every answer of the console: its security headers, a page (and a log record)
for any failure, and the client's address as the audit records it.

Order, outermost first: :class:`SecurityHeaders` (so that failure pages carry them too),
:class:`Failures`, :class:`ForwardedFor`, then the session and the pages.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import sqlite3
from collections.abc import Awaitable, Callable, Iterable
from http import HTTPStatus

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sweeper.errors import DatabaseBusy, SignInUnavailable, StorageError, SweeperError

log = logging.getLogger("sweeper.console")

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
FailurePage = Callable[[int, str, str], bytes]
"""Renders a failure: (status, title, one line) → the HTML page."""
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class SecurityHeaders:
    """The headers every answer carries (a pure ASGI middleware: it sees every answer,
    failure pages and static files included)."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"
                ]
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cache-control", b"no-store"),
                ]
                if self.hsts:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def explain(exc: BaseException) -> tuple[int, str, str]:
    """A failure as (status, title, one line for the page and the log)."""
    if isinstance(exc, DatabaseBusy):
        return 503, "Database busy", f"{exc}. Try again in a moment."
    if isinstance(exc, StorageError):
        return 503, "Database unavailable", str(exc)
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return 503, "Database busy", f"the database is locked by another process ({exc})"
    if isinstance(exc, sqlite3.DatabaseError):  # damaged or replaced under a request
        first = (str(exc).splitlines() or [""])[0]
        return 503, "Database unavailable", f"the database cannot be read ({first})"
    if isinstance(exc, SignInUnavailable):
        return 503, "Sign-in unavailable", str(exc)
    if isinstance(exc, SweeperError):
        return 500, "Failed", str(exc)
    return 500, "Internal error", f"the console failed ({type(exc).__name__}); it was logged"


class Failures:
    """Any exception below becomes a page with one line (:func:`explain`) and a log record,
    never a bare "Internal Server Error"."""

    def __init__(self, app: ASGIApp, *, page: FailurePage) -> None:
        self.app = app
        self.page = page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watching(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watching)
        except Exception as exc:
            status, title, line = explain(exc)
            ref = secrets.token_hex(4)
            where = f"{scope.get('method', '')} {scope.get('path', '')}"
            known = isinstance(exc, SweeperError)
            log.error("console: %s failed [%s]: %s", where, ref, line, exc_info=not known)
            if started:  # part of the answer is gone: only closing the connection is left
                raise
            body = self.page(status, title, f"{line} (reference {ref})")
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"text/html; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})


def refusals(page: FailurePage) -> Callable[[Request, Exception], Awaitable[Response]]:
    """Starlette's own refusals (no such page, a method not allowed, a form it cannot
    parse) as the console's page of one line, with a log record, like every failure."""

    async def refused(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        title = HTTPStatus(status).phrase
        detail = exc.detail if isinstance(exc, HTTPException) else ""
        path = request.url.path[:200]
        line = detail if detail and detail != title else f"{title}: {path}"
        log.warning("console: %s %s answered %d: %s", request.method, path, status, line)
        headers = exc.headers if isinstance(exc, HTTPException) else None
        return HTMLResponse(page(status, title, line), status, headers=headers)

    return refused


def networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Addresses or networks (``10.0.0.0/8``) as networks; ValueError for anything else."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values)


VIA_PROXY = "sweeper.via_proxy"  # a scope key: the socket's peer is a configured proxy


def _address_of(hop: str) -> str | None:
    """The address of one ``X-Forwarded-For`` hop: ``1.2.3.4``, ``1.2.3.4:5678`` (as App
    Service writes it), ``2001:db8::1`` or ``[2001:db8::1]:5678``; None if it is none."""
    candidates = [hop]
    if hop.startswith("[") and "]" in hop:
        candidates = [hop[1 : hop.index("]")]]
    elif hop.count(":") == 1:
        candidates.append(hop.partition(":")[0])
    for candidate in candidates:
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None


class ForwardedFor:
    """The client's address: the socket's peer, or, when that peer is one of the configured
    proxies (``console.trusted_proxies``), the nearest address in ``X-Forwarded-For`` that
    is not one of them. With no proxies configured the header is never read, whoever
    sends it (loopback included). Whether the request came through a configured proxy is
    left in the scope (:data:`VIA_PROXY`), for the other headers only a proxy may set."""

    def __init__(self, app: ASGIApp, *, trusted: tuple[Network, ...]) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            via = False
            if self.trusted and scope.get("client"):
                peer = scope["client"][0]
                via = self._is_proxy(peer)
                if via:
                    scope = {**scope, "client": (self._client(scope, peer), 0)}
            scope = {**scope, VIA_PROXY: via}
        await self.app(scope, receive, send)

    def _is_proxy(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.trusted)

    def _client(self, scope: Scope, peer: str) -> str:
        values = [
            v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"x-forwarded-for"
        ]
        hops = [h.strip() for h in ",".join(values).split(",") if h.strip()]
        client = peer
        for written in reversed(hops):  # the nearest hop first: added by the trusted proxy
            hop = _address_of(written)
            if hop is None:
                return client  # not an address: nothing further along can be believed
            client = hop
            if not self._is_proxy(hop):
                return hop
        return client
