"""Write the part of Microsoft Graph v1.0's own description that sweeper relies on.

Microsoft publishes the metadata (CSDL) of Graph v1.0 in the public repository
``microsoftgraph/msgraph-metadata``, file ``clean_v10_metadata/cleanMetadata.xml`` (3.5 MB).
This script reads it with the standard library and writes the types sweeper reads and the
local Graph serves, with everything they use (base types, complex types of their
properties, enumerations), to a small JSON fixture: per type its kind, base type and
properties with their declared types and nullability; per enumeration its members. The
source commit and its date are recorded in the fixture.

    python tools/graph_metadata.py --git-dir PATH/msgraph-metadata/.git
    python tools/graph_metadata.py cleanMetadata.xml --commit SHA --date 2026-08-20

The full CSDL is never committed; ``tests/test_graph_metadata.py`` reads the fixture.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
CSDL_PATH = "clean_v10_metadata/cleanMetadata.xml"
REPOSITORY = "microsoftgraph/msgraph-metadata"
NAMESPACE = "microsoft.graph"
FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "graph-v1.0-subset.json"
# What sweeper reads and the local Graph serves; everything these use comes along.
ROOTS = (
    "message",
    "eventMessage",
    "eventMessageRequest",
    "eventMessageResponse",
    "recipient",
    "emailAddress",
    "user",
    "organization",
    "verifiedDomain",
    "domain",
    "mailFolder",
)
# Actions sweeper calls, bound to a user: their parameters.
ACTIONS = ("sendMail",)
# Types whose own properties are followed: the rest are recorded with their properties,
# but the complex types those use only by name (a user has a hundred properties sweeper
# never selects; following all of them would copy half of Graph).
FOLLOWED = ("message", "eventMessage", "eventMessageRequest", "eventMessageResponse",
            "outlookItem", "entity", "recipient", "emailAddress", "domain", "verifiedDomain",
            "mailFolder")  # fmt: skip


def read_git(git_dir: Path) -> tuple[bytes, dict[str, str]]:
    """The CSDL at HEAD of a clone (or bare copy) of the repository, and where it came from."""

    def git(*args: str) -> bytes:
        return subprocess.run(
            ["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True
        ).stdout

    commit, date = git("log", "-1", "--format=%H %cI", "HEAD").decode().split()
    source = {"repository": REPOSITORY, "path": CSDL_PATH, "commit": commit, "committed_at": date}
    return git("show", f"HEAD:{CSDL_PATH}"), source


def short(name: str) -> str:
    """``graph.message`` or ``microsoft.graph.message`` → ``message``; Edm types unchanged."""
    for prefix in ("graph.", f"{NAMESPACE}."):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def declared(text: str) -> str:
    """A property's type, short: ``Collection(graph.recipient)`` → ``Collection(recipient)``."""
    if text.startswith("Collection("):
        return f"Collection({short(text[len('Collection(') : -1])})"
    return short(text)


def element_type(declared: str) -> str:
    return declared[len("Collection(") : -1] if declared.startswith("Collection(") else declared


def schema_of(xml: bytes) -> ET.Element:
    root = ET.fromstring(xml)
    for schema in root.iter(f"{EDM}Schema"):
        if schema.get("Namespace") == NAMESPACE:
            return schema
    raise SystemExit(f"no schema {NAMESPACE} in the CSDL")


def describe(node: ET.Element) -> dict[str, Any]:
    kind = "entity" if node.tag == f"{EDM}EntityType" else "complex"
    properties = {
        p.get("Name", ""): {
            "type": declared(p.get("Type", "")),
            "nullable": p.get("Nullable", "true") != "false",
        }
        for p in node.findall(f"{EDM}Property")
    }
    out: dict[str, Any] = {"kind": kind, "base": short(node.get("BaseType", "")) or None}
    if node.get("Abstract") == "true":
        out["abstract"] = True
    if node.get("OpenType") == "true":
        out["open"] = True
    out["properties"] = properties
    navigation = sorted(n.get("Name", "") for n in node.findall(f"{EDM}NavigationProperty"))
    if navigation:
        out["navigation"] = navigation
    return out


def subset(schema: ET.Element) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The root types and their closure: base types always, property types where followed."""
    structured = {
        n.get("Name", ""): n for n in schema if n.tag in (f"{EDM}EntityType", f"{EDM}ComplexType")
    }
    enumerations = {n.get("Name", ""): n for n in schema if n.tag == f"{EDM}EnumType"}
    types: dict[str, Any] = {}
    enums: dict[str, list[str]] = {}
    todo = list(ROOTS)
    while todo:
        name = todo.pop()
        if name in types or name in enums:
            continue
        if name in enumerations:
            members = enumerations[name].findall(f"{EDM}Member")
            enums[name] = [m.get("Name", "") for m in members]
            continue
        if name not in structured:
            raise SystemExit(f"type {name!r} is not declared in the CSDL")
        types[name] = describe(structured[name])
        if types[name]["base"]:
            todo.append(types[name]["base"])
        for prop in types[name]["properties"].values():
            used = element_type(prop["type"])
            # Enumerations are small and say what a value may be: always kept.
            if name in FOLLOWED and not used.startswith("Edm.") or used in enumerations:
                todo.append(used)
    return dict(sorted(types.items())), dict(sorted(enums.items()))


def actions(schema: ET.Element) -> dict[str, Any]:
    """The parameters of :data:`ACTIONS` bound to a user (the binding parameter left out)."""
    out: dict[str, Any] = {}
    for node in schema.findall(f"{EDM}Action"):
        parameters = node.findall(f"{EDM}Parameter")
        bound = parameters[0].get("Type") if parameters else None
        if node.get("Name") in ACTIONS and bound == "graph.user":
            out[node.get("Name", "")] = {
                p.get("Name", ""): {
                    "type": declared(p.get("Type", "")),
                    "nullable": p.get("Nullable", "true") != "false",
                }
                for p in parameters[1:]
            }
    missing = set(ACTIONS) - set(out)
    if missing:
        raise SystemExit(f"action {sorted(missing)[0]!r} is not declared in the CSDL")
    return out


def build(xml: bytes, source: dict[str, str]) -> dict[str, Any]:
    schema = schema_of(xml)
    types, enums = subset(schema)
    return {
        "about": "A subset of Microsoft Graph v1.0's metadata (CSDL): the types sweeper reads "
        "and the local Graph serves. Written by tools/graph_metadata.py; do not edit by hand.",
        "source": source,
        "namespace": NAMESPACE,
        "roots": list(ROOTS),
        "types": types,
        "enums": enums,
        "actions": actions(schema),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csdl", nargs="?", type=Path, help="a copy of cleanMetadata.xml")
    parser.add_argument("--git-dir", type=Path, help=f"a git copy of {REPOSITORY}")
    parser.add_argument("--commit", default="unknown", help="with a file: its commit")
    parser.add_argument("--date", default="unknown", help="with a file: its commit's date")
    parser.add_argument("--out", type=Path, default=FIXTURE, help="the fixture to write")
    args = parser.parse_args(argv)
    if (args.csdl is None) == (args.git_dir is None):
        parser.error("give the CSDL file or --git-dir, one of them")
    if args.git_dir is not None:
        xml, source = read_git(args.git_dir)
    else:
        xml = args.csdl.read_bytes()
        source = {"repository": REPOSITORY, "path": CSDL_PATH, "commit": args.commit,
                  "committed_at": args.date}  # fmt: skip
    fixture = build(xml, source)
    args.out.write_text(json.dumps(fixture, indent=1, ensure_ascii=False) + "\n", "utf-8")
    print(f"{args.out}: {len(fixture['types'])} types, {len(fixture['enums'])} enumerations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
