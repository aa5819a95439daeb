"""Which incidents are alerted, and under which key: once per incident and level."""

from __future__ import annotations

from sweeper.rules.alerts import Alerted, IncidentNow, due, trial_alert


def test_a_new_incident_at_the_floor_or_above_is_alerted_most_severe_first() -> None:
    incidents = [
        IncidentNow(1, "medium", 12),
        IncidentNow(2, "high", 20),
        IncidentNow(3, "critical", 1136),
    ]

    alerts = due(incidents, {}, min_severity="high")

    assert [(a.incident_id, a.kind, a.key) for a in alerts] == [
        (3, "new", "new:critical"),
        (2, "new", "new:high"),
    ]


def test_nothing_is_alerted_twice_for_the_same_level_and_size() -> None:
    incidents = [IncidentNow(3, "critical", 1136)]

    assert due(incidents, {3: Alerted("critical", 1136)}) == []


def test_a_rise_in_severity_is_alerted_once() -> None:
    [rose] = due([IncidentNow(2, "critical", 30)], {2: Alerted("high", 20)})

    assert (rose.kind, rose.key) == ("rose", "rose:critical")


def test_growth_is_alerted_from_the_configured_share() -> None:
    before = {3: Alerted("critical", 119)}

    assert due([IncidentNow(3, "critical", 178)], before, grew_by=0.5) == []
    [grew] = due([IncidentNow(3, "critical", 179)], before, grew_by=0.5)
    assert (grew.kind, grew.key) == ("grew", "grew:179")
    assert due([IncidentNow(3, "critical", 120)], before, grew_by=0.0)  # any growth at all


def test_dismissed_inactive_or_allowlisted_incidents_are_never_alerted() -> None:
    incidents = [
        IncidentNow(1, "critical", 50, dismissed=True),
        IncidentNow(2, "critical", 50, active=False),
        IncidentNow(3, "critical", 50, suppressed=True),
    ]

    assert due(incidents, {}) == []


def test_the_trial_alert_says_it_is_about_no_incident() -> None:
    alert = trial_alert("2026-12-02T10:00:00Z")

    assert alert.headline == "sweeper test alert: this channel works (no incident)"
    assert alert.incident_id == 0 and alert.samples == ()
