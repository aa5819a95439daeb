"""The local Graph behaves as Graph is documented to, not as sweeper would like it to.

These talk to it with plain httpx, as any client would.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from support.tenant import request_token

from sweeper.fakegraph import FakeGraph, generate_tenant


@pytest.fixture
def token(fake: FakeGraph) -> str:
    response = request_token(fake)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    return str(body["access_token"])


def get(fake: FakeGraph, token: str | None, path: str, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = path if path.startswith("http") else f"{fake.graph_url}{path}"
    return httpx.get(url, params=params or None, headers=headers)


def sent_path(fake: FakeGraph, upn: str) -> str:
    user = fake.tenant.user(upn)
    assert user is not None
    return f"/users/{user.id}/mailFolders/sentitems/messages"


def assert_graph_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert {"date", "request-id", "client-request-id"} <= set(error["innerError"])
    return dict(error)


def test_no_token_is_a_401(fake: FakeGraph) -> None:
    assert_graph_error(get(fake, None, "/users"), 401, "InvalidAuthenticationToken")
    assert_graph_error(get(fake, "made-up", "/users"), 401, "InvalidAuthenticationToken")


def test_an_expired_token_is_a_401(fake: FakeGraph) -> None:
    fake.token_lifetime = -1
    expired = request_token(fake).json()["access_token"]
    error = assert_graph_error(get(fake, expired, "/users"), 401, "InvalidAuthenticationToken")
    assert "expired" in error["message"]


def test_messages_default_to_ten_a_page_newest_first_and_page_by_next_link(
    fake: FakeGraph, token: str
) -> None:
    upn = "victim.care@northwick.example"
    sender = fake.tenant.user(upn)
    assert sender is not None
    seen: list[dict[str, Any]] = []
    url: str | None = f"{fake.graph_url}{sent_path(fake, upn)}"
    pages = 0
    while url:
        body = get(fake, token, url, **({"$top": "3"} if pages == 0 else {})).json()
        assert len(body["value"]) <= 3
        seen += body["value"]
        url = body.get("@odata.nextLink")
        assert url is None or url.startswith("http://127.0.0.1:")
        pages += 1
    assert pages == 3  # 7 messages, 3 a page
    assert [m["id"] for m in seen] == [m["id"] for m in sender.sent]
    dates = [m["sentDateTime"] for m in seen]
    assert dates == sorted(dates, reverse=True)

    default = get(fake, token, sent_path(fake, "victim.care@northwick.example")).json()
    assert len(default["value"]) == 7  # under the default page size of 10
    assert "@odata.nextLink" not in default


def test_select_returns_only_the_fields_asked_for_plus_the_id(fake: FakeGraph, token: str) -> None:
    path = sent_path(fake, "victim.care@northwick.example")
    body = get(fake, token, path, **{"$select": "subject,toRecipients"}).json()
    assert set(body["value"][0]) == {"@odata.etag", "id", "subject", "toRecipients"}
    everything = get(fake, token, path).json()["value"][0]
    assert "body" in everything and "bodyPreview" in everything


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"$select": "subject,nonsense"}, "RequestBroker--ParseUri"),
        ({"$top": "1001"}, "BadRequest"),
        ({"$top": "0"}, "BadRequest"),
        ({"$top": "ten"}, "BadRequest"),
        ({"$filter": "subject eq 'x'"}, "ErrorInvalidProperty"),
        ({"$filter": "sentDateTime ge yesterday"}, "BadRequest"),
        ({"$filter": "contains(subject,'x')"}, "BadRequest"),
    ],
)
def test_query_options_graph_refuses_are_refused(
    fake: FakeGraph, token: str, params: dict[str, str], code: str
) -> None:
    response = get(fake, token, sent_path(fake, "victim.care@northwick.example"), **params)
    assert_graph_error(response, 400, code)


def test_users_allow_at_most_999_a_page(fake: FakeGraph, token: str) -> None:
    assert get(fake, token, "/users", **{"$top": "999"}).status_code == 200
    assert_graph_error(get(fake, token, "/users", **{"$top": "1000"}), 400, "BadRequest")


def test_users_filter_and_skiptoken_paging(fake: FakeGraph, token: str) -> None:
    users: list[dict[str, Any]] = []
    url: str | None = f"{fake.graph_url}/users"
    params = {"$filter": "accountEnabled eq true", "$top": "5"}
    while url:
        body = get(fake, token, url, **params).json()
        params = {}
        users += body["value"]
        url = body.get("@odata.nextLink")
        assert url is None or "$skiptoken=" in url
    assert len(users) == len([u for u in fake.tenant.users if u.enabled])
    assert all(u["accountEnabled"] for u in users)


def test_the_sent_date_filter_is_half_open(fake: FakeGraph, token: str) -> None:
    sender = fake.tenant.user("victim.care@northwick.example")
    assert sender is not None
    first = sender.sent[-1]["sentDateTime"]  # oldest
    path = sent_path(fake, sender.upn)
    ge = get(fake, token, path, **{"$filter": f"sentDateTime ge {first}"}).json()["value"]
    gt = get(fake, token, path, **{"$filter": f"sentDateTime gt {first}"}).json()["value"]
    lt = get(fake, token, path, **{"$filter": f"sentDateTime lt {first}"}).json()["value"]
    assert (len(ge), len(gt), len(lt)) == (7, 6, 0)


def test_a_user_without_a_mailbox_and_an_unknown_user(fake: FakeGraph, token: str) -> None:
    response = get(fake, token, sent_path(fake, "room.1@northwick.example"))
    assert_graph_error(response, 404, "MailboxNotEnabledForRESTAPI")
    unknown = get(fake, token, "/users/nobody@northwick.example/mailFolders/sentitems/messages")
    assert_graph_error(unknown, 404, "Request_ResourceNotFound")


def test_a_double_slash_after_the_version_is_tolerated(fake: FakeGraph, token: str) -> None:
    response = get(fake, token, f"http://127.0.0.1:{fake.graph_port}/v1.0//users")
    assert response.status_code == 200


def test_only_verified_and_unverified_domains_are_listed_as_such(
    fake: FakeGraph, token: str
) -> None:
    domains = get(fake, token, "/domains").json()["value"]
    assert {(d["id"], d["isVerified"]) for d in domains} == {
        ("northwick.example", True),
        ("northwick-legacy.example", False),
    }


@pytest.mark.slow
def test_a_fifth_concurrent_request_to_one_mailbox_is_throttled() -> None:
    with FakeGraph(generate_tenant(users=8), latency=0.3) as slow:
        fresh = request_token(slow).json()["access_token"]
        path = f"{slow.graph_url}{sent_path(slow, 'victim.care@northwick.example')}"

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(headers={"Authorization": f"Bearer {fresh}"}) as client:
                return list(await asyncio.gather(*(client.get(path) for _ in range(6))))

        statuses = sorted(r.status_code for r in asyncio.run(burst()))
    assert statuses == [200, 200, 200, 200, 429, 429]


def test_injected_faults_fire_the_given_number_of_times(fake: FakeGraph, token: str) -> None:
    fake.add_fault(mailbox="victim.care@northwick.example", status=503, times=2, retry_after=7)
    path = sent_path(fake, "victim.care@northwick.example")
    first = get(fake, token, path)
    assert first.headers["Retry-After"] == "7"
    assert_graph_error(first, 503, "ApplicationThrottled")
    assert get(fake, token, path).status_code == 503
    assert get(fake, token, path).status_code == 200
    assert get(fake, token, sent_path(fake, "clinic.bookings@northwick.example")).is_success


def test_a_fault_for_each_mailbox_throttles_every_mailboxs_first_read_once(
    fake: FakeGraph, token: str
) -> None:
    fake.add_fault(path="/messages", retry_after=2, each_mailbox=True)
    victim = sent_path(fake, "victim.care@northwick.example")
    clinic = sent_path(fake, "clinic.bookings@northwick.example")

    statuses = [get(fake, token, p).status_code for p in (victim, clinic, victim, clinic)]

    assert statuses == [429, 429, 200, 200]
    assert get(fake, token, "/users").is_success  # not a mailbox's read


def test_a_truncated_body_is_not_json(fake: FakeGraph, token: str) -> None:
    fake.add_fault(path="/messages", kind="truncate")
    response = get(fake, token, sent_path(fake, "victim.care@northwick.example"))
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_a_tenant_too_small_for_the_planted_cases_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 8"):
        generate_tenant(users=7)


def test_the_generated_tenant_is_the_same_for_the_same_seed() -> None:
    one, two = generate_tenant(seed=7), generate_tenant(seed=7)
    assert [u.upn for u in one.users] == [u.upn for u in two.users]
    assert [p.internet_message_id for p in one.planted] == [
        p.internet_message_id for p in two.planted
    ]
    assert [p.visible_external for p in one.planted if p.label.startswith("replay")] == [
        119, 198, 160, 171, 152, 148, 188
    ]  # fmt: skip


def test_json_batching_answers_each_item_on_its_own(fake: FakeGraph, token: str) -> None:
    fake.add_fault(mailbox="clinic.bookings@northwick.example", status=429, retry_after=3)
    paths = [
        sent_path(fake, "victim.care@northwick.example").lstrip("/") + "?$top=2",
        sent_path(fake, "clinic.bookings@northwick.example").lstrip("/"),
        sent_path(fake, "room.1@northwick.example").lstrip("/"),
    ]
    body = {"requests": [{"id": str(i), "method": "GET", "url": p} for i, p in enumerate(paths)]}
    response = httpx.post(
        f"{fake.graph_url}/$batch", json=body, headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 200
    answers = {a["id"]: a for a in response.json()["responses"]}
    assert answers["0"]["status"] == 200
    assert len(answers["0"]["body"]["value"]) == 2
    assert answers["0"]["body"]["@odata.nextLink"].startswith("http://127.0.0.1:")
    assert (answers["1"]["status"], answers["1"]["headers"]["Retry-After"]) == (429, "3")
    assert answers["2"]["body"]["error"]["code"] == "MailboxNotEnabledForRESTAPI"


@pytest.mark.parametrize(
    "requests",
    [
        [{"id": str(i), "method": "GET", "url": "users"} for i in range(21)],
        [
            {"id": "1", "method": "GET", "url": "users"},
            {"id": "1", "method": "GET", "url": "domains"},
        ],
        [{"id": "1", "method": "GET", "url": "http://127.0.0.1/v1.0/users"}],
    ],
)
def test_a_batch_graph_would_refuse_is_refused(
    fake: FakeGraph, token: str, requests: list[dict[str, str]]
) -> None:
    response = httpx.post(
        f"{fake.graph_url}/$batch",
        json={"requests": requests},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert_graph_error(response, 400, "BadRequest")


def send_mail(fake: FakeGraph, token: str, upn: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{fake.graph_url}/users/{upn}/sendMail",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )


SENDER = "sweeper@northwick.example"


def message(**extra: Any) -> dict[str, Any]:
    return {
        "subject": "Hello",
        "body": {"contentType": "HTML", "content": "<p>Hello <b>there</b></p>"},
        "toRecipients": [{"emailAddress": {"address": "dpo@northwick.example"}}],
        **extra,
    }


@pytest.mark.parametrize(
    ("body", "kept"),
    [
        ({"message": message(), "saveToSentItems": True}, True),
        ({"message": message()}, True),  # Graph's default
        ({"Message": message(), "SaveToSentItems": True}, True),  # the SDK's casing
        ({"message": message(), "saveToSentItems": False}, False),
        ({"Message": message(), "SaveToSentItems": False}, False),
    ],
)
def test_send_mail_keeps_a_copy_in_sent_items_unless_told_not_to(
    fake: FakeGraph, token: str, body: dict[str, Any], kept: bool
) -> None:
    mailbox = fake.tenant.user(SENDER)
    assert mailbox is not None
    before = list(mailbox.sent)

    response = send_mail(fake, token, SENDER, body)

    assert response.status_code == 202 and response.content == b""
    assert len(fake.sent_mail) == 1
    assert mailbox.sent[len(mailbox.sent) - len(before) :] == before
    assert len(mailbox.sent) == len(before) + kept
    if kept:
        copy = mailbox.sent[0]  # newest first
        assert copy["subject"] == "Hello" and copy["bodyPreview"] == "Hello there"
        assert copy["from"] == copy["sender"]
        assert copy["from"]["emailAddress"]["address"] == SENDER
        assert copy["toRecipients"] == [{"emailAddress": {"address": "dpo@northwick.example"}}]
        assert copy["isDraft"] is False and copy["id"].startswith("AAMkAG")
        assert copy["internetMessageId"].startswith("<") and "@" in copy["internetMessageId"]
        listed = get(fake, token, sent_path(fake, SENDER), **{"$top": "1"}).json()["value"]
        assert listed[0]["id"] == copy["id"]


def test_a_sent_copy_is_found_by_the_internet_message_id_the_client_gave(
    fake: FakeGraph, token: str
) -> None:
    given = "<sweeper-digest.1.0a1b2c3d4e5f6a7b@northwick.example>"
    quoted = "<o'brien.2@northwick.example>"
    for mid in (given, quoted):
        body = {"message": message(internetMessageId=mid), "saveToSentItems": True}
        assert send_mail(fake, token, SENDER, body).status_code == 202

    def find(mid: str) -> list[dict[str, Any]]:
        literal = mid.replace("'", "''")
        response = get(
            fake,
            token,
            sent_path(fake, SENDER),
            **{
                "$filter": f"internetMessageId eq '{literal}'",
                "$select": "id,internetMessageId,sentDateTime",
            },
        )
        assert response.status_code == 200, response.text
        return list(response.json()["value"])

    [copy] = find(given)
    assert copy["internetMessageId"] == given
    assert set(copy) <= {"@odata.etag", "id", "internetMessageId", "sentDateTime"}
    assert [c["internetMessageId"] for c in find(quoted)] == [quoted]
    assert find("<sweeper-digest.2.0a1b2c3d4e5f6a7b@northwick.example>") == []
