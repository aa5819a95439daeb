"""An incident merge (``sweeper lookup``) keeps everything attached to the merged incidents.

The survivor shows every console access, triage step, decision, alert, digest report and
export file of the incidents merged into it (issue 24, item 6).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from support.console import Console, serving
from support.runner import Sweeper

from sweeper import store
from sweeper.fakegraph.tenant import CONSOLE_DPO
from sweeper.store import merges
from sweeper.store.alerts import alerted, claim, settle, to_retry
from sweeper.store.audit import accesses, record_access
from sweeper.store.digests import build
from sweeper.store.triage import history

SUBJECT = "Support group dates"
MERGED = "since merged into this one"


def two_incidents(sweeper: Sweeper) -> tuple[int, int]:
    """The two incidents the nightly rule keeps apart (25 hours between the batches)."""
    assert sweeper.run("sweep", "--since", "7d").exit_code == 0
    first, second = sorted(i["id"] for i in sweeper.incidents() if i["subject"] == SUBJECT)
    return first, second


def merge(sweeper: Sweeper) -> None:
    result = sweeper.run("lookup", "--subject", SUBJECT, "--since", "7d")
    assert result.exit_code == 0, result.output


def look(console: Console, browser: httpx.Client, incident: int, *steps: str) -> None:
    """Reveal the incident's people, or take triage steps, as the signed-in DPO."""
    page = browser.get(f"/incidents/{incident}")
    for step in steps:
        if step == "reveal":
            done = browser.post(f"/incidents/{incident}/reveal", data={"csrf": console.csrf(page)})
            assert done.status_code == 200
        else:
            form = {"csrf": console.csrf(page), "status": step, "note": f"step {step}"}
            done = browser.post(f"/incidents/{incident}/triage", data=form)
            assert done.status_code == 303, done.text


def test_the_surviving_incident_shows_all_four_accesses_and_the_merged_decision(
    sweeper: Sweeper,
) -> None:
    first, second = two_incidents(sweeper)
    with serving(sweeper) as console:
        browser = console.browser()
        console.sign_in(browser, CONSOLE_DPO, f"/incidents/{first}")
        look(console, browser, first, "reveal")
        assert browser.get(f"/incidents/{first}/export").status_code == 200
        look(console, browser, second, "acknowledged", "confirmed")

        merge(sweeper)

        page = browser.get(f"/incidents/{first}").text
        away = browser.get(f"/incidents/{second}").text
    assert f'merged into <a href="/incidents/{first}">incident {first}</a>' in away
    trail = page.split("Who looked")[1]
    assert trail.count("Margaret Osei (margaret.osei@northwick.example)") == 4
    assert trail.count(f"(incident {second}, {MERGED})") == 2
    assert f"acknowledged → confirmed by {CONSOLE_DPO}: step confirmed (incident {second}" in page
    sheet = sweeper.run("incident", "report", str(first)).stdout
    section = sheet.split("## 9. Who has seen the people's details since")[1]
    listed = [line for line in section.splitlines() if line.startswith("- ")]
    actions = [line.split(": ")[1].split(",")[0].split(" ")[0] for line in listed]
    assert actions == ["reveal", "export", "triage", "triage"]
    # The merged part was confirmed a breach: the survivor is, from the same moment.
    [survivor] = sweeper.rows("select status, confirmed_at from incidents where id = ?", [first])
    [part] = sweeper.rows("select confirmed_at, merged_into from incidents where id = ?", [second])
    assert (survivor["status"], survivor["confirmed_at"]) == ("confirmed", part["confirmed_at"])
    assert part["merged_into"] == first
    merged_sheet = sweeper.run("incident", "report", str(second)).stdout
    assert f"Merged into incident {first}: its worksheet covers" in merged_sheet
    shown = sweeper.run("incident", "show", str(first)).output
    assert f"merged incidents {second} (confirmed); status confirmed" in shown


def incident_references(db: store.Database) -> set[tuple[str, str]]:
    """Every (table, column) of the schema that may hold an incident's id, found by name:
    ``incident_id``, ``merged_into``, and the item of a table of items of several kinds."""
    found = set()
    for (table,) in db.execute("select name from sqlite_master where type = 'table'"):
        names = [column.name for column in db.table(table).columns]
        for name in names:
            if name in ("incident_id", "merged_into") or (
                "kind" in names and name.startswith("item")
            ):
                found.add((table, name))
    return found


def record_alert(db: store.Database, *, error: str | None, **alert: Any) -> None:
    """One alert delivered (``error`` None) or failed, claimed and settled as a run does."""
    held = claim(db, **alert)
    assert held is not None
    settle(db, held, "failed" if error else "sent", error, tried=True)


def attach_everything(sweeper: Sweeper, tmp_path: Path, incidents: tuple[int, ...]) -> None:
    """A row in every table that refers to an incident, for each of ``incidents``."""
    reports = tmp_path / "reports"
    sweeper.with_digest(reports)
    sent = sweeper.run("digest", "--send")
    assert sent.exit_code == 0, sent.output
    db = store.open_db(sweeper.db)
    for incident in incidents:
        out = tmp_path / f"people-{incident}.csv"
        assert sweeper.run("incident", "export", str(incident), "--out", str(out)).exit_code == 0
        step = ("incident", "set", str(incident), "acknowledged", "--by", "dpo", "--note", "seen")
        assert sweeper.run(*step).exit_code == 0
        record_access(
            db, who=CONSOLE_DPO, name="Margaret Osei", source="127.0.0.1", action="reveal",
            incident_id=incident,
        )  # fmt: skip
        record_alert(
            db, incident_id=incident, key="new:high", kind="new", channel="teams",
            severity="high", unique_exposed=40, error=None, run_id=None,
        )  # fmt: skip
        record_alert(
            db, incident_id=incident, key="grew:41", kind="grew", channel="teams",
            severity="high", unique_exposed=41, error="503 from the channel", run_id=None,
        )  # fmt: skip


def test_after_a_merge_nothing_is_left_behind_on_the_merged_away_incident(
    sweeper: Sweeper, tmp_path: Path
) -> None:
    first, second = two_incidents(sweeper)
    attach_everything(sweeper, tmp_path, (first, second))
    db = store.open_db(sweeper.db)
    references = incident_references(db)
    classified = {**merges.MOVED, **merges.READ_THROUGH}
    # A table that refers to incidents and is in no list: say how it follows a merge.
    assert references == set(classified.items()) | set(merges.OWN_RECORDS.items())
    before = {
        (table, column): db.execute(
            f"select count(*) from {table} where {column} = ?"
            + (" and kind = 'incident'" if table == "digest_items" else ""),
            [second],
        ).fetchone()[0]
        for table, column in classified.items()
        if table != "incidents"
    }
    assert all(before.values()), before  # every attachment is there to follow

    merge(sweeper)

    for table, column in merges.MOVED.items():
        left = db.execute(f"select count(*) from {table} where {column} = ?", [second])
        assert left.fetchone()[0] == 0, f"{table}.{column} still points at incident {second}"
    assert merges.family(db, first) == [first, second]
    assert {a.incident_id for a in accesses(db, first)} == {first, second}
    assert {h["incident_id"] for h in history(db, first)} == {first, second}
    state = alerted(db)
    assert first in state and second not in state
    # A failed alert of the merged-away incident is not tried again: its survivor's is.
    assert {row["incident_id"] for row in to_retry(db)} == {first}
    exports = db.execute("select distinct incident_id from exports").fetchall()
    assert [e[0] for e in exports] == [first]
    # The digest reported both parts: to the next one the survivor has grown from the
    # larger of them, and the merged-away part is not reported again.
    reported = db.execute(
        "select max(unique_exposed) from digest_items where kind = 'incident' and item_id in "
        "(?, ?)",
        [first, second],
    ).fetchone()[0]
    digest = build(db, datetime.now(UTC))
    assert [item.id for item in digest.new] == []
    [grown] = [item for item in digest.grown if item.id in (first, second)]
    assert (grown.id, grown.reported_before) == (first, reported)


def test_a_database_with_chained_merges_names_each_survivor_directly(tmp_path: Path) -> None:
    """Merges made before each merge flattened the earlier ones: 3 into 2, then 2 into 1."""
    path = tmp_path / "sweeper.db"
    db = store.open_db(path)
    for _ in range(4):
        db.table("incidents").insert({"subject": "Support group dates", "active": 1})
    db.execute("update incidents set merged_into = 2 where id = 3")
    db.execute("update incidents set merged_into = 1 where id = 2")
    db.execute("delete from migrations where name = '0021_merge_follows'")
    db.execute("drop index idx_incidents_merged_into")
    db.conn.commit()
    db.close()

    db = store.open_db(path)

    merged = db.execute("select id, merged_into from incidents order by id").fetchall()
    assert [tuple(row) for row in merged] == [(1, None), (2, 1), (3, 1), (4, None)]
    assert merges.family(db, 1) == [1, 2, 3]
    plan = db.execute(
        "explain query plan select id from incidents where merged_into = ?", [1]
    ).fetchall()
    assert "idx_incidents_merged_into" in " ".join(str(step[-1]) for step in plan)
