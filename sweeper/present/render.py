"""The digest as an email: HTML for mail clients (CSS inlined, tables, no scripts, no
remote images) and a plain-text alternative; and the template environment behind it.

One template environment for everything sweeper renders, with one rule for every value a
template prints (``{{ ... }}``), applied by the environment's ``finalize`` so that no
template can forget it (see :mod:`sweeper.present.escape` for the layers):

1. its control characters and line breaks become spaces, so a subject cannot forge lines;
2. any address outside the organisation's domains is masked (``j***@gmail.com``), and so is
   the display name of anyone exposed (a :class:`~sweeper.addresses.DisplayName`: ``A***``);
3. bidirectional controls are shown as ``[U+202E]``, so a name cannot reorder the text;
4. it is escaped for the template's format: HTML (``*.html.j2``), Markdown (``*.md.j2``,
   Markdown escaping, never HTML entities), nothing for plain text (``*.txt.j2``).

Jinja's autoescaping is on for every template, plain text and Markdown included, for one
reason: it marks what a template wrote itself (a macro's output, an included template) as
finished text, which ``finalize`` passes through whole. A macro's lines therefore keep
their line breaks, while every value inside the macro went through the rule above.
Templates must not use ``|safe``, ``|e``, ``~`` or ``Markup`` on values: those would turn a
value into finished text (a test keeps the templates free of them).

The organisation's domains reach ``finalize`` as a variable of the render
(:data:`INTERNAL`); a render without it masks every address. As a second line, the whole
rendered text is masked once more (masking is idempotent).

Moments are stored in UTC and shown by the ``when`` filter in the organisation's time zone
(``organisation.timezone``, the render variable :data:`ZONE`), the zone named beside each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import css_inline
from jinja2 import Environment, PackageLoader, StrictUndefined, pass_context
from jinja2.runtime import Context
from markupsafe import Markup, escape

from sweeper.addresses import DisplayName, mask_name
from sweeper.present.escape import internal_domains, mark_bidi, markdown, mask_addresses, one_line
from sweeper.rules.alerts import Alert
from sweeper.rules.digest import Digest
from sweeper.when import shown_in

INTERNAL = "sweeper_internal_domains"
"""The render variable holding the organisation's domains (normalised), for masking."""
ZONE = "sweeper_time_zone"
"""The render variable holding the IANA zone moments are shown in."""
REVEAL = "sweeper_reveal"
"""The render variable that, true, leaves addresses and the names of the people exposed
whole: only the console sets it, for a DPO who asked to see them (and was recorded doing
so, :mod:`sweeper.store.audit`)."""


@pass_context
def _when(context: Context, value: str | None) -> str:
    """``{{ moment | when }}``: shown in the render's zone (:func:`sweeper.when.shown_in`)."""
    return shown_in(value, context.get(ZONE) or "UTC")


def _html(text: str) -> str:
    return str(escape(text))


def _plain(text: str) -> str:
    return text


_ESCAPES: dict[str, Callable[[str], str]] = {
    ".html.j2": _html,
    ".md.j2": markdown,
    ".txt.j2": _plain,
}


def escape_for(template_name: str | None) -> Callable[[str], str]:
    """The escaping of a template's format, by its name; HTML for any other name."""
    name = template_name or ""
    return next((f for end, f in _ESCAPES.items() if name.endswith(end)), _html)


def clean(text: str, internal: Iterable[str]) -> str:
    """A value as any template prints it, before its format's escaping (steps 1-3)."""
    return mark_bidi(mask_addresses(one_line(text), internal))


@pass_context
def finalize(context: Context, value: Any) -> Markup:
    """What ``{{ value }}`` prints: a template's own output whole, any value made safe."""
    if isinstance(value, Markup):  # a macro's output or other text the template wrote
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Markup(value)  # a count or a share: nothing to clean or escape
    if context.get(REVEAL):
        return Markup(escape_for(context.name)(mark_bidi(one_line(str(value)))))
    text = mask_name(value) if isinstance(value, DisplayName) else str(value)
    internal = context.get(INTERNAL) or frozenset()
    return Markup(escape_for(context.name)(clean(text, internal)))


def environment() -> Environment:
    """Templates from ``sweeper/templates``, every value printed through :func:`finalize`."""
    env = Environment(
        loader=PackageLoader("sweeper", "templates"),
        autoescape=True,  # marks template output as finished; see the module's docstring
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        finalize=finalize,
    )
    env.filters["when"] = _when
    return env


TEMPLATES = environment()
_INLINER = css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)


def render(
    name: str,
    internal: Iterable[str] = (),
    zone: str = "UTC",
    *,
    reveal: bool = False,
    **values: Any,
) -> str:
    """Template ``name`` rendered with ``values``; addresses outside ``internal`` masked
    unless ``reveal``, moments shown in ``zone``."""
    domains = internal_domains(internal)
    variables = {INTERNAL: domains, ZONE: zone, REVEAL: reveal}
    text = TEMPLATES.get_template(name).render(**values, **variables)
    return text if reveal else mask_addresses(text, domains)


def render_html(
    digest: Digest, internal: Iterable[str] = (), zone: str = "UTC", console: str | None = None
) -> str:
    """The digest's HTML, CSS inlined; ``internal``: the domains whose addresses stay whole;
    ``zone``: the IANA zone its moments are shown in; ``console``: the console's address
    (``console.url``), whose page of each incident its title links to."""
    html = render("digest.html.j2", internal, zone, digest=digest, console=console)
    return str(_INLINER.inline(html))


def render_alert_mail(
    alert: Alert, internal: Iterable[str] = (), zone: str = "UTC"
) -> tuple[str, str]:
    """An alert's short mail: its HTML (CSS inlined) and its plain text."""
    html = str(_INLINER.inline(render("alert.html.j2", internal, zone, alert=alert)))
    return html, render("alert.txt.j2", internal, zone, alert=alert)


def render_text(
    digest: Digest, internal: Iterable[str] = (), zone: str = "UTC", console: str | None = None
) -> str:
    """The digest's plain-text alternative; the arguments as for :func:`render_html`."""
    return render("digest.txt.j2", internal, zone, digest=digest, console=console)
