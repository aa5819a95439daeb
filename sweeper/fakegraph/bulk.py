"""A large generated tenant for ``make bench``: thousands of mailboxes, mail made on demand.

Each mailbox's Sent Items are generated from its own seed when first asked for and kept in
a small cache, so the local Graph's memory stays bounded however large the tenant is. The
mix: mostly one to three colleagues, some small external threads (work contacts at partner
organisations, now and then a personal address: the shape of a real corporate tenant, where
the Enron corpus has under 0.3% of its sent mail as findings), and about one message in a
thousand a mass-Cc finding.
"""

from __future__ import annotations

import random
import uuid
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any

from sweeper.fakegraph.tenant import (
    FREE_MAIL,
    ORG_DOMAIN,
    PARTNERS,
    FakeUser,
    Tenant,
    recipient,
)

CACHE = 64


class BulkTenant(Tenant):
    """``cache`` mailboxes' mail is kept (None: all of it, for a benchmark's second night)."""

    def __init__(
        self,
        mailboxes: int,
        per_mailbox: int,
        seed: int = 7,
        now: datetime | None = None,
        cache: int | None = CACHE,
    ) -> None:
        rng = random.Random(seed)
        users = [
            FakeUser(str(uuid.UUID(int=rng.getrandbits(128), version=4)), f"user{i}@{ORG_DOMAIN}",
                     f"User {i}")
            for i in range(mailboxes)
        ]  # fmt: skip
        super().__init__(
            tenant_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            domains=[{"id": ORG_DOMAIN, "isVerified": True, "isDefault": True}],
            users=users,
            now=(now or datetime.now(UTC)).replace(microsecond=0),
        )
        self.seed = seed
        self.per_mailbox = per_mailbox
        self._index_of = {u.id: i for i, u in enumerate(users)}
        self.cache_size = cache
        self._cache: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()

    def messages_of(self, user: FakeUser) -> list[dict[str, Any]]:
        cached = self._cache.get(user.id)
        if cached is not None:
            self._cache.move_to_end(user.id)
            return cached
        messages = self._generate(self._index_of[user.id], user)
        self._cache[user.id] = messages
        if self.cache_size is not None and len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return messages

    def message_count(self) -> int:
        return len(self.users) * self.per_mailbox

    def _generate(self, index: int, user: FakeUser) -> list[dict[str, Any]]:
        rng = random.Random(self.seed * 1_000_003 + index)
        me = recipient(user.upn, user.display_name)
        count = len(self.users)
        out: list[dict[str, Any]] = []
        for n in range(self.per_mailbox):
            sent = self.now - timedelta(seconds=rng.randint(60, 23 * 3600))
            stamp = sent.strftime("%Y-%m-%dT%H:%M:%SZ")
            kind = rng.random()
            colleagues = [
                recipient(f"user{rng.randrange(count)}@{ORG_DOMAIN}")
                for _ in range(rng.randint(1, 3))
            ]
            if kind < 0.7:
                to, cc = colleagues, []
            elif kind < 0.999:
                to = [_contact(rng) for _ in range(rng.randint(1, 5))]
                cc = colleagues + [_contact(rng) for _ in range(rng.randint(0, 4))]
            else:  # a mass-Cc mistake
                to, cc = colleagues, [_outside(rng) for _ in range(rng.randint(10, 60))]
            out.append(
                {
                    "@odata.etag": f'W/"{index}-{n}"',
                    "id": f"AAMkAG{index:06d}{n:06d}",
                    "sentDateTime": stamp,
                    "receivedDateTime": stamp,
                    "internetMessageId": f"<{index}.{n}.{rng.getrandbits(32):08x}@bench.example>",
                    "conversationId": f"AAQk{index:06d}{n:06d}",
                    "subject": rng.choice(("Rota", "Minutes", "RE: Case review", "Appointment")),
                    "bodyPreview": "",
                    "body": {"contentType": "html", "content": "<p>(not read)</p>"},
                    "from": me,
                    "sender": me,
                    "toRecipients": to,
                    "ccRecipients": cc,
                    "bccRecipients": [],
                }
            )
        out.sort(key=lambda m: m["sentDateTime"], reverse=True)
        return out


def _contact(rng: random.Random) -> dict[str, Any]:
    """A correspondent of a small thread: a work contact, one in twenty a personal address."""
    if rng.random() < 0.05:
        return _outside(rng)
    return recipient(f"c{rng.getrandbits(24):x}@{rng.choice(PARTNERS)}", "A Contact")


def _outside(rng: random.Random) -> dict[str, Any]:
    return recipient(f"p{rng.getrandbits(40):x}@{rng.choice(FREE_MAIL)}", "A Person")
