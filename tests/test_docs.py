"""The docs say what the code does: docs/configuration.md names exactly the variables
and settings the code reads (a variable added without its documentation, or documented
under another spelling, fails here), and every file the docs link to or name exists in
the repository.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from packages_core.conf import DEFAULTS as PACKAGES_DEFAULTS
from registry.conf import DEFAULTS as REGISTRY_DEFAULTS

ROOT = Path(__file__).resolve().parents[1]
CONFIGURATION = ROOT / "docs" / "configuration.md"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Where the bundled site reads its environment.
READERS = [*sorted((ROOT / "forge").rglob("*.py")), ROOT / "gunicorn.conf.py"]
VARIABLE = re.compile(
    r"""["']((?:FORGE_[A-Z0-9_]+)|DATABASE_URL|HOST|PORT|PROMETHEUS_MULTIPROC_DIR)["']"""
)


def read_variables() -> set[str]:
    return {name for path in READERS for name in VARIABLE.findall(path.read_text())}


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
    read = read_variables()
    documented = first_column_names(section("## The forge site: environment variables"))

    assert sorted(read - documented) == [], "read but not in docs/configuration.md"
    assert sorted(documented - read) == [], "documented but never read"


def test_every_forge_variable_the_docs_mention_is_read():
    """Beyond the table: a FORGE_ name anywhere in the README or docs/ (a `FORGE_S3_*`
    family included) must be one forge reads, so no page tells of a variable that is
    gone or misspelt.
    """
    read = read_variables()
    mentioned = {
        (doc.name, match[0], match[1])
        for doc in DOCS
        for match in re.findall(r"\b(FORGE_[A-Z0-9_]*)(\*?)", doc.read_text())
    }

    unknown = [
        f"{doc}: {name}{star}"
        for doc, name, star in sorted(mentioned)
        if not (any(r.startswith(name) for r in read) if star else name in read)
    ]
    assert unknown == [], "mentioned in the docs but never read"


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


# Links and paths

FENCED = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\s]+)`")
FILE_SUFFIX = re.compile(r"\.(py|md|html|toml|txt|cfg|conf|ya?ml|sh|css|js)$")
# Made by running the site or building the wheel, not part of the repository.
GENERATED = {"data", "dist", "build", "node_modules", "__pycache__"}


def repository_paths() -> set[str]:
    """Every file and directory of the repository, relative to its root."""
    paths = set()
    for directory, subdirectories, files in os.walk(ROOT):
        subdirectories[:] = [
            name
            for name in subdirectories
            if not name.startswith(".") and name not in GENERATED and not name.endswith(".egg-info")
        ]
        here = Path(directory).relative_to(ROOT)
        paths.update((here / name).as_posix() for name in [*subdirectories, *files])
    return paths


def heading_anchors(text: str) -> set[str]:
    """The anchors GitHub gives a page's headings."""
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", FENCED.sub("", text), re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_every_relative_link_in_the_docs_leads_to_a_file_of_the_repository():
    broken = []
    for doc in DOCS:
        for target in LINK.findall(doc.read_text()):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue
            path, _, anchor = target.partition("#")
            resolved = (doc.parent / path).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                broken.append(f"{doc.name}: {target}")
            elif (
                anchor
                and resolved.suffix == ".md"
                and anchor not in heading_anchors(resolved.read_text())
            ):
                broken.append(f"{doc.name}: {target} (no such heading)")
    assert broken == []


def test_every_file_the_docs_name_exists_in_the_repository():
    """A path in backticks (`registry/request_body.py`, `../elsewhere/DESIGN.md`) names a
    file of the repository: from its root, from the page, or, as the module tables
    write them, from within an app (`models/owners.py`, `base.py`).
    """
    paths = repository_paths()
    top_level = {path for path in paths if "/" not in path}
    missing = []
    for doc in DOCS:
        for name in CODE.findall(FENCED.sub("", doc.read_text())):
            if "://" in name or name.startswith("/") or any(c in name for c in "<$*=:"):
                continue
            if not (
                FILE_SUFFIX.search(name)
                or name.startswith("../")
                or ("/" in name and name.split("/")[0] in top_level)
            ):
                continue
            resolved = (doc.parent / name).resolve()
            relative = name.rstrip("/")
            found = (
                relative in paths
                or (resolved.is_relative_to(ROOT) and resolved.exists())
                or any(path.endswith("/" + relative) for path in paths)
            )
            if not found:
                missing.append(f"{doc.name}: {name}")
    assert missing == []
