"""The way in stays true: the README's links, its command list, and CONTRIBUTING.md's paths.

The docs/ pages are checked by `mkdocs build --strict` (`make docs`): a broken link or anchor
between them fails there. These tests cover what MkDocs does not build: README.md, whose
links point into docs/, and CONTRIBUTING.md, which names where things go.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from sweeper.cli import main

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
CONTRIBUTING = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")

LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\s]+)`")
FILE_SUFFIXES = (".py", ".md", ".toml", ".sh", ".txt", ".yml", ".j2", ".css", ".json", ".ps1")


def heading_anchors(markdown: str) -> set[str]:
    """The anchors of a page's headings, as MkDocs' table of contents (and GitHub) make them."""
    anchors = set()
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (heading := re.match(r"#{1,6} (.+)", line)):
            text = unicodedata.normalize("NFKD", heading[1].replace("`", ""))
            text = re.sub(r"[^\w\s-]", "", text.encode("ascii", "ignore").decode()).strip()
            anchors.add(re.sub(r"[-\s]+", "-", text.lower()))
    return anchors


def relative_links(markdown: str) -> list[str]:
    return [link for link in LINK.findall(markdown) if not re.match(r"[a-z]+:", link)]


@pytest.mark.parametrize("link", relative_links(README))
def test_every_relative_link_of_the_readme_reaches_a_file_and_its_heading(link: str) -> None:
    path, _, anchor = link.partition("#")
    target = ROOT / path if path else ROOT / "README.md"
    assert target.is_file(), f"README links to {path}, which does not exist"
    if anchor:
        assert anchor in heading_anchors(target.read_text(encoding="utf-8")), link


def test_the_readme_stays_a_way_in() -> None:
    assert len(README.splitlines()) <= 300
    assert "pip install sweeper-m365" in README


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_command_has_a_line_in_the_readme(name: str) -> None:
    commands = README.split("\n## Commands\n")[1].split("\n## ")[0]
    assert f"[`sweeper {name}`](docs/" in commands


def named_paths(markdown: str) -> list[str]:
    """Code spans that name a file or folder of the repository."""
    return sorted(
        {
            span
            for span in CODE_SPAN.findall(markdown)
            if re.fullmatch(r"[\w./-]+", span)
            and ("/" in span or span.endswith(FILE_SUFFIXES))
            and not span.startswith(("-", "."))
        }
    )


@pytest.mark.parametrize("path", named_paths(CONTRIBUTING))
def test_every_path_contributing_names_exists(path: str) -> None:
    # A short name in the rings' table (`when.py`, `store/migrations.py`) is under sweeper/.
    assert (ROOT / path).exists() or (ROOT / "sweeper" / path).exists(), path
