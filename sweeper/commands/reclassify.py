"""``sweeper reclassify``: judge every stored finding again under the current configuration.

No Graph call: it uses the facts stored with each finding (all visible recipients, counts,
subject, sender) and the tenant's verified domains recorded by the last sweep. What it can
change: internal domains (``own_domains``), the threshold (raising it drops findings, which
stay stored and marked; lowering it cannot find messages that were never stored: sweep the
window again for that), the severity rule and the allowlists.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlite_utils import Database

from sweeper import store
from sweeper.errors import StorageError
from sweeper.rules.classify import Finding, judge
from sweeper.settings import Settings
from sweeper.store.incidents import (
    activity,
    assign_incidents,
    record_rejudgement,
    refresh_all,
    severities,
)
from sweeper.store.merges import regroup_reexposures
from sweeper.store.triage import record


@dataclass
class ReclassifyReport:
    findings: int = 0
    severity_changed: int = 0
    newly_suppressed: int = 0
    no_longer_suppressed: int = 0
    dropped: int = 0  # no longer at the threshold
    restored: int = 0  # qualify again
    incidents: int = 0
    incidents_changed: int = 0  # incidents whose severity changed
    regrouped: int = 0  # incidents merged into an earlier one whose list they showed again
    deactivated: int = 0  # incidents none of whose findings qualifies now
    reactivated: int = 0

    def summary(self) -> str:
        return (
            f"Re-judged {self.findings} findings: {self.severity_changed} changed severity, "
            f"{self.newly_suppressed} newly suppressed, {self.no_longer_suppressed} no longer "
            f"suppressed, {self.dropped} now below the threshold, {self.restored} qualify again; "
            f"{self.incidents} incidents recomputed ({self.incidents_changed} changed severity"
            + (
                f", {self.regrouped} merged into an earlier incident whose list they showed again"
                if self.regrouped
                else ""
            )
            + ")"
            + (
                f", {self.deactivated} no longer at the threshold (`sweeper incidents --all` "
                "lists them; `sweeper purge` removes their addresses after retention)"
                if self.deactivated
                else ""
            )
            + (f", {self.reactivated} at the threshold again" if self.reactivated else "")
            + "."
        )


def reclassify(db: Database, settings: Settings) -> ReclassifyReport:
    domains = store.verified_domains(db)
    if not domains:
        raise StorageError("no tenant domains are recorded yet: run `sweeper sweep` first")
    policy = settings.policy(domains)
    # What a lookup found belongs to a reported breach, whatever the threshold.
    any_exposure = replace(policy, min_visible_external=1)
    report = ReclassifyReport()
    with store.transaction(db):
        for finding_id, facts, source in list(store.stored_facts(db)):
            finding = judge(facts, any_exposure if source == "lookup" else policy)
            external = (
                r.address for r in facts.recipients if not policy.is_internal_domain(r.domain)
            )
            before = store.update_judgement(db, finding_id, finding, external)
            report.findings += 1
            _count(report, before, finding)
    active_before, severity_before = activity(db), severities(db)
    assign_incidents(
        db, settings.incident_window, settings.severity, reexposure=settings.reexposure_window
    )
    with store.transaction(db):
        report.regrouped = len(
            regroup_reexposures(db, settings.severity, settings.reexposure_window)
        )
    report.incidents = refresh_all(db, settings.severity)
    _record_activity(db, active_before, report)
    after = severities(db)
    report.incidents_changed = sum(
        1 for i, level in severity_before.items() if after.get(i, level) != level
    )
    record_rejudgement(db, report.findings, report.severity_changed, report.incidents_changed)
    return report


def _record_activity(
    db: Database, before: dict[int, tuple[bool, str]], report: ReclassifyReport
) -> None:
    """Note in each incident's history when reclassify took it out of, or back into, view."""
    with store.transaction(db):
        for incident_id, (active, status) in activity(db).items():
            was = before.get(incident_id, (True, status))[0]
            if was == active:
                continue
            if active:
                report.reactivated += 1
                note = "reclassify: reaches the threshold again under the current rules"
            else:
                report.deactivated += 1
                note = "reclassify: no message reaches the threshold under the current rules"
            record(db, incident_id, by="sweeper reclassify", from_status=status,
                   to_status=status, note=note)  # fmt: skip


def _count(report: ReclassifyReport, before: dict[str, Any], finding: Finding | None) -> None:
    qualified = bool(before["qualifies"])
    if finding is None:
        report.dropped += int(qualified)
        return
    report.restored += int(not qualified)
    report.severity_changed += int(before["severity"] != finding.severity)
    was_suppressed = before["suppressed_by"] is not None
    now_suppressed = finding.suppressed_by is not None
    report.newly_suppressed += int(now_suppressed and not was_suppressed)
    report.no_longer_suppressed += int(was_suppressed and not now_suppressed)
