"""The awareness clock (Article 33): when sweeper detected an incident, when the DPO confirmed
a breach, the two deadlines that follow, shown in the organisation's time zone; and the
worksheet's answers to the authority's breach report."""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from support.runner import Sweeper, write_config

from sweeper.errors import ConfigError
from sweeper.rules import breach
from sweeper.rules.clock import AwarenessClock
from sweeper.settings import load_settings
from sweeper.store import migrations
from sweeper.when import shown_in, time_zone

SURVEY = "Victim satisfaction survey - your views"
DETECTED = "2026-12-01T09:00:00Z"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# -- the clock, as pure rules -----------------------------------------------------------


def test_the_conservative_deadline_runs_from_detection_and_the_other_from_confirmation() -> None:
    clock = AwarenessClock(DETECTED, confirmed_at="2026-12-02T15:30:00Z")

    assert clock.conservative_deadline == "2026-12-04T09:00:00Z"
    assert clock.confirmed_deadline == "2026-12-05T15:30:00Z"
    assert AwarenessClock(DETECTED).confirmed_deadline is None


CONFIRMED = AwarenessClock(DETECTED, confirmed_at="2026-12-03T09:00:00Z")
REPORTED = AwarenessClock(DETECTED, "2026-12-02T09:00:00Z", reported_at="2026-12-03T09:00:00Z")
LATE = AwarenessClock(DETECTED, "2026-12-04T09:00:00Z", reported_at="2026-12-05T14:00:00Z")


@pytest.mark.parametrize(
    ("clock", "now", "status", "standing"),
    [
        (AwarenessClock(DETECTED), "2026-12-01T10:00:00Z", "new", "71 hours left before the "),
        (AwarenessClock(DETECTED), "2026-12-04T08:59:59Z", "new", "0 hours left before the "),
        (AwarenessClock(DETECTED), "2026-12-04T09:00:01Z", "acknowledged", "overdue by 1 hour "),
        (CONFIRMED, "2026-12-04T21:00:00Z", "confirmed", "passed 12 hours ago; 36 hours left"),
        (REPORTED, "2026-12-09T00:00:00Z", "reported_to_authority", "within 72 hours"),
        (LATE, "2026-12-09T00:00:00Z", "reported_to_authority", "29 hours after the conservative"),
        (AwarenessClock(DETECTED), "2026-12-09T00:00:00Z", "false_positive", "not a breach"),
        (CONFIRMED, "2026-12-09T00:00:00Z", "closed", "closed without a report to the authority"),
    ],
)
def test_the_standing_says_how_long_is_left_or_how_late_it_is(
    clock: AwarenessClock, now: str, status: str, standing: str
) -> None:
    assert standing in clock.standing(at(now), status)


@pytest.mark.parametrize(
    ("zone", "shown"),
    [
        ("UTC", "1 Jul 2026 12:00 UTC"),
        ("Europe/London", "1 Jul 2026 13:00 Europe/London (+01:00)"),  # summer time
        ("Asia/Kolkata", "1 Jul 2026 17:30 Asia/Kolkata (+05:30)"),
        ("America/New_York", "1 Jul 2026 08:00 America/New_York (-04:00)"),
    ],
)
def test_moments_are_shown_in_the_zone_named_beside_them(zone: str, shown: str) -> None:
    assert shown_in("2026-07-01T12:00:00Z", zone) == shown


def test_winter_time_has_its_own_offset() -> None:
    assert shown_in("2026-12-01T12:00:00Z", "Europe/London") == (
        "1 Dec 2026 12:00 Europe/London (+00:00)"
    )


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../../etc/passwd", "Europe/"])
def test_a_zone_that_is_not_iana_is_refused_naming_the_setting(name: str) -> None:
    with pytest.raises(ConfigError, match=r"^configuration error: organisation\.timezone: "):
        time_zone(name, "organisation.timezone")


# -- what the list reveals, as pure rules -----------------------------------------------


def test_the_subject_terms_say_who_the_people_are_and_what_data_it_may_be() -> None:
    found = breach.circumstances(["hiv", "clinic"])

    assert [c.people for c in found] == [
        "users of sexual health or HIV services",
        "patients or users of a health or care service",
    ]
    assert found[0].special == "health data and data concerning sex life (Article 9)"


def test_the_sensitive_function_speaks_too_and_each_circumstance_comes_once() -> None:
    function = "department 'Victim Care'"

    found = breach.circumstances(["victim"], function)
    types = breach.people_types(found, function)

    assert [c.people for c in found] == ["victims of crime or abuse"]
    assert types == [
        "victims of crime or abuse",
        "people in contact with a sensitive function of the organisation: department 'Victim Care'",
    ]


def test_a_configured_term_sweeper_has_no_words_for_is_still_named() -> None:
    [found] = breach.circumstances(["parole"])

    assert found.people == "people the term 'parole' describes"
    assert found.special is None


def test_the_consequences_put_what_the_list_reveals_first() -> None:
    lines = breach.consequences(
        people=37,
        named=30,
        personal=37,
        found=breach.circumstances(["hiv"]),
        function=None,
        severity="critical",
    )

    assert lines[0].startswith("Being on the list may reveal that they use sexual health")
    assert (
        "37 people can see the others' email addresses, and 30 of the addresses show a name"
        in lines[1]
    )
    assert lines[2].startswith("37 personal addresses are now known to strangers")
    assert "(Article 34)" in lines[-1]


def test_a_business_list_has_no_revelation_and_no_article_34_line() -> None:
    lines = breach.consequences(
        people=196, named=150, personal=0, found=[], function=None, severity="high"
    )
    low = breach.consequences(
        people=12, named=0, personal=0, found=[], function=None, severity="low"
    )

    assert not any(line.startswith("Being on the list") for line in lines)
    assert "(Article 34)" in lines[-1]
    assert not any("Article 34" in line or "personal address" in line for line in low)


# -- the clock in the database ----------------------------------------------------------


def step(sweeper: Sweeper, incident: int, status: str) -> None:
    result = sweeper.run("incident", "set", str(incident), status, "--note", status, "--by", "DPO")
    assert result.exit_code == 0, result.output


def survey_id(sweeper: Sweeper) -> int:
    return int(next(i["id"] for i in sweeper.incidents() if i["subject"] == SURVEY))


def first_step_at(sweeper: Sweeper, incident: int, status: str) -> str:
    """When the incident's history first moved it to ``status``."""
    [row] = sweeper.rows(
        "select min(at) as at from incident_history where incident_id = ? and to_status = ?",
        [incident, status],
    )
    return str(row["at"])


def moments(sweeper: Sweeper, incident: int) -> sqlite3.Row:
    [row] = sweeper.rows(
        "select created_at, detected_at, confirmed_at from incidents where id = ?", [incident]
    )
    return row


def test_detection_is_stored_and_confirmation_is_the_first_step_that_says_breach(
    sweeper: Sweeper,
) -> None:
    assert sweeper.run("sweep").exit_code == 0
    survey = survey_id(sweeper)
    assert moments(sweeper, survey)["detected_at"] == moments(sweeper, survey)["created_at"]

    step(sweeper, survey, "acknowledged")
    assert moments(sweeper, survey)["confirmed_at"] is None  # looking into it is not awareness
    step(sweeper, survey, "confirmed")
    step(sweeper, survey, "notified")

    confirming = first_step_at(sweeper, survey, "confirmed")
    assert moments(sweeper, survey)["confirmed_at"] == confirming  # not moved by notified


def test_notifying_without_a_confirm_step_confirms_the_breach(sweeper: Sweeper) -> None:
    assert sweeper.run("sweep").exit_code == 0
    survey = survey_id(sweeper)
    step(sweeper, survey, "acknowledged")
    step(sweeper, survey, "reported_to_authority")

    reporting = first_step_at(sweeper, survey, "reported_to_authority")
    assert moments(sweeper, survey)["confirmed_at"] == reporting


def test_a_confirmed_breach_unlikely_to_harm_is_closed_without_a_report(sweeper: Sweeper) -> None:
    assert sweeper.run("sweep").exit_code == 0
    survey = survey_id(sweeper)
    for status in ("acknowledged", "confirmed", "closed"):
        step(sweeper, survey, status)

    sheet = sweeper.run("incident", "report", str(survey)).stdout

    assert "closed without a report to the authority" in sheet


def test_a_merged_incident_was_detected_when_its_first_part_was(sweeper: Sweeper) -> None:
    assert sweeper.run("sweep", "--since", "7d").exit_code == 0
    first, second = sorted(
        i["id"] for i in sweeper.incidents() if i["subject"] == "Support group dates"
    )
    earlier = "2026-01-05T08:00:00Z"  # the later incident had been found first
    with sqlite3.connect(sweeper.db) as conn:
        conn.execute("update incidents set detected_at = ? where id = ?", [earlier, second])
    conn.close()

    result = sweeper.run("lookup", "--subject", "Support group dates", "--since", "7d")

    assert result.exit_code == 0, result.output
    assert moments(sweeper, first)["detected_at"] == earlier


def test_a_database_of_the_previous_release_gains_both_moments_and_reclassifies(
    sweeper: Sweeper,
) -> None:
    assert sweeper.run("sweep").exit_code == 0
    survey = survey_id(sweeper)
    step(sweeper, survey, "acknowledged")
    step(sweeper, survey, "notified")  # the previous release had no confirmed step
    sweeper.as_before("0010_awareness", "incidents", ["detected_at", "confirmed_at"])

    result = sweeper.run("reclassify")

    assert result.exit_code == 0, result.output
    applied = {row[0] for row in sweeper.rows("select name from migrations")}
    assert applied == {name for name, _ in migrations.MIGRATIONS}
    notified = first_step_at(sweeper, survey, "notified")
    row = moments(sweeper, survey)
    assert (row["detected_at"], row["confirmed_at"]) == (row["created_at"], notified)
    others = sweeper.rows("select confirmed_at from incidents where id != ?", [survey])
    assert others and all(r["confirmed_at"] is None for r in others)


# -- shown to the DPO -------------------------------------------------------------------


def in_zone(sweeper: Sweeper, zone: str) -> None:
    text = sweeper.config.read_text()
    write_config(
        sweeper.config, text.replace("[organisation]", f'[organisation]\ntimezone = "{zone}"')
    )


def shown(moment: str, zone: str) -> str:
    return shown_in(moment, zone)


def test_the_worksheet_shows_both_deadlines_labelled_in_the_organisations_zone(
    sweeper: Sweeper,
) -> None:
    assert sweeper.run("sweep").exit_code == 0
    survey = survey_id(sweeper)
    before = sweeper.run("incident", "report", str(survey)).stdout
    step(sweeper, survey, "acknowledged")
    step(sweeper, survey, "confirmed")
    in_zone(sweeper, "Asia/Kolkata")
    row = moments(sweeper, survey)
    zone = "Asia/Kolkata"

    sheet = sweeper.run("incident", "report", str(survey)).stdout

    conservative = (at(row["detected_at"]) + timedelta(hours=72)).strftime("%Y-%m-%dT%H:%M:%SZ")
    confirmed = (at(row["confirmed_at"]) + timedelta(hours=72)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"- When it was discovered: {shown(row['detected_at'], zone)}, by sweeper" in sheet
    assert f"- When the breach was confirmed: {shown(row['confirmed_at'], zone)}" in sheet
    assert (
        "- Deadline, conservative (72 hours from detection): " + shown(conservative, zone)
    ) in sheet
    assert (
        "- Deadline from confirmation (72 hours from confirmation): " + shown(confirmed, zone)
    ) in sheet
    assert "Asia/Kolkata (+05:30)" in sheet and " UTC\n" not in sheet
    assert "(72 hours from confirmation): runs once the breach is confirmed" in before
    assert "- When the breach was confirmed: not yet" in before


def test_the_worksheet_answers_the_breach_report_from_the_records(sweeper: Sweeper) -> None:
    assert sweeper.run("sweep").exit_code == 0
    survey = survey_id(sweeper)
    step(sweeper, survey, "acknowledged")
    step(sweeper, survey, "notified")

    sheet = sweeper.run("incident", "report", str(survey)).stdout

    sections = re.findall(r"(?m)^## \d\. (.+)$", sheet)
    assert sections == [
        "About the breach",
        "Timeline and the Article 33 clock",
        "Categories of personal data",
        "Number of people and records",
        "Types of people concerned",
        "Likely consequences",
        "Measures taken or proposed",
        "Contact",
        "Who has seen the people's details since (sweeper's console)",
    ]
    assert "Nobody has revealed, downloaded or triaged this incident in the console." in sheet
    assert "- How it was found: sweeper's scheduled sweep of the Sent Items." in sheet
    assert "- When it happened: " in sheet
    assert "- People concerned: 1136 (unique external addresses" in sheet
    assert "- Maximum that may be affected: 1136 (no address of the organisation's own" in sheet
    assert "- victims of crime or abuse **[DPO to confirm]**" in sheet
    assert (
        "- people in contact with a sensitive function of the organisation: "
        "department 'Victim Care' **[DPO to confirm]**"
    ) in sheet
    assert (
        "- Special category or criminal offence data: criminal offence data (Article 10)" in sheet
    )
    assert "- Being on the list may reveal that they are victims of a crime" in sheet
    assert "- 1136 personal addresses are now known to strangers" in sheet
    notified = first_step_at(sweeper, survey, "notified")
    assert f"- People told (Article 34): {shown(notified, 'UTC')}" in sheet


def test_the_maximum_counts_the_organisations_own_addresses_shown_with_them(
    sweeper: Sweeper,
) -> None:
    assert sweeper.run("sweep").exit_code == 0
    [(incident, internal)] = sweeper.rows(
        "select f.incident_id, count(distinct a.address) from finding_addresses a "
        "join findings f on f.id = a.finding_id where a.external = 0 and f.qualifies = 1 "
        "group by f.incident_id order by count(distinct a.address) desc limit 1"
    )
    [row] = sweeper.rows("select unique_exposed from incidents where id = ?", [incident])

    sheet = sweeper.run("incident", "report", str(incident)).stdout

    assert (
        f"- Maximum that may be affected: {row['unique_exposed'] + internal} (every address "
        f"shown, {internal} of the organisation's own included)"
    ) in sheet


def test_the_digest_shows_the_clock_of_a_confirmed_breach_in_the_organisations_zone(
    sweeper: Sweeper,
) -> None:
    assert sweeper.run("sweep").exit_code == 0
    survey = survey_id(sweeper)
    step(sweeper, survey, "acknowledged")
    step(sweeper, survey, "confirmed")
    in_zone(sweeper, "Europe/Paris")
    row = moments(sweeper, survey)

    text = sweeper.run("digest", "--dry-run").stdout

    block = text[text.index(f"Incident {survey}:") :].split("\n\n")[0]
    deadline = (at(row["confirmed_at"]) + timedelta(hours=72)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"breach confirmed {shown(row['confirmed_at'], 'Europe/Paris')}" in block
    assert f"report by {shown(deadline, 'Europe/Paris')} (72 hours from confirmation)" in block
    assert "(conservative: 72 hours from detection)" in block
    assert re.search(r"\d+ hours left before the conservative deadline", block)
    assert "Europe/Paris (+01:00)" in text.splitlines()[1]  # the digest's own time too


def test_a_low_incident_shows_no_clock_until_a_breach_is_confirmed(sweeper: Sweeper) -> None:
    assert sweeper.run("sweep").exit_code == 0
    low = next(i["id"] for i in sweeper.incidents() if i["severity"] in ("low", "medium"))

    def block() -> str:
        text = sweeper.run("digest", "--dry-run").stdout
        return text[text.index(f"Incident {low}:") :].split("\n\n")[0]

    assert "ARTICLE 33" not in block()
    step(sweeper, low, "acknowledged")
    step(sweeper, low, "confirmed")
    assert "ARTICLE 33" in block() and "breach confirmed" in block()


# -- settings ---------------------------------------------------------------------------


def test_the_schedule_runs_in_the_organisations_zone_unless_it_names_its_own(
    tmp_path: Path,
) -> None:
    path = write_config(tmp_path / "zone.toml", '[organisation]\ntimezone = "Europe/London"\n')
    settings = load_settings(path, {}, need_graph=False)
    own = load_settings(
        path, {}, need_graph=False, overrides={"schedule": {"timezone": "Asia/Tokyo"}}
    )

    assert (settings.timezone, settings.schedule.timezone) == ("Europe/London", "Europe/London")
    assert own.schedule.timezone == "Asia/Tokyo"
    assert load_settings(None, {}, need_graph=False).timezone == "UTC"


def test_a_wrong_zone_is_one_line_naming_the_setting(sweeper: Sweeper) -> None:
    in_zone(sweeper, "Europe/Atlantis")

    result = sweeper.run("incidents")

    assert result.exit_code == 2
    assert result.output == (
        "sweeper: configuration error: organisation.timezone: 'Europe/Atlantis' is not an IANA "
        "time zone (for example Europe/London or UTC)\n"
    )
    assert "Traceback" not in result.output
