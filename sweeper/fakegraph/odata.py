"""The bits of OData the local Graph understands: ``$select``, ``$filter``, errors.

Only what sweeper uses is implemented, and anything else is refused the way Graph refuses
it (400 with a Graph-shaped error), so a sweeper bug cannot hide behind a lenient fake.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web


class ODataError(Exception):
    """An error answer: HTTP status, Graph error code and message, optional headers."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self, client_request_id: str | None = None) -> bytes:
        request_id = str(uuid.uuid4())
        return orjson.dumps(
            {
                "error": {
                    "code": self.code,
                    "message": self.message,
                    "innerError": {
                        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                        "request-id": request_id,
                        "client-request-id": client_request_id or request_id,
                    },
                }
            }
        )


def bad_request(message: str, code: str = "BadRequest") -> ODataError:
    return ODataError(400, code, message)


def select_fields(text: str | None, known: Iterable[str], entity: str) -> list[str] | None:
    """The ``$select`` list, or None for all fields. Unknown names are a 400, as in Graph."""
    if text is None:
        return None
    fields = [f.strip() for f in text.split(",") if f.strip()]
    known_lower = {k.lower(): k for k in known}
    chosen = []
    for name in fields:
        if name.lower() not in known_lower:
            raise bad_request(
                f"Could not find a property named '{name}' on type 'microsoft.graph.{entity}'.",
                "RequestBroker--ParseUri",
            )
        chosen.append(known_lower[name.lower()])
    return chosen


def project(item: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    """Graph always returns ``id`` (and an etag where the entity has one) with ``$select``,
    and the ``@odata.type`` of an entity of a derived type (an eventMessage among messages)."""
    if fields is None:
        return item
    kept = ("@odata.type", "@odata.etag", "id")
    out: dict[str, Any] = {k: item[k] for k in kept if k in item}
    for name in fields:
        if name in item:
            out[name] = item[name]
    return out


_CLAUSE = re.compile(
    r"^\s*(?P<prop>[A-Za-z]+)\s+(?P<op>eq|ne|ge|gt|le|lt)\s+(?P<value>'(?:[^']|'')*'|\S+)\s*$",
    re.IGNORECASE,
)
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "ge": lambda a, b: a >= b,
    "gt": lambda a, b: a > b,
    "le": lambda a, b: a <= b,
    "lt": lambda a, b: a < b,
}


def parse_filter(
    text: str | None, allowed: dict[str, str]
) -> Callable[[dict[str, Any]], bool] | None:
    """A predicate for ``prop op value [and prop op value]...``.

    ``allowed`` maps property name to its type: ``"datetime"``, ``"bool"`` or ``"string"``
    (a quoted literal, ``''`` for a quote; only ``eq`` and ``ne``). Anything else
    (or, functions, unknown properties, a malformed literal) is a 400 like Graph's.
    """
    if text is None:
        return None
    tests: list[Callable[[dict[str, Any]], bool]] = []
    for clause in _split_and(text.strip()):
        match = _CLAUSE.match(clause)
        if not match:
            raise bad_request(f"Invalid filter clause: '{clause}'.")
        prop, op, raw = match["prop"], match["op"].lower(), match["value"]
        kind = {k.lower(): v for k, v in allowed.items()}.get(prop.lower())
        if kind is None:
            raise bad_request(f"Unsupported filter on property '{prop}'.", "ErrorInvalidProperty")
        name = next(k for k in allowed if k.lower() == prop.lower())
        if kind == "string" and op not in ("eq", "ne"):
            raise bad_request(f"Operator '{op}' is not supported on '{prop}'.")
        tests.append(_clause_test(name, op, _literal(kind, raw)))
    return lambda item: all(test(item) for test in tests)


def _split_and(text: str) -> list[str]:
    """Split on `` and `` outside quoted literals (a message id may contain anything)."""
    parts, current, quoted, i = [], "", False, 0
    while i < len(text):
        if text[i] == "'":
            quoted = not quoted
        if not quoted and text[i : i + 5].lower() == " and ":
            parts.append(current)
            current, i = "", i + 5
            continue
        current += text[i]
        i += 1
    parts.append(current)
    return parts


def _literal(kind: str, raw: str) -> Any:
    if kind == "string":
        if len(raw) < 2 or raw[0] != "'" or raw[-1] != "'":
            raise bad_request(f"'{raw}' is not a string literal.")
        return raw[1:-1].replace("''", "'")
    if kind == "bool":
        if raw.lower() not in ("true", "false"):
            raise bad_request(f"'{raw}' is not a boolean literal.")
        return raw.lower() == "true"
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise bad_request(
            f"The DateTimeOffset text '{raw}' should be in format "
            "'yyyy-mm-ddThh:mm:ss('.'s+)?(zzzzzz)?' and each field value is within valid range.",
            "BadRequest",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _clause_test(name: str, op: str, value: Any) -> Callable[[dict[str, Any]], bool]:
    compare = _OPS[op]

    def test(item: dict[str, Any]) -> bool:
        actual = item.get(name)
        if isinstance(value, datetime):
            if not isinstance(actual, str):
                return False
            actual = datetime.fromisoformat(actual)
        return bool(compare(actual, value))

    return test


def json_answer(body: Any, status: int = 200) -> web.Response:
    """A JSON answer, as every listener of the local Graph gives them."""
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")
