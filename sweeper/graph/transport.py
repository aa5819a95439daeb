"""Under the gateway: the SDK's pipeline, the transport that counts Graph's answers, and
the renewable credential.

:class:`SdkPipeline` is what a gateway sends through: the SDK's request adapter and its
middleware over an httpx client, and the fetcher of mailbox pages beside it. Imported
only when a gateway is built, this module is the one that loads the SDK, httpx and
aiohttp. :class:`CountingTransport` sits below the SDK's retry middleware, so it sees every
round trip, retries included. :class:`RenewableCredential` wraps the configured
azure-identity credential so that a token Graph refused before its expiry is replaced by a
new one.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_request_adapter import options as graph_middleware_options
from msgraph_core import GraphClientFactory

from sweeper.graph.answers import THROTTLE_STATUSES
from sweeper.graph.network import BoundedTransport, Outbound
from sweeper.graph.pagefetch import AiohttpPages, HttpxPages, PageFetcher

_USER_IN_PATH = re.compile(r"/users/([^/?]+)")


class CountingTransport(httpx.AsyncBaseTransport):
    """Wraps the real transport to count throttled answers per mailbox.

    The SDK's retry middleware sits above this transport, so every 429/503/504 it swallows
    while waiting out ``Retry-After`` is still seen and counted here.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.throttled: Counter[str] = Counter()
        self.requests = 0  # every HTTP round trip to Graph, retries included

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.count(request, response.status_code)
        return response

    def count(self, request: httpx.Request, status: int) -> None:
        """One round trip, and its mailbox's throttled answers (also of requests sent past
        this transport: :mod:`sweeper.graph.pagefetch`)."""
        self.requests += 1
        if status in THROTTLE_STATUSES:
            match = _USER_IN_PATH.search(request.url.path)
            self.throttled[match.group(1) if match else ""] += 1

    async def aclose(self) -> None:
        await self.inner.aclose()


class RenewableCredential(AsyncTokenCredential):
    """The configured credential, able to insist on a new token after Graph refused one.

    azure-identity renews a token a few minutes before it expires, but Graph can refuse one
    sooner: a clock minutes off, a session revoked. Asking with a ``claims`` value makes
    azure-identity and MSAL bypass their caches; the value asks for a token issued from now
    on, the form Graph's own claims challenges take.
    """

    def __init__(self, inner: AsyncTokenCredential) -> None:
        self._inner = inner
        self._last: str | None = None  # the token handed out last
        self._refused: str | None = None  # the token Graph refused last
        self._lock = asyncio.Lock()

    def refused(self, header: str | None) -> None:
        """Graph refused the token in this Authorization header: replace it."""
        if header is not None:
            self._refused = header.removeprefix("Bearer ")

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        # One at a time: the requests in flight when a token was refused all see it
        # refused, and one new token serves them all.
        async with self._lock:
            if not claims and self._refused is not None and self._refused == self._last:
                issued_from = str(int(time.time()))
                claims = orjson.dumps(
                    {"access_token": {"nbf": {"essential": True, "value": issued_from}}}
                ).decode()
            token = await self._inner.get_token(
                *scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, **kwargs
            )
            self._last = token.token
            return token

    async def close(self) -> None:
        await self._inner.close()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        await self.close()


class SdkPipeline:
    """The SDK's request adapter over an httpx client whose transport counts every round
    trip, and what reads mailbox pages past it (see :mod:`sweeper.graph.pagefetch`):
    aiohttp's client, or ``transport`` when one is given (tests)."""

    def __init__(
        self,
        graph_url: str,
        scope: str,
        credential: RenewableCredential,
        transport: httpx.AsyncBaseTransport | None,
        outbound: Outbound,
        max_connections: int,
    ) -> None:
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=32)
        inner = transport or outbound.httpx_transport(graph_url, http2=True, limits=limits)
        self.transport = CountingTransport(BoundedTransport(inner, outbound))
        timeouts = httpx.Timeout(outbound.timeout, connect=outbound.connect_timeout)
        client = httpx.AsyncClient(transport=self.transport, timeout=timeouts, base_url=graph_url)
        self.http = GraphClientFactory.create_with_default_middleware(
            client=client, options=graph_middleware_options
        )
        host = urlsplit(graph_url).hostname or ""
        auth = AzureIdentityAuthenticationProvider(credential, scopes=[scope], allowed_hosts=[host])
        self.pages: PageFetcher = (
            HttpxPages(self.transport, timeouts)
            if transport is not None
            else AiohttpPages(self.transport, outbound, max_connections=max_connections)
        )
        self.adapter = GraphRequestAdapter(auth, client=self.http)
        self.adapter.base_url = graph_url
