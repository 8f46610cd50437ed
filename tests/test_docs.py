"""docs/configuration.md names exactly what the code reads: a variable or setting added
without its documentation, or documented under another spelling, fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from packages_core.conf import DEFAULTS as PACKAGES_DEFAULTS
from registry.conf import DEFAULTS as REGISTRY_DEFAULTS

ROOT = Path(__file__).resolve().parents[1]
CONFIGURATION = ROOT / "docs" / "configuration.md"
# Where the bundled site reads its environment.
READERS = [*sorted((ROOT / "forge").rglob("*.py")), ROOT / "gunicorn.conf.py"]
VARIABLE = re.compile(
    r"""["']((?:FORGE_[A-Z0-9_]+)|DATABASE_URL|HOST|PORT|PROMETHEUS_MULTIPROC_DIR)["']"""
)


def section(title: str) -> str:
    """The text of the docs/configuration.md section whose heading is `title`."""
    text = CONFIGURATION.read_text()
    start = text.index(title)
    following = re.search(r"^#{2,3} ", text[start + len(title) :], re.MULTILINE)
    return text[start : start + len(title) + following.start()] if following else text[start:]


def first_column_names(text: str) -> set[str]:
    """Backticked names in the first cell of each table row."""
    names = set()
    for line in text.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    return names


def test_every_environment_variable_read_is_documented_and_no_other():
    read = {name for path in READERS for name in VARIABLE.findall(path.read_text())}
    documented = first_column_names(section("## The forge site: environment variables"))

    assert sorted(read - documented) == [], "read but not in docs/configuration.md"
    assert sorted(documented - read) == [], "documented but never read"


@pytest.mark.parametrize(
    ("title", "defaults"),
    [
        ("### `PACKAGES` (packages_core/conf.py)", PACKAGES_DEFAULTS),
        ("### `REGISTRY` (registry/conf.py)", REGISTRY_DEFAULTS),
    ],
)
def test_every_app_setting_is_documented_and_no_other(title, defaults):
    documented = first_column_names(section(title))

    assert sorted(set(defaults) - documented) == [], "a setting missing from the docs"
    assert sorted(documented - set(defaults)) == [], "documented but not a setting"
