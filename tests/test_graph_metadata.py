"""The local Graph against Graph's own description (issue 24).

``fixtures/graph-v1.0-subset.json`` is the part of Microsoft Graph v1.0's published metadata
(the CSDL of ``microsoftgraph/msgraph-metadata``) that sweeper relies on, written by
``tools/graph_metadata.py``. Every object the local Graph answers with must be one Graph
could send: declared properties only, each of its declared type; and everything sweeper
asks for (``$select``, ``$filter``, ``$orderby``, the sendMail body) must be declared.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from support.graph_metadata import GRAPH, ISO_8601, TYPES, declared, lineage, object_problems
from support.runner import Sweeper
from support.tenant import request_token

from sweeper.fakegraph import FakeGraph
from sweeper.fakegraph.bulk import BulkTenant
from sweeper.fakegraph.graphapi import (
    MESSAGE_FILTERS,
    MESSAGE_PROPERTIES,
    USER_FILTERS,
    USER_PROPERTIES,
)
from sweeper.fakegraph.router import Logged
from sweeper.graph.requests import MESSAGE_FIELDS, USER_FIELDS

ROOT = Path(__file__).resolve().parent.parent
# Which type a path of the local Graph answers with, and whether it is a collection.
ROUTES = (
    (re.compile(r"^/v1\.0/users$", re.I), "user", True),
    (re.compile(r"^/v1\.0/users/[^/]+$", re.I), "user", False),
    (re.compile(r"^/v1\.0/domains$", re.I), "domain", True),
    (re.compile(r"^/v1\.0/users/[^/]+/mailfolders/[^/]+/messages$", re.I), "message", True),
)


# -- driving the local Graph --------------------------------------------------------------


def token(fake: FakeGraph) -> str:
    answer = request_token(fake)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def route(path: str) -> tuple[str, bool] | None:
    return next(((kind, many) for pattern, kind, many in ROUTES if pattern.match(path)), None)


def answer_problems(body: Any, path: str, *, whole: bool) -> list[str]:
    """Everything wrong in one answer of the local Graph to a GET of ``path``."""
    found = route(path)
    assert found is not None, f"no type known for {path}"
    kind, many = found
    if not many:
        return object_problems(body, kind, path, whole=whole)
    assert isinstance(body, dict) and isinstance(body.get("value"), list), body
    extra = set(body) - {"@odata.context", "@odata.nextLink", "value"}
    return [f"{path}: page property {k!r}" for k in sorted(extra)] + [
        p
        for i, item in enumerate(body["value"])
        for p in object_problems(item, kind, f"{path}[{i}]", whole=whole)
    ]


def every_answer(fake: FakeGraph, requests: list[Logged]) -> Iterator[list[str]]:
    """Each GET sweeper made, asked again as it was and without ``$select`` (the whole
    objects), then the same pages inside one JSON batch."""
    headers = {"Authorization": f"Bearer {token(fake)}"}
    base = fake.graph_url.removesuffix("/v1.0")
    reads = [r for r in requests if r.method == "GET" and route(r.path) and r.status == 200]
    assert reads
    with httpx.Client(headers=headers) as client:
        for read in reads:
            for query, whole in ((read.query, False), (without_select(read.query), True)):
                answer = client.get(f"{base}{read.path}", params=query)
                assert answer.status_code == 200, (read.path, answer.text)
                yield answer_problems(answer.json(), read.path, whole=whole)
        pages = [r for r in reads if route(r.path) == ("message", True)][:20]
        batch = {
            "requests": [
                {"id": str(i), "method": "GET", "url": f"{r.path.removeprefix('/v1.0')}?"
                 + "&".join(f"{k}={v}" for k, v in r.query.items())}
                for i, r in enumerate(pages)
            ]
        }  # fmt: skip
        answer = client.post(f"{fake.graph_url}/$batch", json=batch)
        assert answer.status_code == 200, answer.text
        for item in answer.json()["responses"]:
            assert set(item) == {"id", "status", "headers", "body"}, item
            assert item["status"] == 200, item
            yield answer_problems(item["body"], pages[int(item["id"])].path, whole=False)


def without_select(query: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in query.items() if k != "$select"}


def every_mailbox(fake: FakeGraph) -> list[Logged]:
    """A read of each mailbox's whole Sent Items, as logged requests to ask again."""
    return [
        Logged("GET", f"/v1.0/users/{u.id}/mailFolders/sentitems/messages", {"$top": "1000"}, 200,
               u.upn)
        for u in fake.tenant.users
        if u.has_mailbox
    ]  # fmt: skip


@pytest.fixture
def worked(sweeper: Sweeper) -> Sweeper:
    """A sweep of a week, doctor, a lookup and a digest sent through Graph: everything
    sweeper asks of Graph, logged by the local Graph."""
    sweeper.with_digest(sweeper.db.parent / "reports")
    for command in (
        ("sweep", "--since", "7d"),
        ("doctor", "--send-test"),
        ("lookup", "--internet-message-id", sweeper.fake.tenant.planted[0].internet_message_id),
        ("digest", "--send"),
    ):
        result = sweeper.run(*command)
        assert result.exit_code in (0, 1), result.output  # doctor warns of Mail.Send
    # Enabled accounts only: the user listing is filtered, and a disabled shared mailbox
    # named on purpose is read by its name.
    text = sweeper.config.read_text().replace("[sweep]\n", "[sweep]\ninclude_disabled = false\n")
    sweeper.config.write_text(text)
    targeted = sweeper.run("sweep", "--mailbox", "clinic.bookings@northwick.example")
    assert targeted.exit_code == 0, targeted.output
    return sweeper


# -- the tests -----------------------------------------------------------------------------


def test_the_fixture_is_graph_v1_metadata_with_its_source() -> None:
    source = GRAPH["source"]
    assert source["repository"] == "microsoftgraph/msgraph-metadata"
    assert re.fullmatch(r"[0-9a-f]{40}", source["commit"]) and source["committed_at"][:2] == "20"
    assert {"message", "eventMessage", "recipient", "emailAddress", "user", "domain"} <= set(TYPES)
    assert lineage("eventMessageRequest") == [
        "eventMessageRequest", "eventMessage", "message", "outlookItem", "entity",
    ]  # fmt: skip
    assert declared("message")["sentDateTime"] == {"type": "Edm.DateTimeOffset", "nullable": True}
    assert declared("domain")["isVerified"] == {"type": "Edm.Boolean", "nullable": False}


def test_every_object_the_local_graph_answers_with_is_declared_and_well_typed(
    worked: Sweeper,
) -> None:
    fake = worked.fake
    driven = {
        pattern.pattern for pattern, _, _ in ROUTES if any(pattern.match(r.path) for r in fake.log)
    }
    assert driven == {pattern.pattern for pattern, _, _ in ROUTES}  # every route, by sweeper
    found = [p for batch in every_answer(fake, fake.log + every_mailbox(fake)) for p in batch]
    assert found == []
    kinds = {str(m.get("@odata.type")) for u in fake.tenant.users for m in u.sent}
    assert {
        "#microsoft.graph.eventMessageRequest",
        "#microsoft.graph.eventMessageResponse",
    } <= kinds


@pytest.mark.slow
def test_the_bulk_tenant_of_the_benchmarks_is_declared_and_well_typed() -> None:
    with FakeGraph(BulkTenant(mailboxes=3, per_mailbox=40)) as fake:
        users = [Logged("GET", "/v1.0/users", {}, 200, None)]
        domains = [Logged("GET", "/v1.0/domains", {}, 200, None)]
        found = [
            p for batch in every_answer(fake, users + domains + every_mailbox(fake)) for p in batch
        ]
    assert found == []


def properties_asked(requests: list[Logged]) -> set[tuple[str, str, str]]:
    """(type, option, property) of every ``$select``, ``$filter`` and ``$orderby`` sent."""
    asked = set()
    for request in requests:
        found = route(request.path)
        if found is None:
            continue
        for option, text in request.query.items():
            asked |= {(found[0], option, name) for name in named_in(option, text)}
    return asked


def named_in(option: str, text: str) -> set[str]:
    """The properties a query option names (their first segment, for a path)."""
    if option == "$select":
        return {name.strip() for name in text.split(",") if name.strip()}
    if option == "$orderby":
        return {part.split()[0] for part in text.split(",") if part.strip()}
    if option == "$filter":
        bare = re.sub(r"'(?:[^']|'')*'", "''", text)  # literals say nothing
        compared = re.findall(r"([A-Za-z][\w/]*)\s+(?:eq|ne|gt|ge|lt|le|in)\s", bare)
        called = re.findall(r"\w+\(\s*([A-Za-z][\w/]*)\s*,", bare)
        return {name.split("/")[0] for name in compared + called}
    return set()


def test_every_property_sweeper_asks_for_is_declared_on_its_type(worked: Sweeper) -> None:
    asked = properties_asked(worked.fake.log)
    options = {(kind, option) for kind, option, _ in asked}
    assert {("message", "$select"), ("message", "$filter"), ("user", "$select")} <= options
    assert ("user", "$filter") in options  # accountEnabled, without include_disabled
    undeclared = sorted(a for a in asked if a[2] not in declared(a[0]))
    assert undeclared == []
    # The code's own lists, whether or not this run used every one of them.
    assert set(MESSAGE_FIELDS) - set(declared("message")) == set()
    assert set(USER_FIELDS.split(",")) - set(declared("user")) == set()
    # What the local Graph accepts in $select and $filter is what Graph declares.
    assert set(MESSAGE_PROPERTIES) - set(declared("message")) == set()
    assert set(USER_PROPERTIES) - set(declared("user")) == set()
    for kind, filters in (("message", MESSAGE_FILTERS), ("user", USER_FILTERS)):
        types = {name: declared(kind)[name]["type"] for name in filters}
        assert types == {name: LITERALS[literal][0] for name, literal in filters.items()}


# The local Graph's kinds of $filter literal: the Edm type each is, and its form in a filter.
LITERALS = {
    "datetime": ("Edm.DateTimeOffset", ISO_8601),
    "bool": ("Edm.Boolean", re.compile(r"^(true|false)$")),
    "string": ("Edm.String", re.compile(r"^'(?:[^']|'')*'$")),
}


def test_every_filter_compares_a_property_with_a_literal_of_its_type(worked: Sweeper) -> None:
    forms = {edm: form for edm, form in LITERALS.values()}
    compared = []
    for request in worked.fake.log:
        found, text = route(request.path), request.query.get("$filter")
        if found is None or text is None:
            continue
        for name, literal in re.findall(
            r"(\w+)\s+(?:eq|ne|gt|ge|lt|le)\s+('(?:[^']|'')*'|\S+)", text
        ):
            edm = declared(found[0])[name]["type"]
            compared.append((found[0], name, edm, bool(forms[edm].match(literal))))
    assert {(kind, name, edm) for kind, name, edm, _ in compared} == {
        ("message", "sentDateTime", "Edm.DateTimeOffset"),
        ("message", "internetMessageId", "Edm.String"),
        ("user", "accountEnabled", "Edm.Boolean"),
    }
    assert all(ok for *_, ok in compared), [c for c in compared if not c[-1]]


def test_the_mail_sweeper_sends_is_a_declared_message(worked: Sweeper) -> None:
    parameters = {name.lower() for name in GRAPH["actions"]["sendMail"]}
    assert parameters == {"message", "savetosentitems"}  # Graph matches them in any case
    sent = worked.fake.sent_mail
    assert len(sent) >= 2  # doctor's test and the digest
    for mail in sent:
        assert object_problems(mail["message"], "message", "sendMail", whole=False) == []


@pytest.mark.slow
def test_the_script_writes_the_subset_from_a_csdl(tmp_path: Path) -> None:
    """tools/graph_metadata.py on a small CSDL of the same shape as Graph's."""
    csdl = tmp_path / "cleanMetadata.xml"
    csdl.write_text(TINY_CSDL, encoding="utf-8")
    out = tmp_path / "subset.json"
    script = ROOT / "tools" / "graph_metadata.py"
    done = subprocess.run(
        [sys.executable, str(script), str(csdl), "--commit", "c0ffee", "--date", "2026-01-01",
         "--out", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    written = orjson.loads(out.read_bytes())
    assert written["source"]["commit"] == "c0ffee"
    assert written["types"]["eventMessage"]["base"] == "message"
    assert written["types"]["message"]["properties"]["toRecipients"] == {
        "type": "Collection(recipient)", "nullable": True,
    }  # fmt: skip
    assert written["types"]["entity"]["properties"]["id"]["nullable"] is False
    assert written["enums"]["importance"] == ["low", "normal", "high"]
    assert "unused" not in written["types"]
    assert written["actions"]["sendMail"]["Message"]["type"] == "message"


TINY_CSDL = """\ufeff<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">
<edmx:DataServices>
<Schema Namespace="microsoft.graph" Alias="graph" xmlns="http://docs.oasis-open.org/odata/ns/edm">
<EnumType Name="importance"><Member Name="low" Value="0" /><Member Name="normal" Value="1" />
<Member Name="high" Value="2" /></EnumType>
<EntityType Name="entity" Abstract="true"><Key><PropertyRef Name="id" /></Key>
<Property Name="id" Type="Edm.String" Nullable="false" /></EntityType>
<EntityType Name="unused" BaseType="graph.entity" />
<EntityType Name="outlookItem" BaseType="graph.entity" Abstract="true" />
<EntityType Name="message" BaseType="graph.outlookItem" OpenType="true">
<Property Name="toRecipients" Type="Collection(graph.recipient)" />
<Property Name="importance" Type="graph.importance" />
<NavigationProperty Name="attachments" Type="Collection(graph.attachment)" /></EntityType>
<EntityType Name="eventMessage" BaseType="graph.message" />
<EntityType Name="eventMessageRequest" BaseType="graph.eventMessage" />
<EntityType Name="eventMessageResponse" BaseType="graph.eventMessage" />
<ComplexType Name="recipient"><Property Name="emailAddress" Type="graph.emailAddress" />
</ComplexType>
<ComplexType Name="emailAddress"><Property Name="address" Type="Edm.String" /></ComplexType>
<EntityType Name="directoryObject" BaseType="graph.entity" />
<EntityType Name="user" BaseType="graph.directoryObject" />
<EntityType Name="organization" BaseType="graph.directoryObject" />
<ComplexType Name="verifiedDomain"><Property Name="name" Type="Edm.String" /></ComplexType>
<EntityType Name="domain" BaseType="graph.entity" />
<EntityType Name="mailFolder" BaseType="graph.entity" />
<Action Name="sendMail" IsBound="true"><Parameter Name="bindingParameter" Type="graph.user" />
<Parameter Name="Message" Type="graph.message" Nullable="false" />
<Parameter Name="SaveToSentItems" Type="Edm.Boolean" /></Action>
</Schema></edmx:DataServices></edmx:Edmx>
"""


@pytest.mark.slow
@pytest.mark.skipif(
    "SWEEPER_GRAPH_METADATA" not in os.environ,
    reason="needs a copy of Microsoft's microsoftgraph/msgraph-metadata, which the tests may "
    "not download: set SWEEPER_GRAPH_METADATA to its git directory to check the fixture",
)
def test_the_fixture_is_what_the_script_writes_from_its_source(tmp_path: Path) -> None:
    out = tmp_path / "subset.json"
    git_dir = os.environ["SWEEPER_GRAPH_METADATA"]
    script = ROOT / "tools" / "graph_metadata.py"
    done = subprocess.run(
        [sys.executable, str(script), "--git-dir", git_dir, "--out", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    written = orjson.loads(out.read_bytes())
    if written["source"]["commit"] == GRAPH["source"]["commit"]:
        assert written == GRAPH
    else:  # a newer Graph: what sweeper relies on is still declared the same way
        for name, kind in GRAPH["types"].items():
            assert written["types"][name]["properties"] == kind["properties"], name
