"""Graph's answers read: typed pages, batch answers and users, errors, and Retry-After.

A page's envelope is read by msgspec, each message left as its raw JSON text
(``msgspec.Raw``) for :mod:`sweeper.rules.pages` to decode only what it needs. Every Graph
error answer, on its own or inside a JSON batch, becomes one of :mod:`sweeper.errors`
through one mapper, :func:`error_for`. How long a throttled read waits before it is sent
again is worked out here too (:func:`throttle_wait`, :func:`wait_out`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
import orjson

from sweeper.errors import AuthError, GraphError, MailboxFailed, MailboxNotEnabled

if TYPE_CHECKING:  # loaded by whoever built the request; not with this module
    import httpx
    from azure.core.exceptions import AzureError

THROTTLE_STATUSES = frozenset({429, 503, 504})  # waited out, as Retry-After asks
LONGEST_WAIT = 180.0  # the SDK gives up at once on a longer Retry-After; so does sweeper
THROTTLE_RETRIES = 3  # a mailbox read throttled again after this many waits fails (as the SDK)
THROTTLE_DEFAULT_WAIT = 3.0  # without Retry-After: 3 s, doubling (the SDK's own delays)


class Page(msgspec.Struct):
    """A page of messages: each value left as its raw JSON text, the next link as sent."""

    value: list[msgspec.Raw]
    next_link: Any = msgspec.field(name="@odata.nextLink", default=None)


class BatchItem(msgspec.Struct):
    """One answer inside a JSON batch: every field as sent, the body still raw JSON."""

    id: Any = None
    status: Any = None
    headers: Any = None
    body: msgspec.Raw = msgspec.Raw()  # empty: no body


class Batch(msgspec.Struct):
    """A JSON batch's answer, its items still raw JSON."""

    responses: list[msgspec.Raw] | None = None


_PAGE = msgspec.json.Decoder(Page)
_BATCH = msgspec.json.Decoder(Batch)
_BATCH_ITEM = msgspec.json.Decoder(BatchItem)
UNREADABLE = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)


@dataclass(frozen=True, slots=True)
class User:
    id: str
    upn: str
    display_name: str
    mail: str | None
    department: str | None = None  # Entra's, for the severity rule's sensitive functions
    job_title: str | None = None
    enabled: bool = True  # False: a shared mailbox, a room, a leaver (accountEnabled)


def parse_page(content: bytes) -> tuple[Page | None, str]:
    """A page of messages, its values undecoded, or None and what is wrong with it.

    Only the envelope is read here: a value's own text is checked when it is decoded
    (:mod:`sweeper.rules.pages`), so that a message the sweep never needs whole is never
    decoded whole.
    """
    try:
        page = _PAGE.decode(content)
    except UNREADABLE:
        _, malformed = parse_json(content, page=True)  # to say what is wrong, as ever
        return None, malformed or "a page sweeper cannot read"
    if page.next_link is not None and not isinstance(page.next_link, str):
        return None, "'@odata.nextLink' is not a URL"
    return page, ""


def page_in(item: BatchItem) -> Page | None:
    """The page a batch item's body holds, or None when it holds none."""
    try:
        return _PAGE.decode(item.body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def parse_batch(content: bytes) -> tuple[Batch | None, str]:
    """A JSON batch's answer, its items undecoded; an object without a list of responses
    has none (each mailbox is then fetched again on its own)."""
    try:
        return _BATCH.decode(content), ""
    except UNREADABLE:
        body, malformed = parse_json(content, page=False)
        return (Batch(), "") if body is not None else (None, malformed)


def batch_item(raw: msgspec.Raw) -> BatchItem:
    """One item of a batch's answer; msgspec.ValidationError when it is not an object."""
    return _BATCH_ITEM.decode(raw)


def parse_json(content: bytes, *, page: bool) -> tuple[dict[str, Any] | None, str]:
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


def user_of(item: object) -> User | None:
    """A user entry of Graph's, or None without an id or userPrincipalName."""
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


# -- Retry-After ------------------------------------------------------------------------


def seconds(raw: object) -> float | None:
    """A Retry-After value in seconds (Graph sends whole seconds), or None."""
    try:
        value = float(raw) if isinstance(raw, str | int | float) else None
    except ValueError:
        return None
    return value if value is not None and value >= 0 else None


def throttle_wait(response: httpx.Response, waited: int) -> float | None:
    """How long to wait before asking a mailbox again after a throttled answer, or None to
    give up: after THROTTLE_RETRIES waits, or when Retry-After is LONGEST_WAIT or more (the
    caller then comes back to the mailbox later). As the SDK's retry middleware would."""
    if waited >= THROTTLE_RETRIES:
        return None
    wait = seconds(response.headers.get("Retry-After"))
    if wait is None:
        return float(THROTTLE_DEFAULT_WAIT * 2**waited)
    return wait if wait < LONGEST_WAIT else None


async def wait_out(item: GraphError, wait: Callable[[float], Awaitable[None]]) -> None:
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


# -- errors -----------------------------------------------------------------------------


def sign_in_error(exc: AzureError) -> AuthError:
    """No token: refused (ClientAuthenticationError), or the sign-in endpoint not reached.

    azure-core raises ServiceRequestError when the authority cannot be reached at all (a
    wrong ``AZURE_AUTHORITY_HOST``, no network, a proxy); that is a failed sign-in too.
    """
    from azure.core.exceptions import ClientAuthenticationError

    detail = first_line(getattr(exc, "message", None) or str(exc)) or type(exc).__name__
    if isinstance(exc, ClientAuthenticationError):
        return AuthError(f"sign-in failed: {detail}")
    return AuthError(f"sign-in failed: the sign-in endpoint could not be reached ({detail})")


def first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:300]


def send_mail_error(response: httpx.Response) -> GraphError:
    """sendMail's answer other than 202 Accepted; after a 5xx the mail may have gone."""
    code, message = odata_error(json_or_none(response.content), reason(response))
    uncertain = response.status_code >= 500
    return GraphError(
        f"sendMail answered {response.status_code} {code}"
        + (f": {first_line(message)}" if message else "")
        + ("; the mail may or may not have been sent" if uncertain else ""),
        status=response.status_code,
        code=code,
    )


def refused_token(response: httpx.Response) -> bool:
    """Graph refused the access token itself (401 InvalidAuthenticationToken)."""
    code, _ = odata_error(json_or_none(response.content), reason(response))
    return code == "InvalidAuthenticationToken"


def error_of(response: httpx.Response, *, tenant_wide: bool) -> GraphError:
    """:func:`error_for` of an answer on its own, after the SDK's retry middleware."""
    return error_for(
        response.status_code,
        json_or_none(response.content),
        response.headers.get("Retry-After"),
        tenant_wide=tenant_wide,
        fallback_code=reason(response),
    )


def error_for(
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
    code, message = odata_error(body, fallback_code)
    detail = f"{status} {code}" + (f": {first_line(message)}" if message else "")
    if status == 404 and code == "MailboxNotEnabledForRESTAPI":
        return MailboxNotEnabled(detail, status=status, code=code)
    if status in THROTTLE_STATUSES:
        wait = seconds(retry_after)
        if retried:
            said = f" (Retry-After {wait:.0f} s)" if wait is not None else ""
            detail = f"still throttled after its retries: {detail}{said}"
        return GraphError(detail, status=status, code=code, retry_after=wait)
    if tenant_wide and status in (401, 403):
        return AuthError(f"Graph refused access: {detail}", status=status, code=code)
    return GraphError(detail, status=status, code=code)


def odata_error(body: object, fallback_code: str) -> tuple[str, str]:
    """The code and message of a Graph error body; ``fallback_code`` if it has none."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return fallback_code, ""
    return str(error.get("code") or "UnknownError"), str(error.get("message") or "")


def json_or_none(content: bytes | msgspec.Raw) -> object:
    """The answer's body as JSON, or None when it is not JSON (or empty)."""
    try:
        return orjson.loads(memoryview(content))
    except orjson.JSONDecodeError:
        return None


def reason(response: httpx.Response) -> str:
    """The status line's words, the code of an answer without a Graph error body."""
    return response.reason_phrase or "Error"
