"""The bounds of every paging loop: Graph's ``@odata.nextLink`` is followed only so far.

A listing ends when Graph sends no next link. :class:`Paging` makes sure it also ends when
Graph (or something posing as it) never stops sending one: a link already followed in this
listing (a page repeated, or a loop of pages), a link to another origin than Graph's
(scheme, host and effective port: the token is Graph's alone), or more pages than
``max_pages`` (``graph.max_pages``). Each raises the listing's ``failure`` error with the
reason: :class:`~sweeper.errors.MailboxFailed` for a mailbox, which the sweep records
while reading the others, or :class:`~sweeper.errors.GraphError` for a tenant-wide list.
"""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, unquote, urlsplit

from sweeper.errors import GraphError
from sweeper.graph.origins import origin, shown_origin

MAX_PAGES = 10_000  # graph.max_pages' default: 10 million messages at 1,000 a page


class Paging:
    """The next links of one listing, that goes on at ``first_url`` after ``read`` pages."""

    def __init__(
        self,
        first_url: str,
        graph_url: str,
        *,
        max_pages: int = MAX_PAGES,
        failure: type[GraphError] = GraphError,
        read: int = 0,
    ) -> None:
        self._base = graph_url.rstrip("/")
        self._origin = origin(self._base)
        self._max = max_pages
        self._failure = failure
        self._seen = {self._key(self._absolute(first_url))}
        self.pages = read  # pages read so far (a JSON batch may have brought the first)

    def follow(self, link: object) -> str | None:
        """The URL of the next page after one more page was read, or None at the end.

        Raises ``failure`` when the link must not be followed.
        """
        self.pages += 1
        if link is None:
            return None
        if not isinstance(link, str) or not link.strip():
            raise self._failure("Graph's '@odata.nextLink' is not a URL")
        url = self._absolute(link)
        if origin(url) != self._origin:
            raise self._failure(
                f"Graph's next page is on another origin ({shown_origin(url)}, not "
                f"{shown_origin(self._base)}): not followed with sweeper's token"
            )
        key = self._key(url)
        if key in self._seen:
            raise self._failure(
                f"Graph's next link after page {self.pages} repeats a page already read: "
                "the listing would never end, so it was stopped"
            )
        if self.pages >= self._max:
            raise self._failure(
                f"Graph still had more after {self._max} pages (graph.max_pages): stopped "
                "there rather than reading without end"
            )
        self._seen.add(key)
        return url

    def _absolute(self, link: str) -> str:
        return link if "://" in link else f"{self._base}/{link.lstrip('/')}"

    @staticmethod
    def _key(url: str) -> bytes:
        """A link as remembered: 16 bytes, however long Graph made it, the same however its
        path and query are percent-encoded or its query options ordered."""
        parts = urlsplit(url)
        query = sorted(parse_qsl(parts.query, keep_blank_values=True))
        text = repr((origin(url), unquote(parts.path), query))
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
