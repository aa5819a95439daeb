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
from datetime import UTC, datetime

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
    page_size = settings.page_size
    chosen, missing = _choose(users, only)
    passed_over: list[MailboxResult] = []
    if not only:  # a mailbox named on purpose is read whatever the nightly rules say
        chosen, passed_over = _pass_over(
            chosen, settings.exclude, store.without_mailbox(db), datetime.now(UTC)
        )
    totals.mailboxes_total = len(chosen) + len(missing) + len(passed_over)
    results: list[MailboxResult] = []

    def done(result: MailboxResult) -> None:
        results.append(result)
        _add(totals, result)
        if progress:
            progress(result, len(results), totals.mailboxes_total)

    for upn in missing:  # named on purpose: a shared mailbox or a leaver is swept too
        try:
            user = await gateway.get_user(upn)
        except GraphError as exc:
            user, reason = None, str(exc)
        else:
            reason = "no user with this name in the tenant"
        if user is not None:
            chosen.append(user)
            continue
        result = MailboxResult(upn, "failed", error=reason)
        with store.transaction(db):
            store.record_mailbox(db, run_id, upn, "", "failed", error=reason, targeted=True)
        done(result)

    for result in passed_over:  # recorded with the run; the mailbox's own state stays
        with store.transaction(db):
            store.record_mailbox(
                db,
                run_id,
                result.mailbox,
                "",
                "skipped",
                error=result.error,
                enabled=result.enabled,
                run_only=True,
            )
        done(result)

    marks = store.mailbox_marks(db) if incremental else {}

    def window_for(user: User) -> Window:
        mark = marks.get(user.upn)
        if mark is None:
            return window
        start = datetime.fromisoformat(mark) - settings.overlap
        return Window(min(start, window.until - settings.overlap), window.until)

    # On incremental nights mailboxes go in groups of 20: one JSON batch fetches each
    # group's first 100 messages, on a quiet night all there is; anything the batch could
    # not answer is fetched again the ordinary way. A first or backfill sweep, busy by
    # nature, is read mailbox by mailbox in full pages: measured faster there.
    # Disabled accounts are batched on every sweep: most have no mailbox (a leaver's
    # account), or a shared mailbox that sends little, so one batch probes twenty of them.
    size = BATCH_SIZE if settings.batch and incremental else 1
    enabled = [u for u in chosen if u.enabled]
    disabled = [u for u in chosen if not u.enabled]
    step = BATCH_SIZE if settings.batch else 1
    groups = [enabled[i : i + size] for i in range(0, len(enabled), size)]
    groups += [disabled[i : i + step] for i in range(0, len(disabled), step)]

    deferred: list[tuple[MailboxResult, User, Window]] = []

    async def read(
        user: User, window: Window, first: FirstPage | GraphError | None = None, before: int = 0
    ) -> MailboxResult:
        return await _sweep_mailbox(
            db, gateway, run_id, user, window, policy, page_size, bool(only), first, before
        )

    async def read_one(user: User, window: Window, first: FirstPage | GraphError | None) -> None:
        result = await read(user, window, first)
        if result.retry_at is None:
            done(result)
        else:
            deferred.append((result, user, window))

    async def read_in_slot(
        user: User, window: Window, first: FirstPage | GraphError | None
    ) -> None:
        async with gateway.slot():
            await read_one(user, window, first)

    async def read_group(group: list[User]) -> None:
        """Read a group in the slot taken for it. A mailbox waiting out a Retry-After gives
        the slot to another meanwhile (see GraphGateway.slot); a batch's mailboxes are read
        each in a slot of its own, so that one throttled item holds up none of the others."""
        windows = {user.id: window_for(user) for user in group}
        with gateway.holding():
            if len(group) == 1:
                await read_one(group[0], windows[group[0].id], None)
                return
            firsts = await _first_pages(gateway, group, windows)
        await asyncio.gather(*(read_in_slot(u, windows[u.id], firsts.get(u.id)) for u in group))

    # At most sweep.concurrency mailboxes are read at once (per mailbox, one request in
    # flight); a mailbox waiting out a Retry-After does not count, so a throttled night
    # costs about one Retry-After more than a quiet one, not one per mailbox.
    gateway.open_slots(settings.concurrency)
    tasks: list[asyncio.Task[None]] = []
    try:
        for group in groups:
            await gateway.take_slot()
            tasks.append(asyncio.create_task(read_group(group)))
        await asyncio.gather(*tasks)
        # Mailboxes Graph asked to leave alone for minutes: read again now if their time
        # has come (or nearly), once; otherwise they stay failed and the next run reads
        # them from where their last good read ended.
        for result, user, window in sorted(deferred, key=lambda d: d[0].retry_at or 0.0):
            wait = retry_wait(result.retry_at or 0.0, time.monotonic())
            if wait is None:
                done(result)
                continue
            await asyncio.sleep(wait)
            again = await read(user, window, before=result.findings_new)
            done(again)
    except BaseException:
        for task in tasks:
            task.cancel()
        store.finish_run(db, run_id, "failed", totals, "interrupted")
        raise
    totals.throttled = gateway.throttled_total
    incidents = assign_incidents(
        db,
        settings.incident_window,
        settings.severity,
        run_id=run_id,
        reexposure=settings.reexposure_window,
    )
    totals.incidents_touched = len(incidents)
    status: RunStatus = "partial" if totals.failed else "ok"
    store.finish_run(db, run_id, status, totals)
    results.sort(key=lambda r: r.mailbox)
    return SweepReport(
        run_id, status, totals, results, window_since=since, requests=gateway.requests
    )


BATCH_SIZE = 20  # Graph's most requests in one JSON batch
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


def _choose(users: list[User], only: list[str] | None) -> tuple[list[User], list[str]]:
    if not only:
        return users, []
    by_upn = {u.upn: u for u in users}
    wanted = list(dict.fromkeys(name.strip().lower() for name in only))
    return [by_upn[w] for w in wanted if w in by_upn], [w for w in wanted if w not in by_upn]


def _pass_over(
    users: list[User], exclude: tuple[str, ...], without_mailbox: Mapping[str, str], now: datetime
) -> tuple[list[User], list[MailboxResult]]:
    """The accounts to read tonight, and those passed over, each with its reason: excluded
    by ``sweep.exclude``, or a disabled account found without a mailbox less than a week ago."""
    read: list[User] = []
    passed: list[MailboxResult] = []
    for user in users:
        pattern = accounts.excluded_by((user.upn, user.mail), exclude)
        if pattern is not None:
            reason = f"excluded by sweep.exclude ({pattern})"
            skipped = MailboxResult(
                user.upn, "skipped", error=reason, enabled=user.enabled, excluded=True
            )
            passed.append(skipped)
            continue
        probed = without_mailbox.get(user.upn)
        if not user.enabled and probed is not None and not accounts.probe_due(probed, now):
            reason = f"{accounts.NO_MAILBOX} when probed at {probed}; probed again weekly"
            passed.append(MailboxResult(user.upn, "skipped", error=reason, enabled=False))
            continue
        read.append(user)
    return read, passed


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


async def _sweep_mailbox(
    db: Database,
    gateway: GraphGateway,
    run_id: int,
    user: User,
    window: Window,
    policy: Policy,
    page_size: int,
    targeted: bool,
    first: FirstPage | GraphError | None = None,
    found_before: int = 0,
) -> MailboxResult:
    """Read one mailbox's window, store its findings and record how it went, at once.

    ``found_before``: findings this run already stored from an earlier, failed read.
    """
    findings: list[Finding] = []
    result = MailboxResult(user.upn, "swept", enabled=user.enabled)
    try:
        pages = gateway.sent_pages(user, window.since, window.until, page_size, first=first)
        async for page in pages:
            result.messages += len(page)
            judged = classify_page(
                user.upn, page, policy, department=user.department, job_title=user.job_title
            )
            findings += judged.findings
            result.malformed += judged.malformed  # counted and shown, never silently dropped
    except MailboxNotEnabled:
        result.status = "skipped"
        result.error = accounts.NO_MAILBOX
    except MailboxFailed as exc:
        result.status = "failed"
        result.error = str(exc)
        if exc.retry_after is not None and exc.retry_after >= LONGEST_WAIT:
            result.retry_at = time.monotonic() + exc.retry_after
            result.error = (
                f"still throttled: Graph asked to wait {exc.retry_after:.0f} s (Retry-After), "
                "longer than a run waits; the next run reads this mailbox again"
            )
    except Exception as exc:  # a bug must cost one mailbox, visibly, not the whole run
        log.exception("unexpected error sweeping %s", user.upn)
        result.status = "failed"
        result.error = f"internal error: {type(exc).__name__}: {exc}"
    result.throttled = gateway.throttled_for(user.id)
    since, until = window.iso()
    with store.transaction(db):
        result.findings_new = found_before + store.save_findings(db, run_id, findings)
        store.record_mailbox(
            db,
            run_id,
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
            targeted=targeted,
            enabled=user.enabled,
        )
    log.info(
        "%s %s: %d messages, %d new findings%s%s",
        user.upn,
        result.status,
        result.messages,
        result.findings_new,
        f", {result.malformed} malformed entries" if result.malformed else "",
        f" ({result.error})" if result.error else "",
    )
    return result


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
