"""The output layers of sweeper.escape, alone and through the commands that use them."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.digest import swept_with_subject
from support.markup import Rendered, assert_csv_whole, gfm
from support.runner import Sweeper

from sweeper import store
from sweeper.commands.sweep import MailboxResult, SweepReport, run_summary
from sweeper.present.escape import (
    adaptive_card,
    csv_cell,
    internal_domains,
    mark_bidi,
    markdown,
    mask_addresses,
    one_line,
    terminal,
)
from sweeper.present.output import FINDING_COLUMNS, INCIDENT_COLUMNS, as_csv

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
HOSTILE_TERMINAL = (
    "\x1b[31mred\x1b[0m",  # CSI: colours
    "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\",  # OSC 8: a hyperlink
    "over\rwrite",
    "back\x08\x08space",
    "\x9b31m",  # 8-bit CSI
    "\x07bell\x7f",
    "\u202eexe.txt",
    "line\u2028break\u0085next",
)


# -- csv ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("\r=1+1", "' =1+1"),
        ("\n=1+1", "' =1+1"),
        ("\t=1+1", "' =1+1"),
        ("  =1+1", "'  =1+1"),
        ("\u200b@SUM(A1)", "'\u200b@SUM(A1)"),
        ("-2+3@gmail.com", "'-2+3@gmail.com"),
        ("+1-555", "'+1-555"),
        ("\uff1dcmd", "'\uff1dcmd"),
        ("a\r\nb\x85c\u2028d\x00e", "a  b c d e"),
        ('plain, "quoted"', 'plain, "quoted"'),
        (None, ""),
        (["gmail.com", "=evil"], "gmail.com =evil"),
        (-3, "-3"),  # a number cannot hold a formula
        (0.25, "0.25"),
    ],
)
def test_a_csv_cell_is_inert(value: object, cell: str) -> None:
    assert csv_cell(value) == cell


@given(st.lists(st.lists(st.text(), min_size=3, max_size=3), max_size=5))
def test_every_csv_record_comes_back_whole(rows: list[list[str]]) -> None:
    columns = ("a", "b", "c")
    text = as_csv(columns, [dict(zip(columns, row, strict=True)) for row in rows])

    parsed = assert_csv_whole(text, len(columns))

    assert len(parsed) == len(rows) + 1
    for record, row in zip(parsed[1:], rows, strict=True):
        assert record == [csv_cell(c) for c in row]
        assert [one_line(c) for c in row] == [
            c[1:] if c.startswith("'") and c != one_line(o) else c
            for c, o in zip(record, row, strict=True)
        ]  # nothing but the control characters and the quote changed


# -- terminal -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", HOSTILE_TERMINAL)
def test_terminal_output_holds_no_control_and_no_bidi_character(value: str) -> None:
    shown = terminal(value)

    assert not [c for c in shown if unicodedata.category(c) == "Cc"]
    assert not set(shown) & set(BIDI + "\u2028\u2029")
    assert terminal(shown) == shown


def test_terminal_escapes_are_readable() -> None:
    assert terminal("\x1b[31mred") == "\\x1b[31mred"
    assert terminal("a\rb\x08\x9bc\x7f") == "a\\x0db\\x08\\x9bc\\x7f"
    assert terminal("\u202eexe.txt\u2066") == "[U+202E]exe.txt[U+2066]"
    assert terminal("Grüße – ok") == "Grüße – ok"


@given(st.text())
def test_terminal_never_lets_a_control_through(value: str) -> None:
    shown = terminal(value)
    assert not [c for c in shown if unicodedata.category(c) == "Cc"]
    assert not set(shown) & set(BIDI + "\u2028\u2029")


def test_the_run_summary_escapes_errors_and_mailboxes() -> None:
    report = SweepReport(
        run_id=7,
        status="partial",
        totals=store.RunTotals(failed=1),
        results=[MailboxResult("\x1b[2Jevil@northwick.example", "failed", error="\x9b31m500")],
        error="\x1b]8;;https://evil.example\x1b\\boom",
        window_since="2026-11-20T00:00:00Z",
    )

    text = run_summary(report)

    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", text)
    assert "\\x1b[2Jevil@northwick.example" in text and "\\x9b31m500" in text
    assert "The run failed: \\x1b]8;;https://evil.example\\x1b\\boom" in text


# -- markdown -------------------------------------------------------------------------------


HOSTILE_MARKDOWN = (
    "[Click to verify](https://evil.example)",
    "![](https://evil.example/pixel.gif)",
    '<img src="https://evil.example/pixel.gif">',
    "<script>alert(1)</script>",
    "see https://evil.example/login now",
    "www.evil.example",
    "HTTPS://EVIL.EXAMPLE",
    "<https://evil.example>",
    "mailto:jane@gmail.com",
    "jane.doe@gmail.com",
    "evil.example/path",
    "[x]: https://evil.example",
    "I'm leaving",
    "I&#39;m leaving &amp; more",
    "# heading",
    "> quote",
    "- item",
    "1. item",
    "2) item",
    "---",
    "===",
    "| a | b |",
    "**bold** _it_ ~~gone~~ `code` ``two``",
    "trailing\\",
    "$x^2$ :smile: @someone",
    "\u202eexe.txt",
)


@pytest.mark.parametrize("value", HOSTILE_MARKDOWN)
@pytest.mark.parametrize(("before", "shown"), [("- ", ""), ("Subject: ", "Subject: "), ("", "")])
def test_markdown_renders_a_value_as_its_text_and_nothing_else(
    value: str, before: str, shown: str
) -> None:
    page = Rendered(gfm(before + markdown(value)))

    assert set(page.tags) <= {"p", "ul", "li", "code"}
    assert page.text.strip() == (shown + mark_bidi(value)).strip()


@given(st.text(alphabet=st.sampled_from("ab1 .:/@-+=#>*_`~[]()<>!&;|$\\'\"\nw")))
def test_markdown_never_makes_markup_of_a_value(value: str) -> None:
    page = Rendered(gfm("- " + markdown(value)))

    assert set(page.tags) <= {"p", "ul", "li", "code"}
    assert page.text.strip() == one_line(value).strip()


# -- Adaptive Cards -------------------------------------------------------------------------

HOSTILE_CARD = (
    "[Click to verify](https://evil.example)",
    "![](https://evil.example/pixel.gif)",
    "[x]: https://evil.example",
    "<https://evil.example>",
    "see https://evil.example/login now",
    "HTTPS://EVIL.EXAMPLE and www.evil.example",
    "<at>Jane Doe</at> please confirm",
    '<img src="x">',
    "**bold** __bold__ *it* _it_ ~~gone~~ `code`",
    "Re: rota\nSeverity: low\r\n- forged line",
    "- item",
    "+ item",
    "* item",
    "1. item",
    "2) item",
    "---",
    "# heading",
    "> quote",
    "    four spaces: a code block",
    "{{DATE(2017-02-14T06:08:39Z, SHORT)}} {{TIME(2017-02-14T06:08:39Z)}}",
    "&lt;b&gt; &#42;x&#42; &amp;",
    "Tom & Jerry (March) [draft] 1.5 -5",
    "\u202e(https://evil.example)",
    "\u202eexe.txt \u2066x\u2069",
    "bell\x07 esc\x1b[31m c1\x9b nel\x85 ls\u2028 ps\u2029",
    "j***@gmail.com, mailto:j***@gmail.com",
    "trailing\\",
)


def undefanged(text: str) -> str:
    return re.sub(r"(?i)www\[\.\]", "www.", text.replace("[:]//", "://"))


def naive(text: str) -> list[str]:
    """What a client that ignores backslash escapes could still read as markup."""
    found = [what for what in ("](", "{{", "\n", "\r") if what in text]
    if re.match(r"\s*(?:[-+*]|\d+[.)])(?:\s|$)", text):
        found.append("a list item")
    if re.search(r"(?i)(?:[a-z][a-z0-9+.-]*://|(?<![\w.-])www\.)", text):
        found.append("a URL")
    return found


@pytest.mark.parametrize("value", HOSTILE_CARD)
def test_adaptive_card_text_renders_as_the_value_and_nothing_else(value: str) -> None:
    escaped = adaptive_card(value)
    page = Rendered(gfm(escaped))

    assert set(page.tags) <= {"p"}
    assert undefanged(page.text).strip() == mark_bidi(one_line(value)).strip()
    assert naive(escaped) == []
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]", escaped)


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("[click](https://evil)", "\\[click\\]\\(https\\[:\\]//evil)"),
        ("**x**", "\\*\\*x\\*\\*"),
        ("a\nb", "a b"),
        ("<at>Jo</at>", "\\<at>Jo\\</at>"),
        ("\u202e(x)", "\\[U+202E\\]\\(x)"),  # the marked bidi control links nothing
        ("{{DATE(x)}}", "{\\{DATE(x)}}"),
        ("1. x", "1\\. x"),
        ("1.5 million", "1.5 million"),  # no list marker: nothing to escape
        ("Tom & Jerry (March)", "Tom & Jerry (March)"),
        ("first_last@northwick.example", "first\\_last@northwick.example"),
    ],
)
def test_adaptive_card_escapes_only_what_a_card_would_read_as_markup(
    value: str, escaped: str
) -> None:
    assert adaptive_card(value) == escaped


@given(
    st.text(
        alphabet=st.sampled_from("ab1 .:/-+=#>*_`~[]()<>!&;|{}\\'\"\nw\u202e\x85"),
    )
)
def test_adaptive_card_never_makes_markup_of_a_value(value: str) -> None:
    escaped = adaptive_card(value)
    page = Rendered(gfm(escaped))

    assert set(page.tags) <= {"p"}
    assert undefanged(page.text).strip() == undefanged(mark_bidi(one_line(value))).strip()
    assert naive(escaped) == []


# -- masking --------------------------------------------------------------------------------

INTERNAL = ("northwick.example", "Northwick-Trust.example.")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("write to jane.doe@gmail.com now", "write to j***@gmail.com now"),
        ("JANE@GMAIL.COM", "J***@GMAIL.COM"),
        ('"jane doe"@yahoo.co.uk', '"***@yahoo.co.uk'),
        ("dpo@northwick.example", "dpo@northwick.example"),
        ("desk@Mail.Northwick.Example", "desk@Mail.Northwick.Example"),  # a subdomain
        ("ops@northwick-trust.example", "ops@northwick-trust.example"),
        ("x@northwick.example.evil.example", "x***@northwick.example.evil.example"),
        ("x@evilnorthwick.example", "x***@evilnorthwick.example"),
        ("ana@bücher.example", "a***@bücher.example"),
        ("<a1b2@mail.gmail.com>", "<a***@mail.gmail.com>"),
        ("j***@gmail.com", "j***@gmail.com"),  # masking twice changes nothing
        ("`j***@gmail.com`", "`j***@gmail.com`"),  # also in a Markdown code span
        ("no address @ all", "no address @ all"),
    ],
)
def test_addresses_outside_the_organisation_are_masked(text: str, shown: str) -> None:
    assert mask_addresses(text, INTERNAL) == shown


def test_without_internal_domains_every_address_is_masked() -> None:
    assert mask_addresses("dpo@northwick.example", ()) == "d***@northwick.example"
    assert internal_domains([" Northwick.Example. ", ""]) == {"northwick.example"}


# -- the commands ---------------------------------------------------------------------------

CR_FORMULA = "\r=1+1"
HOSTILE_SUBJECT = "\x1b[31mURGENT\x1b[0m \x1b]8;;https://evil.example\x1b\\pay\x9b \u202eexe.txt"


def test_findings_and_incidents_as_csv_keep_every_record_whole(
    sweeper: Sweeper, tmp_path: Path
) -> None:
    swept_with_subject(sweeper, "crlf", CR_FORMULA, tmp_path)

    findings = sweeper.run("findings", "--format", "csv")
    listed = sweeper.run("incidents", "--format", "csv")

    assert findings.exit_code == 0 and listed.exit_code == 0
    rows = assert_csv_whole(findings.stdout.rstrip("\n"), len(FINDING_COLUMNS))
    subject, message_id = (
        FINDING_COLUMNS.index("subject"),
        FINDING_COLUMNS.index("internet_message_id"),
    )
    assert [r[subject] for r in rows if "crlf@" in r[message_id]] == ["' =1+1"]
    records = assert_csv_whole(listed.stdout.rstrip("\n"), len(INCIDENT_COLUMNS))
    assert "' =1+1" in [r[INCIDENT_COLUMNS.index("subject")] for r in records]


def test_tables_show_hostile_subjects_escaped(sweeper: Sweeper, tmp_path: Path) -> None:
    swept_with_subject(sweeper, "ansi", HOSTILE_SUBJECT, tmp_path)

    for command in (("findings",), ("incidents",)):
        out = sweeper.run(*command).stdout

        assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e]", out), command
        assert "\\x1b[31mURGENT" in out
    incidents = sweeper.run("incidents").stdout
    header = incidents.splitlines()[0]
    rule = incidents.splitlines()[1]
    assert len(rule) >= len(header)  # the table's columns still line up


def test_json_listings_write_terminal_controls_as_escapes_and_keep_the_value(
    sweeper: Sweeper, tmp_path: Path
) -> None:
    swept_with_subject(sweeper, "json", HOSTILE_SUBJECT, tmp_path)

    out = sweeper.run("findings", "--format", "json").stdout

    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e]", out)
    assert "\\u009b" in out and "\\u202e" in out
    assert HOSTILE_SUBJECT in {f["subject"] for f in orjson.loads(out)}  # the same value


def test_reports_printed_by_commands_go_through_the_terminal_layer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from datetime import UTC, datetime

    from sweeper.cligroup import say
    from sweeper.commands.lookup import LookupReport

    now = datetime(2026, 12, 1, tzinfo=UTC)
    report = LookupReport(1, since=now, until=now, failed={"a@x.example": "\x1b[2J\x9bgone"})

    say(report.summary())

    out = capsys.readouterr().out
    assert out.count("\n") == 2  # its own line breaks kept
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", out)
    assert "Not searched, a@x.example: \\x1b[2J\\x9bgone" in out
