"""The DPO's console, served by uvicorn on loopback, signed in through the local Entra ID
with the real MSAL, driven over HTTP as a browser would (cookies, redirects, forms).

The demo tenant's Margaret Osei holds Sweeper.DPO, Tomasz Reid Sweeper.Viewer; nobody else
holds a role.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from itsdangerous import TimestampSigner
from support.console import HOSTILE, KEY, Console, principal, serving
from support.digest import swept_with_subject
from support.runner import Sweeper, write_config

from sweeper.console.serve import bind
from sweeper.console.web import COOKIE, create_app
from sweeper.fakegraph.tenant import CONSOLE_DPO, CONSOLE_VIEWER


@pytest.fixture
def console(sweeper: Sweeper, tmp_path: Path) -> Iterator[Console]:
    swept_with_subject(sweeper, "hostile", HOSTILE, tmp_path)  # sweeps the tenant too
    with serving(sweeper) as running:
        yield running


def test_without_a_session_every_page_sends_to_sign_in(console: Console) -> None:
    browser = console.browser()
    first = console.incident_ids()[0]
    for path in ("/incidents", f"/incidents/{first}", "/health", f"/incidents/{first}/export"):
        answer = browser.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/signin?next=/")
    refused = browser.post(f"/incidents/{first}/triage", data={"status": "acknowledged"})
    assert refused.status_code == 303 and refused.headers["location"].startswith("/signin")


def test_a_dpo_signs_in_reveals_triages_to_a_confirmed_breach_and_downloads(
    console: Console,
) -> None:
    browser = console.browser()
    incident = console.incident_ids()[0]

    landed = console.sign_in(browser, CONSOLE_DPO, f"/incidents/{incident}")
    assert landed.headers["location"] == f"/incidents/{incident}"
    set_cookie = landed.headers["set-cookie"].lower()
    assert set_cookie.startswith(f"{COOKIE}=") and "httponly" in set_cookie
    assert "samesite=lax" in set_cookie and "max-age=1800" in set_cookie
    page = browser.get(f"/incidents/{incident}")
    assert page.status_code == 200 and "Margaret Osei (DPO)" in page.text
    assert "***@" in page.text  # masked until revealed
    domains = console.sweeper.rows(
        "select distinct a.domain from finding_addresses a join findings f on f.id = "
        "a.finding_id where f.incident_id = ? and a.external = 1",
        [incident],
    )
    assert all(d["domain"] in page.text for d in domains[:10])

    revealed = browser.post(f"/incidents/{incident}/reveal", data={"csrf": console.csrf(page)})
    assert revealed.status_code == 200
    assert "***@" not in revealed.text.split("People exposed")[1].split("Triage")[0]
    for step in ("acknowledged", "confirmed"):
        done = browser.post(
            f"/incidents/{incident}/triage",
            data={"csrf": console.csrf(page), "status": step, "note": f"step {step}"},
        )
        assert done.status_code == 303, done.text
    export = browser.get(f"/incidents/{incident}/export")
    assert export.status_code == 200
    assert export.headers["content-disposition"].startswith("attachment;")
    assert export.headers["cache-control"] == "no-store"
    assert export.text.startswith('"address","name","field"')

    status = console.sweeper.rows("select status from incidents where id = ?", [incident])
    assert status[0]["status"] == "confirmed"
    trail = console.sweeper.rows(
        "select who, action, source from console_audit where incident_id = ? order by id",
        [incident],
    )
    assert [(t["who"], t["action"]) for t in trail] == [
        (CONSOLE_DPO, "reveal"),
        (CONSOLE_DPO, "triage"),
        (CONSOLE_DPO, "triage"),
        (CONSOLE_DPO, "export"),
    ]
    assert {t["source"] for t in trail} == {"127.0.0.1"}
    shown = browser.get(f"/incidents/{incident}").text
    assert "Margaret Osei (margaret.osei@northwick.example) from 127.0.0.1: reveal" in shown
    assert "acknowledged → confirmed by margaret.osei@northwick.example" in shown
    sheet = browser.get(f"/incidents/{incident}/worksheet")
    assert sheet.headers["content-disposition"].startswith("attachment;")
    assert "9. Who has seen the people" in sheet.text
    assert "Margaret Osei (margaret.osei@northwick.example) from 127.0.0.1: export" in sheet.text


def test_a_viewer_sees_masked_data_and_cannot_act(console: Console) -> None:
    browser = console.browser()
    incident = console.incident_ids()[0]
    console.sign_in(browser, CONSOLE_VIEWER)

    page = browser.get(f"/incidents/{incident}")
    assert page.status_code == 200 and "Tomasz Reid (viewer)" in page.text
    assert "Reveal addresses" not in page.text and "Record the step" not in page.text
    token = console.csrf(page)  # the sign-out form's: a valid token of this session
    for action, data in (("reveal", {}), ("triage", {"status": "acknowledged"})):
        answer = browser.post(f"/incidents/{incident}/{action}", data={"csrf": token, **data})
        assert answer.status_code == 403, action
    assert browser.get(f"/incidents/{incident}/export").status_code == 403
    assert console.sweeper.rows("select * from console_audit") == []


def test_someone_without_a_role_is_not_let_in(console: Console) -> None:
    browser = console.browser()

    answer = console.sign_in(browser, "victim.care@northwick.example")

    assert answer.status_code == 403
    assert "has no sweeper role" in answer.text
    assert browser.get("/incidents").status_code == 303  # still signed out


@pytest.mark.parametrize(
    "cookie",
    [
        "forged." + "x" * 40,
        TimestampSigner("another-key")
        .sign(b"eyJ1cG4iOiAiZHBvQG5vcnRod2ljay5leGFtcGxlIn0=")
        .decode(),
    ],
    ids=["not signed", "signed with another key"],  # the same in every test process
)
def test_a_forged_cookie_is_no_session(console: Console, cookie: str) -> None:
    browser = console.browser()
    browser.cookies.set(COOKIE, cookie)

    assert browser.get("/incidents").status_code == 303


def test_a_session_older_than_its_lifetime_is_over(console: Console) -> None:
    browser = console.browser()
    console.sign_in(browser, CONSOLE_DPO)
    assert browser.get("/incidents").status_code == 200
    with sqlite3.connect(console.sweeper.db) as db:  # as if signed in 31 minutes ago
        db.execute("update console_sessions set expires_at = '2000-01-01T00:00:00+00:00'")
    forged = _session_cookie(
        {"upn": CONSOLE_DPO, "name": "M", "role": "dpo", "csrf": "t", "since": time.time()}
    )  # the cookie of the old design

    assert browser.get("/incidents").status_code == 303
    browser.cookies.set(COOKIE, forged)
    assert browser.get("/incidents").status_code == 303


def test_a_post_without_this_sessions_form_token_is_refused(console: Console) -> None:
    browser = console.browser()
    incident = console.incident_ids()[0]
    console.sign_in(browser, CONSOLE_DPO)

    for data in ({"status": "acknowledged"}, {"status": "acknowledged", "csrf": "guess"}):
        answer = browser.post(f"/incidents/{incident}/triage", data=data)
        assert answer.status_code == 403
    status = console.sweeper.rows("select status from incidents where id = ?", [incident])
    assert status[0]["status"] == "new"


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"]
)
def test_sign_in_never_sends_anyone_to_another_site(console: Console, target: str) -> None:
    landed = console.sign_in(console.browser(), CONSOLE_DPO, target)

    assert landed.headers["location"] == "/incidents"


def test_a_script_in_a_subject_is_shown_as_text(console: Console) -> None:
    browser = console.browser()
    console.sign_in(browser, CONSOLE_DPO)
    row = console.sweeper.rows("select id from incidents where subject like '%<script>%'")

    listing = browser.get("/incidents").text
    page = browser.get(f"/incidents/{row[0]['id']}").text

    for html in (listing, page):
        assert "<script" not in html and "<img" not in html
        assert "&lt;script&gt;alert(" in html


def test_every_answer_carries_the_security_headers(console: Console) -> None:
    browser = console.browser()
    console.sign_in(browser, CONSOLE_DPO)

    for path in ("/incidents", "/health", "/static/console.css", "/signed-out", "/nowhere"):
        headers = browser.get(path).headers
        assert "script-src" not in headers["content-security-policy"]
        assert "default-src 'none'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["cache-control"] == "no-store"
        assert "strict-transport-security" not in headers  # http on loopback: no HSTS


def test_sign_out_ends_the_session(console: Console) -> None:
    browser = console.browser()
    console.sign_in(browser, CONSOLE_DPO)
    page = browser.get("/incidents")

    out = browser.post("/signout", data={"csrf": console.csrf(page)})

    assert out.headers["location"] == "/signed-out"
    assert browser.get("/incidents").status_code == 303


def test_the_console_refuses_to_start_without_its_url_or_on_a_port_in_use(
    sweeper: Sweeper,
) -> None:
    sweeper.run("sweep")
    missing = sweeper.run("console")
    assert missing.exit_code == 2
    assert missing.output.strip().endswith("console.url: must be set: the console's address, "
                                           "whose /auth/callback is registered as the app's "
                                           "redirect URI (deploy/app-registration)")  # fmt: skip
    taken = bind("127.0.0.1", 0)
    port = taken.getsockname()[1]
    write_config(
        sweeper.config, sweeper.config.read_text() + '\n[console]\nurl = "http://127.0.0.1:1"\n'
    )
    busy = sweeper.run("console", "--port", str(port))
    taken.close()
    assert busy.exit_code == 2
    assert f"console.port: {port} on 127.0.0.1 is in use by another program" in busy.output
    assert "Traceback" not in busy.output


def _session_cookie(session: dict[str, Any]) -> str:
    """A cookie the console itself would have signed (its test key), with ``session``."""
    import base64
    import json

    data = base64.b64encode(json.dumps(session).encode())
    return TimestampSigner(KEY).sign(data).decode()


def test_easy_auths_header_is_ignored_unless_the_setting_trusts_it(console: Console) -> None:
    header = {"X-MS-CLIENT-PRINCIPAL": principal(CONSOLE_DPO, "Sweeper.DPO")}

    assert console.browser().get("/incidents", headers=header).status_code == 303


def test_behind_easy_auth_its_header_says_who_is_signed_in(sweeper: Sweeper) -> None:
    sweeper.run("sweep")
    with serving(sweeper, "easy_auth = true\n") as console:
        browser = console.browser()
        viewer = {"X-MS-CLIENT-PRINCIPAL": principal(CONSOLE_VIEWER, "Sweeper.Viewer")}
        nobody = {"X-MS-CLIENT-PRINCIPAL": principal("someone@northwick.example")}

        page = browser.get("/incidents", headers=viewer)
        assert page.status_code == 200 and "Someone (viewer)" in page.text
        assert browser.get("/incidents", headers=nobody).status_code == 303
        assert browser.get("/incidents").status_code == 303
        login = browser.get("/signin", params={"next": "/health"})
        assert login.headers["location"] == "/.auth/login/aad?post_login_redirect_uri=/health"


@pytest.mark.slow
def test_the_demos_console_signs_in_its_dpo_on_the_demo_database(tmp_path: Path) -> None:
    """`make demo` says to run `sweeper demo --console`: a real process, a real sign-in."""
    import os
    import signal
    import subprocess
    import sys

    from click.testing import CliRunner

    from sweeper.cli import main

    env = {**os.environ, "SWEEPER_DB": str(tmp_path / "demo.db")}
    made = CliRunner().invoke(main, ["demo", "--users", "12", "--reports", str(tmp_path)], env=env)
    assert "`sweeper demo --console`" in made.output
    port = bind("127.0.0.1", 0)
    number = port.getsockname()[1]
    port.close()
    served = subprocess.Popen(
        [sys.executable, "-m", "sweeper", "demo", "--users", "12", "--console", "--port",
         str(number)],
        env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert served.stdout is not None
        assert served.stdout.readline().startswith(f"Console: http://127.0.0.1:{number}/")
        browser = httpx.Client(base_url=f"http://127.0.0.1:{number}")
        start = browser.get("/signin")
        # The local Entra ID's own throwaway CA: this test checks the round, not its TLS.
        entra = httpx.get(start.headers["location"], verify=False)  # noqa: S501
        landed = browser.get(entra.headers["location"].split(str(number), 1)[1])
        page = browser.get(landed.headers["location"])
        assert page.status_code == 200
        assert "Margaret Osei (DPO)" in page.text
        assert "Victim satisfaction survey" in page.text
    finally:
        served.send_signal(signal.SIGINT)
        served.wait(15)


def test_over_https_cookies_are_secure_and_hsts_is_sent(tmp_path: Path) -> None:
    """Unit test of the app alone (called in process through httpx's ASGI transport)."""
    import asyncio

    from sweeper.settings import Settings
    from sweeper.settings.console import ConsoleSettings

    secure = ConsoleSettings(url="https://dpo.northwick.example", easy_auth=True)
    app = create_app(Settings(console=secure, database=tmp_path / "x.db"), {})

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=secure.url or "") as client:
            return await client.get("/signed-out")

    answer = asyncio.run(get())

    assert answer.headers["strict-transport-security"] == "max-age=31536000"
    assert "secure" in answer.headers["set-cookie"].lower()


def test_names_of_the_people_exposed_are_masked_until_the_dpo_reveals_them(
    sweeper: Sweeper, tmp_path: Path
) -> None:
    """Issue 24, item 4: beside a masked free-mail address a full name identifies the
    person; it is masked for every role until the recorded reveal."""
    names = ["Amira Ahmed", "Jonas Berglund"]
    swept_with_subject(sweeper, "named", "Parents evening", tmp_path, names=names)
    with serving(sweeper) as console:
        row = sweeper.rows("select id from incidents where subject = 'Parents evening'")
        incident = row[0]["id"]
        viewer, dpo = console.browser(), console.browser()
        console.sign_in(viewer, CONSOLE_VIEWER)
        console.sign_in(dpo, CONSOLE_DPO)

        seen = [
            b.get(p).text for b in (viewer, dpo) for p in ("/incidents", f"/incidents/{incident}")
        ]
        sheet = dpo.get(f"/incidents/{incident}/worksheet").text
        for text in (*seen, sheet):
            assert not any(name in text for name in names)
            assert "Amira" not in text and "Berglund" not in text
        assert "<td>r***@gmail.com</td><td>A***</td>" in seen[1]
        assert "<td>r***@gmail.com</td><td>J***</td>" in seen[3]

        page = dpo.get(f"/incidents/{incident}")
        revealed = dpo.post(f"/incidents/{incident}/reveal", data={"csrf": console.csrf(page)})
        assert "<td>reader0@gmail.com</td><td>Amira Ahmed</td>" in revealed.text
        assert "<td>reader1@gmail.com</td><td>Jonas Berglund</td>" in revealed.text
        trail = sweeper.rows(
            "select who, action, detail from console_audit where incident_id = ?", [incident]
        )
        assert [(t["action"], t["detail"]) for t in trail] == [
            ("worksheet", "worksheet (HTML)"),
            ("reveal", "exposed addresses and names shown"),
        ]
        assert not any(n in dpo.get(f"/incidents/{incident}").text for n in names)  # once only


def test_one_masking_of_names_for_every_template() -> None:
    from sweeper.addresses import DisplayName, mask_name
    from sweeper.present.render import render

    assert mask_name("Amira Ahmed") == "A***" and mask_name(" ") == "" and mask_name(None) == ""
    assert mask_name('"Émile" Zola') == "É***"
    person = {"address": "a@x.example", "name": DisplayName("Amira Ahmed"), "field": "to",
              "messages": 1}  # fmt: skip
    html = render("console/message.html.j2", person=None, csrf="", title="t",
                  text=person["name"])  # fmt: skip
    assert "A***" in html and "Amira" not in html
    shown = render("console/message.html.j2", reveal=True, person=None, csrf="", title="t",
                   text=person["name"])  # fmt: skip
    assert "Amira Ahmed" in shown
