"""Which accounts a sweep reads: pure rules over the tenant's user list.

Every account that can send is swept: enabled users, and disabled accounts that have a
mailbox (a shared mailbox is a disabled account; so is a leaver whose mailbox is kept),
less those ``sweep.exclude`` names. A disabled account Graph said had no mailbox is not
asked again every night: it is probed again once :data:`PROBE_AGAIN` has passed.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from datetime import datetime, timedelta

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
