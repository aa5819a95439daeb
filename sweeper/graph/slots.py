"""Reading slots: how many mailboxes are read at once, none of them held while throttled.

The sweep takes a slot for a mailbox (or a batch of them) before reading it; the task that
reads it holds the slot until it is done, less the time it waits out a ``Retry-After``, so
that another mailbox is read meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass


@dataclass
class _Hold:
    held: bool = True


_HOLDING: contextvars.ContextVar[_Hold | None] = contextvars.ContextVar("slot", default=None)


class ReadingSlots:
    """At most a given number of mailboxes read at once; unbounded until :meth:`open`."""

    def __init__(self) -> None:
        self._slots: asyncio.Semaphore | None = None

    def open(self, count: int) -> None:
        """At most ``count`` mailboxes are read at once (``sweep.concurrency``)."""
        self._slots = asyncio.Semaphore(count)

    async def take(self) -> None:
        """Wait for a free slot, for a mailbox (or a batch of them) about to be read; the
        task that reads it then holds it with :meth:`holding`."""
        if self._slots is not None:
            await self._slots.acquire()

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """This task holds the slot taken for it until the block ends, less the time it
        waits out a Retry-After (see :meth:`wait_throttled`)."""
        hold = _Hold()
        token = _HOLDING.set(hold)
        try:
            yield
        finally:
            _HOLDING.reset(token)
            if self._slots is not None and hold.held:
                self._slots.release()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Take a slot and hold it for the block."""
        await self.take()
        with self.holding():
            yield

    async def wait_throttled(self, seconds: float) -> None:
        """Wait out a ``Retry-After`` without holding a slot: another mailbox is read
        meanwhile. Reads that run outside the slots (tenant-wide lists) just sleep."""
        hold = _HOLDING.get()
        if self._slots is None or hold is None or not hold.held:
            await asyncio.sleep(seconds)
            return
        hold.held = False
        self._slots.release()
        try:
            await asyncio.sleep(seconds)
        finally:
            await self._slots.acquire()
            hold.held = True
