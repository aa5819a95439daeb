"""After a complaint: lookup, triage, the people to notify, the worksheet, retention."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import stat
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from support.digest import incident_of, swept_with_subject
from support.markup import Rendered, assert_csv_whole, gfm
from support.runner import Sweeper

from sweeper.fakegraph.tenant import recipient

SURVEY = "Victim satisfaction survey - your views"


def db_rows(sweeper: Sweeper, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    return sweeper.rows(sql, params)


def incidents(sweeper: Sweeper, *args: str) -> list[dict[str, Any]]:
    return sweeper.incidents(*args)


def batch_id(sweeper: Sweeper, number: int) -> str:
    return next(
        p.internet_message_id
        for p in sweeper.fake.tenant.planted
        if p.label == f"replay-2012-batch-{number}"
    )


def test_one_message_of_the_2012_replay_finds_all_seven_batches(sweeper: Sweeper) -> None:
    result = sweeper.run("lookup", "--internet-message-id", batch_id(sweeper, 3))

    assert result.exit_code == 0, result.output
    assert "Found 7 message(s) in 1 mailbox(es)" in result.output
    [survey] = incidents(sweeper)
    assert (survey["subject"], survey["messages"], survey["unique_exposed"]) == (SURVEY, 7, 1136)
    assert {f["incident_id"] for f in sweeper.findings()} == {survey["id"]}


def test_a_lookup_after_the_nightly_run_keeps_the_incident_and_adds_a_resend(
    sweeper: Sweeper,
) -> None:
    assert sweeper.run("sweep").exit_code == 0
    before = next(i for i in incidents(sweeper) if i["subject"] == SURVEY)
    # A colleague forwarded it to three more people: under the threshold, still the breach.
    colleague = sweeper.fake.tenant.user("clinic.bookings@northwick.example")
    service = sweeper.fake.tenant.user("victim.care@northwick.example")
    assert colleague is not None and service is not None
    resend = dict(service.sent[-1])
    sent = datetime.fromisoformat(resend["sentDateTime"]) + timedelta(hours=2)
    resend.update(
        id="AAMkAGresend",
        internetMessageId="<resend@northwick.example>",
        sentDateTime=sent.strftime("%Y-%m-%dT%H:%M:%SZ"),
        subject=f"FW: {SURVEY}",
        toRecipients=[recipient(f"extra{i}@gmail.com") for i in range(3)],
        ccRecipients=[],
        conversationId="AAQkAGother",
    )
    colleague.sent.insert(0, resend)

    result = sweeper.run("lookup", "--internet-message-id", batch_id(sweeper, 1))

    assert result.exit_code == 0, result.output
    assert "Found 8 message(s) in 2 mailbox(es)" in result.output
    after = next(i for i in incidents(sweeper) if i["subject"] == SURVEY)
    assert after["id"] == before["id"]
    assert (after["messages"], after["unique_exposed"]) == (8, 1139)
    [row] = db_rows(
        sweeper, "select source, qualifies from findings where message_key = ?",
        ("<resend@northwick.example>",),
    )  # fmt: skip
    assert (row["source"], row["qualifies"]) == ("lookup", 1)
    assert sweeper.run("reclassify").exit_code == 0  # the threshold does not drop it
    assert next(i for i in incidents(sweeper) if i["id"] == after["id"])["messages"] == 8


def test_a_subject_lookup_merges_batches_the_nightly_rule_kept_apart(sweeper: Sweeper) -> None:
    assert sweeper.run("sweep", "--since", "7d").exit_code == 0
    apart = [i for i in incidents(sweeper) if i["subject"] == "Support group dates"]
    assert len(apart) == 2  # 25 hours apart

    result = sweeper.run("lookup", "--subject", "RE: support group dates", "--since", "7d")

    assert result.exit_code == 0, result.output
    [merged] = [i for i in incidents(sweeper) if i["subject"] == "Support group dates"]
    assert merged["id"] == min(i["id"] for i in apart)
    assert (merged["messages"], merged["unique_exposed"]) == (2, 80)
    shown = sweeper.run("incident", "show", str(merged["id"])).output
    assert f"merged incidents {max(i['id'] for i in apart)}" in shown


def test_an_unknown_message_id_says_so(sweeper: Sweeper) -> None:
    result = sweeper.run("lookup", "--internet-message-id", "<nobody@nowhere.example>")
    assert result.exit_code == 3
    assert "no mailbox holds a message with the id <nobody@nowhere.example>" in result.output


def test_every_triage_step_is_recorded_and_an_illegal_one_refused(sweeper: Sweeper) -> None:
    assert sweeper.run("sweep").exit_code == 0
    survey = next(i for i in incidents(sweeper) if i["subject"] == SURVEY)["id"]
    other = next(i for i in incidents(sweeper) if i["subject"] == "Working group agenda")["id"]

    def step(incident: int, status: str, note: str = "noted") -> Any:
        return sweeper.run(
            "incident", "set", str(incident), status, "--note", note, "--by", "A. DPO"
        )

    refused = step(survey, "closed")
    assert refused.exit_code == 2
    assert "an incident that is new can move to acknowledged, not closed" in refused.output
    for status in ("acknowledged", "notified", "reported_to_authority", "closed"):
        assert step(survey, status, f"step to {status}").exit_code == 0
    assert step(survey, "new").exit_code == 2  # closed is the end
    for status in ("acknowledged", "false_positive"):
        assert step(other, status).exit_code == 0

    history = db_rows(
        sweeper, "select by, from_status, to_status, note from incident_history "
        "where incident_id = ? order by id", (survey,),
    )  # fmt: skip
    assert [(h["from_status"], h["to_status"]) for h in history] == [
        ("new", "acknowledged"),
        ("acknowledged", "notified"),
        ("notified", "reported_to_authority"),
        ("reported_to_authority", "closed"),
    ]
    assert {h["by"] for h in history} == {"A. DPO"}
    conn = sqlite3.connect(sweeper.db)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("update incident_history set note = 'rewritten'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("delete from incident_history")
    conn.close()
    listed = {i["id"]: i["status"] for i in incidents(sweeper)}
    assert listed[survey] == "closed" and other not in listed  # a false positive is hidden
    assert {i["id"]: i["status"] for i in incidents(sweeper, "--all")}[other] == "false_positive"
    digest = sweeper.run("digest", "--dry-run").output
    assert SURVEY not in digest and "Working group agenda" not in digest


def test_the_export_lists_each_person_once_privately_and_safely(
    sweeper: Sweeper, tmp_path: Path
) -> None:
    officer = sweeper.fake.tenant.user("victim.care@northwick.example")
    assert officer is not None
    first = officer.sent[-1]
    hostile = dict(first)
    hostile.update(
        id="AAMkAGhostile",
        internetMessageId="<hostile@northwick.example>",
        toRecipients=[
            recipient("-2+3@gmail.com", '=HYPERLINK("http://evil.example","click")'),
            *first["toRecipients"],
        ],
        ccRecipients=first["ccRecipients"][:20],
    )
    officer.sent.append(hostile)
    assert sweeper.run("sweep").exit_code == 0
    survey = next(i for i in incidents(sweeper) if i["subject"] == SURVEY)
    out = tmp_path / "people.csv"

    result = sweeper.run("incident", "export", str(survey["id"]), "--out", str(out))

    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    people = list(csv.DictReader(io.StringIO(out.read_text())))
    assert (len(people), survey["unique_exposed"]) == (1137, 1137)
    assert len({p["address"] for p in people}) == len(people)
    by_address = {p["address"]: p for p in people}
    assert by_address["'-2+3@gmail.com"]["name"] == '\'=HYPERLINK("http://evil.example","click")'
    twice = first["ccRecipients"][0]["emailAddress"]["address"].lower()
    assert (by_address[twice]["field"], by_address[twice]["messages"]) == ("cc", "2")
    assert "<hostile@northwick.example>" in by_address[twice]["message_ids"]

    as_json = sweeper.run("incident", "export", str(survey["id"]), "--format", "json", "--out", "-")
    rows = orjson.loads(as_json.stdout)
    assert rows[0]["message_ids"] and isinstance(rows[0]["message_ids"], list)


@pytest.mark.parametrize(
    "command",
    [("incident", "export", "1"), ("incident", "report", "1"), ("digest",)],
    ids=["export", "worksheet", "digest"],
)
def test_no_out_path_writes_through_a_symbolic_link(
    sweeper: Sweeper, tmp_path: Path, command: tuple[str, ...]
) -> None:
    assert sweeper.run("sweep").exit_code == 0
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me")
    link = tmp_path / "people.csv"
    link.symlink_to(target)

    result = sweeper.run(*command, "--out", str(link))

    assert result.exit_code == 2
    assert "is a symbolic link: refusing to write through it" in result.output
    assert target.read_text() == "keep me"


def test_the_worksheet_figures_match_the_incident(sweeper: Sweeper) -> None:
    assert sweeper.run("sweep").exit_code == 0
    survey = next(i for i in incidents(sweeper) if i["subject"] == SURVEY)
    sweeper.run(
        "incident", "set", str(survey["id"]), "acknowledged",
        "--note", "Recall requested from all recipients", "--by", "A. DPO",
    )  # fmt: skip
    [row] = db_rows(sweeper, "select created_at from incidents where id = ?", (survey["id"],))
    deadline = datetime.fromisoformat(row["created_at"]) + timedelta(hours=72)

    markdown = sweeper.run("incident", "report", str(survey["id"])).output

    assert f"# Personal data breach worksheet: incident {survey['id']}" in markdown
    assert "- Email addresses: 1136 people." in markdown
    assert f"- Names: {survey['named_addresses']} addresses reveal a name" in markdown
    assert "- What being on the list implies: that they are victims of a crime" in markdown
    assert "- People concerned: 1136 (unique external addresses" in markdown
    assert "- Records concerned: 1136" in markdown
    assert "- victims of crime or abuse **[DPO to confirm]**" in markdown
    assert (
        "- Deadline, conservative (72 hours from detection): "
        + f"{deadline:%d %b %Y %H:%M UTC}".lstrip("0")
    ) in markdown
    assert "A. DPO: new → acknowledged: Recall requested from all recipients" in markdown
    assert markdown.count("[DPO to complete]") >= 3
    html = sweeper.run("incident", "report", str(survey["id"]), "--format", "html").output
    assert "<h1>Personal data breach worksheet" in html and "1136 people" in html


def test_purge_removes_addresses_of_closed_incidents_and_keeps_the_counts(
    sweeper: Sweeper,
) -> None:
    assert sweeper.run("sweep").exit_code == 0
    survey = next(i for i in incidents(sweeper) if i["subject"] == SURVEY)
    for status in ("acknowledged", "notified", "closed"):
        sweeper.run("incident", "set", str(survey["id"]), status, "--note", "x", "--by", "DPO")
    kept = sweeper.run("purge", "--older-than", "180d")
    assert "of 0 incident(s)" in kept.output

    result = sweeper.run("purge", "--older-than", "1m")

    assert result.exit_code == 0
    assert "of 1 incident(s)" in result.output
    left = db_rows(
        sweeper, "select count(*) as n from finding_addresses a join findings f "
        "on f.id = a.finding_id where f.incident_id = ?", (survey["id"],),
    )  # fmt: skip
    assert left[0]["n"] == 0
    others = db_rows(sweeper, "select count(*) as n from finding_addresses")[0]["n"]
    assert others > 0  # the other incidents are still open
    assert sweeper.run("reclassify").exit_code == 0
    after = next(i for i in incidents(sweeper) if i["id"] == survey["id"])
    assert (after["unique_exposed"], after["messages"]) == (1136, 7)
    export = sweeper.run("incident", "export", str(survey["id"]))
    assert export.exit_code == 2 and "were removed on" in export.output
    shown = sweeper.run("incident", "show", str(survey["id"])).output
    assert "exposed addresses removed: older than 1 minutes" in shown
    assert "Addresses purged on" in shown


# -- what the export, the worksheet and `incident show` make of hostile text ---------------

LURE = (
    "[Click to verify](https://evil.example) ![](https://evil.example/pixel.gif) "
    '<img src="https://evil.example/p.gif"> https://evil.example www.evil.example '
    "I'm leaving: write to Jane.Doe@gmail.com \u202eexe.txt"
)


def test_a_carriage_return_in_a_name_cannot_start_a_row_of_the_export(
    sweeper: Sweeper, tmp_path: Path
) -> None:
    names = ["\r=1+1", "\n@SUM(A1)", "ok\r\n-2+3", "\t=cmd|' /C calc'!A0"]
    swept_with_subject(sweeper, "names", "Rota", tmp_path, names=names)
    out = tmp_path / "people.csv"

    result = sweeper.run(
        "incident", "export", str(incident_of(sweeper, "names")), "--out", str(out)
    )

    assert result.exit_code == 0, result.output
    text = out.read_text()
    records = assert_csv_whole(text, 6)
    by_address = {r[0]: r for r in records[1:]}
    assert [by_address[f"reader{i}@gmail.com"][1] for i in range(4)] == [
        "' =1+1", "' @SUM(A1)", "ok  -2+3", "' =cmd|' /C calc'!A0",
    ]  # fmt: skip
    assert len(by_address) == 12  # full addresses: the export is the list to write to


def test_the_markdown_worksheet_makes_no_link_or_image_of_hostile_text(
    sweeper: Sweeper, tmp_path: Path
) -> None:
    swept_with_subject(sweeper, "lure", LURE, tmp_path, sender="outsider.person@evil.example")
    incident = incident_of(sweeper, "lure")
    note = "see [here](https://evil.example) or <img src=x onerror=alert(1)>"
    assert sweeper.run("incident", "set", str(incident), "acknowledged", "--note", note,
                       "--by", "**A. DPO**").exit_code == 0  # fmt: skip

    markdown = sweeper.run("incident", "report", str(incident)).stdout
    html = gfm(markdown)

    assert "<a" not in html and "<img" not in html
    assert "I'm leaving" in html and "&#39;" not in markdown and "&#39;" not in html
    page = Rendered(html)
    assert "[Click to verify](https://evil.example)" in page.text
    assert "see [here](https://evil.example) or <img src=x onerror=alert(1)>" in page.text
    assert "**A. DPO**" in page.text
    assert "[U+202E]exe.txt" in page.text and "\u202e" not in markdown
    as_html = sweeper.run("incident", "report", str(incident), "--format", "html").stdout
    for text in (markdown, as_html):
        assert "Jane.Doe@gmail.com" not in text and "outsider.person@evil.example" not in text
        assert "J***@gmail.com" in text and "o***@evil.example" in text
        assert "victim.care@northwick.example" in text  # the mailbox: the tenant's own


def test_incident_show_masks_outside_addresses_and_escapes_for_the_terminal(
    sweeper: Sweeper, tmp_path: Path
) -> None:
    subject = "\x1b[31mPay\x1b[0m \x1b]8;;https://evil.example\x1b\\now\x9b Jane.Doe@gmail.com"
    swept_with_subject(sweeper, "show", subject, tmp_path, sender="outsider.person@evil.example")

    shown = sweeper.run("incident", "show", str(incident_of(sweeper, "show"))).stdout

    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", shown)
    assert "Subject:  \\x1b[31mPay\\x1b[0m \\x1b]8;;https://evil.example\\x1b\\now\\x9b" in shown
    assert "Jane.Doe@gmail.com" not in shown and "J***@gmail.com" in shown
    assert "Sender:   o***@evil.example" in shown
    assert "victim.care@northwick.example" in shown  # the mailbox of each message
    assert "<show@northwick.example>" in shown  # the message id, whole, for `sweeper lookup`


def test_the_default_export_path_is_not_written_through_a_symbolic_link(
    sweeper: Sweeper, tmp_path: Path
) -> None:
    """Issue 24, item 18: every file sweeper writes is opened without following a link."""
    sweeper.with_digest(tmp_path / "reports")
    assert sweeper.run("sweep").exit_code == 0
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me")
    (tmp_path / "reports").mkdir()
    link = tmp_path / "reports" / "incident-1-people.csv"
    link.symlink_to(target)

    result = sweeper.run("incident", "export", "1")

    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"sweeper: {link} is a symbolic link: refusing to write through it"
    ]
    assert target.read_text() == "keep me"
