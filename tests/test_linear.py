"""Every pattern applied to text written by strangers takes linear time (issue 24, item 2).

Subjects, display names, addresses and Graph's answers are written by whoever sent the
mail. A pattern a backtracking engine runs in quadratic time lets one long subject hold the
digest, the console and the Sentinel export for minutes (32,000 characters of an address's
local part took 4.4 s to mask; 60,000 held ``digest --dry-run`` 62 s). Each function that
runs a pattern over such text is run here over adversarial inputs of a megabyte, in a child
process that is stopped when it overruns, so a quadratic regression fails in seconds
instead of holding the suite for hours. The linear replacements of the patterns that were
quadratic are checked against the original patterns, match for match, with Hypothesis.
"""

from __future__ import annotations

import multiprocessing
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.digest import swept_with_subject
from support.runner import Sweeper

from sweeper.addresses import (
    LOCAL_CHARS,
    LOCAL_CHARS_WITH_BACKTICK,
    AddressScanner,
    mask_address,
    normalise_domain,
    within,
)
from sweeper.logs import _TOKENS, Guard, _token
from sweeper.outbound.ingestion import without_ssl_objects
from sweeper.present import escape
from sweeper.present.linkable import linkable_spans
from sweeper.rules.allow import AllowRule
from sweeper.rules.audience import DEFAULT_CLASSES, domain_class, is_role
from sweeper.rules.classify import Policy, judge, parse_address, read_message
from sweeper.rules.incidents import _PREFIXES, normalise_subject
from sweeper.rules.severity import SeverityRule, reveals_name

pytestmark = pytest.mark.slow  # a megabyte through each pattern, and child processes

MB = 1_000_000
# A linear function reads a megabyte in well under a second, even on a loaded machine; the
# quadratic patterns this replaces would take hours. The bound is far from both.
SECONDS = 20.0


def megabyte(unit: str) -> str:
    return (unit * (MB // len(unit) + 1))[:MB]


ADVERSARIAL = {
    "local-part run": megabyte("a"),
    "labels and dots": megabyte("a."),
    "digits and dots": megabyte("1."),
    "ats": megabyte("@"),
    "local parts and ats": megabyte("a@"),
    "domain without a dot": "x@" + megabyte("b"),
    "escaped quotes": megabyte('"\\'),
    "open quotes": megabyte('"a'),
    "spaces": "re" + megabyte(" "),
    "reply prefixes": megabyte("re: "),
    "repeated words": megabyte("mental health records "),
    "jwt starts": megabyte("eyJ"),
    "bearer": megabyte("bearer "),
    "open ssl reprs": megabyte(" ssl:<"),
    "schemes": megabyte("a:"),
    "scheme-like runs": megabyte("1:1 "),
    "www": megabyte("www."),
    "accented labels": megabyte("é."),
    "one accented label": megabyte("aé"),
    "mixed": megabyte('a.b@c "d\\" www.e :f eyJg re: '),
}

INTERNAL = ["northwick.example"]
RULE = SeverityRule(sensitive_terms=("mental health", "tribunal"))
ALLOW = AllowRule("allow[0]", "a newsletter", subject=re.compile(r".*news.*letter", re.I))


def classify_message(text: str) -> Any:
    """A Graph message whose subject, names and one address are ``text``, judged."""

    def recipient(address: str) -> dict[str, Any]:
        return {"emailAddress": {"address": address, "name": text}}

    message = {
        "id": "AAMk1",
        "subject": text,
        "from": recipient("sender@northwick.example"),
        "toRecipients": [recipient(f"reader{i}@gmail.com") for i in range(12)],
        "ccRecipients": [recipient(text), recipient(text + "@gmail.com")],
    }
    facts = read_message("sender@northwick.example", message, department=text)
    return judge(facts, Policy.build(INTERNAL, severity=RULE, allow=[ALLOW]))


FUNCTIONS: dict[str, Callable[[str], Any]] = {
    "classify a message": classify_message,
    "mask_addresses": lambda text: escape.mask_addresses(text, INTERNAL),
    "log guard": Guard(["a-client-secret-value", "tiny"]).clean,
    "markdown": escape.markdown,
    "adaptive_card": lambda text: escape.adaptive_card(escape.mask_addresses(text, INTERNAL)),
    "terminal": escape.terminal,
    "csv_cell": escape.csv_cell,
    "json_bytes": escape.json_bytes,
    "normalise_subject": normalise_subject,
    "sensitive terms of a subject": RULE.sensitive_in,
    "sensitive department": lambda text: RULE.sensitive_function(None, text, text),
    "allowlist subject": lambda text: ALLOW.matches(None, [], text),
    "parse_address": lambda text: parse_address(text + "@" + text),
    "name revealed by an address": lambda text: reveals_name(text + "@gmail.com", text),
    "within": lambda text: within(normalise_domain(text), frozenset(INTERNAL)),
    "mask_address": mask_address,
    "role address": lambda text: is_role(text + "@" + text),
    "domain class": lambda text: domain_class(text, DEFAULT_CLASSES),
    "a transport's error text": without_ssl_objects,
}


def _timed(function: Callable[[str], Any], text: str, answer: Any) -> None:
    started = time.perf_counter()
    function(text)
    answer.send(time.perf_counter() - started)


def seconds_taken(function: Callable[[str], Any], text: str) -> float:
    """How long ``function(text)`` took in a child process, or inf if it overran."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_timed, args=(function, text, send))
    child.start()
    child.join(SECONDS * 2)
    if child.is_alive():
        child.kill()
        child.join()
        return float("inf")
    assert child.exitcode == 0, f"{function} failed"
    taken: float = receive.recv()
    return taken


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_pattern_over_stranger_text_reads_a_megabyte_in_linear_time(name: str) -> None:
    slow = {}
    for kind, text in ADVERSARIAL.items():
        taken = seconds_taken(FUNCTIONS[name], text)
        if taken > SECONDS:
            slow[kind] = taken
    assert slow == {}, f"{name} is not linear on {sorted(slow)}"


# -- the linear scanners find what the original patterns found ------------------------------

_LINKABLE_BEFORE = re.compile(
    r"(?:[A-Za-z][A-Za-z0-9+.-]*://[^\s`|<>\"'\[\]()]*"
    r"|[A-Za-z][A-Za-z0-9+.-]*:[^\s`|<>\"'\[\]()]+"
    r"|(?i:www)\.[^\s`|<>\"'\[\]()]*"
    r"|[^\s`|<>\"'\[\]()]*@[^\s`|<>\"'\[\]()]+"
    r"|(?:[\w-]+\.)+[^\W\d_][\w-]+(?:/[^\s`|<>\"'\[\]()]*)?)"
)
_ADDRESS_BEFORE = r"(?:\"(?:[^\"\\\r\n]|\\.)*\"|[{}]+)@([\w-]+(?:\.[\w-]+)+)"
_TOKENS_BEFORE = re.compile(r"(?i:bearer)\s+[\w.~+/=-]+|eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*")
_PREFIXES_BEFORE = re.compile(
    r"^(?:\s*(?:re|fw|fwd|aw|wg|sv|vs|vb|tr|rv|ref|antw|odp|res|recall)\s*(?:\[\d+\]|\(\d+\))?"
    r"\s*[:：]\s*)+",
    re.IGNORECASE,
)


def pieces(*parts: str) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(parts), max_size=24).map("".join)


ADDRESS_TEXT = pieces(
    "a", "B", "1", "_", ".", "-", "!", "`", '"', "\\", "@", " ", "\n", "\r", "é", ",", "<", "c.d"
)
LINK_TEXT = pieces(
    "a", "W", "w", "1", "²", "_", ".", "-", "+", ":", "/", "//", "@", " ", "(", "`", "é", "www."
)
TOKEN_TEXT = pieces("eyJ", "a", "abcd", "-", ".", " ", "\t", "bearer", "Bearer", "=", "/", "é")
PREFIX_TEXT = pieces("re", "FW", "recall", ":", "：", " ", "\t", "[1]", "(2)", "[", "1", "x")


@settings(max_examples=3000, deadline=None)
@given(ADDRESS_TEXT)
def test_the_address_scanner_finds_what_the_address_pattern_found(text: str) -> None:
    for chars in (LOCAL_CHARS, LOCAL_CHARS_WITH_BACKTICK):
        before = re.compile(_ADDRESS_BEFORE.format(chars))
        expected = [(m.start(), m.end(), m.start(1)) for m in before.finditer(text)]
        assert list(AddressScanner(chars).spans(text)) == expected


@settings(max_examples=3000, deadline=None)
@given(LINK_TEXT)
def test_linkable_spans_are_what_the_linkable_pattern_found(text: str) -> None:
    assert list(linkable_spans(text)) == [m.span() for m in _LINKABLE_BEFORE.finditer(text)]


SSL_TEXT = pieces("ssl:<", ">", " ", "\t", "\u2003", "x", "ssl", ":", "<")


@settings(max_examples=2000, deadline=None)
@given(TOKEN_TEXT, PREFIX_TEXT, SSL_TEXT)
def test_tokens_prefixes_and_ssl_reprs_are_cut_as_before(
    tokens: str, prefixes: str, error: str
) -> None:
    assert _TOKENS.sub(_token, tokens) == _TOKENS_BEFORE.sub("[token]", tokens)
    assert _PREFIXES.sub("", prefixes) == _PREFIXES_BEFORE.sub("", prefixes)
    assert without_ssl_objects(error) == re.sub(r"\s*ssl:<[^>]*>", "", error)


# -- through the command line --------------------------------------------------------------


def test_a_digest_with_a_60000_character_subject_is_written_in_seconds(
    sweeper: Sweeper, tmp_path: Path
) -> None:
    """A reply-all from outside with a 60,000-character subject held the digest 62 s."""
    subject = "RE: " + "x" * 30_000 + "." * 30_000 + " jane.doe@gmail.com"
    swept_with_subject(sweeper, "long-subject", subject, tmp_path / "reports")
    started = time.monotonic()
    result = sweeper.run("digest", "--dry-run")
    taken = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert "j***@gmail.com" in result.output and "jane.doe@gmail.com" not in result.output
    assert "x" * 1000 in result.output  # the subject is there, not cut out
    assert taken < 30, f"digest --dry-run took {taken:.1f} s"
