"""The console's sessions and where its audit says a request came from, over HTTP against a
real uvicorn (as `sweeper console` configures it) and the local Entra ID (issue 24)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.console import HOSTILE, Console, principal, serving
from support.digest import swept_with_subject
from support.runner import Sweeper, write_config

from sweeper.console.web import COOKIE
from sweeper.fakegraph.tenant import CONSOLE_DPO


@pytest.fixture
def console(sweeper: Sweeper, tmp_path: Path) -> Iterator[Console]:
    swept_with_subject(sweeper, "hostile", HOSTILE, tmp_path)  # sweeps the tenant too
    with serving(sweeper) as running:
        yield running


def _reveal(console: Console, headers: dict[str, str]) -> str:
    """Sign in as the DPO, reveal the first incident's people; the source the audit kept."""
    browser = console.browser()
    console.sign_in(browser, CONSOLE_DPO)
    incident = console.incident_ids()[0]
    page = browser.get(f"/incidents/{incident}")
    answer = browser.post(
        f"/incidents/{incident}/reveal", data={"csrf": console.csrf(page)}, headers=headers
    )
    assert answer.status_code == 200
    trail = console.sweeper.rows("select source from console_audit order by id desc limit 1")
    return str(trail[0]["source"])


def test_a_copied_cookie_is_no_session_once_signed_out(console: Console) -> None:
    """Item 10: sign-out revokes the session on the server, not only in the browser."""
    browser = console.browser()
    console.sign_in(browser, CONSOLE_DPO)
    incident = console.incident_ids()[0]
    page = browser.get(f"/incidents/{incident}")
    copied = browser.cookies[COOKIE]
    assert browser.get(f"/incidents/{incident}/export").status_code == 200

    out = browser.post("/signout", data={"csrf": console.csrf(page)})
    assert out.headers["location"] == "/signed-out"

    thief = console.browser()
    thief.cookies.set(COOKIE, copied)
    answer = thief.get(f"/incidents/{incident}/export")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/signin?")
    assert "address" not in answer.text
    sessions = console.sweeper.rows("select who, revoked_at from console_sessions")
    assert [s["who"] for s in sessions] == [CONSOLE_DPO] and sessions[0]["revoked_at"]
    exports = console.sweeper.rows("select * from console_audit where action = 'export'")
    assert len(exports) == 1  # the one before signing out


def test_the_session_id_itself_is_not_stored(console: Console) -> None:
    browser = console.browser()
    console.sign_in(browser, CONSOLE_DPO)
    (stored,) = console.sweeper.rows("select id_hash from console_sessions")
    assert len(stored["id_hash"]) == 64 and stored["id_hash"] not in browser.cookies[COOKIE]


def test_a_forwarded_address_is_ignored_unless_from_a_configured_proxy(
    console: Console,
) -> None:
    """Item 11: a loopback client claiming another address in X-Forwarded-For is audited
    as what it is."""
    assert _reveal(console, {"X-Forwarded-For": "203.0.113.9"}) == "127.0.0.1"


def test_behind_a_configured_proxy_the_nearest_address_it_did_not_add_is_audited(
    sweeper: Sweeper,
) -> None:
    sweeper.run("sweep")
    with serving(sweeper, 'trusted_proxies = ["127.0.0.1", "10.1.0.0/16"]\n') as console:
        # The client forged the first entry; the proxies added the last two.
        chain = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9, 10.1.2.3"}
        assert _reveal(console, chain) == "203.0.113.9"
        assert _reveal(console, {}) == "127.0.0.1"
        assert _reveal(console, {"X-Forwarded-For": "not-an-address"}) == "127.0.0.1"


def test_a_trusted_proxy_that_is_not_an_address_is_one_line(sweeper: Sweeper) -> None:
    sweeper.run("sweep")
    write_config(
        sweeper.config,
        sweeper.config.read_text()
        + '\n[console]\nurl = "http://127.0.0.1:1"\ntrusted_proxies = ["proxy.local"]\n',
    )
    refused = sweeper.run("console")
    assert refused.exit_code == 2
    assert "console.trusted_proxies: 'proxy.local' is not an IP address or network" in (
        refused.output
    )


def test_under_easy_auth_sign_out_ends_app_services_session_too(sweeper: Sweeper) -> None:
    """Item 20: App Service's own session ends at /.auth/logout, back to the console."""
    sweeper.run("sweep")
    with serving(sweeper, "easy_auth = true\n") as console:
        browser = console.browser()
        dpo = {"X-MS-CLIENT-PRINCIPAL": principal(CONSOLE_DPO, "Sweeper.DPO")}
        page = browser.get("/incidents", headers=dpo)
        assert page.status_code == 200

        out = browser.post("/signout", data={"csrf": console.csrf(page)}, headers=dpo)

        assert out.status_code == 303
        assert out.headers["location"] == "/.auth/logout?post_logout_redirect_uri=/"
        forged = browser.post("/signout", data={"csrf": "guess"}, headers=dpo)
        assert forged.status_code == 403


def test_under_easy_auth_a_principal_header_counts_only_through_a_trusted_proxy(
    sweeper: Sweeper,
) -> None:
    """Item 11's class: App Service's X-MS-CLIENT-PRINCIPAL, like X-Forwarded-For, is
    believed only from the configured proxies once they are named: a client reaching the
    console past them cannot sign itself in as the DPO by writing the header."""
    sweeper.run("sweep")
    settings = sweeper.config.read_text()
    forged = {"X-MS-CLIENT-PRINCIPAL": principal("evil@example.org", "Sweeper.DPO")}
    elsewhere = 'easy_auth = true\ntrusted_proxies = ["10.9.9.9"]\n'
    with serving(sweeper, elsewhere) as console:
        browser = console.browser()
        for path in ("/incidents", "/incidents/1/export"):
            answer = browser.get(path, headers=forged, follow_redirects=False)
            assert answer.status_code in (302, 303, 401, 403), (path, answer.status_code)
            assert "@" not in answer.text  # no address, masked or not
    sweeper.config.write_text(settings)
    through = 'easy_auth = true\ntrusted_proxies = ["127.0.0.1"]\n'
    with serving(sweeper, through) as console:
        assert console.browser().get("/incidents", headers=forged).status_code == 200


@pytest.mark.parametrize(
    ("peer", "header", "audited"),
    [
        ("127.0.0.1", "203.0.113.9", "127.0.0.1"),  # loopback is no proxy unless named
        ("10.1.0.4", "203.0.113.9", "203.0.113.9"),
        ("10.1.0.4", "203.0.113.9, 10.1.0.7", "203.0.113.9"),
        ("10.1.0.4", "198.51.100.1,203.0.113.9", "203.0.113.9"),
        ("10.1.0.4", "2001:db8::5", "2001:db8::5"),
        ("10.1.0.4", "10.1.0.9", "10.1.0.9"),  # only proxies: the farthest of them
        ("10.1.0.4", "forged, 10.1.0.9", "10.1.0.9"),
        ("10.1.0.4", "", "10.1.0.4"),
        ("10.1.0.4", "203.0.113.9:52011", "203.0.113.9"),  # App Service writes the port
        ("10.1.0.4", "[2001:db8::5]:52011", "2001:db8::5"),
    ],
)
def test_the_audited_address_is_the_nearest_one_no_trusted_proxy_added(
    peer: str, header: str, audited: str
) -> None:
    import asyncio

    from sweeper.console.middleware import ForwardedFor, networks

    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["client"][0])

    headers = [(b"x-forwarded-for", header.encode())] if header else []
    scope = {"type": "http", "client": (peer, 5000), "headers": headers}
    middleware = ForwardedFor(app, trusted=networks(["10.1.0.0/24"]))
    asyncio.run(middleware(scope, None, None))  # type: ignore[arg-type]

    assert seen == [audited]
