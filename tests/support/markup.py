"""Reading what the output layers wrote: CSV records, and rendered HTML or Markdown."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from html.parser import HTMLParser

import cmarkgfm
from cmarkgfm.cmark import Options

FORMULA = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def first_visible(cell: str) -> str:
    return next((c for c in cell if not (c.isspace() or unicodedata.category(c) == "Cf")), "")


def assert_csv_whole(text: str, columns: int) -> list[list[str]]:
    """Every record of ``text`` on a line of its own, whole, with no live formula."""
    parsed = list(csv.reader(io.StringIO(text)))
    lines = [line for line in re.split(r"[\r\n]", text) if line]
    assert len(lines) == len(parsed)
    for line, record in zip(lines, parsed, strict=True):
        assert len(record) == columns
        assert next(csv.reader([line])) == record  # the line alone is the whole record
        for cell in record:
            assert first_visible(cell) not in FORMULA or cell.startswith("'"), cell
            assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", cell)
    return parsed


class Rendered(HTMLParser):
    """The tags and the text of rendered HTML."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text = ""
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text += data


def gfm(source: str) -> str:
    """GitHub's renderer, raw HTML let through: the escaping alone must keep it inert."""
    html: str = cmarkgfm.github_flavored_markdown_to_html(source, options=Options.CMARK_OPT_UNSAFE)
    return html
