"""Logging: every module of the apps and the site logs under its own dotted name."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(
    path
    for package in ("forge", "packages_core", "registry")
    for path in (ROOT / package).rglob("*.py")
    if "migrations" not in path.parts
)


def logger_arguments(path: Path) -> list[str]:
    """What each `getLogger(...)` call in a module is given, as source text."""
    arguments = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        callee = node.func
        name = callee.attr if isinstance(callee, ast.Attribute) else getattr(callee, "id", "")
        if name == "getLogger":
            arguments.append(ast.unparse(node.args[0]) if node.args else "")
    return arguments


def test_every_logger_is_named_for_its_module():
    """A site turns one module's messages up or down by its dotted name in LOGGING;
    a logger shared between modules, or the root logger, would take that away.
    """
    shared = [
        f"{path.relative_to(ROOT)}: getLogger({argument})"
        for path in SOURCES
        for argument in logger_arguments(path)
        if argument != "__name__"
    ]

    assert shared == []


def test_the_modules_that_log_are_found():
    """The scan above reads the modules it should: some do log."""
    logging_modules = {
        path.relative_to(ROOT).as_posix()
        for path in SOURCES
        if "__name__" in logger_arguments(path)
    }

    assert {"packages_core/shared_cache.py", "packages_core/services/uploads.py"} <= logging_modules
