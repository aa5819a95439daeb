"""The one place that talks to Microsoft Graph.

:class:`GraphGateway` owns the msgraph-sdk request adapter (sign-in, retry and redirect
middleware), the HTTP client and its timeouts (built by :mod:`.transport`, loaded only with
a gateway), and turns every Graph answer into plain Python data or one of
:mod:`sweeper.errors` (one mapper, :func:`~.answers.error_for`, for answers on their own and
inside a JSON batch alike). Message pages are fetched as raw JSON: the SDK's model objects
cost about 100 times more CPU per page. msgspec reads a page's envelope and leaves each
message as its raw JSON text (``msgspec.Raw``), for :mod:`sweeper.rules.pages` to decode
only what it needs. The benchmark alone (`tools/bench.py`) reaches past this: it
imports the SDK's message request builder and uses the service client the gateway lends
it (:attr:`GraphGateway.sdk_client`), to measure that cost.

Paging and throttling are hidden here. Callers get whole pages as lists (of raw messages,
or of dicts for the other collections) and never see ``@odata.nextLink``; a mailbox's first
page that a JSON batch brought is an opaque :class:`FirstPage` that the sweep hands back
to :meth:`GraphGateway.sent_pages`, which goes on from it, or waits out the
``Retry-After`` of a throttled batch item first. A ``Retry-After`` too long for a run to
wait (:data:`~.answers.LONGEST_WAIT`) reaches the caller as a :class:`~sweeper.errors.MailboxFailed`
with ``retry_after`` set, for it to come back later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlencode

import msgspec

from sweeper import __version__
from sweeper.errors import GraphError, MailboxFailed, MailboxNotEnabled
from sweeper.graph import answers
from sweeper.graph.answers import Batch, User
from sweeper.graph.paging import MAX_PAGES, Paging
from sweeper.graph.requests import (
    USER_FIELDS,
    batch_request,
    get_request,
    send_mail_request,
    sent_copy_query,
    sent_url,
    user_path,
)
from sweeper.graph.slots import ReadingSlots

# The SDK, httpx, aiohttp and azure-core are imported when a gateway is built, not with this
# module: a command that never calls Graph never loads them.
if TYPE_CHECKING:
    import httpx
    from azure.core.credentials_async import AsyncTokenCredential
    from kiota_abstractions.request_information import RequestInformation
    from msgraph.graph_service_client import GraphServiceClient

    from sweeper.graph.network import Outbound
    from sweeper.graph.transport import CountingTransport

log = logging.getLogger(__name__)
RETRY_DELAYS = (0.5, 2.0)  # sweeper's own retries of a read that got no usable answer
RETRIED_STATUSES = frozenset({500, 502})  # server errors the SDK does not retry
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FirstPage:
    """A mailbox's first page from a JSON batch, and whether more follow.

    Opaque outside this module: the sweep only hands it back to
    :meth:`GraphGateway.sent_pages`, which yields it and reads on from there.
    """

    _messages: list[msgspec.Raw]
    _next_link: str | None


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
        from sweeper.graph.network import Outbound
        from sweeper.graph.transport import RenewableCredential, SdkPipeline

        self.graph_url = graph_url.rstrip("/")
        self._credential = RenewableCredential(credential)
        self._outbound = outbound = outbound or Outbound()
        self._max_pages = max_pages
        self._scope = scope
        pipeline = SdkPipeline(
            self.graph_url, scope, self._credential, transport, outbound, max_connections
        )
        self._transport = pipeline.transport
        self._http = pipeline.http
        self._adapter = pipeline.adapter
        self._page_fetcher = pipeline.pages
        self._slots = ReadingSlots()
        self._client: GraphServiceClient | None = None  # built for the benchmark only

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
        self._slots.open(count)

    async def take_slot(self) -> None:
        """Wait for a free slot for a mailbox about to be read (:class:`ReadingSlots`)."""
        await self._slots.take()

    def holding(self) -> contextlib.AbstractContextManager[None]:
        """This task holds the slot taken for it until the block ends."""
        return self._slots.holding()

    def slot(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Take a slot and hold it for the block."""
        return self._slots.slot()

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
        from msgraph.graph_service_client import GraphServiceClient

        if self._client is None:
            self._client = GraphServiceClient(request_adapter=self._adapter)
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
        url = f"{self.graph_url}/{user_path(name)}?$select={USER_FIELDS}"
        try:
            body = await self._get_json(url, tenant_wide=True)
        except GraphError as exc:
            if exc.status == 404:
                return None
            raise
        return answers.user_of(body)

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
                user = answers.user_of(item)
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
        item is waited out as its ``Retry-After`` asks (:func:`~.answers.wait_out`); any other
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
            await answers.wait_out(first, self._slots.wait_throttled)
        relative = sent_url(user, since, until, page_size, internet_message_id)
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
                {"id": str(i), "method": "GET", "url": sent_url(u, since, until, page_size)}
                for i, (u, since, until) in enumerate(wanted)
            ]
        }
        answer = await self._post_batch(f"{self.graph_url}/$batch", body)
        results: dict[str, FirstPage | GraphError] = {}
        for raw in answer.responses or []:
            try:
                item = answers.batch_item(raw)
                user = users[int(item.id)]
            except (msgspec.ValidationError, ValueError, IndexError, TypeError):
                continue  # no object, or no mailbox of ours: fetched again below
            results[user.id] = _first_page(item, self._transport, user)
        for user in users:  # an item the answer left out is fetched again, never lost
            results.setdefault(user.id, GraphError("missing from the batch answer", status=0))
        return results

    async def send_mail(self, sender: str, payload: dict[str, Any]) -> None:
        """POST ``/users/{sender}/sendMail`` once, without the SDK's retries.

        Graph answers 202 when it accepted the mail. A 503 or a timeout does not prove that
        it was not sent, so nothing here tries again: the caller decides.
        """
        import httpx
        from azure.core.exceptions import AzureError

        request = send_mail_request(f"{self.graph_url}/{user_path(sender)}/sendMail", payload)
        try:
            response: httpx.Response = await self._adapter.send_async(request, None, {})
        except AzureError as exc:
            raise answers.sign_in_error(exc) from None
        except httpx.HTTPError as exc:
            raise GraphError(
                f"sendMail got no answer ({type(exc).__name__}); the mail may or may not "
                "have been sent"
            ) from None
        if response.status_code != 202:
            raise answers.send_mail_error(response)

    async def sent_copy(self, mailbox: str, internet_message_id: str) -> dict[str, Any] | None:
        """The mailbox's Sent Items copy of the message with this internetMessageId, as
        ``{"id", "internetMessageId", "sentDateTime"}``; None when there is none.

        One read (Mail.ReadBasic.All is enough), with the retries of every read; a GraphError
        when Graph cannot say.
        """
        query = sent_copy_query(internet_message_id)
        url = f"{self.graph_url}/{user_path(mailbox)}/mailFolders/sentitems/messages"
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
            page = await self._send(
                self._page_get(next_url), tenant_wide=False, parse=answers.parse_page
            )
            yield page.value
            next_url = paging.follow(page.next_link)

    def _paging(self, url: str, failure: type[GraphError], read: int = 0) -> Paging:
        return Paging(url, self.graph_url, max_pages=self._max_pages, failure=failure, read=read)

    async def _post_batch(self, url: str, body: dict[str, Any]) -> Batch:
        """POST a JSON batch of reads: as safe to send again as the reads themselves."""
        build = batch_request(url, body)
        return await self._send(self._sdk_send(build), tenant_wide=True, parse=answers.parse_batch)

    async def _get_json(self, url: str, *, tenant_wide: bool, page: bool = False) -> dict[str, Any]:
        def parse(content: bytes) -> tuple[dict[str, Any] | None, str]:
            return answers.parse_json(content, page=page)

        build = get_request(url, own_throttling=not tenant_wide)
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
        import httpx

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
        (:func:`~.answers.throttle_wait`), without holding the mailbox's reading slot; of a
        tenant-wide read, by the SDK's retry middleware.
        Sweeper adds what the SDK leaves out: a read that got no usable answer (connection
        reset, timeout, a cut-off or malformed body, a 500 or 502) is sent again after
        RETRY_DELAYS; a token Graph refused (401 InvalidAuthenticationToken) is replaced
        once by a fresh one.
        """
        import httpx
        from azure.core.exceptions import AzureError

        from sweeper.graph.network import AnswerTooLarge

        renewed = False
        attempt = 0
        throttled = 0
        while True:
            try:
                response: httpx.Response = await send_once()
            except AzureError as exc:
                raise answers.sign_in_error(exc) from None
            except AnswerTooLarge as exc:  # the same answer again would be as large
                raise GraphError(f"{exc} (graph.max_answer_mb)", code="AnswerTooLarge") from None
            except httpx.TimeoutException as exc:
                said = answers.first_line(str(exc)) or type(exc).__name__
                if "whole answer" in said:
                    said += ", graph.timeout_seconds"
                problem = GraphError(f"Graph did not answer in time ({said})")
            except httpx.HTTPError as exc:
                said = f"{type(exc).__name__}: {answers.first_line(str(exc))}"
                problem = GraphError(f"connection to Graph failed ({said})")
            else:
                status = response.status_code
                if status == 401 and not renewed and answers.refused_token(response):
                    renewed = True
                    self._credential.refused(response.request.headers.get("Authorization"))
                    log.info("Graph refused the access token before its expiry; renewing it")
                    continue
                if status in answers.THROTTLE_STATUSES and not tenant_wide:
                    wait = answers.throttle_wait(response, throttled)
                    if wait is None:
                        raise answers.error_of(response, tenant_wide=tenant_wide)
                    throttled += 1
                    await self._slots.wait_throttled(wait)
                    continue
                if status >= 400 and status not in RETRIED_STATUSES:
                    raise answers.error_of(response, tenant_wide=tenant_wide)
                if status >= 400:
                    problem = answers.error_of(response, tenant_wide=tenant_wide)
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


def _first_page(
    item: answers.BatchItem, transport: CountingTransport, user: User
) -> FirstPage | GraphError:
    """One answer inside a batch: a page, or the error it would have been on its own."""
    status = item.status
    if status == 200:
        page = answers.page_in(item)
        if page is not None:  # else no page in it: said below, as any other answer
            link = page.next_link
            return FirstPage(page.value, link if isinstance(link, str) else None)
    if not isinstance(status, int):
        return GraphError("malformed batch item", status=0)
    if status in answers.THROTTLE_STATUSES:
        transport.throttled[user.id] += 1  # inside a 200 answer: the transport never saw it
    headers = item.headers
    retry_after = headers.get("Retry-After") if isinstance(headers, dict) else None
    body = answers.json_or_none(item.body)
    return answers.error_for(status, body, retry_after, tenant_wide=False, retried=False)
