"""Every answer sweeper reads is bounded in size and in time, from every client (issue 24,
items 14 and 15): not only Graph's pages, but Entra ID's sign-in and Azure Monitor's Logs
Ingestion answers, which azure-core would otherwise read a line at a time for as long as
they trickle, and inflate whole in memory however far they inflate.

A hostile HTTPS server on loopback (tests/support/hostile_https.py) answers every request with a
gzip bomb or a byte at a time; the real azure-identity and azure-monitor-ingestion clients
talk to it as sweeper sets them up.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from support.hostile_https import Hostile

from sweeper.errors import SweeperError
from sweeper.fakegraph import FakeGraph
from sweeper.graph.endpoints import SignIn
from sweeper.graph.people import PeopleSignIn
from sweeper.graph.signin import make_credential
from sweeper.outbound.ingestion import Target, upload

pytestmark = pytest.mark.slow  # hostile servers, answers held back to their time limits

WITHIN = 20.0  # far above the 2 s allowed; far below a trickled answer (about 8 s a token)


def signing_in_at(url: str, ca: Path, *, timeout: float = 2.0) -> SignIn:
    return SignIn(
        graph_url=url, authority_host=url, tenant_id="contoso", client_id="app", custom=True,
        ca_bundle=ca, timeout=timeout, max_answer_mb=1,
    )  # fmt: skip


async def token_from(sign_in: SignIn, secret: str, scope: str) -> str:
    credential = make_credential(sign_in, {"AZURE_CLIENT_SECRET": secret})
    try:
        return (await credential.get_token(scope)).token
    finally:
        await credential.close()


@pytest.mark.parametrize("mode", ["bomb", "trickle"])
def test_a_sign_in_answer_is_bounded_in_size_and_time(mode: str, tmp_path: Path) -> None:
    with Hostile(mode, tmp_path) as hostile:
        sign_in = signing_in_at(hostile.url, hostile.ca_path)
        started = time.monotonic()
        with pytest.raises(Exception) as failed:
            asyncio.run(token_from(sign_in, "secret", f"{hostile.url}/.default"))
        took = time.monotonic() - started

    assert took < WITHIN
    said = str(failed.value)
    assert len(said) < 2_000  # the answer is not carried along in the error
    expected = (
        "larger than 1 MiB once decompressed" if mode == "bomb" else "did not come whole within 2 s"
    )
    assert expected in said or expected in repr(failed.value.__cause__), said


def test_a_logs_ingestion_answer_is_bounded_and_not_asked_for_again(
    fake: FakeGraph, tmp_path: Path
) -> None:
    sign_in = SignIn(
        graph_url=fake.graph_url, authority_host=fake.authority, tenant_id=fake.tenant.tenant_id,
        client_id=fake.client_id, custom=True, ca_bundle=fake.ca_path, max_answer_mb=1,
    )  # fmt: skip
    with Hostile("bomb", tmp_path) as hostile:
        target = Target(
            endpoint=hostile.url, rule_id="dcr-1", stream="Custom-SweeperEvents_CL",
            scope="https://monitor.azure.com/.default", ca_bundle=hostile.ca_path, timeout=5,
            max_answer_mb=1,
        )  # fmt: skip

        async def send() -> None:
            credential = make_credential(sign_in, {"AZURE_CLIENT_SECRET": fake.client_secret})
            try:
                await upload(target, credential, [{"Kind": "Run", "EventId": "Run:x:1:y"}], print)
            finally:
                await credential.close()

        with pytest.raises(SweeperError) as failed:
            asyncio.run(send())

    assert "larger than 1 MiB once decompressed" in str(failed.value)  # graph.max_answer_mb
    assert len(hostile.hits) == 1  # too large is not asked for again


@pytest.mark.parametrize("mode", ["bomb", "trickle"])
def test_the_consoles_sign_in_of_people_is_bounded_in_size_and_time(
    mode: str, tmp_path: Path
) -> None:
    """MSAL speaks through requests: the console's worker thread is held no longer than the
    timeout, and a bomb is not inflated past the bound."""
    with Hostile(mode, tmp_path) as hostile:
        sign_in = signing_in_at(hostile.url, hostile.ca_path)
        people = PeopleSignIn(sign_in, {"AZURE_CLIENT_SECRET": "secret"}, "https://c/cb")
        started = time.monotonic()
        with pytest.raises(Exception) as failed:
            people.start()
        took = time.monotonic() - started

    assert took < WITHIN
    said = f"{failed.value} {failed.value.__cause__ or ''}"
    assert len(said) < 2_000
    bomb = "larger than 1 MiB once decompressed"
    assert (bomb if mode == "bomb" else "did not come whole within 2 s") in said, said
