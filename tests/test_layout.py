"""The package's shape: rings, each importing only the rings below it.

    base      errors, when, addresses, logs, files, faultpoints, processes (no other ring)
    graph     sweeper/graph/      Microsoft Graph and Entra ID: the SDK, sign-in, the HTTP set-up
    outbound  sweeper/outbound/   what is sent elsewhere: webhooks, Azure Monitor (Sentinel)
    rules     sweeper/rules/      pure judgement: no I/O
    store     sweeper/store/      the only code that speaks SQL
    present   sweeper/present/    escaping, tables, templates
    settings  sweeper/settings/   the configuration file's keys, each declared once, checked
    commands  sweeper/commands/   the glue each command runs
    edge      cli, cligroup, hosting, blobstate, demo, fakegraph

A module may import its own ring and the rings below it, never one above: an import
drawn the wrong way fails this test, whether at the top of a module or inside a function.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "sweeper"
RINGS = ("base", "graph", "outbound", "rules", "store", "present", "settings", "commands", "edge")
BASE = {"errors", "when", "addresses", "logs", "files", "faultpoints", "processes", "__init__"}
EDGE_PACKAGES = {"fakegraph"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def ring_of(module: str) -> str:
    parts = module.split(".")[1:]  # without "sweeper"
    if not parts or (len(parts) == 1 and parts[0] in BASE):
        return "base"
    if parts[0] in RINGS[1:-1]:
        return parts[0]
    return "edge"


def imports_of(path: Path) -> set[str]:
    """Every sweeper module ``path`` imports, anywhere in it, as a dotted name."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("sweeper")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module and node.module.startswith("sweeper"):
                target = node.module
            else:
                continue
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names if _is_module(f"{target}.{a.name}")}
    return {name for name in found if _is_module(name)}


def _is_module(name: str) -> bool:
    relative = Path(*name.split(".")[1:]) if "." in name else Path()
    return (PACKAGE / relative).with_suffix(".py").exists() or (PACKAGE / relative).is_dir()


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_a_module_imports_only_its_ring_and_the_rings_below(path: Path) -> None:
    here = ring_of(module_name(path))
    upward = [
        f"{name} ({ring_of(name)})"
        for name in sorted(imports_of(path))
        if RINGS.index(ring_of(name)) > RINGS.index(here)
    ]
    assert upward == [], f"{module_name(path)} ({here}) imports a ring above it"


def test_every_module_has_a_ring_and_the_rings_are_all_there() -> None:
    rings = {ring_of(module_name(p)) for p in MODULES}
    assert rings == set(RINGS)


def test_only_demo_imports_the_local_graph() -> None:
    """The local Graph (aiohttp's server, trustme) is for `sweeper demo`, `make bench`
    (tools/bench.py, outside the package) and the tests: no other module imports it, at its
    top or in a function."""
    importers = {
        module_name(path)
        for path in MODULES
        if not module_name(path).startswith("sweeper.fakegraph")
        and any(name.startswith("sweeper.fakegraph") for name in imports_of(path))
    }
    assert importers == {"sweeper.demo"}


SQL = re.compile(
    r"\bselect\s.+\sfrom\s|\binsert\s+into\s|\bupdate\s+\w+\s+set\s|\bdelete\s+from\s"
    r"|\bcreate\s+(?:table|index|trigger)\s",
    re.IGNORECASE | re.DOTALL,
)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_sql_is_written_only_in_the_store(path: Path) -> None:
    if ring_of(module_name(path)) == "store":
        return
    queries = [
        node.value
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value)
    ]
    assert queries == [], f"{module_name(path)} writes SQL outside the store"


STATUS_WORDS = re.compile(r"status\s*(?:=|!=|in|not in)\s*\(?((?:'\w+'(?:,\s*)?)+)\)?")


def test_the_statuses_sql_compares_are_the_declared_ones() -> None:
    from typing import get_args

    from sweeper import errors
    from sweeper.rules import triage

    declared = {
        *get_args(errors.RunStatus),
        *get_args(errors.MailboxStatus),
        *get_args(errors.DigestStatus),
        *get_args(errors.AlertStatus),
        *triage.STATUSES,
    }
    used: set[str] = set()
    for path in (PACKAGE / "store").rglob("*.py"):
        for match in STATUS_WORDS.finditer(path.read_text(encoding="utf-8")):
            used |= set(re.findall(r"'(\w+)'", match.group(1)))
    assert used  # the pattern still finds the store's comparisons
    assert used <= declared, used - declared


# -- size: rooms a newcomer can read ---------------------------------------------------------

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
LONG_ALLOWED: dict[str, str] = {
    # module or "module:function": why it may be longer
    "sweeper.cli": (
        "the command table: every command's decorators, options and help text, each body a"
        " few lines calling its glue in sweeper/commands/"
    ),
}


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_module_is_over_500_lines(path: Path) -> None:
    name = module_name(path)
    if name in LONG_ALLOWED:
        return
    assert _lines(path) <= MAX_MODULE_LINES, f"{name}: {_lines(path)} lines"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_function_is_over_80_lines(path: Path) -> None:
    name = module_name(path)
    long = [
        f"{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
        and f"{name}:{node.name}" not in LONG_ALLOWED
    ]
    assert long == [], f"{name} has functions over {MAX_FUNCTION_LINES} lines"


def test_the_allow_list_names_only_what_exists_and_is_long() -> None:
    for entry in LONG_ALLOWED:
        module, _, function = entry.partition(":")
        path = PACKAGE.parent / Path(*module.split(".")).with_suffix(".py")
        assert path.exists(), entry
        if function:
            sizes = {
                node.name: (node.end_lineno or node.lineno) - node.lineno + 1
                for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            }
            assert sizes.get(function, 0) > MAX_FUNCTION_LINES, entry
        else:
            assert _lines(path) > MAX_MODULE_LINES, entry


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_module_imports_a_private_name_of_another(path: Path) -> None:
    private = [
        f"{node.module}.{alias.name}"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]
    assert private == [], f"{module_name(path)} imports private names"
