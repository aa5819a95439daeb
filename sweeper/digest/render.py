"""The digest as an email: HTML for mail clients (CSS inlined, tables, no scripts, no
remote images) and a plain-text alternative.

One template environment for everything sweeper renders. Autoescaping is on for every
template (HTML, and Markdown, which viewers render as HTML) but the plain-text ones, where
an entity would show as ``&amp;``; in all of them a value's control characters and line
breaks become spaces, so that a subject cannot forge lines of a digest or a worksheet.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import css_inline
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from .model import Digest


def when(value: str | None) -> str:
    """``2026-11-21T16:31:02Z`` → ``21 Nov 2026 16:31 UTC``."""
    if not value:
        return "unknown"
    return datetime.fromisoformat(value).strftime("%d %b %Y %H:%M UTC").lstrip("0")


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def one_line(value: Any) -> Any:
    """A value as printed by a template: text without control characters or line breaks."""
    return _CONTROL.sub(" ", value) if isinstance(value, str) else value


def environment() -> Environment:
    """Templates from ``sweeper/templates``: all autoescaped but ``*.txt.j2``."""
    env = Environment(
        loader=PackageLoader("sweeper", "templates"),
        autoescape=select_autoescape(
            enabled_extensions=("html.j2", "md.j2"), disabled_extensions=("txt.j2",), default=True
        ),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        finalize=one_line,
    )
    env.filters["when"] = when
    return env


TEMPLATES = environment()
_INLINER = css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)


def render_html(digest: Digest) -> str:
    return str(_INLINER.inline(TEMPLATES.get_template("digest.html.j2").render(digest=digest)))


def render_text(digest: Digest) -> str:
    return TEMPLATES.get_template("digest.txt.j2").render(digest=digest)
