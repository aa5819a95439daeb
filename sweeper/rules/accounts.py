"""Which accounts a sweep reads: pure rules over the tenant's user list.

Every account that can send is swept: enabled users, and disabled accounts that have a
mailbox (a shared mailbox is a disabled account; so is a leaver whose mailbox is kept),
less those ``sweep.exclude`` names. A disabled account Graph said had no mailbox is not
asked again every night: it is probed again once :data:`PROBE_AGAIN` has passed.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar

PROBE_AGAIN = timedelta(days=7)
NO_MAILBOX = "no Exchange Online mailbox (MailboxNotEnabledForRESTAPI)"


def excluded_by(addresses: Iterable[str | None], patterns: Iterable[str]) -> str | None:
    """The first pattern matching any of an account's addresses (UPN, mail), or None."""
    names = [a.strip().lower() for a in addresses if a]
    return next((p for p in patterns if any(fnmatch.fnmatchcase(name, p) for name in names)), None)


def unmatched(patterns: Iterable[str], accounts: Iterable[Iterable[str | None]]) -> list[str]:
    """The patterns that match no account: a typo, or an account that is gone."""
    listed = [list(a) for a in accounts]
    return [p for p in patterns if not any(excluded_by(a, [p]) for a in listed)]


def probe_due(last_probe: str | None, now: datetime) -> bool:
    """Whether a disabled account last found without a mailbox should be asked again."""
    return last_probe is None or now - datetime.fromisoformat(last_probe) >= PROBE_AGAIN


class Account(Protocol):
    """What these rules read of a tenant's user (:class:`sweeper.graph.gateway.User`)."""

    @property
    def upn(self) -> str: ...

    @property
    def mail(self) -> str | None: ...

    @property
    def enabled(self) -> bool: ...


AccountT = TypeVar("AccountT", bound=Account)
BATCH_SIZE = 20  # Graph's most requests in one JSON batch


@dataclass(frozen=True)
class PassedOver:
    """An account a nightly sweep does not read, and why."""

    account: Account
    reason: str
    excluded: bool  # by sweep.exclude; else a disabled account known to have no mailbox


def named(accounts: list[AccountT], only: list[str] | None) -> tuple[list[AccountT], list[str]]:
    """The ``only`` accounts by UPN, each once in the order named, and the names no account
    has; every account without ``only``."""
    if not only:
        return accounts, []
    by_upn = {a.upn: a for a in accounts}
    wanted = list(dict.fromkeys(name.strip().lower() for name in only))
    return [by_upn[w] for w in wanted if w in by_upn], [w for w in wanted if w not in by_upn]


def tonight(
    accounts: list[AccountT],
    exclude: tuple[str, ...],
    without_mailbox: Mapping[str, str],
    now: datetime,
) -> tuple[list[AccountT], list[PassedOver]]:
    """The accounts to read tonight, and those passed over, each with its reason: excluded
    by ``sweep.exclude``, or a disabled account found without a mailbox less than a week ago."""
    read: list[AccountT] = []
    passed: list[PassedOver] = []
    for account in accounts:
        pattern = excluded_by((account.upn, account.mail), exclude)
        if pattern is not None:
            passed.append(PassedOver(account, f"excluded by sweep.exclude ({pattern})", True))
            continue
        probed = without_mailbox.get(account.upn)
        if not account.enabled and probed is not None and not probe_due(probed, now):
            reason = f"{NO_MAILBOX} when probed at {probed}; probed again weekly"
            passed.append(PassedOver(account, reason, False))
            continue
        read.append(account)
    return read, passed


@dataclass
class SweepPlan(Generic[AccountT]):
    """Which accounts a sweep reads, and which it records without reading."""

    chosen: list[AccountT]  # to read
    missing: list[str]  # named on purpose (``--mailbox``) but not among the tenant's users
    passed_over: list[PassedOver]  # recorded skipped: excluded, or known to have no mailbox

    @property
    def total(self) -> int:
        return len(self.chosen) + len(self.missing) + len(self.passed_over)


def plan_sweep(
    accounts: list[AccountT],
    only: list[str] | None,
    exclude: tuple[str, ...],
    without_mailbox: Mapping[str, str],
    now: datetime,
) -> SweepPlan[AccountT]:
    """The ``only`` accounts, else every account but those :func:`tonight` passes over: a
    mailbox named on purpose is read whatever the nightly rules say."""
    chosen, missing = named(accounts, only)
    if only:
        return SweepPlan(chosen, missing, [])
    chosen, passed = tonight(chosen, exclude, without_mailbox, now)
    return SweepPlan(chosen, missing, passed)


def read_groups(accounts: list[AccountT], batch: bool, incremental: bool) -> list[list[AccountT]]:
    """The groups in which a sweep reads mailboxes, each group's first pages in one JSON batch.

    On incremental nights mailboxes go in groups of 20: one JSON batch fetches each group's
    first 100 messages, on a quiet night all there is; anything the batch could not answer
    is fetched again the ordinary way. A first or backfill sweep, busy by nature, is read
    mailbox by mailbox in full pages: measured faster there. Disabled accounts are batched
    on every sweep: most have no mailbox (a leaver's account), or a shared mailbox that
    sends little, so one batch probes twenty of them.
    """
    size = BATCH_SIZE if batch and incremental else 1
    enabled = [a for a in accounts if a.enabled]
    disabled = [a for a in accounts if not a.enabled]
    step = BATCH_SIZE if batch else 1
    groups = [enabled[i : i + size] for i in range(0, len(enabled), size)]
    return groups + [disabled[i : i + step] for i in range(0, len(disabled), step)]
