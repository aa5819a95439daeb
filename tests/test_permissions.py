"""One list of Graph permissions (sweeper.graph.permissions): doctor checks the token against
it, and the app registration script and the READMEs that list the permissions name exactly
the same ones."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sweeper.commands import doctor
from sweeper.fakegraph.server import ROLES
from sweeper.graph.permissions import BROADER, MAIL_SEND, NAMES, NEEDED

ROOT = Path(__file__).parent.parent
TABLES = [ROOT / "deploy" / "README.md", ROOT / "deploy" / "app-registration" / "README.md"]
# A Graph permission as the docs write it: `Mail.ReadBasic.All`, `User.Read.All`, `Mail.Send`.
# The console's sign-in asks for no delegated Graph permission: the docs say so, naming it.
SAID_NOT_ASKED = {"User.Read"}
NAMED = re.compile(r"`((?:Mail|User|Domain|Directory|MailboxSettings)\.[A-Za-z.]+)`")


def test_the_app_registration_script_asks_for_exactly_the_list() -> None:
    script = (ROOT / "deploy" / "app-registration" / "create-app.sh").read_text(encoding="utf-8")
    asked = re.search(r"^PERMISSIONS=\(([^)]*)\)", script, re.MULTILINE)

    assert asked is not None
    assert tuple(asked.group(1).split()) == NAMES


@pytest.mark.parametrize("path", TABLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_readme_table_of_permissions_names_exactly_the_list(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    table = text[text.index("| permission | why |") :].split("\n\n")[0]
    rows = re.findall(r"^\| `([^`]+)` \|", table, re.MULTILINE)

    assert tuple(rows) == NAMES


def test_the_docs_name_no_permission_outside_the_list_or_the_broader_ones() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md")), *TABLES]
    named = {name for page in pages for name in NAMED.findall(page.read_text(encoding="utf-8"))}

    assert named  # the pattern still finds them
    known = set(NAMES) | set(BROADER) | SAID_NOT_ASKED
    assert named <= known, named - known


def test_doctor_checks_the_token_against_the_list() -> None:
    everything = doctor.permission_checks(list(NAMES), graph_digest=True)
    without_one = doctor.permission_checks([n for n in NEEDED if n != NAMES[0]], False)

    assert [c.ok for c in everything] == [True, True, True]
    assert everything[0].detail == f"granted {', '.join(NEEDED)}"
    assert not without_one[0].ok and NAMES[0] in without_one[0].detail
    assert MAIL_SEND not in NEEDED and set(NEEDED) | {MAIL_SEND} == set(NAMES)


def test_the_local_graph_grants_the_list() -> None:
    assert set(ROLES) == set(NAMES)
