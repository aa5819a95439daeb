"""The sweep: every mailbox's Sent Items for a window, classified, findings stored.

Glue over the gateway (fetch), the classifier (classify) and the store (save). Each mailbox
ends in exactly one state, recorded with the run: ``swept``, ``skipped`` (no mailbox) or
``failed`` (with the reason). A failed mailbox never stops the others, and findings read
before a mailbox failed are kept.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlite_utils import Database

from sweeper import store
from sweeper.errors import (
    GraphError,
    MailboxFailed,
    MailboxNotEnabled,
    MailboxStatus,
    RunStatus,
    exit_code_for,
)
from sweeper.graph.answers import LONGEST_WAIT, User
from sweeper.graph.gateway import FirstPage, GraphGateway
from sweeper.graph.signin import gateway_for
from sweeper.logs import show_domains
from sweeper.present.escape import terminal
from sweeper.present.output import table
from sweeper.rules import accounts
from sweeper.rules.classify import Finding, Policy
from sweeper.rules.pages import classify_page
from sweeper.settings import Settings
from sweeper.store.incidents import assign_incidents
from sweeper.when import iso

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime

    def iso(self) -> tuple[str, str]:
        """The window's ends as sweeper stores them (:func:`sweeper.when.iso`)."""
        return iso(self.since), iso(self.until)


@dataclass
class MailboxResult:
    mailbox: str
    status: MailboxStatus
    messages: int = 0
    findings_new: int = 0
    throttled: int = 0
    malformed: int = 0  # page entries that were not message objects
    error: str | None = None
    enabled: bool = True  # False: a disabled account's mailbox (shared, or a leaver's)
    excluded: bool = False  # named by sweep.exclude: recorded, never read
    retry_at: float | None = None  # monotonic time Graph said to come back (long throttling)


@dataclass
class SweepReport:
    run_id: int
    status: RunStatus
    totals: store.RunTotals
    results: list[MailboxResult] = field(default_factory=list)
    error: str | None = None
    window_since: str | None = None
    requests: int = 0  # HTTP round trips to Graph

    @property
    def exit_code(self) -> int:
        """0 all swept, 1 some mailboxes failed, 3 the run failed (2 is for bad settings)."""
        return exit_code_for(self.status)


ProgressHook = Callable[[MailboxResult, int, int], None]


async def run_sweep(
    db: Database,
    gateway: GraphGateway,
    window: Window,
    settings: Settings,
    *,
    only: list[str] | None = None,
    progress: ProgressHook | None = None,
    incremental: bool = False,
) -> SweepReport:
    """Sweep the tenant (or the ``only`` mailboxes) and record the run. Never raises GraphError.

    ``incremental``: each mailbox is read from the end of its last successful window, less
    the overlap, to ``window.until``; a mailbox never swept gets ``window``. A mailbox that
    failed for a week so catches up by itself.
    """
    since, until = window.iso()
    run_id = store.start_run(db, since, until, only)
    totals = store.RunTotals()
    try:
        domains = await gateway.verified_domains()
        users = await gateway.users(include_disabled=settings.include_disabled)
    except GraphError as exc:
        store.finish_run(db, run_id, "failed", totals, str(exc))
        return SweepReport(run_id, "failed", totals, error=str(exc), window_since=since)
    except BaseException:
        store.finish_run(db, run_id, "failed", totals, "interrupted")
        raise

    store.save_tenant_domains(db, domains)
    policy = settings.policy(domains)
    show_domains(policy.internal_domains)  # the log masks every other address
    without_mailbox = {} if only else store.without_mailbox(db)
    plan = accounts.plan_sweep(users, only, settings.exclude, without_mailbox, datetime.now(UTC))
    totals.mailboxes_total = plan.total
    reading = _Reading(
        db, gateway, run_id, totals, policy, settings.page_size, bool(only), progress
    )
    chosen = plan.chosen + await reading.find_named(plan.missing)
    reading.record_passed_over(plan.passed_over)
    marks = store.mailbox_marks(db) if incremental else {}

    def window_for(user: User) -> Window:
        return mailbox_window(marks.get(user.upn), window, settings.overlap)

    groups = accounts.read_groups(chosen, settings.batch, incremental)
    await reading.read_all(groups, window_for, settings.concurrency)
    return _record(db, gateway, settings, reading, since)


def mailbox_window(mark: str | None, window: Window, overlap: timedelta) -> Window:
    """A mailbox's window on an incremental run: from the end of its last good window
    (``mark``) less the overlap, to the run's end; ``window`` for a mailbox never swept."""
    if mark is None:
        return window
    start = datetime.fromisoformat(mark) - overlap
    return Window(min(start, window.until - overlap), window.until)


@dataclass
class _Reading:
    """The read loop of one run: every mailbox read, each recorded with the run at once."""

    db: Database
    gateway: GraphGateway
    run_id: int
    totals: store.RunTotals
    policy: Policy
    page_size: int
    targeted: bool  # the mailboxes were named on purpose (``--mailbox``)
    progress: ProgressHook | None = None
    results: list[MailboxResult] = field(default_factory=list)
    deferred: list[tuple[MailboxResult, User, Window]] = field(default_factory=list)

    def done(self, result: MailboxResult) -> None:
        self.results.append(result)
        _add(self.totals, result)
        if self.progress:
            self.progress(result, len(self.results), self.totals.mailboxes_total)

    async def find_named(self, missing: list[str]) -> list[User]:
        """The named mailboxes not among the users, looked up one by one: a shared mailbox
        or a leaver's is swept too. One not found is recorded failed."""
        found: list[User] = []
        for upn in missing:
            try:
                user = await self.gateway.get_user(upn)
            except GraphError as exc:
                user, reason = None, str(exc)
            else:
                reason = "no user with this name in the tenant"
            if user is not None:
                found.append(user)
                continue
            with store.transaction(self.db):
                store.record_mailbox(
                    self.db, self.run_id, upn, "", "failed", error=reason, targeted=True
                )
            self.done(MailboxResult(upn, "failed", error=reason))
        return found

    def record_passed_over(self, passed_over: list[accounts.PassedOver]) -> None:
        """Recorded with the run; the mailbox's own state stays."""
        for passed in passed_over:
            user = passed.account
            result = MailboxResult(
                user.upn,
                "skipped",
                error=passed.reason,
                enabled=user.enabled,
                excluded=passed.excluded,
            )
            with store.transaction(self.db):
                store.record_mailbox(
                    self.db,
                    self.run_id,
                    result.mailbox,
                    "",
                    "skipped",
                    error=result.error,
                    enabled=result.enabled,
                    run_only=True,
                )
            self.done(result)

    async def read_all(
        self, groups: list[list[User]], window_for: Callable[[User], Window], concurrency: int
    ) -> None:
        """At most ``concurrency`` mailboxes are read at once (per mailbox, one request in
        flight); a mailbox waiting out a Retry-After does not count, so a throttled night
        costs about one Retry-After more than a quiet one, not one per mailbox. An
        interruption marks the run failed."""
        self.gateway.open_slots(concurrency)
        tasks: list[asyncio.Task[None]] = []
        try:
            for group in groups:
                await self.gateway.take_slot()
                windows = {user.id: window_for(user) for user in group}
                tasks.append(asyncio.create_task(self._read_group(group, windows)))
            await asyncio.gather(*tasks)
            await self._read_deferred()
        except BaseException:
            for task in tasks:
                task.cancel()
            store.finish_run(self.db, self.run_id, "failed", self.totals, "interrupted")
            raise

    async def _read_group(self, group: list[User], windows: dict[str, Window]) -> None:
        """Read a group in the slot taken for it. A mailbox waiting out a Retry-After gives
        the slot to another meanwhile (see GraphGateway.slot); a batch's mailboxes are read
        each in a slot of its own, so that one throttled item holds up none of the others."""
        with self.gateway.holding():
            if len(group) == 1:
                await self._read_one(group[0], windows[group[0].id], None)
                return
            firsts = await _first_pages(self.gateway, group, windows)
        await asyncio.gather(
            *(self._read_in_slot(u, windows[u.id], firsts.get(u.id)) for u in group)
        )

    async def _read_in_slot(
        self, user: User, window: Window, first: FirstPage | GraphError | None
    ) -> None:
        async with self.gateway.slot():
            await self._read_one(user, window, first)

    async def _read_one(
        self, user: User, window: Window, first: FirstPage | GraphError | None
    ) -> None:
        result = await self._read(user, window, first)
        if result.retry_at is None:
            self.done(result)
        else:
            self.deferred.append((result, user, window))

    async def _read_deferred(self) -> None:
        """Mailboxes Graph asked to leave alone for minutes: read again now if their time
        has come (or nearly), once; otherwise they stay failed and the next run reads them
        from where their last good read ended."""
        for result, user, window in sorted(self.deferred, key=lambda d: d[0].retry_at or 0.0):
            wait = retry_wait(result.retry_at or 0.0, time.monotonic())
            if wait is None:
                self.done(result)
                continue
            await asyncio.sleep(wait)
            self.done(await self._read(user, window, None, found_before=result.findings_new))

    async def _read(
        self,
        user: User,
        window: Window,
        first: FirstPage | GraphError | None,
        found_before: int = 0,
    ) -> MailboxResult:
        """Read one mailbox's window, store its findings and record how it went, at once.

        ``found_before``: findings this run already stored from an earlier, failed read.
        """
        result, findings = await self._fetch(user, window, first)
        result.throttled = self.gateway.throttled_for(user.id)
        since, until = window.iso()
        with store.transaction(self.db):
            result.findings_new = found_before + store.save_findings(self.db, self.run_id, findings)
            store.record_mailbox(
                self.db,
                self.run_id,
                user.upn,
                user.id,
                result.status,
                messages=result.messages,
                findings_new=result.findings_new,
                throttled=result.throttled,
                malformed=result.malformed,
                error=result.error,
                window_until=until,
                window_since=since,
                targeted=self.targeted,
                enabled=user.enabled,
            )
        _log_mailbox(result)
        return result

    async def _fetch(
        self, user: User, window: Window, first: FirstPage | GraphError | None
    ) -> tuple[MailboxResult, list[Finding]]:
        """The mailbox's pages, classified: how the read went, and the findings read before
        it ended, however it ended."""
        findings: list[Finding] = []
        result = MailboxResult(user.upn, "swept", enabled=user.enabled)
        try:
            pages = self.gateway.sent_pages(
                user, window.since, window.until, self.page_size, first=first
            )
            async for page in pages:
                result.messages += len(page)
                judged = classify_page(
                    user.upn,
                    page,
                    self.policy,
                    department=user.department,
                    job_title=user.job_title,
                )
                findings += judged.findings
                result.malformed += judged.malformed  # counted and shown, never silently dropped
        except MailboxNotEnabled:
            result.status = "skipped"
            result.error = accounts.NO_MAILBOX
        except MailboxFailed as exc:
            _failed(result, exc)
        except Exception as exc:  # a bug must cost one mailbox, visibly, not the whole run
            log.exception("unexpected error sweeping %s", user.upn)
            result.status = "failed"
            result.error = f"internal error: {type(exc).__name__}: {exc}"
        return result, findings


def _failed(result: MailboxResult, exc: MailboxFailed) -> None:
    """A mailbox Graph failed; one that asked to wait longer than a run does, deferred."""
    result.status = "failed"
    result.error = str(exc)
    if exc.retry_after is not None and exc.retry_after >= LONGEST_WAIT:
        result.retry_at = time.monotonic() + exc.retry_after
        result.error = (
            f"still throttled: Graph asked to wait {exc.retry_after:.0f} s (Retry-After), "
            "longer than a run waits; the next run reads this mailbox again"
        )


def _log_mailbox(result: MailboxResult) -> None:
    log.info(
        "%s %s: %d messages, %d new findings%s%s",
        result.mailbox,
        result.status,
        result.messages,
        result.findings_new,
        f", {result.malformed} malformed entries" if result.malformed else "",
        f" ({result.error})" if result.error else "",
    )


def _record(
    db: Database, gateway: GraphGateway, settings: Settings, reading: _Reading, since: str
) -> SweepReport:
    """Group the run's findings into incidents and record how the run ended."""
    totals = reading.totals
    totals.throttled = gateway.throttled_total
    incidents = assign_incidents(
        db,
        settings.incident_window,
        settings.severity,
        run_id=reading.run_id,
        reexposure=settings.reexposure_window,
    )
    totals.incidents_touched = len(incidents)
    status: RunStatus = "partial" if totals.failed else "ok"
    store.finish_run(db, reading.run_id, status, totals)
    results = sorted(reading.results, key=lambda r: r.mailbox)
    return SweepReport(
        reading.run_id, status, totals, results, window_since=since, requests=gateway.requests
    )


LATER_WAIT = 30.0  # at the end of a run, the longest sweeper sleeps for a throttled mailbox


def retry_wait(retry_at: float, now: float, longest: float = LATER_WAIT) -> float | None:
    """Seconds to sleep before reading a long-throttled mailbox again, or None: not this run."""
    wait = max(0.0, retry_at - now)
    return wait if wait <= longest else None


BATCH_TOP = 100  # messages per mailbox in a batch: a quiet night's all, and small in memory


async def _first_pages(
    gateway: GraphGateway, group: list[User], windows: dict[str, Window]
) -> dict[str, FirstPage | GraphError]:
    wanted = [(u, windows[u.id].since, windows[u.id].until) for u in group]
    try:
        return await gateway.first_pages(wanted, BATCH_TOP)
    except GraphError as exc:  # the whole batch failed: each mailbox is fetched on its own
        log.info("a batch of %d mailboxes failed (%s); fetching them one by one", len(group), exc)
        return {}


def _add(totals: store.RunTotals, result: MailboxResult) -> None:
    if result.status == "swept":
        totals.swept += 1
        totals.swept_disabled += not result.enabled
    elif result.status == "skipped":
        totals.skipped += 1
        totals.excluded += result.excluded
    else:
        totals.failed += 1
    totals.messages_read += result.messages
    totals.findings_new += result.findings_new
    totals.malformed += result.malformed


async def sweep_tenant(
    settings: Settings,
    env: Mapping[str, str],
    db: Database,
    window: Window,
    only: list[str] | None = None,
    progress: ProgressHook | None = None,
    incremental: bool = False,
) -> SweepReport:
    """Sign in with the configured method and sweep: what ``sweeper sweep`` runs."""
    async with gateway_for(settings.sign_in, env) as gateway:
        return await run_sweep(
            db,
            gateway,
            window,
            settings,
            only=only or None,
            progress=progress,
            incremental=incremental,
        )


def run_summary(report: SweepReport) -> str:
    """The run in a few lines for the terminal or the nightly log; values escaped."""
    t = report.totals
    line = (
        f"Run {report.run_id} {report.status}: {t.swept} mailboxes swept"
        + (
            f" ({t.swept_disabled} of disabled accounts: shared, leavers')"
            if t.swept_disabled
            else ""
        )
        + f", {t.skipped - t.excluded} skipped (no mailbox), "
        + (f"{t.excluded} excluded (sweep.exclude), " if t.excluded else "")
        + f"{t.failed} failed; {t.messages_read} messages read, "
        f"{t.findings_new} new findings in {t.incidents_touched} new or extended incidents; "
        f"{t.throttled} throttled answers."
    )
    if t.malformed:
        line += (
            f"\n{t.malformed} entries in Graph's answers were not messages and could not be "
            "checked (see the log for the mailboxes)."
        )
    if report.error:
        line += f"\nThe run failed: {terminal(report.error)}"
    failed = [r for r in report.results if r.status == "failed"]
    if failed:
        rows = [(r.mailbox, r.error or "") for r in failed]
        since = terminal(report.window_since or "SINCE")
        line += (
            "\nFailed mailboxes (sweep them again with "
            f"`sweeper sweep --mailbox UPN --since {since}`):\n"
        )
        line += table(("mailbox", "reason"), rows)
    return line
