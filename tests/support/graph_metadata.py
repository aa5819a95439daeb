"""Graph v1.0's own description (``fixtures/graph-v1.0-subset.json``) and checks against it.

Every object the local Graph answers with must be one Graph could send: declared
properties only, each of its declared type.
"""

from __future__ import annotations

import base64
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "graph-v1.0-subset.json"
GRAPH = orjson.loads(FIXTURE.read_bytes())
TYPES: dict[str, Any] = GRAPH["types"]
ENUMS: dict[str, list[str]] = GRAPH["enums"]
# OData's control information, not properties: allowed on any object of an answer.
ANNOTATIONS = {"@odata.type", "@odata.etag", "@odata.id", "@removed"}
# Types Graph answers with whole when no $select is given (a user comes with a default few
# of its properties only): every property declared not nullable is in such an answer.
WHOLE_BY_DEFAULT = {"domain", "message"}
ISO_8601 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?(Z|[+-]\d\d:\d\d)$")
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


# -- the description -----------------------------------------------------------------------


def lineage(name: str) -> list[str]:
    """The type and its base types, the type first."""
    chain = [name]
    while TYPES[chain[-1]]["base"]:
        chain.append(TYPES[chain[-1]]["base"])
    return chain


def declared(name: str) -> dict[str, dict[str, Any]]:
    """A type's structural properties, its base types' included."""
    out: dict[str, dict[str, Any]] = {}
    for each in reversed(lineage(name)):
        out.update(TYPES[each]["properties"])
    return out


def navigation(name: str) -> set[str]:
    return {n for each in lineage(name) for n in TYPES[each].get("navigation", ())}


# -- checking a value against its declared type ---------------------------------------------


def problems(value: Any, kind: str, nullable: bool, where: str) -> list[str]:
    """What is wrong with ``value`` as a value of the declared type ``kind``."""
    if kind.startswith("Collection("):
        if not isinstance(value, list):
            return [f"{where}: a collection is an array, never {value!r}"]
        inner = kind[len("Collection(") : -1]
        each = (problems(item, inner, nullable, f"{where}[{i}]") for i, item in enumerate(value))
        return [p for found in each for p in found]
    if value is None:
        return [] if nullable else [f"{where}: null, but declared not nullable"]
    if kind.startswith("Edm."):
        return [] if primitive_ok(value, kind) else [f"{where}: {value!r} is not {kind}"]
    if kind in ENUMS:
        ok = isinstance(value, str) and value in ENUMS[kind]
        return [] if ok else [f"{where}: {value!r} is no member of {kind} {ENUMS[kind]}"]
    if kind not in TYPES:
        return [f"{where}: type {kind} is not in the fixture (add it to tools/graph_metadata.py)"]
    return object_problems(value, kind, where, whole=True)


def primitive_ok(value: Any, kind: str) -> bool:
    if kind == "Edm.String":
        return isinstance(value, str)
    if kind == "Edm.Boolean":
        return isinstance(value, bool)
    if kind in ("Edm.Int32", "Edm.Int64"):
        bits = 31 if kind == "Edm.Int32" else 63
        return type(value) is int and -(2**bits) <= value < 2**bits
    if kind == "Edm.Double":
        return type(value) in (int, float)
    if kind == "Edm.DateTimeOffset":
        return isinstance(value, str) and bool(ISO_8601.match(value)) and moment_ok(value)
    if kind == "Edm.Guid":
        return isinstance(value, str) and bool(GUID.match(value))
    if kind == "Edm.Binary":
        return isinstance(value, str) and base64_ok(value)
    raise AssertionError(f"no check for {kind} yet: add one")


def moment_ok(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def base64_ok(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except ValueError:
        return False
    return True


def object_problems(value: Any, kind: str, where: str, *, whole: bool) -> list[str]:
    """An object of ``kind`` (or of a type derived from it, named by ``@odata.type``).

    ``whole``: the object was asked for without ``$select``, so every property declared
    not nullable is there."""
    if not isinstance(value, dict):
        return [f"{where}: {value!r} is not an object of {kind}"]
    named = value.get("@odata.type")
    if named is not None:
        derived = str(named).removeprefix("#microsoft.graph.")
        if derived not in TYPES or kind not in lineage(derived):
            return [f"{where}: @odata.type {named!r} is not {kind} nor derived from it"]
        kind = derived
    properties, links = declared(kind), navigation(kind)
    found = []
    for key, item in value.items():
        if "@" in key:
            if key not in ANNOTATIONS:
                found.append(f"{where}: annotation {key!r} is not one Graph sends here")
        elif key in links:
            found.append(f"{where}.{key}: a navigation property, never expanded by sweeper")
        elif key not in properties:
            found.append(f"{where}.{key}: not declared on {kind}")
        else:
            prop = properties[key]
            found += problems(item, prop["type"], prop["nullable"], f"{where}.{key}")
    if whole and (TYPES[kind]["kind"] == "complex" or WHOLE_BY_DEFAULT & set(lineage(kind))):
        missing = [k for k, p in properties.items() if not p["nullable"] and k not in value]
        found += [f"{where}: {kind} without {k}, declared not nullable" for k in missing]
    return found
