"""What a Markdown renderer could link in a text, found in linear time.

:func:`linkable_spans` finds exactly what this pattern finds with ``finditer``::

    [A-Za-z][A-Za-z0-9+.-]*://T*          a URL with a scheme              (1)
    | [A-Za-z][A-Za-z0-9+.-]*:T+          mailto:..., javascript:...       (2)
    | (?i:www)\\.T*                       a www. name                      (3)
    | T*@T+                               anything around an @             (4)
    | (?:[\\w-]+\\.)+[^\\W\\d_][\\w-]+(?:/T*)?   a domain name, maybe a path      (5)

(``T``: any character but white space and `` ` | < > " ' [ ] ( )``), without what makes a
backtracking engine run it in quadratic time: at every character of a long run of ``T``
(or of letters, or of labels and dots) it starts again and reads to the run's end.

Every match lies inside one run of ``T``. Inside a run ending at ``e``, an attempt at ``p``
succeeds by (1)-(4) exactly when: (4) an ``@`` stands at ``p`` or later with a character of
the run after it; (1)/(2) ``p`` is an ASCII letter of a run of ``[A-Za-z0-9+.-]`` that ends
in ``:`` followed by a character of the run ((1) is a case of (2)); (3) ``www.`` starts at
``p``. Each of those ends at ``e``. (5) succeeds from any character of the labels before
the last label of the chain (labels joined by single dots) that starts with a letter and is
two characters long or more, and ends at that label's end (or at ``e`` when a ``/`` follows
the chain's last label). So each run is settled by a few searches, none of which starts
again inside what it has read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

_T = r"[^\s`|<>\"'\[\]()]"
_S = "[A-Za-z0-9+.-]"
# A run of T that could hold a match: an @ with something after it, a ":" after a scheme's
# character with something after it, "www.", or a dot before a label starting with a letter.
_RUN = re.compile(rf"(?<!{_T})(?={_T}*?(?:@{_T}|{_S}:{_T}|(?i:www)\.|\.[^\W\d_][\w-])){_T}++")
_SCHEME_TAIL = rf"(?>[0-9+.-]*+)(?P<at>[A-Za-z]){_S}*+:(?={_T})"
_SCHEME_HERE = re.compile(_SCHEME_TAIL)
_SCHEME = re.compile(rf"(?<!{_S}){_SCHEME_TAIL}")
_S_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+.-")
_S_RUN = re.compile(f"{_S}*+")
_WWW = re.compile(r"(?i:www)\.")
_CHAIN = re.compile(r"[\w-]++(?:\.[\w-]++)*+")
_LAST_NAMED_LABEL = re.compile(r"(?s:.*)\.(?=[^\W\d_][\w-])")


def linkable_spans(text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each linkable part of ``text``, left to right."""
    for run in _RUN.finditer(text):
        yield from _in_run(text, run.start(), run.end())


def _in_run(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    last_at = text.rfind("@", start, end - 1)
    scheme = _Search(lambda p: _scheme_at(text, p, end))
    www = _Search(lambda p: _found(_WWW.search(text, p, end)))
    chains = _Chains(text, start, end)
    p = start
    while p < end:
        if last_at >= p:
            yield p, end
            return
        whole = [c for c in (scheme.first(p), www.first(p)) if c is not None]
        domain = chains.first(p)
        if domain is not None and (not whole or domain[0] < min(whole)):
            yield domain
            p = domain[1]
            continue
        if whole:
            yield min(whole), end
        return


def _found(match: re.Match[str] | None) -> int | None:
    return None if match is None else match.start()


def _scheme_at(text: str, p: int, end: int) -> int | None:
    """The first start of (2) at ``p`` or later: the first letter of a scheme-like run."""
    if p > 0 and text[p - 1] in _S_CHARS:  # inside a run already begun: try it from here
        here = _SCHEME_HERE.match(text, p, end)
        if here is not None:
            return here.start("at")
        rest = _S_RUN.match(text, p, end)  # every letter of this run fails alike: skip it
        p = p if rest is None else rest.end()
    found = _SCHEME.search(text, p, end)
    return None if found is None else found.start("at")


class _Search:
    """The first place at or after ``p`` where a search finds something, searched again only
    when the place found is behind ``p`` (positions only grow)."""

    def __init__(self, search: Callable[[int], int | None]) -> None:
        self._search = search
        self._found: int | None = -1
        self._none_after = False

    def first(self, p: int) -> int | None:
        if self._none_after:
            return None
        if self._found is None or self._found < p:
            self._found = self._search(p)
            self._none_after = self._found is None
        return self._found


class _Chains:
    """Pattern (5) over the chains of labels of one run, one chain after the other."""

    def __init__(self, text: str, start: int, end: int) -> None:
        self._text = text
        self._end = end
        self._chains = _CHAIN.finditer(text, start, end)
        self._current: tuple[int, int, int] | None = None  # first, past last start, end
        self._done = False

    def first(self, p: int) -> tuple[int, int] | None:
        """Where (5) first succeeds at ``p`` or later, and where that match ends."""
        while not self._done:
            if self._current is not None and p < self._current[1]:
                first, past, match_end = self._current
                at = max(p, first)
                if self._text[at] == ".":
                    at += 1
                if at < past:
                    return at, match_end
            self._current = self._next()
        return None

    def _next(self) -> tuple[int, int, int] | None:
        for chain in self._chains:
            named = _LAST_NAMED_LABEL.match(self._text, chain.start(), chain.end())
            if named is None:
                continue
            label = named.end()  # the last label starting with a letter, two or more long
            label_end = self._text.find(".", label, chain.end())
            if label_end == -1:
                label_end = chain.end()
                if label_end < self._end and self._text[label_end] == "/":
                    label_end = self._end
            return chain.start(), label - 1, label_end
        self._done = True
        return None
