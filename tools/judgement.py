"""How sweeper's severity rule fares against the labelled corpus: ``make judgement``.

Each case of ``tests/fixtures/judgement/cases.toml`` (:mod:`tools.judgement_corpus`) is
sent through the path a sweep takes, with the settings of a fresh install: its messages, as
Graph's JSON (:mod:`tools.judgement_mail`), are judged by ``classify``, stored in a new
SQLite database of their own with the store's functions, and placed in incidents by
``assign_incidents``; the incidents' severities are then read back and compared with what
a careful DPO wants.

    python -m tools.judgement                   all cases
    python -m tools.judgement --half dev        only the half the rule may be tuned on
    python -m tools.judgement --json            the same figures, as JSON
    python -m tools.judgement --strict          exit 1 when a case fails

It prints the confusion table (rows what was wanted, columns what the rule gave, ``quiet``
for no incident), the results per kind and per half, and every failing case with the rule's
own reason. It is a measurement: it exits 0 whatever the rule does, unless ``--strict``; a
corpus with errors exits 2. Run it from the checkout whose rule you mean to measure: the
``sweeper`` package it imports is named in the first line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sweeper
from sweeper import store
from sweeper.rules.classify import Finding, Policy, classify, visible_external
from sweeper.settings import Settings, load_settings
from sweeper.store.incidents import assign_incidents, list_incidents
from tools.judgement_corpus import CORPUS, HALVES, KINDS, ORDER, Case, CorpusError, load_corpus
from tools.judgement_mail import INTERNAL_DOMAIN, START, graph_messages, last_sent, sender_of

QUIET = ORDER[0]
CORNER = "wanted \\ got"


@dataclass(frozen=True)
class Outcome:
    """What the rule made of one case."""

    id: str
    kind: str
    language: str
    half: str
    control: bool
    want: str
    got: str  # the highest severity of its incidents, or quiet
    severities: tuple[str, ...]  # one per incident, oldest first
    incidents_wanted: int
    incidents_got: int
    passed: bool
    reason: str


def fresh_settings() -> Settings:
    """The settings of a new installation: no file, no environment."""
    return load_settings(None, {}, need_graph=False)


def judge_case(case: Case, settings: Settings, workdir: Path) -> Outcome:
    """Sweep the case's messages into a database of its own and read its incidents back."""
    messages = graph_messages(case)
    policy = settings.policy([INTERNAL_DOMAIN])
    mailbox = sender_of(case)
    findings = [
        finding
        for message in messages
        if (
            finding := classify(
                mailbox, message, policy, department=case.department, job_title=case.job_title
            )
        )
        is not None
    ]
    incidents = sorted(_incidents(case, findings, settings, workdir / f"{case.id}.db"),
                       key=lambda i: int(i["id"]))  # fmt: skip
    severities = tuple(str(i["severity"]) for i in incidents)
    reason = " | ".join(str(i["reason"]) for i in incidents) or _quiet_reason(messages, policy)
    return _outcome(case, severities, reason)


def _incidents(
    case: Case, findings: list[Finding], settings: Settings, path: Path
) -> list[dict[str, Any]]:
    """Store the findings as a sweep does and place them in incidents."""
    db = store.open_db(path)
    try:
        until = last_sent(case).strftime("%Y-%m-%dT%H:%M:%SZ")
        run_id = store.start_run(db, START.strftime("%Y-%m-%dT%H:%M:%SZ"), until, None)
        store.save_tenant_domains(db, [INTERNAL_DOMAIN])
        with store.transaction(db):
            store.save_findings(db, run_id, findings)
        assign_incidents(
            db,
            settings.incident_window,
            settings.severity,
            run_id=run_id,
            reexposure=settings.reexposure_window,
        )
        store.finish_run(db, run_id, "ok", store.RunTotals())
        return list_incidents(db, include_suppressed=True, include_dismissed=True)
    finally:
        db.conn.close()


def _quiet_reason(messages: Sequence[dict[str, Any]], policy: Policy) -> str:
    counts = ", ".join(str(len(visible_external(m, policy))) for m in messages)
    return f"no finding: {counts} visible external address(es) per message"


def _outcome(case: Case, severities: tuple[str, ...], reason: str) -> Outcome:
    got = max(severities, key=ORDER.index) if severities else QUIET
    if got == QUIET:
        passed = case.want.accepts(QUIET)
    else:
        passed = len(severities) == case.incidents and all(case.want.accepts(s) for s in severities)
    return Outcome(
        id=case.id,
        kind=case.kind,
        language=case.language,
        half=case.half,
        control=case.control,
        want=str(case.want),
        got=got,
        severities=severities,
        incidents_wanted=case.incidents,
        incidents_got=len(severities),
        passed=passed,
        reason=reason,
    )


def judge_all(cases: Iterable[Case], settings: Settings) -> list[Outcome]:
    with tempfile.TemporaryDirectory(prefix="sweeper-judgement-") as workdir:
        return [judge_case(case, settings, Path(workdir)) for case in cases]


# -- the report ------------------------------------------------------------------------------


def wanted_rows(outcomes: Sequence[Outcome]) -> list[str]:
    """The wants that occur, lowest first (``quiet``, ``quiet..low``, ``low``, ...)."""

    def rank(want: str) -> tuple[int, int]:
        low, _, high = want.partition("..")
        return ORDER.index(low), ORDER.index(high or low)

    return sorted({o.want for o in outcomes}, key=rank)


def confusion(outcomes: Sequence[Outcome]) -> dict[str, dict[str, int]]:
    """``{wanted: {got: cases}}``, every column present."""
    table = {want: dict.fromkeys(ORDER, 0) for want in wanted_rows(outcomes)}
    for o in outcomes:
        table[o.want][o.got] += 1
    return table


def tally(outcomes: Sequence[Outcome], key: str) -> dict[str, tuple[int, int]]:
    """``{value of key: (passed, total)}`` in order of first appearance."""
    passed: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for o in outcomes:
        value = str(getattr(o, key))
        total[value] += 1
        passed[value] += o.passed
    return {value: (passed[value], total[value]) for value in total}


def by_kind(outcomes: Sequence[Outcome]) -> dict[str, dict[str, tuple[int, int]]]:
    """Per kind: passed and total for the dev half, the held half and both."""
    table = {}
    for kind in KINDS:
        mine = [o for o in outcomes if o.kind == kind]
        if mine:
            halves = {
                h: tally([o for o in mine if o.half == h], "kind").get(kind, (0, 0)) for h in HALVES
            }
            table[kind] = {**halves, "all": tally(mine, "kind")[kind]}
    return table


def summary(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    passed = sum(o.passed for o in outcomes)
    return {
        "cases": len(outcomes),
        "passed": passed,
        "confusion": confusion(outcomes),
        "by_half": {h: tally(outcomes, "half").get(h, (0, 0)) for h in HALVES},
        "by_kind": by_kind(outcomes),
        "by_language": tally(outcomes, "language"),
        "failing": [o.id for o in outcomes if not o.passed],
    }


def _fraction(pair: tuple[int, int]) -> str:
    return f"{pair[0]}/{pair[1]}" if pair[1] else "-"


def confusion_lines(outcomes: Sequence[Outcome]) -> list[str]:
    table = confusion(outcomes)
    width = max(len(CORNER), *(len(w) for w in table))
    lines = [f"{CORNER:<{width}}  " + "  ".join(f"{g:>8}" for g in ORDER)]
    for want, row in table.items():
        cells = "  ".join(f"{row[g] if row[g] else '.':>8}" for g in ORDER)
        lines.append(f"{want:<{width}}  {cells}")
    return lines


def kind_lines(outcomes: Sequence[Outcome]) -> list[str]:
    lines = [f"{'kind':<22} {'dev':>7} {'held':>7} {'all':>7}"]
    for kind, row in by_kind(outcomes).items():
        lines.append(
            f"{kind:<22} {_fraction(row['dev']):>7} {_fraction(row['held']):>7} "
            f"{_fraction(row['all']):>7}"
        )
    return lines


def failure_lines(outcomes: Sequence[Outcome]) -> list[str]:
    lines = []
    for o in outcomes:
        if o.passed:
            continue
        incidents = (
            ""
            if o.incidents_got == o.incidents_wanted or o.got == QUIET
            else (f", {o.incidents_got} incidents for {o.incidents_wanted}")
        )
        got = ", ".join(o.severities) if len(o.severities) > 1 else o.got
        lines.append(f"- {o.id} [{o.half}, {o.kind}]: want {o.want}, got {got}{incidents}")
        lines.append(f"    {o.reason}")
    return lines


def report(outcomes: Sequence[Outcome], corpus: Path, half: str) -> str:
    facts = summary(outcomes)
    halves = ", ".join(f"{h} {_fraction(facts['by_half'][h])}" for h in HALVES)
    languages = ", ".join(f"{k} {_fraction(v)}" for k, v in sorted(facts["by_language"].items()))
    lines = [
        f"Rule measured: the sweeper package at {Path(sweeper.__file__).parent}",
        f"Corpus: {corpus} (half: {half}); {facts['cases']} cases, {facts['passed']} as wanted.",
        "",
        "Confusion (rows: wanted; columns: what the rule gave; quiet = no incident)",
        *confusion_lines(outcomes),
        "",
        f"Per half (passed/total): {halves}",
        f"Per language: {languages}",
        "",
        "Per kind (passed/total)",
        *kind_lines(outcomes),
        "",
        f"Failing cases ({len(facts['failing'])})",
        *(failure_lines(outcomes) or ["(none)"]),
    ]
    return "\n".join(lines) + "\n"


def as_json(outcomes: Sequence[Outcome], corpus: Path, half: str) -> str:
    document = {
        "rule": str(Path(sweeper.__file__).parent),
        "corpus": str(corpus),
        "half": half,
        "summary": summary(outcomes),
        "cases": [asdict(o) for o in outcomes],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def exit_code(outcomes: Sequence[Outcome], *, strict: bool) -> int:
    """0: a measurement, whatever it says; 1 with ``strict`` when a case is not as wanted."""
    return int(strict and any(not o.passed for o in outcomes))


def chosen(cases: Sequence[Case], half: str, ids: Sequence[str]) -> list[Case]:
    picked = [c for c in cases if half == "all" or c.half == half]
    return [c for c in picked if c.id in ids] if ids else picked


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.judgement",
        description="Measure the severity rule against the labelled corpus.",
    )
    parser.add_argument("--half", choices=(*HALVES, "all"), default="all",
                        help="the cases of one half only (default: all)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when any case is not as wanted")  # fmt: skip
    parser.add_argument("--corpus", type=Path, default=CORPUS,
                        help="the corpus file (default: the one under tests/fixtures)")  # fmt: skip
    parser.add_argument("--case", action="append", default=[], metavar="ID",
                        help="only this case (may be repeated)")  # fmt: skip
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    try:
        cases = chosen(load_corpus(arguments.corpus), arguments.half, arguments.case)
    except CorpusError as exc:
        print(
            f"{arguments.corpus}: the corpus has errors:",
            *exc.problems,
            sep="\n  ",
            file=sys.stderr,
        )
        return 2
    outcomes = judge_all(cases, fresh_settings())
    render = as_json if arguments.json else report
    sys.stdout.write(render(outcomes, arguments.corpus, arguments.half))
    return exit_code(outcomes, strict=arguments.strict)


if __name__ == "__main__":
    sys.exit(main())
