"""What sweeper asks Graph for: the fields it selects, its URLs, and the SDK's requests.

The request builders hand the SDK's request adapter a :class:`RequestInformation` whose raw
answer comes back unparsed (``NativeResponseHandler``): sweeper reads the JSON itself
(:mod:`sweeper.graph.answers`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import orjson

from sweeper.graph.answers import User
from sweeper.when import iso

if TYPE_CHECKING:  # the SDK is loaded when a request is built, not with this module
    from kiota_abstractions.request_information import RequestInformation

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


def user_path(name: str) -> str:
    """``users/{name}``, the name (a UPN or an id) quoted as Graph takes it."""
    return f"users/{quote(name, safe='@')}"


def sent_url(
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
    return f"{user_path(user.id)}/mailFolders/sentitems/messages?{query}"


def sent_copy_query(internet_message_id: str) -> str:
    """The query for a Sent Items copy by internetMessageId: its id and when it was sent."""
    quoted = internet_message_id.replace("'", "''")
    return urlencode(
        {
            "$filter": f"internetMessageId eq '{quoted}'",
            "$select": "id,internetMessageId,sentDateTime",
            "$top": "10",
        },
        safe="$,:",
    )


def get_request(url: str, *, own_throttling: bool) -> Callable[[], RequestInformation]:
    """A GET of ``url`` for the SDK's adapter, its raw answer handed back unparsed.
    ``own_throttling``: a mailbox's read, whose throttling the gateway's send loop waits
    out itself (off the reading slot), so the SDK's retry middleware must leave it alone."""
    from kiota_abstractions.method import Method
    from kiota_abstractions.native_response_handler import NativeResponseHandler
    from kiota_abstractions.request_information import RequestInformation
    from kiota_http.middleware.options import ResponseHandlerOption, RetryHandlerOption

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


def batch_request(url: str, body: dict[str, Any]) -> Callable[[], RequestInformation]:
    """A POST of a JSON batch of reads: as safe to send again as the reads themselves."""
    from kiota_abstractions.method import Method
    from kiota_abstractions.native_response_handler import NativeResponseHandler
    from kiota_abstractions.request_information import RequestInformation
    from kiota_http.middleware.options import ResponseHandlerOption

    def build() -> RequestInformation:
        request = RequestInformation(Method.POST)
        request.url = url
        request.headers.try_add("Content-Type", "application/json")
        request.headers.try_add("Accept", "application/json")
        request.content = orjson.dumps(body)
        request.add_request_options([ResponseHandlerOption(NativeResponseHandler())])
        return request

    return build


def send_mail_request(url: str, payload: dict[str, Any]) -> RequestInformation:
    """A POST of ``sendMail``, sent once: without the SDK's retries."""
    from kiota_abstractions.method import Method
    from kiota_abstractions.native_response_handler import NativeResponseHandler
    from kiota_abstractions.request_information import RequestInformation
    from kiota_http.middleware.options import ResponseHandlerOption, RetryHandlerOption

    request = RequestInformation(Method.POST)
    request.url = url
    request.headers.try_add("Content-Type", "application/json")
    request.content = orjson.dumps(payload)
    request.add_request_options(
        [ResponseHandlerOption(NativeResponseHandler()), RetryHandlerOption(should_retry=False)]
    )
    return request
