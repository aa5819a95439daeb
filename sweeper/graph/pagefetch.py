"""GETs of mailbox pages, the sweep's hot path, without the SDK's request pipeline.

Everything else sweeper asks Graph goes through msgraph-sdk's request adapter. A page of a
mailbox's Sent Items is the one request made thousands of times a night, and there the
adapter, its eight middleware layers and httpx's pure-Python HTTP/1.1 and TLS reading cost
more CPU than decoding and judging the page's messages (BENCHMARKS.md has the figures).
:class:`AiohttpPages` reads them with aiohttp's client instead (its parser is compiled; it
is already installed as azure-identity's async transport): the same token from the same
credential, the same proxy, TLS trust, deadline and size bound as every other client
(:mod:`sweeper.graph.network`), and no redirects. Throttling, retries and error mapping
stay in the gateway, which sees each answer as an :class:`httpx.Response` and each failure
as an :class:`httpx.HTTPError`, whichever fetcher read it.

:class:`HttpxPages` reads through an httpx transport instead: the one given to the gateway
(tests answer with :class:`httpx.MockTransport`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Protocol

import aiohttp
import httpx
from yarl import URL

from sweeper.graph.network import (
    ACCEPT_ENCODING,
    BoundedBody,
    Outbound,
    decoded_headers,
    too_long,
)


class PageFetcher(Protocol):
    async def get(self, url: httpx.URL, headers: Mapping[str, str]) -> httpx.Response: ...

    async def aclose(self) -> None: ...


class HttpxPages:
    """Pages read through an httpx transport (which counts them itself)."""

    def __init__(self, transport: httpx.AsyncBaseTransport, timeout: httpx.Timeout) -> None:
        self._client = httpx.AsyncClient(transport=transport, timeout=timeout)

    async def get(self, url: httpx.URL, headers: Mapping[str, str]) -> httpx.Response:
        return await self._client.get(url, headers=dict(headers))

    async def aclose(self) -> None:
        await self._client.aclose()


class Counter(Protocol):
    def count(self, request: httpx.Request, status: int) -> None: ...


class AiohttpPages:
    """Pages read with aiohttp's client; each answer counted as the SDK's requests are.

    Proxy, trust and limits are the :class:`~sweeper.graph.network.Outbound` of every
    client; each answer is read whole within its deadline and decoded within its bound by
    :class:`~sweeper.graph.network.BoundedBody` (aiohttp's own decompression is off).
    """

    def __init__(self, counter: Counter, outbound: Outbound, *, max_connections: int) -> None:
        self._counter = counter
        self._outbound = outbound
        self._limit = max_connections
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=outbound.connect_timeout, sock_read=outbound.timeout
        )
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[str, str | None] = {}

    def _open(self) -> aiohttp.ClientSession:
        """The session, made in the running event loop at the first page."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit, ssl=self._outbound.ssl_context()),
                timeout=self._timeout,
                auto_decompress=False,
            )
        return self._session

    async def get(self, url: httpx.URL, headers: Mapping[str, str]) -> httpx.Response:
        sent = {**headers, "Accept-Encoding": ACCEPT_ENCODING}
        request = httpx.Request("GET", url, headers=sent)
        deadline = self._outbound.timeout
        try:
            async with asyncio.timeout(deadline):
                response = await self._read(url, sent, request)
        except TimeoutError as exc:
            raise too_long(deadline, request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.RemoteProtocolError(
                f"{type(exc).__name__}: {exc}", request=request
            ) from exc
        self._counter.count(request, response.status_code)
        return response

    async def _read(
        self, url: httpx.URL, headers: Mapping[str, str], request: httpx.Request
    ) -> httpx.Response:
        # encoded=True: the URL goes out exactly as Graph's next link wrote it.
        async with self._open().get(
            URL(str(url), encoded=True),
            headers=headers,
            allow_redirects=False,
            proxy=self._proxy_for(url),
        ) as answer:
            body = BoundedBody(
                answer.headers.get("Content-Encoding"), self._outbound.max_answer_bytes
            )
            async for chunk in answer.content.iter_any():
                body.feed(chunk)
            return httpx.Response(
                answer.status,
                # The body is decoded here: its encoding and length are no more.
                headers=decoded_headers(answer.headers),
                content=body.content(),
                request=request,
            )

    def _proxy_for(self, url: httpx.URL) -> str | None:
        """The proxy of the outbound configuration for this host, looked up once per host."""
        key = f"{url.scheme}://{url.netloc.decode('ascii')}"
        if key not in self._proxies:
            self._proxies[key] = self._outbound.proxy_for(str(url))
        return self._proxies[key]

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
