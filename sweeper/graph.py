"""The one place that talks to Microsoft Graph. Only this module imports the SDK.

:class:`GraphGateway` owns the msgraph-sdk request adapter (sign-in, retry and redirect
middleware), the HTTP client and its timeouts, and turns every Graph answer into plain
Python data or one of :mod:`sweeper.errors`. Message pages are fetched as raw JSON through
the SDK's request adapter and parsed with orjson: the SDK's model objects cost about 100
times more CPU per page.

Paging is hidden here: callers get whole pages as lists of dicts and never see
``@odata.nextLink``.
"""

from __future__ import annotations

import logging
import re
import ssl
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
import orjson
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError
from kiota_abstractions.base_request_configuration import RequestConfiguration
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

from .errors import AuthError, GraphError, MailboxFailed, MailboxNotEnabled

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

USER_FIELDS = "id,userPrincipalName,mail,displayName,accountEnabled"
log = logging.getLogger(__name__)
THROTTLE_STATUSES = frozenset({429, 503, 504})
LONGEST_WAIT = 180.0  # the SDK gives up at once on a longer Retry-After; so does sweeper
_USER_IN_PATH = re.compile(r"/users/([^/?]+)")


@dataclass(frozen=True, slots=True)
class FirstPage:
    """A mailbox's first page from a batch, and where the next one is."""

    messages: list[Any]
    next_link: str | None


@dataclass(frozen=True, slots=True)
class User:
    id: str
    upn: str
    display_name: str
    mail: str | None


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
        self.requests += 1
        response = await self.inner.handle_async_request(request)
        if response.status_code in THROTTLE_STATUSES:
            match = _USER_IN_PATH.search(request.url.path)
            self.throttled[match.group(1) if match else ""] += 1
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class GraphGateway:
    """Async access to the few Graph endpoints sweeper needs. Use as ``async with``."""

    def __init__(
        self,
        graph_url: str,
        scope: str,
        credential: AsyncTokenCredential,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        ca_bundle: str | None = None,
        max_connections: int = 32,
    ) -> None:
        self.graph_url = graph_url.rstrip("/")
        self._credential = credential
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=32)
        self._transport = CountingTransport(transport or _transport(ca_bundle, limits))
        client = httpx.AsyncClient(
            transport=self._transport,
            timeout=httpx.Timeout(100.0, connect=30.0),
            base_url=self.graph_url,
        )
        client = GraphClientFactory.create_with_default_middleware(
            client=client, options=graph_middleware_options
        )
        host = urlsplit(self.graph_url).hostname or ""
        auth = AzureIdentityAuthenticationProvider(credential, scopes=[scope], allowed_hosts=[host])
        self._http = client
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
        await self._credential.close()

    # -- what the sweep asks for -------------------------------------------------------

    def throttled_for(self, user_id: str) -> int:
        return self._transport.throttled[quote(user_id, safe="@")]

    @property
    def requests(self) -> int:
        return self._transport.requests

    @property
    def throttled_total(self) -> int:
        return sum(self._transport.throttled.values())

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

    async def enabled_users(self) -> list[User]:
        """Every user whose account is enabled, all pages."""
        query = urlencode(
            {"$select": USER_FIELDS, "$filter": "accountEnabled eq true", "$top": "999"}
        )
        users: list[User] = []
        unusable = 0
        async for page in self._pages(f"{self.graph_url}/users?{query}", tenant_wide=True):
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
        resume_from: str | None = None,
        skip: int = 0,
    ) -> AsyncIterator[list[Any]]:
        """Pages of Sent Items sent in ``[since, until)``, as raw JSON values (dicts, normally).

        With ``internet_message_id``, only the copies of that message; with ``resume_from``
        (a next link), the pages from there on; with ``skip``, after the first ``skip``
        messages (``$skip``, which Graph pages messages by). Raises
        MailboxNotEnabled for an account without a mailbox, MailboxFailed when the mailbox
        cannot be read to the end.
        """
        relative = _sent_url(user, since, until, page_size, internet_message_id)
        if skip:
            relative += f"&$skip={skip}"
        try:
            async for page in self._pages(
                resume_from or f"{self.graph_url}/{relative}", tenant_wide=False
            ):
                yield page
        except (MailboxNotEnabled, MailboxFailed):
            raise
        except GraphError as exc:  # includes a 401/403 on this one mailbox
            raise MailboxFailed(str(exc), status=exc.status, code=exc.code) from None

    async def first_pages(
        self, wanted: list[tuple[User, datetime, datetime]], page_size: int
    ) -> dict[str, FirstPage | GraphError]:
        """The first page of up to 20 mailboxes in one round trip (JSON batching).

        Posted as raw JSON (the SDK's batch helper is broken). Each item answers on its own:
        a throttled or failed item comes back as a GraphError for the caller to fetch that
        mailbox again the ordinary way, whose retries honour ``Retry-After``.
        """
        users = [user for user, _, _ in wanted]
        body = {
            "requests": [
                {"id": str(i), "method": "GET", "url": _sent_url(u, since, until, page_size)}
                for i, (u, since, until) in enumerate(wanted)
            ]
        }
        answer = await self._post_json(f"{self.graph_url}/$batch", body)
        results: dict[str, FirstPage | GraphError] = {}
        items = answer.get("responses")
        for item in items if isinstance(items, list) else []:
            try:
                user = users[int(item["id"])]
            except (KeyError, ValueError, IndexError, TypeError):
                continue
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
        except ClientAuthenticationError as exc:
            raise AuthError(f"sign-in failed: {_first_line(exc.message or str(exc))}") from None
        except httpx.HTTPError as exc:
            raise GraphError(
                f"sendMail got no answer ({type(exc).__name__}); the mail may or may not "
                "have been sent"
            ) from None
        if response.status_code != 202:
            code, message = _odata_error(response)
            uncertain = response.status_code >= 500
            raise GraphError(
                f"sendMail answered {response.status_code} {code}"
                + (f": {_first_line(message)}" if message else "")
                + ("; the mail may or may not have been sent" if uncertain else ""),
                status=response.status_code,
                code=code,
            )

    async def sent_messages_as_models(
        self, user: User, since: datetime, until: datetime, page_size: int
    ) -> list[dict[str, Any]]:
        """The straightforward way, through the SDK's request builders and model objects.

        Kept only so that ``make bench`` can measure it against the raw-JSON path; it is
        about a hundred times slower per message. Returns plain dicts of the fields sweeper
        classifies.
        """
        from msgraph.generated.users.item.mail_folders.item.messages.messages_request_builder import (  # noqa: E501
            MessagesRequestBuilder,
        )

        builder = (
            self._client.users.by_user_id(user.id)
            .mail_folders.by_mail_folder_id("sentitems")
            .messages
        )
        query = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
            select=list(MESSAGE_FIELDS),
            filter=f"sentDateTime ge {_odata_time(since)} and sentDateTime lt {_odata_time(until)}",
            top=page_size,
        )
        config = RequestConfiguration(query_parameters=query)
        page = await builder.get(request_configuration=config)
        messages: list[dict[str, Any]] = []
        while page is not None:
            messages += [_model_to_dict(m) for m in page.value or []]
            if not page.odata_next_link:
                break
            page = await builder.with_url(page.odata_next_link).get()
        return messages

    # -- plumbing ----------------------------------------------------------------------

    async def _pages(self, url: str, *, tenant_wide: bool) -> AsyncIterator[list[Any]]:
        next_url: str | None = url
        while next_url:
            body = await self._get_json(next_url, tenant_wide=tenant_wide)
            value = body.get("value")
            if not isinstance(value, list):
                raise GraphError("malformed answer from Graph: a page without a 'value' list")
            yield value
            link = body.get("@odata.nextLink")
            if link is not None and not isinstance(link, str):
                raise GraphError("malformed answer from Graph: '@odata.nextLink' is not a URL")
            next_url = link

    async def _post_json(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        request = RequestInformation(Method.POST)
        request.url = url
        request.headers.try_add("Content-Type", "application/json")
        request.headers.try_add("Accept", "application/json")
        request.content = orjson.dumps(body)
        request.add_request_options([ResponseHandlerOption(NativeResponseHandler())])
        return await self._send(request, tenant_wide=True)

    async def _get_json(self, url: str, *, tenant_wide: bool) -> dict[str, Any]:
        request = RequestInformation(Method.GET)
        request.url = url
        request.headers.try_add("Accept", "application/json")
        request.add_request_options([ResponseHandlerOption(NativeResponseHandler())])
        return await self._send(request, tenant_wide=tenant_wide)

    async def _send(self, request: RequestInformation, *, tenant_wide: bool) -> dict[str, Any]:
        try:
            response: httpx.Response = await self._adapter.send_async(request, None, {})
        except ClientAuthenticationError as exc:
            raise AuthError(f"sign-in failed: {_first_line(exc.message or str(exc))}") from None
        except httpx.TimeoutException as exc:
            raise GraphError(f"Graph did not answer in time ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise GraphError(
                f"connection to Graph failed ({type(exc).__name__}: {_first_line(str(exc))})"
            ) from None
        if response.status_code >= 400:
            raise _error_for(response, tenant_wide=tenant_wide)
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise GraphError(
                f"malformed answer from Graph: not JSON ({len(response.content)} bytes)"
            ) from None
        if not isinstance(body, dict):
            raise GraphError("malformed answer from Graph: not a JSON object")
        return body


def _transport(ca_bundle: str | None, limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    if ca_bundle is None:
        return httpx.AsyncHTTPTransport(http2=True, limits=limits)
    context = ssl.create_default_context(cafile=ca_bundle)
    return httpx.AsyncHTTPTransport(http2=True, limits=limits, verify=context)


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
        clauses.append(f"sentDateTime ge {_odata_time(since)}")
    if until is not None:
        clauses.append(f"sentDateTime lt {_odata_time(until)}")
    if internet_message_id is not None:
        quoted = internet_message_id.replace("'", "''")
        clauses.append(f"internetMessageId eq '{quoted}'")
    options = {"$select": ",".join(MESSAGE_FIELDS), "$top": str(page_size)}
    if clauses:
        options["$filter"] = " and ".join(clauses)
    query = urlencode(options, safe="$,:")
    return f"users/{quote(user.id, safe='@')}/mailFolders/sentitems/messages?{query}"


def _batch_item(item: Any, transport: CountingTransport, user: User) -> FirstPage | GraphError:
    """One answer inside a batch: a page, or the error it would have been on its own."""
    status = item.get("status") if isinstance(item, dict) else None
    body = item.get("body") if isinstance(item, dict) else None
    if status == 200 and isinstance(body, dict) and isinstance(body.get("value"), list):
        link = body.get("@odata.nextLink")
        return FirstPage(body["value"], link if isinstance(link, str) else None)
    if not isinstance(status, int):
        return GraphError("malformed batch item", status=0)
    retry_after = None
    if status in THROTTLE_STATUSES:
        transport.throttled[user.id] += 1  # inside a 200 answer: the transport never saw it
        headers = item.get("headers")
        raw = headers.get("Retry-After") if isinstance(headers, dict) else None
        try:
            retry_after = float(raw) if raw is not None else None
        except ValueError:
            retry_after = None
    error = body.get("error") if isinstance(body, dict) else None
    code = str(error.get("code")) if isinstance(error, dict) else "Error"
    message = str(error.get("message") or "") if isinstance(error, dict) else ""
    detail = f"{status} {code}" + (f": {_first_line(message)}" if message else "")
    if status == 404 and code == "MailboxNotEnabledForRESTAPI":
        return MailboxNotEnabled(detail, status=status, code=code)
    return GraphError(detail, status=status, code=code, retry_after=retry_after)


def _model_to_dict(message: Any) -> dict[str, Any]:
    def people(recipients: Any) -> list[dict[str, Any]]:
        return [
            {"emailAddress": {"name": r.email_address.name, "address": r.email_address.address}}
            for r in recipients or []
            if r.email_address is not None
        ]

    sender = message.from_.email_address if message.from_ else None
    return {
        "id": message.id,
        "internetMessageId": message.internet_message_id,
        "conversationId": message.conversation_id,
        "subject": message.subject,
        "sentDateTime": message.sent_date_time.isoformat() if message.sent_date_time else None,
        "from": {"emailAddress": {"address": sender.address if sender else None}},
        "toRecipients": people(message.to_recipients),
        "ccRecipients": people(message.cc_recipients),
        "bccRecipients": people(message.bcc_recipients),
    }


def _user(item: object) -> User | None:
    if not isinstance(item, dict):
        return None
    user_id, upn = item.get("id"), item.get("userPrincipalName")
    if not isinstance(user_id, str) or not isinstance(upn, str) or not user_id or not upn:
        return None
    name = item.get("displayName")
    mail = item.get("mail")
    return User(
        id=user_id,
        upn=upn.lower(),
        display_name=name if isinstance(name, str) else "",
        mail=mail.lower() if isinstance(mail, str) else None,
    )


def _odata_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:300]


def _error_for(response: httpx.Response, *, tenant_wide: bool) -> GraphError:
    """Map a Graph error answer to one of sweeper's errors, one line, with code and status."""
    status = response.status_code
    code, message = _odata_error(response)
    detail = f"{status} {code}" + (f": {_first_line(message)}" if message else "")
    if status == 404 and code == "MailboxNotEnabledForRESTAPI":
        return MailboxNotEnabled(detail, status=status, code=code)
    if status in THROTTLE_STATUSES:
        retry_after = response.headers.get("Retry-After")
        wait = f" (Retry-After {retry_after} s)" if retry_after else ""
        return GraphError(
            f"still throttled after the SDK's retries: {detail}{wait}", status=status, code=code
        )
    if tenant_wide and status in (401, 403):
        return AuthError(f"Graph refused access: {detail}", status=status, code=code)
    return GraphError(detail, status=status, code=code)


def _odata_error(response: httpx.Response) -> tuple[str, str]:
    try:
        body = orjson.loads(response.content)
        error = body["error"]
        return str(error.get("code") or "UnknownError"), str(error.get("message") or "")
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return response.reason_phrase or "Error", ""
