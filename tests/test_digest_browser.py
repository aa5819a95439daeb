"""The digest and the breach worksheet as a person sees them: rendered by a real Chromium at
desktop and phone widths.

CI installs Chromium from Debian's packages (see .ci/run). Elsewhere, without a Chromium,
these tests are skipped with a message saying how to install one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from support.browser import CHROMIUM, OVERFLOW, chromium
from support.runner import Sweeper

from sweeper import store
from sweeper.present.render import render_html
from sweeper.store.digests import build

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium on this machine: install it with `apt-get install chromium` "
    "(CI does) to run the browser tests",
)


@pytest.fixture
def browser(digest_file: Path) -> Iterator[Any]:
    """Started after the digest is made: Playwright keeps an event loop in this thread."""
    yield from chromium()


@pytest.fixture
def worksheet_browser(worksheet_file: Path) -> Iterator[Any]:
    """Started after the worksheet is made, as :func:`browser`."""
    yield from chromium()


@pytest.fixture
def digest_file(sweeper: Sweeper, tmp_path: Path) -> Path:
    sweeper.with_digest()
    assert sweeper.run("sweep").exit_code == 0
    out = tmp_path / "digest.html"
    assert sweeper.run("digest", "--out", str(out)).exit_code == 0
    return out


@pytest.fixture
def worksheet_file(sweeper: Sweeper, tmp_path: Path) -> Path:
    """The worksheet of the 2012 survey replay, confirmed as a breach, in the UK's zone."""
    text = sweeper.config.read_text()
    sweeper.config.write_text(
        text.replace("[organisation]", '[organisation]\ntimezone = "Europe/London"')
    )
    assert sweeper.run("sweep").exit_code == 0
    survey = next(i["id"] for i in sweeper.incidents() if i["subject"].startswith("Victim sat"))
    for status in ("acknowledged", "confirmed"):
        step = ("incident", "set", str(survey), status, "--note", "n", "--by", "DPO")
        assert sweeper.run(*step).exit_code == 0
    out = tmp_path / "worksheet.html"
    result = sweeper.run("incident", "report", str(survey), "--format", "html", "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def opened(browser: Any, page_file: Path, width: int, height: int) -> tuple[Any, list[str]]:
    """The file opened at ``width`` x ``height``, and every URL the page requested."""
    page = browser.new_page(viewport={"width": width, "height": height})
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(page_file.as_uri())
    return page, requests


@pytest.mark.parametrize(("width", "height"), [(1280, 900), (375, 740)])
def test_the_digest_fits_the_screen(
    browser: Any, digest_file: Path, width: int, height: int
) -> None:
    page, requests = opened(browser, digest_file, width, height)

    layout = page.evaluate(OVERFLOW)

    assert layout["scroll"] <= width, layout
    assert layout["wide"] == []
    assert requests == [digest_file.as_uri()]  # nothing fetched from anywhere else
    verdict = page.locator("body").inner_text().splitlines()[0]
    assert verdict.endswith("new incidents need review, 3 critical")
    page.close()


@pytest.fixture
def repeat_file(sweeper: Sweeper, tmp_path: Path) -> Path:
    """A digest sent again after its first sending was cut off (SMTP: nothing to look at)."""
    assert sweeper.run("sweep").exit_code == 0
    db = store.open_db(sweeper.db)
    digest = replace(build(db, datetime.now(UTC)), repeat_of="2026-12-02T05:30:00Z")
    out = tmp_path / "repeat.html"
    out.write_text(render_html(digest, store.verified_domains(db)))
    return out


@pytest.fixture
def repeat_browser(repeat_file: Path) -> Iterator[Any]:
    """Started after the digest is made, as :func:`browser`."""
    yield from chromium()


@pytest.mark.parametrize(("width", "height"), [(1280, 900), (375, 740)])
def test_a_possible_repeat_says_so_and_fits_the_screen(
    repeat_browser: Any, repeat_file: Path, width: int, height: int
) -> None:
    page, requests = opened(repeat_browser, repeat_file, width, height)

    layout = page.evaluate(OVERFLOW)

    assert layout["scroll"] <= width and layout["wide"] == [], layout
    assert requests == [repeat_file.as_uri()]
    notice = page.get_by_text("Possibly a repeat.")
    assert notice.is_visible()
    page.close()


def test_the_verdict_is_the_first_thing_on_a_phone(browser: Any, digest_file: Path) -> None:
    page = browser.new_page(viewport={"width": 375, "height": 740})
    page.goto(digest_file.as_uri())
    box = page.get_by_text("new incidents need review").first.bounding_box()
    assert box is not None and box["y"] < 100
    cards = page.locator("text=/Incident \\d+:/").count()
    assert cards >= 8
    page.close()


@pytest.mark.parametrize(("width", "height"), [(1280, 900), (375, 740)])
def test_the_worksheet_fits_the_screen_and_shows_both_deadlines(
    worksheet_browser: Any, worksheet_file: Path, width: int, height: int
) -> None:
    page, requests = opened(worksheet_browser, worksheet_file, width, height)

    layout = page.evaluate(OVERFLOW)
    clock = page.locator("tr.clock").all_inner_texts()

    assert layout["scroll"] <= width, layout
    assert requests == [worksheet_file.as_uri()]
    assert len(clock) == 2
    assert clock[0].startswith("Deadline, conservative (72 hours from detection)")
    assert clock[1].startswith("Deadline from confirmation (72 hours)")
    assert all(text.endswith("Europe/London (+00:00)") for text in clock)
    headings = page.locator("h2").all_inner_texts()
    assert headings[1] == "2. Timeline and the Article 33 clock" and len(headings) == 9
    page.close()
