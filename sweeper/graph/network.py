"""One outbound HTTP configuration for every client sweeper runs, and bounded answers.

:class:`Outbound` is built once from the environment (``HTTPS_PROXY``, ``HTTP_PROXY``,
``ALL_PROXY``, ``NO_PROXY``, upper or lower case, as curl and httpx read them), the CA
bundle and the timeout of the settings, and every client takes its proxy, TLS trust and
timeouts from it: the Graph gateway (the SDK's httpx client and the aiohttp page reads),
the azure-identity credentials, the Logs Ingestion client, the webhook posts and the
console's people sign-in (MSAL over requests). A proxy-only network, or a mandatory
inspection proxy, is then used by all of them or by none.

Every Graph answer is read whole under one deadline (:attr:`Outbound.timeout`, a total,
not a wait between two reads) and decoded here, at most :attr:`Outbound.max_answer_bytes`
bytes of it (:class:`BoundedBody`): a small compressed answer that would inflate past the
bound is refused as :class:`AnswerTooLarge` before it is held in memory, and is not asked
for again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from sweeper.graph.origins import origin

MAX_ANSWER_MB = 64  # graph.max_answer_mb's default: far above a page of 1,000 messages
ACCEPT_ENCODING = "gzip, deflate"  # what BoundedBody can decode within its bound
_PIECE = 1024 * 1024  # bytes inflated at a time: the bound is passed by a piece at most
_DECODED = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class AnswerTooLarge(httpx.TransportError):
    """An answer larger, once decoded, than sweeper reads: not asked for again."""


def _proxy_settings(env: Mapping[str, str]) -> tuple[dict[str, str], str]:
    """``{scheme: proxy URL}`` and the ``NO_PROXY`` list, lower-case names first (curl)."""
    proxies: dict[str, str] = {}
    for scheme in ("http", "https", "all"):
        value = env.get(f"{scheme}_proxy") or env.get(f"{scheme.upper()}_PROXY") or ""
        if value.strip():
            proxies[scheme] = value.strip()
    no_proxy = env.get("no_proxy") or env.get("NO_PROXY") or ""
    return proxies, no_proxy.strip()


def bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` exempts ``host``: ``*``, the host itself or a domain above it
    (``example.org`` or ``.example.org``), each optionally with ``:port``, or a network an
    address host is in (``10.0.0.0/8``, as curl and Python's own proxy bypass read it)."""
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if entry == "*":
            return True
        if "/" in entry:
            if _in_network(host, entry):
                return True
            continue
        name, _, wanted = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if wanted and wanted != str(port):
            continue
        name = name.strip("[]").lstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def _in_network(host: str, entry: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")) in ipaddress.ip_network(entry, strict=False)
    except ValueError:  # a host name, or an entry that is no network: no match
        return False


@dataclass(frozen=True)
class Outbound:
    """Proxy, trust and limits of every outbound connection. Holds no secret."""

    proxies: Mapping[str, str] = field(default_factory=dict)  # scheme (or "all") -> proxy
    no_proxy: str = ""
    ca_bundle: str | None = None
    timeout: float = 60.0  # seconds for a whole answer: connecting, waiting, reading
    max_answer_bytes: int = MAX_ANSWER_MB * 1024 * 1024

    @classmethod
    def of(
        cls,
        env: Mapping[str, str],
        *,
        ca_bundle: object = None,
        timeout: float = 60.0,
        max_answer_bytes: int = MAX_ANSWER_MB * 1024 * 1024,
    ) -> Outbound:
        proxies, no_proxy = _proxy_settings(env)
        return cls(
            proxies, no_proxy, str(ca_bundle) if ca_bundle else None, timeout, max_answer_bytes
        )

    @property
    def connect_timeout(self) -> float:
        return min(self.timeout, 30.0)

    def proxy_for(self, url: str) -> str | None:
        """The proxy for ``url``, or None to go direct (no proxy set, or NO_PROXY names it)."""
        scheme, host, port = origin(url)
        proxy = self.proxies.get(scheme) or self.proxies.get("all")
        if proxy is None or not host:
            return None
        return None if bypassed(host, port, self.no_proxy) else proxy

    def ssl_context(self) -> ssl.SSLContext:
        """The CA bundle named (SSL_CERT_FILE, REQUESTS_CA_BUNDLE), else httpx's default."""
        if self.ca_bundle:
            return ssl.create_default_context(cafile=self.ca_bundle)
        return httpx.create_ssl_context()

    def httpx_transport(
        self, url: str, *, http2: bool = False, limits: httpx.Limits | None = None
    ) -> httpx.AsyncHTTPTransport:
        """An httpx transport for the host of ``url``, through its proxy if it has one."""
        options: dict[str, Any] = {"http2": http2, "verify": self.ssl_context()}
        if limits is not None:
            options["limits"] = limits
        proxy = self.proxy_for(url)
        if proxy is not None:
            options["proxy"] = proxy
        return httpx.AsyncHTTPTransport(**options)

    def azure_options(self, url: str) -> dict[str, Any]:
        """azure-core client options for a client talking to ``url``'s host: the same proxy
        decision as every other client (not azure-core's own reading of the environment)."""
        options: dict[str, Any] = {"use_env_settings": False}
        proxy = self.proxy_for(url)
        if proxy is not None:
            options["proxies"] = {"http": proxy, "https": proxy}
        if self.ca_bundle:
            options["connection_verify"] = self.ca_bundle
        return options

    def azure_async_options(self, url: str, what: str) -> dict[str, Any]:
        """:meth:`azure_options` for an async azure-core client (azure-identity's sign-in,
        Logs Ingestion), with a transport reading each answer whole within ``timeout`` and
        the size bound: azure-core's own bounds each read only, and inflates whatever comes.
        """
        from sweeper.graph.azuretransport import BoundedAioHttpTransport

        options = self.azure_options(url)
        verify = {"connection_verify": self.ca_bundle} if self.ca_bundle else {}
        options["transport"] = BoundedAioHttpTransport(self, what, **verify)
        return options

    def requests_proxies(self, url: str) -> dict[str, str]:
        """requests' ``proxies`` for a session talking to ``url``'s host."""
        proxy = self.proxy_for(url)
        return {"http": proxy, "https": proxy} if proxy else {}


class BoundedBody:
    """An answer's body decoded (gzip, deflate or none) as it arrives, up to ``limit`` bytes.

    Each piece is inflated with zlib's ``max_length``, so no more than the bound is ever
    held, however far the compressed bytes would inflate. Raises :class:`AnswerTooLarge`
    past the bound, ``httpx.DecodingError`` for an encoding it cannot read.
    """

    def __init__(self, encoding: str | None, limit: int, what: str = "Graph's answer") -> None:
        name = (encoding or "").strip().lower()
        self._limit = limit
        self._what = what
        self._size = 0
        self._parts: list[bytes] = []
        self._inflate: Any = None
        if name in ("gzip", "x-gzip"):
            self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif name == "deflate":
            self._inflate = zlib.decompressobj()
        elif name not in ("", "identity"):
            raise httpx.DecodingError(f"{what} came in an encoding sweeper does not read: {name}")

    def feed(self, chunk: bytes) -> None:
        if self._inflate is None:
            self._add(chunk)
            return
        data = chunk
        try:
            while data and not self._inflate.eof:
                room = min(self._limit - self._size + 1, _PIECE)
                self._add(self._inflate.decompress(data, room))
                data = self._inflate.unconsumed_tail
        except zlib.error as exc:
            raise self._undecodable(exc) from None

    def _undecodable(self, exc: zlib.error) -> httpx.DecodingError:
        return httpx.DecodingError(f"{self._what} could not be decompressed: {exc}")

    def _add(self, piece: bytes) -> None:
        self._size += len(piece)
        if self._size > self._limit:
            self._parts.clear()
            raise AnswerTooLarge(
                f"{self._what} is larger than {_size(self._limit)} once decompressed: "
                "not read, and not asked for again"
            )
        if piece:
            self._parts.append(piece)

    def content(self) -> bytes:
        if self._inflate is not None:
            try:
                self._add(self._inflate.flush())
            except zlib.error as exc:
                raise self._undecodable(exc) from None
        return b"".join(self._parts)


def _size(count: int) -> str:
    mib = count / (1024 * 1024)
    return f"{mib:g} MiB" if mib >= 1 else f"{count} bytes"


def too_long(timeout: float, request: httpx.Request | None = None) -> httpx.ReadTimeout:
    return httpx.ReadTimeout(
        f"the whole answer did not arrive within {timeout:g} s",
        request=request,
    )


def decoded_headers(headers: Any) -> list[tuple[str, str]]:
    """An answer's headers once its body is decoded: no encoding, length or framing."""
    return [(k, v) for k, v in headers.items() if k.lower() not in _DECODED]


TOTAL_TIMEOUT = "sweeper.total_timeout"  # a request's extension: seconds for its whole answer


class BoundedTransport(httpx.AsyncBaseTransport):
    """Every answer read whole here, under one deadline and within the size bound.

    The answer handed up is already decoded (its ``Content-Encoding`` dropped), so httpx
    never inflates it again, and nothing above this transport waits on the network.
    """

    def __init__(
        self, inner: httpx.AsyncBaseTransport, outbound: Outbound, what: str = "Graph's answer"
    ) -> None:
        self.inner = inner
        self._outbound = outbound
        self._what = what

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.headers["Accept-Encoding"] = ACCEPT_ENCODING
        # A request may ask for less time than the client's (an alert near its run's budget).
        asked = request.extensions.get(TOTAL_TIMEOUT)
        timeout = self._outbound.timeout if asked is None else min(asked, self._outbound.timeout)
        try:
            async with asyncio.timeout(timeout):
                return await self._read(request)
        except TimeoutError:
            raise too_long(timeout, request) from None

    async def _read(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        try:
            body = BoundedBody(
                response.headers.get("Content-Encoding"),
                self._outbound.max_answer_bytes,
                self._what,
            )
            async for chunk in response.stream:  # type: ignore[union-attr]
                body.feed(chunk)
            content = body.content()
        finally:
            await response.aclose()
        return httpx.Response(
            response.status_code,
            headers=decoded_headers(response.headers),
            content=content,
            request=request,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()
