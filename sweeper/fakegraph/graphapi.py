"""The local Graph's resources: users, domains, a mailbox's Sent Items, and sendMail.

:class:`GraphApi` answers each request :class:`~sweeper.fakegraph.router.GraphRouter` routes
to it, as Graph v1.0 is documented to: ``$select``, ``$filter``, ``$top`` and paging by
``$skiptoken`` (users) or ``$skip`` (messages) with absolute next links, Graph's errors
(401 without a valid token, 403 without the role, 404 for an unknown user or a mailbox
that is not enabled, 400 for query options it does not know).
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson
from aiohttp import web

from sweeper.fakegraph.odata import (
    ODataError,
    bad_request,
    json_answer,
    parse_filter,
    project,
    select_fields,
)
from sweeper.fakegraph.tenant import FakeUser

if TYPE_CHECKING:
    from sweeper.fakegraph.entra import Entra
    from sweeper.fakegraph.server import FakeGraph

MESSAGE_PROPERTIES = (
    "id", "createdDateTime", "lastModifiedDateTime", "receivedDateTime", "sentDateTime",
    "hasAttachments", "internetMessageId", "subject", "bodyPreview", "importance",
    "parentFolderId", "conversationId", "isDeliveryReceiptRequested", "isReadReceiptRequested",
    "isRead", "isDraft", "body", "sender", "from", "toRecipients", "ccRecipients",
    "bccRecipients", "replyTo", "flag", "uniqueBody", "categories", "webLink",
)  # fmt: skip
USER_PROPERTIES = (
    "id", "userPrincipalName", "mail", "displayName", "accountEnabled", "department", "jobTitle",
)  # fmt: skip
# The properties $filter takes here, with the kind of literal each compares with.
MESSAGE_FILTERS = {
    "sentDateTime": "datetime", "receivedDateTime": "datetime", "internetMessageId": "string",
}  # fmt: skip
USER_FILTERS = {"accountEnabled": "bool"}
EXPIRED = "Lifetime validation failed, the token is expired."
# Graph's challenge on a 401: no claims in it, so the client has to get a new token itself.
CHALLENGE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/'
    'authorize", client_id="00000003-0000-0000-c000-000000000000"'
)


class GraphApi:
    """The resources of one :class:`~sweeper.fakegraph.server.FakeGraph`'s tenant."""

    def __init__(self, fake: FakeGraph, entra: Entra) -> None:
        self.fake = fake
        self.entra = entra

    def roles_for(self, request: web.Request) -> tuple[str, ...]:
        """The app roles the request's token grants: a 401 without a valid, unexpired one."""
        token = self.entra.token_of(request)
        if token is None:
            raise ODataError(
                401,
                "InvalidAuthenticationToken",
                "Access token is empty or not valid.",
                {"WWW-Authenticate": CHALLENGE},
            )
        if token.expires < time.time():
            raise ODataError(
                401, "InvalidAuthenticationToken", EXPIRED, {"WWW-Authenticate": CHALLENGE}
            )
        return token.roles

    async def users(self, request: web.Request, _: re.Match[str]) -> web.Response:
        self._require(request, "User.Read.All", "Authorization_RequestDenied")
        query = request.query
        fields = select_fields(query.get("$select"), USER_PROPERTIES, "user")
        predicate = parse_filter(query.get("$filter"), USER_FILTERS)
        top = _int_option(query, "$top", default=100, low=1, high=999)
        users = [u.as_graph() for u in self.fake.tenant.users]
        if predicate:
            users = [u for u in users if predicate(u)]
        offset = _skiptoken(query.get("$skiptoken"))
        page = users[offset : offset + top]
        body: dict[str, Any] = {
            "@odata.context": f"{base_url(request)}/$metadata#users",
            "value": [project(u, fields) for u in page],
        }
        if offset + top < len(users):
            token = base64.urlsafe_b64encode(f"users:{offset + top}".encode()).decode()
            body["@odata.nextLink"] = next_link(request, {"$skiptoken": token}, drop="$skip")
        return json_answer(body)

    async def domains(self, request: web.Request, _: re.Match[str]) -> web.Response:
        self._require(request, "Domain.Read.All", "Authorization_RequestDenied")
        value = [
            {
                "authenticationType": "Managed",
                "isAdminManaged": True,
                "isInitial": False,
                "isRoot": True,
                "supportedServices": ["Email"],
                **d,
            }
            for d in self.fake.tenant.domains
        ]
        return json_answer(
            {"@odata.context": f"{base_url(request)}/$metadata#domains", "value": value}
        )

    async def user(self, request: web.Request, match: re.Match[str]) -> web.Response:
        self._require(request, "User.Read.All", "Authorization_RequestDenied")
        user = self.fake.tenant.user(match.group(1))
        if user is None:
            raise _no_user(match.group(1))
        fields = select_fields(request.query.get("$select"), USER_PROPERTIES, "user")
        return json_answer(project(user.as_graph(), fields))

    async def messages(self, request: web.Request, match: re.Match[str]) -> web.Response:
        self._require(request, "Mail.ReadBasic.All", "ErrorAccessDenied", also="Mail.Read")
        user = self.fake.tenant.user(match.group(1))
        if user is None:
            raise _no_user(match.group(1))
        if not user.has_mailbox:
            raise ODataError(
                404,
                "MailboxNotEnabledForRESTAPI",
                "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
            )
        if match.group(2).lower() != "sentitems":
            raise ODataError(404, "ErrorItemNotFound", "The specified object was not found.")
        query = request.query
        fields = select_fields(query.get("$select"), MESSAGE_PROPERTIES, "message")
        predicate = parse_filter(query.get("$filter"), MESSAGE_FILTERS)
        top = _int_option(query, "$top", default=10, low=1, high=1000)
        skip = _int_option(query, "$skip", default=0, low=0, high=10**9)
        sent = self.fake.tenant.messages_of(user)
        messages = sent if predicate is None else [m for m in sent if predicate(m)]
        page = messages[skip : skip + top]
        body: dict[str, Any] = {
            "@odata.context": f"{base_url(request)}/$metadata#users('{user.id}')"
            "/mailFolders('sentitems')/messages",
            "value": [project(m, fields) for m in page],
        }
        if skip + top < len(messages):
            body["@odata.nextLink"] = next_link(request, {"$skip": str(skip + top)})
        return json_answer(body)

    async def send_mail(self, request: web.Request, match: re.Match[str]) -> web.Response:
        """Captures the mail. Accepts Graph's camelCase and the SDK's PascalCase keys."""
        if request.method != "POST":
            raise ODataError(405, "Request_BadRequest", "Only POST is allowed on sendMail.")
        self._require(request, "Mail.Send", "ErrorAccessDenied")
        user = self.fake.tenant.user(match.group(1))
        if user is None:
            raise _no_user(match.group(1))
        if not user.has_mailbox:
            raise ODataError(404, "MailboxNotEnabledForRESTAPI", "The mailbox is not enabled.")
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            raise bad_request("Unable to read JSON request payload.") from None
        message = body.get("message", body.get("Message")) if isinstance(body, dict) else None
        if not isinstance(message, dict):
            raise bad_request("Empty Payload. JSON content expected.", "ErrorInvalidRequest")
        recipients = message.get("toRecipients", message.get("ToRecipients"))
        if not recipients:
            raise bad_request("At least one recipient is not valid.", "ErrorInvalidRecipients")
        save = body.get("saveToSentItems", body.get("SaveToSentItems", True))
        self.fake.sent_mail.append(
            {"sender": user.upn, "message": message, "saveToSentItems": save}
        )
        if save is not False:
            user.sent.insert(0, _sent_copy(user, message))  # Sent Items are newest first
        return web.Response(status=202)

    def _require(self, request: web.Request, role: str, code: str, also: str | None = None) -> None:
        roles = self.roles_for(request)
        if role not in roles and (also is None or also not in roles):
            message = (
                "Insufficient privileges to complete the operation."
                if code == "Authorization_RequestDenied"
                else "Access is denied. Check credentials and try again."
            )
            raise ODataError(403, code, message)


def base_url(request: web.Request) -> str:
    return f"http://{request.host}/v1.0"


def next_link(request: web.Request, changes: dict[str, str], drop: str = "") -> str:
    """The request's own URL, its query options changed: a page's ``@odata.nextLink``."""
    query = {k: v for k, v in request.query.items() if k != drop}
    query.update(changes)
    path = re.sub(r"/{2,}", "/", request.path)
    return f"http://{request.host}{path}?{urlencode(query, safe='$,:')}"


def _sent_copy(user: FakeUser, message: dict[str, Any]) -> dict[str, Any]:
    """The copy Graph keeps in the sender's Sent Items of a message sent by sendMail: the
    client's internetMessageId if it gave one, else one the server makes."""

    def get_in(item: dict[str, Any], name: str, default: Any = None) -> Any:
        """Graph's camelCase key, or the SDK's PascalCase one."""
        return item.get(name, item.get(name[0].upper() + name[1:], default))

    def get(name: str, default: Any = None) -> Any:
        return get_in(message, name, default)

    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    serial = secrets.token_hex(16)
    me = {"emailAddress": {"name": user.display_name, "address": user.upn}}
    body = get("body") if isinstance(get("body"), dict) else {}
    content = str(get_in(body, "content", ""))
    return {
        "@odata.etag": f'W/"CQAAABYAAAD{serial[:8]}"',
        "id": f"AAMkAG{serial}AAA=",
        "createdDateTime": stamp,
        "lastModifiedDateTime": stamp,
        "receivedDateTime": stamp,
        "sentDateTime": stamp,
        "hasAttachments": bool(get("attachments")),
        "internetMessageId": get("internetMessageId")
        or f"<{serial}@LO2P265MB0001.GBRP265.PROD.OUTLOOK.EXAMPLE>",
        "subject": get("subject", ""),
        "bodyPreview": " ".join(re.sub(r"<[^>]*>", " ", content).split())[:255],
        "importance": str(get("importance", "normal")).lower(),
        "parentFolderId": "AQMkAGSentItems",
        "conversationId": f"AAQkAG{serial[:24]}=",
        "isDeliveryReceiptRequested": False,
        "isReadReceiptRequested": False,
        "isRead": True,
        "isDraft": False,
        "body": {
            "contentType": str(get_in(body, "contentType", "html")).lower(),
            "content": content,
        },
        "sender": me,
        "from": me,
        "toRecipients": get("toRecipients", []),
        "ccRecipients": get("ccRecipients", []),
        "bccRecipients": get("bccRecipients", []),
        "replyTo": get("replyTo", []),
        "flag": {"flagStatus": "notFlagged"},
    }


def _no_user(key: str) -> ODataError:
    return ODataError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects "
        "are not present.",
    )


def _int_option(query: Any, name: str, *, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"Invalid value '{raw}' for query option {name}.") from None
    if not low <= value <= high:
        raise bad_request(
            f"Invalid page size specified: '{value}'. Must be between {low} and {high} inclusive."
            if name == "$top"
            else f"Invalid value '{value}' for query option {name}."
        )
    return value


def _skiptoken(raw: str | None) -> int:
    if raw is None:
        return 0
    try:
        kind, _, offset = base64.urlsafe_b64decode(raw.encode()).decode().partition(":")
        if kind != "users":
            raise ValueError(kind)
        return int(offset)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("Invalid skip token.", "Directory_InvalidSkipToken") from None
