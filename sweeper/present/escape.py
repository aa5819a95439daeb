"""Output safety: one layer per format sweeper writes, for text written by strangers.

Subjects, display names and addresses come from whoever sent or received the mail, so
every value that reaches a reader goes through the layer of the format it is written in:

- **csv** (:func:`csv_cell`, used with :data:`CSV_QUOTING`): every field quoted, control
  characters turned into spaces so a record cannot be split, a formula start neutralised
  with a leading ``'`` so a spreadsheet shows it instead of running it.
- **terminal** (:func:`terminal`): control characters shown as ``\\xNN`` and bidirectional
  overrides as ``[U+202E]``, so a value cannot move the cursor, recolour the screen, make a
  hyperlink or reorder what the reader sees.
- **markdown** (:func:`markdown`): markup characters backslash-escaped and links, addresses
  and domains put in code spans, so no renderer makes a heading, a link or an image of a
  value, and ``I'm`` stays ``I'm`` (Markdown needs no HTML entities).
- **Adaptive Cards** (:func:`adaptive_card`, the Teams alert): the Markdown subset cards
  read (bold, italic, lists, links) and their date functions made inert with backslash
  escapes placed so that a client which ignores an escape still sees no markup, and URLs
  defanged (``https[:]//``, ``www[.]``) so that no client links them.
- **html**: Jinja's autoescaping (markupsafe) in the templates; the template environment
  in :mod:`sweeper.present.render` applies this module's cleaning before it.
- **masking** (:func:`mask_addresses`): any address outside the organisation's domains
  becomes ``j***@gmail.com`` (:func:`sweeper.addresses.mask_address`), for everything shared
  with a Data Protection Officer or an authority: the digest, the worksheet, ``incident
  show``. The people export is the list to notify and is not masked.

:func:`one_line` and :func:`mark_bidi` are the cleaning steps the layers share.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable
from typing import Any, Final

import orjson

from sweeper.addresses import (
    LOCAL_CHARS,
    AddressScanner,
    mask_address,
    normalise_domain,
    within,
)
from sweeper.present.linkable import linkable_spans

# C0 (tab, line feed and carriage return included), DEL, C1 (NEL U+0085 included), and the
# Unicode line and paragraph separators: whatever a reader could take for a line break or a
# terminal could take for a command.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Characters that reorder the text around them: embeddings, overrides, isolates, marks.
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def one_line(text: str) -> str:
    """``text`` with every control character and line break turned into a space."""
    return _CONTROL.sub(" ", text)


def _marked(match: re.Match[str]) -> str:
    return f"[U+{ord(match.group(0)):04X}]"


def mark_bidi(text: str) -> str:
    """Bidirectional controls shown as ``[U+202E]``: visible, and unable to reorder text."""
    return _BIDI.sub(_marked, text)


# -- json -----------------------------------------------------------------------------------

# What a JSON encoder may leave raw inside strings but a terminal could still act on, or a
# reader could take for a line break: DEL, C1, the line and paragraph separators, bidi.
_JSON_RAW = re.compile(r"[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def json_safe(text: str) -> str:
    """Encoded JSON with those characters written as ``\\uXXXX``: the same values, printable."""
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


def json_bytes(value: Any) -> bytes:
    """``value`` as compact JSON for an HTTP body (UTF-8), through :func:`json_safe`."""
    return json_safe(orjson.dumps(value).decode()).encode()


# -- terminal -------------------------------------------------------------------------------

_TERMINAL_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SEPARATOR = re.compile(r"[\u2028\u2029]")


def terminal(text: str) -> str:
    """``text`` safe to print on a terminal: ESC becomes ``\\x1b``, U+202E ``[U+202E]``.

    Every C0 control (line feed and tab included: a value is one cell or one line), DEL and
    C1 control is written as ``\\xNN``; the line and paragraph separators and the
    bidirectional controls are written as ``[U+NNNN]``. The result holds no control
    character, so applying this twice changes nothing.
    """
    text = _TERMINAL_CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)
    return mark_bidi(_SEPARATOR.sub(_marked, text))


# -- CSV ------------------------------------------------------------------------------------

CSV_QUOTING: Final = csv.QUOTE_ALL
"""Every field quoted: a reader never has to guess where a field holding odd text ends."""

# What makes a spreadsheet read a cell as a formula (or a DDE call); the full-width forms
# are read the same way by some spreadsheets. Tab and CR are turned into spaces first.
_FORMULA_START = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")


def _leading_blank(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) == "Cf"


def csv_cell(value: Any) -> str:
    """One CSV field: a list joined by spaces, None as empty, text made inert.

    Control characters (tab, CR and LF included) become spaces, so that no reader, however
    naive, splits a record inside a field. Text whose first visible character starts a
    formula gets a leading ``'``, also after leading spaces or invisible characters. Numbers
    are written as they are: they cannot hold a formula.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        if isinstance(value, list | tuple):
            value = " ".join(str(v) for v in value)
        text = one_line("" if value is None else str(value))
        visible = next((c for c in text if not _leading_blank(c)), "")
        return "'" + text if visible in _FORMULA_START else text
    return str(value)


# -- Markdown -------------------------------------------------------------------------------

# What a renderer could turn into a link (a URL with a scheme, a www. name, an address, a bare
# domain name: some renderers link those too) is found by :func:`linkable_spans`, in linear
# time. Code spans are never linked, so these are written as code spans; none of them holds
# a backtick, a pipe or a space.
# Markup anywhere in a line: escapes, code, emphasis, strikethrough, links and images, HTML
# and autolinks, entities, headings (a value may follow a list marker), tables, maths.
_INLINE = re.compile(r"([\\`*_~\[\]<>&#|$])")
# Markup only at the start of a value: list markers, setext underlines.
_LEADING = re.compile(r"^(\s*)(?:([-+=])|(\d{1,9})([.)]))")
# An emoji shortcode such as :smile: becomes an image on some renderers.
_SHORTCODE = re.compile(r":(?=[\w+-]+:)")


def _escape_markup(text: str) -> str:
    text = _INLINE.sub(r"\\\1", text)
    text = _SHORTCODE.sub(r"\\:", text)
    return text


def _leading(match: re.Match[str]) -> str:
    space, sign, digits, mark = match.groups()
    return f"{space}\\{sign}" if sign else f"{space}{digits}\\{mark}"


def markdown(text: str) -> str:
    """``text`` as Markdown that renders as the same text: no markup, link or image.

    One line (see :func:`one_line`) without leading spaces, bidirectional controls marked;
    CommonMark's markup characters backslash-escaped (no HTML entities: ``I'm`` is written
    ``I'm``); URLs, www names, addresses and domain names written as code spans, which no
    renderer links.
    """
    text = mark_bidi(one_line(text)).lstrip(" ")  # four spaces would open a code block
    parts: list[str] = []
    last = 0
    for start, end in linkable_spans(text):
        parts.append(_escape_markup(text[last:start]))
        parts.append(f"`{text[start:end]}`")
        last = end
    parts.append(_escape_markup(text[last:]))
    if parts[0] == "":  # the value starts with a code span: nothing to escape at its start
        return "".join(parts)
    parts[0] = _LEADING.sub(_leading, parts[0], count=1)
    return "".join(parts)


# -- Adaptive Cards -------------------------------------------------------------------------

# Adaptive Card text (TextBlock, Fact) is read as a Markdown subset: **bold**, _italic_, "- "
# and "1. " lists, [links](url); and {{DATE(...)}} / {{TIME(...)}} become dates. Teams' clients
# parse it with different parsers, and not all of them honour every backslash escape, so the
# escapes that matter most also break their construct for a client that shows the backslash
# instead: "\](" is no link, "\- " no list item, "{\{" no function.
_CARD_INLINE = re.compile(r"([\\`*_~\[\]<])")
_CARD_LINK_TARGET = re.compile(r"(?<=\\\])\(")  # "](": after "]" is escaped, its "(" too
_CARD_ENTITY = re.compile(r"&(?=#[0-9]{1,7};|#[xX][0-9a-fA-F]{1,6};|[A-Za-z][A-Za-z0-9]{1,31};)")
_CARD_FUNCTION = re.compile(r"(?<=\{)\{")  # the second brace of "{{"
# Markup only at the start of a value: a list item ("- ", "+ ", "1. ", "2) "), a thematic
# break ("---"), a heading, a quote.
_CARD_LEADING = re.compile(
    r"^(?:(?P<sign>[-+](?=[\s-]|$)|[#>])|(?P<digits>\d{1,9})(?P<mark>[.)])(?=\s|$))"
)
# What a client could link without any markup: a URL with a scheme, a www. name.
_CARD_SCHEME = re.compile(r"(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]*):(?=//)")
_CARD_WWW = re.compile(r"(?<![\w.-])((?i:www))\.")


def adaptive_card(text: str) -> str:
    """``text`` for an Adaptive Card's TextBlock or Fact: shown as itself, never as markup.

    One line (see :func:`one_line`) without leading spaces, bidirectional controls marked
    (``[U+202E]``, itself escaped); URLs defanged (``https[:]//evil.example``,
    ``www[.]evil.example``) so that no client makes a link of them; Markdown's characters
    backslash-escaped: ``\\ ` * _ ~ [ ] <``, a ``(`` after ``]``, an ``&`` that starts an
    entity, the second ``{`` of ``{{``, and a list marker, ``#`` or ``>`` at the start.
    Addresses are not masked here: mask them first (:func:`mask_addresses`), since an
    escape inside an address would hide it from masking.
    """
    text = mark_bidi(one_line(text)).lstrip(" ")
    text = _CARD_WWW.sub(r"\1[.]", _CARD_SCHEME.sub(r"\1[:]", text))
    text = _CARD_INLINE.sub(r"\\\1", text)
    text = _CARD_LINK_TARGET.sub(r"\\(", text)
    text = _CARD_ENTITY.sub(r"\\&", text)
    text = _CARD_FUNCTION.sub(r"\\{", text)
    return _CARD_LEADING.sub(_leading_card, text, count=1)


def _leading_card(match: re.Match[str]) -> str:
    if match["sign"]:
        return f"\\{match['sign']}"
    return f"{match['digits']}\\{match['mark']}"


# -- masking --------------------------------------------------------------------------------

# A quoted or a plain local part, then the domain (:class:`AddressScanner`, in linear time).
# A backtick, though allowed in a local part, is left out: it opens a Markdown code span,
# and a masked address written inside one must still match as itself (so that masking twice
# changes nothing).
_ADDRESSES = AddressScanner(LOCAL_CHARS)


def internal_domains(domains: Iterable[str]) -> frozenset[str]:
    """The organisation's domains, normalised as :func:`mask_addresses` compares them."""
    return frozenset(normalise_domain(d) for d in domains if d and d.strip())


def mask_addresses(text: str, internal: Iterable[str]) -> str:
    """Every address in ``text`` outside ``internal`` (or its subdomains) masked.

    ``jane.doe@gmail.com`` becomes ``j***@gmail.com``; ``dpo@northwick.example`` stays when
    ``northwick.example`` is internal. With no internal domains every address is masked.
    Masking a masked text changes nothing.
    """
    domains = internal_domains(internal)

    def mask(address: str, domain: str) -> str:
        if domains and within(normalise_domain(domain), domains):
            return address
        return mask_address(address)

    return _ADDRESSES.sub(text, mask)
