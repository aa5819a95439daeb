"""The console as the DPO and a viewer use it: a real Chromium, signed in through the local
Entra ID, at phone and desktop widths, with the keyboard where a person would use it.

Skipped without a Chromium, as the digest's browser tests are (CI installs one).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.browser import CHROMIUM, OVERFLOW, chromium
from support.console import HOSTILE, Console, serving
from support.digest import swept_with_subject
from support.runner import Sweeper

from sweeper.fakegraph.tenant import CONSOLE_DPO, CONSOLE_VIEWER

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium on this machine: install it with `apt-get install chromium` "
    "(CI does) to run the browser tests",
)
REPLAY = "Victim satisfaction survey - your views"


@pytest.fixture
def console(sweeper: Sweeper, tmp_path: Path) -> Iterator[Console]:
    swept_with_subject(sweeper, "hostile", HOSTILE, tmp_path)
    with serving(sweeper) as running:
        yield running


@pytest.fixture
def browser(console: Console) -> Iterator[Any]:
    """Started after the console: Playwright keeps an event loop in this thread."""
    yield from chromium()


def signed_in(browser: Any, console: Console, upn: str, path: str, width: int) -> Any:
    """A page of the console at ``path``, reached through sign-in as ``upn``."""
    console.sweeper.fake.sign_in_as = upn
    # The local Entra ID's certificate comes from a throwaway CA the browser does not know.
    context = browser.new_context(
        viewport={"width": width, "height": 900}, ignore_https_errors=True, accept_downloads=True
    )
    page = context.new_page()
    page.blocked: list[str] = []  # type: ignore[attr-defined]
    page.on(
        "console",
        lambda message: (
            page.blocked.append(message.text)  # type: ignore[attr-defined]
            if "Content Security Policy" in message.text
            else None
        ),
    )
    page.goto(f"{console.url}{path}")
    assert page.url == f"{console.url}{path}", page.content()[:500]
    return page


def replay_id(console: Console) -> int:
    rows = console.sweeper.rows("select id from incidents where subject = ?", [REPLAY])
    return int(rows[0]["id"])


@pytest.mark.parametrize("width", [375, 1280])
def test_the_dpo_reveals_triages_to_a_confirmed_breach_and_downloads_the_export(
    browser: Any, console: Console, tmp_path: Path, width: int
) -> None:
    incident = replay_id(console)
    page = signed_in(browser, console, CONSOLE_DPO, f"/incidents/{incident}", width)

    assert page.get_by_role("heading", level=1).inner_text() == f"#{incident} {REPLAY}"
    people = page.locator("table").last
    assert "***@" in people.inner_text()
    layout = page.evaluate(OVERFLOW)
    assert layout["scroll"] <= width, layout["wide"][:5]
    page.screenshot(path=str(tmp_path / f"incident-{width}.png"), full_page=True)

    reveal = page.get_by_role("button", name="Reveal addresses (recorded)")
    reveal.focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")  # the keyboard alone reveals
    assert "***@" not in page.locator("table").last.inner_text()
    for step in ("acknowledged", "confirmed"):
        page.get_by_label("Next step").select_option(step)
        page.get_by_label("Note").fill(f"{step} in the console")
        with page.expect_navigation():
            page.get_by_role("button", name="Record the step").click()
    assert "acknowledged → confirmed by margaret.osei@northwick.example" in page.content()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the people to notify (CSV, recorded)").click()
    saved = tmp_path / f"people-{width}.csv"
    download.value.save_as(saved)
    lines = saved.read_text().splitlines()
    assert lines[0].startswith('"address","name"') and len(lines) == 1136 + 1
    page.screenshot(path=str(tmp_path / f"incident-confirmed-{width}.png"), full_page=True)
    assert (tmp_path / f"incident-{width}.png").stat().st_size > 10_000
    assert page.blocked == []  # type: ignore[attr-defined]

    actions = [r["action"] for r in console.sweeper.rows(
        "select action from console_audit where incident_id = ? order by id", [incident]
    )]  # fmt: skip
    assert actions == ["reveal", "triage", "triage", "export"]


@pytest.mark.parametrize("width", [375, 1280])
def test_a_viewer_sees_the_list_and_the_incident_masked_and_no_way_to_act(
    browser: Any, console: Console, tmp_path: Path, width: int
) -> None:
    page = signed_in(browser, console, CONSOLE_VIEWER, "/incidents", width)

    assert page.get_by_role("link", name=f"#{replay_id(console)} {REPLAY}").is_visible()
    hostile = page.get_by_text('<script>alert("console")</script>', exact=False)
    assert hostile.count() == 1  # shown as text, never run
    assert page.evaluate(OVERFLOW)["scroll"] <= width
    page.screenshot(path=str(tmp_path / f"incidents-{width}.png"), full_page=True)
    with page.expect_navigation():
        page.get_by_role("link", name=f"#{replay_id(console)} {REPLAY}").click()

    assert "***@" in page.locator("table").last.inner_text()
    assert page.get_by_role("button", name="Reveal addresses (recorded)").count() == 0
    assert page.get_by_role("button", name="Record the step").count() == 0
    assert page.get_by_text("Download the people to notify").count() == 0
    assert page.blocked == []  # type: ignore[attr-defined]
    assert console.sweeper.rows("select * from console_audit") == []
