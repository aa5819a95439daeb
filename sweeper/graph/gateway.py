"""The one place that talks to Microsoft Graph, and the one module that imports the SDK.

:class:`GraphGateway` owns the msgraph-sdk request adapter (sign-in, retry and redirect
middleware), the HTTP client and its timeouts, and turns every Graph answer into plain
Python data or one of :mod:`sweeper.errors` (one mapper, :func:`_error_for`, for answers
on their own and inside a JSON batch alike). Message pages are fetched as raw JSON through
the SDK's request adapter: the SDK's model objects cost about 100 times more CPU per page.
msgspec reads a page's envelope and leaves each message as its raw JSON text
(``msgspec.Raw``), for :mod:`sweeper.rules.pages` to decode only what it needs. The
benchmark alone (:mod:`sweeper.bench`) reaches past this: it imports the SDK's message
request builder and uses the service client the gateway lends it
(:attr:`GraphGateway.sdk_client`), to measure that cost.

Paging and throttling are hidden here. Callers get whole pages as lists (of raw messages,
or of dicts for the other collections) and never see ``@odata.nextLink``; a mailbox's first
page that a JSON batch brought is an opaque :class:`FirstPage` that the sweep hands back
to :meth:`GraphGateway.sent_pages`, which goes on from it, or waits out the
``Retry-After`` of a throttled batch item first. A ``Retry-After`` too long for a run to
wait (:data:`LONGEST_WAIT`) reaches the caller as a :class:`~sweeper.errors.MailboxFailed`
with ``retry_after`` set, for it to come back later.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import httpx
import msgspec
import orjson
from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError, ClientAuthenticationError
from kiota_abstractions.method import Method
from kiota_abstractions.native_response_handler import NativeResponseHandler
from kiota_abstractions.request_information import RequestInformation
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.middleware.options import ResponseHandlerOption, RetryHandlerOption
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_request_adapter import options as graph_middleware_options
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory

from sweeper import __version__
from sweeper.errors import AuthError, GraphError, MailboxFailed, MailboxNotEnabled
from sweeper.graph.network import AnswerTooLarge, BoundedTransport, Outbound
from sweeper.graph.pagefetch import AiohttpPages, HttpxPages, PageFetcher
from sweeper.graph.paging import MAX_PAGES, Paging
from sweeper.when import iso

MESSAGE_FIELDS = (
    "id",
    "internetMessageId",
    "conversationId",
    "subject",
    "sentDateTime",
    "from",
    "sender",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
)
"""What sweeper reads of a message: no body, no preview, no attachments (Mail.ReadBasic.All)."""

USER_FIELDS = "id,userPrincipalName,mail,displayName,accountEnabled,department,jobTitle"
log = logging.getLogger(__name__)
THROTTLE_STATUSES = frozenset({429, 503, 504})  # waited out, as Retry-After asks
LONGEST_WAIT = 180.0  # the SDK gives up at once on a longer Retry-After; so does sweeper


@dataclass
class _Hold:
    held: bool = True


_HOLDING: contextvars.ContextVar[_Hold | None] = contextvars.ContextVar("slot", default=None)
THROTTLE_RETRIES = 3  # a mailbox read throttled again after this many waits fails (as the SDK)
THROTTLE_DEFAULT_WAIT = 3.0  # without Retry-After: 3 s, doubling (the SDK's own delays)
RETRY_DELAYS = (0.5, 2.0)  # sweeper's own retries of a read that got no usable answer
RETRIED_STATUSES = frozenset({500, 502})  # server errors the SDK does not retry
_USER_IN_PATH = re.compile(r"/users/([^/?]+)")
T = TypeVar("T")


class _Page(msgspec.Struct):
    """A page of messages: each value left as its raw JSON text, the next link as sent."""

    value: list[msgspec.Raw]
    next_link: Any = msgspec.field(name="@odata.nextLink", default=None)


class _BatchItem(msgspec.Struct):
    """One answer inside a JSON batch: every field as sent, the body still raw JSON."""

    id: Any = None
    status: Any = None
    headers: Any = None
    body: msgspec.Raw = msgspec.Raw()  # empty: no body


class _Batch(msgspec.Struct):
    responses: list[msgspec.Raw] | None = None


_PAGE = msgspec.json.Decoder(_Page)
_BATCH = msgspec.json.Decoder(_Batch)
_BATCH_ITEM = msgspec.json.Decoder(_BatchItem)


@dataclass(frozen=True, slots=True)
class FirstPage:
    """A mailbox's first page from a JSON batch, and whether more follow.

    Opaque outside this module: the sweep only hands it back to
    :meth:`GraphGateway.sent_pages`, which yields it and reads on from there.
    """

    _messages: list[msgspec.Raw]
    _next_link: str | None


@dataclass(frozen=True, slots=True)
class User:
    id: str
    upn: str
    display_name: str
    mail: str | None
    department: str | None = None  # Entra's, for the severity rule's sensitive functions
    job_title: str | None = None
    enabled: bool = True  # False: a shared mailbox, a room, a leaver (accountEnabled)


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


class GraphGateway:
    """Async access to the few Graph endpoints sweeper needs. Use as ``async with``."""

    def __init__(
        self,
        graph_url: str,
        scope: str,
        credential: AsyncTokenCredential,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        outbound: Outbound | None = None,
        max_connections: int = 32,
        max_pages: int = MAX_PAGES,
    ) -> None:
        self.graph_url = graph_url.rstrip("/")
        self._credential = RenewableCredential(credential)
        self._outbound = outbound = outbound or Outbound()
        self._max_pages = max_pages
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=32)
        inner = transport or outbound.httpx_transport(self.graph_url, http2=True, limits=limits)
        self._transport = CountingTransport(BoundedTransport(inner, outbound))
        timeouts = httpx.Timeout(outbound.timeout, connect=outbound.connect_timeout)
        client = httpx.AsyncClient(
            transport=self._transport, timeout=timeouts, base_url=self.graph_url
        )
        client = GraphClientFactory.create_with_default_middleware(
            client=client, options=graph_middleware_options
        )
        host = urlsplit(self.graph_url).hostname or ""
        auth = AzureIdentityAuthenticationProvider(
            self._credential, scopes=[scope], allowed_hosts=[host]
        )
        self._http = client
        self._scope = scope
        # Mailbox pages are read past the SDK's request pipeline: see sweeper.graph.pagefetch.
        self._page_fetcher: PageFetcher = (
            HttpxPages(self._transport, timeouts)
            if transport is not None
            else AiohttpPages(self._transport, outbound, max_connections=max_connections)
        )
        self._slots: asyncio.Semaphore | None = None
        self._adapter = GraphRequestAdapter(auth, client=client)
        self._adapter.base_url = self.graph_url
        self._client = GraphServiceClient(request_adapter=self._adapter)

    async def __aenter__(self) -> GraphGateway:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.aclose()
        await self._page_fetcher.aclose()
        await self._credential.close()

    # -- reading slots: mailboxes read at once, none of them held while throttled ---------

    def open_slots(self, count: int) -> None:
        """At most ``count`` mailboxes are read at once (``sweep.concurrency``)."""
        self._slots = asyncio.Semaphore(count)

    async def take_slot(self) -> None:
        """Wait for a free slot, for a mailbox (or a batch of them) about to be read; the
        task that reads it then holds it with :meth:`holding`."""
        if self._slots is not None:
            await self._slots.acquire()

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """This task holds the slot taken for it until the block ends, less the time it
        waits out a Retry-After (see :meth:`_wait_throttled`)."""
        hold = _Hold()
        token = _HOLDING.set(hold)
        try:
            yield
        finally:
            _HOLDING.reset(token)
            if self._slots is not None and hold.held:
                self._slots.release()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Take a slot and hold it for the block."""
        await self.take_slot()
        with self.holding():
            yield

    async def _wait_throttled(self, seconds: float) -> None:
        """Wait out a ``Retry-After`` without holding a slot: another mailbox is read
        meanwhile. Reads that run outside the slots (tenant-wide lists) just sleep."""
        hold = _HOLDING.get()
        if self._slots is None or hold is None or not hold.held:
            await asyncio.sleep(seconds)
            return
        hold.held = False
        self._slots.release()
        try:
            await asyncio.sleep(seconds)
        finally:
            await self._slots.acquire()
            hold.held = True

    # -- what the sweep asks for -------------------------------------------------------

    def throttled_for(self, user_id: str) -> int:
        return self._transport.throttled[quote(user_id, safe="@")]

    @property
    def requests(self) -> int:
        return self._transport.requests

    @property
    def throttled_total(self) -> int:
        return sum(self._transport.throttled.values())

    @property
    def sdk_client(self) -> GraphServiceClient:
        """The SDK's service client over this gateway's adapter (sign-in, retries, timeouts).

        For the benchmark only, which measures the SDK's model objects against the raw JSON
        that sweeper reads; nothing else should build requests past the gateway.
        """
        return self._client

    async def verified_domains(self) -> list[str]:
        """The tenant's verified domain names, lower case."""
        names: list[str] = []
        async for page in self._pages(f"{self.graph_url}/domains", tenant_wide=True):
            for item in page:
                if isinstance(item, dict) and item.get("isVerified") is True:
                    name = item.get("id")
                    if isinstance(name, str) and name:
                        names.append(name.lower())
        if not names:
            raise GraphError("Graph listed no verified domain for this tenant")
        return names

    async def get_user(self, name: str) -> User | None:
        """One user by UPN or id, enabled or not (a shared mailbox, a leaver); None if unknown."""
        url = f"{self.graph_url}/users/{quote(name, safe='@')}?$select={USER_FIELDS}"
        try:
            body = await self._get_json(url, tenant_wide=True)
        except GraphError as exc:
            if exc.status == 404:
                return None
            raise
        return _user(body)

    async def users(self, *, include_disabled: bool) -> list[User]:
        """Every user, all pages: enabled accounts only, or disabled ones too (a shared
        mailbox is a disabled account; so is a leaver whose mailbox is kept)."""
        fields: dict[str, str] = {"$select": USER_FIELDS, "$top": "999"}
        if not include_disabled:
            fields["$filter"] = "accountEnabled eq true"
        users: list[User] = []
        unusable = 0
        async for page in self._pages(
            f"{self.graph_url}/users?{urlencode(fields)}", tenant_wide=True
        ):
            for item in page:
                user = _user(item)
                if user is None:
                    unusable += 1
                else:
                    users.append(user)
        if unusable:
            log.warning("%d user entries without an id or userPrincipalName were ignored", unusable)
        return users

    async def sent_pages(
        self,
        user: User,
        since: datetime | None,
        until: datetime | None,
        page_size: int,
        *,
        internet_message_id: str | None = None,
        first: FirstPage | GraphError | None = None,
    ) -> AsyncIterator[list[msgspec.Raw]]:
        """Pages of Sent Items sent in ``[since, until)``, each message as its raw JSON text
        (an object, normally: :mod:`sweeper.rules.pages` reads it).

        With ``internet_message_id``, only the copies of that message. ``first`` is what
        :meth:`first_pages` brought for this mailbox, if anything: its page comes first and,
        if more follow, the rest is read on from it in full ``page_size`` pages; a throttled
        item is waited out as its ``Retry-After`` asks (see :func:`_wait_out`); any other
        failed item is read again the ordinary way, with its retries.

        Raises MailboxNotEnabled for an account without a mailbox, MailboxFailed when the
        mailbox cannot be read to the end (``retry_after`` set when Graph said how long to
        leave it alone).
        """
        skip = 0
        if isinstance(first, FirstPage):
            yield first._messages
            if first._next_link is None:
                return  # a quiet mailbox: the batch brought all of it
            # A busy one: on from where the batch stopped, with $skip (following the batch's
            # own next link would keep its small pages and cost more round trips).
            skip = len(first._messages)
        elif isinstance(first, GraphError):
            await _wait_out(first, self._wait_throttled)
        relative = _sent_url(user, since, until, page_size, internet_message_id)
        if skip:
            relative += f"&$skip={skip}"
        try:
            async for page in self._message_pages(f"{self.graph_url}/{relative}", 1 if skip else 0):
                yield page
        except (MailboxNotEnabled, MailboxFailed):
            raise
        except GraphError as exc:  # includes a 401/403 on this one mailbox
            raise MailboxFailed(
                str(exc), status=exc.status, code=exc.code, retry_after=exc.retry_after
            ) from None

    async def first_pages(
        self, wanted: list[tuple[User, datetime, datetime]], page_size: int
    ) -> dict[str, FirstPage | GraphError]:
        """The first page of up to 20 mailboxes in one round trip (JSON batching).

        Posted as raw JSON (the SDK's batch helper is broken). Each item answers on its own,
        as a :class:`FirstPage` or the GraphError it would have been alone; either is for the
        caller to hand back to :meth:`sent_pages` (``first=``), which reads the mailbox on
        from there. An item the answer left out is a GraphError too: never lost.
        """
        users = [user for user, _, _ in wanted]
        body = {
            "requests": [
                {"id": str(i), "method": "GET", "url": _sent_url(u, since, until, page_size)}
                for i, (u, since, until) in enumerate(wanted)
            ]
        }
        answer = await self._post_batch(f"{self.graph_url}/$batch", body)
        results: dict[str, FirstPage | GraphError] = {}
        for raw in answer.responses or []:
            try:
                item = _BATCH_ITEM.decode(raw)
                user = users[int(item.id)]
            except (msgspec.ValidationError, ValueError, IndexError, TypeError):
                continue  # no object, or no mailbox of ours: fetched again below
            results[user.id] = _batch_item(item, self._transport, user)
        for user in users:  # an item the answer left out is fetched again, never lost
            results.setdefault(user.id, GraphError("missing from the batch answer", status=0))
        return results

    async def send_mail(self, sender: str, payload: dict[str, Any]) -> None:
        """POST ``/users/{sender}/sendMail`` once, without the SDK's retries.

        Graph answers 202 when it accepted the mail. A 503 or a timeout does not prove that
        it was not sent, so nothing here tries again: the caller decides.
        """
        request = RequestInformation(Method.POST)
        request.url = f"{self.graph_url}/users/{quote(sender, safe='@')}/sendMail"
        request.headers.try_add("Content-Type", "application/json")
        request.content = orjson.dumps(payload)
        request.add_request_options(
            [ResponseHandlerOption(NativeResponseHandler()), RetryHandlerOption(should_retry=False)]
        )
        try:
            response: httpx.Response = await self._adapter.send_async(request, None, {})
        except AzureError as exc:
            raise sign_in_error(exc) from None
        except httpx.HTTPError as exc:
            raise GraphError(
                f"sendMail got no answer ({type(exc).__name__}); the mail may or may not "
                "have been sent"
            ) from None
        if response.status_code != 202:
            code, message = _odata_error(_json_or_none(response.content), _reason(response))
            uncertain = response.status_code >= 500
            raise GraphError(
                f"sendMail answered {response.status_code} {code}"
                + (f": {_first_line(message)}" if message else "")
                + ("; the mail may or may not have been sent" if uncertain else ""),
                status=response.status_code,
                code=code,
            )

    async def sent_copy(self, mailbox: str, internet_message_id: str) -> dict[str, Any] | None:
        """The mailbox's Sent Items copy of the message with this internetMessageId, as
        ``{"id", "internetMessageId", "sentDateTime"}``; None when there is none.

        One read (Mail.ReadBasic.All is enough), with the retries of every read; a GraphError
        when Graph cannot say.
        """
        quoted = internet_message_id.replace("'", "''")
        query = urlencode(
            {
                "$filter": f"internetMessageId eq '{quoted}'",
                "$select": "id,internetMessageId,sentDateTime",
                "$top": "10",
            },
            safe="$,:",
        )
        url = f"{self.graph_url}/users/{quote(mailbox, safe='@')}/mailFolders/sentitems/messages"
        body = await self._get_json(f"{url}?{query}", tenant_wide=False, page=True)
        for item in body["value"]:
            if isinstance(item, dict) and item.get("internetMessageId") == internet_message_id:
                return item
        return None

    # -- plumbing ----------------------------------------------------------------------

    async def _pages(self, url: str, *, tenant_wide: bool) -> AsyncIterator[list[Any]]:
        """A tenant-wide listing (users, domains), page by page, within :class:`Paging`'s
        bounds: a link that repeats, leaves Graph's origin or goes on past ``max_pages``
        ends the run (AuthError and GraphError as any tenant-wide read)."""
        paging = self._paging(url, GraphError)
        next_url: str | None = url
        while next_url:
            body = await self._get_json(next_url, tenant_wide=tenant_wide, page=True)
            yield body["value"]
            next_url = paging.follow(body.get("@odata.nextLink"))

    async def _message_pages(self, url: str, read: int = 0) -> AsyncIterator[list[msgspec.Raw]]:
        """A mailbox's pages after the ``read`` a batch brought, within :class:`Paging`'s
        bounds: past them, MailboxFailed."""
        paging = self._paging(url, MailboxFailed, read)
        next_url: str | None = url
        while next_url:
            page = await self._send(self._page_get(next_url), tenant_wide=False, parse=_parse_page)
            yield page.value
            next_url = paging.follow(page.next_link)

    def _paging(self, url: str, failure: type[GraphError], read: int = 0) -> Paging:
        return Paging(url, self.graph_url, max_pages=self._max_pages, failure=failure, read=read)

    async def _post_batch(self, url: str, body: dict[str, Any]) -> _Batch:
        """POST a JSON batch of reads: as safe to send again as the reads themselves."""

        def build() -> RequestInformation:
            request = RequestInformation(Method.POST)
            request.url = url
            request.headers.try_add("Content-Type", "application/json")
            request.headers.try_add("Accept", "application/json")
            request.content = orjson.dumps(body)
            request.add_request_options([ResponseHandlerOption(NativeResponseHandler())])
            return request

        return await self._send(self._sdk_send(build), tenant_wide=True, parse=_parse_batch)

    async def _get_json(self, url: str, *, tenant_wide: bool, page: bool = False) -> dict[str, Any]:
        def parse(content: bytes) -> tuple[dict[str, Any] | None, str]:
            return _parse(content, page=page)

        build = _get(url, own_throttling=not tenant_wide)
        return await self._send(self._sdk_send(build), tenant_wide=tenant_wide, parse=parse)

    def _sdk_send(self, build: Callable[[], RequestInformation]) -> Callable[[], Awaitable[Any]]:
        """Each attempt, through the SDK's request adapter and its middleware."""
        return lambda: self._adapter.send_async(build(), None, {})

    def _page_get(self, url: str) -> Callable[[], Awaitable[httpx.Response]]:
        """Each attempt at a page of a mailbox's messages: a GET with a token from the same
        credential, past the SDK's request adapter and its middleware (for these reads they
        do nothing sweeper needs: throttling is waited out in ``_send``, off the reading
        slot, and Graph answers them without redirects). See :mod:`.pagefetch`.

        The link was checked by :class:`Paging` (Graph's own scheme, host and port) before
        it gets here; only a token for that origin is ever sent.
        """
        target = httpx.URL(url if "://" in url else f"{self.graph_url}/{url}")

        async def attempt() -> httpx.Response:
            # As the SDK's provider asks (CAE on): one token serves both kinds of request.
            token = await self._credential.get_token(self._scope, enable_cae=True)
            headers = {
                "Authorization": f"Bearer {token.token}",
                "Accept": "application/json",
                "User-Agent": f"sweeper/{__version__}",
                "client-request-id": str(uuid.uuid4()),
            }
            return await self._page_fetcher.get(target, headers)

        return attempt

    async def _send(
        self,
        send_once: Callable[[], Awaitable[Any]],
        *,
        tenant_wide: bool,
        parse: Callable[[bytes], tuple[T | None, str]],
    ) -> T:
        """Send a read; return its answer as ``parse`` reads it, or raise one of
        :mod:`sweeper.errors`.

        Throttling (429/503/504) of a mailbox's read is waited out here, as Retry-After asks
        (:func:`_throttle_wait`), without holding the mailbox's reading slot; of a
        tenant-wide read, by the SDK's retry middleware.
        Sweeper adds what the SDK leaves out: a read that got no usable answer (connection
        reset, timeout, a cut-off or malformed body, a 500 or 502) is sent again after
        RETRY_DELAYS; a token Graph refused (401 InvalidAuthenticationToken) is replaced
        once by a fresh one.
        """
        renewed = False
        attempt = 0
        throttled = 0
        while True:
            try:
                response: httpx.Response = await send_once()
            except AzureError as exc:
                raise sign_in_error(exc) from None
            except AnswerTooLarge as exc:  # the same answer again would be as large
                raise GraphError(f"{exc} (graph.max_answer_mb)", code="AnswerTooLarge") from None
            except httpx.TimeoutException as exc:
                said = _first_line(str(exc)) or type(exc).__name__
                if "whole answer" in said:
                    said += ", graph.timeout_seconds"
                problem = GraphError(f"Graph did not answer in time ({said})")
            except httpx.HTTPError as exc:
                problem = GraphError(
                    f"connection to Graph failed ({type(exc).__name__}: {_first_line(str(exc))})"
                )
            else:
                status = response.status_code
                if status == 401 and not renewed and _refused_token(response):
                    renewed = True
                    self._credential.refused(response.request.headers.get("Authorization"))
                    log.info("Graph refused the access token before its expiry; renewing it")
                    continue
                if status in THROTTLE_STATUSES and not tenant_wide:
                    wait = _throttle_wait(response, throttled)
                    if wait is None:
                        raise _error_of(response, tenant_wide=tenant_wide)
                    throttled += 1
                    await self._wait_throttled(wait)
                    continue
                if status >= 400 and status not in RETRIED_STATUSES:
                    raise _error_of(response, tenant_wide=tenant_wide)
                if status >= 400:
                    problem = _error_of(response, tenant_wide=tenant_wide)
                else:
                    body, malformed = parse(response.content)
                    if body is not None:
                        return body
                    problem = GraphError(f"malformed answer from Graph: {malformed}")
            if attempt >= len(RETRY_DELAYS):
                raise problem
            log.info("%s; asking again in %.1f s", problem, RETRY_DELAYS[attempt])
            await asyncio.sleep(RETRY_DELAYS[attempt])
            attempt += 1


def _throttle_wait(response: httpx.Response, waited: int) -> float | None:
    """How long to wait before asking a mailbox again after a throttled answer, or None to
    give up: after THROTTLE_RETRIES waits, or when Retry-After is LONGEST_WAIT or more (the
    caller then comes back to the mailbox later). As the SDK's retry middleware would."""
    if waited >= THROTTLE_RETRIES:
        return None
    seconds = _seconds(response.headers.get("Retry-After"))
    if seconds is None:
        return float(THROTTLE_DEFAULT_WAIT * 2**waited)
    return seconds if seconds < LONGEST_WAIT else None


def _get(url: str, *, own_throttling: bool) -> Callable[[], RequestInformation]:
    """A GET of ``url`` for the SDK's adapter, its raw answer handed back unparsed.
    ``own_throttling``: a mailbox's read, whose throttling :meth:`GraphGateway._send` waits
    out itself (off the reading slot), so the SDK's retry middleware must leave it alone."""

    def build() -> RequestInformation:
        request = RequestInformation(Method.GET)
        request.url = url
        request.headers.try_add("Accept", "application/json")
        options: list[Any] = [ResponseHandlerOption(NativeResponseHandler())]
        if own_throttling:
            options.append(RetryHandlerOption(should_retry=False))
        request.add_request_options(options)
        return request

    return build


def _parse_page(content: bytes) -> tuple[_Page | None, str]:
    """A page of messages, its values undecoded, or None and what is wrong with it.

    Only the envelope is read here: a value's own text is checked when it is decoded
    (:mod:`sweeper.rules.pages`), so that a message the sweep never needs whole is never
    decoded whole.
    """
    try:
        page = _PAGE.decode(content)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        _, malformed = _parse(content, page=True)  # to say what is wrong, as ever
        return None, malformed or "a page sweeper cannot read"
    if page.next_link is not None and not isinstance(page.next_link, str):
        return None, "'@odata.nextLink' is not a URL"
    return page, ""


def _parse_batch(content: bytes) -> tuple[_Batch | None, str]:
    """A JSON batch's answer, its items undecoded; an object without a list of responses
    has none (each mailbox is then fetched again on its own)."""
    try:
        return _BATCH.decode(content), ""
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        body, malformed = _parse(content, page=False)
        return (_Batch(), "") if body is not None else (None, malformed)


def _parse(content: bytes, *, page: bool) -> tuple[dict[str, Any] | None, str]:
    """The answer's JSON object, or None and what is wrong with it."""
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None, f"not JSON ({len(content)} bytes)"
    if not isinstance(body, dict):
        return None, "not a JSON object"
    if page and not isinstance(body.get("value"), list):
        return None, "a page without a 'value' list"
    link = body.get("@odata.nextLink")
    if page and link is not None and not isinstance(link, str):
        return None, "'@odata.nextLink' is not a URL"
    return body, ""


def _refused_token(response: httpx.Response) -> bool:
    code, _ = _odata_error(_json_or_none(response.content), _reason(response))
    return code == "InvalidAuthenticationToken"


def _sent_url(
    user: User,
    since: datetime | None,
    until: datetime | None,
    page_size: int,
    internet_message_id: str | None = None,
) -> str:
    """The Sent Items query, relative to the Graph base URL (as batch items need it)."""
    clauses = []
    if since is not None:
        clauses.append(f"sentDateTime ge {iso(since)}")
    if until is not None:
        clauses.append(f"sentDateTime lt {iso(until)}")
    if internet_message_id is not None:
        quoted = internet_message_id.replace("'", "''")
        clauses.append(f"internetMessageId eq '{quoted}'")
    options = {"$select": ",".join(MESSAGE_FIELDS), "$top": str(page_size)}
    if clauses:
        options["$filter"] = " and ".join(clauses)
    query = urlencode(options, safe="$,:")
    return f"users/{quote(user.id, safe='@')}/mailFolders/sentitems/messages?{query}"


def _batch_item(
    item: _BatchItem, transport: CountingTransport, user: User
) -> FirstPage | GraphError:
    """One answer inside a batch: a page, or the error it would have been on its own."""
    status = item.status
    if status == 200:
        try:
            page = _PAGE.decode(item.body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass  # no page in it: said below, as any other answer
        else:
            link = page.next_link
            return FirstPage(page.value, link if isinstance(link, str) else None)
    if not isinstance(status, int):
        return GraphError("malformed batch item", status=0)
    if status in THROTTLE_STATUSES:
        transport.throttled[user.id] += 1  # inside a 200 answer: the transport never saw it
    headers = item.headers
    retry_after = headers.get("Retry-After") if isinstance(headers, dict) else None
    body = _json_or_none(item.body)
    return _error_for(status, body, retry_after, tenant_wide=False, retried=False)


async def _wait_out(item: GraphError, wait: Callable[[float], Awaitable[None]]) -> None:
    """Before a mailbox whose batch item failed is read again: wait, or give up on it.

    No mailbox: raised as is. Throttled (the retry middleware never saw the item): sleep
    its Retry-After, unless that is LONGEST_WAIT or more, which fails the mailbox with
    ``retry_after`` set so that the sweep can come back to it later. Anything else: no wait.
    """
    if isinstance(item, MailboxNotEnabled):
        raise item
    if item.retry_after is None:
        return
    if item.retry_after >= LONGEST_WAIT:
        raise MailboxFailed(
            f"still throttled after the batch: {item} (Retry-After {item.retry_after:.0f} s)",
            status=item.status,
            code=item.code,
            retry_after=item.retry_after,
        )
    await wait(item.retry_after)


def _user(item: object) -> User | None:
    if not isinstance(item, dict):
        return None
    user_id, upn = item.get("id"), item.get("userPrincipalName")
    if not isinstance(user_id, str) or not isinstance(upn, str) or not user_id or not upn:
        return None
    name = item.get("displayName")
    mail = item.get("mail")
    department, title = item.get("department"), item.get("jobTitle")
    return User(
        id=user_id,
        upn=upn.lower(),
        display_name=name if isinstance(name, str) else "",
        mail=mail.lower() if isinstance(mail, str) else None,
        department=department if isinstance(department, str) and department else None,
        job_title=title if isinstance(title, str) and title else None,
        enabled=item.get("accountEnabled") is not False,
    )


def _seconds(raw: object) -> float | None:
    """A Retry-After value in seconds (Graph sends whole seconds), or None."""
    try:
        value = float(raw) if isinstance(raw, str | int | float) else None
    except ValueError:
        return None
    return value if value is not None and value >= 0 else None


def sign_in_error(exc: AzureError) -> AuthError:
    """No token: refused (ClientAuthenticationError), or the sign-in endpoint not reached.

    azure-core raises ServiceRequestError when the authority cannot be reached at all (a
    wrong ``AZURE_AUTHORITY_HOST``, no network, a proxy); that is a failed sign-in too.
    """
    detail = _first_line(getattr(exc, "message", None) or str(exc)) or type(exc).__name__
    if isinstance(exc, ClientAuthenticationError):
        return AuthError(f"sign-in failed: {detail}")
    return AuthError(f"sign-in failed: the sign-in endpoint could not be reached ({detail})")


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:300]


def _error_of(response: httpx.Response, *, tenant_wide: bool) -> GraphError:
    """:func:`_error_for` of an answer on its own, after the SDK's retry middleware."""
    return _error_for(
        response.status_code,
        _json_or_none(response.content),
        response.headers.get("Retry-After"),
        tenant_wide=tenant_wide,
        fallback_code=_reason(response),
    )


def _error_for(
    status: int,
    body: object,
    retry_after: object,
    *,
    tenant_wide: bool,
    retried: bool = True,
    fallback_code: str = "Error",
) -> GraphError:
    """Map a Graph error answer to one of sweeper's errors, one line, with code and status.

    The one mapper, for answers on their own and for items inside a JSON batch: ``body``
    is the parsed JSON body (anything, if it was not JSON), ``retry_after`` the raw header
    value. ``retried``: the SDK's retry middleware saw the answer, so a throttled one is
    throttled still after its retries (a batch item never passes through it).
    ``tenant_wide``: a refusal ends the whole run (AuthError), not one mailbox.
    """
    code, message = _odata_error(body, fallback_code)
    detail = f"{status} {code}" + (f": {_first_line(message)}" if message else "")
    if status == 404 and code == "MailboxNotEnabledForRESTAPI":
        return MailboxNotEnabled(detail, status=status, code=code)
    if status in THROTTLE_STATUSES:
        seconds = _seconds(retry_after)
        if retried:
            wait = f" (Retry-After {seconds:.0f} s)" if seconds is not None else ""
            detail = f"still throttled after its retries: {detail}{wait}"
        return GraphError(detail, status=status, code=code, retry_after=seconds)
    if tenant_wide and status in (401, 403):
        return AuthError(f"Graph refused access: {detail}", status=status, code=code)
    return GraphError(detail, status=status, code=code)


def _odata_error(body: object, fallback_code: str) -> tuple[str, str]:
    """The code and message of a Graph error body; ``fallback_code`` if it has none."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return fallback_code, ""
    return str(error.get("code") or "UnknownError"), str(error.get("message") or "")


def _json_or_none(content: bytes | msgspec.Raw) -> object:
    """The answer's body as JSON, or None when it is not JSON (or empty)."""
    try:
        return orjson.loads(memoryview(content))
    except orjson.JSONDecodeError:
        return None


def _reason(response: httpx.Response) -> str:
    """The status line's words, the code of an answer without a Graph error body."""
    return response.reason_phrase or "Error"
