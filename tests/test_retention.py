"""Retention reaches everything sweeper wrote: export files, and incidents reclassify retired."""

from __future__ import annotations

from pathlib import Path

from support.runner import Sweeper

SURVEY = "Victim satisfaction survey - your views"


def close(sweeper: Sweeper, incident_id: int) -> None:
    for status in ("acknowledged", "notified", "closed"):
        step = sweeper.run(
            "incident", "set", str(incident_id), status, "--note", "x", "--by", "DPO"
        )
        assert step.exit_code == 0, step.output


def addresses_of(sweeper: Sweeper, incident_id: int) -> int:
    [row] = sweeper.rows(
        "select count(*) from finding_addresses a join findings f on f.id = a.finding_id "
        "where f.incident_id = ?",
        [incident_id],
    )
    return int(row[0])


def test_purge_removes_the_export_files_of_the_incidents_it_purges_and_names_them(
    sweeper: Sweeper, tmp_path: Path
) -> None:
    assert sweeper.run("sweep").exit_code == 0
    survey = next(i for i in sweeper.incidents() if i["subject"] == SURVEY)
    other = next(i for i in sweeper.incidents() if i["subject"] != SURVEY)
    exports = [tmp_path / "out" / "people.csv", tmp_path / "out" / "people.json"]
    for path in exports:
        fmt = path.suffix[1:]
        result = sweeper.run(
            "incident", "export", str(survey["id"]), "--format", fmt, "--out", str(path)
        )
        assert result.exit_code == 0, result.output
    kept = tmp_path / "out" / "other.csv"
    assert sweeper.run("incident", "export", str(other["id"]), "--out", str(kept)).exit_code == 0
    assert exports[0].read_text().count("\n") == 1 + 1136
    close(sweeper, survey["id"])

    result = sweeper.run("purge", "--older-than", "1m")

    assert result.exit_code == 0, result.output
    assert "Removed 2 export file(s):" in result.stdout
    for path in exports:
        assert f"  {path.absolute()}" in result.stdout
        assert not path.exists()
    assert kept.exists()  # its incident is still open
    again = sweeper.run("purge", "--older-than", "1m")
    assert "export file" not in again.stdout  # each file is dealt with once


def test_an_export_moved_or_replaced_by_a_directory_is_named_not_followed(
    sweeper: Sweeper, tmp_path: Path
) -> None:
    assert sweeper.run("sweep").exit_code == 0
    survey = next(i for i in sweeper.incidents() if i["subject"] == SURVEY)
    path = tmp_path / "people.csv"
    assert sweeper.run("incident", "export", str(survey["id"]), "--out", str(path)).exit_code == 0
    path.unlink()
    path.mkdir()
    close(sweeper, survey["id"])

    result = sweeper.run("purge", "--older-than", "1m")

    assert f"{path.absolute()}: no longer a regular file: left alone" in result.stdout
    assert path.is_dir()


def test_an_export_to_stdout_is_not_recorded(sweeper: Sweeper) -> None:
    assert sweeper.run("sweep").exit_code == 0
    survey = next(i for i in sweeper.incidents() if i["subject"] == SURVEY)

    assert sweeper.run("incident", "export", str(survey["id"]), "--out", "-").exit_code == 0

    assert sweeper.rows("select count(*) from exports")[0][0] == 0


def test_incidents_reclassify_retires_are_listed_with_all_recorded_and_purged(
    sweeper: Sweeper,
) -> None:
    assert sweeper.run("sweep").exit_code == 0
    before = sweeper.incidents()
    text = sweeper.config.read_text().replace(
        "[severity]\n", "[severity]\nhigh_at = 150\ncritical_at = 200\n"
    ) + ("\n[detection]\nmin_visible_external = 100\n")
    sweeper.config.write_text(text)

    summary = sweeper.run("reclassify")

    assert summary.exit_code == 0, summary.output
    shown = sweeper.incidents()
    everything = sweeper.incidents("--all")
    retired = [i for i in everything if not i["active"]]
    large = {i["id"] for i in before if i["largest_batch"] >= 100}
    assert large <= {i["id"] for i in shown}
    for kept in (i for i in shown if i["id"] not in large):  # the floor keeps private people
        assert round(kept["personal_share"] * kept["unique_exposed"]) >= 3, kept
    assert SURVEY in {i["subject"] for i in shown}
    assert {i["id"] for i in everything} == {i["id"] for i in before}
    assert len(retired) == len(before) - len(shown) > 0
    assert f"{len(retired)} no longer at the threshold" in summary.stdout
    first = retired[0]
    history = sweeper.run("incident", "show", str(first["id"])).stdout
    assert "reclassify: no message reaches the threshold under the current rules" in history
    assert addresses_of(sweeper, first["id"]) > 0

    purged = sweeper.run("purge", "--older-than", "1m")

    assert f"of {len(retired)} incident(s)" in purged.stdout
    assert all(addresses_of(sweeper, i["id"]) == 0 for i in retired)
    survey = next(i for i in everything if i["subject"] == SURVEY)
    assert addresses_of(sweeper, survey["id"]) >= 1136  # still open: kept
