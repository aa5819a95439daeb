"""Sensitive functions through the real parts: Entra's department read with the user list,
stored with the finding, and judged again by ``reclassify`` without Graph."""

from __future__ import annotations

import re

from support.runner import Sweeper, write_config

from sweeper.store import migrations

HONEYTRAP = "Update on your case"


def honeytrap(sweeper: Sweeper) -> dict[str, object]:
    return next(i for i in sweeper.incidents() if i["subject"] == HONEYTRAP)


def test_the_senders_department_comes_from_entra_and_ranks_the_honeytrap_list(
    sweeper: Sweeper,
) -> None:
    assert sweeper.run("sweep").exit_code == 0

    incident = honeytrap(sweeper)

    assert incident["domains"] == 1  # work addresses at one outside organisation
    assert incident["severity"] == "high"
    assert "at least high: a sensitive function (department 'Investigations')" in str(
        incident["reason"]
    )
    stored = sweeper.rows(
        "select distinct sender_department, sender_job_title from findings "
        "where subject = ? and mailbox = sender",
        [HONEYTRAP],
    )
    assert [tuple(row) for row in stored] == [("Investigations", "Detective Constable")]


def test_reclassify_judges_the_function_again_without_graph(sweeper: Sweeper) -> None:
    assert sweeper.run("sweep").exit_code == 0
    assert honeytrap(sweeper)["severity"] == "high"
    declared = sweeper.config.read_text()
    write_config(sweeper.config, re.sub(r"(?m)^sensitive_departments = .*$", "", declared))
    sweeper.fake.stop()  # no Graph from here on

    result = sweeper.run("reclassify")

    assert result.exit_code == 0, result.output
    after = honeytrap(sweeper)
    assert after["severity"] == "low"  # work contacts at one organisation, nothing else said
    assert "work contacts at 1 organisation" in str(after["reason"])


def test_a_database_of_the_previous_release_gains_the_columns_and_reclassifies(
    sweeper: Sweeper,
) -> None:
    assert sweeper.run("sweep").exit_code == 0
    sweeper.as_before("0008_sender_function", "findings", ["sender_department", "sender_job_title"])

    result = sweeper.run("reclassify")

    assert result.exit_code == 0, result.output
    columns = {row[1] for row in sweeper.rows("pragma table_info(findings)")}
    applied = {row[0] for row in sweeper.rows("select name from migrations")}
    assert {"sender_department", "sender_job_title"} <= columns
    assert applied == {name for name, _ in migrations.MIGRATIONS}
    # Findings stored before the department was read have none: judged as before it.
    assert honeytrap(sweeper)["severity"] == "low"


def test_the_next_digest_says_how_many_severities_reclassify_changed(sweeper: Sweeper) -> None:
    assert sweeper.run("sweep").exit_code == 0
    assert sweeper.run("digest").exit_code == 0  # the period starts here
    declared = sweeper.config.read_text()
    write_config(sweeper.config, re.sub(r"(?m)^sensitive_departments = .*$", "", declared))

    summary = sweeper.run("reclassify")
    text = sweeper.run("digest", "--dry-run").stdout

    changed = re.search(r"\((\d+) changed severity\)", summary.stdout)
    assert changed is not None and int(changed[1]) >= 1  # the honeytrap at least
    line = next(line for line in text.splitlines() if "Reclassified:" in line)
    assert f"and {changed[1]} incident" in line and "changed severity" in line
