"""The gateway's paging after a JSON batch, and its one mapping of Graph error answers.

Unit tests: Graph is faked at the transport (``httpx.MockTransport``), so each test sees
every request the gateway sends. The same behaviour end to end, against the local Graph,
is in ``test_faults.py`` and ``test_sweep_end_to_end.py``.
"""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest
from azure.core.credentials import AccessToken

from sweeper.errors import GraphError, MailboxFailed, MailboxNotEnabled
from sweeper.graph.answers import User
from sweeper.graph.gateway import FirstPage, GraphGateway
from sweeper.graph.network import Outbound

GRAPH = "https://graph.test/v1.0"
USER = User(id="u-1", upn="victim.care@northwick.example", display_name="", mail=None)
UNTIL = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)
SINCE = UNTIL - timedelta(hours=24)
MESSAGE = {"id": "m-1", "subject": "Induction"}


class _Credential:
    """A credential that always has a token: these tests are about Graph's answers."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("token", int(time.time()) + 3600)

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> _Credential:
        return self

    async def __aexit__(self, *args: object) -> None:
        pass


Handler = Callable[[httpx.Request], httpx.Response]


def _batch_of(item: dict[str, Any]) -> Handler:
    """Graph answering the batch with ``item`` for mailbox 0; anything else is a 200 page."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/$batch"):
            return httpx.Response(200, json={"responses": [{"id": "0", **item}]})
        return httpx.Response(200, json={"value": [{"id": "m-2"}]})

    return answer


def _gateway(handler: Handler) -> GraphGateway:
    """A gateway whose every request ``handler`` answers."""
    transport = httpx.MockTransport(handler)
    return GraphGateway(GRAPH, "https://graph.test/.default", _Credential(), transport=transport)


def _read(handler: Handler, page_size: int = 1000) -> tuple[list[list[Any]], list[httpx.Request]]:
    """Fetch the batch for USER, hand its item back to sent_pages; the pages and requests."""
    seen: list[httpx.Request] = []

    def recording(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    async def run() -> list[list[Any]]:
        gateway = _gateway(recording)
        async with gateway:
            firsts = await gateway.first_pages([(USER, SINCE, UNTIL)], 100)
            pages = gateway.sent_pages(USER, SINCE, UNTIL, page_size, first=firsts[USER.id])
            return [[orjson.loads(bytes(m)) for m in page] async for page in pages]

    return asyncio.run(run()), seen


def _query(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(urlsplit(str(request.url)).query)


def test_a_quiet_mailbox_the_batch_brought_whole_costs_no_further_request() -> None:
    pages, requests = _read(_batch_of({"status": 200, "body": {"value": [MESSAGE]}}))

    assert pages == [[MESSAGE]]
    assert [r.url.path for r in requests] == ["/v1.0/$batch"]


def test_a_busy_mailbox_goes_on_from_the_batch_with_skip_in_full_pages() -> None:
    link = f"{GRAPH}/users/u-1/mailFolders/sentitems/messages?$top=100&$skip=1"
    item = {"status": 200, "body": {"value": [MESSAGE], "@odata.nextLink": link}}

    pages, requests = _read(_batch_of(item), page_size=1000)

    assert pages == [[MESSAGE], [{"id": "m-2"}]]
    assert len(requests) == 2  # the batch's next link is not followed: $skip, full pages
    query = _query(requests[1])
    assert (query["$skip"], query["$top"]) == (["1"], ["1000"])
    assert query["$filter"] == [
        "sentDateTime ge 2026-11-20T06:00:00Z and sentDateTime lt 2026-11-21T06:00:00Z"
    ]


def test_a_mailbox_throttled_for_minutes_in_the_batch_fails_with_its_retry_after() -> None:
    item = {
        "status": 429,
        "headers": {"Retry-After": "300"},
        "body": {"error": {"code": "TooMany"}},
    }

    with pytest.raises(MailboxFailed) as failed:
        _read(_batch_of(item))

    assert failed.value.retry_after == 300.0  # for the sweep to come back to it later
    assert str(failed.value).startswith("still throttled after the batch: 429 TooMany")


def test_a_mailbox_throttled_briefly_in_the_batch_is_waited_out_then_read_again() -> None:
    item = {"status": 503, "headers": {"Retry-After": "0"}, "body": {}}

    pages, requests = _read(_batch_of(item))

    assert pages == [[{"id": "m-2"}]]
    assert len(requests) == 2 and "$skip" not in _query(requests[1])


def test_a_batch_item_without_a_mailbox_is_raised_as_is_without_asking_again() -> None:
    error = {"code": "MailboxNotEnabledForRESTAPI", "message": "REST API is not yet supported."}
    item = {"status": 404, "body": {"error": error}}

    with pytest.raises(MailboxNotEnabled):
        _read(_batch_of(item))


def test_a_failed_batch_item_is_read_again_the_ordinary_way() -> None:
    item = {"status": 500, "body": {"error": {"code": "UnknownError", "message": "Oops."}}}

    pages, requests = _read(_batch_of(item))

    assert pages == [[{"id": "m-2"}]]
    assert len(requests) == 2


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        (404, {"code": "MailboxNotEnabledForRESTAPI", "message": "No."}, MailboxNotEnabled),
        (404, {"code": "ErrorItemNotFound", "message": "Gone."}, GraphError),
        (403, {"code": "ErrorAccessDenied", "message": "Access is denied.\nMore."}, GraphError),
        (400, {"code": "", "message": ""}, GraphError),
    ],
)
def test_an_error_maps_alike_on_its_own_and_inside_a_batch(
    status: int, error: dict[str, str], kind: type[GraphError]
) -> None:
    body = {"error": error}

    def alone(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=orjson.dumps(body))

    async def run() -> tuple[GraphError, GraphError]:
        gateway = _gateway(alone)
        async with gateway:
            with pytest.raises(GraphError) as on_its_own:
                async for _ in gateway.sent_pages(USER, SINCE, UNTIL, 10):
                    pass
        batched = _batch_of({"status": status, "body": body})
        gateway = _gateway(batched)
        async with gateway:
            firsts = await gateway.first_pages([(USER, SINCE, UNTIL)], 100)
        item = firsts[USER.id]
        assert isinstance(item, GraphError)
        return on_its_own.value, item

    alone_error, batch_error = asyncio.run(run())

    assert type(batch_error) is kind
    assert (batch_error.status, batch_error.code) == (alone_error.status, alone_error.code)
    assert str(batch_error) == str(alone_error)


def test_a_first_page_is_opaque_outside_the_gateway() -> None:
    assert all(name.startswith("_") for name in FirstPage.__dataclass_fields__)


# -- message pages: each message handed on as its raw JSON text -----------------------------


def _pages_alone(handler: Handler) -> list[list[bytes]]:
    """sent_pages without a batch: each page as the list of its values' raw JSON texts."""

    async def run() -> list[list[bytes]]:
        async with _gateway(handler) as gateway:
            pages = gateway.sent_pages(USER, SINCE, UNTIL, 10)
            return [[bytes(m) for m in page] async for page in pages]

    return asyncio.run(run())


def test_each_message_reaches_the_caller_as_the_json_text_graph_sent() -> None:
    first = b'{"value":[ {"id":"m-1", "subject":"R\\u00e9union"} ,null,"odd",[1,{}]],'
    first += f'"@odata.nextLink":"{GRAPH}/users/u-1/messages?$skip=4"}}'.encode()

    def answer(request: httpx.Request) -> httpx.Response:
        if "$skip" in str(request.url):
            return httpx.Response(200, content=b'{"value":[{"id":"m-5"}]}')
        return httpx.Response(200, content=first)

    assert _pages_alone(answer) == [
        [b'{"id":"m-1", "subject":"R\\u00e9union"}', b"null", b'"odd"', b"[1,{}]"],
        [b'{"id":"m-5"}'],
    ]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"value":[{"id":"m-1"}]', "not JSON (23 bytes)"),
        (b'[{"id":"m-1"}]', "not a JSON object"),
        (b'{"value":{"id":"m-1"}}', "a page without a 'value' list"),
        (b'{"value":[],"@odata.nextLink":7}', "'@odata.nextLink' is not a URL"),
        (b'{"value":[' + b"[" * 2000 + b"]" * 2000 + b"]}", "not JSON (4012 bytes)"),
    ],
)
def test_a_page_sweeper_cannot_read_is_asked_again_then_fails_the_mailbox_saying_why(
    content: bytes, problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sweeper.graph.gateway.RETRY_DELAYS", (0.0, 0.0))
    asked: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return httpx.Response(200, content=content)

    with pytest.raises(MailboxFailed) as failed:
        _pages_alone(answer)

    assert str(failed.value) == f"malformed answer from Graph: {problem}"
    assert len(asked) == 3


def test_a_batch_page_keeps_its_messages_raw_and_a_next_link_of_another_type_ends_it() -> None:
    item = {"status": 200, "body": {"value": [MESSAGE, None], "@odata.nextLink": 12}}

    pages, requests = _read(_batch_of(item))

    assert pages == [[MESSAGE, None]]  # as before: complete, nothing more asked
    assert len(requests) == 1


@pytest.mark.parametrize(
    "answer",
    [
        {"responses": "not a list"},
        {"responses": [None, "odd", {"id": "7", "status": 200, "body": {"value": []}}]},
        {"something": "else"},
    ],
)
def test_a_mailbox_the_batch_answer_does_not_answer_is_read_again_on_its_own(
    answer: dict[str, Any],
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/$batch"):
            return httpx.Response(200, json=answer)
        return httpx.Response(200, json={"value": [{"id": "m-2"}]})

    pages, requests = _read(handler)

    assert pages == [[{"id": "m-2"}]]
    assert len(requests) == 2


def test_a_next_link_to_another_host_is_refused_and_never_sent_the_token() -> None:
    asked: list[httpx.URL] = []

    def graph(request: httpx.Request) -> httpx.Response:
        asked.append(request.url)
        link = "https://collector.attacker.example/v1.0/users/u-1/messages?$skip=1"
        return httpx.Response(200, json={"value": [MESSAGE], "@odata.nextLink": link})

    async def run() -> list[Any]:
        async with _gateway(graph) as gateway:
            return [page async for page in gateway.sent_pages(USER, SINCE, UNTIL, 10)]

    with pytest.raises(MailboxFailed, match="collector.attacker.example"):
        asyncio.run(run())
    assert [u.host for u in asked] == ["graph.test"]


# -- issue 24: every paging loop bounded, every answer bounded ------------------------------


def _listing(handler: Handler, what: str, **options: Any) -> tuple[Any, list[httpx.URL]]:
    """Run ``users`` or ``verified_domains`` against ``handler``: the outcome (a result or
    the error raised) and every URL asked."""
    asked: list[httpx.URL] = []

    def recording(request: httpx.Request) -> httpx.Response:
        asked.append(request.url)
        return handler(request)

    async def run() -> Any:
        transport = httpx.MockTransport(recording)
        gateway = GraphGateway(
            GRAPH, "https://graph.test/.default", _Credential(), transport=transport, **options
        )
        async with gateway:
            if what == "users":
                return await gateway.users(include_disabled=True)
            return await gateway.verified_domains()

    try:
        return asyncio.run(run()), asked
    except GraphError as exc:
        return exc, asked


USERS_PAGE = {"value": [{"id": "u-1", "userPrincipalName": "a@northwick.example"}]}
DOMAINS_PAGE = {"value": [{"id": "northwick.example", "isVerified": True}]}


@pytest.mark.parametrize(("what", "page"), [("users", USERS_PAGE), ("domains", DOMAINS_PAGE)])
def test_a_tenant_listing_whose_next_link_repeats_ends_saying_why(
    what: str, page: dict[str, Any]
) -> None:
    def graph(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={**page, "@odata.nextLink": str(request.url)})

    outcome, asked = _listing(graph, what)

    assert isinstance(outcome, GraphError)
    assert "repeats a page already read" in str(outcome)
    assert len(asked) == 1


def test_a_listing_of_ever_new_links_stops_at_max_pages() -> None:
    def graph(request: httpx.Request) -> httpx.Response:
        token = int(request.url.params.get("$skiptoken", "0")) + 1
        link = f"{GRAPH}/users?$skiptoken={token}"
        return httpx.Response(200, json={**USERS_PAGE, "@odata.nextLink": link})

    outcome, asked = _listing(graph, "users", max_pages=50)

    assert isinstance(outcome, GraphError)
    assert "after 50 pages (graph.max_pages)" in str(outcome)
    assert len(asked) == 50


@pytest.mark.parametrize(
    ("link", "followed"),
    [
        ("https://graph.test:8443/v1.0/users?$skiptoken=2", False),  # another port
        ("http://graph.test/v1.0/users?$skiptoken=2", False),  # another scheme
        ("https://graph.test.example/v1.0/users?$skiptoken=2", False),  # another host
        ("https://GRAPH.test:443/v1.0/users?$skiptoken=2", True),  # the same, written out
    ],
)
def test_a_users_next_link_is_followed_only_on_graphs_own_scheme_host_and_port(
    link: str, followed: bool
) -> None:
    """Issue 24, item 16, on the SDK's path (whose sign-in provider compares hosts only)."""

    def graph(request: httpx.Request) -> httpx.Response:
        if "$skiptoken" in str(request.url):
            return httpx.Response(200, json=USERS_PAGE)
        return httpx.Response(200, json={**USERS_PAGE, "@odata.nextLink": link})

    outcome, asked = _listing(graph, "users")

    if followed:
        assert len(outcome) == 2 and len(asked) == 2
    else:
        assert isinstance(outcome, GraphError)
        assert "on another origin" in str(outcome) and "not followed" in str(outcome)
        assert [(u.scheme, u.host, u.port) for u in asked] == [("https", "graph.test", None)]


def test_a_mailbox_next_link_to_another_port_is_refused_and_never_sent_the_token() -> None:
    asked: list[httpx.URL] = []

    def graph(request: httpx.Request) -> httpx.Response:
        asked.append(request.url)
        link = "https://graph.test:4443/v1.0/users/u-1/messages?$skip=1"
        return httpx.Response(200, json={"value": [MESSAGE], "@odata.nextLink": link})

    async def run() -> list[Any]:
        async with _gateway(graph) as gateway:
            return [page async for page in gateway.sent_pages(USER, SINCE, UNTIL, 10)]

    with pytest.raises(MailboxFailed, match=r"another origin \(https://graph.test:4443"):
        asyncio.run(run())
    assert [u.port for u in asked] == [None]


def test_a_listing_that_inflates_past_the_bound_fails_at_once_without_asking_again() -> None:
    """Issue 24, item 14, on the SDK's path: 16 MiB from about 16 KiB, bound 1 MiB."""
    bomb = gzip.compress(b" " * (16 * 1024 * 1024), compresslevel=9)

    def graph(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=bomb, headers={"Content-Encoding": "gzip"})

    outcome, asked = _listing(graph, "users", outbound=Outbound(max_answer_bytes=1024 * 1024))

    assert isinstance(outcome, GraphError)
    assert "larger than 1 MiB once decompressed" in str(outcome)
    assert len(asked) == 1  # too large once is too large again: not retried


def test_a_page_within_the_bound_is_decoded_once() -> None:
    page = orjson.dumps(USERS_PAGE)

    def graph(request: httpx.Request) -> httpx.Response:
        assert request.headers["Accept-Encoding"] == "gzip, deflate"
        return httpx.Response(
            200, content=gzip.compress(page), headers={"Content-Encoding": "gzip"}
        )

    outcome, _ = _listing(graph, "users")

    assert [u.id for u in outcome] == ["u-1"]
