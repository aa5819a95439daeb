"""The test suite's own shape: test modules share helpers through ``tests/support`` only.

A test module never imports conftest nor another test module (pytest finds the fixtures, and
a test module imported by another would lend it its fixtures unseen); the helpers live in
``tests/support``, beside which ``tests/`` holds only test modules and conftest.py.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
SUPPORT = TESTS / "support"
# An import of conftest or of a test module, as a statement or in code a test runs in a
# child process (``python -c "..."``).
FORBIDDEN = re.compile(r"^\s*(?:from|import)\s+(?:tests\.)?(conftest|test_\w+)\b", re.MULTILINE)


def imported_test_modules(path: Path) -> set[str]:
    """conftest and the test modules ``path`` imports: at its top, in a function, or in a
    string of code it runs."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [match.group(1) for match in FORBIDDEN.finditer(node.value)]
        else:
            continue
        found |= {
            name.removeprefix("tests.") for name in names if FORBIDDEN.match(f"import {name}")
        }
    return found


SOURCES = sorted(TESTS.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(TESTS)))
def test_no_module_imports_conftest_or_a_test_module(path: Path) -> None:
    assert imported_test_modules(path) == set(), (
        f"{path.relative_to(TESTS)}: move what it shares into tests/support"
    )


def test_the_check_sees_each_kind_of_import(tmp_path: Path) -> None:
    sample = tmp_path / "test_sample.py"
    source = (  # in capitals, so that this module's own strings hold no such import
        "IMPORT conftest\n"
        "FROM test_store IMPORT finding\n"
        "def f():\n    FROM tests.test_digest IMPORT relay\n"
        'CHILD = """\nIMPORT sys\nFROM test_console IMPORT serving\n"""\n'
        "FROM support.runner IMPORT Sweeper\nIMPORT testing_tools\n"
    )
    sample.write_text(source.replace("IMPORT", "import").replace("FROM", "from"), encoding="utf-8")
    assert imported_test_modules(sample) == {
        "conftest",
        "test_store",
        "test_digest",
        "test_console",
    }


def test_tests_holds_only_test_modules_and_conftest() -> None:
    helpers = [p.name for p in TESTS.glob("*.py") if p.name != "conftest.py"]
    assert [name for name in helpers if not name.startswith("test_")] == []


@pytest.mark.parametrize("path", sorted(SUPPORT.glob("*.py")), ids=lambda p: p.name)
def test_each_support_module_says_what_it_holds(path: Path) -> None:
    assert ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
