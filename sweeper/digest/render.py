"""The digest as an email: HTML for mail clients (CSS inlined, tables, no scripts, no
remote images) and a plain-text alternative. Jinja2 autoescapes everything in the HTML."""

from __future__ import annotations

from datetime import datetime

import css_inline
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from .model import Digest


def when(value: str | None) -> str:
    """``2026-11-21T16:31:02Z`` → ``21 Nov 2026 16:31 UTC``."""
    if not value:
        return "unknown"
    return datetime.fromisoformat(value).strftime("%d %b %Y %H:%M UTC").lstrip("0")


def environment(html: bool) -> Environment:
    """Templates from ``sweeper/templates``: ``*.html.j2`` always autoescaped."""
    env = Environment(
        loader=PackageLoader("sweeper", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=html),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["when"] = when
    return env


_HTML = environment(html=True)
_TEXT = environment(html=False)
_INLINER = css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)


def render_html(digest: Digest) -> str:
    return str(_INLINER.inline(_HTML.get_template("digest.html.j2").render(digest=digest)))


def render_text(digest: Digest) -> str:
    return _TEXT.get_template("digest.txt.j2").render(digest=digest)
