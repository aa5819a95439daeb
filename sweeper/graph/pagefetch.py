"""GETs of mailbox pages, the sweep's hot path, without the SDK's request pipeline.

Everything else sweeper asks Graph goes through msgraph-sdk's request adapter. A page of a
mailbox's Sent Items is the one request made thousands of times a night, and there the
adapter, its eight middleware layers and httpx's pure-Python HTTP/1.1 and TLS reading cost
more CPU than decoding and judging the page's messages (BENCHMARKS.md has the figures).
:class:`AiohttpPages` reads them with aiohttp's client instead (its parser is compiled; it
is already installed as azure-identity's async transport): the same token from the same
credential, the same TLS trust as httpx, the proxy settings of the environment, and no
redirects. Throttling, retries and error mapping stay in the gateway, which sees each answer
as an :class:`httpx.Response` and each failure as an :class:`httpx.HTTPError`, whichever
fetcher read it.

:class:`HttpxPages` reads through an httpx transport instead: the one given to the gateway
(tests answer with :class:`httpx.MockTransport`).
"""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import Mapping
from typing import Protocol

import aiohttp
import httpx
from yarl import URL

_DECODED = frozenset({"content-encoding", "content-length", "transfer-encoding"})


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
    """Pages read with aiohttp's client; each answer counted as the SDK's requests are."""

    def __init__(
        self,
        counter: Counter,
        *,
        ca_bundle: str | None,
        max_connections: int,
        timeout: float,
        connect_timeout: float,
    ) -> None:
        self._counter = counter
        self._ca_bundle = ca_bundle
        self._limit = max_connections
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=timeout
        )
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[str, str | None] = {}

    def _open(self) -> aiohttp.ClientSession:
        """The session, made in the running event loop at the first page."""
        if self._session is None:
            trust: ssl.SSLContext = (
                ssl.create_default_context(cafile=self._ca_bundle)
                if self._ca_bundle
                else httpx.create_ssl_context()  # as the SDK's client: SSL_CERT_FILE, certifi
            )
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit, ssl=trust),
                timeout=self._timeout,
            )
        return self._session

    async def get(self, url: httpx.URL, headers: Mapping[str, str]) -> httpx.Response:
        request = httpx.Request("GET", url, headers=dict(headers))
        session = self._open()
        try:
            # encoded=True: the URL goes out exactly as Graph's next link wrote it.
            async with session.get(
                URL(str(url), encoded=True),
                headers=headers,
                allow_redirects=False,
                proxy=self._proxy_for(url),
            ) as answer:
                content = await answer.read()
                response = httpx.Response(
                    answer.status,
                    # The body is decoded already: its encoding and length are aiohttp's.
                    headers=[
                        (k, v) for k, v in answer.headers.items() if k.lower() not in _DECODED
                    ],
                    content=content,
                    request=request,
                )
        except TimeoutError as exc:
            raise httpx.ReadTimeout(f"no answer in time ({type(exc).__name__})") from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.RemoteProtocolError(
                f"{type(exc).__name__}: {exc}", request=request
            ) from exc
        self._counter.count(request, response.status_code)
        return response

    def _proxy_for(self, url: httpx.URL) -> str | None:
        """The proxy the environment names for this host (HTTPS_PROXY, NO_PROXY), as httpx
        honours them; looked up once per host, not on every request as aiohttp's
        ``trust_env`` would (that costs more than the request)."""
        key = f"{url.scheme}://{url.host}"
        if key not in self._proxies:
            proxy = urllib.request.getproxies().get(url.scheme)
            self._proxies[key] = (
                None if proxy is None or urllib.request.proxy_bypass(url.host) else proxy
            )
        return self._proxies[key]

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
