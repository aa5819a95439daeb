"""``sweeper lookup``'s run: sign in with the configured method, then find every copy and
batch of a reported message, by its Internet message id or by its subject in a window
(:func:`sweeper.commands.lookup.lookup`)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime

from sqlite_utils import Database

from sweeper.commands.lookup import LookupReport, lookup
from sweeper.graph.signin import gateway_for
from sweeper.settings import Settings


def look_up_reported(
    settings: Settings,
    env: Mapping[str, str],
    db: Database,
    *,
    message_id: str | None,
    subject: str | None,
    since: datetime | None,
    until: datetime,
) -> LookupReport:
    """The lookup by ``message_id`` if given, else by ``subject`` from ``since`` to ``until``."""

    async def look_up() -> LookupReport:
        async with gateway_for(settings.sign_in, env) as gateway:
            if message_id:
                return await lookup(db, gateway, settings, internet_message_id=message_id)
            return await lookup(db, gateway, settings, subject=subject, since=since, until=until)

    return asyncio.run(look_up())
